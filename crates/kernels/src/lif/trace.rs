//! The record a LIF forward pass leaves for the backward pass, [`LifTrace`]: spikes and
//! the floor mask as bits, the potential `v[t]` only for surrogates that read it, laid out
//! in the chunks the kernels hand to rayon tasks so that every task writes its own region.

use rayon::prelude::*;
use wide::f32x8;

use super::{Floor, LifParams, PAR_MIN_LEN};

/// Most neurons per chunk (one rayon task). A chunk's state, two `f32` per neuron, stays in
/// L2 while the chunk walks all steps, and each step reads and writes runs of this many
/// values per row: long runs keep the hardware prefetchers streaming (BENCHMARKS.md has
/// the measurement).
pub(super) const MAX_CHUNK: usize = 16384;

/// Fewest neurons per chunk (but for the last): shorter runs per row stream poorly.
const MIN_CHUNK: usize = 1024;

/// What the backward pass needs, recorded by the forward pass, nothing more: spikes as
/// bits, the floor mask as bits when a floor is on, and `v[t]` (`f32`) when the
/// surrogate reads it.
///
/// Internally the neurons are cut into the same chunks the fast kernels hand to rayon
/// tasks, and each chunk's record is contiguous (`[chunk][t][neuron in chunk]`, eight
/// neurons to a byte), so every task writes its own region. The layout depends on the
/// shape only; read the trace through the methods.
#[derive(Clone, PartialEq)]
pub struct LifTrace {
    pub(super) steps: usize,
    pub(super) neurons: usize,
    /// Neurons per chunk, a multiple of 8; the last chunk may be shorter.
    pub(super) chunk: usize,
    /// The parameters of the forward pass that recorded this trace.
    pub(super) params: LifParams,
    /// Spike bits; bit `j mod 8` of a byte is neuron `j` of its group of eight.
    pub(super) spikes: Vec<u8>,
    /// Floor-applied bits, laid out as `spikes`; present iff `params.floor != None`.
    pub(super) floored: Option<Vec<u8>>,
    /// `v[t]`, one `f32` per neuron-step in chunk order; present iff the surrogate reads it.
    pub(super) potential: Option<Vec<f32>>,
}

impl std::fmt::Debug for LifTrace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LifTrace")
            .field("steps", &self.steps)
            .field("neurons", &self.neurons)
            .field("params", &self.params)
            .field("total_spikes", &self.total_spikes())
            .field("bytes", &self.bytes())
            .finish_non_exhaustive()
    }
}

impl LifTrace {
    /// An all-zero trace for `steps × neurons`, with the parts `p` needs.
    pub(super) fn new(p: &LifParams, steps: usize, neurons: usize) -> Self {
        let (len, bytes) = (steps * neurons, steps * neurons.div_ceil(8));
        LifTrace {
            steps,
            neurons,
            chunk: chunk_len(neurons),
            params: *p,
            spikes: vec![0; bytes],
            floored: (p.floor != Floor::None).then(|| vec![0; bytes]),
            potential: p.needs_potential().then(|| vec![0.0; len]),
        }
    }

    /// Number of time steps `T`.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Number of neurons `N`.
    pub fn neurons(&self) -> usize {
        self.neurons
    }

    /// Whether neuron `i` spiked at step `t`.
    ///
    /// # Panics
    /// If `t ≥ T` or `i ≥ N`.
    pub fn spike(&self, t: usize, i: usize) -> bool {
        let (byte, bit) = self.bit_index(t, i);
        self.spikes[byte] & bit != 0
    }

    /// Whether the floor applied to neuron `i` at step `t`; `None` when the trace was
    /// recorded with [`Floor::None`].
    ///
    /// # Panics
    /// If `t ≥ T` or `i ≥ N`.
    pub fn floored(&self, t: usize, i: usize) -> Option<bool> {
        let (byte, bit) = self.bit_index(t, i);
        self.floored.as_ref().map(|f| f[byte] & bit != 0)
    }

