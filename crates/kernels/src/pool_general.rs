//! 2-D average and max pooling in their general form, as PyTorch's `F.avg_pool2d` and
//! `F.max_pool2d`: window, stride and zero padding per axis, floor or ceil output size,
//! and for the average a divisor that counts the padded cells or not. [`crate::pool`]
//! keeps the fast kernels of square windows without padding.
//!
//! The padding is never read: an average sums the window's cells inside the input and
//! divides by the whole window (`count_include_pad`, PyTorch's default) or by those cells
//! only; a maximum looks at the cells inside the input only. PyTorch's rules keep every
//! window overlapping the input: padding at most half the window, and in ceil mode no
//! window that starts in the bottom or right padding. As there, a ceil-mode window that
//! runs past the padded input counts only its part inside it.

use std::ops::Range;

use rayon::prelude::*;

use crate::pool::{PAR_MIN_LEN, beats};

/// The shape of a general 2-D pooling: `planes` independent `h×w` planes (batch ×
/// channels), `kernel = (kh, kw)` windows placed every `stride = (sh, sw)` pixels over the
/// planes padded by `padding = (ph, pw)` on each side. Output `(i, j)` covers rows
/// `i·sh − ph ..< i·sh − ph + kh` and columns `j·sw − pw ..< j·sw − pw + kw`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GeneralPool2dShape {
    /// Independent planes: batch size times channels.
    pub planes: usize,
    /// Plane height.
    pub h: usize,
    /// Plane width.
    pub w: usize,
    /// Window size, `(kh, kw)`.
    pub kernel: (usize, usize),
    /// Step between windows, `(sh, sw)`.
    pub stride: (usize, usize),
    /// Padding on each side, `(ph, pw)`, at most half the window.
    pub padding: (usize, usize),
    /// Round the output size up rather than down, keeping a last, partial window.
    pub ceil_mode: bool,
}

/// One window: the input rows and columns it covers, and how many cells of the padded
/// input it covers (the divisor that counts padding).
struct Window {
    rows: Range<usize>,
    cols: Range<usize>,
    padded_cells: usize,
}

impl GeneralPool2dShape {
    /// Checks the shape as PyTorch does: window and stride at least 1, padding at most
    /// half the window, and the window no larger than the padded plane.
    pub fn validate(&self) -> Result<(), String> {
        let ((kh, kw), (sh, sw), (ph, pw)) = (self.kernel, self.stride, self.padding);
        if kh == 0 || kw == 0 || sh == 0 || sw == 0 {
            return Err(format!("pool2d: zero window or stride in {self:?}"));
        }
        if 2 * ph > kh || 2 * pw > kw {
            return Err(format!(
                "pool2d: padding larger than half the window in {self:?}"
            ));
        }
        if kh > self.h + 2 * ph || kw > self.w + 2 * pw {
            return Err(format!(
                "pool2d: window larger than the padded plane in {self:?}"
            ));
        }
        Ok(())
    }

    /// Output height: `(h + 2·ph − kh) / sh + 1`, the division rounded down, or up in
    /// ceil mode unless that would start the last window in the bottom padding.
    ///
    /// # Panics
    /// If the shape is not [valid](Self::validate).
    pub fn out_h(&self) -> usize {
        self.assert_valid();
        out_len(
            self.h,
            self.kernel.0,
            self.stride.0,
            self.padding.0,
            self.ceil_mode,
        )
    }

    /// Output width, as [`GeneralPool2dShape::out_h`] along the other axis.
    ///
    /// # Panics
    /// If the shape is not [valid](Self::validate).
    pub fn out_w(&self) -> usize {
        self.assert_valid();
        out_len(
            self.w,
            self.kernel.1,
            self.stride.1,
            self.padding.1,
            self.ceil_mode,
        )
    }

    /// Length of the input: `planes·h·w`.
    pub fn input_len(&self) -> usize {
        self.planes * self.h * self.w
    }

    /// Length of the output: `planes·out_h·out_w`.
    pub fn output_len(&self) -> usize {
        self.planes * self.out_h() * self.out_w()
    }

    fn assert_valid(&self) {
        if let Err(e) = self.validate() {
            panic!("{e}");
        }
    }

