//! Reductions: sum and mean (over everything or over axes), max over one axis.
//!
//! Backward of a sum broadcasts the gradient back over the reduced axes; of a max, it
//! routes the gradient to the first position that held the maximum.

use ndarray::{Axis, IxDyn, RemoveAxis, Zip};

use crate::Tensor;
use crate::tape::Var;

/// Sorted, de-duplicated axes, checked against the rank.
fn normalize_axes(op: &str, axes: &[usize], ndim: usize) -> Vec<usize> {
    let mut axes = axes.to_vec();
    axes.sort_unstable();
    axes.dedup();
    if let Some(&a) = axes.iter().find(|&&a| a >= ndim) {
        panic!("{op}: axis {a} out of range for rank {ndim}");
    }
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

impl<'t> Var<'t> {
    /// Sum of all elements, a scalar (shape `[]`).
    pub fn sum(&self) -> Var<'t> {
        let all: Vec<usize> = (0..self.shape().len()).collect();
        self.sum_axes(&all, false)
    }

    /// Mean of all elements, a scalar.
    pub fn mean(&self) -> Var<'t> {
        let all: Vec<usize> = (0..self.shape().len()).collect();
        self.mean_axes(&all, false)
    }

    /// Sum over `axes`; with `keep_dims` the reduced axes stay as size 1.
    pub fn sum_axes(&self, axes: &[usize], keep_dims: bool) -> Var<'t> {
        let in_shape = self.shape().to_vec();
        let axes = normalize_axes("sum_axes", axes, in_shape.len());
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
    pub fn mean_axes(&self, axes: &[usize], keep_dims: bool) -> Var<'t> {
        let axes = normalize_axes("mean_axes", axes, self.ndim());
        let count: usize = axes.iter().map(|&a| self.shape()[a]).product();
        self.sum_axes(&axes, keep_dims)
            .mul_scalar(1.0 / count.max(1) as f32)
    }

    /// Maximum over `axis`; the gradient goes to the first position of the maximum.
    ///
    /// # Panics
    /// If the axis is empty.
    pub fn max_axis(&self, axis: usize, keep_dims: bool) -> Var<'t> {
        let x = self.value();
        assert!(axis < x.ndim(), "max_axis: axis {axis} out of range");
        assert!(x.shape()[axis] > 0, "max_axis: axis {axis} is empty");
        let mut idx = ndarray::ArrayD::<usize>::zeros(x.raw_dim().remove_axis(Axis(axis)));
        let mut out = Tensor::zeros(idx.raw_dim());
        Zip::from(x.lanes(Axis(axis)))
            .and(&mut out)
            .and(&mut idx)
            .for_each(|lane, m, i| {
                let (best, value) =
                    lane.iter()
                        .enumerate()
                        .fold((0, f32::NEG_INFINITY), |(bi, bv), (j, &v)| {
                            if v > bv || (j == 0) { (j, v) } else { (bi, bv) }
                        });
                *m = value;
                *i = best;
            });
        if keep_dims {
            out = out.insert_axis(Axis(axis));
        }
        let in_dim = x.raw_dim();
        self.unary_op("max_axis", out, move |g, _| {
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

    /// The rank.
    pub fn ndim(&self) -> usize {
        self.shape().len()
    }
}

#[cfg(test)]
mod tests {
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
        }
        let tape = crate::Tape::new();
        let y = tape.var(x).sum_axes(&[1, 3], true);
        assert_eq!(y.shape(), &[3, 1, 4, 1]);
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

    #[test]
    fn max_over_an_axis() {
        // Distinct values, so the argmax is unambiguous under ±ε.
        let n = 3 * 4 * 5;
        let mut vals: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        vals.iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v += i as f32 * 1e-1);
        let x = crate::Tensor::from_shape_vec(ndarray::IxDyn(&[3, 4, 5]), vals).unwrap();
        for axis in 0..3 {
            for keep in [false, true] {
                assert_gradients(vec![x.clone()], |v| v[0].max_axis(axis, keep));
            }
        }
    }
}
