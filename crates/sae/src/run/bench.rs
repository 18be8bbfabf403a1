//! `sae bench`: the time and memory of training and inference steps, like the PyTorch
//! reference's `bench`, with a per-layer profile and the spike densities at init.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use autograd::optim::clip_grad_value;
use autograd::{OpTime, Optimizer, Tape, Tensor};
use ndarray::IxDyn;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::config::{Config, ModelKind, SIDE, Workload};
use crate::data::{DataError, Images, TRAIN_IMAGES, find_file, read_images, resolve_dir};
use crate::nn::Sae;
use crate::nn::{Model, Objective, Output, Sampling};
use crate::report::energy;
use crate::report::spikes::SpikeStats;
use crate::run::checkpoint;
use crate::run::error::RunError;
use crate::run::train::optimizer;
use crate::seeds::{eval_seed, step_seed};

crate::choice! {
    /// What [`bench`] times.
    pub enum BenchMode {
        /// Training steps only (forward, backward, clipping, Adam).
        Train = "train",
        /// Inference steps only; no optimizer is built, so the peak RSS holds no training
        /// memory.
        Infer = "infer",
        /// Training steps, then inference steps.
        Both = "both",
    }
}

impl BenchMode {
    fn trains(self) -> bool {
        self != BenchMode::Infer
    }

    fn infers(self) -> bool {
        self != BenchMode::Train
    }
}

/// How [`bench`] measures.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Timed iterations of each kind.
    pub iters: usize,
    /// Untimed iterations before.
    pub warmup: usize,
    /// What to time.
    pub mode: BenchMode,
    /// MNIST directory (the --data-dir flag); None: MNIST_DIR, else data/mnist/.
    pub data_dir: Option<PathBuf>,
    /// A checkpoint whose parameters replace the initialization (`--init`): the time of a
    /// trained network, whose sparser spikes the event kernels turn into speed.
    pub init: Option<PathBuf>,
}

/// Peak resident memory of this process in MiB (`VmHWM`), if the system says.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// The bench's input: the first MNIST training images, or one random batch.
enum BenchInput {
    /// The first training images (as many as the bench uses).
    Mnist(Images),
    /// Random MNIST-shaped images `[B, 1, 28, 28]`: 80 % of pixels 0, the rest uniform,
    /// like MNIST's ink coverage.
    Synthetic(Tensor),
}

impl BenchInput {
    /// The first `images` training images of MNIST if it can be found, else a random
    /// batch (and a note on stderr). An explicit `data_dir` that lacks MNIST is an error.
    fn load(cfg: &Config, data_dir: Option<&Path>, images: usize) -> Result<Self, RunError> {
        let dir = match resolve_dir(data_dir) {
            Ok(dir) => dir,
            Err(e) if data_dir.is_none() => {
                eprintln!("bench: timing on synthetic input: {e}");
                return Ok(BenchInput::synthetic(cfg));
            }
            Err(e) => return Err(e.into()),
        };
        let path = find_file(&dir, TRAIN_IMAGES).expect("resolve_dir checked the files");
        let mut train = read_images(&path)?;
        let size = train.rows * train.cols;
        if size != SIDE * SIDE {
            return Err(DataError::Field {
                path,
                field: "rows × cols".into(),
                expected: format!("{SIDE}×{SIDE}"),
                found: format!("{}×{}", train.rows, train.cols),
            }
            .into());
        }
        if train.count == 0 {
            return Err(RunError::EmptySplit {
                dir,
                split: "train",
            });
        }
        train.count = train.count.min(images);
        train.pixels.truncate(train.count * size);
        train.pixels.shrink_to_fit();
        Ok(BenchInput::Mnist(train))
    }

    fn synthetic(cfg: &Config) -> Self {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let pixels: Vec<f32> = (0..cfg.batch * SIDE * SIDE)
            .map(|_| {
                if rng.random::<f32>() < 0.8 {
                    0.0
                } else {
                    rng.random()
                }
            })
            .collect();
        let x = Tensor::from_shape_vec(IxDyn(&[cfg.batch, 1, SIDE, SIDE]), pixels);
        BenchInput::Synthetic(x.expect("shape"))
    }

