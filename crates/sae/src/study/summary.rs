//! The study's results as types: [`StudySummary`] is `summary.json`, one [`RowSummary`]
//! per row with its runs' numbers averaged over seeds; [`Validation`] is a tuning run's
//! `validation.json`. Every field is written and read back by name.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{Coefficients, ModelKind};
use crate::report::energy::PJ_PER_MAC;
use crate::report::evaluation::{EvalRecord, nan_if_null, required};
use crate::study::protocol::{Group, Row};
use crate::study::{Budget, Study};

/// One finished run: its folder, `eval.json`, the validation scores of a tuning run and
/// the training wall time summed over the processes that worked on it.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The run folder.
    pub dir: PathBuf,
    /// Its `eval.json`.
    pub eval: EvalRecord,
    /// Its `validation.json` (tuning runs only).
    pub validation: Option<Validation>,
    /// Seconds of training and evaluation, over every process that worked on it.
    pub wall_s: f64,
}

impl RunResult {
    /// A field of the latent layer's entry in `eval.json`.
    fn latent(&self, field: fn(&crate::report::evaluation::LayerRecord) -> f64) -> Option<f64> {
        self.eval.layer("latent").map(field)
    }
}

/// A tuning run's scores on the held-out validation images (`validation.json`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    /// Validation images.
    pub images: usize,
    /// Validation MSE (`null` without images).
    #[serde(deserialize_with = "nan_if_null")]
    pub mse: f64,
    /// Latent neurons that never fired on them.
    #[serde(deserialize_with = "required")]
    pub latent_dead_frac: Option<f64>,
    /// Latent neurons above the bursting threshold.
    #[serde(deserialize_with = "required")]
    pub latent_bursting_frac: Option<f64>,
    /// The latent layer's spike density.
    #[serde(deserialize_with = "required")]
    pub latent_density: Option<f64>,
}

/// The nonzero coefficients by name (what `summary.json` shows of a configuration's).
pub fn nonzero(c: &Coefficients) -> BTreeMap<String, f32> {
    c.named()
        .iter()
        .filter(|(_, v)| *v != 0.0)
        .map(|(k, v)| ((*k).to_string(), *v))
        .collect()
}

/// One layer's health, averaged over a row's seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerMeans {
    /// The layer.
    pub name: String,
    /// Fraction of neurons that never fired.
    #[serde(deserialize_with = "required")]
    pub dead_frac: Option<f64>,
    /// Fraction above the bursting threshold.
    #[serde(deserialize_with = "required")]
    pub bursting_frac: Option<f64>,
    /// Spikes per alive neuron and step.
    #[serde(deserialize_with = "required")]
    pub density: Option<f64>,
}

