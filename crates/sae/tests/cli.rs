//! The `sae` tool end to end, as a user runs it: bad input, determinism, resuming after
//! `--stop-after`, SIGKILL and Ctrl-C, the run folder's files, eval/reconstruct/analyze
//! and bench.
//!
//! Training tests use the real MNIST (`sae::data::mnist_for_tests`) on 512 training and
//! 256 test images with a narrow network at T = 4, so each run takes seconds; they are
//! marked ignored, so a plain `cargo test` lists them as such, and run with
//! `--include-ignored`, which fails them if MNIST is missing.

use std::path::Path;
use std::process::{Child, Command, Output};

use sae::config::Config;

mod common;
use common::{SAE, sae, signal, stderr};

/// The small configuration of these tests: 16 steps per epoch; two epochs at lr 0.002
/// unless the test says otherwise.
const SMALL: &[&str] = &[
    "--steps",
    "4",
    "--channels",
    "4,8",
    "--latent",
    "32",
    "--train-images",
    "512",
    "--test-images",
    "256",
    "--batch",
    "32",
    "--probe-images",
    "256",
    "--threads",
    "1",
    "--quiet",
];

/// `sae train` of the small configuration into `runs/<name>` with extra flags.
fn train_args<'a>(data: &'a Path, runs: &'a Path, name: &'a str, extra: &[&'a str]) -> Vec<String> {
    let mut a: Vec<String> = ["train", "--data-dir"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.push(data.display().to_string());
    a.extend(["--runs-dir".into(), runs.display().to_string()]);
    a.extend(["--name".into(), name.into()]);
    a.extend(SMALL.iter().map(|s| s.to_string()));
    for (flag, value) in [("--epochs", "2"), ("--lr", "0.002")] {
        if !extra.contains(&flag) {
            a.extend([flag.into(), value.into()]);
        }
    }
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn run_ok(args: &[String]) -> Output {
    let o = Command::new(SAE).args(args).output().unwrap();
    assert!(o.status.success(), "sae {args:?} failed: {}", stderr(&o));
    o
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn resume_args(data: &Path, dir: &Path) -> Vec<String> {
    vec![
        "train".into(),
        "--resume".into(),
        dir.display().to_string(),
        "--data-dir".into(),
        data.display().to_string(),
        "--threads".into(),
        "1".into(),
        "--quiet".into(),
    ]
}

/// What must match between two runs that should be identical.
fn assert_same_run(a: &Path, b: &Path) {
    for f in ["metrics.jsonl", "steps.tsv", "eval.json", "config.toml"] {
        let (x, y) = (read(&a.join(f)), read(&b.join(f)));
        let (x, y) = if f == "config.toml" {
            // The header names the folder.
            (x.lines().skip(1).collect(), y.lines().skip(1).collect())
        } else {
            (x, y)
        };
        assert_eq!(
            x,
            y,
            "{f} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

#[test]
fn bad_configuration_is_a_usage_error_naming_the_problem() {
    for (args, needle) in [
        (&["train", "--steps", "0"][..], "steps = 0"),
        (&["train", "--batch", "0"], "batch = 0"),
        (&["train", "--burst-l2", "-1"], "burst_l2 = -1"),
        (&["train", "--potential-l2", "-0.5"], "--potential-l2"),
        (&["train", "--lr", "nan"], "lr = NaN"),
        (&["train", "--frobnicate"], "--frobnicate"),
        (&["train", "--encoder", "morse"], "morse"),
        (&["train", "--steps", "-3"], "-3"),
        (&["bench", "--steps", "0"], "steps = 0"),
        (&["frobnicate"], "frobnicate"),
    ] {
        let o = sae(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn huge_sizes_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().to_str().unwrap();
    let max = "18446744073709551615";
    for (args, needle) in [
        (&["--steps", max][..], "steps = 18446744073709551615"),
        (&["--steps", "9223372036854775807"], "steps × batch"),
        (&["--batch", "1125899906842624"], "steps × batch × neurons"),
        (&["--channels", "4294967295,4294967295"], "channels = ["),
        (
            &["--latent", "9223372036854775807"],
            "latent = 9223372036854775807",
        ),
        (
            &["--padding", "4611686018427387904"],
            "padding = 4611686018427387904",
        ),
        (
            &["--kernel", "9223372036854775807"],
            "kernel = 9223372036854775807",
        ),
        (&["--steps", "100000"], "memory: training"),
        (&["--threads", "100000"], "threads = 100000"),
    ] {
        let mut full = vec!["train", "--quiet", "--runs-dir", runs];
        full.extend(args);
        let o = sae(&full);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    for (args, needle) in [
        (
            &["bench", "--iters", max][..],
            "iters = 18446744073709551615",
        ),
        (&["bench", "--steps", "100000"], "memory: training"),
        // Inference runs in time tiles: its memory follows the batch, not T.
        (
            &["bench", "--mode", "infer", "--batch", "1000000"],
            "memory: inference",
        ),
    ] {
        let o = sae(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn a_bad_config_file_names_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("run.toml");
    std::fs::write(&file, "steps = 8\nburst_l3 = 0.1\n").unwrap();
    let o = sae(&["train", "--config", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("burst_l3"), "{}", stderr(&o));
    let o = sae(&[
        "train",
        "--config",
        tmp.path().join("absent.toml").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("absent.toml"), "{}", stderr(&o));
}

#[test]
fn missing_data_says_how_to_get_it_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let o = sae(&[
        "train",
        "--data-dir",
        tmp.path().to_str().unwrap(),
        "--runs-dir",
        runs.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("./data-fetch.sh"), "{err}");
    assert!(err.contains(tmp.path().to_str().unwrap()), "{err}");
    assert!(!runs.exists(), "a failed start must not leave a run folder");
}

#[test]
fn a_checkpoint_of_another_shape_names_the_tensor_and_both_shapes() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let cfg = Config {
        steps: 2,
        channels: vec![2, 3],
        latent: 8,
        ..Config::quick()
    };
    std::fs::write(run.join("config.toml"), cfg.to_toml()).unwrap();
    // Parameters of a network with a wider latent layer.
    let wide = sae::nn::Model::new(&Config { latent: 10, ..cfg });
    let ckpt = run.join("checkpoint.safetensors");
    autograd::io::save(&ckpt, &wide.net().parameters(), None).unwrap();
    for cmd in ["eval", "analyze", "reconstruct"] {
        let o = sae(&[cmd, run.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{cmd}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains("`latent.weight`")
                && err.contains("[10, 1200]")
                && err.contains("[8, 1200]"),
            "{cmd}: {err}"
        );
    }
    let o = sae(&["train", "--resume", run.to_str().unwrap()]);
    assert_ne!(o.status.code(), Some(0));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    let o = sae(&["eval", tmp.path().join("nothing").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a run folder"), "{}", stderr(&o));
}

#[test]
fn bench_prints_one_json_object() {
    let o = sae(&[
        "bench",
        "--steps",
        "2",
        "--batch",
        "2",
        "--channels",
        "2,2",
        "--latent",
        "4",
        "--iters",
        "2",
        "--warmup",
        "0",
        "--threads",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert_eq!(text.trim().lines().count(), 1, "{text}");
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    for key in ["train_step_ms", "infer_step_ms", "peak_rss_mb"] {
        assert!(v[key].as_f64().unwrap() > 0.0, "{key}: {v}");
    }
    assert_eq!(v["threads"], 1);
}

/// `sae bench --init` times the checkpoint's parameters: its first pass's spikes are the
/// trained network's, not the initialization's; a checkpoint that does not fit is refused.
#[test]
fn bench_times_a_checkpoint_s_parameters() {
    let tmp = tempfile::tempdir().unwrap();
    let data = common::random_mnist(&tmp.path().join("mnist"), 64, 16);
    let net = [
        "--steps",
        "2",
        "--channels",
        "2,2",
        "--latent",
        "4",
        "--threads",
        "1",
    ];
    let extra = [&net[..], &["--lr", "0.05"]].concat();
    let o = sae(&common::tiny_train_args(&data, tmp.path(), "run", &extra));
    assert!(o.status.success(), "{}", stderr(&o));
    let checkpoint = tmp.path().join("run").join("checkpoint.safetensors");
    let bench = |net: &[&str], extra: &[&str]| {
        let mut a = vec![
            "bench",
            "--data-dir",
            data.to_str().unwrap(),
            "--batch",
            "4",
            "--iters",
            "1",
            "--warmup",
            "0",
            "--mode",
            "infer",
        ];
        a.extend_from_slice(net);
        a.extend_from_slice(extra);
        sae(&a)
    };
    let stats = |o: &std::process::Output| {
        assert!(o.status.success(), "{}", stderr(o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (
            v["spike_stats_at_init_first_batch"].clone(),
            v["init"].clone(),
        )
    };
    let (at_init, none) = stats(&bench(&net, &[]));
    assert!(none.is_null());
    let (trained, init) = stats(&bench(&net, &["--init", checkpoint.to_str().unwrap()]));
    assert_eq!(init.as_str(), checkpoint.to_str());
    assert_ne!(
        at_init, trained,
        "the checkpoint's parameters were not used"
    );
    let mut wider = net;
    wider[5] = "5";
    let o = bench(&wider, &["--init", checkpoint.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("latent.weight"), "{}", stderr(&o));
}

#[test]
#[ignore = "needs MNIST (./data-fetch.sh or MNIST_DIR)"]
fn a_run_too_long_to_count_is_refused() {
    let data = sae::data::mnist_for_tests();
    let tmp = tempfile::tempdir().unwrap();
    // 16 steps per epoch × 2^60 epochs is 2^64: it wrapped around to 0 steps and exit 0.
    let epochs = (1u64 << 60).to_string();
    let args = train_args(&data, tmp.path(), "long", &["--epochs", &epochs]);
    let o = Command::new(SAE).args(&args).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("epochs = {epochs}")),
        "{}",
        stderr(&o)
    );
    assert!(!tmp.path().join("long").exists());
}

#[test]
#[ignore = "needs MNIST (./data-fetch.sh or MNIST_DIR)"]
fn a_run_writes_its_folder_and_the_same_seed_gives_the_same_metrics() {
    let data = sae::data::mnist_for_tests();
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path();
    run_ok(&train_args(&data, runs, "a", &["--eval-every", "10"]));
    run_ok(&train_args(&data, runs, "b", &["--eval-every", "10"]));
    let a = runs.join("a");
    for f in [
        "config.toml",
        "metrics.jsonl",
        "checkpoint.safetensors",
        "eval.json",
        "reconstructions.png",
        "latent.png",
        "latent.svg",
        "firing_rates.png",
        "firing_rates.svg",
        "loss.png",
        "loss.svg",
        "report.md",
    ] {
        assert!(a.join(f).is_file(), "{f} missing");
    }
    // Evaluations at steps 10, 16 (epoch end), 20, 30, 32 (epoch end).
    let lines: Vec<serde_json::Value> = read(&a.join("metrics.jsonl"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let steps: Vec<u64> = lines.iter().map(|l| l["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, [10, 16, 20, 30, 32]);
    for l in &lines {
        for key in ["epoch", "images_seen", "train_loss", "test_mse"] {
            assert!(l[key].is_number(), "{key}: {l}");
        }
        assert_eq!(l["layers"].as_array().unwrap().len(), 6, "{l}");
    }
    assert_eq!(lines[1]["images_seen"], 512);
    let eval: serde_json::Value = serde_json::from_str(&read(&a.join("eval.json"))).unwrap();
    assert_eq!(eval["images"], 256);
    assert!(eval["latent"]["probe_accuracy"].is_number(), "{eval}");
    assert!(eval["dense_macs_per_image"].as_f64().unwrap() > 0.0);
    assert!(eval.get("sampled_mse").is_none(), "the VAE's only: {eval}");
    assert_same_run(&a, &runs.join("b"));

    // The resolved config.toml repeats the run through --config.
    let cfg_file = a.join("config.toml");
    let mut args = train_args(&data, runs, "c", &["--eval-every", "10"]);
    args.extend(["--config".into(), cfg_file.display().to_string()]);
    run_ok(&args);
    assert_same_run(&a, &runs.join("c"));

    // A second run under the same name is refused and changes nothing.
    let before = read(&a.join("metrics.jsonl"));
    let o = Command::new(SAE)
        .args(train_args(&data, runs, "a", &[]))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--resume"), "{}", stderr(&o));
    assert_eq!(read(&a.join("metrics.jsonl")), before);

    // eval recomputes eval.json exactly; reconstruct and analyze write their files.
    let o = run_ok(&[
        "eval".into(),
        a.display().to_string(),
        "--data-dir".into(),
        data.display().to_string(),
        "--probe-images".into(),
        "256".into(),
        "--threads".into(),
        "1".into(),
        "--out".into(),
        tmp.path().join("again.json").display().to_string(),
    ]);
    let printed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(printed, eval);
    let png = tmp.path().join("r.png");
    run_ok(&[
        "reconstruct".into(),
        a.display().to_string(),
        "--data-dir".into(),
        data.display().to_string(),
        "--out".into(),
        png.display().to_string(),
        "--count".into(),
        "5".into(),
    ]);
    assert!(png.is_file());
    std::fs::remove_file(a.join("report.md")).unwrap();
    run_ok(&[
        "analyze".into(),
        a.display().to_string(),
        "--data-dir".into(),
        data.display().to_string(),
    ]);
    assert!(read(&a.join("report.md")).contains("Test MSE"));
}

/// The VAE's eval.json scores `z` sampled beside `z = μ`, its report says so, and
/// `sae eval` gives the same figures again, on one thread or two; the AE has none.
#[test]
#[ignore = "needs MNIST (./data-fetch.sh or MNIST_DIR)"]
fn the_vae_reports_its_sampled_z_mse_reproducibly() {
    let data = sae::data::mnist_for_tests();
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path();
    let one = ["--epochs", "1"];
    run_ok(&train_args(
        &data,
        runs,
        "vae",
        &[&one[..], &["--model", "vae"]].concat(),
    ));
    run_ok(&train_args(
        &data,
        runs,
        "ae",
        &[&one[..], &["--model", "ae"]].concat(),
    ));
    let vae = runs.join("vae");
    let text = read(&vae.join("eval.json"));
    let eval: serde_json::Value = serde_json::from_str(&text).unwrap();
    let (mean, std) = (
        eval["sampled_mse"]["mean"].as_f64().unwrap(),
        eval["sampled_mse"]["std"].as_f64().unwrap(),
    );
    assert!(
        mean.is_finite() && mean > 0.0 && std.is_finite() && std >= 0.0,
        "{eval}"
    );
    assert!(read(&vae.join("report.md")).contains("With z sampled"));
    let ae: serde_json::Value = serde_json::from_str(&read(&runs.join("ae/eval.json"))).unwrap();
    assert!(ae.get("sampled_mse").is_none(), "{ae}");
    for threads in ["1", "2"] {
        let out = tmp.path().join(format!("eval-{threads}.json"));
        run_ok(&[
            "eval".into(),
            vae.display().to_string(),
            "--data-dir".into(),
            data.display().to_string(),
            "--probe-images".into(),
            "256".into(),
            "--threads".into(),
            threads.into(),
            "--out".into(),
            out.display().to_string(),
        ]);
        assert_eq!(read(&out), text, "sae eval on {threads} thread(s)");
    }
}

#[test]
#[ignore = "needs MNIST (./data-fetch.sh or MNIST_DIR)"]
fn resume_after_stop_continues_exactly() {
    let data = sae::data::mnist_for_tests();
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path();
    run_ok(&train_args(&data, runs, "whole", &["--eval-every", "5"]));
    // Stop mid-epoch, between checkpoints (every 7 steps): the stop writes its own.
    let o = run_ok(&train_args(
        &data,
        runs,
        "parts",
        &[
            "--eval-every",
            "5",
            "--checkpoint-every",
            "7",
            "--stop-after",
            "19",
        ],
    ));
    assert!(String::from_utf8_lossy(&o.stdout).contains("stopped at step 19"));
    assert!(!runs.join("parts/eval.json").exists());
    run_ok(&resume_args(&data, &runs.join("parts")));
    assert_same_run(&runs.join("whole"), &runs.join("parts"));
}

/// Starts the small run in the background and waits until it has done `steps` steps.
fn start_and_wait(data: &Path, runs: &Path, name: &str, extra: &[&str], steps: usize) -> Child {
    common::start_and_wait(
        &train_args(data, runs, name, extra),
        &runs.join(name),
        steps,
    )
}

#[test]
#[ignore = "needs MNIST (./data-fetch.sh or MNIST_DIR)"]
fn resume_after_sigkill_loses_at_most_one_checkpoint_interval() {
    let data = sae::data::mnist_for_tests();
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path();
    let extra = [
        "--eval-every",
        "5",
        "--checkpoint-every",
        "3",
        "--epochs",
        "3",
    ];
    run_ok(&train_args(&data, runs, "whole", &extra));
    let mut child = start_and_wait(&data, runs, "killed", &extra, 12);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let dir = runs.join("killed");
    let done = read(&dir.join("steps.tsv")).lines().count();
    assert!(
        done < 48,
        "the run finished before the kill; make it longer"
    );
    run_ok(&resume_args(&data, &dir));
    assert_same_run(&runs.join("whole"), &dir);
}

#[test]
#[ignore = "needs MNIST (./data-fetch.sh or MNIST_DIR)"]
fn ctrl_c_writes_a_checkpoint_and_resume_finishes_the_run() {
    let data = sae::data::mnist_for_tests();
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path();
    let extra = [
        "--eval-every",
        "5",
        "--checkpoint-every",
        "1000",
        "--epochs",
        "3",
    ];
    run_ok(&train_args(&data, runs, "whole", &extra));
    let child = start_and_wait(&data, runs, "stopped", &extra, 6);
    signal(&child, "INT");
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("--resume"), "{err}");
    let dir = runs.join("stopped");
    let done = read(&dir.join("steps.tsv")).lines().count();
    assert!(done < 48, "the run finished before Ctrl-C");
    run_ok(&resume_args(&data, &dir));
    assert_same_run(&runs.join("whole"), &dir);
}

#[test]
#[ignore = "needs MNIST (./data-fetch.sh or MNIST_DIR)"]
fn a_diverging_run_stops_keeps_its_checkpoint_and_names_the_layer() {
    let data = sae::data::mnist_for_tests();
    let tmp = tempfile::tempdir().unwrap();
    // Adam moves every weight by ≈ lr in its first step: 1e20 overflows the output layer.
    let o = Command::new(SAE)
        .args(train_args(
            &data,
            tmp.path(),
            "nan",
            &["--lr", "1e20", "--clip-value", "0"],
        ))
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("diverged") && err.contains("loss is inf at step 2"),
        "{err}"
    );
    assert!(err.contains("layer `output` saturated"), "{err}");
    assert!(err.contains("last good checkpoint (step 0)"), "{err}");
    let dir = tmp.path().join("nan");
    assert!(dir.join("checkpoint.safetensors").is_file());
    assert!(!dir.join("eval.json").exists());
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn the_full_study_plan_lists_every_run_without_training() {
    let o = sae(&["experiment", "paper", "--budget", "full", "--plan"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = text.lines().collect();
    // 8 main rows × 3 seeds, then 2 × 4 sweep rows × 3 seeds, the T = 100 ones being
    // the main rows' runs.
    assert_eq!(lines.len(), 8 * 3 + 8 * 3, "{text}");
    let runs: std::collections::HashSet<&str> = lines
        .iter()
        .map(|l| l.split('\t').nth(1).unwrap())
        .collect();
    assert!(runs.len() <= 8 * 3 + 6 * 3);
    assert!(
        lines[0].starts_with("ae\tae-t100-n0-m0-wd_0.00001-s0"),
        "{text}"
    );
    let bad = sae(&["experiment", "paper", "--budget", "huge"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("huge"), "{}", stderr(&bad));
}

/// The smoke study end to end: every row and column of `summary.json`, the figures; a
/// second call trains nothing, and a run without its evaluation is resumed and finished.
#[test]
#[ignore = "needs MNIST (./data-fetch.sh or MNIST_DIR)"]
fn a_study_writes_its_summary_and_a_second_call_only_fills_gaps() {
    let data = sae::data::mnist_for_tests();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("paper-smoke");
    let args: Vec<String> = [
        "experiment",
        "paper",
        "--budget",
        "smoke",
        "--threads",
        "1",
        "--data-dir",
        &data.display().to_string(),
        "--out",
        &out.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let first = run_ok(&args);
    assert!(String::from_utf8_lossy(&first.stdout).contains("summary.json"));
    let summary: serde_json::Value =
        serde_json::from_str(&read(&out.join("summary.json"))).unwrap();
    let rows = summary["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 8 + 4);
    for r in rows {
        for key in [
            "model",
            "T",
            "regularized",
            "coefficients",
            "seeds",
            "test_mse",
            "test_mse_std",
            "latent_dead_frac",
            "latent_bursting_frac",
            "latent_density",
            "probe_accuracy",
            "sops_per_image",
            "wall_s",
        ] {
            assert!(r.get(key).is_some(), "row {} lacks {key}", r["name"]);
        }
        assert!(r["test_mse"].as_f64().unwrap() > 0.0);
        let spiking = r["model"] == "sae";
        assert_eq!(r["sops_per_image"].is_number(), spiking, "{}", r["name"]);
        assert_eq!(r["latent_dead_frac"].is_number(), spiking, "{}", r["name"]);
        if r["group"] == "main" {
            assert_eq!(r["seeds"].as_array().unwrap().len(), 2);
            assert!(r["test_mse_std"].is_number());
            assert!(r["probe_accuracy"].is_number());
        }
    }
    let ae = rows.iter().find(|r| r["name"] == "ae").unwrap();
    assert!(ae["macs_per_image"].as_f64().unwrap() > 1e6);
    // The VAE's rows alone score z sampled, in their own column.
    for r in rows {
        let vae = r["model"] == "vae";
        assert_eq!(r["sampled_mse"].is_number(), vae, "{}", r["name"]);
    }
    for f in [
        "reconstructions.png",
        "mse_vs_sops.png",
        "mse_vs_sops.svg",
        "firing_rates_unregularized.png",
        "firing_rates_unregularized.svg",
        "firing_rates_best.png",
        "firing_rates_best.svg",
        "latent_sae_best.png",
        "latent_sae_best.svg",
        "latent_vae.png",
        "latent_vae.svg",
    ] {
        assert!(out.join("figures").join(f).is_file(), "{f}");
    }
    let report = read(&out.join("report.md"));
    assert!(report.contains("| sae-best |"));
    assert!(report.contains("| test MSE, z sampled |"), "{report}");

    // Nothing left to train: the same rows.
    let again = run_ok(&args);
    assert!(!stderr(&again).contains("training "), "{}", stderr(&again));
    let second: serde_json::Value = serde_json::from_str(&read(&out.join("summary.json"))).unwrap();
    assert_eq!(second["rows"], summary["rows"]);

    // A run stopped after its last checkpoint but before its evaluation is finished.
    let run = out.join("runs").join(rows[2]["runs"][0].as_str().unwrap());
    std::fs::remove_file(run.join("eval.json")).unwrap();
    let resumed = run_ok(&args);
    assert!(
        stderr(&resumed).contains("resuming"),
        "{}",
        stderr(&resumed)
    );
    assert!(run.join("eval.json").is_file());
}

#[test]
#[ignore = "needs MNIST (./data-fetch.sh or MNIST_DIR)"]
fn init_starts_a_new_run_from_another_runs_parameters() {
    let data = sae::data::mnist_for_tests();
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path();
    run_ok(&train_args(&data, runs, "a", &["--epochs", "1"]));
    let ckpt = runs.join("a").join("checkpoint.safetensors");
    let ckpt_arg = ckpt.display().to_string();
    // Stopped before its first step, the new run holds exactly a's parameters.
    run_ok(&train_args(
        &data,
        runs,
        "b",
        &["--epochs", "1", "--init", &ckpt_arg, "--stop-after", "0"],
    ));
    let a = autograd::io::load_tensors(&ckpt).unwrap();
    let b = autograd::io::load_tensors(runs.join("b").join("checkpoint.safetensors")).unwrap();
    let mut compared = 0;
    for (name, t) in a.tensors.iter().filter(|(n, _)| !n.starts_with("adam.")) {
        assert_eq!(&b.tensors[name], t, "{name}");
        compared += 1;
    }
    assert!(compared >= 6);
    assert_eq!(read(&runs.join("b").join("init.txt")).trim(), ckpt_arg);
    // Parameters of another shape are refused by name, and leave no folder behind.
    let o = Command::new(SAE)
        .args(train_args(
            &data,
            runs,
            "c",
            &["--init", &ckpt_arg, "--kernel", "3"],
        ))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("`conv1.weight`") && err.contains("[4, 1, 3, 3]"),
        "{err}"
    );
    assert!(!runs.join("c").exists());
}
