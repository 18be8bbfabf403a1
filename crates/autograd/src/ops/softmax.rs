//! Softmax, log-softmax and log-sum-exp: exponentials normalized over an axis, all
//! shifted by the maximum so no `exp` overflows (`eˣ⁻ᵐ ≤ 1`).
//!
//! With `y = softmax(x)` along a lane, backward is `∂x = y ⊙ (∂y − Σ ∂y ⊙ y)`; with
//! `y = log_softmax(x)`, `∂x = ∂y − eʸ Σ ∂y`; with `y = logsumexp(x)`, `∂x = ∂y · eˣ⁻ʸ`.
//! Softmax and log-softmax keep their output for backward, log-sum-exp its input, the
//! shift and the log of the sum.
//!
//! Methods on [`Var`]: [`softmax`](Var::softmax), [`log_softmax`](Var::log_softmax),
//! [`logsumexp`](Var::logsumexp).

use ndarray::{Axis, IxDyn, Zip};

use crate::Tensor;
use crate::axis::{AxisIndex, resolve_axes};
use crate::tape::Var;

/// The shift for a lane whose maximum is `m`: `m` itself, or 0 when `m` is infinite, as
/// PyTorch does, so an all-`−∞` lane gives `−∞` rather than `NaN` in log-sum-exp.
fn shift(m: f32) -> f32 {
    if m.is_infinite() { 0.0 } else { m }
}

/// `x` with each lane along `axis` replaced by its softmax, or log-softmax when `log`.
fn normalize_lanes(x: &Tensor, axis: usize, log: bool) -> Tensor {
    let mut out = x.clone();
    for mut lane in out.lanes_mut(Axis(axis)) {
        let m = shift(lane.fold(f32::NEG_INFINITY, |m, &v| m.max(v)));
        if log {
            // (x − m) − ln Σ eˣ⁻ᵐ: subtracting m first keeps the digits of x − m.
            let ln_total = lane.fold(0.0, |s, &v| s + (v - m).exp()).ln();
            lane.mapv_inplace(|v| (v - m) - ln_total);
        } else {
            lane.mapv_inplace(|v| (v - m).exp());
            let total = lane.sum();
            lane.mapv_inplace(|v| v / total);
        }
    }
    out
}

impl<'t> Var<'t> {
    /// Softmax along `axis`, `eˣⁱ / Σⱼ eˣʲ`, as `torch.softmax(x, dim)`.
    ///
    /// # Panics
    /// If the axis is out of range.
    #[track_caller]
    pub fn softmax(&self, axis: impl AxisIndex) -> Var<'t> {
        let axis = axis.resolve(self.ndim(), "softmax");
        let y = normalize_lanes(self.value(), axis, false);
        let saved = y.clone();
        self.unary_op("softmax", y, move |mut g, _| {
            Zip::from(g.lanes_mut(Axis(axis)))
                .and(saved.lanes(Axis(axis)))
                .for_each(|mut g, y| {
                    let dot = Zip::from(&g).and(&y).fold(0.0, |s, &g, &y| s + g * y);
                    g.zip_mut_with(&y, |g, &y| *g = y * (*g - dot));
                });
            vec![Some(g)]
        })
    }

    /// Log-softmax along `axis`, `xᵢ − ln Σⱼ eˣʲ`, as `torch.log_softmax(x, dim)`: finite
    /// where the log of [`Var::softmax`] would underflow to `−∞`.
    ///
    /// # Panics
    /// If the axis is out of range.
    #[track_caller]
    pub fn log_softmax(&self, axis: impl AxisIndex) -> Var<'t> {
        let axis = axis.resolve(self.ndim(), "log_softmax");
        let y = normalize_lanes(self.value(), axis, true);
        let saved = y.clone();
        self.unary_op("log_softmax", y, move |mut g, _| {
            Zip::from(g.lanes_mut(Axis(axis)))
                .and(saved.lanes(Axis(axis)))
                .for_each(|mut g, y| {
                    let total = g.sum();
                    g.zip_mut_with(&y, |g, &y| *g -= y.exp() * total);
                });
            vec![Some(g)]
        })
    }

    /// `ln Σ eˣ` over `axes` (none: the value itself), as `torch.logsumexp(x, dim,
    /// keepdim)`; with `keep_dims` the reduced axes stay as size 1. Exact for large
    /// inputs, where `x.exp().sum_axes(..).log()` overflows.
    ///
    /// # Panics
    /// If an axis is out of range or repeated.
    #[track_caller]
    pub fn logsumexp<A: AxisIndex>(&self, axes: &[A], keep_dims: bool) -> Var<'t> {
        let x = self.shared();
        let mut axes = resolve_axes(axes, x.ndim(), "logsumexp");
        axes.sort_unstable();
        // m, Σ eˣ⁻ᵐ and the result, the reduced axes kept as size 1.
        let mut m = (*x).clone();
        for &a in &axes {
            m = m
                .fold_axis(Axis(a), f32::NEG_INFINITY, |&m, &v| m.max(v))
                .insert_axis(Axis(a));
        }
        m.mapv_inplace(shift);
        let mut total = Zip::from(&*x)
            .and_broadcast(&m)
            .map_collect(|&v, &m| (v - m).exp());
        for &a in &axes {
            total = total.sum_axis(Axis(a)).insert_axis(Axis(a));
        }
        let ln_total = total.mapv(f32::ln);
        let kept = Zip::from(&ln_total).and(&m).map_collect(|&l, &m| l + m);
        let mut out_shape = kept.shape().to_vec();
        if !keep_dims {
            for &a in axes.iter().rev() {
                out_shape.remove(a);
            }
        }
        let out = kept
            .into_shape_with_order(IxDyn(&out_shape))
            .expect("same size");
        // eˣ⁻ʸ as e^{(x − m) − ln Σ}: y = m + ln Σ rounded to f32 would cost its last
        // digits when |m| is large.
        self.unary_op("logsumexp", out, move |g, _| {
            let g = g.into_shape_with_order(m.raw_dim()).expect("same size");
            let gx = Zip::from(&*x)
                .and_broadcast(&m)
                .and_broadcast(&ln_total)
                .and_broadcast(&g)
                .map_collect(|&x, &m, &l, &g| g * ((x - m) - l).exp());
            vec![Some(gx)]
        })
    }
}

