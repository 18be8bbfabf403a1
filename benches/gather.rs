//! The gather kernels of `kernels::gather` against the event (scatter) and dense kernels,
//! forward pass, weight gradient and input gradient (at the spikes), on two layers of the
//! paper's network at spike densities 2 % and 20 %:
//!
//! - deconv1: conv_transpose2d 32→16, 5×5, on 20×20, 64 frames;
//! - conv2: conv2d 16→32, 5×5, on 24×24, 64 frames.
//!
//! `cargo bench --bench gather -- --measurement-time 2 --warm-up-time 1` times each with
//! criterion (ten samples); `pack` is the cost of packing
//! NCHW `f32` spikes into `SpikeMaps`, the gather kernels' input. Throughput is the useful
//! multiply-adds (each spike times the outputs it reaches times `c_out`), so the figures
//! read as useful MAC/s. The dense kernels' cost does not depend on the data, so each is
//! timed once per op, on the 20 % input.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use kernels::{Conv2dShape, ConvTranspose2dShape, PackedWeights, SpikeMaps};
use rand::{Rng, SeedableRng, rngs::StdRng};

const DENSITIES: [f64; 2] = [0.02, 0.2];

/// Binary spikes, each 1 with probability `density`.
fn spikes(len: usize, density: f64, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len)
        .map(|_| if rng.random_bool(density) { 1.0 } else { 0.0 })
        .collect()
}

fn uniform(len: usize, scale: f32, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-scale..scale)).collect()
}

/// `[frames, c, pixels]` → `[frames, pixels, c]`.
fn to_nhwc(c: usize, pixels: usize, v: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for (src, dst) in v
        .chunks_exact(c * pixels)
        .zip(out.chunks_exact_mut(c * pixels))
    {
        for k in 0..c {
            for p in 0..pixels {
                dst[p * c + k] = src[k * pixels + p];
            }
        }
    }
    out
}

/// A kernel's input: the same spikes as NCHW floats and as bits.
struct Input {
    nchw: Vec<f32>,
    bits: SpikeMaps,
}

/// A kernel under test, run on an input, writing its output.
type Kernel<'a> = Box<dyn Fn(&Input, &mut [f32]) + 'a>;

/// One op of a layer: its name, its output length and its variants.
type Op<'a> = (&'static str, usize, Vec<(&'static str, Kernel<'a>)>);

/// A layer's spike dimensions `[frames, c_in, h, w]`, its `c_out`, and how many outputs a
/// spike at index `i` of either axis reaches.
struct Layer {
    name: &'static str,
    dims: [usize; 4],
    c_out: usize,
    reach: fn(usize) -> usize,
}

impl Layer {
    fn input(&self, density: f64) -> Input {
        let [frames, c_in, h, w] = self.dims;
        let nchw = spikes(frames * c_in * h * w, density, 1);
        let bits = SpikeMaps::from_nchw(frames, c_in, h, w, &nchw);
        Input { nchw, bits }
    }

    /// Useful multiply-adds on `x`: each spike times the outputs it reaches times `c_out`.
    fn useful_macs(&self, x: &SpikeMaps) -> u64 {
        let [frames, _, h, w] = self.dims;
        let mut macs = 0;
        for f in 0..frames {
            for iy in 0..h {
                for ix in 0..w {
                    let set: u32 = x.pixel(f, iy, ix).iter().map(|b| b.count_ones()).sum();
                    let reached = (self.reach)(iy) * (self.reach)(ix) * self.c_out;
                    macs += u64::from(set) * reached as u64;
                }
            }
        }
        macs
    }
}

/// Criterion timings of one layer: `pack/<density>`, then `<op>/dense` once and
/// `<op>/<variant>/<density>` for every other variant and density.
fn bench_layer(c: &mut Criterion, layer: &Layer, ops: &[Op]) {
    let mut g = c.benchmark_group(layer.name);
    g.sample_size(10);
    let inputs: Vec<(f64, Input)> = DENSITIES.iter().map(|&d| (d, layer.input(d))).collect();
    let label = |d: f64| format!("{:02}%", (d * 100.0).round() as u32);
    for (d, x) in &inputs {
        let [frames, c_in, h, w] = layer.dims;
        g.throughput(Throughput::Elements(x.nchw.len() as u64));
        g.bench_function(BenchmarkId::new("pack", label(*d)), |b| {
            b.iter(|| black_box(SpikeMaps::from_nchw(frames, c_in, h, w, &x.nchw)))
        });
    }
    for (op, out_len, variants) in ops {
        let mut out = vec![0.0; *out_len];
        for (variant, kernel) in variants {
            for (d, x) in &inputs {
                if *variant == "dense" && *d != 0.2 {
                    continue;
                }
                g.throughput(Throughput::Elements(layer.useful_macs(&x.bits)));
                let id = BenchmarkId::new(format!("{op}/{variant}"), label(*d));
                g.bench_function(id, |b| {
                    b.iter(|| {
                        kernel(x, &mut out);
                        black_box(&out);
                    })
                });
            }
        }
    }
    g.finish();
}

