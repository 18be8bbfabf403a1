//! Event kernels of the linear layer, their `_ref` twins and their `_auto` dispatchers
//! (the dense path is [`crate::linear`]).

use super::simd::{dot, transpose_into, transpose_par};
use super::{
    Input, LINEAR_BACKWARD_INPUT_CROSSOVER, LINEAR_BACKWARD_WEIGHT_CROSSOVER,
    LINEAR_FORWARD_CROSSOVER, lane_use,
};
use crate::conv::{accumulate, product};
use crate::linear::{
    check_linear, linear_backward_input_dense, linear_backward_weight_dense, linear_forward_dense,
};
use rayon::prelude::*;
use wide::f32x8;

/// Most `f32`s of `wᵀ` [`linear_forward_event`] reads in one pass over a run of rows
/// (16 MiB, half of this machine's L3).
const WT_BUDGET: usize = 1 << 22;

/// Sizes the forward pass's runs of rows: about this many `f32`s of input per run.
const ROW_RUN_BUDGET: usize = 1 << 14;

/// Nonzero inputs of a run of rows, compressed: row `r`'s events are
/// `(idx[k], val[k])` for `k` in `start[r]..start[r + 1]`, in increasing index. Its buffers
/// are reused from fill to fill.
#[derive(Default)]
struct RowEvents {
    idx: Vec<u32>,
    val: Vec<f32>,
    start: Vec<usize>,
}

impl RowEvents {
    /// The events of columns `cols` of each `row_len`-long row of `x`, indices relative to
    /// `cols.start`.
    fn fill(&mut self, x: Input<'_>, row_len: usize, cols: std::ops::Range<usize>) {
        // Room for every element the rows' columns hold, plus the slack `compact` writes
        // past its last event; bits know their count, so they need no more than that
        // (sparse rows of a wide layer then cost no zeroing of a full-width buffer).
        let room = match x {
            Input::Values(_) => x.len() / row_len * cols.len() + 8,
            Input::Bits(_) => x.nonzeros() + 8,
        };
        self.idx.resize(room, 0);
        self.val.resize(room, 0.0);
        self.start.clear();
        self.start.push(0);
        let mut n = 0;
        for r in 0..x.len() / row_len {
            let row = x.slice(r * row_len + cols.start, cols.len());
            n += row.compact(&mut self.idx[n..], &mut self.val[n..]);
            self.start.push(n);
        }
    }

    fn rows(&self) -> usize {
        self.start.len() - 1
    }

    fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let range = self.start[r]..self.start[r + 1];
        (&self.idx[range.clone()], &self.val[range])
    }
}

/// `out[k] = Σ_e val[e]·m[idx[e]·ld + off + k]`, or `out[k] += …` when `ADD`: a weighted
/// sum of rows of `m`, each 64-float block of `out` accumulated in eight registers over
/// all events, so `out` is read and written once whatever the number of events.
#[inline]
fn sum_rows<const ADD: bool>(
    idx: &[u32],
    val: &[f32],
    m: &[f32],
    ld: usize,
    off: usize,
    out: &mut [f32],
) {
    const W: usize = 64;
    let n = out.len();
    let mut k = 0;
    let load = |s: &[f32]| f32x8::new(s[..8].try_into().expect("8 floats"));
    while k + W <= n {
        let mut acc = [f32x8::ZERO; W / 8];
        if ADD {
            for (j, a) in acc.iter_mut().enumerate() {
                *a = load(&out[k + 8 * j..]);
            }
        }
        for (&i, &v) in idx.iter().zip(val) {
            let row = &m[i as usize * ld + off + k..][..W];
            let v = f32x8::splat(v);
            for (j, a) in acc.iter_mut().enumerate() {
                *a = load(&row[8 * j..]).mul_add(v, *a);
            }
        }
        for (j, a) in acc.iter().enumerate() {
            out[k + 8 * j..][..8].copy_from_slice(a.as_array());
        }
        k += W;
    }
    while k + 8 <= n {
        let mut acc = if ADD { load(&out[k..]) } else { f32x8::ZERO };
        for (&i, &v) in idx.iter().zip(val) {
            acc = load(&m[i as usize * ld + off + k..]).mul_add(f32x8::splat(v), acc);
        }
        out[k..k + 8].copy_from_slice(acc.as_array());
        k += 8;
    }
    for (j, o) in out[k..].iter_mut().enumerate() {
        let init = if ADD { *o } else { 0.0 };
        *o = idx.iter().zip(val).fold(init, |a, (&i, &v)| {
            m[i as usize * ld + off + k + j].mul_add(v, a)
        });
    }
}

