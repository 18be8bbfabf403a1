//! The weight gradient by gather: each output pixel's gradient row, held in registers, is
//! added into the packed gradient row of every set bit of its receptive field.

use super::bits::SpikeMaps;
use super::events::FrameEvents;
use super::geometry::Geometry;
use super::simd::{blocks, load, with_block};
use super::weights::PackedWeights;
use crate::conv::{Conv2dShape, ConvTranspose2dShape, MAX_TASKS, PARTIAL_BUDGET};
use rayon::prelude::*;
use wide::f32x8;

/// Fewest frames one task sums, so that small batches do not pay for a partial gradient
/// (allocated, zeroed and added up) per frame.
const MIN_TASK_FRAMES: usize = 4;

/// Convolution weight gradient over bit-packed spikes: `gw[o, c, p, q] = Σ gy[f, oy, ox, o]`
/// over every output pixel `(f, oy, ox)` whose receptive field has a spike of channel `c`
/// under tap `(p, q)`. `gy` is channels-last, `[frames][out_h][out_w][c_out]`; `gw` is in
/// the weight's own layout, `[c_out, c_in, kh, kw]`.
///
/// Frames are cut into tasks by the shape alone, each summing into a private partial, and
/// the partials are added in task order: the result is bit-for-bit the same on any
/// number of threads.
///
/// # Panics
/// If the shape is invalid, or `x`, `gy.len()` or `gw.len()` does not match it.
pub fn conv2d_backward_weight_gather(s: &Conv2dShape, x: &SpikeMaps, gy: &[f32], gw: &mut [f32]) {
    let g = Geometry::conv2d(s);
    check("conv2d_backward_weight_gather", &g, x, gy.len(), gw.len());
    backward_weight(&g, x, gy, gw);
}

/// Transposed convolution weight gradient over bit-packed spikes: `gw[c, o, p, q] = Σ
/// gy[f, oy, ox, o]` over every output pixel `(f, oy, ox)` that a spike of channel `c`
/// reaches through tap `(p, q)`. `gy` is channels-last, `[frames][out_h][out_w][c_out]`;
/// `gw` is in the weight's own layout, `[c_in, c_out, kh, kw]`. Deterministic in the same
/// way as [`conv2d_backward_weight_gather`].
///
/// # Panics
/// If the shape is invalid, or `x`, `gy.len()` or `gw.len()` does not match it.
pub fn conv_transpose2d_backward_weight_gather(
    s: &ConvTranspose2dShape,
    x: &SpikeMaps,
    gy: &[f32],
    gw: &mut [f32],
) {
    let g = Geometry::conv_transpose2d(s);
    check(
        "conv_transpose2d_backward_weight_gather",
        &g,
        x,
        gy.len(),
        gw.len(),
    );
    backward_weight(&g, x, gy, gw);
}

/// Panics unless the spikes, a `gy` of `gy_len` floats and a `gw` of `gw_len` fit `g`.
fn check(kernel: &str, g: &Geometry, x: &SpikeMaps, gy_len: usize, gw_len: usize) {
    x.check_dims(kernel, [g.frames, g.c_in, g.h, g.w]);
    let want = [
        g.frames * g.out_pixels() * g.c_out,
        g.c_out * g.c_in * g.taps(),
    ];
    assert!(
        [gy_len, gw_len] == want,
        "{kernel}: (gy, gw) have {:?} floats, the shape needs {want:?}",
        [gy_len, gw_len]
    );
}

/// The weight gradient: one partial per task of consecutive frames, added in task order.
fn backward_weight(g: &Geometry, x: &SpikeMaps, gy: &[f32], gw: &mut [f32]) {
    let mut total = PackedWeights::zeros(g);
    let (frame_len, len) = (g.out_pixels() * g.c_out, total.rows().len() * 8);
    if frame_len == 0 || g.frames == 0 || len == 0 {
        return gw.fill(0.0);
    }
    let max_tasks = MAX_TASKS.min(PARTIAL_BUDGET / len).max(1);
    let per_task = g.frames.div_ceil(max_tasks).max(MIN_TASK_FRAMES);
    let partials: Vec<PackedWeights> = gy
        .par_chunks(per_task * frame_len)
        .enumerate()
        .map(|(task, gy)| {
            let (mut partial, mut events) = (PackedWeights::zeros(g), FrameEvents::default());
            for (k, gy) in gy.chunks_exact(frame_len).enumerate() {
                let bits = x.frame(task * per_task + k);
                let lanes = partial.lanes();
                weight_frame(g, bits, gy, lanes, partial.rows_mut(), &mut events);
            }
            partial
        })
        .collect();
    for partial in &partials {
        let sum = total.rows_mut().iter_mut().zip(partial.rows());
        sum.for_each(|(t, p)| *t += *p);
    }
    total.unpack(g, gw);
}

