//! Binary arithmetic with NumPy broadcasting (`+ − × ÷`), scalar arithmetic,
//! and the operator overloads on [`Var`], with the scalar on either side (`2.0 * &x`,
//! `1.0 - &x`).
//!
//! Backward sums each input's gradient back to its own shape ([`sum_to`]).
//!
//! Methods on [`Var`]: [`add`](Var::add), [`sub`](Var::sub), [`mul`](Var::mul),
//! [`div`](Var::div) (a value or a scalar, see [`Operand`]), [`maximum`](Var::maximum),
//! [`neg`](Var::neg), and for a scalar [`add_scalar`](Var::add_scalar),
//! [`mul_scalar`](Var::mul_scalar), [`rsub_scalar`](Var::rsub_scalar),
//! [`rdiv_scalar`](Var::rdiv_scalar). The operators `+ − × ÷` and unary `−` take owned or
//! borrowed values and `f32` on either side: `&a * &b`, `x - 0.5`, `1.0 - &x`.

use std::ops::{Add, Div, Mul, Neg, Sub};

use crate::tape::{Var, op1};
use crate::tensor::{broadcast_for, sum_to, zip_broadcast};

/// The other side of `add`, `sub`, `mul` and `div`: a value or a scalar, so that
/// `x.add(&y)`, `x.add(y)` and `x.add(1.0)` all work.
#[derive(Clone, Debug)]
pub enum Operand<'a, 't> {
    /// A borrowed value.
    Var(&'a Var<'t>),
    /// An owned value.
    Owned(Var<'t>),
    /// A scalar.
    Scalar(f32),
}

impl<'a, 't> From<&'a Var<'t>> for Operand<'a, 't> {
    fn from(v: &'a Var<'t>) -> Self {
        Operand::Var(v)
    }
}

impl<'t> From<Var<'t>> for Operand<'_, 't> {
    fn from(v: Var<'t>) -> Self {
        Operand::Owned(v)
    }
}

impl From<f32> for Operand<'_, '_> {
    fn from(c: f32) -> Self {
        Operand::Scalar(c)
    }
}

impl<'t> Var<'t> {
    /// `self + other` for a value (broadcasting) or a scalar.
    #[track_caller]
    pub fn add<'a>(&self, other: impl Into<Operand<'a, 't>>) -> Var<'t>
    where
        't: 'a,
    {
        match other.into() {
            Operand::Var(v) => self.add_var(v),
            Operand::Owned(v) => self.add_var(&v),
            Operand::Scalar(c) => self.add_scalar(c),
        }
    }

    /// `self − other` for a value (broadcasting) or a scalar.
    #[track_caller]
    pub fn sub<'a>(&self, other: impl Into<Operand<'a, 't>>) -> Var<'t>
    where
        't: 'a,
    {
        match other.into() {
            Operand::Var(v) => self.sub_var(v),
            Operand::Owned(v) => self.sub_var(&v),
            Operand::Scalar(c) => self.add_scalar(-c),
        }
    }

    /// `self ⊙ other` (elementwise) for a value (broadcasting) or a scalar.
    #[track_caller]
    pub fn mul<'a>(&self, other: impl Into<Operand<'a, 't>>) -> Var<'t>
    where
        't: 'a,
    {
        match other.into() {
            Operand::Var(v) => self.mul_var(v),
            Operand::Owned(v) => self.mul_var(&v),
            Operand::Scalar(c) => self.mul_scalar(c),
        }
    }

    /// `self ÷ other` (elementwise) for a value (broadcasting) or a scalar.
    #[track_caller]
    pub fn div<'a>(&self, other: impl Into<Operand<'a, 't>>) -> Var<'t>
    where
        't: 'a,
    {
        match other.into() {
            Operand::Var(v) => self.div_var(v),
            Operand::Owned(v) => self.div_var(&v),
            Operand::Scalar(c) => self.mul_scalar(1.0 / c),
        }
    }

