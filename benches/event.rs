//! Event (spike-driven) kernels against their dense counterparts, forward pass, weight
//! gradient, input gradient (at the spikes only, against the dense one) and, for the
//! convolutions, both gradients in one pass (against the dense input gradient plus the
//! weight gradient's own dispatcher, the path taken otherwise), at input spike densities from 1 % to 50 %, on three layers of the paper's
//! network:
//!
//! - conv2d 16→32, 5×5, on 24×24, batch 64;
//! - linear 100→12800, batch 1600;
//! - conv_transpose2d 32→16, 5×5, on 20×20, batch 64.
//!
//! `cargo bench --bench event` times each pair with criterion. The dense kernels' cost does
//! not depend on the data, so each is timed once per layer. Throughput is the dense FLOP
//! count for every variant, so all figures read as effective GFLOP/s and their ratio is
//! the speed-up.
//!
//! `EVENT_CROSSOVER=1 cargo bench --bench event` instead prints a table of dense and event
//! times on a finer grid of densities, each pair run alternately (best of several runs
//! each) so that a machine whose load changes during the run still gives a fair ratio, and
//! the density where the two cross. The crossover constants in `kernels::event` come from
//! that table.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use kernels::{Conv2dShape, ConvTranspose2dShape};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// Densities criterion times.
const DENSITIES: [f64; 6] = [0.01, 0.05, 0.1, 0.2, 0.3, 0.5];

/// Densities of the crossover table.
const FINE_DENSITIES: [f64; 10] = [0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5];

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

/// A kernel under test: `f(x, out)` runs it on input `x`, writing `out`.
type Kernel = Box<dyn Fn(&[f32], &mut [f32])>;

/// One operation of one layer, dense and event versions.
struct Case {
    layer: &'static str,
    op: &'static str,
    flops: f64,
    x_len: usize,
    out_len: usize,
    dense: Kernel,
    event: Kernel,
}

fn conv2d_cases() -> Vec<Case> {
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
    let (w, gy) = (
        uniform(s.weight_len(), 0.1, 2),
        uniform(s.output_len(), 1.0, 3),
    );
    let layer = "conv2d_64x16x24x24_32x5x5";
    let (w5, gy5, w6, gy6) = (w.clone(), gy.clone(), w.clone(), gy.clone());
    let (w2, gy2, w3, gy3, w4, gy4) = (
        w.clone(),
        gy.clone(),
        w.clone(),
        gy.clone(),
        w.clone(),
        gy.clone(),
    );
    vec![
        Case {
            layer,
            op: "forward",
            flops: s.flops(),
            x_len: s.input_len(),
            out_len: s.output_len(),
            dense: Box::new(move |x, y| kernels::conv2d_forward(&s, x, &w, y)),
            event: Box::new(move |x, y| kernels::conv2d_forward_event(&s, x, &w2, y)),
        },
        Case {
            layer,
            op: "backward_weight",
            flops: s.flops(),
            x_len: s.input_len(),
            out_len: s.weight_len(),
            dense: Box::new(move |x, gw| kernels::conv2d_backward_weight(&s, x, &gy, gw)),
            event: Box::new(move |x, gw| kernels::conv2d_backward_weight_event(&s, x, &gy2, gw)),
        },
        Case {
            layer,
            op: "backward",
            flops: 2.0 * s.flops(),
            x_len: s.input_len(),
            out_len: s.input_len(),
            dense: Box::new(move |x, gx| {
                let mut gw = vec![0.0; s.weight_len()];
                kernels::conv2d_backward_input(&s, &gy5, &w5, gx);
                kernels::conv2d_backward_weight_auto(&s, x.into(), &gy5, &mut gw);
            }),
            event: Box::new(move |x, gx| {
                let mut gw = vec![0.0; s.weight_len()];
                kernels::conv2d_backward_event(&s, x, &w6, &gy6, gx, &mut gw);
            }),
        },
        Case {
            layer,
            op: "backward_input",
            flops: s.flops(),
            x_len: s.input_len(),
            out_len: s.input_len(),
            dense: Box::new(move |_, gx| kernels::conv2d_backward_input(&s, &gy3, &w3, gx)),
            event: Box::new(move |x, gx| {
                kernels::conv2d_backward_input_event(&s, x, &w4, &gy4, gx)
            }),
        },
    ]
}

