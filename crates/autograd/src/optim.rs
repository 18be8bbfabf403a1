//! Optimizers (SGD with momentum, Adam, AdamW) and gradient clipping, with PyTorch's
//! update rules so hyper-parameters carry over.
//!
//! An optimizer reads each parameter's accumulated gradient ([`Parameter::grad`]);
//! parameters without a gradient are left alone. Its state can be saved and restored
//! by name ([`Optimizer::state`], [`Optimizer::load_state`]) so a resumed run continues
//! exactly.

use std::collections::BTreeMap;

use ndarray::{IxDyn, Zip};

use crate::{Parameter, Tensor};

/// A rule that updates parameters from their gradients.
pub trait Optimizer {
    /// The parameters it updates.
    fn params(&self) -> &[Parameter];

    /// One update from the current gradients.
    fn step(&mut self);

    /// Forgets every parameter's gradient.
    fn zero_grad(&self) {
        self.params().iter().for_each(Parameter::zero_grad);
    }

    /// The learning rate now.
    fn lr(&self) -> f32;

    /// Sets the learning rate (for schedules).
    fn set_lr(&mut self, lr: f32);

    /// The running state as named tensors (`<kind>.<parameter>`), to checkpoint.
    fn state(&self) -> BTreeMap<String, Tensor>;

    /// The per-parameter buffers of the state by name, without copying them (to check
    /// them, e.g. for non-finite values after each step).
    fn buffers(&self) -> Vec<(String, &Tensor)>;

    /// Restores state written by [`Optimizer::state`]. Errors name the missing tensor,
    /// the shape mismatch, or a value no run can produce (non-finite, a negative second
    /// moment, a fractional step count); then nothing is changed.
    fn load_state(&mut self, state: &BTreeMap<String, Tensor>) -> Result<(), String>;
}

/// Per-parameter buffers named `<kind>.<parameter name>`.
fn named_buffers<'a>(
    kind: &str,
    params: &[Parameter],
    bufs: &'a [Option<Tensor>],
) -> Vec<(String, &'a Tensor)> {
    params
        .iter()
        .zip(bufs)
        .filter_map(|(p, b)| Some((format!("{kind}.{}", p.name()), b.as_ref()?)))
        .collect()
}

fn cloned(buffers: Vec<(String, &Tensor)>) -> BTreeMap<String, Tensor> {
    buffers.into_iter().map(|(n, t)| (n, t.clone())).collect()
}

/// An error naming the loaded buffers that hold NaN or infinite values.
fn check_finite(buffers: &[(String, &Tensor)]) -> Result<(), String> {
    let bad = crate::tensor::non_finite(buffers.iter().map(|(n, t)| (n.as_str(), *t)));
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("optimizer state {}", bad.join(", ")))
    }
}

fn load_buffers(
    state: &BTreeMap<String, Tensor>,
    kind: &str,
    params: &[Parameter],
) -> Result<Vec<Option<Tensor>>, String> {
    params
        .iter()
        .map(|p| {
            let key = format!("{kind}.{}", p.name());
            match state.get(&key) {
                None => Ok(None),
                Some(t) if t.shape() == &p.shape()[..] => Ok(Some(t.clone())),
                Some(t) => Err(format!(
                    "optimizer state `{key}`: expected shape {:?}, found {:?}",
                    p.shape(),
                    t.shape()
                )),
            }
        })
        .collect()
}

fn scalar(v: f32) -> Tensor {
    Tensor::from_elem(IxDyn(&[1]), v)
}

/// Stochastic gradient descent with optional momentum, Nesterov momentum and L2
/// weight decay: `g ← ∇ + wd·p`, `b ← μ·b + g`, `p ← p − lr·(nesterov ? g + μ·b : b)`.
#[derive(Debug)]
pub struct Sgd {
    params: Vec<Parameter>,
    /// Learning rate.
    pub lr: f32,
    /// Momentum `μ` (0: plain SGD).
    pub momentum: f32,
    /// L2 penalty added to the gradient.
    pub weight_decay: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
    velocity: Vec<Option<Tensor>>,
}

impl Sgd {
    /// Plain SGD at learning rate `lr`; set the public fields for momentum and decay.
    pub fn new(params: Vec<Parameter>, lr: f32) -> Self {
        let velocity = vec![None; params.len()];
        Sgd {
            params,
            lr,
            momentum: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            velocity,
        }
    }

    /// With momentum `μ`.
    pub fn with_momentum(mut self, momentum: f32) -> Self {
        self.momentum = momentum;
        self
    }
}

