//! Average and max pooling over 2-D windows (NCHW, PyTorch semantics), over
//! `kernels::pool` for square windows without padding and `kernels::pool_general` for
//! the rest: per-axis windows, strides and padding, and ceil mode.
//!
//! Methods on [`Var`]: [`avg_pool2d`](Var::avg_pool2d), [`max_pool2d`](Var::max_pool2d)
//! (square windows, no padding) and [`avg_pool2d_with`](Var::avg_pool2d_with),
//! [`max_pool2d_with`](Var::max_pool2d_with) ([`Pool2dOptions`]).

use ndarray::IxDyn;

use kernels::{GeneralPool2dShape, Pool2dShape};

use crate::Tensor;
use crate::ops::conv::IntoPair;
use crate::tape::Var;

/// The arguments of [`Var::avg_pool2d_with`] and [`Var::max_pool2d_with`], as in
/// `F.avg_pool2d` and `F.max_pool2d`, each pair `(height, width)`. [`Pool2dOptions::new`]
/// takes the window; the stride defaults to it, the rest as in PyTorch.
///
/// ```
/// use autograd::ops::pool::Pool2dOptions;
///
/// let opts = Pool2dOptions::new((3, 2)).stride(2).padding((1, 0)).count_include_pad(false);
/// assert_eq!((opts.kernel, opts.stride, opts.padding), ((3, 2), (2, 2), (1, 0)));
/// assert!(!opts.count_include_pad && !opts.ceil_mode);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dOptions {
    /// Window size.
    pub kernel: (usize, usize),
    /// Step between windows.
    pub stride: (usize, usize),
    /// Implicit padding on each side, at most half the window. Padded cells are never a
    /// maximum, and add nothing to an average's sum.
    pub padding: (usize, usize),
    /// Round the output size up rather than down, keeping a last, partial window (never
    /// one that starts in the bottom or right padding).
    pub ceil_mode: bool,
    /// Average pooling only: divide each window's sum by its full size, padded cells
    /// included (true, PyTorch's default), or by its cells inside the input (false).
    pub count_include_pad: bool,
}

impl Pool2dOptions {
    /// Windows of `kernel` (one number for both axes, or `(kh, kw)`), moved by their own
    /// size, no padding, floor mode, padding counted in averages.
    pub fn new(kernel: impl IntoPair) -> Self {
        let kernel = kernel.into_pair();
        Pool2dOptions {
            kernel,
            stride: kernel,
            padding: (0, 0),
            ceil_mode: false,
            count_include_pad: true,
        }
    }

    /// With this stride (one number for both axes, or `(sh, sw)`).
    pub fn stride(self, stride: impl IntoPair) -> Self {
        let stride = stride.into_pair();
        Pool2dOptions { stride, ..self }
    }

    /// With this padding on each side (one number for both axes, or `(ph, pw)`).
    pub fn padding(self, padding: impl IntoPair) -> Self {
        let padding = padding.into_pair();
        Pool2dOptions { padding, ..self }
    }

    /// With the output size rounded up (true) or down (false).
    pub fn ceil_mode(self, ceil_mode: bool) -> Self {
        Pool2dOptions { ceil_mode, ..self }
    }

    /// With averages divided by the whole window (true) or its cells inside the input
    /// (false).
    pub fn count_include_pad(self, count_include_pad: bool) -> Self {
        Pool2dOptions {
            count_include_pad,
            ..self
        }
    }
}

/// The kernels' shape for pooling `x` with `o`: the fast square one when the windows are
/// square and unpadded in floor mode, the general one otherwise.
enum Shape {
    Square(Pool2dShape),
    General(GeneralPool2dShape),
}

impl Shape {
    /// Output `[N, C, Hout, Wout]` for input `[N, C, …]`.
    fn out_shape(&self, x: &[usize]) -> [usize; 4] {
        match self {
            Shape::Square(s) => [x[0], x[1], s.out_h(), s.out_w()],
            Shape::General(s) => [x[0], x[1], s.out_h(), s.out_w()],
        }
    }
}

/// Per-axis values as PyTorch prints sizes: `5×3`.
fn dims((a, b): (usize, usize)) -> String {
    format!("{a}×{b}")
}

/// Checks that `o` fits input shape `x`, panicking with a message that names `op`, and
/// picks the kernels' shape.
#[track_caller]
fn pool_shape(op: &str, x: &[usize], o: &Pool2dOptions) -> Shape {
    let [n, c, h, w]: [usize; 4] = match x.try_into() {
        Ok(dims) => dims,
        Err(_) => panic!("{op}: input must be 4-D [N, C, H, W], got {x:?}"),
    };
    let ((kh, kw), (sh, sw), (ph, pw)) = (o.kernel, o.stride, o.padding);
    if kh == 0 || kw == 0 || sh == 0 || sw == 0 {
        panic!(
            "{op}: kernel {} and stride {} must be positive",
            dims(o.kernel),
            dims(o.stride)
        );
    }
    if 2 * ph > kh || 2 * pw > kw {
        panic!(
            "{op}: padding {} must be at most half the kernel {}",
            dims(o.padding),
            dims(o.kernel)
        );
    }
    if kh > h + 2 * ph || kw > w + 2 * pw {
        panic!(
            "{op}: kernel {} is larger than the padded input {} (input {x:?}, padding {})",
            dims(o.kernel),
            dims((h + 2 * ph, w + 2 * pw)),
            dims(o.padding)
        );
    }
    if o.padding == (0, 0) && !o.ceil_mode && kh == kw && sh == sw {
        Shape::Square(Pool2dShape {
            planes: n * c,
            h,
            w,
            kernel: kh,
            stride: sh,
        })
    } else {
        Shape::General(GeneralPool2dShape {
            planes: n * c,
            h,
            w,
            kernel: o.kernel,
            stride: o.stride,
            padding: o.padding,
            ceil_mode: o.ceil_mode,
        })
    }
}

