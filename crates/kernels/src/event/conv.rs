//! Event kernels of convolutions and transposed convolutions, their `_ref` twins and
//! their `_auto` dispatchers. Both kinds share one implementation: the trait [`EventConv`]
//! says what a kind contributes (its slice lengths, its [`Scatter`] geometry and how its
//! weight is packed channels-last), and the generic passes do the rest.

use super::scatter::Scatter;
use super::simd::{aligned, transpose};
use super::{
    CONV_TRANSPOSE2D_BACKWARD_CROSSOVER, CONV_TRANSPOSE2D_BACKWARD_INPUT_CROSSOVER,
    CONV_TRANSPOSE2D_BACKWARD_WEIGHT_CROSSOVER, CONV_TRANSPOSE2D_FORWARD_CROSSOVER,
    CONV2D_BACKWARD_CROSSOVER, CONV2D_BACKWARD_INPUT_CROSSOVER, CONV2D_BACKWARD_WEIGHT_CROSSOVER,
    CONV2D_FORWARD_CROSSOVER, Input, lane_use, mask_by,
};
use crate::conv::{
    Conv2dShape, ConvTranspose2dShape, accumulate, check_lens, conv_transpose2d_backward_input,
    conv_transpose2d_backward_weight, conv_transpose2d_forward, conv2d_backward_input,
    conv2d_backward_weight, conv2d_forward, product,
};
use wide::f32x8;

/// What the event kernels need of a convolution kind: its slice lengths `(x, w, y)`,
/// where each input pixel's contributions land ([`Scatter`]), and its weight in and out of
/// the packed `[c_in][kh][kw][c_out]` layout.
trait EventConv: std::fmt::Debug {
    fn batch(&self) -> usize;
    fn lens(&self) -> [usize; 3];
    fn scatter(&self) -> Scatter;
    /// The weight `w` packed for the scatter's taps.
    fn pack(&self, g: &Scatter, w: &[f32]) -> Vec<f32x8>;
    /// A packed weight gradient back into the weight's layout.
    fn unpack(&self, g: &Scatter, packed: &[f32], gw: &mut [f32]);
}

impl EventConv for Conv2dShape {
    fn batch(&self) -> usize {
        self.batch
    }

    fn lens(&self) -> [usize; 3] {
        [self.input_len(), self.weight_len(), self.output_len()]
    }

    fn scatter(&self) -> Scatter {
        Scatter::conv2d(self)
    }

    /// `w[o][c][p][q]` → `wp[c][p][kw − 1 − q][o]`.
    fn pack(&self, g: &Scatter, w: &[f32]) -> Vec<f32x8> {
        let mut packed = Vec::new();
        let wp = aligned(&mut packed, w.len());
        let mut flat = vec![0.0; w.len()];
        transpose(w, self.c_out, g.packed_len() / self.c_out, &mut flat);
        let co = self.c_out;
        for (t, src) in g.conv_taps() {
            wp[t * co..][..co].copy_from_slice(&flat[src * co..][..co]);
        }
        packed
    }

    fn unpack(&self, g: &Scatter, packed: &[f32], gw: &mut [f32]) {
        let mut flat = vec![0.0; gw.len()];
        let co = self.c_out;
        for (t, dst) in g.conv_taps() {
            flat[dst * co..][..co].copy_from_slice(&packed[t * co..][..co]);
        }
        transpose(&flat, g.packed_len() / co, co, gw);
    }
}

impl EventConv for ConvTranspose2dShape {
    fn batch(&self) -> usize {
        self.batch
    }

    fn lens(&self) -> [usize; 3] {
        [self.input_len(), self.weight_len(), self.output_len()]
    }

    fn scatter(&self) -> Scatter {
        Scatter::conv_transpose2d(self)
    }

    /// `w[c][o][p][q]` → `wp[c][p][q][o]`, one transpose per input channel.
    fn pack(&self, _: &Scatter, w: &[f32]) -> Vec<f32x8> {
        let taps = self.kh * self.kw;
        let mut packed = Vec::new();
        let wp = aligned(&mut packed, w.len());
        let pieces = w.chunks_exact(self.c_out * taps);
        for (src, dst) in pieces.zip(wp.chunks_exact_mut(self.c_out * taps)) {
            transpose(src, self.c_out, taps, dst);
        }
        packed
    }

    fn unpack(&self, _: &Scatter, packed: &[f32], gw: &mut [f32]) {
        let taps = self.kh * self.kw;
        let pieces = packed.chunks_exact(self.c_out * taps);
        for (src, dst) in pieces.zip(gw.chunks_exact_mut(self.c_out * taps)) {
            transpose(src, taps, self.c_out, dst);
        }
    }
}

