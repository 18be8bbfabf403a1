//! Elementwise selection by a mask: `torch.where(cond, a, b)` ([`Var::where_cond`]) and
//! `masked_fill`. A mask is a [`Tensor`] of 0s and 1s (1: true), broadcast like any operand;
//! it is data, not a value on the tape, and gets no gradient.
//!
//! Backward routes each output gradient to the operand that was picked; backward keeps
//! the mask packed to one bit per element.
//!
//! Associated function and method of [`Var`]: [`where_cond`](Var::where_cond),
//! [`masked_fill`](Var::masked_fill).

use ndarray::{IxDyn, Zip};

use crate::Tensor;
use crate::tape::{Var, op1};
use crate::tensor::{Saved, broadcast_shape, sum_to, try_broadcast_shape};

/// Refuses a mask with a value other than 0 or 1, naming `op`.
#[track_caller]
fn check_mask(op: &str, mask: &Tensor) {
    if let Some(v) = mask.iter().find(|&&v| v != 0.0 && v != 1.0) {
        panic!("{op}: a mask holds only 0 and 1, found {v}");
    }
}

/// `g ⊙ m` (or `g ⊙ (1 − m)` when not `picked`), `m` broadcast to `g`, summed back to `shape`.
fn routed(g: &Tensor, mask: &Tensor, picked: bool, shape: &[usize]) -> Tensor {
    let m = mask
        .broadcast(g.raw_dim())
        .expect("mask broadcasts to the output");
    let keep = if picked { 1.0 } else { 0.0 };
    let d = Zip::from(g)
        .and(&m)
        .map_collect(|&g, &m| if m == keep { g } else { 0.0 });
    sum_to(d, shape)
}

impl<'t> Var<'t> {
    /// `a` where `cond` is 1, `b` where it is 0, as `torch.where(cond, a, b)`; `cond`, `a`
    /// and `b` broadcast together. Each gradient flows to the operand that was picked.
    ///
    /// # Panics
    /// If `cond` holds a value other than 0 or 1, or the three shapes do not broadcast.
    #[track_caller]
    pub fn where_cond(cond: &Tensor, a: &Var<'t>, b: &Var<'t>) -> Var<'t> {
        check_mask("where_cond", cond);
        let (sc, sa, sb) = (cond.shape(), a.shape(), b.shape());
        assert!(
            try_broadcast_shape(sa, sb).is_some_and(|s| try_broadcast_shape(sc, &s).is_some()),
            "where_cond: condition {sc:?}, a {sa:?} and b {sb:?} do not broadcast"
        );
        let shape = IxDyn(&broadcast_shape(sc, &broadcast_shape(sa, sb)));
        let out = Zip::from(cond.broadcast(shape.clone()).expect("checked"))
            .and(a.value().broadcast(shape.clone()).expect("checked"))
            .and(b.value().broadcast(shape).expect("checked"))
            .map_collect(|&c, &a, &b| if c == 1.0 { a } else { b });
        let (sa, sb) = (sa.to_vec(), sb.to_vec());
        let mask = Saved::new(cond.clone().into());
        op1(a.tape(), "where_cond", &[a, b], out, move |g, needs| {
            let mask = mask.tensor();
            let ga = needs[0].then(|| routed(&g, &mask, true, &sa));
            let gb = needs[1].then(|| routed(&g, &mask, false, &sb));
            vec![ga, gb]
        })
    }

    /// The value with `value` written where `mask` is 1, as `Tensor.masked_fill(mask,
    /// value)`: `mask` broadcasts to this value's shape. The gradient is 0 where filled.
    /// A fill of `−∞` before [`Var::softmax`] leaves masked positions out of attention.
    ///
    /// # Panics
    /// If `mask` holds a value other than 0 or 1, or does not broadcast to this shape.
    #[track_caller]
    pub fn masked_fill(&self, mask: &Tensor, value: f32) -> Var<'t> {
        check_mask("masked_fill", mask);
        let shape = self.shape();
        assert!(
            try_broadcast_shape(mask.shape(), shape).is_some_and(|s| s == shape),
            "masked_fill: mask {:?} does not broadcast to the value's shape {shape:?}",
            mask.shape()
        );
        let m = mask.broadcast(self.value().raw_dim()).expect("checked");
        let out = Zip::from(self.value())
            .and(&m)
            .map_collect(|&x, &m| if m == 1.0 { value } else { x });
        let shape = shape.to_vec();
        let mask = Saved::new(mask.clone().into());
        self.unary_op("masked_fill", out, move |g, _| {
            vec![Some(routed(&g, &mask.tensor(), false, &shape))]
        })
    }
}

