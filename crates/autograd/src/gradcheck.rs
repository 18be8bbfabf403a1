//! Finite-difference gradient checking for any graph built on a [`Tape`].
//!
//! The graph's output `y` is projected on a fixed random tensor `r`, `L = Σ r⊙y`, so
//! every output element's gradient is tested at once. Each input element `xᵢ` is then
//! nudged by `±ε` and `(L(x+εeᵢ) − L(x−εeᵢ)) / 2ε` is compared with the tape's `∂L/∂xᵢ`.

use std::fmt;

use ndarray::IxDyn;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::{Tape, Tensor, Var};

/// Step and tolerances of a check. An element passes when
/// `|analytic − numeric| ≤ atol + rtol·max(|analytic|, |numeric|)`.
#[derive(Clone, Copy, Debug)]
pub struct GradCheck {
    /// Finite-difference step.
    pub eps: f32,
    /// Absolute tolerance.
    pub atol: f32,
    /// Relative tolerance.
    pub rtol: f32,
    /// Seed of the projection `r`.
    pub seed: u64,
}

impl Default for GradCheck {
    /// Settings that suit `f32` graphs with inputs of order 1.
    fn default() -> Self {
        GradCheck {
            eps: 1e-2,
            atol: 1e-3,
            rtol: 1e-2,
            seed: 0,
        }
    }
}

/// The worst element found, and whether every element passed.
#[derive(Clone, Debug, PartialEq)]
pub struct GradCheckReport {
    /// Every element within tolerance.
    pub passed: bool,
    /// Largest `|analytic − numeric|`.
    pub max_abs_err: f32,
    /// Largest `|analytic − numeric| / max(|analytic|, |numeric|, atol)`.
    pub max_rel_err: f32,
    /// Where the largest tolerance ratio was: (input, flat element, analytic, numeric).
    pub worst: Option<(usize, usize, f32, f32)>,
}

impl fmt::Display for GradCheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: max abs err {:.2e}, max rel err {:.2e}",
            if self.passed { "passed" } else { "FAILED" },
            self.max_abs_err,
            self.max_rel_err
        )?;
        if let Some((i, e, a, n)) = self.worst {
            write!(
                f,
                "; worst at input {i} element {e}: analytic {a:.6}, numeric {n:.6}"
            )?;
        }
        Ok(())
    }
}

impl GradCheck {
    /// Checks the gradients of `f` with respect to every input.
    ///
    /// `f` builds the graph from the inputs (as [`Tape::var`] leaves) and returns its
    /// output, of any shape; it is called once with recording on and twice per input
    /// element in evaluation mode.
    pub fn run<F>(&self, inputs: Vec<Tensor>, f: F) -> GradCheckReport
    where
        F: for<'t> Fn(&[Var<'t>]) -> Var<'t>,
    {
        let tape = Tape::new();
        let vars: Vec<Var<'_>> = inputs.iter().map(|x| tape.var(x.clone())).collect();
        let y = f(&vars);
        let mut rng = StdRng::seed_from_u64(self.seed);
        let r = crate::init::uniform(y.shape(), -1.0, 1.0, &mut rng);
        let projected = (&y * &tape.constant(r.clone())).sum();
        let grads = projected.backward();
        let analytic: Vec<Tensor> = vars
            .iter()
            .map(|v| {
                grads
                    .get(v)
                    .cloned()
                    .unwrap_or_else(|| Tensor::zeros(v.value().raw_dim()))
            })
            .collect();

        let loss = |xs: &[Tensor]| -> f64 {
            let tape = Tape::eval();
            let vars: Vec<Var<'_>> = xs.iter().map(|x| tape.constant(x.clone())).collect();
            let y = f(&vars);
            y.value()
                .iter()
                .zip(r.iter())
                .map(|(&y, &r)| y as f64 * r as f64)
                .sum()
        };
        let mut report = GradCheckReport {
            passed: true,
            max_abs_err: 0.0,
            max_rel_err: 0.0,
            worst: None,
        };
        let mut worst_ratio = -1.0f32;
        let mut xs = inputs;
        for (i, a) in analytic.iter().enumerate() {
            for e in 0..xs[i].len() {
                let x0 = flat(&xs[i])[e];
                flat_mut(&mut xs[i])[e] = x0 + self.eps;
                let up = loss(&xs);
                flat_mut(&mut xs[i])[e] = x0 - self.eps;
                let down = loss(&xs);
                flat_mut(&mut xs[i])[e] = x0;
                let numeric = ((up - down) / (2.0 * self.eps as f64)) as f32;
                let analytic = flat(a)[e];
                let err = (analytic - numeric).abs();
                let scale = analytic.abs().max(numeric.abs());
                // A NaN anywhere makes the ratio NaN, which fails and counts as worst.
                let ratio = err / (self.atol + self.rtol * scale);
                let ratio = if ratio.is_nan() { f32::INFINITY } else { ratio };
                report.max_abs_err = report.max_abs_err.max(err);
                report.max_rel_err = report.max_rel_err.max(err / scale.max(self.atol));
                if ratio > 1.0 {
                    report.passed = false;
                }
                if ratio > worst_ratio {
                    worst_ratio = ratio;
                    report.worst = Some((i, e, analytic, numeric));
                }
            }
        }
        report
    }
}

fn flat(t: &Tensor) -> &[f32] {
    t.as_slice().expect("contiguous")
}

fn flat_mut(t: &mut Tensor) -> &mut [f32] {
    t.as_slice_mut().expect("contiguous")
}

/// Checks `f` with the default settings and panics with the report if it fails: the
/// one-liner for tests.
pub fn assert_gradients<F>(inputs: Vec<Tensor>, f: F)
where
    F: for<'t> Fn(&[Var<'t>]) -> Var<'t>,
{
    let report = GradCheck::default().run(inputs, f);
    assert!(report.passed, "gradient check {report}");
}

/// A tensor of the given shape with values drawn from `U(lo, hi)`, for tests.
pub fn random(shape: &[usize], lo: f32, hi: f32, seed: u64) -> Tensor {
    let mut rng = StdRng::seed_from_u64(seed);
    if shape.contains(&0) {
        return Tensor::zeros(IxDyn(shape));
    }
    crate::init::uniform(shape, lo, hi, &mut rng)
}
