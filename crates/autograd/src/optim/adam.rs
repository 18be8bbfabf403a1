//! Adam (Kingma & Ba) with L2 weight decay, and AdamW (Loshchilov & Hutter) with
//! decoupled weight decay, step for step as `torch.optim.Adam` and `torch.optim.AdamW`.

use std::collections::BTreeMap;

use ndarray::Zip;

use super::group::{Group, ParamGroup, build, check_betas};
use super::state::{self, InvalidState, OptimStateError};
use super::{Optimizer, require};
use crate::{Parameter, Tensor};

/// State kinds: first moments `adam.m.<name>`, second moments `adam.v.<name>`, and the
/// step count `adam.steps`.
const FIRST: &str = "adam.m";
const SECOND: &str = "adam.v";
const STEPS: &str = "adam.steps";

/// How Adam applies weight decay `λ`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecayMode {
    /// Added to the gradient before the moments, `g ← ∇ + λp` (`torch.optim.Adam`).
    L2,
    /// Applied to the weights apart from the moments, `p ← p·(1 − lr·λ)` (AdamW).
    Decoupled,
}

/// Adam's settings besides the learning rates (a group may override `betas` and
/// `weight_decay`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamSettings {
    /// Decay rates `(β₁, β₂)` of the first and second moments.
    pub betas: (f32, f32),
    /// Added to `√v̂` for stability.
    pub eps: f32,
    /// Weight decay `λ`.
    pub weight_decay: f32,
    /// How the weight decay is applied.
    pub decay_mode: DecayMode,
}

/// Adam with bias correction: at step `t`, `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
/// `p ← p − lr·m̂/(√v̂ + ε)` with `m̂ = m/(1−β₁ᵗ)`, `v̂ = v/(1−β₂ᵗ)`; weight decay as
/// its [`DecayMode`] says.
///
/// ```
/// # use autograd::{Parameter, Tensor, optim::Adam};
/// # let params = || vec![Parameter::new("w", Tensor::zeros(ndarray::IxDyn(&[2])))];
/// let adam = Adam::new(params(), 1e-3).betas(0.9, 0.99).eps(1e-6).weight_decay(1e-4);
/// let adamw = Adam::adamw(params(), 1e-3).weight_decay(0.05);
/// ```
#[derive(Debug)]
pub struct Adam {
    groups: Vec<Group>,
    params: Vec<Parameter>,
    settings: AdamSettings,
    steps: u64,
    m: Vec<Option<Tensor>>,
    v: Vec<Option<Tensor>>,
}

impl Adam {
    /// Adam over one group with PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, no
    /// weight decay.
    #[track_caller]
    pub fn new(params: Vec<Parameter>, lr: f32) -> Self {
        Adam::with_groups(vec![ParamGroup::new(params)], lr)
    }

    /// Adam over `groups`; those without their own learning rate take `lr`.
    #[track_caller]
    pub fn with_groups(groups: Vec<ParamGroup>, lr: f32) -> Self {
        let (groups, params) = build("Adam", groups, lr);
        let n = params.len();
        Adam {
            groups,
            params,
            settings: AdamSettings {
                betas: (0.9, 0.999),
                eps: 1e-8,
                weight_decay: 0.0,
                decay_mode: DecayMode::L2,
            },
            steps: 0,
            m: vec![None; n],
            v: vec![None; n],
        }
    }

    /// AdamW over one group with PyTorch's defaults: decoupled weight decay 0.01.
    #[track_caller]
    pub fn adamw(params: Vec<Parameter>, lr: f32) -> Self {
        Adam::adamw_with_groups(vec![ParamGroup::new(params)], lr)
    }

    /// AdamW over `groups` (decoupled weight decay 0.01 unless a group sets its own).
    #[track_caller]
    pub fn adamw_with_groups(groups: Vec<ParamGroup>, lr: f32) -> Self {
        Adam::with_groups(groups, lr)
            .decay_mode(DecayMode::Decoupled)
            .weight_decay(0.01)
    }

    /// Decay rates `(β₁, β₂)`, each in `[0, 1)`, of groups without their own.
    #[track_caller]
    pub fn betas(mut self, beta1: f32, beta2: f32) -> Self {
        check_betas("Adam", beta1, beta2);
        self.settings.betas = (beta1, beta2);
        self
    }

    /// `ε ≥ 0`, added to `√v̂`.
    #[track_caller]
    pub fn eps(mut self, eps: f32) -> Self {
        require(eps >= 0.0, "Adam: eps must be ≥ 0", eps);
        self.settings.eps = eps;
        self
    }

