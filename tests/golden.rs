//! Golden vectors: PyTorch's forward values and gradients for our ops.
//!
//! Reads every `*.safetensors` file in `GOLDEN_DIR` (default `../shared/golden` beside
//! the workspace), checks each op it knows, and prints one line per file with the worst
//! relative error (`max|ours − torch| / max|torch|` over each compared tensor; spikes must
//! match exactly). The files
//! were made by PyTorch in float64 and rounded to float32; their layout is described in
//! the folder's README.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use autograd::io::{TensorFile, load_tensors};
use autograd::{Tape, Tensor, Var};
use sae::lif::{LifParams, lif, parse_floor, parse_reset, parse_surrogate};

/// Relative tolerance for every compared tensor.
const TOLERANCE: f32 = 1e-4;

fn golden_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("GOLDEN_DIR") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.is_dir(),
            "GOLDEN_DIR={} is not a directory",
            dir.display()
        );
        return Some(dir);
    }
    let default = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/golden");
    default.is_dir().then_some(default)
}

/// `max|a − b| / max|b|`.
fn rel_err(ours: &Tensor, torch: &Tensor) -> f32 {
    assert_eq!(ours.shape(), torch.shape(), "shape differs from PyTorch's");
    let scale = torch.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-12);
    let diff = ours
        .iter()
        .zip(torch)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    diff / scale
}

struct Case<'a> {
    path: &'a Path,
    file: &'a TensorFile,
}

impl Case<'_> {
    fn t(&self, name: &str) -> Tensor {
        self.file
            .get(self.path, name)
            .unwrap_or_else(|e| panic!("{e}"))
            .clone()
    }

    fn has(&self, name: &str) -> bool {
        self.file.tensors.contains_key(name)
    }

    fn meta<T: std::str::FromStr>(&self, key: &str) -> T {
        let v = self.meta_str(key);
        v.parse()
            .unwrap_or_else(|_| panic!("{}: metadata {key}={v}", self.path.display()))
    }

    fn meta_str(&self, key: &str) -> &str {
        self.file
            .metadata
            .get(key)
            .unwrap_or_else(|| panic!("{}: no metadata `{key}`", self.path.display()))
    }

    /// The value, or a panic naming the file.
    fn ok<T>(&self, r: Result<T, String>) -> T {
        r.unwrap_or_else(|e| panic!("{}: {e}", self.path.display()))
    }
}

/// Each compared tensor's name and relative error.
type Errors = Vec<(String, f32)>;

/// Runs `f` on leaves for `inputs`, back-propagates `Σ gy⊙y`, and compares `y` and the
/// listed gradients (`(leaf index, golden name)`) with the golden tensors.
fn check_op<F>(case: &Case, inputs: &[&str], grads: &[(usize, &str)], f: F) -> Errors
where
    F: for<'t> Fn(&[Var<'t>]) -> Var<'t>,
{
    let tape = Tape::new();
    let vars: Vec<Var> = inputs.iter().map(|n| tape.var(case.t(n))).collect();
    let y = f(&vars);
    let mut errs = vec![("y".to_string(), rel_err(y.value(), &case.t("y")))];
    let g = (&y * &tape.constant(case.t("gy"))).sum().backward();
    for &(i, name) in grads {
        errs.push((
            name.to_string(),
            rel_err(g.get(&vars[i]).expect("gradient"), &case.t(name)),
        ));
    }
    errs
}

/// A scalar loss `f(a, b)` and its gradients with respect to `a` (and `b` if listed).
fn check_loss<F>(
    case: &Case,
    inputs: [&str; 2],
    value: &str,
    grads: &[(usize, &str)],
    f: F,
) -> Errors
where
    F: for<'t> Fn(&Var<'t>, &Var<'t>) -> Var<'t>,
{
    let tape = Tape::new();
    let a = tape.var(case.t(inputs[0]));
    let b = tape.var(case.t(inputs[1]));
    let loss = f(&a, &b);
    let mut errs = vec![(
        value.to_string(),
        rel_err(
            &loss
                .value()
                .clone()
                .into_shape_with_order(1)
                .unwrap()
                .into_dyn(),
            &case.t(value),
        ),
    )];
    let g = loss.backward();
    let vars = [&a, &b];
    for &(i, name) in grads {
        errs.push((
            name.to_string(),
            rel_err(g.get(vars[i]).expect("gradient"), &case.t(name)),
        ));
    }
    errs
}

