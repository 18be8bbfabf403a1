//! The `sae` command line: `train | eval | reconstruct | analyze | bench`.
//!
//! Every [`Config`] field is also a flag and a key of a TOML file ([`ConfigArgs`]); a run
//! resolves its configuration as preset, then `--config` file, then flags, each layer
//! overriding the one before. `sae` with no subcommand (and `cargo run --release` at the
//! workspace root) is `sae train` with the quick preset.
//!
//! Exit codes: 0 success, 1 runtime error (missing data, a checkpoint that does not fit,
//! a diverged run), 2 usage error (unknown option, invalid value or configuration),
//! 130 interrupted by Ctrl-C (after writing a checkpoint).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use clap::{Args, Parser, Subcommand};
use serde::{Deserialize, Serialize};

use crate::config::{Coefficients, Config, Encoder, ModelKind, Readout};
use crate::experiment::{self, Budget, Study};
use crate::train::{self, BenchMode, BenchOptions, RunError, RunOptions};

/// Every [`Config`] field as an optional flag and TOML key; unset ones leave the layer
/// below (file, preset) as it is.
#[derive(Args, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfigArgs {
    /// Starting point of the configuration: quick (minutes on 2 cores) or paper.
    #[arg(long, value_parser = ["quick", "paper"], help_heading = "Configuration")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// The network: sae (spiking), ae or vae (non-spiking baselines).
    #[arg(long, value_parser = ["sae", "ae", "vae"], help_heading = "Configuration")]
    pub model: Option<String>,
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
    #[arg(long, value_parser = ["poisson", "current", "latency"], help_heading = "Configuration")]
    pub encoder: Option<String>,
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
    #[arg(long, value_parser = ["zero", "subtract"], help_heading = "Configuration")]
    pub reset: Option<String>,
    /// Membrane floor.
    #[arg(long, value_parser = ["none", "clamp", "authors"], help_heading = "Configuration")]
    pub floor: Option<String>,
    /// Spike derivative in the backward pass.
    #[arg(long, value_parser = ["membrane", "fast-sigmoid", "arctan", "triangle"],
          help_heading = "Configuration")]
    pub surrogate: Option<String>,
    /// Surrogate slope k.
    #[arg(long, help_heading = "Configuration")]
    pub slope: Option<f64>,
    /// Output read-out.
    #[arg(long, value_parser = ["max-potential", "mean-potential", "spike-rate"],
          help_heading = "Configuration")]
    pub readout: Option<String>,
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
}

/// `v` as the shortest decimal that reads back as the same `f32`, so a written
/// configuration shows `0.0005`, not `0.0005000000237…`.
pub(crate) fn wide(v: f32) -> f64 {
    v.to_string()
        .parse()
        .expect("a float's decimal form parses")
}

/// The name of a model kind (`sae`, `ae`, `vae`).
pub fn model_name(m: ModelKind) -> &'static str {
    match m {
        ModelKind::Sae => "sae",
        ModelKind::Ae => "ae",
        ModelKind::Vae => "vae",
    }
}

fn encoder_name(e: Encoder) -> &'static str {
    match e {
        Encoder::Poisson => "poisson",
        Encoder::Current => "current",
        Encoder::Latency => "latency",
    }
}

fn readout_name(r: Readout) -> &'static str {
    match r {
        Readout::MaxPotential => "max-potential",
        Readout::MeanPotential => "mean-potential",
        Readout::SpikeRate => "spike-rate",
    }
}

/// The model a name stands for (`sae`, `ae`, `vae`).
pub fn parse_model(name: &str) -> Result<ModelKind, String> {
    match name {
        "sae" => Ok(ModelKind::Sae),
        "ae" => Ok(ModelKind::Ae),
        "vae" => Ok(ModelKind::Vae),
        _ => Err(format!("model = {name:?}: must be one of sae, ae, vae")),
    }
}

fn parse_encoder(name: &str) -> Result<Encoder, String> {
    match name {
        "poisson" => Ok(Encoder::Poisson),
        "current" => Ok(Encoder::Current),
        "latency" => Ok(Encoder::Latency),
        _ => Err(format!(
            "encoder = {name:?}: must be one of poisson, current, latency"
        )),
    }
}