    /// Panics with a clear message unless the input- and output-sized slices match.
    fn check_lens(&self, kernel: &str, input: usize, output: usize) {
        let want = (self.input_len(), self.output_len());
        assert!(
            (input, output) == want,
            "{kernel}: slice lengths (input, output) = {:?}, but {self:?} needs {want:?}",
            (input, output)
        );
    }

    /// Output `(i, j)`'s window.
    fn window(&self, i: usize, j: usize) -> Window {
        let (rows, ph) = clip(i, self.h, self.kernel.0, self.stride.0, self.padding.0);
        let (cols, pw) = clip(j, self.w, self.kernel.1, self.stride.1, self.padding.1);
        Window {
            rows,
            cols,
            padded_cells: ph * pw,
        }
    }

    /// Planes per rayon task: all of them for a small input, else enough to give each
    /// task about [`PAR_MIN_LEN`] input floats.
    fn planes_per_task(&self) -> usize {
        if self.input_len() < PAR_MIN_LEN {
            self.planes.max(1)
        } else {
            (PAR_MIN_LEN / (self.h * self.w).max(1)).max(1)
        }
    }

    /// Runs `f(x_plane, y_plane)` over the planes, runs of them in parallel.
    fn for_each_plane(
        &self,
        x: &[f32],
        x_plane: usize,
        y: &mut [f32],
        y_plane: usize,
        f: impl Fn(&[f32], &mut [f32]) + Sync,
    ) {
        if self.planes == 0 || x_plane == 0 || y_plane == 0 {
            return;
        }
        let per_task = self.planes_per_task();
        let tasks = x
            .par_chunks(per_task * x_plane)
            .zip(y.par_chunks_mut(per_task * y_plane));
        tasks.for_each(|(x, y)| {
            for (x, y) in x.chunks_exact(x_plane).zip(y.chunks_exact_mut(y_plane)) {
                f(x, y);
            }
        });
    }
}

/// Windows along an axis of length `len` (see [`GeneralPool2dShape::out_h`]).
fn out_len(len: usize, k: usize, s: usize, p: usize, ceil_mode: bool) -> usize {
    let room = len + 2 * p - k;
    if !ceil_mode {
        return room / s + 1;
    }
    let out = room.div_ceil(s) + 1;
    // The last window must start inside the input or its leading padding.
    if (out - 1) * s >= len + p {
        out - 1
    } else {
        out
    }
}

/// Window `o` along an axis: the input cells it covers, and how many cells of the padded
/// axis (`0 ..< len + 2·p`) it covers.
fn clip(o: usize, len: usize, k: usize, s: usize, p: usize) -> (Range<usize>, usize) {
    let start = o * s;
    let end = (start + k).min(len + 2 * p);
    let lo = start.saturating_sub(p).min(len);
    let hi = end.saturating_sub(p).min(len).max(lo);
    (lo..hi, end - start)
}

/// The divisor of a window's sum: its padded cells, or only those inside the input.
fn divisor(win: &Window, count_include_pad: bool) -> f32 {
    if count_include_pad {
        win.padded_cells as f32
    } else {
        (win.rows.len() * win.cols.len()) as f32
    }
}

/// Average pooling: `y[n, i, j]` is the sum of window `(i, j)`'s input cells divided by
/// its size, counting the padded cells or not (`count_include_pad`).
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn avg_pool2d_general_forward(
    s: &GeneralPool2dShape,
    count_include_pad: bool,
    x: &[f32],
    y: &mut [f32],
) {
    s.check_lens("avg_pool2d_general_forward", x.len(), y.len());
    let (ow, out) = (s.out_w(), s.out_h() * s.out_w());
    s.for_each_plane(x, s.h * s.w, y, out, |x, y| {
        for (i, y) in y.iter_mut().enumerate() {
            let win = s.window(i / ow, i % ow);
            let rows = x[win.rows.start * s.w..].chunks_exact(s.w);
            let sum: f32 = rows
                .take(win.rows.len())
                .map(|row| row[win.cols.clone()].iter().sum::<f32>())
                .sum();
            *y = sum / divisor(&win, count_include_pad);
        }
    });
}

