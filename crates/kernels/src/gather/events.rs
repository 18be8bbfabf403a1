//! [`FrameEvents`]: one frame's spikes listed pixel by pixel, so that a gather kernel walks
//! the spikes of several neighbouring input pixels as one run.

/// The spikes of one frame as entries `pixel·c_in + c`, in pixel order (row-major) and
/// channel order within a pixel; pixel `k`'s entries are `entries[start[k]..start[k + 1]]`.
///
/// Input pixels `(iy, ix0) .. (iy, ix0 + n)` are consecutive, so their spikes form the one
/// run `entries[start[iy·w + ix0]..start[iy·w + ix0 + n]]`: a receptive field's row of
/// taps costs one loop, not one per tap, and an entry minus the run's first pixel times
/// `c_in` is the spike's offset `(ix − ix0)·c_in + c` into that row's packed weights.
#[derive(Default)]
pub(super) struct FrameEvents {
    pub start: Vec<usize>,
    pub entries: Vec<u32>,
}

impl FrameEvents {
    /// Lists the spikes of `bits`, one frame of `[pixels][words]` with `c_in` channels.
    pub fn fill(&mut self, bits: &[u64], words: usize, c_in: usize) {
        self.start.clear();
        self.entries.clear();
        self.start.push(0);
        for (pixel, bits) in bits.chunks_exact(words).enumerate() {
            for (k, &word) in bits.iter().enumerate() {
                let base = (pixel * c_in + 64 * k) as u32;
                let mut word = word;
                while word != 0 {
                    self.entries.push(base + word.trailing_zeros());
                    word &= word - 1;
                }
            }
            self.start.push(self.entries.len());
        }
    }
}
