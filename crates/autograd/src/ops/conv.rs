//! 2-D convolution and transposed convolution (NCHW, PyTorch semantics) over the
//! kernels of `kernels`: the forward pass and the weight gradient go through the density
//! dispatchers of `kernels::event`, so a sparse input (spikes, ReLU maps) takes the
//! event-driven path and a dense one im2col + GEMM. The input gradient is dense, unless
//! the input was declared [`Var::grad_where_nonzero`]: then it is computed at the nonzero
//! inputs only (event-driven while they are sparse).
//!
//! The bias is not part of the kernel: it is a broadcast add of `b` viewed as
//! `[1, C, 1, 1]`, so its gradient comes from the same broadcasting rule as every add.

use ndarray::IxDyn;

use kernels::{Conv2dShape, ConvTranspose2dShape};

use crate::Tensor;
use crate::tape::{Var, op1};
use crate::tensor::Saved;

fn slice(t: &Tensor) -> &[f32] {
    t.as_slice().expect("tensors on the tape are contiguous")
}

/// Runs a kernel that fills a fresh buffer of `shape`.
fn fill(shape: &[usize], kernel: impl FnOnce(&mut [f32])) -> Tensor {
    let mut out = Tensor::zeros(IxDyn(shape));
    kernel(out.as_slice_mut().expect("fresh tensor is contiguous"));
    out
}

fn dims4(op: &str, what: &str, t: &[usize]) -> [usize; 4] {
    t.try_into()
        .unwrap_or_else(|_| panic!("{op}: {what} must be 4-D, got {t:?}"))
}

/// A plain-slice kernel of a convolution kind: `(shape, a, b, out)`.
type ConvKernel<S> = fn(&S, &[f32], &[f32], &mut [f32]);

/// A kernel of three inputs: `(shape, a, b, c, out)`.
type ConvKernel3<S> = fn(&S, &[f32], &[f32], &[f32], &mut [f32]);

/// Both gradients in one kernel: `(shape, x, w, gy, gx, gw)`.
type ConvBackward<S> = fn(&S, &[f32], &[f32], &[f32], &mut [f32], &mut [f32]);

/// The kernels of a convolution kind: forward `(s, x, w, y)`, input gradient
/// `(s, gy, w, gx)`, input gradient at the nonzero inputs `(s, x, w, gy, gx)`, weight
/// gradient `(s, x, gy, gw)`, and both gradients, the input's at the nonzero inputs,
/// `(s, x, w, gy, gx, gw)`.
struct ConvKernels<S> {
    forward: ConvKernel<S>,
    input_grad: ConvKernel<S>,
    input_grad_where_nonzero: ConvKernel3<S>,
    weight_grad: ConvKernel<S>,
    both_where_nonzero: ConvBackward<S>,
}

/// Records a convolution of either kind: forward now, the two gradients in backward.
fn conv_op<'t, S: Copy + 'static>(
    name: &str,
    x: &Var<'t>,
    weight: &Var<'t>,
    s: S,
    out_shape: [usize; 4],
    k: ConvKernels<S>,
) -> Var<'t> {
    let (xv, wt) = (x.shared(), weight.shared());
    let sparse_grad = x.needs_grad_only_where_nonzero();
    let y = fill(&out_shape, |y| (k.forward)(&s, slice(&xv), slice(&wt), y));
    let saved = x.tape().is_recording().then(|| Saved::new(xv));
    op1(x.tape(), name, &[x, weight], y, move |g, needs| {
        let xv = saved.expect("recorded").tensor();
        if sparse_grad && needs[0] && needs[1] {
            let (mut gx, mut gw) = (Tensor::zeros(xv.raw_dim()), Tensor::zeros(wt.raw_dim()));
            let (gx_s, gw_s) = (
                gx.as_slice_mut().expect("fresh tensor is contiguous"),
                gw.as_slice_mut().expect("fresh tensor is contiguous"),
            );
            (k.both_where_nonzero)(&s, slice(&xv), slice(&wt), slice(&g), gx_s, gw_s);
            return vec![Some(gx), Some(gw)];
        }
        let gx = needs[0].then(|| {
            fill(xv.shape(), |gx| {
                if sparse_grad {
                    (k.input_grad_where_nonzero)(&s, slice(&xv), slice(&wt), slice(&g), gx)
                } else {
                    (k.input_grad)(&s, slice(&g), slice(&wt), gx)
                }
            })
        });
        let gw = needs[1].then(|| {
            fill(wt.shape(), |gw| {
                (k.weight_grad)(&s, slice(&xv), slice(&g), gw)
            })
        });
        vec![gx, gw]
    })
}

fn add_bias<'t>(op: &str, y: Var<'t>, bias: Option<&Var<'t>>) -> Var<'t> {
    match bias {
        None => y,
        Some(b) => {
            let c = y.shape()[1];
            assert_eq!(b.shape(), &[c], "{op}: bias must be [{c}]");
            y.add(&b.reshape(&[1, c, 1, 1]))
        }
    }
}

