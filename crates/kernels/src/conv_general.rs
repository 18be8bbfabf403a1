//! 2-D convolution and transposed convolution in their general form, as PyTorch's
//! `F.conv2d` and `F.conv_transpose2d` with every argument: stride, padding and dilation
//! per axis, and grouped channels. [`crate::conv`] keeps the fast kernels of the square,
//! ungrouped, undilated case the spiking network runs; these serve every other shape.
//!
//! One im2col per image, tap `(p, q)` of output `(i, j)` reading input pixel
//! `(i·sh + p·dh − ph, j·sw + q·dw − pw)`, then one GEMM per group: group `g`'s filters
//! see only its `c_in/groups` input channels, a contiguous block of the column matrix's
//! rows, and are themselves a contiguous block of the weight's rows and of the output's
//! channels. Images run in parallel, each with single-threaded GEMMs. The weight gradient
//! sums per-task partials in task order, the tasks fixed by the shape alone, so it is the
//! same to the bit on any number of threads.
//!
//! As in [`crate::conv`], the transposed convolution is the adjoint of a convolution and
//! owns no kernels of its own.

use rayon::prelude::*;

use crate::conv::{MAX_TASKS, PARTIAL_BUDGET, accumulate, check_lens, product};
use crate::gemm::sgemm_serial;
use crate::unfold::valid_range;

/// The shape of a general 2-D convolution: input `x[batch, c_in, h, w]`, weight
/// `w[c_out, c_in/groups, kh, kw]`, output `y[batch, c_out, out_h, out_w]`, with
///
/// `y[b, o, i, j] = Σ_{c, p, q} x[b, g·c_in/groups + c, i·sh + p·dh − ph, j·sw + q·dw − pw] · w[o, c, p, q]`
///
/// where `g = o / (c_out/groups)` is the group of filter `o`, `c < c_in/groups`, and
/// pixels outside the input read as zero. Pairs are `(height, width)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GeneralConv2dShape {
    /// Images in the batch.
    pub batch: usize,
    /// Input channels.
    pub c_in: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels (filters).
    pub c_out: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Step between windows, `(sh, sw)`.
    pub stride: (usize, usize),
    /// Zeros added above and below, left and right of the input, `(ph, pw)`.
    pub padding: (usize, usize),
    /// Step between a window's taps, `(dh, dw)`; 1 is a plain convolution.
    pub dilation: (usize, usize),
    /// Channel groups: both `c_in` and `c_out` are split into `groups` equal blocks, and
    /// each block of filters sees only its block of input channels.
    pub groups: usize,
}

impl GeneralConv2dShape {
    /// Checks that the shape describes a convolution: stride, dilation, groups and kernel
    /// at least 1, channels divisible by `groups`, and the dilated kernel no larger than
    /// the padded input.
    pub fn validate(&self) -> Result<(), String> {
        let (s, d) = (self.stride, self.dilation);
        if s.0 == 0 || s.1 == 0 || d.0 == 0 || d.1 == 0 || self.groups == 0 {
            return Err(format!(
                "conv2d: zero stride, dilation or groups in {self:?}"
            ));
        }
        if self.kh == 0 || self.kw == 0 {
            return Err(format!("conv2d: zero kernel size in {self:?}"));
        }
        if self.c_in.checked_rem(self.groups) != Some(0)
            || self.c_out.checked_rem(self.groups) != Some(0)
        {
            return Err(format!(
                "conv2d: channels not divisible by groups in {self:?}"
            ));
        }
        if span(self.kh, d.0) > self.h + 2 * self.padding.0
            || span(self.kw, d.1) > self.w + 2 * self.padding.1
        {
            return Err(format!(
                "conv2d: dilated kernel larger than the padded input in {self:?}"
            ));
        }
        Ok(())
    }

    /// Output height, `⌊(h + 2·ph − dh·(kh − 1) − 1) / sh⌋ + 1`.
    ///
    /// # Panics
    /// If the shape is not [valid](Self::validate).
    pub fn out_h(&self) -> usize {
        self.assert_valid();
        (self.h + 2 * self.padding.0 - span(self.kh, self.dilation.0)) / self.stride.0 + 1
    }

    /// Output width, `⌊(w + 2·pw − dw·(kw − 1) − 1) / sw⌋ + 1`.
    ///
    /// # Panics
    /// If the shape is not [valid](Self::validate).
    pub fn out_w(&self) -> usize {
        self.assert_valid();
        (self.w + 2 * self.padding.1 - span(self.kw, self.dilation.1)) / self.stride.1 + 1
    }

    /// Length of `x`: `batch·c_in·h·w`.
    pub fn input_len(&self) -> usize {
        self.batch * self.c_in * self.h * self.w
    }

    /// Length of the weight: `c_out·(c_in/groups)·kh·kw`.
    pub fn weight_len(&self) -> usize {
        self.c_out * (self.c_in / self.groups.max(1)) * self.kh * self.kw
    }

