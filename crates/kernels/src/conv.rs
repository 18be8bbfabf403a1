//! 2-D convolution and transposed convolution, forward and both gradients, with
//! PyTorch's semantics (NCHW, square stride and padding, no dilation, no groups, no bias).
//!
//! The fast kernels are im2col + GEMM. The batch is cut into at most `MAX_TASKS`
//! contiguous runs of images, one rayon task each, and every task walks its run in chunks
//! small enough that its column buffer stays within [`CHUNK_BUDGET`] whatever the batch
//! size (one image when a single image needs more). Each chunk is one single-threaded GEMM
//! over all its images side by side, in a per-thread scratch buffer that is reused from
//! call to call, so a warm thread allocates only its small weight-gradient partial.
//!
//! A transposed convolution is the adjoint of a convolution, so it needs no kernels of
//! its own: with `conv` the convolution it transposes ([`ConvTranspose2dShape::as_conv2d`]),
//! its forward pass is `conv`'s input gradient, its input gradient is `conv`'s forward
//! pass, and its weight gradient is `conv`'s weight gradient with `x` and `gy` swapped.

use crate::gemm::sgemm_serial;
use crate::unfold::Unfold;
use rayon::prelude::*;
use std::cell::Cell;

/// Most `f32`s one thread's scratch (column matrix plus the matching output-sized
/// matrix) may hold: 64 Ki floats, 256 KiB, so that a chunk's im2col output is still in
/// L2 when the GEMM packs it. A chunk has as many images as fit, and at least one.
pub const CHUNK_BUDGET: usize = 1 << 16;

/// Most rayon tasks one call splits its batch into. The split depends on the shape only,
/// never on the thread count, which is what makes the weight gradient's reduction order,
/// and so its bits, the same on any number of threads.
pub(crate) const MAX_TASKS: usize = 64;

/// Most `f32`s the per-task partial weight gradients may hold together (16 MiB); fewer
/// tasks are used for a weight too large for [`MAX_TASKS`] copies of it.
pub(crate) const PARTIAL_BUDGET: usize = 1 << 22;

/// The shape of a 2-D convolution: input `x[batch, c_in, h, w]`, weight
/// `w[c_out, c_in, kh, kw]`, output `y[batch, c_out, out_h, out_w]`, with
///
/// `y[b, o, i, j] = Σ_{c, p, q} x[b, c, i·stride + p − padding, j·stride + q − padding] · w[o, c, p, q]`
///
/// where pixels outside the input read as zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dShape {
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
    /// Step between windows, in both directions.
    pub stride: usize,
    /// Zeros added on every side of the input.
    pub padding: usize,
}

impl Conv2dShape {
    /// Checks that the shape describes a convolution: stride and kernel at least 1, and
    /// the kernel no larger than the padded input.
    pub fn validate(&self) -> Result<(), String> {
        if self.stride == 0 || self.kh == 0 || self.kw == 0 {
            return Err(format!("conv2d: zero stride or kernel size in {self:?}"));
        }
        if self.kh > self.h + 2 * self.padding || self.kw > self.w + 2 * self.padding {
            return Err(format!(
                "conv2d: kernel larger than the padded input in {self:?}"
            ));
        }
        Ok(())
    }

    /// Output height, `⌊(h + 2·padding − kh) / stride⌋ + 1`.
    ///
    /// # Panics
    /// If the shape is not [valid](Self::validate).
    pub fn out_h(&self) -> usize {
        self.assert_valid();
        (self.h + 2 * self.padding - self.kh) / self.stride + 1
    }

    /// Output width, `⌊(w + 2·padding − kw) / stride⌋ + 1`.
    ///
    /// # Panics
    /// If the shape is not [valid](Self::validate).
    pub fn out_w(&self) -> usize {
        self.assert_valid();
        (self.w + 2 * self.padding - self.kw) / self.stride + 1
    }

    /// Length of `x`: `batch·c_in·h·w`.
    pub fn input_len(&self) -> usize {
        self.batch * self.c_in * self.h * self.w
    }

    /// Length of the weight: `c_out·c_in·kh·kw`.
    pub fn weight_len(&self) -> usize {
        self.c_out * self.c_in * self.kh * self.kw
    }

    /// Length of `y`: `batch·c_out·out_h·out_w`.
    pub fn output_len(&self) -> usize {
        self.batch * self.c_out * self.out_h() * self.out_w()
    }

    /// Floating-point operations of the forward pass, two per multiply-add. Each gradient
    /// costs the same.
    pub fn flops(&self) -> f64 {
        2.0 * self.output_len() as f64 * (self.c_in * self.kh * self.kw) as f64
    }

    fn assert_valid(&self) {
        if let Err(e) = self.validate() {
            panic!("{e}");
        }
    }

