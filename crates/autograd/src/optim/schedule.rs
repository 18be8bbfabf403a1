//! Learning-rate schedules as multipliers of each group's initial learning rate, as
//! PyTorch's `LambdaLR`, with the closed forms of `StepLR`, `CosineAnnealingLR`,
//! `LinearLR` and `SequentialLR`.
//!
//! A [`Scheduler`] counts steps and sets every group's `lr = initial_lr × factor(step)`.
//! Since a factor scales each group's own learning rate, floors such as
//! [`CosineAnnealing`]'s are factors too, not absolute learning rates.

use super::Optimizer;
use super::require;

/// A learning-rate multiplier by step (step 0 is the first optimizer step).
pub trait LrSchedule {
    /// The factor at `step`.
    fn factor(&self, step: u64) -> f32;
}

/// Any `Fn(step) -> factor` is a schedule, as in PyTorch's `LambdaLR`.
impl<F: Fn(u64) -> f32> LrSchedule for F {
    fn factor(&self, step: u64) -> f32 {
        self(step)
    }
}

/// Drives an optimizer's learning rates by a schedule. Like PyTorch's schedulers, it
/// sets the factor of step 0 when built and moves on by one with each
/// [`Scheduler::step`], to be called after each optimizer step.
#[derive(Clone, Debug)]
pub struct Scheduler<S> {
    schedule: S,
    step: u64,
}

impl<S: LrSchedule> Scheduler<S> {
    /// At step 0: sets each group's learning rate to `initial_lr × factor(0)`.
    pub fn new<O: Optimizer + ?Sized>(schedule: S, opt: &mut O) -> Self {
        Scheduler::resume(schedule, opt, 0)
    }

    /// At `step` (to resume a run that took `step` optimizer steps): sets each group's
    /// learning rate to `initial_lr × factor(step)`.
    pub fn resume<O: Optimizer + ?Sized>(schedule: S, opt: &mut O, step: u64) -> Self {
        let scheduler = Scheduler { schedule, step };
        scheduler.apply(opt);
        scheduler
    }

    /// Moves to the next step and sets the learning rates for it.
    pub fn step<O: Optimizer + ?Sized>(&mut self, opt: &mut O) {
        self.step += 1;
        self.apply(opt);
    }

    /// The step whose learning rates are set.
    pub fn current_step(&self) -> u64 {
        self.step
    }

    /// The factor of the current step.
    pub fn factor(&self) -> f32 {
        self.schedule.factor(self.step)
    }

    /// The schedule.
    pub fn schedule(&self) -> &S {
        &self.schedule
    }

    fn apply<O: Optimizer + ?Sized>(&self, opt: &mut O) {
        let factor = self.factor();
        for group in opt.groups_mut() {
            let lr = group.initial_lr() * factor;
            group.set_lr(lr);
        }
    }
}

/// Multiplies by `gamma` every `step_size` steps: `γ^⌊t/step_size⌋` (PyTorch's
/// `StepLR`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLr {
    step_size: u64,
    gamma: f32,
}

impl StepLr {
    /// Decay by `gamma ≥ 0` every `step_size ≥ 1` steps.
    #[track_caller]
    pub fn new(step_size: u64, gamma: f32) -> Self {
        require(step_size >= 1, "StepLr: step_size must be ≥ 1", step_size);
        require(gamma >= 0.0, "StepLr: gamma must be ≥ 0", gamma);
        StepLr { step_size, gamma }
    }
}

impl LrSchedule for StepLr {
    fn factor(&self, step: u64) -> f32 {
        (self.gamma as f64).powf((step / self.step_size) as f64) as f32
    }
}

/// Half a cosine from 1 down to `min_factor` over `t_max` steps:
/// `min + (1 − min)·(1 + cos(πt/t_max))/2`, the closed form of PyTorch's
/// `CosineAnnealingLR`. Like it, the curve goes on past `t_max` (back up to 1 at
/// `2·t_max`); end the run there or chain another schedule with [`Sequential`].
///
/// `min_factor` is a factor of each group's initial learning rate: PyTorch's absolute
/// `eta_min` is `min_factor × lr`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineAnnealing {
    t_max: u64,
    min_factor: f32,
}

impl CosineAnnealing {
    /// Anneals over `t_max ≥ 1` steps down to `min_factor` in `[0, 1]`.
    #[track_caller]
    pub fn new(t_max: u64, min_factor: f32) -> Self {
        require(t_max >= 1, "CosineAnnealing: t_max must be ≥ 1", t_max);
        require(
            (0.0..=1.0).contains(&min_factor),
            "CosineAnnealing: min_factor must be in [0, 1]",
            min_factor,
        );
        CosineAnnealing { t_max, min_factor }
    }
}

impl LrSchedule for CosineAnnealing {
    fn factor(&self, step: u64) -> f32 {
        let min = self.min_factor as f64;
        let phase = std::f64::consts::PI * step as f64 / self.t_max as f64;
        (min + (1.0 - min) * (1.0 + phase.cos()) / 2.0) as f32
    }
}

/// A linear ramp from `start_factor` at step 0 to 1 at `warmup_steps`, then 1
/// (PyTorch's `LinearLR` with `end_factor = 1`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearWarmup {
    warmup_steps: u64,
    start_factor: f32,
}

