//! Spike-driven (event) kernels: linear layers, convolutions and transposed convolutions
//! that visit only the nonzero inputs.
//!
//! In a spiking network most layers see binary spikes of low density, so a dense GEMM
//! spends most of its multiply-adds on zeros. An event kernel does work in proportion to
//! the nonzero inputs: each one adds its weights, scaled by its value, into the outputs
//! it reaches (a scatter), and the weight gradient gathers the output gradient at those
//! same outputs. The value is multiplied in, so the kernels are exact for any input,
//! analog ones included; they are fast for sparse ones.
//!
//! Layouts and semantics are those of the dense kernels in [`crate::conv`] and of
//! PyTorch's `nn.Linear` (`w[fan_out, fan_in]`), outputs are overwritten, and each kernel
//! has a scalar `_ref` twin. Results match the dense kernels' up to rounding (the sums run
//! in another order), except that a zero input contributes nothing even where the weight
//! it would meet is infinite or NaN, where the dense kernels produce NaN. The `_auto`
//! dispatchers call whichever of the two is faster at the input's density.
//!
//! # Dispatch
//!
//! Each `_auto` dispatcher takes the event path when the input's density is below its
//! crossover constant, the density where the two kernels ran equally fast on this machine
//! (2 Zen 3 cores, shared; `EVENT_CROSSOVER=1 cargo bench --bench event` times them
//! alternately at densities from 1 % to 50 % and interpolates the crossing), rounded down;
//! near it the two are within a few per cent of each other. The constants hold for
//! layers whose outputs fill whole 8-lane vectors (8, 16, 32 … channels). An event
//! kernel's cost per spike grows with the vectors an output run takes, `⌈n/8⌉`, a dense
//! kernel's with `n`, so for `n` outputs the dispatcher scales its constant by
//! `n / (8·⌈n/8⌉)`: a layer with one output channel (the decoder's last) crosses over at an
//! eighth of the density (measured on conv_transpose2d 16→1, 5×5, 24×24: between 2 % and
//! 10 %, against 20 % with 16 outputs). Deciding reads only as much of the input as it
//! takes: a dense one is rejected after a fraction of it has been counted.
//!
//! # Layout
//!
//! Internally, weights and output-sized scratch are kept channels-last (`[…][c_out]`),
//! so every spike adds whole contiguous runs of `c_out` (or `fan_out`) floats, 8-wide
//! FMAs. Spikes are found eight inputs at a time and packed into index lists without
//! branches. Each image's (or row block's) spikes are gathered once, then replayed in the
//! order that keeps the data being updated in cache.

use crate::conv::{
    Conv2dShape, ConvTranspose2dShape, MAX_TASKS, PARTIAL_BUDGET, accumulate,
    conv_transpose2d_backward_input, conv_transpose2d_backward_weight, conv_transpose2d_forward,
    conv2d_backward_input, conv2d_backward_weight, conv2d_forward, product,
};
use crate::gemm::sgemm;
use rayon::prelude::*;
use std::cell::Cell;
use wide::bytemuck::cast;
use wide::{f32x8, u32x8};

/// Input density below which [`linear_forward_auto`] takes the event path, for a layer whose
/// outputs fill whole 8-lane vectors (see [the module docs](self#dispatch)). Measured by
/// `EVENT_CROSSOVER=1 cargo bench --bench event` on linear 100→12800, batch 1600: crossovers 0.30
/// and 0.35 in two runs.
pub const LINEAR_FORWARD_CROSSOVER: f32 = 0.3;

/// Input density below which [`linear_backward_weight_auto`] takes the event path, for a layer
/// whose outputs fill whole 8-lane vectors (see [the module docs](self#dispatch)). Measured by
/// `EVENT_CROSSOVER=1 cargo bench --bench event` on linear 100→12800, batch 1600: crossovers 0.49
/// and 0.46 in two runs.
pub const LINEAR_BACKWARD_WEIGHT_CROSSOVER: f32 = 0.45;

/// Input density below which [`conv2d_forward_auto`] takes the event path, for a layer whose
/// outputs fill whole 8-lane vectors (see [the module docs](self#dispatch)). Measured by
/// `EVENT_CROSSOVER=1 cargo bench --bench event` on conv2d 16→32, 5×5, 24×24, batch 64: crossovers
/// 0.20 and 0.26 in two runs, 0.32 in a third on a quieter machine.
pub const CONV2D_FORWARD_CROSSOVER: f32 = 0.2;

/// Input density below which [`conv2d_backward_weight_auto`] takes the event path, for a layer
/// whose outputs fill whole 8-lane vectors (see [the module docs](self#dispatch)). Measured by
/// `EVENT_CROSSOVER=1 cargo bench --bench event` on conv2d 16→32, 5×5, 24×24, batch 64: crossovers
/// 0.45 and 0.39 in two runs.
pub const CONV2D_BACKWARD_WEIGHT_CROSSOVER: f32 = 0.4;

/// Input density below which [`conv_transpose2d_forward_auto`] takes the event path, for a layer
/// whose outputs fill whole 8-lane vectors (see [the module docs](self#dispatch)). Measured by
/// `EVENT_CROSSOVER=1 cargo bench --bench event` on conv_transpose2d 32→16, 5×5, 20×20, batch 64:
/// crossovers 0.32 and 0.20 in two runs, then 0.28 and 0.28 in two on a quieter machine (the
/// paper network's decoder feeds it 0.19–0.23 at init, so the side matters).
pub const CONV_TRANSPOSE2D_FORWARD_CROSSOVER: f32 = 0.25;

/// Input density below which [`conv_transpose2d_backward_weight_auto`] takes the event path, for a
/// layer whose outputs fill whole 8-lane vectors (see [the module docs](self#dispatch)). Measured
/// by `EVENT_CROSSOVER=1 cargo bench --bench event` on conv_transpose2d 32→16, 5×5, 20×20, batch
/// 64: crossovers 0.38 and 0.37 in two runs.
pub const CONV_TRANSPOSE2D_BACKWARD_WEIGHT_CROSSOVER: f32 = 0.35;

/// Input density below which [`linear_backward_input_auto`] takes the event path (see [the
/// module docs](self#dispatch)). Measured by `EVENT_CROSSOVER=1 cargo bench --bench event` on
/// linear 100→12800, batch 1600: crossovers 0.15 and 0.18 in two runs.
pub const LINEAR_BACKWARD_INPUT_CROSSOVER: f32 = 0.15;

/// Input density below which [`conv2d_backward_input_auto`] takes the event path (see [the
/// module docs](self#dispatch)). Measured by `EVENT_CROSSOVER=1 cargo bench --bench event` on
/// conv2d 16→32, 5×5, 24×24, batch 64: crossover 0.19.
pub const CONV2D_BACKWARD_INPUT_CROSSOVER: f32 = 0.18;

/// Input density below which [`conv_transpose2d_backward_input_auto`] takes the event path
/// (see [the module docs](self#dispatch)). Measured by `EVENT_CROSSOVER=1 cargo bench --bench
/// event` on conv_transpose2d 32→16, 5×5, 20×20, batch 64: crossovers 0.22 and 0.19 in two
/// runs.
pub const CONV_TRANSPOSE2D_BACKWARD_INPUT_CROSSOVER: f32 = 0.18;

/// Input density below which [`conv2d_backward_auto`] computes both gradients in one event
/// pass (see [the module docs](self#dispatch)). Measured by `EVENT_CROSSOVER=1 cargo bench
/// --bench event` (`backward`) on conv2d 16→32, 5×5, 24×24, batch 64, against the dense input
/// gradient plus the weight gradient's dispatcher: crossover 0.29.
pub const CONV2D_BACKWARD_CROSSOVER: f32 = 0.25;

/// Input density below which [`conv_transpose2d_backward_auto`] computes both gradients in
/// one event pass, measured as [`CONV2D_BACKWARD_CROSSOVER`] on conv_transpose2d 32→16, 5×5,
/// 20×20, batch 64: crossover 0.41.
pub const CONV_TRANSPOSE2D_BACKWARD_CROSSOVER: f32 = 0.35;

/// The fraction of its 8-lane vectors that a run of `n` floats fills, `n / (8·⌈n/8⌉)`: the
/// factor a dispatcher scales its crossover by (see [the module docs](self#dispatch)).
fn lane_use(n: usize) -> f32 {
    n as f32 / n.div_ceil(8).max(1) as f32 / 8.0
}

/// Fewest images one weight-gradient task sums, so that small batches do not pay for a
/// partial gradient (allocated, zeroed and added up) per image.
const MIN_TASK_IMAGES: usize = 4;

/// Most `f32`s of `wᵀ` [`linear_forward_event`] reads in one pass over a run of rows
/// (16 MiB, half of this machine's L3).
const WT_BUDGET: usize = 1 << 22;

/// Sizes the forward pass's runs of rows: about this many `f32`s of input per run.
const ROW_RUN_BUDGET: usize = 1 << 14;

/// Fraction of the elements of `x` that are nonzero (NaN counts as nonzero); 0 for an
/// empty slice.
pub fn density(x: &[f32]) -> f32 {
    if x.is_empty() {
        return 0.0;
    }
    count_nonzero(x) as f32 / x.len() as f32
}

fn count_nonzero(x: &[f32]) -> usize {
    x.iter().map(|v| usize::from(*v != 0.0)).sum()
}

/// Whether the density of `x` is below `threshold`, reading only as much of `x` as it
/// takes to know: a dense input is rejected after a fraction of it has been counted.
fn sparser_than(x: &[f32], threshold: f32) -> bool {
    let limit = threshold as f64 * x.len() as f64;
    let mut seen = 0;
    for block in x.chunks(1 << 14) {
        seen += count_nonzero(block);
        if seen as f64 >= limit {
            return false;
        }
    }
    true
}