    /// Panics with a clear message unless the slice lengths match the shape.
    fn check_lens(&self, kernel: &str, x: usize, w: usize, y: usize) {
        let want = [self.input_len(), self.weight_len(), self.output_len()];
        check_lens(kernel, self, [x, w, y], want);
    }

    /// The im2col geometry of one input image.
    fn unfold(&self) -> Unfold {
        Unfold {
            c: self.c_in,
            h: self.h,
            w: self.w,
            kh: self.kh,
            kw: self.kw,
            stride: self.stride,
            pad: self.padding,
            oh: self.out_h(),
            ow: self.out_w(),
        }
    }
}

/// The shape of a 2-D transposed convolution: input `x[batch, c_in, h, w]`, weight
/// `w[c_in, c_out, kh, kw]` (PyTorch's layout), output `y[batch, c_out, out_h, out_w]`, with
///
/// `y[b, o, i·stride + p − padding, j·stride + q − padding] += x[b, c, i, j] · w[c, o, p, q]`
///
/// over all `b, c, o, i, j, p, q`, dropping what lands outside the output. It is the
/// gradient of a [`Conv2dShape`] convolution with respect to that convolution's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dShape {
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
    /// Step between the kernel's placements in the output, in both directions.
    pub stride: usize,
    /// Rows and columns cropped from every side of the full output.
    pub padding: usize,
    /// Extra rows and columns kept at the bottom and right, which picks one of the
    /// `stride` input sizes a strided convolution maps to the same output size.
    pub output_padding: usize,
}

impl ConvTranspose2dShape {
    /// Checks that the shape describes a transposed convolution: stride and kernel at
    /// least 1, a non-empty input plane, `output_padding < stride`, and a non-empty output.
    pub fn validate(&self) -> Result<(), String> {
        if self.stride == 0 || self.kh == 0 || self.kw == 0 || self.h == 0 || self.w == 0 {
            return Err(format!(
                "conv_transpose2d: zero stride, kernel or input size in {self:?}"
            ));
        }
        if self.output_padding >= self.stride {
            return Err(format!(
                "conv_transpose2d: output_padding must be less than stride in {self:?}"
            ));
        }
        let full = |n: usize, k: usize| (n - 1) * self.stride + k + self.output_padding;
        if full(self.h, self.kh) <= 2 * self.padding || full(self.w, self.kw) <= 2 * self.padding {
            return Err(format!(
                "conv_transpose2d: padding leaves no output in {self:?}"
            ));
        }
        Ok(())
    }

    /// Output height, `(h − 1)·stride − 2·padding + kh + output_padding`.
    ///
    /// # Panics
    /// If the shape is not [valid](Self::validate).
    pub fn out_h(&self) -> usize {
        self.assert_valid();
        (self.h - 1) * self.stride + self.kh + self.output_padding - 2 * self.padding
    }

    /// Output width, `(w − 1)·stride − 2·padding + kw + output_padding`.
    ///
    /// # Panics
    /// If the shape is not [valid](Self::validate).
    pub fn out_w(&self) -> usize {
        self.assert_valid();
        (self.w - 1) * self.stride + self.kw + self.output_padding - 2 * self.padding
    }

    /// Length of `x`: `batch·c_in·h·w`.
    pub fn input_len(&self) -> usize {
        self.batch * self.c_in * self.h * self.w
    }

    /// Length of the weight: `c_in·c_out·kh·kw`.
    pub fn weight_len(&self) -> usize {
        self.c_in * self.c_out * self.kh * self.kw
    }

    /// Length of `y`: `batch·c_out·out_h·out_w`.
    pub fn output_len(&self) -> usize {
        self.batch * self.c_out * self.out_h() * self.out_w()
    }

    /// Floating-point operations of the forward pass, two per multiply-add. Each gradient
    /// costs the same.
    pub fn flops(&self) -> f64 {
        2.0 * self.input_len() as f64 * (self.c_out * self.kh * self.kw) as f64
    }

    /// The convolution this transposes: it maps a `[batch, c_out, out_h, out_w]` tensor
    /// back to `[batch, c_in, h, w]` with the same weight tensor, read as
    /// `[c_out', c_in', kh, kw]` with `c_out' = c_in` and `c_in' = c_out`.
    ///
    /// Its output size is `h` again because `output_padding < stride`.
    pub fn as_conv2d(&self) -> Conv2dShape {
        Conv2dShape {
            batch: self.batch,
            c_in: self.c_out,
            h: self.out_h(),
            w: self.out_w(),
            c_out: self.c_in,
            kh: self.kh,
            kw: self.kw,
            stride: self.stride,
            padding: self.padding,
        }
    }

    fn assert_valid(&self) {
        if let Err(e) = self.validate() {
            panic!("{e}");
        }
    }