    /// The membrane potential `v[t]` of neuron `i` (after the floor, before the reset);
    /// `None` when the trace was recorded for
    /// [`Surrogate::Membrane`](super::Surrogate::Membrane), which does not keep it.
    ///
    /// # Panics
    /// If `t ≥ T` or `i ≥ N`.
    pub fn potential(&self, t: usize, i: usize) -> Option<f32> {
        let at = self.value_index(t, i);
        self.potential.as_ref().map(|v| v[at])
    }

    /// The parameters of the forward pass that recorded this trace.
    pub fn params(&self) -> &LifParams {
        &self.params
    }

    /// Writes the spikes as 0.0/1.0 into `out[T·N]`, time-major.
    ///
    /// # Panics
    /// If `out.len() != T·N`.
    pub fn spikes_into(&self, out: &mut [f32]) {
        let (steps, n) = (self.steps, self.neurons);
        assert_eq!(
            out.len(),
            steps * n,
            "spikes_into: out must hold T·N values"
        );
        if out.is_empty() {
            return;
        }
        let row = |(t, out): (usize, &mut [f32])| {
            for (k, out) in out.chunks_mut(self.chunk).enumerate() {
                let bits = self.chunk_row(&self.spikes, k, t);
                for (&byte, out) in bits.iter().zip(out.chunks_mut(8)) {
                    for (q, o) in out.iter_mut().enumerate() {
                        *o = f32::from((byte >> q) & 1);
                    }
                }
            }
        };
        if out.len() < PAR_MIN_LEN {
            out.chunks_mut(n).enumerate().for_each(row);
        } else {
            out.par_chunks_mut(n).enumerate().for_each(row);
        }
    }

    /// The spikes packed one bit per neuron-step, time-major, in [`crate::bits`] layout
    /// (element `t·N + i` is spike `(t, i)`): what [`LifTrace::spikes_into`] writes, as
    /// bits, for the next layer's event kernels to read. Bytes without a spike are
    /// skipped; when each step fills whole words (`N` a multiple of 64), steps are packed
    /// in parallel.
    pub fn spike_words(&self) -> Vec<u64> {
        let n = self.neurons;
        let mut words = vec![0u64; (self.steps * n).div_ceil(64)];
        if n.is_multiple_of(64) && n > 0 {
            let row = |(t, words): (usize, &mut [u64])| self.pack_step(t, 0, words);
            if self.steps * n < PAR_MIN_LEN {
                words.chunks_mut(n / 64).enumerate().for_each(row);
            } else {
                words.par_chunks_mut(n / 64).enumerate().for_each(row);
            }
        } else {
            (0..self.steps).for_each(|t| self.pack_step(t, t * n, &mut words));
        }
        words
    }

    /// ORs step `t`'s spike bits into `words`, its first neuron at bit `at`.
    fn pack_step(&self, t: usize, at: usize, words: &mut [u64]) {
        for k in 0..self.neurons.div_ceil(self.chunk) {
            let first = at + k * self.chunk;
            for (j, &byte) in self.chunk_row(&self.spikes, k, t).iter().enumerate() {
                if byte == 0 {
                    continue;
                }
                // Padding bits past a chunk's last neuron are zero, so a byte that
                // crosses into the next word only carries bits that belong there.
                let bit = first + 8 * j;
                let (word, shift) = (bit / 64, bit % 64);
                words[word] |= u64::from(byte) << shift;
                if shift > 56 {
                    let high = u64::from(byte) >> (64 - shift);
                    if high != 0 {
                        words[word + 1] |= high;
                    }
                }
            }
        }
    }

