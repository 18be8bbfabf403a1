//! What a study trains: the shared protocol of a budget, the paper's rows and the tuning
//! grid, the regularizer families and the coefficients tuning chose, and each run's
//! folder name.

use std::fmt::Write as _;

use crate::config::{Coefficients, Config, ModelKind};

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
pub(crate) fn combine(values: &[Option<f32>]) -> Coefficients {
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
pub(crate) const MNIST_TRAIN: usize = 60_000;

/// The weight decay of the conv AE baseline (Adam's L2 term).
pub const AE_WEIGHT_DECAY: f32 = 1e-5;

crate::choice! {
    /// Which table a row belongs to.
    pub enum Group {
        /// The main comparison.
        Main = "main",
        /// The T sweep.
        Sweep = "sweep",
        /// A tuning candidate.
        Tune = "tune",
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
    pub(crate) fn seeded(&self, seed: u64) -> Config {
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
        cfg.model, cfg.steps, cfg.train_images, cfg.test_images
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
pub(crate) fn tune_base(p: &Protocol) -> Config {
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
