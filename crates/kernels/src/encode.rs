//! Input encoders: pixels to spike trains (rate and latency codes) and input noise.
//!
//! Randomness comes from [`uniform_at`], a counter-based generator: the number drawn for
//! element `k` is a pure function of `(seed, k)`, so an encoding is the same whichever
//! thread computes which element, on any number of threads. Outputs are time-major
//! `[T, N]`, `out[t·n + i]`, as the LIF kernels expect.

use std::ops::Range;

use rayon::prelude::*;

/// Outputs shorter than this run on the calling thread.
const PAR_MIN_LEN: usize = 1 << 15;

/// Elements per rayon task.
const BLOCK: usize = 1 << 14;

/// SplitMix64's output function (a bijection on `u64` with full avalanche).
#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform number in `[0, 1)` from a counter-based hash of `(seed, index)`: the same
/// number whatever thread computes it, in whatever order.
///
/// SplitMix64: the seed is mixed into a stream key, and element `index` is the mix of
/// `key + index·γ` (γ the golden-ratio increment). The top 24 bits give the float, so
/// every value is exact and the largest is `1 − 2⁻²⁴`.
#[inline]
pub fn uniform_at(seed: u64, index: u64) -> f32 {
    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
    let key = mix(seed ^ 0x6A09_E667_F3BC_C908);
    let bits = mix(key.wrapping_add(index.wrapping_mul(GAMMA)));
    (bits >> 40) as f32 * (1.0 / (1u32 << 24) as f32)
}

/// Panics unless `out` holds `steps` frames of `n` pixels.
fn check_out(kernel: &str, out: usize, steps: usize, n: usize) {
    assert!(
        out == steps * n,
        "{kernel}: out has {out} values, but steps·pixels = {steps}·{n} = {}",
        steps * n
    );
}

/// Runs `f(first_index, block)` over `out` in blocks of [`BLOCK`], on the rayon pool when
/// `out` is long enough.
fn for_blocks(out: &mut [f32], f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    if out.len() < PAR_MIN_LEN {
        f(0, out);
    } else {
        out.par_chunks_mut(BLOCK)
            .enumerate()
            .for_each(|(b, block)| f(b * BLOCK, block));
    }
}

/// Poisson (Bernoulli-per-step rate) code: for `t` in `0..steps`,
/// `out[t·n + i] = 1.0` if `uniform_at(seed, t·n + i) < x[i]·scale`, else `0.0`, for
/// `n = x.len()` pixels in `[0, 1]`. `x·scale ≥ 1` always spikes, `≤ 0` never does.
///
/// # Panics
/// If `out.len() != steps·x.len()`.
pub fn poisson_encode(x: &[f32], steps: usize, scale: f32, seed: u64, out: &mut [f32]) {
    poisson_encode_steps(x, 0..steps, scale, seed, out)
}

/// Steps `frames` of [`poisson_encode`] (of a window at least that long): `out[t·n + i]`
/// is step `frames.start + t`, the same draw the whole window makes there. A long window
/// is encoded one time tile at a time this way.
///
/// # Panics
/// If `out.len() != frames.len()·x.len()`.
pub fn poisson_encode_steps(
    x: &[f32],
    frames: Range<usize>,
    scale: f32,
    seed: u64,
    out: &mut [f32],
) {
    let n = x.len();
    check_out("poisson_encode", out.len(), frames.len(), n);
    if out.is_empty() {
        return;
    }
    let first = (frames.start * n) as u64;
    for_blocks(out, |start, block| {
        let mut i = start % n;
        for (k, o) in (first + start as u64..).zip(block) {
            *o = if uniform_at(seed, k) < x[i] * scale {
                1.0
            } else {
                0.0
            };
            i = if i + 1 == n { 0 } else { i + 1 };
        }
    });
}

