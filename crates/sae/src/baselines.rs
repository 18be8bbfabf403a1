//! The non-spiking baselines with the spiking model's shapes: a conv auto-encoder and a
//! conv VAE (`model-spec.md`, "Baselines").
//!
//! Both are trained with binary cross-entropy against the pixels and scored by MSE:
//! trained on MSE, a sigmoid-output AE of these shapes collapses to the all-black image.
//! The authors' variant (ReLU output, MSE) is `Config::authors_ae`.

use autograd::{Parameter, Tape, Tensor, Var, init};
use ndarray::IxDyn;
use rand::Rng;

use crate::config::Config;
use crate::layers::Synapse;
use crate::model::{AutoEncoder, Geometry, Output};

/// A synaptic op with weight and bias, initialized as PyTorch does.
#[derive(Clone, Debug)]
struct Layer {
    weight: Parameter,
    bias: Parameter,
    synapse: Synapse,
}

impl Layer {
    /// PyTorch's default `U(±1/√fan_in)` for weight and bias; `fan_in` is the product of
    /// the weight's dimensions after the first (as PyTorch computes it, also for
    /// transposed convs).
    fn new(
        name: &str,
        shape: &[usize],
        bias_len: usize,
        synapse: Synapse,
        rng: &mut impl Rng,
    ) -> Self {
        let fan_in: usize = shape[1..].iter().product();
        let bound = 1.0 / (fan_in as f32).sqrt();
        Layer {
            weight: Parameter::new(
                format!("{name}.weight"),
                init::uniform(shape, -bound, bound, rng),
            ),
            bias: Parameter::new(
                format!("{name}.bias"),
                init::uniform(&[bias_len], -bound, bound, rng),
            ),
            synapse,
        }
    }

    fn apply<'t>(&self, tape: &'t Tape, x: &Var<'t>) -> Var<'t> {
        self.synapse
            .apply(x, &tape.param(&self.weight), Some(&tape.param(&self.bias)))
    }

    fn params(&self) -> [Parameter; 2] {
        [self.weight.clone(), self.bias.clone()]
    }
}

/// The conv encoder (ReLU after every layer) and decoder (ReLU hidden, sigmoid or ReLU
/// output) the two baselines share.
#[derive(Clone, Debug)]
struct ConvStack {
    encoder: Vec<Layer>,
    decoder_fc: Layer,
    decoder: Vec<Layer>,
    feature_shape: [usize; 3],
    relu_output: bool,
}

impl ConvStack {
    /// Encoder convs, then `heads` linear maps from the features to the latent (one for
    /// the AE, two — μ and log σ² — for the VAE), then the decoder.
    fn new(cfg: &Config, heads: &[&str], rng: &mut impl Rng) -> (Self, Vec<Layer>) {
        let geometry = Geometry::of(cfg);
        let (k, stride, padding) = (cfg.kernel, cfg.stride, cfg.padding);
        let mut encoder = vec![];
        let mut c_in = 1;
        for (i, &c_out) in cfg.channels.iter().enumerate() {
            let synapse = Synapse::Conv2d { stride, padding };
            encoder.push(Layer::new(
                &format!("conv{}", i + 1),
                &[c_out, c_in, k, k],
                c_out,
                synapse,
                rng,
            ));
            c_in = c_out;
        }
        let flat = geometry.flat();
        let heads = heads
            .iter()
            .map(|name| Layer::new(name, &[cfg.latent, flat], cfg.latent, Synapse::Linear, rng))
            .collect();
        let decoder_fc = Layer::new(
            "decoder_fc",
            &[flat, cfg.latent],
            flat,
            Synapse::Linear,
            rng,
        );
        let plan = geometry.decoder();
        let decoder = plan
            .iter()
            .enumerate()
            .map(|(i, &(c_out, synapse))| {
                let name = if i + 1 == plan.len() {
                    "output".into()
                } else {
                    format!("deconv{}", i + 1)
                };
                let layer = Layer::new(&name, &[c_in, c_out, k, k], c_out, synapse, rng);
                c_in = c_out;
                layer
            })
            .collect();
        let stack = ConvStack {
            encoder,
            decoder_fc,
            decoder,
            feature_shape: geometry.feature_shape(),
            relu_output: cfg.authors_ae,
        };
        (stack, heads)
    }

    /// Flattened features `[B, C·H·W]` of images `[B, 1, 28, 28]`.
    fn encode<'t>(&self, tape: &'t Tape, x: &Var<'t>) -> Var<'t> {
        self.encoder
            .iter()
            .fold(x.clone(), |h, l| l.apply(tape, &h).relu())
            .flatten()
    }

