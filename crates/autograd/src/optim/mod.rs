//! Optimizers (SGD, Adam, AdamW) over parameter groups, learning-rate schedules and
//! gradient clipping, with PyTorch's update rules so hyper-parameters carry over.
//!
//! An optimizer reads each parameter's accumulated gradient ([`Parameter::grad`]);
//! parameters without a gradient are left alone. It is built from one or more
//! [`ParamGroup`]s, each with its own learning rate and optional overrides, as
//! PyTorch's `param_groups`; a [`Scheduler`] scales every group's initial learning rate
//! by a schedule's factor. The running state is saved and restored by name
//! ([`Optimizer::state`], [`Optimizer::load_state`]) so a resumed run continues exactly;
//! learning rates are not part of it (a scheduler resumes them from the step).
//!
//! AdamW that spares biases, with 10 warmup steps and a cosine decay:
//!
//! ```
//! use autograd::optim::{Adam, CosineAnnealing, LinearWarmup, Optimizer, Scheduler};
//! use autograd::optim::no_decay_split;
//! use autograd::{Parameter, Tape, Tensor};
//! use ndarray::IxDyn;
//!
//! let w = Parameter::new("w", Tensor::from_elem(IxDyn(&[2, 2]), 1.0));
//! let b = Parameter::new("b", Tensor::from_elem(IxDyn(&[2]), 1.0));
//! // Two groups: `w` decays by 0.05, `b` (one dimension) not at all.
//! let groups = no_decay_split(vec![w.clone(), b.clone()]).groups();
//! let mut opt = Adam::adamw_with_groups(groups, 0.1).weight_decay(0.05);
//! // From lr/100 up to lr over 10 steps, then a cosine down to lr/100 over 90.
//! let schedule = LinearWarmup::new(10, 0.01).then(CosineAnnealing::new(90, 0.01));
//! let mut scheduler = Scheduler::new(schedule, &mut opt);
//! for _ in 0..100 {
//!     opt.zero_grad();
//!     let tape = Tape::new();
//!     let loss = tape.param(&w).square().sum() + tape.param(&b).square().sum();
//!     loss.backward();
//!     opt.step();
//!     scheduler.step(&mut opt);
//! }
//! assert!((opt.lr() - 0.001).abs() < 1e-6);
//! assert!(w.value().iter().chain(b.value().iter()).all(|x| x.abs() < 0.05));
//! ```

mod adam;
mod clip;
mod group;
mod schedule;
mod sgd;
mod state;

use std::collections::BTreeMap;
use std::fmt;

pub use adam::{Adam, AdamSettings, DecayMode};
pub use clip::{clip_grad_norm, clip_grad_value, grad_norm};
pub use group::{DecaySplit, Group, ParamGroup, no_decay_split};
pub use schedule::{CosineAnnealing, LinearWarmup, LrSchedule, Scheduler, Sequential, StepLr};
pub use sgd::{Sgd, SgdSettings};
pub use state::{InvalidState, OptimStateError};

use crate::{Parameter, Tensor};

/// A rule that updates parameters from their gradients.
pub trait Optimizer {
    /// The parameters it updates, group after group.
    fn params(&self) -> &[Parameter];

    /// Its parameter groups.
    fn groups(&self) -> &[Group];

    /// Its parameter groups, to set their learning rates.
    fn groups_mut(&mut self) -> &mut [Group];

    /// One update from the current gradients.
    fn step(&mut self);

    /// Forgets every parameter's gradient.
    fn zero_grad(&self) {
        self.params().iter().for_each(Parameter::zero_grad);
    }

    /// The learning rate of the first group now.
    fn lr(&self) -> f32 {
        self.groups()[0].lr()
    }

    /// Sets every group's learning rate to `lr` (a [`Scheduler`] instead scales each
    /// group's own initial learning rate).
    #[track_caller]
    fn set_lr(&mut self, lr: f32) {
        self.groups_mut().iter_mut().for_each(|g| g.set_lr(lr));
    }

    /// The running state as named tensors (`<kind>.<parameter>`), to checkpoint.
    fn state(&self) -> BTreeMap<String, Tensor>;

    /// The per-parameter buffers of the state by name, without copying them (to check
    /// them, e.g. for non-finite values after each step).
    fn buffers(&self) -> Vec<(String, &Tensor)>;

    /// Restores state written by [`Optimizer::state`]. Refuses a shape that differs from
    /// the parameter's, or a value no run can produce (non-finite, a negative second
    /// moment, a fractional step count); then nothing is changed. Tensors of other
    /// kinds or parameters are ignored.
    fn load_state(&mut self, state: &BTreeMap<String, Tensor>) -> Result<(), OptimStateError>;
}

/// Panics at the caller with `<rule>, got <value>` unless `ok`; each rule reads
/// `<owner>: <argument> must be …`, so builder misuse names all three.
#[track_caller]
fn require(ok: bool, rule: &str, value: impl fmt::Display) {
    if !ok {
        panic!("{rule}, got {value}");
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use ndarray::IxDyn;

    use super::*;
    use crate::Tape;

    /// `name` = [3, −2].
    pub(crate) fn quad_named(name: &str) -> Parameter {
        Parameter::new(
            name,
            Tensor::from_shape_vec(IxDyn(&[2]), vec![3.0, -2.0]).unwrap(),
        )
    }

    /// `w` = [3, −2].
    pub(crate) fn quad_param() -> Parameter {
        quad_named("w")
    }

    /// Accumulates the gradient of Σp² (that is 2p) into each of `params`.
    pub(crate) fn quadratic_grads(params: &[Parameter]) {
        for p in params {
            let tape = Tape::new();
            tape.param(p).square().sum().backward();
        }
    }

    /// Minimizes ‖w‖² of the first parameter and returns the final norm.
    pub(crate) fn minimize(opt: &mut dyn Optimizer, steps: usize) -> f32 {
        for _ in 0..steps {
            opt.zero_grad();
            quadratic_grads(&opt.params()[..1]);
            opt.step();
        }
        opt.params()[0]
            .value()
            .iter()
            .map(|x| x * x)
            .sum::<f32>()
            .sqrt()
    }

    #[test]
    fn set_lr_sets_every_group_and_lr_reads_the_first() {
        let mut opt = Sgd::with_groups(
            vec![
                ParamGroup::new(vec![quad_param()]),
                ParamGroup::new(vec![quad_named("b")]).lr(0.5),
            ],
            0.1,
        );
        assert_eq!(opt.lr(), 0.1);
        opt.set_lr(0.01);
        let lrs: Vec<f32> = opt.groups().iter().map(Group::lr).collect();
        assert_eq!(lrs, [0.01, 0.01]);
        assert_eq!(opt.groups()[1].initial_lr(), 0.5);
    }

    #[test]
    #[should_panic(expected = "Group: lr must be ≥ 0, got -1")]
    fn a_negative_lr_is_refused_by_set_lr() {
        Adam::new(vec![quad_param()], 0.1).set_lr(-1.0);
    }
}