impl Optimizer for Sgd {
    fn params(&self) -> &[Parameter] {
        &self.params
    }

    fn step(&mut self) {
        let (lr, mu, wd, nesterov) = (self.lr, self.momentum, self.weight_decay, self.nesterov);
        for (p, vel) in self.params.iter().zip(&mut self.velocity) {
            let Some(grad) = p.grad().map(|g| Tensor::clone(&g)) else {
                continue;
            };
            let mut g = grad;
            if wd != 0.0 {
                g.zip_mut_with(&*p.value(), |g, &w| *g += wd * w);
            }
            if mu != 0.0 {
                // PyTorch starts the buffer at the first gradient, then decays it.
                let v = match vel {
                    Some(v) => {
                        Zip::from(&mut *v)
                            .and(&g)
                            .for_each(|v, &g| *v = mu * *v + g);
                        v
                    }
                    None => vel.insert(g.clone()),
                };
                if nesterov {
                    Zip::from(&mut g).and(&*v).for_each(|g, &v| *g += mu * v);
                } else {
                    g.assign(v);
                }
            }
            p.update(|w| w.zip_mut_with(&g, |w, &g| *w -= lr * g));
        }
    }

    fn lr(&self) -> f32 {
        self.lr
    }

    fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }

    fn state(&self) -> BTreeMap<String, Tensor> {
        cloned(self.buffers())
    }

    fn buffers(&self) -> Vec<(String, &Tensor)> {
        named_buffers("sgd.momentum", &self.params, &self.velocity)
    }

    fn load_state(&mut self, state: &BTreeMap<String, Tensor>) -> Result<(), String> {
        let velocity = load_buffers(state, "sgd.momentum", &self.params)?;
        check_finite(&named_buffers("sgd.momentum", &self.params, &velocity))?;
        self.velocity = velocity;
        Ok(())
    }
}

/// Adam (Kingma & Ba) with bias correction, and AdamW (Loshchilov & Hutter) when the
/// weight decay is decoupled:
/// `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
/// `p ← p − lr·m̂/(√v̂ + ε)` with `m̂ = m/(1−β₁ᵗ)`, `v̂ = v/(1−β₂ᵗ)`.
/// Adam's decay adds `wd·p` to `g`; AdamW's multiplies `p` by `1 − lr·wd` first.
#[derive(Debug)]
pub struct Adam {
    params: Vec<Parameter>,
    /// Learning rate.
    pub lr: f32,
    /// Decay rates `(β₁, β₂)` of the first and second moments.
    pub betas: (f32, f32),
    /// Added to `√v̂` for stability.
    pub eps: f32,
    /// Weight decay: L2 for Adam, decoupled for AdamW.
    pub weight_decay: f32,
    /// Whether weight decay is decoupled (AdamW).
    pub decoupled: bool,
    steps: u64,
    m: Vec<Option<Tensor>>,
    v: Vec<Option<Tensor>>,
}

impl Adam {
    /// Adam with PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, no weight decay.
    pub fn new(params: Vec<Parameter>, lr: f32) -> Self {
        let n = params.len();
        Adam {
            params,
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            steps: 0,
            m: vec![None; n],
            v: vec![None; n],
        }
    }

    /// AdamW: Adam with decoupled weight decay (PyTorch's default decay is 0.01).
    pub fn adamw(params: Vec<Parameter>, lr: f32, weight_decay: f32) -> Self {
        Adam {
            weight_decay,
            decoupled: true,
            ..Adam::new(params, lr)
        }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }
}

impl Optimizer for Adam {
    fn params(&self) -> &[Parameter] {
        &self.params
    }

    fn step(&mut self) {
        self.steps += 1;
        let (b1, b2) = self.betas;
        let t = self.steps as i32;
        let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        let (lr, eps, wd, decoupled) = (self.lr, self.eps, self.weight_decay, self.decoupled);
        for ((p, m), v) in self.params.iter().zip(&mut self.m).zip(&mut self.v) {
            let Some(g) = p.grad() else { continue };
            let m = m.get_or_insert_with(|| Tensor::zeros(g.raw_dim()));
            let v = v.get_or_insert_with(|| Tensor::zeros(g.raw_dim()));
            p.update(|w| {
                Zip::from(w).and(&*g).and(m).and(v).for_each(|w, &g, m, v| {
                    let g = if decoupled { g } else { g + wd * *w };
                    if decoupled {
                        *w *= 1.0 - lr * wd;
                    }
                    *m = b1 * *m + (1.0 - b1) * g;
                    *v = b2 * *v + (1.0 - b2) * g * g;
                    *w -= lr * (*m / c1) / ((*v / c2).sqrt() + eps);
                })
            });
        }
    }

