//! PyTorch's answers for the activations, elementwise maths, softmax family, min/max/arg
//! reductions, variance and masked selection (`tests/golden/elementwise.py`). Dropout has
//! no case: its mask is random (its test fixes the mask by seeding instead).

mod golden;

use autograd::Var;
use golden::{Op, check_family};
use ndarray::ArrayD;

/// Positions as a constant, float as the file stores PyTorch's int64 answer.
fn positions<'t>(x: &Var<'t>, i: ArrayD<usize>) -> Var<'t> {
    x.tape().constant(i.mapv(|i| i as f32))
}

#[test]
fn elementwise_matches_pytorch() {
    let ops: &[(&str, Op)] = &[
        ("softmax_last", |_, x| x[0].softmax(-1)),
        ("softmax_axis0", |_, x| x[0].softmax(0)),
        ("softmax_neg2", |_, x| x[0].softmax(-2)),
        ("log_softmax_last", |_, x| x[0].log_softmax(-1)),
        ("log_softmax_axis1", |_, x| x[0].log_softmax(1)),
        ("logsumexp_two_axes", |_, x| x[0].logsumexp(&[0, 2], false)),
        ("logsumexp_large_keep", |_, x| x[0].logsumexp(&[-1], true)),
        ("leaky_relu", |_, x| x[0].leaky_relu(0.1)),
        ("gelu", |_, x| x[0].gelu()),
        ("gelu_tanh", |_, x| x[0].gelu_tanh()),
        ("silu", |_, x| x[0].silu()),
        ("softplus", |_, x| x[0].softplus(1.0, 20.0)),
        ("softplus_beta_threshold", |_, x| x[0].softplus(2.0, 3.0)),
        ("sin", |_, x| x[0].sin()),
        ("cos", |_, x| x[0].cos()),
        ("powf", |_, x| x[0].powf(2.5)),
        ("powf_negative_base", |_, x| x[0].powf(3.0)),
        ("pow_broadcast", |_, x| x[0].pow(&x[1])),
        ("minimum_broadcast", |_, x| x[0].minimum(&x[1])),
        ("minimum_ties", |_, x| x[0].minimum(&x[1])),
        ("min_axis", |_, x| x[0].min_axis(-1, false)),
        ("min_axis_keep", |_, x| x[0].min_axis(0, true)),
        ("max_axis_neg", |_, x| x[0].max_axis(-2, false)),
        ("argmax", |_, x| positions(&x[0], x[0].argmax(1))),
        ("argmin_neg", |_, x| positions(&x[0], x[0].argmin(-1))),
        ("argmax_ties", |_, x| positions(&x[0], x[0].argmax(0))),
        ("var", |_, x| x[0].var(&[0, 2], 1, false)),
        ("var_c0_keep", |_, x| x[0].var(&[-1], 0, true)),
        ("std", |_, x| x[0].std(&[1], 1, false)),
        ("std_c0_keep", |_, x| x[0].std(&[-1, 0], 0, true)),
        ("where_broadcast", |c, x| {
            Var::where_cond(c.get("cond"), &x[0], &x[1])
        }),
        ("masked_fill", |c, x| {
            x[0].masked_fill(c.get("mask"), c.scalar("value"))
        }),
    ];
    check_family("elementwise", ops);
}
