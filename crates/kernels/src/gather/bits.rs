//! [`SpikeMaps`]: binary spike maps stored as bits, channels-last, the input format of the
//! gather kernels.

use rayon::prelude::*;

/// Binary spike maps of `frames` images of `channels × h × w`, one bit per spike,
/// channels-last: pixel `(f, y, x)` owns `words = ⌈channels/64⌉` consecutive `u64` words at
/// `((f·h + y)·w + x)·words`, and bit `c % 64` of word `c / 64` is the spike of channel `c`.
///
/// A pixel's channels sit side by side so that a gather kernel reads a whole receptive
/// field tap as a few words and walks only its set bits; the bits past `channels` in a
/// pixel's last word are always clear.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpikeMaps {
    frames: usize,
    channels: usize,
    h: usize,
    w: usize,
    words: usize,
    bits: Vec<u64>,
}

impl SpikeMaps {
    /// Spike maps with no spike.
    pub fn zeros(frames: usize, channels: usize, h: usize, w: usize) -> Self {
        let words = channels.div_ceil(64);
        SpikeMaps {
            frames,
            channels,
            h,
            w,
            words,
            bits: vec![0; frames * h * w * words],
        }
    }

    /// Packs `x[frames, channels, h, w]` (NCHW); every nonzero value, NaN included, is a
    /// spike. Frames are packed in parallel.
    ///
    /// # Panics
    /// If `x.len() != frames·channels·h·w`.
    pub fn from_nchw(frames: usize, channels: usize, h: usize, w: usize, x: &[f32]) -> Self {
        let mut maps = Self::zeros(frames, channels, h, w);
        maps.check_len("from_nchw", x.len());
        let (plane, words) = (h * w, maps.words);
        if maps.bits.is_empty() {
            return maps;
        }
        maps.bits
            .par_chunks_mut(plane * words)
            .zip(x.par_chunks(channels * plane))
            .for_each(|(bits, x)| {
                for (c, x) in x.chunks_exact(plane).enumerate() {
                    let (k, bit) = (c / 64, 1u64 << (c % 64));
                    for (pixel, &v) in x.iter().enumerate() {
                        if v != 0.0 || v.is_nan() {
                            bits[pixel * words + k] |= bit;
                        }
                    }
                }
            });
        maps
    }

    /// Packs `x[frames, h, w, channels]` (NHWC); every nonzero value, NaN included, is a
    /// spike.
    ///
    /// # Panics
    /// If `x.len() != frames·h·w·channels`.
    pub fn from_nhwc(frames: usize, channels: usize, h: usize, w: usize, x: &[f32]) -> Self {
        let mut maps = Self::zeros(frames, channels, h, w);
        maps.check_len("from_nhwc", x.len());
        if channels == 0 {
            return maps;
        }
        let words = maps.words;
        for (bits, x) in maps
            .bits
            .chunks_exact_mut(words)
            .zip(x.chunks_exact(channels))
        {
            for (c, &v) in x.iter().enumerate() {
                if v != 0.0 || v.is_nan() {
                    bits[c / 64] |= 1 << (c % 64);
                }
            }
        }
        maps
    }

    /// The spikes as `f32` zeros and ones in NCHW order, `[frames, channels, h, w]`.
    pub fn to_nchw(&self) -> Vec<f32> {
        let plane = self.h * self.w;
        let mut x = vec![0.0; self.frames * self.channels * plane];
        for f in 0..self.frames {
            for c in 0..self.channels {
                for pixel in 0..plane {
                    if self.spike(f, c, pixel / self.w, pixel % self.w) {
                        x[(f * self.channels + c) * plane + pixel] = 1.0;
                    }
                }
            }
        }
        x
    }

    /// The spikes as `f32` zeros and ones in NHWC order, `[frames, h, w, channels]`.
    pub fn to_nhwc(&self) -> Vec<f32> {
        let mut x = vec![0.0; self.frames * self.h * self.w * self.channels];
        if self.channels == 0 {
            return x;
        }
        for (x, bits) in x
            .chunks_exact_mut(self.channels)
            .zip(self.bits.chunks_exact(self.words))
        {
            for (c, x) in x.iter_mut().enumerate() {
                *x = ((bits[c / 64] >> (c % 64)) & 1) as f32;
            }
        }
        x
    }

    /// Whether channel `c` of pixel `(y, x)` of frame `f` spiked.
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn spike(&self, f: usize, c: usize, y: usize, x: usize) -> bool {
        assert!(
            c < self.channels && y < self.h && x < self.w,
            "spike index out of range"
        );
        (self.pixel(f, y, x)[c / 64] >> (c % 64)) & 1 == 1
    }

