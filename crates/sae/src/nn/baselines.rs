//! The non-spiking baselines with the spiking model's shapes: a conv auto-encoder and a
//! conv VAE (`model-spec.md`, "Baselines").
//!
//! Both are trained with binary cross-entropy against the pixels and scored by MSE:
//! trained on MSE, a sigmoid-output AE of these shapes collapses to the all-black image.
//! The authors' variant (ReLU output, MSE) is `Config::authors_ae`.

use autograd::nn::{Module, Visitor};
use autograd::{Parameter, Tape, Tensor, Var, init};
use std::ops::Range;

use ndarray::IxDyn;
use rand::Rng;

use crate::config::Config;
use crate::nn::autoencoder::{AutoEncoder, Output, Sampling, rows};
use crate::nn::layers::{Reshape, Synapse};
use crate::nn::plan::{self, LayerPlan};

/// A synaptic op with weight and bias, initialized as PyTorch does.
#[derive(Clone, Debug)]
struct Layer {
    name: String,
    weight: Parameter,
    bias: Parameter,
    synapse: Synapse,
    input: Reshape,
}

impl Layer {
    /// PyTorch's default `U(±1/√fan_in)` for the weight, then the bias
    /// ([`init::default_uniform`], [`init::default_bias`]; also for transposed convs,
    /// whose fan-in PyTorch takes from the weight's dimensions after the first too).
    fn new(plan: &LayerPlan, rng: &mut impl Rng) -> Self {
        let name = &plan.name;
        let weight = init::default_uniform(&plan.weight, rng);
        let bias = init::default_bias(plan.outputs(), &plan.weight, rng);
        Layer {
            weight: Parameter::new(format!("{name}.weight"), weight),
            bias: Parameter::new(format!("{name}.bias"), bias),
            name: name.clone(),
            synapse: plan.synapse,
            input: plan.input,
        }
    }

    fn apply<'t>(&self, tape: &'t Tape, x: &Var<'t>) -> Var<'t> {
        self.synapse.apply(
            &self.input.apply(x),
            &tape.param(&self.weight),
            Some(&tape.param(&self.bias)),
        )
    }
}

impl Module for Layer {
    fn visit(&self, v: &mut Visitor<'_>) {
        v.param("weight", &self.weight);
        v.param("bias", &self.bias);
    }
}

/// The conv encoder (ReLU after every layer) and decoder (ReLU hidden, sigmoid or ReLU
/// output) the two baselines share.
#[derive(Clone, Debug)]
struct ConvStack {
    encoder: Vec<Layer>,
    decoder_fc: Layer,
    decoder: Vec<Layer>,
    relu_output: bool,
}

impl ConvStack {
    /// The layers of [`plan::layers`] with latent heads `heads` (one for the AE, two —
    /// μ and log σ² — for the VAE): the stack, and the heads.
    fn new(cfg: &Config, heads: &[&str], rng: &mut impl Rng) -> (Self, Vec<Layer>) {
        let mut layers: Vec<Layer> = plan::layers(cfg, heads)
            .iter()
            .map(|l| Layer::new(l, rng))
            .collect();
        let convs = cfg.channels.len();
        let decoder = layers.split_off(convs + heads.len() + 1);
        let decoder_fc = layers.pop().expect("decoder_fc");
        let heads = layers.split_off(convs);
        let stack = ConvStack {
            encoder: layers,
            decoder_fc,
            decoder,
            relu_output: cfg.authors_ae,
        };
        (stack, heads)
    }

    /// Flattened features `[B, C·H·W]` of images `[B, 1, 28, 28]`, flattened once for all
    /// the heads (their own reshape then has nothing to do).
    fn encode<'t>(&self, tape: &'t Tape, x: &Var<'t>) -> Var<'t> {
        self.encoder
            .iter()
            .fold(x.clone(), |h, l| l.apply(tape, &h).relu())
            .flatten()
    }