/// Average pooling backward: every input cell receives `gy / divisor` from each window
/// that covers it.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn avg_pool2d_general_backward(
    s: &GeneralPool2dShape,
    count_include_pad: bool,
    gy: &[f32],
    gx: &mut [f32],
) {
    s.check_lens("avg_pool2d_general_backward", gx.len(), gy.len());
    gx.fill(0.0);
    let (ow, out) = (s.out_w(), s.out_h() * s.out_w());
    s.for_each_plane(gy, out, gx, s.h * s.w, |gy, gx| {
        for (i, &g) in gy.iter().enumerate() {
            let win = s.window(i / ow, i % ow);
            let share = g / divisor(&win, count_include_pad);
            let rows = gx[win.rows.start * s.w..].chunks_exact_mut(s.w);
            for row in rows.take(win.rows.len()) {
                row[win.cols.clone()].iter_mut().for_each(|v| *v += share);
            }
        }
    });
}

/// Max pooling: `y[i]` is the largest input cell of window `i` (the padding never
/// wins), and `argmax[i]` its index in the whole input slice (the first one on ties; a
/// NaN, if any, wins).
///
/// # Panics
/// If the shape is invalid, a slice length does not match it, or the input is too long
/// for `u32` indices.
pub fn max_pool2d_general_forward(
    s: &GeneralPool2dShape,
    x: &[f32],
    y: &mut [f32],
    argmax: &mut [u32],
) {
    s.check_lens("max_pool2d_general_forward", x.len(), y.len());
    s.check_lens("max_pool2d_general_forward (argmax)", x.len(), argmax.len());
    assert!(
        u32::try_from(x.len()).is_ok(),
        "max_pool2d_general_forward: input too long for u32 argmax"
    );
    let (plane, ow, out) = (s.h * s.w, s.out_w(), s.out_h() * s.out_w());
    if s.planes == 0 || out == 0 {
        return;
    }
    let per_task = s.planes_per_task();
    let outputs = y
        .par_chunks_mut(per_task * out)
        .zip(argmax.par_chunks_mut(per_task * out));
    let tasks = x.par_chunks(per_task * plane).zip(outputs).enumerate();
    tasks.for_each(|(task, (x, (y, argmax)))| {
        let planes = x
            .chunks_exact(plane)
            .zip(y.chunks_exact_mut(out).zip(argmax.chunks_exact_mut(out)));
        for (n, (x, (y, argmax))) in planes.enumerate() {
            let base = (task * per_task + n) * plane;
            for (i, (y, argmax)) in y.iter_mut().zip(argmax).enumerate() {
                let win = s.window(i / ow, i % ow);
                let mut at = win.rows.start * s.w + win.cols.start;
                let mut top = x[at];
                for r in win.rows.clone() {
                    for (c, &v) in x[r * s.w..][win.cols.clone()].iter().enumerate() {
                        if beats(v, top) {
                            (top, at) = (v, r * s.w + win.cols.start + c);
                        }
                    }
                }
                (*y, *argmax) = (top, (base + at) as u32);
            }
        }
    });
}

/// Max pooling backward: `gx[argmax[i]] += gy[i]` for every output `i`, all other cells 0.
///
/// # Panics
/// If the shape is invalid, a slice length does not match it, or an `argmax` entry lies
/// outside the plane of its window.
pub fn max_pool2d_general_backward(
    s: &GeneralPool2dShape,
    gy: &[f32],
    argmax: &[u32],
    gx: &mut [f32],
) {
    s.check_lens("max_pool2d_general_backward", gx.len(), gy.len());
    s.check_lens(
        "max_pool2d_general_backward (argmax)",
        gx.len(),
        argmax.len(),
    );
    gx.fill(0.0);
    let (plane, out) = (s.h * s.w, s.out_h() * s.out_w());
    if s.planes == 0 || out == 0 {
        return;
    }
    let per_task = s.planes_per_task();
    let inputs = gy
        .par_chunks(per_task * out)
        .zip(argmax.par_chunks(per_task * out));
    let tasks = inputs.zip(gx.par_chunks_mut(per_task * plane)).enumerate();
    tasks.for_each(|(task, ((gy, argmax), gx))| {
        let planes = gy.chunks_exact(out).zip(argmax.chunks_exact(out));
        for (n, ((gy, argmax), gx)) in planes.zip(gx.chunks_exact_mut(plane)).enumerate() {
            let base = (task * per_task + n) * plane;
            for (&g, &i) in gy.iter().zip(argmax) {
                let at = (i as usize).checked_sub(base).filter(|&at| at < plane);
                let at = at.unwrap_or_else(|| {
                    panic!(
                        "max_pool2d_general_backward: argmax {i} lies outside its window's plane"
                    )
                });
                gx[at] += g;
            }
        }
    });
}

