//! The `sae` command line: `train | eval | reconstruct | analyze | bench | experiment |
//! export`.
//!
//! Every [`Config`](crate::config::Config) field is also a flag and a key of a TOML file
//! ([`ConfigArgs`]); a run
//! resolves its configuration as preset, then `--config` file, then flags, each layer
//! overriding the one before. `sae` with no subcommand (and `cargo run --release` at the
//! workspace root) is `sae train` with the quick preset.
//!
//! Exit codes: 0 success, 1 runtime error (missing data, a checkpoint that does not fit,
//! a diverged run), 2 usage error (unknown option, invalid value or configuration),
//! 128 + the signal's number when SIGINT (Ctrl-C, 130), SIGTERM (143) or SIGHUP (129)
//! stopped a run (after writing a checkpoint).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::cluster::Group;
use crate::config::{Config, ConfigArgs, Workload, resolve};
use crate::export::{self, Format, nir::Part};
use crate::nn::Model;
use crate::report::evaluation::{Evaluation, to_json};
use crate::run::bench::{self, BenchMode, BenchOptions};
use crate::run::checkpoint;
use crate::run::error::RunError;
use crate::run::evaluate::load_data;
use crate::run::folder::{
    self, CHECKPOINT_FILE, CONFIG_FILE, EVAL_FILE, RECONSTRUCTIONS_FILE, REPORT_FILE,
};
use crate::run::lock::RunLock;
use crate::run::outputs::write_outputs;
use crate::run::signals;
use crate::run::{RunOptions, load_run, train_on};
use crate::study::{self, Budget, Study};

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
    #[arg(long, value_enum, default_value_t = BenchMode::Both)]
    pub mode: BenchMode,
    /// Timed iterations of each kind (each T = 100 step of the paper network takes
    /// seconds; the median is reported).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub iters: usize,
    /// Untimed iterations first.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub warmup: usize,
    /// Time the network with this checkpoint's parameters (a trained one fires less)
    /// instead of its initialization; its tensors must fit the configuration.
    #[arg(long, value_name = "CHECKPOINT")]
    pub init: Option<PathBuf>,
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
    #[arg(value_enum)]
    pub study: Study,
    /// `quick` (under 20 minutes on 2 cores), `full` (the paper's protocol) or `smoke` (a
    /// pipeline check on a few dozen images).
    #[arg(long, value_enum, default_value_t = Budget::Quick)]
    pub budget: Budget,
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

/// `sae export`: a trained spiking network for other tools.
#[derive(Args, Clone, Debug)]
pub struct ExportArgs {
    /// The run folder (its config.toml and checkpoint).
    pub run: PathBuf,
    /// The file to write.
    pub file: PathBuf,
    /// File format.
    #[arg(long, value_enum, default_value_t = Format::Nir)]
    pub format: Format,
    /// Which part: NIR cannot express the decoder's un-flatten, so the encoder (input →
    /// latent spikes) and the decoder (its feature maps → output) are separate graphs.
    #[arg(long, value_enum, default_value_t = Part::Encoder)]
    pub part: Part,
    /// Checkpoint to read (default: the run's checkpoint.safetensors).
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Also write the exported layers' activity on the first test images under the
    /// current encoder (safetensors, named as the graph's nodes), for checking an import.
    #[arg(long, value_name = "FILE")]
    pub activity: Option<PathBuf>,
    /// Test images of `--activity`.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub images: usize,
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
    /// Write a trained spiking network as an NIR graph (HDF5) for other SNN tools.
    Export(Box<ExportArgs>),
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
            eprintln!("{}error: {e}", crate::cluster::rank_prefix());
            ExitCode::from(e.exit_code())
        }
    }
}

/// Most worker threads per core `--threads` may ask for: the kernels split work by shape,
/// never by thread count, so more threads than cores only add stacks and switching.
const THREADS_PER_CORE: usize = 4;

/// Sets up the global rayon pool, of at most [`THREADS_PER_CORE`] threads per core.
fn threads(common: &Common) -> Result<(), RunError> {
    if let Some(n) = common.threads {
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        check_threads(n, cores).map_err(RunError::Usage)?;
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| RunError::Usage(format!("--threads {n}: {e}")))?;
    }
    Ok(())
}

