//! Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2
//! weight decay, step for step as `torch.optim.SGD`.

use std::collections::BTreeMap;

use ndarray::Zip;

use super::group::{Group, ParamGroup, build};
use super::state::{self, OptimStateError};
use super::{Optimizer, require};
use crate::{Parameter, Tensor};

/// The state kind of the momentum buffers: `sgd.momentum.<parameter name>`.
const MOMENTUM: &str = "sgd.momentum";

/// SGD's settings besides the learning rates (a group may override `weight_decay`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdSettings {
    /// Momentum `μ` (0: plain SGD).
    pub momentum: f32,
    /// Dampening `τ` of the gradient added to the momentum buffer.
    pub dampening: f32,
    /// Nesterov momentum (needs `μ > 0` and `τ = 0`).
    pub nesterov: bool,
    /// L2 penalty `λ` added to the gradient.
    pub weight_decay: f32,
}

/// SGD as PyTorch's: `g ← ∇ + λp`; with momentum, `b ← g` at the first step, then
/// `b ← μb + (1−τ)g`, and `g ← g + μb` (Nesterov) or `g ← b`; finally `p ← p − lr·g`.
///
/// ```
/// # use autograd::{Parameter, Tensor, optim::Sgd};
/// # let params = vec![Parameter::new("w", Tensor::zeros(ndarray::IxDyn(&[2])))];
/// let sgd = Sgd::new(params, 0.1).momentum(0.9).nesterov(true).weight_decay(1e-4);
/// ```
#[derive(Debug)]
pub struct Sgd {
    groups: Vec<Group>,
    params: Vec<Parameter>,
    settings: SgdSettings,
    velocity: Vec<Option<Tensor>>,
}

impl Sgd {
    /// Plain SGD over one group at learning rate `lr`.
    #[track_caller]
    pub fn new(params: Vec<Parameter>, lr: f32) -> Self {
        Sgd::with_groups(vec![ParamGroup::new(params)], lr)
    }

    /// Plain SGD over `groups`; those without their own learning rate take `lr`.
    ///
    /// # Panics
    /// If a group sets betas (SGD has none), or as [`ParamGroup`]s are checked.
    #[track_caller]
    pub fn with_groups(groups: Vec<ParamGroup>, lr: f32) -> Self {
        let (groups, params) = build("Sgd", groups, lr);
        for (i, g) in groups.iter().enumerate() {
            require(
                g.betas().is_none(),
                "Sgd: group betas must be unset (SGD has none)",
                format!("{:?} in group {i}", g.betas()),
            );
        }
        let velocity = vec![None; params.len()];
        Sgd {
            groups,
            params,
            settings: SgdSettings {
                momentum: 0.0,
                dampening: 0.0,
                nesterov: false,
                weight_decay: 0.0,
            },
            velocity,
        }
    }

    /// Momentum `μ ≥ 0`.
    #[track_caller]
    pub fn momentum(mut self, momentum: f32) -> Self {
        require(momentum >= 0.0, "Sgd: momentum must be ≥ 0", momentum);
        if self.settings.nesterov {
            require(
                momentum > 0.0,
                "Sgd: momentum must be > 0 with nesterov",
                momentum,
            );
        }
        self.settings.momentum = momentum;
        self
    }

    /// Dampening `τ` of the gradient added to the momentum buffer.
    #[track_caller]
    pub fn dampening(mut self, dampening: f32) -> Self {
        require(
            dampening.is_finite(),
            "Sgd: dampening must be finite",
            dampening,
        );
        if self.settings.nesterov {
            require(
                dampening == 0.0,
                "Sgd: dampening must be 0 with nesterov",
                dampening,
            );
        }
        self.settings.dampening = dampening;
        self
    }

    /// Nesterov momentum; set the momentum first.
    ///
    /// # Panics
    /// If `nesterov` while the momentum is 0 or the dampening is not.
    #[track_caller]
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        if nesterov {
            let SgdSettings {
                momentum,
                dampening,
                ..
            } = self.settings;
            require(
                momentum > 0.0,
                "Sgd: momentum must be > 0 for nesterov (set it first)",
                momentum,
            );
            require(
                dampening == 0.0,
                "Sgd: dampening must be 0 for nesterov",
                dampening,
            );
        }
        self.settings.nesterov = nesterov;
        self
    }

    /// L2 weight decay `λ ≥ 0` of every group that does not set its own.
    #[track_caller]
    pub fn weight_decay(mut self, weight_decay: f32) -> Self {
        require(
            weight_decay >= 0.0,
            "Sgd: weight_decay must be ≥ 0",
            weight_decay,
        );
        self.settings.weight_decay = weight_decay;
        self
    }

    /// Its settings.
    pub fn settings(&self) -> SgdSettings {
        self.settings
    }
}

