//! Losses, fused so each has one forward and one backward: mean squared error, binary
//! cross-entropy (on probabilities, or stably on logits), L1, Huber and smooth L1, the KL
//! divergence of a diagonal Gaussian from `N(0, I)`, and softmax cross-entropy and
//! negative log-likelihood for classifiers.
//!
//! The losses after the first three follow `torch.nn.functional`'s names, options and
//! numbers, and reduce as a [`Reduction`] says. The classification losses take their
//! options as a builder, [`CrossEntropy`] or [`NllLoss`], and their class targets as
//! [`Indices`]:
//!
//! ```
//! # use autograd::{Tape, gradcheck::random};
//! use autograd::ops::loss::{CrossEntropy, Reduction};
//!
//! let tape = Tape::new();
//! let logits = tape.var(random(&[4, 3], -1.0, 1.0, 0)); // [N, C]
//! let opts = CrossEntropy::new().weight(&[1.0, 2.0, 0.5]).ignore_index(0).label_smoothing(0.1);
//! let loss = logits.cross_entropy_with([0, 2, 1, 2], &opts);
//! let per_sample = logits.cross_entropy_with([0, 2, 1, 2], &opts.reduction(Reduction::None));
//! assert_eq!(per_sample.shape(), &[4]);
//! ```
//!
//! Class axis: as in PyTorch, the classes are axis 1 of an input `[N, C]` or
//! `[N, C, d1, …]`, with targets `[N]` or `[N, d1, …]`. A sequence model's logits
//! `[N, T, C]` need no permute: reshape them to `[N·T, C]` (free) and the targets
//! `[N, T]` to `[N·T]`; every reduction gives the same numbers as PyTorch on the permuted
//! `[N, C, T]` (`Reduction::None` as `[N·T]`, to reshape back to `[N, T]`).
//!
//! Methods on [`Var`] (called on the prediction): [`mse_loss`](Var::mse_loss),
//! [`bce_loss`](Var::bce_loss), [`kl_normal`](Var::kl_normal),
//! [`cross_entropy`](Var::cross_entropy), [`cross_entropy_with`](Var::cross_entropy_with),
//! [`cross_entropy_soft`](Var::cross_entropy_soft), [`nll_loss`](Var::nll_loss),
//! [`bce_with_logits`](Var::bce_with_logits) ([`BceWithLogits`]), [`l1_loss`](Var::l1_loss),
//! [`huber_loss`](Var::huber_loss), [`smooth_l1_loss`](Var::smooth_l1_loss).

use ndarray::{Axis, IxDyn, Zip};

use crate::Tensor;
use crate::ops::index::Indices;
use crate::tape::{Var, op1};
use crate::tensor::contiguous;

fn scalar(v: f32) -> Tensor {
    Tensor::from_elem(IxDyn(&[]), v)
}

