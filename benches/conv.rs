//! conv2d forward + backward (input and weight gradients) for input [64, 16, 24, 24],
//! 32 filters 5×5: the kernels called directly, and the same work through the autograd
//! tape, so the tape's overhead reads as the ratio of the two. A 1024³ sgemm on all
//! threads gives this machine's measured f32 peak to set the figures against.
//!
//! `cargo bench --bench conv`; throughput is printed as elements/s = FLOP/s.

use std::hint::black_box;

use autograd::gradcheck::random;
use autograd::{Parameter, Tape};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use kernels::{Conv2dShape, ConvTranspose2dShape};

const SHAPE: Conv2dShape = Conv2dShape {
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

fn conv2d_forward_backward(c: &mut Criterion) {
    let s = SHAPE;
    let x = random(&[s.batch, s.c_in, s.h, s.w], -1.0, 1.0, 1);
    let w = random(&[s.c_out, s.c_in, s.kh, s.kw], -0.1, 0.1, 2);
    let gy = random(&[s.batch, s.c_out, s.out_h(), s.out_w()], -1.0, 1.0, 3);
    let mut g = c.benchmark_group("conv2d_fwd_bwd_64x16x24x24_32x5x5");
    // Forward, input gradient and weight gradient each cost the forward's FLOPs.
    g.throughput(Throughput::Elements((3.0 * s.flops()) as u64));
    g.sample_size(40);
    g.measurement_time(std::time::Duration::from_secs(10));

    let (mut y, mut gx, mut gw) = (
        vec![0.0; s.output_len()],
        vec![0.0; s.input_len()],
        vec![0.0; s.weight_len()],
    );
    let (xs, ws, gys) = (
        x.as_slice().unwrap(),
        w.as_slice().unwrap(),
        gy.as_slice().unwrap(),
    );
    g.bench_function("kernels", |b| {
        b.iter(|| {
            kernels::conv2d_forward(&s, xs, ws, &mut y);
            kernels::conv2d_backward_input(&s, gys, ws, &mut gx);
            kernels::conv2d_backward_weight(&s, xs, gys, &mut gw);
            black_box((&y, &gx, &gw));
        })
    });

    // The same with fresh output buffers each time, as the tape allocates them: separates
    // the allocator's cost from the tape's bookkeeping.
    g.bench_function("kernels_fresh_buffers", |b| {
        b.iter(|| {
            let mut y = vec![0.0; s.output_len()];
            let mut gx = vec![0.0; s.input_len()];
            let mut gw = vec![0.0; s.weight_len()];
            kernels::conv2d_forward(&s, xs, ws, &mut y);
            kernels::conv2d_backward_input(&s, gys, ws, &mut gx);
            kernels::conv2d_backward_weight(&s, xs, gys, &mut gw);
            black_box((&y, &gx, &gw));
        })
    });
    let weight = Parameter::new("w", w.clone());
    // The input and upstream gradient are handed over by value, as in a training step;
    // their copies are made, and the input is dropped, outside the timed region.
    g.bench_function("tape", |b| {
        b.iter_batched(
            || (x.clone(), gy.clone()),
            |(x, gy)| {
                let tape = Tape::new();
                let xv = tape.var(x);
                let y = xv.conv2d(&tape.param(&weight), None, s.stride, s.padding);
                let grads = y.backward_with(gy);
                black_box(grads.get(&xv));
                weight.zero_grad();
                (xv.shared(), grads)
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// One layer's forward, input gradient and weight gradient: `(x, w, gy, y, gx, gw)`.
type Pass = dyn Fn(&[f32], &[f32], &[f32], &mut [f32], &mut [f32], &mut [f32]);

/// Benches `pass` on random data of the given (input, weight, output) lengths.
fn bench_pass(
    g: &mut criterion::BenchmarkGroup<criterion::measurement::WallTime>,
    name: &str,
    (nx, nw, ny): (usize, usize, usize),
    flops: f64,
    pass: &Pass,
) {
    let x = random(&[nx], 0.0, 1.0, 6);
    let w = random(&[nw], -0.1, 0.1, 7);
    let gy = random(&[ny], -1.0, 1.0, 8);
    let (xs, ws, gys) = (
        x.as_slice().unwrap(),
        w.as_slice().unwrap(),
        gy.as_slice().unwrap(),
    );
    let (mut y, mut gx, mut gw) = (vec![0.0; ny], vec![0.0; nx], vec![0.0; nw]);
    g.throughput(Throughput::Elements((3.0 * flops) as u64));
    g.bench_function(name, |b| {
        b.iter(|| {
            pass(xs, ws, gys, &mut y, &mut gx, &mut gw);
            black_box((&y, &gx, &gw));
        })
    });
}

/// The paper's four conv layers on `T·B = 25·32` frames, dense kernels: forward, input
/// gradient and weight gradient per iteration.
fn paper_shapes(c: &mut Criterion) {
    let frames = 25 * 32;
    let mut g = c.benchmark_group("paper_conv_fwd_bwd_800_frames");
    g.sample_size(10);
    for (name, c_in, h, c_out) in [
        ("conv1_1to16_28", 1, 28, 16),
        ("conv2_16to32_24", 16, 24, 32),
    ] {
        let s = Conv2dShape {
            batch: frames,
            c_in,
            h,
            w: h,
            c_out,
            kh: 5,
            kw: 5,
            stride: 1,
            padding: 0,
        };
        bench_pass(
            &mut g,
            name,
            (s.input_len(), s.weight_len(), s.output_len()),
            s.flops(),
            &move |x, w, gy, y, gx, gw| {
                kernels::conv2d_forward(&s, x, w, y);
                kernels::conv2d_backward_input(&s, gy, w, gx);
                kernels::conv2d_backward_weight(&s, x, gy, gw);
            },
        );
    }
    for (name, c_in, h, c_out) in [
        ("convt1_32to16_20", 32, 20, 16),
        ("convt2_16to1_24", 16, 24, 1),
    ] {
        let s = ConvTranspose2dShape {
            batch: frames,
            c_in,
            h,
            w: h,
            c_out,
            kh: 5,
            kw: 5,
            stride: 1,
            padding: 0,
            output_padding: 0,
        };
        bench_pass(
            &mut g,
            name,
            (s.input_len(), s.weight_len(), s.output_len()),
            s.flops(),
            &move |x, w, gy, y, gx, gw| {
                kernels::conv_transpose2d_forward(&s, x, w, y);
                kernels::conv_transpose2d_backward_input(&s, gy, w, gx);
                kernels::conv_transpose2d_backward_weight(&s, x, gy, gw);
            },
        );
    }
    g.finish();
}

fn sgemm_peak(c: &mut Criterion) {
    let n = 1024;
    let a = random(&[n, n], -1.0, 1.0, 4);
    let bm = random(&[n, n], -1.0, 1.0, 5);
    let mut out = vec![0.0; n * n];
    let mut g = c.benchmark_group("sgemm_1024");
    g.throughput(Throughput::Elements(2 * (n * n * n) as u64));
    g.sample_size(10);
    let ni = n as isize;
    g.bench_function("all_threads", |b| {
        b.iter(|| {
            kernels::sgemm(
                n,
                n,
                n,
                1.0,
                a.as_slice().unwrap(),
                ni,
                1,
                bm.as_slice().unwrap(),
                ni,
                1,
                0.0,
                &mut out,
                ni,
                1,
            );
            black_box(&out);
        })
    });
    g.finish();
}

criterion_group!(benches, conv2d_forward_backward, paper_shapes, sgemm_peak);
criterion_main!(benches);