/// Linear forward pass over the nonzero inputs only: `y[b, o] = Σ_i x[b, i]·w[o, i]`,
/// summing over the `i` with `x[b, i] ≠ 0`, for `x[batch, fan_in]`, `w[fan_out, fan_in]`
/// (`nn.Linear`'s layout) and `y[batch, fan_out]`.
///
/// `w` is transposed once per call into a `[fan_in, fan_out]` temporary; each input spike
/// then adds one contiguous row of it. Runs of rows of the batch go to rayon tasks; a row
/// of `y` is summed 64 columns at a time in registers over all of its row's spikes, so it
/// is written once, front to back (at low density, writing `y` is most of the cost).
///
/// # Panics
/// If a slice length does not match the dimensions.
pub fn linear_forward_event(
    batch: usize,
    fan_in: usize,
    fan_out: usize,
    x: &[f32],
    w: &[f32],
    y: &mut [f32],
) {
    forward_event([batch, fan_in, fan_out], x.into(), w, y);
}

/// [`linear_forward_event`] over either kind of [`Input`].
fn forward_event(dims: [usize; 3], x: Input<'_>, w: &[f32], y: &mut [f32]) {
    let [batch, fan_in, fan_out] = dims;
    check_linear("linear_forward_event", dims, [x.len(), w.len(), y.len()]);
    if fan_in == 0 || y.is_empty() {
        return y.fill(0.0);
    }
    let mut wt = vec![0.0; w.len()];
    transpose_par(w, fan_out, fan_in, &mut wt);
    // Whole rows of y at a time (long sequential writes, which is what the kernel's speed
    // hinges on at low density) unless wᵀ is too large to sit in L3, then tiles of it.
    let tile = if w.len() <= WT_BUDGET {
        fan_out
    } else {
        (WT_BUDGET / fan_in)
            .max(64)
            .next_multiple_of(64)
            .min(fan_out)
    };
    // Runs of rows, one task each: enough runs to share out, rows enough per run to
    // amortize a task's setup.
    let rows = (ROW_RUN_BUDGET / fan_in)
        .clamp(1, 64)
        .min(batch.div_ceil(16).max(1));
    y.par_chunks_mut(rows * fan_out)
        .enumerate()
        .for_each(|(k, y)| {
            let x = x.piece(k, rows * fan_in);
            let mut events = RowEvents::default();
            events.fill(x, fan_in, 0..fan_in);
            for o0 in (0..fan_out).step_by(tile) {
                let o1 = (o0 + tile).min(fan_out);
                for r in 0..events.rows() {
                    let (idx, val) = events.row(r);
                    let y = &mut y[r * fan_out..][o0..o1];
                    sum_rows::<false>(idx, val, &wt, fan_out, o0, y);
                }
            }
        });
}

