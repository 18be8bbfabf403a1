//! What an event kernel reads its input from, [`Input`]: `f32` values, or binary spikes
//! packed one bit per element, which the kernels walk 64 at a time without ever expanding
//! them to floats.

use std::borrow::Cow;

use super::simd::compact;
use crate::bits::BitSlice;

/// The input of an event kernel or dispatcher.
///
/// `Values` may hold anything (the kernels visit its nonzero elements and multiply their
/// values in); `Bits` holds binary spikes (one bit per element, [`crate::bits`] layout),
/// each 1 an event of value 1.0. The two give the same results for the same elements, bit
/// for bit: the events, their order and their values are the same.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// Any values.
    Values(&'a [f32]),
    /// Binary spikes.
    Bits(BitSlice<'a>),
}

impl<'a> From<&'a [f32]> for Input<'a> {
    fn from(x: &'a [f32]) -> Self {
        Input::Values(x)
    }
}

impl<'a> Input<'a> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Input::Values(x) => x.len(),
            Input::Bits(x) => x.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Elements `start..start + len`.
    ///
    /// # Panics
    /// If the range is out of the input.
    pub fn slice(&self, start: usize, len: usize) -> Input<'a> {
        match self {
            Input::Values(x) => Input::Values(&x[start..start + len]),
            Input::Bits(x) => Input::Bits(x.slice(start, len)),
        }
    }

    /// The `k`-th of the `n`-element pieces the input is cut into (the last may be
    /// shorter), as `chunks(n).nth(k)` on a slice.
    pub(super) fn piece(&self, k: usize, n: usize) -> Input<'a> {
        let start = (k * n).min(self.len());
        self.slice(start, n.min(self.len() - start))
    }

    /// Number of pieces of `n` elements (the last may be shorter).
    pub(super) fn pieces(&self, n: usize) -> usize {
        self.len().div_ceil(n.max(1))
    }

    /// Number of nonzero elements (NaN counts as nonzero).
    pub fn nonzeros(&self) -> usize {
        match self {
            Input::Values(x) => x.iter().map(|v| usize::from(*v != 0.0)).sum(),
            Input::Bits(x) => x.count_ones(),
        }
    }

    /// Fraction of the elements that are nonzero; 0 for an empty input.
    pub fn density(&self) -> f32 {
        if self.is_empty() {
            return 0.0;
        }
        self.nonzeros() as f32 / self.len() as f32
    }

    /// Whether the density is below `threshold`, reading only as much of the input as it
    /// takes to know: a dense one is rejected after a fraction of it has been counted.
    pub(super) fn sparser_than(&self, threshold: f32) -> bool {
        let limit = threshold as f64 * self.len() as f64;
        let mut seen = 0;
        for k in 0..self.pieces(1 << 14) {
            seen += self.piece(k, 1 << 14).nonzeros();
            if seen as f64 >= limit {
                return false;
            }
        }
        true
    }

    /// The nonzero elements' indices into `idx` and values into `val`, in order; their
    /// number. Both need room for `len + 8` entries (the values' path writes whole blocks
    /// of eight).
    #[inline]
    pub(super) fn compact(&self, idx: &mut [u32], val: &mut [f32]) -> usize {
        match self {
            Input::Values(x) => compact(x, idx, val),
            Input::Bits(x) => {
                let mut n = 0;
                x.for_each_one(|i| {
                    idx[n] = i as u32;
                    val[n] = 1.0;
                    n += 1;
                });
                n
            }
        }
    }

    /// The elements as `f32` values: borrowed as they are, or expanded from bits (for the
    /// dense kernels, which take floats).
    pub fn values(&self) -> Cow<'a, [f32]> {
        match self {
            Input::Values(x) => Cow::Borrowed(x),
            Input::Bits(x) => Cow::Owned(x.to_f32()),
        }
    }
}