    /// Length of `y`: `batch·c_out·out_h·out_w`.
    pub fn output_len(&self) -> usize {
        self.batch * self.c_out * self.out_h() * self.out_w()
    }

    fn assert_valid(&self) {
        if let Err(e) = self.validate() {
            panic!("{e}");
        }
    }

    /// Panics with a clear message unless the slice lengths `(x, w, y)` match the shape.
    fn check_lens(&self, kernel: &str, x: usize, w: usize, y: usize) {
        let want = [self.input_len(), self.weight_len(), self.output_len()];
        check_lens(kernel, self, [x, w, y], want);
    }

    fn geometry(&self) -> Geometry {
        Geometry {
            batch: self.batch,
            c_in: self.c_in,
            h: self.h,
            w: self.w,
            c_out: self.c_out,
            kh: self.kh,
            kw: self.kw,
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            groups: self.groups,
            oh: self.out_h(),
            ow: self.out_w(),
        }
    }
}

/// The shape of a general 2-D transposed convolution: input `x[batch, c_in, h, w]`,
/// weight `w[c_in, c_out/groups, kh, kw]` (PyTorch's layout), output
/// `y[batch, c_out, out_h, out_w]`, with
///
/// `y[b, g·c_out/groups + o, i·sh + p·dh − ph, j·sw + q·dw − pw] += x[b, c, i, j] · w[c, o, p, q]`
///
/// over all `b, c, i, j, o < c_out/groups, p, q`, where `g = c / (c_in/groups)` is the
/// group of input channel `c`, dropping what lands outside the output. It is the gradient
/// of a [`GeneralConv2dShape`] convolution with respect to that convolution's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GeneralConvTranspose2dShape {
    /// Images in the batch.
    pub batch: usize,
    /// Input channels.
    pub c_in: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Step between the kernel's placements in the output, `(sh, sw)`.
    pub stride: (usize, usize),
    /// Rows and columns cropped from each side of the full output, `(ph, pw)`.
    pub padding: (usize, usize),
    /// Extra rows at the bottom and columns at the right, `(oph, opw)`: picks one of the
    /// input sizes a strided convolution maps to the same output size.
    pub output_padding: (usize, usize),
    /// Step between a kernel's taps in the output, `(dh, dw)`.
    pub dilation: (usize, usize),
    /// Channel groups, as in [`GeneralConv2dShape::groups`].
    pub groups: usize,
}

impl GeneralConvTranspose2dShape {
    /// Checks that the shape describes a transposed convolution: stride, dilation, groups,
    /// kernel and input plane at least 1, channels divisible by `groups`, each axis's
    /// output padding smaller than its stride or its dilation (PyTorch's rule), and a
    /// non-empty output.
    pub fn validate(&self) -> Result<(), String> {
        let (s, d, op) = (self.stride, self.dilation, self.output_padding);
        if s.0 == 0 || s.1 == 0 || d.0 == 0 || d.1 == 0 || self.groups == 0 {
            return Err(format!(
                "conv_transpose2d: zero stride, dilation or groups in {self:?}"
            ));
        }
        if self.kh == 0 || self.kw == 0 || self.h == 0 || self.w == 0 {
            return Err(format!(
                "conv_transpose2d: zero kernel or input size in {self:?}"
            ));
        }
        if self.c_in.checked_rem(self.groups) != Some(0)
            || self.c_out.checked_rem(self.groups) != Some(0)
        {
            return Err(format!(
                "conv_transpose2d: channels not divisible by groups in {self:?}"
            ));
        }
        if (op.0 >= s.0 && op.0 >= d.0) || (op.1 >= s.1 && op.1 >= d.1) {
            return Err(format!(
                "conv_transpose2d: output_padding must be smaller than stride or dilation \
                 in {self:?}"
            ));
        }
        if self.full_h() <= 2 * self.padding.0 || self.full_w() <= 2 * self.padding.1 {
            return Err(format!(
                "conv_transpose2d: padding leaves no output in {self:?}"
            ));
        }
        Ok(())
    }

    /// Output height before cropping: `(h − 1)·sh + dh·(kh − 1) + 1 + oph`.
    fn full_h(&self) -> usize {
        (self.h - 1) * self.stride.0 + span(self.kh, self.dilation.0) + self.output_padding.0
    }

    /// Output width before cropping: `(w − 1)·sw + dw·(kw − 1) + 1 + opw`.
    fn full_w(&self) -> usize {
        (self.w - 1) * self.stride.1 + span(self.kw, self.dilation.1) + self.output_padding.1
    }

    /// Output height, `(h − 1)·sh − 2·ph + dh·(kh − 1) + oph + 1`.
    ///
    /// # Panics
    /// If the shape is not [valid](Self::validate).
    pub fn out_h(&self) -> usize {
        self.assert_valid();
        self.full_h() - 2 * self.padding.0
    }

