//! The paper's study as one command: `sae experiment paper --budget quick|full` trains
//! every row (baselines, the spiking model unregularized, with each regularizer family,
//! the best combination and the best of all, a T sweep) over several seeds, and
//! `sae experiment tune` picks the regularizer coefficients on held-out training images.
//!
//! Every run is an ordinary run folder under `<out>/runs/`, named by what sets it apart
//! (model, T, images, coefficients, seed), so rows that train the same share it, a second
//! invocation skips finished runs (evaluated, with their checkpoint), resumes interrupted
//! ones from their checkpoints and refuses a folder whose `config.toml` no longer
//! matches. The study's outputs are `summary.json` (one row per
//! configuration, seeds aggregated), `report.md` (the tables) and `figures/`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde_json::{Map, Value, json};

use crate::cli::{ConfigArgs, model_name, wide};
use crate::config::{Coefficients, Config, ModelKind};
use crate::data::{Mnist, Split, resolve_dir};
use crate::metrics::PJ_PER_MAC;
use crate::plots::{self, Axes, Series};
use crate::train::{
    self, CHECKPOINT_FILE, CONFIG_FILE, EVAL_FILE, FIRING_RATES_FILE, LATENT_FILE, RunError,
    RunOptions, io_err, write_text,
};

/// Which study to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Study {
    /// The paper's rows, seeds and T sweep (`results/paper-<budget>/`).
    Paper,
    /// The regularizer-coefficient search (`results/tune-<budget>/`).
    Tune,
}

/// How much compute a study gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    /// A pipeline check on a few dozen images (seconds; the numbers mean nothing).
    Smoke,
    /// A miniature that finishes in under 20 minutes on 2 cores.
    Quick,
    /// The paper's protocol: T = 100, all 60 000 images for 10 epochs, 3 seeds.
    Full,
}

impl Study {
    /// The study a name stands for.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "paper" => Ok(Study::Paper),
            "tune" => Ok(Study::Tune),
            _ => Err(format!("study {name:?}: must be paper or tune")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Study::Paper => "paper",
            Study::Tune => "tune",
        }
    }
}

impl Budget {
    /// The budget a name stands for.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "smoke" => Ok(Budget::Smoke),
            "quick" => Ok(Budget::Quick),
            "full" => Ok(Budget::Full),
            _ => Err(format!("--budget {name:?}: must be quick, full or smoke")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Budget::Smoke => "smoke",
            Budget::Quick => "quick",
            Budget::Full => "full",
        }
    }

    /// What every run of this budget shares.
    pub fn protocol(self) -> Protocol {
        let unregularized = |cfg: Config| Config {
            coefficients: Coefficients::default(),
            ..cfg
        };
        // The paper's T sweep and a coefficient grid of half-decades.
        let paper = Protocol {
            base: Config::paper(),
            seeds: vec![0, 1, 2],
            sweep_steps: vec![10, 20, 50, 100],
            sweep_seeds: 3,
            sweep_train_images: 0,
            sweep_test_images: 0,
            probe_images: 2000,
            validation_images: 1000,
            grid: vec![0.001, 0.003, 0.01, 0.03, 0.1, 1.0],
        };
        match self {
            Budget::Full => paper,
            Budget::Quick => Protocol {
                base: unregularized(Config {
                    steps: 10,
                    train_images: 3000,
                    test_images: 1000,
                    ..Config::quick()
                }),
                seeds: vec![0, 1],
                sweep_seeds: 1,
                sweep_train_images: 1000,
                sweep_test_images: 500,
                probe_images: 1000,
                ..paper
            },
            Budget::Smoke => Protocol {
                base: unregularized(Config {
                    steps: 2,
                    batch: 16,
                    train_images: 48,
                    test_images: 32,
                    ..Config::quick()
                }),
                seeds: vec![0, 1],
                sweep_steps: vec![2, 3],
                sweep_seeds: 1,
                sweep_train_images: 32,
                sweep_test_images: 16,
                probe_images: 32,
                validation_images: 32,
                grid: vec![0.01, 1.0],
            },
        }
    }
}

/// What the runs of a budget share.
#[derive(Clone, Debug)]
pub struct Protocol {
    /// Every spiking run before its row's regularizers, T and seed (unregularized).
    pub base: Config,
    /// Seeds of every main row.
    pub seeds: Vec<u64>,
    /// T of the sweep.
    pub sweep_steps: Vec<usize>,
    /// Seeds of the sweep (the first this many of `seeds`).
    pub sweep_seeds: usize,
    /// Training images of a sweep run (0: as `base`).
    pub sweep_train_images: usize,
    /// Test images of a sweep run (0: as `base`).
    pub sweep_test_images: usize,
    /// Training images encoded for the latent linear probe (0 in the sweep).
    pub probe_images: usize,
    /// Held-out images at the end of MNIST's training split that score the tuning runs.
    pub validation_images: usize,
    /// Coefficients tried for each regularizer family.
    pub grid: Vec<f32>,
}

/// A regularizer family: its name and the coefficients it sets to a value.
pub type Family = (&'static str, fn(f32) -> Coefficients);

/// The regularizer families of the paper, each as the coefficients it sets to `v`.
pub const FAMILIES: [Family; 3] = [
    ("potential-l2", |v| Coefficients {
        potential_l2: v,
        ..Coefficients::default()
    }),
    ("burst-l2", |v| Coefficients {
        burst_l2: v,
        ..Coefficients::default()
    }),
    ("activity-l2", |v| Coefficients {
        example_l2: v,
        neuron_l2: v,
        ..Coefficients::default()
    }),
];

/// Regularizer choices, as values of the [`FAMILIES`] in their order (`None`: not used).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tuned {
    /// The value of each family alone.
    pub families: [f32; 3],
    /// The best combination of the families' values.
    pub combined: [Option<f32>; 3],
    /// The best of all: a family alone or a combination.
    pub best: [Option<f32>; 3],
}