fn bench_deconv1(c: &mut Criterion) {
    let s = ConvTranspose2dShape {
        batch: 64,
        c_in: 32,
        h: 20,
        w: 20,
        c_out: 16,
        kh: 5,
        kw: 5,
        stride: 1,
        padding: 0,
        output_padding: 0,
    };
    let layer = Layer {
        name: "gather_deconv1_64x32x20x20_16x5x5",
        dims: [s.batch, s.c_in, s.h, s.w],
        c_out: s.c_out,
        // Every stamp lands whole in the full output.
        reach: |_| 5,
    };
    let w = uniform(s.weight_len(), 0.1, 2);
    let gy = uniform(s.output_len(), 1.0, 3);
    let gy_nhwc = to_nhwc(s.c_out, s.out_h() * s.out_w(), &gy);
    let packed = PackedWeights::conv_transpose2d(&s, &w);
    let (w, gy, gy_nhwc, packed) = (&w[..], &gy[..], &gy_nhwc[..], &packed);
    let ops: Vec<Op> = vec![
        (
            "forward",
            s.output_len(),
            vec![
                (
                    "dense",
                    Box::new(move |x, y| kernels::conv_transpose2d_forward(&s, &x.nchw, w, y)),
                ),
                (
                    "event",
                    Box::new(move |x, y| {
                        kernels::conv_transpose2d_forward_event(&s, &x.nchw, w, y)
                    }),
                ),
                (
                    "gather",
                    Box::new(move |x, y| {
                        kernels::conv_transpose2d_forward_gather(&s, &x.bits, packed, y)
                    }),
                ),
                (
                    "gather_nchw",
                    Box::new(move |x, y| {
                        kernels::conv_transpose2d_forward_gather_nchw(&s, &x.bits, packed, y)
                    }),
                ),
            ],
        ),
        (
            "backward_weight",
            s.weight_len(),
            vec![
                (
                    "dense",
                    Box::new(move |x, g| {
                        kernels::conv_transpose2d_backward_weight(&s, &x.nchw, gy, g)
                    }),
                ),
                (
                    "event",
                    Box::new(move |x, g| {
                        kernels::conv_transpose2d_backward_weight_event(&s, &x.nchw, gy, g)
                    }),
                ),
                (
                    "gather",
                    Box::new(move |x, g| {
                        kernels::conv_transpose2d_backward_weight_gather(&s, &x.bits, gy_nhwc, g)
                    }),
                ),
            ],
        ),
        (
            "backward_input",
            s.input_len(),
            vec![
                (
                    "dense",
                    Box::new(move |_, g| kernels::conv_transpose2d_backward_input(&s, gy, w, g)),
                ),
                (
                    "event",
                    Box::new(move |x, g| {
                        kernels::conv_transpose2d_backward_input_event(&s, &x.nchw, w, gy, g)
                    }),
                ),
                (
                    "gather",
                    Box::new(move |x, g| {
                        kernels::conv_transpose2d_backward_input_gather(
                            &s, &x.bits, packed, gy_nhwc, g,
                        )
                    }),
                ),
            ],
        ),
    ];
    bench_layer(c, &layer, &ops);
}

fn bench_conv2(c: &mut Criterion) {
    let s = Conv2dShape {
        batch: 64,
        c_in: 16,
        h: 24,
        w: 24,
        c_out: 32,
        kh: 5,
        kw: 5,
        stride: 1,
        padding: 0,
    };
    let layer = Layer {
        name: "gather_conv2_64x16x24x24_32x5x5",
        dims: [s.batch, s.c_in, s.h, s.w],
        c_out: s.c_out,
        // Input index i sits under tap p of output i − p, for the outputs 0..20 there are.
        reach: |i| (0..5).filter(|&p| i >= p && i - p < 20).count(),
    };
    let w = uniform(s.weight_len(), 0.1, 2);
    let gy = uniform(s.output_len(), 1.0, 3);
    let gy_nhwc = to_nhwc(s.c_out, s.out_h() * s.out_w(), &gy);
    let packed = PackedWeights::conv2d(&s, &w);
    let (w, gy, gy_nhwc, packed) = (&w[..], &gy[..], &gy_nhwc[..], &packed);
    let ops: Vec<Op> = vec![
        (
            "forward",
            s.output_len(),
            vec![
                (
                    "dense",
                    Box::new(move |x, y| kernels::conv2d_forward(&s, &x.nchw, w, y)),
                ),
                (
                    "event",
                    Box::new(move |x, y| kernels::conv2d_forward_event(&s, &x.nchw, w, y)),
                ),
                (
                    "gather",
                    Box::new(move |x, y| kernels::conv2d_forward_gather(&s, &x.bits, packed, y)),
                ),
                (
                    "gather_nchw",
                    Box::new(move |x, y| {
                        kernels::conv2d_forward_gather_nchw(&s, &x.bits, packed, y)
                    }),
                ),
            ],
        ),
        (
            "backward_weight",
            s.weight_len(),
            vec![
                (
                    "dense",
                    Box::new(move |x, g| kernels::conv2d_backward_weight(&s, &x.nchw, gy, g)),
                ),
                (
                    "event",
                    Box::new(move |x, g| kernels::conv2d_backward_weight_event(&s, &x.nchw, gy, g)),
                ),
                (
                    "gather",
                    Box::new(move |x, g| {
                        kernels::conv2d_backward_weight_gather(&s, &x.bits, gy_nhwc, g)
                    }),
                ),
            ],
        ),
        (
            "backward_input",
            s.input_len(),
            vec![
                (
                    "dense",
                    Box::new(move |_, g| kernels::conv2d_backward_input(&s, gy, w, g)),
                ),
                (
                    "event",
                    Box::new(move |x, g| {
                        kernels::conv2d_backward_input_event(&s, &x.nchw, w, gy, g)
                    }),
                ),
                (
                    "gather",
                    Box::new(move |x, g| {
                        kernels::conv2d_backward_input_gather(&s, &x.bits, packed, gy_nhwc, g)
                    }),
                ),
            ],
        ),
    ];
    bench_layer(c, &layer, &ops);
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_deconv1(&mut c);
    bench_conv2(&mut c);
    c.final_summary();
}