/// One row of `summary.json`: the row's configuration and its runs' results, means over
/// seeds (`null` where a run lacks the number).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RowSummary {
    /// The row's name in the tables.
    pub name: String,
    /// Its table.
    pub group: Group,
    /// The network.
    pub model: ModelKind,
    /// Time steps.
    #[serde(rename = "T")]
    pub steps: usize,
    /// Whether any regularizer is on.
    pub regularized: bool,
    /// The nonzero regularizer coefficients.
    pub coefficients: BTreeMap<String, f32>,
    /// AdamW weight decay.
    pub weight_decay: f32,
    /// Training images (0: all).
    pub train_images: usize,
    /// Test images (0: all).
    pub test_images: usize,
    /// Epochs.
    pub epochs: usize,
    /// Seeds trained.
    pub seeds: Vec<u64>,
    /// Run folders, one per seed.
    pub runs: Vec<Option<String>>,
    /// Mean test MSE.
    #[serde(deserialize_with = "required")]
    pub test_mse: Option<f64>,
    /// Its sample standard deviation (`null` for one seed).
    #[serde(deserialize_with = "required")]
    pub test_mse_std: Option<f64>,
    /// Test MSE of each seed.
    pub test_mse_per_seed: Vec<Option<f64>>,
    /// The VAE rows only: mean over seeds of the test MSE with `z` sampled (`test_mse`
    /// decodes `z = μ`; each run's `eval.json` has the spread over its test images).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampled_mse: Option<f64>,
    /// Its sample standard deviation over seeds (absent for one seed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampled_mse_std: Option<f64>,
    /// Latent neurons that never fired.
    #[serde(deserialize_with = "required")]
    pub latent_dead_frac: Option<f64>,
    /// Latent neurons above the bursting threshold.
    #[serde(deserialize_with = "required")]
    pub latent_bursting_frac: Option<f64>,
    /// The latent layer's density.
    #[serde(deserialize_with = "required")]
    pub latent_density: Option<f64>,
    /// Every layer, latent first, then the others in network order.
    pub layers: Vec<LayerMeans>,
    /// Linear-probe accuracy of the latent code.
    #[serde(deserialize_with = "required")]
    pub probe_accuracy: Option<f64>,
    /// Within/between-class correlation ratio.
    #[serde(deserialize_with = "required")]
    pub within_between_ratio: Option<f64>,
    /// Synaptic operations per image.
    #[serde(deserialize_with = "required")]
    pub sops_per_image: Option<f64>,
    /// Energy per image, µJ.
    #[serde(deserialize_with = "required")]
    pub energy_uj: Option<f64>,
    /// MACs of the dense network of the same shapes on one frame.
    #[serde(deserialize_with = "required")]
    pub dense_macs_per_frame: Option<f64>,
    /// Energy relative to the dense AE.
    #[serde(deserialize_with = "required")]
    pub energy_vs_ae: Option<f64>,
    /// The AE rows only: MACs per image of the dense network ([`dense_baseline`]).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub macs_per_image: Option<f64>,
    /// A tuning row's validation scores.
    #[serde(deserialize_with = "required")]
    pub validation: Option<Validation>,
    /// Mean wall seconds per run.
    #[serde(deserialize_with = "required")]
    pub wall_s: Option<f64>,
}

/// The tuning study's choices (`summary.json`'s `chosen`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Chosen {
    /// Each family's chosen coefficient.
    pub families: BTreeMap<String, f32>,
    /// The better combination's row.
    pub combined: String,
    /// Its coefficients.
    pub combined_coefficients: BTreeMap<String, f32>,
    /// The best row of all.
    pub best: String,
    /// Its coefficients.
    pub best_coefficients: BTreeMap<String, f32>,
}

/// `summary.json`: every row, and the tuning study's choice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StudySummary {
    /// The study.
    pub study: Study,
    /// Its budget (absent in summaries written before it was recorded).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub budget: Option<Budget>,
    /// Tuning only: how the coefficients were chosen.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rule: Option<String>,
    /// Tuning only: held-out images that scored the runs.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub validation_images: Option<usize>,
    /// Tuning only: what was chosen.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub chosen: Option<Chosen>,
    /// One per configuration.
    pub rows: Vec<RowSummary>,
    /// Distinct runs.
    pub runs: usize,
    /// Wall seconds of training and evaluation, summed over runs and calls.
    pub runs_wall_s: f64,
    /// Wall seconds of the last call.
    pub call_wall_s: f64,
    /// The command that wrote it.
    pub command: String,
}

