//! Reductions: sum and mean (over everything or over axes), max and min over one axis
//! with their positions (argmax, argmin), variance and standard deviation over axes.
//!
//! Backward of a sum broadcasts the gradient back over the reduced axes; of a max or min,
//! it routes the gradient to the first position that held it (as `torch.max(x, dim)`);
//! of a variance, it scales the centred input. Axes may count from the end
//! ([`AxisIndex`]).
//!
//! Methods on [`Var`]: [`sum`](Var::sum), [`mean`](Var::mean), [`sum_axes`](Var::sum_axes),
//! [`mean_axes`](Var::mean_axes), [`max_axis`](Var::max_axis), [`min_axis`](Var::min_axis),
//! [`var`](Var::var), [`std`](Var::std), [`sum_blocks`](Var::sum_blocks) (sum over the
//! time steps of a time-folded batch), and the positions [`argmax`](Var::argmax) and
//! [`argmin`](Var::argmin) (plain arrays, not on the tape).

use ndarray::{ArrayD, Axis, IxDyn, RemoveAxis, Zip};

use crate::Tensor;
use crate::axis::{AxisIndex, resolve_axes};
use crate::tape::Var;

/// The axes resolved against the rank (repeats refused), sorted.
#[track_caller]
fn sorted_axes<A: AxisIndex>(op: &str, axes: &[A], ndim: usize) -> Vec<usize> {
    let mut axes = resolve_axes(axes, ndim, op);
    axes.sort_unstable();
    axes
}

/// The shape with each of `axes` (sorted) set to 1.
fn keep_dims_shape(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    let mut s = shape.to_vec();
    for &a in axes {
        s[a] = 1;
    }
    s
}

/// The shape without `axes` (sorted).
fn reduced_shape(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    let mut s = shape.to_vec();
    for &a in axes.iter().rev() {
        s.remove(a);
    }
    s
}

/// Sum over `axes` (sorted), the reduced axes kept as size 1.
fn sum_keep(x: &Tensor, axes: &[usize]) -> Tensor {
    let mut out = x.clone();
    for &a in axes {
        out = out.sum_axis(Axis(a)).insert_axis(Axis(a));
    }
    out
}

/// Which extreme a max/min-style reduction looks for.
#[derive(Clone, Copy)]
enum Extreme {
    Max,
    Min,
}

impl Extreme {
    /// Whether `v` replaces `best`: strictly beyond it, so ties keep the first position;
    /// NaN counts as beyond everything, so it propagates as in PyTorch.
    fn beats(self, v: f32, best: f32) -> bool {
        match self {
            _ if best.is_nan() => false,
            _ if v.is_nan() => true,
            Extreme::Max => v > best,
            Extreme::Min => v < best,
        }
    }
}

/// The position and value of the extreme of every lane along `axis` (the axis removed).
#[track_caller]
fn extremes(op: &str, x: &Tensor, axis: usize, which: Extreme) -> (ArrayD<usize>, Tensor) {
    assert!(
        x.shape()[axis] > 0,
        "{op}: axis {axis} of shape {:?} is empty",
        x.shape()
    );
    let mut idx = ArrayD::<usize>::zeros(x.raw_dim().remove_axis(Axis(axis)));
    if axis + 1 == x.ndim() {
        // Contiguous lanes: one pass along each.
        let mut out = Tensor::zeros(idx.raw_dim());
        Zip::from(x.lanes(Axis(axis)))
            .and(&mut out)
            .and(&mut idx)
            .for_each(|lane, m, i| {
                let (best, value) =
                    lane.iter()
                        .enumerate()
                        .skip(1)
                        .fold((0, lane[0]), |(bi, bv), (j, &v)| {
                            if which.beats(v, bv) { (j, v) } else { (bi, bv) }
                        });
                *m = value;
                *i = best;
            });
        return (idx, out);
    }
    // Strided lanes (an outer axis, such as time): compare whole slabs, which streams
    // through memory instead of striding through it once per lane.
    let mut out = x.index_axis(Axis(axis), 0).to_owned();
    for j in 1..x.shape()[axis] {
        Zip::from(&mut out)
            .and(&mut idx)
            .and(x.index_axis(Axis(axis), j))
            .for_each(|m, i, &v| {
                if which.beats(v, *m) {
                    *m = v;
                    *i = j;
                }
            });
    }
    (idx, out)
}

