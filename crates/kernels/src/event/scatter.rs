//! The engine of the event convolutions: where each input pixel's contributions land
//! ([`Scatter`], built from a convolution's or a transposed convolution's shape), and the
//! passes that walk an image's events through it, forward, weight gradient and input
//! gradient, in the channels-last layouts of the module docs of [`crate::event`].

use super::Input;
use super::simd::{Dot, aligned, axpy, transpose, transpose_streaming_src};
use crate::bits::BitSlice;
use crate::conv::{Conv2dShape, ConvTranspose2dShape, MAX_TASKS, PARTIAL_BUDGET};
use rayon::prelude::*;
use std::cell::Cell;
use wide::f32x8;

/// Fewest images one weight-gradient task sums, so that small batches do not pay for a
/// partial gradient (allocated, zeroed and added up) per image.
const MIN_TASK_IMAGES: usize = 4;

/// Events of one image, compacted: the nonzero pixels of input row `ih` of channel `c`
/// have columns `iw[k]` and values `v[k]` for `k` in `seg[c·h + ih]..seg[c·h + ih + 1]`.
/// Rows that reach no output have no events.
#[derive(Default)]
struct ImageEvents {
    iw: Vec<u32>,
    v: Vec<f32>,
    seg: Vec<usize>,
}

/// A thread's scratch for the convolution kernels, kept between calls so that a warm
/// thread allocates nothing per image: one image's channels-last output (forward) or
/// output gradient (weight gradient), 32-byte aligned so that no vector access splits a
/// cache line, and the image's events.
#[derive(Default)]
struct Scratch {
    floats: Vec<f32x8>,
    events: ImageEvents,
}

thread_local! {
    static SCRATCH: Cell<Scratch> = Cell::new(Scratch::default());
}

/// Runs `f` on this thread's scratch.
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    // Taken out of the cell, not borrowed, so a nested call allocates rather than panics.
    let mut scratch = SCRATCH.take();
    let out = f(&mut scratch);
    SCRATCH.set(scratch);
    out
}

/// Where the contributions of each input pixel land, for a convolution or a transposed
/// convolution, in the channels-last layouts the event kernels work in:
///
/// - the packed weight `wp[c_in][kh][kw][c_out]`, tap `t = (c·kh + p)·kw + q'`;
/// - an image's output (or output gradient) `[out_h][out_w][c_out]`, position
///   `pos = oy·out_w + ox`.
///
/// Input pixel `(c, ih, iw)` with value `v` adds, for every `(p, oy)` in its row's list and
/// its column's run `(q0, ox0, n)`, `v·wp[t + k·tap_step]` into position `pos + k` for
/// `k < n`, with `t = (c·kh + p)·kw + q0` and `pos = oy·out_w + ox0`. For a convolution,
/// `q' = kw − 1 − q` (the kernel flipped left to right), so that along a run both the
/// taps and the output columns increase; for a transposed convolution `q' = q`.
#[derive(Debug)]
pub(super) struct Scatter {
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    kh: usize,
    kw: usize,
    out_h: usize,
    out_w: usize,
    /// `(p, oy)` pairs of input row `ih`: `row_taps[row_start[ih]..row_start[ih + 1]]`.
    row_taps: Vec<(usize, usize)>,
    row_start: Vec<usize>,
    /// `(q0, ox0, n)` for each input column.
    col_runs: Vec<(usize, usize, usize)>,
    /// Packed taps between consecutive outputs of a column run.
    tap_step: usize,
}

impl Scatter {
    /// The geometry of convolution `s`: pixel `ih` feeds output row `oy` through tap
    /// `p = ih + padding − oy·stride`.
    pub(super) fn conv2d(s: &Conv2dShape) -> Self {
        let (out_h, out_w) = (s.out_h(), s.out_w());
        // The output index a pixel reaches through a tap, if it reaches one.
        let reach = |i: usize, k: usize, out: usize| {
            let t = (i + s.padding).checked_sub(k)?;
            (t % s.stride == 0 && t / s.stride < out).then_some(t / s.stride)
        };
        let rows =
            (0..s.h).map(|ih| (0..s.kh).filter_map(move |p| Some((p, reach(ih, p, out_h)?))));
        let cols = (0..s.w)
            .map(|iw| (0..s.kw).filter_map(move |qf| Some((qf, reach(iw, s.kw - 1 - qf, out_w)?))));
        Self::build(
            [s.c_in, s.h, s.w, s.c_out, s.kh, s.kw, out_h, out_w],
            rows,
            cols,
            s.stride,
        )
    }

