//! Every hyper-parameter of a run ([`Config`]), with the `quick` and `paper` presets,
//! validation that names the bad field, its value and what it must be, the named choices
//! ([`names`]), the layers a run's configuration is resolved from ([`overlay`]), the
//! counts it implies ([`size`]) and the memory it needs ([`memory`]).

pub mod memory;
pub mod names;
pub mod overlay;
pub mod size;

use serde::{Deserialize, Serialize};

pub use memory::Workload;
pub use names::{Encoder, Floor, ModelKind, Preset, Readout, Reset, Surrogate};
pub use overlay::{ConfigArgs, resolve};
pub use size::Sizes;

/// MNIST's image side.
pub const SIDE: usize = 28;

/// The regularizer coefficients of `model-spec.md`; all zero is the unregularized model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Coefficients {
    /// `λ1 · Σ|S/T| / (B·N)` per layer.
    pub burst_l1: f32,
    /// `λ2 · Σ(S/T)² / (B·N)` per layer.
    pub burst_l2: f32,
    /// `β1 · Σ|C/T| / (B·N)` per layer, `C = c[T−1]`.
    pub potential_l1: f32,
    /// `β2 · Σ(C/T)² / (B·N)` per layer.
    pub potential_l2: f32,
    /// `e2 · Σ_b(Σ_n S_bn/T)² / (B·N)`, latent layer only.
    pub example_l2: f32,
    /// `n2 · Σ_n(Σ_b S_bn/T)² / (B·N)`, latent layer only.
    pub neuron_l2: f32,
    /// `n1 · Σ S/T / (B·N)`, latent layer only.
    pub neuron_l1: f32,
    /// `w1 · Σ|W|` over all weights.
    pub weight_l1: f32,
    /// `w2 · Σ W²` over all weights.
    pub weight_l2: f32,
}

impl Coefficients {
    /// `(name, value)` of every coefficient, in a fixed order.
    pub fn named(&self) -> [(&'static str, f32); 9] {
        [
            ("burst_l1", self.burst_l1),
            ("burst_l2", self.burst_l2),
            ("potential_l1", self.potential_l1),
            ("potential_l2", self.potential_l2),
            ("example_l2", self.example_l2),
            ("neuron_l2", self.neuron_l2),
            ("neuron_l1", self.neuron_l1),
            ("weight_l1", self.weight_l1),
            ("weight_l2", self.weight_l2),
        ]
    }

    /// Whether any coefficient is nonzero.
    pub fn any(&self) -> bool {
        self.named().iter().any(|(_, v)| *v != 0.0)
    }
}

/// A run's configuration: what `config.toml` holds, one key per field (the
/// coefficients' keys at the top level).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The network.
    pub model: ModelKind,
    /// Time steps per image `T`.
    pub steps: usize,
    /// Images per mini-batch.
    pub batch: usize,
    /// Training epochs.
    pub epochs: usize,
    /// Adam learning rate.
    pub lr: f32,
    /// Gradient clipping by value (0: off).
    pub clip_value: f32,
    /// Seed of initialization, shuffling and encoding.
    pub seed: u64,
    /// Training images used (0: all 60 000).
    pub train_images: usize,
    /// Test images evaluated (0: all 10 000).
    pub test_images: usize,
    /// Input encoder.
    pub encoder: Encoder,
    /// Input scale: rate (poisson) or current amplitude.
    pub input_scale: f32,
    /// Input noise `x ← (1−noise)·x + noise·u`.
    pub input_noise: f32,
    /// Membrane leak `λ`.
    pub leak: f32,
    /// Threshold `θ`.
    pub threshold: f32,
    /// What a spike does to the potential.
    pub reset: Reset,
    /// What holds a strongly inhibited potential up.
    pub floor: Floor,
    /// The spike's derivative in the backward pass.
    pub surrogate: Surrogate,
    /// Surrogate slope `k`.
    pub slope: f32,
    /// Output read-out.
    pub readout: Readout,
    /// Channels of the encoder's conv layers (the decoder mirrors them).
    pub channels: Vec<usize>,
    /// Square kernel size of every conv.
    pub kernel: usize,
    /// Conv stride.
    pub stride: usize,
    /// Conv padding.
    pub padding: usize,
    /// Latent neurons.
    pub latent: usize,
    /// Regularizer coefficients.
    #[serde(flatten)]
    pub coefficients: Coefficients,
    /// Mean firing rate (spikes per step) above which a neuron counts as bursting.
    pub burst_threshold: f32,
    /// VAE: weight of the KL term per image (β).
    pub beta: f32,
    /// AE: weight decay (AdamW-style L2 on the weights).
    pub weight_decay: f32,
    /// AE/VAE: the authors' variant, a ReLU output trained on MSE (default: sigmoid
    /// output trained on BCE).
    pub authors_ae: bool,
    /// Spiking model: steps per time tile. A pass runs the window through every layer
    /// this many steps at a time, the neurons' state carried from tile to tile, so its
    /// activity memory follows the tile, not `T`; results depend on it only in rounding.
    /// Absent from configurations written before it existed: the default.
    #[serde(default = "default_time_tile")]
    pub time_tile: usize,
}