/// What variance and standard deviation share: the input centred on its mean over the
/// reduced axes, the variance with those axes kept as size 1, and its divisor.
struct Spread {
    centred: Tensor,
    var: Tensor,
    divisor: f32,
    kept: Vec<usize>,
    out_shape: Vec<usize>,
}

impl<'t> Var<'t> {
    /// Sum of all elements, a scalar (shape `[]`).
    #[track_caller]
    pub fn sum(&self) -> Var<'t> {
        let all: Vec<usize> = (0..self.shape().len()).collect();
        self.sum_axes(&all, false)
    }

    /// Mean of all elements, a scalar.
    #[track_caller]
    pub fn mean(&self) -> Var<'t> {
        let all: Vec<usize> = (0..self.shape().len()).collect();
        self.mean_axes(&all, false)
    }

    /// Sum over `axes` (none: the value itself); with `keep_dims` the reduced axes stay
    /// as size 1.
    ///
    /// # Panics
    /// If an axis is out of range or repeated.
    #[track_caller]
    pub fn sum_axes<A: AxisIndex>(&self, axes: &[A], keep_dims: bool) -> Var<'t> {
        let in_shape = self.shape().to_vec();
        let axes = sorted_axes("sum_axes", axes, in_shape.len());
        let mut out = match axes.last() {
            Some(&a) => self.value().sum_axis(Axis(a)),
            None => self.value().clone(),
        };
        for &a in axes.iter().rev().skip(1) {
            out = out.sum_axis(Axis(a));
        }
        let kept = keep_dims_shape(&in_shape, &axes);
        if keep_dims {
            out = out.into_shape_with_order(IxDyn(&kept)).expect("same size");
        }
        self.unary_op("sum_axes", out, move |g, _| {
            let g = g.into_shape_with_order(IxDyn(&kept)).expect("same size");
            let full = g.broadcast(IxDyn(&in_shape)).expect("broadcast back");
            vec![Some(full.to_owned())]
        })
    }

    /// Sum of the `n` consecutive blocks of axis 0: `x [n·m, …] → y [m, …]`,
    /// `y[i] = Σ_k x[k·m + i]`. On a time-folded batch `[T·B, …]` with `n = T` it is the
    /// sum over time steps, without the copy that a reshape to `[T, B, …]` would make.
    ///
    /// # Panics
    /// If `n` is 0 or does not divide the leading dimension.
    #[track_caller]
    pub fn sum_blocks(&self, n: usize) -> Var<'t> {
        let shape = self.shape().to_vec();
        assert!(
            n > 0 && shape.first().is_some_and(|&d| d % n == 0),
            "sum_blocks: {n} blocks do not divide the leading dimension of {shape:?}"
        );
        let x = self
            .value()
            .as_slice()
            .expect("tensors on the tape are contiguous");
        let block = x.len() / n;
        let mut out = x[..block].to_vec();
        for chunk in x.chunks_exact(block.max(1)).skip(1) {
            out.iter_mut().zip(chunk).for_each(|(o, v)| *o += v);
        }
        let mut out_shape = shape.clone();
        out_shape[0] /= n;
        let out = Tensor::from_shape_vec(IxDyn(&out_shape), out).expect("block shape");
        self.unary_op("sum_blocks", out, move |g, _| {
            let g = g.as_standard_layout();
            let g = g.as_slice().expect("standard layout");
            let tiled = g.iter().copied().cycle().take(g.len() * n).collect();
            vec![Some(
                Tensor::from_shape_vec(IxDyn(&shape), tiled).expect("input shape"),
            )]
        })
    }

    /// Mean over `axes`; with `keep_dims` the reduced axes stay as size 1.
    ///
    /// # Panics
    /// If an axis is out of range or repeated.
    #[track_caller]
    pub fn mean_axes<A: AxisIndex>(&self, axes: &[A], keep_dims: bool) -> Var<'t> {
        let axes = sorted_axes("mean_axes", axes, self.ndim());
        let count: usize = axes.iter().map(|&a| self.shape()[a]).product();
        self.sum_axes(&axes, keep_dims)
            .mul_scalar(1.0 / count.max(1) as f32)
    }

    /// Maximum over `axis`, as `torch.max(x, dim).values`: the gradient goes to the first
    /// position of the maximum, and a NaN in a lane is its maximum.
    ///
    /// # Panics
    /// If the axis is out of range or empty.
    #[track_caller]
    pub fn max_axis(&self, axis: impl AxisIndex, keep_dims: bool) -> Var<'t> {
        self.extreme_axis("max_axis", axis, keep_dims, Extreme::Max)
    }

    /// Minimum over `axis`, as `torch.min(x, dim).values`: the gradient goes to the first
    /// position of the minimum, and a NaN in a lane is its minimum.
    ///
    /// # Panics
    /// If the axis is out of range or empty.
    #[track_caller]
    pub fn min_axis(&self, axis: impl AxisIndex, keep_dims: bool) -> Var<'t> {
        self.extreme_axis("min_axis", axis, keep_dims, Extreme::Min)
    }

    #[track_caller]
    fn extreme_axis(
        &self,
        op: &str,
        axis: impl AxisIndex,
        keep_dims: bool,
        which: Extreme,
    ) -> Var<'t> {
        let x = self.value();
        let axis = axis.resolve(x.ndim(), op);
        let (idx, mut out) = extremes(op, x, axis, which);
        if keep_dims {
            out = out.insert_axis(Axis(axis));
        }
        let in_dim = x.raw_dim();
        self.unary_op(op, out, move |g, _| {
            let g = if keep_dims {
                g.remove_axis(Axis(axis))
            } else {
                g
            };
            let mut gx = Tensor::zeros(in_dim);
            Zip::from(gx.lanes_mut(Axis(axis)))
                .and(&g)
                .and(&idx)
                .for_each(|mut lane, &g, &i| lane[i] = g);
            vec![Some(gx)]
        })
    }

    /// The position of the maximum along `axis`, that axis removed, as `torch.argmax(x,
    /// dim)`: ties give the first position, a NaN counts as the maximum. Positions are not
    /// differentiable, so this is a plain array, not a value on the tape.
    ///
    /// # Panics
    /// If the axis is out of range or empty.
    #[track_caller]
    pub fn argmax(&self, axis: impl AxisIndex) -> ArrayD<usize> {
        let axis = axis.resolve(self.ndim(), "argmax");
        extremes("argmax", self.value(), axis, Extreme::Max).0
    }

    /// The position of the minimum along `axis`, that axis removed, as `torch.argmin(x,
    /// dim)`: ties give the first position, a NaN counts as the minimum.
    ///
    /// # Panics
    /// If the axis is out of range or empty.
    #[track_caller]
    pub fn argmin(&self, axis: impl AxisIndex) -> ArrayD<usize> {
        let axis = axis.resolve(self.ndim(), "argmin");
        extremes("argmin", self.value(), axis, Extreme::Min).0
    }

    /// Variance over `axes`, `Σ(x − x̄)² / (N − correction)` with `N` the number of
    /// elements reduced, as `torch.var(x, dim, correction=…, keepdim=…)`: `correction = 1`
    /// is Bessel's unbiased estimate (PyTorch's default), `0` the population variance. The
    /// divisor stops at 0, so `N ≤ correction` gives infinity or NaN, as in PyTorch.
    ///
    /// # Panics
    /// If an axis is out of range or repeated.
    #[track_caller]
    pub fn var<A: AxisIndex>(&self, axes: &[A], correction: usize, keep_dims: bool) -> Var<'t> {
        let Spread {
            centred,
            var,
            divisor,
            kept,
            out_shape,
        } = self.spread("var", axes, correction);
        let out_shape = if keep_dims { &kept } else { &out_shape };
        let out = var
            .into_shape_with_order(IxDyn(out_shape))
            .expect("same size");
        // ∂var/∂x = 2(x − x̄)/divisor: the mean's own dependence on x sums to zero.
        self.unary_op("var", out, move |g, _| {
            let g = g.into_shape_with_order(IxDyn(&kept)).expect("same size");
            let k = 2.0 / divisor;
            let mut gx = centred;
            gx.zip_mut_with(&g, |d, &g| *d *= g * k);
            vec![Some(gx)]
        })
    }

    /// Standard deviation over `axes`, the square root of [`Var::var`] with the same
    /// arguments (`torch.std`). Where it is 0 the gradient is 0, as in PyTorch, rather
    /// than the NaN of `var(..).sqrt()`.
    ///
    /// # Panics
    /// If an axis is out of range or repeated.
    #[track_caller]
    pub fn std<A: AxisIndex>(&self, axes: &[A], correction: usize, keep_dims: bool) -> Var<'t> {
        let Spread {
            centred,
            var,
            divisor,
            kept,
            out_shape,
        } = self.spread("std", axes, correction);
        let std = var.mapv(f32::sqrt);
        let out_shape = if keep_dims { &kept } else { &out_shape };
        let out = std
            .clone()
            .into_shape_with_order(IxDyn(out_shape))
            .expect("same size");
        // ∂std/∂x = (x − x̄) / (divisor · std).
        self.unary_op("std", out, move |g, _| {
            let g = g.into_shape_with_order(IxDyn(&kept)).expect("same size");
            let scale = Zip::from(&g)
                .and(&std)
                .map_collect(|&g, &s| if s == 0.0 { 0.0 } else { g / (divisor * s) });
            let mut gx = centred;
            gx.zip_mut_with(&scale, |d, &s| *d *= s);
            vec![Some(gx)]
        })
    }

    #[track_caller]
    fn spread<A: AxisIndex>(&self, op: &str, axes: &[A], correction: usize) -> Spread {
        let x = self.value();
        let axes = sorted_axes(op, axes, x.ndim());
        let n: usize = axes.iter().map(|&a| x.shape()[a]).product();
        let mean = sum_keep(x, &axes) / n as f32;
        let centred = x - &mean;
        let divisor = n.saturating_sub(correction) as f32;
        let var = sum_keep(&centred.mapv(|d| d * d), &axes) / divisor;
        Spread {
            centred,
            var,
            divisor,
            kept: keep_dims_shape(x.shape(), &axes),
            out_shape: reduced_shape(x.shape(), &axes),
        }
    }

    /// The rank.
    pub fn ndim(&self) -> usize {
        self.shape().len()
    }
}

