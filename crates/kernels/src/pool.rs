//! 2-D average and max pooling over square windows, forward and backward.
//!
//! No padding: windows that would cross the bottom or right edge are dropped, as in
//! PyTorch's floor mode. Every plane (one channel of one image) is pooled independently,
//! so the fast kernels hand runs of planes to rayon once the input is big enough to pay
//! for it, and walk each window row by row as slices.

use rayon::prelude::*;

/// Inputs smaller than this many floats are pooled on the calling thread: pooling does a
/// few flops per float, so smaller jobs cost less than a fork/join.
pub(crate) const PAR_MIN_LEN: usize = 1 << 15;

/// The shape of a 2-D pooling: `planes` independent `h×w` planes (batch × channels),
/// `kernel×kernel` windows placed every `stride` pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dShape {
    /// Independent planes: batch size times channels.
    pub planes: usize,
    /// Plane height.
    pub h: usize,
    /// Plane width.
    pub w: usize,
    /// Window side.
    pub kernel: usize,
    /// Step between windows, in both directions.
    pub stride: usize,
}

impl Pool2dShape {
    /// Output height, `⌊(h − kernel) / stride⌋ + 1`, or 0 when the window is taller than
    /// the plane.
    ///
    /// # Panics
    /// If `kernel` or `stride` is 0.
    pub fn out_h(&self) -> usize {
        windows(self.h, self.kernel, self.stride)
    }

    /// Output width, `⌊(w − kernel) / stride⌋ + 1`, or 0 when the window is wider than
    /// the plane.
    ///
    /// # Panics
    /// If `kernel` or `stride` is 0.
    pub fn out_w(&self) -> usize {
        windows(self.w, self.kernel, self.stride)
    }

    /// Length of the input: `planes·h·w`.
    pub fn input_len(&self) -> usize {
        self.planes * self.h * self.w
    }