/// Mean and sample standard deviation (`None` for fewer than two values) of `values`;
/// `None` when any is missing.
pub fn mean_std(values: &[Option<f64>]) -> (Option<f64>, Option<f64>) {
    let v: Option<Vec<f64>> = values.iter().copied().collect();
    match v {
        Some(v) if !v.is_empty() => {
            let n = v.len() as f64;
            let mean = v.iter().sum::<f64>() / n;
            let std = (v.len() > 1)
                .then(|| (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
            (Some(mean), std)
        }
        _ => (None, None),
    }
}

/// The mean over runs of a number each run gives.
fn mean_of(runs: &[RunResult], get: impl Fn(&RunResult) -> Option<f64>) -> Option<f64> {
    mean_std(&runs.iter().map(get).collect::<Vec<_>>()).0
}

/// A JSON number of a run's record: non-finite values were written as `null`.
fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

impl RowSummary {
    /// The row's configuration and its runs' results, averaged over seeds.
    pub fn of(row: &Row, runs: &[RunResult]) -> Self {
        let mse: Vec<Option<f64>> = runs.iter().map(|r| finite(r.eval.test_mse)).collect();
        let (test_mse, test_mse_std) = mean_std(&mse);
        let sampled: Vec<Option<f64>> = runs
            .iter()
            .map(|r| r.eval.sampled_mse.and_then(|s| finite(s.mean)))
            .collect();
        let (sampled_mse, sampled_mse_std) = mean_std(&sampled);
        let names: Vec<&str> = runs
            .first()
            .map(|r| r.eval.layers.iter().map(|l| l.name.as_str()).collect())
            .unwrap_or_default();
        // Latent first, then the others in network order.
        let mut order: Vec<&str> = names.iter().copied().filter(|n| *n == "latent").collect();
        order.extend(names.iter().copied().filter(|n| *n != "latent"));
        let layers = order
            .iter()
            .map(|name| {
                let field = |f: fn(&crate::report::evaluation::LayerRecord) -> f64| {
                    mean_of(runs, |r| r.eval.layer(name).map(f))
                };
                LayerMeans {
                    name: name.to_string(),
                    dead_frac: field(|l| l.dead_frac),
                    bursting_frac: field(|l| l.bursting_frac),
                    density: field(|l| l.density),
                }
            })
            .collect();
        let energy = mean_of(runs, |r| r.eval.energy_uj);
        let ann = mean_of(runs, |r| r.eval.ann_energy_uj);
        let latent = |f| mean_of(runs, |r| r.latent(f));
        RowSummary {
            name: row.name.clone(),
            group: row.group,
            model: row.cfg.model,
            steps: row.cfg.steps,
            regularized: row.cfg.coefficients.any(),
            coefficients: nonzero(&row.cfg.coefficients),
            weight_decay: row.cfg.weight_decay,
            train_images: row.cfg.train_images,
            test_images: row.cfg.test_images,
            epochs: row.cfg.epochs,
            seeds: row.seeds.clone(),
            runs: runs
                .iter()
                .map(|r| r.dir.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect(),
            test_mse,
            test_mse_std,
            test_mse_per_seed: mse,
            sampled_mse,
            sampled_mse_std,
            latent_dead_frac: latent(|l| l.dead_frac),
            latent_bursting_frac: latent(|l| l.bursting_frac),
            latent_density: latent(|l| l.density),
            layers,
            probe_accuracy: mean_of(runs, |r| r.eval.latent.map(|l| l.probe_accuracy)),
            within_between_ratio: mean_of(runs, |r| {
                r.eval.latent.and_then(|l| finite(l.within_between_ratio))
            }),
            sops_per_image: mean_of(runs, |r| r.eval.sops_per_image),
            energy_uj: energy,
            dense_macs_per_frame: mean_of(runs, |r| r.eval.dense_macs_per_frame),
            energy_vs_ae: energy.zip(ann).map(|(s, a)| s / a),
            macs_per_image: None,
            validation: runs.first().and_then(|r| r.validation),
            wall_s: mean_of(runs, |r| Some(r.wall_s)),
        }
    }
}

/// Gives the conv AE's rows their MACs per image: those of the dense network of the same
/// shapes, which the spiking runs report (`dense_macs_per_frame`), and its energy.
pub fn dense_baseline(rows: &mut [RowSummary]) {
    let Some(macs) = rows.iter().find_map(|r| r.dense_macs_per_frame) else {
        return;
    };
    for r in rows.iter_mut().filter(|r| r.model == ModelKind::Ae) {
        r.macs_per_image = Some(macs);
        r.energy_uj = Some(macs * PJ_PER_MAC * 1e-6);
        r.energy_vs_ae = Some(1.0);
    }
}