    /// Panics with a clear message unless the slice lengths match the shape.
    fn check_lens(&self, kernel: &str, x: usize, w: usize, y: usize) {
        let want = [self.input_len(), self.weight_len(), self.output_len()];
        check_lens(kernel, self, [x, w, y], want);
    }
}

/// Panics unless the lengths of a kernel's `(x, w, y)` slices are `want`.
pub(crate) fn check_lens(
    kernel: &str,
    shape: &impl std::fmt::Debug,
    got: [usize; 3],
    want: [usize; 3],
) {
    assert!(
        got == want,
        "{kernel}: slice lengths (x, w, y) = {got:?}, but {shape:?} needs {want:?}"
    );
}

/// How one call cuts its batch: the images each rayon task walks and the images each of
/// its GEMMs covers. Depends on the shape only.
#[derive(Clone, Copy, Debug)]
struct Plan {
    unfold: Unfold,
    c_out: usize,
    per_task: usize,
    per_chunk: usize,
}

impl Plan {
    /// The plan for `s` with at most `max_tasks` tasks.
    fn new(s: &Conv2dShape, max_tasks: usize) -> Self {
        let unfold = s.unfold();
        let per_image = (unfold.rows() + s.c_out) * unfold.cols();
        let per_task = s.batch.div_ceil(max_tasks).max(1);
        let per_chunk = (CHUNK_BUDGET / per_image.max(1)).clamp(1, per_task);
        Plan {
            unfold,
            c_out: s.c_out,
            per_task,
            per_chunk,
        }
    }

    /// Runs `f(cols, mat)` on this thread's scratch, sized for a full chunk: the column
    /// matrix `[c_in·kh·kw, images·P]` and the output-sized matrix `[c_out, images·P]`,
    /// `P = out_h·out_w`. Their contents on entry are unspecified.
    fn with_scratch<R>(&self, f: impl FnOnce(&mut [f32], &mut [f32]) -> R) -> R {
        let width = self.per_chunk * self.unfold.cols();
        let (n_cols, n_mat) = (self.unfold.rows() * width, self.c_out * width);
        // Taken out of the cell, not borrowed, so a nested call would allocate its own
        // rather than panic.
        let mut buf = SCRATCH.take();
        if buf.len() < n_cols + n_mat {
            buf.resize(n_cols + n_mat, 0.0);
        }
        let (cols, mat) = buf.split_at_mut(n_cols);
        let out = f(cols, &mut mat[..n_mat]);
        SCRATCH.set(buf);
        out
    }

    /// Runs `f(cols, mat, src_chunk, dst_chunk)` over the batch chunk by chunk, tasks in
    /// parallel; `src` and `dst` hold `src_image` and `dst_image` floats per image, and
    /// `cols`, `mat` are the scratch trimmed to the chunk's image count.
    fn for_each_chunk<F>(
        &self,
        src: &[f32],
        src_image: usize,
        dst: &mut [f32],
        dst_image: usize,
        f: F,
    ) where
        F: Fn(&mut [f32], &mut [f32], &[f32], &mut [f32]) + Sync,
    {
        let (rows, positions) = (self.unfold.rows(), self.unfold.cols());
        dst.par_chunks_mut(self.per_task * dst_image)
            .zip(src.par_chunks(self.per_task * src_image))
            .for_each(|(dst, src)| {
                self.with_scratch(|cols, mat| {
                    let chunks = dst
                        .chunks_mut(self.per_chunk * dst_image)
                        .zip(src.chunks(self.per_chunk * src_image));
                    for (dst, src) in chunks {
                        let width = src.len() / src_image * positions;
                        let (cols, mat) =
                            (&mut cols[..rows * width], &mut mat[..self.c_out * width]);
                        f(cols, mat, src, dst);
                    }
                });
            });
    }
}

thread_local! {
    /// Each thread's convolution scratch, kept between calls so that a warm thread
    /// allocates nothing. It holds one chunk: at most [`CHUNK_BUDGET`] floats, or one
    /// image's worth when a single image needs more.
    static SCRATCH: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// Convolution forward pass: `y ← conv2d(x, w)` (see [`Conv2dShape`]).
///
/// Per chunk of images: im2col of each image into a shared column matrix, one GEMM
/// `W[c_out, c_in·kh·kw] · cols`, and a scatter of the result into `y`'s NCHW layout.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv2d_forward(s: &Conv2dShape, x: &[f32], w: &[f32], y: &mut [f32]) {
    s.check_lens("conv2d_forward", x.len(), w.len(), y.len());
    if x.is_empty() || w.is_empty() || y.is_empty() {
        return y.fill(0.0);
    }
    forward(&Plan::new(s, MAX_TASKS), x, w, y);
}

