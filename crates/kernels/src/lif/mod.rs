//! Multi-step leaky integrate-and-fire (LIF) neurons: one call runs all `T` steps of a
//! layer forward, one call runs them all backward.
//!
//! Data is time-major `[T, N]`: element `(t, i)` of a current or gradient is
//! `x[t·n + i]`, so a time-folded batch `[T·B, C, H, W]` is exactly this with
//! `N = B·C·H·W`. Forward, per neuron `i` and step `t` (λ leak, θ threshold,
//! `v̂[−1] = c[−1] = 0`):
//!
//! ```text
//! u[t] = λ·v̂[t−1] + I[t]
//! v[t] = floor(u[t])                    Floor::None: u;  Clamp: −θ where u < −θ;  Authors: θ where u < −θ
//! s[t] = 1 if v[t] > θ else 0
//! v̂[t] = v[t] − s[t]·v[t]  (Reset::Zero)  |  v[t] − s[t]·θ  (Reset::Subtract)
//! c[t] = λ·(c[t−1] + I[t])
//! ```
//!
//! Backward walks `t = T−1 … 0` with `κ = 1` for [`Surrogate::Membrane`] (straight-through
//! leaks) and `κ = λ` otherwise, `g` the surrogate derivative of the spike, `r[t] = 1 − s[t]`
//! for reset to zero and `1` for subtraction, `Ac[T] = Au[T] = 0`:
//!
//! ```text
//! Ac[t] = ∂L/∂c[t] + κ·Ac[t+1]
//! Av[t] = ∂L/∂s[t]·g(v[t]) + κ·Au[t+1]·r[t]
//! Au[t] = 0 where the floor applied at t, else Av[t]
//! ∂L/∂I[t] = Au[t] + κ·Ac[t]
//! ```
//!
//! The forward records a [`LifTrace`] holding only what the backward needs: spikes as
//! bits, the floor mask as bits when a floor is on, and `v[t]` as `f32` only for
//! surrogates that read it.
//!
//! The fast kernels run eight neurons to an `f32x8` with the time loop inside: neurons are
//! cut into chunks of 1 024 to 16 384, one rayon task each, and a chunk's state stays in a
//! task-local buffer while the chunk walks all `T` steps, so every step reads and writes
//! one contiguous run per row. Chunk sizes depend on `N` only, never on the thread count,
//! and no arithmetic crosses neurons, so results do not depend on the number of threads.
//! The scalar tail (`N mod 8` neurons) and the `_ref` kernels share one scalar step
//! function, and the SIMD step performs the same operations in the same order (separate
//! multiply and add, never fused), so fast and reference agree bit for bit.

mod backward;
mod forward;
mod params;
mod state;
mod step;
mod tasks;
mod trace;

pub use backward::{lif_backward, lif_backward_from, lif_backward_from_ref, lif_backward_ref};
pub use forward::{lif_forward, lif_forward_from, lif_forward_from_ref, lif_forward_ref};
pub use params::{Floor, LifParams, Reset, Surrogate};
pub use state::{LifAdjoint, LifState};
pub use trace::LifTrace;

/// Inputs with fewer neuron-steps than this run on the calling thread: below it a
/// fork/join costs more than the kernel.
const PAR_MIN_LEN: usize = 1 << 15;

#[cfg(test)]
mod tests;
