//! Elementwise functions, each declared once as a pair `(f, f')`: the maths (exp, log,
//! powers, sin, cos, …) and the activations (relu, sigmoid, tanh, leaky relu, GELU, SiLU,
//! softplus).
//!
//! Where `f'` can be written in terms of the output `y = f(x)` (exp, sigmoid, tanh,
//! sqrt, relu) backward keeps the output; otherwise it keeps the input. Either way it
//! keeps one tensor, and it is one the forward made anyway.
//!
//! Methods on [`Var`]:
//! - maths: [`exp`](Var::exp), [`log`](Var::log), [`sqrt`](Var::sqrt),
//!   [`powi`](Var::powi), [`powf`](Var::powf), [`square`](Var::square), [`abs`](Var::abs),
//!   [`sin`](Var::sin), [`cos`](Var::cos), [`clamp`](Var::clamp);
//! - activations: [`relu`](Var::relu), [`leaky_relu`](Var::leaky_relu),
//!   [`sigmoid`](Var::sigmoid), [`tanh`](Var::tanh), [`gelu`](Var::gelu),
//!   [`gelu_tanh`](Var::gelu_tanh), [`silu`](Var::silu), [`softplus`](Var::softplus).

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
    #[track_caller]
    pub fn exp(&self) -> Var<'t> {
        self.elementwise("exp", f32::exp, |y| y, Saved::Output)
    }

    /// Natural logarithm.
    #[track_caller]
    pub fn log(&self) -> Var<'t> {
        self.elementwise("log", f32::ln, |x| 1.0 / x, Saved::Input)
    }

    /// `√x`.
    #[track_caller]
    pub fn sqrt(&self) -> Var<'t> {
        self.elementwise("sqrt", f32::sqrt, |y| 0.5 / y, Saved::Output)
    }

    /// `xⁿ` for an integer `n`.
    #[track_caller]
    pub fn powi(&self, n: i32) -> Var<'t> {
        let df = move |x: f32| n as f32 * x.powi(n - 1);
        self.elementwise("powi", move |x| x.powi(n), df, Saved::Input)
    }

    /// `x²`.
    #[track_caller]
    pub fn square(&self) -> Var<'t> {
        self.elementwise("square", |x| x * x, |x| 2.0 * x, Saved::Input)
    }

    /// `|x|`; its derivative at 0 is taken as 0.
    #[track_caller]
    pub fn abs(&self) -> Var<'t> {
        let sign = |x: f32| if x == 0.0 { 0.0 } else { x.signum() };
        self.elementwise("abs", f32::abs, sign, Saved::Input)
    }

    /// `max(x, 0)`.
    #[track_caller]
    pub fn relu(&self) -> Var<'t> {
        let step = |y: f32| if y > 0.0 { 1.0 } else { 0.0 };
        self.elementwise("relu", |x| x.max(0.0), step, Saved::Output)
    }

    /// `1 / (1 + e⁻ˣ)`, computed without overflow for large `|x|`.
    #[track_caller]
    pub fn sigmoid(&self) -> Var<'t> {
        self.elementwise("sigmoid", sigmoid, |y| y * (1.0 - y), Saved::Output)
    }

    /// `tanh x`.
    #[track_caller]
    pub fn tanh(&self) -> Var<'t> {
        self.elementwise("tanh", f32::tanh, |y| 1.0 - y * y, Saved::Output)
    }

    /// `x` limited to `[lo, hi]`; the gradient is 1 strictly inside, 0 where clamped.
    ///
    /// # Panics
    /// If `lo > hi` or either is NaN.
    #[track_caller]
    pub fn clamp(&self, lo: f32, hi: f32) -> Var<'t> {
        assert!(lo <= hi, "clamp: needs lo ≤ hi, got lo {lo} and hi {hi}");
        let inside = move |x: f32| if x > lo && x < hi { 1.0 } else { 0.0 };
        self.elementwise("clamp", move |x| x.clamp(lo, hi), inside, Saved::Input)
    }

    /// `xᵖ` for a real power `p`, as `torch.pow(x, p)`. A negative base gives NaN unless
    /// `p` is a whole number (then `(−2)³ = −8` as usual); `0ᵖ` is infinite for `p < 0`.
    /// The gradient `p·xᵖ⁻¹` is taken as 0 for `p = 0`, as in PyTorch, and is infinite at
    /// `x = 0` for `0 < p < 1`.
    #[track_caller]
    pub fn powf(&self, p: f32) -> Var<'t> {
        let df = move |x: f32| if p == 0.0 { 0.0 } else { p * x.powf(p - 1.0) };
        self.elementwise("powf", move |x| x.powf(p), df, Saved::Input)
    }

    /// `sin x`.
    #[track_caller]
    pub fn sin(&self) -> Var<'t> {
        self.elementwise("sin", f32::sin, f32::cos, Saved::Input)
    }

    /// `cos x`.
    #[track_caller]
    pub fn cos(&self) -> Var<'t> {
        self.elementwise("cos", f32::cos, |x| -x.sin(), Saved::Input)
    }

    /// `x` where positive, `slope·x` elsewhere (`torch.nn.functional.leaky_relu`, whose
    /// default slope is 0.01); the gradient at 0 is `slope`, as in PyTorch.
    #[track_caller]
    pub fn leaky_relu(&self, slope: f32) -> Var<'t> {
        let f = move |x: f32| if x > 0.0 { x } else { slope * x };
        let df = move |x: f32| if x > 0.0 { 1.0 } else { slope };
        self.elementwise("leaky_relu", f, df, Saved::Input)
    }

    /// The exact GELU `x·Φ(x)`, `Φ` the standard normal distribution function, as
    /// `torch.nn.functional.gelu(x)`; computed in `f64` through the error function.
    #[track_caller]
    pub fn gelu(&self) -> Var<'t> {
        let f = |x: f32| (x as f64 * normal_cdf(x as f64)) as f32;
        // (xΦ)' = Φ(x) + x·φ(x), φ the normal density.
        let df = |x: f32| {
            let x = x as f64;
            let density = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
            (normal_cdf(x) + x * density) as f32
        };
        self.elementwise("gelu", f, df, Saved::Input)
    }

    /// GELU by its tanh approximation `½x(1 + tanh(√(2/π)(x + 0.044715x³)))`, as
    /// `torch.nn.functional.gelu(x, approximate="tanh")` (GPT-2, BERT).
    #[track_caller]
    pub fn gelu_tanh(&self) -> Var<'t> {
        const K: f32 = 0.797_884_6; // √(2/π)
        const C: f32 = 0.044_715;
        let f = |x: f32| 0.5 * x * (1.0 + (K * (x + C * x * x * x)).tanh());
        let df = |x: f32| {
            let t = (K * (x + C * x * x * x)).tanh();
            0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * K * (1.0 + 3.0 * C * x * x)
        };
        self.elementwise("gelu_tanh", f, df, Saved::Input)
    }

    /// SiLU (swish) `x·σ(x)`, `σ` the logistic function.
    #[track_caller]
    pub fn silu(&self) -> Var<'t> {
        let df = |x: f32| {
            let s = sigmoid(x);
            s * (1.0 + x * (1.0 - s))
        };
        self.elementwise("silu", |x| x * sigmoid(x), df, Saved::Input)
    }

    /// `ln(1 + e^{βx}) / β`, a smooth relu, as `torch.nn.functional.softplus(x, beta,
    /// threshold)` (defaults 1 and 20): where `βx > threshold` it is `x` itself. Computed
    /// without overflow for any threshold; the gradient is `σ(βx)`, or 1 above the
    /// threshold.
    ///
    /// # Panics
    /// If `beta` is 0 or not finite.
    #[track_caller]
    pub fn softplus(&self, beta: f32, threshold: f32) -> Var<'t> {
        assert!(
            beta.is_finite() && beta != 0.0,
            "softplus: beta must be finite and nonzero, got {beta}"
        );
        let f = move |x: f32| {
            let bx = beta * x;
            if bx > threshold {
                x
            } else {
                // ln(1 + eᵘ) = max(u, 0) + ln(1 + e^{−|u|}).
                (bx.max(0.0) + (-bx.abs()).exp().ln_1p()) / beta
            }
        };
        let df = move |x: f32| {
            let bx = beta * x;
            if bx > threshold { 1.0 } else { sigmoid(bx) }
        };
        self.elementwise("softplus", f, df, Saved::Input)
    }
}

