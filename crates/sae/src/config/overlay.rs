//! Where a run's [`Config`] comes from: a preset, then a TOML file, then the flags, each
//! layer overriding the keys it sets in the one before. A file and the flags are both a
//! [`ConfigArgs`] (every field optional); resolving lays them over the preset's keys in
//! one pass and reads the result back as a `Config`.

use std::path::Path;

use clap::Args;
use serde::{Deserialize, Serialize};

use super::{Coefficients, Config, Encoder, Floor, ModelKind, Preset, Readout, Reset, Surrogate};

/// One layer of the configuration: every [`Config`] field as an optional flag and TOML
/// key (the same name, `_` in keys and `-` in flags); unset ones leave the layer below
/// as it is. Floats are read as `f64` and rounded to the `f32` they configure.
#[derive(Args, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfigArgs {
    /// Starting point of the configuration: quick (minutes on 2 cores) or paper.
    #[arg(long, value_enum, help_heading = "Configuration")]
    pub preset: Option<Preset>,
    /// The network: sae (spiking), ae or vae (non-spiking baselines).
    #[arg(long, value_enum, help_heading = "Configuration")]
    pub model: Option<ModelKind>,
    /// Time steps per image T.
    #[arg(long, help_heading = "Configuration")]
    pub steps: Option<usize>,
    /// Images per mini-batch.
    #[arg(long, help_heading = "Configuration")]
    pub batch: Option<usize>,
    /// Training epochs.
    #[arg(long, help_heading = "Configuration")]
    pub epochs: Option<usize>,
    /// Adam learning rate.
    #[arg(long, help_heading = "Configuration")]
    pub lr: Option<f64>,
    /// Gradient clipping by value (0: off).
    #[arg(long, help_heading = "Configuration")]
    pub clip_value: Option<f64>,
    /// Seed of initialization, data order and input encoding.
    #[arg(long, help_heading = "Configuration")]
    pub seed: Option<u64>,
    /// Training images used (0: all 60 000).
    #[arg(long, help_heading = "Configuration")]
    pub train_images: Option<usize>,
    /// Test images evaluated (0: all 10 000).
    #[arg(long, help_heading = "Configuration")]
    pub test_images: Option<usize>,
    /// Input encoder.
    #[arg(long, value_enum, help_heading = "Configuration")]
    pub encoder: Option<Encoder>,
    /// Input scale: Poisson rate or current amplitude.
    #[arg(long, help_heading = "Configuration")]
    pub input_scale: Option<f64>,
    /// Input noise: x ← (1−noise)·x + noise·u.
    #[arg(long, help_heading = "Configuration")]
    pub input_noise: Option<f64>,
    /// Membrane leak λ.
    #[arg(long, help_heading = "Configuration")]
    pub leak: Option<f64>,
    /// Firing threshold θ.
    #[arg(long, help_heading = "Configuration")]
    pub threshold: Option<f64>,
    /// Reset after a spike.
    #[arg(long, value_enum, help_heading = "Configuration")]
    pub reset: Option<Reset>,
    /// Membrane floor.
    #[arg(long, value_enum, help_heading = "Configuration")]
    pub floor: Option<Floor>,
    /// Spike derivative in the backward pass.
    #[arg(long, value_enum, help_heading = "Configuration")]
    pub surrogate: Option<Surrogate>,
    /// Surrogate slope k.
    #[arg(long, help_heading = "Configuration")]
    pub slope: Option<f64>,
    /// Output read-out.
    #[arg(long, value_enum, help_heading = "Configuration")]
    pub readout: Option<Readout>,
    /// Channels of the encoder's conv layers, e.g. 16,32 (the decoder mirrors them).
    #[arg(long, value_delimiter = ',', num_args = 1.., help_heading = "Configuration")]
    pub channels: Option<Vec<usize>>,
    /// Square kernel size of every conv.
    #[arg(long, help_heading = "Configuration")]
    pub kernel: Option<usize>,
    /// Conv stride.
    #[arg(long, help_heading = "Configuration")]
    pub stride: Option<usize>,
    /// Conv padding.
    #[arg(long, help_heading = "Configuration")]
    pub padding: Option<usize>,
    /// Latent neurons.
    #[arg(long, help_heading = "Configuration")]
    pub latent: Option<usize>,
    /// Regularizer λ1·Σ|S/T|/(B·N), every layer.
    #[arg(long, help_heading = "Regularizers")]
    pub burst_l1: Option<f64>,
    /// Regularizer λ2·Σ(S/T)²/(B·N), every layer.
    #[arg(long, help_heading = "Regularizers")]
    pub burst_l2: Option<f64>,
    /// Regularizer β1·Σ|C/T|/(B·N), every layer.
    #[arg(long, help_heading = "Regularizers")]
    pub potential_l1: Option<f64>,
    /// Regularizer β2·Σ(C/T)²/(B·N), every layer.
    #[arg(long, help_heading = "Regularizers")]
    pub potential_l2: Option<f64>,
    /// Regularizer e2·Σ_b(Σ_n S/T)²/(B·N), latent layer.
    #[arg(long, help_heading = "Regularizers")]
    pub example_l2: Option<f64>,
    /// Regularizer n2·Σ_n(Σ_b S/T)²/(B·N), latent layer.
    #[arg(long, help_heading = "Regularizers")]
    pub neuron_l2: Option<f64>,
    /// Regularizer n1·Σ S/T/(B·N), latent layer.
    #[arg(long, help_heading = "Regularizers")]
    pub neuron_l1: Option<f64>,
    /// Regularizer w1·Σ|W|.
    #[arg(long, help_heading = "Regularizers")]
    pub weight_l1: Option<f64>,
    /// Regularizer w2·ΣW².
    #[arg(long, help_heading = "Regularizers")]
    pub weight_l2: Option<f64>,
    /// Mean firing rate (spikes per step) above which a neuron counts as bursting.
    #[arg(long, help_heading = "Configuration")]
    pub burst_threshold: Option<f64>,
    /// VAE: weight β of the KL term per image.
    #[arg(long, help_heading = "Configuration")]
    pub beta: Option<f64>,
    /// Decoupled (AdamW) weight decay; meant for the AE baseline, applied to any model.
    #[arg(long, help_heading = "Configuration")]
    pub weight_decay: Option<f64>,
    /// AE/VAE: the authors' variant (ReLU output trained on MSE).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", help_heading = "Configuration")]
    pub authors_ae: Option<bool>,
    /// Spiking model: steps per time tile (a pass's memory follows the tile, not T).
    #[arg(long, help_heading = "Configuration")]
    pub time_tile: Option<usize>,
}