#[cfg(test)]
mod tests {
    use ndarray::IxDyn;

    use crate::gradcheck::{assert_gradients, random};
    use crate::{Tape, Tensor};

    #[test]
    fn gradients_along_every_axis() {
        let x = random(&[3, 4, 5], -2.0, 2.0, 1);
        for axis in [0, 1, 2, -1, -2] {
            assert_gradients(vec![x.clone()], |v| v[0].softmax(axis));
            assert_gradients(vec![x.clone()], |v| v[0].log_softmax(axis));
        }
        for keep in [false, true] {
            assert_gradients(vec![x.clone()], |v| v[0].logsumexp(&[-1], keep));
            assert_gradients(vec![x.clone()], |v| v[0].logsumexp(&[0, 2], keep));
            assert_gradients(vec![x.clone()], |v| v[0].logsumexp(&[2, 1, 0], keep));
        }
        let one = random(&[7], -2.0, 2.0, 2);
        assert_gradients(vec![one.clone()], |v| v[0].softmax(0));
        assert_gradients(vec![one], |v| v[0].logsumexp(&[0], false));
    }

    #[test]
    fn large_inputs_do_not_overflow() {
        let tape = Tape::new();
        let x =
            tape.var(Tensor::from_shape_vec(IxDyn(&[1, 3]), vec![1000.0, 1000.0, 0.0]).unwrap());
        let p = x.softmax(-1);
        assert_eq!(p.value().as_slice().unwrap(), &[0.5, 0.5, 0.0]);
        let lp = x.log_softmax(1);
        assert!((lp.value()[[0, 0]] + std::f32::consts::LN_2).abs() < 1e-6);
        assert!((lp.value()[[0, 2]] + 1000.0 + std::f32::consts::LN_2).abs() < 1e-3);
        let lse = x.logsumexp(&[1], true);
        assert_eq!(lse.shape(), &[1, 1]);
        assert!((lse.item() - 1000.0 - std::f32::consts::LN_2).abs() < 1e-3);
        let g = lse.sum().backward();
        assert_eq!(g.get(&x).unwrap().as_slice().unwrap(), &[0.5, 0.5, 0.0]);
    }

    #[test]
    fn an_all_negative_infinite_lane_has_log_sum_exp_minus_infinity() {
        let tape = Tape::eval();
        let x = tape.constant(Tensor::from_elem(IxDyn(&[2, 2]), f32::NEG_INFINITY));
        let lse = x.logsumexp(&[0], false);
        assert!(lse.value().iter().all(|&v| v == f32::NEG_INFINITY));
    }

    #[test]
    fn softmax_rows_sum_to_one() {
        let tape = Tape::eval();
        let x = tape.constant(random(&[4, 6], -5.0, 5.0, 3));
        let s = x.softmax(-1).sum_axes(&[1], false);
        assert!(s.value().iter().all(|&v| (v - 1.0).abs() < 1e-6));
        let ls = x.log_softmax(0).exp().sum_axes(&[0], false);
        assert!(ls.value().iter().all(|&v| (v - 1.0).abs() < 1e-6));
    }

    #[test]
    #[should_panic(expected = "softmax: axis -3 is out of range for a value of rank 2")]
    fn softmax_out_of_range_names_the_op() {
        let tape = Tape::new();
        tape.var(random(&[2, 3], -1.0, 1.0, 0)).softmax(-3);
    }
}
