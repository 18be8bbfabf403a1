//! The gather kernels' scalar reference twins: plain loops over the definitions of
//! [`Conv2dShape`] and [`ConvTranspose2dShape`], reading the spikes one bit at a time and
//! the weight in its own layout, summing in `f64`. They share no code with the fast
//! kernels beyond [`SpikeMaps`] itself.

use super::bits::SpikeMaps;
use crate::conv::{Conv2dShape, ConvTranspose2dShape, accumulate, product};

/// One link of a layer: output pixel `output = oy·out_w + ox` reads input pixel
/// `input = iy·w + ix` through tap `(p, q)`.
struct Link {
    input: usize,
    output: usize,
    p: usize,
    q: usize,
}

/// A layer as the references see it: its sizes, its links, and where the weight linking
/// input channel `c` to output channel `o` through tap `(p, q)` sits in its own layout.
struct Layer {
    frames: usize,
    c_in: usize,
    c_out: usize,
    w: usize,
    in_pixels: usize,
    out_pixels: usize,
    links: Vec<Link>,
    weight_index: Box<dyn Fn(usize, usize, usize, usize) -> usize>,
}

impl Layer {
    /// Convolution `s`, gathered: output `(oy, ox)` reads input `(oy·stride + p − padding,
    /// ox·stride + q − padding)` where that lies inside the input.
    fn conv2d(s: &Conv2dShape) -> Self {
        let (oh, ow) = (s.out_h(), s.out_w());
        let mut links = Vec::new();
        for oy in 0..oh {
            for ox in 0..ow {
                for p in 0..s.kh {
                    for q in 0..s.kw {
                        let iy = (oy * s.stride + p).checked_sub(s.padding);
                        let ix = (ox * s.stride + q).checked_sub(s.padding);
                        let inside = (iy.filter(|&i| i < s.h), ix.filter(|&i| i < s.w));
                        if let (Some(iy), Some(ix)) = inside {
                            let (input, output) = (iy * s.w + ix, oy * ow + ox);
                            links.push(Link {
                                input,
                                output,
                                p,
                                q,
                            });
                        }
                    }
                }
            }
        }
        let (c_in, kh, kw) = (s.c_in, s.kh, s.kw);
        Layer {
            frames: s.batch,
            c_in: s.c_in,
            c_out: s.c_out,
            w: s.w,
            in_pixels: s.h * s.w,
            out_pixels: oh * ow,
            links,
            weight_index: Box::new(move |c, o, p, q| ((o * c_in + c) * kh + p) * kw + q),
        }
    }

    /// Transposed convolution `s`, scattered: input `(iy, ix)` lands on output
    /// `(iy·stride + p − padding, ix·stride + q − padding)` where that lies inside the
    /// output.
    fn conv_transpose2d(s: &ConvTranspose2dShape) -> Self {
        let (oh, ow) = (s.out_h(), s.out_w());
        let mut links = Vec::new();
        for iy in 0..s.h {
            for ix in 0..s.w {
                for p in 0..s.kh {
                    for q in 0..s.kw {
                        let oy = (iy * s.stride + p).checked_sub(s.padding);
                        let ox = (ix * s.stride + q).checked_sub(s.padding);
                        let inside = (oy.filter(|&i| i < oh), ox.filter(|&i| i < ow));
                        if let (Some(oy), Some(ox)) = inside {
                            let (input, output) = (iy * s.w + ix, oy * ow + ox);
                            links.push(Link {
                                input,
                                output,
                                p,
                                q,
                            });
                        }
                    }
                }
            }
        }
        let (c_out, kh, kw) = (s.c_out, s.kh, s.kw);
        Layer {
            frames: s.batch,
            c_in: s.c_in,
            c_out: s.c_out,
            w: s.w,
            in_pixels: s.h * s.w,
            out_pixels: oh * ow,
            links,
            weight_index: Box::new(move |c, o, p, q| ((c * c_out + o) * kh + p) * kw + q),
        }
    }

    /// Calls `f(frame, link, c)` for every link and every spike of channel `c` at the
    /// link's input pixel.
    fn for_each_spike(&self, x: &SpikeMaps, mut f: impl FnMut(usize, &Link, usize)) {
        for frame in 0..self.frames {
            for link in &self.links {
                for c in 0..self.c_in {
                    if x.spike(frame, c, link.input / self.w, link.input % self.w) {
                        f(frame, link, c);
                    }
                }
            }
        }
    }

    fn forward(&self, x: &SpikeMaps, w: &[f32], y: &mut [f32]) {
        accumulate(y, |y| {
            self.for_each_spike(x, |f, l, c| {
                for o in 0..self.c_out {
                    let at = (f * self.out_pixels + l.output) * self.c_out + o;
                    y[at] += f64::from(w[(self.weight_index)(c, o, l.p, l.q)]);
                }
            })
        });
    }