fn parse_readout(name: &str) -> Result<Readout, String> {
    match name {
        "max-potential" => Ok(Readout::MaxPotential),
        "mean-potential" => Ok(Readout::MeanPotential),
        "spike-rate" => Ok(Readout::SpikeRate),
        _ => Err(format!(
            "readout = {name:?}: must be one of max-potential, mean-potential, spike-rate"
        )),
    }
}

/// The preset a name stands for.
pub fn preset(name: &str) -> Result<Config, String> {
    match name {
        "quick" => Ok(Config::quick()),
        "paper" => Ok(Config::paper()),
        _ => Err(format!("preset = {name:?}: must be quick or paper")),
    }
}

impl ConfigArgs {
    /// Every field of `cfg`, set (no preset): what a run writes as `config.toml`.
    pub fn from_config(cfg: &Config) -> Self {
        // Exhaustive on purpose: a new Config field fails to compile here until it has
        // a flag.
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
        ConfigArgs {
            preset: None,
            model: Some(model_name(model).into()),
            steps: Some(steps),
            batch: Some(batch),
            epochs: Some(epochs),
            lr: Some(wide(lr)),
            clip_value: Some(wide(clip_value)),
            seed: Some(seed),
            train_images: Some(train_images),
            test_images: Some(test_images),
            encoder: Some(encoder_name(encoder).into()),
            input_scale: Some(wide(input_scale)),
            input_noise: Some(wide(input_noise)),
            leak: Some(wide(leak)),
            threshold: Some(wide(threshold)),
            reset: Some(reset),
            floor: Some(floor),
            surrogate: Some(surrogate),
            slope: Some(wide(slope)),
            readout: Some(readout_name(readout).into()),
            channels: Some(channels),
            kernel: Some(kernel),
            stride: Some(stride),
            padding: Some(padding),
            latent: Some(latent),
            burst_l1: Some(wide(burst_l1)),
            burst_l2: Some(wide(burst_l2)),
            potential_l1: Some(wide(potential_l1)),
            potential_l2: Some(wide(potential_l2)),
            example_l2: Some(wide(example_l2)),
            neuron_l2: Some(wide(neuron_l2)),
            neuron_l1: Some(wide(neuron_l1)),
            weight_l1: Some(wide(weight_l1)),
            weight_l2: Some(wide(weight_l2)),
            burst_threshold: Some(wide(burst_threshold)),
            beta: Some(wide(beta)),
            weight_decay: Some(wide(weight_decay)),
            authors_ae: Some(authors_ae),
        }
    }

    /// Overwrites the fields of `cfg` this sets. Names outside their set of values are
    /// errors naming the field; numbers are checked later by [`Config::validate`].
    pub fn apply(&self, cfg: &mut Config) -> Result<(), String> {
        fn set<T: Clone>(dst: &mut T, v: &Option<T>) {
            if let Some(v) = v {
                *dst = v.clone();
            }
        }
        fn set_f(dst: &mut f32, v: Option<f64>) {
            if let Some(v) = v {
                *dst = v as f32;
            }
        }
        if let Some(m) = &self.model {
            cfg.model = parse_model(m)?;
        }
        if let Some(e) = &self.encoder {
            cfg.encoder = parse_encoder(e)?;
        }
        if let Some(r) = &self.readout {
            cfg.readout = parse_readout(r)?;
        }
        set(&mut cfg.steps, &self.steps);
        set(&mut cfg.batch, &self.batch);
        set(&mut cfg.epochs, &self.epochs);
        set_f(&mut cfg.lr, self.lr);
        set_f(&mut cfg.clip_value, self.clip_value);
        set(&mut cfg.seed, &self.seed);
        set(&mut cfg.train_images, &self.train_images);
        set(&mut cfg.test_images, &self.test_images);
        set_f(&mut cfg.input_scale, self.input_scale);
        set_f(&mut cfg.input_noise, self.input_noise);
        set_f(&mut cfg.leak, self.leak);
        set_f(&mut cfg.threshold, self.threshold);
        set(&mut cfg.reset, &self.reset);
        set(&mut cfg.floor, &self.floor);
        set(&mut cfg.surrogate, &self.surrogate);
        set_f(&mut cfg.slope, self.slope);
        set(&mut cfg.channels, &self.channels);
        set(&mut cfg.kernel, &self.kernel);
        set(&mut cfg.stride, &self.stride);
        set(&mut cfg.padding, &self.padding);
        set(&mut cfg.latent, &self.latent);
        let k = &mut cfg.coefficients;
        set_f(&mut k.burst_l1, self.burst_l1);
        set_f(&mut k.burst_l2, self.burst_l2);
        set_f(&mut k.potential_l1, self.potential_l1);
        set_f(&mut k.potential_l2, self.potential_l2);
        set_f(&mut k.example_l2, self.example_l2);
        set_f(&mut k.neuron_l2, self.neuron_l2);
        set_f(&mut k.neuron_l1, self.neuron_l1);
        set_f(&mut k.weight_l1, self.weight_l1);
        set_f(&mut k.weight_l2, self.weight_l2);
        set_f(&mut cfg.burst_threshold, self.burst_threshold);
        set_f(&mut cfg.beta, self.beta);
        set_f(&mut cfg.weight_decay, self.weight_decay);
        set(&mut cfg.authors_ae, &self.authors_ae);
        Ok(())
    }