    /// The geometry of transposed convolution `s`: pixel `ih` stamps tap `p` onto output
    /// row `ih·stride + p − padding`.
    pub(super) fn conv_transpose2d(s: &ConvTranspose2dShape) -> Self {
        let (out_h, out_w) = (s.out_h(), s.out_w());
        let reach = |i: usize, k: usize, out: usize| {
            let o = (i * s.stride + k).checked_sub(s.padding)?;
            (o < out).then_some(o)
        };
        let rows =
            (0..s.h).map(|ih| (0..s.kh).filter_map(move |p| Some((p, reach(ih, p, out_h)?))));
        let cols =
            (0..s.w).map(|iw| (0..s.kw).filter_map(move |q| Some((q, reach(iw, q, out_w)?))));
        Self::build(
            [s.c_in, s.h, s.w, s.c_out, s.kh, s.kw, out_h, out_w],
            rows,
            cols,
            1,
        )
    }

    /// Tables from each row's `(p, oy)` pairs and each column's `(q', ox)` pairs (in
    /// increasing `q'`, with `ox` rising by one as `q'` rises by `tap_step`).
    fn build<R, C>(
        dims: [usize; 8],
        rows: impl Iterator<Item = R>,
        cols: impl Iterator<Item = C>,
        tap_step: usize,
    ) -> Self
    where
        R: Iterator<Item = (usize, usize)>,
        C: Iterator<Item = (usize, usize)>,
    {
        let [c_in, h, w, c_out, kh, kw, out_h, out_w] = dims;
        let (mut row_taps, mut row_start) = (Vec::new(), vec![0]);
        for row in rows {
            row_taps.extend(row);
            row_start.push(row_taps.len());
        }
        let col_runs = cols
            .map(|mut col| {
                let Some((q0, ox0)) = col.next() else {
                    return (0, 0, 0);
                };
                let n = 1 + col.count();
                (q0, ox0, n)
            })
            .collect();
        Scatter {
            c_in,
            h,
            w,
            c_out,
            kh,
            kw,
            out_h,
            out_w,
            row_taps,
            row_start,
            col_runs,
            tap_step,
        }
    }

    fn image_len(&self) -> usize {
        self.c_in * self.h * self.w
    }

    fn out_len(&self) -> usize {
        self.c_out * self.out_h * self.out_w
    }

    pub(super) fn packed_len(&self) -> usize {
        self.c_in * self.kh * self.kw * self.c_out
    }

    /// The nonzero pixels of image `x` into `ev`, row by row in the order `x` is stored
    /// in, so that it streams from memory.
    fn gather(&self, x: Input<'_>, ev: &mut ImageEvents) {
        // Room for every pixel, plus the slack `compact` writes past its last event.
        ev.iw.resize(x.len() + 8, 0);
        ev.v.resize(x.len() + 8, 0.0);
        ev.seg.clear();
        ev.seg.push(0);
        if let Input::Bits(bits) = x {
            return self.gather_bits(bits, ev);
        }
        let mut n = 0;
        for plane in 0..x.len() / (self.h * self.w) {
            for ih in 0..self.h {
                // Rows that reach no output (skipped by a strided window, past the last
                // window, or cropped away by a transposed convolution's padding) keep no
                // events.
                if self.row_start[ih] < self.row_start[ih + 1] {
                    let row = x.slice((plane * self.h + ih) * self.w, self.w);
                    n += row.compact(&mut ev.iw[n..], &mut ev.v[n..]);
                }
                ev.seg.push(n);
            }
        }
    }

    /// [`Scatter::gather`] of an image of bits: one walk over its set bits, whose
    /// indices give their rows and columns (rather than a look at every row).
    fn gather_bits(&self, x: BitSlice<'_>, ev: &mut ImageEvents) {
        let (rows, mut n) = (x.len() / self.w, 0);
        x.for_each_one(|i| {
            let (row, iw) = (i / self.w, i % self.w);
            // Close the rows before this one.
            while ev.seg.len() <= row {
                ev.seg.push(n);
            }
            let ih = row % self.h;
            if self.row_start[ih] < self.row_start[ih + 1] {
                (ev.iw[n], ev.v[n]) = (iw as u32, 1.0);
                n += 1;
            }
        });
        while ev.seg.len() <= rows {
            ev.seg.push(n);
        }
    }

