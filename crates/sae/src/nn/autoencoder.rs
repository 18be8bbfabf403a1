//! What every auto-encoder is to the code that runs it: [`AutoEncoder`], the [`Output`]
//! of a forward pass and the [`Sampling`] mode of a stochastic latent.

use std::ops::Range;

use autograd::nn::Module;
use autograd::{Tape, Tensor, Var};
use ndarray::{Axis, Slice};

/// One layer's activity in a forward pass.
#[derive(Clone, Debug)]
pub struct LayerActivity<'t> {
    /// The layer's name.
    pub name: String,
    /// Events per neuron and image, `[B, …]`: the spike count `S = Σ_t s[t]` of a LIF
    /// layer (differentiable, through the surrogate), and for the encoded input the steps
    /// at which it is nonzero. The spike trains themselves are not kept: at `T = 100`
    /// they would hold most of a pass's memory.
    pub counts: Var<'t>,
    /// Leaky cumulative potential at the last step, `C = c[T−1]` `[B, …]`: what the
    /// regularizers read. (The full `c [T·B, …]` is not kept: at `T = 100` it would
    /// double the memory of a pass; the read-out takes what it needs as it goes.)
    pub c_last: Var<'t>,
}

/// What a forward pass of any of the auto-encoders gives.
#[derive(Clone, Debug)]
pub struct Output<'t> {
    /// Reconstruction `[B, 1, 28, 28]`, pixels in `[0, 1]`-ish.
    pub recon: Var<'t>,
    /// Reconstruction MSE against the input images.
    pub mse: Var<'t>,
    /// The latent code `[B, latent]`: spike rates `S/T` for the spiking model,
    /// activations for the AE, `μ` for the VAE.
    pub latent: Var<'t>,
    /// Spiking models only: per layer, in order, the encoded input first (its `c_last` is
    /// the input's last frame).
    pub layers: Vec<LayerActivity<'t>>,
    /// Spiking models only: the first image's latent spikes `[T, latent]`, for rasters
    /// (all images' would grow with `T·B`).
    pub latent_spikes: Option<Tensor>,
    /// The VAE only: the posterior's mean and log-variance `(μ, log σ²)`, `[B, latent]`.
    pub posterior: Option<(Var<'t>, Var<'t>)>,
}

/// Which code a model with a stochastic latent (the VAE) decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sampling {
    /// A sample `z = μ + σ·ε` (training).
    Sample,
    /// The mean `z = μ` (evaluation).
    Mean,
}

/// The interface the training loop, evaluation and benchmarks use for every model.
///
/// Its parameters are its [`Module`]'s: every parameter's path in the module tree is its
/// own [`Parameter::name`](autograd::Parameter::name), which the checkpoint stores
/// (`the_module_paths_are_the_checkpoint_names` checks it for every model).
pub trait AutoEncoder: Module {
    /// Runs the model on images `x [B, 1, 28, 28]`; `seed` drives any randomness (input
    /// encoding, noise, the VAE's sample).
    fn forward<'t>(&self, tape: &'t Tape, x: &Tensor, seed: u64, sampling: Sampling) -> Output<'t>;
    /// Runs the model on images `part` of the batch `x`, drawing for them exactly the
    /// random numbers [`AutoEncoder::forward`] of the whole batch draws: one rank's share
    /// of a data-parallel step, identical to the same rows of the whole batch's pass.
    fn forward_part<'t>(
        &self,
        tape: &'t Tape,
        x: &Tensor,
        part: Range<usize>,
        seed: u64,
        sampling: Sampling,
    ) -> Output<'t>;
    /// Time steps per image (1 for the non-spiking baselines).
    fn steps(&self) -> usize {
        1
    }
}

/// Rows `part` of a batch `x [B, …]`.
pub fn rows(x: &Tensor, part: &Range<usize>) -> Tensor {
    x.slice_axis(Axis(0), Slice::from(part.clone())).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ModelKind};
    use crate::nn::Model;
    use autograd::nn::Entry;

    /// The checkpoint stores each parameter under its path in the module tree; the
    /// layers make their parameters under the same names, for every model.
    #[test]
    fn the_module_paths_are_the_checkpoint_names() {
        let names = |cfg: &Config| -> Vec<String> {
            let net = Model::new(cfg);
            let named = net.net().named_parameters();
            // The layers' own handles (not the path-named ones `named_parameters` makes)
            // carry their paths too.
            net.net().walk(&mut |path, entry| {
                if let Entry::Parameter(p) = entry {
                    assert_eq!(path, p.name(), "{}", cfg.model);
                }
            });
            assert_eq!(net.net().parameters().len(), named.len());
            named.into_iter().map(|(path, _)| path).collect()
        };
        let w = |layers: &[&str]| -> Vec<String> {
            layers.iter().map(|l| format!("{l}.weight")).collect()
        };
        let wb = |layers: &[&str]| -> Vec<String> {
            layers
                .iter()
                .flat_map(|l| [format!("{l}.weight"), format!("{l}.bias")])
                .collect()
        };
        let paper = Config::paper();
        let sae_layers = [
            "conv1",
            "conv2",
            "latent",
            "decoder_fc",
            "deconv1",
            "output",
        ];
        assert_eq!(names(&paper), w(&sae_layers));
        let ae = Config {
            model: ModelKind::Ae,
            ..paper.clone()
        };
        assert_eq!(
            names(&ae),
            wb(&[
                "conv1",
                "conv2",
                "decoder_fc",
                "deconv1",
                "output",
                "latent"
            ])
        );
        let vae = Config {
            model: ModelKind::Vae,
            channels: vec![2, 3, 4],
            ..paper
        };
        assert_eq!(
            names(&vae),
            wb(&[
                "conv1",
                "conv2",
                "conv3",
                "decoder_fc",
                "deconv1",
                "deconv2",
                "output",
                "mu",
                "logvar"
            ])
        );
    }

    #[test]
    fn a_part_of_a_batch_is_those_rows_of_the_whole_pass() {
        let x = Tensor::from_shape_fn(ndarray::IxDyn(&[5, 1, 28, 28]), |i| {
            ((i[0] * 31 + i[2] * 7 + i[3]) % 11) as f32 / 10.0
        });
        for model in [ModelKind::Sae, ModelKind::Ae, ModelKind::Vae] {
            let cfg = Config {
                model,
                steps: 3,
                channels: vec![2, 3],
                latent: 6,
                input_noise: 0.1,
                ..Config::quick()
            };
            let net = Model::new(&cfg);
            let tape = Tape::new();
            let whole = net.net().forward(&tape, &x, 9, Sampling::Sample);
            for part in [0..2, 2..5, 4..5] {
                let p = net
                    .net()
                    .forward_part(&tape, &x, part.clone(), 9, Sampling::Sample);
                for (name, a, b) in [
                    ("recon", &p.recon, &whole.recon),
                    ("latent", &p.latent, &whole.latent),
                ] {
                    assert_eq!(
                        *a.value(),
                        rows(b.value(), &part),
                        "{model} {name} {part:?}"
                    );
                }
            }
        }
    }
}
