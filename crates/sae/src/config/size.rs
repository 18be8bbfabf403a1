//! The counts a configuration implies (feature-map sides, neurons per frame, parameters,
//! frames per step, optimizer steps of a run), each computed with checked arithmetic so
//! that a huge size is refused by name instead of wrapping around or overflowing later.

use super::{Config, ModelKind, SIDE};

/// What one step of a configuration's network handles, counted before anything is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sizes {
    /// Every synaptic layer's name and output neurons (or units) per frame, in network
    /// order (as `nn::plan` builds them).
    pub layers: Vec<(String, u64)>,
    /// Neurons per frame over the input and every layer.
    pub neurons: u64,
    /// Weights and biases.
    pub parameters: u64,
    /// Frames per step: `T · batch` for the spiking model, `batch` for the baselines.
    pub frames: u64,
    /// `frames · neurons`: the values of one tensor per layer over a step.
    pub values: u64,
}

/// `a · b`, or an error that starts with `what` (the field and its value) and shows the
/// product that overflowed.
fn mul(a: u64, b: u64, what: impl FnOnce() -> String) -> Result<u64, String> {
    a.checked_mul(b)
        .ok_or_else(|| format!("{}: {a} × {b} is more than 2^64 − 1", what()))
}

/// `a + b`, like [`mul`].
fn add(a: u64, b: u64, what: impl FnOnce() -> String) -> Result<u64, String> {
    a.checked_add(b)
        .ok_or_else(|| format!("{}: {a} + {b} is more than 2^64 − 1", what()))
}

impl Config {
    /// The side of the square feature map after each encoder conv, the input's (28)
    /// first; an error when a kernel is larger than the (padded) map it slides over or
    /// the padded map's side overflows.
    pub fn feature_sides(&self) -> Result<Vec<usize>, String> {
        let mut sides = vec![SIDE];
        for _ in &self.channels {
            let side = sides[sides.len() - 1];
            let padded = self
                .padding
                .checked_mul(2)
                .and_then(|p| p.checked_add(side))
                .ok_or_else(|| {
                    format!(
                        "padding = {}: the padded side {side} + 2 × {} is more than {}",
                        self.padding,
                        self.padding,
                        usize::MAX
                    )
                })?;
            if padded < self.kernel {
                return Err(format!(
                    "kernel = {}: larger than the {side}×{side} feature map (padding {})",
                    self.kernel, self.padding
                ));
            }
            sides.push((padded - self.kernel) / self.stride + 1);
        }
        Ok(sides)
    }

    /// The network's sizes (see [`Sizes`]); an error names the field whose value makes a
    /// count overflow 64 bits.
    pub fn sizes(&self) -> Result<Sizes, String> {
        let sides: Vec<u64> = self.feature_sides()?.iter().map(|&s| s as u64).collect();
        let channels: Vec<u64> = self.channels.iter().map(|&c| c as u64).collect();
        let (&last, n) = (
            channels
                .last()
                .ok_or("channels = []: need at least one layer")?,
            sides.len(),
        );
        let (k, latent) = (self.kernel as u64, self.latent as u64);
        let ch = || format!("channels = {:?}", self.channels);
        let area = |side: u64| {
            mul(side, side, || {
                format!(
                    "padding = {}: a {side}×{side} feature map (kernel {}, stride {})",
                    self.padding, self.kernel, self.stride
                )
            })
        };
        let k2 = mul(k, k, || {
            format!("kernel = {}: kernel × kernel", self.kernel)
        })?;
        let mut layers = vec![];
        let mut parameters = 0u64;
        // A layer of `outputs` units per frame with a weight of `weights` and one bias per
        // output channel.
        let mut push = |name: String, outputs: u64, weights: u64, biases: u64| {
            layers.push((name, outputs));
            let p = add(weights, biases, ch)?;
            parameters = add(parameters, p, ch)?;
            Ok::<_, String>(())
        };
        let mut c_in = 1;
        for (i, &c_out) in channels.iter().enumerate() {
            let name = format!("conv{}", i + 1);
            let outputs = mul(c_out, area(sides[i + 1])?, || {
                format!("{}: {name}'s neurons (channels × side²)", ch())
            })?;
            let weights = mul(mul(c_out, c_in, ch)?, k2, || {
                format!("{}: {name}'s weights (c_out × c_in × kernel²)", ch())
            })?;
            push(name, outputs, weights, c_out)?;
            c_in = c_out;
        }
        let flat = mul(last, area(sides[n - 1])?, || {
            format!("{}: flattened features (channels × side²)", ch())
        })?;
        let fc = mul(latent, flat, || {
            format!(
                "latent = {}: latent × flattened features (channels {:?})",
                self.latent, self.channels
            )
        })?;
        let heads: &[&str] = match self.model {
            ModelKind::Vae => &["mu", "logvar"],
            ModelKind::Sae | ModelKind::Ae => &["latent"],
        };
        for head in heads {
            push(head.to_string(), latent, fc, latent)?;
        }
        push("decoder_fc".into(), flat, fc, flat)?;
        let outs: Vec<u64> = channels.iter().rev().skip(1).copied().chain([1]).collect();
        for (i, &c_out) in outs.iter().enumerate() {
            let name = if i + 1 == outs.len() {
                "output".to_string()
            } else {
                format!("deconv{}", i + 1)
            };
            let outputs = mul(c_out, area(sides[n - 2 - i])?, ch)?;
            let weights = mul(mul(c_in, c_out, ch)?, k2, ch)?;
            push(name, outputs, weights, c_out)?;
            c_in = c_out;
        }
        let input = (SIDE * SIDE) as u64;
        let neurons = layers
            .iter()
            .try_fold(input, |sum, (_, v)| add(sum, *v, ch))?;
        let steps = match self.model {
            ModelKind::Sae => self.steps as u64,
            ModelKind::Ae | ModelKind::Vae => 1,
        };
        let frames = mul(steps, self.batch as u64, || {
            format!(
                "steps = {}: steps × batch (batch = {})",
                self.steps, self.batch
            )
        })?;
        let values = mul(frames, neurons, || {
            format!(
                "steps = {}: steps × batch × neurons per frame (batch = {}, channels = {:?}, \
                 latent = {})",
                self.steps, self.batch, self.channels, self.latent
            )
        })?;
        Ok(Sizes {
            layers,
            neurons,
            parameters,
            frames,
            values,
        })
    }