/// Refuses a thread count of 0 or more than [`THREADS_PER_CORE`] per core.
fn check_threads(n: usize, cores: usize) -> Result<(), String> {
    let most = THREADS_PER_CORE.saturating_mul(cores);
    if n == 0 || n > most {
        return Err(format!(
            "threads = {n}: must be between 1 and {most} ({THREADS_PER_CORE} per core, {cores} \
             cores) (--threads)"
        ));
    }
    Ok(())
}

fn read_file_layer(path: Option<&Path>) -> Result<Option<ConfigArgs>, RunError> {
    path.map(ConfigArgs::read)
        .transpose()
        .map_err(RunError::Usage)
}

/// A run folder's `config.toml` as a layer ([`ConfigArgs::read_run`]).
fn read_run_layer(path: &Path) -> Result<Option<ConfigArgs>, RunError> {
    ConfigArgs::read_run(path)
        .map(Some)
        .map_err(RunError::Usage)
}

fn dispatch(cli: Cli) -> Result<(), RunError> {
    let parallel = matches!(
        cli.command,
        None | Some(Command::Train(_)) | Some(Command::Experiment(_))
    );
    if !parallel {
        // Only training spreads over ranks; started by a launcher, anything else would
        // run N times over the same files.
        let group = Group::from_launcher().map_err(RunError::Usage)?;
        if group.size() > 1 {
            return Err(RunError::Usage(format!(
                "only `sae train` and `sae experiment` run on several ranks; run this command \
                 as one process \
                 (started as one of {})",
                group.size()
            )));
        }
    }
    match cli.command {
        None => train_command(cli.train),
        Some(Command::Train(args)) => train_command(*args),
        Some(Command::Eval(args)) => run_command(*args, Kind::Eval),
        Some(Command::Reconstruct(args)) => run_command(*args, Kind::Reconstruct),
        Some(Command::Analyze(args)) => run_command(*args, Kind::Analyze),
        Some(Command::Experiment(args)) => experiment_command(*args),
        Some(Command::Export(args)) => export_command(*args),
        Some(Command::Bench(args)) => {
            threads(&args.common)?;
            let cfg = resolve(None, &args.config).map_err(RunError::Usage)?;
            let report = bench::bench(
                &cfg,
                &BenchOptions {
                    iters: args.iters,
                    warmup: args.warmup,
                    mode: args.mode,
                    data_dir: args.common.data_dir.clone(),
                    init: args.init.clone(),
                },
            )?;
            println!(
                "{}",
                serde_json::to_string(&report).expect("records serialize")
            );
            Ok(())
        }
    }
}

fn experiment_command(args: ExperimentArgs) -> Result<(), RunError> {
    let (study, budget) = (args.study, args.budget);
    if args.plan {
        for (row, run) in study::plan(study, budget) {
            println!("{row}\t{run}");
        }
        return Ok(());
    }
    let group = Group::from_launcher().map_err(RunError::Usage)?;
    threads(&args.common)?;
    let stop = signals::install();
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("results/{study}-{budget}")));
    let job = format!("{study} {budget} {}", out.display());
    crate::run::parallel::check_same_job(&job, &group)?;
    let ctx = study::Context {
        out: out.clone(),
        data_dir: args.common.data_dir.clone(),
        stop,
        verbose: !args.quiet,
        group: &group,
    };
    let summary = study::run(study, budget, &ctx).inspect_err(|e| {
        if matches!(e, RunError::Interrupted { .. }) {
            eprintln!(
                "the study continues where it stopped with `sae experiment {study} --budget \
                 {budget}{}`",
                out_flag(&out, study, budget)
            );
        }
    })?;
    if group.is_root() {
        println!(
            "{}: {} rows from {} runs in {:.0} s; tables in {}",
            out.join("summary.json").display(),
            summary.rows.len(),
            summary.runs,
            summary.call_wall_s,
            out.join("report.md").display()
        );
    }
    Ok(())
}

