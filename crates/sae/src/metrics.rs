//! What a run reports about a whole evaluation set (`model-spec.md`, "What a run must
//! report"), beyond the reconstruction MSE:
//!
//! - [`SpikeStats`]: per-layer spike counts accumulated batch by batch, one pass over each
//!   spike tensor, summarized as [`LayerReport`]s (dead and bursting neurons, density,
//!   firing-rate histogram);
//! - [`latent_structure`]: class structure of the latent code (class-mean correlation
//!   matrix, within- vs between-class correlation, [`linear_probe`] accuracy);
//! - [`energy`]: synaptic operations per image next to the dense network's MACs, and the
//!   energy estimate at [`PJ_PER_SOP`] per accumulate and [`PJ_PER_MAC`] per MAC.

use autograd::{Adam, Optimizer, Parameter, Tape, Tensor};
use ndarray::{Array2, Axis, Ix1, Ix2, IxDyn};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::config::Encoder;
use crate::layers::Synapse;
use crate::model::{LayerActivity, Sae};

/// Bins of the firing-rate histogram, equal widths over `[0, 1]` spikes per step.
pub const HISTOGRAM_BINS: usize = 20;
/// MNIST's classes.
pub const CLASSES: usize = 10;
/// Energy of one synaptic accumulate (a spike arriving at one synapse), picojoules.
pub const PJ_PER_SOP: f64 = 0.9;
/// Energy of one multiply-accumulate, picojoules.
pub const PJ_PER_MAC: f64 = 4.6;
/// Codes per class [`latent_structure`] samples for the within/between correlation.
pub const PAIR_SAMPLE_PER_CLASS: usize = 100;
/// Epochs of the [`linear_probe`].
pub const PROBE_EPOCHS: usize = 20;
/// Mini-batch size of the [`linear_probe`].
pub const PROBE_BATCH: usize = 128;
/// Adam learning rate of the [`linear_probe`].
pub const PROBE_LR: f32 = 1e-2;

/// One layer's event counts so far.
#[derive(Clone, Debug)]
struct LayerCounts {
    name: String,
    /// Shape of one frame (the spike tensor's shape without the leading `T·B`).
    shape: Vec<usize>,
    /// Per neuron: nonzero values (spikes) over all images and steps so far.
    events: Vec<u64>,
}

