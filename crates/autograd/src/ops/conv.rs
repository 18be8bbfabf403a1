//! Convolutions (PyTorch semantics, NCHW and NCL) over the kernels of `kernels`: 2-D
//! convolution and transposed convolution, and 1-D convolution as the 2-D one over a unit
//! height.
//!
//! Two kernel families serve them. The square case the spiking network runs (one stride
//! and one padding for both axes, no dilation, one group) goes through the density
//! dispatchers of `kernels::event`: the forward pass and the weight gradient take the
//! event-driven path on a sparse input (spikes, ReLU maps) and im2col + GEMM on a dense
//! one. The input gradient is dense, unless the input was declared
//! [`Var::grad_where_nonzero`]: then it is computed at the nonzero inputs only
//! (event-driven while they are sparse). Every other case (per-axis stride and padding,
//! dilation, groups) goes through `kernels::conv_general`: im2col + one GEMM per group,
//! dense throughout, every gradient computed in full.
//!
//! The bias is not part of the kernel: it is a broadcast add of `b` viewed as
//! `[1, C, 1, 1]`, so its gradient comes from the same broadcasting rule as every add.
//!
//! Methods on [`Var`]: [`conv2d`](Var::conv2d) and [`conv2d_with`](Var::conv2d_with)
//! ([`Conv2dOptions`]), [`conv_transpose2d`](Var::conv_transpose2d) and
//! [`conv_transpose2d_with`](Var::conv_transpose2d_with) ([`ConvTranspose2dOptions`]),
//! [`conv1d`](Var::conv1d) ([`Conv1dOptions`]). Pooling is in [`pool`](super::pool).

use kernels::event::Input;
use kernels::{Conv2dShape, ConvTranspose2dShape, GeneralConv2dShape, GeneralConvTranspose2dShape};

use crate::Tensor;
use crate::tape::{Var, op1};
use crate::tensor::{Saved, zeros};

/// A per-axis `(height, width)` argument given as one number for both axes or as a pair,
/// like the "int or tuple" arguments of PyTorch's convolutions and pools.
pub trait IntoPair {
    /// The `(height, width)` pair.
    fn into_pair(self) -> (usize, usize);
}

impl IntoPair for usize {
    /// The same value on both axes.
    fn into_pair(self) -> (usize, usize) {
        (self, self)
    }
}

impl IntoPair for (usize, usize) {
    /// The pair as it is.
    fn into_pair(self) -> (usize, usize) {
        self
    }
}

impl IntoPair for [usize; 2] {
    /// `[height, width]` as a pair.
    fn into_pair(self) -> (usize, usize) {
        (self[0], self[1])
    }
}

/// The arguments of [`Var::conv2d_with`] after the weight and bias, as in `F.conv2d`, each
/// pair `(height, width)`. The default is a plain convolution: stride 1, no padding, no
/// dilation, one group; chained setters change it.
///
/// ```
/// use autograd::ops::conv::Conv2dOptions;
///
/// let opts = Conv2dOptions::new().stride((2, 1)).padding(1).groups(4);
/// assert_eq!((opts.stride, opts.padding, opts.groups), ((2, 1), (1, 1), 4));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dOptions {
    /// Step between windows.
    pub stride: (usize, usize),
    /// Zeros added on each side of the input.
    pub padding: (usize, usize),
    /// Step between a window's taps (1: adjacent taps).
    pub dilation: (usize, usize),
    /// Channel groups: the input and output channels are split into `groups` equal
    /// blocks, and each block of filters sees only its block of input channels
    /// (`groups = C_in`: a depthwise convolution).
    pub groups: usize,
}

impl Default for Conv2dOptions {
    /// Stride 1, no padding, no dilation, one group.
    fn default() -> Self {
        Conv2dOptions {
            stride: (1, 1),
            padding: (0, 0),
            dilation: (1, 1),
            groups: 1,
        }
    }
}

impl Conv2dOptions {
    /// The default: stride 1, no padding, no dilation, one group.
    pub fn new() -> Self {
        Self::default()
    }

    /// With this stride (one number for both axes, or `(sh, sw)`).
    pub fn stride(self, stride: impl IntoPair) -> Self {
        let stride = stride.into_pair();
        Conv2dOptions { stride, ..self }
    }

    /// With this zero padding on each side (one number for both axes, or `(ph, pw)`).
    pub fn padding(self, padding: impl IntoPair) -> Self {
        let padding = padding.into_pair();
        Conv2dOptions { padding, ..self }
    }

    /// With this dilation (one number for both axes, or `(dh, dw)`).
    pub fn dilation(self, dilation: impl IntoPair) -> Self {
        let dilation = dilation.into_pair();
        Conv2dOptions { dilation, ..self }
    }

    /// With this many channel groups.
    pub fn groups(self, groups: usize) -> Self {
        Conv2dOptions { groups, ..self }
    }

    /// Whether these are the square, ungrouped, undilated arguments the fast kernels take.
    fn is_square(&self) -> bool {
        self.groups == 1
            && self.dilation == (1, 1)
            && self.stride.0 == self.stride.1
            && self.padding.0 == self.padding.1
    }
}

/// The arguments of [`Var::conv_transpose2d_with`] after the weight and bias, as in
/// `F.conv_transpose2d`, each pair `(height, width)`. The default is stride 1, no padding
/// or output padding, no dilation, one group; chained setters change it.
///
/// ```
/// use autograd::ops::conv::ConvTranspose2dOptions;
///
/// let opts = ConvTranspose2dOptions::new().stride(2).padding(1).output_padding((1, 0));
/// assert_eq!(opts.output_padding, (1, 0));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dOptions {
    /// Step between the kernel's placements in the output.
    pub stride: (usize, usize),
    /// Rows and columns cropped from each side of the full output.
    pub padding: (usize, usize),
    /// Extra rows at the bottom and columns at the right of the output; each must be
    /// smaller than its axis's stride or dilation.
    pub output_padding: (usize, usize),
    /// Step between a kernel's taps in the output.
    pub dilation: (usize, usize),
    /// Channel groups, as in [`Conv2dOptions::groups`].
    pub groups: usize,
}

