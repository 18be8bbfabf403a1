//! Shape ops: reshape, flatten, permute/transpose, concat, stack and slice.
//!
//! Every value on the tape is kept contiguous (row-major), so a permute makes a copy;
//! a reshape never does.
//!
//! Methods and associated functions of [`Var`]: [`reshape`](Var::reshape) (one dimension
//! may be `-1`), [`flatten`](Var::flatten), [`permute`](Var::permute),
//! [`transpose`](Var::transpose), [`slice_axis`](Var::slice_axis),
//! [`concat`](Var::concat), [`stack`](Var::stack).

use ndarray::{Axis, IxDyn, Slice};

use crate::Tensor;
use crate::axis::{AxisIndex, ReshapeDim, resolve_axes, resolve_shape};
use crate::tape::{BackwardFn, Var};

fn reshaped(t: Tensor, shape: &[usize]) -> Tensor {
    t.into_shape_with_order(IxDyn(shape))
        .expect("contiguous tensor of matching size")
}

impl<'t> Var<'t> {
    /// The same elements in another shape (row-major order); one dimension may be `-1`,
    /// inferred from the others: `x.reshape(&[n as i64, -1])`.
    ///
    /// # Panics
    /// If the element counts cannot agree.
    #[track_caller]
    pub fn reshape<D: ReshapeDim>(&self, shape: &[D]) -> Var<'t> {
        let len = self.shape().iter().product();
        let shape = resolve_shape(shape, len, self.shape());
        let in_shape = self.shape().to_vec();
        let y = match self.bits() {
            // Bits are reshaped without a copy (their words are shared).
            Some(bits) => {
                let backward: BackwardFn = Box::new(move |mut g, _| {
                    vec![g.pop().flatten().map(|g| reshaped(g, &in_shape))]
                });
                let out = vec![bits.reshaped(&shape)];
                self.tape()
                    .record("reshape", &[self], out, backward)
                    .remove(0)
            }
            None => {
                let out = reshaped(self.value().clone(), &shape);
                self.unary_op("reshape", out, move |g, _| {
                    vec![Some(reshaped(g, &in_shape))]
                })
            }
        };
        if self.needs_grad_only_where_nonzero() {
            y.grad_where_nonzero()
        } else {
            y
        }
    }

    /// Flattens all axes after the first: `[N, ...] → [N, ∏...]`.
    #[track_caller]
    pub fn flatten(&self) -> Var<'t> {
        let n = self.shape().first().copied().unwrap_or(1);
        let rest = self.shape().iter().skip(1).product();
        self.reshape(&[n, rest])
    }

    /// Reorders the axes: output axis `i` is input axis `axes[i]`.
    ///
    /// # Panics
    /// If `axes` is not a permutation of `0..ndim`.
    #[track_caller]
    pub fn permute<A: AxisIndex>(&self, axes: &[A]) -> Var<'t> {
        assert_eq!(
            axes.len(),
            self.ndim(),
            "permute: {axes:?} is not a permutation of the {} axes",
            self.ndim()
        );
        let axes = resolve_axes(axes, self.ndim(), "permute");
        let axes = &axes[..];
        let mut sorted = axes.to_vec();
        sorted.sort_unstable();
        assert!(
            sorted == (0..self.ndim()).collect::<Vec<_>>(),
            "permute: {axes:?} is not a permutation of the {} axes",
            self.ndim()
        );
        let out = self
            .value()
            .view()
            .permuted_axes(IxDyn(axes))
            .as_standard_layout()
            .into_owned();
        let mut inverse = vec![0; axes.len()];
        for (i, &a) in axes.iter().enumerate() {
            inverse[a] = i;
        }
        self.unary_op("permute", out, move |g, _| {
            let g = g
                .permuted_axes(IxDyn(&inverse))
                .as_standard_layout()
                .into_owned();
            vec![Some(g)]
        })
    }

    /// Swaps two axes.
    #[track_caller]
    pub fn transpose(&self, a: impl AxisIndex, b: impl AxisIndex) -> Var<'t> {
        let mut axes: Vec<usize> = (0..self.ndim()).collect();
        axes.swap(
            a.resolve(self.ndim(), "transpose"),
            b.resolve(self.ndim(), "transpose"),
        );
        self.permute(&axes)
    }

    /// The elements `range` along `axis` (like `x.narrow(axis, start, len)` in PyTorch).
    ///
    /// # Panics
    /// If the range does not fit the axis.
    #[track_caller]
    pub fn slice_axis(&self, axis: impl AxisIndex, range: std::ops::Range<usize>) -> Var<'t> {
        let axis = axis.resolve(self.ndim(), "slice_axis");
        let in_dim = self.value().raw_dim();
        assert!(
            range.start <= range.end && range.end <= in_dim[axis],
            "slice_axis: range {range:?} on axis {axis} of shape {:?}",
            self.shape()
        );
        let s = Slice::from(range.clone());
        let out = self.value().slice_axis(Axis(axis), s).to_owned();
        self.unary_op("slice_axis", out, move |g, _| {
            let mut gx = Tensor::zeros(in_dim);
            gx.slice_axis_mut(Axis(axis), s).assign(&g);
            vec![Some(gx)]
        })
    }

    /// Joins values along an existing `axis`; all other dimensions must agree.
    ///
    /// # Panics
    /// If `parts` is empty or the shapes do not agree.
    #[track_caller]
    pub fn concat(parts: &[&Var<'t>], axis: impl AxisIndex) -> Var<'t> {
        let first = parts.first().expect("concat: no values");
        let axis = axis.resolve(first.ndim(), "concat");
        let views: Vec<_> = parts.iter().map(|v| v.value().view()).collect();
        let out = ndarray::concatenate(Axis(axis), &views).unwrap_or_else(|e| {
            let shapes: Vec<_> = parts.iter().map(|v| v.shape().to_vec()).collect();
            panic!("concat along axis {axis}: shapes {shapes:?} do not fit ({e})")
        });
        let sizes: Vec<usize> = parts.iter().map(|v| v.shape()[axis]).collect();
        let bw: BackwardFn = Box::new(move |mut g, needs| {
            let g = g.pop().flatten().expect("output gradient");
            let mut start = 0;
            sizes
                .iter()
                .zip(needs)
                .map(|(&n, &need)| {
                    let s = Slice::from(start..start + n);
                    start += n;
                    need.then(|| g.slice_axis(Axis(axis), s).to_owned())
                })
                .collect()
        });
        first
            .tape()
            .record("concat", parts, vec![out], bw)
            .pop()
            .expect("one output")
    }

    /// Joins same-shaped values along a new `axis` (`-1`: a new last axis).
    ///
    /// # Panics
    /// If `parts` is empty or the shapes differ.
    #[track_caller]
    pub fn stack(parts: &[&Var<'t>], axis: impl AxisIndex) -> Var<'t> {
        let first = parts.first().expect("stack: no values");
        let axis = axis.resolve(first.ndim() + 1, "stack");
        let shapes: Vec<&[usize]> = parts.iter().map(|v| v.shape()).collect();
        assert!(
            shapes.iter().all(|s| *s == shapes[0]),
            "stack: the values' shapes differ: {shapes:?}"
        );
        let expanded: Vec<Var<'t>> = parts
            .iter()
            .map(|v| {
                let mut s = v.shape().to_vec();
                s.insert(axis, 1);
                v.reshape(&s)
            })
            .collect();
        let refs: Vec<&Var<'t>> = expanded.iter().collect();
        Var::concat(&refs, axis)
    }
}

#[cfg(test)]
mod tests {
    use crate::Var;
    use crate::gradcheck::{assert_gradients, random};

    #[test]
    fn reshape_flatten_permute_transpose() {
        let x = random(&[2, 3, 4], -1.0, 1.0, 1);
        // A non-uniform weighting after each op makes a wrong element order visible.
        let w = random(&[24], 0.5, 1.5, 2);
        assert_gradients(vec![x.clone(), w.clone()], |v| {
            v[0].reshape(&[6, 4]).reshape(&[24]).mul(&v[1])
        });
        assert_gradients(vec![x.clone(), w.clone()], |v| {
            v[0].flatten().reshape(&[24]).mul(&v[1])
        });
        assert_gradients(vec![x.clone(), w.clone()], |v| {
            v[0].permute(&[2, 0, 1]).reshape(&[24]).mul(&v[1])
        });
        assert_gradients(vec![x, w], |v| {
            v[0].transpose(0, 2).reshape(&[24]).mul(&v[1])
        });
    }

    #[test]
    fn concat_stack_slice() {
        let a = random(&[2, 3], -1.0, 1.0, 1);
        let b = random(&[2, 1], -1.0, 1.0, 2);
        let c = random(&[2, 5], -1.0, 1.0, 3);
        assert_gradients(vec![a.clone(), b, c.clone()], |v| {
            Var::concat(&[&v[0], &v[1], &v[2]], 1)
        });
        let a2 = random(&[2, 3], -1.0, 1.0, 4);
        for axis in 0..3 {
            assert_gradients(vec![a.clone(), a2.clone()], |v| {
                Var::stack(&[&v[0], &v[1]], axis)
            });
        }
        assert_gradients(vec![c.clone()], |v| v[0].slice_axis(1, 1..4));
        assert_gradients(vec![c], |v| v[0].slice_axis(0, 1..2));
    }

    #[test]
    fn concat_values() {
        let tape = crate::Tape::eval();
        let a = tape.constant(random(&[1, 2], 0.0, 1.0, 1));
        let b = tape.constant(random(&[2, 2], 0.0, 1.0, 2));
        let c = Var::concat(&[&a, &b], 0);
        assert_eq!(c.shape(), &[3, 2]);
        assert_eq!(c.value()[[2, 1]], b.value()[[1, 1]]);
        assert_eq!(c.slice_axis(0, 1..3).value(), b.value());
    }

    #[test]
    #[should_panic(expected = "reshape")]
    fn reshape_mismatch_panics_with_shapes() {
        let tape = crate::Tape::eval();
        tape.constant(random(&[2, 3], 0.0, 1.0, 1)).reshape(&[4]);
    }
}