/// Convolution input gradient: `gx ← ∂L/∂x` given `gy = ∂L/∂y` (a transposed convolution
/// of `gy`).
///
/// Per chunk of images: `gy` gathered into `[c_out, images·P]`, one GEMM
/// `cols = Wᵀ · gy`, and col2im of each image's columns into `gx`.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv2d_backward_input(s: &Conv2dShape, gy: &[f32], w: &[f32], gx: &mut [f32]) {
    s.check_lens("conv2d_backward_input", gx.len(), w.len(), gy.len());
    if gy.is_empty() || w.is_empty() || gx.is_empty() {
        return gx.fill(0.0);
    }
    backward_input(&Plan::new(s, MAX_TASKS), gy, w, gx);
}

/// Convolution weight gradient: `gw ← ∂L/∂w = Σ_images gy_image · cols_imageᵀ`.
///
/// Each task sums its run of images into a private partial gradient, one GEMM per chunk;
/// the partials are then added in task order. Tasks depend on the shape only, so the
/// result is bit-for-bit the same on any number of threads.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv2d_backward_weight(s: &Conv2dShape, x: &[f32], gy: &[f32], gw: &mut [f32]) {
    s.check_lens("conv2d_backward_weight", x.len(), gw.len(), gy.len());
    if x.is_empty() || gy.is_empty() || gw.is_empty() {
        return gw.fill(0.0);
    }
    let max_tasks = MAX_TASKS.min(PARTIAL_BUDGET / gw.len()).max(1);
    backward_weight(&Plan::new(s, max_tasks), x, gy, gw);
}

/// [`conv2d_forward`] under an explicit plan, on non-empty operands.
fn forward(plan: &Plan, x: &[f32], w: &[f32], y: &mut [f32]) {
    let (u, c_out) = (plan.unfold, plan.c_out);
    let (k, p) = (u.rows(), u.cols());
    plan.for_each_chunk(x, u.image_len(), y, c_out * p, |cols, mat, x, y| {
        let width = mat.len() / c_out;
        unfold_images(&u, x, cols, width);
        let ld = width as isize;
        sgemm_serial(
            c_out, k, width, 1.0, w, k as isize, 1, cols, ld, 1, 0.0, mat, ld, 1,
        );
        split_images(mat, c_out, p, y);
    });
}

/// [`conv2d_backward_input`] under an explicit plan, on non-empty operands.
fn backward_input(plan: &Plan, gy: &[f32], w: &[f32], gx: &mut [f32]) {
    let (u, c_out) = (plan.unfold, plan.c_out);
    let (k, p) = (u.rows(), u.cols());
    plan.for_each_chunk(gy, c_out * p, gx, u.image_len(), |cols, mat, gy, gx| {
        let width = mat.len() / c_out;
        join_images(gy, c_out, p, mat);
        let ld = width as isize;
        sgemm_serial(
            k, c_out, width, 1.0, w, 1, k as isize, mat, ld, 1, 0.0, cols, ld, 1,
        );
        for (j, gx) in gx.chunks_exact_mut(u.image_len()).enumerate() {
            u.col2im(&cols[j * p..], width, gx);
        }
    });
}

/// [`conv2d_backward_weight`] under an explicit plan, on non-empty operands.
fn backward_weight(plan: &Plan, x: &[f32], gy: &[f32], gw: &mut [f32]) {
    let (x_image, gy_image) = (plan.unfold.image_len(), plan.c_out * plan.unfold.cols());
    let partials: Vec<Vec<f32>> = x
        .par_chunks(plan.per_task * x_image)
        .zip(gy.par_chunks(plan.per_task * gy_image))
        .map(|(x, gy)| weight_partial(plan, x, gy, gw.len()))
        .collect();
    // Each block of gw sums the partials in task order, so the order never depends on
    // which thread did what.
    const BLOCK: usize = 1 << 12;
    gw.par_chunks_mut(BLOCK).enumerate().for_each(|(i, gw)| {
        let range = i * BLOCK..i * BLOCK + gw.len();
        gw.copy_from_slice(&partials[0][range.clone()]);
        for partial in &partials[1..] {
            let partial = &partial[range.clone()];
            gw.iter_mut().zip(partial).for_each(|(g, p)| *g += *p);
        }
    });
}

