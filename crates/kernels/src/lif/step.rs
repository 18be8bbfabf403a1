//! One step of one neuron: the scalar specification (forward, surrogate, backward) and
//! the same operations on eight neurons at a time (`Lanes`), in the same order, so the
//! fast kernels and the `_ref` ones agree bit for bit.

use std::f32::consts::FRAC_PI_2;

use wide::{f32x8, u32x8};

use super::{Floor, LifParams, Reset, Surrogate};

/// One forward step of one neuron: updates `v̂` and `c` with input `i`, returns
/// `(v, spiked, floored)`. The scalar specification the SIMD step mirrors.
#[inline]
pub(super) fn forward_step(
    p: &LifParams,
    vhat: &mut f32,
    c: &mut f32,
    i: f32,
) -> (f32, bool, bool) {
    let theta = p.threshold;
    let u = p.leak * *vhat + i;
    let (v, floored) = match p.floor {
        Floor::None => (u, false),
        Floor::Clamp if u < -theta => (-theta, true),
        Floor::Authors if u < -theta => (theta, true),
        Floor::Clamp | Floor::Authors => (u, false),
    };
    let s = if v > theta { 1.0 } else { 0.0 };
    *vhat = match p.reset {
        Reset::Zero => v - s * v,
        Reset::Subtract => v - s * theta,
    };
    *c = p.leak * (*c + i);
    (v, s == 1.0, floored)
}

/// The surrogate derivative `g` for spike `s` (0 or 1) and potential `v`.
#[inline]
fn surrogate(p: &LifParams, s: f32, v: f32) -> f32 {
    let z = v - p.threshold;
    match p.surrogate {
        Surrogate::Membrane => s / p.threshold,
        Surrogate::FastSigmoid { slope } => {
            let d = slope * z.abs() + 1.0;
            1.0 / (d * d)
        }
        Surrogate::Arctan { slope } => {
            let w = (FRAC_PI_2 * slope) * z;
            (0.5 * slope) / (1.0 + w * w)
        }
        Surrogate::Triangle { slope } => slope * (1.0 - slope * z.abs()).max(0.0),
    }
}

/// One backward step of one neuron: updates `Au` and `Ac` from the step's upstream
/// gradients, spike, floor bit and potential, returns `∂L/∂I[t]`.
#[inline]
#[allow(clippy::too_many_arguments)]
pub(super) fn backward_step(
    p: &LifParams,
    au: &mut f32,
    ac: &mut f32,
    gs: f32,
    gc: f32,
    spiked: bool,
    floored: bool,
    v: f32,
) -> f32 {
    let kappa = p.kappa();
    *ac = gc + kappa * *ac;
    let s = if spiked { 1.0 } else { 0.0 };
    let r = match p.reset {
        Reset::Zero => 1.0 - s,
        Reset::Subtract => 1.0,
    };
    let av = gs * surrogate(p, s, v) + kappa * *au * r;
    *au = if floored { 0.0 } else { av };
    *au + kappa * *ac
}

/// The parameters splatted across eight lanes, once per call.
pub(super) struct Lanes {
    pub(super) p: LifParams,
    leak: f32x8,
    theta: f32x8,
    neg_theta: f32x8,
    kappa: f32x8,
    /// `k` of the surrogate (unused by the membrane one).
    slope: f32x8,
    /// `π·k/2`, for the arctan surrogate.
    arctan_scale: f32x8,
    /// `k/2`, for the arctan surrogate.
    half_slope: f32x8,
}

/// Bit `q` in lane `q`: expands a byte of spike or floor bits into a lane mask.
const LANE_BITS: u32x8 = u32x8::new([1, 2, 4, 8, 16, 32, 64, 128]);

impl Lanes {
    pub(super) fn new(p: &LifParams) -> Self {
        let slope = match p.surrogate {
            Surrogate::Membrane => 0.0,
            Surrogate::FastSigmoid { slope }
            | Surrogate::Arctan { slope }
            | Surrogate::Triangle { slope } => slope,
        };
        Lanes {
            p: *p,
            leak: f32x8::splat(p.leak),
            theta: f32x8::splat(p.threshold),
            neg_theta: f32x8::splat(-p.threshold),
            kappa: f32x8::splat(p.kappa()),
            slope: f32x8::splat(slope),
            arctan_scale: f32x8::splat(FRAC_PI_2 * slope),
            half_slope: f32x8::splat(0.5 * slope),
        }
    }

    /// [`forward_step`] for eight neurons; returns `v` and the spike and floor bits.
    #[inline]
    pub(super) fn forward(&self, vhat: &mut f32x8, c: &mut f32x8, i: f32x8) -> (f32x8, u8, u8) {
        let u = self.leak * *vhat + i;
        let (v, floored) = match self.p.floor {
            Floor::None => (u, f32x8::ZERO),
            Floor::Clamp => {
                let m = u.simd_lt(self.neg_theta);
                (m.select(self.neg_theta, u), m)
            }
            Floor::Authors => {
                let m = u.simd_lt(self.neg_theta);
                (m.select(self.theta, u), m)
            }
        };
        let fired = v.simd_gt(self.theta);
        let s = fired & f32x8::ONE;
        *vhat = match self.p.reset {
            Reset::Zero => v - s * v,
            Reset::Subtract => v - s * self.theta,
        };
        *c = self.leak * (*c + i);
        (v, fired.to_bitmask() as u8, floored.to_bitmask() as u8)
    }

    /// [`surrogate`] for eight neurons.
    #[inline]
    fn surrogate(&self, s: f32x8, v: f32x8) -> f32x8 {
        let z = v - self.theta;
        match self.p.surrogate {
            Surrogate::Membrane => s / self.theta,
            Surrogate::FastSigmoid { .. } => {
                let d = self.slope * z.abs() + f32x8::ONE;
                f32x8::ONE / (d * d)
            }
            Surrogate::Arctan { .. } => {
                let w = self.arctan_scale * z;
                self.half_slope / (f32x8::ONE + w * w)
            }
            Surrogate::Triangle { .. } => {
                self.slope * (f32x8::ONE - self.slope * z.abs()).max(f32x8::ZERO)
            }
        }
    }

    /// [`backward_step`] for eight neurons, spike and floor bits given as bytes.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn backward(
        &self,
        au: &mut f32x8,
        ac: &mut f32x8,
        gs: f32x8,
        gc: f32x8,
        spikes: u8,
        floored: u8,
        v: f32x8,
    ) -> f32x8 {
        *ac = gc + self.kappa * *ac;
        let s = lane_mask(spikes) & f32x8::ONE;
        let r = match self.p.reset {
            Reset::Zero => f32x8::ONE - s,
            Reset::Subtract => f32x8::ONE,
        };
        let av = gs * self.surrogate(s, v) + self.kappa * *au * r;
        *au = lane_mask(floored).select(f32x8::ZERO, av);
        *au + self.kappa * *ac
    }
}

/// All-ones lanes where the byte's bit is set.
#[inline]
pub(super) fn lane_mask(bits: u8) -> f32x8 {
    let hit = (u32x8::splat(u32::from(bits)) & LANE_BITS).simd_eq(LANE_BITS);
    f32x8::from_bits(hit)
}

#[inline]
pub(super) fn load(x: &[f32]) -> f32x8 {
    f32x8::new(x.try_into().expect("a chunk of eight"))
}