impl Default for ConvTranspose2dOptions {
    /// Stride 1, no padding or output padding, no dilation, one group.
    fn default() -> Self {
        ConvTranspose2dOptions {
            stride: (1, 1),
            padding: (0, 0),
            output_padding: (0, 0),
            dilation: (1, 1),
            groups: 1,
        }
    }
}

impl ConvTranspose2dOptions {
    /// The default: stride 1, no padding or output padding, no dilation, one group.
    pub fn new() -> Self {
        Self::default()
    }

    /// With this stride (one number for both axes, or `(sh, sw)`).
    pub fn stride(self, stride: impl IntoPair) -> Self {
        let stride = stride.into_pair();
        ConvTranspose2dOptions { stride, ..self }
    }

    /// With this padding (one number for both axes, or `(ph, pw)`).
    pub fn padding(self, padding: impl IntoPair) -> Self {
        let padding = padding.into_pair();
        ConvTranspose2dOptions { padding, ..self }
    }

    /// With this output padding (one number for both axes, or `(oph, opw)`).
    pub fn output_padding(self, output_padding: impl IntoPair) -> Self {
        let output_padding = output_padding.into_pair();
        ConvTranspose2dOptions {
            output_padding,
            ..self
        }
    }

    /// With this dilation (one number for both axes, or `(dh, dw)`).
    pub fn dilation(self, dilation: impl IntoPair) -> Self {
        let dilation = dilation.into_pair();
        ConvTranspose2dOptions { dilation, ..self }
    }

    /// With this many channel groups.
    pub fn groups(self, groups: usize) -> Self {
        ConvTranspose2dOptions { groups, ..self }
    }

    /// Whether these are the square, ungrouped, undilated arguments the fast kernels take.
    fn is_square(&self) -> bool {
        self.groups == 1
            && self.dilation == (1, 1)
            && self.stride.0 == self.stride.1
            && self.padding.0 == self.padding.1
            && self.output_padding.0 == self.output_padding.1
    }
}

/// The arguments of [`Var::conv1d`] after the weight and bias, as in `F.conv1d`. The
/// default is stride 1, no padding, no dilation, one group; chained setters change it.
///
/// ```
/// use autograd::ops::conv::Conv1dOptions;
///
/// let opts = Conv1dOptions::new().stride(2).dilation(3).groups(2);
/// assert_eq!((opts.stride, opts.padding, opts.dilation, opts.groups), (2, 0, 3, 2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv1dOptions {
    /// Step between windows.
    pub stride: usize,
    /// Zeros added at both ends of the input.
    pub padding: usize,
    /// Step between a window's taps.
    pub dilation: usize,
    /// Channel groups, as in [`Conv2dOptions::groups`].
    pub groups: usize,
}

impl Default for Conv1dOptions {
    /// Stride 1, no padding, no dilation, one group.
    fn default() -> Self {
        Conv1dOptions {
            stride: 1,
            padding: 0,
            dilation: 1,
            groups: 1,
        }
    }
}

impl Conv1dOptions {
    /// The default: stride 1, no padding, no dilation, one group.
    pub fn new() -> Self {
        Self::default()
    }

    /// With this stride.
    pub fn stride(self, stride: usize) -> Self {
        Conv1dOptions { stride, ..self }
    }

    /// With this zero padding at both ends.
    pub fn padding(self, padding: usize) -> Self {
        Conv1dOptions { padding, ..self }
    }

    /// With this dilation.
    pub fn dilation(self, dilation: usize) -> Self {
        Conv1dOptions { dilation, ..self }
    }

    /// With this many channel groups.
    pub fn groups(self, groups: usize) -> Self {
        Conv1dOptions { groups, ..self }
    }
}

fn slice(t: &Tensor) -> &[f32] {
    t.as_slice().expect("tensors on the tape are contiguous")
}

/// Runs a kernel that fills a fresh buffer of `shape`.
fn fill(shape: &[usize], kernel: impl FnOnce(&mut [f32])) -> Tensor {
    let mut out = zeros(shape);
    kernel(out.as_slice_mut().expect("fresh tensor is contiguous"));
    out
}

/// Per-axis values as PyTorch prints sizes: `5×3`, or `5` for one axis.
fn dims(v: &[usize]) -> String {
    let v: Vec<String> = v.iter().map(usize::to_string).collect();
    v.join("×")
}

/// `v` as `[a, b, c, d]`; the caller has checked its rank.
fn four(v: &[usize]) -> [usize; 4] {
    v.try_into().expect("rank checked")
}