fn slice(t: &Tensor) -> &[f32] {
    t.as_slice().expect("tensors on the tape are contiguous")
}

impl<'t> Var<'t> {
    /// Mean over `kernel × kernel` windows moved by `stride` (`F.avg_pool2d`), no padding:
    /// the square shorthand of [`Var::avg_pool2d_with`].
    ///
    /// # Panics
    /// If the input is not 4-D, `kernel` or `stride` is 0, or the window is larger than
    /// the input.
    #[track_caller]
    pub fn avg_pool2d(&self, kernel: usize, stride: usize) -> Var<'t> {
        self.avg_pool2d_with(&Pool2dOptions::new(kernel).stride(stride))
    }

    /// Mean over windows as PyTorch's `F.avg_pool2d` with every argument but
    /// `divisor_override`: `x [N, C, H, W]` to `[N, C, Hout, Wout]` with
    /// `Hout = (H + 2·ph − kh) / sh + 1`, the division rounded down (or up in ceil mode).
    ///
    /// # Panics
    /// If the input is not 4-D, the window or stride has a 0, the padding is more than
    /// half the window, or the window is larger than the padded input.
    #[track_caller]
    pub fn avg_pool2d_with(&self, opts: &Pool2dOptions) -> Var<'t> {
        let shape = pool_shape("avg_pool2d", self.shape(), opts);
        let mut y = Tensor::zeros(IxDyn(&shape.out_shape(self.shape())));
        let (x, out) = (slice(self.value()), y.as_slice_mut().expect("fresh"));
        let include_pad = opts.count_include_pad;
        match &shape {
            Shape::Square(s) => kernels::avg_pool2d_forward(s, x, out),
            Shape::General(s) => kernels::avg_pool2d_general_forward(s, include_pad, x, out),
        }
        let in_dim = self.value().raw_dim();
        self.unary_op("avg_pool2d", y, move |g, _| {
            let mut gx = Tensor::zeros(in_dim);
            let (g, out) = (slice(&g), gx.as_slice_mut().expect("fresh"));
            match &shape {
                Shape::Square(s) => kernels::avg_pool2d_backward(s, g, out),
                Shape::General(s) => kernels::avg_pool2d_general_backward(s, include_pad, g, out),
            }
            vec![Some(gx)]
        })
    }

    /// Maximum over `kernel × kernel` windows moved by `stride` (`F.max_pool2d`), no
    /// padding: the square shorthand of [`Var::max_pool2d_with`].
    ///
    /// # Panics
    /// If the input is not 4-D, `kernel` or `stride` is 0, or the window is larger than
    /// the input.
    #[track_caller]
    pub fn max_pool2d(&self, kernel: usize, stride: usize) -> Var<'t> {
        self.max_pool2d_with(&Pool2dOptions::new(kernel).stride(stride))
    }

    /// Maximum over windows as PyTorch's `F.max_pool2d` without dilation: `x [N, C, H, W]`
    /// to `[N, C, Hout, Wout]` sized as in [`Var::avg_pool2d_with`]. Padded cells never
    /// win; the gradient goes to the first position of each window's maximum.
    /// (`count_include_pad` plays no part.)
    ///
    /// # Panics
    /// If the input is not 4-D, the window or stride has a 0, the padding is more than
    /// half the window, or the window is larger than the padded input.
    #[track_caller]
    pub fn max_pool2d_with(&self, opts: &Pool2dOptions) -> Var<'t> {
        let shape = pool_shape("max_pool2d", self.shape(), opts);
        let mut y = Tensor::zeros(IxDyn(&shape.out_shape(self.shape())));
        let mut argmax = vec![0u32; y.len()];
        let (x, out) = (slice(self.value()), y.as_slice_mut().expect("fresh"));
        match &shape {
            Shape::Square(s) => kernels::max_pool2d_forward(s, x, out, &mut argmax),
            Shape::General(s) => kernels::max_pool2d_general_forward(s, x, out, &mut argmax),
        }
        let in_dim = self.value().raw_dim();
        self.unary_op("max_pool2d", y, move |g, _| {
            let mut gx = Tensor::zeros(in_dim);
            let (g, out) = (slice(&g), gx.as_slice_mut().expect("fresh"));
            match &shape {
                Shape::Square(s) => kernels::max_pool2d_backward(s, g, &argmax, out),
                Shape::General(s) => kernels::max_pool2d_general_backward(s, g, &argmax, out),
            }
            vec![Some(gx)]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Pool2dOptions;
    use crate::gradcheck::{assert_gradients, random};
    use crate::{Tape, Tensor};

    /// A tensor of `shape` with distinct negative values spaced well above the
    /// finite-difference step, so each window's maximum is clear, in a scrambled order.
    fn distinct_negative(shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        let values = (0..n)
            .map(|j| -1.0 - ((j * 7919) % n) as f32 * 0.1)
            .collect();
        Tensor::from_shape_vec(ndarray::IxDyn(shape), values).unwrap()
    }

    #[test]
    fn pooling_gradients() {
        for (i, &(h, w, k, s)) in [(6, 6, 2, 2), (7, 5, 3, 2), (5, 4, 2, 1), (3, 3, 3, 3)]
            .iter()
            .enumerate()
        {
            let x = random(&[2, 3, h, w], -1.0, 1.0, i as u64);
            assert_gradients(vec![x.clone()], |v| v[0].avg_pool2d(k, s));
            // Distinct values spaced well above ε, so each window's maximum is clear.
            let n = x.len();
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by_key(|&j| (j * 7919) % n);
            let distinct = crate::Tensor::from_shape_vec(
                x.raw_dim(),
                order.iter().map(|&j| j as f32 * 0.1).collect(),
            )
            .unwrap();
            assert_gradients(vec![distinct], |v| v[0].max_pool2d(k, s));
        }
    }

    #[test]
    fn padded_pooling_gradients() {
        // (h, w, kernel, stride, padding, ceil_mode): odd sizes, per-axis values, partial
        // ceil-mode windows.
        let cases = [
            (7, 6, (3, 2), (2, 2), (1, 1), false),
            (5, 7, (3, 3), (2, 1), (1, 1), true),
            (6, 5, (2, 3), (2, 2), (1, 0), true),
            (4, 4, (4, 2), (3, 1), (2, 1), false),
            (5, 5, (2, 2), (2, 2), (0, 0), true),
        ];
        for (i, &(h, w, kernel, stride, padding, ceil_mode)) in cases.iter().enumerate() {
            let opts = Pool2dOptions::new(kernel)
                .stride(stride)
                .padding(padding)
                .ceil_mode(ceil_mode);
            let x = random(&[2, 3, h, w], -1.0, 1.0, i as u64);
            for include in [true, false] {
                let opts = opts.count_include_pad(include);
                assert_gradients(vec![x.clone()], |v| v[0].avg_pool2d_with(&opts));
            }
            // All negative: a padded zero would win every border window.
            let x = distinct_negative(&[2, 3, h, w]);
            assert_gradients(vec![x], |v| v[0].max_pool2d_with(&opts));
        }
    }

    #[test]
    fn padding_by_hand() {
        // 2×2 windows, stride 2, padding 1 over one 3×3 plane of −1…−9: four windows, the
        // corners alone, the edges in pairs, the centre quartet in the last.
        let tape = Tape::eval();
        let x = Tensor::from_shape_vec(
            ndarray::IxDyn(&[1, 1, 3, 3]),
            (1..=9).map(|v| -(v as f32)).collect(),
        )
        .unwrap();
        let x = tape.constant(x);
        let opts = Pool2dOptions::new(2).padding(1);
        let max = x.max_pool2d_with(&opts);
        assert_eq!(max.value().as_slice().unwrap(), &[-1.0, -2.0, -4.0, -5.0]);
        let avg = x.avg_pool2d_with(&opts);
        assert_eq!(
            avg.value().as_slice().unwrap(),
            &[-0.25, -1.25, -2.75, -7.0]
        );
        let avg = x.avg_pool2d_with(&opts.count_include_pad(false));
        assert_eq!(avg.value().as_slice().unwrap(), &[-1.0, -2.5, -5.5, -7.0]);
    }

    #[test]
    #[should_panic(expected = "max_pool2d: padding 2×2 must be at most half the kernel 3×3")]
    fn padding_at_most_half_the_kernel() {
        let tape = Tape::eval();
        let x = tape.constant(Tensor::zeros(ndarray::IxDyn(&[1, 1, 4, 4])));
        x.max_pool2d_with(&Pool2dOptions::new(3).padding(2));
    }

    #[test]
    #[should_panic(
        expected = "avg_pool2d: kernel 5×5 is larger than the padded input 4×4 (input [1, 2, 4, 4], padding 0×0)"
    )]
    fn kernel_must_fit() {
        let tape = Tape::eval();
        let x = tape.constant(Tensor::zeros(ndarray::IxDyn(&[1, 2, 4, 4])));
        x.avg_pool2d(5, 1);
    }

    #[test]
    #[should_panic(expected = "avg_pool2d: input must be 4-D [N, C, H, W], got [2, 4, 4]")]
    fn pooling_needs_a_4d_input() {
        let tape = Tape::eval();
        let x = tape.constant(Tensor::zeros(ndarray::IxDyn(&[2, 4, 4])));
        x.avg_pool2d_with(&Pool2dOptions::new(2));
    }
}
