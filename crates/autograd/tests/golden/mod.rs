//! Checks ops against PyTorch's answers written by this folder's scripts (`golden.py`
//! says how): one `<family>.safetensors` per family, one test file `golden_<family>.rs`
//! that names the Rust op of every case.
//!
//! A case's inputs `x<i>` become tape variables when the file holds their gradient `gx<i>`
//! (constants otherwise); the op's output is compared with `y`, then backward from `gy`
//! gives the gradients compared with `gx<i>`. Every case of the file must have an op and
//! every op a case, so a renamed or missing case never passes silently.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use autograd::io::{TensorFile, load_tensors};
use autograd::ops::index::Indices;
use autograd::{Tape, Tensor, Var};

/// Relative tolerance: `max|ours − torch| ≤ TOLERANCE · max(max|torch|, 1)`.
pub const TOLERANCE: f32 = 1e-4;

/// The op of one case: its inputs (in order) to its output.
pub type Op = for<'t> fn(&Case<'_>, &[Var<'t>]) -> Var<'t>;

/// One case of a family's file.
pub struct Case<'f> {
    /// The case's name.
    pub name: &'f str,
    file: &'f TensorFile,
    path: &'f Path,
}

impl Case<'_> {
    /// The case's tensor `key` (`x0`, `y`, or an `extra` argument).
    pub fn get(&self, key: &str) -> &Tensor {
        let name = format!("{}.{key}", self.name);
        self.file
            .get(self.path, &name)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// An integer `extra` argument (indices, labels), as stored: float32, exact.
    pub fn indices(&self, key: &str) -> Vec<usize> {
        self.get(key).iter().map(|&v| v as usize).collect()
    }

    /// An integer `extra` argument with its shape (a gather index, `[N, T]` ids, targets
    /// `[N, d1, …]`), as the ops take it.
    pub fn shaped_indices(&self, key: &str) -> Indices {
        Indices::new(self.get(key).shape(), self.indices(key))
    }

    /// A scalar `extra` argument.
    pub fn scalar(&self, key: &str) -> f32 {
        let t = self.get(key);
        assert_eq!(t.len(), 1, "{}.{key} is not a scalar", self.name);
        t.iter().copied().next().expect("one value")
    }

    fn has(&self, key: &str) -> bool {
        self.file
            .tensors
            .contains_key(&format!("{}.{key}", self.name))
    }
}

fn path_of(family: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{family}.safetensors"))
}

/// `max|ours − torch| / max(max|torch|, 1)`; shapes must agree.
fn relative_error(what: &str, ours: &Tensor, torch: &Tensor) -> f32 {
    assert_eq!(ours.shape(), torch.shape(), "{what}: shape");
    let scale = torch.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let worst = ours.iter().zip(torch).fold(0.0f32, |m, (a, b)| {
        if a.is_nan() || b.is_nan() {
            if a.is_nan() && b.is_nan() {
                m
            } else {
                f32::INFINITY
            }
        } else if a == b {
            m
        } else {
            m.max((a - b).abs())
        }
    });
    worst / scale
}

/// Runs every case of `family` through its op in `ops` and compares values and gradients
/// with PyTorch's; prints one line per case with its worst relative error.
pub fn check_family(family: &str, ops: &[(&str, Op)]) {
    let path = path_of(family);
    let file = load_tensors(&path).unwrap_or_else(|e| panic!("{e}"));
    let in_file: BTreeSet<&str> = file
        .tensors
        .keys()
        .filter_map(|k| k.split_once('.').map(|(case, _)| case))
        .collect();
    let in_code: BTreeSet<&str> = ops.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        ops.len(),
        in_code.len(),
        "{family}: a case is named twice in the test"
    );
    let no_op: Vec<_> = in_file.difference(&in_code).collect();
    let no_case: Vec<_> = in_code.difference(&in_file).collect();
    assert!(
        no_op.is_empty() && no_case.is_empty(),
        "{}: cases without an op in the test: {no_op:?}; ops without a case in the file: \
         {no_case:?} (regenerate with make.sh)",
        path.display()
    );
    let mut failures = Vec::new();
    for (name, op) in ops {
        let case = Case {
            name,
            file: &file,
            path: &path,
        };
        let tape = Tape::new();
        let inputs: Vec<Var<'_>> = (0..)
            .map(|i| format!("x{i}"))
            .take_while(|k| case.has(k))
            .enumerate()
            .map(|(i, k)| {
                let x = case.get(&k).clone();
                if case.has(&format!("gx{i}")) {
                    tape.var(x)
                } else {
                    tape.constant(x)
                }
            })
            .collect();
        let y = op(&case, &inputs);
        let mut worst = relative_error(&format!("{name}.y"), y.value(), case.get("y"));
        if case.has("gy") {
            let grads = y.backward_with(case.get("gy").clone());
            for (i, x) in inputs.iter().enumerate() {
                let key = format!("gx{i}");
                if !case.has(&key) {
                    continue;
                }
                let zero = Tensor::zeros(x.shape());
                let ours = grads.get(x).unwrap_or(&zero);
                worst = worst.max(relative_error(
                    &format!("{name}.{key}"),
                    ours,
                    case.get(&key),
                ));
            }
        }
        println!("{family}/{name}: worst relative error {worst:.2e}");
        if worst > TOLERANCE || worst.is_nan() {
            failures.push(format!("{name} ({worst:.2e})"));
        }
    }
    assert!(
        failures.is_empty(),
        "{family}: beyond tolerance {TOLERANCE:e}: {failures:?}"
    );
}