/// Linear weight gradient over the nonzero inputs only: `gw[o, i] = Σ_b gy[b, o]·x[b, i]`,
/// summing over the `b` with `x[b, i] ≠ 0`.
///
/// The outputs are cut into runs, one rayon task each, which own whole rows of `gw`. A
/// task computes its rows transposed, `gwᵀ[i, outputs]`, a block of inputs at a time in a
/// tile held in cache, walking the batch in blocks of rows: it copies the block's rows of
/// `gy` that meet a spike (its columns only) into a packed buffer, sorts the block's
/// spikes by input, and adds into each row `i` of the tile `Σ x[b, i]·gy[b, outputs]` over
/// the block's spikes on input `i`, the row held in registers meanwhile; the finished tile
/// is transposed into `gw`. Every element is summed over `b` in order by one task, so the
/// result is bit-for-bit the same on any number of threads.
///
/// # Panics
/// If a slice length does not match the dimensions.
pub fn linear_backward_weight_event(
    batch: usize,
    fan_in: usize,
    fan_out: usize,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
) {
    backward_weight_event([batch, fan_in, fan_out], x.into(), gy, gw);
}

/// [`linear_backward_weight_event`] over either kind of [`Input`].
fn backward_weight_event(dims: [usize; 3], x: Input<'_>, gy: &[f32], gw: &mut [f32]) {
    let [batch, fan_in, fan_out] = dims;
    let got = [x.len(), gw.len(), gy.len()];
    check_linear("linear_backward_weight_event", dims, got);
    if batch == 0 || gw.is_empty() {
        return gw.fill(0.0);
    }
    // Runs of outputs: enough to share out, long enough that the copies out of each row of
    // gy are long sequential reads. Every task reads all of x, so not too many.
    let t_o = fan_out
        .div_ceil(LINEAR_TASKS)
        .next_multiple_of(64)
        .min(1024)
        .min(fan_out);
    let t_i = (GRAD_TILE_BUDGET / t_o).clamp(8, fan_in.max(8));
    gw.par_chunks_mut(t_o * fan_in)
        .enumerate()
        .for_each(|(ob, gw)| {
            let (o0, width) = (ob * t_o, gw.len() / fan_in);
            let outputs = o0..o0 + width;
            let mut tile = vec![0.0; t_i.min(fan_in) * width];
            let mut packed = vec![0.0; LINEAR_BLOCK_ROWS * width];
            let (mut events, mut by_input) = (RowEvents::default(), ColumnEvents::default());
            for i0 in (0..fan_in).step_by(t_i) {
                let inputs = i0..(i0 + t_i).min(fan_in);
                let tile = &mut tile[..inputs.len() * width];
                tile.fill(0.0);
                for (k, gy) in gy.chunks(LINEAR_BLOCK_ROWS * fan_out).enumerate() {
                    let x = x.piece(k, LINEAR_BLOCK_ROWS * fan_in);
                    events.fill(x, fan_in, inputs.clone());
                    // Pack the rows that meet a spike.
                    let live: Vec<usize> = (0..events.rows())
                        .filter(|&r| !events.row(r).0.is_empty())
                        .collect();
                    for (slot, &r) in live.iter().enumerate() {
                        let src = &gy[r * fan_out..][outputs.clone()];
                        packed[slot * width..][..width].copy_from_slice(src);
                    }
                    by_input.sort(&events, &live, inputs.len());
                    for i in 0..inputs.len() {
                        let (slots, val) = by_input.column(i);
                        if !slots.is_empty() {
                            let row = &mut tile[i * width..][..width];
                            sum_rows::<true>(slots, val, &packed, width, 0, row);
                        }
                    }
                }
                let rows = inputs.len();
                transpose_into::<false>(tile, rows, width, 0..width, &mut gw[i0..], fan_in);
            }
        });
}

/// Most tasks [`linear_backward_weight_event`] splits its outputs into.
const LINEAR_TASKS: usize = 16;

/// Most `f32`s of one tile of the linear weight gradient (512 KiB, this machine's L2): a
/// tile is read and written once per block of rows.
const GRAD_TILE_BUDGET: usize = 1 << 17;

/// Rows of the batch one block of [`linear_backward_weight_event`] packs: 64 rows of a
/// 1024-wide tile are 256 KiB, which stay in L2 while the block is summed.
const LINEAR_BLOCK_ROWS: usize = 64;

