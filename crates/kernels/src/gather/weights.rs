//! [`PackedWeights`]: a convolution's weight repacked channels-last, `[tap][c_in][c_out]`,
//! each row padded to whole 8-lane vectors, the layout the gather kernels read.

use super::geometry::Geometry;
use crate::conv::{Conv2dShape, ConvTranspose2dShape};
use wide::f32x8;

/// A convolution's (or transposed convolution's) weight as rows `[tap][c_in]` of
/// `lanes = ⌈c_out/8⌉` vectors: row `(p·kw + q, c)` holds the weights from input channel
/// `c` to every output channel through tap `(p, q)`, zero-padded past `c_out`.
///
/// A spike adds one row into an output pixel's accumulators, whole vectors with no tail.
/// Packing costs one pass over the weight; a caller that runs several kernels with the
/// same weight (forward pass, then input gradient) can pack it once and keep it.
#[derive(Clone, Debug)]
pub struct PackedWeights {
    taps: usize,
    c_in: usize,
    c_out: usize,
    lanes: usize,
    rows: Vec<f32x8>,
}

impl PackedWeights {
    /// Packs the weight `w[c_out, c_in, kh, kw]` of convolution `s`.
    ///
    /// # Panics
    /// If the shape is invalid or `w.len()` does not match it.
    pub fn conv2d(s: &Conv2dShape, w: &[f32]) -> Self {
        check_weight_len("PackedWeights::conv2d", s, s.weight_len(), w.len());
        Self::pack(&Geometry::conv2d(s), w)
    }

    /// Packs the weight `w[c_in, c_out, kh, kw]` of transposed convolution `s`.
    ///
    /// # Panics
    /// If the shape is invalid or `w.len()` does not match it.
    pub fn conv_transpose2d(s: &ConvTranspose2dShape, w: &[f32]) -> Self {
        check_weight_len(
            "PackedWeights::conv_transpose2d",
            s,
            s.weight_len(),
            w.len(),
        );
        Self::pack(&Geometry::conv_transpose2d(s), w)
    }

    fn pack(g: &Geometry, w: &[f32]) -> Self {
        let mut packed = Self::zeros(g);
        for tap in 0..g.taps() {
            for c in 0..g.c_in {
                let row = packed.row_floats_mut(tap, c);
                for (o, v) in row[..g.c_out].iter_mut().enumerate() {
                    *v = w[g.weight_index(tap, c, o)];
                }
            }
        }
        packed
    }

    /// All-zero rows for geometry `g`.
    pub(super) fn zeros(g: &Geometry) -> Self {
        let lanes = g.c_out.div_ceil(8);
        PackedWeights {
            taps: g.taps(),
            c_in: g.c_in,
            c_out: g.c_out,
            lanes,
            rows: vec![f32x8::ZERO; g.taps() * g.c_in * lanes],
        }
    }

    /// Writes the rows back into the weight's own layout (for a weight gradient).
    pub(super) fn unpack(&self, g: &Geometry, w: &mut [f32]) {
        for tap in 0..self.taps {
            for c in 0..self.c_in {
                let row = &self.row_floats(tap, c)[..self.c_out];
                for (o, v) in row.iter().enumerate() {
                    w[g.weight_index(tap, c, o)] = *v;
                }
            }
        }
    }

    /// Vectors per row, `⌈c_out/8⌉`.
    pub(super) fn lanes(&self) -> usize {
        self.lanes
    }

    /// All rows, `[tap][c_in][lanes]`.
    pub(super) fn rows(&self) -> &[f32x8] {
        &self.rows
    }

    /// All rows, mutably.
    pub(super) fn rows_mut(&mut self) -> &mut [f32x8] {
        &mut self.rows
    }

    fn row_floats(&self, tap: usize, c: usize) -> &[f32] {
        let row = &self.rows[(tap * self.c_in + c) * self.lanes..][..self.lanes];
        wide::bytemuck::cast_slice(row)
    }

    fn row_floats_mut(&mut self, tap: usize, c: usize) -> &mut [f32] {
        let row = &mut self.rows[(tap * self.c_in + c) * self.lanes..][..self.lanes];
        wide::bytemuck::cast_slice_mut(row)
    }

    /// Panics unless these weights fit geometry `g`, naming `kernel`.
    pub(super) fn check(&self, kernel: &str, g: &Geometry) {
        let (got, want) = (
            [self.taps, self.c_in, self.c_out],
            [g.taps(), g.c_in, g.c_out],
        );
        assert!(
            got == want,
            "{kernel}: packed weights are [taps, c_in, c_out] = {got:?}, the shape needs {want:?}"
        );
    }
}

/// Panics unless a weight of `got` floats fits `shape`, which needs `want`.
fn check_weight_len(kernel: &str, shape: &impl std::fmt::Debug, want: usize, got: usize) {
    assert!(
        got == want,
        "{kernel}: weight of {got} floats, but {shape:?} needs {want}"
    );
}
