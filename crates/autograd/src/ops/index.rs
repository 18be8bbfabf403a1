//! Indexing ops: `index_select`, `gather` and `embedding`, and [`Indices`], the one form
//! of integer argument they (and the class-target losses) take.
//!
//! Each forward copies the selected elements; each backward scatter-adds the output
//! gradient back to where the elements came from, so an index that appears several
//! times collects the sum of its gradients. An index out of range panics, naming the op,
//! the index and the size it had to be below.
//!
//! Methods and associated functions of [`Var`]: [`index_select`](Var::index_select),
//! [`gather`](Var::gather), [`embedding`](Var::embedding).

use ndarray::{Array, Dimension, IxDyn};

use crate::tape::{Var, op1};
use crate::{AxisIndex, Tensor};

/// Integer indices with a shape, as PyTorch's `LongTensor` arguments: what every op that
/// takes indices or class targets accepts (through `impl Into<Indices>`).
///
/// A slice, vector or array of `usize` is 1-D; [`Indices::new`] or an ndarray
/// `Array<usize, D>` give any other shape.
///
/// ```
/// use autograd::ops::index::Indices;
///
/// let ids = Indices::new(&[2, 3], vec![0, 4, 4, 1, 2, 3]);
/// assert_eq!(ids.shape(), &[2, 3]);
/// assert_eq!(Indices::from(&[5, 6]).shape(), &[2]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Indices {
    shape: Vec<usize>,
    data: Vec<usize>,
}

impl Indices {
    /// Indices of the given shape, `data` in row-major order.
    ///
    /// # Panics
    /// If `data` does not have `shape`'s number of elements.
    #[track_caller]
    pub fn new(shape: &[usize], data: Vec<usize>) -> Self {
        let n: usize = shape.iter().product();
        assert_eq!(
            n,
            data.len(),
            "Indices::new: shape {shape:?} holds {n} indices, got {}",
            data.len()
        );
        Indices {
            shape: shape.to_vec(),
            data,
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The rank.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// The indices in row-major order.
    pub fn as_slice(&self) -> &[usize] {
        &self.data
    }

    /// Number of indices.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether there are no indices.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Panics, naming `op`, at the first index not below `size`; `what` describes the
    /// axis indexed (built only on failure).
    #[track_caller]
    fn check_below(&self, size: usize, op: &str, what: impl FnOnce() -> String) {
        if let Some((pos, i)) = self.data.iter().enumerate().find(|&(_, &i)| i >= size) {
            panic!(
                "{op}: index {i} (at position {pos}) is out of range for {}",
                what()
            );
        }
    }
}

impl From<Vec<usize>> for Indices {
    fn from(data: Vec<usize>) -> Self {
        Indices {
            shape: vec![data.len()],
            data,
        }
    }
}

impl From<&Vec<usize>> for Indices {
    fn from(data: &Vec<usize>) -> Self {
        data.clone().into()
    }
}

impl From<&[usize]> for Indices {
    fn from(data: &[usize]) -> Self {
        data.to_vec().into()
    }
}

impl<const N: usize> From<[usize; N]> for Indices {
    fn from(data: [usize; N]) -> Self {
        data.to_vec().into()
    }
}

impl<const N: usize> From<&[usize; N]> for Indices {
    fn from(data: &[usize; N]) -> Self {
        data.to_vec().into()
    }
}

impl From<&Indices> for Indices {
    fn from(i: &Indices) -> Self {
        i.clone()
    }
}

impl<D: Dimension> From<Array<usize, D>> for Indices {
    fn from(a: Array<usize, D>) -> Self {
        let shape = a.shape().to_vec();
        let data = if a.is_standard_layout() {
            a.into_raw_vec_and_offset().0
        } else {
            a.iter().copied().collect()
        };
        Indices { shape, data }
    }
}

fn tensor(shape: &[usize], data: Vec<f32>) -> Tensor {
    Tensor::from_shape_vec(IxDyn(shape), data).expect("shape matches data")
}

fn slice(t: &Tensor) -> &[f32] {
    t.as_slice().expect("tensors on the tape are contiguous")
}

/// Steps `coord` to the next position of `shape` in row-major order (back to all zeros
/// after the last).
pub(crate) fn next_coord(coord: &mut [usize], shape: &[usize]) {
    for d in (0..shape.len()).rev() {
        coord[d] += 1;
        if coord[d] < shape[d] {
            return;
        }
        coord[d] = 0;
    }
}

/// `x` with axis `axis` replaced by the axes of `indices`: the slices of `x` along `axis`
/// that `indices` pick, in their order and shape. The body of `index_select` and
/// `embedding`; backward adds each output slice's gradient to the slice it came from.
#[track_caller]
fn take<'t>(
    x: &Var<'t>,
    axis: usize,
    indices: Indices,
    op: &str,
    what: impl FnOnce() -> String,
) -> Var<'t> {
    let shape = x.shape().to_vec();
    let size = shape[axis];
    indices.check_below(size, op, what);
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let src = slice(x.value());
    let mut out = Vec::with_capacity(outer * indices.len() * inner);
    for block in src.chunks_exact((size * inner).max(1)).take(outer) {
        for &i in indices.as_slice() {
            out.extend_from_slice(&block[i * inner..(i + 1) * inner]);
        }
    }
    let out_shape: Vec<usize> = [&shape[..axis], indices.shape(), &shape[axis + 1..]].concat();
    op1(x.tape(), op, &[x], tensor(&out_shape, out), move |g, _| {
        let g = g.as_standard_layout();
        let g = g.as_slice().expect("standard layout");
        let mut gx = vec![0.0; outer * size * inner];
        let picked = indices.len() * inner;
        for (o, g_block) in g.chunks_exact(picked.max(1)).take(outer).enumerate() {
            let gx_block = &mut gx[o * size * inner..(o + 1) * size * inner];
            for (&i, g_row) in indices.as_slice().iter().zip(g_block.chunks_exact(inner)) {
                gx_block[i * inner..(i + 1) * inner]
                    .iter_mut()
                    .zip(g_row)
                    .for_each(|(a, &b)| *a += b);
            }
        }
        vec![Some(tensor(&shape, gx))]
    })
}