/// The forward pass of either convolution kind over the nonzero inputs.
fn forward_event(kernel: &str, s: &impl EventConv, x: Input<'_>, w: &[f32], y: &mut [f32]) {
    check_lens(kernel, s, [x.len(), w.len(), y.len()], s.lens());
    if x.is_empty() || w.is_empty() || y.is_empty() {
        return y.fill(0.0);
    }
    let g = s.scatter();
    let mut wp = s.pack(&g, w);
    g.forward(x, aligned(&mut wp, w.len()), y);
}

/// The weight gradient of either convolution kind over the nonzero inputs, and with `gx`
/// the input gradient at them in the same pass.
fn backward_event(
    kernel: &str,
    s: &impl EventConv,
    x: Input<'_>,
    w: &[f32],
    gy: &[f32],
    gx: Option<&mut [f32]>,
    gw: &mut [f32],
) {
    check_lens(kernel, s, [x.len(), gw.len(), gy.len()], s.lens());
    if let Some(gx) = &gx {
        assert_eq!(gx.len(), x.len(), "{kernel}: gx must be as long as x");
    }
    if x.is_empty() || gy.is_empty() || gw.is_empty() {
        if let Some(gx) = gx {
            gx.fill(0.0);
        }
        return gw.fill(0.0);
    }
    let g = s.scatter();
    let mut wp = gx.as_ref().map(|_| s.pack(&g, w)).unwrap_or_default();
    let input = gx.map(|gx| (aligned(&mut wp, w.len()) as &[f32], gx));
    let mut packed = g.backward(s.batch(), x, gy, input);
    s.unpack(&g, aligned(&mut packed, gw.len()), gw);
}

/// The input gradient of either convolution kind at the nonzero inputs, zero elsewhere.
fn backward_input_event(
    kernel: &str,
    s: &impl EventConv,
    x: Input<'_>,
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) {
    check_lens(kernel, s, [x.len(), w.len(), gy.len()], s.lens());
    assert_eq!(gx.len(), x.len(), "{kernel}: gx must be as long as x");
    if w.is_empty() || gy.is_empty() {
        return gx.fill(0.0);
    }
    let g = s.scatter();
    let mut wp = s.pack(&g, w);
    g.backward_input(x, aligned(&mut wp, w.len()), gy, gx);
}

/// Convolution forward pass over the nonzero inputs only: `y ← conv2d(x, w)` (see
/// [`Conv2dShape`]), where each nonzero `x[b, c, ih, iw]` adds `x·w[:, c, p, q]` into every
/// output position `(oh, ow)` with `oh·stride + p − padding = ih` and likewise for `ow`.
///
/// The weight is repacked once per call as `[c_in][kh][kw][c_out]`, so each spike adds
/// runs of contiguous floats into a channels-last scratch image (one per thread, reused
/// across calls); images run in parallel.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv2d_forward_event(s: &Conv2dShape, x: &[f32], w: &[f32], y: &mut [f32]) {
    forward_event("conv2d_forward_event", s, x.into(), w, y);
}

/// Convolution weight gradient over the nonzero inputs only: `gw[o, c, p, q] = Σ x·gy[b, o,
/// oh, ow]` over every nonzero `x[b, c, ih, iw]` and the output positions it reached
/// through tap `(p, q)`.
///
/// Each task sums a run of images (fixed by the shape) into a private partial; the partials
/// are added in task order, so the result is bit-for-bit the same on any number of
/// threads.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv2d_backward_weight_event(s: &Conv2dShape, x: &[f32], gy: &[f32], gw: &mut [f32]) {
    backward_event(
        "conv2d_backward_weight_event",
        s,
        x.into(),
        &[],
        gy,
        None,
        gw,
    );
}

/// Transposed convolution forward pass over the nonzero inputs only: `y ←
/// conv_transpose2d(x, w)` (see [`ConvTranspose2dShape`]): each nonzero `x[b, c, i, j]`
/// stamps `x·w[c, :, :, :]` onto the output window at `(i·stride − padding, j·stride −
/// padding)`.
///
/// Same scheme as [`conv2d_forward_event`], with the weight repacked as
/// `[c_in][kh][kw][c_out]`.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv_transpose2d_forward_event(
    s: &ConvTranspose2dShape,
    x: &[f32],
    w: &[f32],
    y: &mut [f32],
) {
    forward_event("conv_transpose2d_forward_event", s, x.into(), w, y);
}