/// What `sae experiment tune --budget quick` chose (`results/tune-quick/summary.json`; see
/// EXPERIMENTS.md); the paper study uses it at every budget.
pub const TUNED: Tuned = Tuned {
    families: [0.01, 0.03, 0.003],
    combined: [Some(0.01), Some(0.03), None],
    best: [Some(0.01), None, None],
};

/// The coefficients of the families given a value, summed into one set.
fn combine(values: &[Option<f32>]) -> Coefficients {
    let mut c = Coefficients::default();
    for ((_, family), v) in FAMILIES.iter().zip(values) {
        if let Some(v) = v {
            let f = family(*v);
            c.potential_l2 += f.potential_l2;
            c.burst_l2 += f.burst_l2;
            c.example_l2 += f.example_l2;
            c.neuron_l2 += f.neuron_l2;
        }
    }
    c
}

/// Images in MNIST's training split (`Mnist::load` checks it).
const MNIST_TRAIN: usize = 60_000;

/// The weight decay of the conv AE baseline (Adam's L2 term).
pub const AE_WEIGHT_DECAY: f32 = 1e-5;

/// Which table a row belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// The main comparison.
    Main,
    /// The T sweep.
    Sweep,
    /// A tuning candidate.
    Tune,
}

impl Group {
    fn name(self) -> &'static str {
        match self {
            Group::Main => "main",
            Group::Sweep => "sweep",
            Group::Tune => "tune",
        }
    }
}

/// One configuration of the study, trained once per seed.
#[derive(Clone, Debug)]
pub struct Row {
    /// Its name in the tables (`sae-burst-l2`, …).
    pub name: String,
    /// Its table.
    pub group: Group,
    /// The configuration (its seed is replaced by each of `seeds`).
    pub cfg: Config,
    /// The seeds it is trained with.
    pub seeds: Vec<u64>,
    /// Training images encoded for the latent probe.
    pub probe_images: usize,
}

impl Row {
    /// The configuration of one seed.
    fn seeded(&self, seed: u64) -> Config {
        Config {
            seed,
            ..self.cfg.clone()
        }
    }
}

/// A run folder's name: what sets its configuration apart, e.g.
/// `sae-t10-n3000-m1000-bl2_0.1-s0`.
pub fn run_id(cfg: &Config) -> String {
    // `potential_l2` → `pl2`.
    let short = |name: &str| format!("{}{}", &name[..1], &name[name.len() - 2..]);
    let mut id = format!(
        "{}-t{}-n{}-m{}",
        model_name(cfg.model),
        cfg.steps,
        cfg.train_images,
        cfg.test_images
    );
    for (name, v) in cfg.coefficients.named() {
        if v != 0.0 {
            let _ = write!(id, "-{}_{v}", short(name));
        }
    }
    if cfg.weight_decay != 0.0 {
        let _ = write!(id, "-wd_{}", cfg.weight_decay);
    }
    let _ = write!(id, "-s{}", cfg.seed);
    id
}

/// The rows of the paper study: the two baselines, the spiking model unregularized, with
/// each family alone, with the best combination and with the best of all ([`TUNED`];
/// this may be one of the others, whose runs it then shares), then the T sweep of the
/// unregularized and the best model.
pub fn paper_rows(p: &Protocol) -> Vec<Row> {
    let row = |name: &str, group, cfg: Config, seeds: &[u64], probe| Row {
        name: name.to_string(),
        group,
        cfg,
        seeds: seeds.to_vec(),
        probe_images: probe,
    };
    let sae = |c: Coefficients| Config {
        coefficients: c,
        ..p.base.clone()
    };
    let mut rows = vec![
        row(
            "ae",
            Group::Main,
            Config {
                model: ModelKind::Ae,
                weight_decay: AE_WEIGHT_DECAY,
                ..p.base.clone()
            },
            &p.seeds,
            p.probe_images,
        ),
        row(
            "vae",
            Group::Main,
            Config {
                model: ModelKind::Vae,
                ..p.base.clone()
            },
            &p.seeds,
            p.probe_images,
        ),
        row(
            "sae-unregularized",
            Group::Main,
            p.base.clone(),
            &p.seeds,
            p.probe_images,
        ),
    ];
    for ((name, family), v) in FAMILIES.iter().zip(TUNED.families) {
        rows.push(row(
            &format!("sae-{name}"),
            Group::Main,
            sae(family(v)),
            &p.seeds,
            p.probe_images,
        ));
    }
    for (name, values) in [("sae-combined", TUNED.combined), ("sae-best", TUNED.best)] {
        rows.push(row(
            name,
            Group::Main,
            sae(combine(&values)),
            &p.seeds,
            p.probe_images,
        ));
    }
    let or = |n: usize, default: usize| if n == 0 { default } else { n };
    for &steps in &p.sweep_steps {
        for (name, c) in [
            ("sae-unregularized", Coefficients::default()),
            ("sae-best", combine(&TUNED.best)),
        ] {
            let cfg = Config {
                steps,
                train_images: or(p.sweep_train_images, p.base.train_images),
                test_images: or(p.sweep_test_images, p.base.test_images),
                ..sae(c)
            };
            rows.push(row(
                &format!("{name}-t{steps}"),
                Group::Sweep,
                cfg,
                &p.seeds[..p.sweep_seeds.min(p.seeds.len())],
                0,
            ));
        }
    }
    rows
}

