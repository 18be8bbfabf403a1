//! PyTorch's answers for the losses: each loss and option, both input layouts and the
//! three reductions (`tests/golden/losses.py`).

mod golden;

use autograd::ops::loss::{BceWithLogits, CrossEntropy, NllLoss, Reduction};
use golden::{Case, Op, check_family};

/// The case's class weights.
fn weight(c: &Case<'_>) -> Vec<f32> {
    c.get("weight").iter().copied().collect()
}

/// The options of the `ce_all_options_*` and `ce_nd_*` cases.
fn all_options(c: &Case<'_>, reduction: Reduction) -> CrossEntropy {
    CrossEntropy::new()
        .weight(&weight(c))
        .ignore_index(c.scalar("ignore") as usize)
        .label_smoothing(c.scalar("smoothing"))
        .reduction(reduction)
}

/// Default options but the reduction.
fn ce(reduction: Reduction) -> CrossEntropy {
    CrossEntropy::new().reduction(reduction)
}

#[test]
fn losses_match_pytorch() {
    use Reduction::{Mean, None, Sum};
    let ops: &[(&str, Op)] = &[
        ("mse", |_, x| x[0].mse_loss(&x[1])),
        ("bce", |_, x| x[0].bce_loss(&x[1])),
        ("cross_entropy_plain", |c, x| {
            x[0].cross_entropy(&c.indices("target"))
        }),
        ("ce_mean", |c, x| {
            x[0].cross_entropy_with(c.shaped_indices("target"), &ce(Mean))
        }),
        ("ce_sum", |c, x| {
            x[0].cross_entropy_with(c.shaped_indices("target"), &ce(Sum))
        }),
        ("ce_none", |c, x| {
            x[0].cross_entropy_with(c.shaped_indices("target"), &ce(None))
        }),
        ("ce_weight", |c, x| {
            let opts = CrossEntropy::new().weight(&weight(c));
            x[0].cross_entropy_with(c.shaped_indices("target"), &opts)
        }),
        ("ce_ignore", |c, x| {
            let opts = CrossEntropy::new().ignore_index(c.scalar("ignore") as usize);
            x[0].cross_entropy_with(c.shaped_indices("target"), &opts)
        }),
        ("ce_smoothing", |c, x| {
            let opts = CrossEntropy::new().label_smoothing(c.scalar("smoothing"));
            x[0].cross_entropy_with(c.shaped_indices("target"), &opts)
        }),
        ("ce_all_options_mean", |c, x| {
            x[0].cross_entropy_with(c.shaped_indices("target"), &all_options(c, Mean))
        }),
        ("ce_all_options_sum", |c, x| {
            x[0].cross_entropy_with(c.shaped_indices("target"), &all_options(c, Sum))
        }),
        ("ce_all_options_none", |c, x| {
            x[0].cross_entropy_with(c.shaped_indices("target"), &all_options(c, None))
        }),
        ("ce_nd_mean", |c, x| {
            x[0].cross_entropy_with(c.shaped_indices("target"), &all_options(c, Mean))
        }),
        ("ce_nd_none", |c, x| {
            x[0].cross_entropy_with(c.shaped_indices("target"), &all_options(c, None))
        }),
        ("ce_soft", |_, x| {
            x[0].cross_entropy_soft(&x[1], &CrossEntropy::new())
        }),
        ("ce_soft_weight_smoothing", |c, x| {
            let opts = CrossEntropy::new()
                .weight(&weight(c))
                .label_smoothing(c.scalar("smoothing"));
            x[0].cross_entropy_soft(&x[1], &opts)
        }),
        ("ce_soft_nd_none", |_, x| {
            x[0].cross_entropy_soft(&x[1], &ce(None))
        }),
        ("ce_soft_sum", |_, x| {
            x[0].cross_entropy_soft(&x[1], &ce(Sum))
        }),
        ("nll_mean", |c, x| {
            x[0].nll_loss(c.shaped_indices("target"), &NllLoss::new())
        }),
        ("nll_weight_ignore", |c, x| {
            let opts = NllLoss::new()
                .weight(&weight(c))
                .ignore_index(c.scalar("ignore") as usize);
            x[0].nll_loss(c.shaped_indices("target"), &opts)
        }),
        ("nll_nd_sum", |c, x| {
            let opts = NllLoss::new()
                .weight(&weight(c))
                .ignore_index(c.scalar("ignore") as usize)
                .reduction(Sum);
            x[0].nll_loss(c.shaped_indices("target"), &opts)
        }),
        ("bce_logits", |_, x| {
            x[0].bce_with_logits(&x[1], &BceWithLogits::new())
        }),
        ("bce_logits_pos_weight", |c, x| {
            let opts = BceWithLogits::new().pos_weight(c.get("pos_weight").clone());
            x[0].bce_with_logits(&x[1], &opts)
        }),
        ("bce_logits_weights_sum", |c, x| {
            let opts = BceWithLogits::new()
                .weight(c.get("weight").clone())
                .pos_weight(c.get("pos_weight").clone())
                .reduction(Sum);
            x[0].bce_with_logits(&x[1], &opts)
        }),
        ("bce_logits_none", |_, x| {
            x[0].bce_with_logits(&x[1], &BceWithLogits::new().reduction(None))
        }),
        ("l1_mean", |_, x| x[0].l1_loss(&x[1], Mean)),
        ("l1_sum", |_, x| x[0].l1_loss(&x[1], Sum)),
        ("l1_none", |_, x| x[0].l1_loss(&x[1], None)),
        ("huber", |c, x| {
            x[0].huber_loss(&x[1], c.scalar("delta"), Mean)
        }),
        ("huber_none", |c, x| {
            x[0].huber_loss(&x[1], c.scalar("delta"), None)
        }),
        ("smooth_l1", |c, x| {
            x[0].smooth_l1_loss(&x[1], c.scalar("beta"), Mean)
        }),
        ("smooth_l1_sum", |c, x| {
            x[0].smooth_l1_loss(&x[1], c.scalar("beta"), Sum)
        }),
        ("smooth_l1_beta0", |c, x| {
            x[0].smooth_l1_loss(&x[1], c.scalar("beta"), Mean)
        }),
    ];
    check_family("losses", ops);
}
