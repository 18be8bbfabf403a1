//! The study's plan, choices and bookkeeping, without training.

use std::collections::HashMap;
use std::path::PathBuf;

use super::protocol::*;
use super::runner::check_config;
use super::summary::{RunResult, Validation, mean_std};
use super::tune::best;
use super::*;
use crate::config::{Coefficients, Config, ModelKind};
use crate::run::folder::CONFIG_FILE;

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
            let plain =
                ["ae", "vae"].contains(&r.name.as_str()) || r.name.starts_with("sae-unregularized");
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
        eval: serde_json::from_str(
            r#"{"test_mse": null, "images": 0, "layers": [], "latent": null,
                "sops_per_image": null, "dense_macs_per_image": null,
                "dense_macs_per_frame": null, "energy_uj": null, "ann_energy_uj": null}"#,
        )
        .unwrap(),
        validation: Some(Validation {
            images: 1,
            mse,
            latent_dead_frac: Some(dead),
            latent_bursting_frac: Some(0.0),
            latent_density: None,
        }),
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
    let text = format!("# header\n{}", cfg.to_toml());
    std::fs::write(dir.path().join(CONFIG_FILE), text).unwrap();
    check_config(dir.path(), &cfg).unwrap();
    let other = Config { steps: 9, ..cfg };
    let err = check_config(dir.path(), &other).unwrap_err().to_string();
    assert!(err.contains("another configuration"), "{err}");
}