/// Per-layer spike counts of a spiking model, accumulated over evaluation batches.
///
/// A neuron's *events* are the (image, step) pairs where its value is nonzero: its spike
/// count for a LIF layer, and for the `input` layer its input spikes (or, with the
/// `current` encoder, the steps at which it carries a nonzero analog value).
#[derive(Clone, Debug)]
pub struct SpikeStats {
    steps: usize,
    images: u64,
    layers: Vec<LayerCounts>,
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
    /// [`Output::layers`](crate::model::Output::layers), the encoded input included, each
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

/// Class structure of a latent code.
#[derive(Clone, Debug, PartialEq)]
pub struct LatentReport {
    /// `[CLASSES][CLASSES]` Pearson correlation between the class-mean latent vectors of
    /// the test codes (correlation over the latent dimensions). An entry whose class is
    /// absent or whose mean vector is constant (e.g. all zero) is 0, its diagonal too.
    pub class_correlation: Vec<Vec<f64>>,
    /// Mean Pearson correlation between two test codes of the same class (see
    /// [`latent_structure`] for the sample); NaN without such a pair.
    pub within_class: f64,
    /// Mean Pearson correlation between two test codes of different classes; NaN
    /// without such a pair.
    pub between_class: f64,
    /// `(1 + within_class) / (1 + between_class)`: the ratio of the mean similarities
    /// `1 + r ∈ [0, 2]` within and between classes. 1 when class does not matter, above
    /// 1 when codes of a class are more alike than codes of different classes; NaN
    /// when either mean is.
    pub within_between_ratio: f64,
    /// Test accuracy of the [`linear_probe`] trained on the train codes.
    pub probe_accuracy: f64,
}

/// The class structure of latent codes `[n, latent]` (spike rates for the spiking model)
/// with their labels: a [`LatentReport`].
///
/// Within/between: from each class's test codes, up to [`PAIR_SAMPLE_PER_CLASS`] are
/// drawn (a shuffle seeded by `seed`); codes that are constant over the latent dimensions
/// (no correlation is defined, e.g. an image with no latent spike) are left out. Over all
/// unordered pairs of the remaining codes, `within_class` is the mean Pearson correlation
/// (over latent dimensions) of the pairs with equal labels, `between_class` that of pairs
/// with different labels, and the ratio is `(1 + within_class) / (1 + between_class)`.
/// (The plain quotient of the two means is no measure: the between-class mean is near
/// 0 or negative for well separated codes, which flips its sign.)
///
/// # Panics
/// If codes and labels differ in number, train and test codes in width, or a label is
/// not below [`CLASSES`].
pub fn latent_structure(
    train_codes: &Array2<f32>,
    train_labels: &[u8],
    test_codes: &Array2<f32>,
    test_labels: &[u8],
    seed: u64,
) -> LatentReport {
    check_codes(test_codes, test_labels);
    let class_correlation = class_mean_correlation(test_codes, test_labels);
    let (within_class, between_class) = pair_correlations(test_codes, test_labels, seed);
    LatentReport {
        class_correlation,
        within_class,
        between_class,
        within_between_ratio: (1.0 + within_class) / (1.0 + between_class),
        probe_accuracy: linear_probe(train_codes, train_labels, test_codes, test_labels, seed),
    }
}

fn check_codes(codes: &Array2<f32>, labels: &[u8]) {
    assert_eq!(
        codes.nrows(),
        labels.len(),
        "{} codes but {} labels",
        codes.nrows(),
        labels.len()
    );
    if let Some(&bad) = labels.iter().find(|&&l| usize::from(l) >= CLASSES) {
        panic!("label {bad} is not below the {CLASSES} classes");
    }
}

/// `v` centred and scaled to unit norm, `None` when it is constant.
fn unit_centred(v: impl Iterator<Item = f64> + Clone) -> Option<Vec<f64>> {
    let (sum, len) = v.clone().fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    let mean = sum / len.max(1) as f64;
    let centred: Vec<f64> = v.map(|x| x - mean).collect();
    let norm = centred.iter().map(|x| x * x).sum::<f64>().sqrt();
    // Relative to the values' scale, so the rounding noise of a constant vector's mean
    // is not taken for a signal.
    let scale = centred.iter().fold(mean.abs(), |m, x| m.max(x.abs()));
    (norm > 0.0 && norm > 1e-9 * scale).then(|| centred.iter().map(|x| x / norm).collect())
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Pearson correlations between the class-mean codes.
fn class_mean_correlation(codes: &Array2<f32>, labels: &[u8]) -> Vec<Vec<f64>> {
    let d = codes.ncols();
    let mut sums = vec![vec![0.0f64; d]; CLASSES];
    let mut counts = [0usize; CLASSES];
    for (row, &l) in codes.axis_iter(Axis(0)).zip(labels) {
        counts[usize::from(l)] += 1;
        for (s, &v) in sums[usize::from(l)].iter_mut().zip(row) {
            *s += f64::from(v);
        }
    }
    let units: Vec<Option<Vec<f64>>> = sums
        .iter()
        .zip(counts)
        .map(|(s, n)| {
            (n > 0)
                .then(|| unit_centred(s.iter().map(|v| v / n as f64)))
                .flatten()
        })
        .collect();
    (0..CLASSES)
        .map(|a| {
            (0..CLASSES)
                .map(|b| match (&units[a], &units[b]) {
                    (Some(x), Some(y)) => dot(x, y).clamp(-1.0, 1.0),
                    _ => 0.0,
                })
                .collect()
        })
        .collect()
}

/// Mean code-to-code correlation within and between classes on the seeded sample.
fn pair_correlations(codes: &Array2<f32>, labels: &[u8], seed: u64) -> (f64, f64) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5EED_C0DE);
    let mut sample: Vec<(u8, Vec<f64>)> = vec![];
    for class in 0..CLASSES as u8 {
        let mut idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        idx.shuffle(&mut rng);
        idx.truncate(PAIR_SAMPLE_PER_CLASS);
        sample.extend(idx.into_iter().filter_map(|i| {
            unit_centred(codes.row(i).iter().map(|&v| f64::from(v))).map(|u| (class, u))
        }));
    }
    let (mut within, mut n_within, mut between, mut n_between) = (0.0, 0u64, 0.0, 0u64);
    for (i, (la, a)) in sample.iter().enumerate() {
        for (lb, b) in &sample[i + 1..] {
            let r = dot(a, b);
            if la == lb {
                within += r;
                n_within += 1;
            } else {
                between += r;
                n_between += 1;
            }
        }
    }
    (within / n_within as f64, between / n_between as f64)
}