    /// Output width, `(w − 1)·sw − 2·pw + dw·(kw − 1) + opw + 1`.
    ///
    /// # Panics
    /// If the shape is not [valid](Self::validate).
    pub fn out_w(&self) -> usize {
        self.assert_valid();
        self.full_w() - 2 * self.padding.1
    }

    /// Length of `x`: `batch·c_in·h·w`.
    pub fn input_len(&self) -> usize {
        self.batch * self.c_in * self.h * self.w
    }

    /// Length of the weight: `c_in·(c_out/groups)·kh·kw`.
    pub fn weight_len(&self) -> usize {
        self.c_in * (self.c_out / self.groups.max(1)) * self.kh * self.kw
    }

    /// Length of `y`: `batch·c_out·out_h·out_w`.
    pub fn output_len(&self) -> usize {
        self.batch * self.c_out * self.out_h() * self.out_w()
    }

    fn assert_valid(&self) {
        if let Err(e) = self.validate() {
            panic!("{e}");
        }
    }

    /// Panics with a clear message unless the slice lengths `(x, w, y)` match the shape.
    fn check_lens(&self, kernel: &str, x: usize, w: usize, y: usize) {
        let want = [self.input_len(), self.weight_len(), self.output_len()];
        check_lens(kernel, self, [x, w, y], want);
    }

    /// The convolution this transposes: from `[c_out, out_h, out_w]` back to
    /// `[c_in, h, w]` with the same weight, read as `[c_in, c_out/groups, kh, kw]` filters.
    /// Its output is `h×w` by construction: when an output padding of at least the stride
    /// (allowed below the dilation) makes the convolution's own output size larger, the
    /// extra rows and columns are not computed.
    fn geometry(&self) -> Geometry {
        Geometry {
            batch: self.batch,
            c_in: self.c_out,
            h: self.out_h(),
            w: self.out_w(),
            c_out: self.c_in,
            kh: self.kh,
            kw: self.kw,
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            groups: self.groups,
            oh: self.h,
            ow: self.w,
        }
    }
}

/// Extent of a kernel of `k` taps `d` apart: `d·(k − 1) + 1`.
fn span(k: usize, d: usize) -> usize {
    d * (k.max(1) - 1) + 1
}

/// A convolution with its output size given rather than derived: what the kernels below
/// compute, for a convolution or (transposed) for the adjoint of one.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    batch: usize,
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    kh: usize,
    kw: usize,
    stride: (usize, usize),
    padding: (usize, usize),
    dilation: (usize, usize),
    groups: usize,
    oh: usize,
    ow: usize,
}

impl Geometry {
    /// Rows of one image's column matrix: `c_in·kh·kw`.
    fn rows(&self) -> usize {
        self.c_in * self.kh * self.kw
    }

    /// Rows of the column matrix one group reads: `(c_in/groups)·kh·kw`.
    fn group_rows(&self) -> usize {
        self.rows() / self.groups
    }

    /// Filters per group: `c_out/groups`.
    fn group_out(&self) -> usize {
        self.c_out / self.groups
    }

    /// Output positions per channel: `oh·ow`.
    fn positions(&self) -> usize {
        self.oh * self.ow
    }

    /// Floats in one input image.
    fn image_len(&self) -> usize {
        self.c_in * self.h * self.w
    }

    /// Floats in one output image.
    fn out_image_len(&self) -> usize {
        self.c_out * self.positions()
    }

    /// Calls `f(r, oy, iy, pairs)` for every row `r = (c·kh + p)·kw + q` of image `x`'s
    /// column matrix and every output row `oy` whose taps read input row `iy`, with
    /// `pairs` the `(ox, ix)` of the output columns that read an input column `ix`.
    fn for_each_tap_row(
        &self,
        mut f: impl FnMut(usize, usize, usize, &mut dyn Iterator<Item = (usize, usize)>),
    ) {
        let ((sh, sw), (ph, pw), (dh, dw)) = (self.stride, self.padding, self.dilation);
        for c in 0..self.c_in {
            for p in 0..self.kh {
                let (y_lo, y_hi) = valid_range(p * dh, self.h, self.oh, sh, ph);
                for q in 0..self.kw {
                    let (x_lo, x_hi) = valid_range(q * dw, self.w, self.ow, sw, pw);
                    let r = (c * self.kh + p) * self.kw + q;
                    for oy in y_lo..y_hi {
                        let iy = c * self.h + oy * sh + p * dh - ph;
                        let mut pairs = (x_lo..x_hi).map(|ox| (ox, ox * sw + q * dw - pw));
                        f(r, oy, iy, &mut pairs);
                    }
                }
            }
        }
    }

    /// Writes the column matrix `[c_in·kh·kw, oh·ow]` of image `x` into `cols`: row
    /// `(c·kh + p)·kw + q`, column `i·ow + j` holds `x[c, i·sh + p·dh − ph, j·sw + q·dw − pw]`
    /// (0 in the padding).
    fn im2col(&self, x: &[f32], cols: &mut [f32]) {
        let (positions, ow, w) = (self.positions(), self.ow, self.w);
        cols.fill(0.0);
        self.for_each_tap_row(|r, oy, iy, pairs| {
            let (src, dst) = (
                &x[iy * w..][..w],
                &mut cols[r * positions + oy * ow..][..ow],
            );
            pairs.for_each(|(ox, ix)| dst[ox] = src[ix]);
        });
    }

