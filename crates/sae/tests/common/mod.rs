//! What the end-to-end tests of the `sae` binary share: running it, reading its stderr,
//! waiting for a background run's steps and signalling it.

#![allow(dead_code)] // Each test file uses its own part.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub const SAE: &str = env!("CARGO_BIN_EXE_sae");

/// Runs `sae` with `args` to the end.
pub fn sae<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(SAE)
        .args(args)
        .output()
        .expect("run the sae binary")
}

/// What a finished `sae` wrote to stderr.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The lines of a file (0 if it does not exist yet).
pub fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

/// Starts `sae args` in the background (a training run into `run_dir`) and waits until
/// its `steps.tsv` has `steps` lines.
pub fn start_and_wait<S: AsRef<OsStr>>(args: &[S], run_dir: &Path, steps: usize) -> Child {
    let mut sae = Command::new(SAE);
    sae.args(args);
    spawn_and_wait(sae, run_dir, steps)
}

/// Starts `command` (a training run into `run_dir`, by `sae` or through `mpirun`) in the
/// background, stderr piped, and waits until its `steps.tsv` has `steps` lines.
pub fn spawn_and_wait(mut command: Command, run_dir: &Path, steps: usize) -> Child {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = run_dir.join("steps.tsv");
    let t0 = Instant::now();
    while lines(&log) < steps {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before {steps} steps");
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

/// Sends `signal` (`INT`, `TERM`, `HUP`) to `child`.
pub fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// An IDX file: magic, dimensions, body.
fn idx(magic: u32, dims: &[u32], body: &[u8]) -> Vec<u8> {
    let mut out = magic.to_be_bytes().to_vec();
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    out.extend(body);
    out
}

/// A MNIST-shaped folder (the four IDX files) of `train` and `test` images whose `k`-th
/// pixel (over the split, image after image) is `pixel(k)`, labels cycling over 0..=9.
pub fn mnist_like(
    dir: &Path,
    train: u32,
    test: u32,
    mut pixel: impl FnMut(u32) -> u8,
) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for (prefix, n) in [("train", train), ("t10k", test)] {
        let pixels: Vec<u8> = (0..n * 784).map(&mut pixel).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        std::fs::write(
            dir.join(format!("{prefix}-images-idx3-ubyte")),
            idx(0x803, &[n, 28, 28], &pixels),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{prefix}-labels-idx1-ubyte")),
            idx(0x801, &[n], &labels),
        )
        .unwrap();
    }
    dir.to_path_buf()
}

/// A MNIST-shaped folder of `train` and `test` images of random pixels (a fixed
/// xorshift sequence), for tests that need data but not digits.
pub fn random_mnist(dir: &Path, train: u32, test: u32) -> std::path::PathBuf {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    mnist_like(dir, train, test, |_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 56) as u8
    })
}

/// A narrow network at T = 2 on 64 training images: 4 steps per epoch, fast. A test's
/// own flags replace these.
pub const TINY: &[&str] = &[
    "--steps",
    "2",
    "--channels",
    "2,4",
    "--latent",
    "8",
    "--batch",
    "16",
    "--probe-images",
    "0",
    "--threads",
    "1",
    "--quiet",
];

/// `sae train` of run `name` in `runs` on `data` with [`TINY`]'s flags, except those
/// `extra` sets itself, then `extra`.
pub fn tiny_train_args(data: &Path, runs: &Path, name: &str, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "train".into(),
        "--data-dir".into(),
        data.display().to_string(),
        "--runs-dir".into(),
        runs.display().to_string(),
        "--name".into(),
        name.into(),
    ];
    // TINY's flags, but those `extra` sets itself (all but `--quiet` take a value).
    let mut tiny = TINY.iter();
    while let Some(flag) = tiny.next() {
        let value = (*flag != "--quiet").then(|| tiny.next()).flatten();
        if !extra.contains(flag) {
            a.push(flag.to_string());
            a.extend(value.map(|v| v.to_string()));
        }
    }
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}
