//! How a layer's neurons are cut into tasks: per-chunk pieces of time-major buffers, and
//! running the tasks on the rayon pool when the job is large enough.

use rayon::prelude::*;

use super::PAR_MIN_LEN;

/// Panics unless the slices match `steps × neurons`.
pub(super) fn check_len(kernel: &str, what: &str, len: usize, steps: usize, neurons: usize) {
    assert!(
        len == steps * neurons,
        "{kernel}: {what} has {len} values, but T·N = {steps}·{neurons} = {}",
        steps * neurons
    );
}

/// Cuts a time-major `[T, N]` buffer into per-chunk column pieces: entry `k` holds, for
/// every row `t`, that row's piece for chunk `k`. This is how tasks write disjoint,
/// strided regions of one output without `unsafe`.
pub(super) fn split_columns(buf: &mut [f32], neurons: usize, chunk: usize) -> Vec<Vec<&mut [f32]>> {
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
pub(super) fn split_or_empty<T>(
    buf: Option<&mut [T]>,
    size: usize,
    chunks: usize,
) -> Vec<&mut [T]> {
    match buf {
        Some(buf) => buf.chunks_mut(size).collect(),
        None => (0..chunks).map(|_| Default::default()).collect(),
    }
}

/// Read-only [`split_or_empty`].
pub(super) fn pieces_or_empty<T>(buf: Option<&[T]>, size: usize, chunks: usize) -> Vec<&[T]> {
    match buf {
        Some(buf) => buf.chunks(size).collect(),
        None => vec![&[][..]; chunks],
    }
}

/// Runs `f(k, task)` for every task, on the rayon pool when the job is large enough.
pub(super) fn run_tasks<T: Send>(tasks: Vec<T>, work: usize, f: impl Fn((usize, T)) + Sync + Send) {
    if tasks.len() > 1 && work >= PAR_MIN_LEN {
        tasks.into_par_iter().enumerate().for_each(f);
    } else {
        tasks.into_iter().enumerate().for_each(f);
    }
}