/// Adds one frame's gradient into `rows` (`[tap][c_in][lanes]`): `bits` its spikes, `gy`
/// its output gradient `[out_h][out_w][c_out]`, `events` scratch for its spike list.
fn weight_frame(
    g: &Geometry,
    bits: &[u64],
    gy: &[f32],
    lanes: usize,
    rows: &mut [f32x8],
    events: &mut FrameEvents,
) {
    if g.col_runs {
        events.fill(bits, g.words(), g.c_in);
    }
    for (pixel, gy) in gy.chunks_exact(g.c_out).enumerate() {
        let (oy, ox) = (pixel / g.out_w, pixel % g.out_w);
        for (v0, len) in blocks(lanes) {
            if g.col_runs {
                with_block!(len, add_runs(g, events, gy, lanes, rows, v0, oy, ox));
            } else {
                with_block!(len, add_pixel(g, bits, gy, lanes, rows, v0, oy, ox));
            }
        }
    }
}

/// [`add_pixel`] for a geometry whose column links are runs: each row of the receptive
/// field is one run of spike entries (see [`FrameEvents`]).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn add_runs<const V: usize>(
    g: &Geometry,
    events: &FrameEvents,
    gy: &[f32],
    lanes: usize,
    rows: &mut [f32x8],
    v0: usize,
    oy: usize,
    ox: usize,
) {
    let cols = g.out_cols.of(ox);
    let Some(&(q0, ix0)) = cols.first() else {
        return;
    };
    let gv: [f32x8; V] = std::array::from_fn(|v| load(gy, v0 + v));
    for &(p, iy) in g.out_rows.of(oy) {
        let first = iy * g.w + ix0;
        let run = &events.entries[events.start[first]..events.start[first + cols.len()]];
        // Entry `first·c_in + (ix − ix0)·c_in + c` is row `(p·kw + q0)·c_in + (ix − ix0)·c_in + c`.
        let shift = ((p * g.kw + q0) * g.c_in).wrapping_sub(first * g.c_in);
        for &e in run {
            let row = &mut rows[shift.wrapping_add(e as usize) * lanes + v0..][..V];
            for (r, v) in row.iter_mut().zip(&gv) {
                *r += *v;
            }
        }
    }
}

/// Adds vectors `v0 .. v0 + V` of output pixel `(oy, ox)`'s gradient row `gy` into row
/// `(tap, c)` of `rows` for every tap of its receptive field and set bit `c` under it. The
/// general path, one bit walk per tap.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn add_pixel<const V: usize>(
    g: &Geometry,
    bits: &[u64],
    gy: &[f32],
    lanes: usize,
    rows: &mut [f32x8],
    v0: usize,
    oy: usize,
    ox: usize,
) {
    let gv: [f32x8; V] = std::array::from_fn(|v| load(gy, v0 + v));
    let (words, tap_len) = (g.words(), g.c_in * lanes);
    let cols = g.out_cols.of(ox);
    for &(p, iy) in g.out_rows.of(oy) {
        for &(q, ix) in cols {
            let rows = &mut rows[(p * g.kw + q) * tap_len..][..tap_len];
            let pixel = &bits[(iy * g.w + ix) * words..][..words];
            for (k, &word) in pixel.iter().enumerate() {
                let mut word = word;
                while word != 0 {
                    let c = 64 * k + word.trailing_zeros() as usize;
                    word &= word - 1;
                    let row = &mut rows[c * lanes + v0..][..V];
                    for (r, v) in row.iter_mut().zip(&gv) {
                        *r += *v;
                    }
                }
            }
        }
    }
}
