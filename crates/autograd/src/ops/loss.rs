//! Losses, fused so each has one forward and one backward: mean squared error, binary
//! cross-entropy, the KL divergence of a diagonal Gaussian from `N(0, I)`, and softmax
//! cross-entropy for classifiers.

use ndarray::{Axis, IxDyn, Zip};

use crate::Tensor;
use crate::tape::{Var, op1};

fn scalar(v: f32) -> Tensor {
    Tensor::from_elem(IxDyn(&[]), v)
}

fn same_shape(op: &str, a: &Var<'_>, b: &Var<'_>) {
    assert_eq!(
        a.shape(),
        b.shape(),
        "{op}: prediction {:?} and target {:?} differ in shape",
        a.shape(),
        b.shape()
    );
}

/// PyTorch clamps each log in BCE at −100 so a saturated prediction gives a large but
/// finite loss.
fn clamped_ln(x: f32) -> f32 {
    x.ln().max(-100.0)
}

impl<'t> Var<'t> {
    /// Mean squared error `mean((x̂ − x)²)` over all elements; `self` is `x̂`.
    pub fn mse_loss(&self, target: &Var<'t>) -> Var<'t> {
        same_shape("mse_loss", self, target);
        let (p, t) = (self.shared(), target.shared());
        let n = p.len().max(1) as f32;
        let sum: f64 = Zip::from(&*p)
            .and(&*t)
            .fold(0.0, |acc, &a, &b| acc + ((a - b) as f64).powi(2));
        op1(
            self.tape(),
            "mse_loss",
            &[self, target],
            scalar((sum / n as f64) as f32),
            move |g, needs| {
                let k = 2.0 * g.sum() / n;
                let d = Zip::from(&*p).and(&*t).map_collect(|&a, &b| k * (a - b));
                let gt = needs[1].then(|| -&d);
                vec![needs[0].then_some(d), gt]
            },
        )
    }

    /// Binary cross-entropy `mean(−x·ln x̂ − (1−x)·ln(1−x̂))` for predictions `x̂ ∈ [0, 1]`,
    /// with each log clamped at −100 as in PyTorch.
    pub fn bce_loss(&self, target: &Var<'t>) -> Var<'t> {
        same_shape("bce_loss", self, target);
        let (p, t) = (self.shared(), target.shared());
        let n = p.len().max(1) as f32;
        let sum: f64 = Zip::from(&*p).and(&*t).fold(0.0, |acc, &p, &t| {
            acc - (t * clamped_ln(p) + (1.0 - t) * clamped_ln(1.0 - p)) as f64
        });
        op1(
            self.tape(),
            "bce_loss",
            &[self, target],
            scalar((sum / n as f64) as f32),
            move |g, needs| {
                let k = g.sum() / n;
                // PyTorch's form: (x̂ − x) / max(x̂(1 − x̂), 1e-12).
                let gp = needs[0].then(|| {
                    Zip::from(&*p)
                        .and(&*t)
                        .map_collect(|&p, &t| k * (p - t) / (p * (1.0 - p)).max(1e-12))
                });
                let gt = needs[1].then(|| p.mapv(|p| k * (clamped_ln(1.0 - p) - clamped_ln(p))));
                vec![gp, gt]
            },
        )
    }

    /// `KL(N(μ, diag σ²) ‖ N(0, I))` with `self = μ` and `logvar = ln σ²`, both
    /// `[B, ...]`: `−½ Σ (1 + ln σ² − μ² − σ²)` summed over features, averaged over the batch.
    pub fn kl_normal(&self, logvar: &Var<'t>) -> Var<'t> {
        same_shape("kl_normal", self, logvar);
        let (mu, lv) = (self.shared(), logvar.shared());
        let batch = mu.shape().first().copied().unwrap_or(1).max(1) as f32;
        let sum: f64 = Zip::from(&*mu).and(&*lv).fold(0.0, |acc, &m, &l| {
            acc - 0.5 * (1.0 + l - m * m - l.exp()) as f64
        });
        op1(
            self.tape(),
            "kl_normal",
            &[self, logvar],
            scalar((sum / batch as f64) as f32),
            move |g, needs| {
                let k = g.sum() / batch;
                let gm = needs[0].then(|| mu.mapv(|m| k * m));
                let gl = needs[1].then(|| lv.mapv(|l| k * 0.5 * (l.exp() - 1.0)));
                vec![gm, gl]
            },
        )
    }

    /// Softmax cross-entropy of `self = logits [N, C]` against class indices, averaged
    /// over the batch (PyTorch's `F.cross_entropy`). Computed from a max-shifted
    /// log-sum-exp, so large logits do not overflow.
    ///
    /// # Panics
    /// If `self` is not 2-D, `labels.len() != N`, or a label is not below `C`.
    pub fn cross_entropy(&self, labels: &[usize]) -> Var<'t> {
        let x = self.value();
        assert!(
            x.ndim() == 2 && x.shape()[0] == labels.len(),
            "cross_entropy: logits {:?} need shape [N, C] with N = {} labels",
            x.shape(),
            labels.len()
        );
        let classes = x.shape()[1];
        if let Some(&bad) = labels.iter().find(|&&l| l >= classes) {
            panic!("cross_entropy: label {bad} is not below the {classes} classes");
        }
        let n = labels.len().max(1) as f32;
        // Softmax rows, kept for backward: ∂L/∂x = (softmax − onehot) / N.
        let mut probs = x.clone();
        let mut loss = 0.0f64;
        for (mut row, &label) in probs.axis_iter_mut(Axis(0)).zip(labels) {
            let max = row.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let shifted_label = row[label] - max;
            row.mapv_inplace(|v| (v - max).exp());
            let sum = row.sum();
            loss += (sum.ln() - shifted_label) as f64;
            row.mapv_inplace(|v| v / sum);
        }
        let labels = labels.to_vec();
        self.unary_op(
            "cross_entropy",
            scalar((loss / n as f64) as f32),
            move |g, _| {
                let k = g.sum() / n;
                let mut d = probs;
                for (mut row, &label) in d.axis_iter_mut(Axis(0)).zip(&labels) {
                    row[label] -= 1.0;
                    row.mapv_inplace(|v| v * k);
                }
                vec![Some(d)]
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{GradCheck, assert_gradients, random};

    #[test]
    fn mse_and_bce_gradients() {
        let p = random(&[4, 13], 0.1, 0.9, 1);
        let t = random(&[4, 13], 0.0, 1.0, 2);
        assert_gradients(vec![p.clone(), t.clone()], |v| v[0].mse_loss(&v[1]));
        let fine = GradCheck {
            eps: 1e-3,
            ..GradCheck::default()
        };
        let report = fine.run(vec![p, t], |v| v[0].bce_loss(&v[1]));
        assert!(report.passed, "{report}");
    }

    #[test]
    fn kl_gradients() {
        let mu = random(&[3, 5], -1.0, 1.0, 3);
        let lv = random(&[3, 5], -1.0, 1.0, 4);
        assert_gradients(vec![mu, lv], |v| v[0].kl_normal(&v[1]));
    }

    #[test]
    fn cross_entropy_gradients_and_stability() {
        let logits = random(&[4, 3], -2.0, 2.0, 5);
        assert_gradients(vec![logits], |v| v[0].cross_entropy(&[0, 2, 1, 2]));
        let tape = crate::Tape::eval();
        let big = tape.constant(ndarray::arr2(&[[1000.0f32, 0.0]]).into_dyn());
        assert_eq!(big.cross_entropy(&[0]).item(), 0.0);
        assert!((big.cross_entropy(&[1]).item() - 1000.0).abs() < 1e-3);
    }

    #[test]
    fn bce_saturates_finitely() {
        let tape = crate::Tape::eval();
        let p = tape.constant(ndarray::arr1(&[0.0f32, 1.0]).into_dyn());
        let t = tape.constant(ndarray::arr1(&[1.0f32, 0.0]).into_dyn());
        assert_eq!(p.bce_loss(&t).item(), 100.0);
    }
}
