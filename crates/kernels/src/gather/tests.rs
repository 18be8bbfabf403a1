//! The gather kernels against their references, and the references against the dense
//! kernels of [`crate::conv`] (layouts converted), on odd shapes, empty and full spike
//! maps, and the paper's layers; thread-count invariance.

use super::*;
use crate::conv::{
    Conv2dShape, ConvTranspose2dShape, conv_transpose2d_backward_input,
    conv_transpose2d_backward_weight, conv_transpose2d_forward, conv2d_backward_input,
    conv2d_backward_weight, conv2d_forward,
};
use crate::testutil::{
    any_density, assert_close, bits, conv_transpose2d_shapes, conv2d_shapes, on_threads,
    random_vec, run, spikes,
};
use proptest::prelude::*;

/// Tolerance of a fast kernel against its reference (`f32` sums of up to a few thousand
/// terms against `f64` ones) and of a reference against a dense kernel, as in the event
/// kernels' tests.
const TOL: f32 = 1e-4;

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

/// `[frames, pixels, c]` → `[frames, c, pixels]`.
fn to_nchw(c: usize, pixels: usize, v: &[f32]) -> Vec<f32> {
    to_nhwc(pixels, c, v)
}

/// One convolution kind's kernels: gather, reference and dense, and its sizes.
struct Ops<S> {
    /// `[frames, c_in, h, w, c_out, out_pixels, weight_len]`.
    dims: fn(&S) -> [usize; 7],
    pack: fn(&S, &[f32]) -> PackedWeights,
    forward: fn(&S, &SpikeMaps, &PackedWeights, &mut [f32]),
    forward_nchw: fn(&S, &SpikeMaps, &PackedWeights, &mut [f32]),
    forward_ref: fn(&S, &SpikeMaps, &[f32], &mut [f32]),
    forward_dense: fn(&S, &[f32], &[f32], &mut [f32]),
    weight: fn(&S, &SpikeMaps, &[f32], &mut [f32]),
    weight_ref: fn(&S, &SpikeMaps, &[f32], &mut [f32]),
    weight_dense: fn(&S, &[f32], &[f32], &mut [f32]),
    input: fn(&S, &SpikeMaps, &PackedWeights, &[f32], &mut [f32]),
    input_ref: fn(&S, &SpikeMaps, &[f32], &[f32], &mut [f32]),
    input_dense: fn(&S, &[f32], &[f32], &mut [f32]),
}

const CONV2D: Ops<Conv2dShape> = Ops {
    dims: |s| {
        let (p, n) = (s.out_h() * s.out_w(), s.weight_len());
        [s.batch, s.c_in, s.h, s.w, s.c_out, p, n]
    },
    pack: PackedWeights::conv2d,
    forward: conv2d_forward_gather,
    forward_nchw: conv2d_forward_gather_nchw,
    forward_ref: conv2d_forward_gather_ref,
    forward_dense: conv2d_forward,
    weight: conv2d_backward_weight_gather,
    weight_ref: conv2d_backward_weight_gather_ref,
    weight_dense: conv2d_backward_weight,
    input: conv2d_backward_input_gather,
    input_ref: conv2d_backward_input_gather_ref,
    input_dense: conv2d_backward_input,
};

const CONV_TRANSPOSE2D: Ops<ConvTranspose2dShape> = Ops {
    dims: |s| {
        let (p, n) = (s.out_h() * s.out_w(), s.weight_len());
        [s.batch, s.c_in, s.h, s.w, s.c_out, p, n]
    },
    pack: PackedWeights::conv_transpose2d,
    forward: conv_transpose2d_forward_gather,
    forward_nchw: conv_transpose2d_forward_gather_nchw,
    forward_ref: conv_transpose2d_forward_gather_ref,
    forward_dense: conv_transpose2d_forward,
    weight: conv_transpose2d_backward_weight_gather,
    weight_ref: conv_transpose2d_backward_weight_gather_ref,
    weight_dense: conv_transpose2d_backward_weight,
    input: conv_transpose2d_backward_input_gather,
    input_ref: conv_transpose2d_backward_input_gather_ref,
    input_dense: conv_transpose2d_backward_input,
};

