//! PyTorch's answers for the indexing ops and for matmul over every pairing of ranks
//! (`tests/golden/indexing.py`).

mod golden;

use autograd::Var;
use golden::{Op, check_family};

#[test]
fn indexing_matches_pytorch() {
    let ops: &[(&str, Op)] = &[
        ("index_select_rows", |c, x| {
            x[0].index_select(0, c.shaped_indices("index"))
        }),
        ("index_select_last", |c, x| {
            x[0].index_select(-1, c.shaped_indices("index"))
        }),
        ("gather_axis1", |c, x| {
            x[0].gather(1, c.shaped_indices("index"))
        }),
        ("gather_axis0", |c, x| {
            x[0].gather(0, c.shaped_indices("index"))
        }),
        ("gather_last_3d", |c, x| {
            x[0].gather(-1, c.shaped_indices("index"))
        }),
        ("embedding_1d", |c, x| {
            Var::embedding(&x[0], c.shaped_indices("ids"))
        }),
        ("embedding_2d", |c, x| {
            Var::embedding(&x[0], c.shaped_indices("ids"))
        }),
        ("matmul_2d", |_, x| x[0].matmul(&x[1])),
        ("matmul_dot", |_, x| x[0].matmul(&x[1])),
        ("matmul_vec_mat", |_, x| x[0].matmul(&x[1])),
        ("matmul_mat_vec", |_, x| x[0].matmul(&x[1])),
        ("matmul_stack_mat", |_, x| x[0].matmul(&x[1])),
        ("matmul_stack_vec", |_, x| x[0].matmul(&x[1])),
        ("matmul_vec_stack", |_, x| x[0].matmul(&x[1])),
        ("matmul_mat_stack", |_, x| x[0].matmul(&x[1])),
        ("matmul_batched", |_, x| x[0].matmul(&x[1])),
        ("matmul_broadcast", |_, x| x[0].matmul(&x[1])),
        ("matmul_broadcast_both", |_, x| x[0].matmul(&x[1])),
    ];
    check_family("indexing", ops);
}