#[cfg(test)]
mod tests {
    use ndarray::IxDyn;

    use crate::Tensor;
    use crate::gradcheck::{assert_gradients, random};

    #[test]
    fn sums_and_means() {
        let x = random(&[3, 1, 4, 5], -1.0, 1.0, 1);
        assert_gradients(vec![x.clone()], |v| v[0].sum());
        assert_gradients(vec![x.clone()], |v| v[0].mean());
        for keep in [false, true] {
            assert_gradients(vec![x.clone()], |v| v[0].sum_axes(&[0, 2], keep));
            assert_gradients(vec![x.clone()], |v| v[0].mean_axes(&[3], keep));
            assert_gradients(vec![x.clone()], |v| v[0].mean_axes(&[1], keep));
            assert_gradients(vec![x.clone()], |v| v[0].sum_axes(&[-1, 0], keep));
        }
        let tape = crate::Tape::new();
        let y = tape.var(x).sum_axes(&[1, 3], true);
        assert_eq!(y.shape(), &[3, 1, 4, 1]);
        assert_eq!(y.sum_axes(&[-3, -1], false).shape(), &[3, 4]);
    }

    #[test]
    #[should_panic(expected = "sum_axes: axis 1 appears twice in [1, -2]")]
    fn repeated_axes_are_refused() {
        let tape = crate::Tape::new();
        tape.var(random(&[2, 3, 4], -1.0, 1.0, 0))
            .sum_axes(&[1, -2], false);
    }