    /// Length of the output: `planes·out_h·out_w`.
    pub fn output_len(&self) -> usize {
        self.planes * self.out_h() * self.out_w()
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

    /// Planes per rayon task: all of them (one task, no fork) for a small input, else
    /// enough to give each task about [`PAR_MIN_LEN`] input floats.
    fn planes_per_task(&self) -> usize {
        if self.input_len() < PAR_MIN_LEN {
            self.planes.max(1)
        } else {
            (PAR_MIN_LEN / (self.h * self.w)).max(1)
        }
    }
}

/// Windows of side `kernel` every `stride` along an axis of length `len`.
fn windows(len: usize, kernel: usize, stride: usize) -> usize {
    assert!(
        kernel > 0 && stride > 0,
        "pool2d: kernel and stride must be positive"
    );
    if len < kernel {
        0
    } else {
        (len - kernel) / stride + 1
    }
}

/// Average pooling: `y[n, i, j] = mean of x[n, i·stride + p, j·stride + q]` over
/// `0 ≤ p, q < kernel`.
///
/// # Panics
/// If a slice length does not match the shape.
pub fn avg_pool2d_forward(s: &Pool2dShape, x: &[f32], y: &mut [f32]) {
    s.check_lens("avg_pool2d_forward", x.len(), y.len());
    let (plane, out, ow, k) = (s.h * s.w, s.out_h() * s.out_w(), s.out_w(), s.kernel);
    if out == 0 || s.planes == 0 {
        return;
    }
    let scale = 1.0 / (k * k) as f32;
    let per_task = s.planes_per_task();
    let tasks = x
        .par_chunks(per_task * plane)
        .zip(y.par_chunks_mut(per_task * out));
    tasks.for_each(|(x, y)| {
        for (x, y) in x.chunks_exact(plane).zip(y.chunks_exact_mut(out)) {
            for (oy, y) in y.chunks_exact_mut(ow).enumerate() {
                y.fill(0.0);
                for row in x[oy * s.stride * s.w..].chunks_exact(s.w).take(k) {
                    for (ox, v) in y.iter_mut().enumerate() {
                        *v += row[ox * s.stride..][..k].iter().sum::<f32>();
                    }
                }
                y.iter_mut().for_each(|v| *v *= scale);
            }
        }
    });
}

/// Average pooling backward: every input pixel receives `gy / kernel²` from each window
/// that covers it; pixels in no window (dropped edges) get 0.
///
/// # Panics
/// If a slice length does not match the shape.
pub fn avg_pool2d_backward(s: &Pool2dShape, gy: &[f32], gx: &mut [f32]) {
    s.check_lens("avg_pool2d_backward", gx.len(), gy.len());
    let (plane, out, ow, k) = (s.h * s.w, s.out_h() * s.out_w(), s.out_w(), s.kernel);
    gx.fill(0.0);
    if out == 0 || s.planes == 0 {
        return;
    }
    let scale = 1.0 / (k * k) as f32;
    let per_task = s.planes_per_task();
    let tasks = gy
        .par_chunks(per_task * out)
        .zip(gx.par_chunks_mut(per_task * plane));
    tasks.for_each(|(gy, gx)| {
        for (gy, gx) in gy.chunks_exact(out).zip(gx.chunks_exact_mut(plane)) {
            for (oy, gy) in gy.chunks_exact(ow).enumerate() {
                for row in gx[oy * s.stride * s.w..].chunks_exact_mut(s.w).take(k) {
                    for (ox, g) in gy.iter().enumerate() {
                        let share = g * scale;
                        row[ox * s.stride..][..k]
                            .iter_mut()
                            .for_each(|v| *v += share);
                    }
                }
            }
        }
    });
}

/// Max pooling: `y[i]` is the largest value in output window `i`, and `argmax[i]` its
/// index in the whole input slice (the first one on ties; a NaN, if any, wins).
///
/// # Panics
/// If a slice length does not match the shape, or the input is too long for `u32`
/// indices.
pub fn max_pool2d_forward(s: &Pool2dShape, x: &[f32], y: &mut [f32], argmax: &mut [u32]) {
    s.check_lens("max_pool2d_forward", x.len(), y.len());
    s.check_lens("max_pool2d_forward (argmax)", x.len(), argmax.len());
    assert!(
        u32::try_from(x.len()).is_ok(),
        "max_pool2d_forward: input too long for u32 argmax"
    );
    let (plane, out, ow, k) = (s.h * s.w, s.out_h() * s.out_w(), s.out_w(), s.kernel);
    if out == 0 || s.planes == 0 {
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
                let corner = (i / ow) * s.stride * s.w + (i % ow) * s.stride;
                let (mut top, mut at) = (x[corner], corner);
                for row in (0..k).map(|p| corner + p * s.w) {
                    for (q, &v) in x[row..][..k].iter().enumerate() {
                        if beats(v, top) {
                            (top, at) = (v, row + q);
                        }
                    }
                }
                (*y, *argmax) = (top, (base + at) as u32);
            }
        }
    });
}

/// Max pooling backward: `gx[argmax[i]] += gy[i]` for every output `i`, all other pixels 0.
///
/// # Panics
/// If a slice length does not match the shape, or an `argmax` entry lies outside the plane
/// of its window.
pub fn max_pool2d_backward(s: &Pool2dShape, gy: &[f32], argmax: &[u32], gx: &mut [f32]) {
    s.check_lens("max_pool2d_backward", gx.len(), gy.len());
    s.check_lens("max_pool2d_backward (argmax)", gx.len(), argmax.len());
    let (plane, out) = (s.h * s.w, s.out_h() * s.out_w());
    gx.fill(0.0);
    if out == 0 || s.planes == 0 {
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
                    panic!("max_pool2d_backward: argmax {i} lies outside its window's plane")
                });
                gx[at] += g;
            }
        }
    });
}

/// Whether `v` replaces `best` as a window's maximum: strictly larger, or the window's
/// first NaN (NaN propagates, as in PyTorch).
pub(crate) fn beats(v: f32, best: f32) -> bool {
    v > best || (v.is_nan() && !best.is_nan())
}

