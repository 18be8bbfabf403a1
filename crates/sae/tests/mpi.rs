//! `sae train` under `mpirun` (feature `mpi`; `.ci/run` installs Open MPI and runs these
//! with `cargo test --release -p sae --features mpi --test mpi`): two ranks give the
//! losses of one process with the same global batch, write one run folder that a
//! one-process `sae eval` reads, resume with another number of ranks, score the VAE's
//! sampled code as one process does, and refuse what the ranks cannot share. Data: a generated MNIST-shaped set, so no download is needed.

#![cfg(feature = "mpi")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{SAE, lines, sae, spawn_and_wait, stderr};

/// A MNIST-shaped folder of smooth patterned images (so the network has something to
/// learn).
fn data(dir: &Path) -> PathBuf {
    common::mnist_like(dir, 200, 64, |k| {
        let (i, p) = (k / 784, k % 784);
        (((p / 28 + p % 28 + i * 3) % 17) * 15) as u8
    })
}

fn train_args(data: &Path, runs: &Path, name: &str, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "train",
        "--data-dir",
        data.to_str().unwrap(),
        "--runs-dir",
        runs.to_str().unwrap(),
        "--name",
        name,
        "--steps",
        "4",
        "--channels",
        "4,8",
        "--latent",
        "16",
        "--probe-images",
        "0",
        "--threads",
        "1",
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if !extra.contains(&"--batch") {
        a.extend(["--batch".into(), "20".into()]);
    }
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn mpirun(np: usize) -> Command {
    let mut c = Command::new("mpirun");
    c.args([
        "--allow-run-as-root",
        "--oversubscribe",
        "-np",
        &np.to_string(),
        SAE,
    ]);
    c
}

fn mpi_train(np: usize, args: &[String]) -> Output {
    mpirun(np)
        .args(args)
        .output()
        .expect("mpirun (Debian: openmpi-bin) must be installed to run these tests")
}

/// `(loss, mse)` of every step of a run.
fn losses(dir: &Path) -> Vec<(f64, f64)> {
    std::fs::read_to_string(dir.join("steps.tsv"))
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<f64> = l.split('\t').map(|v| v.parse().unwrap()).collect();
            (f[1], f[2])
        })
        .collect()
}

fn assert_close(a: &[(f64, f64)], b: &[(f64, f64)]) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        for (u, v) in [(x.0, y.0), (x.1, y.1)] {
            assert!(
                (u - v).abs() <= 1e-5 * u.abs().max(v.abs()),
                "step {}: {u} against {v}",
                i + 1
            );
        }
    }
}

