//! The optimizers and learning-rate schedules against PyTorch: parameter trajectories of
//! SGD, Adam and AdamW over two parameter groups for 5 steps, and every group's learning
//! rate over 30 steps of each schedule.
//!
//! The values are in `tests/golden/optim.safetensors`, written by
//! `$TORCH_PYTHON crates/autograd/tests/golden/optim.py`; each case here builds what the
//! script's case of the same name builds (its PyTorch call is in the file's metadata).

use std::path::Path;

use autograd::io::{TensorFile, load_tensors};
use autograd::optim::{
    Adam, CosineAnnealing, LinearWarmup, LrSchedule, Optimizer, ParamGroup, Scheduler, Sgd, StepLr,
};
use autograd::{Parameter, Tape, Tensor};
use ndarray::Axis;

/// Relative tolerance against PyTorch (both compute in f32, with different roundings).
const RTOL: f32 = 1e-5;

fn golden() -> TensorFile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/optim.safetensors");
    load_tensors(&path).unwrap()
}

fn tensor<'a>(file: &'a TensorFile, name: &str) -> &'a Tensor {
    file.tensors
        .get(name)
        .unwrap_or_else(|| panic!("the golden file lacks `{name}`; rerun optim.py"))
}

/// Panics naming `what` and the first element off by more than [`RTOL`] (relative to
/// PyTorch's value; absolute below 1e-4, where a relative bound means nothing).
fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= RTOL * w.abs().max(1e-4),
            "{what}[{i}]: got {g}, PyTorch {w} (relative error {:e})",
            ((g - w) / w).abs()
        );
    }
}

/// Builds `case`'s optimizer over `w` (group 0) and `b` (group 1), feeds it the golden
/// gradients and compares the parameters after every step.
fn check_trajectory(case: &str, build: impl FnOnce(Parameter, Parameter) -> Box<dyn Optimizer>) {
    let file = golden();
    let w = Parameter::new("w", tensor(&file, "init.w").clone());
    let b = Parameter::new("b", tensor(&file, "init.b").clone());
    let mut opt = build(w.clone(), b.clone());
    let steps = tensor(&file, "grad.w").shape()[0];
    for step in 0..steps {
        opt.zero_grad();
        for p in [&w, &b] {
            let grad = tensor(&file, &format!("grad.{}", p.name()));
            let tape = Tape::new();
            let g = tape.constant(grad.index_axis(Axis(0), step).to_owned());
            // d/dp Σ p·g = g, exactly.
            tape.param(p).mul(&g).sum().backward();
        }
        opt.step();
        for p in [&w, &b] {
            let want = tensor(&file, &format!("{case}.{}", p.name())).index_axis(Axis(0), step);
            let got = p.value();
            assert_close(
                &format!("{case}.{} after step {}", p.name(), step + 1),
                &got.iter().copied().collect::<Vec<_>>(),
                &want.iter().copied().collect::<Vec<_>>(),
            );
        }
    }
}

#[test]
fn sgd_with_momentum_dampening_and_groups() {
    check_trajectory("sgd", |w, b| {
        let groups = vec![
            ParamGroup::new(vec![w]),
            ParamGroup::new(vec![b]).lr(0.05).weight_decay(0.0),
        ];
        let sgd = Sgd::with_groups(groups, 0.1)
            .momentum(0.9)
            .dampening(0.1)
            .weight_decay(0.01);
        Box::new(sgd)
    });
}

#[test]
fn sgd_nesterov() {
    check_trajectory("sgd_nesterov", |w, b| {
        let groups = vec![
            ParamGroup::new(vec![w]),
            ParamGroup::new(vec![b]).lr(0.02).weight_decay(0.1),
        ];
        let sgd = Sgd::with_groups(groups, 0.1)
            .momentum(0.8)
            .nesterov(true)
            .weight_decay(0.05);
        Box::new(sgd)
    });
}

#[test]
fn sgd_without_momentum() {
    check_trajectory("sgd_plain", |w, b| {
        let groups = vec![
            ParamGroup::new(vec![w]).weight_decay(0.1),
            ParamGroup::new(vec![b]),
        ];
        Box::new(Sgd::with_groups(groups, 0.2))
    });
}

#[test]
fn adam_with_l2_decay_and_group_betas() {
    check_trajectory("adam", |w, b| {
        let groups = vec![
            ParamGroup::new(vec![w]),
            ParamGroup::new(vec![b])
                .lr(0.01)
                .weight_decay(0.0)
                .betas(0.8, 0.99),
        ];
        let adam = Adam::with_groups(groups, 0.05)
            .betas(0.9, 0.999)
            .eps(1e-6)
            .weight_decay(0.1);
        Box::new(adam)
    });
}

#[test]
fn adamw_with_default_decay_sparing_one_group() {
    check_trajectory("adamw", |w, b| {
        let groups = vec![
            ParamGroup::new(vec![w]),
            ParamGroup::new(vec![b]).weight_decay(0.0),
        ];
        Box::new(Adam::adamw_with_groups(groups, 0.05))
    });
}

#[test]
fn adamw_with_strong_decay_and_group_betas() {
    check_trajectory("adamw_strong", |w, b| {
        let groups = vec![
            ParamGroup::new(vec![w]),
            ParamGroup::new(vec![b]).lr(0.2).betas(0.5, 0.9),
        ];
        let adamw = Adam::adamw_with_groups(groups, 0.1)
            .betas(0.85, 0.95)
            .weight_decay(0.5);
        Box::new(adamw)
    });
}

/// Runs `schedule` on an optimizer with groups at learning rates `lrs` and compares
/// every group's learning rate at each step with PyTorch's `lr.<name>`.
fn check_schedule(name: &str, lrs: &[f32], schedule: impl LrSchedule) {
    let file = golden();
    let want = tensor(&file, &format!("lr.{name}"));
    let groups = lrs
        .iter()
        .enumerate()
        .map(|(i, &lr)| {
            let p = Parameter::new(format!("p{i}"), Tensor::zeros(ndarray::IxDyn(&[1])));
            ParamGroup::new(vec![p]).lr(lr)
        })
        .collect();
    let mut opt = Sgd::with_groups(groups, lrs[0]);
    let mut scheduler = Scheduler::new(schedule, &mut opt);
    assert_eq!(want.shape()[1], lrs.len(), "lr.{name}: groups");
    for step in 0..want.shape()[0] {
        if step > 0 {
            scheduler.step(&mut opt);
        }
        let got: Vec<f32> = opt.groups().iter().map(|g| g.lr()).collect();
        let row: Vec<f32> = want.index_axis(Axis(0), step).iter().copied().collect();
        assert_close(&format!("lr.{name} at step {step}"), &got, &row);
    }
}

#[test]
fn step_lr() {
    check_schedule("step", &[0.1, 0.02], StepLr::new(7, 0.5));
}

#[test]
fn cosine_annealing_past_its_period() {
    check_schedule("cosine", &[0.1, 0.02], CosineAnnealing::new(10, 0.0));
}

#[test]
fn cosine_annealing_to_a_floor() {
    // PyTorch's absolute eta_min = 0.002 is a factor 0.02 of the initial lr 0.1.
    check_schedule("cosine_floor", &[0.1], CosineAnnealing::new(12, 0.02));
}

#[test]
fn linear_warmup() {
    check_schedule("warmup", &[0.1, 0.02], LinearWarmup::new(8, 0.1));
}

#[test]
fn warmup_then_cosine() {
    let schedule = LinearWarmup::new(5, 0.01).then(CosineAnnealing::new(20, 0.0));
    check_schedule("warmup_cosine", &[0.1, 0.02], schedule);
}