    fn lr(&self) -> f32 {
        self.lr
    }

    fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }

    fn state(&self) -> BTreeMap<String, Tensor> {
        let mut out = cloned(self.buffers());
        out.insert("adam.steps".into(), scalar(self.steps as f32));
        out
    }

    fn buffers(&self) -> Vec<(String, &Tensor)> {
        let mut out = named_buffers("adam.m", &self.params, &self.m);
        out.extend(named_buffers("adam.v", &self.params, &self.v));
        out
    }

    fn load_state(&mut self, state: &BTreeMap<String, Tensor>) -> Result<(), String> {
        let steps = state
            .get("adam.steps")
            .and_then(|t| t.iter().next().copied())
            .ok_or("optimizer state: missing `adam.steps`")?;
        // Stored as f32, which counts exactly up to 2²⁴.
        if !(steps >= 0.0 && steps.fract() == 0.0 && steps <= (1u32 << 24) as f32) {
            return Err(format!(
                "optimizer state `adam.steps` = {steps}: expected a whole number of steps \
                 from 0 to 2^24"
            ));
        }
        let m = load_buffers(state, "adam.m", &self.params)?;
        let v = load_buffers(state, "adam.v", &self.params)?;
        let (named_m, named_v) = (
            named_buffers("adam.m", &self.params, &m),
            named_buffers("adam.v", &self.params, &v),
        );
        check_finite(&named_m)?;
        check_finite(&named_v)?;
        for (name, t) in &named_v {
            let negative = t.iter().filter(|&&x| x < 0.0).count();
            if negative > 0 {
                return Err(format!(
                    "optimizer state `{name}`: {negative} negative values; a second moment \
                     is a mean of squares, never negative"
                ));
            }
        }
        if steps == 0.0 && named_m.len() + named_v.len() > 0 {
            return Err(
                "optimizer state: `adam.steps` = 0 but moments are present; the state was \
                 not written by a run"
                    .into(),
            );
        }
        (self.m, self.v, self.steps) = (m, v, steps as u64);
        Ok(())
    }
}

/// The global L2 norm of all gradients, `√Σ‖∇p‖²`.
pub fn grad_norm(params: &[Parameter]) -> f32 {
    let sq: f64 = params
        .iter()
        .filter_map(|p| {
            p.grad()
                .map(|g| g.iter().map(|&x| (x as f64).powi(2)).sum::<f64>())
        })
        .sum();
    sq.sqrt() as f32
}

/// Scales all gradients so their global L2 norm is at most `max_norm`, like
/// `torch.nn.utils.clip_grad_norm_`. Returns the norm before clipping.
pub fn clip_grad_norm(params: &[Parameter], max_norm: f32) -> f32 {
    let norm = grad_norm(params);
    if norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        params.iter().for_each(|p| p.update_grad(|g| *g *= scale));
    }
    norm
}