/// A block's events sorted by input (column): input `i` has events in packed rows
/// `slot[k]` with values `val[k]` for `k` in `start[i]..start[i + 1]`, in row order.
#[derive(Default)]
struct ColumnEvents {
    slot: Vec<u32>,
    val: Vec<f32>,
    start: Vec<usize>,
}

impl ColumnEvents {
    /// Counting sort of the events of rows `live` (packed row `k` is `live[k]`) over
    /// `cols` inputs.
    fn sort(&mut self, events: &RowEvents, live: &[usize], cols: usize) {
        self.start.clear();
        self.start.resize(cols + 1, 0);
        for &b in live {
            for &i in events.row(b).0 {
                self.start[i as usize + 1] += 1;
            }
        }
        for i in 0..cols {
            self.start[i + 1] += self.start[i];
        }
        let n = self.start[cols];
        self.slot.resize(n, 0);
        self.val.resize(n, 0.0);
        for (slot, &b) in live.iter().enumerate() {
            let (idx, val) = events.row(b);
            for (&i, &v) in idx.iter().zip(val) {
                let at = &mut self.start[i as usize];
                self.slot[*at] = slot as u32;
                self.val[*at] = v;
                *at += 1;
            }
        }
        // Each start now holds the next column's start: shift back.
        for i in (1..=cols).rev() {
            self.start[i] = self.start[i - 1];
        }
        self.start[0] = 0;
    }

    fn column(&self, i: usize) -> (&[u32], &[f32]) {
        let range = self.start[i]..self.start[i + 1];
        (&self.slot[range.clone()], &self.val[range])
    }
}

/// Linear input gradient at the nonzero inputs only: `gx[b, i] = Σ_o gy[b, o]·w[o, i]`
/// where `x[b, i] ≠ 0`, and 0 where `x` is 0 (see
/// [`conv2d_backward_input_event`](crate::event::conv2d_backward_input_event) for why). `w`
/// is transposed once per call, so each spike costs one contiguous dot product of length
/// `fan_out`; runs of rows in parallel, deterministic.
///
/// # Panics
/// If a slice length does not match the dimensions.
pub fn linear_backward_input_event(
    batch: usize,
    fan_in: usize,
    fan_out: usize,
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) {
    backward_input_event([batch, fan_in, fan_out], x.into(), w, gy, gx);
}

/// [`linear_backward_input_event`] over either kind of [`Input`].
fn backward_input_event(dims: [usize; 3], x: Input<'_>, w: &[f32], gy: &[f32], gx: &mut [f32]) {
    let [_, fan_in, fan_out] = dims;
    check_linear(
        "linear_backward_input_event",
        dims,
        [x.len(), w.len(), gy.len()],
    );
    assert_eq!(
        gx.len(),
        x.len(),
        "linear_backward_input_event: gx must be as long as x"
    );
    if fan_in == 0 || fan_out == 0 {
        return gx.fill(0.0);
    }
    let mut wt = vec![0.0; w.len()];
    transpose_par(w, fan_out, fan_in, &mut wt);
    let rows = (ROW_RUN_BUDGET / fan_in).clamp(1, 64);
    gx.par_chunks_mut(rows * fan_in)
        .zip(gy.par_chunks(rows * fan_out))
        .enumerate()
        .for_each(|(k, (gx, gy))| {
            let x = x.piece(k, rows * fan_in);
            let mut events = RowEvents::default();
            events.fill(x, fan_in, 0..fan_in);
            let rows = gx.chunks_exact_mut(fan_in).zip(gy.chunks_exact(fan_out));
            for (r, (gx, gy)) in rows.enumerate() {
                gx.fill(0.0);
                for &i in events.row(r).0 {
                    gx[i as usize] = dot(gy, &wt[i as usize * fan_out..][..fan_out]);
                }
            }
        });
}