    fn name(&self) -> &'static str {
        match self {
            BenchInput::Mnist(_) => "mnist-train",
            BenchInput::Synthetic(_) => "synthetic",
        }
    }

    /// Iteration `i`'s images `[batch, 1, 28, 28]`: training images `[i·batch,
    /// (i+1)·batch)` (wrapping around if there are fewer), or the random batch.
    fn batch(&self, i: usize, batch: usize) -> Tensor {
        match self {
            BenchInput::Synthetic(x) => x.clone(),
            BenchInput::Mnist(images) => {
                let size = SIDE * SIDE;
                let pixels = (i * batch..(i + 1) * batch)
                    .flat_map(|j| {
                        let at = j % images.count * size;
                        &images.pixels[at..at + size]
                    })
                    .map(|&p| f32::from(p) / 255.0)
                    .collect();
                Tensor::from_shape_vec(IxDyn(&[batch, 1, SIDE, SIDE]), pixels).expect("shape")
            }
        }
    }
}

/// Per layer (the encoded input first): spikes / (neurons · T · batch) and the percentage
/// of neurons that never fired, like the PyTorch reference's
/// `spike_stats_at_init_first_batch`.
fn spike_densities(stats: &SpikeStats, steps: usize) -> Vec<LayerAtInit> {
    stats
        .layers(0.5)
        .iter()
        .map(|l| LayerAtInit {
            layer: l.name.clone(),
            neurons: l.neurons,
            density: l.spikes_per_image / (l.neurons * steps) as f64,
            pct_never_fired: 100.0 * l.dead_frac,
        })
        .collect()
}

/// Per synaptic layer, its work per image in the first forward pass: what arrived at its
/// input times the fan-out, and the same connections' dense MACs over the `T` steps.
fn layer_work(net: &Sae, stats: &SpikeStats) -> Vec<WorkAtInit> {
    let images = stats.images as f64;
    energy::layer_work(net, stats)
        .into_iter()
        .map(|w| WorkAtInit {
            layer: w.layer,
            synaptic_ops_per_image: w.ops / images,
            dense_macs_per_image: w.dense_macs_per_frame * net.steps as f64,
        })
        .collect()
}

/// One synaptic layer's forward work per image in the first pass (the event kernels' work
/// is the synaptic operations; the dense kernels' the dense MACs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkAtInit {
    /// The layer.
    pub layer: String,
    /// Nonzero inputs that arrived, times their fan-out.
    pub synaptic_ops_per_image: f64,
    /// Every connection at every step.
    pub dense_macs_per_image: f64,
}

/// One layer's activity in the first forward pass at initialization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerAtInit {
    /// The layer (`input` for the encoded input).
    pub layer: String,
    /// Its neurons.
    pub neurons: usize,
    /// Spikes per neuron and step.
    pub density: f64,
    /// Neurons that never fired, in per cent.
    pub pct_never_fired: f64,
}

/// Mean milliseconds per step a scope (a layer, `loss`, `optimizer`; `""` for the rest),
/// or one op of it, spent forward and backward.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScopeTime {
    /// The scope.
    pub scope: String,
    /// The op, in a per-op profile.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub op: Option<String>,
    /// Forward milliseconds per step: its ops' own work and the glue before them.
    pub forward: f64,
    /// Backward milliseconds per step.
    pub backward: f64,
}

/// Timings of one kind of step: the median, extremes, every timed step and where the time
/// went.
struct Timing {
    step_ms: f64,
    min_ms: f64,
    max_ms: f64,
    times_ms: Vec<f64>,
    profile_ms: Vec<ScopeTime>,
    ops_ms: Vec<ScopeTime>,
}

impl Timing {
    fn of(times_ms: Vec<f64>, ops: &[OpTime], steps: usize) -> Self {
        Timing {
            step_ms: median(times_ms.clone()),
            min_ms: times_ms.iter().copied().fold(f64::INFINITY, f64::min),
            max_ms: times_ms.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            profile_ms: by_scope(ops, steps),
            ops_ms: by_op(ops, steps),
            times_ms,
        }
    }
}