    /// The adjoint of [`Geometry::im2col`]: overwrites image `x` with the sum of every
    /// column-matrix entry at the pixel it was read from (padding entries are dropped).
    fn col2im(&self, cols: &[f32], x: &mut [f32]) {
        let (positions, ow, w) = (self.positions(), self.ow, self.w);
        x.fill(0.0);
        self.for_each_tap_row(|r, oy, iy, pairs| {
            let (src, dst) = (
                &cols[r * positions + oy * ow..][..ow],
                &mut x[iy * w..][..w],
            );
            pairs.for_each(|(ox, ix)| dst[ix] += src[ox]);
        });
    }

    /// Whether any operand is empty (then every output is all zeros).
    fn is_empty(&self) -> bool {
        self.batch == 0
            || self.image_len() == 0
            || self.out_image_len() == 0
            || self.kh * self.kw == 0
    }
}

/// `y ← conv(x, w)` under `g`: per image, im2col, then per group
/// `y_g[c_out/groups, P] = w_g[c_out/groups, K] · cols_g[K, P]`, `K = (c_in/groups)·kh·kw`.
fn forward(g: &Geometry, x: &[f32], w: &[f32], y: &mut [f32]) {
    if g.is_empty() {
        return y.fill(0.0);
    }
    let (k, m, p) = (g.group_rows(), g.group_out(), g.positions());
    let images = y
        .par_chunks_mut(g.out_image_len())
        .zip(x.par_chunks(g.image_len()));
    images.for_each_init(
        || vec![0.0; g.rows() * p],
        |cols, (y, x)| {
            g.im2col(x, cols);
            for grp in 0..g.groups {
                let (w, cols, y) = (
                    &w[grp * m * k..][..m * k],
                    &cols[grp * k * p..][..k * p],
                    &mut y[grp * m * p..][..m * p],
                );
                let (k_, p_) = (k as isize, p as isize);
                sgemm_serial(m, k, p, 1.0, w, k_, 1, cols, p_, 1, 0.0, y, p_, 1);
            }
        },
    );
}

/// `gx ← ∂L/∂x` under `g`: per image and group `cols_g = w_gᵀ · gy_g`, then col2im.
fn backward_input(g: &Geometry, gy: &[f32], w: &[f32], gx: &mut [f32]) {
    if g.is_empty() {
        return gx.fill(0.0);
    }
    let (k, m, p) = (g.group_rows(), g.group_out(), g.positions());
    let images = gx
        .par_chunks_mut(g.image_len())
        .zip(gy.par_chunks(g.out_image_len()));
    images.for_each_init(
        || vec![0.0; g.rows() * p],
        |cols, (gx, gy)| {
            for grp in 0..g.groups {
                let (w, gy, cols) = (
                    &w[grp * m * k..][..m * k],
                    &gy[grp * m * p..][..m * p],
                    &mut cols[grp * k * p..][..k * p],
                );
                let (k_, p_) = (k as isize, p as isize);
                sgemm_serial(k, m, p, 1.0, w, 1, k_, gy, p_, 1, 0.0, cols, p_, 1);
            }
            g.col2im(cols, gx);
        },
    );
}

/// `gw ← ∂L/∂w` under `g`: per group `gw_g = Σ_images gy_g · cols_gᵀ`, each task summing
/// its run of images into a private partial, the partials then added in task order.
fn backward_weight(g: &Geometry, x: &[f32], gy: &[f32], gw: &mut [f32]) {
    if g.is_empty() || gw.is_empty() {
        return gw.fill(0.0);
    }
    let (k, m, p) = (g.group_rows(), g.group_out(), g.positions());
    let tasks = MAX_TASKS.min(PARTIAL_BUDGET / gw.len()).clamp(1, g.batch);
    let per_task = g.batch.div_ceil(tasks);
    let (x_image, gy_image) = (g.image_len(), g.out_image_len());
    let partials: Vec<Vec<f32>> = x
        .par_chunks(per_task * x_image)
        .zip(gy.par_chunks(per_task * gy_image))
        .map(|(x, gy)| {
            let (mut partial, mut cols) = (vec![0.0; gw.len()], vec![0.0; g.rows() * p]);
            for (x, gy) in x.chunks_exact(x_image).zip(gy.chunks_exact(gy_image)) {
                g.im2col(x, &mut cols);
                for grp in 0..g.groups {
                    let (gy, cols, gw) = (
                        &gy[grp * m * p..][..m * p],
                        &cols[grp * k * p..][..k * p],
                        &mut partial[grp * m * k..][..m * k],
                    );
                    let (k_, p_) = (k as isize, p as isize);
                    sgemm_serial(m, p, k, 1.0, gy, p_, 1, cols, 1, p_, 1.0, gw, k_, 1);
                }
            }
            partial
        })
        .collect();
    gw.copy_from_slice(&partials[0]);
    for partial in &partials[1..] {
        gw.iter_mut().zip(partial).for_each(|(g, p)| *g += *p);
    }
}