/// [`linear_backward_input_event`] when `x` is sparser than
/// [`LINEAR_BACKWARD_INPUT_CROSSOVER`] (scaled for fewer than 8 outputs),
/// [`linear_backward_input_dense`] otherwise.
///
/// # Panics
/// If a slice length does not match the dimensions.
pub fn linear_backward_input_auto(
    batch: usize,
    fan_in: usize,
    fan_out: usize,
    x: Input<'_>,
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) {
    if x.sparser_than(LINEAR_BACKWARD_INPUT_CROSSOVER * lane_use(fan_out)) {
        backward_input_event([batch, fan_in, fan_out], x, w, gy, gx);
    } else {
        linear_backward_input_dense(batch, fan_in, fan_out, gy, w, gx);
    }
}

/// [`linear_forward_event`] when `x` is sparser than [`LINEAR_FORWARD_CROSSOVER`] (scaled
/// for fewer than 8 outputs, see [the module docs](crate::event#dispatch)),
/// [`linear_forward_dense`] otherwise.
///
/// # Panics
/// If a slice length does not match the dimensions.
pub fn linear_forward_auto(
    batch: usize,
    fan_in: usize,
    fan_out: usize,
    x: Input<'_>,
    w: &[f32],
    y: &mut [f32],
) {
    if x.sparser_than(LINEAR_FORWARD_CROSSOVER * lane_use(fan_out)) {
        forward_event([batch, fan_in, fan_out], x, w, y);
    } else {
        linear_forward_dense(batch, fan_in, fan_out, &x.values(), w, y);
    }
}

/// [`linear_backward_weight_event`] when `x` is sparser than
/// [`LINEAR_BACKWARD_WEIGHT_CROSSOVER`] (scaled for fewer than 8 outputs, see [the module
/// docs](crate::event#dispatch)), [`linear_backward_weight_dense`] otherwise.
///
/// # Panics
/// If a slice length does not match the dimensions.
pub fn linear_backward_weight_auto(
    batch: usize,
    fan_in: usize,
    fan_out: usize,
    x: Input<'_>,
    gy: &[f32],
    gw: &mut [f32],
) {
    if x.sparser_than(LINEAR_BACKWARD_WEIGHT_CROSSOVER * lane_use(fan_out)) {
        backward_weight_event([batch, fan_in, fan_out], x, gy, gw);
    } else {
        linear_backward_weight_dense(batch, fan_in, fan_out, &x.values(), gy, gw);
    }
}

/// Reference for [`linear_forward_event`]: for each nonzero `x[b, i]`, add
/// `x[b, i]·w[o, i]` into every `y[b, o]`; `f64` sums.
///
/// # Panics
/// If a slice length does not match the dimensions.
pub fn linear_forward_event_ref(
    batch: usize,
    fan_in: usize,
    fan_out: usize,
    x: &[f32],
    w: &[f32],
    y: &mut [f32],
) {
    let dims = [batch, fan_in, fan_out];
    check_linear(
        "linear_forward_event_ref",
        dims,
        [x.len(), w.len(), y.len()],
    );
    accumulate(y, |y| {
        for b in 0..batch {
            for i in 0..fan_in {
                let v = x[b * fan_in + i];
                if v != 0.0 {
                    for o in 0..fan_out {
                        y[b * fan_out + o] += product(v, w[o * fan_in + i]);
                    }
                }
            }
        }
    });
}

/// Reference for [`linear_backward_weight_event`]: for each nonzero `x[b, i]`, add
/// `x[b, i]·gy[b, o]` into every `gw[o, i]`; `f64` sums.
///
/// # Panics
/// If a slice length does not match the dimensions.
pub fn linear_backward_weight_event_ref(
    batch: usize,
    fan_in: usize,
    fan_out: usize,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
) {
    let dims = [batch, fan_in, fan_out];
    let got = [x.len(), gw.len(), gy.len()];
    check_linear("linear_backward_weight_event_ref", dims, got);
    accumulate(gw, |gw| {
        for b in 0..batch {
            for i in 0..fan_in {
                let v = x[b * fan_in + i];
                if v != 0.0 {
                    for o in 0..fan_out {
                        gw[o * fan_in + i] += product(v, gy[b * fan_out + o]);
                    }
                }
            }
        }
    });
}

