//! What each model is trained to minimize, given its [`Output`]: the spiking model's
//! reconstruction MSE plus the regularizers of `model-spec.md`, the AE's reconstruction
//! objective, and the VAE's with its KL term. Coefficients live here, not in the models.

use autograd::{Parameter, Tape, Tensor, Var};
use ndarray::IxDyn;

use crate::config::{Coefficients, Config};
use crate::nn::autoencoder::Output;
use crate::nn::model::Model;

/// A model's training objective.
#[derive(Clone, Debug)]
pub enum Objective {
    /// The spiking model: `MSE + Σ coefficient · regularizer`.
    Regularized {
        /// The coefficients.
        coefficients: Coefficients,
        /// Time steps `T` (rates are `S/T`).
        steps: usize,
        /// Index of the latent layer in [`Output::layers`] (the encoded input is 0).
        latent: usize,
        /// The synaptic weights the weight regularizers read.
        weights: Vec<Parameter>,
    },
    /// The AE: binary cross-entropy of a sigmoid output, or the MSE of the authors' ReLU
    /// one.
    Reconstruction {
        /// BCE (else MSE).
        bce: bool,
    },
    /// The VAE: the reconstruction objective plus `β · KL / pixels` (KL per image,
    /// against the per-pixel mean reconstruction term).
    Elbo {
        /// BCE (else MSE).
        bce: bool,
        /// `β`.
        beta: f32,
    },
}

impl Objective {
    /// The objective of `model` under `cfg`.
    pub fn new(cfg: &Config, model: &Model) -> Self {
        let bce = !cfg.authors_ae;
        match model {
            Model::Sae(sae) => Objective::Regularized {
                coefficients: cfg.coefficients,
                steps: sae.steps,
                latent: sae.latent + 1,
                weights: sae.layers.iter().map(|l| l.weight.clone()).collect(),
            },
            Model::Ae(_) => Objective::Reconstruction { bce },
            Model::Vae(_) => Objective::Elbo {
                bce,
                beta: cfg.beta,
            },
        }
    }

    /// The loss of a forward pass `out` of images `x`.
    ///
    /// # Panics
    /// If `out` lacks what the objective reads (the VAE's posterior).
    pub fn loss<'t>(&self, tape: &'t Tape, out: &Output<'t>, x: &Tensor) -> Var<'t> {
        let reconstruction = |bce: bool| {
            let x = tape.constant(x.clone());
            if bce {
                out.recon.bce_loss(&x)
            } else {
                out.recon.mse_loss(&x)
            }
        };
        match self {
            Objective::Regularized { .. } => {
                let b = x.shape()[0];
                &out.mse + &self.regularizers(tape, out, b)
            }
            Objective::Reconstruction { bce } => reconstruction(*bce),
            Objective::Elbo { bce, beta } => {
                let (mu, logvar) = out.posterior.as_ref().expect("the VAE's posterior");
                let pixels = x.len() / x.shape()[0].max(1);
                let kl = mu.kl_normal(logvar) * (beta / pixels as f32);
                &reconstruction(*bce) + &kl
            }
        }
    }

    /// The regularizers of `model-spec.md` over the LIF layers' activity (0 for the
    /// other objectives).
    fn regularizers<'t>(&self, tape: &'t Tape, out: &Output<'t>, b: usize) -> Var<'t> {
        let mut total = tape.constant(Tensor::zeros(IxDyn(&[])));
        let Objective::Regularized {
            coefficients: k,
            steps: t,
            latent,
            weights,
        } = self
        else {
            return total;
        };
        let mut add = |term: Var<'t>, coef: f32| {
            if coef != 0.0 {
                total = &total + &(term * coef);
            }
        };
        for (i, layer) in out.layers.iter().enumerate().skip(1) {
            let n = layer.counts.value().len() / b;
            let norm = 1.0 / (b * n) as f32;
            // S/T and C/T, made only when a term needs them.
            let rate = || layer.counts.reshape(&[b, n]) / *t as f32;
            let last = || layer.c_last.reshape(&[b, n]) / *t as f32;
            if k.burst_l1 != 0.0 {
                add(rate().abs().sum() * norm, k.burst_l1);
            }
            if k.burst_l2 != 0.0 {
                add(rate().square().sum() * norm, k.burst_l2);
            }
            if k.potential_l1 != 0.0 {
                add(last().abs().sum() * norm, k.potential_l1);
            }
            if k.potential_l2 != 0.0 {
                add(last().square().sum() * norm, k.potential_l2);
            }
            if i == *latent {
                if k.example_l2 != 0.0 {
                    add(
                        rate().sum_axes(&[1], false).square().sum() * norm,
                        k.example_l2,
                    );
                }
                if k.neuron_l2 != 0.0 {
                    add(
                        rate().sum_axes(&[0], false).square().sum() * norm,
                        k.neuron_l2,
                    );
                }
                if k.neuron_l1 != 0.0 {
                    add(rate().sum() * norm, k.neuron_l1);
                }
            }
        }
        for w in weights {
            if k.weight_l1 != 0.0 || k.weight_l2 != 0.0 {
                let w = tape.param(w);
                add(w.abs().sum(), k.weight_l1);
                add(w.square().sum(), k.weight_l2);
            }
        }
        total
    }
}

/// Helper for tests: `forward(tape, x, seed)` in training mode and its loss under `cfg`'s
/// objective.
#[cfg(test)]
pub(crate) fn loss_of<'t>(
    cfg: &Config,
    model: &Model,
    tape: &'t Tape,
    x: &Tensor,
    seed: u64,
) -> (Output<'t>, Var<'t>) {
    let out = model
        .net()
        .forward(tape, x, seed, crate::nn::Sampling::Sample);
    let loss = Objective::new(cfg, model).loss(tape, &out, x);
    (out, loss)
}