/// What `sae bench` prints: one JSON object, the keys of the PyTorch reference's `bench`
/// where they mean the same (`benches/compare_torch.sh` reads them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// The network.
    pub model: ModelKind,
    /// What was timed.
    pub mode: BenchMode,
    /// `mnist-train`, or `synthetic` when MNIST was not found.
    pub input: String,
    /// Time steps per image.
    pub steps: usize,
    /// The same, as the reference names it.
    #[serde(rename = "T")]
    pub t: usize,
    /// Images per step.
    pub batch: usize,
    /// Timed steps of each kind.
    pub iters: usize,
    /// Untimed steps first.
    pub warmup: usize,
    /// Peak resident memory, MiB (`VmHWM`).
    pub peak_rss_mb: Option<f64>,
    /// The same, as the reference names it.
    pub peak_rss_mib: Option<f64>,
    /// Threads of the pool.
    pub threads: usize,
    /// The checkpoint whose parameters were timed (`--init`); absent: the
    /// initialization of `seed`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub init: Option<PathBuf>,
    /// Median training step, ms.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub train_step_ms: Option<f64>,
    /// Fastest training step, ms.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub train_min_ms: Option<f64>,
    /// Slowest training step, ms.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub train_max_ms: Option<f64>,
    /// Every timed training step, ms.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub train_times_ms: Option<Vec<f64>>,
    /// Where a training step's time went.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub train_profile_ms: Option<Vec<ScopeTime>>,
    /// The same per op of each scope (`lif`, `conv2d`, `sum_blocks`, …).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub train_ops_ms: Option<Vec<ScopeTime>>,
    /// Median inference step, ms.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub infer_step_ms: Option<f64>,
    /// Fastest inference step, ms.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub infer_min_ms: Option<f64>,
    /// Slowest inference step, ms.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub infer_max_ms: Option<f64>,
    /// Every timed inference step, ms.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub infer_times_ms: Option<Vec<f64>>,
    /// Where an inference step's time went.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub infer_profile_ms: Option<Vec<ScopeTime>>,
    /// The same per op of each scope.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub infer_ops_ms: Option<Vec<ScopeTime>>,
    /// The spiking model only: every layer's activity in the first pass, at init (or with
    /// `init`'s parameters).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub spike_stats_at_init_first_batch: Option<Vec<LayerAtInit>>,
    /// The spiking model only: every synaptic layer's forward work in the same pass.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub work_at_init_first_batch: Option<Vec<WorkAtInit>>,
}

/// Times training steps (forward, backward, clipping, Adam) and/or inference steps of the
/// model of `cfg`, after `warmup` untimed ones, like the PyTorch reference's `bench`:
/// iteration `i` (warm-up ones first) runs on training images `[i·B, (i+1)·B)` of MNIST,
/// or, if MNIST cannot be found, on one random MNIST-shaped batch.
pub fn bench(cfg: &Config, opts: &BenchOptions) -> Result<BenchReport, RunError> {
    cfg.validate().map_err(RunError::Usage)?;
    if opts.iters == 0 {
        return Err(RunError::Usage(
            "iters = 0: must be at least 1 (--iters)".into(),
        ));
    }
    let workload = match opts.mode {
        BenchMode::Infer => Workload::Infer,
        BenchMode::Train | BenchMode::Both => Workload::Train,
    };
    cfg.check_memory(workload).map_err(RunError::Usage)?;
    // Iteration i reads images [i·B, (i+1)·B): their count must not overflow.
    let (runs, images) = opts
        .warmup
        .checked_add(opts.iters)
        .and_then(|runs| Some((runs, runs.checked_mul(cfg.batch)?)))
        .ok_or_else(|| {
            RunError::Usage(format!(
                "iters = {}: (warmup + iters) × batch = ({} + {}) × {} images is more than {} \
                 (--iters, --warmup)",
                opts.iters,
                opts.warmup,
                opts.iters,
                cfg.batch,
                usize::MAX
            ))
        })?;
    let input = BenchInput::load(cfg, opts.data_dir.as_deref(), images)?;
    let model = Model::new(cfg);
    if let Some(path) = &opts.init {
        checkpoint::load(path, &model.net().parameters(), None)?;
    }
    let net = model.net();
    let objective = Objective::new(cfg, &model);
    let steps = net.steps();
    let mut init_spikes = None;
    // Spike statistics of the first forward pass, at init; returns the time they took,
    // which is not counted.
    let mut note_init = |out: &Output<'_>| {
        let t0 = Instant::now();
        if let (Some(sae), None) = (model.spiking(), &init_spikes) {
            let mut stats = SpikeStats::new(steps);
            stats.add(&out.layers, cfg.batch);
            init_spikes = Some((spike_densities(&stats, steps), layer_work(sae, &stats)));
        }
        t0.elapsed()
    };
    let (mut train_ms, mut infer_ms) = (vec![], vec![]);
    let (mut train_ops, mut infer_ops) = (vec![], vec![]);
    if opts.mode.trains() {
        let params = net.parameters();
        let mut opt = optimizer(cfg, params.clone());
        for i in 0..runs {
            let x = input.batch(i, cfg.batch);
            let t0 = Instant::now();
            let tape = Tape::profiled();
            let out = net.forward(&tape, &x, step_seed(cfg.seed, i as u64), Sampling::Sample);
            let loss = objective.loss(&tape, &out, &x);
            let untimed = note_init(&out);
            opt.zero_grad();
            loss.backward();
            drop((out, loss));
            let t_opt = Instant::now();
            if cfg.clip_value > 0.0 {
                clip_grad_value(&params, cfg.clip_value);
            }
            opt.step();
            if i >= opts.warmup {
                train_ms.push((t0.elapsed() - untimed).as_secs_f64() * 1e3);
                let mut ops = tape.op_times();
                ops.push(OpTime {
                    scope: "optimizer".into(),
                    op: "clip + step".into(),
                    forward: t_opt.elapsed(),
                    backward: Duration::ZERO,
                });
                train_ops.extend(ops);
            }
        }
    }
    if opts.mode.infers() {
        for i in 0..runs {
            let x = input.batch(i, cfg.batch);
            let t0 = Instant::now();
            let tape = Tape::profiled();
            tape.set_recording(false);
            let out = net.forward(&tape, &x, eval_seed(cfg.seed, i as u64), Sampling::Mean);
            std::hint::black_box(out.recon.value());
            let untimed = note_init(&out);
            drop(out);
            if i >= opts.warmup {
                infer_ms.push((t0.elapsed() - untimed).as_secs_f64() * 1e3);
                infer_ops.extend(tape.op_times());
            }
        }
    }
    let peak = peak_rss_mb();
    let train = opts
        .mode
        .trains()
        .then(|| Timing::of(train_ms, &train_ops, opts.iters));
    let infer = opts
        .mode
        .infers()
        .then(|| Timing::of(infer_ms, &infer_ops, opts.iters));
    let (spike_stats_at_init_first_batch, work_at_init_first_batch) = init_spikes.unzip();
    Ok(BenchReport {
        model: cfg.model,
        mode: opts.mode,
        input: input.name().into(),
        steps,
        t: steps,
        batch: cfg.batch,
        iters: opts.iters,
        warmup: opts.warmup,
        peak_rss_mb: peak,
        peak_rss_mib: peak,
        threads: rayon::current_num_threads(),
        init: opts.init.clone(),
        train_step_ms: train.as_ref().map(|t| t.step_ms),
        train_min_ms: train.as_ref().map(|t| t.min_ms),
        train_max_ms: train.as_ref().map(|t| t.max_ms),
        train_times_ms: train.as_ref().map(|t| t.times_ms.clone()),
        train_ops_ms: train.as_ref().map(|t| t.ops_ms.clone()),
        train_profile_ms: train.map(|t| t.profile_ms),
        infer_step_ms: infer.as_ref().map(|t| t.step_ms),
        infer_min_ms: infer.as_ref().map(|t| t.min_ms),
        infer_max_ms: infer.as_ref().map(|t| t.max_ms),
        infer_times_ms: infer.as_ref().map(|t| t.times_ms.clone()),
        infer_ops_ms: infer.as_ref().map(|t| t.ops_ms.clone()),
        infer_profile_ms: infer.map(|t| t.profile_ms),
        spike_stats_at_init_first_batch,
        work_at_init_first_batch,
    })
}