    /// Pixels `[B, 1, 28, 28]` from latent codes `[B, latent]`.
    fn decode<'t>(&self, tape: &'t Tape, z: &Var<'t>) -> Var<'t> {
        let mut y = self.decoder_fc.apply(tape, z).relu();
        for (i, layer) in self.decoder.iter().enumerate() {
            y = layer.apply(tape, &y);
            let last = i + 1 == self.decoder.len();
            y = if last && !self.relu_output {
                y.sigmoid()
            } else {
                y.relu()
            };
        }
        y
    }
}

/// Each layer under its name, in network order: `conv1.weight`, …, `output.bias`.
impl Module for ConvStack {
    fn visit(&self, v: &mut Visitor<'_>) {
        let layers = self
            .encoder
            .iter()
            .chain([&self.decoder_fc])
            .chain(&self.decoder);
        for layer in layers {
            v.child(&layer.name, layer);
        }
    }
}

/// The deterministic conv auto-encoder (ReLU hidden layers, sigmoid output, BCE).
/// Weight decay, when wanted, is the optimizer's (`Config::weight_decay`).
#[derive(Clone, Debug)]
pub struct Ae {
    stack: ConvStack,
    latent: Layer,
}

impl Ae {
    /// The AE of `cfg`'s shapes, initialized from `rng`.
    pub fn new(cfg: &Config, rng: &mut impl Rng) -> Self {
        let (stack, mut heads) = ConvStack::new(cfg, &["latent"], rng);
        Ae {
            stack,
            latent: heads.pop().expect("one head"),
        }
    }
}

/// The stack's layers, then the latent head.
impl Module for Ae {
    fn visit(&self, v: &mut Visitor<'_>) {
        v.child("", &self.stack);
        v.child(&self.latent.name, &self.latent);
    }
}

impl AutoEncoder for Ae {
    fn forward_part<'t>(
        &self,
        tape: &'t Tape,
        x: &Tensor,
        part: Range<usize>,
        seed: u64,
        sampling: Sampling,
    ) -> Output<'t> {
        // Deterministic: the rows alone.
        self.forward(tape, &rows(x, &part), seed, sampling)
    }

    fn forward<'t>(&self, tape: &'t Tape, x: &Tensor, _: u64, _: Sampling) -> Output<'t> {
        let xv = tape.constant(x.clone());
        let latent = self
            .latent
            .apply(tape, &self.stack.encode(tape, &xv))
            .relu();
        let recon = self.stack.decode(tape, &latent);
        let mse = recon.mse_loss(&xv);
        Output {
            recon,
            mse,
            latent,
            layers: vec![],
            latent_spikes: None,
            posterior: None,
        }
    }
}

/// The conv VAE: latent mean and log-variance heads, the reparameterization
/// `z = μ + σ·ε`, and the loss `BCE + β·KL/784` (KL per image, against the per-pixel
/// mean BCE; [`Objective::Elbo`](crate::nn::Objective::Elbo)). [`Sampling`] says whether
/// `z` is sampled or `z = μ`.
#[derive(Clone, Debug)]
pub struct Vae {
    stack: ConvStack,
    mu: Layer,
    logvar: Layer,
}

impl Vae {
    /// The VAE of `cfg`'s shapes, initialized from `rng`.
    pub fn new(cfg: &Config, rng: &mut impl Rng) -> Self {
        let (stack, mut heads) = ConvStack::new(cfg, &["mu", "logvar"], rng);
        let logvar = heads.pop().expect("two heads");
        Vae {
            stack,
            mu: heads.pop().expect("two heads"),
            logvar,
        }
    }