impl<'t> Var<'t> {
    /// The slices along `axis` that `indices` pick, as `torch.index_select`: output axis
    /// `axis` has `indices.len()` entries, entry `j` being input entry `indices[j]`.
    /// Indices may repeat (their gradients add up). Indices of rank other than 1 replace
    /// `axis` by their own axes, as `numpy.take`: `[A, B]` with `[N, T]` on axis 0 gives
    /// `[N, T, B]`.
    ///
    /// # Panics
    /// If the axis or an index is out of range.
    #[track_caller]
    pub fn index_select<A: AxisIndex>(&self, axis: A, indices: impl Into<Indices>) -> Var<'t> {
        let axis = axis.resolve(self.ndim(), "index_select");
        let what = || {
            let shape = self.shape();
            format!("axis {axis} of size {} of the input {shape:?}", shape[axis])
        };
        take(self, axis, indices.into(), "index_select", what)
    }

    /// The rows of `weight [num_embeddings, dim]` that `ids` name, as
    /// `torch.nn.functional.embedding(ids, weight)`: the output has `ids`' shape followed
    /// by `dim` (`[N]` → `[N, dim]`, `[N, T]` → `[N, T, dim]`). The weight's gradient
    /// adds up the gradients of every occurrence of each row.
    ///
    /// # Panics
    /// If `weight` is not 2-D or an id is not below `num_embeddings`.
    #[track_caller]
    pub fn embedding(weight: &Var<'t>, ids: impl Into<Indices>) -> Var<'t> {
        assert!(
            weight.ndim() == 2,
            "embedding: weight {:?} needs shape [num_embeddings, dim]",
            weight.shape()
        );
        let what = || {
            let shape = weight.shape();
            format!("the {} rows of the weight {shape:?}", shape[0])
        };
        take(weight, 0, ids.into(), "embedding", what)
    }

    /// Values picked along `axis` by an index of the input's rank, as `torch.gather`: for
    /// 3-D input and `axis = 1`, `out[i][j][k] = x[i][index[i][j][k]][k]`. The output has
    /// the index's shape, which may be smaller than the input's on any axis (and of any
    /// size on `axis`). Backward scatter-adds into the input's shape.
    ///
    /// # Panics
    /// If the axis is out of range, the index's rank differs from the input's, it is
    /// larger than the input on an axis other than `axis`, or an index is out of range.
    #[track_caller]
    pub fn gather<A: AxisIndex>(&self, axis: A, index: impl Into<Indices>) -> Var<'t> {
        let index = index.into();
        let shape = self.shape().to_vec();
        let axis = axis.resolve(shape.len(), "gather");
        let fits = index.ndim() == shape.len()
            && (index.shape().iter().zip(&shape))
                .enumerate()
                .all(|(d, (&i, &s))| d == axis || i <= s);
        assert!(
            fits,
            "gather: index of shape {:?} does not fit the input {shape:?} along axis {axis} \
             (it needs the input's rank and no larger size on the other axes)",
            index.shape()
        );
        index.check_below(shape[axis], "gather", || {
            format!("axis {axis} of size {} of the input {shape:?}", shape[axis])
        });
        let mut strides = vec![1; shape.len()];
        for d in (0..shape.len().saturating_sub(1)).rev() {
            strides[d] = strides[d + 1] * shape[d + 1];
        }
        // Where each output element comes from, in the input; kept for backward.
        let mut coord = vec![0; shape.len()];
        let from: Vec<usize> = (index.as_slice().iter())
            .map(|&i| {
                let at = (coord.iter().zip(&strides).enumerate())
                    .map(|(d, (&c, &s))| if d == axis { i * s } else { c * s })
                    .sum();
                next_coord(&mut coord, index.shape());
                at
            })
            .collect();
        let src = slice(self.value());
        let out = tensor(index.shape(), from.iter().map(|&at| src[at]).collect());
        self.unary_op("gather", out, move |g, _| {
            let mut gx = vec![0.0; shape.iter().product()];
            for (&at, &g) in from.iter().zip(g.iter()) {
                gx[at] += g;
            }
            vec![Some(tensor(&shape, gx))]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Indices;
    use crate::Var;
    use crate::gradcheck::{assert_gradients, random};

    #[test]
    fn index_select_values_and_gradients() {
        let tape = crate::Tape::eval();
        let x = tape.constant(random(&[3, 4], -1.0, 1.0, 1));
        let y = x.index_select(-1, [3, 0, 3]);
        assert_eq!(y.shape(), &[3, 3]);
        assert_eq!(y.value()[[2, 0]], x.value()[[2, 3]]);
        assert_eq!(y.value()[[1, 1]], x.value()[[1, 0]]);
        let x = random(&[3, 4, 2], -1.0, 1.0, 2);
        // Repeats add their gradients up.
        assert_gradients(vec![x.clone()], |v| v[0].index_select(1, [1, 1, 3, 0, 1]));
        assert_gradients(vec![x.clone()], |v| v[0].index_select(0, vec![2]));
        assert_gradients(vec![x.clone()], |v| v[0].index_select(-1, [1, 0, 0]));
        // A 2-D index replaces the axis by its own two.
        let idx = Indices::new(&[2, 3], vec![0, 2, 2, 1, 0, 0]);
        assert_gradients(vec![x], |v| {
            let y = v[0].index_select(0, &idx);
            assert_eq!(y.shape(), &[2, 3, 4, 2]);
            y
        });
    }

    #[test]
    fn gather_values_and_gradients() {
        let tape = crate::Tape::eval();
        let x = tape.constant(random(&[2, 3], -1.0, 1.0, 3));
        let idx = ndarray::arr2(&[[2usize, 2], [0, 1]]);
        let y = x.gather(1, idx.clone());
        assert_eq!(y.shape(), &[2, 2]);
        assert_eq!(y.value()[[0, 0]], x.value()[[0, 2]]);
        assert_eq!(y.value()[[1, 1]], x.value()[[1, 1]]);
        let y0 = x.gather(0, ndarray::arr2(&[[1usize, 0, 1]]));
        assert_eq!(y0.value()[[0, 2]], x.value()[[1, 2]]);
        let x3 = random(&[3, 4, 2], -1.0, 1.0, 4);
        let idx3 = Indices::new(&[2, 5, 2], (0..20).map(|i| (i * 7) % 4).collect());
        assert_gradients(vec![x3.clone()], |v| v[0].gather(1, &idx3));
        let last = Indices::new(&[3, 2, 5], (0..30).map(|i| (i * 5 + 1) % 2).collect());
        assert_gradients(vec![x3.clone()], |v| v[0].gather(-1, &last));
        let idx0 = Indices::new(&[5, 1, 1], vec![2, 0, 2, 1, 2]);
        assert_gradients(vec![x3], |v| v[0].gather(0, &idx0));
    }

    #[test]
    fn embedding_keeps_the_ids_shape() {
        let w = random(&[5, 3], -1.0, 1.0, 5);
        let ids = Indices::new(&[2, 4], vec![0, 4, 4, 1, 2, 2, 2, 3]);
        assert_gradients(vec![w.clone()], |v| {
            let y = Var::embedding(&v[0], &ids);
            assert_eq!(y.shape(), &[2, 4, 3]);
            y
        });
        let tape = crate::Tape::eval();
        let wv = tape.constant(w);
        let y = Var::embedding(&wv, [3, 0]);
        assert_eq!(y.shape(), &[2, 3]);
        assert_eq!(
            y.value().index_axis(ndarray::Axis(0), 0),
            wv.value().index_axis(ndarray::Axis(0), 3)
        );
    }

    #[test]
    fn empty_indices() {
        let x = random(&[3, 4], -1.0, 1.0, 6);
        assert_gradients(vec![x], |v| {
            let y = v[0].index_select(1, Vec::new());
            assert_eq!(y.shape(), &[3, 0]);
            y
        });
    }

    #[test]
    #[should_panic(
        expected = "index_select: index 4 (at position 1) is out of range for axis 1 of size 4 \
                    of the input [3, 4]"
    )]
    fn index_select_out_of_range() {
        let tape = crate::Tape::eval();
        tape.constant(random(&[3, 4], -1.0, 1.0, 1))
            .index_select(1, [0, 4]);
    }

    #[test]
    #[should_panic(expected = "embedding: index 7 (at position 0) is out of range for the 5 rows")]
    fn embedding_out_of_range() {
        let tape = crate::Tape::eval();
        Var::embedding(&tape.constant(random(&[5, 2], -1.0, 1.0, 1)), [7]);
    }

    #[test]
    #[should_panic(expected = "gather: index of shape [2, 5] does not fit the input [2, 3]")]
    fn gather_index_larger_than_input() {
        let tape = crate::Tape::eval();
        let idx = Indices::new(&[2, 5], vec![0; 10]);
        tape.constant(random(&[2, 3], -1.0, 1.0, 1)).gather(0, idx);
    }

    #[test]
    #[should_panic(expected = "gather: index 3 (at position 2) is out of range for axis 1")]
    fn gather_out_of_range() {
        let tape = crate::Tape::eval();
        let idx = Indices::new(&[1, 3], vec![0, 1, 3]);
        tape.constant(random(&[2, 3], -1.0, 1.0, 1)).gather(1, idx);
    }

    #[test]
    #[should_panic(expected = "Indices::new: shape [2, 2] holds 4 indices, got 3")]
    fn indices_shape_must_fit() {
        Indices::new(&[2, 2], vec![0, 1, 2]);
    }
}
