//! Binary tensors (every element 0 or 1: spikes, masks) packed to one bit per element and
//! back: what an autograd op keeps of a binary input for its backward pass, 32 times
//! smaller than the `f32` values.
//!
//! Layout: bit `i` of word `k` is element `64·k + i`; the last word's bits past the end
//! are zero. The fast kernels compare and expand eight lanes at a time in fixed blocks of
//! elements (by length only, never by thread count), so results never depend on the
//! number of threads.

use rayon::prelude::*;
use wide::{f32x8, u32x8};

/// Elements per rayon task (a multiple of 64).
const BLOCK: usize = 1 << 14;

/// Bit `q` in lane `q`: expands a byte of bits into a lane mask.
const LANE_BITS: u32x8 = u32x8::new([1, 2, 4, 8, 16, 32, 64, 128]);

/// `x` packed to one bit per element when every element is 0.0 or 1.0 (−0.0 counts as
/// 0.0), `None` otherwise (any other value, NaN included).
pub fn pack_binary(x: &[f32]) -> Option<Vec<u64>> {
    let mut words = vec![0u64; x.len().div_ceil(64)];
    let binary = words
        .par_chunks_mut(BLOCK / 64)
        .zip(x.par_chunks(BLOCK))
        .map(|(words, x)| pack_block(x, words))
        .reduce(|| true, |a, b| a & b);
    binary.then_some(words)
}

/// Packs one block; whether all of it was binary.
fn pack_block(x: &[f32], words: &mut [u64]) -> bool {
    let mut binary = true;
    for (word, x) in words.iter_mut().zip(x.chunks(64)) {
        if x.len() == 64 {
            for (k, lanes) in x.chunks_exact(8).enumerate() {
                let v = f32x8::new(lanes.try_into().expect("eight"));
                let (one, zero) = (v.simd_eq(f32x8::ONE), v.simd_eq(f32x8::ZERO));
                binary &= (one | zero).to_bitmask() == 0xff;
                *word |= u64::from(one.to_bitmask() as u8) << (8 * k);
            }
        } else {
            let (w, b) = pack_scalar(x);
            (*word, binary) = (w, binary & b);
        }
    }
    binary
}

/// Up to 64 elements packed into a word, and whether they were binary.
fn pack_scalar(x: &[f32]) -> (u64, bool) {
    let (mut word, mut binary) = (0u64, true);
    for (i, &v) in x.iter().enumerate() {
        binary &= (v == 0.0) | (v == 1.0);
        word |= u64::from(v == 1.0) << i;
    }
    (word, binary)
}

/// Reference for [`pack_binary`]: one element at a time.
pub fn pack_binary_ref(x: &[f32]) -> Option<Vec<u64>> {
    let words: Option<Vec<u64>> = x
        .chunks(64)
        .map(|x| {
            let (word, binary) = pack_scalar(x);
            binary.then_some(word)
        })
        .collect();
    words
}

/// The `len` elements (0.0 or 1.0) that `words` hold.
///
/// # Panics
/// If `words` does not hold `⌈len/64⌉` words.
pub fn unpack_binary(words: &[u64], len: usize) -> Vec<f32> {
    check_words("unpack_binary", words, len);
    let mut x = vec![0.0f32; len];
    x.par_chunks_mut(BLOCK)
        .zip(words.par_chunks(BLOCK / 64))
        .for_each(|(x, words)| {
            for (x, &word) in x.chunks_mut(64).zip(words) {
                if x.len() < 64 {
                    unpack_scalar(word, x);
                    continue;
                }
                for (k, lanes) in x.chunks_exact_mut(8).enumerate() {
                    let byte = u32::from((word >> (8 * k)) as u8);
                    let hit = (u32x8::splat(byte) & LANE_BITS).simd_eq(LANE_BITS);
                    lanes.copy_from_slice((f32x8::from_bits(hit) & f32x8::ONE).as_array());
                }
            }
        });
    x
}

/// Reference for [`unpack_binary`]: one element at a time.
///
/// # Panics
/// As [`unpack_binary`].
pub fn unpack_binary_ref(words: &[u64], len: usize) -> Vec<f32> {
    check_words("unpack_binary_ref", words, len);
    let mut x = vec![0.0f32; len];
    for (x, &word) in x.chunks_mut(64).zip(words) {
        unpack_scalar(word, x);
    }
    x
}

fn unpack_scalar(word: u64, x: &mut [f32]) {
    for (i, v) in x.iter_mut().enumerate() {
        *v = ((word >> i) & 1) as f32;
    }
}

fn check_words(kernel: &str, words: &[u64], len: usize) {
    assert_eq!(
        words.len(),
        len.div_ceil(64),
        "{kernel}: {} words cannot hold exactly {len} elements",
        words.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{on_threads, spikes};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Binary inputs of any length and density pack as the reference packs them and
        /// come back unchanged; one element of another value makes them not binary.
        #[test]
        fn matches_reference(
            len in prop_oneof![Just(0usize), 1usize..200, Just(BLOCK - 1), Just(BLOCK + 65)],
            density in prop_oneof![Just(0.0), Just(0.05), Just(0.5), Just(1.0)],
            other in prop_oneof![Just(0.5f32), Just(f32::NAN), Just(2.0), Just(-1.0)],
            seed in any::<u64>(),
        ) {
            let x = spikes(len, density, false, seed);
            let words = pack_binary(&x).expect("binary");
            prop_assert_eq!(Some(words.clone()), pack_binary_ref(&x));
            prop_assert_eq!(unpack_binary(&words, len), x.clone());
            prop_assert_eq!(unpack_binary_ref(&words, len), x.clone());
            if len > 0 {
                let mut y = x;
                y[seed as usize % len] = other;
                prop_assert_eq!(pack_binary(&y), None);
                prop_assert_eq!(pack_binary_ref(&y), None);
            }
        }
    }

    #[test]
    fn negative_zero_is_zero_and_results_do_not_depend_on_threads() {
        let mut x = spikes(3 * BLOCK + 17, 0.1, false, 4);
        x[5] = -0.0;
        let one = on_threads(1, || pack_binary(&x));
        assert_eq!(one, on_threads(2, || pack_binary(&x)));
        let words = one.expect("binary");
        assert_eq!(words[0] >> 5 & 1, 0);
        assert_eq!(
            on_threads(1, || unpack_binary(&words, x.len())),
            on_threads(2, || unpack_binary(&words, x.len()))
        );
    }

    #[test]
    #[should_panic(expected = "unpack_binary: 1 words cannot hold exactly 65 elements")]
    fn too_few_words_are_refused() {
        unpack_binary(&[0], 65);
    }
}