    #[test]
    fn sum_of_blocks_is_the_sum_over_the_folded_axis() {
        let x = random(&[6, 2, 3], -1.0, 1.0, 2);
        for n in [1, 2, 3, 6] {
            assert_gradients(vec![x.clone()], |v| v[0].sum_blocks(n));
            let tape = crate::Tape::eval();
            let v = tape.constant(x.clone());
            let want = v.reshape(&[n, 6 / n, 2, 3]).sum_axes(&[0], false);
            assert_eq!(v.sum_blocks(n).value(), want.value());
        }
    }

    /// Values at least 0.1 apart in a scrambled order, so the position of a maximum or
    /// minimum stays put under ±ε.
    fn distinct(shape: &[usize]) -> Tensor {
        let n = shape.iter().product::<usize>();
        assert!(n % 37 != 0);
        let vals = (0..n).map(|i| ((i * 37) % n) as f32 * 0.1 - 3.0).collect();
        Tensor::from_shape_vec(IxDyn(shape), vals).unwrap()
    }

    #[test]
    fn max_and_min_over_an_axis() {
        let x = distinct(&[3, 4, 5]);
        for axis in [0, 1, 2, -1, -3] {
            for keep in [false, true] {
                assert_gradients(vec![x.clone()], |v| v[0].max_axis(axis, keep));
                assert_gradients(vec![x.clone()], |v| v[0].min_axis(axis, keep));
            }
        }
    }