    /// The words of pixel `(y, x)` of frame `f`.
    pub fn pixel(&self, f: usize, y: usize, x: usize) -> &[u64] {
        &self.bits[((f * self.h + y) * self.w + x) * self.words..][..self.words]
    }

    /// The words of frame `f`, `[h][w][words]`.
    pub fn frame(&self, f: usize) -> &[u64] {
        let len = self.frame_words();
        &self.bits[f * len..][..len]
    }

    /// All words, `[frames][h][w][words]`.
    pub fn words(&self) -> &[u64] {
        &self.bits
    }

    /// Number of spikes.
    pub fn count_ones(&self) -> usize {
        self.bits.iter().map(|b| b.count_ones() as usize).sum()
    }

    /// Fraction of the `frames·channels·h·w` sites that spiked; 0 when there are none.
    pub fn density(&self) -> f32 {
        let sites = self.frames * self.channels * self.h * self.w;
        if sites == 0 {
            return 0.0;
        }
        (self.count_ones() as f64 / sites as f64) as f32
    }

    /// Frames (images times time steps).
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Channels per pixel.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Height of a frame.
    pub fn height(&self) -> usize {
        self.h
    }

    /// Width of a frame.
    pub fn width(&self) -> usize {
        self.w
    }

    /// Words per pixel, `⌈channels/64⌉`.
    pub fn words_per_pixel(&self) -> usize {
        self.words
    }

    /// Words per frame, `h·w·words_per_pixel`.
    pub fn frame_words(&self) -> usize {
        self.h * self.w * self.words
    }

    /// Panics unless the maps are `[frames, channels, h, w]`, naming `kernel`.
    pub(crate) fn check_dims(&self, kernel: &str, dims: [usize; 4]) {
        let got = [self.frames, self.channels, self.h, self.w];
        assert!(
            got == dims,
            "{kernel}: spike maps are [frames, channels, h, w] = {got:?}, the shape needs {dims:?}"
        );
    }

    fn check_len(&self, kernel: &str, len: usize) {
        let want = self.frames * self.channels * self.h * self.w;
        assert!(
            len == want,
            "SpikeMaps::{kernel}: {len} values for {} frames of {}×{}×{} ({want})",
            self.frames,
            self.channels,
            self.h,
            self.w
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::spikes;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trips_both_layouts(
            frames in 0usize..4,
            channels in prop_oneof![0usize..4, Just(17), Just(64), Just(65), Just(130)],
            h in 1usize..6,
            w in 1usize..6,
            density in crate::testutil::any_density(),
            seed in any::<u64>(),
        ) {
            let x = spikes(frames * channels * h * w, density, true, seed);
            let maps = SpikeMaps::from_nchw(frames, channels, h, w, &x);
            let binary: Vec<f32> = x.iter().map(|&v| f32::from(u8::from(v != 0.0))).collect();
            prop_assert_eq!(maps.to_nchw(), binary.clone());
            prop_assert_eq!(maps.count_ones(), binary.iter().filter(|&&v| v == 1.0).count());
            let nhwc = maps.to_nhwc();
            for f in 0..frames {
                for c in 0..channels {
                    for p in 0..h * w {
                        let want = binary[(f * channels + c) * h * w + p];
                        prop_assert_eq!(nhwc[(f * h * w + p) * channels + c], want);
                        prop_assert_eq!(maps.spike(f, c, p / w, p % w), want == 1.0);
                    }
                }
            }
            prop_assert_eq!(&SpikeMaps::from_nhwc(frames, channels, h, w, &nhwc), &maps);
            // The padding bits of each pixel's last word stay clear.
            let spare = maps.words_per_pixel() * 64 - channels;
            if spare > 0 {
                let last = maps.words().iter().skip(maps.words_per_pixel() - 1);
                for word in last.step_by(maps.words_per_pixel()) {
                    prop_assert_eq!(word >> (64 - spare), 0);
                }
            }
        }
    }

    #[test]
    fn counts_and_density() {
        let mut x = vec![0.0; 2 * 3 * 2 * 2];
        x[0] = 1.0;
        x[5] = f32::NAN;
        x[23] = -0.5;
        x[7] = -0.0;
        let maps = SpikeMaps::from_nchw(2, 3, 2, 2, &x);
        assert_eq!(maps.count_ones(), 3);
        assert_eq!(maps.density(), 3.0 / 24.0);
        assert!(maps.spike(0, 1, 0, 1) && maps.spike(1, 2, 1, 1) && !maps.spike(0, 1, 1, 1));
        assert_eq!(maps.pixel(0, 0, 1), &[0b10]);
        assert_eq!(SpikeMaps::zeros(0, 3, 2, 2).density(), 0.0);
    }
}