/// Calls `f(yi, cells, padded_cells)` for every output index `yi`, `cells` listing the
/// input indices of its window in row-major order and `padded_cells` counting the
/// window's cells inside the padded plane, straight from the definition.
fn for_each_window(s: &GeneralPool2dShape, mut f: impl FnMut(usize, &[usize], usize)) {
    let (oh, ow) = (s.out_h(), s.out_w());
    let ((kh, kw), (sh, sw), (ph, pw)) = (s.kernel, s.stride, s.padding);
    let mut cells = Vec::new();
    for n in 0..s.planes {
        for i in 0..oh {
            for j in 0..ow {
                cells.clear();
                let mut padded_cells = 0;
                for p in 0..kh {
                    for q in 0..kw {
                        let (py, px) = (i * sh + p, j * sw + q);
                        if py < s.h + 2 * ph && px < s.w + 2 * pw {
                            padded_cells += 1;
                        }
                        let iy = py.checked_sub(ph).filter(|&iy| iy < s.h);
                        let ix = px.checked_sub(pw).filter(|&ix| ix < s.w);
                        if let (Some(iy), Some(ix)) = (iy, ix) {
                            cells.push((n * s.h + iy) * s.w + ix);
                        }
                    }
                }
                f((n * oh + i) * ow + j, &cells, padded_cells);
            }
        }
    }
}

/// Reference for [`avg_pool2d_general_forward`]: direct loops over every window, `f64`
/// sums.
pub fn avg_pool2d_general_forward_ref(
    s: &GeneralPool2dShape,
    count_include_pad: bool,
    x: &[f32],
    y: &mut [f32],
) {
    s.check_lens("avg_pool2d_general_forward_ref", x.len(), y.len());
    for_each_window(s, |yi, cells, padded_cells| {
        let sum: f64 = cells.iter().map(|&xi| f64::from(x[xi])).sum();
        let n = if count_include_pad {
            padded_cells
        } else {
            cells.len()
        };
        y[yi] = (sum / n as f64) as f32;
    });
}

/// Reference for [`avg_pool2d_general_backward`]: `gx[xi] += gy[yi] / divisor` over every
/// window.
pub fn avg_pool2d_general_backward_ref(
    s: &GeneralPool2dShape,
    count_include_pad: bool,
    gy: &[f32],
    gx: &mut [f32],
) {
    s.check_lens("avg_pool2d_general_backward_ref", gx.len(), gy.len());
    gx.fill(0.0);
    for_each_window(s, |yi, cells, padded_cells| {
        let n = if count_include_pad {
            padded_cells
        } else {
            cells.len()
        };
        for &xi in cells {
            gx[xi] += gy[yi] / n as f32;
        }
    });
}

/// Reference for [`max_pool2d_general_forward`]: a scan of every window's input cells in
/// row-major order.
pub fn max_pool2d_general_forward_ref(
    s: &GeneralPool2dShape,
    x: &[f32],
    y: &mut [f32],
    argmax: &mut [u32],
) {
    s.check_lens("max_pool2d_general_forward_ref", x.len(), y.len());
    s.check_lens(
        "max_pool2d_general_forward_ref (argmax)",
        x.len(),
        argmax.len(),
    );
    for_each_window(s, |yi, cells, _| {
        let first = *cells.first().expect("every window overlaps the input");
        let top = cells.iter().fold(
            first,
            |top, &xi| if beats(x[xi], x[top]) { xi } else { top },
        );
        (y[yi], argmax[yi]) = (x[top], top as u32);
    });
}