impl ConfigArgs {
    /// Every field of `cfg` as a set flag (no preset): the layer that alone gives `cfg`.
    ///
    /// Exhaustive on purpose, in both directions: a `Config` field without a flag (or a
    /// flag without a field) does not compile here.
    pub fn of(cfg: &Config) -> Self {
        let Config {
            model,
            steps,
            batch,
            epochs,
            lr,
            clip_value,
            seed,
            train_images,
            test_images,
            encoder,
            input_scale,
            input_noise,
            leak,
            threshold,
            reset,
            floor,
            surrogate,
            slope,
            readout,
            channels,
            kernel,
            stride,
            padding,
            latent,
            coefficients,
            burst_threshold,
            beta,
            weight_decay,
            authors_ae,
            time_tile,
        } = cfg.clone();
        let Coefficients {
            burst_l1,
            burst_l2,
            potential_l1,
            potential_l2,
            example_l2,
            neuron_l2,
            neuron_l1,
            weight_l1,
            weight_l2,
        } = coefficients;
        // The shortest decimal that reads back as the same f32, as `config.toml` writes it.
        let f = |v: f32| v.to_string().parse::<f64>().ok();
        ConfigArgs {
            preset: None,
            model: Some(model),
            steps: Some(steps),
            batch: Some(batch),
            epochs: Some(epochs),
            lr: f(lr),
            clip_value: f(clip_value),
            seed: Some(seed),
            train_images: Some(train_images),
            test_images: Some(test_images),
            encoder: Some(encoder),
            input_scale: f(input_scale),
            input_noise: f(input_noise),
            leak: f(leak),
            threshold: f(threshold),
            reset: Some(reset),
            floor: Some(floor),
            surrogate: Some(surrogate),
            slope: f(slope),
            readout: Some(readout),
            channels: Some(channels),
            kernel: Some(kernel),
            stride: Some(stride),
            padding: Some(padding),
            latent: Some(latent),
            burst_l1: f(burst_l1),
            burst_l2: f(burst_l2),
            potential_l1: f(potential_l1),
            potential_l2: f(potential_l2),
            example_l2: f(example_l2),
            neuron_l2: f(neuron_l2),
            neuron_l1: f(neuron_l1),
            weight_l1: f(weight_l1),
            weight_l2: f(weight_l2),
            burst_threshold: f(burst_threshold),
            beta: f(beta),
            weight_decay: f(weight_decay),
            authors_ae: Some(authors_ae),
            time_tile: Some(time_tile),
        }
    }