impl Optimizer for Sgd {
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
        let SgdSettings {
            momentum: mu,
            dampening,
            nesterov,
            weight_decay,
        } = self.settings;
        let mut velocity = self.velocity.iter_mut();
        for group in &self.groups {
            let (lr, wd) = (group.lr(), group.weight_decay().unwrap_or(weight_decay));
            for (p, vel) in group.params().iter().zip(&mut velocity) {
                let Some(mut g) = p.grad().map(|g| Tensor::clone(&g)) else {
                    continue;
                };
                if wd != 0.0 {
                    g.zip_mut_with(&*p.value(), |g, &w| *g += wd * w);
                }
                if mu != 0.0 {
                    // PyTorch starts the buffer at the first gradient, then decays it.
                    let v = match vel {
                        Some(v) => {
                            Zip::from(&mut *v)
                                .and(&g)
                                .for_each(|v, &g| *v = mu * *v + (1.0 - dampening) * g);
                            v
                        }
                        None => vel.insert(g.clone()),
                    };
                    if nesterov {
                        Zip::from(&mut g).and(&*v).for_each(|g, &v| *g += mu * v);
                    } else {
                        g.assign(v);
                    }
                }
                p.update(|w| w.zip_mut_with(&g, |w, &g| *w -= lr * g));
            }
        }
    }

    fn state(&self) -> BTreeMap<String, Tensor> {
        state::cloned(self.buffers())
    }

    fn buffers(&self) -> Vec<(String, &Tensor)> {
        state::named(MOMENTUM, &self.params, &self.velocity)
    }

    fn load_state(&mut self, saved: &BTreeMap<String, Tensor>) -> Result<(), OptimStateError> {
        let velocity = state::load(saved, MOMENTUM, &self.params)?;
        state::check_finite(&state::named(MOMENTUM, &self.params, &velocity))?;
        self.velocity = velocity;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::tests::{minimize, quad_named, quad_param, quadratic_grads};

    #[test]
    fn minimizes_a_quadratic_plain_with_momentum_and_nesterov() {
        assert!(minimize(&mut Sgd::new(vec![quad_param()], 0.1), 100) < 1e-3);
        let momentum = Sgd::new(vec![quad_param()], 0.05).momentum(0.9);
        assert!(minimize(&mut { momentum }, 300) < 1e-3);
        let nesterov = Sgd::new(vec![quad_param()], 0.05)
            .momentum(0.9)
            .nesterov(true);
        assert!(minimize(&mut { nesterov }, 300) < 1e-3);
    }

    #[test]
    fn builder_sets_and_reports_every_setting() {
        let sgd = Sgd::new(vec![quad_param()], 0.1)
            .momentum(0.9)
            .dampening(0.1)
            .weight_decay(1e-4);
        assert_eq!(
            sgd.settings(),
            SgdSettings {
                momentum: 0.9,
                dampening: 0.1,
                nesterov: false,
                weight_decay: 1e-4
            }
        );
        assert_eq!(sgd.lr(), 0.1);
    }

    #[test]
    #[should_panic(expected = "Sgd: momentum must be > 0 for nesterov (set it first), got 0")]
    fn nesterov_without_momentum_is_refused() {
        Sgd::new(vec![quad_param()], 0.1).nesterov(true);
    }

    #[test]
    #[should_panic(expected = "Sgd: dampening must be 0 with nesterov, got 0.5")]
    fn nesterov_with_dampening_is_refused() {
        Sgd::new(vec![quad_param()], 0.1)
            .momentum(0.9)
            .nesterov(true)
            .dampening(0.5);
    }

    #[test]
    #[should_panic(expected = "Sgd: lr must be ≥ 0, got -0.1")]
    fn a_negative_lr_is_refused() {
        Sgd::new(vec![quad_param()], -0.1);
    }

    #[test]
    #[should_panic(expected = "Sgd: group betas must be unset (SGD has none)")]
    fn group_betas_are_refused() {
        Sgd::with_groups(
            vec![ParamGroup::new(vec![quad_param()]).betas(0.9, 0.99)],
            0.1,
        );
    }

    #[test]
    fn groups_step_with_their_own_lr_and_decay() {
        // One step of plain SGD from w = [3, −2] on Σw² (g = 2w):
        // p ← p − lr·(2p + λp).
        let (a, b) = (quad_param(), quad_named("b"));
        let mut sgd = Sgd::with_groups(
            vec![
                ParamGroup::new(vec![a.clone()]),
                ParamGroup::new(vec![b.clone()]).lr(0.01).weight_decay(0.0),
            ],
            0.1,
        )
        .weight_decay(0.5);
        quadratic_grads(&[a.clone(), b.clone()]);
        sgd.step();
        assert_eq!(a.value()[0], 3.0 - 0.1 * (6.0 + 0.5 * 3.0));
        assert_eq!(b.value()[0], 3.0 - 0.01 * 6.0);
    }

    #[test]
    fn non_finite_momentum_is_refused_and_changes_nothing() {
        let p = quad_param();
        let mut sgd = Sgd::new(vec![p.clone()], 0.1).momentum(0.9);
        minimize(&mut sgd, 2);
        let before = sgd.state();
        let mut state = before.clone();
        state.get_mut("sgd.momentum.w").unwrap()[[1]] = f32::NEG_INFINITY;
        let err = sgd.load_state(&state).unwrap_err();
        assert!(matches!(&err, OptimStateError::NonFinite { tensors } if tensors.len() == 1));
        assert!(
            err.to_string().contains("`sgd.momentum.w` (1 of 2"),
            "{err}"
        );
        assert_eq!(sgd.state(), before);
    }
}
