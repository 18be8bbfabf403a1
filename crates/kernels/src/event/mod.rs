//! Spike-driven (event) kernels: linear layers, convolutions and transposed convolutions
//! that visit only the nonzero inputs.
//!
//! In a spiking network most layers see binary spikes of low density, so a dense GEMM
//! spends most of its multiply-adds on zeros. An event kernel does work in proportion to
//! the nonzero inputs: each one adds its weights, scaled by its value, into the outputs
//! it reaches (a scatter), and the weight gradient gathers the output gradient at those
//! same outputs. The value is multiplied in, so the kernels are exact for any input,
//! analog ones included; they are fast for sparse ones.
//!
//! Layouts and semantics are those of the dense kernels in [`crate::conv`] and
//! [`crate::linear`] (PyTorch's `nn.Linear`, `w[fan_out, fan_in]`), outputs are
//! overwritten, and each kernel has a scalar `_ref` twin. Results match the dense kernels'
//! up to rounding (the sums run in another order), except that a zero input contributes
//! nothing even where the weight it would meet is infinite or NaN, where the dense kernels
//! produce NaN. The `_auto` dispatchers call whichever of the two is faster at the input's
//! density.
//!
//! # Inputs
//!
//! The `_auto` dispatchers take their input as an [`Input`]: `f32` values, or binary
//! spikes as bits ([`crate::bits::BitSlice`], the tensor's order, one bit per element), as
//! the LIF kernel leaves them. Bits are walked a word (64 elements) at a time and never
//! expanded, but for the dense path; they give the values' results bit for bit. The
//! `_event` kernels and `_ref` twins take values.
//!
//! # Dispatch
//!
//! Each `_auto` dispatcher takes the event path when the input's density is below its
//! crossover constant: the density where the two kernels ran equally fast on the
//! development machine, rounded down (`EVENT_CROSSOVER=1 cargo bench --bench event` times
//! them alternately at densities from 1 % to 50 % and interpolates the crossing; the
//! measurements are in BENCHMARKS.md, "Crossover constants of `kernels::event`"). The
//! constants hold for layers whose outputs fill whole 8-lane vectors (8, 16, 32 …
//! channels). An event kernel's cost per spike grows with the vectors an output run takes,
//! `⌈n/8⌉`, a dense kernel's with `n`, so for `n` outputs the dispatcher scales its
//! constant by `n / (8·⌈n/8⌉)`: a layer with one output channel (the decoder's last)
//! crosses over at an eighth of the density. Deciding reads only as much of the input as it
//! takes: a dense one is rejected after a fraction of it has been counted.
//!
//! # Layout
//!
//! Internally, weights and output-sized scratch are kept channels-last (`[…][c_out]`),
//! so every spike adds whole contiguous runs of `c_out` (or `fan_out`) floats, 8-wide
//! FMAs. Spikes are found eight inputs at a time and packed into index lists without
//! branches. Each image's (or row block's) spikes are gathered once, then replayed in the
//! order that keeps the data being updated in cache.
//!
//! # Modules
//!
//! - `linear`: the linear layer's event kernels, their `_ref` twins and dispatchers;
//! - `conv`: the same for convolutions and transposed convolutions, one generic
//!   implementation over the two kinds;
//! - `scatter`: where each input pixel of a convolution lands, and the passes that walk
//!   an image's events;
//! - `simd`: the vector building blocks (packing nonzeros into index lists, axpy, dot
//!   products, transposes).

mod conv;
mod input;
mod linear;
mod scatter;
pub(crate) mod simd;

pub use conv::{
    conv_transpose2d_backward_auto, conv_transpose2d_backward_event,
    conv_transpose2d_backward_input_auto, conv_transpose2d_backward_input_event,
    conv_transpose2d_backward_input_event_ref, conv_transpose2d_backward_weight_auto,
    conv_transpose2d_backward_weight_event, conv_transpose2d_backward_weight_event_ref,
    conv_transpose2d_forward_auto, conv_transpose2d_forward_event,
    conv_transpose2d_forward_event_ref, conv2d_backward_auto, conv2d_backward_event,
    conv2d_backward_input_auto, conv2d_backward_input_event, conv2d_backward_input_event_ref,
    conv2d_backward_weight_auto, conv2d_backward_weight_event, conv2d_backward_weight_event_ref,
    conv2d_forward_auto, conv2d_forward_event, conv2d_forward_event_ref,
};
pub use input::Input;
pub use linear::{
    linear_backward_input_auto, linear_backward_input_event, linear_backward_input_event_ref,
    linear_backward_weight_auto, linear_backward_weight_event, linear_backward_weight_event_ref,
    linear_forward_auto, linear_forward_event, linear_forward_event_ref,
};

