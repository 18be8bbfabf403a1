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

pub mod protocol;
pub mod report;
pub mod runner;
pub mod summary;
pub mod tune;

use std::time::Instant;

use crate::report::evaluation::to_json;
use crate::run::error::{RunError, io_err};
use crate::run::folder::write_text;
use crate::run::lock::RunLock;
use crate::run::parallel::agree;
pub use protocol::{Protocol, TUNED};
use protocol::{Row, paper_rows, run_id, tune_rows};
pub use runner::Context;
use runner::{WALL_FILE, read_wall};
use summary::RunResult;
pub use summary::StudySummary;
use summary::{RowSummary, dense_baseline};

use crate::config::{Coefficients, Config};
use crate::data::Split;

crate::choice! {
    /// Which study to run.
    pub enum Study {
        /// The paper's rows, seeds and T sweep (`results/paper-<budget>/`).
        Paper = "paper",
        /// The regularizer-coefficient search (`results/tune-<budget>/`).
        Tune = "tune",
    }
}

crate::choice! {
    /// How much compute a study gets.
    pub enum Budget {
        /// A miniature that finishes in under 20 minutes on 2 cores.
        Quick = "quick",
        /// The paper's protocol: T = 100, all 60 000 images for 10 epochs, 3 seeds.
        Full = "full",
        /// A pipeline check on a few dozen images (seconds; the numbers mean nothing).
        Smoke = "smoke",
    }
}

impl Budget {
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

/// Trains every seed of every row, in order, and returns each row's runs. Under an MPI
/// job the runs are spread over the ranks (run `j` on rank `j mod N`, each on its own
/// process and thread pool); once all are done every rank reads every run's results.
pub(crate) fn run_rows(
    ctx: &Context<'_>,
    rows: &[Row],
    validation: Option<&Split>,
    done: &mut usize,
    total: usize,
) -> Result<Vec<Vec<RunResult>>, RunError> {
    let group = ctx.group;
    if group.size() > 1 {
        // Rows may share a run: each is trained once, by one rank.
        let mut seen = std::collections::BTreeSet::new();
        let jobs: Vec<(&Row, u64)> = rows
            .iter()
            .flat_map(|r| r.seeds.iter().map(move |&s| (r, s)))
            .filter(|(r, s)| seen.insert(run_id(&r.seeded(*s))))
            .collect();
        let mine = jobs
            .into_iter()
            .enumerate()
            .filter(|(j, _)| j % group.size() == group.rank())
            .try_for_each(|(j, (row, seed))| {
                ctx.say(&format!(
                    "[{}/{total}] {} seed {seed}",
                    *done + j + 1,
                    row.name
                ));
                ctx.run(&row.seeded(seed), row.probe_images, validation)
                    .map(|_| ())
            });
        // Every rank waits for all runs (an error anywhere stops every rank).
        agree(group, mine)?;
        *done += rows.iter().map(|r| r.seeds.len()).sum::<usize>();
        let quiet = Context {
            verbose: false,
            ..ctx.clone()
        };
        return rows
            .iter()
            .map(|row| {
                row.seeds
                    .iter()
                    .map(|&seed| quiet.run(&row.seeded(seed), row.probe_images, validation))
                    .collect()
            })
            .collect();
    }
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
pub fn run(study: Study, budget: Budget, ctx: &Context<'_>) -> Result<StudySummary, RunError> {
    let started = Instant::now();
    let p = budget.protocol();
    let root = ctx.group.is_root();
    // One study at a time writes its folder (each run folder has its own lock too); in an
    // MPI job, rank 0 holds it for all ranks.
    let lock = root
        .then(|| {
            std::fs::create_dir_all(&ctx.out).map_err(|e| io_err(&ctx.out, e))?;
            RunLock::acquire(&ctx.out)
        })
        .transpose();
    let _lock = agree(ctx.group, lock)?;
    let mut summary = match study {
        Study::Paper => {
            let rows = paper_rows(&p);
            let total = rows.iter().map(|r| r.seeds.len()).sum();
            let runs = run_rows(ctx, &rows, None, &mut 0, total)?;
            let mut summaries: Vec<RowSummary> = rows
                .iter()
                .zip(&runs)
                .map(|(r, rs)| RowSummary::of(r, rs))
                .collect();
            dense_baseline(&mut summaries);
            if root {
                report::figures(ctx, &rows, &runs, &summaries)?;
            }
            StudySummary {
                study,
                budget: None,
                rule: None,
                validation_images: None,
                chosen: None,
                rows: summaries,
                runs: 0,
                runs_wall_s: 0.0,
                call_wall_s: 0.0,
                command: String::new(),
            }
        }
        Study::Tune => tune::tune(ctx, &p)?,
    };
    // Each run once, though rows may share it.
    let names: std::collections::BTreeSet<&str> = summary
        .rows
        .iter()
        .flat_map(|r| r.runs.iter().flatten())
        .map(String::as_str)
        .collect();
    let runs_dir = ctx.out.join("runs");
    let runs_s: f64 = names
        .iter()
        .map(|n| read_wall(&runs_dir.join(n).join(WALL_FILE)))
        .sum();
    summary.budget = Some(budget);
    summary.runs = names.len();
    summary.runs_wall_s = runs_s;
    summary.call_wall_s = started.elapsed().as_secs_f64();
    summary.command = format!("sae experiment {study} --budget {budget}");
    if root {
        write_text(&ctx.out.join("summary.json"), &to_json(&summary))?;
        write_text(&ctx.out.join("report.md"), &report::markdown(&summary))?;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests;
