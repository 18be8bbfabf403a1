//! im2col and col2im: the unfold that turns a convolution into a GEMM, and its adjoint.
//!
//! For one image `x[c, h, w]` and a `kh×kw` window moved with `stride` over the image
//! zero-padded by `pad`, the column matrix has one row per tap `r = (c·kh + ki)·kw + kj`
//! and one column per output position `q = oy·ow + ox`:
//!
//! `cols[r, q] = x[c, oy·stride + ki − pad, ox·stride + kj − pad]` (0 outside the image).
//!
//! Each row is written with whole-row copies (stride 1) or strided gathers, with the padded
//! margins computed once per row instead of tested per element.

/// The unfold geometry of one image: input `[c, h, w]`, window, stride, padding and the
/// resulting output size.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Unfold {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Unfold {
    /// Rows of the column matrix: taps per output position, `c·kh·kw`.
    pub fn rows(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Columns of the column matrix: output positions, `oh·ow`.
    pub fn cols(&self) -> usize {
        self.oh * self.ow
    }

    /// Floats in one input image, `c·h·w`.
    pub fn image_len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// Writes the column matrix of image `x` (length `c·h·w`) into `cols`, row `r` at
    /// `cols[r·ld ..][.. oh·ow]`. A leading dimension `ld > oh·ow` lets several images
    /// share one matrix side by side, each starting at its own column offset.
    pub fn im2col(&self, x: &[f32], cols: &mut [f32], ld: usize) {
        let (plane, positions) = (self.h * self.w, self.cols());
        assert_eq!(x.len(), self.c * plane, "im2col: image length");
        for (c, x_plane) in x.chunks_exact(plane).enumerate() {
            for ki in 0..self.kh {
                let (y_lo, y_hi) = valid_range(ki, self.h, self.oh, self.stride, self.pad);
                for kj in 0..self.kw {
                    let (x_lo, x_hi) = valid_range(kj, self.w, self.ow, self.stride, self.pad);
                    let r = (c * self.kh + ki) * self.kw + kj;
                    let row = &mut cols[r * ld..][..positions];
                    zero(&mut row[..y_lo * self.ow]);
                    zero(&mut row[y_hi * self.ow..]);
                    for oy in y_lo..y_hi {
                        let dst = &mut row[oy * self.ow..][..self.ow];
                        if x_lo == x_hi {
                            zero(dst);
                            continue;
                        }
                        let iy = oy * self.stride + ki - self.pad;
                        let x0 = x_lo * self.stride + kj - self.pad;
                        let src = &x_plane[iy * self.w + x0..(iy + 1) * self.w];
                        zero(&mut dst[..x_lo]);
                        zero(&mut dst[x_hi..]);
                        let dst = &mut dst[x_lo..x_hi];
                        if self.stride == 1 {
                            copy(dst, &src[..dst.len()]);
                        } else {
                            let src = src.iter().step_by(self.stride);
                            dst.iter_mut().zip(src).for_each(|(d, s)| *d = *s);
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of [`Unfold::im2col`]: overwrites image `x` with the sum, over every
    /// column-matrix entry, of that entry at the input pixel it was copied from (entries
    /// that fell in the padding are dropped). `cols` and `ld` are laid out as for `im2col`.
    pub fn col2im(&self, cols: &[f32], ld: usize, x: &mut [f32]) {
        let (plane, positions) = (self.h * self.w, self.cols());
        assert_eq!(x.len(), self.c * plane, "col2im: image length");
        x.fill(0.0);
        for (c, x_plane) in x.chunks_exact_mut(plane).enumerate() {
            for ki in 0..self.kh {
                let (y_lo, y_hi) = valid_range(ki, self.h, self.oh, self.stride, self.pad);
                for kj in 0..self.kw {
                    let (x_lo, x_hi) = valid_range(kj, self.w, self.ow, self.stride, self.pad);
                    if x_lo == x_hi {
                        continue;
                    }
                    let x0 = x_lo * self.stride + kj - self.pad;
                    let r = (c * self.kh + ki) * self.kw + kj;
                    let row = &cols[r * ld..][..positions];
                    for oy in y_lo..y_hi {
                        let iy = oy * self.stride + ki - self.pad;
                        let dst = &mut x_plane[iy * self.w..][..self.w];
                        let src = &row[oy * self.ow..][x_lo..x_hi];
                        if self.stride == 1 {
                            let dst = &mut dst[x0..x0 + src.len()];
                            dst.iter_mut().zip(src).for_each(|(d, s)| *d += *s);
                        } else {
                            let dst = dst[x0..].iter_mut().step_by(self.stride);
                            dst.zip(src).for_each(|(d, s)| *d += *s);
                        }
                    }
                }
            }
        }
    }
}

/// Copies `src` into the equally long `dst`. Rows here are a few dozen floats, so this
/// moves fixed blocks of eight (the last one overlapping its neighbour), which compile to
/// plain vector moves where `copy_from_slice` would call `memcpy` once per row.
fn copy(dst: &mut [f32], src: &[f32]) {
    const B: usize = 8;
    let n = dst.len();
    if n < B {
        dst.iter_mut().zip(src).for_each(|(d, s)| *d = *s);
        return;
    }
    let block = |dst: &mut [f32], at: usize| {
        let d: &mut [f32; B] = (&mut dst[at..at + B]).try_into().expect("block");
        *d = src[at..at + B].try_into().expect("block");
    };
    for at in (0..n - B).step_by(B) {
        block(dst, at);
    }
    block(dst, n - B);
}

/// Zeroes `dst`, skipping the call entirely for the empty margins of unpadded rows.
fn zero(dst: &mut [f32]) {
    if !dst.is_empty() {
        dst.fill(0.0);
    }
}

/// For the window offset `k` along an axis of length `len`: the output positions `lo..hi`
/// whose input coordinate `o·stride + k − pad` falls inside `0..len`, clipped to `0..out`.
pub(crate) fn valid_range(
    k: usize,
    len: usize,
    out: usize,
    stride: usize,
    pad: usize,
) -> (usize, usize) {
    // o·stride + k ≥ pad  ⇔  o ≥ ⌈(pad − k)/stride⌉
    let lo = pad.saturating_sub(k).div_ceil(stride).min(out);
    // o·stride + k − pad < len  ⇔  o < ⌈(len + pad − k)/stride⌉
    let hi = (len + pad).saturating_sub(k).div_ceil(stride).min(out);
    (lo, hi.max(lo))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::random_vec;

    fn geometry(c: usize, h: usize, w: usize, k: usize, stride: usize, pad: usize) -> Unfold {
        let out = |n: usize| (n + 2 * pad - k) / stride + 1;
        Unfold {
            c,
            h,
            w,
            kh: k,
            kw: k,
            stride,
            pad,
            oh: out(h),
            ow: out(w),
        }
    }

    #[test]
    fn im2col_by_hand() {
        // x = [1 2 3; 4 5 6; 7 8 9], 2×2 window, stride 1, no padding: 4 taps × 4 positions.
        let u = geometry(1, 3, 3, 2, 1, 0);
        let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let mut cols = vec![f32::NAN; 16];
        u.im2col(&x, &mut cols, 4);
        #[rustfmt::skip]
        let want = [
            1.0, 2.0, 4.0, 5.0, // tap (0,0)
            2.0, 3.0, 5.0, 6.0, // tap (0,1)
            4.0, 5.0, 7.0, 8.0, // tap (1,0)
            5.0, 6.0, 8.0, 9.0, // tap (1,1)
        ];
        assert_eq!(cols, want);
    }

    #[test]
    fn im2col_pads_with_zeros() {
        // x = [1 2; 3 4], 3×3 window, padding 1, stride 2: one output position, centred.
        let u = geometry(1, 2, 2, 3, 2, 1);
        assert_eq!((u.oh, u.ow), (1, 1));
        let mut cols = vec![f32::NAN; 9];
        u.im2col(&[1.0, 2.0, 3.0, 4.0], &mut cols, 1);
        assert_eq!(cols, [0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 3.0, 4.0]);
    }

    /// col2im is the adjoint of im2col: ⟨im2col(x), g⟩ = ⟨x, col2im(g)⟩ for all x, g.
    #[test]
    fn col2im_is_adjoint_of_im2col() {
        for (i, &(c, h, w, k, stride, pad)) in [
            (1, 5, 5, 3, 1, 0),
            (2, 7, 6, 3, 2, 1),
            (3, 4, 9, 2, 3, 2),
            (1, 3, 3, 5, 1, 2),
            (2, 6, 6, 1, 2, 0),
        ]
        .iter()
        .enumerate()
        {
            let u = geometry(c, h, w, k, stride, pad);
            let (ld, seed) = (u.cols() + 3, 10 * i as u64);
            let x = random_vec(c * h * w, seed);
            let g = random_vec(u.rows() * ld, seed + 1);
            let mut cols = vec![0.0; u.rows() * ld];
            u.im2col(&x, &mut cols, ld);
            let mut gx = vec![f32::NAN; x.len()];
            u.col2im(&g, ld, &mut gx);
            let dot = |a: &[f32], b: &[f32]| -> f64 {
                a.iter()
                    .zip(b)
                    .map(|(p, q)| f64::from(*p) * f64::from(*q))
                    .sum()
            };
            let used = |m: &[f32]| -> Vec<f32> {
                m.chunks(ld)
                    .flat_map(|row| row[..u.cols()].to_vec())
                    .collect()
            };
            let lhs = dot(&used(&cols), &used(&g));
            let rhs = dot(&x, &gx);
            assert!(
                (lhs - rhs).abs() < 1e-4 * lhs.abs().max(1.0),
                "case {i}: {lhs} vs {rhs}"
            );
        }
    }
}