/// For each 8-bit mask, the positions of its set bits, in order, then zeros: the
/// permutation that packs the selected lanes of a vector to its front.
const COMPRESS: [[u32; 8]; 256] = {
    let mut table = [[0; 8]; 256];
    let mut mask = 0;
    while mask < 256 {
        let (mut bit, mut k) = (0, 0);
        while bit < 8 {
            if mask & (1 << bit) != 0 {
                table[mask][k] = bit as u32;
                k += 1;
            }
            bit += 1;
        }
        mask += 1;
    }
    table
};

/// Writes the positions and values of the nonzero elements of `x` (NaN included), in
/// order, to the front of `idx` and `val`, and returns their number. Branch-free: each
/// block of eight is packed with one permutation and stored whole, so `idx` and `val` need
/// room for `x.len()` rounded up to a multiple of 8; what lies past the count is garbage.
fn compact(x: &[f32], idx: &mut [u32], val: &mut [f32]) -> usize {
    let iota = u32x8::new([0, 1, 2, 3, 4, 5, 6, 7]);
    let mut n = 0;
    let mut block = |at: usize, v: f32x8| {
        let mask = v.simd_ne(f32x8::ZERO).to_bitmask() as usize;
        let perm = u32x8::new(COMPRESS[mask]);
        let packed = cast::<u32x8, f32x8>(cast::<f32x8, u32x8>(v).shuffle(perm));
        idx[n..n + 8].copy_from_slice((iota + u32x8::splat(at as u32)).shuffle(perm).as_array());
        val[n..n + 8].copy_from_slice(packed.as_array());
        n += mask.count_ones() as usize;
    };
    let mut chunks = x.chunks_exact(8);
    for (k, chunk) in (&mut chunks).enumerate() {
        block(8 * k, f32x8::new(chunk.try_into().expect("chunk of 8")));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut padded = [0.0; 8];
        padded[..rest.len()].copy_from_slice(rest);
        block(x.len() - rest.len(), f32x8::new(padded));
    }
    n
}

/// `y ← a·x + y` over two equally long slices (fused multiply-adds), sixteen lanes at a
/// time, then eight, then a scalar tail: the runs here are a few dozen floats (80 for a
/// 16-channel 5×5 transposed conv), where two vectors per iteration halve the loop
/// overhead (conv_transpose2d 32→16 at 20 %, batch 64: forward 6.7 → 6.1 ms, both
/// gradients 9.6 → 8.5 ms).
#[inline(always)]
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    debug_assert_eq!(y.len(), x.len());
    let av = f32x8::splat(a);
    let load = |s: &[f32]| f32x8::new(s[..8].try_into().expect("8 floats"));
    let mut ys16 = y.chunks_exact_mut(16);
    let mut xs16 = x.chunks_exact(16);
    for (y, x) in (&mut ys16).zip(&mut xs16) {
        let (lo, hi) = (
            load(x).mul_add(av, load(y)),
            load(&x[8..]).mul_add(av, load(&y[8..])),
        );
        y[..8].copy_from_slice(lo.as_array());
        y[8..].copy_from_slice(hi.as_array());
    }
    let mut ys = ys16.into_remainder().chunks_exact_mut(8);
    let mut xs = xs16.remainder().chunks_exact(8);
    for (y, x) in (&mut ys).zip(&mut xs) {
        let xv = f32x8::new(x.try_into().expect("8 floats"));
        let yv = f32x8::new((&*y).try_into().expect("8 floats"));
        y.copy_from_slice(xv.mul_add(av, yv).as_array());
    }
    for (y, x) in ys.into_remainder().iter_mut().zip(xs.remainder()) {
        *y = x.mul_add(a, *y);
    }
}

/// A dot product summed over several pairs of runs: four independent 8-lane
/// accumulators (so consecutive multiply-adds do not wait on each other) and a scalar
/// tail, reduced once at the end.
#[derive(Default)]
struct Dot {
    lanes: [f32x8; 4],
    tail: f32,
}

impl Dot {
    /// Adds `Σ a·b` over two equally long slices.
    #[inline(always)]
    fn add(&mut self, a: &[f32], b: &[f32]) {
        debug_assert_eq!(a.len(), b.len());
        let load = |s: &[f32]| f32x8::new(s[..8].try_into().expect("8 floats"));
        let (mut xs, mut ys) = (a.chunks_exact(32), b.chunks_exact(32));
        for (x, y) in (&mut xs).zip(&mut ys) {
            for (k, acc) in self.lanes.iter_mut().enumerate() {
                *acc = load(&x[8 * k..]).mul_add(load(&y[8 * k..]), *acc);
            }
        }
        let (mut xs, mut ys) = (
            xs.remainder().chunks_exact(8),
            ys.remainder().chunks_exact(8),
        );
        for ((x, y), acc) in (&mut xs).zip(&mut ys).zip(&mut self.lanes) {
            *acc = load(x).mul_add(load(y), *acc);
        }
        let tail = xs.remainder().iter().zip(ys.remainder());
        self.tail = tail.fold(self.tail, |s, (x, y)| x.mul_add(*y, s));
    }

    /// The sum.
    #[inline(always)]
    fn sum(&self) -> f32 {
        let [a, b, c, d] = self.lanes;
        ((a + b) + (c + d)).reduce_add() + self.tail
    }
}

/// `Σ a·b` over two equally long slices.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut d = Dot::default();
    d.add(a, b);
    d.sum()
}

/// Writes the transpose of the row-major `rows×cols` matrix `src` into `dst`
/// (`dst[c·rows + r] = src[r·cols + c]`), writing `dst` as a few sequential streams (for
/// a `dst` bound for memory).
fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    debug_assert_eq!(src.len(), rows * cols);
    debug_assert_eq!(dst.len(), rows * cols);
    transpose_into::<false>(src, rows, cols, 0..cols, dst, rows);
}

/// [`transpose`], reading `src` as a few sequential streams (for a `src` coming from
/// memory).
fn transpose_streaming_src(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    debug_assert_eq!(src.len(), rows * cols);
    debug_assert_eq!(dst.len(), rows * cols);
    transpose_into::<true>(src, rows, cols, 0..cols, dst, rows);
}

/// Columns `cs` of the row-major `rows×cols` matrix `src`, transposed into the rows of
/// `dst` (leading dimension `ld`): `dst[(c − cs.start)·ld + r] = src[r·cols + c]`. Whole 8×8
/// blocks move through registers (eight loads, a shuffle network, eight stores), walking
/// eight rows of `src` at a time front to back (`BY_SRC_ROWS`) or eight rows of `dst`;
/// the ragged edges go one float at a time.
fn transpose_into<const BY_SRC_ROWS: bool>(
    src: &[f32],
    rows: usize,
    cols: usize,
    cs: std::ops::Range<usize>,
    dst: &mut [f32],
    ld: usize,
) {
    let (c0, n) = (cs.start, cs.len());
    let (r8, n8) = (rows / 8 * 8, n / 8 * 8);
    let load = |at: usize| f32x8::new(src[at..at + 8].try_into().expect("8 floats"));
    let mut block = |r: usize, c: usize| {
        let block = std::array::from_fn(|k| load((r + k) * cols + c0 + c));
        for (k, v) in f32x8::transpose(block).iter().enumerate() {
            dst[(c + k) * ld + r..][..8].copy_from_slice(v.as_array());
        }
    };
    if BY_SRC_ROWS {
        for r in (0..r8).step_by(8) {
            for c in (0..n8).step_by(8) {
                block(r, c);
            }
        }
    } else {
        for c in (0..n8).step_by(8) {
            for r in (0..r8).step_by(8) {
                block(r, c);
            }
        }
    }
    for c in 0..n {
        let from = if c < n8 { r8 } else { 0 };
        for r in from..rows {
            dst[c * ld + r] = src[r * cols + c0 + c];
        }
    }
}

/// [`transpose`] on the rayon pool, one block of `dst` rows per task, for matrices large
/// enough to pay for it.
fn transpose_par(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    const BLOCK: usize = 64;
    if rows * cols < 1 << 16 || cols <= BLOCK {
        return transpose(src, rows, cols, dst);
    }
    dst.par_chunks_mut(BLOCK * rows)
        .enumerate()
        .for_each(|(k, dst)| {
            let c0 = k * BLOCK;
            transpose_into::<false>(src, rows, cols, c0..c0 + dst.len() / rows, dst, rows);
        });
}

/// Events of one image, compacted: the nonzero pixels of input row `ih` of channel `c`
/// have columns `iw[k]` and values `v[k]` for `k` in `seg[c·h + ih]..seg[c·h + ih + 1]`.
/// Rows that reach no output have no events.
#[derive(Default)]
struct ImageEvents {
    iw: Vec<u32>,
    v: Vec<f32>,
    seg: Vec<usize>,
}

/// A thread's scratch for the convolution kernels, kept between calls so that a warm
/// thread allocates nothing per image: one image's channels-last output (forward) or
/// output gradient (weight gradient), 32-byte aligned so that no vector access splits a
/// cache line, and the image's events.
#[derive(Default)]
struct Scratch {
    floats: Vec<f32x8>,
    events: ImageEvents,
}

thread_local! {
    static SCRATCH: Cell<Scratch> = Cell::new(Scratch::default());
}

/// Runs `f` on this thread's scratch.
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    // Taken out of the cell, not borrowed, so a nested call allocates rather than panics.
    let mut scratch = SCRATCH.take();
    let out = f(&mut scratch);
    SCRATCH.set(scratch);
    out
}

/// The first `len` floats of `buf`, grown as needed; 32-byte aligned, contents
/// unspecified.
fn aligned(buf: &mut Vec<f32x8>, len: usize) -> &mut [f32] {
    if buf.len() < len.div_ceil(8) {
        buf.resize(len.div_ceil(8), f32x8::ZERO);
    }
    &mut wide::bytemuck::cast_slice_mut(buf)[..len]
}

// ---------------------------------------------------------------------------------------
// Linear layers
// ---------------------------------------------------------------------------------------

