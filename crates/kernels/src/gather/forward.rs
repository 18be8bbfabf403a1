//! The forward gather: each output pixel's channels accumulate in registers while the
//! kernel walks the set bits of its receptive field.

use super::bits::SpikeMaps;
use super::events::FrameEvents;
use super::geometry::Geometry;
use super::simd::{blocks, store, with_block};
use super::weights::PackedWeights;
use crate::conv::{Conv2dShape, ConvTranspose2dShape};
use crate::event::simd::transpose;
use rayon::prelude::*;
use wide::f32x8;

/// Convolution forward pass over bit-packed spikes: `y ← conv2d(x, w)` (see
/// [`Conv2dShape`]), with `y` channels-last, `[frames][out_h][out_w][c_out]`.
///
/// # Panics
/// If the shape is invalid, or `x`, `w` or `y.len()` does not match it.
pub fn conv2d_forward_gather(s: &Conv2dShape, x: &SpikeMaps, w: &PackedWeights, y: &mut [f32]) {
    let g = Geometry::conv2d(s);
    check("conv2d_forward_gather", &g, x, w, y.len());
    forward(&g, x, w, y, false);
}

/// [`conv2d_forward_gather`] writing `y` in NCHW order, `[frames][c_out][out_h][out_w]`,
/// as the dense kernels do: each frame is gathered channels-last, then transposed.
///
/// # Panics
/// If the shape is invalid, or `x`, `w` or `y.len()` does not match it.
pub fn conv2d_forward_gather_nchw(
    s: &Conv2dShape,
    x: &SpikeMaps,
    w: &PackedWeights,
    y: &mut [f32],
) {
    let g = Geometry::conv2d(s);
    check("conv2d_forward_gather_nchw", &g, x, w, y.len());
    forward(&g, x, w, y, true);
}

/// Transposed convolution forward pass over bit-packed spikes: `y ←
/// conv_transpose2d(x, w)` (see [`ConvTranspose2dShape`]), with `y` channels-last,
/// `[frames][out_h][out_w][c_out]`. Each output pixel gathers the input pixels whose
/// stamps cover it.
///
/// # Panics
/// If the shape is invalid, or `x`, `w` or `y.len()` does not match it.
pub fn conv_transpose2d_forward_gather(
    s: &ConvTranspose2dShape,
    x: &SpikeMaps,
    w: &PackedWeights,
    y: &mut [f32],
) {
    let g = Geometry::conv_transpose2d(s);
    check("conv_transpose2d_forward_gather", &g, x, w, y.len());
    forward(&g, x, w, y, false);
}

/// [`conv_transpose2d_forward_gather`] writing `y` in NCHW order,
/// `[frames][c_out][out_h][out_w]`.
///
/// # Panics
/// If the shape is invalid, or `x`, `w` or `y.len()` does not match it.
pub fn conv_transpose2d_forward_gather_nchw(
    s: &ConvTranspose2dShape,
    x: &SpikeMaps,
    w: &PackedWeights,
    y: &mut [f32],
) {
    let g = Geometry::conv_transpose2d(s);
    check("conv_transpose2d_forward_gather_nchw", &g, x, w, y.len());
    forward(&g, x, w, y, true);
}

/// Panics unless the spikes, weights and an output of `y_len` floats fit `g`.
fn check(kernel: &str, g: &Geometry, x: &SpikeMaps, w: &PackedWeights, y_len: usize) {
    x.check_dims(kernel, [g.frames, g.c_in, g.h, g.w]);
    w.check(kernel, g);
    let want = g.frames * g.out_pixels() * g.c_out;
    assert!(
        y_len == want,
        "{kernel}: y has {y_len} floats, the shape needs {want}"
    );
}

/// The forward pass, frames in parallel; `nchw` transposes each frame into NCHW.
fn forward(g: &Geometry, x: &SpikeMaps, w: &PackedWeights, y: &mut [f32], nchw: bool) {
    let frame_len = g.out_pixels() * g.c_out;
    if frame_len == 0 || g.frames == 0 {
        return;
    }
    y.par_chunks_mut(frame_len).enumerate().for_each_init(
        <(FrameEvents, Vec<f32>)>::default,
        |(events, scratch), (f, y)| {
            if nchw {
                scratch.resize(frame_len, 0.0);
                forward_frame(g, x.frame(f), w, scratch, events);
                transpose(scratch, g.out_pixels(), g.c_out, y);
            } else {
                forward_frame(g, x.frame(f), w, y, events);
            }
        },
    );
}