/// Panics, naming `op` and the shapes, unless a convolution with weight shape `w` and
/// these per-axis arguments (one entry per spatial axis) fits input shape `x`.
#[track_caller]
fn check_conv(
    op: &str,
    x: &[usize],
    w: &[usize],
    stride: &[usize],
    padding: &[usize],
    dilation: &[usize],
    groups: usize,
) {
    let rank = 2 + stride.len();
    let (axes, taps) = if rank == 4 {
        ("H, W", "kh, kw")
    } else {
        ("L", "k")
    };
    if x.len() != rank {
        panic!("{op}: input must be {rank}-D [N, C_in, {axes}], got {x:?}");
    }
    if w.len() != rank {
        panic!("{op}: weight must be {rank}-D [C_out, C_in/groups, {taps}], got {w:?}");
    }
    if groups == 0 || stride.contains(&0) || dilation.contains(&0) {
        panic!(
            "{op}: stride {}, dilation {} and groups {groups} must be positive",
            dims(stride),
            dims(dilation)
        );
    }
    let (c_in, c_out, per_group, kernel) = (x[1], w[0], w[1], &w[2..]);
    if kernel.contains(&0) {
        panic!("{op}: weight {w:?} has an empty kernel");
    }
    if c_in != per_group * groups {
        if groups == 1 {
            panic!(
                "{op}: input has {c_in} channels, weight expects {per_group}; input {x:?}, weight {w:?}"
            );
        }
        panic!(
            "{op}: input has {c_in} channels, weight expects {} (= {per_group} per group × \
             {groups} groups); input {x:?}, weight {w:?}",
            per_group * groups
        );
    }
    if c_out % groups != 0 {
        panic!("{op}: weight {w:?} has {c_out} output channels, not divisible by {groups} groups");
    }
    let input = &x[2..];
    let padded: Vec<usize> = input.iter().zip(padding).map(|(n, p)| n + 2 * p).collect();
    let span: Vec<usize> = kernel
        .iter()
        .zip(dilation)
        .map(|(k, d)| d * (k - 1) + 1)
        .collect();
    if span.iter().zip(&padded).any(|(s, p)| s > p) {
        let dilated = if dilation.iter().all(|&d| d == 1) {
            String::new()
        } else {
            format!(
                " with dilation {} spans {}, which",
                dims(dilation),
                dims(&span)
            )
        };
        panic!(
            "{op}: kernel {}{dilated} is larger than the padded input {} (input {}, padding {})",
            dims(kernel),
            dims(&padded),
            dims(input),
            dims(padding)
        );
    }
}

/// Panics, naming `op`, unless a transposed convolution with weight shape `w` and
/// arguments `o` fits input shape `x`.
#[track_caller]
fn check_conv_transpose(x: &[usize], w: &[usize], o: &ConvTranspose2dOptions) {
    let op = "conv_transpose2d";
    if x.len() != 4 {
        panic!("{op}: input must be 4-D [N, C_in, H, W], got {x:?}");
    }
    if w.len() != 4 {
        panic!("{op}: weight must be 4-D [C_in, C_out/groups, kh, kw], got {w:?}");
    }
    let pair = |(a, b): (usize, usize)| [a, b];
    let (stride, padding, dilation) = (pair(o.stride), pair(o.padding), pair(o.dilation));
    let output_padding = pair(o.output_padding);
    if o.groups == 0 || stride.contains(&0) || dilation.contains(&0) {
        panic!(
            "{op}: stride {}, dilation {} and groups {} must be positive",
            dims(&stride),
            dims(&dilation),
            o.groups
        );
    }
    let (c_in, kernel, input) = (x[1], &w[2..], &x[2..]);
    if kernel.contains(&0) {
        panic!("{op}: weight {w:?} has an empty kernel");
    }
    if input.contains(&0) {
        panic!("{op}: input {x:?} has an empty plane");
    }
    if w[0] != c_in {
        panic!(
            "{op}: input has {c_in} channels, weight expects {} (its first axis); input {x:?}, \
             weight {w:?}",
            w[0]
        );
    }
    if c_in % o.groups != 0 {
        panic!(
            "{op}: input {x:?} has {c_in} channels, not divisible by {} groups",
            o.groups
        );
    }
    if (0..2).any(|a| output_padding[a] >= stride[a] && output_padding[a] >= dilation[a]) {
        panic!(
            "{op}: output_padding {} must be smaller than stride {} or dilation {} on each axis",
            dims(&output_padding),
            dims(&stride),
            dims(&dilation)
        );
    }
    let full: Vec<usize> = (0..2)
        .map(|a| (input[a] - 1) * stride[a] + dilation[a] * (kernel[a] - 1) + 1 + output_padding[a])
        .collect();
    if (0..2).any(|a| full[a] <= 2 * padding[a]) {
        panic!(
            "{op}: padding {} leaves no output: input {} with kernel {} gives {} before cropping",
            dims(&padding),
            dims(input),
            dims(kernel),
            dims(&full)
        );
    }
}

/// Panics, naming `op`, unless `bias` is absent or has one value per output channel.
#[track_caller]
fn check_bias(op: &str, bias: Option<&Var<'_>>, c_out: usize) {
    if let Some(b) = bias.filter(|b| b.shape() != [c_out]) {
        panic!(
            "{op}: bias must be [{c_out}] (one per output channel), got {:?}",
            b.shape()
        );
    }
}

/// A plain-slice kernel of a convolution kind: `(shape, a, b, out)`.
type ConvKernel<S> = fn(&S, &[f32], &[f32], &mut [f32]);