/// Limits every gradient element to `[−clip, clip]`, like `clip_grad_value_`.
pub fn clip_grad_value(params: &[Parameter], clip: f32) {
    params
        .iter()
        .for_each(|p| p.update_grad(|g| g.mapv_inplace(|x| x.clamp(-clip, clip))));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tape;

    fn quad_param() -> Parameter {
        Parameter::new(
            "w",
            Tensor::from_shape_vec(IxDyn(&[2]), vec![3.0, -2.0]).unwrap(),
        )
    }

    /// Minimizes ‖w‖² and returns the final norm.
    fn minimize(opt: &mut dyn Optimizer, steps: usize) -> f32 {
        for _ in 0..steps {
            opt.zero_grad();
            let tape = Tape::new();
            tape.param(&opt.params()[0]).square().sum().backward();
            opt.step();
        }
        opt.params()[0]
            .value()
            .iter()
            .map(|x| x * x)
            .sum::<f32>()
            .sqrt()
    }

    #[test]
    fn all_optimizers_minimize_a_quadratic() {
        assert!(minimize(&mut Sgd::new(vec![quad_param()], 0.1), 100) < 1e-3);
        assert!(
            minimize(
                &mut Sgd::new(vec![quad_param()], 0.05).with_momentum(0.9),
                300
            ) < 1e-3
        );
        let mut nesterov = Sgd::new(vec![quad_param()], 0.05).with_momentum(0.9);
        nesterov.nesterov = true;
        assert!(minimize(&mut nesterov, 300) < 1e-3);
        assert!(minimize(&mut Adam::new(vec![quad_param()], 0.1), 500) < 1e-2);
        assert!(minimize(&mut Adam::adamw(vec![quad_param()], 0.1, 0.01), 500) < 1e-2);
    }

    #[test]
    fn adam_first_step_matches_pytorch() {
        // torch.optim.Adam([w], lr=0.1) on loss = sum(w²) from w = [3, −2]: the first
        // bias-corrected step moves each weight by lr·sign(g) (up to eps): [2.9, −1.9].
        let p = quad_param();
        let mut adam = Adam::new(vec![p.clone()], 0.1);
        minimize(&mut adam, 1);
        let w = p.value();
        assert!(
            (w[0] - 2.9).abs() < 1e-6 && (w[1] + 1.9).abs() < 1e-6,
            "{w}"
        );
    }

    #[test]
    fn adamw_decays_decoupled_from_the_gradient() {
        // With a zero gradient Adam's step is 0, so only the decoupled decay moves w.
        let p = quad_param();
        let mut opt = Adam::adamw(vec![p.clone()], 0.1, 0.5);
        p.update_grad(|_| ());
        let tape = Tape::new();
        (tape.param(&p) * 0.0).sum().backward();
        opt.step();
        assert!((p.value()[0] - 3.0 * 0.95).abs() < 1e-6);
    }

    #[test]
    fn state_round_trips() {
        let p = quad_param();
        let mut a = Adam::new(vec![p.clone()], 0.1);
        minimize(&mut a, 3);
        let mut b = Adam::new(vec![p.clone()], 0.1);
        b.load_state(&a.state()).unwrap();
        assert_eq!(b.steps(), 3);
        assert_eq!(a.state(), b.state());
        let wrong = Adam::new(vec![Parameter::new("w", Tensor::zeros(IxDyn(&[3])))], 0.1);
        let err = {
            let mut w = wrong;
            w.load_state(&a.state()).unwrap_err()
        };
        assert!(err.contains("adam.m.w") && err.contains("[3]"), "{err}");
    }

    #[test]
    fn impossible_state_is_refused_and_changes_nothing() {
        let p = quad_param();
        let mut a = Adam::new(vec![p.clone()], 0.1);
        minimize(&mut a, 3);
        let good = a.state();
        let spoiled = |key: &str, value: f32| {
            let mut s = good.clone();
            s.get_mut(key).unwrap()[[0]] = value;
            s
        };
        for (state, want) in [
            (spoiled("adam.v.w", -1.0), "`adam.v.w`: 1 negative values"),
            (
                spoiled("adam.m.w", f32::NAN),
                "`adam.m.w` (1 of 2 values NaN",
            ),
            (
                spoiled("adam.v.w", f32::INFINITY),
                "`adam.v.w` (1 of 2 values NaN",
            ),
            (spoiled("adam.steps", f32::NAN), "`adam.steps` = NaN"),
            (spoiled("adam.steps", 2.5), "`adam.steps` = 2.5"),
            (spoiled("adam.steps", -1.0), "`adam.steps` = -1"),
            (spoiled("adam.steps", 0.0), "moments are present"),
        ] {
            let mut b = Adam::new(vec![p.clone()], 0.1);
            let before = b.state();
            let err = b.load_state(&state).unwrap_err();
            assert!(err.contains(want), "{want}: {err}");
            assert_eq!(b.state(), before, "a refused state changes nothing");
        }
        let mut sgd = Sgd::new(vec![p.clone()], 0.1).with_momentum(0.9);
        minimize(&mut sgd, 2);
        let mut state = sgd.state();
        state.get_mut("sgd.momentum.w").unwrap()[[1]] = f32::NEG_INFINITY;
        let err = sgd.load_state(&state).unwrap_err();
        assert!(err.contains("`sgd.momentum.w` (1 of 2"), "{err}");
        assert_eq!(a.buffers().len(), 2);
    }

    #[test]
    fn clipping() {
        let params = [quad_param()];
        let tape = Tape::new();
        tape.param(&params[0]).square().sum().backward(); // g = [6, −4], ‖g‖ = √52
        let before = clip_grad_norm(&params, 1.0);
        assert!((before - 52f32.sqrt()).abs() < 1e-5);
        assert!((grad_norm(&params) - 1.0).abs() < 1e-4);
        clip_grad_value(&params, 0.1);
        assert!(params[0].grad().unwrap().iter().all(|g| g.abs() <= 0.1));
    }
}