/// The comparisons for one file, or `None` for an op this test cannot check yet.
fn check(case: &Case) -> Option<Errors> {
    let op = case
        .file
        .metadata
        .get("op")
        .map(String::as_str)
        .unwrap_or("");
    let bias = case.has("b");
    Some(match op {
        "conv2d" => {
            let (s, p): (usize, usize) = (case.meta("stride"), case.meta("padding"));
            let (names, grads): (&[&str], &[(usize, &str)]) = if bias {
                (&["x", "w", "b"], &[(0, "gx"), (1, "gw"), (2, "gb")])
            } else {
                (&["x", "w"], &[(0, "gx"), (1, "gw")])
            };
            check_op(case, names, grads, |v| v[0].conv2d(&v[1], v.get(2), s, p))
        }
        "conv_transpose2d" => {
            let (s, p, op) = (
                case.meta("stride"),
                case.meta("padding"),
                case.meta("output_padding"),
            );
            let (names, grads): (&[&str], &[(usize, &str)]) = if bias {
                (&["x", "w", "b"], &[(0, "gx"), (1, "gw"), (2, "gb")])
            } else {
                (&["x", "w"], &[(0, "gx"), (1, "gw")])
            };
            check_op(case, names, grads, |v| {
                v[0].conv_transpose2d(&v[1], v.get(2), s, p, op)
            })
        }
        "linear" => check_op(
            case,
            &["x", "w", "b"],
            &[(0, "gx"), (1, "gw"), (2, "gb")],
            |v| v[0].linear(&v[1], Some(&v[2])),
        ),
        "avg_pool2d" | "max_pool2d" => {
            let (k, s): (usize, usize) = (case.meta("kernel"), case.meta("stride"));
            let max = op == "max_pool2d";
            check_op(case, &["x"], &[(0, "gx")], |v| {
                if max {
                    v[0].max_pool2d(k, s)
                } else {
                    v[0].avg_pool2d(k, s)
                }
            })
        }
        "losses" => {
            let mut errs = check_loss(case, ["xhat", "x"], "mse", &[(0, "g_mse")], |a, b| {
                a.mse_loss(b)
            });
            errs.extend(check_loss(
                case,
                ["xhat", "x"],
                "bce",
                &[(0, "g_bce")],
                |a, b| a.bce_loss(b),
            ));
            errs.extend(check_loss(
                case,
                ["mu", "logvar"],
                "kl",
                &[(0, "g_mu"), (1, "g_logvar")],
                |a, b| a.kl_normal(b),
            ));
            errs
        }
        "chain" => {
            // loss = mse(sigmoid(linear(flatten(relu(conv2d(x, w1))), w2, b2)), flatten(x))
            let tape = Tape::new();
            let x = tape.constant(case.t("x"));
            let (w1, w2, b2) = (
                tape.var(case.t("w1")),
                tape.var(case.t("w2")),
                tape.var(case.t("b2")),
            );
            let h = x.conv2d(&w1, None, 1, 0).relu().flatten();
            let loss = h.linear(&w2, Some(&b2)).sigmoid().mse_loss(&x.flatten());
            let mut errs = vec![(
                "loss".to_string(),
                (loss.item() - case.t("loss")[0]).abs() / case.t("loss")[0].abs(),
            )];
            let g = loss.backward();
            for (v, name) in [(&w1, "gw1"), (&w2, "gw2"), (&b2, "gb2")] {
                errs.push((
                    name.to_string(),
                    rel_err(g.get(v).expect("gradient"), &case.t(name)),
                ));
            }
            errs
        }
        "lif" => {
            let params = LifParams {
                leak: case.meta("leak"),
                threshold: case.meta("threshold"),
                reset: case.ok(parse_reset(case.meta_str("reset"))),
                floor: case.ok(parse_floor(case.meta_str("floor"))),
                surrogate: case.ok(parse_surrogate(
                    case.meta_str("surrogate"),
                    case.meta("slope"),
                )),
            };
            let tape = Tape::new();
            let current = tape.var(case.t("I"));
            let (s, c) = lif(&current, current.shape()[0], &params);
            // Spikes must match exactly: any flipped spike counts as a relative error of 1.
            let flipped = s
                .value()
                .iter()
                .zip(&case.t("s"))
                .filter(|(a, b)| a != b)
                .count();
            let mut errs = vec![
                ("s".to_string(), if flipped == 0 { 0.0 } else { 1.0 }),
                ("c".to_string(), rel_err(c.value(), &case.t("c"))),
            ];
            let loss = (&s * &tape.constant(case.t("gs"))).sum()
                + (&c * &tape.constant(case.t("gc"))).sum();
            let g = loss.backward();
            errs.push((
                "gI".to_string(),
                rel_err(g.get(&current).expect("gradient"), &case.t("gI")),
            ));
            errs
        }
        _ => return None,
    })
}

#[test]
fn golden_vectors_match_pytorch() {
    let Some(dir) = golden_dir() else {
        println!("golden: no ../shared/golden beside the workspace and GOLDEN_DIR unset; skipped");
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: no golden files", dir.display());
    let mut failures: HashMap<String, (String, f32)> = HashMap::new();
    let mut checked = 0;
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let file = load_tensors(path).unwrap_or_else(|e| panic!("{e}"));
        let case = Case { path, file: &file };
        match check(&case) {
            None => {
                let op = file.metadata.get("op").cloned().unwrap_or_default();
                println!("golden {name:<46} not checked yet (op `{op}`)");
            }
            Some(errs) => {
                checked += 1;
                let (worst_name, worst) = errs
                    .iter()
                    .cloned()
                    .reduce(|w, e| if e.1 > w.1 { e } else { w })
                    .expect("at least one comparison");
                let verdict = if worst <= TOLERANCE { "ok" } else { "FAIL" };
                println!("golden {name:<46} worst rel err {worst:.2e} ({worst_name}) {verdict}");
                if worst > TOLERANCE {
                    failures.insert(name, (worst_name, worst));
                }
            }
        }
    }
    assert!(checked > 0, "no golden file could be checked");
    assert!(
        failures.is_empty(),
        "golden cases over tolerance {TOLERANCE}: {failures:?}"
    );
}
