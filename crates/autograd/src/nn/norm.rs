//! Normalization layers over the functional ops of [`crate::ops::norm`]: PyTorch's
//! `nn.LayerNorm` and `nn.BatchNorm1d/2d/3d` (one [`BatchNorm`] for all of `[N, C, …]`).

use ndarray::IxDyn;

use crate::nn::{Layer, Mode, Module, Visitor};
use crate::ops::norm::{BatchNormMode, RunningStats};
use crate::{Parameter, Tensor, Var};

/// PyTorch's default `ε` of both norms.
const EPS: f32 = 1e-5;

/// The weight (ones) and bias (zeros) of shape `shape` of an affine norm, if `affine`.
fn affine(shape: &[usize], affine: bool) -> (Option<Parameter>, Option<Parameter>) {
    let make = |name: &str, v: f32| Parameter::new(name, Tensor::from_elem(IxDyn(shape), v));
    if affine {
        (Some(make("weight", 1.0)), Some(make("bias", 0.0)))
    } else {
        (None, None)
    }
}

/// Layer normalization over the trailing axes `normalized_shape` ([`Var::layer_norm`]),
/// with an optional elementwise affine map.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    /// The trailing axes normalized over.
    pub normalized_shape: Vec<usize>,
    /// Elementwise scale of shape `normalized_shape`, if affine.
    pub weight: Option<Parameter>,
    /// Elementwise shift of shape `normalized_shape`, if affine.
    pub bias: Option<Parameter>,
    /// Added to the variance.
    pub eps: f32,
}

impl LayerNorm {
    /// Normalization over the trailing axes `normalized_shape`, `ε = 10⁻⁵`; with
    /// `affine`, a weight of ones and a bias of zeros named `weight` and `bias`.
    pub fn new(normalized_shape: &[usize], affine: bool) -> Self {
        let (weight, bias) = self::affine(normalized_shape, affine);
        LayerNorm {
            normalized_shape: normalized_shape.to_vec(),
            weight,
            bias,
            eps: EPS,
        }
    }
}

impl Module for LayerNorm {
    fn visit(&self, v: &mut Visitor<'_>) {
        v.param("weight", self.weight.as_ref());
        v.param("bias", self.bias.as_ref());
    }
}

impl Layer for LayerNorm {
    fn forward<'t>(&self, x: &Var<'t>) -> Var<'t> {
        let tape = x.tape();
        let (w, b) = (
            self.weight.as_ref().map(|w| tape.param(w)),
            self.bias.as_ref().map(|b| tape.param(b)),
        );
        x.layer_norm(&self.normalized_shape, w.as_ref(), b.as_ref(), self.eps)
    }
}

/// Batch normalization over axis 1 of `[N, C, …]` ([`Var::batch_norm`]), with an
/// optional per-channel affine map and running statistics kept as buffers
/// (`running_mean`, `running_var`: saved with the parameters, never trained).
///
/// While its [`Mode`] trains, a forward pass normalizes by the batch's statistics and
/// updates the running ones (on any tape, recording or not, as PyTorch does); while it
/// evaluates, it normalizes by the running ones.
#[derive(Clone, Debug)]
pub struct BatchNorm {
    /// Per-channel scale `[C]`, if affine.
    pub weight: Option<Parameter>,
    /// Per-channel shift `[C]`, if affine.
    pub bias: Option<Parameter>,
    /// Running mean `[C]`, a buffer.
    pub running_mean: Parameter,
    /// Running (unbiased) variance `[C]`, a buffer.
    pub running_var: Parameter,
    /// Weight of each batch in the running statistics.
    pub momentum: f32,
    /// Added to the variance.
    pub eps: f32,
    /// Training or evaluation.
    pub mode: Mode,
}