/// Reference for [`poisson_encode`]: one loop over steps and pixels.
///
/// # Panics
/// If `out.len() != steps·x.len()`.
pub fn poisson_encode_ref(x: &[f32], steps: usize, scale: f32, seed: u64, out: &mut [f32]) {
    let n = x.len();
    check_out("poisson_encode_ref", out.len(), steps, n);
    for t in 0..steps {
        for (i, &x) in x.iter().enumerate() {
            let k = t * n + i;
            let spike = uniform_at(seed, k as u64) < x * scale;
            out[k] = if spike { 1.0 } else { 0.0 };
        }
    }
}

/// The first step at which `c[t] = leak·c[t−1] + x·scale` (with `c[−1] = 0`) exceeds
/// `threshold`, if it does within `steps`.
#[inline]
fn first_crossing(x: f32, steps: usize, leak: f32, threshold: f32, scale: f32) -> Option<usize> {
    let drive = x * scale;
    let mut c = 0.0;
    (0..steps).find(|_| {
        c = leak * c + drive;
        c > threshold
    })
}

/// Latency code: integrate `c[t] = leak·c[t−1] + x·scale` per pixel; one spike (1.0) at
/// the first `t` with `c[t] > threshold`, 0.0 at every other step (and at every step if
/// `c` never crosses within `steps`). Bright pixels fire early, dark ones late or never.
///
/// Two passes: the crossing step of every pixel, then the frames, both on rayon for
/// large inputs.
///
/// # Panics
/// If `out.len() != steps·x.len()`.
pub fn latency_encode(
    x: &[f32],
    steps: usize,
    leak: f32,
    threshold: f32,
    scale: f32,
    out: &mut [f32],
) {
    latency_encode_steps(x, steps, 0..steps, leak, threshold, scale, out)
}

/// Steps `frames` of [`latency_encode`] over a window of `steps`: `out[t·n + i]` is step
/// `frames.start + t` of the whole window's code.
///
/// # Panics
/// If `out.len() != frames.len()·x.len()`.
pub fn latency_encode_steps(
    x: &[f32],
    steps: usize,
    frames: Range<usize>,
    leak: f32,
    threshold: f32,
    scale: f32,
    out: &mut [f32],
) {
    let n = x.len();
    check_out("latency_encode", out.len(), frames.len(), n);
    if out.is_empty() {
        return;
    }
    let crossing = |&x: &f32| first_crossing(x, steps, leak, threshold, scale);
    let serial = out.len() < PAR_MIN_LEN;
    let fires: Vec<Option<usize>> = if serial {
        x.iter().map(crossing).collect()
    } else {
        x.par_iter().map(crossing).collect()
    };
    let frame = |(t, frame): (usize, &mut [f32])| {
        for (o, fire) in frame.iter_mut().zip(&fires) {
            *o = if *fire == Some(frames.start + t) {
                1.0
            } else {
                0.0
            };
        }
    };
    if serial {
        out.chunks_mut(n).enumerate().for_each(frame);
    } else {
        out.par_chunks_mut(n).enumerate().for_each(frame);
    }
}

/// Reference for [`latency_encode`]: each pixel's integrator run step by step.
///
/// # Panics
/// If `out.len() != steps·x.len()`.
pub fn latency_encode_ref(
    x: &[f32],
    steps: usize,
    leak: f32,
    threshold: f32,
    scale: f32,
    out: &mut [f32],
) {
    let n = x.len();
    check_out("latency_encode_ref", out.len(), steps, n);
    for (i, &x) in x.iter().enumerate() {
        let drive = x * scale;
        let (mut c, mut fired) = (0.0, false);
        for t in 0..steps {
            c = leak * c + drive;
            let spike = !fired && c > threshold;
            fired |= spike;
            out[t * n + i] = if spike { 1.0 } else { 0.0 };
        }
    }
}

/// Input noise: `x[i] ← (1 − noise)·x[i] + noise·u` with `u = uniform_at(seed, i)`.
pub fn add_noise(x: &mut [f32], noise: f32, seed: u64) {
    for_blocks(x, |start, block| {
        for (k, x) in (start as u64..).zip(block) {
            *x = (1.0 - noise) * *x + noise * uniform_at(seed, k);
        }
    });
}

