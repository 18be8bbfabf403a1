//! Spike statistics of a spiking model over an evaluation set (`model-spec.md`, "What a
//! run must report"): [`SpikeStats`] accumulates per-layer spike counts batch by batch,
//! one pass over each count tensor, and summarizes them as [`LayerReport`]s (dead and
//! bursting neurons, density, firing-rate histogram); [`density`] and [`batch_density`]
//! are the same measure for one forward pass.

use autograd::Tensor;
use ndarray::IxDyn;

use crate::nn::LayerActivity;

/// Bins of the firing-rate histogram, equal widths over `[0, 1]` spikes per step.
pub const HISTOGRAM_BINS: usize = 20;

/// One layer's event counts so far.
#[derive(Clone, Debug)]
pub(crate) struct LayerCounts {
    pub(crate) name: String,
    /// Shape of one frame (the spike tensor's shape without the leading `T·B`).
    pub(crate) shape: Vec<usize>,
    /// Per neuron: nonzero values (spikes) over all images and steps so far.
    pub(crate) events: Vec<u64>,
}

/// Per-layer spike counts of a spiking model, accumulated over evaluation batches.
///
/// A neuron's *events* are the (image, step) pairs where its value is nonzero: its spike
/// count for a LIF layer, and for the `input` layer its input spikes (or, with the
/// `current` encoder, the steps at which it carries a nonzero analog value).
#[derive(Clone, Debug)]
pub struct SpikeStats {
    pub(crate) steps: usize,
    pub(crate) images: u64,
    pub(crate) layers: Vec<LayerCounts>,
}

/// Spike statistics of one layer over the evaluation set.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerReport {
    /// The layer's name (`input` for the encoded input).
    pub name: String,
    /// Neurons in the layer.
    pub neurons: usize,
    /// Fraction of neurons that never fired on the evaluation set.
    pub dead_frac: f64,
    /// Fraction of neurons whose mean firing rate (spikes per step, averaged over images)
    /// is strictly above the bursting threshold.
    pub bursting_frac: f64,
    /// `spikes / (alive neurons · T · images)`; 0 when every neuron is dead.
    pub density: f64,
    /// Mean spikes of the whole layer per image.
    pub spikes_per_image: f64,
    /// Firing-rate histogram: neurons per bin of [`HISTOGRAM_BINS`] equal bins over
    /// `[0, 1]` spikes per step, the last bin closed (a rate of 1 falls in it); dead
    /// neurons are in bin 0. Sums to `neurons`.
    pub histogram: Vec<u64>,
}

impl SpikeStats {
    /// No batches yet, for a model of `steps` time steps.
    ///
    /// # Panics
    /// If `steps` is 0.
    pub fn new(steps: usize) -> Self {
        assert!(steps > 0, "SpikeStats: steps must be at least 1");
        SpikeStats {
            steps,
            images: 0,
            layers: vec![],
        }
    }

    /// Time steps per image.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Images accumulated so far.
    pub fn images(&self) -> u64 {
        self.images
    }

    /// Names of the layers, in order (empty before the first batch).
    pub fn names(&self) -> Vec<&str> {
        self.layers.iter().map(|l| l.name.as_str()).collect()
    }