#[test]
fn two_ranks_give_the_one_process_losses_and_one_readable_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(&tmp.path().join("data"));
    let runs = tmp.path().join("runs");
    let extra = ["--epochs", "2"];
    let one = sae(&train_args(&data, &runs, "one", &extra));
    assert!(one.status.success(), "{}", stderr(&one));
    let two = mpi_train(2, &train_args(&data, &runs, "two", &extra));
    assert!(two.status.success(), "{}", stderr(&two));
    assert_eq!(
        String::from_utf8_lossy(&two.stdout).lines().count(),
        1,
        "rank 0 alone reports"
    );
    assert_close(&losses(&runs.join("one")), &losses(&runs.join("two")));
    // The evaluation, sharded over the ranks, scores what one process scores.
    let mse = |run: &str| -> f64 {
        let text = std::fs::read_to_string(runs.join(run).join("eval.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["test_mse"].as_f64().unwrap()
    };
    let (a, b) = (mse("one"), mse("two"));
    assert!((a - b).abs() <= 1e-5 * a, "test MSE {a} against {b}");
    // Written once, by rank 0, and read by one process.

    assert_eq!(lines(&runs.join("two").join("metrics.jsonl")), 2);
    let d = data.to_str().unwrap();
    let eval = sae(&["eval", runs.join("two").to_str().unwrap(), "--data-dir", d]);
    assert!(eval.status.success(), "{}", stderr(&eval));

    // Three ranks share 20 images as 7 + 7 + 6, and resume a run two ranks began.
    let stop = mpi_train(
        2,
        &train_args(
            &data,
            &runs,
            "mixed",
            &["--epochs", "2", "--stop-after", "5"],
        ),
    );
    assert!(stop.status.success(), "{}", stderr(&stop));
    let mut resume: Vec<String> = [
        "train",
        "--resume",
        runs.join("mixed").to_str().unwrap(),
        "--data-dir",
        d,
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    resume.extend(["--threads".into(), "1".into()]);
    let three = mpi_train(3, &resume);
    assert!(three.status.success(), "{}", stderr(&three));
    assert_close(&losses(&runs.join("one")), &losses(&runs.join("mixed")));
    let c = mse("mixed");
    assert!(
        (a - c).abs() <= 1e-5 * a,
        "test MSE {a} against {c} (3 ranks)"
    );
}

/// The VAE's sampled-z MSE, its draws fixed by the test image and its per-image values
/// combined exactly, is the same bit for bit when two ranks evaluate the parameters one
/// process trained (resuming the finished run evaluates it again).
#[test]
fn two_ranks_score_the_vae_sampled_code_as_one_process() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(&tmp.path().join("data"));
    let runs = tmp.path().join("runs");
    let one = sae(&train_args(
        &data,
        &runs,
        "vae",
        &["--model", "vae", "--epochs", "1"],
    ));
    assert!(one.status.success(), "{}", stderr(&one));
    let dir = runs.join("vae");
    let eval = || -> serde_json::Value {
        let text = std::fs::read_to_string(dir.join("eval.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let before = eval();
    assert!(before["sampled_mse"]["mean"].as_f64().unwrap() > 0.0);
    let resume: Vec<String> = [
        "train",
        "--resume",
        dir.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--threads",
        "1",
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // 64 test images in batches of 20: rank 0 scores batches 0 and 2, rank 1 1 and 3.
    std::fs::remove_file(dir.join("eval.json")).unwrap();
    let two = mpi_train(2, &resume);
    assert!(two.status.success(), "{}", stderr(&two));
    let after = eval();
    assert_eq!(after["sampled_mse"], before["sampled_mse"]);
    let (a, b) = (
        before["test_mse"].as_f64().unwrap(),
        after["test_mse"].as_f64().unwrap(),
    );
    assert!((a - b).abs() <= 1e-5 * a, "test MSE {a} against {b}");
}

#[test]
fn a_dead_rank_ends_the_job_and_resume_continues_from_the_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(&tmp.path().join("data"));
    let runs = tmp.path().join("runs");
    let extra = ["--epochs", "400", "--checkpoint-every", "5"];
    let mut job = mpirun(2);
    job.args(train_args(&data, &runs, "killed", &extra));
    let dir = runs.join("killed");
    let mut job = spawn_and_wait(job, &dir, 12);
    // Kill rank 1 (the sae process whose rank variable is 1).
    let ranks = Command::new("pgrep")
        .args(["-f", "--", "--name killed"])
        .output()
        .unwrap();
    let pids: Vec<u32> = String::from_utf8_lossy(&ranks.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let rank1 = pids
        .iter()
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
                env.split(|&b| b == 0)
                    .any(|v| v == b"OMPI_COMM_WORLD_RANK=1")
            })
        })
        .expect("rank 1's process");
    assert!(
        Command::new("kill")
            .args(["-9", &rank1.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let t0 = Instant::now();
    let status = job.wait().unwrap();
    assert!(!status.success());
    assert!(
        t0.elapsed() < Duration::from_secs(60),
        "the job outlived its rank by a minute"
    );
    // The checkpoint on disk is whole and the run continues from it, here on one process.
    let checkpoint = |dir: &Path| -> u64 {
        let file = autograd::io::load_tensors(dir.join("checkpoint.safetensors")).unwrap();
        file.metadata["step"].parse().unwrap()
    };
    let at = checkpoint(&dir);
    let o = sae(&[
        "train",
        "--resume",
        dir.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--quiet",
        "--stop-after",
        &(at + 2).to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(checkpoint(&dir), at + 2);
}

#[test]
fn what_the_ranks_cannot_share_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(&tmp.path().join("data"));
    let runs = tmp.path().join("runs");
    let o = mpi_train(3, &train_args(&data, &runs, "small", &["--batch", "2"]));
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("batch = 2: a global batch shared by 3 ranks"),
        "{err}"
    );
    // 200 images in batches of 66 leave 2 for 3 ranks.
    let o = mpi_train(3, &train_args(&data, &runs, "last", &["--batch", "66"]));
    assert!(
        stderr(&o).contains("leave a last batch of 2"),
        "{}",
        stderr(&o)
    );
    // Two ranks started with different flags.
    let a = train_args(&data, &runs, "differ", &[]);
    let mut b = a.clone();
    b.extend(["--lr".into(), "0.01".into()]);
    let o = Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-np", "1", SAE])
        .args(&a)
        .args([":", "-np", "1", SAE])
        .args(&b)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("ranks [1] run another configuration"), "{err}");
    assert!(!runs.join("differ").exists(), "nothing is written");
    // A study whose ranks were given different budgets.
    let out = tmp.path().join("study");
    let o = Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-np", "1", SAE])
        .args([
            "experiment",
            "paper",
            "--budget",
            "smoke",
            "--out",
            out.to_str().unwrap(),
        ])
        .args([":", "-np", "1", SAE])
        .args([
            "experiment",
            "paper",
            "--budget",
            "quick",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(err.contains("ranks [1] run another configuration"), "{err}");
    assert!(!out.exists(), "nothing is written");
    let o = mpi_train(2, &["eval".to_string(), runs.to_str().unwrap().into()]);
    assert!(
        stderr(&o).contains("run this command as one process"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_study_spread_over_ranks_gives_the_one_process_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(&tmp.path().join("data"));
    let d = data.to_str().unwrap();
    let study = |out: &Path| -> Vec<String> {
        [
            "experiment",
            "paper",
            "--budget",
            "smoke",
            "--out",
            out.to_str().unwrap(),
            "--data-dir",
            d,
            "--quiet",
            "--threads",
            "1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    let o = sae(&study(&one));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = mpi_train(2, &study(&two));
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = |dir: &Path| -> Vec<(String, f64)> {
        let text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["name"].as_str().unwrap().to_string(),
                    r["test_mse"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        rows(&one),
        rows(&two),
        "each run trained once, on one rank, as one process trains it"
    );
    assert!(two.join("report.md").is_file() && two.join("figures").is_dir());
    // A second call finds every run done.
    let o = mpi_train(2, &study(&two));
    assert!(o.status.success(), "{}", stderr(&o));
}