/// One task's share of the weight gradient: `Σ gy_image · cols_imageᵀ` over the images in
/// `x` and `gy`, one GEMM per chunk accumulating into a fresh `[c_out, c_in·kh·kw]` matrix.
fn weight_partial(plan: &Plan, x: &[f32], gy: &[f32], len: usize) -> Vec<f32> {
    let (u, c_out) = (plan.unfold, plan.c_out);
    let (k, p) = (u.rows(), u.cols());
    let (x_image, gy_image) = (u.image_len(), c_out * p);
    let mut partial = vec![0.0; len];
    plan.with_scratch(|cols, mat| {
        let chunks = x
            .chunks(plan.per_chunk * x_image)
            .zip(gy.chunks(plan.per_chunk * gy_image));
        for (x, gy) in chunks {
            let width = x.len() / x_image * p;
            let (cols, mat) = (&mut cols[..k * width], &mut mat[..c_out * width]);
            unfold_images(&u, x, cols, width);
            join_images(gy, c_out, p, mat);
            let (ld, gw) = (width as isize, &mut partial);
            sgemm_serial(
                c_out, width, k, 1.0, mat, ld, 1, cols, 1, ld, 1.0, gw, k as isize, 1,
            );
        }
    });
    partial
}

/// im2col of each image in `x` into `cols`, image `j` at column offset `j·P` of a matrix
/// `width` columns wide.
fn unfold_images(u: &Unfold, x: &[f32], cols: &mut [f32], width: usize) {
    for (j, x) in x.chunks_exact(u.image_len()).enumerate() {
        u.im2col(x, &mut cols[j * u.cols()..], width);
    }
}

/// Copies `[images, c, p]` into the matrix `[c, images·p]`: image `j`'s channel `i` becomes
/// columns `j·p ..` of row `i`.
fn join_images(src: &[f32], c: usize, p: usize, dst: &mut [f32]) {
    let width = dst.len() / c;
    for (j, image) in src.chunks_exact(c * p).enumerate() {
        for (i, channel) in image.chunks_exact(p).enumerate() {
            dst[i * width + j * p..][..p].copy_from_slice(channel);
        }
    }
}

/// The inverse of [`join_images`]: the matrix `[c, images·p]` back into `[images, c, p]`.
fn split_images(src: &[f32], c: usize, p: usize, dst: &mut [f32]) {
    let width = src.len() / c;
    for (j, image) in dst.chunks_exact_mut(c * p).enumerate() {
        for (i, channel) in image.chunks_exact_mut(p).enumerate() {
            channel.copy_from_slice(&src[i * width + j * p..][..p]);
        }
    }
}

/// Transposed convolution forward pass: `y ← conv_transpose2d(x, w)` (see
/// [`ConvTranspose2dShape`]), computed as [`conv2d_backward_input`] of
/// [`ConvTranspose2dShape::as_conv2d`].
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv_transpose2d_forward(s: &ConvTranspose2dShape, x: &[f32], w: &[f32], y: &mut [f32]) {
    s.check_lens("conv_transpose2d_forward", x.len(), w.len(), y.len());
    conv2d_backward_input(&s.as_conv2d(), x, w, y);
}

/// Transposed convolution input gradient: `gx ← ∂L/∂x` given `gy`, computed as
/// [`conv2d_forward`] of [`ConvTranspose2dShape::as_conv2d`] applied to `gy`.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv_transpose2d_backward_input(
    s: &ConvTranspose2dShape,
    gy: &[f32],
    w: &[f32],
    gx: &mut [f32],
) {
    s.check_lens(
        "conv_transpose2d_backward_input",
        gx.len(),
        w.len(),
        gy.len(),
    );
    conv2d_forward(&s.as_conv2d(), gy, w, gx);
}

/// Transposed convolution weight gradient: `gw ← ∂L/∂w`, computed as
/// [`conv2d_backward_weight`] of [`ConvTranspose2dShape::as_conv2d`] with `gy` in the role
/// of the convolution's input and `x` in that of its output gradient. Deterministic in the
/// same way.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv_transpose2d_backward_weight(
    s: &ConvTranspose2dShape,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
) {
    s.check_lens(
        "conv_transpose2d_backward_weight",
        x.len(),
        gw.len(),
        gy.len(),
    );
    conv2d_backward_weight(&s.as_conv2d(), gy, x, gw);
}

