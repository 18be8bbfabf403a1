//! Output-stationary (gather) convolution kernels over bit-packed, channels-last spike
//! maps.
//!
//! The event kernels of [`crate::event`] scatter: each spike adds its weights into every
//! output it reaches, read-modify-writing output memory once per spike and tap. These
//! kernels turn the loop around. For each output pixel, its `c_out` channels accumulate in
//! `f32x8` registers while the kernel walks the spikes of the pixel's receptive field, and
//! are stored once at the end; the input is read as bits, 64 channels a word.
//!
//! # Formats
//!
//! - Spikes: [`SpikeMaps`], `[frames][h][w][⌈c_in/64⌉ words]`, bit `c % 64` of word
//!   `c / 64` the spike of channel `c`.
//! - Weights: [`PackedWeights`], `[kh·kw taps][c_in][⌈c_out/8⌉ vectors]`, each row the
//!   weights from one input channel to all output channels through one tap, zero-padded
//!   to whole vectors. Packed once per weight, from PyTorch's layout.
//! - Outputs and output gradients are channels-last, `[frames][out_h][out_w][c_out]`
//!   (the `_nchw` forward variants transpose each frame into NCHW); input gradients are
//!   channels-last, `[frames][h][w][c_in]`; weight gradients come back in PyTorch's layout.
//!
//! # Loop order
//!
//! Frames run in parallel. Within a frame, for each output pixel and each block of up to
//! four output vectors (32 channels): for each tap `(p, q)` of the receptive field, the
//! input pixel under it, each of its words, and each set bit `c` of the word (a
//! `trailing_zeros` loop), the weight row `(tap, c)` is added into the block's
//! accumulators. A transposed convolution runs the same loop: an output pixel gathers
//! the input pixels whose stamps cover it, the taps along each axis being those with
//! `o + padding − p` a multiple of the stride.
//!
//! That is the general path. Where a receptive field's row of taps reads a row of
//! consecutive input pixels through consecutive packed taps (convolutions of any stride,
//! transposed convolutions of stride 1; the packing flips a transposed kernel's columns
//! to make it so), each frame's set bits are first listed pixel by pixel, and a row of
//! taps becomes one loop over one run of that list, each entry a weight row at a fixed
//! offset: a loop per row of taps instead of a bit walk per tap, whose data-dependent
//! trip counts are what the loop's time goes into at low density.
//!
//! The weight gradient walks the same loop with the roles swapped: the output pixel's
//! gradient row sits in registers and is added into the gradient row `(tap, c)` of each
//! set bit, in a partial per task of frames (fixed by the shape, summed in task order, so
//! bit-identical on any thread count). The input gradient is wanted only at the spikes:
//! for each input pixel with set bits, for each tap and the output pixel it reaches, the
//! output gradient row is loaded once and dotted with the weight row of every set bit.
//!
//! Every kernel has a `_ref` twin in plain loops over the definitions of
//! [`Conv2dShape`](crate::Conv2dShape) and
//! [`ConvTranspose2dShape`](crate::ConvTranspose2dShape).

mod bits;
mod events;
mod forward;
mod geometry;
mod input;
mod reference;
mod simd;
mod weight;
mod weights;

#[cfg(test)]
mod tests;

pub use bits::SpikeMaps;
pub use forward::{
    conv_transpose2d_forward_gather, conv_transpose2d_forward_gather_nchw, conv2d_forward_gather,
    conv2d_forward_gather_nchw,
};
pub use input::{conv_transpose2d_backward_input_gather, conv2d_backward_input_gather};
pub use reference::{
    conv_transpose2d_backward_input_gather_ref, conv_transpose2d_backward_weight_gather_ref,
    conv_transpose2d_forward_gather_ref, conv2d_backward_input_gather_ref,
    conv2d_backward_weight_gather_ref, conv2d_forward_gather_ref,
};
pub use weight::{conv_transpose2d_backward_weight_gather, conv2d_backward_weight_gather};
pub use weights::PackedWeights;
