//! Matrix products: `matmul` and the affine `linear` layer, over `kernels::sgemm`.
//!
//! Both backward products reuse the same GEMM with transposed strides, so no transposed
//! copy is ever made: for `C = A·B`, `∂A = G·Bᵀ` and `∂B = Aᵀ·G`. `linear`'s forward
//! pass and weight gradient go through the density dispatchers of `kernels::event`, so
//! a sparse input takes the event-driven path.
//!
//! `matmul` follows `torch.matmul`. 2-D·2-D is one GEMM, a path of its own. A stack of
//! matrices times one matrix (`[B, n, k]·[k, m]`) folds the stack into the rows of one
//! GEMM. Other batched products run one GEMM per matrix of the broadcast batch, and the
//! gradient of an operand that was broadcast is summed back over the batch axes it lacked.
//!
//! Methods on [`Var`]: [`matmul`](Var::matmul), [`linear`](Var::linear).

use kernels::rayon::prelude::*;
use ndarray::IxDyn;

use crate::Tensor;
use crate::ops::index::next_coord;
use crate::tape::{Var, op1};
use crate::tensor::{Saved, sum_to, zeroed};

/// A row-major matrix view of a slice: rows, columns, row stride, column stride.
#[derive(Clone, Copy)]
struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: isize,
    cs: isize,
}

impl<'a> Mat<'a> {
    fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Mat {
            data,
            rows,
            cols,
            rs: cols as isize,
            cs: 1,
        }
    }

    fn t(self) -> Self {
        Mat {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }
}

/// `A·B` into a fresh `[A.rows, B.cols]` buffer.
fn gemm(a: Mat<'_>, b: Mat<'_>) -> Vec<f32> {
    assert_eq!(a.cols, b.rows, "matrix product: inner dimensions differ");
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let mut c = vec![0.0; m * n];
    kernels::sgemm(
        m, k, n, 1.0, a.data, a.rs, a.cs, b.data, b.rs, b.cs, 0.0, &mut c, n as isize, 1,
    );
    c
}

fn tensor(shape: &[usize], data: Vec<f32>) -> Tensor {
    Tensor::from_shape_vec(IxDyn(shape), data).expect("shape matches data")
}

fn slice(t: &Tensor) -> &[f32] {
    t.as_slice().expect("tensors on the tape are contiguous")
}

/// The products `A_i·B_i` for `i < count`, each `[rows, cols]`, one after the other in a
/// fresh buffer. With at least as many products as threads, each thread takes whole
/// products (single-threaded GEMMs); with fewer, they run in turn, each GEMM threading
/// itself: one level of parallelism either way.
fn batched_gemm<'a>(
    count: usize,
    rows: usize,
    cols: usize,
    a: impl Fn(usize) -> Mat<'a> + Sync,
    b: impl Fn(usize) -> Mat<'a> + Sync,
) -> Vec<f32> {
    let block = rows * cols;
    let mut c = vec![0.0; count * block];
    if block == 0 {
        return c;
    }
    let parallel = count >= kernels::rayon::current_num_threads();
    let product = |(i, c): (usize, &mut [f32])| {
        let (a, b, n) = (a(i), b(i), cols);
        debug_assert!(a.rows == rows && a.cols == b.rows && b.cols == n);
        let gemm = if parallel {
            kernels::sgemm_serial
        } else {
            kernels::sgemm
        };
        gemm(
            rows, a.cols, n, 1.0, a.data, a.rs, a.cs, b.data, b.rs, b.cs, 0.0, c, n as isize, 1,
        );
    };
    if parallel {
        c.par_chunks_mut(block).enumerate().for_each(product);
    } else {
        c.chunks_mut(block).enumerate().for_each(product);
    }
    c
}

