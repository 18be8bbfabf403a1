//! Runs of a study: each trained (or resumed, or skipped when finished) in its own run
//! folder under `<out>/runs/`, its wall time accumulated over the calls that worked on
//! it, and a tuning run scored once on the validation images.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::cluster::Group;
use crate::config::{Config, ConfigArgs, resolve};
use crate::data::Split;
use crate::report::evaluation::{EvalRecord, read_json, to_json};
use crate::run::error::{RunError, io_err};
use crate::run::folder::{CHECKPOINT_FILE, CONFIG_FILE, EVAL_FILE, write_text};
use crate::run::signals::Stop;
use crate::run::{RunOptions, evaluate, load_run, train};
use crate::study::protocol::run_id;
use crate::study::summary::{RunResult, Validation};

/// File of a run's accumulated wall time.
pub(crate) const WALL_FILE: &str = "wall_s.txt";
/// File of a tuning run's validation scores.
const VALIDATION_FILE: &str = "validation.json";

/// Where a study writes, and how.
#[derive(Clone)]
pub struct Context<'a> {
    /// The study's folder (`results/<study>-<budget>`).
    pub out: PathBuf,
    /// MNIST directory (else `MNIST_DIR`, else `data/mnist`).
    pub data_dir: Option<PathBuf>,
    /// Set by a signal: the current run checkpoints and the study stops.
    pub stop: &'a Stop,
    /// One line per run on stderr.
    pub verbose: bool,
    /// The processes the study's runs are spread over (each run on one of them).
    pub group: &'a Group,
}

impl Context<'_> {
    pub(crate) fn say(&self, line: &str) {
        if self.verbose {
            eprintln!("{}{line}", crate::cluster::rank_prefix());
        }
    }

    /// Trains (or resumes, or skips) the run of `cfg` and returns its results.
    pub(crate) fn run(
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
            let result = train(cfg, &opts, self.stop);
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
        let eval: EvalRecord = read_json(&dir.join(EVAL_FILE)).map_err(RunError::Io)?;
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
            "  test MSE {:.5}{}, latent dead {}, {:.0} s",
            result.eval.test_mse,
            result
                .eval
                .sampled_mse
                .map_or(String::new(), |s| format!(" (z = μ; sampled z {s})")),
            result
                .eval
                .layer("latent")
                .map_or("-".into(), |l| format!("{:.1} %", 100.0 * l.dead_frac)),
            result.wall_s
        ));
        Ok(result)
    }

    /// The validation scores of a finished run (computed once, kept in the run folder).
    fn validate(&self, dir: &Path, cfg: &Config, split: &Split) -> Result<Validation, RunError> {
        let path = dir.join(VALIDATION_FILE);
        if path.is_file() {
            return read_json(&path).map_err(RunError::Io);
        }
        let loaded = load_run(cfg, &dir.join(CHECKPOINT_FILE), self.data_dir.as_deref())?;
        let eval = evaluate(&loaded.model, cfg, &loaded.train, split, 0).record();
        let latent = eval.layer("latent");
        let value = Validation {
            images: split.len(),
            mse: eval.test_mse,
            latent_dead_frac: latent.map(|l| l.dead_frac),
            latent_bursting_frac: latent.map(|l| l.bursting_frac),
            latent_density: latent.map(|l| l.density),
        };
        write_text(&path, &to_json(&value))?;
        Ok(value)
    }
}

/// Refuses a run folder trained with another configuration than `cfg`.
pub(crate) fn check_config(dir: &Path, cfg: &Config) -> Result<(), RunError> {
    let path = dir.join(CONFIG_FILE);
    let written =
        ConfigArgs::read_run(&path).and_then(|file| resolve(Some(&file), &ConfigArgs::default()));
    if written.map(|w| w.effective()) != Ok(cfg.effective()) {
        return Err(RunError::Usage(format!(
            "{}: this run was trained with another configuration than the study now asks \
             for; delete the folder to train it again",
            dir.display()
        )));
    }
    Ok(())
}

/// Seconds a run has trained, over the calls that worked on it (0 before any).
pub(crate) fn read_wall(path: &Path) -> f64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0.0)
}
