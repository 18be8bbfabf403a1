//! One evaluation of a model on a test set ([`Evaluation`]) and its record in a run
//! folder, `eval.json` ([`EvalRecord`]): a typed struct written and read back as itself,
//! so a missing or renamed field is an error that names it.

use std::path::Path;

use ndarray::Array2;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::report::energy::EnergyReport;
use crate::report::latent::LatentReport;
use crate::report::spikes::LayerReport;

/// One evaluation of a model on the test subset.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// Mean per-pixel squared error over the test images (NaN without images); the VAE
    /// decodes `z = μ`.
    pub test_mse: f64,
    /// The VAE only: the test MSE with `z` sampled.
    pub sampled_mse: Option<SampledMse>,
    /// Test images evaluated.
    pub images: usize,
    /// Per spiking layer (the encoded input left out); empty for the baselines.
    pub layers: Vec<LayerReport>,
    /// Class structure of the latent code (`None` without probe images).
    pub latent: Option<LatentReport>,
    /// Synaptic operations and dense MACs (spiking model only).
    pub energy: Option<EnergyReport>,
    /// The first test images' pixels, image after image.
    pub originals: Vec<f32>,
    /// Their reconstructions.
    pub recons: Vec<f32>,
    /// Latent raster `[T, N]` of the first test image (`[1, N]` activations for the
    /// baselines).
    pub raster: Option<Array2<f32>>,
}

impl Evaluation {
    /// The latent layer's report, if the model spikes.
    pub fn latent_layer(&self) -> Option<&LayerReport> {
        self.layers.iter().find(|l| l.name == "latent")
    }

    /// What `eval.json` holds of it.
    pub fn record(&self) -> EvalRecord {
        let energy = |f: fn(&EnergyReport) -> f64| self.energy.as_ref().map(f);
        EvalRecord {
            test_mse: self.test_mse,
            sampled_mse: self.sampled_mse,
            images: self.images,
            layers: self.layers.iter().map(LayerRecord::of).collect(),
            latent: self.latent.as_ref().map(|l| LatentRecord {
                probe_accuracy: l.probe_accuracy,
                within_between_ratio: l.within_between_ratio,
            }),
            sops_per_image: energy(|e| e.sops_per_image),
            dense_macs_per_image: energy(|e| e.dense_macs_per_image),
            dense_macs_per_frame: energy(|e| e.dense_macs_per_frame),
            energy_uj: energy(|e| e.snn_energy_uj),
            ann_energy_uj: energy(|e| e.ann_energy_uj),
        }
    }
}

/// A run's `eval.json`: the final evaluation's numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// Mean per-pixel squared error over the test images (`null` when there were none).
    #[serde(deserialize_with = "nan_if_null")]
    pub test_mse: f64,
    /// The VAE only (absent for the other models, and in files written before it was
    /// recorded): the test MSE with `z` sampled, beside `test_mse`'s `z = μ`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampled_mse: Option<SampledMse>,
    /// Test images evaluated.
    pub images: usize,
    /// Per spiking layer, in network order (empty for the baselines).
    pub layers: Vec<LayerRecord>,
    /// The latent code's class structure (`null` without probe images).
    #[serde(deserialize_with = "required")]
    pub latent: Option<LatentRecord>,
    /// Synaptic operations per image (spiking model only).
    #[serde(deserialize_with = "required")]
    pub sops_per_image: Option<f64>,
    /// MACs per image of the same network run densely for `T` steps.
    #[serde(deserialize_with = "required")]
    pub dense_macs_per_image: Option<f64>,
    /// MACs of the non-spiking network of the same shapes on one frame.
    #[serde(deserialize_with = "required")]
    pub dense_macs_per_frame: Option<f64>,
    /// Energy estimate per image of the spiking model, µJ.
    #[serde(deserialize_with = "required")]
    pub energy_uj: Option<f64>,
    /// Energy estimate per image of the dense network, µJ.
    #[serde(deserialize_with = "required")]
    pub ann_energy_uj: Option<f64>,
}

impl EvalRecord {
    /// The layer named `name`.
    pub fn layer(&self, name: &str) -> Option<&LayerRecord> {
        self.layers.iter().find(|l| l.name == name)
    }
}

