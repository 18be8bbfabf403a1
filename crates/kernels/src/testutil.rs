//! Helpers shared by the kernel tests: seeded random data and tolerant comparison.

use rand::{Rng, SeedableRng, rngs::StdRng};

/// `len` values drawn uniformly from `[-1, 1)`, reproducible from `seed`.
pub fn random_vec(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
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
