//! Helpers shared by the kernel tests: seeded random data and spikes, output buffers
//! that show what a kernel left unwritten, tolerant and bitwise comparison, and random
//! convolution shapes.

use proptest::prelude::*;
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::conv::{Conv2dShape, ConvTranspose2dShape};

/// `len` values drawn uniformly from `[-1, 1)`, reproducible from `seed`.
pub fn random_vec(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// `len` inputs, each nonzero with probability `density`: 1.0 (a spike), or when
/// `analog` a nonzero value drawn from `[-1, 1)`. Density 1 gives all ones (or all
/// nonzero), density 0 all zeros.
pub fn spikes(len: usize, density: f64, analog: bool, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len)
        .map(|_| {
            if !rng.random_bool(density) {
                0.0
            } else if analog {
                let v: f32 = rng.random_range(-1.0..1.0);
                if v == 0.0 { 0.5 } else { v }
            } else {
                1.0
            }
        })
        .collect()
}

/// The spike densities the event tests cover: none, sparse, half, all.
pub fn any_density() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), Just(0.05), Just(0.5), Just(1.0)]
}

/// The output of `f` writing into a buffer of `len` NaNs (so unwritten output shows).
pub fn run(len: usize, f: impl FnOnce(&mut [f32])) -> Vec<f32> {
    let mut out = vec![f32::NAN; len];
    f(&mut out);
    out
}

/// `f` on a fresh rayon pool of `threads` threads.
pub fn on_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(f)
}

/// The bit patterns of `v`, for comparisons that must be exact (NaNs and signed zeros
/// included).
pub fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

/// Asserts `|got − want| ≤ tol·max(1, |want|)` elementwise, naming the first offender.
pub fn assert_close(got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "length mismatch");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "element {i}: got {g}, want {w} (tolerance {tol})"
        );
    }
}

/// Random convolution shapes covering the edge cases: batches and output channels from
/// the given strategies, 1–3 input channels, sides below `max_side`, 1×1 and oversized
/// kernels (those that do not fit the padded input are filtered out), strides up to 3
/// and padding up to 2.
pub fn conv2d_shapes(
    batch: impl Strategy<Value = usize>,
    c_out: impl Strategy<Value = usize>,
    max_side: usize,
) -> impl Strategy<Value = Conv2dShape> {
    (
        batch,
        (1usize..4, 1..max_side, 1..max_side, c_out),
        (1usize..6, 1usize..6, 1usize..4, 0usize..3),
    )
        .prop_map(
            |(batch, (c_in, h, w, c_out), (kh, kw, stride, padding))| Conv2dShape {
                batch,
                c_in,
                h,
                w,
                c_out,
                kh,
                kw,
                stride,
                padding,
            },
        )
        .prop_filter("kernel must fit the padded input", |s| s.validate().is_ok())
}

/// Transposed-convolution shapes built on the convolution shapes of `base`, with an
/// output padding below the stride.
pub fn conv_transpose2d_shapes(
    base: impl Strategy<Value = Conv2dShape>,
) -> impl Strategy<Value = ConvTranspose2dShape> {
    (base, 0usize..3).prop_filter_map("invalid", |(s, op)| {
        let t = ConvTranspose2dShape {
            batch: s.batch,
            c_in: s.c_in,
            h: s.h,
            w: s.w,
            c_out: s.c_out,
            kh: s.kh,
            kw: s.kw,
            stride: s.stride,
            padding: s.padding,
            output_padding: op.min(s.stride - 1),
        };
        t.validate().is_ok().then_some(t)
    })
}
