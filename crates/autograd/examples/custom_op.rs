//! Registering an op of your own: Cartesian → polar coordinates, an op with two inputs,
//! two outputs and a hand-written backward, checked against finite differences.
//!
//! `cargo run --release -p autograd --example custom_op`
//!
//! The same mechanism carries the spiking layers of the `sae` crate: a multi-step LIF
//! layer is one `Function` whose forward walks all time steps and returns spikes and
//! potentials, and whose backward walks them in reverse.

use std::sync::Arc;

use autograd::gradcheck::random;
use autograd::{Function, GradCheck, Tape, Tensor, Var};
use ndarray::Zip;

/// `(x, y) ↦ (r, θ) = (√(x² + y²), atan2(y, x))`, elementwise.
#[derive(Default)]
struct Polar {
    /// Saved by forward for backward: the inputs and the radius.
    saved: Option<(Arc<Tensor>, Arc<Tensor>, Tensor)>,
}

impl Function for Polar {
    fn name(&self) -> &str {
        "polar"
    }

    fn forward(&mut self, inputs: &[Arc<Tensor>], record: bool) -> Vec<Tensor> {
        let (x, y) = (&inputs[0], &inputs[1]);
        let r = Zip::from(&**x).and(&**y).map_collect(|&x, &y| x.hypot(y));
        let theta = Zip::from(&**x).and(&**y).map_collect(|&x, &y| y.atan2(x));
        if record {
            // Only what backward needs, and only when backward can run.
            self.saved = Some((x.clone(), y.clone(), r.clone()));
        }
        vec![r, theta]
    }

    /// `∂r/∂x = x/r`, `∂r/∂y = y/r`, `∂θ/∂x = −y/r²`, `∂θ/∂y = x/r²`. Either output's
    /// gradient may be `None` when the loss did not use it.
    fn backward(
        self: Box<Self>,
        grads: Vec<Option<Tensor>>,
        needs: &[bool],
    ) -> Vec<Option<Tensor>> {
        let (x, y, r) = self.saved.expect("forward ran with recording on");
        let zero = Tensor::zeros(r.raw_dim());
        let gr = grads[0].as_ref().unwrap_or(&zero);
        let gt = grads[1].as_ref().unwrap_or(&zero);
        let gx = Zip::from(&*x)
            .and(&*y)
            .and(&r)
            .and(gr)
            .and(gt)
            .map_collect(|&x, &y, &r, &gr, &gt| gr * x / r - gt * y / (r * r));
        let gy = Zip::from(&*x)
            .and(&*y)
            .and(&r)
            .and(gr)
            .and(gt)
            .map_collect(|&x, &y, &r, &gr, &gt| gr * y / r + gt * x / (r * r));
        vec![needs[0].then_some(gx), needs[1].then_some(gy)]
    }
}

/// The op as a method-like helper: returns `(r, θ)`.
fn polar<'t>(x: &Var<'t>, y: &Var<'t>) -> (Var<'t>, Var<'t>) {
    let mut out = x.tape().apply(Polar::default(), &[x, y]);
    let theta = out.pop().expect("two outputs");
    (out.pop().expect("two outputs"), theta)
}

fn main() {
    // Points away from the origin, where the op is smooth.
    let x = random(&[4, 3], 0.5, 2.0, 1);
    let y = random(&[4, 3], -2.0, 2.0, 2);
    let report = GradCheck::default().run(vec![x.clone(), y.clone()], |v| {
        let (r, theta) = polar(&v[0], &v[1]);
        &r * &theta + r.square()
    });
    println!("polar op gradient check: {report}");
    assert!(report.passed);

    let tape = Tape::new();
    let (xv, yv) = (tape.var(x), tape.var(y));
    let (r, _) = polar(&xv, &yv);
    let grads = r.sum().backward();
    println!("∂Σr/∂x (= cos θ):\n{}", grads.get(&xv).expect("gradient"));
}