/// Tuning: the configuration of the spiking runs, trained on images that leave the
/// last `validation_images` of MNIST's training split unseen.
fn tune_base(p: &Protocol) -> Config {
    let limit = MNIST_TRAIN - p.validation_images;
    Config {
        train_images: match p.base.train_images {
            0 => limit,
            n => n.min(limit),
        },
        ..p.base.clone()
    }
}

/// The first tuning stage: unregularized, then every family at every grid value (seed 0).
pub fn tune_rows(p: &Protocol) -> Vec<Row> {
    let base = tune_base(p);
    let row = |name: String, c: Coefficients| Row {
        name,
        group: Group::Tune,
        cfg: Config {
            coefficients: c,
            ..base.clone()
        },
        seeds: vec![p.seeds[0]],
        probe_images: 0,
    };
    let mut rows = vec![row("unregularized".into(), Coefficients::default())];
    for (name, family) in FAMILIES {
        for &v in &p.grid {
            rows.push(row(format!("{name} {v}"), family(v)));
        }
    }
    rows
}

/// One finished run: its folder, `eval.json`, the validation scores of a tuning run and
/// the training wall time summed over the processes that worked on it.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The run folder.
    pub dir: PathBuf,
    /// Its `eval.json`.
    pub eval: Value,
    /// Its `validation.json` (tuning runs only).
    pub validation: Option<Value>,
    /// Seconds of training and evaluation, over every process that worked on it.
    pub wall_s: f64,
}

/// File of a run's accumulated wall time.
const WALL_FILE: &str = "wall_s.txt";
/// File of a tuning run's validation scores.
const VALIDATION_FILE: &str = "validation.json";

/// Where a study writes, and how.
pub struct Context<'a> {
    /// The study's folder (`results/<study>-<budget>`).
    pub out: PathBuf,
    /// MNIST directory (else `MNIST_DIR`, else `data/mnist`).
    pub data_dir: Option<PathBuf>,
    /// Set by Ctrl-C: the current run checkpoints and the study stops.
    pub stop: &'a AtomicBool,
    /// One line per run on stderr.
    pub verbose: bool,
}

impl Context<'_> {
    fn say(&self, line: &str) {
        if self.verbose {
            eprintln!("{line}");
        }
    }

    /// Trains (or resumes, or skips) the run of `cfg` and returns its results.
    fn run(
        &self,
        cfg: &Config,
        probe: usize,
        validation: Option<&Split>,
    ) -> Result<RunResult, RunError> {
        let dir = self.out.join("runs").join(run_id(cfg));
        let wall_path = dir.join(WALL_FILE);
        let checkpoint = dir.join(CHECKPOINT_FILE).is_file();
        if !(checkpoint && dir.join(EVAL_FILE).is_file()) {
            let resume = checkpoint;
            if resume {
                check_config(&dir, cfg)?;
            } else if dir.exists() {
                // Stopped before its first checkpoint, or results committed without their
                // checkpoint (the figures need it): trained again, to the same numbers.
                std::fs::remove_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
            }
            self.say(&format!(
                "{} {}",
                if resume { "resuming" } else { "training" },
                dir.display()
            ));
            let opts = RunOptions {
                resume,
                data_dir: self.data_dir.clone(),
                probe_images: Some(probe),
                ..RunOptions::new(&dir)
            };
            let started = Instant::now();
            let result = train::train(cfg, &opts, self.stop);
            if dir.is_dir() {
                let before = read_wall(&wall_path);
                write_text(
                    &wall_path,
                    &format!("{}\n", before + started.elapsed().as_secs_f64()),
                )?;
            }
            result?;
        } else {
            check_config(&dir, cfg)?;
        }
        let eval = read_json(&dir.join(EVAL_FILE))?;
        let validation = match validation {
            None => None,
            Some(split) => Some(self.validate(&dir, cfg, split)?),
        };
        let result = RunResult {
            wall_s: read_wall(&wall_path),
            dir,
            eval,
            validation,
        };
        self.say(&format!(
            "  test MSE {:.5}, latent dead {}, {:.0} s",
            result.eval["test_mse"].as_f64().unwrap_or(f64::NAN),
            latent(&result.eval, "dead_frac").map_or("-".into(), |d| format!("{:.1} %", 100.0 * d)),
            result.wall_s
        ));
        Ok(result)
    }

    /// The validation scores of a finished run (computed once, kept in the run folder).
    fn validate(&self, dir: &Path, cfg: &Config, split: &Split) -> Result<Value, RunError> {
        let path = dir.join(VALIDATION_FILE);
        if path.is_file() {
            return read_json(&path);
        }
        let loaded = train::load_run(cfg, &dir.join(CHECKPOINT_FILE), self.data_dir.as_deref())?;
        let eval = train::evaluate(&loaded.model, cfg, &loaded.train, split, 0).json();
        let value = json!({
            "images": split.len(),
            "mse": eval["test_mse"],
            "latent_dead_frac": latent(&eval, "dead_frac"),
            "latent_bursting_frac": latent(&eval, "bursting_frac"),
            "latent_density": latent(&eval, "density"),
        });
        write_text(
            &path,
            &(serde_json::to_string_pretty(&value).expect("json") + "\n"),
        )?;
        Ok(value)
    }
}

/// Refuses a run folder trained with another configuration than `cfg`.
fn check_config(dir: &Path, cfg: &Config) -> Result<(), RunError> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| io_err(&path, e))?;
    let body = |t: &str| -> String {
        t.lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    if body(&text) != body(&ConfigArgs::from_config(cfg).to_toml()) {
        return Err(RunError::Usage(format!(
            "{}: this run was trained with another configuration than the study now asks \
             for; delete the folder to train it again",
            dir.display()
        )));
    }
    Ok(())
}