/// Transposed convolution weight gradient over the nonzero inputs only: `gw[c, o, p, q] =
/// Σ x[b, c, i, j]·gy[b, o, i·stride + p − padding, j·stride + q − padding]` over the
/// nonzero `x` (and the output positions inside the output).
///
/// Deterministic across thread counts, as [`conv2d_backward_weight_event`].
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv_transpose2d_backward_weight_event(
    s: &ConvTranspose2dShape,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
) {
    let kernel = "conv_transpose2d_backward_weight_event";
    backward_event(kernel, s, x.into(), &[], gy, None, gw);
}

/// Convolution input gradient at the nonzero inputs only: `gx[b, c, ih, iw] = Σ gy[b, o, oh,
/// ow]·w[o, c, p, q]` over the outputs the input reached (as [`conv2d_backward_input`])
/// where `x[b, c, ih, iw] ≠ 0`, and 0 where `x` is 0.
///
/// For inputs whose gradient is only ever read where they are nonzero, such as spikes
/// under the `membrane` surrogate (`∂s/∂v = s/θ`): the work is one dot product per
/// spike, over the same runs the forward scatter adds into, read from the output
/// gradient made channels-last per image. Images in parallel; deterministic.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv2d_backward_input_event(
    s: &Conv2dShape,
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) {
    backward_input_event("conv2d_backward_input_event", s, x.into(), w, gy, gx);
}

/// Transposed convolution input gradient at the nonzero inputs only, zero elsewhere (see
/// [`conv2d_backward_input_event`]): `gx[b, c, i, j] = Σ gy[b, o, i·stride + p − padding,
/// j·stride + q − padding]·w[c, o, p, q]` where `x[b, c, i, j] ≠ 0`.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv_transpose2d_backward_input_event(
    s: &ConvTranspose2dShape,
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) {
    backward_input_event(
        "conv_transpose2d_backward_input_event",
        s,
        x.into(),
        w,
        gy,
        gx,
    );
}

/// Convolution weight gradient ([`conv2d_backward_weight_event`]) and input gradient at the
/// nonzero inputs only ([`conv2d_backward_input_event`]) in one pass over the spikes, each
/// event's output-gradient runs read once for both. Deterministic across thread counts.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv2d_backward_event(
    s: &Conv2dShape,
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
    gw: &mut [f32],
) {
    backward_event("conv2d_backward_event", s, x.into(), w, gy, Some(gx), gw);
}

/// Transposed convolution weight gradient and input gradient at the nonzero inputs only in
/// one pass (see [`conv2d_backward_event`]).
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv_transpose2d_backward_event(
    s: &ConvTranspose2dShape,
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
    gw: &mut [f32],
) {
    backward_event(
        "conv_transpose2d_backward_event",
        s,
        x.into(),
        w,
        gy,
        Some(gx),
        gw,
    );
}

/// [`conv2d_backward_event`] when `x` is sparser than [`CONV2D_BACKWARD_CROSSOVER`] (scaled
/// for fewer than 8 output channels), else the two gradients by their own dispatchers.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv2d_backward_auto(
    s: &Conv2dShape,
    x: Input<'_>,
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
    gw: &mut [f32],
) {
    if x.sparser_than(CONV2D_BACKWARD_CROSSOVER * lane_use(s.c_out)) {
        backward_event("conv2d_backward_event", s, x, w, gy, Some(gx), gw);
    } else {
        conv2d_backward_input_auto(s, x, w, gy, gx);
        conv2d_backward_weight_auto(s, x, gy, gw);
    }
}

/// [`conv_transpose2d_backward_event`] when `x` is sparser than
/// [`CONV_TRANSPOSE2D_BACKWARD_CROSSOVER`] (scaled for fewer than 8 output channels), else
/// the two gradients by their own dispatchers.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv_transpose2d_backward_auto(
    s: &ConvTranspose2dShape,
    x: Input<'_>,
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
    gw: &mut [f32],
) {
    if x.sparser_than(CONV_TRANSPOSE2D_BACKWARD_CROSSOVER * lane_use(s.c_out)) {
        backward_event("conv_transpose2d_backward_event", s, x, w, gy, Some(gx), gw);
    } else {
        conv_transpose2d_backward_input_auto(s, x, w, gy, gx);
        conv_transpose2d_backward_weight_auto(s, x, gy, gw);
    }
}

/// [`conv2d_backward_input_event`] when `x` is sparser than
/// [`CONV2D_BACKWARD_INPUT_CROSSOVER`] (scaled for fewer than 8 output channels), the dense
/// [`conv2d_backward_input`] otherwise, which is exact at the zero inputs too.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv2d_backward_input_auto(
    s: &Conv2dShape,
    x: Input<'_>,
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) {
    if x.sparser_than(CONV2D_BACKWARD_INPUT_CROSSOVER * lane_use(s.c_out)) {
        backward_input_event("conv2d_backward_input_event", s, x, w, gy, gx);
    } else {
        conv2d_backward_input(s, gy, w, gx);
    }
}