/// The [`Config::time_tile`] of the presets and of configurations without one.
fn default_time_tile() -> usize {
    25
}

impl Default for Config {
    /// The `quick` preset.
    fn default() -> Self {
        Config::quick()
    }
}

impl Config {
    /// The paper's configuration (`model-spec.md`): T = 100, batch 40, Adam 5e-4, clip 50,
    /// 10 epochs, Poisson input at 0.2, max-potential read-out, membrane surrogate, reset
    /// to zero, the authors' floor, λ = 0.99, θ = 1.
    pub fn paper() -> Self {
        Config {
            model: ModelKind::Sae,
            steps: 100,
            batch: 40,
            epochs: 10,
            lr: 5e-4,
            clip_value: 50.0,
            seed: 0,
            train_images: 0,
            test_images: 0,
            encoder: Encoder::Poisson,
            input_scale: 0.2,
            input_noise: 0.0,
            leak: 0.99,
            threshold: 1.0,
            reset: Reset::Zero,
            floor: Floor::Authors,
            surrogate: Surrogate::Membrane,
            slope: 5.0,
            readout: Readout::MaxPotential,
            channels: vec![16, 32],
            kernel: 5,
            stride: 1,
            padding: 0,
            latent: 100,
            coefficients: Coefficients::default(),
            burst_threshold: 0.5,
            beta: 1.0,
            weight_decay: 0.0,
            authors_ae: false,
            time_tile: default_time_tile(),
        }
    }

    /// A run that gives a meaningful reconstruction in minutes on 2 cores (its figures are
    /// in the README): the paper's network, encoder, read-out and surrogate at T = 8 with
    /// the input rate scaled to 1 (so an image still brings up to T·scale = 8 spikes per
    /// pixel), on 12 000 training images for 1 epoch at lr 1e-3, with the burst-L2 and
    /// potential-L2 regularizers at 0.01 each. Unregularized, this miniature loses most
    /// latent neurons and stalls, as the paper reports for its unregularized model.
    pub fn quick() -> Self {
        Config {
            steps: 8,
            batch: 32,
            epochs: 1,
            lr: 1e-3,
            train_images: 12_000,
            test_images: 2_000,
            input_scale: 1.0,
            floor: Floor::None,
            coefficients: Coefficients {
                burst_l2: 0.01,
                potential_l2: 0.01,
                ..Coefficients::default()
            },
            ..Config::paper()
        }
    }