// The dispatchers' crossover densities (see "Dispatch" above), for layers whose outputs
// fill whole 8-lane vectors; BENCHMARKS.md has their measurements.

/// Input density below which [`linear_forward_auto`] takes the event path.
pub const LINEAR_FORWARD_CROSSOVER: f32 = 0.3;

/// Input density below which [`linear_backward_weight_auto`] takes the event path.
pub const LINEAR_BACKWARD_WEIGHT_CROSSOVER: f32 = 0.45;

/// Input density below which [`conv2d_forward_auto`] takes the event path.
pub const CONV2D_FORWARD_CROSSOVER: f32 = 0.2;

/// Input density below which [`conv2d_backward_weight_auto`] takes the event path.
pub const CONV2D_BACKWARD_WEIGHT_CROSSOVER: f32 = 0.4;

/// Input density below which [`conv_transpose2d_forward_auto`] takes the event path.
pub const CONV_TRANSPOSE2D_FORWARD_CROSSOVER: f32 = 0.25;

/// Input density below which [`conv_transpose2d_backward_weight_auto`] takes the event path.
pub const CONV_TRANSPOSE2D_BACKWARD_WEIGHT_CROSSOVER: f32 = 0.35;

/// Input density below which [`linear_backward_input_auto`] takes the event path.
pub const LINEAR_BACKWARD_INPUT_CROSSOVER: f32 = 0.15;

/// Input density below which [`conv2d_backward_input_auto`] takes the event path.
pub const CONV2D_BACKWARD_INPUT_CROSSOVER: f32 = 0.18;

/// Input density below which [`conv_transpose2d_backward_input_auto`] takes the event path.
pub const CONV_TRANSPOSE2D_BACKWARD_INPUT_CROSSOVER: f32 = 0.18;

/// Input density below which [`conv2d_backward_auto`] takes the fused event path.
pub const CONV2D_BACKWARD_CROSSOVER: f32 = 0.25;

/// Input density below which [`conv_transpose2d_backward_auto`] takes the fused event path.
pub const CONV_TRANSPOSE2D_BACKWARD_CROSSOVER: f32 = 0.35;

/// The fraction of its 8-lane vectors that a run of `n` floats fills, `n / (8·⌈n/8⌉)`: the
/// factor a dispatcher scales its crossover by (see [the module docs](self#dispatch)).
fn lane_use(n: usize) -> f32 {
    n as f32 / n.div_ceil(8).max(1) as f32 / 8.0
}

/// Fraction of the elements of `x` that are nonzero (NaN counts as nonzero); 0 for an
/// empty slice.
pub fn density(x: &[f32]) -> f32 {
    Input::Values(x).density()
}

/// Zeroes `gx` wherever `x` is zero: the masked references are the dense ones, masked.
fn mask_by(x: &[f32], gx: &mut [f32]) {
    gx.iter_mut()
        .zip(x)
        .filter(|(_, v)| **v == 0.0)
        .for_each(|(g, _)| *g = 0.0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::spikes;

    #[test]
    fn density_counts_nonzeros() {
        assert_eq!(density(&[]), 0.0);
        assert_eq!(density(&[0.0, 1.0, -0.0, 0.5]), 0.5);
        assert_eq!(density(&[f32::NAN, 0.0]), 0.5);
        let x = spikes(10_000, 0.05, false, 3);
        assert!((density(&x) - 0.05).abs() < 0.01);
        let x = Input::Values(&x);
        assert!(x.sparser_than(0.1));
        assert!(!x.sparser_than(0.01));
        assert!(Input::Values(&[]).sparser_than(0.1));
        let words = crate::bits::pack_binary(&spikes(10_000, 0.05, false, 3)).expect("binary");
        let bits = Input::Bits(crate::bits::BitSlice::new(&words, 10_000));
        assert!(bits.sparser_than(0.1) && !bits.sparser_than(0.01));
        assert_eq!(lane_use(1), 0.125);
        assert_eq!(lane_use(9), 9.0 / 16.0);
        assert_eq!((lane_use(8), lane_use(16), lane_use(32)), (1.0, 1.0, 1.0));
    }
}