fn read_json(path: &Path) -> Result<Value, RunError> {
    let text = std::fs::read_to_string(path).map_err(|e| io_err(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| RunError::Io(format!("{}: not JSON: {e}", path.display())))
}

fn read_wall(path: &Path) -> f64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A field of the latent layer's entry in an `eval.json`'s `layers`.
fn latent(eval: &Value, field: &str) -> Option<f64> {
    eval["layers"]
        .as_array()?
        .iter()
        .find(|l| l["name"] == "latent")?[field]
        .as_f64()
}

/// Mean and sample standard deviation (`None` for fewer than two values) of `values`;
/// `None` when any is missing.
fn mean_std(values: &[Option<f64>]) -> (Option<f64>, Option<f64>) {
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

/// The mean over runs of a number each run's `eval.json` gives.
fn mean_of(runs: &[RunResult], get: impl Fn(&Value) -> Option<f64>) -> Option<f64> {
    mean_std(&runs.iter().map(|r| get(&r.eval)).collect::<Vec<_>>()).0
}

/// The named nonzero coefficients.
fn coefficients_json(c: &Coefficients) -> Value {
    Value::Object(
        c.named()
            .iter()
            .filter(|(_, v)| *v != 0.0)
            .map(|(k, v)| ((*k).to_string(), json!(wide(*v))))
            .collect::<Map<_, _>>(),
    )
}

/// One row of `summary.json`: the row's configuration and its runs' results, averaged
/// over seeds.
fn row_json(row: &Row, runs: &[RunResult]) -> Value {
    let mse: Vec<Option<f64>> = runs.iter().map(|r| r.eval["test_mse"].as_f64()).collect();
    let (test_mse, test_mse_std) = mean_std(&mse);
    let names: Vec<String> = runs
        .first()
        .and_then(|r| r.eval["layers"].as_array())
        .map(|ls| {
            ls.iter()
                .filter_map(|l| l["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    // Latent first, then the others in network order.
    let mut order: Vec<&String> = names.iter().filter(|n| *n == "latent").collect();
    order.extend(names.iter().filter(|n| *n != "latent"));
    let layers: Vec<Value> = order
        .iter()
        .map(|name| {
            let field = |f: &str| {
                mean_of(runs, |e| {
                    e["layers"]
                        .as_array()?
                        .iter()
                        .find(|l| l["name"] == name.as_str())?[f]
                        .as_f64()
                })
            };
            json!({
                "name": name,
                "dead_frac": field("dead_frac"),
                "bursting_frac": field("bursting_frac"),
                "density": field("density"),
            })
        })
        .collect();
    let energy = mean_of(runs, |e| e["energy_uj"].as_f64());
    let ann = mean_of(runs, |e| e["ann_energy_uj"].as_f64());
    json!({
        "name": row.name,
        "group": row.group.name(),
        "model": model_name(row.cfg.model),
        "T": row.cfg.steps,
        "regularized": row.cfg.coefficients.any(),
        "coefficients": coefficients_json(&row.cfg.coefficients),
        "weight_decay": row.cfg.weight_decay,
        "train_images": row.cfg.train_images,
        "test_images": row.cfg.test_images,
        "epochs": row.cfg.epochs,
        "seeds": row.seeds,
        "runs": runs.iter().map(|r| r.dir.file_name().map(|n| n.to_string_lossy().into_owned())).collect::<Vec<_>>(),
        "test_mse": test_mse,
        "test_mse_std": test_mse_std,
        "test_mse_per_seed": mse,
        "latent_dead_frac": mean_of(runs, |e| latent(e, "dead_frac")),
        "latent_bursting_frac": mean_of(runs, |e| latent(e, "bursting_frac")),
        "latent_density": mean_of(runs, |e| latent(e, "density")),
        "layers": layers,
        "probe_accuracy": mean_of(runs, |e| e["latent"]["probe_accuracy"].as_f64()),
        "within_between_ratio": mean_of(runs, |e| e["latent"]["within_between_ratio"].as_f64()),
        "sops_per_image": mean_of(runs, |e| e["sops_per_image"].as_f64()),
        "energy_uj": energy,
        "dense_macs_per_frame": mean_of(runs, |e| e["dense_macs_per_frame"].as_f64()),
        "energy_vs_ae": energy.zip(ann).map(|(s, a)| s / a),
        "validation": runs.first().and_then(|r| r.validation.clone()),
        "wall_s": mean_std(&runs.iter().map(|r| Some(r.wall_s)).collect::<Vec<_>>()).0,
    })
}

/// Gives the conv AE's rows their MACs per image: those of the dense network of the same
/// shapes, which the spiking runs report (`dense_macs_per_frame`), and its energy.
fn dense_baseline(rows: &mut [Value]) {
    let Some(macs) = rows.iter().find_map(|r| r["dense_macs_per_frame"].as_f64()) else {
        return;
    };
    for r in rows.iter_mut().filter(|r| r["model"] == "ae") {
        r["macs_per_image"] = json!(macs);
        r["energy_uj"] = json!(macs * PJ_PER_MAC * 1e-6);
        r["energy_vs_ae"] = json!(1.0);
    }
}

/// Trains every seed of every row, in order, and returns each row's runs.
fn run_rows(
    ctx: &Context<'_>,
    rows: &[Row],
    validation: Option<&Split>,
    done: &mut usize,
    total: usize,
) -> Result<Vec<Vec<RunResult>>, RunError> {
    rows.iter()
        .map(|row| {
            row.seeds
                .iter()
                .map(|&seed| {
                    *done += 1;
                    ctx.say(&format!("[{done}/{total}] {} seed {seed}", row.name));
                    ctx.run(&row.seeded(seed), row.probe_images, validation)
                })
                .collect()
        })
        .collect()
}

/// Lists the runs of a study without training anything: `(row, run folder name)`.
pub fn plan(study: Study, budget: Budget) -> Vec<(String, String)> {
    let p = budget.protocol();
    let rows = match study {
        Study::Paper => paper_rows(&p),
        Study::Tune => tune_rows(&p),
    };
    rows.iter()
        .flat_map(|r| {
            r.seeds
                .iter()
                .map(move |&s| (r.name.clone(), run_id(&r.seeded(s))))
        })
        .collect()
}

/// Runs a study and writes `summary.json`, `report.md` and the figures into `ctx.out`;
/// returns the summary.
pub fn run(study: Study, budget: Budget, ctx: &Context<'_>) -> Result<Value, RunError> {
    let started = Instant::now();
    let p = budget.protocol();
    std::fs::create_dir_all(&ctx.out).map_err(|e| io_err(&ctx.out, e))?;
    let summary = match study {
        Study::Paper => {
            let rows = paper_rows(&p);
            let total = rows.iter().map(|r| r.seeds.len()).sum();
            let runs = run_rows(ctx, &rows, None, &mut 0, total)?;
            let mut json_rows: Vec<Value> = rows
                .iter()
                .zip(&runs)
                .map(|(r, rs)| row_json(r, rs))
                .collect();
            dense_baseline(&mut json_rows);
            figures(ctx, &rows, &runs, &json_rows)?;
            json!({
                "study": study.name(),
                "budget": budget.name(),
                "rows": json_rows,
            })
        }
        Study::Tune => tune(ctx, &p)?,
    };
    let mut summary = summary;
    // Each run once, though rows may share it.
    let names: std::collections::BTreeSet<&str> = summary["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["runs"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    let runs_dir = ctx.out.join("runs");
    let runs_s: f64 = names
        .iter()
        .map(|n| read_wall(&runs_dir.join(n).join(WALL_FILE)))
        .sum();
    let runs = names.len();
    summary["runs"] = json!(runs);
    summary["runs_wall_s"] = json!(runs_s);
    summary["call_wall_s"] = json!(started.elapsed().as_secs_f64());
    summary["command"] = json!(format!(
        "sae experiment {} --budget {}",
        study.name(),
        budget.name()
    ));
    write_text(
        &ctx.out.join("summary.json"),
        &(serde_json::to_string_pretty(&summary).expect("json") + "\n"),
    )?;
    write_text(&ctx.out.join("report.md"), &report(&summary))?;
    Ok(summary)
}

/// The validation split: the last `n` images of MNIST's training split.
fn validation_split(ctx: &Context<'_>, n: usize) -> Result<Split, RunError> {
    let mnist = Mnist::load(&resolve_dir(ctx.data_dir.as_deref())?)?;
    Ok(mnist.train.range(mnist.train.len() - n, n))
}

/// The most latent neurons, as a fraction, that a tuning run may leave dead or bursting on
/// the validation images and still count as healthy. Not zero: on the quick budget the
/// model whose 2 % of latent neurons stay silent reconstructs far better than the one that
/// silences none (the regularizer strong enough for that also silences most spikes).
pub const HEALTHY_LATENT: f64 = 0.05;

/// Whether a tuning run's latent layer is healthy (see [`HEALTHY_LATENT`]), and its
/// validation MSE.
fn score(r: &RunResult) -> (bool, f64) {
    let v = r.validation.as_ref().expect("tuning runs are validated");
    let within = |k: &str| v[k].as_f64().is_some_and(|f| f <= HEALTHY_LATENT);
    let healthy = within("latent_dead_frac") && within("latent_bursting_frac");
    (healthy, v["mse"].as_f64().unwrap_or(f64::INFINITY))
}

/// The better of the candidates: healthy latents first, then the lower validation MSE.
fn best<'a>(candidates: impl Iterator<Item = (usize, &'a RunResult)>) -> Option<usize> {
    candidates
        .min_by(|(_, a), (_, b)| {
            let ((ha, ma), (hb, mb)) = (score(a), score(b));
            hb.cmp(&ha).then(ma.total_cmp(&mb))
        })
        .map(|(i, _)| i)
}

/// The coefficient search: every family over the grid, then the chosen values combined.
fn tune(ctx: &Context<'_>, p: &Protocol) -> Result<Value, RunError> {
    let validation = validation_split(ctx, p.validation_images)?;
    let mut rows = tune_rows(p);
    let total = rows.len() + 2;
    let mut done = 0;
    let mut runs: Vec<RunResult> = run_rows(ctx, &rows, Some(&validation), &mut done, total)?
        .into_iter()
        .flatten()
        .collect();
    let mut chosen = [0.0f32; 3];
    let mut picked = vec![];
    for (fi, c) in chosen.iter_mut().enumerate() {
        let first = 1 + fi * p.grid.len();
        let i = best((first..first + p.grid.len()).map(|i| (i, &runs[i]))).expect("a grid");
        *c = p.grid[i - first];
        picked.push(i);
    }
    let base = tune_base(p);
    let combos = [
        [Some(chosen[0]), Some(chosen[1]), None],
        [Some(chosen[0]), Some(chosen[1]), Some(chosen[2])],
    ];
    let first_combo = rows.len();
    for (name, values) in ["potential-l2 + burst-l2", "all three"].iter().zip(&combos) {
        let row = Row {
            name: (*name).to_string(),
            group: Group::Tune,
            cfg: Config {
                coefficients: combine(values),
                ..base.clone()
            },
            seeds: vec![p.seeds[0]],
            probe_images: 0,
        };
        let new = run_rows(
            ctx,
            std::slice::from_ref(&row),
            Some(&validation),
            &mut done,
            total,
        )?;
        runs.extend(new.into_iter().flatten());
        rows.push(row);
    }
    let combo = best((first_combo..runs.len()).map(|i| (i, &runs[i]))).expect("two combinations");
    let overall = best(picked.iter().chain([&combo]).map(|&i| (i, &runs[i]))).expect("candidates");
    // A family alone as a combination: its value, the others unused.
    let alone = |fi: usize| {
        let mut v = [None; 3];
        v[fi] = Some(chosen[fi]);
        v
    };
    let tuned = Tuned {
        families: chosen,
        combined: combos[combo - first_combo],
        best: match picked.iter().position(|&i| i == overall) {
            Some(fi) => alone(fi),
            None => combos[combo - first_combo],
        },
    };
    let json_rows: Vec<Value> = rows
        .iter()
        .zip(&runs)
        .map(|(r, run)| row_json(r, std::slice::from_ref(run)))
        .collect();
    let families: Map<String, Value> = FAMILIES
        .iter()
        .zip(&tuned.families)
        .map(|((name, _), v)| ((*name).to_string(), json!(wide(*v))))
        .collect();
    if tuned != TUNED {
        ctx.say(&format!(
            "note: these choices differ from experiment::TUNED (the paper study's): {tuned:?}"
        ));
    }
    Ok(json!({
        "study": "tune",
        "rule": format!(
            "per family, the grid value with the lowest validation MSE among the runs that \
             leave at most {:.0} % of the latent neurons dead and at most {:.0} % bursting on \
             the validation images (the lowest MSE if none does); then the better of the \
             two combinations of the chosen values likewise, and the best of all likewise",
            100.0 * HEALTHY_LATENT,
            100.0 * HEALTHY_LATENT
        ),
        "validation_images": validation.len(),
        "chosen": {
            "families": families,
            "combined": rows[combo].name,
            "combined_coefficients": coefficients_json(&combine(&tuned.combined)),
            "best": rows[overall].name,
            "best_coefficients": coefficients_json(&combine(&tuned.best)),
        },
        "rows": json_rows,
    }))
}

/// The study's figures in `<out>/figures/`: reconstructions of every model, firing-rate
/// histograms and latent pictures of chosen runs, MSE against synaptic operations.
fn figures(
    ctx: &Context<'_>,
    rows: &[Row],
    runs: &[Vec<RunResult>],
    json_rows: &[Value],
) -> Result<(), RunError> {
    let dir = ctx.out.join("figures");
    std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
    let first = |name: &str| -> Option<(&Row, &RunResult)> {
        let i = rows.iter().position(|r| r.name == name)?;
        Some((&rows[i], runs[i].first()?))
    };
    // Reconstructions of the first seed of each main model.
    let mut pictures: Vec<(String, Vec<f32>)> = vec![];
    for name in ["ae", "vae", "sae-unregularized", "sae-best"] {
        if let Some((row, run)) = first(name) {
            let loaded = train::load_run(
                &row.seeded(row.seeds[0]),
                &run.dir.join(CHECKPOINT_FILE),
                ctx.data_dir.as_deref(),
            )?;
            let (originals, recons) = loaded.reconstruction(10);
            if pictures.is_empty() {
                pictures.push(("original".into(), originals));
            }
            pictures.push((name.to_uppercase().replace("SAE-", "SAE "), recons));
        }
    }
    let path = dir.join("reconstructions.png");
    let refs: Vec<(&str, &[f32])> = pictures
        .iter()
        .map(|(l, p)| (l.as_str(), p.as_slice()))
        .collect();
    plots::reconstruction_rows(&path, &refs, 10).map_err(|e| io_err(&path, e))?;
    // Per-run pictures, copied.
    for (name, file, to) in [
        (
            "sae-unregularized",
            FIRING_RATES_FILE,
            "firing_rates_unregularized.png",
        ),
        ("sae-best", FIRING_RATES_FILE, "firing_rates_best.png"),
        (
            "sae-unregularized",
            LATENT_FILE,
            "latent_sae_unregularized.png",
        ),
        ("sae-best", LATENT_FILE, "latent_sae_best.png"),
        ("vae", LATENT_FILE, "latent_vae.png"),
        ("ae", LATENT_FILE, "latent_ae.png"),
    ] {
        if let Some((_, run)) = first(name) {
            let (from, to) = (run.dir.join(file), dir.join(to));
            std::fs::copy(&from, &to).map_err(|e| io_err(&from, e))?;
        }
    }
    // MSE against synaptic operations: the sweeps as curves, the main rows as points.
    let point = |r: &Value| Some((r["sops_per_image"].as_f64()?, r["test_mse"].as_f64()?));
    let mut curves: Vec<(String, Vec<(f64, f64)>)> = vec![];
    for prefix in ["sae-unregularized-t", "sae-best-t"] {
        let pts: Vec<(f64, f64)> = json_rows
            .iter()
            .filter(|r| {
                r["group"] == "sweep" && r["name"].as_str().is_some_and(|n| n.starts_with(prefix))
            })
            .filter_map(point)
            .collect();
        curves.push((format!("{} SWEEP T", prefix.trim_end_matches("-t")), pts));
    }
    for r in json_rows
        .iter()
        .filter(|r| r["group"] == "main" && r["model"] == "sae")
    {
        if let Some(p) = point(r) {
            curves.push((r["name"].as_str().unwrap_or("").to_string(), vec![p]));
        }
    }
    let series: Vec<Series<'_>> = curves
        .iter()
        .map(|(label, points)| Series { label, points })
        .collect();
    let path = dir.join("mse_vs_sops.png");
    plots::line_plot(
        &path,
        &Axes {
            title: "TEST MSE AGAINST SYNAPTIC OPERATIONS PER IMAGE",
            x_label: "SOPS PER IMAGE",
            y_label: "TEST MSE",
            x_log: true,
            y_log: Some(false),
        },
        &series,
    )
    .map_err(|e| io_err(&path, e))?;
    Ok(())
}

fn fmt_opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or("–".into(), f)
}

/// The study's tables as Markdown.
fn report(summary: &Value) -> String {
    let rows = summary["rows"].as_array().cloned().unwrap_or_default();
    let num = |r: &Value, k: &str| r[k].as_f64();
    let pct = |v: Option<f64>| fmt_opt(v, |x| format!("{:.1} %", 100.0 * x));
    let sci = |v: Option<f64>| fmt_opt(v, |x| format!("{x:.3e}"));
    let coefs = |r: &Value| {
        let c = r["coefficients"].as_object().cloned().unwrap_or_default();
        if c.is_empty() {
            "–".to_string()
        } else {
            c.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let mut s = format!(
        "# `{}`\n\nWritten by the command; every number is from the run folders under `runs/` \
         (`summary.json` holds them all). Mean over seeds, ± sample standard deviation.\n\n",
        summary["command"].as_str().unwrap_or("")
    );
    let mse = |r: &Value| {
        let m = fmt_opt(num(r, "test_mse"), |x| format!("{x:.4}"));
        match num(r, "test_mse_std") {
            Some(sd) => format!("{m} ± {sd:.4}"),
            None => m,
        }
    };
    for (group, title) in [
        ("main", "Models"),
        ("tune", "Tuning candidates"),
        ("sweep", "T sweep"),
    ] {
        let rs: Vec<&Value> = rows.iter().filter(|r| r["group"] == group).collect();
        if rs.is_empty() {
            continue;
        }
        let tuning = group == "tune";
        let mut head = vec![
            "row",
            "T",
            "coefficients",
            "seeds",
            "test MSE",
            "latent dead",
            "latent bursting",
            "latent density",
            "probe acc.",
            "within/between",
            "SOPs (MACs) per image",
            "energy vs AE",
            "wall s",
        ];
        if tuning {
            head.extend(["validation MSE", "validation latent dead"]);
        }
        let _ = writeln!(
            s,
            "## {title}\n\n| {} |\n|{}",
            head.join(" | "),
            "---|".repeat(head.len())
        );
        for r in rs {
            let ops = match (num(r, "sops_per_image"), num(r, "macs_per_image")) {
                (Some(sops), _) => sci(Some(sops)),
                (None, Some(macs)) => format!("({macs:.3e})"),
                _ => "–".into(),
            };
            let mut cells = vec![
                r["name"].as_str().unwrap_or("").to_string(),
                r["T"].to_string(),
                coefs(r),
                r["seeds"].as_array().map_or(0, Vec::len).to_string(),
                mse(r),
                pct(num(r, "latent_dead_frac")),
                pct(num(r, "latent_bursting_frac")),
                fmt_opt(num(r, "latent_density"), |x| format!("{x:.3}")),
                pct(num(r, "probe_accuracy")),
                fmt_opt(num(r, "within_between_ratio"), |x| format!("{x:.2}")),
                ops,
                fmt_opt(num(r, "energy_vs_ae"), |x| format!("{x:.3}×")),
                fmt_opt(num(r, "wall_s"), |x| format!("{x:.0}")),
            ];
            if tuning {
                cells.push(fmt_opt(r["validation"]["mse"].as_f64(), |x| {
                    format!("{x:.4}")
                }));
                cells.push(pct(r["validation"]["latent_dead_frac"].as_f64()));
            }
            let _ = writeln!(s, "| {} |", cells.join(" | "));
        }
        let _ = writeln!(s);
    }
    let spiking: Vec<&Value> = rows
        .iter()
        .filter(|r| r["model"] == "sae" && r["group"] != "tune")
        .collect();
    if !spiking.is_empty() {
        let _ = writeln!(s, "## Every layer (dead / bursting / density)\n");
        let names: Vec<String> = spiking[0]["layers"]
            .as_array()
            .map(|ls| {
                ls.iter()
                    .filter_map(|l| l["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "| row | {} |\n|---|{}",
            names.join(" | "),
            "---|".repeat(names.len())
        );
        for r in spiking {
            let cells: Vec<String> = names
                .iter()
                .map(|n| {
                    let l = r["layers"]
                        .as_array()
                        .and_then(|ls| ls.iter().find(|l| l["name"] == n.as_str()));
                    l.map_or("–".into(), |l| {
                        format!(
                            "{} / {} / {}",
                            pct(l["dead_frac"].as_f64()),
                            pct(l["bursting_frac"].as_f64()),
                            fmt_opt(l["density"].as_f64(), |x| format!("{x:.3}"))
                        )
                    })
                })
                .collect();
            let _ = writeln!(
                s,
                "| {} | {} |",
                r["name"].as_str().unwrap_or(""),
                cells.join(" | ")
            );
        }
        let _ = writeln!(s);
    }
    if let Some(macs) = rows.iter().find_map(|r| num(r, "dense_macs_per_frame")) {
        let _ = writeln!(
            s,
            "The dense AE of the same shapes does {macs:.3e} MACs per image ({:.2} µJ at \
             {PJ_PER_MAC} pJ per MAC); \"energy vs AE\" divides the spiking model's \
             synaptic operations at 0.9 pJ each by it.\n",
            macs * PJ_PER_MAC * 1e-6
        );
    }
    if summary["chosen"].is_object() {
        let _ = writeln!(
            s,
            "## Chosen\n\n{}\n\nRule: {}\n",
            serde_json::to_string_pretty(&summary["chosen"]).expect("json"),
            summary["rule"].as_str().unwrap_or("")
        );
    }
    let _ = writeln!(
        s,
        "Wall time: {:.0} s training and evaluating its {} runs (summed over runs and \
         over the calls that worked on them); the last call took {:.0} s.",
        num(summary, "runs_wall_s").unwrap_or(0.0),
        summary["runs"],
        num(summary, "call_wall_s").unwrap_or(0.0)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn run_ids_name_what_differs() {
        let cfg = Config {
            steps: 10,
            train_images: 3000,
            test_images: 1000,
            seed: 1,
            coefficients: Coefficients {
                burst_l2: 0.1,
                potential_l2: 0.01,
                ..Coefficients::default()
            },
            ..Config::quick()
        };
        assert_eq!(run_id(&cfg), "sae-t10-n3000-m1000-bl2_0.1-pl2_0.01-s1");
        let ae = Config {
            model: ModelKind::Ae,
            weight_decay: 1e-5,
            coefficients: Coefficients::default(),
            ..cfg
        };
        assert_eq!(run_id(&ae), "ae-t10-n3000-m1000-wd_0.00001-s1");
    }

    #[test]
    fn the_paper_study_has_every_row_the_issue_asks_for() {
        for budget in [Budget::Smoke, Budget::Quick, Budget::Full] {
            let p = budget.protocol();
            let rows = paper_rows(&p);
            let main: Vec<&str> = rows
                .iter()
                .filter(|r| r.group == Group::Main)
                .map(|r| r.name.as_str())
                .collect();
            assert_eq!(
                main,
                [
                    "ae",
                    "vae",
                    "sae-unregularized",
                    "sae-potential-l2",
                    "sae-burst-l2",
                    "sae-activity-l2",
                    "sae-combined",
                    "sae-best"
                ]
            );
            let sweep: Vec<usize> = rows
                .iter()
                .filter(|r| r.group == Group::Sweep)
                .map(|r| r.cfg.steps)
                .collect();
            let doubled: Vec<usize> = p.sweep_steps.iter().flat_map(|&t| [t, t]).collect();
            assert_eq!(sweep, doubled);
            for r in &rows {
                r.cfg.validate().unwrap();
                let plain = ["ae", "vae"].contains(&r.name.as_str())
                    || r.name.starts_with("sae-unregularized");
                assert_eq!(r.cfg.coefficients.any(), !plain, "{}", r.name);
            }
            // A run folder stands for one configuration: rows share a run only when they
            // train the same (the full budget's T = 100 sweep is its main rows).
            let mut seen: HashMap<String, Config> = HashMap::new();
            for r in &rows {
                for &seed in &r.seeds {
                    let cfg = r.seeded(seed);
                    let first = seen.entry(run_id(&cfg)).or_insert_with(|| cfg.clone());
                    assert_eq!(*first, cfg, "{budget:?} {}", r.name);
                }
            }
            // The full budget's T = 100 sweep is its main rows' runs.
            let shares = rows
                .iter()
                .filter(|r| r.group == Group::Sweep && r.cfg.steps == p.base.steps)
                .all(|r| {
                    rows.iter()
                        .any(|m| m.group == Group::Main && m.cfg == r.cfg)
                });
            assert_eq!(shares, budget == Budget::Full, "{budget:?}");
        }
        let full = Budget::Full.protocol();
        assert_eq!(
            (full.base.steps, full.base.epochs, full.base.batch),
            (100, 10, 40)
        );
        assert_eq!(full.seeds.len(), 3);
        assert_eq!(Budget::Quick.protocol().sweep_steps, [10, 20, 50, 100]);
    }

    #[test]
    fn tuning_holds_out_the_validation_images() {
        for budget in [Budget::Quick, Budget::Full] {
            let p = budget.protocol();
            for r in tune_rows(&p) {
                assert!(r.cfg.train_images > 0);
                assert!(r.cfg.train_images + p.validation_images <= MNIST_TRAIN);
            }
            assert_eq!(tune_rows(&p).len(), 1 + FAMILIES.len() * p.grid.len());
        }
    }

    #[test]
    fn means_and_sample_deviations() {
        assert_eq!(
            mean_std(&[Some(1.0), Some(3.0)]),
            (Some(2.0), Some(2f64.sqrt()))
        );
        assert_eq!(mean_std(&[Some(1.0)]), (Some(1.0), None));
        assert_eq!(mean_std(&[Some(1.0), None]), (None, None));
        assert_eq!(mean_std(&[]), (None, None));
    }

    fn validated(mse: f64, dead: f64) -> RunResult {
        RunResult {
            dir: PathBuf::new(),
            eval: Value::Null,
            validation: Some(
                json!({"mse": mse, "latent_dead_frac": dead, "latent_bursting_frac": 0.0}),
            ),
            wall_s: 0.0,
        }
    }

    #[test]
    fn the_choice_prefers_healthy_latents_then_low_mse() {
        let runs = [
            validated(0.02, 0.1),
            validated(0.03, 0.0),
            validated(0.025, 0.0),
        ];
        assert_eq!(best(runs.iter().enumerate()), Some(2));
        let sick = [validated(0.02, 0.1), validated(0.01, 0.5)];
        assert_eq!(best(sick.iter().enumerate()), Some(1));
    }

    #[test]
    fn a_folder_of_another_configuration_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::quick();
        let text = format!("# header\n{}", ConfigArgs::from_config(&cfg).to_toml());
        std::fs::write(dir.path().join(CONFIG_FILE), text).unwrap();
        check_config(dir.path(), &cfg).unwrap();
        let other = Config { steps: 9, ..cfg };
        let err = check_config(dir.path(), &other).unwrap_err().to_string();
        assert!(err.contains("another configuration"), "{err}");
    }
}