/// Panics with a clear message unless the slices fit a linear layer `fan_in → fan_out`
/// over `batch` rows: `x` (or the input) `batch·fan_in`, `w` `fan_out·fan_in`, `y`
/// `batch·fan_out`.
fn check_linear(kernel: &str, dims: [usize; 3], got: [usize; 3]) {
    let [batch, fan_in, fan_out] = dims;
    let want = [batch * fan_in, fan_out * fan_in, batch * fan_out];
    assert!(
        got == want,
        "{kernel}: slice lengths (x, w, y) = {got:?}, but batch {batch}, fan_in {fan_in}, \
         fan_out {fan_out} needs {want:?}"
    );
}

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
    fn fill(&mut self, x: &[f32], row_len: usize, cols: std::ops::Range<usize>) {
        let room = x.len() / row_len * cols.len() + 8;
        self.idx.resize(room, 0);
        self.val.resize(room, 0.0);
        self.start.clear();
        self.start.push(0);
        let mut n = 0;
        for row in x.chunks_exact(row_len) {
            n += compact(&row[cols.clone()], &mut self.idx[n..], &mut self.val[n..]);
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
    let dims = [batch, fan_in, fan_out];
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
        .zip(x.par_chunks(rows * fan_in))
        .for_each(|(y, x)| {
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
    let dims = [batch, fan_in, fan_out];
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
                let blocks = x
                    .chunks(LINEAR_BLOCK_ROWS * fan_in)
                    .zip(gy.chunks(LINEAR_BLOCK_ROWS * fan_out));
                for (x, gy) in blocks {
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

/// Dense linear forward pass, `y = x·wᵀ`: one [`sgemm`] with `w` transposed through its
/// strides. The path [`linear_forward_auto`] takes for dense inputs.
///
/// # Panics
/// If a slice length does not match the dimensions.
pub fn linear_forward_dense(
    batch: usize,
    fan_in: usize,
    fan_out: usize,
    x: &[f32],
    w: &[f32],
    y: &mut [f32],
) {
    let dims = [batch, fan_in, fan_out];
    check_linear("linear_forward_dense", dims, [x.len(), w.len(), y.len()]);
    let (k, n) = (fan_in as isize, fan_out as isize);
    sgemm(batch, fan_in, fan_out, 1.0, x, k, 1, w, 1, k, 0.0, y, n, 1);
}

/// Dense linear weight gradient, `gw = gyᵀ·x`: one [`sgemm`] with `gy` transposed through
/// its strides. The path [`linear_backward_weight_auto`] takes for dense inputs.
///
/// # Panics
/// If a slice length does not match the dimensions.
pub fn linear_backward_weight_dense(
    batch: usize,
    fan_in: usize,
    fan_out: usize,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
) {
    let dims = [batch, fan_in, fan_out];
    let got = [x.len(), gw.len(), gy.len()];
    check_linear("linear_backward_weight_dense", dims, got);
    let (k, n) = (fan_in as isize, fan_out as isize);
    sgemm(
        fan_out, batch, fan_in, 1.0, gy, 1, n, x, k, 1, 0.0, gw, k, 1,
    );
}

/// Dense linear input gradient, `gx = gy·w`: one [`sgemm`]. The path
/// [`linear_backward_input_auto`] takes for dense inputs.
///
/// # Panics
/// If a slice length does not match the dimensions.
pub fn linear_backward_input_dense(
    batch: usize,
    fan_in: usize,
    fan_out: usize,
    gy: &[f32],
    w: &[f32],
    gx: &mut [f32],
) {
    let dims = [batch, fan_in, fan_out];
    check_linear(
        "linear_backward_input_dense",
        dims,
        [gx.len(), w.len(), gy.len()],
    );
    let (k, n) = (fan_out as isize, fan_in as isize);
    sgemm(
        batch, fan_out, fan_in, 1.0, gy, k, 1, w, n, 1, 0.0, gx, n, 1,
    );
}

/// Linear input gradient at the nonzero inputs only: `gx[b, i] = Σ_o gy[b, o]·w[o, i]`
/// where `x[b, i] ≠ 0`, and 0 where `x` is 0 (see [`conv2d_backward_input_event`] for why).
/// `w` is transposed once per call, so each spike costs one contiguous dot product of
/// length `fan_out`; runs of rows in parallel, deterministic.
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
    let dims = [batch, fan_in, fan_out];
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
        .zip(x.par_chunks(rows * fan_in))
        .zip(gy.par_chunks(rows * fan_out))
        .for_each(|((gx, x), gy)| {
            let rows = x.chunks_exact(fan_in).zip(gy.chunks_exact(fan_out));
            for (gx, (x, gy)) in gx.chunks_exact_mut(fan_in).zip(rows) {
                for (i, (g, &v)) in gx.iter_mut().zip(x).enumerate() {
                    *g = if v == 0.0 {
                        0.0
                    } else {
                        dot(gy, &wt[i * fan_out..][..fan_out])
                    };
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
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) {
    if sparser_than(x, LINEAR_BACKWARD_INPUT_CROSSOVER * lane_use(fan_out)) {
        linear_backward_input_event(batch, fan_in, fan_out, x, w, gy, gx);
    } else {
        linear_backward_input_dense(batch, fan_in, fan_out, gy, w, gx);
    }
}

/// [`linear_forward_event`] when `x` is sparser than [`LINEAR_FORWARD_CROSSOVER`] (scaled
/// for fewer than 8 outputs, see [the module docs](self#dispatch)), [`linear_forward_dense`]
/// otherwise.
///
/// # Panics
/// If a slice length does not match the dimensions.
pub fn linear_forward_auto(
    batch: usize,
    fan_in: usize,
    fan_out: usize,
    x: &[f32],
    w: &[f32],
    y: &mut [f32],
) {
    if sparser_than(x, LINEAR_FORWARD_CROSSOVER * lane_use(fan_out)) {
        linear_forward_event(batch, fan_in, fan_out, x, w, y);
    } else {
        linear_forward_dense(batch, fan_in, fan_out, x, w, y);
    }
}

/// [`linear_backward_weight_event`] when `x` is sparser than
/// [`LINEAR_BACKWARD_WEIGHT_CROSSOVER`] (scaled for fewer than 8 outputs, see [the module
/// docs](self#dispatch)), [`linear_backward_weight_dense`] otherwise.
///
/// # Panics
/// If a slice length does not match the dimensions.
pub fn linear_backward_weight_auto(
    batch: usize,
    fan_in: usize,
    fan_out: usize,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
) {
    if sparser_than(x, LINEAR_BACKWARD_WEIGHT_CROSSOVER * lane_use(fan_out)) {
        linear_backward_weight_event(batch, fan_in, fan_out, x, gy, gw);
    } else {
        linear_backward_weight_dense(batch, fan_in, fan_out, x, gy, gw);
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

/// Zeroes `gx` wherever `x` is zero: the masked references are the dense ones, masked.
fn mask_by(x: &[f32], gx: &mut [f32]) {
    gx.iter_mut()
        .zip(x)
        .filter(|(_, v)| **v == 0.0)
        .for_each(|(g, _)| *g = 0.0);
}

// ---------------------------------------------------------------------------------------
// Convolutions
// ---------------------------------------------------------------------------------------

/// Where the contributions of each input pixel land, for a convolution or a transposed
/// convolution, in the channels-last layouts the event kernels work in:
///
/// - the packed weight `wp[c_in][kh][kw][c_out]`, tap `t = (c·kh + p)·kw + q'`;
/// - an image's output (or output gradient) `[out_h][out_w][c_out]`, position
///   `pos = oy·out_w + ox`.
///
/// Input pixel `(c, ih, iw)` with value `v` adds, for every `(p, oy)` in its row's list and
/// its column's run `(q0, ox0, n)`, `v·wp[t + k·tap_step]` into position `pos + k` for
/// `k < n`, with `t = (c·kh + p)·kw + q0` and `pos = oy·out_w + ox0`. For a convolution,
/// `q' = kw − 1 − q` (the kernel flipped left to right), so that along a run both the
/// taps and the output columns increase; for a transposed convolution `q' = q`.
#[derive(Debug)]
struct Scatter {
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    kh: usize,
    kw: usize,
    out_h: usize,
    out_w: usize,
    /// `(p, oy)` pairs of input row `ih`: `row_taps[row_start[ih]..row_start[ih + 1]]`.
    row_taps: Vec<(usize, usize)>,
    row_start: Vec<usize>,
    /// `(q0, ox0, n)` for each input column.
    col_runs: Vec<(usize, usize, usize)>,
    /// Packed taps between consecutive outputs of a column run.
    tap_step: usize,
}

impl Scatter {
    /// The geometry of convolution `s`: pixel `ih` feeds output row `oy` through tap
    /// `p = ih + padding − oy·stride`.
    fn conv2d(s: &Conv2dShape) -> Self {
        let (out_h, out_w) = (s.out_h(), s.out_w());
        // The output index a pixel reaches through a tap, if it reaches one.
        let reach = |i: usize, k: usize, out: usize| {
            let t = (i + s.padding).checked_sub(k)?;
            (t % s.stride == 0 && t / s.stride < out).then_some(t / s.stride)
        };
        let rows =
            (0..s.h).map(|ih| (0..s.kh).filter_map(move |p| Some((p, reach(ih, p, out_h)?))));
        let cols = (0..s.w)
            .map(|iw| (0..s.kw).filter_map(move |qf| Some((qf, reach(iw, s.kw - 1 - qf, out_w)?))));
        Self::build(
            [s.c_in, s.h, s.w, s.c_out, s.kh, s.kw, out_h, out_w],
            rows,
            cols,
            s.stride,
        )
    }

    /// The geometry of transposed convolution `s`: pixel `ih` stamps tap `p` onto output
    /// row `ih·stride + p − padding`.
    fn conv_transpose2d(s: &ConvTranspose2dShape) -> Self {
        let (out_h, out_w) = (s.out_h(), s.out_w());
        let reach = |i: usize, k: usize, out: usize| {
            let o = (i * s.stride + k).checked_sub(s.padding)?;
            (o < out).then_some(o)
        };
        let rows =
            (0..s.h).map(|ih| (0..s.kh).filter_map(move |p| Some((p, reach(ih, p, out_h)?))));
        let cols =
            (0..s.w).map(|iw| (0..s.kw).filter_map(move |q| Some((q, reach(iw, q, out_w)?))));
        Self::build(
            [s.c_in, s.h, s.w, s.c_out, s.kh, s.kw, out_h, out_w],
            rows,
            cols,
            1,
        )
    }

    /// Tables from each row's `(p, oy)` pairs and each column's `(q', ox)` pairs (in
    /// increasing `q'`, with `ox` rising by one as `q'` rises by `tap_step`).
    fn build<R, C>(
        dims: [usize; 8],
        rows: impl Iterator<Item = R>,
        cols: impl Iterator<Item = C>,
        tap_step: usize,
    ) -> Self
    where
        R: Iterator<Item = (usize, usize)>,
        C: Iterator<Item = (usize, usize)>,
    {
        let [c_in, h, w, c_out, kh, kw, out_h, out_w] = dims;
        let (mut row_taps, mut row_start) = (Vec::new(), vec![0]);
        for row in rows {
            row_taps.extend(row);
            row_start.push(row_taps.len());
        }
        let col_runs = cols
            .map(|mut col| {
                let Some((q0, ox0)) = col.next() else {
                    return (0, 0, 0);
                };
                let n = 1 + col.count();
                (q0, ox0, n)
            })
            .collect();
        Scatter {
            c_in,
            h,
            w,
            c_out,
            kh,
            kw,
            out_h,
            out_w,
            row_taps,
            row_start,
            col_runs,
            tap_step,
        }
    }

    fn image_len(&self) -> usize {
        self.c_in * self.h * self.w
    }

    fn out_len(&self) -> usize {
        self.c_out * self.out_h * self.out_w
    }

    fn packed_len(&self) -> usize {
        self.c_in * self.kh * self.kw * self.c_out
    }

    /// The nonzero pixels of image `x` into `ev`, row by row in the order `x` is stored
    /// in, so that it streams from memory.
    fn gather(&self, x: &[f32], ev: &mut ImageEvents) {
        // Room for every pixel, plus the slack `compact` writes past its last event.
        ev.iw.resize(x.len() + 8, 0);
        ev.v.resize(x.len() + 8, 0.0);
        ev.seg.clear();
        ev.seg.push(0);
        let mut n = 0;
        for plane in x.chunks_exact(self.h * self.w) {
            for (ih, row) in plane.chunks_exact(self.w).enumerate() {
                // Rows that reach no output (skipped by a strided window, past the last
                // window, or cropped away by a transposed convolution's padding) keep no
                // events.
                if self.row_start[ih] < self.row_start[ih + 1] {
                    n += compact(row, &mut ev.iw[n..], &mut ev.v[n..]);
                }
                ev.seg.push(n);
            }
        }
    }

    /// Calls `f(w, y, len)` for every pair of runs that the event at column `iw` of input
    /// row `ih` of channel `c` couples: `len` floats of the packed weight from `w` and as
    /// many of the channels-last output from `y`. See [`Scatter`] for the runs.
    #[inline(always)]
    fn event_runs(&self, c: usize, ih: usize, iw: usize, mut f: impl FnMut(usize, usize, usize)) {
        let co = self.c_out;
        let taps = &self.row_taps[self.row_start[ih]..self.row_start[ih + 1]];
        let (tap_row, out_row) = (self.kw * co, self.out_w * co);
        let (q0, ox0, n) = self.col_runs[iw];
        let (w0, y0) = (c * self.kh * tap_row + q0 * co, ox0 * co);
        if self.tap_step == 1 || n == 1 {
            // The whole run is contiguous on both sides: one pair per tap row.
            for &(p, oy) in taps {
                f(w0 + p * tap_row, y0 + oy * out_row, n * co);
            }
        } else {
            for &(p, oy) in taps {
                for k in 0..n {
                    let w = w0 + p * tap_row + k * self.tap_step * co;
                    f(w, y0 + oy * out_row + k * co, co);
                }
            }
        }
    }

    /// Adds the contributions of the events of input row `ih` of channel `c`: with
    /// `FORWARD`, `v·wp[taps]` into the channels-last output `dst` (`src` the packed
    /// weight); otherwise `v·g[positions]` into the packed gradient `dst` (`src` the
    /// channels-last output gradient).
    #[inline(always)]
    fn add_row<const FORWARD: bool>(
        &self,
        ev: &ImageEvents,
        c: usize,
        ih: usize,
        dst: &mut [f32],
        src: &[f32],
    ) {
        let k = c * self.h + ih;
        let (lo, hi) = (ev.seg[k], ev.seg[k + 1]);
        for (&iw, &v) in ev.iw[lo..hi].iter().zip(&ev.v[lo..hi]) {
            self.event_runs(c, ih, iw as usize, |w, y, len| {
                if FORWARD {
                    axpy(&mut dst[y..y + len], v, &src[w..w + len]);
                } else {
                    axpy(&mut dst[w..w + len], v, &src[y..y + len]);
                }
            });
        }
    }

    /// Forward pass of every image in `x` into `y`, images in parallel: the spikes of an
    /// image are scattered into a channels-last scratch, transposed into `y` at the end.
    ///
    /// The spikes are taken input row by input row (across channels), so the output rows
    /// being updated move down the image once and stay in L1 meanwhile.
    fn forward(&self, x: &[f32], wp: &[f32], y: &mut [f32]) {
        let positions = self.out_h * self.out_w;
        y.par_chunks_mut(self.out_len())
            .zip(x.par_chunks(self.image_len()))
            .for_each(|(y, x)| {
                with_scratch(|sc| {
                    self.gather(x, &mut sc.events);
                    let acc = aligned(&mut sc.floats, y.len());
                    acc.fill(0.0);
                    for ih in 0..self.h {
                        for c in 0..self.c_in {
                            self.add_row::<true>(&sc.events, c, ih, acc, wp);
                        }
                    }
                    transpose(acc, positions, self.c_out, y);
                });
            });
    }

    /// The packed weight gradient `Σ_images` of `v·gy` at every position each spike
    /// reached, and with `input = (wp, gx)` also the input gradient at the nonzero inputs
    /// (as [`Scatter::backward_input`]) in the same pass: each event's runs of the
    /// channels-last output gradient are read once for both. Each task sums a run of
    /// images into its own partial, whose boundaries depend on the shape only; the
    /// partials are then added in task order.
    ///
    /// The spikes are taken channel by channel, so the gradient rows being updated (one
    /// channel's taps) stay in L1.
    fn backward(
        &self,
        batch: usize,
        x: &[f32],
        gy: &[f32],
        input: Option<(&[f32], &mut [f32])>,
    ) -> Vec<f32x8> {
        let len = self.packed_len();
        let positions = self.out_h * self.out_w;
        let per_task = batch
            .div_ceil(MAX_TASKS.min(PARTIAL_BUDGET / len).max(1))
            .max(MIN_TASK_IMAGES);
        let tasks = batch.div_ceil(per_task);
        let (wp, gx_tasks): (&[f32], Vec<Option<&mut [f32]>>) = match input {
            Some((wp, gx)) => (
                wp,
                gx.chunks_mut(per_task * self.image_len())
                    .map(Some)
                    .collect(),
            ),
            None => (&[], (0..tasks).map(|_| None).collect()),
        };
        let partials: Vec<Vec<f32x8>> = x
            .par_chunks(per_task * self.image_len())
            .zip(gy.par_chunks(per_task * self.out_len()))
            .zip(gx_tasks)
            .map(|((x, gy), mut gx)| {
                let mut partial = vec![f32x8::ZERO; len.div_ceil(8)];
                let sum = aligned(&mut partial, len);
                with_scratch(|sc| {
                    let images = x.chunks_exact(self.image_len());
                    for (i, (x, gy)) in images.zip(gy.chunks_exact(self.out_len())).enumerate() {
                        self.gather(x, &mut sc.events);
                        let g = aligned(&mut sc.floats, gy.len());
                        transpose_streaming_src(gy, self.c_out, positions, g);
                        let Some(gx) = gx.as_deref_mut() else {
                            for c in 0..self.c_in {
                                for ih in 0..self.h {
                                    self.add_row::<false>(&sc.events, c, ih, sum, g);
                                }
                            }
                            continue;
                        };
                        let gx = &mut gx[i * self.image_len()..][..self.image_len()];
                        self.input_grad_image(&sc.events, wp, g, gx, |w, y, len, v| {
                            axpy(&mut sum[w..w + len], v, &g[y..y + len]);
                        });
                    }
                });
                partial
            })
            .collect();
        sum_in_order(partials)
    }

    /// The input gradient at the nonzero inputs of `x`, zero elsewhere: each event's
    /// `Σ wp[taps]·g[positions]` over the runs it reached in forward, `g` the image's
    /// output gradient made channels-last. Images in parallel; each value is one task's
    /// fixed-order sum.
    fn backward_input(&self, x: &[f32], wp: &[f32], gy: &[f32], gx: &mut [f32]) {
        let positions = self.out_h * self.out_w;
        gx.par_chunks_mut(self.image_len())
            .zip(x.par_chunks(self.image_len()))
            .zip(gy.par_chunks(self.out_len()))
            .for_each(|((gx, x), gy)| {
                with_scratch(|sc| {
                    self.gather(x, &mut sc.events);
                    let ev = &sc.events;
                    if ev.seg.last() == Some(&0) {
                        return gx.fill(0.0);
                    }
                    let g = aligned(&mut sc.floats, gy.len());
                    transpose_streaming_src(gy, self.c_out, positions, g);
                    self.input_grad_image(ev, wp, g, gx, |_, _, _, _| {});
                });
            });
    }

    /// One image's input gradient at its events into `gx` (zero elsewhere): each event's
    /// `Σ wp[runs]·g[runs]`, `g` the image's channels-last output gradient. `each_run(w, y,
    /// len, v)` is called on every run as well, for work that shares the walk (the fused
    /// weight gradient).
    #[inline(always)]
    fn input_grad_image(
        &self,
        ev: &ImageEvents,
        wp: &[f32],
        g: &[f32],
        gx: &mut [f32],
        mut each_run: impl FnMut(usize, usize, usize, f32),
    ) {
        gx.fill(0.0);
        for (k, gx) in gx.chunks_exact_mut(self.w).enumerate() {
            let (c, ih) = (k / self.h, k % self.h);
            let (lo, hi) = (ev.seg[k], ev.seg[k + 1]);
            for (&iw, &v) in ev.iw[lo..hi].iter().zip(&ev.v[lo..hi]) {
                let mut dot = Dot::default();
                self.event_runs(c, ih, iw as usize, |w, y, len| {
                    each_run(w, y, len, v);
                    dot.add(&wp[w..w + len], &g[y..y + len]);
                });
                gx[iw as usize] = dot.sum();
            }
        }
    }

    /// Iterates `(packed tap t, index of (c, p, q) in a [c_in][kh][kw] order)` pairs for
    /// a convolution's flipped packing.
    fn conv_taps(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.c_in * self.kh).flat_map(move |cp| {
            (0..self.kw).map(move |q| (cp * self.kw + self.kw - 1 - q, cp * self.kw + q))
        })
    }
}

/// Adds the partials elementwise in their order, blocks of the result in parallel, so the
/// order of every sum is fixed whatever thread ran what.
fn sum_in_order(partials: Vec<Vec<f32x8>>) -> Vec<f32x8> {
    const BLOCK: usize = 1 << 9;
    let mut partials = partials.into_iter();
    let mut sum = partials.next().expect("at least one partial");
    let rest: Vec<Vec<f32x8>> = partials.collect();
    sum.par_chunks_mut(BLOCK).enumerate().for_each(|(i, sum)| {
        let range = i * BLOCK..i * BLOCK + sum.len();
        for partial in &rest {
            sum.iter_mut()
                .zip(&partial[range.clone()])
                .for_each(|(s, p)| *s += *p);
        }
    });
    sum
}

/// Panics with a clear message unless the lengths of a kernel's `(x, w, y)` slices are
/// `want`.
fn check_lens(kernel: &str, shape: &impl std::fmt::Debug, got: [usize; 3], want: [usize; 3]) {
    assert!(
        got == want,
        "{kernel}: slice lengths (x, w, y) = {got:?}, but {shape:?} needs {want:?}"
    );
}

/// What the event kernels need of a convolution kind: its slice lengths `(x, w, y)`,
/// where each input pixel's contributions land ([`Scatter`]), and its weight in and out of
/// the packed `[c_in][kh][kw][c_out]` layout.
trait EventConv: std::fmt::Debug {
    fn batch(&self) -> usize;
    fn lens(&self) -> [usize; 3];
    fn scatter(&self) -> Scatter;
    /// The weight `w` packed for the scatter's taps.
    fn pack(&self, g: &Scatter, w: &[f32]) -> Vec<f32x8>;
    /// A packed weight gradient back into the weight's layout.
    fn unpack(&self, g: &Scatter, packed: &[f32], gw: &mut [f32]);
}

impl EventConv for Conv2dShape {
    fn batch(&self) -> usize {
        self.batch
    }

    fn lens(&self) -> [usize; 3] {
        [self.input_len(), self.weight_len(), self.output_len()]
    }

    fn scatter(&self) -> Scatter {
        Scatter::conv2d(self)
    }

    /// `w[o][c][p][q]` → `wp[c][p][kw − 1 − q][o]`.
    fn pack(&self, g: &Scatter, w: &[f32]) -> Vec<f32x8> {
        let mut packed = Vec::new();
        let wp = aligned(&mut packed, w.len());
        let mut flat = vec![0.0; w.len()];
        transpose(w, self.c_out, g.packed_len() / self.c_out, &mut flat);
        let co = self.c_out;
        for (t, src) in g.conv_taps() {
            wp[t * co..][..co].copy_from_slice(&flat[src * co..][..co]);
        }
        packed
    }

    fn unpack(&self, g: &Scatter, packed: &[f32], gw: &mut [f32]) {
        let mut flat = vec![0.0; gw.len()];
        let co = self.c_out;
        for (t, dst) in g.conv_taps() {
            flat[dst * co..][..co].copy_from_slice(&packed[t * co..][..co]);
        }
        transpose(&flat, g.packed_len() / co, co, gw);
    }
}

impl EventConv for ConvTranspose2dShape {
    fn batch(&self) -> usize {
        self.batch
    }

    fn lens(&self) -> [usize; 3] {
        [self.input_len(), self.weight_len(), self.output_len()]
    }

    fn scatter(&self) -> Scatter {
        Scatter::conv_transpose2d(self)
    }

    /// `w[c][o][p][q]` → `wp[c][p][q][o]`, one transpose per input channel.
    fn pack(&self, _: &Scatter, w: &[f32]) -> Vec<f32x8> {
        let taps = self.kh * self.kw;
        let mut packed = Vec::new();
        let wp = aligned(&mut packed, w.len());
        let pieces = w.chunks_exact(self.c_out * taps);
        for (src, dst) in pieces.zip(wp.chunks_exact_mut(self.c_out * taps)) {
            transpose(src, self.c_out, taps, dst);
        }
        packed
    }

    fn unpack(&self, _: &Scatter, packed: &[f32], gw: &mut [f32]) {
        let taps = self.kh * self.kw;
        let pieces = packed.chunks_exact(self.c_out * taps);
        for (src, dst) in pieces.zip(gw.chunks_exact_mut(self.c_out * taps)) {
            transpose(src, taps, self.c_out, dst);
        }
    }
}

/// The forward pass of either convolution kind over the nonzero inputs.
fn forward_event(kernel: &str, s: &impl EventConv, x: &[f32], w: &[f32], y: &mut [f32]) {
    check_lens(kernel, s, [x.len(), w.len(), y.len()], s.lens());
    if x.is_empty() || w.is_empty() || y.is_empty() {
        return y.fill(0.0);
    }
    let g = s.scatter();
    let mut wp = s.pack(&g, w);
    g.forward(x, aligned(&mut wp, w.len()), y);
}

/// The weight gradient of either convolution kind over the nonzero inputs, and with `gx`
/// the input gradient at them in the same pass.
fn backward_event(
    kernel: &str,
    s: &impl EventConv,
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    gx: Option<&mut [f32]>,
    gw: &mut [f32],
) {
    check_lens(kernel, s, [x.len(), gw.len(), gy.len()], s.lens());
    if let Some(gx) = &gx {
        assert_eq!(gx.len(), x.len(), "{kernel}: gx must be as long as x");
    }
    if x.is_empty() || gy.is_empty() || gw.is_empty() {
        if let Some(gx) = gx {
            gx.fill(0.0);
        }
        return gw.fill(0.0);
    }
    let g = s.scatter();
    let mut wp = gx.as_ref().map(|_| s.pack(&g, w)).unwrap_or_default();
    let input = gx.map(|gx| (aligned(&mut wp, w.len()) as &[f32], gx));
    let mut packed = g.backward(s.batch(), x, gy, input);
    s.unpack(&g, aligned(&mut packed, gw.len()), gw);
}

/// The input gradient of either convolution kind at the nonzero inputs, zero elsewhere.
fn backward_input_event(
    kernel: &str,
    s: &impl EventConv,
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) {
    check_lens(kernel, s, [x.len(), w.len(), gy.len()], s.lens());
    assert_eq!(gx.len(), x.len(), "{kernel}: gx must be as long as x");
    if w.is_empty() || gy.is_empty() {
        return gx.fill(0.0);
    }
    let g = s.scatter();
    let mut wp = s.pack(&g, w);
    g.backward_input(x, aligned(&mut wp, w.len()), gy, gx);
}

/// Convolution forward pass over the nonzero inputs only: `y ← conv2d(x, w)` (see
/// [`Conv2dShape`]), where each nonzero `x[b, c, ih, iw]` adds `x·w[:, c, p, q]` into every
/// output position `(oh, ow)` with `oh·stride + p − padding = ih` and likewise for `ow`.
///
/// The weight is repacked once per call as `[c_in][kh][kw][c_out]`, so each spike adds
/// runs of contiguous floats into a channels-last scratch image (one per thread, reused
/// across calls); images run in parallel.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv2d_forward_event(s: &Conv2dShape, x: &[f32], w: &[f32], y: &mut [f32]) {
    forward_event("conv2d_forward_event", s, x, w, y);
}

/// Convolution weight gradient over the nonzero inputs only: `gw[o, c, p, q] = Σ x·gy[b, o,
/// oh, ow]` over every nonzero `x[b, c, ih, iw]` and the output positions it reached
/// through tap `(p, q)`.
///
/// Each task sums a run of images (fixed by the shape) into a private partial; the partials
/// are added in task order, so the result is bit-for-bit the same on any number of
/// threads.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv2d_backward_weight_event(s: &Conv2dShape, x: &[f32], gy: &[f32], gw: &mut [f32]) {
    backward_event("conv2d_backward_weight_event", s, x, &[], gy, None, gw);
}

/// Transposed convolution forward pass over the nonzero inputs only: `y ←
/// conv_transpose2d(x, w)` (see [`ConvTranspose2dShape`]): each nonzero `x[b, c, i, j]`
/// stamps `x·w[c, :, :, :]` onto the output window at `(i·stride − padding, j·stride −
/// padding)`.
///
/// Same scheme as [`conv2d_forward_event`], with the weight repacked as
/// `[c_in][kh][kw][c_out]`.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv_transpose2d_forward_event(
    s: &ConvTranspose2dShape,
    x: &[f32],
    w: &[f32],
    y: &mut [f32],
) {
    forward_event("conv_transpose2d_forward_event", s, x, w, y);
}

/// Transposed convolution weight gradient over the nonzero inputs only: `gw[c, o, p, q] =
/// Σ x[b, c, i, j]·gy[b, o, i·stride + p − padding, j·stride + q − padding]` over the
/// nonzero `x` (and the output positions inside the output).
///
/// Deterministic across thread counts, as [`conv2d_backward_weight_event`].
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv_transpose2d_backward_weight_event(
    s: &ConvTranspose2dShape,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
) {
    let kernel = "conv_transpose2d_backward_weight_event";
    backward_event(kernel, s, x, &[], gy, None, gw);
}

/// Convolution input gradient at the nonzero inputs only: `gx[b, c, ih, iw] = Σ gy[b, o, oh,
/// ow]·w[o, c, p, q]` over the outputs the input reached (as [`conv2d_backward_input`])
/// where `x[b, c, ih, iw] ≠ 0`, and 0 where `x` is 0.
///
/// For inputs whose gradient is only ever read where they are nonzero, such as spikes
/// under the `membrane` surrogate (`∂s/∂v = s/θ`): the work is one dot product per
/// spike, over the same runs the forward scatter adds into, read from the output
/// gradient made channels-last per image. Images in parallel; deterministic.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv2d_backward_input_event(
    s: &Conv2dShape,
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) {
    backward_input_event("conv2d_backward_input_event", s, x, w, gy, gx);
}

/// Transposed convolution input gradient at the nonzero inputs only, zero elsewhere (see
/// [`conv2d_backward_input_event`]): `gx[b, c, i, j] = Σ gy[b, o, i·stride + p − padding,
/// j·stride + q − padding]·w[c, o, p, q]` where `x[b, c, i, j] ≠ 0`.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv_transpose2d_backward_input_event(
    s: &ConvTranspose2dShape,
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) {
    backward_input_event("conv_transpose2d_backward_input_event", s, x, w, gy, gx);
}

/// Convolution weight gradient ([`conv2d_backward_weight_event`]) and input gradient at the
/// nonzero inputs only ([`conv2d_backward_input_event`]) in one pass over the spikes, each
/// event's output-gradient runs read once for both. Deterministic across thread counts.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv2d_backward_event(
    s: &Conv2dShape,
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
    gw: &mut [f32],
) {
    backward_event("conv2d_backward_event", s, x, w, gy, Some(gx), gw);
}

/// Transposed convolution weight gradient and input gradient at the nonzero inputs only in
/// one pass (see [`conv2d_backward_event`]).
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv_transpose2d_backward_event(
    s: &ConvTranspose2dShape,
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
    gw: &mut [f32],
) {
    backward_event("conv_transpose2d_backward_event", s, x, w, gy, Some(gx), gw);
}

/// [`conv2d_backward_event`] when `x` is sparser than [`CONV2D_BACKWARD_CROSSOVER`] (scaled
/// for fewer than 8 output channels), else the two gradients by their own dispatchers.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv2d_backward_auto(
    s: &Conv2dShape,
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
    gw: &mut [f32],
) {
    if sparser_than(x, CONV2D_BACKWARD_CROSSOVER * lane_use(s.c_out)) {
        conv2d_backward_event(s, x, w, gy, gx, gw);
    } else {
        conv2d_backward_input_auto(s, x, w, gy, gx);
        conv2d_backward_weight_auto(s, x, gy, gw);
    }
}

/// [`conv_transpose2d_backward_event`] when `x` is sparser than
/// [`CONV_TRANSPOSE2D_BACKWARD_CROSSOVER`] (scaled for fewer than 8 output channels), else
/// the two gradients by their own dispatchers.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv_transpose2d_backward_auto(
    s: &ConvTranspose2dShape,
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
    gw: &mut [f32],
) {
    if sparser_than(x, CONV_TRANSPOSE2D_BACKWARD_CROSSOVER * lane_use(s.c_out)) {
        conv_transpose2d_backward_event(s, x, w, gy, gx, gw);
    } else {
        conv_transpose2d_backward_input_auto(s, x, w, gy, gx);
        conv_transpose2d_backward_weight_auto(s, x, gy, gw);
    }
}

/// [`conv2d_backward_input_event`] when `x` is sparser than
/// [`CONV2D_BACKWARD_INPUT_CROSSOVER`] (scaled for fewer than 8 output channels), the dense
/// [`conv2d_backward_input`] otherwise, which is exact at the zero inputs too.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv2d_backward_input_auto(
    s: &Conv2dShape,
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) {
    if sparser_than(x, CONV2D_BACKWARD_INPUT_CROSSOVER * lane_use(s.c_out)) {
        conv2d_backward_input_event(s, x, w, gy, gx);
    } else {
        conv2d_backward_input(s, gy, w, gx);
    }
}