/// One frame: `bits` its spikes `[h][w][words]`, `y` its output `[out_h][out_w][c_out]`,
/// `events` scratch for its spike list.
fn forward_frame(
    g: &Geometry,
    bits: &[u64],
    w: &PackedWeights,
    y: &mut [f32],
    events: &mut FrameEvents,
) {
    if g.col_runs {
        events.fill(bits, g.words(), g.c_in);
    }
    for (pixel, y) in y.chunks_exact_mut(g.c_out).enumerate() {
        let (oy, ox) = (pixel / g.out_w, pixel % g.out_w);
        for (v0, len) in blocks(w.lanes()) {
            if g.col_runs {
                with_block!(len, gather_runs(g, events, w, v0, oy, ox, y));
            } else {
                with_block!(len, gather_pixel(g, bits, w, v0, oy, ox, y));
            }
        }
    }
}

/// [`gather_pixel`] for a geometry whose column links are runs: each row of the receptive
/// field is one run of spike entries, walked two at a time into two sets of accumulators
/// (so that consecutive additions do not wait on each other).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gather_runs<const V: usize>(
    g: &Geometry,
    events: &FrameEvents,
    w: &PackedWeights,
    v0: usize,
    oy: usize,
    ox: usize,
    y: &mut [f32],
) {
    let lanes = w.lanes();
    let cols = g.out_cols.of(ox);
    let mut acc = [[f32x8::ZERO; V]; 2];
    if let Some(&(q0, ix0)) = cols.first() {
        for &(p, iy) in g.out_rows.of(oy) {
            let first = iy * g.w + ix0;
            let run = &events.entries[events.start[first]..events.start[first + cols.len()]];
            // Entry `first·c_in + (ix − ix0)·c_in + c` is weight row
            // `(p·kw + q0)·c_in + (ix − ix0)·c_in + c`.
            let shift = ((p * g.kw + q0) * g.c_in).wrapping_sub(first * g.c_in);
            let row = |e: u32| &w.rows()[shift.wrapping_add(e as usize) * lanes + v0..][..V];
            let mut pairs = run.chunks_exact(2);
            for pair in &mut pairs {
                let (r0, r1) = (row(pair[0]), row(pair[1]));
                for v in 0..V {
                    acc[0][v] += r0[v];
                    acc[1][v] += r1[v];
                }
            }
            if let [e] = pairs.remainder() {
                let r = row(*e);
                for v in 0..V {
                    acc[0][v] += r[v];
                }
            }
        }
    }
    let sum: [f32x8; V] = std::array::from_fn(|v| acc[0][v] + acc[1][v]);
    store(&sum, y, v0);
}

/// Writes vectors `v0 .. v0 + V` of output pixel `(oy, ox)` into its row `y`: the sum,
/// over its receptive field's taps and the set bits `c` of the input pixel under each, of
/// weight row `(tap, c)`. The general path, one bit walk per tap.
#[inline(always)]
fn gather_pixel<const V: usize>(
    g: &Geometry,
    bits: &[u64],
    w: &PackedWeights,
    v0: usize,
    oy: usize,
    ox: usize,
    y: &mut [f32],
) {
    let (lanes, words) = (w.lanes(), g.words());
    let tap_len = g.c_in * lanes;
    let cols = g.out_cols.of(ox);
    let mut acc = [f32x8::ZERO; V];
    for &(p, iy) in g.out_rows.of(oy) {
        for &(q, ix) in cols {
            let rows = &w.rows()[(p * g.kw + q) * tap_len..][..tap_len];
            let pixel = &bits[(iy * g.w + ix) * words..][..words];
            for (k, &word) in pixel.iter().enumerate() {
                let mut word = word;
                while word != 0 {
                    let c = 64 * k + word.trailing_zeros() as usize;
                    word &= word - 1;
                    let row = &rows[c * lanes + v0..][..V];
                    for (a, r) in acc.iter_mut().zip(row) {
                        *a += *r;
                    }
                }
            }
        }
    }
    store(&acc, y, v0);
}