#[track_caller]
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
    #[track_caller]
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
    #[track_caller]
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
    #[track_caller]
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
    /// over the batch (PyTorch's `F.cross_entropy` with its defaults). Computed from a
    /// max-shifted log-sum-exp, so large logits do not overflow. The same as
    /// [`Var::cross_entropy_with`] with [`CrossEntropy::new`].
    ///
    /// # Panics
    /// If `self` is not 2-D, `labels.len() != N`, or a label is not below `C`.
    #[track_caller]
    pub fn cross_entropy(&self, labels: &[usize]) -> Var<'t> {
        assert!(
            self.ndim() == 2,
            "cross_entropy: logits {:?} need shape [N, C]",
            self.shape()
        );
        self.cross_entropy_with(labels, &CrossEntropy::new())
    }

    /// Softmax cross-entropy of `self = logits` against class indices, with PyTorch's
    /// options (`F.cross_entropy(logits, targets, weight, ignore_index, reduction,
    /// label_smoothing)`). Logits `[N, C]` or `[N, C, d1, …]` take targets `[N]` or
    /// `[N, d1, …]` (see the [module](self) doc for `[N, T, C]`). With class weights `w`
    /// and smoothing `ε`, position `p` with target `y` costs
    /// `(1 − ε)·w_y·(−log q_y) + (ε/C)·Σ_c w_c·(−log q_c)`, `q = softmax`; ignored
    /// positions cost 0, and the mean divides by the sum of `w_y` over the positions not
    /// ignored.
    ///
    /// # Panics
    /// If the input has fewer than 2 axes, the targets' shape is not the input's without
    /// axis 1, a target (other than the ignored one) is not below `C`, there are not `C`
    /// class weights, or the smoothing is outside `[0, 1]`.
    #[track_caller]
    pub fn cross_entropy_with(&self, targets: impl Into<Indices>, opts: &CrossEntropy) -> Var<'t> {
        let op = "cross_entropy";
        let eps = opts.checked_smoothing(op);
        let targets = ClassTargets::new(op, self.shape(), &targets.into(), &opts.class);
        let (layout, x) = (targets.layout, self.shared());
        let smooth = eps / layout.c as f32;
        let softmax = Softmax::new(&x, layout);
        let losses: Vec<f32> = (targets.classes.iter().enumerate())
            .map(|(p, &y)| {
                let Some(y) = y else { return 0.0 };
                let mut loss = (1.0 - eps) * targets.weight.of(y) * softmax.neg_log_prob(&x, p, y);
                if eps > 0.0 {
                    let all: f32 = (0..layout.c)
                        .map(|c| targets.weight.of(c) * softmax.neg_log_prob(&x, p, c))
                        .sum();
                    loss += smooth * all;
                }
                loss
            })
            .collect();
        let reduction = opts.class.reduction;
        let out = reduction.reduce(losses, &targets.shape, targets.divisor);
        self.unary_op(op, out, move |g, _| {
            let up = reduction.upstream(g, targets.divisor);
            let mut t = vec![0.0; layout.c];
            // ∂/∂x_c = u·(q_c·Σt − t_c) for the target weights t_c of the formula above.
            let gx = softmax.gradient(|p, q, gx| {
                let Some(y) = targets.classes[p] else {
                    return;
                };
                for (c, t) in t.iter_mut().enumerate() {
                    *t = if eps > 0.0 {
                        smooth * targets.weight.of(c)
                    } else {
                        0.0
                    };
                }
                t[y] += (1.0 - eps) * targets.weight.of(y);
                let total: f32 = if eps > 0.0 { t.iter().sum() } else { t[y] };
                let u = up.at(p);
                for ((gx, &q), &t) in gx.iter_mut().zip(q).zip(&t) {
                    *gx = u * (q * total - t);
                }
            });
            vec![Some(gx)]
        })
    }

    /// Softmax cross-entropy of `self = logits [N, C, d1, …]` against class
    /// probabilities of the same shape (`F.cross_entropy` with soft targets):
    /// position `p` costs `Σ_c w_c·t̃_c·(−log q_c)` with `t̃ = (1 − ε)·t + ε/C`. The mean
    /// divides by the number of positions `N·d1·…` (class weights or not, as PyTorch).
    /// Both inputs get gradients.
    ///
    /// # Panics
    /// If the shapes differ or are not `[N, C, …]`, there are not `C` class weights, the
    /// smoothing is outside `[0, 1]`, or an ignored index is set (it applies to class
    /// targets only).
    #[track_caller]
    pub fn cross_entropy_soft(&self, probs: &Var<'t>, opts: &CrossEntropy) -> Var<'t> {
        let op = "cross_entropy_soft";
        same_shape(op, self, probs);
        let layout = ClassLayout::new(op, self.shape());
        let eps = opts.checked_smoothing(op);
        assert!(
            opts.class.ignore_index.is_none(),
            "{op}: ignore_index applies to class-index targets only, not probabilities"
        );
        let weight = ClassWeights::new(op, &opts.class, layout, self.shape());
        let smooth = eps / layout.c as f32;
        let (x, t) = (self.shared(), probs.shared());
        let t_slice = t.as_slice().expect("tensors on the tape are contiguous");
        // The effective target of class `c` at position `p`: w_c·((1 − ε)·t_c + ε/C).
        let target = {
            let weight = weight.clone();
            move |t: &[f32], p: usize, c: usize| {
                weight.of(c) * ((1.0 - eps) * t[layout.at(p, c)] + smooth)
            }
        };
        let softmax = Softmax::new(&x, layout);
        let losses: Vec<f32> = (0..layout.positions())
            .map(|p| {
                (0..layout.c)
                    .map(|c| target(t_slice, p, c) * softmax.neg_log_prob(&x, p, c))
                    .sum()
            })
            .collect();
        let reduction = opts.class.reduction;
        let divisor = layout.positions() as f64;
        let out = reduction.reduce(losses, &positions_shape(self.shape()), divisor);
        op1(self.tape(), op, &[self, probs], out, move |g, needs| {
            let up = reduction.upstream(g, divisor);
            let t = t.as_slice().expect("tensors on the tape are contiguous");
            let gx = needs[0].then(|| {
                softmax.gradient(|p, q, gx| {
                    let total: f32 = (0..layout.c).map(|c| target(t, p, c)).sum();
                    let u = up.at(p);
                    for (c, (gx, &q)) in gx.iter_mut().zip(q).enumerate() {
                        *gx = u * (q * total - target(t, p, c));
                    }
                })
            });
            // ∂/∂t_c = u·(1 − ε)·w_c·(−log q_c).
            let gt = needs[1].then(|| {
                let mut gt = Tensor::zeros(x.raw_dim());
                let out = gt.as_slice_mut().expect("fresh tensor");
                for p in 0..layout.positions() {
                    let u = up.at(p) * (1.0 - eps);
                    for c in 0..layout.c {
                        out[layout.at(p, c)] = u * weight.of(c) * softmax.neg_log_prob(&x, p, c);
                    }
                }
                gt
            });
            vec![gx, gt]
        })
    }

    /// Negative log-likelihood of `self = log-probabilities [N, C]` or `[N, C, d1, …]`
    /// (a `log_softmax` over axis 1) against class indices `[N]` or `[N, d1, …]`, as
    /// `F.nll_loss`: position `p` with target `y` costs `−w_y·self[p, y]`, ignored ones 0;
    /// the mean divides by the sum of `w_y` over the positions not ignored.
    ///
    /// # Panics
    /// As [`Var::cross_entropy_with`].
    #[track_caller]
    pub fn nll_loss(&self, targets: impl Into<Indices>, opts: &NllLoss) -> Var<'t> {
        let op = "nll_loss";
        let targets = ClassTargets::new(op, self.shape(), &targets.into(), opts);
        let layout = targets.layout;
        let logp = self.value().as_slice().expect("contiguous");
        let losses = (targets.classes.iter().enumerate())
            .map(|(p, y)| y.map_or(0.0, |y| -targets.weight.of(y) * logp[layout.at(p, y)]))
            .collect();
        let reduction = opts.reduction;
        let out = reduction.reduce(losses, &targets.shape, targets.divisor);
        let in_shape = self.value().raw_dim();
        self.unary_op(op, out, move |g, _| {
            let up = reduction.upstream(g, targets.divisor);
            let mut gx = Tensor::zeros(in_shape);
            let out = gx.as_slice_mut().expect("fresh tensor");
            for (p, y) in targets.classes.iter().enumerate() {
                if let Some(y) = *y {
                    out[layout.at(p, y)] = -up.at(p) * targets.weight.of(y);
                }
            }
            vec![Some(gx)]
        })
    }

    /// Binary cross-entropy of `self = logits` (any shape) against targets in `[0, 1]` of
    /// the same shape, as `F.binary_cross_entropy_with_logits`:
    /// `w·[(1 − t)·x + (1 + (pw − 1)·t)·ln(1 + e^(−x))]`, with `ln(1 + e^(−x))` in the
    /// stable form `max(−x, 0) + ln(1 + e^(−|x|))` so no logit overflows. `w` and the
    /// positive-class weight `pw` (per class, typically `[C]` against `[N, C]`) broadcast
    /// to the input's shape. Both inputs get gradients.
    ///
    /// # Panics
    /// If the shapes differ or a weight does not broadcast to them.
    #[track_caller]
    pub fn bce_with_logits(&self, target: &Var<'t>, opts: &BceWithLogits) -> Var<'t> {
        let op = "bce_with_logits";
        same_shape(op, self, target);
        let w = broadcast_weight(op, "weight", &opts.weight, self.shape());
        let pw = broadcast_weight(op, "pos_weight", &opts.pos_weight, self.shape());
        let at = |w: &Option<Vec<f32>>, i: usize| w.as_ref().map_or(1.0, |w| w[i]);
        // ln(1 + e^(−x)), stably.
        let softplus_neg = |x: f32| (-x).max(0.0) + (-x.abs()).exp().ln_1p();
        let loss = |i, x, t: f32| {
            at(&w, i) * ((1.0 - t) * x + (1.0 + (at(&pw, i) - 1.0) * t) * softplus_neg(x))
        };
        // The loss's own weights, moved into backward.
        let (w_back, pw_back) = (w.clone(), pw.clone());
        self.elementwise_loss(op, target, opts.reduction, loss, move |i, x, t| {
            let (w, pw) = (at(&w_back, i), at(&pw_back, i));
            let sigmoid = 1.0 / (1.0 + (-x).exp());
            (
                w * ((1.0 + (pw - 1.0) * t) * sigmoid - pw * t),
                w * ((pw - 1.0) * softplus_neg(x) - x),
            )
        })
    }

    /// Mean (or summed, or elementwise) absolute error `|x̂ − x|`, as `F.l1_loss`; `self`
    /// is `x̂`. The gradient at `x̂ = x` is 0.
    ///
    /// # Panics
    /// If the shapes differ.
    #[track_caller]
    pub fn l1_loss(&self, target: &Var<'t>, reduction: Reduction) -> Var<'t> {
        self.elementwise_loss(
            "l1_loss",
            target,
            reduction,
            |_, p, t| (p - t).abs(),
            |_, p, t| (sign(p - t), -sign(p - t)),
        )
    }

    /// Huber loss, as `F.huber_loss`: with `d = x̂ − x`, `½d²` where `|d| < δ` and
    /// `δ·(|d| − ½δ)` beyond, so the gradient is `d` clamped to `[−δ, δ]`.
    ///
    /// # Panics
    /// If the shapes differ or `delta` is not positive.
    #[track_caller]
    pub fn huber_loss(&self, target: &Var<'t>, delta: f32, reduction: Reduction) -> Var<'t> {
        assert!(
            delta > 0.0,
            "huber_loss: delta must be positive, got {delta}"
        );
        self.elementwise_loss(
            "huber_loss",
            target,
            reduction,
            move |_, p, t| {
                let z = (p - t).abs();
                if z < delta {
                    0.5 * z * z
                } else {
                    delta * (z - 0.5 * delta)
                }
            },
            move |_, p, t| {
                let d = (p - t).clamp(-delta, delta);
                (d, -d)
            },
        )
    }

    /// Smooth L1 loss, as `F.smooth_l1_loss`: with `d = x̂ − x`, `½d²/β` where `|d| < β`
    /// and `|d| − ½β` beyond (the Huber loss divided by `β`); `β = 0` is the L1 loss.
    ///
    /// # Panics
    /// If the shapes differ or `beta` is negative.
    #[track_caller]
    pub fn smooth_l1_loss(&self, target: &Var<'t>, beta: f32, reduction: Reduction) -> Var<'t> {
        assert!(
            beta >= 0.0,
            "smooth_l1_loss: beta must not be negative, got {beta}"
        );
        self.elementwise_loss(
            "smooth_l1_loss",
            target,
            reduction,
            move |_, p, t| {
                let z = (p - t).abs();
                if z < beta {
                    0.5 * z * z / beta
                } else {
                    z - 0.5 * beta
                }
            },
            move |_, p, t| {
                let d = if beta > 0.0 {
                    ((p - t) / beta).clamp(-1.0, 1.0)
                } else {
                    sign(p - t)
                };
                (d, -d)
            },
        )
    }

    /// An elementwise loss `ℓ(x̂ᵢ, xᵢ)` of `self = x̂` against a same-shaped target,
    /// reduced as `reduction` says; `grad(i, x̂ᵢ, xᵢ)` is `(∂ℓ/∂x̂ᵢ, ∂ℓ/∂xᵢ)`. The flat
    /// index `i` lets a loss weight its elements.
    #[track_caller]
    fn elementwise_loss(
        &self,
        op: &str,
        target: &Var<'t>,
        reduction: Reduction,
        loss: impl Fn(usize, f32, f32) -> f32,
        grad: impl Fn(usize, f32, f32) -> (f32, f32) + 'static,
    ) -> Var<'t> {
        same_shape(op, self, target);
        let (p, t) = (self.shared(), target.shared());
        let losses = (p.iter().zip(t.iter()).enumerate())
            .map(|(i, (&p, &t))| loss(i, p, t))
            .collect();
        let divisor = p.len() as f64;
        let out = reduction.reduce(losses, p.shape(), divisor);
        op1(self.tape(), op, &[self, target], out, move |g, needs| {
            let up = reduction.upstream(g, divisor);
            let mut gp = needs[0].then(|| Tensor::zeros(p.raw_dim()));
            let mut gt = needs[1].then(|| Tensor::zeros(p.raw_dim()));
            let mut sp = gp.as_mut().map(|g| g.as_slice_mut().expect("fresh tensor"));
            let mut st = gt.as_mut().map(|g| g.as_slice_mut().expect("fresh tensor"));
            for (i, (&p, &t)) in p.iter().zip(t.iter()).enumerate() {
                let (dp, dt) = grad(i, p, t);
                let u = up.at(i);
                if let Some(sp) = sp.as_deref_mut() {
                    sp[i] = u * dp;
                }
                if let Some(st) = st.as_deref_mut() {
                    st[i] = u * dt;
                }
            }
            vec![gp, gt]
        })
    }
}

/// An optional weight broadcast to `shape`, as a flat row-major vector.
#[track_caller]
fn broadcast_weight(op: &str, what: &str, w: &Option<Tensor>, shape: &[usize]) -> Option<Vec<f32>> {
    let w = w.as_ref()?;
    match w.broadcast(IxDyn(shape)) {
        Some(full) => Some(full.iter().copied().collect()),
        None => panic!(
            "{op}: {what} {:?} does not broadcast to the input {shape:?}",
            w.shape()
        ),
    }
}

/// `x`'s sign, 0 at 0 (`f32::signum` gives ±1 there): the L1 loss's gradient, as PyTorch.
fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// How a loss reduces its per-element (per-position) values, as PyTorch's `reduction`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// The sum divided by the number of elements, or for class-weighted classification
    /// losses by the summed weights of the targets. The default, as in PyTorch.
    #[default]
    Mean,
    /// The sum.
    Sum,
    /// No reduction: one loss per element (per position for classification losses).
    None,
}

impl Reduction {
    /// The loss from per-element `losses` of shape `shape`; `Mean` divides the sum
    /// (taken in `f64`) by `divisor`.
    fn reduce(self, losses: Vec<f32>, shape: &[usize], divisor: f64) -> Tensor {
        if self == Reduction::None {
            return Tensor::from_shape_vec(IxDyn(shape), losses).expect("one loss per element");
        }
        let sum: f64 = losses.iter().map(|&l| l as f64).sum();
        scalar(if self == Reduction::Mean {
            sum / divisor
        } else {
            sum
        } as f32)
    }

    /// The loss's gradient `g` as each element's loss receives it.
    fn upstream(self, g: Tensor, divisor: f64) -> Upstream {
        match self {
            Reduction::Mean => Upstream::All(g.sum() / divisor as f32),
            Reduction::Sum => Upstream::All(g.sum()),
            Reduction::None => Upstream::Each(contiguous(g)),
        }
    }
}

/// The gradient reaching each element's loss: one for all (a mean or sum) or its own.
enum Upstream {
    All(f32),
    Each(Tensor),
}

impl Upstream {
    fn at(&self, i: usize) -> f32 {
        match self {
            Upstream::All(g) => *g,
            Upstream::Each(g) => g.as_slice().expect("contiguous")[i],
        }
    }
}

/// Options of [`Var::nll_loss`] (and the class options of [`CrossEntropy`]), as the
/// arguments of `F.nll_loss`: class weights, an ignored target value, the reduction.
///
/// ```
/// use autograd::ops::loss::{NllLoss, Reduction};
/// let opts = NllLoss::new().weight(&[0.2, 1.0, 1.0]).ignore_index(0).reduction(Reduction::Sum);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NllLoss {
    weight: Option<Vec<f32>>,
    ignore_index: Option<usize>,
    reduction: Reduction,
}

