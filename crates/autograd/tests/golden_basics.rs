//! PyTorch's answers for the elementwise, broadcasting and reduction ops
//! (`tests/golden/basics.py`).

mod golden;

use golden::{Op, check_family};

#[test]
fn basics_match_pytorch() {
    let ops: &[(&str, Op)] = &[
        ("exp", |_, x| x[0].exp()),
        ("sigmoid", |_, x| x[0].sigmoid()),
        ("tanh", |_, x| x[0].tanh()),
        ("mul_broadcast", |_, x| &x[0] * &x[1]),
        ("div_broadcast", |_, x| &x[0] / &x[1]),
        ("sum_axes", |_, x| x[0].sum_axes(&[0, 2], false)),
        ("max_axis", |_, x| x[0].max_axis(1, false)),
    ];
    check_family("basics", ops);
}