/// A kernel reading the layer's input `x` (values or bits): `(shape, x, b, out)`.
type InputKernel<S> = fn(&S, Input<'_>, &[f32], &mut [f32]);

/// A kernel of three inputs, the first `x`: `(shape, x, b, c, out)`.
type InputKernel3<S> = fn(&S, Input<'_>, &[f32], &[f32], &mut [f32]);

/// Both gradients in one kernel: `(shape, x, w, gy, gx, gw)`.
type ConvBackward<S> = fn(&S, Input<'_>, &[f32], &[f32], &mut [f32], &mut [f32]);

/// The kernels of a convolution kind: forward `(s, x, w, y)`, input gradient
/// `(s, gy, w, gx)`, input gradient at the nonzero inputs `(s, x, w, gy, gx)`, weight
/// gradient `(s, x, gy, gw)`, and both gradients, the input's at the nonzero inputs,
/// `(s, x, w, gy, gx, gw)`.
struct ConvKernels<S> {
    forward: InputKernel<S>,
    input_grad: ConvKernel<S>,
    input_grad_where_nonzero: InputKernel3<S>,
    weight_grad: InputKernel<S>,
    both_where_nonzero: ConvBackward<S>,
}

/// The square convolution's kernels: the density dispatchers of `kernels::event`.
const CONV2D: ConvKernels<Conv2dShape> = ConvKernels {
    forward: kernels::event::conv2d_forward_auto,
    input_grad: kernels::conv2d_backward_input,
    input_grad_where_nonzero: kernels::event::conv2d_backward_input_auto,
    weight_grad: kernels::event::conv2d_backward_weight_auto,
    both_where_nonzero: kernels::event::conv2d_backward_auto,
};

/// The square transposed convolution's kernels: the density dispatchers of
/// `kernels::event`.
const CONV_TRANSPOSE2D: ConvKernels<ConvTranspose2dShape> = ConvKernels {
    forward: kernels::event::conv_transpose2d_forward_auto,
    input_grad: kernels::conv_transpose2d_backward_input,
    input_grad_where_nonzero: kernels::event::conv_transpose2d_backward_input_auto,
    weight_grad: kernels::event::conv_transpose2d_backward_weight_auto,
    both_where_nonzero: kernels::event::conv_transpose2d_backward_auto,
};

/// The general convolution's kernels: dense, so a declared sparse input gradient is
/// computed in full (which [`Var::grad_where_nonzero`] allows).
const GENERAL_CONV2D: ConvKernels<GeneralConv2dShape> = ConvKernels {
    forward: |s, x, w, y| kernels::conv2d_general_forward(s, &x.values(), w, y),
    input_grad: kernels::conv2d_general_backward_input,
    input_grad_where_nonzero: |s, _, w, gy, gx| {
        kernels::conv2d_general_backward_input(s, gy, w, gx)
    },
    weight_grad: |s, x, gy, gw| kernels::conv2d_general_backward_weight(s, &x.values(), gy, gw),
    both_where_nonzero: |s, x, w, gy, gx, gw| {
        kernels::conv2d_general_backward_input(s, gy, w, gx);
        kernels::conv2d_general_backward_weight(s, &x.values(), gy, gw);
    },
};

/// The general transposed convolution's kernels, dense as [`GENERAL_CONV2D`].
const GENERAL_CONV_TRANSPOSE2D: ConvKernels<GeneralConvTranspose2dShape> = ConvKernels {
    forward: |s, x, w, y| kernels::conv_transpose2d_general_forward(s, &x.values(), w, y),
    input_grad: kernels::conv_transpose2d_general_backward_input,
    input_grad_where_nonzero: |s, _, w, gy, gx| {
        kernels::conv_transpose2d_general_backward_input(s, gy, w, gx)
    },
    weight_grad: |s, x, gy, gw| {
        kernels::conv_transpose2d_general_backward_weight(s, &x.values(), gy, gw)
    },
    both_where_nonzero: |s, x, w, gy, gx, gw| {
        kernels::conv_transpose2d_general_backward_input(s, gy, w, gx);
        kernels::conv_transpose2d_general_backward_weight(s, &x.values(), gy, gw);
    },
};

/// Records a convolution of either kind: forward now, the two gradients in backward.
fn conv_op<'t, S: Copy + 'static>(
    name: &str,
    x: &Var<'t>,
    weight: &Var<'t>,
    s: S,
    out_shape: [usize; 4],
    k: ConvKernels<S>,
) -> Var<'t> {
    let (xv, wt) = (Saved::hold(x), weight.shared());
    let sparse_grad = x.needs_grad_only_where_nonzero();
    let y = fill(&out_shape, |y| (k.forward)(&s, xv.input(), slice(&wt), y));
    let saved = x.tape().is_recording().then(|| xv.kept());
    op1(x.tape(), name, &[x, weight], y, move |g, needs| {
        let xv = saved.expect("recorded");
        if sparse_grad && needs[0] && needs[1] {
            let (mut gx, mut gw) = (zeros(xv.shape()), zeros(wt.shape()));
            let (gx_s, gw_s) = (
                gx.as_slice_mut().expect("fresh tensor is contiguous"),
                gw.as_slice_mut().expect("fresh tensor is contiguous"),
            );
            (k.both_where_nonzero)(&s, xv.input(), slice(&wt), slice(&g), gx_s, gw_s);
            return vec![Some(gx), Some(gw)];
        }
        let gx = needs[0].then(|| {
            fill(xv.shape(), |gx| {
                if sparse_grad {
                    (k.input_grad_where_nonzero)(&s, xv.input(), slice(&wt), slice(&g), gx)
                } else {
                    (k.input_grad)(&s, slice(&g), slice(&wt), gx)
                }
            })
        });
        let gw = needs[1].then(|| {
            fill(wt.shape(), |gw| {
                (k.weight_grad)(&s, xv.input(), slice(&g), gw)
            })
        });
        vec![gx, gw]
    })
}

/// `y + b` with `b [C]` broadcast over `y [N, C, H, W]`; the caller has checked `b`.
fn add_bias<'t>(y: Var<'t>, bias: Option<&Var<'t>>) -> Var<'t> {
    match bias {
        None => y,
        Some(b) => {
            let c = y.shape()[1];
            y.add(b.reshape(&[1, c, 1, 1]))
        }
    }
}

impl<'t> Var<'t> {
    /// `conv2d(x, W) + b` as PyTorch's `F.conv2d`: `x [N, Cin, H, W]`,
    /// `W [Cout, Cin, kh, kw]`, optional `b [Cout]`, the same `stride` and zero `padding`
    /// on both axes. The square shorthand of [`Var::conv2d_with`], on the fast kernels.
    ///
    /// # Panics
    /// If the shapes do not fit or the kernel is larger than the padded input.
    #[track_caller]
    pub fn conv2d(
        &self,
        weight: &Var<'t>,
        bias: Option<&Var<'t>>,
        stride: usize,
        padding: usize,
    ) -> Var<'t> {
        let opts = Conv2dOptions::new().stride(stride).padding(padding);
        self.conv2d_with(weight, bias, &opts)
    }

    /// `conv2d(x, W) + b` as PyTorch's `F.conv2d` with every argument: `x [N, Cin, H, W]`,
    /// `W [Cout, Cin/groups, kh, kw]`, optional `b [Cout]`, output `[N, Cout, Hout, Wout]`
    /// with `Hout = ⌊(H + 2·ph − dh·(kh − 1) − 1) / sh⌋ + 1` (and `Wout` likewise).
    ///
    /// Square arguments without dilation or groups take the fast (event-driven or
    /// im2col + GEMM) kernels of [`Var::conv2d`]; the rest im2col + one GEMM per group.
    ///
    /// # Panics
    /// If the shapes do not fit (ranks, channels against `groups`, bias), an argument is
    /// zero, or the dilated kernel is larger than the padded input.
    #[track_caller]
    pub fn conv2d_with(
        &self,
        weight: &Var<'t>,
        bias: Option<&Var<'t>>,
        opts: &Conv2dOptions,
    ) -> Var<'t> {
        let o = opts;
        let pair = |(a, b): (usize, usize)| [a, b];
        let (stride, padding, dilation) = (pair(o.stride), pair(o.padding), pair(o.dilation));
        let (x_shape, w_shape) = (self.shape(), weight.shape());
        check_conv(
            "conv2d", x_shape, w_shape, &stride, &padding, &dilation, o.groups,
        );
        let ([batch, c_in, h, w], [c_out, _, kh, kw]) = (four(x_shape), four(w_shape));
        check_bias("conv2d", bias, c_out);
        let y = if o.is_square() {
            let s = Conv2dShape {
                batch,
                c_in,
                h,
                w,
                c_out,
                kh,
                kw,
                stride: o.stride.0,
                padding: o.padding.0,
            };
            let out = [batch, c_out, s.out_h(), s.out_w()];
            conv_op("conv2d", self, weight, s, out, CONV2D)
        } else {
            let s = GeneralConv2dShape {
                batch,
                c_in,
                h,
                w,
                c_out,
                kh,
                kw,
                stride: o.stride,
                padding: o.padding,
                dilation: o.dilation,
                groups: o.groups,
            };
            let out = [batch, c_out, s.out_h(), s.out_w()];
            conv_op("conv2d", self, weight, s, out, GENERAL_CONV2D)
        };
        add_bias(y, bias)
    }

    /// `conv_transpose2d(x, W) + b` as PyTorch's `F.conv_transpose2d`: `x [N, Cin, H, W]`,
    /// `W [Cin, Cout, kh, kw]`, output `[N, Cout, (H−1)·stride − 2·padding + kh +
    /// output_padding, …]`. The square shorthand of [`Var::conv_transpose2d_with`], on the
    /// fast kernels.
    ///
    /// # Panics
    /// If the shapes do not fit or `output_padding ≥ stride`.
    #[track_caller]
    pub fn conv_transpose2d(
        &self,
        weight: &Var<'t>,
        bias: Option<&Var<'t>>,
        stride: usize,
        padding: usize,
        output_padding: usize,
    ) -> Var<'t> {
        let opts = ConvTranspose2dOptions::new()
            .stride(stride)
            .padding(padding)
            .output_padding(output_padding);
        self.conv_transpose2d_with(weight, bias, &opts)
    }

    /// `conv_transpose2d(x, W) + b` as PyTorch's `F.conv_transpose2d` with every argument:
    /// `x [N, Cin, H, W]`, `W [Cin, Cout/groups, kh, kw]`, optional `b [Cout]`, output
    /// `[N, Cout, Hout, Wout]` with `Hout = (H − 1)·sh − 2·ph + dh·(kh − 1) + oph + 1`
    /// (and `Wout` likewise). It is the gradient of [`Var::conv2d_with`] with respect to
    /// its input, for the same arguments.
    ///
    /// Square arguments without dilation or groups take the fast kernels of
    /// [`Var::conv_transpose2d`]; the rest im2col + one GEMM per group.
    ///
    /// # Panics
    /// If the shapes do not fit (ranks, channels against `groups`, bias), an argument is
    /// zero, an output padding is not smaller than its axis's stride or dilation, or the
    /// padding leaves no output.
    #[track_caller]
    pub fn conv_transpose2d_with(
        &self,
        weight: &Var<'t>,
        bias: Option<&Var<'t>>,
        opts: &ConvTranspose2dOptions,
    ) -> Var<'t> {
        let o = opts;
        check_conv_transpose(self.shape(), weight.shape(), o);
        let ([batch, c_in, h, w], [_, per_group, kh, kw]) =
            (four(self.shape()), four(weight.shape()));
        let c_out = per_group * o.groups;
        check_bias("conv_transpose2d", bias, c_out);
        let y = if o.is_square() {
            let s = ConvTranspose2dShape {
                batch,
                c_in,
                h,
                w,
                c_out,
                kh,
                kw,
                stride: o.stride.0,
                padding: o.padding.0,
                output_padding: o.output_padding.0,
            };
            let out = [batch, c_out, s.out_h(), s.out_w()];
            conv_op("conv_transpose2d", self, weight, s, out, CONV_TRANSPOSE2D)
        } else {
            let s = GeneralConvTranspose2dShape {
                batch,
                c_in,
                h,
                w,
                c_out,
                kh,
                kw,
                stride: o.stride,
                padding: o.padding,
                output_padding: o.output_padding,
                dilation: o.dilation,
                groups: o.groups,
            };
            let out = [batch, c_out, s.out_h(), s.out_w()];
            conv_op(
                "conv_transpose2d",
                self,
                weight,
                s,
                out,
                GENERAL_CONV_TRANSPOSE2D,
            )
        };
        add_bias(y, bias)
    }

    /// `conv1d(x, W) + b` as PyTorch's `F.conv1d`: `x [N, Cin, L]`,
    /// `W [Cout, Cin/groups, k]`, optional `b [Cout]`, output `[N, Cout, Lout]` with
    /// `Lout = ⌊(L + 2·padding − dilation·(k − 1) − 1) / stride⌋ + 1`. Computed as
    /// [`Var::conv2d_with`] over a unit height (so stride 1 without padding, dilation or
    /// groups takes the fast kernels).
    ///
    /// # Panics
    /// If the shapes do not fit (ranks, channels against `groups`, bias), an argument is
    /// zero, or the dilated kernel is longer than the padded input.
    #[track_caller]
    pub fn conv1d(
        &self,
        weight: &Var<'t>,
        bias: Option<&Var<'t>>,
        opts: &Conv1dOptions,
    ) -> Var<'t> {
        let o = opts;
        let (x_shape, w_shape) = (self.shape(), weight.shape());
        check_conv(
            "conv1d",
            x_shape,
            w_shape,
            &[o.stride],
            &[o.padding],
            &[o.dilation],
            o.groups,
        );
        let ([batch, c_in, len], [c_out, per_group, k]) = (
            <[usize; 3]>::try_from(x_shape).expect("rank checked"),
            <[usize; 3]>::try_from(w_shape).expect("rank checked"),
        );
        check_bias("conv1d", bias, c_out);
        let opts = Conv2dOptions {
            stride: (1, o.stride),
            padding: (0, o.padding),
            dilation: (1, o.dilation),
            groups: o.groups,
        };
        let x = self.reshape(&[batch, c_in, 1, len]);
        let w = weight.reshape(&[c_out, per_group, 1, k]);
        let y = x.conv2d_with(&w, bias, &opts);
        let out_len = y.shape()[3];
        y.reshape(&[batch, c_out, out_len])
    }
}