/// [`conv_transpose2d_backward_input_event`] when `x` is sparser than
/// [`CONV_TRANSPOSE2D_BACKWARD_INPUT_CROSSOVER`] (scaled for fewer than 8 output channels),
/// the dense [`conv_transpose2d_backward_input`] otherwise.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv_transpose2d_backward_input_auto(
    s: &ConvTranspose2dShape,
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) {
    if sparser_than(
        x,
        CONV_TRANSPOSE2D_BACKWARD_INPUT_CROSSOVER * lane_use(s.c_out),
    ) {
        conv_transpose2d_backward_input_event(s, x, w, gy, gx);
    } else {
        conv_transpose2d_backward_input(s, gy, w, gx);
    }
}

/// [`conv2d_forward_event`] when `x` is sparser than [`CONV2D_FORWARD_CROSSOVER`] (scaled
/// for fewer than 8 output channels, see [the module docs](self#dispatch)),
/// [`conv2d_forward`] otherwise.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv2d_forward_auto(s: &Conv2dShape, x: &[f32], w: &[f32], y: &mut [f32]) {
    if sparser_than(x, CONV2D_FORWARD_CROSSOVER * lane_use(s.c_out)) {
        conv2d_forward_event(s, x, w, y);
    } else {
        conv2d_forward(s, x, w, y);
    }
}