/// Calls `tap(xi, wi, yi)` for every product `x[xi]·w[wi]` that the convolution `s` adds
/// into `y[yi]`: the definition every reference kernel below is written from.
fn conv2d_taps(s: &Conv2dShape, mut tap: impl FnMut(usize, usize, usize)) {
    let (oh, ow) = (s.out_h(), s.out_w());
    for b in 0..s.batch {
        for o in 0..s.c_out {
            for i in 0..oh {
                for j in 0..ow {
                    let yi = ((b * s.c_out + o) * oh + i) * ow + j;
                    for c in 0..s.c_in {
                        for p in 0..s.kh {
                            for q in 0..s.kw {
                                let iy = (i * s.stride + p).checked_sub(s.padding);
                                let ix = (j * s.stride + q).checked_sub(s.padding);
                                if let (Some(iy), Some(ix)) = (iy, ix)
                                    && iy < s.h
                                    && ix < s.w
                                {
                                    let xi = ((b * s.c_in + c) * s.h + iy) * s.w + ix;
                                    let wi = ((o * s.c_in + c) * s.kh + p) * s.kw + q;
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
fn conv_transpose2d_taps(s: &ConvTranspose2dShape, mut tap: impl FnMut(usize, usize, usize)) {
    let (oh, ow) = (s.out_h(), s.out_w());
    for b in 0..s.batch {
        for c in 0..s.c_in {
            for i in 0..s.h {
                for j in 0..s.w {
                    let xi = ((b * s.c_in + c) * s.h + i) * s.w + j;
                    for o in 0..s.c_out {
                        for p in 0..s.kh {
                            for q in 0..s.kw {
                                let oy = (i * s.stride + p).checked_sub(s.padding);
                                let ox = (j * s.stride + q).checked_sub(s.padding);
                                if let (Some(oy), Some(ox)) = (oy, ox)
                                    && oy < oh
                                    && ox < ow
                                {
                                    let yi = ((b * s.c_out + o) * oh + oy) * ow + ox;
                                    let wi = ((c * s.c_out + o) * s.kh + p) * s.kw + q;
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

/// Overwrites `out` with the `f64` sums that `fill` accumulates, rounded to `f32`.
pub(crate) fn accumulate(out: &mut [f32], fill: impl FnOnce(&mut [f64])) {
    let mut acc = vec![0.0; out.len()];
    fill(&mut acc);
    out.iter_mut().zip(&acc).for_each(|(o, a)| *o = *a as f32);
}

/// `a·b` in `f64`, the references' accumulation precision.
pub(crate) fn product(a: f32, b: f32) -> f64 {
    f64::from(a) * f64::from(b)
}

/// Reference for [`conv2d_forward`]: direct loops over the definition, `f64` sums.
pub fn conv2d_forward_ref(s: &Conv2dShape, x: &[f32], w: &[f32], y: &mut [f32]) {
    s.check_lens("conv2d_forward_ref", x.len(), w.len(), y.len());
    accumulate(y, |y| {
        conv2d_taps(s, |xi, wi, yi| y[yi] += product(x[xi], w[wi]))
    });
}

/// Reference for [`conv2d_backward_input`]: `gx[xi] += gy[yi]·w[wi]` over every tap.
pub fn conv2d_backward_input_ref(s: &Conv2dShape, gy: &[f32], w: &[f32], gx: &mut [f32]) {
    s.check_lens("conv2d_backward_input_ref", gx.len(), w.len(), gy.len());
    accumulate(gx, |gx| {
        conv2d_taps(s, |xi, wi, yi| gx[xi] += product(gy[yi], w[wi]))
    });
}

/// Reference for [`conv2d_backward_weight`]: `gw[wi] += x[xi]·gy[yi]` over every tap.
pub fn conv2d_backward_weight_ref(s: &Conv2dShape, x: &[f32], gy: &[f32], gw: &mut [f32]) {
    s.check_lens("conv2d_backward_weight_ref", x.len(), gw.len(), gy.len());
    accumulate(gw, |gw| {
        conv2d_taps(s, |xi, wi, yi| gw[wi] += product(x[xi], gy[yi]))
    });
}

/// Reference for [`conv_transpose2d_forward`]: direct scatter loops, `f64` sums.
pub fn conv_transpose2d_forward_ref(s: &ConvTranspose2dShape, x: &[f32], w: &[f32], y: &mut [f32]) {
    s.check_lens("conv_transpose2d_forward_ref", x.len(), w.len(), y.len());
    accumulate(y, |y| {
        conv_transpose2d_taps(s, |xi, wi, yi| y[yi] += product(x[xi], w[wi]))
    });
}

/// Reference for [`conv_transpose2d_backward_input`]: `gx[xi] += gy[yi]·w[wi]` over every tap.
pub fn conv_transpose2d_backward_input_ref(
    s: &ConvTranspose2dShape,
    gy: &[f32],
    w: &[f32],
    gx: &mut [f32],
) {
    s.check_lens(
        "conv_transpose2d_backward_input_ref",
        gx.len(),
        w.len(),
        gy.len(),
    );
    accumulate(gx, |gx| {
        conv_transpose2d_taps(s, |xi, wi, yi| gx[xi] += product(gy[yi], w[wi]))
    });
}

/// Reference for [`conv_transpose2d_backward_weight`]: `gw[wi] += x[xi]·gy[yi]` over every tap.
pub fn conv_transpose2d_backward_weight_ref(
    s: &ConvTranspose2dShape,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
) {
    s.check_lens(
        "conv_transpose2d_backward_weight_ref",
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
    use crate::testutil::{
        assert_close, bits, conv_transpose2d_shapes, conv2d_shapes, on_threads, random_vec, run,
    };
    use proptest::prelude::*;

    /// Random convolution shapes, mostly tiny, with now and then a batch long enough to
    /// give tasks several images.
    fn conv2d_shape() -> impl Strategy<Value = Conv2dShape> {
        conv2d_shapes(prop_oneof![3 => 0usize..4, 1 => 60usize..70], 1usize..4, 9)
    }

    fn conv_transpose2d_shape() -> impl Strategy<Value = ConvTranspose2dShape> {
        conv_transpose2d_shapes(conv2d_shape())
    }

    /// A plan for `s` with tasks of three images walked two at a time, so the tests reach
    /// the chunk loop and a short final chunk without a large batch.
    fn small_plan(s: &Conv2dShape) -> Plan {
        Plan {
            per_task: 3,
            per_chunk: 2,
            ..Plan::new(s, 1)
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn conv2d_matches_reference(s in conv2d_shape(), seed in any::<u64>()) {
            let (nx, nw, ny) = (s.input_len(), s.weight_len(), s.output_len());
            let (x, w, gy) = (random_vec(nx, seed), random_vec(nw, seed + 1), random_vec(ny, seed + 2));

            let want = run(ny, |y| conv2d_forward_ref(&s, &x, &w, y));
            assert_close(&run(ny, |y| conv2d_forward(&s, &x, &w, y)), &want, 1e-4);
            if nx * nw * ny > 0 {
                assert_close(&run(ny, |y| forward(&small_plan(&s), &x, &w, y)), &want, 1e-4);
            }

            let want = run(nx, |gx| conv2d_backward_input_ref(&s, &gy, &w, gx));
            assert_close(&run(nx, |gx| conv2d_backward_input(&s, &gy, &w, gx)), &want, 1e-4);
            if nx * nw * ny > 0 {
                let got = run(nx, |gx| backward_input(&small_plan(&s), &gy, &w, gx));
                assert_close(&got, &want, 1e-4);
            }

            let want = run(nw, |gw| conv2d_backward_weight_ref(&s, &x, &gy, gw));
            assert_close(&run(nw, |gw| conv2d_backward_weight(&s, &x, &gy, gw)), &want, 1e-4);
            if nx * nw * ny > 0 {
                let got = run(nw, |gw| backward_weight(&small_plan(&s), &x, &gy, gw));
                assert_close(&got, &want, 1e-4);
            }
        }

        #[test]
        fn conv_transpose2d_matches_reference(s in conv_transpose2d_shape(), seed in any::<u64>()) {
            let (nx, nw, ny) = (s.input_len(), s.weight_len(), s.output_len());
            let (x, w, gy) = (random_vec(nx, seed), random_vec(nw, seed + 1), random_vec(ny, seed + 2));

            let want = run(ny, |y| conv_transpose2d_forward_ref(&s, &x, &w, y));
            assert_close(&run(ny, |y| conv_transpose2d_forward(&s, &x, &w, y)), &want, 1e-4);

            let want = run(nx, |gx| conv_transpose2d_backward_input_ref(&s, &gy, &w, gx));
            let got = run(nx, |gx| conv_transpose2d_backward_input(&s, &gy, &w, gx));
            assert_close(&got, &want, 1e-4);

            let want = run(nw, |gw| conv_transpose2d_backward_weight_ref(&s, &x, &gy, gw));
            let got = run(nw, |gw| conv_transpose2d_backward_weight(&s, &x, &gy, gw));
            assert_close(&got, &want, 1e-4);
        }
    }

    /// One 3×3 image, one 2×2 filter of ones, stride 1, no padding.
    const SMALL: Conv2dShape = Conv2dShape {
        batch: 1,
        c_in: 1,
        h: 3,
        w: 3,
        c_out: 1,
        kh: 2,
        kw: 2,
        stride: 1,
        padding: 0,
    };
    const NINE: [f32; 9] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];

    #[test]
    fn conv2d_by_hand() {
        let ones = [1.0; 4];
        // Each output is the sum of one 2×2 window: 1+2+4+5, 2+3+5+6, 4+5+7+8, 5+6+8+9.
        let y = run(4, |y| conv2d_forward(&SMALL, &NINE, &ones, y));
        assert_eq!(y, [12.0, 16.0, 24.0, 28.0]);
        // With gy = 1 everywhere, gx counts the windows covering each pixel.
        let gx = run(9, |gx| conv2d_backward_input(&SMALL, &ones, &ones, gx));
        assert_eq!(gx, [1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]);
        // And gw[p, q] sums the pixels that tap (p, q) sees: the same window sums.
        let gw = run(4, |gw| conv2d_backward_weight(&SMALL, &NINE, &ones, gw));
        assert_eq!(gw, [12.0, 16.0, 24.0, 28.0]);
    }

    #[test]
    fn conv2d_padded_by_hand() {
        // Padding 1 around the 3×3 image with a 3×3 filter of ones, stride 2: the four
        // corner windows each hold one corner's 2×2 block.
        let s = Conv2dShape {
            kh: 3,
            kw: 3,
            stride: 2,
            padding: 1,
            ..SMALL
        };
        let y = run(4, |y| conv2d_forward(&s, &NINE, &[1.0; 9], y));
        assert_eq!(y, [12.0, 16.0, 24.0, 28.0]);
    }

    #[test]
    fn conv_transpose2d_by_hand() {
        let s = ConvTranspose2dShape {
            batch: 1,
            c_in: 1,
            h: 2,
            w: 2,
            c_out: 1,
            kh: 2,
            kw: 2,
            stride: 1,
            padding: 0,
            output_padding: 0,
        };
        let x = [1.0, 2.0, 3.0, 4.0];
        // Each input pixel stamps a 2×2 block of itself; overlapping stamps add up.
        let y = run(9, |y| conv_transpose2d_forward(&s, &x, &[1.0; 4], y));
        assert_eq!(y, [1.0, 3.0, 2.0, 4.0, 10.0, 6.0, 3.0, 7.0, 4.0]);
        // Stride 2: the stamps tile the 4×4 output without overlapping.
        let s = ConvTranspose2dShape { stride: 2, ..s };
        let y = run(16, |y| conv_transpose2d_forward(&s, &x, &[1.0; 4], y));
        #[rustfmt::skip]
        let want = [
            1.0, 1.0, 2.0, 2.0,
            1.0, 1.0, 2.0, 2.0,
            3.0, 3.0, 4.0, 4.0,
            3.0, 3.0, 4.0, 4.0,
        ];
        assert_eq!(y, want);
        // output_padding adds a row and column that no stamp reaches.
        let s = ConvTranspose2dShape {
            output_padding: 1,
            ..s
        };
        assert_eq!((s.out_h(), s.out_w()), (5, 5));
        let y = run(25, |y| conv_transpose2d_forward(&s, &x, &[1.0; 4], y));
        assert_eq!(&y[20..], &[0.0; 5]);
        assert_eq!(y.iter().skip(4).step_by(5).sum::<f32>(), 0.0);
    }

    #[test]
    fn weight_gradient_is_identical_on_one_and_two_threads() {
        let s = Conv2dShape {
            batch: 40,
            c_in: 3,
            h: 11,
            w: 9,
            c_out: 4,
            kh: 3,
            kw: 3,
            stride: 1,
            padding: 1,
        };
        let x = random_vec(s.input_len(), 1);
        let gy = random_vec(s.output_len(), 2);
        let t = ConvTranspose2dShape {
            batch: 40,
            c_in: 4,
            h: 6,
            w: 5,
            c_out: 3,
            kh: 3,
            kw: 3,
            stride: 2,
            padding: 1,
            output_padding: 1,
        };
        let tx = random_vec(t.input_len(), 3);
        let tgy = random_vec(t.output_len(), 4);
        let on = |threads: usize| {
            on_threads(threads, || {
                let gw = run(s.weight_len(), |gw| conv2d_backward_weight(&s, &x, &gy, gw));
                let tgw = run(t.weight_len(), |gw| {
                    conv_transpose2d_backward_weight(&t, &tx, &tgy, gw)
                });
                (gw, tgw)
            })
        };
        let (one, two) = (on(1), on(2));
        assert_eq!(bits(&one.0), bits(&two.0));
        assert_eq!(bits(&one.1), bits(&two.1));
    }

    #[test]
    fn validation_rejects_bad_shapes() {
        assert!(
            Conv2dShape {
                kh: 6,
                padding: 1,
                ..SMALL
            }
            .validate()
            .is_err()
        );
        assert!(
            Conv2dShape {
                kh: 5,
                padding: 1,
                ..SMALL
            }
            .validate()
            .is_ok()
        );
        assert!(Conv2dShape { stride: 0, ..SMALL }.validate().is_err());
        let t = ConvTranspose2dShape {
            batch: 1,
            c_in: 1,
            h: 2,
            w: 2,
            c_out: 1,
            kh: 2,
            kw: 2,
            stride: 2,
            padding: 0,
            output_padding: 2,
        };
        assert!(t.validate().is_err());
        assert!(
            ConvTranspose2dShape {
                output_padding: 1,
                ..t
            }
            .validate()
            .is_ok()
        );
        assert!(
            ConvTranspose2dShape {
                h: 1,
                kh: 1,
                padding: 1,
                output_padding: 1,
                ..t
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    #[should_panic(expected = "conv2d_forward: slice lengths")]
    fn wrong_length_panics() {
        conv2d_forward(&SMALL, &NINE[..8], &[1.0; 4], &mut [0.0; 4]);
    }
}
