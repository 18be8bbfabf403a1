//! The LIF backward pass: the reverse recurrence of the [module docs](crate::lif) from a
//! forward pass's trace (or one time tile's, from a carried adjoint), and its scalar
//! reference.

use super::state::{Carried, ChunkState, carried_pieces};
use super::step::{Lanes, backward_step, load};
use super::tasks::{check_len, pieces_or_empty, run_tasks, split_columns};
use super::{Floor, LifAdjoint, LifParams, LifTrace};

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
/// `∂L/∂I`. See the [module docs](crate::lif) for the recurrence.
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
    adjoint.check("lif_backward_from", trace.neurons);
    let grads = [grad_spikes, grad_c];
    backward(p, trace, grads, grad_current, Some(adjoint))
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
    let adjoints = carried_pieces(adjoint.map(LifAdjoint::pair), chunk, chunks);
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

/// The backward pass for the chunk of `m` neurons starting at `i0`, its state (`Au` and
/// `Ac`) in a task-local buffer as in the forward pass, from zero or from the chunk's
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
    let mut chunk = ChunkState::load(&carry, m);
    let (state, (au_tail, ac_tail)) = (&mut chunk.lanes, &mut chunk.tail);
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
    chunk.store(&mut carry);
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
    adjoint.check("lif_backward_from_ref", trace.neurons);
    let (steps, n) = (trace.steps, trace.neurons);
    for i in 0..n {
        let (au, ac) = adjoint.at(i);
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
