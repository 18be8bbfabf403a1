//! Training runs and what is done with them: a run lives in one folder ([`folder`]):
//! the resolved configuration (`config.toml`), one JSON line per evaluation
//! (`metrics.jsonl`), the per-step training loss (`steps.tsv`), the checkpoint
//! ([`checkpoint`]: parameters, optimizer state and the position in the run, written
//! atomically), and at the end `eval.json`, the figures and `report.md` ([`outputs`]).
//! [`train`] is the loop, [`evaluate`] scores a model, [`bench`] times its steps, and
//! [`error`] says why a command failed.
//!
//! Everything random derives from the configured seed and a position ([`crate::seeds`]),
//! so a resumed run continues exactly where it stopped, and the same seed and thread
//! count give identical metrics.

pub mod bench;
pub mod checkpoint;
pub mod error;
pub mod evaluate;
pub mod folder;
pub mod outputs;
pub mod train;

pub use error::RunError;
pub use evaluate::{Loaded, evaluate, load_run};
pub use train::{RunOptions, Schedule, Summary, train};