impl<'t> Var<'t> {
    /// `conv2d(x, W) + b` as PyTorch's `F.conv2d`: `x [N, Cin, H, W]`,
    /// `W [Cout, Cin, kh, kw]`, optional `b [Cout]`, the same `stride` and zero `padding`
    /// on both axes.
    ///
    /// # Panics
    /// If the shapes do not fit or the kernel is larger than the padded input.
    pub fn conv2d(
        &self,
        weight: &Var<'t>,
        bias: Option<&Var<'t>>,
        stride: usize,
        padding: usize,
    ) -> Var<'t> {
        let [batch, c_in, h, w] = dims4("conv2d", "input", self.shape());
        let [c_out, wc_in, kh, kw] = dims4("conv2d", "weight", weight.shape());
        assert!(
            wc_in == c_in && stride > 0 && kh <= h + 2 * padding && kw <= w + 2 * padding,
            "conv2d: input {:?}, weight {:?}, stride {stride}, padding {padding} do not fit",
            self.shape(),
            weight.shape()
        );
        let s = Conv2dShape {
            batch,
            c_in,
            h,
            w,
            c_out,
            kh,
            kw,
            stride,
            padding,
        };
        let kernels = ConvKernels {
            forward: kernels::event::conv2d_forward_auto,
            input_grad: kernels::conv2d_backward_input,
            input_grad_where_nonzero: kernels::event::conv2d_backward_input_auto,
            weight_grad: kernels::event::conv2d_backward_weight_auto,
            both_where_nonzero: kernels::event::conv2d_backward_auto,
        };
        let y = conv_op(
            "conv2d",
            self,
            weight,
            s,
            [batch, c_out, s.out_h(), s.out_w()],
            kernels,
        );
        add_bias("conv2d", y, bias)
    }

    /// `conv_transpose2d(x, W) + b` as PyTorch's `F.conv_transpose2d`: `x [N, Cin, H, W]`,
    /// `W [Cin, Cout, kh, kw]`, output `[N, Cout, (H−1)·stride − 2·padding + kh +
    /// output_padding, …]`.
    ///
    /// # Panics
    /// If the shapes do not fit or `output_padding ≥ stride`.
    pub fn conv_transpose2d(
        &self,
        weight: &Var<'t>,
        bias: Option<&Var<'t>>,
        stride: usize,
        padding: usize,
        output_padding: usize,
    ) -> Var<'t> {
        let [batch, c_in, h, w] = dims4("conv_transpose2d", "input", self.shape());
        let [wc_in, c_out, kh, kw] = dims4("conv_transpose2d", "weight", weight.shape());
        assert!(
            wc_in == c_in
                && stride > 0
                && output_padding < stride
                && (h.max(1) - 1) * stride + kh + output_padding > 2 * padding
                && (w.max(1) - 1) * stride + kw + output_padding > 2 * padding,
            "conv_transpose2d: input {:?}, weight {:?}, stride {stride}, padding {padding}, \
             output_padding {output_padding} do not fit",
            self.shape(),
            weight.shape()
        );
        let s = ConvTranspose2dShape {
            batch,
            c_in,
            h,
            w,
            c_out,
            kh,
            kw,
            stride,
            padding,
            output_padding,
        };
        let kernels = ConvKernels {
            forward: kernels::event::conv_transpose2d_forward_auto,
            input_grad: kernels::conv_transpose2d_backward_input,
            input_grad_where_nonzero: kernels::event::conv_transpose2d_backward_input_auto,
            weight_grad: kernels::event::conv_transpose2d_backward_weight_auto,
            both_where_nonzero: kernels::event::conv_transpose2d_backward_auto,
        };
        let y = conv_op(
            "conv_transpose2d",
            self,
            weight,
            s,
            [batch, c_out, s.out_h(), s.out_w()],
            kernels,
        );
        add_bias("conv_transpose2d", y, bias)
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{assert_gradients, random};
    use crate::{Tape, Tensor, Var};

    /// The input gradient of `op` on sparse spikes `x`, with and without
    /// [`Var::grad_where_nonzero`]: they agree where `x` is nonzero, and the declared one
    /// was skipped (left at zero) where `x` is zero.
    fn check_grad_where_nonzero(x: Tensor, op: impl for<'t> Fn(&Var<'t>) -> Var<'t>) {
        let grad = |declared: bool| {
            let tape = Tape::new();
            let v = tape.var(x.clone());
            let input = if declared {
                v.grad_where_nonzero()
            } else {
                v.clone()
            };
            let y = op(&input);
            let seed = random(y.shape(), -1.0, 1.0, 99);
            y.backward_with(seed)
                .get(&v)
                .expect("input gradient")
                .clone()
        };
        let (full, sparse) = (grad(false), grad(true));
        assert!(x.iter().any(|&v| v != 0.0) && x.iter().any(|&v| v == 0.0));
        let close = |a: f32, b: f32| (a - b).abs() <= 1e-5 * (1.0 + b.abs());
        for ((&f, &s), &v) in full.iter().zip(&sparse).zip(&x) {
            // Where x is zero the op may have taken the dense kernel anyway.
            assert!(
                close(s, f) || (v == 0.0 && s == 0.0),
                "{s} vs {f} at x = {v}"
            );
        }
        let skipped = x
            .iter()
            .zip(&sparse)
            .filter(|(v, s)| **v == 0.0 && **s == 0.0);
        assert!(skipped.count() > 0, "the sparse kernel was not taken");
    }

    #[test]
    fn input_gradient_where_nonzero() {
        let spikes = |shape: &[usize], seed| {
            random(shape, 0.0, 1.0, seed).mapv(|u| f32::from(u8::from(u < 0.05)))
        };
        let w = random(&[4, 3, 3, 3], -0.5, 0.5, 1);
        check_grad_where_nonzero(spikes(&[2, 3, 9, 8], 2), |x| {
            let w = x.tape().constant(w.clone());
            x.conv2d(&w, None, 2, 1)
        });
        let wt = random(&[3, 4, 3, 3], -0.5, 0.5, 3);
        check_grad_where_nonzero(spikes(&[2, 3, 5, 6], 4), |x| {
            let w = x.tape().constant(wt.clone());
            x.conv_transpose2d(&w, None, 2, 1, 1)
        });
        // Through reshape, which keeps the declaration.
        check_grad_where_nonzero(spikes(&[6, 2, 3], 5), |x| {
            let w = x.tape().constant(random(&[3, 6], -0.5, 0.5, 6));
            x.reshape(&[6, 6]).linear(&w, None)
        });
    }

    #[test]
    fn conv2d_gradients() {
        // (batch, c_in, h, w, c_out, k, stride, padding): odd sizes, 1×1, strides, padding.
        let cases = [
            (2, 3, 7, 6, 4, 3, 1, 0),
            (1, 1, 5, 5, 1, 1, 1, 0),
            (3, 2, 8, 7, 3, 3, 2, 1),
            (1, 2, 6, 5, 2, 5, 3, 2),
        ];
        for (i, &(n, ci, h, w, co, k, s, p)) in cases.iter().enumerate() {
            let x = random(&[n, ci, h, w], -1.0, 1.0, i as u64);
            let wt = random(&[co, ci, k, k], -0.5, 0.5, 10 + i as u64);
            let b = random(&[co], -0.5, 0.5, 20 + i as u64);
            assert_gradients(vec![x.clone(), wt.clone(), b], |v| {
                v[0].conv2d(&v[1], Some(&v[2]), s, p)
            });
            assert_gradients(vec![x, wt], |v| v[0].conv2d(&v[1], None, s, p));
        }
    }

    #[test]
    fn conv_transpose2d_gradients() {
        // (batch, c_in, h, w, c_out, k, stride, padding, output_padding)
        let cases = [
            (2, 3, 4, 5, 2, 3, 1, 0, 0),
            (1, 2, 3, 3, 3, 3, 2, 1, 1),
            (2, 1, 4, 3, 1, 5, 1, 0, 0),
            (1, 2, 3, 2, 2, 2, 3, 0, 2),
        ];
        for (i, &(n, ci, h, w, co, k, s, p, op)) in cases.iter().enumerate() {
            let x = random(&[n, ci, h, w], -1.0, 1.0, i as u64);
            let wt = random(&[ci, co, k, k], -0.5, 0.5, 10 + i as u64);
            let b = random(&[co], -0.5, 0.5, 20 + i as u64);
            assert_gradients(vec![x, wt, b], |v| {
                v[0].conv_transpose2d(&v[1], Some(&v[2]), s, p, op)
            });
        }
    }

    /// Sparse binary inputs take the event-driven kernels; the gradients stay exact.
    #[test]
    fn sparse_inputs_take_the_event_path() {
        let sparse = |shape: &[usize], seed| {
            random(shape, 0.0, 1.0, seed).mapv(|u| f32::from(u8::from(u < 0.05)))
        };
        let x = sparse(&[3, 2, 9, 8], 1);
        assert!(kernels::event::density(x.as_slice().unwrap()) < 0.2);
        let w = random(&[4, 2, 3, 3], -0.5, 0.5, 2);
        assert_gradients(vec![x, w], |v| v[0].conv2d(&v[1], None, 1, 1));
        let x = sparse(&[2, 3, 5, 4], 3);
        let w = random(&[3, 2, 3, 3], -0.5, 0.5, 4);
        assert_gradients(vec![x, w], |v| v[0].conv_transpose2d(&v[1], None, 2, 1, 1));
    }

    #[test]
    fn conv_transpose2d_output_shape() {
        let tape = crate::Tape::eval();
        let x = tape.constant(random(&[2, 32, 20, 20], -1.0, 1.0, 1));
        let w = tape.constant(random(&[32, 16, 5, 5], -1.0, 1.0, 2));
        assert_eq!(
            x.conv_transpose2d(&w, None, 1, 0, 0).shape(),
            &[2, 16, 24, 24]
        );
    }
}
