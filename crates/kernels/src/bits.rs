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

/// Elements `start..start + len` of a packed binary tensor ([module layout](self)): a view
/// that need not begin at a word boundary, so that an image of a batch or a row of an
/// image is one, whatever the image's size. What the event kernels read spikes from.
#[derive(Clone, Copy, Debug)]
pub struct BitSlice<'a> {
    words: &'a [u64],
    start: usize,
    len: usize,
}

impl<'a> BitSlice<'a> {
    /// All `len` elements that `words` hold.
    ///
    /// # Panics
    /// If `words` does not hold `⌈len/64⌉` words.
    pub fn new(words: &'a [u64], len: usize) -> Self {
        check_words("BitSlice::new", words, len);
        BitSlice {
            words,
            start: 0,
            len,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the slice has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Elements `start..start + len` of this slice.
    ///
    /// # Panics
    /// If the range is not within the slice.
    pub fn slice(&self, start: usize, len: usize) -> Self {
        assert!(
            start + len <= self.len,
            "BitSlice::slice: {start}..{} is out of 0..{}",
            start + len,
            self.len
        );
        BitSlice {
            words: self.words,
            start: self.start + start,
            len,
        }
    }

    /// Elements `at..at + n` (`n ≤ 64`, within the slice) as the low bits of a word.
    #[inline(always)]
    fn word_at(&self, at: usize, n: usize) -> u64 {
        let pos = self.start + at;
        let (k, b) = (pos / 64, pos % 64);
        let mut word = self.words[k] >> b;
        if b > 0 && b + n > 64 {
            word |= self.words[k + 1] << (64 - b);
        }
        if n < 64 { word & ((1 << n) - 1) } else { word }
    }

    /// Calls `f(i)` for every element `i` that is 1, in increasing order: 64 elements per
    /// word read, one step per 1.
    #[inline]
    pub fn for_each_one(&self, mut f: impl FnMut(usize)) {
        let mut at = 0;
        while at < self.len {
            let n = (self.len - at).min(64);
            let mut word = self.word_at(at, n);
            while word != 0 {
                f(at + word.trailing_zeros() as usize);
                word &= word - 1;
            }
            at += n;
        }
    }

    /// Number of elements that are 1: the whole words between the two ends counted as
    /// they are.
    pub fn count_ones(&self) -> usize {
        if self.len == 0 {
            return 0;
        }
        let end = self.start + self.len;
        let (first, last) = (self.start / 64, (end - 1) / 64);
        let head = !0u64 << (self.start % 64);
        let tail = match end % 64 {
            0 => !0u64,
            bits => (1u64 << bits) - 1,
        };
        if first == last {
            return (self.words[first] & head & tail).count_ones() as usize;
        }
        let inner: usize = (self.words[first + 1..last].iter())
            .map(|w| w.count_ones() as usize)
            .sum();
        let ends = (self.words[first] & head).count_ones() + (self.words[last] & tail).count_ones();
        inner + ends as usize
    }

    /// Whether element `i` is 1.
    ///
    /// # Panics
    /// If `i` is out of the slice.
    pub fn get(&self, i: usize) -> bool {
        assert!(i < self.len, "BitSlice::get: {i} is out of 0..{}", self.len);
        self.word_at(i, 1) == 1
    }

    /// The elements as 0.0/1.0 values.
    pub fn to_f32(&self) -> Vec<f32> {
        if self.start.is_multiple_of(64) {
            let k = self.start / 64;
            return unpack_binary(&self.words[k..k + self.len.div_ceil(64)], self.len);
        }
        let mut x = vec![0.0f32; self.len];
        for (at, x) in (0..).step_by(64).zip(x.chunks_mut(64)) {
            unpack_scalar(self.word_at(at, x.len()), x);
        }
        x
    }
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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// A slice at any offset, of any length, reads the elements it covers: ones in
        /// order, their count, each bit, and the values.
        #[test]
        fn bit_slices_read_what_they_cover(
            len in 0usize..300,
            density in prop_oneof![Just(0.0), Just(0.1), Just(0.5), Just(1.0)],
            cut in any::<(u16, u16)>(),
            seed in any::<u64>(),
        ) {
            let x = spikes(len, density, false, seed);
            let words = pack_binary(&x).expect("binary");
            let all = BitSlice::new(&words, len);
            let start = usize::from(cut.0) % (len + 1);
            let n = usize::from(cut.1) % (len - start + 1);
            let part = all.slice(start, n).slice(0, n);
            let want = &x[start..start + n];
            let mut ones = Vec::new();
            part.for_each_one(|i| ones.push(i));
            let want_ones: Vec<usize> = (0..n).filter(|&i| want[i] == 1.0).collect();
            prop_assert_eq!(&ones, &want_ones);
            prop_assert_eq!(part.count_ones(), want_ones.len());
            prop_assert_eq!(part.to_f32(), want.to_vec());
            prop_assert_eq!(part.len(), n);
            for (i, &v) in want.iter().enumerate() {
                prop_assert_eq!(part.get(i), v == 1.0);
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
