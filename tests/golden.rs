//! Golden vectors: PyTorch's forward values and gradients for our ops.
//!
//! Reads the `*.safetensors` files in `GOLDEN_DIR` (default `../shared/golden` beside the
//! workspace), one test per op family ([`FAMILIES`], by the file's `op` metadata), and
//! prints one line per file with the worst relative error (`max|ours − torch| / max|torch|`
//! over each compared tensor; spikes must match exactly). A family with no file fails, and
//! so does a file of no family, so a missing or renamed file is never a silent pass. The
//! files were made by PyTorch in float64 and rounded to float32; their layout is described
//! in the folder's README.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use autograd::io::{TensorFile, load_tensors};
use autograd::{Tape, Tensor, Var};
use sae::config::{Floor, Reset, Surrogate};
use sae::nn::lif::{LifParams, lif};

/// Relative tolerance for every compared tensor.
const TOLERANCE: f32 = 1e-4;

/// The op families, one test each: the family and the `op` metadata values it covers. Each
/// op needs at least one golden file.
const FAMILIES: &[(&str, &[&str])] = &[
    ("conv2d", &["conv2d"]),
    ("conv_transpose2d", &["conv_transpose2d"]),
    ("linear", &["linear"]),
    ("pooling", &["avg_pool2d", "max_pool2d"]),
    ("losses", &["losses"]),
    ("chain", &["chain"]),
    ("lif", &["lif"]),
];

/// GOLDEN_DIR if set and not empty (a panic if it is not a folder), else `../shared/golden`
/// beside the workspace; `None` only if GOLDEN_DIR is unset and that folder is absent.
fn golden_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("GOLDEN_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        assert!(
            dir.is_dir(),
            "GOLDEN_DIR={} is not a directory; point it at the golden folder \
             (../shared/golden beside the workspace) or unset it",
            dir.display()
        );
        return Some(dir);
    }
    let default = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/golden");
    default.is_dir().then_some(default)
}

/// Every golden file of the folder with its contents, sorted by name; `None` (after a note
/// on the terminal) when there is no golden folder.
fn golden_files() -> Option<Vec<(PathBuf, TensorFile)>> {
    let Some(dir) = golden_dir() else {
        // Straight to stderr, past the test harness's capture, so the skip is seen.
        let _ = writeln!(
            std::io::stderr(),
            "golden: SKIPPED, no ../shared/golden beside the workspace and GOLDEN_DIR unset"
        );
        return None;
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "{}: no golden files", dir.display());
    Some(
        paths
            .into_iter()
            .map(|path| {
                let file = load_tensors(&path).unwrap_or_else(|e| panic!("{e}"));
                (path, file)
            })
            .collect(),
    )
}

/// A golden file's `op` metadata, or "" if it has none.
fn op_of(file: &TensorFile) -> &str {
    file.metadata.get("op").map(String::as_str).unwrap_or("")
}

/// `max|a − b| / max|b|`; NaN if any of ours is NaN.
fn rel_err(ours: &Tensor, torch: &Tensor) -> f32 {
    assert_eq!(ours.shape(), torch.shape(), "shape differs from PyTorch's");
    let scale = torch.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-12);
    let diff = ours
        .iter()
        .zip(torch)
        .fold(0.0f32, |m, (a, b)| worse(m, (a - b).abs()));
    diff / scale
}

/// The larger error, NaN counting as the largest: `f32::max` would drop a NaN, and a NaN
/// gradient would pass.
fn worse(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.max(b)
    }
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

/// The comparisons for one file.
fn check(case: &Case) -> Errors {
    let op = op_of(case.file);
    let bias = case.has("b");
    match op {
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
                reset: case.ok(case.meta_str("reset").parse::<Reset>()).into(),
                floor: case.ok(case.meta_str("floor").parse::<Floor>()).into(),
                surrogate: case
                    .ok(case.meta_str("surrogate").parse::<Surrogate>())
                    .with_slope(case.meta("slope")),
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
        _ => panic!("{}: no check for op `{op}`", case.path.display()),
    }
}

/// Checks every golden file of `family` against our ops and prints one line per file; fails
/// if a file is over tolerance or an op of the family has no file.
fn check_family(family: &str) {
    let (_, ops) = FAMILIES
        .iter()
        .find(|(name, _)| *name == family)
        .unwrap_or_else(|| panic!("no family `{family}` in FAMILIES"));
    let Some(files) = golden_files() else { return };
    let mut failures: BTreeMap<String, (String, f32)> = BTreeMap::new();
    for (path, file) in files.iter().filter(|(_, f)| ops.contains(&op_of(f))) {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let errs = check(&Case { path, file });
        let (worst_name, worst) = errs
            .iter()
            .cloned()
            .reduce(|w, e| if e.1.is_nan() || e.1 > w.1 { e } else { w })
            .expect("at least one comparison");
        // Written so that a NaN error fails.
        let ok = worst <= TOLERANCE;
        let verdict = if ok { "ok" } else { "FAIL" };
        println!("golden {name:<46} worst rel err {worst:.2e} ({worst_name}) {verdict}");
        if !ok {
            failures.insert(name, (worst_name, worst));
        }
    }
    let absent: Vec<&str> = ops
        .iter()
        .copied()
        .filter(|op| !files.iter().any(|(_, f)| op_of(f) == *op))
        .collect();
    assert!(
        absent.is_empty(),
        "family {family}: no golden file with op {absent:?}"
    );
    assert!(
        failures.is_empty(),
        "family {family}: golden cases over tolerance {TOLERANCE}: {failures:?}"
    );
}

#[test]
fn conv2d_matches_pytorch() {
    check_family("conv2d");
}

#[test]
fn conv_transpose2d_matches_pytorch() {
    check_family("conv_transpose2d");
}

#[test]
fn linear_matches_pytorch() {
    check_family("linear");
}

#[test]
fn pooling_matches_pytorch() {
    check_family("pooling");
}

#[test]
fn losses_match_pytorch() {
    check_family("losses");
}

/// conv2d → relu → linear → sigmoid → mse as one graph: the ops compose.
#[test]
fn chain_matches_pytorch() {
    check_family("chain");
}

#[test]
fn lif_matches_pytorch() {
    check_family("lif");
}

/// A golden file no family test reads would never be checked: a new op needs its family.
#[test]
fn every_golden_file_belongs_to_a_family() {
    let Some(files) = golden_files() else { return };
    let orphans: Vec<String> = files
        .iter()
        .filter(|(_, f)| !FAMILIES.iter().any(|(_, ops)| ops.contains(&op_of(f))))
        .map(|(path, f)| format!("{} (op `{}`)", path.display(), op_of(f)))
        .collect();
    assert!(
        orphans.is_empty(),
        "golden files of no family in FAMILIES: {orphans:?}"
    );
}

/// A NaN of ours must fail, not vanish in a `max`.
#[test]
fn a_nan_counts_as_the_largest_error() {
    let torch = Tensor::from_elem(ndarray::IxDyn(&[3]), 1.0);
    let mut ours = torch.clone();
    ours[[1]] = f32::NAN;
    let err = rel_err(&ours, &torch);
    assert!(err.is_nan(), "{err}");
    assert!(rel_err(&torch, &torch) == 0.0);
}
