//! What `sae` guarantees when things go wrong, end to end: signals from a scheduler, two
//! processes on one run, a run that diverges, parameters that are not numbers, empty data
//! and paths that are not what they should be. Each test makes its own tiny MNIST-shaped
//! data set (random pixels), so none needs the real one.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

mod common;
use common::{lines, sae, signal, stderr, tiny_train_args};

/// Starts a long training run and waits until it has done `steps` steps.
fn start(data: &Path, runs: &Path, name: &str, steps: usize) -> Child {
    let args = tiny_train_args(data, runs, name, &["--epochs", "10000"]);
    common::start_and_wait(&args, &runs.join(name), steps)
}

/// The step a run folder's checkpoint holds.
fn checkpoint_step(dir: &Path) -> u64 {
    let file = autograd::io::load_tensors(dir.join("checkpoint.safetensors")).unwrap();
    file.metadata["step"].parse().unwrap()
}

#[test]
fn sigterm_and_sighup_checkpoint_and_exit_like_ctrl_c() {
    let tmp = tempfile::tempdir().unwrap();
    let data = common::random_mnist(&tmp.path().join("data"), 64, 32);
    let runs = tmp.path().join("runs");
    for (sig, code) in [("TERM", 143), ("HUP", 129)] {
        let name = format!("run-{sig}");
        let child = start(&data, &runs, &name, 3);
        signal(&child, sig);
        let o = child.wait_with_output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "SIG{sig}: {err}");
        assert!(
            err.contains(&format!("SIG{sig} at step")) && err.contains("sae train --resume"),
            "{err}"
        );
        let dir = runs.join(&name);
        // Every step logged is in the checkpoint: nothing is redone or lost.
        assert_eq!(
            checkpoint_step(&dir) as usize,
            lines(&dir.join("steps.tsv"))
        );
        assert!(!dir.join(".lock").exists(), "the lock is released");
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains(".tmp"))
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
    }
}