/// The logistic function in a form that never evaluates `exp` of a large positive number.
pub(crate) fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// The error function `erf x = (2/√π)∫₀ˣ e^{−t²} dt` in `f64`, for GELU: its Maclaurin
/// series below 0.5, where an absolute bound alone would lose the relative accuracy of
/// small values; above, the rational approximation of Abramowitz and Stegun, *Handbook of
/// Mathematical Functions*, 7.1.26 (absolute error below 1.5·10⁻⁷).
fn erf_f64(x: f64) -> f64 {
    let a = x.abs();
    let y = if a < 0.5 {
        // erf a = (2/√π) Σₙ (−1)ⁿ a²ⁿ⁺¹ / (n!(2n + 1)); after ten terms the rest is
        // below 10⁻¹⁴ for a < 0.5.
        let (mut power, mut sum) = (a, 0.0);
        for n in 0..10 {
            sum += power / (2 * n + 1) as f64;
            power *= -a * a / (n + 1) as f64;
        }
        sum * std::f64::consts::FRAC_2_SQRT_PI
    } else {
        const P: f64 = 0.327_591_1;
        const A: [f64; 5] = [
            0.254_829_592,
            -0.284_496_736,
            1.421_413_741,
            -1.453_152_027,
            1.061_405_429,
        ];
        let t = 1.0 / (1.0 + P * a);
        let poly = A.iter().rev().fold(0.0, |acc, &c| (acc + c) * t);
        1.0 - poly * (-a * a).exp()
    };
    y.copysign(x)
}

