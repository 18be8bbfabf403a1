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

/// PyTorch's default for `nn.Linear` and `nn.Conv2d` weights: `U(−1/√fan_in, 1/√fan_in)`,
/// with `fan_in` the product of all dimensions but the first.
pub fn default_uniform(shape: &[usize], rng: &mut impl Rng) -> Tensor {
    let fan_in: usize = shape.iter().skip(1).product();
    let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
    uniform(shape, -bound, bound, rng)
}