/// [`conv2d_backward_weight_event`] when `x` is sparser than
/// [`CONV2D_BACKWARD_WEIGHT_CROSSOVER`] (scaled for fewer than 8 output channels, see [the
/// module docs](self#dispatch)), [`conv2d_backward_weight`] otherwise.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv2d_backward_weight_auto(s: &Conv2dShape, x: &[f32], gy: &[f32], gw: &mut [f32]) {
    if sparser_than(x, CONV2D_BACKWARD_WEIGHT_CROSSOVER * lane_use(s.c_out)) {
        conv2d_backward_weight_event(s, x, gy, gw);
    } else {
        conv2d_backward_weight(s, x, gy, gw);
    }
}

/// [`conv_transpose2d_forward_event`] when `x` is sparser than
/// [`CONV_TRANSPOSE2D_FORWARD_CROSSOVER`] (scaled for fewer than 8 output channels, see
/// [the module docs](self#dispatch)), [`conv_transpose2d_forward`] otherwise.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv_transpose2d_forward_auto(
    s: &ConvTranspose2dShape,
    x: &[f32],
    w: &[f32],
    y: &mut [f32],
) {
    if sparser_than(x, CONV_TRANSPOSE2D_FORWARD_CROSSOVER * lane_use(s.c_out)) {
        conv_transpose2d_forward_event(s, x, w, y);
    } else {
        conv_transpose2d_forward(s, x, w, y);
    }
}