    fn t(shape: &[usize], vals: &[f32]) -> Tensor {
        Tensor::from_shape_vec(IxDyn(shape), vals.to_vec()).unwrap()
    }

    #[test]
    fn extremes_take_the_first_of_ties_and_propagate_nan() {
        let tape = crate::Tape::new();
        let x = tape.var(t(
            &[2, 4],
            &[1.0, 3.0, 3.0, 0.0, 2.0, f32::NAN, 5.0, f32::NAN],
        ));
        assert_eq!(x.argmax(1).as_slice().unwrap(), &[1, 1]);
        assert_eq!(x.argmin(-1).as_slice().unwrap(), &[3, 1]);
        assert_eq!(x.argmax(0).shape(), &[4]);
        assert_eq!(x.argmax(0).as_slice().unwrap(), &[1, 1, 1, 1]);
        let m = x.max_axis(1, false);
        assert_eq!(m.value()[0], 3.0);
        assert!(m.value()[1].is_nan());
        let g = m.sum_axes(&[0], false).backward();
        assert_eq!(
            g.get(&x).unwrap().as_slice().unwrap(),
            &[0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]
        );
    }

    #[test]
    #[should_panic(expected = "argmin: axis 1 of shape [2, 0] is empty")]
    fn extremes_of_an_empty_axis_are_refused() {
        let tape = crate::Tape::new();
        tape.var(Tensor::zeros(IxDyn(&[2, 0]))).argmin(-1);
    }

    #[test]
    #[should_panic(expected = "max_axis: axis 2 is out of range for a value of rank 2")]
    fn max_axis_out_of_range_names_the_op() {
        let tape = crate::Tape::new();
        tape.var(Tensor::zeros(IxDyn(&[2, 3]))).max_axis(2, false);
    }

    #[test]
    fn variance_and_standard_deviation() {
        let x = random(&[3, 4, 5], -1.0, 1.0, 4);
        for correction in [0, 1] {
            for keep in [false, true] {
                assert_gradients(vec![x.clone()], |v| v[0].var(&[1], correction, keep));
                assert_gradients(vec![x.clone()], |v| v[0].var(&[0, -1], correction, keep));
                assert_gradients(vec![x.clone()], |v| v[0].std(&[-2], correction, keep));
                assert_gradients(vec![x.clone()], |v| v[0].std(&[2, 0], correction, keep));
            }
        }
        // [1, 2, 3, 4]: mean 2.5, Σ(x − x̄)² = 5.
        let tape = crate::Tape::new();
        let x = tape.var(t(&[4], &[1.0, 2.0, 3.0, 4.0]));
        assert!((x.var(&[0], 1, false).item() - 5.0 / 3.0).abs() < 1e-6);
        assert!((x.var(&[-1], 0, false).item() - 1.25).abs() < 1e-6);
        assert!((x.std(&[0], 0, true).item() - 1.25f32.sqrt()).abs() < 1e-6);
        assert_eq!(x.std(&[0], 0, true).shape(), &[1]);
    }

    #[test]
    fn deviation_of_a_constant_lane_has_zero_gradient() {
        let tape = crate::Tape::new();
        let x = tape.var(t(&[2, 3], &[2.0, 2.0, 2.0, 1.0, 2.0, 4.0]));
        let s = x.std(&[1], 1, false);
        assert_eq!(s.value()[0], 0.0);
        let g = s.sum().backward();
        let g = g.get(&x).unwrap();
        assert!(g.iter().all(|v| v.is_finite()), "{g}");
        assert_eq!(&g.as_slice().unwrap()[..3], &[0.0; 3]);
    }
}