#[test]
fn a_run_being_written_is_locked_and_leftovers_of_a_killed_one_are_cleaned() {
    let tmp = tempfile::tempdir().unwrap();
    let data = common::random_mnist(&tmp.path().join("data"), 64, 32);
    let runs = tmp.path().join("runs");
    let mut child = start(&data, &runs, "busy", 2);
    let dir = runs.join("busy");
    let resume = |extra: &[&str]| {
        let mut a = vec![
            "train".to_string(),
            "--resume".into(),
            dir.display().to_string(),
            "--data-dir".into(),
            data.display().to_string(),
            "--quiet".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        sae(&a)
    };
    let o = resume(&[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("being written by process {}", child.id())),
        "{err}"
    );
    let o = sae(&[
        "analyze",
        dir.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(
        stderr(&o).contains("being written by process"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.join("eval.json").exists());

    // SIGKILL: no checkpoint, a lock file and (as if killed mid-write) a temporary left.
    child.kill().unwrap();
    child.wait().unwrap();
    let stale = dir.join(".checkpoint.safetensors.tmp4194304");
    std::fs::write(&stale, vec![0u8; 1 << 20]).unwrap();
    let at = checkpoint_step(&dir);
    let o = resume(&["--stop-after", &(at + 2).to_string()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stale.exists(), "the stale temporary file is removed");
    assert!(!dir.join(".lock").exists());
    assert_eq!(checkpoint_step(&dir), at + 2);
}

#[test]
fn a_run_whose_update_is_not_finite_stops_and_keeps_a_good_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let data = common::random_mnist(&tmp.path().join("data"), 64, 32);
    let runs = tmp.path().join("runs");
    // AdamW scales each weight by 1 − lr·wd: with lr·wd beyond f32, weights become ±inf or
    // NaN in the first update, while the loss that step was finite.
    let o = sae(&tiny_train_args(
        &data,
        &runs,
        "nan",
        &["--epochs", "1", "--lr", "3e38", "--weight-decay", "1"],
    ));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the update of step 1 (epoch 1) made `")
            && err.contains("NaN or infinite")
            && err.contains("last good checkpoint (step 0)")
            && err.contains("lower --lr"),
        "{err}"
    );
    let dir = runs.join("nan");
    assert_eq!(checkpoint_step(&dir), 0);
    let file = autograd::io::load_tensors(dir.join("checkpoint.safetensors")).unwrap();
    assert!(
        file.tensors
            .values()
            .all(|t| t.iter().all(|v| v.is_finite()))
    );
    assert!(!dir.join("eval.json").exists());
    // What is kept evaluates.
    let o = sae(&[
        "eval",
        dir.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A run folder at step 0 whose checkpoint has one NaN weight (as a corrupted or
/// hand-made file could), and the good checkpoint's bytes.
fn poisoned_run(data: &Path, runs: &Path) -> (PathBuf, PathBuf) {
    let o = sae(&tiny_train_args(
        data,
        runs,
        "poisoned",
        &["--stop-after", "0"],
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = runs.join("poisoned");
    let path = dir.join("checkpoint.safetensors");
    let good = dir.join("good.safetensors");
    std::fs::copy(&path, &good).unwrap();
    let mut file = autograd::io::load_tensors(&path).unwrap();
    file.tensors.get_mut("latent.weight").unwrap()[[0, 0]] = f32::NAN;
    autograd::io::save_tensors(
        &path,
        file.tensors.iter().map(|(n, t)| (n.clone(), t)),
        Some(file.metadata.clone()),
    )
    .unwrap();
    (dir, good)
}

#[test]
fn non_finite_parameters_are_refused_naming_the_tensor() {
    let tmp = tempfile::tempdir().unwrap();
    let data = common::random_mnist(&tmp.path().join("data"), 64, 32);
    let runs = tmp.path().join("runs");
    let (dir, _) = poisoned_run(&data, &runs);
    let d = data.to_str().unwrap();
    for cmd in ["eval", "analyze", "reconstruct"] {
        let o = sae(&[cmd, dir.to_str().unwrap(), "--data-dir", d]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{cmd}: {err}");
        assert!(
            err.contains("`latent.weight` (1 of") && err.contains("NaN or infinite"),
            "{cmd}: {err}"
        );
    }
    assert!(!dir.join("eval.json").exists() && !dir.join("report.md").exists());
    let ckpt = dir.join("checkpoint.safetensors");
    let o = sae(&tiny_train_args(
        &data,
        &runs,
        "init",
        &["--init", ckpt.to_str().unwrap()],
    ));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("`latent.weight`"), "{}", stderr(&o));
    assert!(!runs.join("init").exists(), "nothing is created");
    let o = sae(&["train", "--resume", dir.to_str().unwrap(), "--data-dir", d]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("`latent.weight`"), "{}", stderr(&o));
}

#[test]
fn an_empty_split_is_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let data = common::random_mnist(&tmp.path().join("data"), 64, 32);
    let empty_test = common::random_mnist(&tmp.path().join("no-test"), 64, 0);
    let empty_train = common::random_mnist(&tmp.path().join("no-train"), 0, 32);
    let runs = tmp.path().join("runs");
    let o = sae(&tiny_train_args(&data, &runs, "done", &["--epochs", "1"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = runs.join("done");
    let eval = std::fs::read(dir.join("eval.json")).unwrap();
    let report = std::fs::read(dir.join("report.md")).unwrap();
    for cmd in ["eval", "analyze", "reconstruct"] {
        let o = sae(&[
            cmd,
            dir.to_str().unwrap(),
            "--data-dir",
            empty_test.to_str().unwrap(),
        ]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{cmd}: {err}");
        assert!(
            err.contains("the test split holds no images"),
            "{cmd}: {err}"
        );
    }
    assert_eq!(std::fs::read(dir.join("eval.json")).unwrap(), eval);
    assert_eq!(std::fs::read(dir.join("report.md")).unwrap(), report);
    let o = sae(&tiny_train_args(&empty_train, &runs, "nothing", &[]));
    assert!(
        stderr(&o).contains("the train split holds no images"),
        "{}",
        stderr(&o)
    );
    assert!(!runs.join("nothing").exists());
    let o = sae(&[
        "bench",
        "--data-dir",
        empty_train.to_str().unwrap(),
        "--iters",
        "1",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the train split holds no images") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn paths_that_are_not_folders_or_files_are_named_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let data = common::random_mnist(&tmp.path().join("data"), 64, 32);
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let o = sae(&tiny_train_args(&data, &file, "run", &[]));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("a-file: not a folder"), "{err}");
    let runs = tmp.path().join("runs");
    let o = sae(&tiny_train_args(
        &data,
        &runs,
        "done",
        &["--stop-after", "0"],
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = runs.join("done");
    let o = sae(&[
        "eval",
        dir.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        tmp.path().to_str().unwrap(),
    ]);
    assert!(
        stderr(&o).contains("is a folder; give the path of a file"),
        "{}",
        stderr(&o)
    );
    let o = sae(&tiny_train_args(&data, &runs, "done", &[]));
    assert!(
        stderr(&o).contains("the run folder exists"),
        "{}",
        stderr(&o)
    );
    // Neither a checkpoint nor a configuration is opened when it is not a regular file.
    let fifo = tmp.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let d = data.to_str().unwrap();
    let not_files = [
        ("/dev/zero", "is a character device"),
        (tmp.path().to_str().unwrap(), "is a directory"),
        (fifo.to_str().unwrap(), "named pipe"),
    ];
    for (path, what) in not_files {
        let run = dir.to_str().unwrap();
        let o = sae(&["eval", run, "--data-dir", d, "--checkpoint", path]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{path}: {err}");
        assert!(err.contains(path) && err.contains(what), "{err}");
        let o = sae(&tiny_train_args(&data, &runs, "init", &["--init", path]));
        assert!(stderr(&o).contains(what), "{}", stderr(&o));
        let o = sae(&tiny_train_args(&data, &runs, "other", &["--config", path]));
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{path}: {err}");
        assert!(err.contains(path) && err.contains(what), "{err}");
    }
    assert!(!runs.join("init").exists() && !runs.join("other").exists());
    std::fs::remove_file(dir.join("checkpoint.safetensors")).unwrap();
    std::fs::create_dir(dir.join("checkpoint.safetensors")).unwrap();
    let o = sae(&["train", "--resume", dir.to_str().unwrap(), "--data-dir", d]);
    let err = stderr(&o);
    assert!(
        err.contains("is a directory") && err.contains("no checkpoint to resume from"),
        "{err}"
    );
}

#[test]
fn a_signal_during_an_evaluation_stops_it_and_the_resumed_run_does_it_first() {
    let tmp = tempfile::tempdir().unwrap();
    // One step per epoch and an evaluation of 3000 images after each: a signal right
    // after the first step lands in that evaluation.
    let data = common::random_mnist(&tmp.path().join("data"), 16, 3000);
    let runs = tmp.path().join("runs");
    let extra = ["--steps", "8", "--epochs", "3", "--probe-images", "500"];
    let whole = sae(&tiny_train_args(&data, &runs, "whole", &extra));
    assert!(whole.status.success(), "{}", stderr(&whole));
    let dir = runs.join("cut");
    let child = common::start_and_wait(&tiny_train_args(&data, &runs, "cut", &extra), &dir, 1);
    signal(&child, "TERM");
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(143), "{}", stderr(&o));
    let file = autograd::io::load_tensors(dir.join("checkpoint.safetensors")).unwrap();
    assert_eq!(file.metadata["step"], "1");
    assert_eq!(file.metadata["eval_pending"], "true");
    assert_eq!(
        lines(&dir.join("metrics.jsonl")),
        0,
        "the evaluation was cut short"
    );
    let o = sae(&[
        "train",
        "--resume",
        dir.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["metrics.jsonl", "steps.tsv", "eval.json"] {
        let read = |d: &Path| std::fs::read_to_string(d.join(f)).unwrap();
        assert_eq!(read(&runs.join("whole")), read(&dir), "{f}");
    }
}