/// Every kernel of `ops` on `s` at spike density `density`: fast against reference,
/// reference against dense. `fast_only` skips the dense comparison.
fn check_all<S>(ops: &Ops<S>, s: &S, density: f64, seed: u64, fast_only: bool) {
    let [frames, c_in, h, w, c_out, out_pixels, nw] = (ops.dims)(s);
    let (nx, ny) = (frames * c_in * h * w, frames * out_pixels * c_out);
    let x_dense = spikes(nx, density, false, seed);
    let x = SpikeMaps::from_nchw(frames, c_in, h, w, &x_dense);
    let (wt, gy) = (random_vec(nw, seed + 1), random_vec(ny, seed + 2));
    let gy_nchw = to_nchw(c_out, out_pixels, &gy);
    let packed = (ops.pack)(s, &wt);

    let want = run(ny, |y| (ops.forward_ref)(s, &x, &wt, y));
    assert_close(&run(ny, |y| (ops.forward)(s, &x, &packed, y)), &want, TOL);
    let got = run(ny, |y| (ops.forward_nchw)(s, &x, &packed, y));
    assert_close(&got, &to_nchw(c_out, out_pixels, &want), TOL);
    if !fast_only {
        let dense = run(ny, |y| (ops.forward_dense)(s, &x_dense, &wt, y));
        assert_close(&to_nhwc(c_out, out_pixels, &dense), &want, TOL);
    }

    let want = run(nw, |g| (ops.weight_ref)(s, &x, &gy, g));
    assert_close(&run(nw, |g| (ops.weight)(s, &x, &gy, g)), &want, TOL);
    if !fast_only {
        let dense = run(nw, |g| (ops.weight_dense)(s, &x_dense, &gy_nchw, g));
        assert_close(&dense, &want, TOL);
    }

    let want = run(nx, |g| (ops.input_ref)(s, &x, &wt, &gy, g));
    assert_close(
        &run(nx, |g| (ops.input)(s, &x, &packed, &gy, g)),
        &want,
        TOL,
    );
    if !fast_only {
        let mut dense = run(nx, |g| (ops.input_dense)(s, &gy_nchw, &wt, g));
        dense
            .iter_mut()
            .zip(&x_dense)
            .filter(|(_, x)| **x == 0.0)
            .for_each(|(g, _)| *g = 0.0);
        assert_close(&to_nhwc(c_in, h * w, &dense), &want, TOL);
    }
}

/// Convolution shapes with channel counts on both sides of the 8-lane and 64-bit
/// boundaries (several words per pixel, several register blocks per output row).
fn conv2d_shape() -> impl Strategy<Value = Conv2dShape> {
    let c_out = prop_oneof![1usize..4, Just(8), 9usize..20, 33usize..41];
    let c_in = prop_oneof![1usize..4, Just(17), Just(64), Just(65)];
    (conv2d_shapes(0usize..4, c_out, 10), c_in).prop_map(|(s, c_in)| Conv2dShape { c_in, ..s })
}

fn conv_transpose2d_shape() -> impl Strategy<Value = ConvTranspose2dShape> {
    conv_transpose2d_shapes(conv2d_shape())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn conv2d_matches_reference_and_dense(
        s in conv2d_shape(),
        density in any_density(),
        seed in any::<u64>(),
    ) {
        check_all(&CONV2D, &s, density, seed, false);
    }

    #[test]
    fn conv_transpose2d_matches_reference_and_dense(
        s in conv_transpose2d_shape(),
        density in any_density(),
        seed in any::<u64>(),
    ) {
        check_all(&CONV_TRANSPOSE2D, &s, density, seed, false);
    }
}

#[test]
fn by_hand() {
    // One spike in the middle of a 3×3 image, a 2×2 kernel [1 2; 3 4]: each of the four
    // windows containing the centre sees it through a different tap, and the transposed
    // convolution stamps the kernel at the spike.
    let s = Conv2dShape {
        batch: 1,
        c_in: 1,
        h: 3,
        w: 3,
        c_out: 1,
        kh: 2,
        kw: 2,
        stride: 1,
        padding: 0,
    };
    let mut x = [0.0; 9];
    x[4] = 1.0;
    let x = SpikeMaps::from_nchw(1, 1, 3, 3, &x);
    let w = [1.0, 2.0, 3.0, 4.0];
    let packed = PackedWeights::conv2d(&s, &w);
    assert_eq!(
        run(4, |y| conv2d_forward_gather(&s, &x, &packed, y)),
        [4.0, 3.0, 2.0, 1.0]
    );
    let gy = [1.0, 10.0, 100.0, 1000.0];
    let gw = run(4, |g| conv2d_backward_weight_gather(&s, &x, &gy, g));
    assert_eq!(gw, [1000.0, 100.0, 10.0, 1.0]);
    let mut gx = run(9, |g| conv2d_backward_input_gather(&s, &x, &packed, &gy, g));
    assert_eq!(gx[4], 4.0 + 30.0 + 200.0 + 1000.0);
    gx[4] = 0.0;
    assert_eq!(gx, [0.0; 9]);

    let t = ConvTranspose2dShape {
        batch: 1,
        c_in: 1,
        h: 3,
        w: 3,
        c_out: 1,
        kh: 2,
        kw: 2,
        stride: 1,
        padding: 0,
        output_padding: 0,
    };
    let packed = PackedWeights::conv_transpose2d(&t, &w);
    let y = run(16, |y| conv_transpose2d_forward_gather(&t, &x, &packed, y));
    #[rustfmt::skip]
    let want = [
        0.0, 0.0, 0.0, 0.0,
        0.0, 1.0, 2.0, 0.0,
        0.0, 3.0, 4.0, 0.0,
        0.0, 0.0, 0.0, 0.0,
    ];
    assert_eq!(y, want);
}

