//! Training runs and what is done with them: a run lives in one folder ([`folder`]):
//! the resolved configuration (`config.toml`), one JSON line per evaluation
//! (`metrics.jsonl`), the per-step training loss (`steps.tsv`), the checkpoint
//! ([`checkpoint`]: parameters, optimizer state and the position in the run, written
//! atomically), and at the end `eval.json`, the figures and `report.md` ([`outputs`]).
//! [`train`] is the loop, [`evaluate`] scores a model, [`bench`] times its steps, and
//! [`error`] says why a command failed, [`signals`] turns SIGINT, SIGTERM and SIGHUP into a
//! checkpoint and a clean stop.
//!
//! Everything random derives from the configured seed and a position ([`crate::seeds`]),
//! so a resumed run continues exactly where it stopped, and the same seed and thread
//! count give identical metrics.

pub mod bench;
pub mod checkpoint;
pub mod error;
pub mod evaluate;
pub mod folder;
pub mod lock;
pub mod outputs;
pub mod parallel;
pub mod signals;
pub mod train;

pub use checkpoint::Schedule;
pub use error::RunError;
pub use evaluate::{Loaded, evaluate, load_run};
pub use train::{RunOptions, Summary, train, train_on};

/// A small, fast configuration for the run tests on real MNIST: a narrow network at
/// T = 4, two epochs of 16 steps, with the quick preset's regularizers (burst-L2 and
/// potential-L2).
#[cfg(test)]
pub(crate) fn small_config() -> crate::config::Config {
    use crate::config::{Coefficients, Config};
    Config {
        steps: 4,
        batch: 32,
        epochs: 2,
        lr: 2e-3,
        train_images: 512,
        test_images: 256,
        input_scale: 1.0,
        channels: vec![4, 8],
        latent: 32,
        coefficients: Coefficients {
            burst_l2: 0.01,
            potential_l2: 0.01,
            ..Coefficients::default()
        },
        ..Config::quick()
    }
}