impl NllLoss {
    /// No class weights, no ignored target, the mean.
    pub fn new() -> Self {
        Self::default()
    }

    /// One weight per class: a position's loss is scaled by its target class's weight,
    /// and the mean divides by the sum of the weights of the targets not ignored.
    #[must_use]
    pub fn weight(mut self, weight: &[f32]) -> Self {
        self.weight = Some(weight.to_vec());
        self
    }

    /// A target value whose positions add nothing to the loss, its gradient or the
    /// mean's divisor (padding). It need not be a class: `255` for segmentation masks
    /// is fine.
    #[must_use]
    pub fn ignore_index(mut self, index: usize) -> Self {
        self.ignore_index = Some(index);
        self
    }

    /// How the per-position losses are reduced (default: the mean).
    #[must_use]
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }
}

/// Options of [`Var::cross_entropy_with`] and [`Var::cross_entropy_soft`], as the
/// arguments of `F.cross_entropy`: those of [`NllLoss`] plus label smoothing.
///
/// ```
/// use autograd::ops::loss::{CrossEntropy, Reduction};
/// let opts = CrossEntropy::new().ignore_index(0).label_smoothing(0.1).reduction(Reduction::Sum);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CrossEntropy {
    class: NllLoss,
    label_smoothing: f32,
}

