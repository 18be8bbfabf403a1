//! The input gradient at the spikes: for each input pixel with spikes, one dot product per
//! set bit and tap between the bit's weight row and the gradient row of the output pixel
//! the tap reaches.

use super::bits::SpikeMaps;
use super::geometry::Geometry;
use super::simd::{blocks, load, with_block};
use super::weights::PackedWeights;
use crate::conv::{Conv2dShape, ConvTranspose2dShape};
use rayon::prelude::*;
use wide::f32x8;

/// Convolution input gradient at the spikes: `gx[f, iy, ix, c] = Σ_{p, q, o} w[o, c, p, q]
/// · gy[f, oy, ox, o]` over the output pixels `(oy, ox)` that input pixel `(iy, ix)`
/// reaches through tap `(p, q)`, where `x` has a spike of channel `c`, and zero elsewhere.
/// `gy` and `gx` are channels-last, `[frames][out_h][out_w][c_out]` and
/// `[frames][h][w][c_in]`.
///
/// Zero away from the spikes is what a spiking layer's backward needs: the surrogate
/// gradient of the layer before masks the rest.
///
/// # Panics
/// If the shape is invalid, or `x`, `w`, `gy.len()` or `gx.len()` does not match it.
pub fn conv2d_backward_input_gather(
    s: &Conv2dShape,
    x: &SpikeMaps,
    w: &PackedWeights,
    gy: &[f32],
    gx: &mut [f32],
) {
    let g = Geometry::conv2d(s);
    check("conv2d_backward_input_gather", &g, x, w, gy.len(), gx.len());
    backward_input(&g, x, w, gy, gx);
}

/// Transposed convolution input gradient at the spikes: `gx[f, iy, ix, c] = Σ_{p, q, o}
/// w[c, o, p, q] · gy[f, oy, ox, o]` over the output pixels `(oy, ox)` that input pixel
/// `(iy, ix)` stamps through tap `(p, q)`, where `x` has a spike of channel `c`, and zero
/// elsewhere; layouts as in [`conv2d_backward_input_gather`].
///
/// # Panics
/// If the shape is invalid, or `x`, `w`, `gy.len()` or `gx.len()` does not match it.
pub fn conv_transpose2d_backward_input_gather(
    s: &ConvTranspose2dShape,
    x: &SpikeMaps,
    w: &PackedWeights,
    gy: &[f32],
    gx: &mut [f32],
) {
    let g = Geometry::conv_transpose2d(s);
    check(
        "conv_transpose2d_backward_input_gather",
        &g,
        x,
        w,
        gy.len(),
        gx.len(),
    );
    backward_input(&g, x, w, gy, gx);
}

/// Panics unless the spikes, weights, and a `gy` and `gx` of the given lengths fit `g`.
fn check(kernel: &str, g: &Geometry, x: &SpikeMaps, w: &PackedWeights, gy: usize, gx: usize) {
    x.check_dims(kernel, [g.frames, g.c_in, g.h, g.w]);
    w.check(kernel, g);
    let want = [
        g.frames * g.out_pixels() * g.c_out,
        g.frames * g.in_pixels() * g.c_in,
    ];
    assert!(
        [gy, gx] == want,
        "{kernel}: (gy, gx) have {:?} floats, the shape needs {want:?}",
        [gy, gx]
    );
}

/// One thread's scratch: the set channels of the current pixel and their accumulators.
#[derive(Default)]
struct Scratch {
    channels: Vec<usize>,
    acc: Vec<f32x8>,
}

/// The input gradient, frames in parallel.
fn backward_input(g: &Geometry, x: &SpikeMaps, w: &PackedWeights, gy: &[f32], gx: &mut [f32]) {
    let (gy_frame, gx_frame) = (g.out_pixels() * g.c_out, g.in_pixels() * g.c_in);
    if gx_frame == 0 || g.frames == 0 {
        return;
    }
    if gy_frame == 0 {
        return gx.fill(0.0);
    }
    gx.par_chunks_mut(gx_frame)
        .zip(gy.par_chunks(gy_frame))
        .enumerate()
        .for_each_init(Scratch::default, |scratch, (f, (gx, gy))| {
            input_frame(g, x.frame(f), w, gy, gx, scratch)
        });
}

/// One frame: `bits` its spikes, `gy` its output gradient `[out_h][out_w][c_out]`, `gx` its
/// input gradient `[h][w][c_in]`.
fn input_frame(
    g: &Geometry,
    bits: &[u64],
    w: &PackedWeights,
    gy: &[f32],
    gx: &mut [f32],
    scratch: &mut Scratch,
) {
    let (lanes, words) = (w.lanes(), g.words());
    gx.fill(0.0);
    for (pixel, (gx, bits)) in gx
        .chunks_exact_mut(g.c_in)
        .zip(bits.chunks_exact(words))
        .enumerate()
    {
        let channels = &mut scratch.channels;
        channels.clear();
        for (k, &word) in bits.iter().enumerate() {
            let mut word = word;
            while word != 0 {
                channels.push(64 * k + word.trailing_zeros() as usize);
                word &= word - 1;
            }
        }
        if channels.is_empty() {
            continue;
        }
        let acc = &mut scratch.acc;
        acc.clear();
        acc.resize(channels.len(), f32x8::ZERO);
        let (iy, ix) = (pixel / g.w, pixel % g.w);
        for (v0, len) in blocks(lanes) {
            with_block!(len, dot_block(g, w, gy, iy, ix, channels, acc, v0));
        }
        for (a, &c) in acc.iter().zip(channels.iter()) {
            gx[c] = a.reduce_add();
        }
    }
}

/// Adds into `acc[k]`, for each set channel `channels[k]` of input pixel `(iy, ix)`, the
/// products of vectors `v0 .. v0 + V` of its weight rows and of the gradient rows of the
/// output pixels they reach, the gradient block held in registers across the channels.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn dot_block<const V: usize>(
    g: &Geometry,
    w: &PackedWeights,
    gy: &[f32],
    iy: usize,
    ix: usize,
    channels: &[usize],
    acc: &mut [f32x8],
    v0: usize,
) {
    let (lanes, tap_len) = (w.lanes(), g.c_in * w.lanes());
    let cols = g.in_cols.of(ix);
    for &(p, oy) in g.in_rows.of(iy) {
        for &(q, ox) in cols {
            let gy = &gy[(oy * g.out_w + ox) * g.c_out..][..g.c_out];
            let gv: [f32x8; V] = std::array::from_fn(|v| load(gy, v0 + v));
            let rows = &w.rows()[(p * g.kw + q) * tap_len..][..tap_len];
            for (a, &c) in acc.iter_mut().zip(channels) {
                let row = &rows[c * lanes + v0..][..V];
                *a = row.iter().zip(&gv).fold(*a, |s, (r, v)| r.mul_add(*v, s));
            }
        }
    }
}
