//! Output-stationary (gather) convolution kernels over bit-packed, channels-last spike
//! maps.
//!
//! The event kernels of [`crate::event`] scatter: each spike adds its weights into every
//! output it reaches, read-modify-writing output memory once per spike and tap. These
//! kernels turn the loop around. For each output pixel, its `c_out` channels accumulate in
//! `f32x8` registers while the kernel walks the spikes of the pixel's receptive field, and
//! are stored once at the end; the input is read as bits, 64 channels a word.
//!
//! This module starts with the format: [`SpikeMaps`], `[frames][h][w][⌈c_in/64⌉ words]`,
//! bit `c % 64` of word `c / 64` the spike of channel `c`.

mod bits;

pub use bits::SpikeMaps;