    /// The reconstruction of a sampled code `z = μ + σ·ε` from the posterior `(μ, log σ²)`
    /// of a forward pass over images `first_image..` of a set: row `r`'s `ε` is draws
    /// `(first_image + r)·latent …` of `seed`, whichever pass or share computes it. The
    /// evaluation's sampled-z MSE reuses the `z = μ` pass's encoding this way.
    pub fn decode_sample<'t>(
        &self,
        (mu, logvar): &(Var<'t>, Var<'t>),
        seed: u64,
        first_image: usize,
    ) -> Var<'t> {
        let z = reparameterize(mu, logvar, seed, first_image);
        self.stack.decode(mu.tape(), &z)
    }
}

/// `z = μ + σ·ε` with `σ = exp(log σ² / 2)`; `ε` of row `r`, latent `j` is
/// [`standard_normal`]`(seed, (first_image + r)·latent + j)`.
fn reparameterize<'t>(mu: &Var<'t>, logvar: &Var<'t>, seed: u64, first_image: usize) -> Var<'t> {
    let n = mu.value().len();
    let latent = n / mu.shape()[0].max(1);
    let first = (first_image * latent) as u64;
    let eps: Vec<f32> = (0..n)
        .map(|i| standard_normal(seed, first + i as u64))
        .collect();
    let eps = Tensor::from_shape_vec(IxDyn(mu.shape()), eps).expect("μ's shape");
    mu + &((logvar * 0.5).exp() * mu.tape().constant(eps))
}

/// The stack's layers, then the heads `mu` and `logvar`.
impl Module for Vae {
    fn visit(&self, v: &mut Visitor<'_>) {
        v.child("", &self.stack);
        v.child(&self.mu.name, &self.mu);
        v.child(&self.logvar.name, &self.logvar);
    }
}

impl AutoEncoder for Vae {
    fn forward<'t>(&self, tape: &'t Tape, x: &Tensor, seed: u64, sampling: Sampling) -> Output<'t> {
        self.forward_part(tape, x, 0..x.shape()[0], seed, sampling)
    }

    fn forward_part<'t>(
        &self,
        tape: &'t Tape,
        x: &Tensor,
        part: Range<usize>,
        seed: u64,
        sampling: Sampling,
    ) -> Output<'t> {
        let x = &rows(x, &part);
        let xv = tape.constant(x.clone());
        let h = self.stack.encode(tape, &xv);
        let (mu, logvar) = (self.mu.apply(tape, &h), self.logvar.apply(tape, &h));
        let z = if sampling == Sampling::Sample {
            // ε of image i of the whole batch is draw i·latent + j, whichever part runs.
            reparameterize(&mu, &logvar, seed, part.start)
        } else {
            mu.clone()
        };
        let recon = self.stack.decode(tape, &z);
        let mse = recon.mse_loss(&xv);
        Output {
            recon,
            mse,
            latent: mu.clone(),
            layers: vec![],
            latent_spikes: None,
            posterior: Some((mu, logvar)),
        }
    }
}