impl BatchNorm {
    /// Batch norm of `channels` channels with PyTorch's defaults: momentum 0.1,
    /// `ε = 10⁻⁵`, running mean 0 and variance 1, training; with `affine`, a weight of
    /// ones and a bias of zeros. Parameters and buffers are named `weight`, `bias`,
    /// `running_mean` and `running_var`.
    pub fn new(channels: usize, affine: bool) -> Self {
        let (weight, bias) = self::affine(&[channels], affine);
        let stats = RunningStats::new(channels);
        BatchNorm {
            weight,
            bias,
            running_mean: Parameter::new("running_mean", stats.mean),
            running_var: Parameter::new("running_var", stats.var),
            momentum: stats.momentum,
            eps: EPS,
            mode: Mode::new(),
        }
    }

    /// The running statistics now.
    pub fn running(&self) -> RunningStats {
        RunningStats {
            mean: (*self.running_mean.value()).clone(),
            var: (*self.running_var.value()).clone(),
            momentum: self.momentum,
        }
    }
}

impl Module for BatchNorm {
    fn visit(&self, v: &mut Visitor<'_>) {
        v.param("weight", self.weight.as_ref());
        v.param("bias", self.bias.as_ref());
        v.buffer("running_mean", &self.running_mean);
        v.buffer("running_var", &self.running_var);
        v.mode(&self.mode);
    }
}

impl Layer for BatchNorm {
    fn forward<'t>(&self, x: &Var<'t>) -> Var<'t> {
        let tape = x.tape();
        let (w, b) = (
            self.weight.as_ref().map(|w| tape.param(w)),
            self.bias.as_ref().map(|b| tape.param(b)),
        );
        let mut stats = self.running();
        if !self.mode.is_training() {
            return x.batch_norm(
                BatchNormMode::Eval(&stats),
                w.as_ref(),
                b.as_ref(),
                self.eps,
            );
        }
        let mode = BatchNormMode::Train(Some(&mut stats));
        let y = x.batch_norm(mode, w.as_ref(), b.as_ref(), self.eps);
        self.running_mean.set_value(stats.mean);
        self.running_var.set_value(stats.var);
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tape;
    use crate::gradcheck::random;

    #[test]
    fn layer_norm_is_the_functional_op() {
        let norm = LayerNorm::new(&[3, 4], true);
        norm.weight
            .as_ref()
            .unwrap()
            .set_value(random(&[3, 4], 0.5, 1.5, 1));
        let tape = Tape::new();
        let x = tape.constant(random(&[2, 3, 4], -1.0, 1.0, 2));
        let y = norm.forward(&x);
        let w = tape.constant((*norm.weight.as_ref().unwrap().value()).clone());
        assert_eq!(
            y.value(),
            x.layer_norm(&[3, 4], Some(&w), None, 1e-5).value()
        );
        y.square().sum().backward();
        assert!(norm.parameters().iter().all(|p| p.grad().is_some()));
        assert!(LayerNorm::new(&[4], false).parameters().is_empty());
    }

    #[test]
    fn batch_norm_updates_its_buffers_while_training_only() {
        let bn = BatchNorm::new(2, true);
        let x = random(&[4, 2, 3, 3], -1.0, 3.0, 3);
        let tape = Tape::new();
        let xv = tape.constant(x.clone());
        let y = bn.forward(&xv);
        let mut want = RunningStats::new(2);
        let expected = xv.batch_norm(BatchNormMode::Train(Some(&mut want)), None, None, 1e-5);
        assert_eq!(y.value(), expected.value());
        assert_eq!(bn.running(), want);
        assert_ne!(want, RunningStats::new(2));

        bn.set_training(false);
        let y = bn.forward(&xv);
        assert_eq!(
            bn.running(),
            want,
            "evaluation leaves the running statistics"
        );
        assert_eq!(
            y.value(),
            xv.batch_norm(BatchNormMode::Eval(&want), None, None, 1e-5)
                .value()
        );
        let names: Vec<String> = bn.state().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["weight", "bias", "running_mean", "running_var"]);
        assert_eq!(bn.parameters().len(), 2);
    }
}