    /// Calls `f(w, y, len)` for every pair of runs that the event at column `iw` of input
    /// row `ih` of channel `c` couples: `len` floats of the packed weight from `w` and as
    /// many of the channels-last output from `y`. See [`Scatter`] for the runs.
    #[inline(always)]
    fn event_runs(&self, c: usize, ih: usize, iw: usize, mut f: impl FnMut(usize, usize, usize)) {
        let co = self.c_out;
        let taps = &self.row_taps[self.row_start[ih]..self.row_start[ih + 1]];
        let (tap_row, out_row) = (self.kw * co, self.out_w * co);
        let (q0, ox0, n) = self.col_runs[iw];
        let (w0, y0) = (c * self.kh * tap_row + q0 * co, ox0 * co);
        if self.tap_step == 1 || n == 1 {
            // The whole run is contiguous on both sides: one pair per tap row.
            for &(p, oy) in taps {
                f(w0 + p * tap_row, y0 + oy * out_row, n * co);
            }
        } else {
            for &(p, oy) in taps {
                for k in 0..n {
                    let w = w0 + p * tap_row + k * self.tap_step * co;
                    f(w, y0 + oy * out_row + k * co, co);
                }
            }
        }
    }

    /// Adds the contributions of the events of input row `ih` of channel `c`: with
    /// `FORWARD`, `v·wp[taps]` into the channels-last output `dst` (`src` the packed
    /// weight); otherwise `v·g[positions]` into the packed gradient `dst` (`src` the
    /// channels-last output gradient).
    #[inline(always)]
    fn add_row<const FORWARD: bool>(
        &self,
        ev: &ImageEvents,
        c: usize,
        ih: usize,
        dst: &mut [f32],
        src: &[f32],
    ) {
        let k = c * self.h + ih;
        let (lo, hi) = (ev.seg[k], ev.seg[k + 1]);
        for (&iw, &v) in ev.iw[lo..hi].iter().zip(&ev.v[lo..hi]) {
            self.event_runs(c, ih, iw as usize, |w, y, len| {
                if FORWARD {
                    axpy(&mut dst[y..y + len], v, &src[w..w + len]);
                } else {
                    axpy(&mut dst[w..w + len], v, &src[y..y + len]);
                }
            });
        }
    }

    /// Forward pass of every image in `x` into `y`, images in parallel: the spikes of an
    /// image are scattered into a channels-last scratch, transposed into `y` at the end.
    ///
    /// The spikes are taken input row by input row (across channels), so the output rows
    /// being updated move down the image once and stay in L1 meanwhile.
    pub(super) fn forward(&self, x: Input<'_>, wp: &[f32], y: &mut [f32]) {
        let positions = self.out_h * self.out_w;
        y.par_chunks_mut(self.out_len())
            .enumerate()
            .for_each(|(i, y)| {
                let x = x.piece(i, self.image_len());
                with_scratch(|sc| {
                    self.gather(x, &mut sc.events);
                    let acc = aligned(&mut sc.floats, y.len());
                    acc.fill(0.0);
                    for ih in 0..self.h {
                        for c in 0..self.c_in {
                            self.add_row::<true>(&sc.events, c, ih, acc, wp);
                        }
                    }
                    transpose(acc, positions, self.c_out, y);
                });
            });
    }

    /// The packed weight gradient `Σ_images` of `v·gy` at every position each spike
    /// reached, and with `input = (wp, gx)` also the input gradient at the nonzero inputs
    /// (as [`Scatter::backward_input`]) in the same pass: each event's runs of the
    /// channels-last output gradient are read once for both. Each task sums a run of
    /// images into its own partial, whose boundaries depend on the shape only; the
    /// partials are then added in task order.
    ///
    /// The spikes are taken channel by channel, so the gradient rows being updated (one
    /// channel's taps) stay in L1.
    pub(super) fn backward(
        &self,
        batch: usize,
        x: Input<'_>,
        gy: &[f32],
        input: Option<(&[f32], &mut [f32])>,
    ) -> Vec<f32x8> {
        let len = self.packed_len();
        let positions = self.out_h * self.out_w;
        let per_task = batch
            .div_ceil(MAX_TASKS.min(PARTIAL_BUDGET / len).max(1))
            .max(MIN_TASK_IMAGES);
        let tasks = batch.div_ceil(per_task);
        let (wp, gx_tasks): (&[f32], Vec<Option<&mut [f32]>>) = match input {
            Some((wp, gx)) => (
                wp,
                gx.chunks_mut(per_task * self.image_len())
                    .map(Some)
                    .collect(),
            ),
            None => (&[], (0..tasks).map(|_| None).collect()),
        };
        let partials: Vec<Vec<f32x8>> = gy
            .par_chunks(per_task * self.out_len())
            .zip(gx_tasks)
            .enumerate()
            .map(|(task, (gy, mut gx))| {
                let x = x.piece(task, per_task * self.image_len());
                let mut partial = vec![f32x8::ZERO; len.div_ceil(8)];
                let sum = aligned(&mut partial, len);
                with_scratch(|sc| {
                    for (i, gy) in gy.chunks_exact(self.out_len()).enumerate() {
                        self.gather(x.piece(i, self.image_len()), &mut sc.events);
                        let g = aligned(&mut sc.floats, gy.len());
                        transpose_streaming_src(gy, self.c_out, positions, g);
                        let Some(gx) = gx.as_deref_mut() else {
                            for c in 0..self.c_in {
                                for ih in 0..self.h {
                                    self.add_row::<false>(&sc.events, c, ih, sum, g);
                                }
                            }
                            continue;
                        };
                        let gx = &mut gx[i * self.image_len()..][..self.image_len()];
                        self.input_grad_image(&sc.events, wp, g, gx, |w, y, len, v| {
                            axpy(&mut sum[w..w + len], v, &g[y..y + len]);
                        });
                    }
                });
                partial
            })
            .collect();
        sum_in_order(partials)
    }