/// A standard normal draw from the counter-based uniform generator (Box–Muller), so the
/// VAE's noise depends only on `(seed, index)`.
fn standard_normal(seed: u64, index: u64) -> f32 {
    let u1 = kernels::encode::uniform_at(seed, 2 * index).max(f32::MIN_POSITIVE);
    let u2 = kernels::encode::uniform_at(seed, 2 * index + 1);
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Model, Objective};
    use autograd::{Adam, Optimizer};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn small() -> Config {
        Config {
            channels: vec![2, 3],
            latent: 6,
            ..Config::quick()
        }
    }

    /// A few Adam steps on one batch lower the loss: the whole graph is wired.
    fn learns(cfg: &Config, model: Model) {
        let (net, objective) = (model.net(), Objective::new(cfg, &model));
        let x = autograd::gradcheck::random(&[4, 1, 28, 28], 0.0, 1.0, 1)
            .mapv(|v| (v > 0.7) as u8 as f32);
        let mut opt = Adam::new(net.parameters(), 3e-3);
        let loss_at = |seed| {
            let tape = Tape::eval();
            let out = net.forward(&tape, &x, seed, Sampling::Mean);
            objective.loss(&tape, &out, &x).item()
        };
        let before = loss_at(0);
        for step in 0..30 {
            let tape = Tape::new();
            let out = net.forward(&tape, &x, step, Sampling::Sample);
            assert_eq!(out.recon.shape(), &[4, 1, 28, 28]);
            opt.zero_grad();
            objective.loss(&tape, &out, &x).backward();
            opt.step();
        }
        let after = loss_at(0);
        assert!(after < 0.9 * before, "loss {before} → {after}");
    }

    /// Each layer draws its weight, then its bias, from `U(±1/√fan_in)` with PyTorch's
    /// fan-in: the weight's dimensions after the first, `C_out·k²` for a transposed conv.
    #[test]
    fn layers_are_initialized_as_pytorch_does() {
        let plans = plan::layers(&small(), &["latent"]);
        let (rng, check) = (&mut StdRng::seed_from_u64(5), &mut StdRng::seed_from_u64(5));
        for plan in &plans {
            let layer = Layer::new(plan, rng);
            let bound = 1.0 / (plan.weight[1..].iter().product::<usize>() as f32).sqrt();
            let w = init::uniform(&plan.weight, -bound, bound, check);
            let b = init::uniform(&[plan.outputs()], -bound, bound, check);
            assert_eq!(*layer.weight.value(), w, "{}", plan.name);
            assert_eq!(*layer.bias.value(), b, "{}", plan.name);
        }
    }

    #[test]
    fn ae_trains() {
        let cfg = small();
        let ae = Ae::new(&cfg, &mut StdRng::seed_from_u64(0));
        assert_eq!(ae.parameters().len(), 12);
        learns(&cfg, Model::Ae(ae));
        let authors = Config {
            authors_ae: true,
            ..cfg
        };
        let ae = Ae::new(&authors, &mut StdRng::seed_from_u64(0));
        learns(&authors, Model::Ae(ae));
    }

    #[test]
    fn vae_trains_and_evaluates_at_the_mean() {
        let vae = Vae::new(&small(), &mut StdRng::seed_from_u64(0));
        learns(&small(), Model::Vae(vae.clone()));
        let x = Tensor::from_elem(IxDyn(&[2, 1, 28, 28]), 0.5);
        let tape = Tape::eval();
        let mean = |seed| vae.forward(&tape, &x, seed, Sampling::Mean);
        assert_eq!(mean(1).recon.value(), mean(2).recon.value(), "z = μ");
        let sample = |seed| vae.forward(&tape, &x, seed, Sampling::Sample);
        assert_ne!(
            sample(1).recon.value(),
            sample(2).recon.value(),
            "z sampled"
        );
    }

    /// A sample decoded from a `z = μ` pass's posterior is the sampled pass's
    /// reconstruction, row `r` of a part starting at image `first` drawing image
    /// `first + r`'s ε.
    #[test]
    fn a_sample_decoded_from_the_posterior_is_the_sampled_pass() {
        let vae = Vae::new(&small(), &mut StdRng::seed_from_u64(0));
        let x = autograd::gradcheck::random(&[5, 1, 28, 28], 0.0, 1.0, 2);
        let tape = Tape::eval();
        let whole = vae.forward(&tape, &x, 4, Sampling::Sample);
        let part = 2..5;
        let mean = vae.forward_part(&tape, &x, part.clone(), 4, Sampling::Mean);
        let posterior = mean.posterior.as_ref().expect("posterior");
        let recon = vae.decode_sample(posterior, 4, part.start);
        assert_eq!(*recon.value(), rows(whole.recon.value(), &part));
    }

    #[test]
    fn normal_draws_have_unit_variance() {
        let n = 20_000;
        let xs: Vec<f32> = (0..n).map(|i| standard_normal(3, i)).collect();
        let mean = xs.iter().sum::<f32>() / n as f32;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / n as f32;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }
}