/// Reference for [`linear_backward_input_event`]: `f64` dot products at the nonzero inputs.
///
/// # Panics
/// If a slice length does not match the dimensions.
pub fn linear_backward_input_event_ref(
    batch: usize,
    fan_in: usize,
    fan_out: usize,
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) {
    let dims = [batch, fan_in, fan_out];
    check_linear(
        "linear_backward_input_event_ref",
        dims,
        [x.len(), w.len(), gy.len()],
    );
    for (k, g) in gx.iter_mut().enumerate() {
        let (b, i) = (k / fan_in, k % fan_in);
        *g = if x[k] == 0.0 {
            0.0
        } else {
            let terms = (0..fan_out).map(|o| product(gy[b * fan_out + o], w[o * fan_in + i]));
            terms.sum::<f64>() as f32
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::mask_by;
    use crate::testutil::{any_density, assert_close, bits, on_threads, random_vec, run, spikes};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]

        #[test]
        fn linear_matches_reference_and_dense(
            batch in prop_oneof![0usize..4, 17usize..40],
            fan_in in prop_oneof![1usize..12, 20usize..90],
            fan_out in prop_oneof![1usize..12, 60usize..150],
            density in any_density(),
            analog in any::<bool>(),
            seed in any::<u64>(),
        ) {
            let x = spikes(batch * fan_in, density, analog, seed);
            let w = random_vec(fan_out * fan_in, seed + 1);
            let gy = random_vec(batch * fan_out, seed + 2);
            let (ny, nw) = (batch * fan_out, fan_out * fan_in);

            let want = run(ny, |y| linear_forward_event_ref(batch, fan_in, fan_out, &x, &w, y));
            let dense = run(ny, |y| linear_forward_dense(batch, fan_in, fan_out, &x, &w, y));
            assert_close(&dense, &want, 1e-4);
            let got = run(ny, |y| linear_forward_event(batch, fan_in, fan_out, &x, &w, y));
            assert_close(&got, &want, 1e-4);
            let got = run(ny, |y| linear_forward_auto(batch, fan_in, fan_out, Input::Values(&x), &w, y));
            assert_close(&got, &want, 1e-4);

            let want = run(nw, |g| linear_backward_weight_event_ref(batch, fan_in, fan_out, &x, &gy, g));
            let dense = run(nw, |g| linear_backward_weight_dense(batch, fan_in, fan_out, &x, &gy, g));
            assert_close(&dense, &want, 1e-4);
            let got = run(nw, |g| linear_backward_weight_event(batch, fan_in, fan_out, &x, &gy, g));
            assert_close(&got, &want, 1e-4);
            let got = run(nw, |g| linear_backward_weight_auto(batch, fan_in, fan_out, Input::Values(&x), &gy, g));
            assert_close(&got, &want, 1e-4);

            let nx = batch * fan_in;
            let want = run(nx, |g| linear_backward_input_event_ref(batch, fan_in, fan_out, &x, &w, &gy, g));
            let got = run(nx, |g| linear_backward_input_event(batch, fan_in, fan_out, &x, &w, &gy, g));
            assert_close(&got, &want, 1e-4);
            let mut dense = run(nx, |g| linear_backward_input_dense(batch, fan_in, fan_out, &gy, &w, g));
            mask_by(&x, &mut dense);
            assert_close(&dense, &want, 1e-4);
            let mut got = run(nx, |g| linear_backward_input_auto(batch, fan_in, fan_out, Input::Values(&x), &w, &gy, g));
            mask_by(&x, &mut got);
            assert_close(&got, &want, 1e-4);

            // Binary spikes read as bits: what their values give, bit for bit.
            if let Some(words) = crate::bits::pack_binary(&x) {
                let dims = [batch, fan_in, fan_out];
                let each = |x: Input<'_>| {
                    [
                        run(ny, |y| forward_event(dims, x, &w, y)),
                        run(nw, |g| backward_weight_event(dims, x, &gy, g)),
                        run(nx, |g| backward_input_event(dims, x, &w, &gy, g)),
                        run(ny, |y| linear_forward_auto(batch, fan_in, fan_out, x, &w, y)),
                        run(nw, |g| linear_backward_weight_auto(batch, fan_in, fan_out, x, &gy, g)),
                        run(nx, |g| linear_backward_input_auto(batch, fan_in, fan_out, x, &w, &gy, g)),
                    ]
                    .map(|v| bits(&v))
                };
                let from_bits = each(Input::Bits(crate::bits::BitSlice::new(&words, nx)));
                prop_assert!(from_bits == each(Input::Values(&x)), "bits and values differ");
            }
        }
    }

    /// A linear layer large enough to cut into several weight tiles along both axes
    /// (forward: several output tiles and row runs; weight gradient: several input blocks).
    #[test]
    fn linear_tiles_match_reference() {
        // The last is past WT_BUDGET, so the forward pass tiles wᵀ too.
        for (batch, fan_in, fan_out) in [(70, 300, 700), (33, 1500, 45), (2, 3000, 1500)] {
            let x = spikes(batch * fan_in, 0.1, true, 7);
            let w = random_vec(fan_out * fan_in, 8);
            let gy = random_vec(batch * fan_out, 9);
            let (ny, nw) = (batch * fan_out, fan_out * fan_in);
            let want = run(ny, |y| {
                linear_forward_event_ref(batch, fan_in, fan_out, &x, &w, y)
            });
            let got = run(ny, |y| {
                linear_forward_event(batch, fan_in, fan_out, &x, &w, y)
            });
            assert_close(&got, &want, 1e-4);
            let want = run(nw, |g| {
                linear_backward_weight_event_ref(batch, fan_in, fan_out, &x, &gy, g)
            });
            let got = run(nw, |g| {
                linear_backward_weight_event(batch, fan_in, fan_out, &x, &gy, g)
            });
            assert_close(&got, &want, 1e-4);
        }
    }

    #[test]
    fn linear_by_hand() {
        // x = [[0, 2, 0], [1, 0, 0]], w = [[1, 2, 3], [4, 5, 6]]: y = [[4, 10], [1, 4]].
        let (x, w) = (
            [0.0, 2.0, 0.0, 1.0, 0.0, 0.0],
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        );
        let y = run(4, |y| linear_forward_event(2, 3, 2, &x, &w, y));
        assert_eq!(y, [4.0, 10.0, 1.0, 4.0]);
        // gy = [[1, 10], [100, 1000]]: gw[o, i] = Σ_b gy[b, o]·x[b, i].
        let gy = [1.0, 10.0, 100.0, 1000.0];
        let gw = run(6, |g| linear_backward_weight_event(2, 3, 2, &x, &gy, g));
        assert_eq!(gw, [100.0, 2.0, 0.0, 1000.0, 20.0, 0.0]);
    }

    #[test]
    fn weight_gradient_is_identical_on_one_and_two_threads() {
        let (batch, fan_in, fan_out) = (300, 40, 1100);
        let lx = spikes(batch * fan_in, 0.2, true, 5);
        let lgy = random_vec(batch * fan_out, 6);
        let on = |threads: usize| {
            on_threads(threads, || {
                run(fan_in * fan_out, |g| {
                    linear_backward_weight_event(batch, fan_in, fan_out, &lx, &lgy, g)
                })
            })
        };
        assert_eq!(bits(&on(1)), bits(&on(2)));
    }

    #[test]
    #[should_panic(expected = "linear_forward_event: slice lengths")]
    fn wrong_length_panics() {
        linear_forward_event(2, 3, 2, &[0.0; 5], &[0.0; 6], &mut [0.0; 4]);
    }
}