#[cfg(test)]
mod tests {
    use super::{Conv1dOptions, Conv2dOptions, ConvTranspose2dOptions};
    use crate::gradcheck::{assert_gradients, random};
    use crate::ops::pool::Pool2dOptions;
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
        // The options forms with square arguments take the same event kernels.
        check_grad_where_nonzero(spikes(&[2, 3, 9, 8], 7), |x| {
            let w = x.tape().constant(w.clone());
            x.conv2d_with(&w, None, &Conv2dOptions::new().stride(2).padding((1, 1)))
        });
        check_grad_where_nonzero(spikes(&[2, 3, 5, 6], 8), |x| {
            let w = x.tape().constant(wt.clone());
            let opts = ConvTranspose2dOptions::new()
                .stride(2)
                .padding(1)
                .output_padding(1);
            x.conv_transpose2d_with(&w, None, &opts)
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

    /// One general convolution case: `(batch, c_in, h, w, c_out, (kh, kw), stride,
    /// padding, dilation, groups)`.
    type Case = (
        usize,
        usize,
        usize,
        usize,
        usize,
        (usize, usize),
        (usize, usize),
        (usize, usize),
        (usize, usize),
        usize,
    );

    /// Odd sizes, non-square kernels, per-axis strides, paddings and dilations, groups
    /// (one with a channel multiplier, one depthwise).
    const CASES: [Case; 6] = [
        (2, 3, 7, 6, 4, (3, 2), (2, 1), (1, 0), (1, 1), 1),
        (1, 2, 9, 8, 3, (3, 3), (1, 2), (2, 1), (2, 3), 1),
        (2, 4, 6, 5, 6, (3, 2), (1, 1), (1, 1), (1, 1), 2),
        (2, 3, 7, 7, 3, (3, 3), (2, 2), (1, 1), (1, 1), 3),
        (1, 2, 5, 6, 4, (2, 3), (1, 1), (0, 1), (2, 1), 2),
        (3, 6, 5, 4, 3, (1, 2), (3, 1), (0, 1), (1, 2), 3),
    ];

    #[test]
    fn conv2d_with_gradients() {
        for (i, &(n, ci, h, w, co, (kh, kw), stride, padding, dilation, groups)) in
            CASES.iter().enumerate()
        {
            let opts = Conv2dOptions {
                stride,
                padding,
                dilation,
                groups,
            };
            let seed = 30 * i as u64;
            let x = random(&[n, ci, h, w], -1.0, 1.0, seed);
            let wt = random(&[co, ci / groups, kh, kw], -0.5, 0.5, seed + 1);
            let b = random(&[co], -0.5, 0.5, seed + 2);
            assert_gradients(vec![x.clone(), wt.clone(), b], |v| {
                v[0].conv2d_with(&v[1], Some(&v[2]), &opts)
            });
            assert_gradients(vec![x, wt], |v| v[0].conv2d_with(&v[1], None, &opts));
        }
    }

    #[test]
    fn conv_transpose2d_with_gradients() {
        // The convolution cases read the other way, with output paddings below the stride
        // or (second case, height: 1 ≥ stride 1 but < dilation 2) the dilation.
        let output_paddings = [(1, 0), (1, 1), (0, 0), (1, 1), (1, 0), (2, 0)];
        for (i, (&(n, ci, h, w, co, (kh, kw), stride, padding, dilation, groups), &op)) in
            CASES.iter().zip(&output_paddings).enumerate()
        {
            let opts = ConvTranspose2dOptions {
                stride,
                padding,
                output_padding: op,
                dilation,
                groups,
            };
            let (h, w) = (h.div_ceil(2), w.div_ceil(2));
            let seed = 30 * i as u64;
            let x = random(&[n, ci, h, w], -1.0, 1.0, seed);
            let wt = random(&[ci, co / groups, kh, kw], -0.5, 0.5, seed + 1);
            let b = random(&[co], -0.5, 0.5, seed + 2);
            assert_gradients(vec![x.clone(), wt.clone(), b], |v| {
                v[0].conv_transpose2d_with(&v[1], Some(&v[2]), &opts)
            });
            assert_gradients(vec![x, wt], |v| {
                v[0].conv_transpose2d_with(&v[1], None, &opts)
            });
        }
    }

    /// The transposed convolution is the convolution's input gradient:
    /// `⟨conv(x), y⟩ = ⟨x, conv_transpose(y)⟩` for the same weight and arguments.
    #[test]
    fn conv_transpose2d_with_is_the_adjoint_of_conv2d_with() {
        for (i, &(n, ci, h, w, co, (kh, kw), stride, padding, dilation, groups)) in
            CASES.iter().enumerate()
        {
            let tape = Tape::eval();
            let seed = 30 * i as u64;
            let x = tape.constant(random(&[n, ci, h, w], -1.0, 1.0, seed));
            let wt = tape.constant(random(&[co, ci / groups, kh, kw], -0.5, 0.5, seed + 1));
            let opts = Conv2dOptions {
                stride,
                padding,
                dilation,
                groups,
            };
            let y = x.conv2d_with(&wt, None, &opts);
            let g = tape.constant(random(y.shape(), -1.0, 1.0, seed + 2));
            // The output padding that maps y's size back to x's.
            let back = |len: usize, out: usize, k: usize, s: usize, p: usize, d: usize| {
                len - ((out - 1) * s + d * (k - 1) + 1 - 2 * p)
            };
            let output_padding = (
                back(h, y.shape()[2], kh, stride.0, padding.0, dilation.0),
                back(w, y.shape()[3], kw, stride.1, padding.1, dilation.1),
            );
            let t = ConvTranspose2dOptions {
                stride,
                padding,
                output_padding,
                dilation,
                groups,
            };
            let gx = g.conv_transpose2d_with(&wt, None, &t);
            assert_eq!(gx.shape(), x.shape());
            let lhs = (&y * &g).sum().item();
            let rhs = (&x * &gx).sum().item();
            assert!(
                (lhs - rhs).abs() < 1e-4 * lhs.abs().max(1.0),
                "case {i}: {lhs} vs {rhs}"
            );
        }
    }

    #[test]
    fn conv1d_gradients() {
        // (batch, c_in, len, c_out, k, stride, padding, dilation, groups)
        let cases = [
            (2, 3, 11, 4, 3, 2, 1, 1, 1),
            (2, 4, 10, 6, 4, 1, 3, 2, 2),
            (1, 3, 9, 3, 3, 3, 0, 1, 3),
            (3, 2, 7, 5, 2, 1, 0, 1, 1),
        ];
        for (i, &(n, ci, len, co, k, stride, padding, dilation, groups)) in cases.iter().enumerate()
        {
            let opts = Conv1dOptions {
                stride,
                padding,
                dilation,
                groups,
            };
            let seed = 40 * i as u64;
            let x = random(&[n, ci, len], -1.0, 1.0, seed);
            let wt = random(&[co, ci / groups, k], -0.5, 0.5, seed + 1);
            let b = random(&[co], -0.5, 0.5, seed + 2);
            assert_gradients(vec![x, wt, b], |v| v[0].conv1d(&v[1], Some(&v[2]), &opts));
        }
        let tape = Tape::eval();
        let x = tape.constant(random(&[2, 4, 10], -1.0, 1.0, 1));
        let w = tape.constant(random(&[6, 2, 4], -1.0, 1.0, 2));
        let opts = Conv1dOptions::new().padding(3).dilation(2).groups(2);
        // (10 + 2·3 − 2·3 − 1) / 1 + 1 = 10.
        assert_eq!(x.conv1d(&w, None, &opts).shape(), &[2, 6, 10]);
    }

    /// Runs `f`, which must panic, and returns the source line its panic names.
    fn panic_line(f: impl FnOnce()) -> u32 {
        use std::cell::Cell;
        thread_local! {
            static CAPTURE: Cell<bool> = const { Cell::new(false) };
            static LINE: Cell<Option<(bool, u32)>> = const { Cell::new(None) };
        }
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CAPTURE.get() {
                let at = info.location().expect("location");
                LINE.set(Some((at.file().ends_with("conv.rs"), at.line())));
            } else {
                default(info);
            }
        }));
        CAPTURE.set(true);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        CAPTURE.set(false);
        assert!(result.is_err(), "no panic");
        let (in_this_file, line) = LINE.take().expect("a panic location");
        assert!(in_this_file);
        line
    }

    /// Misuse panics name the caller's line, not a line inside the ops.
    #[test]
    fn misuse_panics_point_at_the_caller() {
        let first = line!();
        let tape = Tape::eval();
        let x = tape.constant(random(&[1, 3, 4, 4], -1.0, 1.0, 1));
        let w = tape.constant(random(&[4, 2, 3, 3], -1.0, 1.0, 2));
        let lines = [
            panic_line(|| drop(x.conv2d(&w, None, 1, 0))),
            panic_line(|| drop(x.conv2d_with(&w, None, &Conv2dOptions::new().groups(2)))),
            panic_line(|| drop(x.conv_transpose2d(&w, None, 1, 0, 0))),
            panic_line(|| drop(x.conv1d(&w, None, &Conv1dOptions::new()))),
            panic_line(|| drop(x.avg_pool2d(5, 1))),
            panic_line(|| drop(x.max_pool2d_with(&Pool2dOptions::new(3).padding(2)))),
        ];
        let last = line!();
        for line in lines {
            assert!(first < line && line < last, "panic at line {line}");
        }
    }

    #[test]
    #[should_panic(
        expected = "conv2d: input has 3 channels, weight expects 4 (= 2 per group × 2 groups); input [1, 3, 5, 5], weight [4, 2, 3, 3]"
    )]
    fn channels_must_match_the_groups() {
        let tape = Tape::eval();
        let x = tape.constant(Tensor::zeros(ndarray::IxDyn(&[1, 3, 5, 5])));
        let w = tape.constant(Tensor::zeros(ndarray::IxDyn(&[4, 2, 3, 3])));
        x.conv2d_with(&w, None, &Conv2dOptions::new().groups(2));
    }

    #[test]
    #[should_panic(
        expected = "conv2d: weight [3, 1, 1, 1] has 3 output channels, not divisible by 2 groups"
    )]
    fn filters_must_split_into_the_groups() {
        let tape = Tape::eval();
        let x = tape.constant(Tensor::zeros(ndarray::IxDyn(&[1, 2, 5, 5])));
        let w = tape.constant(Tensor::zeros(ndarray::IxDyn(&[3, 1, 1, 1])));
        x.conv2d_with(&w, None, &Conv2dOptions::new().groups(2));
    }

    #[test]
    #[should_panic(
        expected = "conv2d: kernel 3×3 with dilation 2×1 spans 5×3, which is larger than the padded input 4×4 (input 4×4, padding 0×0)"
    )]
    fn dilated_kernel_must_fit() {
        let tape = Tape::eval();
        let x = tape.constant(Tensor::zeros(ndarray::IxDyn(&[1, 1, 4, 4])));
        let w = tape.constant(Tensor::zeros(ndarray::IxDyn(&[1, 1, 3, 3])));
        x.conv2d_with(&w, None, &Conv2dOptions::new().dilation((2, 1)));
    }

    #[test]
    #[should_panic(
        expected = "conv2d: kernel 5×5 is larger than the padded input 4×4 (input 2×2, padding 1×1)"
    )]
    fn kernel_must_fit() {
        let tape = Tape::eval();
        let x = tape.constant(Tensor::zeros(ndarray::IxDyn(&[1, 1, 2, 2])));
        let w = tape.constant(Tensor::zeros(ndarray::IxDyn(&[1, 1, 5, 5])));
        x.conv2d(&w, None, 1, 1);
    }

    #[test]
    #[should_panic(expected = "conv2d: bias must be [4] (one per output channel), got [3]")]
    fn bias_must_match_the_filters() {
        let tape = Tape::eval();
        let x = tape.constant(Tensor::zeros(ndarray::IxDyn(&[1, 2, 5, 5])));
        let w = tape.constant(Tensor::zeros(ndarray::IxDyn(&[4, 2, 3, 3])));
        let b = tape.constant(Tensor::zeros(ndarray::IxDyn(&[3])));
        x.conv2d(&w, Some(&b), 1, 0);
    }

    #[test]
    #[should_panic(
        expected = "conv_transpose2d: output_padding 1×2 must be smaller than stride 1×2 or dilation 1×1 on each axis"
    )]
    fn output_padding_must_be_below_stride_or_dilation() {
        let tape = Tape::eval();
        let x = tape.constant(Tensor::zeros(ndarray::IxDyn(&[1, 2, 3, 3])));
        let w = tape.constant(Tensor::zeros(ndarray::IxDyn(&[2, 2, 3, 3])));
        let opts = ConvTranspose2dOptions::new()
            .stride((1, 2))
            .output_padding((1, 2));
        x.conv_transpose2d_with(&w, None, &opts);
    }

    #[test]
    #[should_panic(
        expected = "conv_transpose2d: input has 3 channels, weight expects 2 (its first axis)"
    )]
    fn transposed_weight_must_match_the_input() {
        let tape = Tape::eval();
        let x = tape.constant(Tensor::zeros(ndarray::IxDyn(&[1, 3, 3, 3])));
        let w = tape.constant(Tensor::zeros(ndarray::IxDyn(&[2, 3, 3, 3])));
        x.conv_transpose2d(&w, None, 2, 1, 1);
    }

    #[test]
    #[should_panic(expected = "conv1d: input must be 3-D [N, C_in, L], got [2, 3, 4, 5]")]
    fn conv1d_needs_a_3d_input() {
        let tape = Tape::eval();
        let x = tape.constant(Tensor::zeros(ndarray::IxDyn(&[2, 3, 4, 5])));
        let w = tape.constant(Tensor::zeros(ndarray::IxDyn(&[2, 3, 3])));
        x.conv1d(&w, None, &Conv1dOptions::new());
    }

    #[test]
    #[should_panic(
        expected = "conv1d: kernel 7 is larger than the padded input 6 (input 4, padding 1)"
    )]
    fn conv1d_kernel_must_fit() {
        let tape = Tape::eval();
        let x = tape.constant(Tensor::zeros(ndarray::IxDyn(&[2, 3, 4])));
        let w = tape.constant(Tensor::zeros(ndarray::IxDyn(&[2, 3, 7])));
        x.conv1d(&w, None, &Conv1dOptions::new().padding(1));
    }
}