/// Test accuracy of a softmax classifier on latent codes: one linear layer
/// (`[CLASSES, latent]` weight and bias, both starting at zero) trained with Adam
/// ([`PROBE_LR`]) on the train codes for [`PROBE_EPOCHS`] epochs of [`PROBE_BATCH`]
/// shuffled codes, inputs standardized by the train codes' per-dimension mean and
/// standard deviation (a constant dimension is only centred). Deterministic given `seed`
/// (it drives the shuffles). 0 when there are no test codes.
///
/// # Panics
/// As [`latent_structure`].
pub fn linear_probe(
    train_codes: &Array2<f32>,
    train_labels: &[u8],
    test_codes: &Array2<f32>,
    test_labels: &[u8],
    seed: u64,
) -> f64 {
    check_codes(train_codes, train_labels);
    check_codes(test_codes, test_labels);
    let d = train_codes.ncols();
    assert_eq!(
        test_codes.ncols(),
        d,
        "train codes have {d} dimensions, test codes {}",
        test_codes.ncols()
    );
    if test_codes.nrows() == 0 {
        return 0.0;
    }
    let (mean, std) = match train_codes.nrows() {
        0 => (ndarray::Array1::zeros(d), ndarray::Array1::ones(d)),
        _ => (
            train_codes.mean_axis(Axis(0)).expect("rows"),
            train_codes
                .std_axis(Axis(0), 0.0)
                .mapv(|s| if s > 1e-6 { s } else { 1.0 }),
        ),
    };
    let standardize = |codes: &Array2<f32>| (codes - &mean) / &std;
    let (train, test) = (standardize(train_codes), standardize(test_codes));

    let weight = Parameter::new("probe.weight", Tensor::zeros(IxDyn(&[CLASSES, d])));
    let bias = Parameter::new("probe.bias", Tensor::zeros(IxDyn(&[CLASSES])));
    let mut opt = Adam::new(vec![weight.clone(), bias.clone()], PROBE_LR);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..train.nrows()).collect();
    for _ in 0..PROBE_EPOCHS {
        order.shuffle(&mut rng);
        for chunk in order.chunks(PROBE_BATCH) {
            let x = train.select(Axis(0), chunk).into_dyn();
            let y: Vec<usize> = chunk
                .iter()
                .map(|&i| usize::from(train_labels[i]))
                .collect();
            let tape = Tape::new();
            let logits = tape
                .constant(x)
                .linear(&tape.param(&weight), Some(&tape.param(&bias)));
            opt.zero_grad();
            logits.cross_entropy(&y).backward();
            opt.step();
        }
    }

    let w = weight.value();
    let w = w.view().into_dimensionality::<Ix2>().expect("2-D weight");
    let b = bias.value();
    let logits = test.dot(&w.t()) + b.view().into_dimensionality::<Ix1>().expect("1-D bias");
    let correct = logits
        .axis_iter(Axis(0))
        .zip(test_labels)
        .filter(|(row, label)| {
            let best = row
                .iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                    if v > bv { (i, v) } else { (bi, bv) }
                })
                .0;
            best == usize::from(**label)
        })
        .count();
    correct as f64 / test_codes.nrows() as f64
}

