//! The run folder: the names of its files, and how they are written (atomically, or one
//! flushed line at a time) and cut back to a checkpoint on resume.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use crate::run::error::{RunError, io_err};

/// The resolved configuration of a run (TOML, readable by `--config`).
pub const CONFIG_FILE: &str = "config.toml";
/// One JSON object per evaluation.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// Tab-separated `step loss mse density` of every optimizer step.
pub const STEPS_FILE: &str = "steps.tsv";
/// Parameters, optimizer state and position (safetensors).
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// The final evaluation.
pub const EVAL_FILE: &str = "eval.json";
/// Test images above their reconstructions.
pub const RECONSTRUCTIONS_FILE: &str = "reconstructions.png";
/// Latent raster and class-correlation matrix (and the same chart as SVG beside it).
pub const LATENT_FILE: &str = "latent.png";
/// Per-layer firing-rate histograms (and the same chart as SVG beside it).
pub const FIRING_RATES_FILE: &str = "firing_rates.png";
/// Training loss and MSE over the steps (and the same chart as SVG beside it).
pub const LOSS_FILE: &str = "loss.png";
/// A short summary of the run.
pub const REPORT_FILE: &str = "report.md";
/// Where a run started from `--init` names the checkpoint it started from.
pub const INIT_FILE: &str = "init.txt";

/// Writes `text` to `path` atomically.
pub fn write_text(path: &Path, text: &str) -> Result<(), RunError> {
    autograd::io::write_atomically(path, text.as_bytes()).map_err(|e| RunError::Io(e.to_string()))
}

/// Creates a new run's folder (and the folders above it). An existing run folder, or a
/// file where a folder must be, is a usage error saying so.
pub(crate) fn create_run_folder(dir: &Path) -> Result<(), RunError> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Some(file) = parent.ancestors().find(|a| a.exists() && !a.is_dir()) {
            return Err(RunError::Usage(format!(
                "{}: not a folder, so the run folder {} cannot be made in it",
                file.display(),
                dir.display()
            )));
        }
        std::fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
    }
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(RunError::Usage(format!(
            "{}: the run folder exists; pick another --name or continue it with --resume",
            dir.display()
        ))),
        r => r.map_err(|e| io_err(dir, e)),
    }
}

/// Appends one line to `path` (created if missing) and flushes it.
pub(crate) fn append_line(path: &Path, line: &str) -> Result<(), RunError> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io_err(path, e))?;
    writeln!(f, "{line}").map_err(|e| io_err(path, e))
}

/// Keeps the lines of a log whose step (as read by `step_of`) is at most `step`: what a
/// run wrote after its last checkpoint is redone on resume. A torn last line goes too.
pub(crate) fn truncate_log(
    path: &Path,
    step: u64,
    step_of: impl Fn(&str) -> Option<u64>,
) -> Result<(), RunError> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: String = text
        .lines()
        .filter(|l| step_of(l).is_some_and(|s| s <= step))
        .map(|l| format!("{l}\n"))
        .collect();
    if kept != text {
        write_text(path, &kept)?;
    }
    Ok(())
}

pub(crate) fn metrics_step(line: &str) -> Option<u64> {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()?
        .get("step")?
        .as_u64()
}

pub(crate) fn tsv_step(line: &str) -> Option<u64> {
    let mut fields = line.split('\t');
    let step = fields.next()?.parse().ok()?;
    // A complete line has four fields.
    (fields.count() == 3).then_some(step)
}

/// The name of a new run: the UTC time, `YYYYMMDD-HHMMSS`.
pub fn timestamp_name() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_has_the_expected_form() {
        let t = timestamp_name();
        assert_eq!(t.len(), 15, "{t}");
        assert_eq!(&t[8..9], "-");
        assert!(t.starts_with("20"), "{t}");
    }

    #[test]
    fn logs_are_cut_back_to_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.jsonl");
        std::fs::write(&p, "{\"step\":1}\n{\"step\":2}\n{\"step\":3}\n{\"st").unwrap();
        truncate_log(&p, 2, metrics_step).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\"step\":1}\n{\"step\":2}\n"
        );
        let p = dir.path().join("s.tsv");
        std::fs::write(&p, "1\t1\t1\t0\n2\t1\t1\t0\n3\t1\t").unwrap();
        truncate_log(&p, 5, tsv_step).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "1\t1\t1\t0\n2\t1\t1\t0\n"
        );
    }
}