    fn backward_weight(&self, x: &SpikeMaps, gy: &[f32], gw: &mut [f32]) {
        accumulate(gw, |gw| {
            self.for_each_spike(x, |f, l, c| {
                for o in 0..self.c_out {
                    let at = (f * self.out_pixels + l.output) * self.c_out + o;
                    gw[(self.weight_index)(c, o, l.p, l.q)] += f64::from(gy[at]);
                }
            })
        });
    }

    fn backward_input(&self, x: &SpikeMaps, w: &[f32], gy: &[f32], gx: &mut [f32]) {
        accumulate(gx, |gx| {
            self.for_each_spike(x, |f, l, c| {
                for o in 0..self.c_out {
                    let at = (f * self.out_pixels + l.output) * self.c_out + o;
                    let wi = (self.weight_index)(c, o, l.p, l.q);
                    gx[(f * self.in_pixels + l.input) * self.c_in + c] += product(w[wi], gy[at]);
                }
            })
        });
    }
}

/// Reference for [`conv2d_forward_gather`](super::conv2d_forward_gather), from the raw
/// weight `w[c_out, c_in, kh, kw]`; `y` channels-last.
pub fn conv2d_forward_gather_ref(s: &Conv2dShape, x: &SpikeMaps, w: &[f32], y: &mut [f32]) {
    check(
        x,
        [s.batch, s.c_in, s.h, s.w],
        [w.len(), y.len()],
        [s.weight_len(), s.output_len()],
    );
    Layer::conv2d(s).forward(x, w, y);
}

/// Reference for
/// [`conv_transpose2d_forward_gather`](super::conv_transpose2d_forward_gather), from the
/// raw weight `w[c_in, c_out, kh, kw]`; `y` channels-last.
pub fn conv_transpose2d_forward_gather_ref(
    s: &ConvTranspose2dShape,
    x: &SpikeMaps,
    w: &[f32],
    y: &mut [f32],
) {
    check(
        x,
        [s.batch, s.c_in, s.h, s.w],
        [w.len(), y.len()],
        [s.weight_len(), s.output_len()],
    );
    Layer::conv_transpose2d(s).forward(x, w, y);
}

/// Reference for
/// [`conv2d_backward_weight_gather`](super::conv2d_backward_weight_gather).
pub fn conv2d_backward_weight_gather_ref(
    s: &Conv2dShape,
    x: &SpikeMaps,
    gy: &[f32],
    gw: &mut [f32],
) {
    check(
        x,
        [s.batch, s.c_in, s.h, s.w],
        [gw.len(), gy.len()],
        [s.weight_len(), s.output_len()],
    );
    Layer::conv2d(s).backward_weight(x, gy, gw);
}

/// Reference for
/// [`conv_transpose2d_backward_weight_gather`](super::conv_transpose2d_backward_weight_gather).
pub fn conv_transpose2d_backward_weight_gather_ref(
    s: &ConvTranspose2dShape,
    x: &SpikeMaps,
    gy: &[f32],
    gw: &mut [f32],
) {
    check(
        x,
        [s.batch, s.c_in, s.h, s.w],
        [gw.len(), gy.len()],
        [s.weight_len(), s.output_len()],
    );
    Layer::conv_transpose2d(s).backward_weight(x, gy, gw);
}

/// Reference for [`conv2d_backward_input_gather`](super::conv2d_backward_input_gather),
/// from the raw weight.
pub fn conv2d_backward_input_gather_ref(
    s: &Conv2dShape,
    x: &SpikeMaps,
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) {
    check(
        x,
        [s.batch, s.c_in, s.h, s.w],
        [w.len(), gy.len()],
        [s.weight_len(), s.output_len()],
    );
    assert_eq!(
        gx.len(),
        s.input_len(),
        "conv2d_backward_input_gather_ref: gx length"
    );
    Layer::conv2d(s).backward_input(x, w, gy, gx);
}

/// Reference for
/// [`conv_transpose2d_backward_input_gather`](super::conv_transpose2d_backward_input_gather),
/// from the raw weight.
pub fn conv_transpose2d_backward_input_gather_ref(
    s: &ConvTranspose2dShape,
    x: &SpikeMaps,
    w: &[f32],
    gy: &[f32],
    gx: &mut [f32],
) {
    check(
        x,
        [s.batch, s.c_in, s.h, s.w],
        [w.len(), gy.len()],
        [s.weight_len(), s.output_len()],
    );
    assert_eq!(
        gx.len(),
        s.input_len(),
        "conv_transpose2d_backward_input_gather_ref: gx length"
    );
    Layer::conv_transpose2d(s).backward_input(x, w, gy, gx);
}

/// Panics unless the spike maps have dimensions `dims` and the slice lengths are `want`.
fn check(x: &SpikeMaps, dims: [usize; 4], got: [usize; 2], want: [usize; 2]) {
    x.check_dims("gather reference", dims);
    assert_eq!(got, want, "gather reference: slice lengths");
}