    /// Adds one batch of `batch` images: every layer of a spiking model's
    /// [`Output::layers`](crate::nn::Output::layers), the encoded input included, each
    /// with its event counts `[B, …]`.
    ///
    /// # Panics
    /// As [`SpikeStats::add_counts`].
    pub fn add(&mut self, layers: &[LayerActivity<'_>], batch: usize) {
        let tensors: Vec<(&str, &Tensor)> = layers
            .iter()
            .map(|l| (l.name.as_str(), l.counts.value()))
            .collect();
        self.add_counts(&tensors, batch);
    }

    /// Adds one batch of `batch` images given as `(name, spikes [T·B, …])` per layer.
    ///
    /// # Panics
    /// If a tensor's first dimension is not `T·batch`, or as [`SpikeStats::add_counts`].
    pub fn add_tensors(&mut self, layers: &[(&str, &Tensor)], batch: usize) {
        let frames = self.steps * batch;
        let counts: Vec<Tensor> = layers
            .iter()
            .map(|(name, t)| {
                assert!(
                    batch > 0 && t.shape().first() == Some(&frames),
                    "SpikeStats: layer `{name}` has spikes {:?}, expected [{frames}, …] \
                     (T = {}, batch = {batch})",
                    t.shape(),
                    self.steps
                );
                let mut shape = t.shape().to_vec();
                shape[0] = batch;
                let mut counts = Tensor::zeros(IxDyn(&shape));
                let n = counts.len();
                let slots = counts.as_slice_mut().expect("fresh tensor");
                for (k, &v) in t.iter().enumerate() {
                    slots[k % n] += f32::from(u8::from(v != 0.0));
                }
                counts
            })
            .collect();
        let named: Vec<(&str, &Tensor)> = layers.iter().map(|(n, _)| *n).zip(&counts).collect();
        self.add_counts(&named, batch);
    }

    /// Adds one batch of `batch` images given as `(name, events [B, …])` per layer: each
    /// neuron's event (spike) count in each image.
    ///
    /// # Panics
    /// If `batch` is 0, a tensor's first dimension is not `batch`, a layer has no
    /// neurons, or the layers (names, frame shapes, count) differ from the first batch's.
    pub fn add_counts(&mut self, layers: &[(&str, &Tensor)], batch: usize) {
        assert!(batch > 0, "SpikeStats::add: empty batch");
        if self.layers.is_empty() {
            self.layers = layers
                .iter()
                .map(|(name, t)| {
                    let shape = t.shape().get(1..).unwrap_or(&[]).to_vec();
                    let n = shape.iter().product::<usize>();
                    assert!(n > 0, "SpikeStats: layer `{name}` has no neurons");
                    LayerCounts {
                        name: name.to_string(),
                        shape,
                        events: vec![0; n],
                    }
                })
                .collect();
        }
        assert_eq!(
            layers.len(),
            self.layers.len(),
            "SpikeStats: {} layers in this batch, {} before",
            layers.len(),
            self.layers.len()
        );
        for (acc, (name, t)) in self.layers.iter_mut().zip(layers) {
            assert!(
                acc.name == *name
                    && t.shape().first() == Some(&batch)
                    && t.shape()[1..] == acc.shape,
                "SpikeStats: layer `{name}` has counts {:?}, expected `{}` with [{batch}, {:?}]",
                t.shape(),
                acc.name,
                acc.shape,
            );
            let n = acc.events.len();
            for (k, &v) in t.iter().enumerate() {
                acc.events[k % n] += v as u64;
            }
        }
        self.images += batch as u64;
    }

    /// Every layer's per-neuron event counts, in order, as one vector (to sum the counts
    /// of several processes; exact up to 2⁵³).
    pub fn event_counts(&self) -> Vec<f64> {
        self.layers
            .iter()
            .flat_map(|l| l.events.iter().map(|&e| e as f64))
            .collect()
    }

    /// Replaces the counts by `counts` (as [`SpikeStats::event_counts`] gives them) over
    /// `images` images; a no-op before the first batch (no layers to hold them).
    pub fn set_event_counts(&mut self, counts: &[f64], images: u64) {
        if self.layers.is_empty() {
            return;
        }
        let mut it = counts.iter();
        for l in &mut self.layers {
            for e in &mut l.events {
                *e = *it.next().expect("as many counts as events") as u64;
            }
        }
        self.images = images;
    }

    /// The per-layer summary, a neuron bursting when its mean rate is above
    /// `burst_threshold` spikes per step. Empty before the first batch.
    pub fn layers(&self, burst_threshold: f64) -> Vec<LayerReport> {
        let slots = self.steps as u64 * self.images;
        self.layers
            .iter()
            .map(|l| {
                let neurons = l.events.len();
                let mut histogram = vec![0u64; HISTOGRAM_BINS];
                let (mut dead, mut bursting, mut total) = (0usize, 0usize, 0u64);
                for &e in &l.events {
                    total += e;
                    dead += usize::from(e == 0);
                    bursting += usize::from(e as f64 > burst_threshold * slots as f64);
                    // Integer division: the bin of rate e/slots exactly, 1.0 in the last.
                    let bin = (e * HISTOGRAM_BINS as u64)
                        .checked_div(slots)
                        .unwrap_or(0)
                        .min(HISTOGRAM_BINS as u64 - 1);
                    histogram[bin as usize] += 1;
                }
                let alive = neurons - dead;
                let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
                LayerReport {
                    name: l.name.clone(),
                    neurons,
                    dead_frac: dead as f64 / neurons as f64,
                    bursting_frac: bursting as f64 / neurons as f64,
                    density: ratio(total as f64, alive as f64 * slots as f64),
                    spikes_per_image: ratio(total as f64, self.images as f64),
                    histogram,
                }
            })
            .collect()
    }
}

/// Spikes per neuron and step of a layer's event counts `[B, …]` over `steps` steps.
pub fn density(counts: &Tensor, steps: usize) -> f64 {
    let slots = (counts.len() * steps).max(1);
    spikes(counts) / slots as f64
}

/// Spike density over all LIF layers of one forward pass of `steps` steps (the encoded
/// input left out; 0 for the baselines).
pub fn batch_density(layers: &[LayerActivity<'_>], steps: usize) -> f64 {
    let (mut total, mut slots) = (0.0, 0usize);
    for l in layers.iter().skip(1) {
        let v = l.counts.value();
        total += spikes(v);
        slots += v.len() * steps;
    }
    if slots == 0 {
        0.0
    } else {
        total / slots as f64
    }
}

/// The sum of a layer's event counts.
fn spikes(counts: &Tensor) -> f64 {
    counts.iter().map(|&v| f64::from(v)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn tensor(shape: &[usize], values: Vec<f32>) -> Tensor {
        Tensor::from_shape_vec(IxDyn(shape), values).unwrap()
    }

    /// 4 neurons, T = 4, two batches of 1 image each, spikes laid out `[T·B, 4]`:
    /// neuron 0 never fires, 1 fires every step, 2 at one step of 8, 3 at 4 steps of 8.
    #[test]
    fn dead_bursting_density_and_histogram_are_exact() {
        let mut stats = SpikeStats::new(4);
        #[rustfmt::skip]
        let first = tensor(&[4, 4], vec![
            0., 1., 1., 1.,
            0., 1., 0., 1.,
            0., 1., 0., 0.,
            0., 1., 0., 0.,
        ]);
        #[rustfmt::skip]
        let second = tensor(&[4, 4], vec![
            0., 1., 0., 0.,
            0., 1., 0., 1.,
            0., 1., 0., 0.,
            0., 1., 0., 1.,
        ]);
        stats.add_tensors(&[("layer", &first)], 1);
        stats.add_tensors(&[("layer", &second)], 1);
        assert_eq!(stats.images(), 2);
        let r = &stats.layers(0.5)[0];
        assert_eq!(r.neurons, 4);
        assert_eq!(r.dead_frac, 0.25);
        // Rates 0, 1, 1/8, 1/2: only neuron 1 is strictly above 0.5.
        assert_eq!(r.bursting_frac, 0.25);
        // 8 + 1 + 4 spikes over 3 alive neurons, 4 steps, 2 images.
        assert_eq!(r.density, 13.0 / 24.0);
        assert_eq!(r.spikes_per_image, 6.5);
        let mut expected = vec![0u64; HISTOGRAM_BINS];
        expected[0] = 1; // dead
        expected[2] = 1; // 0.125·20 = 2.5
        expected[10] = 1; // 0.5·20 = 10
        expected[19] = 1; // 1.0, the closed last bin
        assert_eq!(r.histogram, expected);
        assert_eq!(stats.layers(0.1)[0].bursting_frac, 0.75);
    }

    /// Batches are time-major `[T·B, …]`; neurons sit in the trailing dimensions.
    #[test]
    fn counts_over_batches_and_images_of_a_multi_dim_layer() {
        let (t, b) = (3, 2);
        let mut rng = StdRng::seed_from_u64(3);
        let mut expected = [0u64; 2 * 3 * 3];
        let mut stats = SpikeStats::new(t);
        for _ in 0..3 {
            let v: Vec<f32> = (0..t * b * 18)
                .map(|_| f32::from(u8::from(rng.random::<f32>() < 0.3)))
                .collect();
            for (i, &s) in v.iter().enumerate() {
                expected[i % 18] += s as u64;
            }
            stats.add_tensors(&[("conv", &tensor(&[t * b, 2, 3, 3], v))], b);
        }
        let r = &stats.layers(0.5)[0];
        assert_eq!(r.histogram.iter().sum::<u64>(), 18);
        let slots = (t * b * 3) as u64;
        let dead = expected.iter().filter(|&&e| e == 0).count();
        let bursting = expected.iter().filter(|&&e| 2 * e > slots).count();
        let total: u64 = expected.iter().sum();
        assert_eq!(r.dead_frac, dead as f64 / 18.0);
        assert_eq!(r.bursting_frac, bursting as f64 / 18.0);
        assert_eq!(
            r.density,
            total as f64 / ((18 - dead) as f64 * slots as f64)
        );
        // A non-contiguous tensor takes the slow path to the same counts.
        let mut again = SpikeStats::new(1);
        let m = tensor(&[2, 3], vec![1., 0., 1., 0., 0., 1.]);
        again.add_tensors(&[("x", &m.t().to_owned())], 3);
        let contiguous = m.t().as_standard_layout().into_owned();
        let mut reference = SpikeStats::new(1);
        reference.add_tensors(&[("x", &contiguous)], 3);
        assert_eq!(again.layers(0.5), reference.layers(0.5));
    }

    #[test]
    #[should_panic(expected = "layer `b`")]
    fn mismatched_batches_are_refused() {
        let mut stats = SpikeStats::new(2);
        stats.add_tensors(&[("a", &Tensor::zeros(IxDyn(&[2, 5])))], 1);
        stats.add_tensors(&[("b", &Tensor::zeros(IxDyn(&[2, 5])))], 1);
    }

    #[test]
    fn all_dead_layer_has_zero_density() {
        let mut stats = SpikeStats::new(2);
        stats.add_tensors(&[("a", &Tensor::zeros(IxDyn(&[4, 3])))], 2);
        let r = &stats.layers(0.5)[0];
        assert_eq!((r.dead_frac, r.density, r.bursting_frac), (1.0, 0.0, 0.0));
        assert_eq!(r.histogram[0], 3);
    }
}