#[cfg(test)]
mod tests {
    use ndarray::IxDyn;

    use crate::gradcheck::{assert_gradients, random};
    use crate::{Tape, Tensor, Var};

    fn mask(shape: &[usize], seed: u64) -> Tensor {
        random(shape, 0.0, 1.0, seed).mapv(|v| if v < 0.5 { 1.0 } else { 0.0 })
    }

    #[test]
    fn where_cond_broadcasts_all_three() {
        let cases: &[(&[usize], &[usize], &[usize])] = &[
            (&[3, 4], &[3, 4], &[3, 4]),
            (&[3, 1], &[3, 4], &[4]),
            (&[4], &[2, 1, 4], &[3, 1]),
            (&[2, 3, 4], &[], &[3, 4]),
        ];
        for (i, (sc, sa, sb)) in cases.iter().enumerate() {
            let c = mask(sc, i as u64);
            let a = random(sa, -1.0, 1.0, 10 + i as u64);
            let b = random(sb, -1.0, 1.0, 20 + i as u64);
            assert_gradients(vec![a, b], |v| Var::where_cond(&c, &v[0], &v[1]));
        }
        let tape = Tape::new();
        let c = Tensor::from_shape_vec(IxDyn(&[3]), vec![1.0, 0.0, 1.0]).unwrap();
        let a = tape.var(Tensor::from_elem(IxDyn(&[3]), 5.0));
        let b = tape.var(Tensor::from_elem(IxDyn(&[1]), -5.0));
        let y = Var::where_cond(&c, &a, &b);
        assert_eq!(y.value().as_slice().unwrap(), &[5.0, -5.0, 5.0]);
        let g = y.sum().backward();
        assert_eq!(g.get(&a).unwrap().as_slice().unwrap(), &[1.0, 0.0, 1.0]);
        assert_eq!(g.get(&b).unwrap().as_slice().unwrap(), &[1.0]);
    }

    #[test]
    fn masked_fill_broadcasts_the_mask() {
        let x = random(&[2, 3, 4], -1.0, 1.0, 1);
        for (i, shape) in [&[2usize, 3, 4][..], &[4], &[3, 1], &[]].iter().enumerate() {
            let m = mask(shape, 30 + i as u64);
            assert_gradients(vec![x.clone()], |v| v[0].masked_fill(&m, -1.5));
        }
        let tape = Tape::new();
        let x = tape.var(random(&[2, 3], -1.0, 1.0, 2));
        let m = Tensor::from_shape_vec(IxDyn(&[3]), vec![0.0, 0.0, 1.0]).unwrap();
        let p = x.masked_fill(&m, f32::NEG_INFINITY).softmax(-1);
        assert!(p.value().iter().skip(2).step_by(3).all(|&v| v == 0.0));
        let g = p.sum().backward();
        assert!(g.get(&x).unwrap().iter().all(|v| v.is_finite()));
    }

    #[test]
    #[should_panic(expected = "where_cond: a mask holds only 0 and 1, found 0.5")]
    fn where_cond_refuses_a_soft_mask() {
        let tape = Tape::new();
        let a = tape.var(Tensor::zeros(IxDyn(&[2])));
        Var::where_cond(&Tensor::from_elem(IxDyn(&[2]), 0.5), &a, &a);
    }

    #[test]
    #[should_panic(expected = "where_cond: condition [3], a [2, 3] and b [2] do not broadcast")]
    fn where_cond_names_shapes_that_do_not_broadcast() {
        let tape = Tape::new();
        let a = tape.var(Tensor::zeros(IxDyn(&[2, 3])));
        let b = tape.var(Tensor::zeros(IxDyn(&[2])));
        Var::where_cond(&Tensor::ones(IxDyn(&[3])), &a, &b);
    }

    #[test]
    #[should_panic(
        expected = "masked_fill: mask [2, 3] does not broadcast to the value's shape [3]"
    )]
    fn masked_fill_refuses_a_larger_mask() {
        let tape = Tape::new();
        tape.var(Tensor::zeros(IxDyn(&[3])))
            .masked_fill(&Tensor::ones(IxDyn(&[2, 3])), 0.0);
    }
}