    /// Checks every field; the error names the field, the value and what it must be.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("steps", self.steps),
            ("batch", self.batch),
            ("epochs", self.epochs),
            ("kernel", self.kernel),
            ("stride", self.stride),
            ("latent", self.latent),
            ("time_tile", self.time_tile),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(format!("{name} = 0: must be at least 1"));
            }
        }
        let non_negative = [
            ("lr", self.lr),
            ("clip_value", self.clip_value),
            ("input_scale", self.input_scale),
            ("threshold", self.threshold),
            ("slope", self.slope),
            ("beta", self.beta),
            ("weight_decay", self.weight_decay),
        ];
        for (name, v) in non_negative.into_iter().chain(self.coefficients.named()) {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("{name} = {v}: must be a finite number ≥ 0"));
            }
        }
        if self.lr == 0.0 {
            return Err(format!("lr = {}: must be > 0", self.lr));
        }
        if self.threshold == 0.0 {
            return Err(format!("threshold = {}: must be > 0", self.threshold));
        }
        for (name, v) in [
            ("leak", self.leak),
            ("input_noise", self.input_noise),
            ("burst_threshold", self.burst_threshold),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} = {v}: must be in [0, 1]"));
            }
        }
        if self.channels.is_empty() || self.channels.contains(&0) {
            return Err(format!(
                "channels = {:?}: need at least one layer, each ≥ 1 channel",
                self.channels
            ));
        }
        // Every derived count, and the bytes a training step needs, must fit 64 bits.
        self.estimate_bytes(Workload::Train)?;
        Ok(())
    }

    /// The configuration with [`Config::time_tile`] as it acts: a tile longer than the
    /// window is one tile of all `T` steps, so `min(time_tile, steps)`. Two configurations
    /// that differ only in a tile at least as long as the window run identically.
    pub fn effective(&self) -> Config {
        Config {
            time_tile: self.time_tile.min(self.steps),
            ..self.clone()
        }
    }

    /// The preset a name stands for.
    pub fn preset(p: Preset) -> Self {
        match p {
            Preset::Quick => Config::quick(),
            Preset::Paper => Config::paper(),
        }
    }

    /// The neurons' parameters.
    pub fn neuron(&self) -> kernels::lif::LifParams {
        kernels::lif::LifParams {
            leak: self.leak,
            threshold: self.threshold,
            reset: self.reset.into(),
            floor: self.floor.into(),
            surrogate: self.surrogate.with_slope(self.slope),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid() {
        Config::paper().validate().unwrap();
        Config::quick().validate().unwrap();
    }

    /// A tile at least as long as the window is one tile of all its steps.
    #[test]
    fn a_tile_longer_than_the_window_acts_as_the_window() {
        let short = Config {
            steps: 10,
            ..Config::paper()
        };
        assert_eq!(short.effective().time_tile, 10);
        let one_tile = Config {
            time_tile: 10,
            ..short.clone()
        };
        assert_eq!(short.effective(), one_tile.effective());
        assert_eq!(Config::paper().effective().time_tile, 25);
    }

    /// A run folder's `config.toml` written before `time_tile` existed reads as one tile
    /// of all its steps (how it ran); any other file without the key gets the default.
    #[test]
    fn a_run_written_before_time_tiles_ran_as_one_tile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "steps = 100\n").unwrap();
        let run = ConfigArgs::read_run(&path).unwrap();
        assert_eq!(
            resolve(Some(&run), &ConfigArgs::default())
                .unwrap()
                .time_tile,
            100
        );
        let file = ConfigArgs::read(&path).unwrap();
        assert_eq!(
            resolve(Some(&file), &ConfigArgs::default())
                .unwrap()
                .time_tile,
            25
        );
        std::fs::write(&path, "steps = 100\ntime_tile = 7\n").unwrap();
        assert_eq!(ConfigArgs::read_run(&path).unwrap().time_tile, Some(7));
    }

    #[test]
    fn bad_values_name_the_field() {
        let bad = |f: fn(&mut Config), field: &str| {
            let mut c = Config::quick();
            f(&mut c);
            let err = c.validate().unwrap_err();
            assert!(err.starts_with(field), "{err}");
        };
        bad(|c| c.steps = 0, "steps = 0");
        bad(|c| c.batch = 0, "batch = 0");
        bad(|c| c.coefficients.burst_l2 = -1.0, "burst_l2 = -1");
        bad(|c| c.lr = f32::NAN, "lr = NaN");
        bad(|c| c.leak = 1.5, "leak = 1.5");
        bad(|c| c.kernel = 40, "kernel = 40");
        bad(|c| c.time_tile = 0, "time_tile = 0");
    }
}
