//! The LIF forward pass: the recurrence of the [module docs](crate::lif) over all steps of a
//! layer (or one time tile, from a carried state), and its scalar reference.

use super::state::{Carried, ChunkState, carried_pieces};
use super::step::{Lanes, forward_step, load};
use super::tasks::{check_len, run_tasks, split_columns, split_or_empty};
use super::{LifParams, LifState, LifTrace};

/// Multi-step LIF forward over `current[T·N]` (time-major) from rest: writes the leaky
/// cumulative potential `c[t]` for every step into `c[T·N]` (or only `c[T−1]`, when `c`
/// holds `N` values) and returns the trace the backward pass needs. See the [module
/// docs](crate::lif) for the recurrence.
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
    state.check("lif_forward_from", neurons);
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
    let states = carried_pieces(state.map(LifState::pair), chunk, chunks);
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
    let mut chunk = ChunkState::load(&start, m);
    let (state, (vhat_tail, cum_tail)) = (&mut chunk.lanes, &mut chunk.tail);
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
    chunk.store(&mut start);
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
    state.check("lif_forward_from_ref", neurons);
    let mut trace = LifTrace::new(p, steps, neurons);
    for i in 0..neurons {
        let (vhat, cum) = state.at(i);
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
