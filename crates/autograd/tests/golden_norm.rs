//! PyTorch's answers for layer norm and batch norm, and for the running statistics batch
//! norm updates in training (`tests/golden/norm.py`).

mod golden;

use autograd::ops::norm::{BatchNormMode, RunningStats};
use autograd::{Tensor, Var};
use golden::{Case, Op, check_family};

/// The case's running statistics (`running_mean`, `running_var`), momentum 0.1.
fn running(case: &Case<'_>) -> RunningStats {
    RunningStats {
        mean: case.get("running_mean").clone(),
        var: case.get("running_var").clone(),
        momentum: 0.1,
    }
}

/// The running statistics after one training call on the case's input.
fn updated(case: &Case<'_>, x: &Var<'_>) -> RunningStats {
    let mut stats = running(case);
    x.batch_norm(BatchNormMode::Train(Some(&mut stats)), None, None, 1e-5);
    stats
}

/// A constant on `x`'s tape.
fn constant<'t>(x: &Var<'t>, t: Tensor) -> Var<'t> {
    x.tape().constant(t)
}

#[test]
fn norms_match_pytorch() {
    let ops: &[(&str, Op)] = &[
        ("layer_norm_affine", |_, x| {
            x[0].layer_norm(&[5], Some(&x[1]), Some(&x[2]), 1e-5)
        }),
        ("layer_norm_two_axes", |_, x| {
            x[0].layer_norm(&[4, 5], None, None, 1e-5)
        }),
        ("layer_norm_weight_only_large_eps", |_, x| {
            x[0].layer_norm(&[6], Some(&x[1]), None, 0.1)
        }),
        ("batch_norm_train_4d", |c, x| {
            let mut stats = running(c);
            let mode = BatchNormMode::Train(Some(&mut stats));
            x[0].batch_norm(mode, Some(&x[1]), Some(&x[2]), 1e-5)
        }),
        ("batch_norm_running_mean", |c, x| {
            constant(&x[0], updated(c, &x[0]).mean)
        }),
        ("batch_norm_running_var", |c, x| {
            constant(&x[0], updated(c, &x[0]).var)
        }),
        ("batch_norm_train_2d_plain", |_, x| {
            x[0].batch_norm(BatchNormMode::Train(None), None, None, 1e-5)
        }),
        ("batch_norm_train_3d", |_, x| {
            x[0].batch_norm(BatchNormMode::Train(None), Some(&x[1]), Some(&x[2]), 1e-3)
        }),
        ("batch_norm_eval_4d", |c, x| {
            let stats = running(c);
            x[0].batch_norm(BatchNormMode::Eval(&stats), Some(&x[1]), Some(&x[2]), 1e-5)
        }),
    ];
    check_family("norm", ops);
}
