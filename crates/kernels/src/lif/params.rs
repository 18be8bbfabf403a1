//! The parameters of a layer of LIF neurons: leak, threshold, reset, floor and the
//! surrogate derivative of the spike.

/// How the membrane potential is reset after a spike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reset {
    /// `v̂ = v − s·v`: a spiking neuron restarts from zero (the paper's default).
    Zero,
    /// `v̂ = v − s·θ`: the threshold is subtracted, the excess kept.
    Subtract,
}

/// What happens to a strongly inhibited membrane potential `u < −θ`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Floor {
    /// No floor: `v = u`.
    None,
    /// `v = max(u, −θ)` (written `−θ where u < −θ`, so a NaN passes through).
    Clamp,
    /// `v = θ where u < −θ`: what the authors' code does (it lifts a strongly inhibited
    /// neuron to just below threshold).
    Authors,
}

/// The derivative `g(v) := ∂s/∂v` the backward pass uses for the spike, with `z = v − θ`
/// and slope `k`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Surrogate {
    /// `g = s/θ`, gradient only where the neuron fired (the paper's membrane
    /// potential-based backpropagation); both leaks are straight-through (`κ = 1`).
    Membrane,
    /// `g = 1/(k·|z| + 1)²`.
    FastSigmoid {
        /// `k`.
        slope: f32,
    },
    /// `g = (k/2) / (1 + (π·k·z/2)²)`.
    Arctan {
        /// `k`.
        slope: f32,
    },
    /// `g = k·max(0, 1 − k·|z|)`.
    Triangle {
        /// `k`.
        slope: f32,
    },
}

/// Parameters of a LIF layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LifParams {
    /// Membrane leak (decay) `λ`.
    pub leak: f32,
    /// Firing threshold `θ`.
    pub threshold: f32,
    /// Reset after a spike.
    pub reset: Reset,
    /// Floor under the membrane potential.
    pub floor: Floor,
    /// Spike derivative for the backward pass.
    pub surrogate: Surrogate,
}

impl LifParams {
    /// The paper's configuration: `λ = 0.99`, `θ = 1`, reset to zero, the authors' floor,
    /// the membrane surrogate.
    pub const PAPER: LifParams = LifParams {
        leak: 0.99,
        threshold: 1.0,
        reset: Reset::Zero,
        floor: Floor::Authors,
        surrogate: Surrogate::Membrane,
    };

    /// Whether the backward pass reads `v[t]` (every surrogate but the membrane one).
    pub(super) fn needs_potential(&self) -> bool {
        self.surrogate != Surrogate::Membrane
    }

    /// `κ`: the backward factor of both leaks and of `∂c/∂I`.
    pub(super) fn kappa(&self) -> f32 {
        match self.surrogate {
            Surrogate::Membrane => 1.0,
            _ => self.leak,
        }
    }
}
