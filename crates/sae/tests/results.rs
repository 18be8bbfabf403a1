//! Every committed result under `results/` still reads back as the types that write it:
//! a run folder's `config.toml` (and its text is what the configuration writes today),
//! `eval.json`, `metrics.jsonl` and `validation.json`, each study's `summary.json`, and
//! the `sae bench` reports.

use std::path::{Path, PathBuf};

use sae::config::{ConfigArgs, resolve};
use sae::report::evaluation::{EvalRecord, read_json};
use sae::run::bench::BenchReport;
use sae::run::train::MetricsLine;
use sae::study::StudySummary;
use sae::study::summary::Validation;

fn results() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../results")
}

/// Folders under `results/` holding a `config.toml`.
fn run_folders(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.join("config.toml").is_file() {
                out.push(path.clone());
            }
            run_folders(&path, out);
        }
    }
}

#[test]
fn every_committed_run_folder_loads() {
    let mut runs = vec![];
    run_folders(&results(), &mut runs);
    assert!(
        runs.len() >= 20,
        "only {} run folders under results/",
        runs.len()
    );
    for run in &runs {
        let config = run.join("config.toml");
        let file = ConfigArgs::read_run(&config).unwrap();
        let cfg = resolve(Some(&file), &ConfigArgs::default())
            .unwrap_or_else(|e| panic!("{}: {e}", config.display()));
        let text = std::fs::read_to_string(&config).unwrap();
        let body: String = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        // Written before time tiles existed: it ran as one tile of all its steps, and
        // today's file says so in one more line.
        let mut today = cfg.to_toml();
        if !body.contains("time_tile = ") {
            assert_eq!(cfg.time_tile, cfg.steps, "{}", config.display());
            let line = format!("time_tile = {}\n", cfg.steps);
            assert!(today.ends_with(&line), "{today}");
            today.truncate(today.len() - line.len());
        }
        assert_eq!(
            body,
            today,
            "{}: written differently today",
            config.display()
        );
        let eval: EvalRecord = read_json(&run.join("eval.json")).unwrap();
        assert!(eval.images > 0, "{}", run.display());
        let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
        for line in metrics.lines() {
            let m: MetricsLine = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}: {e}", run.join("metrics.jsonl").display()));
            assert!(m.step > 0);
        }
        let validation = run.join("validation.json");
        if validation.is_file() {
            let _: Validation = read_json(&validation).unwrap();
        }
    }
}

#[test]
fn every_committed_study_summary_loads() {
    let mut found = 0;
    for entry in std::fs::read_dir(results()).unwrap() {
        let summary = entry.unwrap().path().join("summary.json");
        if summary.is_file() {
            let s: StudySummary = read_json(&summary).unwrap();
            assert!(!s.rows.is_empty(), "{}", summary.display());
            // Written back, it reads as the same summary.
            let text = serde_json::to_string(&s).unwrap();
            assert_eq!(serde_json::from_str::<StudySummary>(&text).unwrap(), s);
            found += 1;
        }
    }
    assert!(found >= 2, "{found} study summaries under results/");
}

#[test]
fn every_committed_bench_report_loads() {
    let dir = results().join("bench");
    let mut found = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let r: BenchReport = read_json(&path).unwrap();
            assert!(
                r.train_step_ms.is_some() && r.infer_step_ms.is_some(),
                "{}",
                path.display()
            );
            found += 1;
        }
    }
    assert!(found >= 2, "{found} bench reports under results/bench");
}