/// Where each matrix of the broadcast `batch` starts in an operand whose own batch axes
/// are `own` (aligned on the right; an axis of size 1 repeats), counting `block` elements
/// per matrix.
fn block_offsets(own: &[usize], batch: &[usize], block: usize) -> Vec<usize> {
    let lead = batch.len() - own.len();
    let mut strides = vec![0; batch.len()];
    let mut stride = block;
    for (d, &n) in own.iter().enumerate().rev() {
        strides[lead + d] = if n == 1 { 0 } else { stride };
        stride *= n;
    }
    let mut coord = vec![0; batch.len()];
    (0..batch.iter().product())
        .map(|_| {
            let at = coord.iter().zip(&strides).map(|(c, s)| c * s).sum();
            next_coord(&mut coord, batch);
            at
        })
        .collect()
}

/// Whether two batch shapes broadcast (aligned on the right, each pair equal or with a 1).
fn batches_broadcast(a: &[usize], b: &[usize]) -> bool {
    (a.iter().rev().zip(b.iter().rev())).all(|(&x, &y)| x == y || x == 1 || y == 1)
}

impl<'t> Var<'t> {
    /// Matrix product with `torch.matmul`'s rules:
    /// - `[m, k]·[k, n] → [m, n]`, one GEMM;
    /// - a 1-D operand is a row `[1, k]` on the left, a column `[k, 1]` on the right, and
    ///   that axis is removed from the result (`[k]·[k]` is the dot product, a scalar);
    /// - operands of rank ≥ 3 are stacks of matrices over leading batch axes, which
    ///   broadcast: `[B, n, k]·[k, m] → [B, n, m]`, `[B, 1, n, k]·[C, k, m] → [B, C, n, m]`.
    ///   The gradient of a broadcast operand is summed back to its shape.
    ///
    /// # Panics
    /// If an operand is a scalar, the inner dimensions differ or the batch axes do not
    /// broadcast; the message names both shapes.
    #[track_caller]
    pub fn matmul(&self, other: &Var<'t>) -> Var<'t> {
        if self.ndim() != 2 || other.ndim() != 2 {
            return self.matmul_batched(other);
        }
        let (a, b) = (self.shared(), other.shared());
        assert!(
            a.ndim() == 2 && b.ndim() == 2 && a.shape()[1] == b.shape()[0],
            "matmul: expected [m, k]·[k, n], got {:?}·{:?}",
            a.shape(),
            b.shape()
        );
        let (m, k, n) = (a.shape()[0], a.shape()[1], b.shape()[1]);
        let out = tensor(
            &[m, n],
            gemm(Mat::new(slice(&a), m, k), Mat::new(slice(&b), k, n)),
        );
        op1(
            self.tape(),
            "matmul",
            &[self, other],
            out,
            move |g, needs| {
                let gm = Mat::new(slice(&g), m, n);
                let ga = needs[0].then(|| tensor(&[m, k], gemm(gm, Mat::new(slice(&b), k, n).t())));
                let gb = needs[1].then(|| tensor(&[k, n], gemm(Mat::new(slice(&a), m, k).t(), gm)));
                vec![ga, gb]
            },
        )
    }

    /// [`Var::matmul`] for every pair of ranks but 2 and 2: promotes 1-D operands, then
    /// either folds a stack on the left into the rows of one GEMM (when the right operand
    /// has no batch axes) or runs one GEMM per matrix of the broadcast batch.
    #[track_caller]
    fn matmul_batched(&self, other: &Var<'t>) -> Var<'t> {
        let (a, b) = (self.shared(), other.shared());
        let (sa, sb) = (a.shape().to_vec(), b.shape().to_vec());
        assert!(
            !sa.is_empty() && !sb.is_empty(),
            "matmul: both operands need at least one axis, got {sa:?}·{sb:?}"
        );
        // torch's promotion: a 1-D left operand is a row, a 1-D right operand a column.
        let a_mat = if sa.len() == 1 {
            vec![1, sa[0]]
        } else {
            sa.clone()
        };
        let b_mat = if sb.len() == 1 {
            vec![sb[0], 1]
        } else {
            sb.clone()
        };
        let (ba, bb) = (&a_mat[..a_mat.len() - 2], &b_mat[..b_mat.len() - 2]);
        let (n, k) = (a_mat[a_mat.len() - 2], a_mat[a_mat.len() - 1]);
        let (k2, m) = (b_mat[b_mat.len() - 2], b_mat[b_mat.len() - 1]);
        assert!(
            k == k2,
            "matmul: inner dimensions differ ({k} and {k2}) in {sa:?}·{sb:?}"
        );
        assert!(
            batches_broadcast(ba, bb),
            "matmul: batch axes {ba:?} and {bb:?} do not broadcast in {sa:?}·{sb:?}"
        );
        let batch = crate::tensor::broadcast_shape(ba, bb);
        let mut out_shape = batch.clone();
        out_shape.extend((sa.len() > 1).then_some(n));
        out_shape.extend((sb.len() > 1).then_some(m));

        if bb.is_empty() {
            // `[.., n, k]` is `[rows, k]` in memory: one GEMM for the whole stack.
            let rows = ba.iter().product::<usize>() * n;
            let out = gemm(Mat::new(slice(&a), rows, k), Mat::new(slice(&b), k, m));
            return op1(
                self.tape(),
                "matmul",
                &[self, other],
                tensor(&out_shape, out),
                move |g, needs| {
                    let g = g.as_standard_layout();
                    let gm = Mat::new(g.as_slice().expect("standard layout"), rows, m);
                    let ga = needs[0].then(|| tensor(&sa, gemm(gm, Mat::new(slice(&b), k, m).t())));
                    let gb =
                        needs[1].then(|| tensor(&sb, gemm(Mat::new(slice(&a), rows, k).t(), gm)));
                    vec![ga, gb]
                },
            );
        }

        let count = batch.iter().product();
        let a_at = block_offsets(ba, &batch, n * k);
        let b_at = block_offsets(bb, &batch, k * m);
        let out = {
            let (a, b) = (slice(&a), slice(&b));
            batched_gemm(
                count,
                n,
                m,
                |i| Mat::new(&a[a_at[i]..a_at[i] + n * k], n, k),
                |i| Mat::new(&b[b_at[i]..b_at[i] + k * m], k, m),
            )
        };
        op1(
            self.tape(),
            "matmul",
            &[self, other],
            tensor(&out_shape, out),
            move |g, needs| {
                let g = g.as_standard_layout();
                let g = g.as_slice().expect("standard layout");
                let g_at = |i: usize| Mat::new(&g[i * n * m..(i + 1) * n * m], n, m);
                let (a, b) = (slice(&a), slice(&b));
                // The gradient over the whole broadcast batch, summed back to the operand.
                let back = |full: Vec<f32>, mat: [usize; 2], own: &[usize], shape: &[usize]| {
                    let full_shape = [&batch[..], &mat].concat();
                    let summed = sum_to(tensor(&full_shape, full), own);
                    summed
                        .into_shape_with_order(IxDyn(shape))
                        .expect("same elements")
                };
                let ga = needs[0].then(|| {
                    let b_t = |i: usize| Mat::new(&b[b_at[i]..b_at[i] + k * m], k, m).t();
                    back(batched_gemm(count, n, k, g_at, b_t), [n, k], &a_mat, &sa)
                });
                let gb = needs[1].then(|| {
                    let a_t = |i: usize| Mat::new(&a[a_at[i]..a_at[i] + n * k], n, k).t();
                    back(batched_gemm(count, k, m, a_t, g_at), [k, m], &b_mat, &sb)
                });
                vec![ga, gb]
            },
        )
    }

    /// The affine map `y = x·Wᵀ + b` of PyTorch's `nn.Linear`: `x [.., in]`,
    /// `W [out, in]`, optional `b [out]`, `y [.., out]`.
    ///
    /// # Panics
    /// If the shapes do not fit.
    #[track_caller]
    pub fn linear(&self, weight: &Var<'t>, bias: Option<&Var<'t>>) -> Var<'t> {
        let (x, w) = (Saved::hold(self), weight.shared());
        let x_shape = x.shape().to_vec();
        assert!(
            w.ndim() == 2 && !x_shape.is_empty() && x_shape[x_shape.len() - 1] == w.shape()[1],
            "linear: input {x_shape:?} does not fit weight {:?} ([out, in])",
            w.shape()
        );
        let (fan_out, fan_in) = (w.shape()[0], w.shape()[1]);
        let x_len: usize = x_shape.iter().product();
        let rows = x_len / fan_in.max(1);
        let mut out_shape = x_shape.clone();
        *out_shape.last_mut().expect("rank ≥ 1") = fan_out;
        let mut y = zeroed(rows * fan_out);
        kernels::event::linear_forward_auto(rows, fan_in, fan_out, x.input(), slice(&w), &mut y);
        let out = tensor(&out_shape, y);
        let sparse_grad = self.needs_grad_only_where_nonzero();
        let saved = self.tape().is_recording().then(|| x.kept());
        let y = op1(
            self.tape(),
            "linear",
            &[self, weight],
            out,
            move |g, needs| {
                let x = saved.expect("recorded");
                let gx = needs[0].then(|| {
                    let mut gx = zeroed(x_len);
                    let (x, w, g) = (x.input(), slice(&w), slice(&g));
                    if sparse_grad {
                        kernels::event::linear_backward_input_auto(
                            rows, fan_in, fan_out, x, w, g, &mut gx,
                        );
                    } else {
                        kernels::linear::linear_backward_input_dense(
                            rows, fan_in, fan_out, g, w, &mut gx,
                        );
                    }
                    tensor(&x_shape, gx)
                });
                let gw = needs[1].then(|| {
                    let mut gw = vec![0.0; fan_out * fan_in];
                    kernels::event::linear_backward_weight_auto(
                        rows,
                        fan_in,
                        fan_out,
                        x.input(),
                        slice(&g),
                        &mut gw,
                    );
                    tensor(&[fan_out, fan_in], gw)
                });
                vec![gx, gw]
            },
        );
        match bias {
            Some(b) => {
                assert_eq!(b.shape(), &[fan_out], "linear: bias must be [{fan_out}]");
                y.add(b)
            }
            None => y,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{assert_gradients, random};

    #[test]
    fn matmul_gradients() {
        for (i, &(m, k, n)) in [(1, 1, 1), (3, 5, 2), (7, 1, 4), (2, 9, 1)]
            .iter()
            .enumerate()
        {
            let a = random(&[m, k], -1.0, 1.0, i as u64);
            let b = random(&[k, n], -1.0, 1.0, 10 + i as u64);
            assert_gradients(vec![a, b], |v| v[0].matmul(&v[1]));
        }
    }

    /// Every rank pairing of `torch.matmul`: vectors, stacks times a matrix (the folded
    /// path) and broadcast batches (one GEMM per matrix), with their gradients.
    #[test]
    fn matmul_batched_and_vector_gradients() {
        let shapes: &[(&[usize], &[usize], &[usize])] = &[
            (&[3], &[3], &[]),
            (&[3], &[3, 2], &[2]),
            (&[2, 3], &[3], &[2]),
            (&[4, 2, 3], &[3, 5], &[4, 2, 5]),
            (&[2, 4, 2, 3], &[3], &[2, 4, 2]),
            (&[3], &[4, 3, 2], &[4, 2]),
            (&[2, 3], &[4, 3, 5], &[4, 2, 5]),
            (&[4, 2, 3], &[4, 3, 5], &[4, 2, 5]),
            (&[2, 1, 2, 3], &[3, 3, 4], &[2, 3, 2, 4]),
            (&[1, 2, 3], &[3, 1, 3, 2], &[3, 1, 2, 2]),
            (&[1, 2, 3], &[1, 3, 2], &[1, 2, 2]),
        ];
        for (i, &(sa, sb, out)) in shapes.iter().enumerate() {
            let a = random(sa, -1.0, 1.0, 20 + i as u64);
            let b = random(sb, -1.0, 1.0, 40 + i as u64);
            assert_gradients(vec![a, b], |v| {
                let y = v[0].matmul(&v[1]);
                assert_eq!(y.shape(), out, "{sa:?}·{sb:?}");
                y
            });
        }
    }

    /// Each matrix of a broadcast batch is the 2-D product of the matrices it pairs.
    #[test]
    fn matmul_batch_matches_2d_products() {
        use ndarray::{Axis, s};
        let tape = crate::Tape::eval();
        let a = tape.constant(random(&[2, 1, 3, 4], -1.0, 1.0, 7));
        let b = tape.constant(random(&[5, 4, 2], -1.0, 1.0, 8));
        let c = a.matmul(&b);
        assert_eq!(c.shape(), &[2, 5, 3, 2]);
        for i in 0..2 {
            for j in 0..5 {
                let ai = tape.constant(a.value().slice(s![i, 0, .., ..]).to_owned().into_dyn());
                let bj = tape.constant(b.value().index_axis(Axis(0), j).to_owned());
                let want = ai.matmul(&bj);
                let got = c.value().slice(s![i, j, .., ..]);
                for (x, y) in got.iter().zip(want.value().iter()) {
                    assert!((x - y).abs() < 1e-6);
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "matmul: inner dimensions differ (3 and 4) in [2, 2, 3]·[4, 5]")]
    fn matmul_inner_mismatch_names_both_shapes() {
        let tape = crate::Tape::eval();
        let a = tape.constant(random(&[2, 2, 3], -1.0, 1.0, 1));
        a.matmul(&tape.constant(random(&[4, 5], -1.0, 1.0, 2)));
    }

    #[test]
    #[should_panic(expected = "matmul: expected [m, k]·[k, n], got [2, 3]·[2, 3]")]
    fn matmul_2d_mismatch_names_both_shapes() {
        let tape = crate::Tape::eval();
        let a = tape.constant(random(&[2, 3], -1.0, 1.0, 1));
        a.matmul(&a);
    }

    #[test]
    #[should_panic(expected = "matmul: batch axes [2] and [3] do not broadcast")]
    fn matmul_batches_must_broadcast() {
        let tape = crate::Tape::eval();
        let a = tape.constant(random(&[2, 2, 3], -1.0, 1.0, 1));
        a.matmul(&tape.constant(random(&[3, 3, 2], -1.0, 1.0, 2)));
    }

    #[test]
    #[should_panic(expected = "matmul: both operands need at least one axis")]
    fn matmul_refuses_scalars() {
        let tape = crate::Tape::eval();
        let a = tape.constant(random(&[], -1.0, 1.0, 1));
        a.matmul(&tape.constant(random(&[3], -1.0, 1.0, 2)));
    }

    #[test]
    fn linear_gradients_with_and_without_bias() {
        let x = random(&[5, 3], -1.0, 1.0, 1);
        let w = random(&[4, 3], -1.0, 1.0, 2);
        let b = random(&[4], -1.0, 1.0, 3);
        assert_gradients(vec![x.clone(), w.clone(), b], |v| {
            v[0].linear(&v[1], Some(&v[2]))
        });
        assert_gradients(vec![x, w.clone()], |v| v[0].linear(&v[1], None));
        // Inputs of higher rank map their last axis.
        let x3 = random(&[2, 3, 3], -1.0, 1.0, 4);
        assert_gradients(vec![x3, w], |v| v[0].linear(&v[1], None));
    }

    /// Sparse binary inputs take the event-driven kernels; the gradients stay exact.
    #[test]
    fn linear_with_sparse_input() {
        let x = random(&[6, 40], 0.0, 1.0, 7).mapv(|u| f32::from(u8::from(u < 0.05)));
        let w = random(&[5, 40], -1.0, 1.0, 8);
        assert_gradients(vec![x, w], |v| v[0].linear(&v[1], None));
    }

    #[test]
    fn matmul_matches_naive() {
        let tape = crate::Tape::eval();
        let a = tape.constant(random(&[3, 4], -1.0, 1.0, 5));
        let b = tape.constant(random(&[4, 2], -1.0, 1.0, 6));
        let c = a.matmul(&b);
        let naive = a
            .value()
            .clone()
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap()
            .dot(
                &b.value()
                    .clone()
                    .into_dimensionality::<ndarray::Ix2>()
                    .unwrap(),
            );
        for (x, y) in c.value().iter().zip(naive.iter()) {
            assert!((x - y).abs() < 1e-5);
        }
    }
}
