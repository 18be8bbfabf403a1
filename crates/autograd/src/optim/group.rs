//! Parameter groups, as PyTorch's `param_groups`: parameters that share a learning rate
//! and may override the optimizer's weight decay (and, for Adam, betas).
//!
//! A [`ParamGroup`] is what you ask for; a [`Group`] is what the optimizer runs, with
//! its learning rate now and at the start (schedules scale the latter).

use std::collections::BTreeSet;

use super::require;
use crate::Parameter;

/// Parameters with their own overrides of the optimizer's settings, to build an
/// optimizer from (`Adam::with_groups`, `Sgd::with_groups`).
#[derive(Clone, Debug)]
pub struct ParamGroup {
    params: Vec<Parameter>,
    lr: Option<f32>,
    weight_decay: Option<f32>,
    betas: Option<(f32, f32)>,
}

impl ParamGroup {
    /// A group that takes every setting from the optimizer.
    pub fn new(params: Vec<Parameter>) -> Self {
        ParamGroup {
            params,
            lr: None,
            weight_decay: None,
            betas: None,
        }
    }

    /// Its own learning rate.
    #[track_caller]
    pub fn lr(mut self, lr: f32) -> Self {
        require(lr >= 0.0, "ParamGroup: lr must be ≥ 0", lr);
        self.lr = Some(lr);
        self
    }

    /// Its own weight decay (0 for biases and norm parameters, see [`no_decay_split`]).
    #[track_caller]
    pub fn weight_decay(mut self, weight_decay: f32) -> Self {
        require(
            weight_decay >= 0.0,
            "ParamGroup: weight_decay must be ≥ 0",
            weight_decay,
        );
        self.weight_decay = Some(weight_decay);
        self
    }

    /// Its own Adam moment decay rates `(β₁, β₂)`, each in `[0, 1)`.
    #[track_caller]
    pub fn betas(mut self, beta1: f32, beta2: f32) -> Self {
        check_betas("ParamGroup", beta1, beta2);
        self.betas = Some((beta1, beta2));
        self
    }
}

/// Panics unless both betas are in `[0, 1)`.
#[track_caller]
pub(crate) fn check_betas(owner: &str, beta1: f32, beta2: f32) {
    require(
        (0.0..1.0).contains(&beta1),
        &format!("{owner}: beta1 must be in [0, 1)"),
        beta1,
    );
    require(
        (0.0..1.0).contains(&beta2),
        &format!("{owner}: beta2 must be in [0, 1)"),
        beta2,
    );
}

/// A group inside an optimizer: its parameters, its learning rate now and at the start,
/// and the settings it overrides (`None`: the optimizer's).
#[derive(Clone, Debug)]
pub struct Group {
    params: Vec<Parameter>,
    lr: f32,
    initial_lr: f32,
    weight_decay: Option<f32>,
    betas: Option<(f32, f32)>,
}

impl Group {
    /// Its parameters.
    pub fn params(&self) -> &[Parameter] {
        &self.params
    }

    /// Its learning rate now.
    pub fn lr(&self) -> f32 {
        self.lr
    }

    /// Its learning rate when the optimizer was built; a
    /// [`Scheduler`](super::Scheduler) sets `lr = initial_lr × factor`.
    pub fn initial_lr(&self) -> f32 {
        self.initial_lr
    }

    /// Sets its learning rate.
    #[track_caller]
    pub fn set_lr(&mut self, lr: f32) {
        require(lr >= 0.0, "Group: lr must be ≥ 0", lr);
        self.lr = lr;
    }

    /// Its own weight decay, `None` when it takes the optimizer's.
    pub fn weight_decay(&self) -> Option<f32> {
        self.weight_decay
    }

    /// Its own Adam betas, `None` when it takes the optimizer's.
    pub fn betas(&self) -> Option<(f32, f32)> {
        self.betas
    }
}