/// General convolution forward pass: `y ← conv2d(x, w)` (see [`GeneralConv2dShape`]).
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv2d_general_forward(s: &GeneralConv2dShape, x: &[f32], w: &[f32], y: &mut [f32]) {
    s.check_lens("conv2d_general_forward", x.len(), w.len(), y.len());
    forward(&s.geometry(), x, w, y);
}

/// General convolution input gradient: `gx ← ∂L/∂x` given `gy = ∂L/∂y`.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv2d_general_backward_input(
    s: &GeneralConv2dShape,
    gy: &[f32],
    w: &[f32],
    gx: &mut [f32],
) {
    s.check_lens("conv2d_general_backward_input", gx.len(), w.len(), gy.len());
    backward_input(&s.geometry(), gy, w, gx);
}

/// General convolution weight gradient: `gw ← ∂L/∂w`, bit for bit the same on any number
/// of threads.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv2d_general_backward_weight(
    s: &GeneralConv2dShape,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
) {
    s.check_lens(
        "conv2d_general_backward_weight",
        x.len(),
        gw.len(),
        gy.len(),
    );
    backward_weight(&s.geometry(), x, gy, gw);
}

/// General transposed convolution forward pass: `y ← conv_transpose2d(x, w)` (see
/// [`GeneralConvTranspose2dShape`]), the input gradient of the convolution it transposes.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv_transpose2d_general_forward(
    s: &GeneralConvTranspose2dShape,
    x: &[f32],
    w: &[f32],
    y: &mut [f32],
) {
    s.check_lens(
        "conv_transpose2d_general_forward",
        x.len(),
        w.len(),
        y.len(),
    );
    backward_input(&s.geometry(), x, w, y);
}

/// General transposed convolution input gradient: `gx ← ∂L/∂x`, the forward pass of the
/// convolution it transposes applied to `gy`.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv_transpose2d_general_backward_input(
    s: &GeneralConvTranspose2dShape,
    gy: &[f32],
    w: &[f32],
    gx: &mut [f32],
) {
    s.check_lens(
        "conv_transpose2d_general_backward_input",
        gx.len(),
        w.len(),
        gy.len(),
    );
    forward(&s.geometry(), gy, w, gx);
}

/// General transposed convolution weight gradient: `gw ← ∂L/∂w`, the weight gradient of
/// the convolution it transposes with `gy` as that convolution's input and `x` as its
/// output gradient. Deterministic in the same way.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv_transpose2d_general_backward_weight(
    s: &GeneralConvTranspose2dShape,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
) {
    s.check_lens(
        "conv_transpose2d_general_backward_weight",
        x.len(),
        gw.len(),
        gy.len(),
    );
    backward_weight(&s.geometry(), gy, x, gw);
}