    /// Reads a TOML file of [`ConfigArgs`] keys (unknown keys are errors).
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The file's TOML text.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a flat table of numbers and strings serializes")
    }
}

/// The configuration of a run: `preset` (from the flags, else the file, else quick), then
/// the file's keys, then the flags'; validated. Errors name the field (and, for a bad
/// value, the flag).
pub fn resolve(file: Option<&ConfigArgs>, flags: &ConfigArgs) -> Result<Config, String> {
    let preset_name = flags
        .preset
        .as_deref()
        .or(file.and_then(|f| f.preset.as_deref()))
        .unwrap_or("quick");
    let mut cfg = preset(preset_name)?;
    if let Some(file) = file {
        file.apply(&mut cfg)?;
    }
    flags.apply(&mut cfg)?;
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

/// Options every subcommand takes.
#[derive(Args, Clone, Debug, Default)]
pub struct Common {
    /// MNIST directory (default: $MNIST_DIR, else data/mnist).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Worker threads of the global rayon pool (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// `sae train`: the options of a training run.
#[derive(Args, Clone, Debug, Default)]
pub struct TrainArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// TOML file of configuration keys (flags override it, it overrides the preset).
    #[arg(long = "config", value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// Run name: the run is written to <runs-dir>/<name> (default: the UTC time).
    #[arg(long)]
    pub name: Option<String>,
    /// Folder of the runs.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Continue the run in this folder from its checkpoint (its config.toml is the file
    /// layer of the configuration).
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["name", "config_file"])]
    pub resume: Option<PathBuf>,
    /// Write a checkpoint every N optimizer steps, and at every epoch end [default: 100,
    /// or the resumed run's].
    #[arg(long, value_name = "N")]
    pub checkpoint_every: Option<u64>,
    /// Also evaluate every N optimizer steps (0: only at epoch ends) [default: 0, or the
    /// resumed run's].
    #[arg(long, value_name = "N")]
    pub eval_every: Option<u64>,
    /// Stop (with a checkpoint) once N optimizer steps are done in all, as if interrupted;
    /// `--resume` continues.
    #[arg(long, value_name = "N")]
    pub stop_after: Option<u64>,
    /// Start a new run from this checkpoint's parameters (fresh optimizer and position),
    /// e.g. to fine-tune at another T; its tensors must fit the model.
    #[arg(long, value_name = "CHECKPOINT", conflicts_with = "resume")]
    pub init: Option<PathBuf>,
    /// Training images encoded for the latent linear probe at each evaluation [default:
    /// 2000, or the resumed run's].
    #[arg(long, value_name = "N")]
    pub probe_images: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    common: Common,
}