    #[track_caller]
    fn add_var(&self, other: &Var<'t>) -> Var<'t> {
        broadcast_for("add", self.shape(), other.shape());
        let (sa, sb) = (self.shape().to_vec(), other.shape().to_vec());
        let out = zip_broadcast(self.value(), other.value(), |a, b| a + b);
        op1(self.tape(), "add", &[self, other], out, move |g, needs| {
            let gb = needs[1].then(|| sum_to(g.clone(), &sb));
            vec![needs[0].then(|| sum_to(g, &sa)), gb]
        })
    }

    #[track_caller]
    fn sub_var(&self, other: &Var<'t>) -> Var<'t> {
        broadcast_for("sub", self.shape(), other.shape());
        let (sa, sb) = (self.shape().to_vec(), other.shape().to_vec());
        let out = zip_broadcast(self.value(), other.value(), |a, b| a - b);
        op1(self.tape(), "sub", &[self, other], out, move |g, needs| {
            let gb = needs[1].then(|| sum_to(-&g, &sb));
            vec![needs[0].then(|| sum_to(g, &sa)), gb]
        })
    }

    #[track_caller]
    fn mul_var(&self, other: &Var<'t>) -> Var<'t> {
        broadcast_for("mul", self.shape(), other.shape());
        let (a, b) = (self.shared(), other.shared());
        let out = zip_broadcast(&a, &b, |x, y| x * y);
        op1(self.tape(), "mul", &[self, other], out, move |g, needs| {
            let ga = needs[0].then(|| sum_to(zip_broadcast(&g, &b, |g, y| g * y), a.shape()));
            let gb = needs[1].then(|| sum_to(zip_broadcast(&g, &a, |g, x| g * x), b.shape()));
            vec![ga, gb]
        })
    }

    #[track_caller]
    fn div_var(&self, other: &Var<'t>) -> Var<'t> {
        broadcast_for("div", self.shape(), other.shape());
        let (a, b) = (self.shared(), other.shared());
        let out = zip_broadcast(&a, &b, |x, y| x / y);
        op1(self.tape(), "div", &[self, other], out, move |g, needs| {
            let ga = needs[0].then(|| sum_to(zip_broadcast(&g, &b, |g, y| g / y), a.shape()));
            // ∂(a/b)/∂b = −a/b²; `g·a` is broadcast first, then divided by b².
            let gb = needs[1].then(|| {
                let ga_num = zip_broadcast(&g, &a, |g, x| g * x);
                sum_to(zip_broadcast(&ga_num, &b, |n, y| -n / (y * y)), b.shape())
            });
            vec![ga, gb]
        })
    }

    /// `self + c` for a scalar `c`.
    pub fn add_scalar(&self, c: f32) -> Var<'t> {
        self.unary_op("add_scalar", self.value().mapv(|x| x + c), |g, _| {
            vec![Some(g)]
        })
    }

    /// `self · c` for a scalar `c`.
    pub fn mul_scalar(&self, c: f32) -> Var<'t> {
        self.unary_op("mul_scalar", self.value().mapv(|x| x * c), move |g, _| {
            vec![Some(g * c)]
        })
    }

    /// `c − self` for a scalar `c` (what `c - &x` computes).
    pub fn rsub_scalar(&self, c: f32) -> Var<'t> {
        self.unary_op("rsub_scalar", self.value().mapv(|x| c - x), |g, _| {
            vec![Some(-g)]
        })
    }

    /// `c ÷ self` for a scalar `c` (what `c / &x` computes).
    pub fn rdiv_scalar(&self, c: f32) -> Var<'t> {
        let x = self.shared();
        let out = x.mapv(|x| c / x);
        self.unary_op("rdiv_scalar", out, move |mut g, _| {
            g.zip_mut_with(&*x, |g, &x| *g *= -c / (x * x));
            vec![Some(g)]
        })
    }

    /// `−self`.
    pub fn neg(&self) -> Var<'t> {
        self.mul_scalar(-1.0)
    }
}

