//! The affine layer `y = x·Wᵀ + b`, PyTorch's `nn.Linear`.

use rand::Rng;

use crate::nn::{Layer, Module, Visitor};
use crate::{Parameter, Var, init};

/// `y = x·Wᵀ + b` over the last axis of `x [.., in]` ([`Var::linear`]).
#[derive(Clone, Debug)]
pub struct Linear {
    /// `W [out, in]`.
    pub weight: Parameter,
    /// `b [out]`, if the layer has one.
    pub bias: Option<Parameter>,
}

impl Linear {
    /// A layer from `in_features` to `out_features`, initialized as PyTorch does
    /// ([`init::default_uniform`], then [`init::default_bias`] if `bias`), drawing from
    /// `rng` in that order. The parameters are named `weight` and `bias`.
    pub fn new(in_features: usize, out_features: usize, bias: bool, rng: &mut impl Rng) -> Self {
        let shape = [out_features, in_features];
        let weight = Parameter::new("weight", init::default_uniform(&shape, rng));
        let bias =
            bias.then(|| Parameter::new("bias", init::default_bias(out_features, &shape, rng)));
        Linear { weight, bias }
    }
}

impl Module for Linear {
    fn visit(&self, v: &mut Visitor<'_>) {
        v.param("weight", &self.weight);
        v.param("bias", self.bias.as_ref());
    }
}

impl Layer for Linear {
    fn forward<'t>(&self, x: &Var<'t>) -> Var<'t> {
        let tape = x.tape();
        let b = self.bias.as_ref().map(|b| tape.param(b));
        x.linear(&tape.param(&self.weight), b.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tape;
    use crate::gradcheck::random;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn initialized_as_pytorch_draws_weight_then_bias() {
        let layer = Linear::new(5, 3, true, &mut StdRng::seed_from_u64(7));
        let rng = &mut StdRng::seed_from_u64(7);
        let w = init::default_uniform(&[3, 5], rng);
        let b = init::default_bias(3, &[3, 5], rng);
        assert_eq!(*layer.weight.value(), w);
        assert_eq!(*layer.bias.as_ref().unwrap().value(), b);
        let bound = 1.0 / 5f32.sqrt();
        assert!(w.iter().chain(&b).all(|v| v.abs() <= bound));
        assert!(Linear::new(5, 3, false, rng).bias.is_none());
    }

    #[test]
    fn forward_is_the_linear_op() {
        let layer = Linear::new(4, 2, true, &mut StdRng::seed_from_u64(1));
        let tape = Tape::new();
        let x = tape.constant(random(&[3, 4], -1.0, 1.0, 2));
        let y = layer.forward(&x);
        let w = tape.constant((*layer.weight.value()).clone());
        let b = tape.constant((*layer.bias.as_ref().unwrap().value()).clone());
        assert_eq!(y.value(), x.linear(&w, Some(&b)).value());
        y.sum().backward();
        assert!(layer.parameters().iter().all(|p| p.grad().is_some()));
    }
}