/// [`conv_transpose2d_backward_input_event`] when `x` is sparser than
/// [`CONV_TRANSPOSE2D_BACKWARD_INPUT_CROSSOVER`] (scaled for fewer than 8 output channels),
/// the dense [`conv_transpose2d_backward_input`] otherwise.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv_transpose2d_backward_input_auto(
    s: &ConvTranspose2dShape,
    x: Input<'_>,
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) {
    if x.sparser_than(CONV_TRANSPOSE2D_BACKWARD_INPUT_CROSSOVER * lane_use(s.c_out)) {
        backward_input_event("conv_transpose2d_backward_input_event", s, x, w, gy, gx);
    } else {
        conv_transpose2d_backward_input(s, gy, w, gx);
    }
}

/// [`conv2d_forward_event`] when `x` is sparser than [`CONV2D_FORWARD_CROSSOVER`] (scaled
/// for fewer than 8 output channels, see [the module docs](crate::event#dispatch)),
/// [`conv2d_forward`] otherwise.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv2d_forward_auto(s: &Conv2dShape, x: Input<'_>, w: &[f32], y: &mut [f32]) {
    if x.sparser_than(CONV2D_FORWARD_CROSSOVER * lane_use(s.c_out)) {
        forward_event("conv2d_forward_event", s, x, w, y);
    } else {
        conv2d_forward(s, &x.values(), w, y);
    }
}

/// [`conv2d_backward_weight_event`] when `x` is sparser than
/// [`CONV2D_BACKWARD_WEIGHT_CROSSOVER`] (scaled for fewer than 8 output channels, see [the
/// module docs](crate::event#dispatch)), [`conv2d_backward_weight`] otherwise.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv2d_backward_weight_auto(s: &Conv2dShape, x: Input<'_>, gy: &[f32], gw: &mut [f32]) {
    if x.sparser_than(CONV2D_BACKWARD_WEIGHT_CROSSOVER * lane_use(s.c_out)) {
        backward_event("conv2d_backward_weight_event", s, x, &[], gy, None, gw);
    } else {
        conv2d_backward_weight(s, &x.values(), gy, gw);
    }
}

/// [`conv_transpose2d_forward_event`] when `x` is sparser than
/// [`CONV_TRANSPOSE2D_FORWARD_CROSSOVER`] (scaled for fewer than 8 output channels, see
/// [the module docs](crate::event#dispatch)), [`conv_transpose2d_forward`] otherwise.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv_transpose2d_forward_auto(
    s: &ConvTranspose2dShape,
    x: Input<'_>,
    w: &[f32],
    y: &mut [f32],
) {
    if x.sparser_than(CONV_TRANSPOSE2D_FORWARD_CROSSOVER * lane_use(s.c_out)) {
        forward_event("conv_transpose2d_forward_event", s, x, w, y);
    } else {
        conv_transpose2d_forward(s, &x.values(), w, y);
    }
}

/// [`conv_transpose2d_backward_weight_event`] when `x` is sparser than
/// [`CONV_TRANSPOSE2D_BACKWARD_WEIGHT_CROSSOVER`] (scaled for fewer than 8 output channels,
/// see [the module docs](crate::event#dispatch)), [`conv_transpose2d_backward_weight`] otherwise.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv_transpose2d_backward_weight_auto(
    s: &ConvTranspose2dShape,
    x: Input<'_>,
    gy: &[f32],
    gw: &mut [f32],
) {
    if x.sparser_than(CONV_TRANSPOSE2D_BACKWARD_WEIGHT_CROSSOVER * lane_use(s.c_out)) {
        backward_event(
            "conv_transpose2d_backward_weight_event",
            s,
            x,
            &[],
            gy,
            None,
            gw,
        );
    } else {
        conv_transpose2d_backward_weight(s, &x.values(), gy, gw);
    }
}