/// `sae eval | reconstruct | analyze`: a trained run.
#[derive(Args, Clone, Debug)]
pub struct RunArgs {
    /// The run folder (holds config.toml and checkpoint.safetensors).
    pub run: PathBuf,
    /// Parameters to load instead of <run>/checkpoint.safetensors.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Output file (default: eval.json, reconstructions.png or report.md in the run).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Training images encoded for the latent linear probe.
    #[arg(long, default_value_t = 2000, value_name = "N")]
    pub probe_images: usize,
    /// Reconstruct: images shown.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub count: usize,
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    common: Common,
}

/// `sae bench`: timing of training and inference steps on the first MNIST training
/// images (random MNIST-shaped input if MNIST cannot be found).
#[derive(Args, Clone, Debug)]
pub struct BenchArgs {
    /// What to time: training steps, inference steps or both (an infer-only run's peak
    /// RSS holds no training memory).
    #[arg(long, value_parser = ["train", "infer", "both"], default_value = "both")]
    pub mode: String,
    /// Timed iterations of each kind (each T = 100 step of the paper network takes
    /// seconds; the median is reported).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub iters: usize,
    /// Untimed iterations first.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub warmup: usize,
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    common: Common,
}

/// `sae experiment`: a whole study.
#[derive(Args, Clone, Debug)]
pub struct ExperimentArgs {
    /// `paper`: the paper's rows, seeds and T sweep; `tune`: the regularizer-coefficient
    /// search on held-out training images.
    #[arg(value_parser = ["paper", "tune"])]
    pub study: String,
    /// `quick` (under 20 minutes on 2 cores), `full` (the paper's protocol) or `smoke` (a
    /// pipeline check on a few dozen images).
    #[arg(long, value_parser = ["quick", "full", "smoke"], default_value = "quick")]
    pub budget: String,
    /// Folder of the study [default: results/<study>-<budget>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// List the runs (row and run folder) and exit without training.
    #[arg(long)]
    pub plan: bool,
    /// No line per run on stderr.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    common: Common,
}

/// What to do.
#[derive(Subcommand, Clone, Debug)]
pub enum Command {
    /// Train a model; writes runs/<name>/ (config, metrics, checkpoint, figures, report).
    #[command(allow_negative_numbers = true)]
    Train(Box<TrainArgs>),
    /// Evaluate a run's checkpoint on the test images; prints and writes eval.json.
    #[command(allow_negative_numbers = true)]
    Eval(Box<RunArgs>),
    /// Draw test images and their reconstructions (reconstructions.png).
    #[command(allow_negative_numbers = true)]
    Reconstruct(Box<RunArgs>),
    /// Full analysis of a run: eval.json, every figure and report.md.
    #[command(allow_negative_numbers = true)]
    Analyze(Box<RunArgs>),
    /// Time training and inference steps; prints one JSON object.
    #[command(allow_negative_numbers = true)]
    Bench(Box<BenchArgs>),
    /// Run a whole study (`paper` or `tune`): every run, summary.json, report.md, figures;
    /// a second call skips finished runs and resumes interrupted ones.
    Experiment(Box<ExperimentArgs>),
}

/// The `sae` tool. Without a subcommand it trains (`sae train`), quick preset by default.
#[derive(Parser, Clone, Debug)]
#[command(
    name = "sae",
    version,
    about = "Regularized spiking convolutional auto-encoders on MNIST: train, evaluate, analyze, bench",
    args_conflicts_with_subcommands = true,
    allow_negative_numbers = true
)]
pub struct Cli {
    /// The subcommand (default: train).
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    train: TrainArgs,
}

/// Exit code of a usage error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code of a runtime error.
pub const EXIT_RUNTIME: u8 = 1;
/// Exit code after Ctrl-C.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Runs the tool on the process's arguments; returns the exit code.
pub fn main() -> ExitCode {
    autograd::memory::retain_freed_memory();
    run(std::env::args_os())
}

/// Runs the tool on `args` (the first is the program name); returns the exit code.
/// Errors are printed to stderr.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Sets up the global rayon pool.
fn threads(common: &Common) -> Result<(), RunError> {
    if let Some(n) = common.threads {
        if n == 0 {
            return Err(RunError::Usage(
                "threads = 0: must be at least 1 (--threads)".into(),
            ));
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| RunError::Usage(format!("--threads {n}: {e}")))?;
    }
    Ok(())
}