/// The standard normal distribution function `Φ(x) = ½(1 + erf(x/√2))`.
fn normal_cdf(x: f64) -> f64 {
    0.5 * (1.0 + erf_f64(x * std::f64::consts::FRAC_1_SQRT_2))
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
    fn maths_and_activations() {
        for (i, shape) in [&[3usize, 4][..], &[2, 1, 5], &[]].iter().enumerate() {
            let seed = 20 + i as u64;
            let x = random(shape, -3.0, 3.0, seed);
            let pos = random(shape, 0.5, 2.0, seed);
            let neg = random(shape, -2.0, -0.5, seed);
            assert_gradients(vec![x.clone()], |v| v[0].sin());
            assert_gradients(vec![x.clone()], |v| v[0].cos());
            assert_gradients(vec![x.clone()], |v| v[0].gelu());
            assert_gradients(vec![x.clone()], |v| v[0].gelu_tanh());
            assert_gradients(vec![x.clone()], |v| v[0].silu());
            assert_gradients(vec![x], |v| v[0].softplus(1.0, 20.0));
            assert_gradients(vec![pos.clone()], |v| v[0].powf(2.5));
            assert_gradients(vec![pos.clone()], |v| v[0].powf(-1.5));
            assert_gradients(vec![pos], |v| v[0].powf(0.0));
            // A whole power of a negative base is real.
            assert_gradients(vec![neg], |v| v[0].powf(3.0));
        }
    }

    #[test]
    fn kinked_activations_away_from_kinks() {
        // Away from 0 (leaky relu) and from βx = threshold, here x = 0.5.
        let x = random(&[5, 7], -2.0, 2.0, 8).mapv(|x| {
            if x.abs() < 0.1 || (x - 0.5).abs() < 0.1 {
                x + 0.25
            } else {
                x
            }
        });
        assert_gradients(vec![x.clone()], |v| v[0].leaky_relu(0.1));
        assert_gradients(vec![x.clone()], |v| v[0].leaky_relu(-0.3));
        assert_gradients(vec![x.clone()], |v| v[0].softplus(2.0, 1.0));
        assert_gradients(vec![x], |v| v[0].softplus(-1.5, 20.0));
    }

    /// The error function rounded to `f32`: within 2·10⁻⁷ of the exact value, with a
    /// relative error below 4·10⁻⁷ everywhere.
    fn erf(x: f32) -> f32 {
        super::erf_f64(x as f64) as f32
    }

    /// Reference values: Python's `math.erf`.
    #[test]
    fn erf_matches_the_reference() {
        let cases = [
            (0.0001, 0.00011283791633342487),
            (0.1, 0.1124629160182849),
            (0.3, 0.3286267594591274),
            (0.49, 0.511668261188523),
            (0.5, 0.5204998778130465),
            (0.7, 0.6778011938374184),
            (1.0, 0.8427007929497149),
            (1.5, 0.9661051464753108),
            (2.0, 0.9953222650189527),
            (2.5, 0.999593047982555),
            (3.0, 0.9999779095030014),
            (4.0, 0.9999999845827421),
        ];
        for (x, want) in cases {
            for (x, want) in [(x, want), (-x, -want)] {
                let got = erf(x as f32) as f64;
                let err = (got - want).abs();
                assert!(
                    err < 2e-7 && err <= 4e-7 * want.abs(),
                    "erf({x}) = {got}, not {want}"
                );
            }
        }
        assert_eq!(erf(0.0), 0.0);
        assert_eq!(erf(10.0), 1.0);
        assert!(erf(f32::NAN).is_nan());
    }

    #[test]
    fn activation_values() {
        let tape = crate::Tape::eval();
        let x = tape.constant(
            crate::Tensor::from_shape_vec(ndarray::IxDyn(&[4]), vec![-1.0, 0.0, 1.0, 100.0])
                .unwrap(),
        );
        let close = |v: &crate::Var<'_>, want: [f32; 4]| {
            for (got, want) in v.value().iter().zip(want) {
                assert!(
                    (got - want).abs() <= 1e-6 * want.abs().max(1.0),
                    "{got} vs {want}"
                );
            }
        };
        // Φ(±1) from `math.erf`: 0.8413447460685429 and 0.15865525393145707.
        close(&x.gelu(), [-0.158_655_25, 0.0, 0.841_344_8, 100.0]);
        close(&x.leaky_relu(0.01), [-0.01, 0.0, 1.0, 100.0]);
        close(&x.silu(), [-0.268_941_43, 0.0, 0.731_058_6, 100.0]);
        // Above any threshold the exp would overflow f32; the stable form does not.
        close(
            &x.softplus(1.0, 1000.0),
            [0.313_261_7, std::f32::consts::LN_2, 1.313_261_7, 100.0],
        );
        close(&x.powf(2.0), [1.0, 0.0, 1.0, 10000.0]);
        assert!(x.powf(0.5).value()[0].is_nan());
    }

    #[test]
    fn power_zero_has_zero_gradient_at_zero() {
        let tape = crate::Tape::new();
        let x = tape.var(crate::Tensor::zeros(ndarray::IxDyn(&[2])));
        let g = x.powf(0.0).sum().backward();
        assert_eq!(g.get(&x).unwrap().as_slice().unwrap(), &[0.0, 0.0]);
    }

    #[test]
    #[should_panic(expected = "softplus: beta must be finite and nonzero, got 0")]
    fn softplus_refuses_a_zero_beta() {
        let tape = crate::Tape::new();
        tape.var(random(&[2], -1.0, 1.0, 0)).softplus(0.0, 20.0);
    }

    #[test]
    #[should_panic(expected = "clamp: needs lo ≤ hi, got lo 1 and hi -1")]
    fn clamp_refuses_crossed_bounds() {
        let tape = crate::Tape::new();
        tape.var(random(&[2], -1.0, 1.0, 0)).clamp(1.0, -1.0);
    }

    #[test]
    fn sigmoid_is_stable_for_large_inputs() {
        assert_eq!(super::sigmoid(-1000.0), 0.0);
        assert_eq!(super::sigmoid(1000.0), 1.0);
        assert!((super::sigmoid(0.0) - 0.5).abs() < 1e-7);
    }
}