/// The groups of optimizer `owner` (each without a learning rate takes `lr`) and all
/// their parameters in order.
///
/// # Panics
/// With no group, a negative `lr`, or a parameter name in two places (the state names
/// buffers by parameter, as PyTorch refuses a parameter in two groups).
#[track_caller]
pub(crate) fn build(owner: &str, groups: Vec<ParamGroup>, lr: f32) -> (Vec<Group>, Vec<Parameter>) {
    require(lr >= 0.0, &format!("{owner}: lr must be ≥ 0"), lr);
    require(
        !groups.is_empty(),
        &format!("{owner}: groups must be non-empty"),
        "none",
    );
    let mut seen = BTreeSet::new();
    let mut all = vec![];
    for p in groups.iter().flat_map(|g| &g.params) {
        require(
            seen.insert(p.name()),
            &format!("{owner}: parameter names must be unique across groups"),
            format!("`{}` twice", p.name()),
        );
        all.push(p.clone());
    }
    let groups = groups
        .into_iter()
        .map(|g| {
            let lr = g.lr.unwrap_or(lr);
            Group {
                params: g.params,
                lr,
                initial_lr: lr,
                weight_decay: g.weight_decay,
                betas: g.betas,
            }
        })
        .collect();
    (groups, all)
}

/// Parameters split the usual way for weight decay: matrices and kernels decay, biases
/// and normalization parameters (one dimension or fewer) do not.
#[derive(Clone, Debug)]
pub struct DecaySplit {
    /// Parameters with two or more dimensions.
    pub decay: Vec<Parameter>,
    /// Parameters with at most one dimension.
    pub no_decay: Vec<Parameter>,
}

impl DecaySplit {
    /// Two groups: `decay` with the optimizer's weight decay, `no_decay` with none.
    pub fn groups(self) -> Vec<ParamGroup> {
        vec![
            ParamGroup::new(self.decay),
            ParamGroup::new(self.no_decay).weight_decay(0.0),
        ]
    }
}

/// Splits `params` by dimension (keeping their order) so that weight decay spares
/// biases and normalization parameters.
pub fn no_decay_split(params: Vec<Parameter>) -> DecaySplit {
    let (decay, no_decay): (Vec<_>, Vec<_>) =
        params.into_iter().partition(|p| p.shape().len() >= 2);
    DecaySplit { decay, no_decay }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tensor;
    use ndarray::IxDyn;

    fn param(name: &str, shape: &[usize]) -> Parameter {
        Parameter::new(name, Tensor::zeros(IxDyn(shape)))
    }

    #[test]
    fn split_by_dimension_keeps_order() {
        let split = no_decay_split(vec![
            param("conv.w", &[4, 1, 3, 3]),
            param("conv.b", &[4]),
            param("fc.w", &[10, 4]),
            param("norm.scale", &[10]),
            param("temperature", &[]),
        ]);
        let names = |ps: &[Parameter]| ps.iter().map(|p| p.name().to_string()).collect::<Vec<_>>();
        assert_eq!(names(&split.decay), ["conv.w", "fc.w"]);
        assert_eq!(
            names(&split.no_decay),
            ["conv.b", "norm.scale", "temperature"]
        );
        let groups = split.groups();
        assert_eq!(groups[0].weight_decay, None);
        assert_eq!(groups[1].weight_decay, Some(0.0));
    }

    #[test]
    fn groups_take_the_optimizer_lr_unless_they_set_their_own() {
        let (groups, all) = build(
            "Test",
            vec![
                ParamGroup::new(vec![param("a", &[2])]),
                ParamGroup::new(vec![param("b", &[2]), param("c", &[1])]).lr(0.5),
            ],
            0.1,
        );
        assert_eq!(all.len(), 3);
        assert_eq!((groups[0].lr(), groups[0].initial_lr()), (0.1, 0.1));
        assert_eq!((groups[1].lr(), groups[1].initial_lr()), (0.5, 0.5));
        assert_eq!(groups[1].params().len(), 2);
    }

    #[test]
    #[should_panic(expected = "Test: parameter names must be unique across groups, got `a` twice")]
    fn a_parameter_in_two_groups_is_refused() {
        let a = param("a", &[2]);
        build(
            "Test",
            vec![ParamGroup::new(vec![a.clone()]), ParamGroup::new(vec![a])],
            0.1,
        );
    }

    #[test]
    #[should_panic(expected = "ParamGroup: beta2 must be in [0, 1), got 1")]
    fn betas_outside_the_unit_interval_are_refused() {
        ParamGroup::new(vec![]).betas(0.9, 1.0);
    }

    #[test]
    #[should_panic(expected = "ParamGroup: lr must be ≥ 0, got NaN")]
    fn a_nan_lr_is_refused() {
        ParamGroup::new(vec![]).lr(f32::NAN);
    }
}