impl CrossEntropy {
    /// No class weights, no ignored target, no smoothing, the mean.
    pub fn new() -> Self {
        Self::default()
    }

    /// One weight per class; see [`NllLoss::weight`].
    #[must_use]
    pub fn weight(mut self, weight: &[f32]) -> Self {
        self.class = self.class.weight(weight);
        self
    }

    /// A target value that is ignored; see [`NllLoss::ignore_index`]. Class targets only.
    #[must_use]
    pub fn ignore_index(mut self, index: usize) -> Self {
        self.class = self.class.ignore_index(index);
        self
    }

    /// How the per-position losses are reduced (default: the mean).
    #[must_use]
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.class = self.class.reduction(reduction);
        self
    }

    /// Label smoothing `ε ∈ [0, 1]`: the target becomes the mixture `(1 − ε)·target +
    /// ε·uniform` over the `C` classes.
    #[must_use]
    pub fn label_smoothing(mut self, eps: f32) -> Self {
        self.label_smoothing = eps;
        self
    }

    #[track_caller]
    fn checked_smoothing(&self, op: &str) -> f32 {
        let eps = self.label_smoothing;
        assert!(
            (0.0..=1.0).contains(&eps),
            "{op}: label_smoothing must lie in [0, 1], got {eps}"
        );
        eps
    }
}

