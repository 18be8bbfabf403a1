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

use std::f32::consts::FRAC_PI_2;

use rayon::prelude::*;
use wide::{f32x8, u32x8};

mod trace;

pub use trace::LifTrace;

/// Inputs with fewer neuron-steps than this run on the calling thread: below it a
/// fork/join costs more than the kernel.
const PAR_MIN_LEN: usize = 1 << 15;

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
    fn needs_potential(&self) -> bool {
        self.surrogate != Surrogate::Membrane
    }

    /// `κ`: the backward factor of both leaks and of `∂c/∂I`.
    fn kappa(&self) -> f32 {
        match self.surrogate {
            Surrogate::Membrane => 1.0,
            _ => self.leak,
        }
    }
}

/// One forward step of one neuron: updates `v̂` and `c` with input `i`, returns
/// `(v, spiked, floored)`. The scalar specification the SIMD step mirrors.
#[inline]
fn forward_step(p: &LifParams, vhat: &mut f32, c: &mut f32, i: f32) -> (f32, bool, bool) {
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
fn backward_step(
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
struct Lanes {
    p: LifParams,
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
    fn new(p: &LifParams) -> Self {
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
    fn forward(&self, vhat: &mut f32x8, c: &mut f32x8, i: f32x8) -> (f32x8, u8, u8) {
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
    fn backward(
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
fn lane_mask(bits: u8) -> f32x8 {
    let hit = (u32x8::splat(u32::from(bits)) & LANE_BITS).simd_eq(LANE_BITS);
    f32x8::from_bits(hit)
}

#[inline]
fn load(x: &[f32]) -> f32x8 {
    f32x8::new(x.try_into().expect("a chunk of eight"))
}

/// Panics unless the slices match `steps × neurons`.
fn check_len(kernel: &str, what: &str, len: usize, steps: usize, neurons: usize) {
    assert!(
        len == steps * neurons,
        "{kernel}: {what} has {len} values, but T·N = {steps}·{neurons} = {}",
        steps * neurons
    );
}

/// Cuts a time-major `[T, N]` buffer into per-chunk column pieces: entry `k` holds, for
/// every row `t`, that row's piece for chunk `k`. This is how tasks write disjoint,
/// strided regions of one output without `unsafe`.
fn split_columns(buf: &mut [f32], neurons: usize, chunk: usize) -> Vec<Vec<&mut [f32]>> {
    let chunks = neurons.div_ceil(chunk);
    let steps = buf.len() / neurons;
    let mut pieces: Vec<Vec<&mut [f32]>> = (0..chunks).map(|_| Vec::with_capacity(steps)).collect();
    for row in buf.chunks_exact_mut(neurons) {
        for (k, piece) in row.chunks_mut(chunk).enumerate() {
            pieces[k].push(piece);
        }
    }
    pieces
}

/// `buf` cut into `size`-long pieces, or `chunks` empty pieces when there is no buffer.
fn split_or_empty<T>(buf: Option<&mut [T]>, size: usize, chunks: usize) -> Vec<&mut [T]> {
    match buf {
        Some(buf) => buf.chunks_mut(size).collect(),
        None => (0..chunks).map(|_| Default::default()).collect(),
    }
}

/// Read-only [`split_or_empty`].
fn pieces_or_empty<T>(buf: Option<&[T]>, size: usize, chunks: usize) -> Vec<&[T]> {
    match buf {
        Some(buf) => buf.chunks(size).collect(),
        None => vec![&[][..]; chunks],
    }
}

/// Runs `f(k, task)` for every task, on the rayon pool when the job is large enough.
fn run_tasks<T: Send>(tasks: Vec<T>, work: usize, f: impl Fn((usize, T)) + Sync + Send) {
    if tasks.len() > 1 && work >= PAR_MIN_LEN {
        tasks.into_par_iter().enumerate().for_each(f);
    } else {
        tasks.into_iter().enumerate().for_each(f);
    }
}

/// The state a layer of LIF neurons carries from one step to the next: the reset
/// potential `v̂` and the leaky cumulative potential `c`, one each per neuron. Starting
/// from [`LifState::new`] (all zero) is the recurrence's `v̂[−1] = c[−1] = 0`; passing
/// the state one call leaves to the next runs a long time axis in tiles, with the same
/// results as one call over all of it.
#[derive(Clone, Debug, PartialEq)]
pub struct LifState {
    vhat: Vec<f32>,
    c: Vec<f32>,
}

impl LifState {
    /// The resting state of `neurons` neurons.
    pub fn new(neurons: usize) -> Self {
        LifState {
            vhat: vec![0.0; neurons],
            c: vec![0.0; neurons],
        }
    }

    /// Number of neurons.
    pub fn neurons(&self) -> usize {
        self.vhat.len()
    }

    /// `v̂` after the last step run.
    pub fn reset_potential(&self) -> &[f32] {
        &self.vhat
    }

    /// `c` after the last step run.
    pub fn cumulative(&self) -> &[f32] {
        &self.c
    }
}

/// What the backward pass carries from one step to the one before, per neuron: the
/// adjoints `Au` and `Ac` of the [module docs](self). [`LifAdjoint::new`] (all zero) is
/// `Au[T] = Ac[T] = 0`; passing the adjoint one tile's backward leaves to the backward of
/// the tile before runs a long time axis backward in tiles, with the same results as one
/// call.
#[derive(Clone, Debug, PartialEq)]
pub struct LifAdjoint {
    au: Vec<f32>,
    ac: Vec<f32>,
}

impl LifAdjoint {
    /// The adjoint after the last step of a run: zero for `neurons` neurons.
    pub fn new(neurons: usize) -> Self {
        LifAdjoint {
            au: vec![0.0; neurons],
            ac: vec![0.0; neurons],
        }
    }

    /// The adjoint from its parts, `Au` and `Ac`.
    ///
    /// # Panics
    /// If the two are not of one length.
    pub fn from_parts(au: Vec<f32>, ac: Vec<f32>) -> Self {
        assert_eq!(
            au.len(),
            ac.len(),
            "LifAdjoint: Au and Ac of unequal length"
        );
        LifAdjoint { au, ac }
    }

    /// `(Au, Ac)`, consuming the adjoint.
    pub fn into_parts(self) -> (Vec<f32>, Vec<f32>) {
        (self.au, self.ac)
    }

    /// Number of neurons.
    pub fn neurons(&self) -> usize {
        self.au.len()
    }
}

impl LifState {
    /// The state from its parts, `v̂` and `c`.
    ///
    /// # Panics
    /// If the two are not of one length.
    pub fn from_parts(vhat: Vec<f32>, c: Vec<f32>) -> Self {
        assert_eq!(vhat.len(), c.len(), "LifState: v̂ and c of unequal length");
        LifState { vhat, c }
    }

    /// `(v̂, c)`, consuming the state.
    pub fn into_parts(self) -> (Vec<f32>, Vec<f32>) {
        (self.vhat, self.c)
    }
}

/// Multi-step LIF forward over `current[T·N]` (time-major) from rest: writes the leaky
/// cumulative potential `c[t]` for every step into `c[T·N]` (or only `c[T−1]`, when `c`
/// holds `N` values) and returns the trace the backward pass needs. See the [module
/// docs](self) for the recurrence.
///
/// # Panics
/// If `current` does not hold `steps·neurons` values, or `c` neither `steps·neurons` nor
/// `neurons`.
pub fn lif_forward(
    p: &LifParams,
    steps: usize,
    neurons: usize,
    current: &[f32],
    c: &mut [f32],
) -> LifTrace {
    forward(p, steps, neurons, current, c, None)
}

/// [`lif_forward`] from `state` instead of rest, leaving in `state` where the neurons are
/// after the last step: one time tile of a longer run.
///
/// # Panics
/// As [`lif_forward`], and if `state` is not of `neurons` neurons.
pub fn lif_forward_from(
    p: &LifParams,
    steps: usize,
    neurons: usize,
    current: &[f32],
    c: &mut [f32],
    state: &mut LifState,
) -> LifTrace {
    check_state("lif_forward_from", state, neurons);
    forward(p, steps, neurons, current, c, Some(state))
}

/// [`lif_forward_from`], or [`lif_forward`] from rest when there is no `state` (then no
/// state buffer is made: the chunks start from zeros in registers).
fn forward(
    p: &LifParams,
    steps: usize,
    neurons: usize,
    current: &[f32],
    c: &mut [f32],
    state: Option<&mut LifState>,
) -> LifTrace {
    check_len("lif_forward", "current", current.len(), steps, neurons);
    if c.len() != neurons || steps == 0 {
        check_len("lif_forward", "c", c.len(), steps, neurons);
    }
    let mut trace = LifTrace::new(p, steps, neurons);
    if steps * neurons == 0 {
        return trace;
    }
    let (chunk, chunks) = (trace.chunk, trace.chunks());
    let bits = steps * chunk / 8;
    let c_pieces = split_columns(c, neurons, chunk);
    let spikes = trace.spikes.chunks_mut(bits).collect::<Vec<_>>();
    let floored = split_or_empty(trace.floored.as_deref_mut(), bits, chunks);
    let potential = split_or_empty(trace.potential.as_deref_mut(), steps * chunk, chunks);
    let states: Vec<Carried<'_>> = match state {
        Some(st) => (st.vhat.chunks_mut(chunk).zip(st.c.chunks_mut(chunk)))
            .map(Some)
            .collect(),
        None => (0..chunks).map(|_| None).collect(),
    };
    let tasks = (c_pieces.into_iter().zip(spikes))
        .zip(floored.into_iter().zip(potential))
        .zip(states)
        .collect::<Vec<_>>();
    let lanes = Lanes::new(p);
    run_tasks(
        tasks,
        steps * neurons,
        |(k, (((mut c, s), (f, v)), state))| {
            let out = ChunkOut {
                c: &mut c,
                spikes: s,
                floored: f,
                potential: v,
            };
            forward_chunk(&lanes, steps, neurons, k * chunk, current, out, state);
        },
    );
    trace
}

/// Panics unless `state` holds `neurons` neurons.
fn check_state(kernel: &str, state: &LifState, neurons: usize) {
    assert_eq!(
        state.neurons(),
        neurons,
        "{kernel}: the state holds {} neurons, the layer {neurons}",
        state.neurons()
    );
}

/// One forward task's outputs: `c[t]` is row `t`'s piece of `c` for the chunk, the rest
/// the chunk's regions of the trace (`floored`, `potential` empty when not recorded).
struct ChunkOut<'a, 'b> {
    c: &'a mut [&'b mut [f32]],
    spikes: &'a mut [u8],
    floored: &'a mut [u8],
    potential: &'a mut [f32],
}

/// The forward pass for the chunk of `m` neurons starting at `i0`, from rest or from the
/// chunk's `(v̂, c)` in `start`, which it leaves where the neurons end. The state of the whole
/// chunk (eight neurons to a vector pair) lives in a task-local buffer while the chunk
/// walks all steps, so each step reads and writes one contiguous run per row.
fn forward_chunk(
    l: &Lanes,
    steps: usize,
    n: usize,
    i0: usize,
    current: &[f32],
    out: ChunkOut<'_, '_>,
    mut start: Carried<'_>,
) {
    let m = out.c[0].len();
    let (groups, tail, row_bytes) = (m / 8, m % 8, m.div_ceil(8));
    let (keep_floor, keep_v) = (!out.floored.is_empty(), !out.potential.is_empty());
    // Where the parts the trace does not keep go, so that one loop serves every case.
    let mut v_scratch = vec![0.0; if keep_v { 0 } else { m }];
    let mut floor_scratch = vec![0; if keep_floor { 0 } else { row_bytes }];
    let mut state = vec![(f32x8::ZERO, f32x8::ZERO); groups];
    let (mut vhat_tail, mut cum_tail) = ([0.0; 8], [0.0; 8]);
    if let Some((vhat0, c0)) = &start {
        let from = vhat0.chunks_exact(8).zip(c0.chunks_exact(8));
        for ((v, c), (vhat, cum)) in from.zip(&mut state) {
            (*vhat, *cum) = (load(v), load(c));
        }
        vhat_tail[..tail].copy_from_slice(&vhat0[groups * 8..]);
        cum_tail[..tail].copy_from_slice(&c0[groups * 8..]);
    }
    for t in 0..steps {
        let input = &current[t * n + i0..][..m];
        // With one row of c (only c[T−1] wanted), every step overwrites it.
        let c_out = &mut *out.c[t.min(out.c.len() - 1)];
        let spikes = &mut out.spikes[t * row_bytes..][..row_bytes];
        let floored = match keep_floor {
            true => &mut out.floored[t * row_bytes..][..row_bytes],
            false => &mut floor_scratch[..],
        };
        let v_out = match keep_v {
            true => &mut out.potential[t * m..][..m],
            false => &mut v_scratch[..],
        };
        let lanes = (input.chunks_exact(8).zip(c_out.chunks_exact_mut(8)))
            .zip(v_out.chunks_exact_mut(8))
            .zip(spikes.iter_mut().zip(floored.iter_mut()))
            .zip(state.iter_mut());
        for ((((i, c), v), (s, f)), (vhat, cum)) in lanes {
            let (vt, sb, fb) = l.forward(vhat, cum, load(i));
            c.copy_from_slice(cum.as_array());
            v.copy_from_slice(vt.as_array());
            (*s, *f) = (sb, fb);
        }
        if tail > 0 {
            let at = groups * 8;
            let (mut sb, mut fb) = (0, 0);
            for q in 0..tail {
                let (v, s, f) =
                    forward_step(&l.p, &mut vhat_tail[q], &mut cum_tail[q], input[at + q]);
                (c_out[at + q], v_out[at + q]) = (cum_tail[q], v);
                sb |= u8::from(s) << q;
                fb |= u8::from(f) << q;
            }
            (spikes[groups], floored[groups]) = (sb, fb);
        }
    }
    if let Some((vhat0, c0)) = &mut start {
        let ends = vhat0.chunks_exact_mut(8).zip(c0.chunks_exact_mut(8));
        for ((v, c), (vhat, cum)) in ends.zip(&state) {
            v.copy_from_slice(vhat.as_array());
            c.copy_from_slice(cum.as_array());
        }
        vhat0[groups * 8..].copy_from_slice(&vhat_tail[..tail]);
        c0[groups * 8..].copy_from_slice(&cum_tail[..tail]);
    }
}

/// Reference for [`lif_forward`]: the recurrence one neuron at a time, one step at a time.
///
/// # Panics
/// If `current` or `c` does not hold `steps·neurons` values.
pub fn lif_forward_ref(
    p: &LifParams,
    steps: usize,
    neurons: usize,
    current: &[f32],
    c: &mut [f32],
) -> LifTrace {
    lif_forward_from_ref(p, steps, neurons, current, c, &mut LifState::new(neurons))
}

/// Reference for [`lif_forward_from`].
///
/// # Panics
/// If `current` or `c` does not hold `steps·neurons` values, or `state` is not of
/// `neurons` neurons.
pub fn lif_forward_from_ref(
    p: &LifParams,
    steps: usize,
    neurons: usize,
    current: &[f32],
    c: &mut [f32],
    state: &mut LifState,
) -> LifTrace {
    check_len("lif_forward_ref", "current", current.len(), steps, neurons);
    check_len("lif_forward_ref", "c", c.len(), steps, neurons);
    check_state("lif_forward_from_ref", state, neurons);
    let mut trace = LifTrace::new(p, steps, neurons);
    for i in 0..neurons {
        let (vhat, cum) = (&mut state.vhat[i], &mut state.c[i]);
        for t in 0..steps {
            let (v, spiked, floored) = forward_step(p, vhat, cum, current[t * neurons + i]);
            c[t * neurons + i] = *cum;
            let (byte, bit) = trace.bit_index(t, i);
            if spiked {
                trace.spikes[byte] |= bit;
            }
            if let Some(f) = trace.floored.as_mut().filter(|_| floored) {
                f[byte] |= bit;
            }
            let at = trace.value_index(t, i);
            if let Some(potential) = trace.potential.as_mut() {
                potential[at] = v;
            }
        }
    }
    trace
}

/// Panics unless `trace` was recorded by a forward pass `p`'s backward can use: same
/// shape as the gradients, same leak, threshold, reset and floor, and the potential kept
/// if `p`'s surrogate reads it.
fn check_backward(
    kernel: &str,
    p: &LifParams,
    trace: &LifTrace,
    grads: [Option<&[f32]>; 2],
    grad_current: &[f32],
) {
    let (steps, n) = (trace.steps, trace.neurons);
    for (what, g) in ["grad_spikes", "grad_c"].into_iter().zip(grads) {
        if let Some(g) = g {
            check_len(kernel, what, g.len(), steps, n);
        }
    }
    check_len(kernel, "grad_current", grad_current.len(), steps, n);
    let q = &trace.params;
    assert!(
        (q.leak, q.threshold, q.reset, q.floor) == (p.leak, p.threshold, p.reset, p.floor),
        "{kernel}: trace recorded with {q:?}, backward called with {p:?}"
    );
    assert!(
        !p.needs_potential() || trace.potential.is_some(),
        "{kernel}: surrogate {:?} needs v[t], but the trace was recorded for {:?}",
        p.surrogate,
        q.surrogate
    );
}

/// Multi-step LIF backward: from the upstream gradients `∂L/∂s` (`grad_spikes`) and
/// `∂L/∂c` (`grad_c`), each `[T·N]` or absent (zeros), overwrites `grad_current[T·N]` with
/// `∂L/∂I`. See the [module docs](self) for the recurrence.
///
/// # Panics
/// If a slice does not hold `T·N` values, or `trace` was recorded with a different leak,
/// threshold, reset or floor, or without `v[t]` when `p`'s surrogate needs it.
pub fn lif_backward(
    p: &LifParams,
    trace: &LifTrace,
    grad_spikes: Option<&[f32]>,
    grad_c: Option<&[f32]>,
    grad_current: &mut [f32],
) {
    let grads = [grad_spikes, grad_c];
    backward(p, trace, grads, grad_current, None)
}

/// [`lif_backward`] of one time tile of a longer run: starts from the `adjoint` the tile
/// after it left (or [`LifAdjoint::new`] for the last tile) and leaves in it the adjoint
/// at the tile's first step, for the tile before.
///
/// # Panics
/// As [`lif_backward`], and if `adjoint` is not of the trace's neurons.
pub fn lif_backward_from(
    p: &LifParams,
    trace: &LifTrace,
    grad_spikes: Option<&[f32]>,
    grad_c: Option<&[f32]>,
    grad_current: &mut [f32],
    adjoint: &mut LifAdjoint,
) {
    check_adjoint("lif_backward_from", adjoint, trace.neurons);
    let grads = [grad_spikes, grad_c];
    backward(p, trace, grads, grad_current, Some(adjoint))
}

/// Panics unless `adjoint` holds `neurons` neurons.
fn check_adjoint(kernel: &str, adjoint: &LifAdjoint, neurons: usize) {
    assert_eq!(
        adjoint.neurons(),
        neurons,
        "{kernel}: the adjoint holds {} neurons, the layer {neurons}",
        adjoint.neurons()
    );
}

/// [`lif_backward_from`], or [`lif_backward`] from a zero adjoint when there is none.
fn backward(
    p: &LifParams,
    trace: &LifTrace,
    [grad_spikes, grad_c]: [Option<&[f32]>; 2],
    grad_current: &mut [f32],
    adjoint: Option<&mut LifAdjoint>,
) {
    check_backward(
        "lif_backward",
        p,
        trace,
        [grad_spikes, grad_c],
        grad_current,
    );
    let (steps, neurons) = (trace.steps, trace.neurons);
    if steps * neurons == 0 {
        return;
    }
    let (chunk, chunks) = (trace.chunk, trace.chunks());
    let bits = steps * chunk / 8;
    let floored = (p.floor != Floor::None).then(|| &trace.floored.as_ref().expect("checked")[..]);
    let potential = trace.potential.as_deref().filter(|_| p.needs_potential());
    let inputs = trace
        .spikes
        .chunks(bits)
        .zip(pieces_or_empty(floored, bits, chunks))
        .zip(pieces_or_empty(potential, steps * chunk, chunks));
    let adjoints: Vec<Carried<'_>> = match adjoint {
        Some(a) => (a.au.chunks_mut(chunk).zip(a.ac.chunks_mut(chunk)))
            .map(Some)
            .collect(),
        None => (0..chunks).map(|_| None).collect(),
    };
    let tasks = inputs
        .zip(split_columns(grad_current, neurons, chunk))
        .zip(adjoints)
        .collect::<Vec<_>>();
    let lanes = Lanes::new(p);
    let grads = [grad_spikes, grad_c];
    run_tasks(
        tasks,
        steps * neurons,
        |(k, ((((s, f), v), mut gi), adjoint))| {
            let record = ChunkTrace {
                spikes: s,
                floored: f,
                potential: v,
            };
            let at = (k * chunk, adjoint);
            backward_chunk(&lanes, steps, neurons, at, record, grads, &mut gi);
        },
    );
}

/// One backward task's view of its chunk of the trace (`floored`, `potential` empty when
/// the backward does not read them).
struct ChunkTrace<'a> {
    spikes: &'a [u8],
    floored: &'a [u8],
    potential: &'a [f32],
}

/// A chunk's piece of a carried pair of per-neuron buffers, `(v̂, c)` forward or
/// `(Au, Ac)` backward; none when the run starts from zero.
type Carried<'a> = Option<(&'a mut [f32], &'a mut [f32])>;

/// The backward pass for the chunk of `m` neurons starting at `i0`, its state (`Au` and
/// `Ac`) in a task-local buffer as in [`forward_chunk`], from zero or from the chunk's
/// carried adjoint, which it leaves at the first step; `gi[t]` is row `t`'s piece of
/// `grad_current` for the chunk.
fn backward_chunk(
    l: &Lanes,
    steps: usize,
    n: usize,
    (i0, mut carry): (usize, Carried<'_>),
    trace: ChunkTrace<'_>,
    [grad_spikes, grad_c]: [Option<&[f32]>; 2],
    gi: &mut [&mut [f32]],
) {
    let m = gi[0].len();
    let (groups, tail, row_bytes) = (m / 8, m % 8, m.div_ceil(8));
    let (keep_floor, keep_v) = (!trace.floored.is_empty(), !trace.potential.is_empty());
    // Stand-ins for absent gradients and unread trace parts: zeros (not floored).
    let need_zeros = grad_spikes.is_none() || grad_c.is_none() || !keep_v;
    let zeros = vec![0.0; if need_zeros { m } else { 0 }];
    let no_floor = vec![0; if keep_floor { 0 } else { row_bytes }];
    let mut state = vec![(f32x8::ZERO, f32x8::ZERO); groups];
    let (mut au_tail, mut ac_tail) = ([0.0; 8], [0.0; 8]);
    if let Some((au0, ac0)) = &carry {
        let from = au0.chunks_exact(8).zip(ac0.chunks_exact(8));
        for ((u, c), (au, ac)) in from.zip(&mut state) {
            (*au, *ac) = (load(u), load(c));
        }
        au_tail[..tail].copy_from_slice(&au0[groups * 8..]);
        ac_tail[..tail].copy_from_slice(&ac0[groups * 8..]);
    }
    for t in (0..steps).rev() {
        let at = t * n + i0;
        let gs = grad_spikes.map_or(&zeros[..], |g| &g[at..][..m]);
        let gc = grad_c.map_or(&zeros[..], |g| &g[at..][..m]);
        let spikes = &trace.spikes[t * row_bytes..][..row_bytes];
        let floored = match keep_floor {
            true => &trace.floored[t * row_bytes..][..row_bytes],
            false => &no_floor[..],
        };
        let v = match keep_v {
            true => &trace.potential[t * m..][..m],
            false => &zeros[..],
        };
        let out = &mut *gi[t];
        let lanes = (gs.chunks_exact(8).zip(gc.chunks_exact(8)))
            .zip(v.chunks_exact(8).zip(out.chunks_exact_mut(8)))
            .zip(spikes.iter().zip(floored))
            .zip(state.iter_mut());
        for ((((gs, gc), (v, out)), (&s, &f)), (au, ac)) in lanes {
            let g = l.backward(au, ac, load(gs), load(gc), s, f, load(v));
            out.copy_from_slice(g.as_array());
        }
        if tail > 0 {
            let at = groups * 8;
            let (sb, fb) = (spikes[groups], floored[groups]);
            for q in 0..tail {
                let j = at + q;
                out[j] = backward_step(
                    &l.p,
                    &mut au_tail[q],
                    &mut ac_tail[q],
                    gs[j],
                    gc[j],
                    (sb >> q) & 1 != 0,
                    (fb >> q) & 1 != 0,
                    v[j],
                );
            }
        }
    }
    if let Some((au0, ac0)) = &mut carry {
        let ends = au0.chunks_exact_mut(8).zip(ac0.chunks_exact_mut(8));
        for ((u, c), (au, ac)) in ends.zip(&state) {
            u.copy_from_slice(au.as_array());
            c.copy_from_slice(ac.as_array());
        }
        au0[groups * 8..].copy_from_slice(&au_tail[..tail]);
        ac0[groups * 8..].copy_from_slice(&ac_tail[..tail]);
    }
}

/// Reference for [`lif_backward`]: the reverse recurrence one neuron at a time.
///
/// # Panics
/// As [`lif_backward`].
pub fn lif_backward_ref(
    p: &LifParams,
    trace: &LifTrace,
    grad_spikes: Option<&[f32]>,
    grad_c: Option<&[f32]>,
    grad_current: &mut [f32],
) {
    let n = trace.neurons;
    lif_backward_from_ref(
        p,
        trace,
        grad_spikes,
        grad_c,
        grad_current,
        &mut LifAdjoint::new(n),
    )
}

/// Reference for [`lif_backward_from`].
///
/// # Panics
/// As [`lif_backward_from`].
pub fn lif_backward_from_ref(
    p: &LifParams,
    trace: &LifTrace,
    grad_spikes: Option<&[f32]>,
    grad_c: Option<&[f32]>,
    grad_current: &mut [f32],
    adjoint: &mut LifAdjoint,
) {
    check_backward(
        "lif_backward_ref",
        p,
        trace,
        [grad_spikes, grad_c],
        grad_current,
    );
    check_adjoint("lif_backward_from_ref", adjoint, trace.neurons);
    let (steps, n) = (trace.steps, trace.neurons);
    for i in 0..n {
        let (au, ac) = (&mut adjoint.au[i], &mut adjoint.ac[i]);
        for t in (0..steps).rev() {
            let at = t * n + i;
            let gs = grad_spikes.map_or(0.0, |g| g[at]);
            let gc = grad_c.map_or(0.0, |g| g[at]);
            let floored = trace.floored(t, i).unwrap_or(false);
            let v = if p.needs_potential() {
                trace.potential(t, i).expect("checked")
            } else {
                0.0
            };
            grad_current[at] = backward_step(p, au, ac, gs, gc, trace.spike(t, i), floored, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::trace::MAX_CHUNK;
    use super::*;
    use crate::testutil::{bits, on_threads, random_vec};
    use proptest::prelude::*;

    const RESETS: [Reset; 2] = [Reset::Zero, Reset::Subtract];
    const FLOORS: [Floor; 3] = [Floor::None, Floor::Clamp, Floor::Authors];

    fn surrogates(slope: f32) -> [Surrogate; 4] {
        [
            Surrogate::Membrane,
            Surrogate::FastSigmoid { slope },
            Surrogate::Arctan { slope },
            Surrogate::Triangle { slope },
        ]
    }

    /// Every reset × floor × surrogate combination around `leak`, `threshold`.
    fn all_params(leak: f32, threshold: f32, slope: f32) -> Vec<LifParams> {
        let mut all = Vec::new();
        for reset in RESETS {
            for floor in FLOORS {
                for surrogate in surrogates(slope) {
                    all.push(LifParams {
                        leak,
                        threshold,
                        reset,
                        floor,
                        surrogate,
                    });
                }
            }
        }
        all
    }

    /// Runs fast and reference forward and backward on `current` and asserts they agree
    /// bit for bit (traces, `c`, gradients); returns the fast outputs.
    fn check(
        p: &LifParams,
        steps: usize,
        n: usize,
        current: &[f32],
        grads: [Option<&[f32]>; 2],
    ) -> (LifTrace, Vec<f32>, Vec<f32>) {
        let (mut c, mut c_ref) = (vec![f32::NAN; steps * n], vec![f32::NAN; steps * n]);
        let trace = lif_forward(p, steps, n, current, &mut c);
        let trace_ref = lif_forward_ref(p, steps, n, current, &mut c_ref);
        assert_eq!(bits(&c), bits(&c_ref), "c differs for {p:?}");
        assert!(trace == trace_ref, "trace differs for {p:?}");
        let mut counts = vec![f32::NAN; n];
        trace.counts_into(&mut counts);
        for (i, &count) in counts.iter().enumerate() {
            let want = (0..steps).filter(|&t| trace_ref.spike(t, i)).count();
            assert_eq!(count, want as f32, "count of neuron {i}");
        }
        // Asking for c[T−1] only gives the same last row and the same trace.
        let mut last = vec![f32::NAN; n];
        if steps > 0 {
            assert!(lif_forward(p, steps, n, current, &mut last) == trace_ref);
            assert_eq!(
                bits(&last),
                bits(&c_ref[(steps - 1) * n..]),
                "c[T−1] differs"
            );
        }
        let (mut gi, mut gi_ref) = (vec![f32::NAN; steps * n], vec![f32::NAN; steps * n]);
        lif_backward(p, &trace, grads[0], grads[1], &mut gi);
        lif_backward_ref(p, &trace_ref, grads[0], grads[1], &mut gi_ref);
        assert_eq!(bits(&gi), bits(&gi_ref), "grad_current differs for {p:?}");
        (trace, c, gi)
    }

    /// Random currents of the given scale around the threshold, and random gradients.
    fn random_case(steps: usize, n: usize, scale: f32, seed: u64) -> [Vec<f32>; 3] {
        let current = random_vec(steps * n, seed)
            .into_iter()
            .map(|x| scale * x + 0.3)
            .collect();
        [
            current,
            random_vec(steps * n, seed + 1),
            random_vec(steps * n, seed + 2),
        ]
    }

    /// Spikes `[T·N]` of a trace as 0/1 bytes, to concatenate tiles.
    fn spike_rows(trace: &LifTrace) -> Vec<u8> {
        let (steps, n) = (trace.steps(), trace.neurons());
        (0..steps * n)
            .map(|k| u8::from(trace.spike(k / n, k % n)))
            .collect()
    }

    /// Runs `current` in time tiles of the given lengths with the state carried, fast and
    /// reference, and checks both against one call over all steps.
    fn check_tiles(p: &LifParams, n: usize, current: &[f32], tiles: &[usize]) {
        let steps: usize = tiles.iter().sum();
        let mut c_whole = vec![f32::NAN; steps * n];
        let whole = lif_forward_ref(p, steps, n, current, &mut c_whole);
        let (mut state, mut state_ref) = (LifState::new(n), LifState::new(n));
        let (mut c_tiles, mut spikes, mut traces) = (Vec::new(), Vec::new(), Vec::new());
        let mut t0 = 0;
        for &len in tiles {
            let input = &current[t0 * n..(t0 + len) * n];
            let (mut c, mut c_ref) = (vec![f32::NAN; len * n], vec![f32::NAN; len * n]);
            let trace = lif_forward_from(p, len, n, input, &mut c, &mut state);
            let trace_ref = lif_forward_from_ref(p, len, n, input, &mut c_ref, &mut state_ref);
            assert_eq!(bits(&c), bits(&c_ref), "tile c differs for {p:?}");
            assert!(trace == trace_ref, "tile trace differs for {p:?}");
            assert_eq!(state, state_ref, "carried state differs for {p:?}");
            for t in 0..len {
                for i in 0..n {
                    if let (Some(a), Some(b)) = (trace.potential(t, i), whole.potential(t0 + t, i))
                    {
                        assert_eq!(a.to_bits(), b.to_bits(), "v[{}] of {i}", t0 + t);
                    }
                }
            }
            c_tiles.extend_from_slice(&c);
            spikes.extend(spike_rows(&trace));
            traces.push((t0, trace));
            t0 += len;
        }
        // Backward, last tile first, the adjoint carried: the same gradient as one call.
        let (gs, gc) = (random_vec(steps * n, 91), random_vec(steps * n, 92));
        let mut gi_whole = vec![f32::NAN; steps * n];
        lif_backward_ref(p, &whole, Some(&gs), Some(&gc), &mut gi_whole);
        let mut gi_tiles = vec![f32::NAN; steps * n];
        let (mut adjoint, mut adjoint_ref) = (LifAdjoint::new(n), LifAdjoint::new(n));
        for (t0, trace) in traces.iter().rev() {
            let rows = t0 * n..(t0 + trace.steps()) * n;
            let (gs, gc) = (&gs[rows.clone()], &gc[rows.clone()]);
            let mut gi_ref = vec![f32::NAN; rows.len()];
            let gi = &mut gi_tiles[rows];
            lif_backward_from(p, trace, Some(gs), Some(gc), gi, &mut adjoint);
            lif_backward_from_ref(p, trace, Some(gs), Some(gc), &mut gi_ref, &mut adjoint_ref);
            assert_eq!(bits(gi), bits(&gi_ref), "tile gradient differs for {p:?}");
            assert_eq!(adjoint, adjoint_ref, "carried adjoint differs for {p:?}");
        }
        assert_eq!(
            bits(&gi_tiles),
            bits(&gi_whole),
            "tiled gradient differs for {p:?}"
        );
        assert_eq!(bits(&c_tiles), bits(&c_whole), "tiled c differs for {p:?}");
        assert_eq!(spikes, spike_rows(&whole), "tiled spikes differ for {p:?}");
        if steps > 0 && n > 0 {
            let last = &c_whole[(steps - 1) * n..];
            assert_eq!(bits(state.cumulative()), bits(last));
        }
    }

    #[test]
    fn time_tiles_with_the_state_and_adjoint_carried_match_one_call() {
        for p in all_params(0.9, 0.6, 2.0) {
            for (n, tiles) in [
                (13usize, &[3usize, 5, 1][..]),
                (8, &[4, 4]),
                (37, &[1, 0, 6]),
                (MAX_CHUNK + 9, &[2, 3]),
            ] {
                let steps: usize = tiles.iter().sum();
                let current: Vec<f32> = random_vec(steps * n, n as u64)
                    .into_iter()
                    .map(|x| 0.25 + 0.75 * x)
                    .collect();
                check_tiles(&p, n, &current, tiles);
            }
        }
    }

    #[test]
    #[should_panic(expected = "lif_backward_from: the adjoint holds 3 neurons, the layer 5")]
    fn an_adjoint_of_another_layer_is_refused() {
        let p = all_params(0.9, 0.6, 2.0)[0];
        let mut c = vec![0.0; 5];
        let trace = lif_forward(&p, 1, 5, &[0.0; 5], &mut c);
        let mut gi = vec![0.0; 5];
        lif_backward_from(&p, &trace, None, None, &mut gi, &mut LifAdjoint::new(3));
    }

    #[test]
    #[should_panic(expected = "lif_forward_from: the state holds 4 neurons, the layer 5")]
    fn a_state_of_another_layer_is_refused() {
        let p = all_params(0.9, 0.6, 2.0)[0];
        let mut c = vec![0.0; 5];
        lif_forward_from(&p, 1, 5, &[0.0; 5], &mut c, &mut LifState::new(4));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn matches_reference(
            steps in 1usize..12, n in 0usize..300, scale in 0.1f32..4.0,
            leak in prop_oneof![Just(0.0f32), Just(1.0f32), 0.5f32..1.0],
            threshold in 0.25f32..2.0, slope in 0.5f32..10.0,
            which_grads in 0usize..4, seed in any::<u64>(),
        ) {
            let [current, gs, gc] = random_case(steps, n, scale, seed);
            let gs = (which_grads & 1 != 0).then_some(&gs[..]);
            let gc = (which_grads & 2 != 0).then_some(&gc[..]);
            for p in all_params(leak, threshold, slope) {
                check(&p, steps, n, &current, [gs, gc]);
            }
        }
    }

    #[test]
    fn large_layer_matches_reference_across_chunks_and_tails() {
        // 9 chunks of 1024 neurons, the last one 941 long: 117 lanes of 8 and a tail of 5.
        let (steps, n) = (7, 9133);
        let [current, gs, gc] = random_case(steps, n, 2.0, 11);
        for p in all_params(0.9, 1.0, 5.0) {
            check(&p, steps, n, &current, [Some(&gs), Some(&gc)]);
        }
        // Chunks capped at MAX_CHUNK, the last one 13 long.
        let (steps, n) = (2, 16 * MAX_CHUNK + 13);
        let [current, gs, gc] = random_case(steps, n, 2.0, 12);
        for p in all_params(0.9, 1.0, 5.0) {
            check(&p, steps, n, &current, [Some(&gs), Some(&gc)]);
        }
    }

    #[test]
    fn edge_shapes() {
        let p = LifParams::PAPER;
        for (steps, n) in [
            (0, 0),
            (0, 5),
            (5, 0),
            (1, 1),
            (1, 8),
            (1, 9),
            (3, 1),
            (1, 1000),
        ] {
            let [current, gs, gc] = random_case(steps, n, 2.0, 5);
            let (trace, ..) = check(&p, steps, n, &current, [Some(&gs), Some(&gc)]);
            assert_eq!((trace.steps(), trace.neurons()), (steps, n));
        }
    }

    #[test]
    fn zero_current_never_fires_and_huge_current_always_fires() {
        let (steps, n) = (9, 37);
        for p in all_params(0.95, 1.0, 4.0) {
            let (trace, c, _) = check(&p, steps, n, &vec![0.0; steps * n], [None, None]);
            assert_eq!(trace.total_spikes(), 0);
            assert!(c.iter().all(|&c| c == 0.0));

            let (trace, _, _) = check(&p, steps, n, &vec![1e6; steps * n], [None, None]);
            assert_eq!(trace.total_spikes(), (steps * n) as u64);
            let mut spikes = vec![0.0; steps * n];
            trace.spikes_into(&mut spikes);
            assert!(spikes.iter().all(|&s| s == 1.0));
        }
    }

    #[test]
    fn no_upstream_gradient_gives_zero_gradient() {
        let (steps, n) = (6, 19);
        let [current, ..] = random_case(steps, n, 2.0, 3);
        for p in all_params(0.9, 1.0, 4.0) {
            let (_, _, gi) = check(&p, steps, n, &current, [None, None]);
            assert!(gi.iter().all(|&g| g == 0.0), "{p:?}");
        }
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let (steps, n) = (5, 12301);
        let [current, gs, gc] = random_case(steps, n, 2.0, 21);
        let run = |threads: usize, p: &LifParams| {
            on_threads(threads, || {
                let mut c = vec![0.0; steps * n];
                let trace = lif_forward(p, steps, n, &current, &mut c);
                let mut gi = vec![0.0; steps * n];
                lif_backward(p, &trace, Some(&gs), Some(&gc), &mut gi);
                (trace, bits(&c), bits(&gi))
            })
        };
        for p in [
            LifParams::PAPER,
            LifParams {
                reset: Reset::Subtract,
                floor: Floor::Clamp,
                surrogate: Surrogate::FastSigmoid { slope: 5.0 },
                ..LifParams::PAPER
            },
        ] {
            let (one, two) = (run(1, &p), run(2, &p));
            assert!(one.0 == two.0);
            assert_eq!((one.1, one.2), (two.1, two.2));
        }
    }

    #[test]
    fn spike_readouts_agree() {
        let (steps, n) = (13, 4173);
        let [current, ..] = random_case(steps, n, 2.0, 8);
        let mut c = vec![0.0; steps * n];
        let trace = lif_forward(&LifParams::PAPER, steps, n, &current, &mut c);
        let mut spikes = vec![f32::NAN; steps * n];
        trace.spikes_into(&mut spikes);
        for t in 0..steps {
            for i in 0..n {
                let s = spikes[t * n + i];
                assert_eq!(s, f32::from(u8::from(trace.spike(t, i))));
            }
        }
        let total = spikes.iter().sum::<f32>();
        assert_eq!(trace.total_spikes() as f32, total);
        let mut counts = vec![f32::NAN; n];
        trace.counts_into(&mut counts);
        for (i, &count) in counts.iter().enumerate() {
            let want: f32 = (0..steps).map(|t| spikes[t * n + i]).sum();
            assert_eq!(count, want, "count of neuron {i}");
        }
        assert!(total > 0.0 && total < (steps * n) as f32);
    }

    #[test]
    fn trace_keeps_only_what_backward_needs() {
        let (steps, n): (usize, usize) = (10, 100);
        let bits = steps * n.div_ceil(8);
        let current = vec![0.5; steps * n];
        let mut c = vec![0.0; steps * n];
        let membrane = LifParams {
            floor: Floor::None,
            ..LifParams::PAPER
        };
        let trace = lif_forward(&membrane, steps, n, &current, &mut c);
        assert_eq!(trace.bytes(), bits);
        assert_eq!((trace.floored(0, 0), trace.potential(0, 0)), (None, None));
        let trace = lif_forward(&LifParams::PAPER, steps, n, &current, &mut c);
        assert_eq!(trace.bytes(), 2 * bits);
        let sigmoid = LifParams {
            surrogate: Surrogate::FastSigmoid { slope: 5.0 },
            ..LifParams::PAPER
        };
        let trace = lif_forward(&sigmoid, steps, n, &current, &mut c);
        assert_eq!(trace.bytes(), 2 * bits + 4 * steps * n);
        assert_eq!(trace.potential(0, 0), Some(0.5));
    }

    #[test]
    #[should_panic(expected = "needs v[t]")]
    fn backward_without_potential_panics() {
        let mut c = [0.0; 4];
        let trace = lif_forward(&LifParams::PAPER, 2, 2, &[1.0; 4], &mut c);
        let p = LifParams {
            surrogate: Surrogate::Arctan { slope: 2.0 },
            ..LifParams::PAPER
        };
        lif_backward(&p, &trace, Some(&[1.0; 4]), None, &mut [0.0; 4]);
    }

    #[test]
    #[should_panic(expected = "trace recorded with")]
    fn backward_with_other_floor_panics() {
        let mut c = [0.0; 4];
        let trace = lif_forward(&LifParams::PAPER, 2, 2, &[1.0; 4], &mut c);
        let p = LifParams {
            floor: Floor::None,
            ..LifParams::PAPER
        };
        lif_backward(&p, &trace, Some(&[1.0; 4]), None, &mut [0.0; 4]);
    }

    /// T = 3, N = 2 by hand, λ = 0.5, θ = 1, currents (time-major):
    /// neuron 0: 0.8, 0.8, 1.2; neuron 1: −3, 0.5, 2.
    fn by_hand(reset: Reset, floor: Floor, surrogate: Surrogate) -> (LifTrace, Vec<f32>) {
        let p = LifParams {
            leak: 0.5,
            threshold: 1.0,
            reset,
            floor,
            surrogate,
        };
        let current = [0.8, -3.0, 0.8, 0.5, 1.2, 2.0];
        let mut c = vec![0.0; 6];
        let trace = lif_forward(&p, 3, 2, &current, &mut c);
        let mut c_ref = vec![0.0; 6];
        lif_forward_ref(&p, 3, 2, &current, &mut c_ref);
        assert_eq!(c, c_ref);
        // c[t] = λ·(c[t−1] + I[t]) has no reset and no floor.
        let want_c = [0.4, -1.5, 0.6, -0.5, 0.9, 0.75];
        for (got, want) in c.iter().zip(want_c) {
            assert!((got - want).abs() < 1e-6, "c = {c:?}");
        }
        (trace, current.to_vec())
    }

    fn spikes_of(trace: &LifTrace) -> Vec<f32> {
        let mut s = vec![0.0; 6];
        trace.spikes_into(&mut s);
        s
    }

    fn backward_of(p: &LifParams, trace: &LifTrace, gs: &[f32], gc: &[f32]) -> Vec<f32> {
        let (mut gi, mut gi_ref) = (vec![0.0; 6], vec![0.0; 6]);
        lif_backward(p, trace, Some(gs), Some(gc), &mut gi);
        lif_backward_ref(p, trace, Some(gs), Some(gc), &mut gi_ref);
        assert_eq!(gi, gi_ref);
        gi
    }

    fn assert_near(got: &[f32], want: &[f32]) {
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn by_hand_reset_to_zero() {
        // Neuron 0: u = 0.8, 1.2 (fires, v̂ = 0), 1.2 (fires).
        // Neuron 1, no floor: u = −3, −1, 1.5 (fires).
        let (trace, _) = by_hand(Reset::Zero, Floor::None, Surrogate::Membrane);
        assert_eq!(spikes_of(&trace), [0.0, 0.0, 1.0, 0.0, 1.0, 1.0]);
        // Membrane: κ = 1, g = s/θ = s. With gs = 1 everywhere and gc = 0:
        // neuron 0: Av[2] = 1, Au = 1, gI[2] = 1; t = 1: Av = 1 + 1·1·(1 − 1) = 1;
        // t = 0: Av = 0 + 1·1·(1 − 0) = 1.
        // neuron 1: gI[2] = 1; t = 1: Av = 0 + 1·(1 − 0) = 1; t = 0: 1.
        let p = *trace.params();
        let gi = backward_of(&p, &trace, &[1.0; 6], &[0.0; 6]);
        assert_near(&gi, &[1.0; 6]);
        // gc alone: Ac[t] = gc[t] + Ac[t+1], gI = Au + Ac, no spike gradient.
        let gi = backward_of(&p, &trace, &[0.0; 6], &[1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
        assert_near(&gi, &[3.0, 6.0, 2.0, 4.0, 1.0, 2.0]);

        // Authors' floor: neuron 1's u[0] = −3 < −1 → v = 1 (no spike, floored);
        // u[1] = 0.5 + 0.5 = 1.0 (not > 1), u[2] = 0.5 + 2 = 2.5 (fires).
        let (trace, _) = by_hand(Reset::Zero, Floor::Authors, Surrogate::Membrane);
        assert_eq!(spikes_of(&trace), [0.0, 0.0, 1.0, 0.0, 1.0, 1.0]);
        assert_eq!(trace.floored(0, 1), Some(true));
        assert_eq!(trace.floored(1, 1), Some(false));
        let p = *trace.params();
        let gi = backward_of(&p, &trace, &[1.0; 6], &[0.0; 6]);
        // Neuron 1: gI[2] = 1, gI[1] = 0 + 1·1·1 = 1, gI[0] = 0 (floored).
        assert_near(&gi, &[1.0, 0.0, 1.0, 1.0, 1.0, 1.0]);

        // Clamp: u[0] = −3 → v = −1; u[1] = −0.5 + 0.5 = 0; u[2] = 2 (fires).
        let (trace, _) = by_hand(
            Reset::Zero,
            Floor::Clamp,
            Surrogate::FastSigmoid { slope: 1.0 },
        );
        assert_eq!(trace.potential(0, 1), Some(-1.0));
        assert_eq!(trace.potential(1, 1), Some(0.0));
        assert_eq!(trace.potential(2, 1), Some(2.0));
        // Fast sigmoid, κ = λ = 0.5, gs = 1 at t = 2 only:
        // neuron 0: v = (0.8, 1.2, 1.2): g[2] = 1/1.2² → gI[2] = 1/1.44;
        //   t = 1: Av = 0 + 0.5·(1/1.44)·(1 − 1) = 0; t = 0: 0.
        // neuron 1: g[2] = 1/(1 + 1)² = 0.25 → gI[2] = 0.25; t = 1: Av = 0.5·0.25·1 = 0.125;
        //   t = 0: floored → 0.
        let p = *trace.params();
        let gs = [0.0, 0.0, 0.0, 0.0, 1.0, 1.0];
        let gi = backward_of(&p, &trace, &gs, &[0.0; 6]);
        assert_near(&gi, &[0.0, 0.0, 0.0, 0.125, 1.0 / 1.44, 0.25]);
    }

    #[test]
    fn by_hand_reset_by_subtraction() {
        // Neuron 0: u = 0.8; 0.4 + 0.8 = 1.2 (fires, v̂ = 0.2); 0.1 + 1.2 = 1.3 (fires).
        // Neuron 1: u = −3; −1.5 + 0.5 = −1; −0.5 + 2 = 1.5 (fires).
        let (trace, _) = by_hand(
            Reset::Subtract,
            Floor::None,
            Surrogate::Triangle { slope: 1.0 },
        );
        assert_eq!(spikes_of(&trace), [0.0, 0.0, 1.0, 0.0, 1.0, 1.0]);
        assert!((trace.potential(2, 0).unwrap() - 1.3).abs() < 1e-6);
        // Triangle k = 1: g = max(0, 1 − |v − 1|); κ = λ = 0.5, r = 1 (subtraction).
        // gs = 1 everywhere, gc = 0.
        // neuron 0: v = 0.8, 1.2, 1.3 → g = 0.8, 0.8, 0.7.
        //   Av[2] = 0.7; Av[1] = 0.8 + 0.5·0.7 = 1.15; Av[0] = 0.8 + 0.5·1.15 = 1.375.
        // neuron 1: v = −3, −1, 1.5 → g = 0, 0, 0.5.
        //   Av[2] = 0.5; Av[1] = 0 + 0.25 = 0.25; Av[0] = 0.125.
        let p = *trace.params();
        let gi = backward_of(&p, &trace, &[1.0; 6], &[0.0; 6]);
        assert_near(&gi, &[1.375, 0.125, 1.15, 0.25, 0.7, 0.5]);
        // With gc = 1 everywhere too: Ac = 1, 1.5, 1.75 (t = 2, 1, 0), adding κ·Ac.
        let gi = backward_of(&p, &trace, &[1.0; 6], &[1.0; 6]);
        assert_near(&gi, &[2.25, 1.0, 1.9, 1.0, 1.2, 1.0]);

        // Arctan k = 2 at neuron 1, t = 2: z = 0.5, g = 1 / (1 + (π/2)²).
        let (trace, _) = by_hand(
            Reset::Subtract,
            Floor::None,
            Surrogate::Arctan { slope: 2.0 },
        );
        let p = *trace.params();
        let gs = [0.0, 0.0, 0.0, 0.0, 0.0, 1.0];
        let gi = backward_of(&p, &trace, &gs, &[0.0; 6]);
        let g = 1.0 / (1.0 + FRAC_PI_2 * FRAC_PI_2);
        assert_near(&gi, &[0.0, 0.25 * g, 0.0, 0.5 * g, 0.0, g]);
    }
}
