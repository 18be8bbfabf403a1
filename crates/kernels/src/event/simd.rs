//! The vector building blocks of the event kernels: packing the nonzeros of a slice into
//! index lists, `axpy` and dot products over runs of floats, 8×8-block transposes, and
//! 32-byte aligned scratch.

use rayon::prelude::*;
use wide::bytemuck::cast;
use wide::{f32x8, u32x8};

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
pub(super) fn compact(x: &[f32], idx: &mut [u32], val: &mut [f32]) -> usize {
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
/// overhead (BENCHMARKS.md has the times it saved).
#[inline(always)]
pub(super) fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
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
pub(super) struct Dot {
    lanes: [f32x8; 4],
    tail: f32,
}

impl Dot {
    /// Adds `Σ a·b` over two equally long slices.
    #[inline(always)]
    pub(super) fn add(&mut self, a: &[f32], b: &[f32]) {
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
    pub(super) fn sum(&self) -> f32 {
        let [a, b, c, d] = self.lanes;
        ((a + b) + (c + d)).reduce_add() + self.tail
    }
}

/// `Σ a·b` over two equally long slices.
#[inline(always)]
pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut d = Dot::default();
    d.add(a, b);
    d.sum()
}

/// Writes the transpose of the row-major `rows×cols` matrix `src` into `dst`
/// (`dst[c·rows + r] = src[r·cols + c]`), writing `dst` as a few sequential streams (for
/// a `dst` bound for memory).
pub(crate) fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    debug_assert_eq!(src.len(), rows * cols);
    debug_assert_eq!(dst.len(), rows * cols);
    transpose_into::<false>(src, rows, cols, 0..cols, dst, rows);
}

/// [`transpose`], reading `src` as a few sequential streams (for a `src` coming from
/// memory).
pub(super) fn transpose_streaming_src(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    debug_assert_eq!(src.len(), rows * cols);
    debug_assert_eq!(dst.len(), rows * cols);
    transpose_into::<true>(src, rows, cols, 0..cols, dst, rows);
}

/// Columns `cs` of the row-major `rows×cols` matrix `src`, transposed into the rows of
/// `dst` (leading dimension `ld`): `dst[(c − cs.start)·ld + r] = src[r·cols + c]`. Whole 8×8
/// blocks move through registers (eight loads, a shuffle network, eight stores), walking
/// eight rows of `src` at a time front to back (`BY_SRC_ROWS`) or eight rows of `dst`;
/// the ragged edges go one float at a time.
pub(super) fn transpose_into<const BY_SRC_ROWS: bool>(
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
pub(super) fn transpose_par(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
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

/// The first `len` floats of `buf`, grown as needed; 32-byte aligned, contents
/// unspecified.
pub(super) fn aligned(buf: &mut Vec<f32x8>, len: usize) -> &mut [f32] {
    if buf.len() < len.div_ceil(8) {
        buf.resize(len.div_ceil(8), f32x8::ZERO);
    }
    &mut wide::bytemuck::cast_slice_mut(buf)[..len]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{bits, random_vec, run, spikes};

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
}