/// Options of [`Var::bce_with_logits`], as the arguments of
/// `F.binary_cross_entropy_with_logits`: an element weight, a positive-class weight (both
/// broadcast to the input), the reduction.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BceWithLogits {
    weight: Option<Tensor>,
    pos_weight: Option<Tensor>,
    reduction: Reduction,
}

impl BceWithLogits {
    /// No weights, the mean.
    pub fn new() -> Self {
        Self::default()
    }

    /// A weight per element, broadcast to the input's shape.
    #[must_use]
    pub fn weight(mut self, weight: Tensor) -> Self {
        self.weight = Some(weight);
        self
    }

    /// A weight on the positive term, broadcast to the input's shape: `[C]` for `[N, C]`
    /// logits trades recall against precision per class (`negatives / positives` balances
    /// a rare class).
    #[must_use]
    pub fn pos_weight(mut self, pos_weight: Tensor) -> Self {
        self.pos_weight = Some(pos_weight);
        self
    }

    /// How the elementwise losses are reduced (default: the mean).
    #[must_use]
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }
}

/// A classifier's input `[N, C, d1, …]` read as `[N, C, S]`: `N·S` positions, each with
/// `C` class values `S` apart.
#[derive(Clone, Copy)]
struct ClassLayout {
    c: usize,
    s: usize,
    n: usize,
}

impl ClassLayout {
    #[track_caller]
    fn new(op: &str, shape: &[usize]) -> Self {
        assert!(
            shape.len() >= 2,
            "{op}: input {shape:?} needs shape [N, C] or [N, C, d1, …] (classes on axis 1)"
        );
        ClassLayout {
            n: shape[0],
            c: shape[1],
            s: shape[2..].iter().product(),
        }
    }

    fn positions(self) -> usize {
        self.n * self.s
    }

    /// The flat index of class `c` at position `p = n·S + s`.
    fn at(self, p: usize, c: usize) -> usize {
        let (n, s) = (p / self.s, p % self.s);
        (n * self.c + c) * self.s + s
    }
}

/// The input's shape without its class axis: `[N, d1, …]`, one value per position.
fn positions_shape(shape: &[usize]) -> Vec<usize> {
    [&shape[..1], &shape[2..]].concat()
}

/// Class weights, 1 for every class when none were given.
#[derive(Clone)]
struct ClassWeights(Option<Vec<f32>>);

impl ClassWeights {
    #[track_caller]
    fn new(op: &str, opts: &NllLoss, layout: ClassLayout, shape: &[usize]) -> Self {
        if let Some(w) = &opts.weight {
            assert!(
                w.len() == layout.c,
                "{op}: {} class weights for the {} classes of the input {shape:?}",
                w.len(),
                layout.c
            );
        }
        ClassWeights(opts.weight.clone())
    }

    fn of(&self, class: usize) -> f32 {
        self.0.as_ref().map_or(1.0, |w| w[class])
    }
}

/// Class-index targets checked against a classifier's input: each position's class
/// (`None` where ignored), the class weights, and the mean's divisor: the summed weights of
/// the positions' classes.
struct ClassTargets {
    layout: ClassLayout,
    classes: Vec<Option<usize>>,
    weight: ClassWeights,
    shape: Vec<usize>,
    divisor: f64,
}

