//! Dropout, inverted as in PyTorch: survivors are scaled at training time, so evaluation
//! is the identity and needs no rescaling.
//!
//! The random mask comes from the caller's generator, so a seeded generator gives the
//! same mask again (the finite-difference test relies on it). Backward keeps the mask
//! packed to one bit per element.
//!
//! Method on [`Var`]: [`dropout`](Var::dropout).

use rand::Rng;

use crate::Tensor;
use crate::tape::Var;
use crate::tensor::Saved;

impl<'t> Var<'t> {
    /// Inverted dropout, as `torch.nn.functional.dropout(x, p, training)`: when
    /// `training`, each element is zeroed with probability `p` and the others scaled by
    /// `1/(1 − p)`, which keeps the expected value; otherwise the value passes unchanged
    /// (as it does for `p = 0`). The gradient is masked and scaled the same way.
    ///
    /// # Panics
    /// If `p` is not in `[0, 1)`.
    #[track_caller]
    pub fn dropout(&self, p: f32, training: bool, rng: &mut impl Rng) -> Var<'t> {
        assert!(
            (0.0..1.0).contains(&p),
            "dropout: p must be in [0, 1), got {p}"
        );
        if !training || p == 0.0 {
            return self.clone();
        }
        let keep = 1.0 - p as f64;
        let scale = 1.0 / (1.0 - p);
        let mask = Tensor::from_shape_simple_fn(self.value().raw_dim(), || {
            if rng.random_bool(keep) { 1.0 } else { 0.0 }
        });
        let mut out = self.value() * &mask;
        out *= scale;
        let mask = Saved::new(mask.into());
        self.unary_op("dropout", out, move |mut g, _| {
            g.zip_mut_with(&*mask.tensor(), |g, &m| *g *= m * scale);
            vec![Some(g)]
        })
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use crate::gradcheck::{assert_gradients, random};
    use crate::{Tape, Tensor};

    /// No golden case: PyTorch's mask comes from its own generator. Seeding ours the same
    /// on every call fixes the mask, which makes dropout a fixed linear map that finite
    /// differences can check.
    #[test]
    fn gradient_with_a_fixed_mask() {
        let x = random(&[4, 5], -1.0, 1.0, 1);
        for p in [0.2, 0.5, 0.9] {
            assert_gradients(vec![x.clone()], |v| {
                v[0].dropout(p, true, &mut StdRng::seed_from_u64(7))
            });
        }
    }

    #[test]
    fn zeroes_a_fraction_p_and_keeps_the_mean() {
        let tape = Tape::eval();
        let x = tape.constant(Tensor::ones(ndarray::IxDyn(&[100_000])));
        let mut rng = StdRng::seed_from_u64(3);
        let y = x.dropout(0.3, true, &mut rng);
        let zeros = y.value().iter().filter(|&&v| v == 0.0).count() as f32 / 1e5;
        assert!((zeros - 0.3).abs() < 0.01, "{zeros}");
        assert!(
            y.value()
                .iter()
                .all(|&v| v == 0.0 || (v - 1.0 / 0.7).abs() < 1e-6)
        );
        assert!((y.mean().item() - 1.0).abs() < 0.02);
        // A second call draws another mask.
        assert_ne!(x.dropout(0.3, true, &mut rng).value(), y.value());
    }

    #[test]
    fn identity_when_not_training() {
        let tape = Tape::new();
        let x = tape.var(random(&[3, 3], -1.0, 1.0, 2));
        let mut rng = StdRng::seed_from_u64(0);
        assert_eq!(x.dropout(0.5, false, &mut rng).value(), x.value());
        assert_eq!(x.dropout(0.0, true, &mut rng).value(), x.value());
        assert!(tape.is_empty());
    }

    #[test]
    #[should_panic(expected = "dropout: p must be in [0, 1), got 1")]
    fn p_of_one_is_refused() {
        let tape = Tape::new();
        let x = tape.var(random(&[3], -1.0, 1.0, 2));
        x.dropout(1.0, true, &mut StdRng::seed_from_u64(0));
    }

    #[test]
    #[should_panic(expected = "dropout: p must be in [0, 1), got -0.1")]
    fn negative_p_is_refused() {
        let tape = Tape::new();
        let x = tape.var(random(&[3], -1.0, 1.0, 2));
        x.dropout(-0.1, false, &mut StdRng::seed_from_u64(0));
    }
}
