//! Class structure of a latent code: the class-mean correlation matrix, within- vs
//! between-class correlation, and the accuracy of a [`linear_probe`].

use autograd::{Adam, Optimizer, Parameter, Tape, Tensor};
use ndarray::{Array2, Axis, Ix1, Ix2, IxDyn};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::seeds;

/// MNIST's classes.
pub const CLASSES: usize = 10;
/// Codes per class [`latent_structure`] samples for the within/between correlation.
pub const PAIR_SAMPLE_PER_CLASS: usize = 100;
/// Epochs of the [`linear_probe`].
pub const PROBE_EPOCHS: usize = 20;
/// Mini-batch size of the [`linear_probe`].
pub const PROBE_BATCH: usize = 128;
/// Adam learning rate of the [`linear_probe`].
pub const PROBE_LR: f32 = 1e-2;
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
    let mut rng = StdRng::seed_from_u64(seeds::pair_sample_seed(seed));
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

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
}