impl ClassTargets {
    #[track_caller]
    fn new(op: &str, shape: &[usize], targets: &Indices, opts: &NllLoss) -> Self {
        let layout = ClassLayout::new(op, shape);
        let expected = positions_shape(shape);
        assert!(
            targets.shape() == expected,
            "{op}: targets of shape {:?} do not fit the input {shape:?}: expected {expected:?} \
             (the input's shape without the class axis 1)",
            targets.shape()
        );
        let weight = ClassWeights::new(op, opts, layout, shape);
        let mut classes = Vec::with_capacity(targets.len());
        for (p, &y) in targets.as_slice().iter().enumerate() {
            if opts.ignore_index == Some(y) {
                classes.push(None);
                continue;
            }
            assert!(
                y < layout.c,
                "{op}: target {y} (at position {p}) is not below the {} classes of the input \
                 {shape:?}",
                layout.c
            );
            classes.push(Some(y));
        }
        let divisor = classes.iter().flatten().map(|&y| weight.of(y) as f64).sum();
        ClassTargets {
            layout,
            classes,
            weight,
            shape: expected,
            divisor,
        }
    }
}

/// The softmax over the class axis of a classifier's input, with what its `−log` needs:
/// each position's max and `ln Σ exp(x − max)`.
struct Softmax {
    layout: ClassLayout,
    /// The input's shape.
    shape: Vec<usize>,
    /// The probabilities, in the input's layout `[N, C, S]`.
    q: ndarray::Array3<f32>,
    max: Vec<f32>,
    ln_sum: Vec<f32>,
}

impl Softmax {
    /// Computed row by row with ndarray's folds, as the first `cross_entropy` did, so its
    /// numbers are unchanged to the bit.
    fn new(x: &Tensor, layout: ClassLayout) -> Self {
        let mut q = x
            .view()
            .into_shape_with_order((layout.n, layout.c, layout.s))
            .expect("contiguous input")
            .to_owned();
        let (mut max, mut ln_sum) = (Vec::new(), Vec::new());
        for mut row in q.lanes_mut(Axis(1)) {
            let m = row.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            row.mapv_inplace(|v| (v - m).exp());
            let sum = row.sum();
            row.mapv_inplace(|v| v / sum);
            max.push(m);
            ln_sum.push(sum.ln());
        }
        Softmax {
            layout,
            shape: x.shape().to_vec(),
            q,
            max,
            ln_sum,
        }
    }

    /// `−log softmax(x)_c` at position `p`, as `ln Σ exp(x − max) − (x_c − max)`.
    fn neg_log_prob(&self, x: &Tensor, p: usize, c: usize) -> f32 {
        let x = x.as_slice().expect("contiguous")[self.layout.at(p, c)];
        self.ln_sum[p] - (x - self.max[p])
    }

    /// The input's gradient, filled position by position by `row(p, q_p, grad_p)` from
    /// the probabilities `q_p` (grad_p starts at 0 and stays so if `row` leaves it).
    fn gradient(&self, mut row: impl FnMut(usize, &[f32], &mut [f32])) -> Tensor {
        let l = self.layout;
        let mut g = ndarray::Array3::<f32>::zeros((l.n, l.c, l.s));
        let (mut q_row, mut g_row) = (vec![0.0; l.c], vec![0.0; l.c]);
        for (p, (q, mut g)) in (self.q.lanes(Axis(1)).into_iter())
            .zip(g.lanes_mut(Axis(1)))
            .enumerate()
        {
            q_row.iter_mut().zip(q).for_each(|(a, &b)| *a = b);
            g_row.fill(0.0);
            row(p, &q_row, &mut g_row);
            g.iter_mut().zip(&g_row).for_each(|(a, &b)| *a = b);
        }
        g.into_dyn()
            .into_shape_with_order(IxDyn(&self.shape))
            .expect("input shape")
    }
}

#[cfg(test)]
mod tests {
    use super::{BceWithLogits, CrossEntropy, NllLoss, Reduction};
    use crate::gradcheck::{GradCheck, assert_gradients, random};
    use crate::ops::index::Indices;
    use crate::{Tape, Tensor};
    use ndarray::IxDyn;

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