/// Implements a binary operator for every owned/borrowed combination of `Var`s and for
/// a scalar on either side, all forwarding to one method.
macro_rules! binary_operator {
    ($trait:ident, $method:ident, $var_fn:ident, $scalar:expr, $scalar_left:expr) => {
        impl<'t> $trait<&Var<'t>> for f32 {
            type Output = Var<'t>;
            fn $method(self, rhs: &Var<'t>) -> Var<'t> {
                let f: fn(f32, &Var<'t>) -> Var<'t> = $scalar_left;
                f(self, rhs)
            }
        }
        impl<'t> $trait<Var<'t>> for f32 {
            type Output = Var<'t>;
            fn $method(self, rhs: Var<'t>) -> Var<'t> {
                let f: fn(f32, &Var<'t>) -> Var<'t> = $scalar_left;
                f(self, &rhs)
            }
        }
        impl<'t> $trait<&Var<'t>> for &Var<'t> {
            type Output = Var<'t>;
            #[track_caller]
            fn $method(self, rhs: &Var<'t>) -> Var<'t> {
                Var::$var_fn(self, rhs)
            }
        }
        impl<'t> $trait<Var<'t>> for Var<'t> {
            type Output = Var<'t>;
            #[track_caller]
            fn $method(self, rhs: Var<'t>) -> Var<'t> {
                Var::$var_fn(&self, &rhs)
            }
        }
        impl<'t> $trait<&Var<'t>> for Var<'t> {
            type Output = Var<'t>;
            #[track_caller]
            fn $method(self, rhs: &Var<'t>) -> Var<'t> {
                Var::$var_fn(&self, rhs)
            }
        }
        impl<'t> $trait<Var<'t>> for &Var<'t> {
            type Output = Var<'t>;
            #[track_caller]
            fn $method(self, rhs: Var<'t>) -> Var<'t> {
                Var::$var_fn(self, &rhs)
            }
        }
        impl<'t> $trait<f32> for &Var<'t> {
            type Output = Var<'t>;
            fn $method(self, c: f32) -> Var<'t> {
                let f: fn(&Var<'t>, f32) -> Var<'t> = $scalar;
                f(self, c)
            }
        }
        impl<'t> $trait<f32> for Var<'t> {
            type Output = Var<'t>;
            fn $method(self, c: f32) -> Var<'t> {
                let f: fn(&Var<'t>, f32) -> Var<'t> = $scalar;
                f(&self, c)
            }
        }
    };
}

binary_operator!(Add, add, add_var, |v, c| v.add_scalar(c), |c, v| v
    .add_scalar(c));
binary_operator!(Sub, sub, sub_var, |v, c| v.add_scalar(-c), |c, v| v
    .rsub_scalar(c));
binary_operator!(Mul, mul, mul_var, |v, c| v.mul_scalar(c), |c, v| v
    .mul_scalar(c));
binary_operator!(Div, div, div_var, |v, c| v.mul_scalar(1.0 / c), |c, v| v
    .rdiv_scalar(c));

impl<'t> Neg for &Var<'t> {
    type Output = Var<'t>;
    fn neg(self) -> Var<'t> {
        Var::neg(self)
    }
}

impl<'t> Neg for Var<'t> {
    type Output = Var<'t>;
    fn neg(self) -> Var<'t> {
        Var::neg(&self)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::Tensor;
    use crate::gradcheck::{assert_gradients, random};

    /// Shape pairs that exercise broadcasting: equal, leading axes, size-1 axes on either
    /// side, scalars, odd sizes.
    const PAIRS: &[(&[usize], &[usize])] = &[
        (&[3, 5], &[3, 5]),
        (&[2, 3, 4], &[4]),
        (&[2, 1, 4], &[3, 1]),
        (&[1], &[7]),
        (&[], &[2, 3]),
        (&[5, 1, 1], &[1, 2, 3]),
    ];

    #[test]
    fn add_sub_mul_div_broadcast() {
        for (i, (sa, sb)) in PAIRS.iter().enumerate() {
            let a = random(sa, -1.0, 1.0, i as u64);
            let b = random(sb, 0.5, 2.0, 100 + i as u64);
            let inputs = vec![a, b];
            assert_gradients(inputs.clone(), |v| &v[0] + &v[1]);
            assert_gradients(inputs.clone(), |v| &v[0] - &v[1]);
            assert_gradients(inputs.clone(), |v| &v[0] * &v[1]);
            assert_gradients(inputs.clone(), |v| &v[0] / &v[1]);
            assert_gradients(inputs.clone(), |v| v[1].div(v[0].add_scalar(3.0)));
        }
    }

    /// A random shape and a random shape that broadcasts with it: trailing axes of the
    /// first, each kept or set to 1, and either one may be the longer.
    fn broadcast_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
        (
            prop::collection::vec(1usize..5, 0..4),
            any::<u64>(),
            any::<bool>(),
        )
            .prop_map(|(full, bits, swap)| {
                let drop = (bits as usize) % (full.len() + 1);
                let other: Vec<usize> = full[drop..]
                    .iter()
                    .enumerate()
                    .map(|(i, &d)| if bits >> (8 + i) & 1 == 1 { 1 } else { d })
                    .collect();
                if swap { (other, full) } else { (full, other) }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn arithmetic_on_random_broadcast_shapes((sa, sb) in broadcast_pair(), seed in any::<u64>()) {
            let a = random(&sa, -1.0, 1.0, seed);
            let b = random(&sb, 0.5, 2.0, seed ^ 1);
            let inputs = vec![a, b];
            assert_gradients(inputs.clone(), |v| &v[0] + &v[1]);
            assert_gradients(inputs.clone(), |v| &v[0] - &v[1]);
            assert_gradients(inputs.clone(), |v| &v[0] * &v[1]);
            assert_gradients(inputs, |v| &v[0] / &v[1]);
        }
    }

    #[test]
    fn scalar_ops_and_neg() {
        let x = random(&[4, 3], -2.0, 2.0, 7);
        assert_gradients(vec![x.clone()], |v| &v[0] * 2.5 + 1.0);
        assert_gradients(vec![x.clone()], |v| (&v[0] - 0.5) / 4.0);
        assert_gradients(vec![x.clone()], |v| -&v[0]);
        assert_gradients(vec![x.clone()], |v| {
            v[0].add(1.0).mul(3.0).sub(0.5).div(2.0)
        });
        assert_gradients(vec![x], |v| 2.0 * &v[0] + (1.0 - v[0].clone()));
        let pos = random(&[3, 2], 0.5, 2.0, 8);
        assert_gradients(vec![pos], |v| 3.0 / &v[0] + 1.0 / v[0].clone());
    }

    #[test]
    fn scalar_on_either_side_agrees() {
        let tape = crate::Tape::new();
        let x = tape.constant(random(&[5], -2.0, 2.0, 9).mapv(|v| v + 3.0));
        assert_eq!((2.0 * &x).value(), (&x * 2.0).value());
        assert_eq!((1.0 - &x).value(), (-(&x - 1.0)).value());
        let recip = (1.0 / &x).value().clone();
        x.value()
            .iter()
            .zip(&recip)
            .for_each(|(&v, &r)| assert_eq!(r, 1.0 / v));
        assert_eq!(x.add(&x).value(), x.add(x.clone()).value());
    }

    #[test]
    #[should_panic(expected = "add: shapes [2, 3] and [4] do not broadcast")]
    fn broadcast_errors_name_the_op() {
        let tape = crate::Tape::new();
        let a = tape.constant(Tensor::zeros(ndarray::IxDyn(&[2, 3])));
        let b = tape.constant(Tensor::zeros(ndarray::IxDyn(&[4])));
        let _ = &a + &b;
    }
}