/// ` --out DIR` when `out` is not the study's default folder.
fn out_flag(out: &Path, study: Study, budget: Budget) -> String {
    if out == Path::new(&format!("results/{study}-{budget}")) {
        String::new()
    } else {
        format!(" --out {}", out.display())
    }
}

fn train_command(args: TrainArgs) -> Result<(), RunError> {
    let stop = signals::install();
    let group = Group::from_launcher().map_err(RunError::Usage)?;
    threads(&args.common)?;
    let (dir, file, resume) = match &args.resume {
        Some(dir) => {
            let file = read_run_layer(&dir.join(CONFIG_FILE))?;
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
                    let stamp = folder::timestamp_name();
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
    let summary = train_on(&cfg, &opts, stop, &group)?;
    if group.is_root() {
        println!("{summary}");
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Kind {
    Eval,
    Reconstruct,
    Analyze,
}

/// The configuration of the run in folder `run` (its config.toml), with `overrides`.
fn run_config(run: &Path, overrides: &ConfigArgs) -> Result<Config, RunError> {
    let config_path = run.join(CONFIG_FILE);
    match autograd::io::regular_file(&config_path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(RunError::Usage(format!(
                "{}: not a run folder (no {})",
                run.display(),
                CONFIG_FILE
            )));
        }
        Err(e) => return Err(RunError::Usage(format!("{}: {e}", config_path.display()))),
    }
    let file = read_run_layer(&config_path)?;
    resolve(file.as_ref(), overrides).map_err(RunError::Usage)
}

fn run_command(args: RunArgs, kind: Kind) -> Result<(), RunError> {
    threads(&args.common)?;
    let cfg = run_config(&args.run, &args.config)?;
    let checkpoint = args
        .checkpoint
        .clone()
        .unwrap_or_else(|| args.run.join(CHECKPOINT_FILE));
    if let Kind::Reconstruct = kind {
        // The images shown are encoded as one batch.
        let shown = match cfg.test_images {
            0 => args.count,
            n => args.count.min(n),
        };
        let batch = Config {
            batch: shown.max(1),
            ..cfg.clone()
        };
        batch
            .check_memory(Workload::Infer)
            .map_err(|e| RunError::Usage(format!("count = {}: {e} (--count)", args.count)))?;
    }
    let out = match kind {
        Kind::Eval => args.out.clone().unwrap_or_else(|| args.run.join(EVAL_FILE)),
        Kind::Reconstruct => args
            .out
            .clone()
            .unwrap_or_else(|| args.run.join(RECONSTRUCTIONS_FILE)),
        Kind::Analyze => args.run.join(REPORT_FILE),
    };
    if out.is_dir() {
        return Err(RunError::Usage(format!(
            "--out {}: is a folder; give the path of a file to write",
            out.display()
        )));
    }
    // Writing into the run folder waits for no one: a run being trained there is refused.
    let _lock = writes_into(&out, &args.run)
        .then(|| RunLock::acquire(&args.run))
        .transpose()?;
    let loaded = load_run(&cfg, &checkpoint, args.common.data_dir.as_deref())?;
    let finite = |eval: &Evaluation| {
        if eval.test_mse.is_finite() {
            Ok(())
        } else {
            Err(RunError::Checkpoint(format!(
                "{}: its parameters give a test MSE of {}; nothing was written",
                checkpoint.display(),
                eval.test_mse
            )))
        }
    };
    match kind {
        Kind::Eval => {
            let eval = loaded.evaluate(args.probe_images);
            finite(&eval)?;
            let json = to_json(&eval.record());
            folder::write_text(&out, &json)?;
            print!("{json}");
        }
        Kind::Reconstruct => {
            loaded.reconstruct(&out, args.count)?;
            println!("{}", out.display());
        }
        Kind::Analyze => {
            let eval = loaded.evaluate(args.probe_images);
            finite(&eval)?;
            write_outputs(&args.run, &cfg, &eval, loaded.step, None)?;
            println!("{}", out.display());
        }
    }
    Ok(())
}

fn export_command(args: ExportArgs) -> Result<(), RunError> {
    threads(&args.common)?;
    let cfg = run_config(&args.run, &ConfigArgs::default())?;
    cfg.validate().map_err(RunError::Usage)?;
    for path in std::iter::once(&args.file).chain(&args.activity) {
        if path.is_dir() {
            return Err(RunError::Usage(format!(
                "{}: is a folder; give the path of a file to write",
                path.display()
            )));
        }
    }
    // Writing into the run folder waits for no one: a run being trained there is refused.
    let writes_run = std::iter::once(&args.file)
        .chain(&args.activity)
        .any(|p| writes_into(p, &args.run));
    let _lock = writes_run
        .then(|| RunLock::acquire(&args.run))
        .transpose()?;
    let model = Model::new(&cfg);
    let Some(sae) = model.spiking() else {
        return Err(RunError::Usage(format!(
            "{}: a `{}` run is not a spiking network; NIR export is for `sae` runs",
            args.run.display(),
            cfg.model
        )));
    };
    let checkpoint = args
        .checkpoint
        .clone()
        .unwrap_or_else(|| args.run.join(CHECKPOINT_FILE));
    checkpoint::load(&checkpoint, &model.net().parameters(), None)?;
    let Format::Nir = args.format;
    let graph = export::nir::graph(sae, args.part).map_err(|e| {
        RunError::Usage(format!(
            "{}: cannot be written as NIR: {e}",
            args.run.display()
        ))
    })?;
    if let Some(path) = &args.activity {
        if args.images == 0 {
            return Err(RunError::Usage(
                "images = 0: must be at least 1 (--images)".into(),
            ));
        }
        // Only the test split is used: keep one training image rather than a copy of all.
        let (_, test) = load_data(
            &Config {
                train_images: 1,
                ..cfg.clone()
            },
            args.common.data_dir.as_deref(),
        )?;
        let idx: Vec<usize> = (0..args.images.min(test.len())).collect();
        let x = test.images_f32(&idx).into_dyn();
        let tensors = export::activity::sample(sae, &x, args.part);
        let meta = std::collections::HashMap::from([
            (
                "images".to_string(),
                format!("the first {} test images", idx.len()),
            ),
            (
                "encoder".to_string(),
                format!("current, scale {}", cfg.input_scale),
            ),
            ("steps".to_string(), cfg.steps.to_string()),
        ]);
        autograd::io::save_tensors(
            path,
            tensors.iter().map(|(n, t)| (n.clone(), t)),
            Some(meta),
        )
        .map_err(|e| RunError::Io(e.to_string()))?;
        println!("{}", path.display());
    }
    export::write_nir(&args.file, &graph)?;
    println!("{}", args.file.display());
    Ok(())
}

/// Whether `out` lies in the folder `run`.
fn writes_into(out: &Path, run: &Path) -> bool {
    let folder = |p: &Path| std::fs::canonicalize(p).ok();
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty());
    folder(parent.unwrap_or(Path::new("."))) == folder(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{
        Coefficients, Config, Encoder, Floor, ModelKind, Readout, Reset, Surrogate,
    };

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
            "--time-tile",
            "4",
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
            reset: Reset::Subtract,
            floor: Floor::Clamp,
            surrogate: Surrogate::Arctan,
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
            time_tile: 4,
        };
        assert_eq!(cfg, want);
        // The written file reads back as the same configuration, from either preset.
        let text = want.to_toml();
        let file: ConfigArgs = toml::from_str(&text).unwrap();
        assert_eq!(ConfigArgs::of(&want), file);
        for p in [crate::config::Preset::Quick, crate::config::Preset::Paper] {
            let flags = ConfigArgs {
                preset: Some(p),
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
        let text = Config::paper().to_toml();
        assert!(text.contains("lr = 0.0005\n"), "{text}");
        assert!(text.contains("channels = [16, 32]"), "{text}");
    }

    #[test]
    fn threads_are_bounded_by_the_cores() {
        check_threads(1, 1).unwrap();
        check_threads(8, 2).unwrap();
        for (n, cores) in [(0, 2), (9, 2), (100_000, 2), (usize::MAX, 2)] {
            let err = check_threads(n, cores).unwrap_err();
            assert!(err.starts_with(&format!("threads = {n}: ")), "{err}");
            assert!(err.contains(&format!("{cores} cores")), "{err}");
        }
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