/// The stop flag Ctrl-C sets; a second Ctrl-C exits at once.
fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let presses = Arc::new(AtomicUsize::new(0));
    let f = flag.clone();
    // Failing to install the handler (one is already set, in tests) only loses the
    // graceful stop; training itself is unaffected.
    let _ = ctrlc::set_handler(move || {
        if presses.fetch_add(1, Ordering::SeqCst) > 0 {
            eprintln!("\nsecond Ctrl-C: exiting without a checkpoint");
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
        eprintln!("\nCtrl-C: stopping after this step and writing a checkpoint");
        f.store(true, Ordering::SeqCst);
    });
    flag
}

fn read_file_layer(path: Option<&Path>) -> Result<Option<ConfigArgs>, RunError> {
    path.map(ConfigArgs::read)
        .transpose()
        .map_err(RunError::Usage)
}

fn dispatch(cli: Cli) -> Result<(), RunError> {
    match cli.command {
        None => train_command(cli.train),
        Some(Command::Train(args)) => train_command(*args),
        Some(Command::Eval(args)) => run_command(*args, Kind::Eval),
        Some(Command::Reconstruct(args)) => run_command(*args, Kind::Reconstruct),
        Some(Command::Analyze(args)) => run_command(*args, Kind::Analyze),
        Some(Command::Experiment(args)) => experiment_command(*args),
        Some(Command::Bench(args)) => {
            threads(&args.common)?;
            let cfg = resolve(None, &args.config).map_err(RunError::Usage)?;
            let report = train::bench(
                &cfg,
                &BenchOptions {
                    iters: args.iters,
                    warmup: args.warmup,
                    mode: match args.mode.as_str() {
                        "train" => BenchMode::Train,
                        "infer" => BenchMode::Infer,
                        _ => BenchMode::Both,
                    },
                    data_dir: args.common.data_dir.clone(),
                },
            )?;
            println!("{}", report);
            Ok(())
        }
    }
}

fn experiment_command(args: ExperimentArgs) -> Result<(), RunError> {
    let study = Study::parse(&args.study).map_err(RunError::Usage)?;
    let budget = Budget::parse(&args.budget).map_err(RunError::Usage)?;
    if args.plan {
        for (row, run) in experiment::plan(study, budget) {
            println!("{row}\t{run}");
        }
        return Ok(());
    }
    threads(&args.common)?;
    let stop = interrupt_flag();
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("results/{}-{}", args.study, args.budget)));
    let ctx = experiment::Context {
        out: out.clone(),
        data_dir: args.common.data_dir.clone(),
        stop: &stop,
        verbose: !args.quiet,
    };
    let summary = experiment::run(study, budget, &ctx).inspect_err(|e| {
        if matches!(e, RunError::Interrupted { .. }) {
            eprintln!(
                "the study continues where it stopped with `sae experiment {} --budget {}{}`",
                args.study,
                args.budget,
                out_flag(&out, &args.study, &args.budget)
            );
        }
    })?;
    println!(
        "{}: {} rows from {} runs in {:.0} s; tables in {}",
        out.join("summary.json").display(),
        summary["rows"].as_array().map_or(0, Vec::len),
        summary["runs"],
        summary["call_wall_s"].as_f64().unwrap_or(0.0),
        out.join("report.md").display()
    );
    Ok(())
}

/// ` --out DIR` when `out` is not the study's default folder.
fn out_flag(out: &Path, study: &str, budget: &str) -> String {
    if out == Path::new(&format!("results/{study}-{budget}")) {
        String::new()
    } else {
        format!(" --out {}", out.display())
    }
}