    /// The input gradient at the nonzero inputs of `x`, zero elsewhere: each event's
    /// `Σ wp[taps]·g[positions]` over the runs it reached in forward, `g` the image's
    /// output gradient made channels-last. Images in parallel; each value is one task's
    /// fixed-order sum.
    pub(super) fn backward_input(&self, x: Input<'_>, wp: &[f32], gy: &[f32], gx: &mut [f32]) {
        let positions = self.out_h * self.out_w;
        gx.par_chunks_mut(self.image_len())
            .zip(gy.par_chunks(self.out_len()))
            .enumerate()
            .for_each(|(i, (gx, gy))| {
                with_scratch(|sc| {
                    self.gather(x.piece(i, self.image_len()), &mut sc.events);
                    let ev = &sc.events;
                    if ev.seg.last() == Some(&0) {
                        return gx.fill(0.0);
                    }
                    let g = aligned(&mut sc.floats, gy.len());
                    transpose_streaming_src(gy, self.c_out, positions, g);
                    self.input_grad_image(ev, wp, g, gx, |_, _, _, _| {});
                });
            });
    }

    /// One image's input gradient at its events into `gx` (zero elsewhere): each event's
    /// `Σ wp[runs]·g[runs]`, `g` the image's channels-last output gradient. `each_run(w, y,
    /// len, v)` is called on every run as well, for work that shares the walk (the fused
    /// weight gradient).
    #[inline(always)]
    fn input_grad_image(
        &self,
        ev: &ImageEvents,
        wp: &[f32],
        g: &[f32],
        gx: &mut [f32],
        mut each_run: impl FnMut(usize, usize, usize, f32),
    ) {
        gx.fill(0.0);
        for (k, gx) in gx.chunks_exact_mut(self.w).enumerate() {
            let (c, ih) = (k / self.h, k % self.h);
            let (lo, hi) = (ev.seg[k], ev.seg[k + 1]);
            for (&iw, &v) in ev.iw[lo..hi].iter().zip(&ev.v[lo..hi]) {
                let mut dot = Dot::default();
                self.event_runs(c, ih, iw as usize, |w, y, len| {
                    each_run(w, y, len, v);
                    dot.add(&wp[w..w + len], &g[y..y + len]);
                });
                gx[iw as usize] = dot.sum();
            }
        }
    }

    /// Iterates `(packed tap t, index of (c, p, q) in a [c_in][kh][kw] order)` pairs for
    /// a convolution's flipped packing.
    pub(super) fn conv_taps(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.c_in * self.kh).flat_map(move |cp| {
            (0..self.kw).map(move |q| (cp * self.kw + self.kw - 1 - q, cp * self.kw + q))
        })
    }
}

/// Adds the partials elementwise in their order, blocks of the result in parallel, so the
/// order of every sum is fixed whatever thread ran what.
fn sum_in_order(partials: Vec<Vec<f32x8>>) -> Vec<f32x8> {
    const BLOCK: usize = 1 << 9;
    let mut partials = partials.into_iter();
    let mut sum = partials.next().expect("at least one partial");
    let rest: Vec<Vec<f32x8>> = partials.collect();
    sum.par_chunks_mut(BLOCK).enumerate().for_each(|(i, sum)| {
        let range = i * BLOCK..i * BLOCK + sum.len();
        for partial in &rest {
            sum.iter_mut()
                .zip(&partial[range.clone()])
                .for_each(|(s, p)| *s += *p);
        }
    });
    sum
}