/// Mean forward and backward milliseconds per step of each scope (a layer, `loss`,
/// `optimizer`; `""` for the rest), in the order the scopes first ran. Forward time is
/// what the profiling tape attributes to each op: its own work and the glue before it.
fn by_scope(ops: &[OpTime], steps: usize) -> Vec<ScopeTime> {
    grouped(ops, steps, |_| None)
}

/// Mean milliseconds per step of each op of each scope, in first-run order.
fn by_op(ops: &[OpTime], steps: usize) -> Vec<ScopeTime> {
    grouped(ops, steps, |op| Some(op.op.as_str()))
}

/// Mean milliseconds per step of `ops` grouped by scope and `key(op)`, in first-run order.
fn grouped<'a>(
    ops: &'a [OpTime],
    steps: usize,
    key: impl Fn(&'a OpTime) -> Option<&'a str>,
) -> Vec<ScopeTime> {
    let mut order: Vec<(&str, Option<&str>)> = vec![];
    let mut sums: HashMap<(&str, Option<&str>), (f64, f64)> = HashMap::new();
    for op in ops {
        let k = (op.scope.as_str(), key(op));
        let entry = sums.entry(k).or_insert_with(|| {
            order.push(k);
            (0.0, 0.0)
        });
        entry.0 += op.forward.as_secs_f64();
        entry.1 += op.backward.as_secs_f64();
    }
    let per_step = 1e3 / steps.max(1) as f64;
    order
        .iter()
        .map(|k| {
            let (f, b) = sums[k];
            ScopeTime {
                scope: k.0.to_string(),
                op: k.1.map(str::to_string),
                forward: f * per_step,
                backward: b * per_step,
            }
        })
        .collect()
}