fn train_command(args: TrainArgs) -> Result<(), RunError> {
    let stop = interrupt_flag();
    threads(&args.common)?;
    let (dir, file, resume) = match &args.resume {
        Some(dir) => {
            let file = read_file_layer(Some(&dir.join(train::CONFIG_FILE)))?;
            (dir.clone(), file, true)
        }
        None => {
            let file = read_file_layer(args.config_file.as_deref())?;
            let dir = match &args.name {
                Some(name) => {
                    if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".."
                    {
                        return Err(RunError::Usage(format!(
                            "--name {name:?}: must be a plain folder name"
                        )));
                    }
                    args.runs_dir.join(name)
                }
                // Two runs started in the same second get -2, -3, … appended.
                None => {
                    let stamp = train::timestamp_name();
                    (1..)
                        .map(|i| match i {
                            1 => args.runs_dir.join(&stamp),
                            _ => args.runs_dir.join(format!("{stamp}-{i}")),
                        })
                        .find(|d| !d.exists())
                        .expect("a free name")
                }
            };
            (dir, file, false)
        }
    };
    let cfg = resolve(file.as_ref(), &args.config).map_err(RunError::Usage)?;
    let opts = RunOptions {
        dir,
        data_dir: args.common.data_dir.clone(),
        resume,
        checkpoint_every: args.checkpoint_every,
        eval_every: args.eval_every,
        stop_after: args.stop_after,
        init: args.init.clone(),
        probe_images: args.probe_images,
        progress: !args.quiet,
    };
    let summary = train::train(&cfg, &opts, &stop)?;
    println!("{summary}");
    Ok(())
}

#[derive(Clone, Copy)]
enum Kind {
    Eval,
    Reconstruct,
    Analyze,
}