    fn close(a: f32, b: f32) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
    }

    fn tensor(shape: &[usize], v: Vec<f32>) -> Tensor {
        Tensor::from_shape_vec(IxDyn(shape), v).unwrap()
    }

    const REDUCTIONS: [Reduction; 3] = [Reduction::Mean, Reduction::Sum, Reduction::None];

    #[test]
    fn cross_entropy_with_options_gradients() {
        let x = random(&[5, 4], -2.0, 2.0, 1);
        let y = [0, 3, 1, 3, 2];
        let w = [0.5, 2.0, 1.0, 1.5];
        for r in REDUCTIONS {
            let plain = CrossEntropy::new().reduction(r);
            assert_gradients(vec![x.clone()], |v| v[0].cross_entropy_with(y, &plain));
            let all = plain.weight(&w).ignore_index(3).label_smoothing(0.2);
            assert_gradients(vec![x.clone()], |v| v[0].cross_entropy_with(y, &all));
        }
        // [N, C, d1, d2] with targets [N, d1, d2].
        let x = random(&[2, 3, 2, 2], -2.0, 2.0, 2);
        let y = Indices::new(&[2, 2, 2], vec![0, 2, 1, 1, 2, 0, 7, 1]);
        for r in REDUCTIONS {
            let opts = CrossEntropy::new()
                .weight(&[1.0, 0.3, 2.0])
                .ignore_index(7)
                .label_smoothing(0.1)
                .reduction(r);
            assert_gradients(vec![x.clone()], |v| v[0].cross_entropy_with(&y, &opts));
        }
    }

    /// The weighted mean divides by the weights of the targets not ignored (PyTorch's
    /// rule), and ignored positions cost nothing.
    #[test]
    fn cross_entropy_weighted_mean_and_ignored_values() {
        let tape = Tape::eval();
        let x = tape.constant(random(&[3, 2], -1.0, 1.0, 3));
        let w = [0.25, 4.0];
        let each = x.cross_entropy_with([1, 0, 1], &CrossEntropy::new().reduction(Reduction::None));
        let each: Vec<f32> = each.value().iter().copied().collect();
        let opts = CrossEntropy::new().weight(&w).ignore_index(0);
        let mean = x.cross_entropy_with([1, 0, 1], &opts).item();
        close(mean, (4.0 * each[0] + 4.0 * each[2]) / 8.0);
        let none = x.cross_entropy_with([1, 0, 1], &opts.reduction(Reduction::None));
        assert_eq!(none.value().iter().copied().collect::<Vec<_>>()[1], 0.0);
        // Everything ignored: PyTorch's 0/0.
        let all_ignored = x.cross_entropy_with([0, 0, 0], &CrossEntropy::new().ignore_index(0));
        assert!(all_ignored.item().is_nan());
    }

    /// `[N, T, C]` logits reshaped to `[N·T, C]` give PyTorch's numbers on `[N, C, T]`.
    #[test]
    fn sequence_logits_by_reshape_match_the_class_axis_layout() {
        let tape = Tape::eval();
        let ntc = tape.constant(random(&[2, 3, 4], -2.0, 2.0, 4));
        let targets: Vec<usize> = vec![0, 3, 1, 2, 2, 0];
        let opts = CrossEntropy::new()
            .weight(&[1.0, 2.0, 0.5, 1.0])
            .label_smoothing(0.1);
        let nct = ntc.permute(&[0, 2, 1]);
        let by_axis = nct.cross_entropy_with(Indices::new(&[2, 3], targets.clone()), &opts);
        let by_reshape = ntc.reshape(&[6, 4]).cross_entropy_with(&targets, &opts);
        close(by_reshape.item(), by_axis.item());
    }

    #[test]
    fn soft_targets_gradients_and_one_hot_agreement() {
        let x = random(&[4, 3], -2.0, 2.0, 5);
        let t = random(&[4, 3], 0.0, 1.0, 6);
        for r in REDUCTIONS {
            let opts = CrossEntropy::new()
                .weight(&[1.0, 0.5, 2.0])
                .label_smoothing(0.15)
                .reduction(r);
            assert_gradients(vec![x.clone(), t.clone()], |v| {
                v[0].cross_entropy_soft(&v[1], &opts)
            });
        }
        let x3 = random(&[2, 3, 2], -2.0, 2.0, 7);
        let t3 = random(&[2, 3, 2], 0.0, 1.0, 8);
        assert_gradients(vec![x3, t3], |v| {
            v[0].cross_entropy_soft(&v[1], &CrossEntropy::new())
        });
        // One-hot probabilities are class targets.
        let tape = Tape::eval();
        let xv = tape.constant(x);
        let one_hot = tape.constant(tensor(
            &[4, 3],
            vec![0., 1., 0., 1., 0., 0., 0., 0., 1., 0., 1., 0.],
        ));
        let opts = CrossEntropy::new().label_smoothing(0.3);
        close(
            xv.cross_entropy_soft(&one_hot, &opts).item(),
            xv.cross_entropy_with([1, 0, 2, 1], &opts).item(),
        );
    }

    #[test]
    fn nll_loss_is_cross_entropy_of_log_softmax() {
        let x = random(&[3, 4, 2], -2.0, 2.0, 9);
        let y = Indices::new(&[3, 2], vec![0, 3, 3, 1, 2, 2]);
        for r in REDUCTIONS {
            let nll = NllLoss::new()
                .weight(&[1.0, 0.5, 2.0, 1.5])
                .ignore_index(3)
                .reduction(r);
            let ce = CrossEntropy::new()
                .weight(&[1.0, 0.5, 2.0, 1.5])
                .ignore_index(3)
                .reduction(r);
            assert_gradients(vec![x.clone()], |v| v[0].nll_loss(&y, &nll));
            let tape = Tape::eval();
            let xv = tape.constant(x.clone());
            let log_softmax = &xv - &xv.exp().sum_axes(&[1], true).log();
            let a = log_softmax.nll_loss(&y, &nll);
            let b = xv.cross_entropy_with(&y, &ce);
            for (a, b) in a.value().iter().zip(b.value().iter()) {
                close(*a, *b);
            }
        }
    }

    #[test]
    fn bce_with_logits_gradients_and_stability() {
        let x = random(&[3, 4], -3.0, 3.0, 10);
        let t = random(&[3, 4], 0.0, 1.0, 11);
        let pw = tensor(&[4], vec![0.5, 1.0, 2.0, 3.0]);
        let w = tensor(&[3, 1], vec![1.0, 0.2, 2.0]);
        for r in REDUCTIONS {
            let opts = BceWithLogits::new().reduction(r);
            assert_gradients(vec![x.clone(), t.clone()], |v| {
                v[0].bce_with_logits(&v[1], &opts)
            });
            let opts = opts.pos_weight(pw.clone()).weight(w.clone());
            assert_gradients(vec![x.clone(), t.clone()], |v| {
                v[0].bce_with_logits(&v[1], &opts)
            });
        }
        let tape = Tape::eval();
        let (xv, tv) = (tape.constant(x), tape.constant(t));
        close(
            xv.bce_with_logits(&tv, &BceWithLogits::new()).item(),
            xv.sigmoid().bce_loss(&tv).item(),
        );
        let big = tape.constant(tensor(&[2], vec![200.0, -200.0]));
        let wrong = tape.constant(tensor(&[2], vec![0.0, 1.0]));
        close(
            big.bce_with_logits(&wrong, &BceWithLogits::new()).item(),
            200.0,
        );
    }

    #[test]
    fn l1_huber_and_smooth_l1() {
        // Differences kept away from the kinks at 0 and ±0.5 (finite differences).
        let t = random(&[2, 7], -1.0, 1.0, 12);
        let d = [-1.3, -0.7, -0.3, -0.1, 0.15, 0.4, 0.9];
        let p = tensor(
            &[2, 7],
            (0..14)
                .map(|i| t.as_slice().unwrap()[i] + d[i % 7])
                .collect(),
        );
        for r in REDUCTIONS {
            assert_gradients(vec![p.clone(), t.clone()], |v| v[0].l1_loss(&v[1], r));
            assert_gradients(vec![p.clone(), t.clone()], |v| {
                v[0].huber_loss(&v[1], 0.5, r)
            });
            assert_gradients(vec![p.clone(), t.clone()], |v| {
                v[0].smooth_l1_loss(&v[1], 0.5, r)
            });
            assert_gradients(vec![p.clone(), t.clone()], |v| {
                v[0].smooth_l1_loss(&v[1], 0.0, r)
            });
        }
        let tape = Tape::eval();
        let (pv, tv) = (tape.constant(p), tape.constant(t));
        // huber(δ) = δ·smooth_l1(β = δ); smooth_l1(0) = l1.
        close(
            pv.huber_loss(&tv, 0.5, Reduction::Sum).item(),
            0.5 * pv.smooth_l1_loss(&tv, 0.5, Reduction::Sum).item(),
        );
        close(
            pv.smooth_l1_loss(&tv, 0.0, Reduction::Mean).item(),
            pv.l1_loss(&tv, Reduction::Mean).item(),
        );
        // The gradient of |d| at d = 0 is 0, as PyTorch.
        let tape = Tape::new();
        let z = tape.var(tensor(&[1], vec![0.5]));
        let g = z
            .l1_loss(&tape.constant(tensor(&[1], vec![0.5])), Reduction::Sum)
            .backward();
        assert_eq!(g.get(&z).unwrap()[[0]], 0.0);
    }

    #[test]
    #[should_panic(
        expected = "cross_entropy: target 4 (at position 1) is not below the 4 classes of the input [2, 4]"
    )]
    fn cross_entropy_target_out_of_range() {
        let tape = Tape::eval();
        let x = tape.constant(random(&[2, 4], -1.0, 1.0, 1));
        x.cross_entropy_with([0, 4], &CrossEntropy::new());
    }

    #[test]
    #[should_panic(
        expected = "cross_entropy: targets of shape [2, 3] do not fit the input [2, 4, 2]: expected [2, 2]"
    )]
    fn cross_entropy_targets_shape() {
        let tape = Tape::eval();
        let x = tape.constant(random(&[2, 4, 2], -1.0, 1.0, 1));
        x.cross_entropy_with(Indices::new(&[2, 3], vec![0; 6]), &CrossEntropy::new());
    }

    #[test]
    #[should_panic(expected = "nll_loss: 2 class weights for the 4 classes of the input [2, 4]")]
    fn class_weights_must_match_classes() {
        let tape = Tape::eval();
        let x = tape.constant(random(&[2, 4], -1.0, 1.0, 1));
        x.nll_loss([0, 1], &NllLoss::new().weight(&[1.0, 2.0]));
    }

    #[test]
    #[should_panic(
        expected = "cross_entropy_soft: ignore_index applies to class-index targets only"
    )]
    fn soft_targets_refuse_ignore_index() {
        let tape = Tape::eval();
        let x = tape.constant(random(&[2, 4], -1.0, 1.0, 1));
        x.cross_entropy_soft(&x, &CrossEntropy::new().ignore_index(0));
    }

    #[test]
    #[should_panic(expected = "cross_entropy: label_smoothing must lie in [0, 1], got 1.5")]
    fn label_smoothing_range() {
        let tape = Tape::eval();
        let x = tape.constant(random(&[2, 4], -1.0, 1.0, 1));
        x.cross_entropy_with([0, 1], &CrossEntropy::new().label_smoothing(1.5));
    }

    #[test]
    #[should_panic(
        expected = "bce_with_logits: pos_weight [3] does not broadcast to the input [2, 4]"
    )]
    fn pos_weight_must_broadcast() {
        let tape = Tape::eval();
        let x = tape.constant(random(&[2, 4], -1.0, 1.0, 1));
        x.bce_with_logits(
            &x,
            &BceWithLogits::new().pos_weight(random(&[3], 0.0, 1.0, 2)),
        );
    }

    #[test]
    #[should_panic(expected = "huber_loss: delta must be positive, got 0")]
    fn huber_delta_positive() {
        let tape = Tape::eval();
        let x = tape.constant(random(&[2], -1.0, 1.0, 1));
        x.huber_loss(&x, 0.0, Reduction::Mean);
    }

    #[test]
    #[should_panic(expected = "l1_loss: prediction [2] and target [3] differ in shape")]
    fn l1_shapes_must_agree() {
        let tape = Tape::eval();
        let x = tape.constant(random(&[2], -1.0, 1.0, 1));
        x.l1_loss(&tape.constant(random(&[3], -1.0, 1.0, 1)), Reduction::Mean);
    }
}
