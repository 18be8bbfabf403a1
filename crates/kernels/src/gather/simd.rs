//! The vector helpers of the gather kernels: rows of `c_out` floats moved in and out of
//! 8-lane vectors (the last one zero-padded), and the split of a row of vectors into the
//! register-sized blocks one pass accumulates.

use wide::f32x8;

/// Most vectors one pass keeps in registers: 32 output channels. Wider rows take several
/// passes over the same spikes.
pub(super) const MAX_BLOCK: usize = 4;

/// Vector `v` of `row`: floats `8v .. 8v + 8`, zeros past the end of the row.
#[inline(always)]
pub(super) fn load(row: &[f32], v: usize) -> f32x8 {
    let at = 8 * v;
    match row.get(at..at + 8) {
        Some(full) => f32x8::new(full.try_into().expect("8 floats")),
        None => {
            let mut padded = [0.0; 8];
            let rest = &row[at..];
            padded[..rest.len()].copy_from_slice(rest);
            f32x8::new(padded)
        }
    }
}

/// Writes `acc` over `row` from vector `v0` on, dropping the lanes past the end of `row`.
#[inline(always)]
pub(super) fn store(acc: &[f32x8], row: &mut [f32], v0: usize) {
    for (v, a) in acc.iter().enumerate() {
        let at = 8 * (v0 + v);
        let n = (row.len() - at).min(8);
        row[at..at + n].copy_from_slice(&a.as_array()[..n]);
    }
}

/// The blocks `(v0, len)` of a row of `lanes` vectors: at most [`MAX_BLOCK`] vectors each.
pub(super) fn blocks(lanes: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..lanes)
        .step_by(MAX_BLOCK)
        .map(move |v0| (v0, (lanes - v0).min(MAX_BLOCK)))
}

/// Calls `$f::<V>($args…)` with the `V` (1 to [`MAX_BLOCK`]) of a block of `$len` vectors,
/// so that each block size gets its own register-resident loop.
macro_rules! with_block {
    ($len:expr, $f:ident($($arg:expr),* $(,)?)) => {
        match $len {
            1 => $f::<1>($($arg),*),
            2 => $f::<2>($($arg),*),
            3 => $f::<3>($($arg),*),
            _ => $f::<4>($($arg),*),
        }
    };
}
pub(super) use with_block;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_in_and_out_of_vectors() {
        let row: Vec<f32> = (1..=11).map(|v| v as f32).collect();
        assert_eq!(
            load(&row, 0).to_array(),
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
        );
        assert_eq!(
            load(&row, 1).to_array(),
            [9.0, 10.0, 11.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        );
        let mut out = vec![0.0; 11];
        store(&[load(&row, 1)], &mut out, 1);
        store(&[load(&row, 0)], &mut out, 0);
        assert_eq!(out, row);
        assert_eq!(blocks(9).collect::<Vec<_>>(), [(0, 4), (4, 4), (8, 1)]);
        assert_eq!(blocks(2).collect::<Vec<_>>(), [(0, 2)]);
        assert_eq!(blocks(0).count(), 0);
    }
}