/// Synaptic operations and energy of a spiking model on the evaluation set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EnergyReport {
    /// Synaptic operations (accumulates) per image: over layers and time steps, every
    /// spike arriving at a layer's input times that input neuron's fan-out.
    pub sops_per_image: f64,
    /// Multiply-accumulates of the spiking model per image: nonzero analog inputs times
    /// their fan-out; only the first layer under the `current` encoder, otherwise 0.
    pub snn_macs_per_image: f64,
    /// MACs per image of the same network run densely for all `T` steps
    /// (`T · dense_macs_per_frame`).
    pub dense_macs_per_image: f64,
    /// MACs of the non-spiking network of the same shapes on one frame (`T = 1`).
    pub dense_macs_per_frame: f64,
    /// `(sops · PJ_PER_SOP + snn_macs · PJ_PER_MAC)` per image, in microjoules.
    pub snn_energy_uj: f64,
    /// `dense_macs_per_frame · PJ_PER_MAC` per image, in microjoules.
    pub ann_energy_uj: f64,
}

/// Synaptic operations and energy of `net` from the spike counts `stats` accumulated
/// over its evaluation (the encoded input first, then every layer, as [`Sae::run`]
/// reports them).
///
/// Fan-out is exact per input neuron, borders included: a conv input pixel reaches
/// `C_out` times the number of output positions whose window covers it, a transposed
/// conv input pixel `C_out` times the number of its `k × k` output positions that fall
/// inside the (cropped) output, a linear input `out_features` neurons. The output
/// layer's spikes feed nothing and are not counted. The dense MACs count the same
/// connections (the number of weight uses of one frame, padding zeros excluded), so an
/// input where every neuron spikes at every step has exactly as many synaptic operations
/// as the dense network has MACs. Biases are not counted.
///
/// # Panics
/// If `stats` is empty, or its layers or time steps do not match `net`.
pub fn energy(net: &Sae, stats: &SpikeStats) -> EnergyReport {
    assert!(
        stats.images > 0 && stats.layers.len() == net.layers.len() + 1 && stats.steps == net.steps,
        "energy: spike statistics of {} layers, {} images, T = {} do not fit a network of \
         {} layers (plus input), T = {}",
        stats.layers.len(),
        stats.images,
        stats.steps,
        net.layers.len(),
        net.steps
    );
    let (mut sops, mut snn_macs, mut dense) = (0.0f64, 0.0f64, 0.0f64);
    for (i, (layer, input)) in net.layers.iter().zip(&stats.layers).enumerate() {
        let fan = fan_out(layer.synapse, &layer.weight.shape(), &input.shape);
        let ops: f64 = fan
            .iter()
            .zip(&input.events)
            .map(|(&f, &e)| f as f64 * e as f64)
            .sum();
        dense += fan.iter().map(|&f| f as f64).sum::<f64>();
        if i == 0 && net.encoder == Encoder::Current {
            snn_macs += ops;
        } else {
            sops += ops;
        }
    }
    let images = stats.images as f64;
    let (sops, snn_macs) = (sops / images, snn_macs / images);
    EnergyReport {
        sops_per_image: sops,
        snn_macs_per_image: snn_macs,
        dense_macs_per_image: dense * net.steps as f64,
        dense_macs_per_frame: dense,
        snn_energy_uj: (sops * PJ_PER_SOP + snn_macs * PJ_PER_MAC) * 1e-6,
        ann_energy_uj: dense * PJ_PER_MAC * 1e-6,
    }
}