/// The VAE's test MSE with a sampled code `z = μ + σ·ε`, over the per-image MSEs: `ε`
/// drawn from the run's seed (`seeds::sample_seed`) and the image's index in the test
/// set, so two evaluations of the same parameters agree.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampledMse {
    /// Mean over the test images of the per-image MSE (the mean per-pixel squared error,
    /// as `test_mse`; `null` without images).
    #[serde(deserialize_with = "nan_if_null")]
    pub mean: f64,
    /// Their standard deviation over the test images (population, `/n`).
    #[serde(deserialize_with = "nan_if_null")]
    pub std: f64,
}

impl SampledMse {
    /// Mean and standard deviation of `per_image`, summed in order (so the figures do not
    /// depend on how the images were shared out); NaN for none.
    pub fn of(per_image: &[f64]) -> Self {
        let n = per_image.len() as f64;
        let mean = per_image.iter().sum::<f64>() / n;
        let var = per_image.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / n;
        SampledMse {
            mean,
            std: var.sqrt(),
        }
    }
}

/// `mean ± std`, five decimals as the test MSE is printed.
impl std::fmt::Display for SampledMse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.5} ± {:.5}", self.mean, self.std)
    }
}

/// One layer's line in `eval.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// The layer's name.
    pub name: String,
    /// Neurons in the layer.
    pub neurons: usize,
    /// Fraction of neurons that never fired.
    pub dead_frac: f64,
    /// Fraction of neurons above the bursting threshold.
    pub bursting_frac: f64,
    /// Spikes per alive neuron and step.
    pub density: f64,
}

impl LayerRecord {
    /// The record of a layer's report.
    pub fn of(l: &LayerReport) -> Self {
        LayerRecord {
            name: l.name.clone(),
            neurons: l.neurons,
            dead_frac: l.dead_frac,
            bursting_frac: l.bursting_frac,
            density: l.density,
        }
    }
}

/// The latent code's class structure in `eval.json`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatentRecord {
    /// Test accuracy of the linear probe.
    pub probe_accuracy: f64,
    /// `(1 + within) / (1 + between)` class correlation (`null` when undefined).
    #[serde(deserialize_with = "nan_if_null")]
    pub within_between_ratio: f64,
}

/// A number JSON writes as `null` when it is not finite: read back as NaN.
pub fn nan_if_null<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// An `Option` field that must be present (as `null` when empty): a missing key is an
/// error naming it, as for every other field.
pub fn required<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    T::deserialize(d)
}

/// `value` as pretty JSON with a final newline: how every JSON file of a run is written.
pub fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).expect("records serialize") + "\n"
}

/// Reads a JSON file as `T`; the error names the file and the field.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_field_is_named_and_nulls_read_back() {
        let record = EvalRecord {
            test_mse: f64::NAN,
            sampled_mse: None,
            images: 0,
            layers: vec![],
            latent: None,
            sops_per_image: None,
            dense_macs_per_image: None,
            dense_macs_per_frame: None,
            energy_uj: None,
            ann_energy_uj: None,
        };
        let text = to_json(&record);
        let back: EvalRecord = serde_json::from_str(&text).unwrap();
        assert!(back.test_mse.is_nan() && back.latent.is_none());
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        value.as_object_mut().unwrap().remove("sops_per_image");
        let err = serde_json::from_value::<EvalRecord>(value).unwrap_err();
        assert!(err.to_string().contains("sops_per_image"), "{err}");
    }

    /// Only the VAE's record has `sampled_mse`: without it the text is what it was before
    /// the field existed, and such a file reads back as `None`.
    #[test]
    fn the_sampled_mse_is_written_only_when_there_is_one() {
        let mut record = EvalRecord {
            test_mse: 0.01,
            sampled_mse: None,
            images: 2,
            layers: vec![],
            latent: None,
            sops_per_image: None,
            dense_macs_per_image: None,
            dense_macs_per_frame: None,
            energy_uj: None,
            ann_energy_uj: None,
        };
        let text = to_json(&record);
        assert!(!text.contains("sampled_mse"), "{text}");
        assert_eq!(serde_json::from_str::<EvalRecord>(&text).unwrap(), record);
        record.sampled_mse = Some(SampledMse::of(&[0.01, 0.03]));
        let back: EvalRecord = serde_json::from_str(&to_json(&record)).unwrap();
        assert_eq!(back, record);
        let s = back.sampled_mse.unwrap();
        assert!(
            (s.mean - 0.02).abs() < 1e-15 && (s.std - 0.01).abs() < 1e-15,
            "{s:?}"
        );
    }
}