/// Calls `tap(xi, wi, yi)` for every nonzero `x[xi]` and every product `x[xi]·w[wi]` the
/// convolution `s` adds into `y[yi]`, scattering from the input side: output `(oh, ow)`
/// is reached through tap `(p, q)` when `oh·stride + p − padding = ih` and likewise for
/// `ow`.
fn conv2d_events(s: &Conv2dShape, x: &[f32], mut tap: impl FnMut(usize, usize, usize)) {
    let (oh, ow) = (s.out_h(), s.out_w());
    let reach = |i: usize, k: usize, out: usize| {
        let t = (i + s.padding).checked_sub(k)?;
        (t % s.stride == 0 && t / s.stride < out).then_some(t / s.stride)
    };
    for b in 0..s.batch {
        for c in 0..s.c_in {
            for ih in 0..s.h {
                for iw in 0..s.w {
                    let xi = ((b * s.c_in + c) * s.h + ih) * s.w + iw;
                    if x[xi] == 0.0 {
                        continue;
                    }
                    for o in 0..s.c_out {
                        for p in 0..s.kh {
                            for q in 0..s.kw {
                                if let (Some(i), Some(j)) = (reach(ih, p, oh), reach(iw, q, ow)) {
                                    let yi = ((b * s.c_out + o) * oh + i) * ow + j;
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

/// Calls `tap(xi, wi, yi)` for every nonzero `x[xi]` and every product `x[xi]·w[wi]` the
/// transposed convolution `s` stamps into `y[yi]`.
fn conv_transpose2d_events(
    s: &ConvTranspose2dShape,
    x: &[f32],
    mut tap: impl FnMut(usize, usize, usize),
) {
    let (oh, ow) = (s.out_h(), s.out_w());
    let reach = |i: usize, k: usize, out: usize| {
        let o = (i * s.stride + k).checked_sub(s.padding)?;
        (o < out).then_some(o)
    };
    for b in 0..s.batch {
        for c in 0..s.c_in {
            for i in 0..s.h {
                for j in 0..s.w {
                    let xi = ((b * s.c_in + c) * s.h + i) * s.w + j;
                    if x[xi] == 0.0 {
                        continue;
                    }
                    for o in 0..s.c_out {
                        for p in 0..s.kh {
                            for q in 0..s.kw {
                                if let (Some(oy), Some(ox)) = (reach(i, p, oh), reach(j, q, ow)) {
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

/// Reference for [`conv2d_forward_event`]: every nonzero input pixel scattered through
/// every tap, `f64` sums.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv2d_forward_event_ref(s: &Conv2dShape, x: &[f32], w: &[f32], y: &mut [f32]) {
    let got = [x.len(), w.len(), y.len()];
    check_lens("conv2d_forward_event_ref", s, got, s.lens());
    accumulate(y, |y| {
        conv2d_events(s, x, |xi, wi, yi| y[yi] += product(x[xi], w[wi]))
    });
}

/// Reference for [`conv2d_backward_weight_event`]: `gw[wi] += x[xi]·gy[yi]` over the taps of
/// every nonzero input pixel, `f64` sums.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv2d_backward_weight_event_ref(s: &Conv2dShape, x: &[f32], gy: &[f32], gw: &mut [f32]) {
    let got = [x.len(), gw.len(), gy.len()];
    check_lens("conv2d_backward_weight_event_ref", s, got, s.lens());
    accumulate(gw, |gw| {
        conv2d_events(s, x, |xi, wi, yi| gw[wi] += product(x[xi], gy[yi]))
    });
}

/// Reference for [`conv_transpose2d_forward_event`]: every nonzero input pixel stamped
/// through every tap, `f64` sums.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv_transpose2d_forward_event_ref(
    s: &ConvTranspose2dShape,
    x: &[f32],
    w: &[f32],
    y: &mut [f32],
) {
    let got = [x.len(), w.len(), y.len()];
    let want = s.lens();
    check_lens("conv_transpose2d_forward_event_ref", s, got, want);
    accumulate(y, |y| {
        conv_transpose2d_events(s, x, |xi, wi, yi| y[yi] += product(x[xi], w[wi]))
    });
}

/// Reference for [`conv_transpose2d_backward_weight_event`]: `gw[wi] += x[xi]·gy[yi]` over
/// the taps of every nonzero input pixel, `f64` sums.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv_transpose2d_backward_weight_event_ref(
    s: &ConvTranspose2dShape,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
) {
    let got = [x.len(), gw.len(), gy.len()];
    let want = s.lens();
    check_lens("conv_transpose2d_backward_weight_event_ref", s, got, want);
    accumulate(gw, |gw| {
        conv_transpose2d_events(s, x, |xi, wi, yi| gw[wi] += product(x[xi], gy[yi]))
    });
}

/// Reference for [`conv2d_backward_input_event`]: the dense reference
/// [`conv2d_backward_input_ref`](crate::conv::conv2d_backward_input_ref), zeroed where `x`
/// is zero.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv2d_backward_input_event_ref(
    s: &Conv2dShape,
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) {
    crate::conv::conv2d_backward_input_ref(s, gy, w, gx);
    mask_by(x, gx);
}

/// Reference for [`conv_transpose2d_backward_input_event`]: the dense reference
/// [`conv_transpose2d_backward_input_ref`](crate::conv::conv_transpose2d_backward_input_ref),
/// zeroed where `x` is zero.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv_transpose2d_backward_input_event_ref(
    s: &ConvTranspose2dShape,
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) {
    crate::conv::conv_transpose2d_backward_input_ref(s, gy, w, gx);
    mask_by(x, gx);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bits::{BitSlice, pack_binary};
    use crate::testutil::{
        any_density, assert_close, bits, conv_transpose2d_shapes, conv2d_shapes, on_threads,
        random_vec, run, spikes,
    };
    use proptest::prelude::*;

    /// A fused backward dispatcher: `(shape, x, w, gy, gx, gw)`.
    type Both<S> = fn(&S, Input<'_>, &[f32], &[f32], &mut [f32], &mut [f32]);

    /// The `_auto` dispatchers of one convolution kind.
    struct Autos<S> {
        forward: fn(&S, Input<'_>, &[f32], &mut [f32]),
        weight: fn(&S, Input<'_>, &[f32], &mut [f32]),
        input: fn(&S, Input<'_>, &[f32], &[f32], &mut [f32]),
        both: Both<S>,
    }

    /// Binary `x` read as bits gives what its values give, bit for bit, through the event
    /// passes (whatever the density) and through the dispatchers (either path).
    fn bits_match_values<S: EventConv>(s: &S, x: &[f32], w: &[f32], gy: &[f32], a: Autos<S>) {
        let Some(words) = pack_binary(x) else { return };
        let [nx, nw, ny] = s.lens();
        let each = |x: Input<'_>| {
            let k = "test";
            let mut both = (vec![f32::NAN; nx], vec![f32::NAN; nw]);
            backward_event(k, s, x, w, gy, Some(&mut both.0), &mut both.1);
            let mut auto = (vec![f32::NAN; nx], vec![f32::NAN; nw]);
            (a.both)(s, x, w, gy, &mut auto.0, &mut auto.1);
            [
                run(ny, |y| forward_event(k, s, x, w, y)),
                run(nw, |g| backward_event(k, s, x, &[], gy, None, g)),
                run(nx, |g| backward_input_event(k, s, x, w, gy, g)),
                both.0,
                both.1,
                run(ny, |y| (a.forward)(s, x, w, y)),
                run(nw, |g| (a.weight)(s, x, gy, g)),
                run(nx, |g| (a.input)(s, x, w, gy, g)),
                auto.0,
                auto.1,
            ]
            .map(|v| bits(&v))
        };
        let from_bits = each(Input::Bits(BitSlice::new(&words, nx)));
        assert!(
            from_bits == each(Input::Values(x)),
            "bits and values differ"
        );
    }

    /// Random convolution shapes, mostly tiny, occasionally with more than 8 output
    /// channels (several SIMD blocks per position).
    fn conv2d_shape() -> impl Strategy<Value = Conv2dShape> {
        let c_out = prop_oneof![1usize..4, 9usize..20];
        conv2d_shapes(prop_oneof![3 => 0usize..4, 1 => 9usize..14], c_out, 10)
    }

    fn conv_transpose2d_shape() -> impl Strategy<Value = ConvTranspose2dShape> {
        conv_transpose2d_shapes(conv2d_shape())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]


        #[test]
        fn conv2d_matches_reference_and_dense(
            s in conv2d_shape(),
            density in any_density(),
            analog in any::<bool>(),
            seed in any::<u64>(),
        ) {
            let (nx, nw, ny) = (s.input_len(), s.weight_len(), s.output_len());
            let x = spikes(nx, density, analog, seed);
            let (w, gy) = (random_vec(nw, seed + 1), random_vec(ny, seed + 2));

            let want = run(ny, |y| conv2d_forward_event_ref(&s, &x, &w, y));
            assert_close(&run(ny, |y| conv2d_forward(&s, &x, &w, y)), &want, 1e-4);
            assert_close(&run(ny, |y| conv2d_forward_event(&s, &x, &w, y)), &want, 1e-4);
            assert_close(&run(ny, |y| conv2d_forward_auto(&s, Input::Values(&x), &w, y)), &want, 1e-4);

            let want = run(nw, |g| conv2d_backward_weight_event_ref(&s, &x, &gy, g));
            assert_close(&run(nw, |g| conv2d_backward_weight(&s, &x, &gy, g)), &want, 1e-4);
            assert_close(&run(nw, |g| conv2d_backward_weight_event(&s, &x, &gy, g)), &want, 1e-4);
            assert_close(&run(nw, |g| conv2d_backward_weight_auto(&s, Input::Values(&x), &gy, g)), &want, 1e-4);

            let want = run(nx, |g| conv2d_backward_input_event_ref(&s, &x, &w, &gy, g));
            assert_close(&run(nx, |g| conv2d_backward_input_event(&s, &x, &w, &gy, g)), &want, 1e-4);
            let want_w = run(nw, |g| conv2d_backward_weight_event_ref(&s, &x, &gy, g));
            let (mut gx, mut gw) = (vec![f32::NAN; nx], vec![f32::NAN; nw]);
            conv2d_backward_event(&s, &x, &w, &gy, &mut gx, &mut gw);
            assert_close(&gx, &want, 1e-4);
            assert_close(&gw, &want_w, 1e-4);
            conv2d_backward_auto(&s, Input::Values(&x), &w, &gy, &mut gx, &mut gw);
            mask_by(&x, &mut gx);
            assert_close(&gx, &want, 1e-4);
            assert_close(&gw, &want_w, 1e-4);
            let mut got = run(nx, |g| conv2d_backward_input_auto(&s, Input::Values(&x), &w, &gy, g));
            mask_by(&x, &mut got);
            assert_close(&got, &want, 1e-4);
            bits_match_values(&s, &x, &w, &gy, Autos {
                forward: conv2d_forward_auto,
                weight: conv2d_backward_weight_auto,
                input: conv2d_backward_input_auto,
                both: conv2d_backward_auto,
            });
        }

        #[test]
        fn conv_transpose2d_matches_reference_and_dense(
            s in conv_transpose2d_shape(),
            density in any_density(),
            analog in any::<bool>(),
            seed in any::<u64>(),
        ) {
            let (nx, nw, ny) = (s.input_len(), s.weight_len(), s.output_len());
            let x = spikes(nx, density, analog, seed);
            let (w, gy) = (random_vec(nw, seed + 1), random_vec(ny, seed + 2));

            let want = run(ny, |y| conv_transpose2d_forward_event_ref(&s, &x, &w, y));
            assert_close(&run(ny, |y| conv_transpose2d_forward(&s, &x, &w, y)), &want, 1e-4);
            assert_close(&run(ny, |y| conv_transpose2d_forward_event(&s, &x, &w, y)), &want, 1e-4);
            assert_close(&run(ny, |y| conv_transpose2d_forward_auto(&s, Input::Values(&x), &w, y)), &want, 1e-4);

            let want = run(nw, |g| conv_transpose2d_backward_weight_event_ref(&s, &x, &gy, g));
            let dense = run(nw, |g| conv_transpose2d_backward_weight(&s, &x, &gy, g));
            assert_close(&dense, &want, 1e-4);
            let got = run(nw, |g| conv_transpose2d_backward_weight_event(&s, &x, &gy, g));
            assert_close(&got, &want, 1e-4);
            let got = run(nw, |g| conv_transpose2d_backward_weight_auto(&s, Input::Values(&x), &gy, g));
            assert_close(&got, &want, 1e-4);

            let want = run(nx, |g| conv_transpose2d_backward_input_event_ref(&s, &x, &w, &gy, g));
            let got = run(nx, |g| conv_transpose2d_backward_input_event(&s, &x, &w, &gy, g));
            assert_close(&got, &want, 1e-4);
            let want_w = run(nw, |g| conv_transpose2d_backward_weight_event_ref(&s, &x, &gy, g));
            let (mut gx, mut gw) = (vec![f32::NAN; nx], vec![f32::NAN; nw]);
            conv_transpose2d_backward_event(&s, &x, &w, &gy, &mut gx, &mut gw);
            assert_close(&gx, &want, 1e-4);
            assert_close(&gw, &want_w, 1e-4);
            conv_transpose2d_backward_auto(&s, Input::Values(&x), &w, &gy, &mut gx, &mut gw);
            mask_by(&x, &mut gx);
            assert_close(&gx, &want, 1e-4);
            assert_close(&gw, &want_w, 1e-4);
            let mut got = run(nx, |g| conv_transpose2d_backward_input_auto(&s, Input::Values(&x), &w, &gy, g));
            mask_by(&x, &mut got);
            assert_close(&got, &want, 1e-4);
            bits_match_values(&s, &x, &w, &gy, Autos {
                forward: conv_transpose2d_forward_auto,
                weight: conv_transpose2d_backward_weight_auto,
                input: conv_transpose2d_backward_input_auto,
                both: conv_transpose2d_backward_auto,
            });
        }
    }

    #[test]
    fn conv_by_hand() {
        // One spike in the middle of a 3×3 image, a 2×2 kernel [1 2; 3 4]: each of the four
        // windows containing the centre sees it through a different tap.
        let s = Conv2dShape {
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
        let x = [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        let w = [1.0, 2.0, 3.0, 4.0];
        let y = run(4, |y| conv2d_forward_event(&s, &x, &w, y));
        assert_eq!(y, [4.0, 3.0, 2.0, 1.0]);
        // The transposed convolution stamps the kernel at the spike: a 4×4 output.
        let t = ConvTranspose2dShape {
            batch: 1,
            c_in: 1,
            h: 3,
            w: 3,
            c_out: 1,
            kh: 2,
            kw: 2,
            stride: 1,
            padding: 0,
            output_padding: 0,
        };
        let y = run(16, |y| conv_transpose2d_forward_event(&t, &x, &w, y));
        #[rustfmt::skip]
        let want = [
            0.0, 0.0, 0.0, 0.0,
            0.0, 1.0, 2.0, 0.0,
            0.0, 3.0, 4.0, 0.0,
            0.0, 0.0, 0.0, 0.0,
        ];
        assert_eq!(y, want);
    }

    /// The shapes of the paper's network, at their typical densities, on a few frames.
    #[test]
    fn network_shapes_match_dense() {
        let conv = |batch, c_in, hw, c_out| Conv2dShape {
            batch,
            c_in,
            h: hw,
            w: hw,
            c_out,
            kh: 5,
            kw: 5,
            stride: 1,
            padding: 0,
        };
        for (i, (s, d)) in [(conv(3, 1, 28, 16), 0.03), (conv(2, 16, 24, 32), 0.2)]
            .into_iter()
            .enumerate()
        {
            let seed = 10 * i as u64;
            let x = spikes(s.input_len(), d, false, seed);
            let w = random_vec(s.weight_len(), seed + 1);
            let gy = random_vec(s.output_len(), seed + 2);
            let want = run(s.output_len(), |y| conv2d_forward(&s, &x, &w, y));
            let got = run(s.output_len(), |y| conv2d_forward_event(&s, &x, &w, y));
            assert_close(&got, &want, 1e-4);
            let want = run(s.weight_len(), |g| conv2d_backward_weight(&s, &x, &gy, g));
            let got = run(s.weight_len(), |g| {
                conv2d_backward_weight_event(&s, &x, &gy, g)
            });
            assert_close(&got, &want, 1e-4);
        }
        let tconv = |batch, c_in, hw, c_out| ConvTranspose2dShape {
            batch,
            c_in,
            h: hw,
            w: hw,
            c_out,
            kh: 5,
            kw: 5,
            stride: 1,
            padding: 0,
            output_padding: 0,
        };
        for (i, (s, d)) in [(tconv(2, 32, 20, 16), 0.16), (tconv(3, 16, 24, 1), 0.02)]
            .into_iter()
            .enumerate()
        {
            let seed = 100 + 10 * i as u64;
            let x = spikes(s.input_len(), d, false, seed);
            let w = random_vec(s.weight_len(), seed + 1);
            let gy = random_vec(s.output_len(), seed + 2);
            let want = run(s.output_len(), |y| conv_transpose2d_forward(&s, &x, &w, y));
            let got = run(s.output_len(), |y| {
                conv_transpose2d_forward_event(&s, &x, &w, y)
            });
            assert_close(&got, &want, 1e-4);
            let want = run(s.weight_len(), |g| {
                conv_transpose2d_backward_weight(&s, &x, &gy, g)
            });
            let got = run(s.weight_len(), |g| {
                conv_transpose2d_backward_weight_event(&s, &x, &gy, g)
            });
            assert_close(&got, &want, 1e-4);
        }
    }

    #[test]
    fn weight_gradients_are_identical_on_one_and_two_threads() {
        let s = Conv2dShape {
            batch: 150,
            c_in: 3,
            h: 11,
            w: 9,
            c_out: 12,
            kh: 3,
            kw: 3,
            stride: 1,
            padding: 1,
        };
        let x = spikes(s.input_len(), 0.2, true, 1);
        let gy = random_vec(s.output_len(), 2);
        let t = ConvTranspose2dShape {
            batch: 150,
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
        let tx = spikes(t.input_len(), 0.2, true, 3);
        let tgy = random_vec(t.output_len(), 4);
        let on = |threads: usize| {
            on_threads(threads, || {
                [
                    run(s.weight_len(), |g| {
                        conv2d_backward_weight_event(&s, &x, &gy, g)
                    }),
                    run(t.weight_len(), |g| {
                        conv_transpose2d_backward_weight_event(&t, &tx, &tgy, g)
                    }),
                ]
            })
        };
        let (one, two) = (on(1), on(2));
        for (a, b) in one.iter().zip(&two) {
            assert_eq!(bits(a), bits(b));
        }
    }
}