/// [`conv_transpose2d_backward_weight_event`] when `x` is sparser than
/// [`CONV_TRANSPOSE2D_BACKWARD_WEIGHT_CROSSOVER`] (scaled for fewer than 8 output channels,
/// see [the module docs](self#dispatch)), [`conv_transpose2d_backward_weight`] otherwise.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv_transpose2d_backward_weight_auto(
    s: &ConvTranspose2dShape,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
) {
    if sparser_than(
        x,
        CONV_TRANSPOSE2D_BACKWARD_WEIGHT_CROSSOVER * lane_use(s.c_out),
    ) {
        conv_transpose2d_backward_weight_event(s, x, gy, gw);
    } else {
        conv_transpose2d_backward_weight(s, x, gy, gw);
    }
}

/// Calls `tap(xi, wi, yi)` for every nonzero `x[xi]` and every product `x[xi]·w[wi]` the
/// convolution `s` adds into `y[yi]`, scattering from the input side: output `(oh, ow)`
/// is reached through tap `(p, q)` when `oh·stride + p − padding = ih` and likewise for
/// `ow`.
fn conv2d_events(s: &Conv2dShape, x: &[f32], mut tap: impl FnMut(usize, usize, usize)) {
    let (oh, ow) = (s.out_h(), s.out_w());
    let reach = |i: usize, k: usize, out: usize| {
        let t = (i + s.padding).checked_sub(k)?;
        (t % s.stride == 0 && t / s.stride < out).then_some(t / s.stride)
    };
    for b in 0..s.batch {
        for c in 0..s.c_in {
            for ih in 0..s.h {
                for iw in 0..s.w {
                    let xi = ((b * s.c_in + c) * s.h + ih) * s.w + iw;
                    if x[xi] == 0.0 {
                        continue;
                    }
                    for o in 0..s.c_out {
                        for p in 0..s.kh {
                            for q in 0..s.kw {
                                if let (Some(i), Some(j)) = (reach(ih, p, oh), reach(iw, q, ow)) {
                                    let yi = ((b * s.c_out + o) * oh + i) * ow + j;
                                    let wi = ((o * s.c_in + c) * s.kh + p) * s.kw + q;
                                    tap(xi, wi, yi);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Calls `tap(xi, wi, yi)` for every nonzero `x[xi]` and every product `x[xi]·w[wi]` the
/// transposed convolution `s` stamps into `y[yi]`.
fn conv_transpose2d_events(
    s: &ConvTranspose2dShape,
    x: &[f32],
    mut tap: impl FnMut(usize, usize, usize),
) {
    let (oh, ow) = (s.out_h(), s.out_w());
    let reach = |i: usize, k: usize, out: usize| {
        let o = (i * s.stride + k).checked_sub(s.padding)?;
        (o < out).then_some(o)
    };
    for b in 0..s.batch {
        for c in 0..s.c_in {
            for i in 0..s.h {
                for j in 0..s.w {
                    let xi = ((b * s.c_in + c) * s.h + i) * s.w + j;
                    if x[xi] == 0.0 {
                        continue;
                    }
                    for o in 0..s.c_out {
                        for p in 0..s.kh {
                            for q in 0..s.kw {
                                if let (Some(oy), Some(ox)) = (reach(i, p, oh), reach(j, q, ow)) {
                                    let yi = ((b * s.c_out + o) * oh + oy) * ow + ox;
                                    let wi = ((c * s.c_out + o) * s.kh + p) * s.kw + q;
                                    tap(xi, wi, yi);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Reference for [`conv2d_forward_event`]: every nonzero input pixel scattered through
/// every tap, `f64` sums.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv2d_forward_event_ref(s: &Conv2dShape, x: &[f32], w: &[f32], y: &mut [f32]) {
    let got = [x.len(), w.len(), y.len()];
    check_lens("conv2d_forward_event_ref", s, got, s.lens());
    accumulate(y, |y| {
        conv2d_events(s, x, |xi, wi, yi| y[yi] += product(x[xi], w[wi]))
    });
}

/// Reference for [`conv2d_backward_weight_event`]: `gw[wi] += x[xi]·gy[yi]` over the taps of
/// every nonzero input pixel, `f64` sums.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv2d_backward_weight_event_ref(s: &Conv2dShape, x: &[f32], gy: &[f32], gw: &mut [f32]) {
    let got = [x.len(), gw.len(), gy.len()];
    check_lens("conv2d_backward_weight_event_ref", s, got, s.lens());
    accumulate(gw, |gw| {
        conv2d_events(s, x, |xi, wi, yi| gw[wi] += product(x[xi], gy[yi]))
    });
}

/// Reference for [`conv_transpose2d_forward_event`]: every nonzero input pixel stamped
/// through every tap, `f64` sums.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv_transpose2d_forward_event_ref(
    s: &ConvTranspose2dShape,
    x: &[f32],
    w: &[f32],
    y: &mut [f32],
) {
    let got = [x.len(), w.len(), y.len()];
    let want = s.lens();
    check_lens("conv_transpose2d_forward_event_ref", s, got, want);
    accumulate(y, |y| {
        conv_transpose2d_events(s, x, |xi, wi, yi| y[yi] += product(x[xi], w[wi]))
    });
}

/// Reference for [`conv_transpose2d_backward_weight_event`]: `gw[wi] += x[xi]·gy[yi]` over
/// the taps of every nonzero input pixel, `f64` sums.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv_transpose2d_backward_weight_event_ref(
    s: &ConvTranspose2dShape,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
) {
    let got = [x.len(), gw.len(), gy.len()];
    let want = s.lens();
    check_lens("conv_transpose2d_backward_weight_event_ref", s, got, want);
    accumulate(gw, |gw| {
        conv_transpose2d_events(s, x, |xi, wi, yi| gw[wi] += product(x[xi], gy[yi]))
    });
}

/// Reference for [`conv2d_backward_input_event`]: the dense reference
/// [`conv2d_backward_input_ref`], zeroed where `x` is zero.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv2d_backward_input_event_ref(
    s: &Conv2dShape,
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) {
    crate::conv::conv2d_backward_input_ref(s, gy, w, gx);
    mask_by(x, gx);
}

/// Reference for [`conv_transpose2d_backward_input_event`]: the dense reference
/// [`conv_transpose2d_backward_input_ref`](crate::conv::conv_transpose2d_backward_input_ref),
/// zeroed where `x` is zero.
///
/// # Panics
/// If the shape is invalid or a slice length does not match it.
pub fn conv_transpose2d_backward_input_event_ref(
    s: &ConvTranspose2dShape,
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) {
    crate::conv::conv_transpose2d_backward_input_ref(s, gy, w, gx);
    mask_by(x, gx);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{assert_close, conv_transpose2d_shapes, conv2d_shapes, random_vec};
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    /// `len` inputs, each nonzero with probability `density`: 1.0 (a spike), or when
    /// `analog` a nonzero value drawn from `[-1, 1)`. Density 1 gives all ones (or all
    /// nonzero), density 0 all zeros.
    fn spikes(len: usize, density: f64, analog: bool, seed: u64) -> Vec<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..len)
            .map(|_| {
                if !rng.random_bool(density) {
                    0.0
                } else if analog {
                    let v: f32 = rng.random_range(-1.0..1.0);
                    if v == 0.0 { 0.5 } else { v }
                } else {
                    1.0
                }
            })
            .collect()
    }

    /// The densities the tests cover: none, sparse, half, all.
    fn any_density() -> impl Strategy<Value = f64> {
        prop_oneof![Just(0.0), Just(0.05), Just(0.5), Just(1.0)]
    }

    /// The output of `f` writing into a buffer of `len` NaNs (so unwritten output shows).
    fn run(len: usize, f: impl FnOnce(&mut [f32])) -> Vec<f32> {
        let mut out = vec![f32::NAN; len];
        f(&mut out);
        out
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|f| f.to_bits()).collect()
    }

    /// Random convolution shapes, mostly tiny, occasionally with more than 8 output
    /// channels (several SIMD blocks per position).
    fn conv2d_shape() -> impl Strategy<Value = Conv2dShape> {
        let c_out = prop_oneof![1usize..4, 9usize..20];
        conv2d_shapes(prop_oneof![3 => 0usize..4, 1 => 9usize..14], c_out, 10)
    }

    fn conv_transpose2d_shape() -> impl Strategy<Value = ConvTranspose2dShape> {
        conv_transpose2d_shapes(conv2d_shape())
    }

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
            let got = run(ny, |y| linear_forward_auto(batch, fan_in, fan_out, &x, &w, y));
            assert_close(&got, &want, 1e-4);

            let want = run(nw, |g| linear_backward_weight_event_ref(batch, fan_in, fan_out, &x, &gy, g));
            let dense = run(nw, |g| linear_backward_weight_dense(batch, fan_in, fan_out, &x, &gy, g));
            assert_close(&dense, &want, 1e-4);
            let got = run(nw, |g| linear_backward_weight_event(batch, fan_in, fan_out, &x, &gy, g));
            assert_close(&got, &want, 1e-4);
            let got = run(nw, |g| linear_backward_weight_auto(batch, fan_in, fan_out, &x, &gy, g));
            assert_close(&got, &want, 1e-4);

            let nx = batch * fan_in;
            let want = run(nx, |g| linear_backward_input_event_ref(batch, fan_in, fan_out, &x, &w, &gy, g));
            let got = run(nx, |g| linear_backward_input_event(batch, fan_in, fan_out, &x, &w, &gy, g));
            assert_close(&got, &want, 1e-4);
            let mut dense = run(nx, |g| linear_backward_input_dense(batch, fan_in, fan_out, &gy, &w, g));
            mask_by(&x, &mut dense);
            assert_close(&dense, &want, 1e-4);
            let mut got = run(nx, |g| linear_backward_input_auto(batch, fan_in, fan_out, &x, &w, &gy, g));
            mask_by(&x, &mut got);
            assert_close(&got, &want, 1e-4);
        }

        #[test]
        fn conv2d_matches_reference_and_dense(
            s in conv2d_shape(),
            density in any_density(),
            analog in any::<bool>(),
            seed in any::<u64>(),
        ) {
            let (nx, nw, ny) = (s.input_len(), s.weight_len(), s.output_len());
            let x = spikes(nx, density, analog, seed);
            let (w, gy) = (random_vec(nw, seed + 1), random_vec(ny, seed + 2));

            let want = run(ny, |y| conv2d_forward_event_ref(&s, &x, &w, y));
            assert_close(&run(ny, |y| conv2d_forward(&s, &x, &w, y)), &want, 1e-4);
            assert_close(&run(ny, |y| conv2d_forward_event(&s, &x, &w, y)), &want, 1e-4);
            assert_close(&run(ny, |y| conv2d_forward_auto(&s, &x, &w, y)), &want, 1e-4);

            let want = run(nw, |g| conv2d_backward_weight_event_ref(&s, &x, &gy, g));
            assert_close(&run(nw, |g| conv2d_backward_weight(&s, &x, &gy, g)), &want, 1e-4);
            assert_close(&run(nw, |g| conv2d_backward_weight_event(&s, &x, &gy, g)), &want, 1e-4);
            assert_close(&run(nw, |g| conv2d_backward_weight_auto(&s, &x, &gy, g)), &want, 1e-4);

            let want = run(nx, |g| conv2d_backward_input_event_ref(&s, &x, &w, &gy, g));
            assert_close(&run(nx, |g| conv2d_backward_input_event(&s, &x, &w, &gy, g)), &want, 1e-4);
            let want_w = run(nw, |g| conv2d_backward_weight_event_ref(&s, &x, &gy, g));
            let (mut gx, mut gw) = (vec![f32::NAN; nx], vec![f32::NAN; nw]);
            conv2d_backward_event(&s, &x, &w, &gy, &mut gx, &mut gw);
            assert_close(&gx, &want, 1e-4);
            assert_close(&gw, &want_w, 1e-4);
            conv2d_backward_auto(&s, &x, &w, &gy, &mut gx, &mut gw);
            mask_by(&x, &mut gx);
            assert_close(&gx, &want, 1e-4);
            assert_close(&gw, &want_w, 1e-4);
            let mut got = run(nx, |g| conv2d_backward_input_auto(&s, &x, &w, &gy, g));
            mask_by(&x, &mut got);
            assert_close(&got, &want, 1e-4);
        }

        #[test]
        fn conv_transpose2d_matches_reference_and_dense(
            s in conv_transpose2d_shape(),
            density in any_density(),
            analog in any::<bool>(),
            seed in any::<u64>(),
        ) {
            let (nx, nw, ny) = (s.input_len(), s.weight_len(), s.output_len());
            let x = spikes(nx, density, analog, seed);
            let (w, gy) = (random_vec(nw, seed + 1), random_vec(ny, seed + 2));

            let want = run(ny, |y| conv_transpose2d_forward_event_ref(&s, &x, &w, y));
            assert_close(&run(ny, |y| conv_transpose2d_forward(&s, &x, &w, y)), &want, 1e-4);
            assert_close(&run(ny, |y| conv_transpose2d_forward_event(&s, &x, &w, y)), &want, 1e-4);
            assert_close(&run(ny, |y| conv_transpose2d_forward_auto(&s, &x, &w, y)), &want, 1e-4);

            let want = run(nw, |g| conv_transpose2d_backward_weight_event_ref(&s, &x, &gy, g));
            let dense = run(nw, |g| conv_transpose2d_backward_weight(&s, &x, &gy, g));
            assert_close(&dense, &want, 1e-4);
            let got = run(nw, |g| conv_transpose2d_backward_weight_event(&s, &x, &gy, g));
            assert_close(&got, &want, 1e-4);
            let got = run(nw, |g| conv_transpose2d_backward_weight_auto(&s, &x, &gy, g));
            assert_close(&got, &want, 1e-4);

            let want = run(nx, |g| conv_transpose2d_backward_input_event_ref(&s, &x, &w, &gy, g));
            let got = run(nx, |g| conv_transpose2d_backward_input_event(&s, &x, &w, &gy, g));
            assert_close(&got, &want, 1e-4);
            let want_w = run(nw, |g| conv_transpose2d_backward_weight_event_ref(&s, &x, &gy, g));
            let (mut gx, mut gw) = (vec![f32::NAN; nx], vec![f32::NAN; nw]);
            conv_transpose2d_backward_event(&s, &x, &w, &gy, &mut gx, &mut gw);
            assert_close(&gx, &want, 1e-4);
            assert_close(&gw, &want_w, 1e-4);
            conv_transpose2d_backward_auto(&s, &x, &w, &gy, &mut gx, &mut gw);
            mask_by(&x, &mut gx);
            assert_close(&gx, &want, 1e-4);
            assert_close(&gw, &want_w, 1e-4);
            let mut got = run(nx, |g| conv_transpose2d_backward_input_auto(&s, &x, &w, &gy, g));
            mask_by(&x, &mut got);
            assert_close(&got, &want, 1e-4);
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
    fn conv_by_hand() {
        // One spike in the middle of a 3×3 image, a 2×2 kernel [1 2; 3 4]: each of the four
        // windows containing the centre sees it through a different tap.
        let s = Conv2dShape {
            batch: 1,
            c_in: 1,
            h: 3,
            w: 3,
            c_out: 1,
            kh: 2,
            kw: 2,
            stride: 1,
            padding: 0,
        };
        let x = [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        let w = [1.0, 2.0, 3.0, 4.0];
        let y = run(4, |y| conv2d_forward_event(&s, &x, &w, y));
        assert_eq!(y, [4.0, 3.0, 2.0, 1.0]);
        // The transposed convolution stamps the kernel at the spike: a 4×4 output.
        let t = ConvTranspose2dShape {
            batch: 1,
            c_in: 1,
            h: 3,
            w: 3,
            c_out: 1,
            kh: 2,
            kw: 2,
            stride: 1,
            padding: 0,
            output_padding: 0,
        };
        let y = run(16, |y| conv_transpose2d_forward_event(&t, &x, &w, y));
        #[rustfmt::skip]
        let want = [
            0.0, 0.0, 0.0, 0.0,
            0.0, 1.0, 2.0, 0.0,
            0.0, 3.0, 4.0, 0.0,
            0.0, 0.0, 0.0, 0.0,
        ];
        assert_eq!(y, want);
    }

    /// The shapes of the paper's network, at their typical densities, on a few frames.
    #[test]
    fn network_shapes_match_dense() {
        let conv = |batch, c_in, hw, c_out| Conv2dShape {
            batch,
            c_in,
            h: hw,
            w: hw,
            c_out,
            kh: 5,
            kw: 5,
            stride: 1,
            padding: 0,
        };
        for (i, (s, d)) in [(conv(3, 1, 28, 16), 0.03), (conv(2, 16, 24, 32), 0.2)]
            .into_iter()
            .enumerate()
        {
            let seed = 10 * i as u64;
            let x = spikes(s.input_len(), d, false, seed);
            let w = random_vec(s.weight_len(), seed + 1);
            let gy = random_vec(s.output_len(), seed + 2);
            let want = run(s.output_len(), |y| conv2d_forward(&s, &x, &w, y));
            let got = run(s.output_len(), |y| conv2d_forward_event(&s, &x, &w, y));
            assert_close(&got, &want, 1e-4);
            let want = run(s.weight_len(), |g| conv2d_backward_weight(&s, &x, &gy, g));
            let got = run(s.weight_len(), |g| {
                conv2d_backward_weight_event(&s, &x, &gy, g)
            });
            assert_close(&got, &want, 1e-4);
        }
        let tconv = |batch, c_in, hw, c_out| ConvTranspose2dShape {
            batch,
            c_in,
            h: hw,
            w: hw,
            c_out,
            kh: 5,
            kw: 5,
            stride: 1,
            padding: 0,
            output_padding: 0,
        };
        for (i, (s, d)) in [(tconv(2, 32, 20, 16), 0.16), (tconv(3, 16, 24, 1), 0.02)]
            .into_iter()
            .enumerate()
        {
            let seed = 100 + 10 * i as u64;
            let x = spikes(s.input_len(), d, false, seed);
            let w = random_vec(s.weight_len(), seed + 1);
            let gy = random_vec(s.output_len(), seed + 2);
            let want = run(s.output_len(), |y| conv_transpose2d_forward(&s, &x, &w, y));
            let got = run(s.output_len(), |y| {
                conv_transpose2d_forward_event(&s, &x, &w, y)
            });
            assert_close(&got, &want, 1e-4);
            let want = run(s.weight_len(), |g| {
                conv_transpose2d_backward_weight(&s, &x, &gy, g)
            });
            let got = run(s.weight_len(), |g| {
                conv_transpose2d_backward_weight_event(&s, &x, &gy, g)
            });
            assert_close(&got, &want, 1e-4);
        }
    }

    #[test]
    fn weight_gradients_are_identical_on_one_and_two_threads() {
        let s = Conv2dShape {
            batch: 150,
            c_in: 3,
            h: 11,
            w: 9,
            c_out: 12,
            kh: 3,
            kw: 3,
            stride: 1,
            padding: 1,
        };
        let x = spikes(s.input_len(), 0.2, true, 1);
        let gy = random_vec(s.output_len(), 2);
        let t = ConvTranspose2dShape {
            batch: 150,
            c_in: 4,
            h: 6,
            w: 5,
            c_out: 3,
            kh: 3,
            kw: 3,
            stride: 2,
            padding: 1,
            output_padding: 1,
        };
        let tx = spikes(t.input_len(), 0.2, true, 3);
        let tgy = random_vec(t.output_len(), 4);
        let (batch, fan_in, fan_out) = (300, 40, 1100);
        let lx = spikes(batch * fan_in, 0.2, true, 5);
        let lgy = random_vec(batch * fan_out, 6);
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                [
                    run(s.weight_len(), |g| {
                        conv2d_backward_weight_event(&s, &x, &gy, g)
                    }),
                    run(t.weight_len(), |g| {
                        conv_transpose2d_backward_weight_event(&t, &tx, &tgy, g)
                    }),
                    run(fan_in * fan_out, |g| {
                        linear_backward_weight_event(batch, fan_in, fan_out, &lx, &lgy, g)
                    }),
                ]
            })
        };
        let (one, two) = (on(1), on(2));
        for (a, b) in one.iter().zip(&two) {
            assert_eq!(bits(a), bits(b));
        }
    }

    #[test]
    fn density_counts_nonzeros() {
        assert_eq!(density(&[]), 0.0);
        assert_eq!(density(&[0.0, 1.0, -0.0, 0.5]), 0.5);
        assert_eq!(density(&[f32::NAN, 0.0]), 0.5);
        let x = spikes(10_000, 0.05, false, 3);
        assert!((density(&x) - 0.05).abs() < 0.01);
        assert!(sparser_than(&x, 0.1));
        assert!(!sparser_than(&x, 0.01));
        assert!(sparser_than(&[], 0.1));
        assert_eq!(lane_use(1), 0.125);
        assert_eq!(lane_use(9), 9.0 / 16.0);
        assert_eq!((lane_use(8), lane_use(16), lane_use(32)), (1.0, 1.0, 1.0));
    }

    #[test]
    fn transposes_match_naive() {
        for (rows, cols) in [
            (1, 1),
            (3, 5),
            (8, 8),
            (17, 9),
            (24, 33),
            (130, 700),
            (700, 130),
        ] {
            let src = random_vec(rows * cols, (rows * cols) as u64);
            let want: Vec<f32> = (0..rows * cols)
                .map(|k| src[(k % rows) * cols + k / rows])
                .collect();
            assert_eq!(run(rows * cols, |d| transpose(&src, rows, cols, d)), want);
            let got = run(rows * cols, |d| {
                transpose_streaming_src(&src, rows, cols, d)
            });
            assert_eq!(got, want);
            assert_eq!(
                run(rows * cols, |d| transpose_par(&src, rows, cols, d)),
                want
            );
        }
    }

    #[test]
    fn compact_finds_events_in_order() {
        for len in [0, 1, 7, 8, 9, 21, 64] {
            let mut x = spikes(len, 0.4, true, len as u64);
            if len > 3 {
                x[3] = f32::NAN;
                x[1] = -0.0;
            }
            let (mut idx, mut val) = (vec![0; len + 8], vec![0.0; len + 8]);
            let n = compact(&x, &mut idx, &mut val);
            let want: Vec<usize> = (0..len).filter(|&i| x[i] != 0.0 || x[i].is_nan()).collect();
            let got: Vec<usize> = idx[..n].iter().map(|&i| i as usize).collect();
            assert_eq!(got, want);
            assert_eq!(
                bits(&val[..n]),
                bits(&want.iter().map(|&i| x[i]).collect::<Vec<_>>())
            );
        }
    }

    #[test]
    #[should_panic(expected = "linear_forward_event: slice lengths")]
    fn wrong_length_panics() {
        linear_forward_event(2, 3, 2, &[0.0; 5], &[0.0; 6], &mut [0.0; 4]);
    }
}