    /// Reads a run folder's `config.toml`: [`ConfigArgs::read`], where a file written
    /// before time tiles existed (no `time_tile`) gets one tile of all its steps, which is
    /// how that run went, so that it resumes bit for bit.
    pub fn read_run(path: &Path) -> Result<Self, String> {
        let mut layer = Self::read(path)?;
        if layer.time_tile.is_none() {
            layer.time_tile = layer.steps;
        }
        Ok(layer)
    }

    /// Reads a TOML file of [`ConfigArgs`] keys (unknown keys are errors naming them).
    pub fn read(path: &Path) -> Result<Self, String> {
        // A FIFO or a device is never opened (it could block or never end), nor a file
        // far larger than any configuration.
        let len = autograd::io::regular_file(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        if len > MAX_CONFIG_BYTES {
            return Err(format!(
                "{}: {len} bytes; a configuration file has at most {MAX_CONFIG_BYTES}",
                path.display()
            ));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// The largest configuration file read (every key of one is about 700 bytes).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

impl Config {
    /// The TOML text of `config.toml`: every key, floats as the shortest decimal that
    /// reads back as the same `f32` (`0.0005`, not `0.0005000000237…`).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a flat table of numbers and strings serializes")
    }
}

/// Refuses an integer of `layer` above `i64::MAX`, the largest a TOML table (and so a
/// run's `config.toml`) holds, naming its key and flag.
fn check_integers(layer: &ConfigArgs) -> Result<(), String> {
    let value = serde_json::to_value(layer).map_err(|e| format!("configuration: {e}"))?;
    let too_big = |v: &serde_json::Value| v.as_u64().is_some_and(|n| n > i64::MAX as u64);
    for (key, v) in value.as_object().into_iter().flatten() {
        let big = match v {
            serde_json::Value::Array(items) => items.iter().any(too_big),
            v => too_big(v),
        };
        if big {
            return Err(format!(
                "{key} = {v}: more than {}, the largest integer a TOML file holds (--{})",
                i64::MAX,
                key.replace('_', "-")
            ));
        }
    }
    Ok(())
}

/// The configuration of a run: the preset (from the flags, else the file, else quick),
/// then the file's keys, then the flags'; validated. Errors name the field (and, for a
/// bad value, the flag).
pub fn resolve(file: Option<&ConfigArgs>, flags: &ConfigArgs) -> Result<Config, String> {
    let preset = flags
        .preset
        .or(file.and_then(|f| f.preset))
        .unwrap_or(Preset::Quick);
    let mut keys =
        toml::Table::try_from(Config::preset(preset)).expect("a configuration serializes");
    for layer in file.into_iter().chain([flags]) {
        check_integers(layer)?;
        // A layer's table holds only the keys it sets: TOML has no null, unset fields are left out.
        let mut set = toml::Table::try_from(layer).map_err(|e| format!("configuration: {e}"))?;
        set.remove("preset");
        keys.extend(set);
    }
    let cfg: Config = toml::Value::Table(keys)
        .try_into()
        .map_err(|e| format!("configuration: {e}"))?;
    cfg.validate().map_err(|e| {
        // validate's messages start with the field's name; name the flag too.
        let field = e.split(" = ").next().unwrap_or("");
        if !field.is_empty()
            && field
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
        {
            format!("{e} (--{})", field.replace('_', "-"))
        } else {
            e
        }
    })?;
    Ok(cfg)
}
