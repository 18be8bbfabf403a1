//! Why a command failed, and the exit code that says so.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::data::DataError;
use crate::run::signals::Signal;

/// Exit code of a runtime error (missing data, a checkpoint that does not fit, a diverged
/// run).
pub const EXIT_RUNTIME: u8 = 1;
/// Exit code of a usage error (unknown option, invalid value or configuration).
pub const EXIT_USAGE: u8 = 2;

/// Why a command failed; [`RunError::exit_code`] is what the process returns.
#[derive(Debug)]
pub enum RunError {
    /// Bad input from the user: an invalid configuration, a bad name (exit 2).
    Usage(String),
    /// MNIST could not be found or read.
    Data(DataError),
    /// A split of the data set holds no images: nothing to train on or to score.
    EmptySplit {
        /// The data folder.
        dir: PathBuf,
        /// `train` or `test`.
        split: &'static str,
    },
    /// A checkpoint is missing, unreadable or does not fit the model.
    Checkpoint(String),
    /// Another process is writing the run folder.
    Locked {
        /// The run folder.
        dir: PathBuf,
        /// Who holds the lock (`process <pid> on <host>`).
        holder: String,
    },
    /// Writing or reading a run file failed.
    Io(String),
    /// The loss became NaN or infinite; the last good checkpoint is kept.
    Diverged(String),
    /// A signal (Ctrl-C, SIGTERM, SIGHUP) stopped the run; a checkpoint was written at
    /// `step`.
    Interrupted {
        /// The signal.
        signal: Signal,
        /// Optimizer steps done.
        step: u64,
        /// The run folder to resume.
        dir: PathBuf,
    },
}

impl RunError {
    /// [`EXIT_USAGE`], 128 + the signal's number after a signal (130 for Ctrl-C, 143 for
    /// SIGTERM), [`EXIT_RUNTIME`] otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Usage(_) => EXIT_USAGE,
            RunError::Interrupted { signal, .. } => signal.exit_code(),
            _ => EXIT_RUNTIME,
        }
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Usage(m) => write!(f, "invalid input: {m}"),
            RunError::Data(e) => write!(f, "{e}"),
            RunError::EmptySplit { dir, split } => write!(
                f,
                "{}: the {split} split holds no images; nothing was computed or written",
                dir.display()
            ),
            RunError::Checkpoint(m) => write!(f, "checkpoint: {m}"),
            RunError::Locked { dir, holder } => write!(
                f,
                "{}: the run is being written by {holder} (lock file {}); wait for it to \
                 finish or stop it first",
                dir.display(),
                dir.join(crate::run::lock::LOCK_FILE).display()
            ),
            RunError::Io(m) => write!(f, "{m}"),
            RunError::Diverged(m) => write!(f, "training diverged: {m}"),
            RunError::Interrupted { signal, step, dir } => write!(
                f,
                "{} at step {step}; checkpoint written, continue with \
                 `sae train --resume {}`",
                signal.name(),
                dir.display()
            ),
        }
    }
}

impl std::error::Error for RunError {}

impl From<DataError> for RunError {
    fn from(e: DataError) -> Self {
        RunError::Data(e)
    }
}

/// A runtime error naming the file or folder `path` and what went wrong with it.
pub fn io_err(path: &Path, e: impl fmt::Display) -> RunError {
    RunError::Io(format!("{}: {e}", path.display()))
}