fn run_command(args: RunArgs, kind: Kind) -> Result<(), RunError> {
    threads(&args.common)?;
    let config_path = args.run.join(train::CONFIG_FILE);
    if !config_path.is_file() {
        return Err(RunError::Usage(format!(
            "{}: not a run folder (no {})",
            args.run.display(),
            train::CONFIG_FILE
        )));
    }
    let file = read_file_layer(Some(&config_path))?;
    let cfg = resolve(file.as_ref(), &args.config).map_err(RunError::Usage)?;
    let checkpoint = args
        .checkpoint
        .clone()
        .unwrap_or_else(|| args.run.join(train::CHECKPOINT_FILE));
    let loaded = train::load_run(&cfg, &checkpoint, args.common.data_dir.as_deref())?;
    match kind {
        Kind::Eval => {
            let eval = loaded.evaluate(args.probe_images);
            let json = serde_json::to_string_pretty(&eval.json()).expect("json");
            let out = args.out.unwrap_or_else(|| args.run.join(train::EVAL_FILE));
            train::write_text(&out, &(json.clone() + "\n"))?;
            println!("{json}");
        }
        Kind::Reconstruct => {
            let out = args
                .out
                .unwrap_or_else(|| args.run.join(train::RECONSTRUCTIONS_FILE));
            loaded.reconstruct(&out, args.count)?;
            println!("{}", out.display());
        }
        Kind::Analyze => {
            let eval = loaded.evaluate(args.probe_images);
            train::write_outputs(&args.run, &cfg, &eval, loaded.step, None)?;
            println!("{}", args.run.join(train::REPORT_FILE).display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("sae").chain(args.iter().copied()))
    }

    fn train_config(args: &[&str]) -> Result<Config, String> {
        let cli = parse(args).map_err(|e| e.to_string())?;
        let train = match cli.command {
            None => cli.train,
            Some(Command::Train(t)) => *t,
            _ => panic!("not train"),
        };
        resolve(None, &train.config)
    }

    #[test]
    fn no_arguments_is_quick_training() {
        assert_eq!(train_config(&[]).unwrap(), Config::quick());
        assert_eq!(train_config(&["train"]).unwrap(), Config::quick());
        assert_eq!(
            train_config(&["--preset", "paper"]).unwrap(),
            Config::paper()
        );
    }

    #[test]
    fn every_field_has_a_flag() {
        let cfg = train_config(&[
            "train",
            "--model",
            "vae",
            "--steps",
            "7",
            "--batch",
            "3",
            "--epochs",
            "2",
            "--lr",
            "0.01",
            "--clip-value",
            "5",
            "--seed",
            "9",
            "--train-images",
            "100",
            "--test-images",
            "50",
            "--encoder",
            "latency",
            "--input-scale",
            "0.5",
            "--input-noise",
            "0.1",
            "--leak",
            "0.9",
            "--threshold",
            "0.8",
            "--reset",
            "subtract",
            "--floor",
            "clamp",
            "--surrogate",
            "arctan",
            "--slope",
            "2",
            "--readout",
            "spike-rate",
            "--channels",
            "4,8,12",
            "--kernel",
            "3",
            "--stride",
            "2",
            "--padding",
            "1",
            "--latent",
            "20",
            "--burst-l1",
            "0.1",
            "--burst-l2",
            "0.2",
            "--potential-l1",
            "0.3",
            "--potential-l2",
            "0.4",
            "--example-l2",
            "0.5",
            "--neuron-l2",
            "0.6",
            "--neuron-l1",
            "0.7",
            "--weight-l1",
            "0.8",
            "--weight-l2",
            "0.9",
            "--burst-threshold",
            "0.25",
            "--beta",
            "2",
            "--weight-decay",
            "0.01",
            "--authors-ae",
        ])
        .unwrap();
        let want = Config {
            model: ModelKind::Vae,
            steps: 7,
            batch: 3,
            epochs: 2,
            lr: 0.01,
            clip_value: 5.0,
            seed: 9,
            train_images: 100,
            test_images: 50,
            encoder: Encoder::Latency,
            input_scale: 0.5,
            input_noise: 0.1,
            leak: 0.9,
            threshold: 0.8,
            reset: "subtract".into(),
            floor: "clamp".into(),
            surrogate: "arctan".into(),
            slope: 2.0,
            readout: Readout::SpikeRate,
            channels: vec![4, 8, 12],
            kernel: 3,
            stride: 2,
            padding: 1,
            latent: 20,
            coefficients: Coefficients {
                burst_l1: 0.1,
                burst_l2: 0.2,
                potential_l1: 0.3,
                potential_l2: 0.4,
                example_l2: 0.5,
                neuron_l2: 0.6,
                neuron_l1: 0.7,
                weight_l1: 0.8,
                weight_l2: 0.9,
            },
            burst_threshold: 0.25,
            beta: 2.0,
            weight_decay: 0.01,
            authors_ae: true,
        };
        assert_eq!(cfg, want);
        // The written file reads back as the same configuration, from either preset.
        let text = ConfigArgs::from_config(&want).to_toml();
        let file: ConfigArgs = toml::from_str(&text).unwrap();
        for p in ["quick", "paper"] {
            let flags = ConfigArgs {
                preset: Some(p.into()),
                ..Default::default()
            };
            assert_eq!(resolve(Some(&file), &flags).unwrap(), want);
        }
    }

    #[test]
    fn flags_override_the_file_which_overrides_the_preset() {
        let file: ConfigArgs =
            toml::from_str("preset = \"paper\"\nbatch = 8\nlr = 0.002\n").unwrap();
        let cli = parse(&["train", "--batch", "4"]).unwrap();
        let Some(Command::Train(t)) = cli.command else {
            panic!()
        };
        let cfg = resolve(Some(&file), &t.config).unwrap();
        assert_eq!(cfg.batch, 4);
        assert_eq!(cfg.lr, 0.002);
        assert_eq!(cfg.steps, Config::paper().steps);
    }

    #[test]
    fn written_floats_are_short() {
        let text = ConfigArgs::from_config(&Config::paper()).to_toml();
        assert!(text.contains("lr = 0.0005\n"), "{text}");
        assert!(text.contains("channels = [16, 32]"), "{text}");
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        for args in [
            &["train", "--steps", "0"][..],
            &["--batch", "0"],
            &["train", "--burst-l2", "-1"],
            &["train", "--lr", "-0.1"],
        ] {
            let err = train_config(args).unwrap_err();
            let flag = args[args.len() - 2];
            assert!(err.contains(flag), "{args:?}: {err}");
        }
        for args in [
            &["train", "--no-such-flag"][..],
            &["train", "--encoder", "morse"],
            &["train", "--steps", "-3"],
            &["frobnicate"],
        ] {
            let err = parse(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
        let err = toml::from_str::<ConfigArgs>("burst_l3 = 1.0").unwrap_err();
        assert!(err.to_string().contains("burst_l3"), "{err}");
    }
}
