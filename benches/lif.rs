//! Multi-step LIF forward and backward, with the memory bandwidth they run against.
//!
//! The LIF kernels do a few flops per value they move, so memory bandwidth bounds them.
//! Measured in the same run for reference: a STREAM-style triad `a[i] = b[i] + s·c[i]`
//! over three 64 MiB arrays, counted as 12 bytes per element (two reads, one write; the
//! read-for-ownership of `a` is not counted, as in STREAM).
//!
//! The LIF layer is the paper's first one at batch 32: T = 100 steps of
//! N = 32·16·24·24 = 294 912 neurons, for the paper's configuration (membrane surrogate,
//! reset to zero, the authors' floor) and for the fast-sigmoid surrogate (same reset and
//! floor), which also keeps `v[t]`. Throughput counts the bytes each kernel must move:
//! forward reads the current and writes `c` and the trace; backward reads the trace and
//! both upstream gradients (`∂L/∂s` and `∂L/∂c`) and writes `∂L/∂I`. `lif_forward`
//! allocates a fresh trace on every call, as the training step does, and the page faults
//! of its first writes are timed but not counted. Every case runs on a 1-thread and a
//! 2-thread rayon pool.
//!
//! `cargo bench --bench lif`.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use kernels::rayon::prelude::*;
use kernels::rayon::{ThreadPool, ThreadPoolBuilder};
use kernels::{Floor, LifParams, Reset, Surrogate, lif_backward, lif_forward};
use rand::{Rng, SeedableRng, rngs::StdRng};

const STEPS: usize = 100;
const NEURONS: usize = 32 * 16 * 24 * 24;
const THREADS: [usize; 2] = [1, 2];

fn pool(threads: usize) -> ThreadPool {
    ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a rayon pool")
}

fn configure(g: &mut BenchmarkGroup<'_, WallTime>) {
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(2));
    g.measurement_time(Duration::from_secs(6));
}

/// `a[i] = b[i] + s·c[i]` over 64 MiB arrays.
fn triad(c: &mut Criterion) {
    let n = (64 << 20) / 4;
    let (b, cv) = (vec![1.0f32; n], vec![2.0f32; n]);
    let mut a = vec![0.0f32; n];
    let mut g = c.benchmark_group("triad_64MiB");
    configure(&mut g);
    g.throughput(Throughput::Bytes(12 * n as u64));
    for threads in THREADS {
        let pool = pool(threads);
        g.bench_function(format!("{threads}_thread"), |bench| {
            bench.iter(|| {
                pool.install(|| {
                    (a.par_chunks_mut(1 << 16))
                        .zip(b.par_chunks(1 << 16).zip(cv.par_chunks(1 << 16)))
                        .for_each(|(a, (b, c))| {
                            for (a, (b, c)) in a.iter_mut().zip(b.iter().zip(c)) {
                                *a = b + 3.0 * c;
                            }
                        })
                });
                black_box(&a);
            })
        });
    }
    g.finish();
}

fn random(len: usize, lo: f32, hi: f32, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(lo..hi)).collect()
}

fn lif(c: &mut Criterion) {
    let len = STEPS * NEURONS;
    // Currents around threshold: a mix of silent, spiking and floored neurons.
    let current = random(len, -1.5, 1.5, 1);
    let (gs, gc) = (random(len, -1.0, 1.0, 2), random(len, -1.0, 1.0, 3));
    let mut cum = vec![0.0f32; len];
    let mut gi = vec![0.0f32; len];
    let paper = LifParams::PAPER;
    let sigmoid = LifParams {
        surrogate: Surrogate::FastSigmoid { slope: 5.0 },
        reset: Reset::Zero,
        floor: Floor::Authors,
        ..paper
    };
    let values = 4 * len as u64;
    for (name, p) in [("membrane", paper), ("fast_sigmoid", sigmoid)] {
        let trace = lif_forward(&p, STEPS, NEURONS, &current, &mut cum);
        let density = trace.total_spikes() as f64 / len as f64;
        println!(
            "lif {name}: T = {STEPS}, N = {NEURONS}, spike density {density:.3}, trace {:.1} MiB",
            trace.bytes() as f64 / (1 << 20) as f64
        );

        let mut g = c.benchmark_group(format!("lif_forward_{name}_T{STEPS}_N{NEURONS}"));
        configure(&mut g);
        g.throughput(Throughput::Bytes(2 * values + trace.bytes() as u64));
        for threads in THREADS {
            let pool = pool(threads);
            g.bench_function(format!("{threads}_thread"), |bench| {
                bench.iter(|| {
                    let t = pool.install(|| lif_forward(&p, STEPS, NEURONS, &current, &mut cum));
                    black_box((&t, &cum));
                })
            });
        }
        g.finish();

        let mut g = c.benchmark_group(format!("lif_backward_{name}_T{STEPS}_N{NEURONS}"));
        configure(&mut g);
        g.throughput(Throughput::Bytes(3 * values + trace.bytes() as u64));
        for threads in THREADS {
            let pool = pool(threads);
            g.bench_function(format!("{threads}_thread"), |bench| {
                bench.iter(|| {
                    pool.install(|| lif_backward(&p, &trace, Some(&gs), Some(&gc), &mut gi));
                    black_box(&gi);
                })
            });
        }
        g.finish();
    }
}

criterion_group!(benches, triad, lif);
criterion_main!(benches);