    /// Pixels `[B, 1, 28, 28]` from latent codes `[B, latent]`.
    fn decode<'t>(&self, tape: &'t Tape, z: &Var<'t>) -> Var<'t> {
        let b = z.shape()[0];
        let [c, h, w] = self.feature_shape;
        let mut y = self.decoder_fc.apply(tape, z).relu().reshape(&[b, c, h, w]);
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

    /// The reconstruction objective: BCE for a sigmoid output, MSE for the authors' ReLU one.
    fn objective<'t>(&self, recon: &Var<'t>, x: &Var<'t>) -> Var<'t> {
        if self.relu_output {
            recon.mse_loss(x)
        } else {
            recon.bce_loss(x)
        }
    }

    fn params(&self) -> Vec<Parameter> {
        self.encoder
            .iter()
            .chain([&self.decoder_fc])
            .chain(&self.decoder)
            .flat_map(Layer::params)
            .collect()
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

impl AutoEncoder for Ae {
    fn params(&self) -> Vec<Parameter> {
        let mut p = self.stack.params();
        p.extend(self.latent.params());
        p
    }

    fn forward<'t>(&self, tape: &'t Tape, x: &Tensor, _seed: u64) -> Output<'t> {
        let xv = tape.constant(x.clone());
        let latent = self
            .latent
            .apply(tape, &self.stack.encode(tape, &xv))
            .relu();
        let recon = self.stack.decode(tape, &latent);
        let mse = recon.mse_loss(&xv);
        let loss = self.stack.objective(&recon, &xv);
        Output {
            recon,
            mse,
            loss,
            latent,
            layers: vec![],
            latent_spikes: None,
        }
    }
}

/// The conv VAE: latent mean and log-variance heads, the reparameterization
/// `z = μ + σ·ε`, and the loss `BCE + β·KL/784` (KL per image, against the per-pixel
/// mean BCE). While the tape records, `z` is sampled; in evaluation mode `z = μ`.
#[derive(Clone, Debug)]
pub struct Vae {
    stack: ConvStack,
    mu: Layer,
    logvar: Layer,
    beta: f32,
}

impl Vae {
    /// The VAE of `cfg`'s shapes (β = `cfg.beta`), initialized from `rng`.
    pub fn new(cfg: &Config, rng: &mut impl Rng) -> Self {
        let (stack, mut heads) = ConvStack::new(cfg, &["mu", "logvar"], rng);
        let logvar = heads.pop().expect("two heads");
        Vae {
            stack,
            mu: heads.pop().expect("two heads"),
            logvar,
            beta: cfg.beta,
        }
    }
}

impl AutoEncoder for Vae {
    fn params(&self) -> Vec<Parameter> {
        let mut p = self.stack.params();
        p.extend(self.mu.params());
        p.extend(self.logvar.params());
        p
    }

    fn forward<'t>(&self, tape: &'t Tape, x: &Tensor, seed: u64) -> Output<'t> {
        let xv = tape.constant(x.clone());
        let h = self.stack.encode(tape, &xv);
        let (mu, logvar) = (self.mu.apply(tape, &h), self.logvar.apply(tape, &h));
        let z = if tape.is_recording() {
            let n = mu.value().len();
            let eps: Vec<f32> = (0..n).map(|i| standard_normal(seed, i as u64)).collect();
            let eps = Tensor::from_shape_vec(IxDyn(mu.shape()), eps).expect("μ's shape");
            &mu + &((&logvar * 0.5).exp() * tape.constant(eps))
        } else {
            mu.clone()
        };
        let recon = self.stack.decode(tape, &z);
        let mse = recon.mse_loss(&xv);
        let pixels = x.len() / x.shape()[0].max(1);
        let kl = mu.kl_normal(&logvar) * (self.beta / pixels as f32);
        let loss = &self.stack.objective(&recon, &xv) + &kl;
        Output {
            recon,
            mse,
            loss,
            latent: mu,
            layers: vec![],
            latent_spikes: None,
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
    fn learns(net: &dyn AutoEncoder) {
        let x = autograd::gradcheck::random(&[4, 1, 28, 28], 0.0, 1.0, 1)
            .mapv(|v| (v > 0.7) as u8 as f32);
        let mut opt = Adam::new(net.params(), 3e-3);
        let loss_at = |seed| net.forward(&Tape::eval(), &x, seed).loss.item();
        let before = loss_at(0);
        for step in 0..30 {
            let tape = Tape::new();
            let out = net.forward(&tape, &x, step);
            assert_eq!(out.recon.shape(), &[4, 1, 28, 28]);
            opt.zero_grad();
            out.loss.backward();
            opt.step();
        }
        let after = loss_at(0);
        assert!(after < 0.9 * before, "loss {before} → {after}");
    }

    #[test]
    fn ae_trains() {
        let cfg = small();
        let ae = Ae::new(&cfg, &mut StdRng::seed_from_u64(0));
        assert_eq!(ae.params().len(), 12);
        learns(&ae);
        let authors = Ae::new(
            &Config {
                authors_ae: true,
                ..cfg
            },
            &mut StdRng::seed_from_u64(0),
        );
        learns(&authors);
    }

    #[test]
    fn vae_trains_and_evaluates_at_the_mean() {
        let vae = Vae::new(&small(), &mut StdRng::seed_from_u64(0));
        learns(&vae);
        let x = Tensor::from_elem(IxDyn(&[2, 1, 28, 28]), 0.5);
        let tape = Tape::eval();
        let (a, b) = (vae.forward(&tape, &x, 1), vae.forward(&tape, &x, 2));
        assert_eq!(a.recon.value(), b.recon.value(), "z = μ in evaluation");
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
