//! Every seed of a run, derived from the configured one and a position, so that a
//! resumed run continues exactly where it stopped and equal seeds give equal runs:
//! the data order of epoch `e` from `(seed, e)`, the input encoding of optimizer step
//! `s` from `(seed, s)`, evaluation encodings from `(seed, batch)`, the VAE's sampled codes
//! in evaluation from `seed` alone (indexed by test image).

/// SplitMix64's finalizer: a bijective scramble of 64 bits.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seed for `(seed, purpose, index)`; distinct purposes give unrelated streams.
fn derive(seed: u64, purpose: u64, index: u64) -> u64 {
    splitmix(splitmix(splitmix(seed) ^ purpose) ^ index)
}

/// Seed of epoch `epoch`'s data order.
pub fn epoch_seed(seed: u64, epoch: u64) -> u64 {
    derive(seed, 1, epoch)
}

/// Seed of the input encoding (and any sampling) of optimizer step `step`.
pub fn step_seed(seed: u64, step: u64) -> u64 {
    derive(seed, 2, step)
}

/// Seed of evaluation batch `batch` (the same for every evaluation, so two evaluations
/// of the same parameters agree).
pub fn eval_seed(seed: u64, batch: u64) -> u64 {
    derive(seed, 3, batch)
}

/// Seed of the probe images' encoding.
pub fn probe_seed(seed: u64, batch: u64) -> u64 {
    derive(seed, 4, batch)
}

/// Seed of the VAE's sampled codes `z = μ + σ·ε` in evaluation: one stream over the
/// test set, image `k`'s `ε` its draws `k·latent …`, so the sampled-z MSE depends on
/// neither the batch size, the thread count nor the number of ranks.
pub fn sample_seed(seed: u64) -> u64 {
    derive(seed, 5, 0)
}

/// Seed of the input noise of a forward pass whose encoding has seed `pass`: a stream
/// apart from the Poisson draws of the same pass.
pub fn noise_seed(pass: u64) -> u64 {
    pass ^ 0x9E37_79B9
}

/// Seed of the code sample that the within/between-class correlation reads.
pub fn pair_sample_seed(seed: u64) -> u64 {
    seed ^ 0x5EED_C0DE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_differ_by_purpose_and_position() {
        let s = [
            epoch_seed(0, 0),
            epoch_seed(0, 1),
            step_seed(0, 0),
            step_seed(1, 0),
            eval_seed(0, 0),
            probe_seed(0, 0),
            sample_seed(0),
        ];
        for i in 0..s.len() {
            for j in 0..i {
                assert_ne!(s[i], s[j]);
            }
        }
        assert_eq!(step_seed(5, 9), step_seed(5, 9));
    }
}
