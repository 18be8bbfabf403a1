//! [`Geometry`]: which input pixel each output pixel reads through each kernel tap, for a
//! convolution or a transposed convolution, and the reverse.
//!
//! Both kinds connect input row `i` to output row `o` through kernel row `p` along each
//! axis independently, so the geometry is two per-axis tables of links `(tap, other
//! index)`, listed once from the output side (what the forward pass and the weight gradient
//! walk) and once from the input side (what the input gradient walks). A pixel's links are
//! the product of its row's and its column's.

use crate::conv::{Conv2dShape, ConvTranspose2dShape};

/// The links of one axis: for each index `i`, the pairs `(tap, j)` in
/// `links[start[i]..start[i + 1]]`, taps in increasing order.
#[derive(Clone, Debug)]
pub(super) struct Links {
    start: Vec<usize>,
    links: Vec<(usize, usize)>,
}

impl Links {
    /// The links of indices `0..n`, `pairs(i)` each.
    fn new<I: Iterator<Item = (usize, usize)>>(n: usize, pairs: impl Fn(usize) -> I) -> Self {
        let mut start = vec![0];
        let mut links = Vec::new();
        for i in 0..n {
            links.extend(pairs(i));
            start.push(links.len());
        }
        Links { start, links }
    }

    /// The `(tap, j)` pairs of index `i`.
    #[inline(always)]
    pub(super) fn of(&self, i: usize) -> &[(usize, usize)] {
        &self.links[self.start[i]..self.start[i + 1]]
    }
}

/// The geometry of one convolution or transposed convolution, in the gather kernels'
/// terms: `frames` images of `c_in × h × w` spikes in, `c_out × out_h × out_w` out, a
/// `kh × kw` kernel whose tap `(p, q)` is numbered `p·kw + q`.
#[derive(Clone, Debug)]
pub(super) struct Geometry {
    pub frames: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub out_h: usize,
    pub out_w: usize,
    /// Whether the weight is a transposed convolution's, `[c_in, c_out, kh, kw]`, rather
    /// than a convolution's, `[c_out, c_in, kh, kw]`.
    pub transposed: bool,
    /// For each output row, `(p, input row)`.
    pub out_rows: Links,
    /// For each output column, `(q, input column)`.
    pub out_cols: Links,
    /// For each input row, `(p, output row)`.
    pub in_rows: Links,
    /// For each input column, `(q, output column)`.
    pub in_cols: Links,
}

impl Geometry {
    /// Convolution `s`: output `o` reads input `o·stride + p − padding` through tap `p`.
    pub fn conv2d(s: &Conv2dShape) -> Self {
        let input = |o: usize, p: usize, n: usize| {
            let i = (o * s.stride + p).checked_sub(s.padding)?;
            (i < n).then_some(i)
        };
        Self::build(
            [
                s.batch,
                s.c_in,
                s.h,
                s.w,
                s.c_out,
                s.kh,
                s.kw,
                s.out_h(),
                s.out_w(),
            ],
            false,
            |o, p| input(o, p, s.h),
            |o, q| input(o, q, s.w),
        )
    }

    /// Transposed convolution `s`: input `i` lands on output `i·stride + p − padding`
    /// through tap `p`, so output `o` reads input `(o + padding − p) / stride` where that
    /// division is exact.
    pub fn conv_transpose2d(s: &ConvTranspose2dShape) -> Self {
        let input = |o: usize, p: usize, n: usize| {
            let t = (o + s.padding).checked_sub(p)?;
            (t % s.stride == 0 && t / s.stride < n).then_some(t / s.stride)
        };
        Self::build(
            [
                s.batch,
                s.c_in,
                s.h,
                s.w,
                s.c_out,
                s.kh,
                s.kw,
                s.out_h(),
                s.out_w(),
            ],
            true,
            |o, p| input(o, p, s.h),
            |o, q| input(o, q, s.w),
        )
    }

    /// The geometry of dimensions `[frames, c_in, h, w, c_out, kh, kw, out_h, out_w]` whose
    /// output row `o` reads input row `row(o, p)` through tap `p` (if any), and likewise
    /// for columns.
    fn build(
        dims: [usize; 9],
        transposed: bool,
        row: impl Fn(usize, usize) -> Option<usize>,
        col: impl Fn(usize, usize) -> Option<usize>,
    ) -> Self {
        let [frames, c_in, h, w, c_out, kh, kw, out_h, out_w] = dims;
        let out_links = |n_out: usize, k: usize, f: &dyn Fn(usize, usize) -> Option<usize>| {
            Links::new(n_out, |o| (0..k).filter_map(move |p| Some((p, f(o, p)?))))
        };
        let in_links =
            |n_in: usize, n_out: usize, k: usize, f: &dyn Fn(usize, usize) -> Option<usize>| {
                Links::new(n_in, |i| {
                    (0..k).flat_map(move |p| {
                        (0..n_out)
                            .filter(move |&o| f(o, p) == Some(i))
                            .map(move |o| (p, o))
                    })
                })
            };
        Geometry {
            frames,
            c_in,
            h,
            w,
            c_out,
            kh,
            kw,
            out_h,
            out_w,
            transposed,
            out_rows: out_links(out_h, kh, &row),
            out_cols: out_links(out_w, kw, &col),
            in_rows: in_links(h, out_h, kh, &row),
            in_cols: in_links(w, out_w, kw, &col),
        }
    }

    /// The index in the weight's own (PyTorch) layout of the weight that links input
    /// channel `c` to output channel `o` through tap `tap`.
    pub fn weight_index(&self, tap: usize, c: usize, o: usize) -> usize {
        let pair = if self.transposed {
            c * self.c_out + o
        } else {
            o * self.c_in + c
        };
        pair * self.taps() + tap
    }

    /// Words per input pixel of the spike maps, `⌈c_in/64⌉`.
    pub fn words(&self) -> usize {
        self.c_in.div_ceil(64)
    }

    /// Kernel taps, `kh·kw`.
    pub fn taps(&self) -> usize {
        self.kh * self.kw
    }

    /// Output pixels per frame.
    pub fn out_pixels(&self) -> usize {
        self.out_h * self.out_w
    }

    /// Input pixels per frame.
    pub fn in_pixels(&self) -> usize {
        self.h * self.w
    }
}
