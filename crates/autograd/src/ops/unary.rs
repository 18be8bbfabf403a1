//! Elementwise functions, each declared once as a pair `(f, f')`.
//!
//! Where `f'` can be written in terms of the output `y = f(x)` (exp, sigmoid, tanh,
//! sqrt, relu) backward keeps the output; otherwise it keeps the input. Either way it
//! keeps one tensor, and it is one the forward made anyway.

use crate::tape::Var;

/// Which value `f'` is written in terms of.
#[derive(Clone, Copy)]
enum Saved {
    /// `f'(x)`.
    Input,
    /// `f'` as a function of `y = f(x)`.
    Output,
}

impl<'t> Var<'t> {
    /// Applies `f` elementwise; backward multiplies the incoming gradient by `df` of the
    /// saved input or output.
    fn elementwise(
        &self,
        name: &str,
        f: impl Fn(f32) -> f32,
        df: impl Fn(f32) -> f32 + 'static,
        saved: Saved,
    ) -> Var<'t> {
        let out = self.value().mapv(f);
        let keep = match saved {
            Saved::Input => self.shared(),
            Saved::Output => std::sync::Arc::new(out.clone()),
        };
        self.unary_op(name, out, move |mut g, _| {
            g.zip_mut_with(&*keep, |g, &v| *g *= df(v));
            vec![Some(g)]
        })
    }

    /// `eˣ`.
    pub fn exp(&self) -> Var<'t> {
        self.elementwise("exp", f32::exp, |y| y, Saved::Output)
    }

    /// Natural logarithm.
    pub fn log(&self) -> Var<'t> {
        self.elementwise("log", f32::ln, |x| 1.0 / x, Saved::Input)
    }

    /// `√x`.
    pub fn sqrt(&self) -> Var<'t> {
        self.elementwise("sqrt", f32::sqrt, |y| 0.5 / y, Saved::Output)
    }

    /// `xⁿ` for an integer `n`.
    pub fn powi(&self, n: i32) -> Var<'t> {
        let df = move |x: f32| n as f32 * x.powi(n - 1);
        self.elementwise("powi", move |x| x.powi(n), df, Saved::Input)
    }

    /// `x²`.
    pub fn square(&self) -> Var<'t> {
        self.elementwise("square", |x| x * x, |x| 2.0 * x, Saved::Input)
    }

    /// `|x|`; its derivative at 0 is taken as 0.
    pub fn abs(&self) -> Var<'t> {
        let sign = |x: f32| if x == 0.0 { 0.0 } else { x.signum() };
        self.elementwise("abs", f32::abs, sign, Saved::Input)
    }

    /// `max(x, 0)`.
    pub fn relu(&self) -> Var<'t> {
        let step = |y: f32| if y > 0.0 { 1.0 } else { 0.0 };
        self.elementwise("relu", |x| x.max(0.0), step, Saved::Output)
    }

    /// `1 / (1 + e⁻ˣ)`, computed without overflow for large `|x|`.
    pub fn sigmoid(&self) -> Var<'t> {
        self.elementwise("sigmoid", sigmoid, |y| y * (1.0 - y), Saved::Output)
    }

    /// `tanh x`.
    pub fn tanh(&self) -> Var<'t> {
        self.elementwise("tanh", f32::tanh, |y| 1.0 - y * y, Saved::Output)
    }

    /// `x` limited to `[lo, hi]`; the gradient is 1 strictly inside, 0 where clamped.
    pub fn clamp(&self, lo: f32, hi: f32) -> Var<'t> {
        let inside = move |x: f32| if x > lo && x < hi { 1.0 } else { 0.0 };
        self.elementwise("clamp", move |x| x.clamp(lo, hi), inside, Saved::Input)
    }
}

/// The logistic function in a form that never evaluates `exp` of a large positive number.
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::{assert_gradients, random};

    #[test]
    fn smooth_functions() {
        for (i, shape) in [&[3usize, 4][..], &[1], &[2, 1, 5], &[]].iter().enumerate() {
            let x = random(shape, -2.0, 2.0, i as u64);
            let pos = random(shape, 0.5, 3.0, 10 + i as u64);
            assert_gradients(vec![x.clone()], |v| v[0].exp());
            assert_gradients(vec![pos.clone()], |v| v[0].log());
            assert_gradients(vec![pos.clone()], |v| v[0].sqrt());
            assert_gradients(vec![x.clone()], |v| v[0].powi(3));
            assert_gradients(vec![pos], |v| v[0].powi(-2));
            assert_gradients(vec![x.clone()], |v| v[0].square());
            assert_gradients(vec![x.clone()], |v| v[0].sigmoid());
            assert_gradients(vec![x], |v| v[0].tanh());
        }
    }

    #[test]
    fn kinked_functions_away_from_kinks() {
        // |x| ≥ 0.1 keeps every element further than ε from the kink at 0 (or at ±1).
        let x = random(&[5, 7], -2.0, 2.0, 3).mapv(|x| if x.abs() < 0.1 { x + 0.3 } else { x });
        assert_gradients(vec![x.clone()], |v| v[0].abs());
        assert_gradients(vec![x.clone()], |v| v[0].relu());
        let y = x.mapv(|x| {
            if (x.abs() - 1.0).abs() < 0.1 {
                x * 1.3
            } else {
                x
            }
        });
        assert_gradients(vec![y], |v| v[0].clamp(-1.0, 1.0));
    }

    #[test]
    fn sigmoid_is_stable_for_large_inputs() {
        assert_eq!(super::sigmoid(-1000.0), 0.0);
        assert_eq!(super::sigmoid(1000.0), 1.0);
        assert!((super::sigmoid(0.0) - 0.5).abs() < 1e-7);
    }
}