/// The paper's layers at their typical densities, on a few frames.
#[test]
fn network_shapes_match_dense() {
    let conv = |batch, c_in, hw, c_out| Conv2dShape {
        batch,
        c_in,
        h: hw,
        w: hw,
        c_out,
        kh: 5,
        kw: 5,
        stride: 1,
        padding: 0,
    };
    let tconv = |batch, c_in, hw, c_out| ConvTranspose2dShape {
        batch,
        c_in,
        h: hw,
        w: hw,
        c_out,
        kh: 5,
        kw: 5,
        stride: 1,
        padding: 0,
        output_padding: 0,
    };
    check_all(&CONV2D, &conv(3, 1, 28, 16), 0.03, 1, false);
    check_all(&CONV2D, &conv(2, 16, 24, 32), 0.2, 2, false);
    check_all(&CONV_TRANSPOSE2D, &tconv(2, 32, 20, 16), 0.2, 3, false);
    check_all(&CONV_TRANSPOSE2D, &tconv(3, 16, 24, 1), 0.02, 4, false);
}

#[test]
fn results_are_identical_on_one_and_two_threads() {
    let s = Conv2dShape {
        batch: 150,
        c_in: 17,
        h: 11,
        w: 9,
        c_out: 12,
        kh: 3,
        kw: 3,
        stride: 2,
        padding: 1,
    };
    let t = ConvTranspose2dShape {
        batch: 150,
        c_in: 65,
        h: 6,
        w: 5,
        c_out: 9,
        kh: 3,
        kw: 3,
        stride: 2,
        padding: 1,
        output_padding: 1,
    };
    fn all<S: Sync>(ops: &Ops<S>, s: &S, threads: usize) -> [Vec<u32>; 4] {
        let [frames, c_in, h, w, c_out, out_pixels, nw] = (ops.dims)(s);
        let (nx, ny) = (frames * c_in * h * w, frames * out_pixels * c_out);
        let x = SpikeMaps::from_nchw(frames, c_in, h, w, &spikes(nx, 0.2, false, 1));
        let (wt, gy) = (random_vec(nw, 2), random_vec(ny, 3));
        let packed = (ops.pack)(s, &wt);
        on_threads(threads, || {
            [
                bits(&run(ny, |y| (ops.forward)(s, &x, &packed, y))),
                bits(&run(ny, |y| (ops.forward_nchw)(s, &x, &packed, y))),
                bits(&run(nw, |g| (ops.weight)(s, &x, &gy, g))),
                bits(&run(nx, |g| (ops.input)(s, &x, &packed, &gy, g))),
            ]
        })
    }
    assert_eq!(all(&CONV2D, &s, 1), all(&CONV2D, &s, 2));
    assert_eq!(all(&CONV_TRANSPOSE2D, &t, 1), all(&CONV_TRANSPOSE2D, &t, 2));
    // And against the references, once.
    check_all(&CONV2D, &s, 0.2, 5, true);
    check_all(&CONV_TRANSPOSE2D, &t, 0.2, 6, true);
}

#[test]
#[should_panic(expected = "spike maps are [frames, channels, h, w] = [1, 2, 3, 3]")]
fn rejects_mismatched_spike_maps() {
    let s = Conv2dShape {
        batch: 1,
        c_in: 1,
        h: 3,
        w: 3,
        c_out: 1,
        kh: 2,
        kw: 2,
        stride: 1,
        padding: 0,
    };
    let x = SpikeMaps::zeros(1, 2, 3, 3);
    let packed = PackedWeights::conv2d(&s, &[0.0; 4]);
    conv2d_forward_gather(&s, &x, &packed, &mut [0.0; 4]);
}

/// The run loops cover convolutions of any stride and stride-1 transposed convolutions;
/// strided transposed convolutions take the per-tap path (the proptests cover both).
#[test]
fn run_form_of_the_column_links() {
    let conv = |stride, padding| Conv2dShape {
        batch: 1,
        c_in: 2,
        h: 9,
        w: 7,
        c_out: 3,
        kh: 3,
        kw: 4,
        stride,
        padding,
    };
    let tconv = |stride, padding| ConvTranspose2dShape {
        batch: 1,
        c_in: 2,
        h: 5,
        w: 4,
        c_out: 3,
        kh: 3,
        kw: 4,
        stride,
        padding,
        output_padding: 0,
    };
    use super::geometry::Geometry;
    assert!(Geometry::conv2d(&conv(1, 0)).col_runs);
    assert!(Geometry::conv2d(&conv(3, 2)).col_runs);
    assert!(Geometry::conv_transpose2d(&tconv(1, 2)).col_runs);
    assert!(!Geometry::conv_transpose2d(&tconv(2, 1)).col_runs);
}
