//! Matrix products: `matmul` and the affine `linear` layer, over `kernels::sgemm`.
//!
//! Both backward products reuse the same GEMM with transposed strides, so no transposed
//! copy is ever made: for `C = A·B`, `∂A = G·Bᵀ` and `∂B = Aᵀ·G`. `linear`'s forward
//! pass and weight gradient go through the density dispatchers of `kernels::event`, so
//! a sparse input takes the event-driven path.

use ndarray::IxDyn;

use crate::Tensor;
use crate::tape::{Var, op1};
use crate::tensor::Saved;

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

impl<'t> Var<'t> {
    /// Matrix product of two 2-D values: `[m, k] · [k, n] → [m, n]`.
    ///
    /// # Panics
    /// If either is not 2-D or the inner dimensions differ.
    pub fn matmul(&self, other: &Var<'t>) -> Var<'t> {
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

    /// The affine map `y = x·Wᵀ + b` of PyTorch's `nn.Linear`: `x [.., in]`,
    /// `W [out, in]`, optional `b [out]`, `y [.., out]`.
    ///
    /// # Panics
    /// If the shapes do not fit.
    pub fn linear(&self, weight: &Var<'t>, bias: Option<&Var<'t>>) -> Var<'t> {
        let (x, w) = (self.shared(), weight.shared());
        assert!(
            w.ndim() == 2 && x.ndim() >= 1 && x.shape()[x.ndim() - 1] == w.shape()[1],
            "linear: input {:?} does not fit weight {:?} ([out, in])",
            x.shape(),
            w.shape()
        );
        let (fan_out, fan_in) = (w.shape()[0], w.shape()[1]);
        let rows = x.len() / fan_in.max(1);
        let mut out_shape = x.shape().to_vec();
        *out_shape.last_mut().expect("rank ≥ 1") = fan_out;
        let mut y = vec![0.0; rows * fan_out];
        kernels::event::linear_forward_auto(rows, fan_in, fan_out, slice(&x), slice(&w), &mut y);
        let x_shape = x.shape().to_vec();
        let out = tensor(&out_shape, y);
        let sparse_grad = self.needs_grad_only_where_nonzero();
        let saved = self.tape().is_recording().then(|| Saved::new(x));
        let y = op1(
            self.tape(),
            "linear",
            &[self, weight],
            out,
            move |g, needs| {
                let x = saved.expect("recorded").tensor();
                let gx = needs[0].then(|| {
                    let mut gx = vec![0.0; x.len()];
                    let (x, w, g) = (slice(&x), slice(&w), slice(&g));
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
                        slice(&x),
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