/// Reference for [`avg_pool2d_forward`]: direct loops over every window.
pub fn avg_pool2d_forward_ref(s: &Pool2dShape, x: &[f32], y: &mut [f32]) {
    s.check_lens("avg_pool2d_forward_ref", x.len(), y.len());
    for_each_window(s, |yi, window| {
        let sum: f64 = window.map(|xi| f64::from(x[xi])).sum();
        y[yi] = (sum / (s.kernel * s.kernel) as f64) as f32;
    });
}

/// Reference for [`avg_pool2d_backward`]: `gx[xi] += gy[yi] / kernel²` over every window.
pub fn avg_pool2d_backward_ref(s: &Pool2dShape, gy: &[f32], gx: &mut [f32]) {
    s.check_lens("avg_pool2d_backward_ref", gx.len(), gy.len());
    gx.fill(0.0);
    for_each_window(s, |yi, window| {
        for xi in window {
            gx[xi] += gy[yi] / (s.kernel * s.kernel) as f32;
        }
    });
}

/// Reference for [`max_pool2d_forward`]: a scan of every window in row-major order.
pub fn max_pool2d_forward_ref(s: &Pool2dShape, x: &[f32], y: &mut [f32], argmax: &mut [u32]) {
    s.check_lens("max_pool2d_forward_ref", x.len(), y.len());
    s.check_lens("max_pool2d_forward_ref (argmax)", x.len(), argmax.len());
    for_each_window(s, |yi, window| {
        let first = window.next().expect("windows are never empty");
        let top = window.fold(first, |top, xi| if beats(x[xi], x[top]) { xi } else { top });
        (y[yi], argmax[yi]) = (x[top], top as u32);
    });
}

/// Reference for [`max_pool2d_backward`]: `gx[argmax[i]] += gy[i]`.
pub fn max_pool2d_backward_ref(s: &Pool2dShape, gy: &[f32], argmax: &[u32], gx: &mut [f32]) {
    s.check_lens("max_pool2d_backward_ref", gx.len(), gy.len());
    s.check_lens("max_pool2d_backward_ref (argmax)", gx.len(), argmax.len());
    gx.fill(0.0);
    for (&g, &i) in gy.iter().zip(argmax) {
        gx[i as usize] += g;
    }
}

