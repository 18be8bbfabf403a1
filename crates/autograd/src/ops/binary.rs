//! Broadcasting binary functions beyond arithmetic (for which see [`arith`](super::arith)):
//! the power `aᵇ` of two values and the elementwise minimum and maximum.
//!
//! Backward sums each input's gradient back to its own shape ([`sum_to`]), as in
//! arithmetic.
//!
//! Methods on [`Var`]: [`pow`](Var::pow), [`minimum`](Var::minimum).

use std::cmp::Ordering;

use ndarray::{IxDyn, Zip};

use crate::Tensor;
use crate::tape::{Var, op1};
use crate::tensor::{broadcast_for, sum_to, zip_broadcast};

/// `f(a, b, c)` elementwise, all three broadcast to `shape`.
fn zip3(
    shape: &[usize],
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    f: impl Fn(f32, f32, f32) -> f32,
) -> Tensor {
    let shape = IxDyn(shape);
    Zip::from(a.broadcast(shape.clone()).expect("broadcastable"))
        .and(b.broadcast(shape.clone()).expect("broadcastable"))
        .and(c.broadcast(shape).expect("broadcastable"))
        .map_collect(|&a, &b, &c| f(a, b, c))
}

impl<'t> Var<'t> {
    /// `selfᵉˣᵖᵒⁿᵉⁿᵗ` elementwise, broadcasting, as `torch.pow(a, b)`. A negative base gives
    /// NaN unless its exponent is a whole number. Gradients as PyTorch's: `b·aᵇ⁻¹` for the
    /// base (0 where `b = 0`) and `aᵇ·ln a` for the exponent (0 where `a = 0` and
    /// `b ≥ 0`; NaN for a negative base, whose logarithm is not real).
    ///
    /// # Panics
    /// If the shapes do not broadcast.
    #[track_caller]
    pub fn pow(&self, exponent: &Var<'t>) -> Var<'t> {
        let shape = broadcast_for("pow", self.shape(), exponent.shape());
        let (a, b) = (self.shared(), exponent.shared());
        let out = zip_broadcast(&a, &b, f32::powf);
        op1(
            self.tape(),
            "pow",
            &[self, exponent],
            out,
            move |g, needs| {
                let ga = needs[0].then(|| {
                    let d = zip3(&shape, &g, &a, &b, |g, a, b| {
                        if b == 0.0 {
                            0.0
                        } else {
                            g * b * a.powf(b - 1.0)
                        }
                    });
                    sum_to(d, a.shape())
                });
                let gb = needs[1].then(|| {
                    let d = zip3(&shape, &g, &a, &b, |g, a, b| {
                        if a == 0.0 && b >= 0.0 {
                            0.0
                        } else {
                            g * a.powf(b) * a.ln()
                        }
                    });
                    sum_to(d, b.shape())
                });
                vec![ga, gb]
            },
        )
    }

    /// Elementwise `min(self, other)`, broadcasting, as `torch.minimum`: NaN if either is
    /// NaN. Gradients as PyTorch's: split evenly on ties, whole to both where a NaN is.
    ///
    /// # Panics
    /// If the shapes do not broadcast.
    #[track_caller]
    pub fn minimum(&self, other: &Var<'t>) -> Var<'t> {
        self.extremum("minimum", other, Ordering::Less)
    }

    /// Elementwise `max(self, other)`, broadcasting, as `torch.maximum`; see
    /// [`Var::minimum`].
    ///
    /// # Panics
    /// If the shapes do not broadcast.
    #[track_caller]
    pub fn maximum(&self, other: &Var<'t>) -> Var<'t> {
        self.extremum("maximum", other, Ordering::Greater)
    }

    /// The operand that compares as `wins` against the other, elementwise.
    #[track_caller]
    fn extremum(&self, op: &str, other: &Var<'t>, wins: Ordering) -> Var<'t> {
        broadcast_for(op, self.shape(), other.shape());
        let (a, b) = (self.shared(), other.shared());
        let out = zip_broadcast(&a, &b, |x, y| match x.partial_cmp(&y) {
            None => f32::NAN,
            Some(o) if o == wins => x,
            Some(_) => y,
        });
        // The share of the gradient each operand gets: 1 to the winner, ½ each on ties,
        // 1 to both where a NaN is (PyTorch's rule).
        let share = move |x: f32, y: f32| match x.partial_cmp(&y) {
            None => 1.0,
            Some(Ordering::Equal) => 0.5,
            Some(o) if o == wins => 1.0,
            Some(_) => 0.0,
        };
        op1(self.tape(), op, &[self, other], out, move |g, needs| {
            let ga = needs[0].then(|| {
                let d = zip3(g.shape(), &g, &a, &b, |g, x, y| g * share(x, y));
                sum_to(d, a.shape())
            });
            let gb = needs[1].then(|| {
                let d = zip3(g.shape(), &g, &b, &a, |g, y, x| g * share(y, x));
                sum_to(d, b.shape())
            });
            vec![ga, gb]
        })
    }
}

#[cfg(test)]
mod tests {
    use ndarray::IxDyn;

    use crate::gradcheck::{assert_gradients, random};
    use crate::{Tape, Tensor};

    /// Shape pairs that exercise broadcasting on either side.
    const PAIRS: &[(&[usize], &[usize])] = &[
        (&[3, 5], &[3, 5]),
        (&[2, 3, 4], &[4]),
        (&[2, 1, 4], &[3, 1]),
        (&[], &[2, 3]),
    ];

    #[test]
    fn power_of_two_values() {
        for (i, (sa, sb)) in PAIRS.iter().enumerate() {
            let base = random(sa, 0.5, 2.0, i as u64);
            let exponent = random(sb, -2.0, 2.0, 10 + i as u64);
            assert_gradients(vec![base.clone(), exponent.clone()], |v| v[0].pow(&v[1]));
            assert_gradients(vec![exponent, base], |v| v[1].pow(&v[0]));
        }
    }

    #[test]
    fn power_at_a_zero_base_and_a_zero_exponent() {
        let tape = Tape::new();
        let t = |v: &[f32]| Tensor::from_shape_vec(IxDyn(&[3]), v.to_vec()).unwrap();
        let a = tape.var(t(&[0.0, 0.0, 2.0]));
        let b = tape.var(t(&[2.0, 0.0, 0.0]));
        let y = a.pow(&b);
        assert_eq!(y.value().as_slice().unwrap(), &[0.0, 1.0, 1.0]);
        let g = y.sum().backward();
        assert_eq!(g.get(&a).unwrap().as_slice().unwrap(), &[0.0, 0.0, 0.0]);
        assert_eq!(
            g.get(&b).unwrap().as_slice().unwrap(),
            &[0.0, 0.0, 2f32.ln()]
        );
    }

    #[test]
    fn maximum_broadcasts_and_splits_ties() {
        for (i, (sa, sb)) in PAIRS.iter().enumerate() {
            // Values kept apart so no pair sits within ε of a tie.
            let a = random(sa, -1.0, 1.0, i as u64).mapv(|x| (x * 10.0).round() / 5.0 + 0.1);
            let b = random(sb, -1.0, 1.0, 50 + i as u64).mapv(|x| (x * 10.0).round() / 5.0);
            assert_gradients(vec![a, b], |v| v[0].maximum(&v[1]));
        }
        let tape = Tape::new();
        let a = tape.var(Tensor::from_elem(IxDyn(&[2]), 1.0));
        let b = tape.var(Tensor::from_elem(IxDyn(&[2]), 1.0));
        let g = a.maximum(&b).sum().backward();
        assert_eq!(g.get(&a).unwrap()[0], 0.5);
        assert_eq!(g.get(&b).unwrap()[1], 0.5);
    }

    #[test]
    fn minimum_broadcasts_and_splits_ties() {
        for (i, (sa, sb)) in PAIRS.iter().enumerate() {
            // Values kept apart so no pair sits within ε of a tie.
            let a = random(sa, -1.0, 1.0, i as u64).mapv(|x| (x * 10.0).round() / 5.0 + 0.1);
            let b = random(sb, -1.0, 1.0, 50 + i as u64).mapv(|x| (x * 10.0).round() / 5.0);
            assert_gradients(vec![a, b], |v| v[0].minimum(&v[1]));
        }
        let tape = Tape::new();
        let a = tape.var(Tensor::from_shape_vec(IxDyn(&[3]), vec![1.0, 2.0, f32::NAN]).unwrap());
        let b = tape.var(Tensor::from_elem(IxDyn(&[3]), 1.0));
        let y = a.minimum(&b);
        assert_eq!(&y.value().as_slice().unwrap()[..2], &[1.0, 1.0]);
        assert!(y.value()[2].is_nan());
        let g = y.sum_axes(&[0], false).backward();
        assert_eq!(g.get(&a).unwrap()[0], 0.5);
        assert_eq!(g.get(&b).unwrap()[0], 0.5);
        assert_eq!(g.get(&b).unwrap()[1], 1.0);
    }

    #[test]
    #[should_panic(expected = "minimum: shapes [2, 3] and [4] do not broadcast")]
    fn minimum_names_shapes_that_do_not_broadcast() {
        let tape = Tape::new();
        let a = tape.var(Tensor::zeros(IxDyn(&[2, 3])));
        a.minimum(&tape.var(Tensor::zeros(IxDyn(&[4]))));
    }

    #[test]
    #[should_panic(expected = "pow: shapes [2] and [3, 1, 4] do not broadcast")]
    fn pow_names_shapes_that_do_not_broadcast() {
        let tape = Tape::new();
        let a = tape.var(Tensor::zeros(IxDyn(&[2])));
        a.pow(&tape.var(Tensor::zeros(IxDyn(&[3, 1, 4]))));
    }
}
