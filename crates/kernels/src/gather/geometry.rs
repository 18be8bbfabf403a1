//! [`Geometry`]: which input pixel each output pixel reads through each kernel tap, for a
//! convolution or a transposed convolution, and the reverse.
//!
//! Both kinds connect input row `i` to output row `o` through kernel row `p` along each
//! axis independently, so the geometry is two per-axis tables of links `(tap, other
//! index)`, listed once from the output side (what the forward pass and the weight gradient
//! walk) and once from the input side (what the input gradient walks). A pixel's links are
//! the product of its row's and its column's.
//!
//! Taps are numbered as [`PackedWeights`](super::PackedWeights) stores them, `p·kw + q'`,
//! where `q' = q` for a convolution and `q' = kw − 1 − q` for a transposed one (the kernel
//! flipped left to right). Then, for a convolution of any stride and a transposed
//! convolution of stride 1, an output pixel's column taps and the input columns under
//! them both step by one: a row of its receptive field is one run of consecutive input
//! pixels and consecutive packed taps, which the kernels walk as one loop.

use crate::conv::{Conv2dShape, ConvTranspose2dShape};

/// The links of one axis: for each index `i`, the pairs `(tap, j)` in
/// `links[start[i]..start[i + 1]]`, in increasing order of `j`.
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
            let from = links.len();
            links.extend(pairs(i));
            links[from..].sort_by_key(|&(_, j)| j);
            start.push(links.len());
        }
        Links { start, links }
    }

    /// The `(tap, j)` pairs of index `i`.
    #[inline(always)]
    pub(super) fn of(&self, i: usize) -> &[(usize, usize)] {
        &self.links[self.start[i]..self.start[i + 1]]
    }

    /// Whether every index's links are `(t0 + k, j0 + k)` for `k` below their count.
    fn runs(&self) -> bool {
        (0..self.start.len() - 1).all(|i| {
            let links = self.of(i);
            let (t0, j0) = links.first().copied().unwrap_or_default();
            (0..links.len()).all(|k| links[k] == (t0 + k, j0 + k))
        })
    }
}

/// The geometry of one convolution or transposed convolution, in the gather kernels'
/// terms: `frames` images of `c_in × h × w` spikes in, `c_out × out_h × out_w` out, a
/// `kh × kw` kernel whose packed tap `(p, q')` is numbered `p·kw + q'`.
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
    /// Whether the weight is a transposed convolution's, `[c_in, c_out, kh, kw]` with its
    /// columns flipped when packed, rather than a convolution's, `[c_out, c_in, kh, kw]`.
    pub transposed: bool,
    /// Whether each output column's links are a run `(q0' + k, ix0 + k)`: the form the
    /// kernels' run loops need (see the module docs).
    pub col_runs: bool,
    /// For each output row, `(p, input row)`.
    pub out_rows: Links,
    /// For each output column, `(q', input column)`.
    pub out_cols: Links,
    /// For each input row, `(p, output row)`.
    pub in_rows: Links,
    /// For each input column, `(q', output column)`.
    pub in_cols: Links,
}

/// Along one axis, the input index that output `o` reads through tap `k`, if any.
type Reads<'a> = &'a dyn Fn(usize, usize) -> Option<usize>;

impl Geometry {
    /// Convolution `s`: output `o` reads input `o·stride + p − padding` through tap `p`.
    pub fn conv2d(s: &Conv2dShape) -> Self {
        let input = |o: usize, p: usize, n: usize| {
            let i = (o * s.stride + p).checked_sub(s.padding)?;
            (i < n).then_some(i)
        };
        let mut g = Geometry::sized(s.batch, [s.c_in, s.h, s.w], [s.c_out, s.out_h(), s.out_w()]);
        g.link([s.kh, s.kw], false, &|o, p| input(o, p, s.h), &|o, q| {
            input(o, q, s.w)
        });
        g
    }

    /// Transposed convolution `s`: input `i` lands on output `i·stride + p − padding`
    /// through tap `p`, so output `o` reads input `(o + padding − p) / stride` where that
    /// division is exact. Column taps are flipped, `q = kw − 1 − q'`.
    pub fn conv_transpose2d(s: &ConvTranspose2dShape) -> Self {
        let input = |o: usize, p: usize, n: usize| {
            let t = (o + s.padding).checked_sub(p)?;
            (t % s.stride == 0 && t / s.stride < n).then_some(t / s.stride)
        };
        let mut g = Geometry::sized(s.batch, [s.c_in, s.h, s.w], [s.c_out, s.out_h(), s.out_w()]);
        let (rows, cols): (Reads, Reads) = (&|o, p| input(o, p, s.h), &|o, q| {
            input(o, s.kw - 1 - q, s.w)
        });
        g.link([s.kh, s.kw], true, rows, cols);
        g
    }

    /// A geometry of the given sizes with a 0×0 kernel and no links yet.
    fn sized(frames: usize, [c_in, h, w]: [usize; 3], [c_out, out_h, out_w]: [usize; 3]) -> Self {
        let none = Links::new(0, |_| std::iter::empty());
        Geometry {
            frames,
            c_in,
            h,
            w,
            c_out,
            kh: 0,
            kw: 0,
            out_h,
            out_w,
            transposed: false,
            col_runs: true,
            out_rows: none.clone(),
            out_cols: none.clone(),
            in_rows: none.clone(),
            in_cols: none,
        }
    }

    /// Sets the kernel and the links: output row `o` reads input row `row(o, p)` through
    /// tap `p` (if any), and likewise for columns with packed tap `q'`.
    fn link(&mut self, [kh, kw]: [usize; 2], transposed: bool, row: Reads, col: Reads) {
        let out_links = |n_out: usize, k: usize, f: Reads| {
            Links::new(n_out, |o| (0..k).filter_map(move |p| Some((p, f(o, p)?))))
        };
        let in_links = |n_in: usize, n_out: usize, k: usize, f: Reads| {
            Links::new(n_in, |i| {
                (0..k).flat_map(move |p| {
                    let reached = (0..n_out).filter(move |&o| f(o, p) == Some(i));
                    reached.map(move |o| (p, o))
                })
            })
        };
        (self.kh, self.kw, self.transposed) = (kh, kw, transposed);
        self.out_rows = out_links(self.out_h, kh, row);
        self.out_cols = out_links(self.out_w, kw, col);
        self.in_rows = in_links(self.h, self.out_h, kh, row);
        self.in_cols = in_links(self.w, self.out_w, kw, col);
        self.col_runs = self.out_cols.runs();
    }

    /// The index in the weight's own (PyTorch) layout of the weight that links input
    /// channel `c` to output channel `o` through packed tap `tap`.
    pub fn weight_index(&self, tap: usize, c: usize, o: usize) -> usize {
        let (p, q) = (tap / self.kw, tap % self.kw);
        let (pair, q) = if self.transposed {
            (c * self.c_out + o, self.kw - 1 - q)
        } else {
            (o * self.c_in + c, q)
        };
        (pair * self.kh + p) * self.kw + q
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