impl LinearWarmup {
    /// Ramps over `warmup_steps ≥ 1` steps from `start_factor` in `(0, 1]`.
    #[track_caller]
    pub fn new(warmup_steps: u64, start_factor: f32) -> Self {
        require(
            warmup_steps >= 1,
            "LinearWarmup: warmup_steps must be ≥ 1",
            warmup_steps,
        );
        require(
            start_factor > 0.0 && start_factor <= 1.0,
            "LinearWarmup: start_factor must be in (0, 1]",
            start_factor,
        );
        LinearWarmup {
            warmup_steps,
            start_factor,
        }
    }

    /// This warmup, then `next` from its step 0 (as PyTorch's `SequentialLR` with the
    /// milestone at `warmup_steps`).
    pub fn then<S: LrSchedule>(self, next: S) -> Sequential<Self, S> {
        Sequential::new(self, self.warmup_steps, next)
    }
}

impl LrSchedule for LinearWarmup {
    fn factor(&self, step: u64) -> f32 {
        let start = self.start_factor as f64;
        let done = step.min(self.warmup_steps) as f64 / self.warmup_steps as f64;
        (start + (1.0 - start) * done) as f32
    }
}

/// One schedule until a milestone, then another restarted from its step 0 (PyTorch's
/// `SequentialLR` with two schedulers).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sequential<A, B> {
    first: A,
    milestone: u64,
    then: B,
}

impl<A: LrSchedule, B: LrSchedule> Sequential<A, B> {
    /// `first` for steps before `milestone`, `then` (at `step − milestone`) after.
    pub fn new(first: A, milestone: u64, then: B) -> Self {
        Sequential {
            first,
            milestone,
            then,
        }
    }
}

impl<A: LrSchedule, B: LrSchedule> LrSchedule for Sequential<A, B> {
    fn factor(&self, step: u64) -> f32 {
        match step.checked_sub(self.milestone) {
            Some(after) => self.then.factor(after),
            None => self.first.factor(step),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::tests::quad_param;
    use crate::optim::{Adam, ParamGroup};

    fn factors(s: &impl LrSchedule, steps: u64) -> Vec<f32> {
        (0..steps).map(|t| s.factor(t)).collect()
    }

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6)
    }

    #[test]
    fn step_lr_decays_every_step_size_steps() {
        let f = factors(&StepLr::new(2, 0.5), 6);
        assert_eq!(f, [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]);
    }

    #[test]
    fn cosine_goes_from_one_to_the_floor_and_back() {
        let s = CosineAnnealing::new(4, 0.2);
        let half = 0.2 + 0.8 * (1.0 + std::f32::consts::FRAC_1_SQRT_2) / 2.0;
        let low = 0.2 + 0.8 * (1.0 - std::f32::consts::FRAC_1_SQRT_2) / 2.0;
        assert!(close(
            &factors(&s, 9),
            &[1.0, half, 0.6, low, 0.2, low, 0.6, half, 1.0]
        ));
    }

    #[test]
    fn warmup_ramps_linearly_then_holds() {
        let f = factors(&LinearWarmup::new(4, 0.2), 6);
        assert!(close(&f, &[0.2, 0.4, 0.6, 0.8, 1.0, 1.0]), "{f:?}");
    }

    #[test]
    fn warmup_then_cosine_restarts_the_cosine_at_the_milestone() {
        let s = LinearWarmup::new(2, 0.5).then(CosineAnnealing::new(2, 0.0));
        assert!(close(&factors(&s, 5), &[0.5, 0.75, 1.0, 0.5, 0.0]));
    }

    #[test]
    fn closures_are_schedules() {
        let s = |t: u64| 1.0 / (1 + t) as f32;
        assert_eq!(factors(&s, 3), [1.0, 0.5, 1.0 / 3.0]);
    }

    #[test]
    fn scheduler_scales_each_group_from_its_initial_lr() {
        let mut opt = Adam::with_groups(
            vec![
                ParamGroup::new(vec![quad_param()]),
                ParamGroup::new(vec![]).lr(0.01),
            ],
            0.1,
        );
        let mut sched = Scheduler::new(StepLr::new(1, 0.5), &mut opt);
        let lrs = |opt: &Adam| opt.groups().iter().map(|g| g.lr()).collect::<Vec<_>>();
        assert_eq!(lrs(&opt), [0.1, 0.01]);
        sched.step(&mut opt);
        sched.step(&mut opt);
        assert_eq!(sched.current_step(), 2);
        assert_eq!(lrs(&opt), [0.025, 0.0025]);
        assert_eq!(opt.groups()[1].initial_lr(), 0.01);
        let resumed = Scheduler::resume(StepLr::new(1, 0.5), &mut opt, 3);
        assert_eq!((resumed.factor(), opt.lr()), (0.125, 0.0125));
    }

    #[test]
    #[should_panic(expected = "LinearWarmup: start_factor must be in (0, 1], got 0")]
    fn a_zero_start_factor_is_refused() {
        LinearWarmup::new(10, 0.0);
    }

    #[test]
    #[should_panic(expected = "CosineAnnealing: t_max must be ≥ 1, got 0")]
    fn a_zero_period_is_refused() {
        CosineAnnealing::new(0, 0.0);
    }

    #[test]
    #[should_panic(expected = "StepLr: step_size must be ≥ 1, got 0")]
    fn a_zero_step_size_is_refused() {
        StepLr::new(0, 0.5);
    }
}
