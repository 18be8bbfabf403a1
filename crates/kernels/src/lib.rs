//! Plain-slice compute kernels for spiking networks, one module per concern:
//!
//! - [`gemm`]: single-precision matrix multiply over strided slices;
//! - [`linear`]: the dense linear layer (`nn.Linear`), forward and both gradients on GEMM;
//! - [`conv`]: 2-D convolution and transposed convolution, im2col + GEMM (the im2col
//!   itself is the private `unfold` module);
//! - [`conv_general`]: the same with per-axis stride and padding, dilation and groups;
//! - [`pool`]: average and max pooling;
//! - [`pool_general`]: the same with per-axis windows, padding and ceil mode;
//! - [`event`]: spike-driven (event) linear and convolution kernels that visit only the
//!   nonzero inputs, given as values or as bits, and the dispatchers that pick them or the
//!   dense ones by density;
//! - [`bits`]: binary tensors (spikes) packed one bit per element, and views of them;
//! - [`gather`]: output-stationary convolution kernels over bit-packed, channels-last
//!   spike maps;
//! - [`lif`]: multi-step leaky integrate-and-fire neurons, forward and backward over all
//!   time steps, with the compact trace the backward reads;
//! - [`encode`]: input encoders (rate and latency spike codes, input noise).
//!
//! Every tensor is `f32`, row-major and contiguous, images in NCHW order, except spikes
//! given as bits (the same order, one bit per element) and in [`gather`] (channels-last). Kernels take
//! their shape as a small `Copy` struct and their data as slices; output buffers are
//! overwritten, never accumulated into. Each fast kernel has a scalar reference twin named
//! `<name>_ref` beside it: the obvious nested loops, kept as the specification the fast
//! version is tested against (the GEMM-backed dense linear kernels are one `sgemm` call
//! each and are checked against the event references instead).
//!
//! Parallelism is one level deep: rayon over independent rows, images or planes, with
//! single-threaded GEMM inside each task.

#![warn(missing_docs)]

pub mod bits;
pub mod conv;
pub mod conv_general;
pub mod encode;
pub mod event;
pub mod gather;
pub mod gemm;
pub mod lif;
pub mod linear;
pub mod pool;
pub mod pool_general;
mod unfold;

/// The rayon the kernels run on, re-exported so callers can size the pool they run in
/// (`kernels::rayon::ThreadPoolBuilder`, then `install`) without a version mismatch.
#[doc(no_inline)]
pub use rayon;

#[cfg(test)]
mod testutil;

pub use conv::{
    Conv2dShape, ConvTranspose2dShape, conv_transpose2d_backward_input,
    conv_transpose2d_backward_input_ref, conv_transpose2d_backward_weight,
    conv_transpose2d_backward_weight_ref, conv_transpose2d_forward, conv_transpose2d_forward_ref,
    conv2d_backward_input, conv2d_backward_input_ref, conv2d_backward_weight,
    conv2d_backward_weight_ref, conv2d_forward, conv2d_forward_ref,
};
pub use conv_general::{
    GeneralConv2dShape, GeneralConvTranspose2dShape, conv_transpose2d_general_backward_input,
    conv_transpose2d_general_backward_input_ref, conv_transpose2d_general_backward_weight,
    conv_transpose2d_general_backward_weight_ref, conv_transpose2d_general_forward,
    conv_transpose2d_general_forward_ref, conv2d_general_backward_input,
    conv2d_general_backward_input_ref, conv2d_general_backward_weight,
    conv2d_general_backward_weight_ref, conv2d_general_forward, conv2d_general_forward_ref,
};
pub use encode::{
    add_noise, add_noise_ref, latency_encode, latency_encode_ref, latency_encode_steps,
    poisson_encode, poisson_encode_ref, poisson_encode_steps, uniform_at,
};
pub use event::{
    conv_transpose2d_backward_auto, conv_transpose2d_backward_event,
    conv_transpose2d_backward_input_auto, conv_transpose2d_backward_input_event,
    conv_transpose2d_backward_input_event_ref, conv_transpose2d_backward_weight_auto,
    conv_transpose2d_backward_weight_event, conv_transpose2d_backward_weight_event_ref,
    conv_transpose2d_forward_auto, conv_transpose2d_forward_event,
    conv_transpose2d_forward_event_ref, conv2d_backward_auto, conv2d_backward_event,
    conv2d_backward_input_auto, conv2d_backward_input_event, conv2d_backward_input_event_ref,
    conv2d_backward_weight_auto, conv2d_backward_weight_event, conv2d_backward_weight_event_ref,
    conv2d_forward_auto, conv2d_forward_event, conv2d_forward_event_ref, density,
    linear_backward_input_auto, linear_backward_input_event, linear_backward_input_event_ref,
    linear_backward_weight_auto, linear_backward_weight_event, linear_backward_weight_event_ref,
    linear_forward_auto, linear_forward_event, linear_forward_event_ref,
};
pub use gather::{
    PackedWeights, SpikeMaps, conv_transpose2d_backward_input_gather,
    conv_transpose2d_backward_input_gather_ref, conv_transpose2d_backward_weight_gather,
    conv_transpose2d_backward_weight_gather_ref, conv_transpose2d_forward_gather,
    conv_transpose2d_forward_gather_nchw, conv_transpose2d_forward_gather_ref,
    conv2d_backward_input_gather, conv2d_backward_input_gather_ref, conv2d_backward_weight_gather,
    conv2d_backward_weight_gather_ref, conv2d_forward_gather, conv2d_forward_gather_nchw,
    conv2d_forward_gather_ref,
};
pub use gemm::{sgemm, sgemm_ref, sgemm_serial};
pub use lif::{
    Floor, LifAdjoint, LifParams, LifState, LifTrace, Reset, Surrogate, lif_backward,
    lif_backward_from, lif_backward_from_ref, lif_backward_ref, lif_forward, lif_forward_from,
    lif_forward_from_ref, lif_forward_ref,
};
pub use linear::{linear_backward_input_dense, linear_backward_weight_dense, linear_forward_dense};
pub use pool::{
    Pool2dShape, avg_pool2d_backward, avg_pool2d_backward_ref, avg_pool2d_forward,
    avg_pool2d_forward_ref, max_pool2d_backward, max_pool2d_backward_ref, max_pool2d_forward,
    max_pool2d_forward_ref,
};
pub use pool_general::{
    GeneralPool2dShape, avg_pool2d_general_backward, avg_pool2d_general_backward_ref,
    avg_pool2d_general_forward, avg_pool2d_general_forward_ref, max_pool2d_general_backward,
    max_pool2d_general_backward_ref, max_pool2d_general_forward, max_pool2d_general_forward_ref,
};