    /// Writes each neuron's spike count over all steps, `Σ_t s[t]`, into `out[N]`: what
    /// summing the spikes over time gives, read from the bits.
    ///
    /// # Panics
    /// If `out.len() != N`.
    pub fn counts_into(&self, out: &mut [f32]) {
        assert_eq!(
            out.len(),
            self.neurons,
            "counts_into: out must hold N values"
        );
        let chunk = |(k, out): (usize, &mut [f32])| {
            out.fill(0.0);
            for t in 0..self.steps {
                let bits = self.chunk_row(&self.spikes, k, t);
                let groups = out.chunks_exact_mut(8).zip(bits);
                for (out, &byte) in groups {
                    let counts = f32x8::new(out.try_into().expect("eight"));
                    let sum = counts + (super::step::lane_mask(byte) & f32x8::ONE);
                    out.copy_from_slice(sum.as_array());
                }
                let tail = out.len() % 8;
                if tail > 0 {
                    let (at, byte) = (out.len() - tail, bits[bits.len() - 1]);
                    for (q, o) in out[at..].iter_mut().enumerate() {
                        *o += f32::from((byte >> q) & 1);
                    }
                }
            }
        };
        if self.steps * self.neurons < PAR_MIN_LEN {
            out.chunks_mut(self.chunk).enumerate().for_each(chunk);
        } else {
            out.par_chunks_mut(self.chunk).enumerate().for_each(chunk);
        }
    }

    /// Total number of spikes over all neurons and steps.
    pub fn total_spikes(&self) -> u64 {
        // Padding bits past the last neuron of a chunk are always zero.
        let words = self.spikes.chunks(8);
        words
            .map(|w| {
                let mut word = [0; 8];
                word[..w.len()].copy_from_slice(w);
                u64::from(u64::from_le_bytes(word).count_ones())
            })
            .sum()
    }

    /// Bytes of recorded data (for memory reports): what the forward pass writes and the
    /// backward pass reads.
    pub fn bytes(&self) -> usize {
        let floored = self.floored.as_ref().map_or(0, Vec::len);
        let potential = self.potential.as_ref().map_or(0, |v| v.len() * 4);
        self.spikes.len() + floored + potential
    }

    /// Number of chunks.
    pub(super) fn chunks(&self) -> usize {
        self.neurons.div_ceil(self.chunk)
    }

    /// Length in neurons of chunk `k`.
    fn chunk_neurons(&self, k: usize) -> usize {
        self.chunk.min(self.neurons - k * self.chunk)
    }

    /// Byte and bit mask of `(t, i)` in the bit buffers.
    pub(super) fn bit_index(&self, t: usize, i: usize) -> (usize, u8) {
        self.check_index(t, i);
        let (k, j) = (i / self.chunk, i % self.chunk);
        let row = self.chunk_neurons(k).div_ceil(8);
        let at = k * self.steps * (self.chunk / 8) + t * row + j / 8;
        (at, 1 << (j % 8))
    }

    /// Index of `(t, i)` in the potential buffer.
    pub(super) fn value_index(&self, t: usize, i: usize) -> usize {
        self.check_index(t, i);
        let (k, j) = (i / self.chunk, i % self.chunk);
        k * self.steps * self.chunk + t * self.chunk_neurons(k) + j
    }

    fn check_index(&self, t: usize, i: usize) {
        assert!(
            t < self.steps && i < self.neurons,
            "LifTrace: (t, i) = ({t}, {i}) outside [{}, {}]",
            self.steps,
            self.neurons
        );
    }

    /// The bits of chunk `k` at step `t`, from a bit buffer laid out as `spikes`.
    fn chunk_row<'a>(&self, bits: &'a [u8], k: usize, t: usize) -> &'a [u8] {
        let row = self.chunk_neurons(k).div_ceil(8);
        &bits[k * self.steps * (self.chunk / 8) + t * row..][..row]
    }
}

/// Neurons per chunk (one rayon task) for a layer of `neurons`: about a sixteenth of the
/// layer so that two or more threads balance, at least [`MIN_CHUNK`] and at most
/// [`MAX_CHUNK`], a multiple of 8.
/// A function of the shape alone, so the work split never depends on the thread count.
fn chunk_len(neurons: usize) -> usize {
    (neurons.div_ceil(16).next_multiple_of(8)).clamp(MIN_CHUNK, MAX_CHUNK)
}