/// Reference for [`add_noise`]: one serial loop.
pub fn add_noise_ref(x: &mut [f32], noise: f32, seed: u64) {
    for (i, x) in x.iter_mut().enumerate() {
        *x = (1.0 - noise) * *x + noise * uniform_at(seed, i as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::on_threads;
    use proptest::prelude::*;

    fn pixels(n: usize, seed: u64) -> Vec<f32> {
        (0..n as u64).map(|i| uniform_at(seed, i)).collect()
    }

    #[test]
    fn uniform_is_in_range_and_uniform() {
        let n = 200_000;
        let mut buckets = [0usize; 10];
        let mut sum = 0.0f64;
        for k in 0..n {
            let u = uniform_at(42, k);
            assert!((0.0..1.0).contains(&u));
            buckets[(u * 10.0) as usize] += 1;
            sum += f64::from(u);
        }
        assert!((sum / n as f64 - 0.5).abs() < 0.005);
        // Each bucket expects 20 000 ± 134 (one σ).
        for b in buckets {
            assert!(b.abs_diff(n as usize / 10) < 1000, "{buckets:?}");
        }
        // Seeds give different streams, and the same seed the same one.
        assert_ne!(pixels(8, 1), pixels(8, 2));
        assert_eq!(pixels(8, 1), pixels(8, 1));
        assert_eq!(
            uniform_at(u64::MAX, u64::MAX),
            uniform_at(u64::MAX, u64::MAX)
        );
    }

    #[test]
    fn poisson_rate_matches_intensity() {
        let (steps, n) = (100, 1000);
        for (x, scale) in [(0.3, 1.0), (0.6, 0.5), (0.05, 2.0)] {
            let mut out = vec![f32::NAN; steps * n];
            poisson_encode(&vec![x; n], steps, scale, 7, &mut out);
            let rate = out.iter().sum::<f32>() / out.len() as f32;
            assert!(
                (rate - x * scale).abs() < 0.01,
                "rate {rate} for {x}·{scale}"
            );
            assert!(out.iter().all(|&s| s == 0.0 || s == 1.0));
        }
    }

    #[test]
    fn poisson_out_of_range_intensity() {
        let (steps, n) = (50, 700);
        let mut out = vec![f32::NAN; steps * n];
        poisson_encode(&vec![1.0; n], steps, 2.0, 3, &mut out);
        assert!(out.iter().all(|&s| s == 1.0));
        poisson_encode(&vec![0.0; n], steps, 2.0, 3, &mut out);
        assert!(out.iter().all(|&s| s == 0.0));
        poisson_encode(&vec![-0.5; n], steps, 1.0, 3, &mut out);
        assert!(out.iter().all(|&s| s == 0.0));
    }

    #[test]
    fn encoders_do_not_depend_on_the_thread_count() {
        let (steps, n) = (40, 3 * 784 + 5);
        let x = pixels(n, 9);
        let run = |threads| {
            on_threads(threads, || {
                let mut poisson = vec![0.0; steps * n];
                poisson_encode(&x, steps, 0.7, 11, &mut poisson);
                let mut latency = vec![0.0; steps * n];
                latency_encode(&x, steps, 0.9, 1.0, 0.5, &mut latency);
                let mut noisy = poisson.clone();
                add_noise(&mut noisy, 0.25, 12);
                (poisson, latency, noisy)
            })
        };
        let one = run(1);
        assert_eq!(one, run(2));
        let mut want = vec![0.0; steps * n];
        poisson_encode_ref(&x, steps, 0.7, 11, &mut want);
        assert_eq!(one.0, want);
        latency_encode_ref(&x, steps, 0.9, 1.0, 0.5, &mut want);
        assert_eq!(one.1, want);
        want.clone_from(&one.0);
        add_noise_ref(&mut want, 0.25, 12);
        assert_eq!(one.2, want);
    }

    /// Encoding a window one tile of steps at a time gives the rows of encoding it whole.
    #[test]
    fn tiles_of_steps_are_rows_of_the_whole_window() {
        let (steps, n) = (11, 3 * 784 + 5);
        let x = pixels(n, 4);
        let mut whole = vec![0.0; steps * n];
        let mut tiled = vec![f32::NAN; steps * n];
        let tiles = [0..4, 4..4, 4..9, 9..11];
        poisson_encode(&x, steps, 0.6, 13, &mut whole);
        for t in tiles.clone() {
            let rows = t.start * n..t.end * n;
            poisson_encode_steps(&x, t, 0.6, 13, &mut tiled[rows]);
        }
        assert_eq!(tiled, whole);
        latency_encode(&x, steps, 0.8, 1.0, 0.7, &mut whole);
        for t in tiles {
            let rows = t.start * n..t.end * n;
            latency_encode_steps(&x, steps, t, 0.8, 1.0, 0.7, &mut tiled[rows]);
        }
        assert_eq!(tiled, whole);
        assert!(whole.contains(&1.0));
    }

    #[test]
    fn latency_by_hand() {
        // leak 0.5, threshold 0.9, x·scale = 0.5: c = 0.5, 0.75, 0.875, 0.9375 → t = 3.
        // x·scale = 1 → c[0] = 1 > 0.9 → t = 0. x = 0 → never.
        // x·scale = 0.45: c → 0.9 from below, never strictly above → never.
        let x = [0.5, 1.0, 0.0, 0.45];
        let steps = 6;
        let mut out = vec![f32::NAN; steps * x.len()];
        latency_encode(&x, steps, 0.5, 0.9, 1.0, &mut out);
        let fire_at = |i: usize| {
            (0..steps)
                .filter(|&t| out[t * x.len() + i] == 1.0)
                .collect::<Vec<_>>()
        };
        assert_eq!(fire_at(0), [3]);
        assert_eq!(fire_at(1), [0]);
        assert!(fire_at(2).is_empty() && fire_at(3).is_empty());
        assert_eq!(out.iter().sum::<f32>(), 2.0);
        // Too few steps to reach the crossing: no spike at all.
        let mut out = vec![f32::NAN; 3];
        latency_encode(&[0.5], 3, 0.5, 0.9, 1.0, &mut out);
        assert_eq!(out, [0.0; 3]);
        // No leak: c = t + 1, crossing 2.5 at t = 2.
        latency_encode(&[2.0], 3, 1.0, 2.5, 0.5, &mut out);
        assert_eq!(out, [0.0, 0.0, 1.0]);
    }

    #[test]
    fn noise_mixes_towards_uniform() {
        let x = pixels(1000, 5);
        let mut y = x.clone();
        add_noise(&mut y, 0.0, 1);
        assert_eq!(x, y);
        add_noise(&mut y, 1.0, 1);
        assert_eq!(y, pixels(1000, 1));
        let mut y = vec![1.0; 3];
        add_noise(&mut y, 0.5, 2);
        for (i, y) in y.iter().enumerate() {
            assert_eq!(*y, 0.5 + 0.5 * uniform_at(2, i as u64));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn matches_reference(
            steps in 0usize..30, n in 0usize..2000, scale in 0.0f32..3.0,
            leak in 0.0f32..1.0, threshold in 0.1f32..3.0, seed in any::<u64>(),
        ) {
            let x = pixels(n, seed);
            let (mut got, mut want) = (vec![f32::NAN; steps * n], vec![f32::NAN; steps * n]);
            poisson_encode(&x, steps, scale, seed, &mut got);
            poisson_encode_ref(&x, steps, scale, seed, &mut want);
            prop_assert_eq!(&got, &want);
            latency_encode(&x, steps, leak, threshold, scale, &mut got);
            latency_encode_ref(&x, steps, leak, threshold, scale, &mut want);
            prop_assert_eq!(&got, &want);
            let (mut got, mut want) = (x.clone(), x);
            add_noise(&mut got, scale / 3.0, seed);
            add_noise_ref(&mut want, scale / 3.0, seed);
            prop_assert_eq!(got, want);
        }
    }
}