    /// Weight decay `λ ≥ 0` of groups without their own, applied as the
    /// [`DecayMode`] says (L2 after [`Adam::new`], decoupled after [`Adam::adamw`]).
    #[track_caller]
    pub fn weight_decay(mut self, weight_decay: f32) -> Self {
        require(
            weight_decay >= 0.0,
            "Adam: weight_decay must be ≥ 0",
            weight_decay,
        );
        self.settings.weight_decay = weight_decay;
        self
    }

    /// How weight decay is applied (as `torch.optim.Adam`'s `decoupled_weight_decay`).
    pub fn decay_mode(mut self, mode: DecayMode) -> Self {
        self.settings.decay_mode = mode;
        self
    }

    /// Its settings.
    pub fn settings(&self) -> AdamSettings {
        self.settings
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }
}

impl Optimizer for Adam {
    fn params(&self) -> &[Parameter] {
        &self.params
    }

    fn groups(&self) -> &[Group] {
        &self.groups
    }

    fn groups_mut(&mut self) -> &mut [Group] {
        &mut self.groups
    }

    fn step(&mut self) {
        self.steps += 1;
        let t = self.steps as i32;
        let AdamSettings {
            betas,
            eps,
            weight_decay,
            decay_mode,
        } = self.settings;
        let decoupled = decay_mode == DecayMode::Decoupled;
        let mut moments = self.m.iter_mut().zip(&mut self.v);
        for group in &self.groups {
            let (b1, b2) = group.betas().unwrap_or(betas);
            let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
            let (lr, wd) = (group.lr(), group.weight_decay().unwrap_or(weight_decay));
            for (p, (m, v)) in group.params().iter().zip(&mut moments) {
                let Some(g) = p.grad() else { continue };
                let m = m.get_or_insert_with(|| Tensor::zeros(g.raw_dim()));
                let v = v.get_or_insert_with(|| Tensor::zeros(g.raw_dim()));
                // One fused pass per parameter; `g + wd·w` even at wd = 0 keeps the
                // arithmetic (and so checkpoints) identical to earlier versions.
                p.update(|w| {
                    Zip::from(w).and(&*g).and(m).and(v).for_each(|w, &g, m, v| {
                        let g = if decoupled { g } else { g + wd * *w };
                        if decoupled {
                            *w *= 1.0 - lr * wd;
                        }
                        *m = b1 * *m + (1.0 - b1) * g;
                        *v = b2 * *v + (1.0 - b2) * g * g;
                        *w -= lr * (*m / c1) / ((*v / c2).sqrt() + eps);
                    })
                });
            }
        }
    }

    fn state(&self) -> BTreeMap<String, Tensor> {
        let mut out = state::cloned(self.buffers());
        out.insert(STEPS.into(), state::scalar(self.steps as f32));
        out
    }

    fn buffers(&self) -> Vec<(String, &Tensor)> {
        let mut out = state::named(FIRST, &self.params, &self.m);
        out.extend(state::named(SECOND, &self.params, &self.v));
        out
    }

