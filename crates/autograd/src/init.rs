//! Random tensors for initialization and tests, from a seedable generator.

use ndarray::IxDyn;
use rand::Rng;
use rand_distr::{Distribution, Normal, Uniform};

use crate::Tensor;

/// Samples of `N(mean, sd²)`.
pub fn normal(shape: &[usize], mean: f32, sd: f32, rng: &mut impl Rng) -> Tensor {
    let d = Normal::new(mean, sd).expect("finite, non-negative sd");
    Tensor::from_shape_simple_fn(IxDyn(shape), || d.sample(rng))
}

/// Samples of `U(lo, hi)`.
pub fn uniform(shape: &[usize], lo: f32, hi: f32, rng: &mut impl Rng) -> Tensor {
    let d = Uniform::new(lo, hi).expect("lo < hi");
    Tensor::from_shape_simple_fn(IxDyn(shape), || d.sample(rng))
}

/// PyTorch's fan-in of a weight: the product of all its dimensions but the first (also
/// for a transposed conv's `[C_in, C_out, k, k]`, where it is `C_out·k²`).
pub fn fan_in(weight_shape: &[usize]) -> usize {
    weight_shape.iter().skip(1).product()
}

/// `1/√fan_in`, the bound of PyTorch's default weight and bias.
fn default_bound(weight_shape: &[usize]) -> f32 {
    1.0 / (fan_in(weight_shape).max(1) as f32).sqrt()
}

/// PyTorch's default for `nn.Linear` and `nn.Conv2d` weights (Kaiming-uniform with
/// `a = √5`): `U(−1/√fan_in, 1/√fan_in)`, [`fan_in`] of `shape`.
pub fn default_uniform(shape: &[usize], rng: &mut impl Rng) -> Tensor {
    let bound = default_bound(shape);
    uniform(shape, -bound, bound, rng)
}

/// PyTorch's default bias of `len` values for a layer whose weight has shape
/// `weight_shape`: `U(−1/√fan_in, 1/√fan_in)`, drawn after the weight.
pub fn default_bias(len: usize, weight_shape: &[usize], rng: &mut impl Rng) -> Tensor {
    let bound = default_bound(weight_shape);
    uniform(&[len], -bound, bound, rng)
}