/// Calls `tap(xi, wi, yi)` for every product `x[xi]·w[wi]` that the convolution `s` adds
/// into `y[yi]`, straight from the definition.
fn conv2d_taps(s: &GeneralConv2dShape, mut tap: impl FnMut(usize, usize, usize)) {
    let (oh, ow) = (s.out_h(), s.out_w());
    let (cig, cog) = (s.c_in / s.groups, s.c_out / s.groups);
    let ((sh, sw), (ph, pw), (dh, dw)) = (s.stride, s.padding, s.dilation);
    for b in 0..s.batch {
        for o in 0..s.c_out {
            let g = o / cog;
            for i in 0..oh {
                for j in 0..ow {
                    let yi = ((b * s.c_out + o) * oh + i) * ow + j;
                    for c in 0..cig {
                        for p in 0..s.kh {
                            for q in 0..s.kw {
                                let iy = (i * sh + p * dh).checked_sub(ph).filter(|&iy| iy < s.h);
                                let ix = (j * sw + q * dw).checked_sub(pw).filter(|&ix| ix < s.w);
                                if let (Some(iy), Some(ix)) = (iy, ix) {
                                    let xi = ((b * s.c_in + g * cig + c) * s.h + iy) * s.w + ix;
                                    let wi = ((o * cig + c) * s.kh + p) * s.kw + q;
                                    tap(xi, wi, yi);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Calls `tap(xi, wi, yi)` for every product `x[xi]·w[wi]` that the transposed
/// convolution `s` adds into `y[yi]`, straight from its scatter definition.
fn conv_transpose2d_taps(
    s: &GeneralConvTranspose2dShape,
    mut tap: impl FnMut(usize, usize, usize),
) {
    let (oh, ow) = (s.out_h(), s.out_w());
    let (cig, cog) = (s.c_in / s.groups, s.c_out / s.groups);
    let ((sh, sw), (ph, pw), (dh, dw)) = (s.stride, s.padding, s.dilation);
    for b in 0..s.batch {
        for c in 0..s.c_in {
            let g = c / cig;
            for i in 0..s.h {
                for j in 0..s.w {
                    let xi = ((b * s.c_in + c) * s.h + i) * s.w + j;
                    for o in 0..cog {
                        for p in 0..s.kh {
                            for q in 0..s.kw {
                                let oy = (i * sh + p * dh).checked_sub(ph).filter(|&oy| oy < oh);
                                let ox = (j * sw + q * dw).checked_sub(pw).filter(|&ox| ox < ow);
                                if let (Some(oy), Some(ox)) = (oy, ox) {
                                    let yi = ((b * s.c_out + g * cog + o) * oh + oy) * ow + ox;
                                    let wi = ((c * cog + o) * s.kh + p) * s.kw + q;
                                    tap(xi, wi, yi);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Reference for [`conv2d_general_forward`]: direct loops over the definition, `f64` sums.
pub fn conv2d_general_forward_ref(s: &GeneralConv2dShape, x: &[f32], w: &[f32], y: &mut [f32]) {
    s.check_lens("conv2d_general_forward_ref", x.len(), w.len(), y.len());
    accumulate(y, |y| {
        conv2d_taps(s, |xi, wi, yi| y[yi] += product(x[xi], w[wi]))
    });
}

/// Reference for [`conv2d_general_backward_input`]: `gx[xi] += gy[yi]·w[wi]` over every tap.
pub fn conv2d_general_backward_input_ref(
    s: &GeneralConv2dShape,
    gy: &[f32],
    w: &[f32],
    gx: &mut [f32],
) {
    s.check_lens(
        "conv2d_general_backward_input_ref",
        gx.len(),
        w.len(),
        gy.len(),
    );
    accumulate(gx, |gx| {
        conv2d_taps(s, |xi, wi, yi| gx[xi] += product(gy[yi], w[wi]))
    });
}

/// Reference for [`conv2d_general_backward_weight`]: `gw[wi] += x[xi]·gy[yi]` over every tap.
pub fn conv2d_general_backward_weight_ref(
    s: &GeneralConv2dShape,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
) {
    s.check_lens(
        "conv2d_general_backward_weight_ref",
        x.len(),
        gw.len(),
        gy.len(),
    );
    accumulate(gw, |gw| {
        conv2d_taps(s, |xi, wi, yi| gw[wi] += product(x[xi], gy[yi]))
    });
}

/// Reference for [`conv_transpose2d_general_forward`]: direct scatter loops, `f64` sums.
pub fn conv_transpose2d_general_forward_ref(
    s: &GeneralConvTranspose2dShape,
    x: &[f32],
    w: &[f32],
    y: &mut [f32],
) {
    s.check_lens(
        "conv_transpose2d_general_forward_ref",
        x.len(),
        w.len(),
        y.len(),
    );
    accumulate(y, |y| {
        conv_transpose2d_taps(s, |xi, wi, yi| y[yi] += product(x[xi], w[wi]))
    });
}

/// Reference for [`conv_transpose2d_general_backward_input`]: `gx[xi] += gy[yi]·w[wi]`
/// over every tap.
pub fn conv_transpose2d_general_backward_input_ref(
    s: &GeneralConvTranspose2dShape,
    gy: &[f32],
    w: &[f32],
    gx: &mut [f32],
) {
    s.check_lens(
        "conv_transpose2d_general_backward_input_ref",
        gx.len(),
        w.len(),
        gy.len(),
    );
    accumulate(gx, |gx| {
        conv_transpose2d_taps(s, |xi, wi, yi| gx[xi] += product(gy[yi], w[wi]))
    });
}

/// Reference for [`conv_transpose2d_general_backward_weight`]: `gw[wi] += x[xi]·gy[yi]`
/// over every tap.
pub fn conv_transpose2d_general_backward_weight_ref(
    s: &GeneralConvTranspose2dShape,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
) {
    s.check_lens(
        "conv_transpose2d_general_backward_weight_ref",
        x.len(),
        gw.len(),
        gy.len(),
    );
    accumulate(gw, |gw| {
        conv_transpose2d_taps(s, |xi, wi, yi| gw[wi] += product(x[xi], gy[yi]))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::{Conv2dShape, conv2d_backward_input, conv2d_backward_weight, conv2d_forward};
    use crate::testutil::{assert_close, bits, conv2d_shapes, on_threads, random_vec, run};
    use proptest::prelude::*;

    /// Random general shapes: up to three groups of up to three channels each way, sides
    /// below 9, kernels up to 4×4, strides and dilations up to 3 and padding up to 2 per
    /// axis (kernels that do not fit the padded input are filtered out).
    fn conv_shape() -> impl Strategy<Value = GeneralConv2dShape> {
        (
            (0usize..4, 1usize..4, 1usize..4, 1usize..4),
            (1usize..9, 1usize..9, 1usize..5, 1usize..5),
            (
                (1usize..4, 1usize..4),
                (0usize..3, 0usize..3),
                (1usize..4, 1usize..4),
            ),
        )
            .prop_map(
                |((batch, groups, cig, cog), (h, w, kh, kw), (stride, padding, dilation))| {
                    GeneralConv2dShape {
                        batch,
                        c_in: groups * cig,
                        h,
                        w,
                        c_out: groups * cog,
                        kh,
                        kw,
                        stride,
                        padding,
                        dilation,
                        groups,
                    }
                },
            )
            .prop_filter("kernel must fit the padded input", |s| s.validate().is_ok())
    }

    /// Transposed shapes on the same ranges, with output paddings up to 2 per axis where
    /// PyTorch allows them (below the stride or the dilation).
    fn conv_transpose_shape() -> impl Strategy<Value = GeneralConvTranspose2dShape> {
        (conv_shape(), (0usize..3, 0usize..3)).prop_filter_map("invalid", |(s, op)| {
            let t = GeneralConvTranspose2dShape {
                batch: s.batch,
                c_in: s.c_in,
                h: s.h,
                w: s.w,
                c_out: s.c_out,
                kh: s.kh,
                kw: s.kw,
                stride: s.stride,
                padding: s.padding,
                output_padding: op,
                dilation: s.dilation,
                groups: s.groups,
            };
            t.validate().is_ok().then_some(t)
        })
    }

    /// The general shape of a square convolution.
    fn general(s: &Conv2dShape) -> GeneralConv2dShape {
        GeneralConv2dShape {
            batch: s.batch,
            c_in: s.c_in,
            h: s.h,
            w: s.w,
            c_out: s.c_out,
            kh: s.kh,
            kw: s.kw,
            stride: (s.stride, s.stride),
            padding: (s.padding, s.padding),
            dilation: (1, 1),
            groups: 1,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn conv2d_matches_reference(s in conv_shape(), seed in any::<u64>()) {
            let (nx, nw, ny) = (s.input_len(), s.weight_len(), s.output_len());
            let (x, w, gy) = (random_vec(nx, seed), random_vec(nw, seed + 1), random_vec(ny, seed + 2));

            let want = run(ny, |y| conv2d_general_forward_ref(&s, &x, &w, y));
            assert_close(&run(ny, |y| conv2d_general_forward(&s, &x, &w, y)), &want, 1e-4);

            let want = run(nx, |gx| conv2d_general_backward_input_ref(&s, &gy, &w, gx));
            let got = run(nx, |gx| conv2d_general_backward_input(&s, &gy, &w, gx));
            assert_close(&got, &want, 1e-4);

            let want = run(nw, |gw| conv2d_general_backward_weight_ref(&s, &x, &gy, gw));
            let got = run(nw, |gw| conv2d_general_backward_weight(&s, &x, &gy, gw));
            assert_close(&got, &want, 1e-4);
        }

        #[test]
        fn conv_transpose2d_matches_reference(s in conv_transpose_shape(), seed in any::<u64>()) {
            let (nx, nw, ny) = (s.input_len(), s.weight_len(), s.output_len());
            let (x, w, gy) = (random_vec(nx, seed), random_vec(nw, seed + 1), random_vec(ny, seed + 2));

            let want = run(ny, |y| conv_transpose2d_general_forward_ref(&s, &x, &w, y));
            let got = run(ny, |y| conv_transpose2d_general_forward(&s, &x, &w, y));
            assert_close(&got, &want, 1e-4);

            let want = run(nx, |gx| conv_transpose2d_general_backward_input_ref(&s, &gy, &w, gx));
            let got = run(nx, |gx| conv_transpose2d_general_backward_input(&s, &gy, &w, gx));
            assert_close(&got, &want, 1e-4);

            let want = run(nw, |gw| conv_transpose2d_general_backward_weight_ref(&s, &x, &gy, gw));
            let got = run(nw, |gw| conv_transpose2d_general_backward_weight(&s, &x, &gy, gw));
            assert_close(&got, &want, 1e-4);
        }

        /// On the square, ungrouped, undilated shapes both kinds of kernel serve, they agree.
        #[test]
        fn square_shapes_agree_with_the_fast_kernels(
            s in conv2d_shapes(0usize..4, 1usize..4, 9), seed in any::<u64>(),
        ) {
            let g = general(&s);
            let (nx, nw, ny) = (s.input_len(), s.weight_len(), s.output_len());
            let (x, w, gy) = (random_vec(nx, seed), random_vec(nw, seed + 1), random_vec(ny, seed + 2));
            let want = run(ny, |y| conv2d_forward(&s, &x, &w, y));
            assert_close(&run(ny, |y| conv2d_general_forward(&g, &x, &w, y)), &want, 1e-5);
            let want = run(nx, |gx| conv2d_backward_input(&s, &gy, &w, gx));
            assert_close(&run(nx, |gx| conv2d_general_backward_input(&g, &gy, &w, gx)), &want, 1e-5);
            let want = run(nw, |gw| conv2d_backward_weight(&s, &x, &gy, gw));
            assert_close(&run(nw, |gw| conv2d_general_backward_weight(&g, &x, &gy, gw)), &want, 1e-5);
        }
    }

    /// One 5×5 image of 1…25.
    const IMAGE: GeneralConv2dShape = GeneralConv2dShape {
        batch: 1,
        c_in: 1,
        h: 5,
        w: 5,
        c_out: 1,
        kh: 2,
        kw: 2,
        stride: (1, 1),
        padding: (0, 0),
        dilation: (1, 1),
        groups: 1,
    };

    fn one_to(n: usize) -> Vec<f32> {
        (1..=n).map(|v| v as f32).collect()
    }

    #[test]
    fn dilation_and_per_axis_stride_by_hand() {
        // A 2×2 filter of ones with dilation (2, 3) reads pixels (i, j), (i, j+3),
        // (i+2, j), (i+2, j+3); stride (2, 1) keeps output rows 0 and 2 of the 3 that fit.
        let s = GeneralConv2dShape {
            stride: (2, 1),
            dilation: (2, 3),
            ..IMAGE
        };
        assert_eq!((s.out_h(), s.out_w()), (2, 2));
        let y = run(4, |y| conv2d_general_forward(&s, &one_to(25), &[1.0; 4], y));
        // Window at (0, 0): 1 + 4 + 11 + 14; (0, 1): 2 + 5 + 12 + 15; rows 2 and 4 likewise.
        assert_eq!(y, [30.0, 34.0, 70.0, 74.0]);
    }

    #[test]
    fn groups_by_hand() {
        // Two channels, two groups, 1×1 filters 2 and −1: each output channel scales its
        // own input channel only.
        let s = GeneralConv2dShape {
            c_in: 2,
            c_out: 2,
            h: 1,
            w: 2,
            kh: 1,
            kw: 1,
            groups: 2,
            ..IMAGE
        };
        let y = run(4, |y| {
            conv2d_general_forward(&s, &[1.0, 2.0, 3.0, 4.0], &[2.0, -1.0], y)
        });
        assert_eq!(y, [2.0, 4.0, -3.0, -4.0]);
    }

    #[test]
    fn weight_gradient_is_identical_on_one_and_two_threads() {
        let s = GeneralConv2dShape {
            batch: 70,
            c_in: 4,
            h: 9,
            w: 7,
            c_out: 6,
            kh: 3,
            kw: 2,
            stride: (2, 1),
            padding: (1, 0),
            dilation: (1, 2),
            groups: 2,
        };
        let (x, gy) = (random_vec(s.input_len(), 1), random_vec(s.output_len(), 2));
        let on = |threads| {
            on_threads(threads, || {
                run(s.weight_len(), |gw| {
                    conv2d_general_backward_weight(&s, &x, &gy, gw)
                })
            })
        };
        assert_eq!(bits(&on(1)), bits(&on(2)));
    }

    #[test]
    fn validation_follows_pytorch() {
        assert!(
            GeneralConv2dShape {
                kh: 3,
                dilation: (2, 1),
                ..IMAGE
            }
            .validate()
            .is_ok()
        );
        assert!(
            GeneralConv2dShape {
                kh: 3,
                dilation: (3, 1),
                ..IMAGE
            }
            .validate()
            .is_err()
        );
        assert!(
            GeneralConv2dShape {
                c_in: 3,
                groups: 2,
                ..IMAGE
            }
            .validate()
            .is_err()
        );
        assert!(
            GeneralConv2dShape {
                dilation: (1, 0),
                ..IMAGE
            }
            .validate()
            .is_err()
        );
        let t = GeneralConvTranspose2dShape {
            batch: 1,
            c_in: 2,
            h: 3,
            w: 3,
            c_out: 2,
            kh: 2,
            kw: 2,
            stride: (1, 2),
            padding: (0, 0),
            output_padding: (1, 1),
            dilation: (1, 1),
            groups: 2,
        };
        // Output padding 1 is not below stride 1 nor dilation 1 on the height axis…
        assert!(t.validate().is_err());
        // …but it is below dilation 2.
        let t = GeneralConvTranspose2dShape {
            dilation: (2, 1),
            ..t
        };
        assert!(t.validate().is_ok());
        // (3 − 1)·1 + 2·(2 − 1) + 1 + 1 = 6 rows, (3 − 1)·2 + 1·(2 − 1) + 1 + 1 = 7 columns.
        assert_eq!((t.out_h(), t.out_w()), (6, 7));
    }

    #[test]
    #[should_panic(expected = "conv2d_general_forward: slice lengths")]
    fn wrong_length_panics() {
        conv2d_general_forward(&IMAGE, &[0.0; 24], &[1.0; 4], &mut [0.0; 16]);
    }
}