    /// Optimizer steps of the whole run on `n_train` training images:
    /// `⌈n_train / batch⌉ · epochs`; an error when that (or the images it draws,
    /// `n_train · epochs`) is more than 2^64 − 1, or when it is 0.
    pub fn total_steps(&self, n_train: usize) -> Result<u64, String> {
        if n_train == 0 || self.batch == 0 || self.epochs == 0 {
            return Err(format!(
                "epochs = {}: {n_train} training images in batches of {} make no step",
                self.epochs, self.batch
            ));
        }
        let per_epoch = n_train.div_ceil(self.batch) as u64;
        let epochs = self.epochs as u64;
        let what = || {
            format!(
                "epochs = {}: the run's steps ({n_train} images in batches of {} per epoch)",
                self.epochs, self.batch
            )
        };
        let total = mul(per_epoch, epochs, what)?;
        mul(n_train as u64, epochs, || {
            format!(
                "epochs = {}: the images drawn (images × epochs)",
                self.epochs
            )
        })?;
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::config::{ConfigArgs, Preset, Surrogate, Workload, resolve};

    /// The error of `cfg` after `f`, which must start with `field`.
    fn refused(f: impl FnOnce(&mut Config), field: &str) -> String {
        let mut c = Config::paper();
        f(&mut c);
        let err = c.validate().unwrap_err();
        assert!(err.starts_with(field), "{err}");
        err
    }

    #[test]
    fn the_paper_network_counts() {
        let s = Config::paper().sizes().unwrap();
        let neurons: Vec<u64> = s.layers.iter().map(|(_, n)| *n).collect();
        assert_eq!(neurons, [9216, 12800, 100, 12800, 9216, 784]);
        assert_eq!(s.neurons, 784 + 44_916);
        // conv1, conv2, latent, decoder_fc, deconv1, output: weights and biases.
        let p = (16 * 25 + 16)
            + (32 * 16 * 25 + 32)
            + (100 * 12800 + 100)
            + (12800 * 100 + 12800)
            + (32 * 16 * 25 + 16)
            + (16 * 25 + 1);
        assert_eq!(s.parameters, p);
        assert_eq!(s.frames, 4000);
        assert_eq!(s.values, 4000 * 45_700);
        let vae = Config {
            model: ModelKind::Vae,
            ..Config::paper()
        };
        let v = vae.sizes().unwrap();
        assert_eq!((v.frames, v.parameters), (40, p + 100 * 12800 + 100));
    }

    #[test]
    fn huge_sizes_are_refused_by_name() {
        let max = usize::MAX;
        let err = refused(|c| c.steps = max, "steps = 18446744073709551615");
        assert!(err.contains("batch = 40"), "{err}");
        refused(|c| c.batch = max, "steps = 100: steps × batch");
        refused(
            |c| c.batch = 1 << 48,
            "steps = 100: steps × batch × neurons",
        );
        refused(
            |c| c.batch = 3_000_000_000_000,
            "steps = 100: a tile's activations",
        );
        let err = refused(|c| c.channels = vec![max, max], "channels = [");
        assert!(err.contains(&max.to_string()), "{err}");
        refused(|c| c.channels = vec![1 << 40, 1 << 40], "channels = [");
        refused(|c| c.latent = max, "latent = 18446744073709551615");
        refused(|c| c.padding = max, "padding = 18446744073709551615");
        refused(|c| c.padding = 1 << 40, "padding = 1099511627776");
        refused(|c| c.kernel = max, "kernel = 18446744073709551615");
        // A huge stride shrinks every map to 1×1: valid, and small.
        let c = Config {
            stride: max,
            channels: vec![16],
            ..Config::paper()
        };
        c.validate().unwrap();
        assert_eq!(c.feature_sides().unwrap(), [28, 1]);
        // The baselines have no time steps: T does not multiply their frames.
        let ae = Config {
            model: ModelKind::Ae,
            steps: max,
            ..Config::paper()
        };
        assert_eq!(ae.sizes().unwrap().frames, 40);
        // Above i64::MAX a value cannot be written to config.toml: refused by name.
        for (flags, name) in [
            (
                ConfigArgs {
                    seed: Some(u64::MAX),
                    ..ConfigArgs::default()
                },
                "seed = 18446744073709551615",
            ),
            (
                ConfigArgs {
                    channels: Some(vec![4, max]),
                    ..ConfigArgs::default()
                },
                "channels = [4,18446744073709551615]",
            ),
        ] {
            let err = resolve(None, &flags).unwrap_err();
            assert!(err.starts_with(name), "{err}");
            assert!(err.contains("TOML"), "{err}");
        }
    }

    #[test]
    fn the_run_length_is_checked() {
        let c = Config::paper();
        assert_eq!(c.total_steps(60_000).unwrap(), 1500 * 10);
        assert_eq!(c.total_steps(41).unwrap(), 2 * 10);
        for (epochs, n) in [(usize::MAX, 60_000), (usize::MAX / 2, 1 << 20)] {
            let c = Config {
                epochs,
                ..c.clone()
            };
            let err = c.total_steps(n).unwrap_err();
            assert!(err.starts_with(&format!("epochs = {epochs}")), "{err}");
            assert!(err.contains("2^64"), "{err}");
        }
        // One image per step: the steps fit, the images drawn do too.
        let one = Config {
            epochs: usize::MAX,
            batch: 1,
            ..c.clone()
        };
        assert_eq!(one.total_steps(1).unwrap(), u64::MAX);
        // No images, or no epochs: no step at all, an error rather than a run that does nothing.
        assert!(c.total_steps(0).unwrap_err().starts_with("epochs = 10"));
        let none = Config { epochs: 0, ..c };
        assert!(none.total_steps(100).unwrap_err().starts_with("epochs = 0"));
    }

    fn size() -> impl Strategy<Value = usize> {
        prop_oneof![
            Just(0),
            Just(1),
            2..64usize,
            Just(u32::MAX as usize),
            Just(i64::MAX as usize),
            Just(usize::MAX),
            any::<usize>(),
        ]
    }

    fn float() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(0.0),
            Just(-1.0),
            Just(1e300),
            -2.0..2.0f64,
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Extreme values as flags or as a file's keys: an error or a configuration whose
        /// counts and memory estimate are all defined, never a panic.
        #[test]
        fn hostile_configurations_never_panic(
            sizes in proptest::collection::vec(proptest::option::of(size()), 9),
            channels in proptest::option::of(proptest::collection::vec(size(), 0..8)),
            floats in proptest::collection::vec(proptest::option::of(float()), 19),
            seed in proptest::option::of(any::<u64>()),
            (model, surrogate, preset) in (0..4usize, 0..5usize, 0..3usize),
            n_train in size(),
        ) {
            let f = |i: usize| floats[i];
            let args = ConfigArgs {
                preset: [None, Some(Preset::Quick), Some(Preset::Paper)][preset],
                model: [None, Some(ModelKind::Sae), Some(ModelKind::Ae), Some(ModelKind::Vae)]
                    [model],
                surrogate: [
                    None,
                    Some(Surrogate::Membrane),
                    Some(Surrogate::FastSigmoid),
                    Some(Surrogate::Arctan),
                    Some(Surrogate::Triangle),
                ][surrogate],
                steps: sizes[0],
                batch: sizes[1],
                epochs: sizes[2],
                train_images: sizes[3],
                test_images: sizes[4],
                kernel: sizes[5],
                stride: sizes[6],
                padding: sizes[7],
                latent: sizes[8],
                channels,
                seed,
                lr: f(0),
                clip_value: f(1),
                input_scale: f(2),
                input_noise: f(3),
                leak: f(4),
                threshold: f(5),
                slope: f(6),
                burst_l1: f(7),
                burst_l2: f(8),
                potential_l1: f(9),
                potential_l2: f(10),
                example_l2: f(11),
                neuron_l2: f(12),
                neuron_l1: f(13),
                weight_l1: f(14),
                weight_l2: f(15),
                burst_threshold: f(16),
                beta: f(17),
                weight_decay: f(18),
                ..ConfigArgs::default()
            };
            let none = ConfigArgs::default();
            for (file, flags) in [(None, &args), (Some(&args), &none)] {
                let Ok(cfg) = resolve(file, flags) else { continue };
                cfg.to_toml();
                for n in [0, 1, 60_000, n_train] {
                    let _ = cfg.total_steps(n);
                }
                cfg.sizes().unwrap();
                for w in [Workload::Train, Workload::Infer] {
                    cfg.estimate_bytes(w).unwrap();
                    let _ = cfg.check_memory_within(w, 8 << 30);
                }
            }
        }
    }
}