    fn load_state(&mut self, saved: &BTreeMap<String, Tensor>) -> Result<(), OptimStateError> {
        let invalid = |reason| OptimStateError::Invalid {
            name: STEPS.into(),
            reason,
        };
        let steps = saved
            .get(STEPS)
            .and_then(|t| t.iter().next().copied())
            .ok_or_else(|| OptimStateError::Missing { name: STEPS.into() })?;
        // Stored as f32, which counts exactly up to 2²⁴.
        if !(steps >= 0.0 && steps.fract() == 0.0 && steps <= (1u32 << 24) as f32) {
            return Err(invalid(InvalidState::StepCount { value: steps }));
        }
        let m = state::load(saved, FIRST, &self.params)?;
        let v = state::load(saved, SECOND, &self.params)?;
        let (named_m, named_v) = (
            state::named(FIRST, &self.params, &m),
            state::named(SECOND, &self.params, &v),
        );
        state::check_finite(&named_m)?;
        state::check_finite(&named_v)?;
        for (name, t) in &named_v {
            let count = t.iter().filter(|&&x| x < 0.0).count();
            if count > 0 {
                return Err(OptimStateError::Invalid {
                    name: name.clone(),
                    reason: InvalidState::NegativeSecondMoment { count },
                });
            }
        }
        if steps == 0.0 && named_m.len() + named_v.len() > 0 {
            return Err(invalid(InvalidState::MomentsWithoutSteps));
        }
        (self.m, self.v, self.steps) = (m, v, steps as u64);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tape;
    use crate::optim::tests::{minimize, quad_named, quad_param, quadratic_grads};

    #[test]
    fn adam_and_adamw_minimize_a_quadratic() {
        assert!(minimize(&mut Adam::new(vec![quad_param()], 0.1), 500) < 1e-2);
        assert!(minimize(&mut Adam::adamw(vec![quad_param()], 0.1), 500) < 1e-2);
    }

    #[test]
    fn first_step_matches_pytorch() {
        // torch.optim.Adam([w], lr=0.1) on loss = sum(w²) from w = [3, −2]: the first
        // bias-corrected step moves each weight by lr·sign(g) (up to eps): [2.9, −1.9].
        let p = quad_param();
        let mut adam = Adam::new(vec![p.clone()], 0.1);
        minimize(&mut adam, 1);
        let w = p.value();
        assert!(
            (w[0] - 2.9).abs() < 1e-6 && (w[1] + 1.9).abs() < 1e-6,
            "{w}"
        );
    }

    #[test]
    fn adamw_decays_decoupled_from_the_gradient() {
        // With a zero gradient Adam's step is 0, so only the decoupled decay moves w.
        let p = quad_param();
        let mut opt = Adam::adamw(vec![p.clone()], 0.1).weight_decay(0.5);
        let tape = Tape::new();
        (tape.param(&p) * 0.0).sum().backward();
        opt.step();
        assert!((p.value()[0] - 3.0 * 0.95).abs() < 1e-6);
    }

    #[test]
    fn builders_set_and_report_every_setting() {
        let adam = Adam::new(vec![quad_param()], 0.1)
            .betas(0.8, 0.99)
            .eps(1e-6)
            .weight_decay(0.1);
        assert_eq!(
            adam.settings(),
            AdamSettings {
                betas: (0.8, 0.99),
                eps: 1e-6,
                weight_decay: 0.1,
                decay_mode: DecayMode::L2
            }
        );
        let adamw = Adam::adamw(vec![quad_param()], 0.1);
        assert_eq!(adamw.settings().weight_decay, 0.01, "PyTorch's default");
        assert_eq!(adamw.settings().decay_mode, DecayMode::Decoupled);
        assert_eq!(
            Adam::adamw(vec![quad_param()], 0.1)
                .weight_decay(0.2)
                .settings()
                .decay_mode,
            DecayMode::Decoupled,
            "setting the amount keeps the mode"
        );
    }

    #[test]
    #[should_panic(expected = "Adam: beta1 must be in [0, 1), got -0.1")]
    fn a_negative_beta_is_refused() {
        Adam::new(vec![quad_param()], 0.1).betas(-0.1, 0.999);
    }

    #[test]
    #[should_panic(expected = "Adam: lr must be ≥ 0, got -1")]
    fn a_negative_lr_is_refused() {
        Adam::adamw(vec![quad_param()], -1.0);
    }

    #[test]
    #[should_panic(expected = "Adam: weight_decay must be ≥ 0, got -0.01")]
    fn a_negative_weight_decay_is_refused() {
        Adam::new(vec![quad_param()], 0.1).weight_decay(-0.01);
    }

    #[test]
    fn groups_step_with_their_own_lr_decay_and_betas() {
        // AdamW's first step from w = [3, −2] on Σw²: decay `w·(1 − lr·λ)`, then
        // `lr·sign(g)` (up to eps), whatever the betas.
        let (a, b, c) = (quad_param(), quad_named("b"), quad_named("c"));
        let mut adamw = Adam::adamw_with_groups(
            vec![
                ParamGroup::new(vec![a.clone()]),
                ParamGroup::new(vec![b.clone()]).lr(0.01).weight_decay(0.0),
                ParamGroup::new(vec![c.clone()]).betas(0.5, 0.5),
            ],
            0.1,
        )
        .weight_decay(0.5);
        quadratic_grads(&[a.clone(), b.clone(), c.clone()]);
        adamw.step();
        assert!((a.value()[0] - (3.0 * 0.95 - 0.1)).abs() < 1e-6);
        assert!((b.value()[0] - (3.0 - 0.01)).abs() < 1e-6);
        assert!((c.value()[0] - (3.0 * 0.95 - 0.1)).abs() < 1e-6);
        // The second step shows the betas: m̂ = (β₁(1−β₁)g₁ + (1−β₁)g₂)/(1−β₁²), and
        // likewise v̂ with g², here with β = 0.5.
        adamw.zero_grad();
        quadratic_grads(std::slice::from_ref(&c));
        let w1 = c.value()[0] as f64;
        let (g1, g2) = (6.0, 2.0 * w1);
        let m = (0.25 * g1 + 0.5 * g2) / 0.75;
        let v = (0.25 * g1 * g1 + 0.5 * g2 * g2) / 0.75;
        adamw.step();
        let want = w1 * 0.95 - 0.1 * m / v.sqrt();
        assert!(
            (c.value()[0] as f64 - want).abs() < 1e-5,
            "{} {want}",
            c.value()[0]
        );
        assert_eq!(adamw.steps(), 2);
        assert_eq!(adamw.groups()[1].lr(), 0.01);
    }

    #[test]
    fn state_round_trips_with_groups() {
        let make = |p: &[Parameter]| {
            Adam::with_groups(
                vec![
                    ParamGroup::new(vec![p[0].clone()]),
                    ParamGroup::new(vec![p[1].clone()]).lr(0.01).betas(0.5, 0.9),
                ],
                0.1,
            )
        };
        let params = [quad_param(), quad_named("b")];
        let mut a = make(&params);
        for _ in 0..3 {
            a.zero_grad();
            quadratic_grads(&params);
            a.step();
        }
        let state = a.state();
        assert_eq!(
            state.keys().collect::<Vec<_>>(),
            ["adam.m.b", "adam.m.w", "adam.steps", "adam.v.b", "adam.v.w"]
        );
        let mut b = make(&params);
        b.load_state(&state).unwrap();
        assert_eq!(b.steps(), 3);
        assert_eq!(a.state(), b.state());
        // The names do not depend on the grouping: one group loads the same state.
        let mut single = Adam::new(params.to_vec(), 0.1);
        single.load_state(&state).unwrap();
        assert_eq!(single.state(), state);
    }

    #[test]
    fn a_state_of_another_shape_is_refused() {
        let p = quad_param();
        let mut a = Adam::new(vec![p.clone()], 0.1);
        minimize(&mut a, 3);
        let mut wrong = Adam::new(
            vec![Parameter::new("w", Tensor::zeros(ndarray::IxDyn(&[3])))],
            0.1,
        );
        let err = wrong.load_state(&a.state()).unwrap_err();
        assert_eq!(
            err,
            OptimStateError::ShapeMismatch {
                name: "adam.m.w".into(),
                expected: vec![3],
                found: vec![2]
            }
        );
        assert!(err.to_string().contains("adam.m.w") && err.to_string().contains("[3]"));
    }

    #[test]
    fn impossible_state_is_refused_and_changes_nothing() {
        let p = quad_param();
        let mut a = Adam::new(vec![p.clone()], 0.1);
        minimize(&mut a, 3);
        let good = a.state();
        let spoiled = |key: &str, value: f32| {
            let mut s = good.clone();
            s.get_mut(key).unwrap()[[0]] = value;
            s
        };
        let mut missing = good.clone();
        missing.remove("adam.steps");
        for (state, want) in [
            (missing, "optimizer state: missing `adam.steps`"),
            (spoiled("adam.v.w", -1.0), "`adam.v.w`: 1 negative values"),
            (
                spoiled("adam.m.w", f32::NAN),
                "`adam.m.w` (1 of 2 values NaN",
            ),
            (
                spoiled("adam.v.w", f32::INFINITY),
                "`adam.v.w` (1 of 2 values NaN",
            ),
            (spoiled("adam.steps", f32::NAN), "`adam.steps` = NaN"),
            (spoiled("adam.steps", 2.5), "`adam.steps` = 2.5"),
            (spoiled("adam.steps", -1.0), "`adam.steps` = -1"),
            (spoiled("adam.steps", 0.0), "moments are present"),
        ] {
            let mut b = Adam::new(vec![p.clone()], 0.1);
            let before = b.state();
            let err = b.load_state(&state).unwrap_err();
            assert!(err.to_string().contains(want), "{want}: {err}");
            assert_eq!(b.state(), before, "a refused state changes nothing");
        }
        let mut b = Adam::new(vec![p.clone()], 0.1);
        assert_eq!(
            b.load_state(&spoiled("adam.v.w", -1.0)),
            Err(OptimStateError::Invalid {
                name: "adam.v.w".into(),
                reason: InvalidState::NegativeSecondMoment { count: 1 }
            })
        );
        assert_eq!(
            b.load_state(&spoiled("adam.steps", 0.0)),
            Err(OptimStateError::Invalid {
                name: "adam.steps".into(),
                reason: InvalidState::MomentsWithoutSteps
            })
        );
        assert_eq!(a.buffers().len(), 2);
    }
}