/// Reference for [`max_pool2d_general_backward`]: `gx[argmax[i]] += gy[i]`.
pub fn max_pool2d_general_backward_ref(
    s: &GeneralPool2dShape,
    gy: &[f32],
    argmax: &[u32],
    gx: &mut [f32],
) {
    s.check_lens("max_pool2d_general_backward_ref", gx.len(), gy.len());
    s.check_lens(
        "max_pool2d_general_backward_ref (argmax)",
        gx.len(),
        argmax.len(),
    );
    gx.fill(0.0);
    for (&g, &i) in gy.iter().zip(argmax) {
        gx[i as usize] += g;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::{Pool2dShape, avg_pool2d_forward, max_pool2d_forward};
    use crate::testutil::{assert_close, random_vec};
    use proptest::prelude::*;

    /// Checks every kernel against its reference on random data.
    fn check(s: &GeneralPool2dShape, seed: u64) {
        let (nx, ny) = (s.input_len(), s.output_len());
        let (x, gy) = (random_vec(nx, seed), random_vec(ny, seed + 1));
        for include in [true, false] {
            let (mut got, mut want) = (vec![f32::NAN; ny], vec![f32::NAN; ny]);
            avg_pool2d_general_forward(s, include, &x, &mut got);
            avg_pool2d_general_forward_ref(s, include, &x, &mut want);
            assert_close(&got, &want, 1e-5);

            let (mut got, mut want) = (vec![f32::NAN; nx], vec![f32::NAN; nx]);
            avg_pool2d_general_backward(s, include, &gy, &mut got);
            avg_pool2d_general_backward_ref(s, include, &gy, &mut want);
            assert_close(&got, &want, 1e-5);
        }
        let (mut y, mut y_ref) = (vec![f32::NAN; ny], vec![f32::NAN; ny]);
        let (mut arg, mut arg_ref) = (vec![u32::MAX; ny], vec![u32::MAX; ny]);
        max_pool2d_general_forward(s, &x, &mut y, &mut arg);
        max_pool2d_general_forward_ref(s, &x, &mut y_ref, &mut arg_ref);
        assert_eq!(y, y_ref);
        assert_eq!(arg, arg_ref);

        let (mut got, mut want) = (vec![f32::NAN; nx], vec![f32::NAN; nx]);
        max_pool2d_general_backward(s, &gy, &arg, &mut got);
        max_pool2d_general_backward_ref(s, &gy, &arg_ref, &mut want);
        assert_close(&got, &want, 1e-6);
    }

    fn shape() -> impl Strategy<Value = GeneralPool2dShape> {
        (
            (0usize..4, 1usize..10, 1usize..10, any::<bool>()),
            (
                (1usize..5, 1usize..5),
                (1usize..4, 1usize..4),
                (0usize..3, 0usize..3),
            ),
        )
            .prop_map(
                |((planes, h, w, ceil_mode), (kernel, stride, padding))| GeneralPool2dShape {
                    planes,
                    h,
                    w,
                    kernel,
                    stride,
                    padding,
                    ceil_mode,
                },
            )
            .prop_filter("invalid", |s| s.validate().is_ok())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn matches_reference(s in shape(), seed in any::<u64>()) {
            check(&s, seed);
        }

        /// Without padding and in floor mode, square windows pool as the fast kernels do.
        #[test]
        fn unpadded_square_windows_agree_with_the_fast_kernels(
            planes in 0usize..4, h in 1usize..10, w in 1usize..10,
            kernel in 1usize..5, stride in 1usize..5, seed in any::<u64>(),
        ) {
            prop_assume!(kernel <= h && kernel <= w);
            let fast = Pool2dShape { planes, h, w, kernel, stride };
            let s = GeneralPool2dShape {
                planes,
                h,
                w,
                kernel: (kernel, kernel),
                stride: (stride, stride),
                padding: (0, 0),
                ceil_mode: false,
            };
            let (x, ny) = (random_vec(s.input_len(), seed), s.output_len());
            prop_assert_eq!(ny, fast.output_len());
            let (mut got, mut want) = (vec![0.0; ny], vec![0.0; ny]);
            avg_pool2d_general_forward(&s, true, &x, &mut got);
            avg_pool2d_forward(&fast, &x, &mut want);
            assert_close(&got, &want, 1e-6);
            let (mut arg, mut arg_fast) = (vec![0; ny], vec![0; ny]);
            max_pool2d_general_forward(&s, &x, &mut got, &mut arg);
            max_pool2d_forward(&fast, &x, &mut want, &mut arg_fast);
            prop_assert_eq!(got, want);
            prop_assert_eq!(arg, arg_fast);
        }
    }

    #[test]
    fn large_inputs_match_reference_in_parallel() {
        let s = GeneralPool2dShape {
            planes: 700,
            h: 13,
            w: 11,
            kernel: (3, 2),
            stride: (2, 2),
            padding: (1, 1),
            ceil_mode: true,
        };
        check(&s, 1);
    }

    #[test]
    fn padding_by_hand() {
        // One 2×3 plane, 3×3 windows, stride 2, padding 1: two windows, the first over
        // columns 0–1, the second over columns 1–2, both over both rows.
        let s = GeneralPool2dShape {
            planes: 1,
            h: 2,
            w: 3,
            kernel: (3, 3),
            stride: (2, 2),
            padding: (1, 1),
            ceil_mode: false,
        };
        assert_eq!((s.out_h(), s.out_w()), (1, 2));
        let x = [-1.0, -2.0, -3.0, -4.0, -5.0, -6.0];
        let mut y = [0.0; 2];
        avg_pool2d_general_forward(&s, true, &x, &mut y);
        // The padded window has 9 cells; its last row (padded row 3) is still inside
        // the padded 4-row plane.
        assert_eq!(y, [-12.0 / 9.0, -16.0 / 9.0]);
        avg_pool2d_general_forward(&s, false, &x, &mut y);
        assert_eq!(y, [-3.0, -4.0]);
        // The padding is not a zero that beats the negative cells.
        let mut arg = [0; 2];
        max_pool2d_general_forward(&s, &x, &mut y, &mut arg);
        assert_eq!((y, arg), ([-1.0, -2.0], [0, 1]));
    }

    #[test]
    fn ceil_mode_by_hand() {
        // Length 5, window 2, stride 2: floor gives 2 windows, ceil a third over the last
        // cell alone, whose divisor counts only the part inside the (unpadded) plane.
        let s = GeneralPool2dShape {
            planes: 1,
            h: 1,
            w: 5,
            kernel: (1, 2),
            stride: (1, 2),
            padding: (0, 0),
            ceil_mode: true,
        };
        assert_eq!(s.out_w(), 3);
        assert_eq!(
            GeneralPool2dShape {
                ceil_mode: false,
                ..s
            }
            .out_w(),
            2
        );
        let mut y = [0.0; 3];
        avg_pool2d_general_forward(&s, true, &[1.0, 2.0, 3.0, 4.0, 6.0], &mut y);
        assert_eq!(y, [1.5, 3.5, 6.0]);
        // No window may start in the trailing padding: length 5, window 2, stride 2,
        // padding 1 has windows at −1, 1, 3, and ceil mode adds none at 5.
        let s = GeneralPool2dShape {
            padding: (0, 1),
            ..s
        };
        assert_eq!(s.out_w(), 3);
    }

    #[test]
    fn validation_follows_pytorch() {
        let s = GeneralPool2dShape {
            planes: 1,
            h: 4,
            w: 4,
            kernel: (3, 2),
            stride: (1, 1),
            padding: (1, 1),
            ceil_mode: false,
        };
        assert!(s.validate().is_ok());
        assert!(
            GeneralPool2dShape {
                padding: (2, 1),
                ..s
            }
            .validate()
            .is_err()
        );
        assert!(
            GeneralPool2dShape {
                kernel: (7, 2),
                padding: (0, 1),
                ..s
            }
            .validate()
            .is_err()
        );
        assert!(
            GeneralPool2dShape {
                stride: (0, 1),
                ..s
            }
            .validate()
            .is_err()
        );
    }
}