fn linear_cases() -> Vec<Case> {
    let (batch, fan_in, fan_out) = (1600, 100, 12800);
    let w = uniform(fan_out * fan_in, 0.1, 2);
    let gy = uniform(batch * fan_out, 1.0, 3);
    let flops = 2.0 * (batch * fan_in * fan_out) as f64;
    let layer = "linear_1600x100_12800";
    let (w2, gy2, w3, gy3, w4, gy4) = (
        w.clone(),
        gy.clone(),
        w.clone(),
        gy.clone(),
        w.clone(),
        gy.clone(),
    );
    vec![
        Case {
            layer,
            op: "forward",
            flops,
            x_len: batch * fan_in,
            out_len: batch * fan_out,
            dense: Box::new(move |x, y| {
                kernels::linear_forward_dense(batch, fan_in, fan_out, x, &w, y)
            }),
            event: Box::new(move |x, y| {
                kernels::linear_forward_event(batch, fan_in, fan_out, x, &w2, y)
            }),
        },
        Case {
            layer,
            op: "backward_weight",
            flops,
            x_len: batch * fan_in,
            out_len: fan_out * fan_in,
            dense: Box::new(move |x, gw| {
                kernels::linear_backward_weight_dense(batch, fan_in, fan_out, x, &gy, gw)
            }),
            event: Box::new(move |x, gw| {
                kernels::linear_backward_weight_event(batch, fan_in, fan_out, x, &gy2, gw)
            }),
        },
        Case {
            layer,
            op: "backward_input",
            flops,
            x_len: batch * fan_in,
            out_len: batch * fan_in,
            dense: Box::new(move |_, gx| {
                kernels::linear_backward_input_dense(batch, fan_in, fan_out, &gy3, &w3, gx)
            }),
            event: Box::new(move |x, gx| {
                kernels::linear_backward_input_event(batch, fan_in, fan_out, x, &w4, &gy4, gx)
            }),
        },
    ]
}

fn conv_transpose2d_cases() -> Vec<Case> {
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
    let (w, gy) = (
        uniform(s.weight_len(), 0.1, 2),
        uniform(s.output_len(), 1.0, 3),
    );
    let layer = "conv_transpose2d_64x32x20x20_16x5x5";
    let (w5, gy5, w6, gy6) = (w.clone(), gy.clone(), w.clone(), gy.clone());
    let (w2, gy2, w3, gy3, w4, gy4) = (
        w.clone(),
        gy.clone(),
        w.clone(),
        gy.clone(),
        w.clone(),
        gy.clone(),
    );
    vec![
        Case {
            layer,
            op: "forward",
            flops: s.flops(),
            x_len: s.input_len(),
            out_len: s.output_len(),
            dense: Box::new(move |x, y| kernels::conv_transpose2d_forward(&s, x, &w, y)),
            event: Box::new(move |x, y| kernels::conv_transpose2d_forward_event(&s, x, &w2, y)),
        },
        Case {
            layer,
            op: "backward_weight",
            flops: s.flops(),
            x_len: s.input_len(),
            out_len: s.weight_len(),
            dense: Box::new(move |x, gw| kernels::conv_transpose2d_backward_weight(&s, x, &gy, gw)),
            event: Box::new(move |x, gw| {
                kernels::conv_transpose2d_backward_weight_event(&s, x, &gy2, gw)
            }),
        },
        Case {
            layer,
            op: "backward",
            flops: 2.0 * s.flops(),
            x_len: s.input_len(),
            out_len: s.input_len(),
            dense: Box::new(move |x, gx| {
                let mut gw = vec![0.0; s.weight_len()];
                kernels::conv_transpose2d_backward_input(&s, &gy5, &w5, gx);
                kernels::conv_transpose2d_backward_weight_auto(&s, x.into(), &gy5, &mut gw);
            }),
            event: Box::new(move |x, gx| {
                let mut gw = vec![0.0; s.weight_len()];
                kernels::conv_transpose2d_backward_event(&s, x, &w6, &gy6, gx, &mut gw);
            }),
        },
        Case {
            layer,
            op: "backward_input",
            flops: s.flops(),
            x_len: s.input_len(),
            out_len: s.input_len(),
            dense: Box::new(move |_, gx| {
                kernels::conv_transpose2d_backward_input(&s, &gy3, &w3, gx)
            }),
            event: Box::new(move |x, gx| {
                kernels::conv_transpose2d_backward_input_event(&s, x, &w4, &gy4, gx)
            }),
        },
    ]
}