/// Calls `f(yi, window)` for every output index `yi`, `window` listing the input indices
/// of its window in row-major order.
fn for_each_window(s: &Pool2dShape, mut f: impl FnMut(usize, &mut dyn Iterator<Item = usize>)) {
    let (oh, ow, k) = (s.out_h(), s.out_w(), s.kernel);
    for n in 0..s.planes {
        for i in 0..oh {
            for j in 0..ow {
                let corner = (n * s.h + i * s.stride) * s.w + j * s.stride;
                let mut window = (0..k).flat_map(|p| (0..k).map(move |q| corner + p * s.w + q));
                f((n * oh + i) * ow + j, &mut window);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{assert_close, random_vec};
    use proptest::prelude::*;

    /// Checks every fast pooling kernel against its reference on random data.
    fn check(s: &Pool2dShape, seed: u64) {
        let (nx, ny) = (s.input_len(), s.output_len());
        let (x, gy) = (random_vec(nx, seed), random_vec(ny, seed + 1));

        let (mut got, mut want) = (vec![f32::NAN; ny], vec![f32::NAN; ny]);
        avg_pool2d_forward(s, &x, &mut got);
        avg_pool2d_forward_ref(s, &x, &mut want);
        assert_close(&got, &want, 1e-5);

        let (mut got, mut want) = (vec![f32::NAN; nx], vec![f32::NAN; nx]);
        avg_pool2d_backward(s, &gy, &mut got);
        avg_pool2d_backward_ref(s, &gy, &mut want);
        assert_close(&got, &want, 1e-5);

        let (mut y, mut y_ref) = (vec![f32::NAN; ny], vec![f32::NAN; ny]);
        let (mut arg, mut arg_ref) = (vec![u32::MAX; ny], vec![u32::MAX; ny]);
        max_pool2d_forward(s, &x, &mut y, &mut arg);
        max_pool2d_forward_ref(s, &x, &mut y_ref, &mut arg_ref);
        assert_eq!(y, y_ref);
        assert_eq!(arg, arg_ref);

        let (mut got, mut want) = (vec![f32::NAN; nx], vec![f32::NAN; nx]);
        max_pool2d_backward(s, &gy, &arg, &mut got);
        max_pool2d_backward_ref(s, &gy, &arg_ref, &mut want);
        assert_close(&got, &want, 1e-6);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn matches_reference(
            planes in 0usize..5, h in 1usize..11, w in 1usize..11,
            kernel in 1usize..5, stride in 1usize..5, seed in any::<u64>(),
        ) {
            check(&Pool2dShape { planes, h, w, kernel, stride }, seed);
        }
    }

    #[test]
    fn large_inputs_match_reference_in_parallel() {
        // Enough planes to split into several tasks, with a short last one.
        check(
            &Pool2dShape {
                planes: 700,
                h: 13,
                w: 11,
                kernel: 2,
                stride: 2,
            },
            1,
        );
        check(
            &Pool2dShape {
                planes: 3,
                h: 200,
                w: 190,
                kernel: 3,
                stride: 2,
            },
            2,
        );
    }

    #[test]
    fn by_hand() {
        // Two 3×4 planes, 2×2 windows, stride 2: the last row of each plane is dropped.
        let s = Pool2dShape {
            planes: 2,
            h: 3,
            w: 4,
            kernel: 2,
            stride: 2,
        };
        #[rustfmt::skip]
        let x = [
            1.0, 2.0, 5.0, 5.0,
            4.0, 3.0, 5.0, 0.0,
            9.0, 9.0, 9.0, 9.0,
            -1.0, -2.0, 7.0, 8.0,
            -3.0, -4.0, 6.0, 8.0,
            0.0, 0.0, 0.0, 0.0,
        ];
        let mut y = [0.0; 4];
        avg_pool2d_forward(&s, &x, &mut y);
        assert_eq!(y, [2.5, 3.75, -2.5, 7.25]);
        let mut arg = [0; 4];
        max_pool2d_forward(&s, &x, &mut y, &mut arg);
        assert_eq!(y, [4.0, 5.0, -1.0, 8.0]);
        // Ties go to the first maximum in row-major order; indices span the whole input.
        assert_eq!(arg, [4, 2, 12, 15]);
        let mut gx = [f32::NAN; 24];
        max_pool2d_backward(&s, &[1.0, 2.0, 3.0, 4.0], &arg, &mut gx);
        let mut want = [0.0; 24];
        (want[4], want[2], want[12], want[15]) = (1.0, 2.0, 3.0, 4.0);
        assert_eq!(gx, want);
        avg_pool2d_backward(&s, &[4.0, 8.0, 4.0, 4.0], &mut gx);
        assert_eq!(
            &gx[..12],
            &[1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0]
        );
    }

    #[test]
    fn nan_wins_the_window() {
        let s = Pool2dShape {
            planes: 1,
            h: 2,
            w: 2,
            kernel: 2,
            stride: 1,
        };
        let (mut y, mut arg) = ([0.0], [0]);
        max_pool2d_forward(&s, &[1.0, f32::NAN, 3.0, f32::NAN], &mut y, &mut arg);
        assert!(y[0].is_nan());
        assert_eq!(arg, [1]);
    }

    #[test]
    fn window_larger_than_plane_gives_empty_output() {
        let s = Pool2dShape {
            planes: 2,
            h: 2,
            w: 5,
            kernel: 3,
            stride: 1,
        };
        assert_eq!(s.output_len(), 0);
        let mut gx = vec![f32::NAN; s.input_len()];
        avg_pool2d_backward(&s, &[], &mut gx);
        assert_eq!(gx, vec![0.0; 20]);
    }

    #[test]
    #[should_panic(expected = "outside its window's plane")]
    fn argmax_outside_plane_panics() {
        let s = Pool2dShape {
            planes: 2,
            h: 2,
            w: 2,
            kernel: 2,
            stride: 2,
        };
        max_pool2d_backward(&s, &[1.0, 1.0], &[0, 0], &mut [0.0; 8]);
    }
}