/// Per input neuron of a layer with input frames of `input` shape, the number of output
/// neurons it connects to (see [`energy`]), in the input's row-major order.
///
/// # Panics
/// If the input shape does not fit the weight.
pub fn fan_out(synapse: Synapse, weight: &[usize], input: &[usize]) -> Vec<u64> {
    let n: usize = input.iter().product();
    let spatial = |c_in: usize, c_out: usize, per_dim: &dyn Fn(usize, usize) -> Vec<u64>| {
        assert!(
            input.len() == 3 && input[0] == c_in && weight.len() == 4,
            "fan_out: input {input:?} does not fit weight {weight:?}"
        );
        let (fh, fw) = (per_dim(input[1], weight[2]), per_dim(input[2], weight[3]));
        let mut out = Vec::with_capacity(n);
        for _ in 0..c_in {
            for &h in &fh {
                out.extend(fw.iter().map(|&w| c_out as u64 * h * w));
            }
        }
        out
    };
    match synapse {
        Synapse::Linear => {
            assert!(
                weight.len() == 2 && weight[1] == n,
                "fan_out: input {input:?} does not fit linear weight {weight:?}"
            );
            vec![weight[0] as u64; n]
        }
        Synapse::Conv2d { stride, padding } => spatial(weight[1], weight[0], &|size, k| {
            let out = (size + 2 * padding - k) / stride + 1;
            // Output position o covers input rows o·s − p … o·s − p + k − 1.
            (0..size)
                .map(|i| {
                    (0..out)
                        .filter(|&o| (o * stride..o * stride + k).contains(&(i + padding)))
                        .count() as u64
                })
                .collect()
        }),
        Synapse::ConvTranspose2d {
            stride,
            padding,
            output_padding,
        } => spatial(weight[0], weight[1], &|size, k| {
            let out = (size - 1) * stride + k + output_padding - 2 * padding;
            // Input i reaches output rows i·s − p + r, r < k, those inside [0, out).
            (0..size)
                .map(|i| {
                    (0..k)
                        .filter(|&r| (padding..padding + out).contains(&(i * stride + r)))
                        .count() as u64
                })
                .collect()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::model::AutoEncoder;
    use ndarray::Array2;
    use rand::Rng;

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

    /// Codes `[n, 20]` whose class `c` lights dimensions `2c, 2c+1` (plus uniform noise
    /// of amplitude 0.3), or pure noise when `separable` is false.
    fn codes(n: usize, separable: bool, seed: u64) -> (Array2<f32>, Vec<u8>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let labels: Vec<u8> = (0..n).map(|i| (i % CLASSES) as u8).collect();
        let codes = Array2::from_shape_fn((n, 20), |(i, j)| {
            let on = separable && j / 2 == usize::from(labels[i]);
            f32::from(u8::from(on)) + 0.3 * rng.random::<f32>()
        });
        (codes, labels)
    }

    #[test]
    fn separable_codes_have_structure() {
        let (train, train_y) = codes(500, true, 1);
        let (test, test_y) = codes(300, true, 2);
        let r = latent_structure(&train, &train_y, &test, &test_y, 0);
        assert!(r.probe_accuracy > 0.99, "{r:?}");
        assert!(
            r.within_class > 0.5 && r.within_between_ratio > 1.0,
            "{r:?}"
        );
        assert!(r.between_class < 0.0, "{r:?}");
        for (a, row) in r.class_correlation.iter().enumerate() {
            assert!((row[a] - 1.0).abs() < 1e-9);
            for (b, &v) in row.iter().enumerate() {
                assert_eq!(v, r.class_correlation[b][a]);
                assert!(a == b || v < 0.0, "classes {a}, {b}: {v}");
            }
        }
        // Deterministic.
        assert_eq!(r, latent_structure(&train, &train_y, &test, &test_y, 0));
    }

    #[test]
    fn random_codes_are_at_chance() {
        let (train, train_y) = codes(1000, false, 3);
        let (test, test_y) = codes(1000, false, 4);
        let r = latent_structure(&train, &train_y, &test, &test_y, 0);
        assert!(r.probe_accuracy < 0.2, "{r:?}");
        assert!((r.within_class - r.between_class).abs() < 0.03, "{r:?}");
        assert!((r.within_between_ratio - 1.0).abs() < 0.05, "{r:?}");
    }

    #[test]
    fn constant_codes_have_undefined_correlations() {
        let codes = Array2::zeros((20, 5));
        let labels: Vec<u8> = (0..20).map(|i| (i % 2) as u8).collect();
        let r = latent_structure(&codes, &labels, &codes, &labels, 0);
        assert!(r.within_class.is_nan() && r.between_class.is_nan());
        assert!(r.class_correlation.iter().flatten().all(|&v| v == 0.0));
        assert!((0.0..=1.0).contains(&r.probe_accuracy));
    }

    fn tiny() -> Sae {
        let cfg = Config {
            steps: 4,
            channels: vec![2, 3],
            latent: 5,
            ..Config::quick()
        };
        Sae::new(&cfg, &mut StdRng::seed_from_u64(0))
    }

    /// Frame shapes of the tiny network's input and layers.
    const TINY_SHAPES: [&[usize]; 7] = [
        &[1, 28, 28],
        &[2, 24, 24],
        &[3, 20, 20],
        &[5],
        &[3, 20, 20],
        &[2, 24, 24],
        &[1, 28, 28],
    ];

    #[test]
    fn energy_of_all_ones_is_the_hand_count() {
        let net = tiny();
        let (t, b) = (4, 2);
        let ones: Vec<Tensor> = TINY_SHAPES
            .iter()
            .map(|s| Tensor::ones(IxDyn(&[&[t * b][..], s].concat())))
            .collect();
        let names = [
            "input",
            "conv1",
            "conv2",
            "latent",
            "decoder_fc",
            "deconv1",
            "output",
        ];
        let layers: Vec<(&str, &Tensor)> = names.iter().copied().zip(&ones).collect();
        let mut stats = SpikeStats::new(t);
        stats.add_tensors(&layers, b);
        stats.add_tensors(&layers, b);
        // Per frame, every weight used once per output position (no padding):
        //   conv1   1→2,  k5, 24×24 outputs: 24²·2·1·25 = 28 800
        //   conv2   2→3,  k5, 20×20 outputs: 20²·3·2·25 = 60 000
        //   latent  1200→5:                               6 000
        //   dec_fc  5→1200:                               6 000
        //   deconv1 3→2,  k5, 20×20 inputs:  20²·3·2·25 = 60 000
        //   output  2→1,  k5, 24×24 inputs:  24²·2·1·25 = 28 800
        let frame = 28_800.0 + 60_000.0 + 6_000.0 + 6_000.0 + 60_000.0 + 28_800.0;
        let e = energy(&net, &stats);
        assert_eq!(e.dense_macs_per_frame, frame);
        assert_eq!(e.dense_macs_per_image, 4.0 * frame);
        assert_eq!(e.sops_per_image, 4.0 * frame);
        assert_eq!(e.snn_macs_per_image, 0.0);
        assert!((e.snn_energy_uj - 4.0 * frame * 0.9e-6).abs() < 1e-9);
        assert!((e.ann_energy_uj - frame * 4.6e-6).abs() < 1e-9);
    }

    #[test]
    fn energy_counts_single_spikes_by_their_fan_out() {
        let net = tiny();
        let mut frames: Vec<Tensor> = TINY_SHAPES
            .iter()
            .map(|s| Tensor::zeros(IxDyn(&[&[4][..], s].concat())))
            .collect();
        frames[0][[0, 0, 0, 0]] = 1.0; // input corner: 1 window × 2 channels
        frames[0][[1, 0, 14, 14]] = 1.0; // input centre: 25 windows × 2 channels
        frames[3][[2, 4]] = 1.0; // latent neuron: 1200 outputs
        frames[4][[3, 1, 0, 0]] = 1.0; // deconv input corner: 25 outputs × 2 channels
        frames[6][[0, 0, 5, 5]] = 1.0; // output spikes feed nothing
        let names = ["input", "c1", "c2", "latent", "fc", "d1", "output"];
        let layers: Vec<(&str, &Tensor)> = names.iter().copied().zip(&frames).collect();
        let mut stats = SpikeStats::new(4);
        stats.add_tensors(&layers, 1);
        let e = energy(&net, &stats);
        assert_eq!(e.sops_per_image, 2.0 + 50.0 + 1200.0 + 50.0);
    }

    /// `c_out·f[h]·f[w]` for every pixel of one input channel, row-major.
    fn outer(c_out: u64, f: &[u64]) -> Vec<u64> {
        f.iter()
            .flat_map(|h| f.iter().map(move |w| c_out * h * w))
            .collect()
    }

    #[test]
    fn fan_out_at_borders() {
        let conv = Synapse::Conv2d {
            stride: 2,
            padding: 1,
        };
        // 5 inputs, k3, s2, p1: 3 outputs covering padded rows 0-2, 2-4, 4-6,
        // i.e. inputs −1…1, 1…3, 3…5; the fan-out of pixel (h, w) is C_out·f[h]·f[w].
        assert_eq!(
            fan_out(conv, &[2, 1, 3, 3], &[1, 5, 5]),
            outer(2, &[1, 2, 1, 2, 1])
        );
        let convt = Synapse::ConvTranspose2d {
            stride: 2,
            padding: 1,
            output_padding: 1,
        };
        // 3 inputs, k3, s2, p1, op1: 6 outputs; input i reaches rows 2i−1…2i+1.
        assert_eq!(
            fan_out(convt, &[1, 3, 3, 3], &[1, 3, 3]),
            outer(3, &[2, 3, 3])
        );
        assert_eq!(fan_out(Synapse::Linear, &[7, 6], &[2, 3]), vec![7; 6]);
        // Total fan-out of a conv is its MAC count: C_out·C_in·k²·outputs without padding.
        let plain = Synapse::Conv2d {
            stride: 1,
            padding: 0,
        };
        let total: u64 = fan_out(plain, &[4, 3, 5, 5], &[3, 12, 12]).iter().sum();
        assert_eq!(total, 4 * 3 * 25 * 8 * 8);
    }

    /// `add` reads a real forward pass's activity, and the counts match the energy's
    /// expectations of the network's layers.
    #[test]
    fn stats_of_a_forward_pass() {
        let net = tiny();
        let x = autograd::gradcheck::random(&[3, 1, 28, 28], 0.0, 1.0, 2);
        let tape = Tape::eval();
        let out = net.forward(&tape, &x, 7);
        let mut stats = SpikeStats::new(net.steps());
        stats.add(&out.layers, 3);
        stats.add(&out.layers, 3);
        assert_eq!(stats.images(), 6);
        let reports = stats.layers(0.5);
        assert_eq!(reports.len(), net.layers.len() + 1);
        assert_eq!(reports[0].name, "input");
        for (r, shape) in reports.iter().zip(TINY_SHAPES) {
            assert_eq!(r.neurons, shape.iter().product::<usize>());
            assert_eq!(r.histogram.iter().sum::<u64>(), r.neurons as u64);
        }
        let e = energy(&net, &stats);
        assert!(e.sops_per_image <= e.dense_macs_per_image);
        assert_eq!(e.dense_macs_per_frame, 189_600.0);
    }
}