/// Criterion timings of one layer's cases: `<op>/dense` once, `<op>/event/<density>` at
/// every density.
fn bench_layer(c: &mut Criterion, cases: Vec<Case>) {
    let mut g = c.benchmark_group(cases[0].layer);
    g.throughput(Throughput::Elements(cases[0].flops as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    for case in &cases {
        let mut out = vec![0.0; case.out_len];
        let x = spikes(case.x_len, 0.2, 1);
        g.bench_function(BenchmarkId::new(case.op, "dense"), |b| {
            b.iter(|| {
                (case.dense)(&x, &mut out);
                black_box(&out);
            })
        });
        for d in DENSITIES {
            let x = spikes(case.x_len, d, 1);
            let op = format!("{}/event", case.op);
            let id = BenchmarkId::new(op, format!("{:02}%", (d * 100.0).round() as u32));
            g.bench_function(id, |b| {
                b.iter(|| {
                    (case.event)(&x, &mut out);
                    black_box(&out);
                })
            });
        }
    }
    g.finish();
}

/// Prints, per case and density, the best of `REPS` alternating runs of the dense and the
/// event kernel, their ratio, and the density (interpolated) where they cross.
fn crossover_table(cases: &[Case]) {
    const REPS: usize = 7;
    let time = |f: &Kernel, x: &[f32], out: &mut [f32]| {
        let start = Instant::now();
        f(x, out);
        black_box(&*out);
        start.elapsed().as_secs_f64() * 1e3
    };
    println!("layer op density dense_ms event_ms dense/event");
    for case in cases {
        let mut out = vec![0.0; case.out_len];
        let mut ratios = Vec::new();
        for d in FINE_DENSITIES {
            let x = spikes(case.x_len, d, 1);
            (case.dense)(&x, &mut out);
            (case.event)(&x, &mut out);
            let (mut dense, mut event) = (f64::MAX, f64::MAX);
            for _ in 0..REPS {
                dense = dense.min(time(&case.dense, &x, &mut out));
                event = event.min(time(&case.event, &x, &mut out));
            }
            println!(
                "{} {} {:.2} {dense:.2} {event:.2} {:.2}",
                case.layer,
                case.op,
                d,
                dense / event
            );
            ratios.push((d, dense / event));
        }
        // The first bracket where the event kernel stops winning, interpolated linearly.
        let cross = ratios.windows(2).find(|p| p[0].1 >= 1.0 && p[1].1 < 1.0);
        match cross {
            Some(p) => {
                let ((d0, r0), (d1, r1)) = (p[0], p[1]);
                let d = d0 + (d1 - d0) * (r0 - 1.0) / (r0 - r1);
                println!("{} {} crossover {d:.3}", case.layer, case.op);
            }
            None => println!("{} {} crossover outside the grid", case.layer, case.op),
        }
    }
}

fn main() {
    let cases = [conv2d_cases, linear_cases, conv_transpose2d_cases];
    if std::env::var_os("EVENT_CROSSOVER").is_some() {
        let all: Vec<Case> = cases.iter().flat_map(|make| make()).collect();
        return crossover_table(&all);
    }
    let mut c = Criterion::default().configure_from_args();
    for make in cases {
        bench_layer(&mut c, make());
    }
    c.final_summary();
}
