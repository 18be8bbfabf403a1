//! The leaky integrate-and-fire neuron over all `T` steps as one autograd op.
//!
//! [`lif`] maps currents `I [T·B, …]` (time folded into the batch, `T` outer) to spikes
//! `s` and the leaky cumulative potential `c` of the same shape, with the dynamics and
//! the surrogate backward of `model-spec.md`. Forward keeps only the kernel's
//! [`LifTrace`] (spike bits, and the potentials only where the surrogate needs them);
//! backward walks `t = T−1 … 0` once per neuron in `kernels::lif`.

use std::sync::Arc;

use autograd::tensor::{zeroed, zeros};
use autograd::{BitTensor, Tensor, Value, Var};
pub use kernels::lif::{Floor, LifParams, LifTrace, Reset, Surrogate};
use kernels::lif::{LifAdjoint, LifState};
use ndarray::Dimension;

/// The multi-step LIF op: inputs the currents (and, for a time tile after the first, the
/// carried `v̂` and `c`); outputs the spikes as bits ([`BitTensor`], read as they are by
/// the next layer's event kernels; in `spikes_shape` when given: the next layer's input
/// shape, so that it needs no reshape), `c` for every step or, without
/// `full_c`, only `c[T−1]`, the spike counts `Σ_t s[t]` `[B, …]` (read from the trace's
/// bits), and with `carry_out` the state `(v̂, c)` after the last step for the next tile.
///
/// The carried state's "gradients" are the backward recurrence's adjoints `(Au, Ac)`
/// (`kernels::lif`), which equal `∂L/∂v̂` and `∂L/∂c` only under an exact surrogate: a
/// carry must go to the next tile's LIF op and nowhere else.
struct LifOp {
    params: LifParams,
    steps: usize,
    full_c: bool,
    carry_out: bool,
    spikes_shape: Option<Vec<usize>>,
    /// The currents' shape and the kernel's trace, kept by a recorded forward.
    saved: Option<(ndarray::IxDyn, LifTrace)>,
}

fn slice(t: &Tensor) -> &[f32] {
    t.as_slice().expect("tensors on the tape are contiguous")
}

/// A tensor of `shape` holding `values`.
fn tensor(shape: ndarray::IxDyn, values: Vec<f32>) -> Tensor {
    Tensor::from_shape_vec(shape, values).expect("one value per neuron")
}

/// Output positions of [`LifOp`].
const SPIKES: usize = 0;
const C: usize = 1;
const COUNTS: usize = 2;
const CARRY: usize = 3;

impl LifOp {
    /// The outputs (see [`LifOp`]); with `record`, keeps the trace for backward.
    fn forward(&mut self, inputs: &[Arc<Tensor>], record: bool) -> Vec<Value> {
        let current = &inputs[0];
        let neurons = current.len() / self.steps;
        let frame = last_step_dim(current.shape(), self.steps);
        let mut c = zeros(if self.full_c {
            current.shape()
        } else {
            frame.slice()
        });
        let c_out = c.as_slice_mut().expect("fresh tensor");
        let (p, steps, input) = (&self.params, self.steps, slice(current));
        let mut state = match inputs {
            [_, vhat, c] => Some(LifState::from_parts(
                slice(vhat).to_vec(),
                slice(c).to_vec(),
            )),
            _ => self.carry_out.then(|| LifState::new(neurons)),
        };
        let trace = match &mut state {
            Some(state) => kernels::lif::lif_forward_from(p, steps, neurons, input, c_out, state),
            None => kernels::lif::lif_forward(p, steps, neurons, input, c_out),
        };
        let spikes_shape = self.spikes_shape.as_deref().unwrap_or(current.shape());
        let s = BitTensor::from_words(trace.spike_words(), spikes_shape);
        let mut counts = Tensor::zeros(frame.clone());
        trace.counts_into(counts.as_slice_mut().expect("fresh tensor"));
        if record {
            self.saved = Some((current.raw_dim(), trace));
        }
        let mut out = vec![Value::Bits(s), Value::Dense(c), Value::Dense(counts)];
        if let Some(state) = state.filter(|_| self.carry_out) {
            let (vhat, c) = state.into_parts();
            out.extend([tensor(frame.clone(), vhat), tensor(frame, c)].map(Value::Dense));
        }
        out
    }

    /// Gradients of the currents (and of the carried state, as adjoints) from those of
    /// the outputs.
    fn backward(self, mut grads: Vec<Option<Tensor>>, needs: &[bool]) -> Vec<Option<Tensor>> {
        let (shape, trace) = self.saved.expect("forward recorded its trace");
        let g_counts = grads[COUNTS].take();
        let frame = last_step_dim(shape.slice(), self.steps);
        let mut gi = zeros(shape.slice());
        let gi_out = gi.as_slice_mut().expect("fresh tensor");
        let len = gi_out.len();
        // The kernel takes ∂L/∂c for every step: a c[T−1]-only gradient is the last row.
        let expanded: Vec<f32>;
        let gc = match (&grads[C], self.full_c) {
            (Some(g), false) => {
                let mut full = zeroed(len);
                full[len - g.len()..].copy_from_slice(slice(g));
                expanded = full;
                Some(&expanded[..])
            }
            (g, _) => g.as_ref().map(slice),
        };
        // A count's gradient reaches the spike of every step.
        let with_counts: Vec<f32>;
        let gs = match (&grads[SPIKES], g_counts) {
            (g, None) => g.as_ref().map(slice),
            (g, Some(gn)) => {
                let gn = slice(&gn);
                with_counts = match g {
                    Some(g) => (slice(g).chunks_exact(gn.len()))
                        .flat_map(|row| row.iter().zip(gn).map(|(g, n)| g + n))
                        .collect(),
                    None => gn.repeat(self.steps),
                };
                Some(&with_counts[..])
            }
        };
        let neurons = trace.neurons();
        let carried_in = needs.len() == 3;
        if !self.carry_out && !carried_in {
            kernels::lif::lif_backward(&self.params, &trace, gs, gc, gi_out);
            return vec![Some(gi)];
        }
        // The adjoint the next tile left (zero for the last tile), carried to this one's
        // first step.
        let part =
            |g: &Option<Tensor>| g.as_ref().map_or(vec![0.0; neurons], |g| slice(g).to_vec());
        let mut adjoint = match grads.get(CARRY..CARRY + 2) {
            Some([au, ac]) => LifAdjoint::from_parts(part(au), part(ac)),
            _ => LifAdjoint::new(neurons),
        };
        kernels::lif::lif_backward_from(&self.params, &trace, gs, gc, gi_out, &mut adjoint);
        let mut out = vec![Some(gi)];
        if carried_in {
            let (au, ac) = adjoint.into_parts();
            out.extend([Some(tensor(frame.clone(), au)), Some(tensor(frame, ac))]);
        }
        out
    }
}

/// The shape of one step of a time-folded `[T·B, …]`: `[B, …]`.
fn last_step_dim(shape: &[usize], steps: usize) -> ndarray::IxDyn {
    let mut shape = shape.to_vec();
    shape[0] /= steps;
    ndarray::IxDyn(&shape)
}

/// What a layer of LIF neurons carries from one time tile to the next: `v̂` and `c` after
/// the tile's last step, `[B, …]` each. Only the next tile's [`lif_tile`] may read it (its
/// backward carries the recurrence's adjoints, not plain gradients).
#[derive(Clone, Debug)]
pub struct LifCarry<'t> {
    vhat: Var<'t>,
    c: Var<'t>,
}

/// What a time tile of LIF neurons gives.
#[derive(Clone, Debug)]
pub struct LifOutput<'t> {
    /// Spikes `[steps·B, …]` (in the shape asked for).
    pub spikes: Var<'t>,
    /// `c` for every step of the tile, or only its last step's `[B, …]`.
    pub c: Var<'t>,
    /// Spike counts over the tile's steps, `[B, …]` in the currents' frame shape.
    pub counts: Var<'t>,
    /// The state for the next tile (none after the last).
    pub carry: Option<LifCarry<'t>>,
}

/// How a time tile of [`lif_tile`] runs.
#[derive(Clone, Debug, Default)]
pub struct TileOptions<'a, 't> {
    /// `c` for every step (else only the last step's).
    pub full_c: bool,
    /// The state the previous tile left (none: from rest).
    pub carry: Option<&'a LifCarry<'t>>,
    /// Whether the next tile needs a state (false for the last tile).
    pub carry_out: bool,
    /// The spikes' shape, `[steps·B, …]` with the currents' number of values (e.g. the
    /// next layer's input shape); none: the currents' shape.
    pub spikes_shape: Option<Vec<usize>>,
}

/// Spikes and leaky cumulative potential `(s, c)` of LIF neurons driven by `current`
/// `[T·B, …]` (time-major: the first `B` rows are step 0). Under the `membrane`
/// surrogate the spikes are declared [`Var::grad_where_nonzero`], so the next layer
/// computes their gradient only where they fired.
///
/// # Panics
/// If `steps` is 0 or does not divide the leading dimension.
pub fn lif<'t>(current: &Var<'t>, steps: usize, params: &LifParams) -> (Var<'t>, Var<'t>) {
    let options = TileOptions {
        full_c: true,
        ..TileOptions::default()
    };
    let out = lif_tile(current, steps, params, options);
    (out.spikes, out.c)
}

/// [`lif`] that gives only the last step's potential `C = c[T−1]` `[B, …]`, all the
/// regularizers read: the full `c` is never stored.
///
/// # Panics
/// If `steps` is 0 or does not divide the leading dimension.
pub fn lif_final<'t>(current: &Var<'t>, steps: usize, params: &LifParams) -> (Var<'t>, Var<'t>) {
    let out = lif_tile(current, steps, params, TileOptions::default());
    (out.spikes, out.c)
}

/// One time tile of LIF neurons: `steps` steps of `current [steps·B, …]` from the state
/// the previous tile left, giving spikes, `c`, spike counts and the state for the next
/// tile. Tiles run this way give the same spikes, potentials and gradients as one call
/// over all their steps.
///
/// # Panics
/// If `steps` is 0 or does not divide the leading dimension, the carried state is of
/// another shape than one step of `current`, or `spikes_shape` holds another number of
/// values or frames.
pub fn lif_tile<'t>(
    current: &Var<'t>,
    steps: usize,
    params: &LifParams,
    options: TileOptions<'_, 't>,
) -> LifOutput<'t> {
    let rows = current.shape().first().copied().unwrap_or(0);
    assert!(
        steps > 0 && rows % steps == 0,
        "lif: {steps} steps do not divide the leading dimension of {:?}",
        current.shape()
    );
    if let Some(carry) = options.carry {
        let frame = last_step_dim(current.shape(), steps);
        assert_eq!(
            carry.c.shape(),
            frame.slice(),
            "lif: the carried state is not one step of the currents"
        );
    }
    if let Some(shape) = &options.spikes_shape {
        assert!(
            shape.first() == Some(&rows)
                && shape.iter().product::<usize>() == current.value().len(),
            "lif: spikes of shape {shape:?} for currents of shape {:?}",
            current.shape()
        );
    }
    let op = LifOp {
        params: *params,
        steps,
        full_c: options.full_c,
        carry_out: options.carry_out,
        spikes_shape: options.spikes_shape,
        saved: None,
    };
    let inputs = match options.carry {
        Some(carry) => vec![current, &carry.vhat, &carry.c],
        None => vec![current],
    };
    let tape = current.tape();
    let record = tape.is_recording() && inputs.iter().any(|v| v.requires_grad());
    let mut op = op;
    let values: Vec<Arc<Tensor>> = inputs.iter().map(|v| v.shared()).collect();
    let outputs = op.forward(&values, record);
    let backward: autograd::BackwardFn = Box::new(move |g, needs| op.backward(g, needs));
    let mut out = tape.record("lif", &inputs, outputs, backward).into_iter();
    let mut next = |what: &str| out.next().expect(what);
    let (s, c, counts) = (next("spikes"), next("c"), next("counts"));
    let carry = options.carry_out.then(|| LifCarry {
        vhat: next("carried v̂"),
        c: next("carried c"),
    });
    // ∂s/∂v = s/θ: the spikes' gradient is read only where they fired.
    let spikes = match params.surrogate {
        Surrogate::Membrane => s.grad_where_nonzero(),
        _ => s,
    };
    LifOutput {
        spikes,
        c,
        counts,
        carry,
    }
}

/// The LIF layer composed step by step from plain autograd ops: the oracle that the
/// fused op (and the layers built on it) are tested against.
#[cfg(test)]
pub(crate) mod reference {
    use super::*;
    use autograd::Tensor;

    /// The spike's surrogate derivative `g(v)` of `model-spec.md`, elementwise.
    fn surrogate(p: &LifParams, v: f32, spiked: bool) -> f32 {
        let z = v - p.threshold;
        match p.surrogate {
            Surrogate::Membrane => f32::from(u8::from(spiked)) / p.threshold,
            Surrogate::FastSigmoid { slope: k } => 1.0 / (k * z.abs() + 1.0).powi(2),
            Surrogate::Arctan { slope: k } => {
                (k / 2.0) / (1.0 + (std::f32::consts::PI * k * z / 2.0).powi(2))
            }
            Surrogate::Triangle { slope: k } => k * (1.0 - k * z.abs()).max(0.0),
        }
    }

    /// `value` in the forward pass with gradient `grad_scale ⊙ ∂` in the backward pass:
    /// `a·x + stop(value − a·x)` for a constant `a`.
    fn with_gradient<'t>(x: &Var<'t>, value: Tensor, grad_scale: Tensor) -> Var<'t> {
        let tape = x.tape();
        let scaled = x * &tape.constant(grad_scale);
        let rest = (&tape.constant(value) - &scaled).detach();
        &scaled + &rest
    }

    /// The LIF layer built step by step from plain autograd ops: the oracle for the fused
    /// op. Straight-through leaks (membrane mode) and the detached reset are written with
    /// [`with_gradient`] and `detach`.
    pub(crate) fn composed<'t>(
        current: &Var<'t>,
        steps: usize,
        p: &LifParams,
    ) -> (Var<'t>, Var<'t>) {
        let tape = current.tape();
        let rows = current.shape()[0] / steps;
        let shape = current.shape().to_vec();
        let straight = matches!(p.surrogate, Surrogate::Membrane);
        // λ·x, whose gradient is 1 in membrane mode and λ otherwise.
        let leak = |x: &Var<'t>| {
            if straight {
                with_gradient(x, x.value() * p.leak, Tensor::ones(x.shape()))
            } else {
                x * p.leak
            }
        };
        let mut step_shape = shape.clone();
        step_shape[0] = rows;
        let zeros = Tensor::zeros(ndarray::IxDyn(&step_shape));
        let (mut vhat, mut c) = (tape.constant(zeros.clone()), tape.constant(zeros));
        let (mut spikes, mut cs) = (vec![], vec![]);
        for t in 0..steps {
            let i = current.slice_axis(0, t * rows..(t + 1) * rows);
            let u = &leak(&vhat) + &i;
            let theta = p.threshold;
            let v = match p.floor {
                Floor::None => u,
                Floor::Clamp | Floor::Authors => {
                    let floored = u.value().mapv(|x| f32::from(u8::from(x < -theta)));
                    let to = if p.floor == Floor::Clamp {
                        -theta
                    } else {
                        theta
                    };
                    let keep = tape.constant(floored.mapv(|f| 1.0 - f));
                    &u * &keep + &tape.constant(floored * to)
                }
            };
            let fired = v.value().mapv(|x| f32::from(u8::from(x > theta)));
            let g = ndarray::Zip::from(v.value())
                .and(&fired)
                .map_collect(|&v, &s| surrogate(p, v, s > 0.0));
            let s = with_gradient(&v, fired.clone(), g);
            // The reset is detached from the spike's path: s enters as a constant.
            vhat = match p.reset {
                Reset::Zero => &v * &(tape.constant(fired.mapv(|s| 1.0 - s))),
                Reset::Subtract => &v - &tape.constant(fired * theta),
            };
            c = leak(&(&c + &i));
            spikes.push(s);
            cs.push(c.clone());
        }
        let s_refs: Vec<&Var> = spikes.iter().collect();
        let c_refs: Vec<&Var> = cs.iter().collect();
        (Var::concat(&s_refs, 0), Var::concat(&c_refs, 0))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::reference::composed;
    use super::*;
    use autograd::Tape;
    use autograd::gradcheck::random;

    /// `lif_final` gives the same spikes, `c[T−1]` and input gradient as `lif` sliced.
    #[test]
    fn final_step_potential_matches_the_full_one() {
        let (steps, b) = (5, 3);
        let current = random(&[steps * b, 2, 7], -0.5, 2.0, 1);
        let gs = random(current.shape(), -1.0, 1.0, 2);
        let gc = random(&[b, 2, 7], -1.0, 1.0, 3);
        for p in all_params() {
            let run = |full: bool| {
                let tape = Tape::new();
                let x = tape.var(current.clone());
                let (s, c) = if full {
                    let (s, c) = lif(&x, steps, &p);
                    (s, c.slice_axis(0, (steps - 1) * b..steps * b))
                } else {
                    lif_final(&x, steps, &p)
                };
                let loss = (&s * &tape.constant(gs.clone())).sum()
                    + (&c * &tape.constant(gc.clone())).sum();
                let g = loss.backward();
                let gx = g.get(&x).expect("input gradient").clone();
                (s.value().clone(), c.value().clone(), gx)
            };
            assert_eq!(run(true), run(false), "{p:?}");
        }
    }

    /// Time tiles of [`lif_tile`], the state carried, give the spikes, `c` and input
    /// gradient of one [`lif`] over all steps, bit for bit, with gradients reaching the
    /// full and the last-step `c` of every tile.
    #[test]
    fn time_tiles_match_one_call() {
        let (b, tiles) = (3, [2usize, 1, 3]);
        let steps: usize = tiles.iter().sum();
        let current = random(&[steps * b, 2, 5], -0.5, 2.0, 4);
        let gs = random(current.shape(), -1.0, 1.0, 5);
        let gc = random(current.shape(), -1.0, 1.0, 6);
        for p in all_params() {
            for full_c in [true, false] {
                // c's gradient: every step's with the full c, else the last step's only.
                let gc = match full_c {
                    true => gc.clone(),
                    false => gc
                        .slice_axis(ndarray::Axis(0), ((steps - 1) * b..).into())
                        .to_owned(),
                };
                let whole = {
                    let tape = Tape::new();
                    let x = tape.var(current.clone());
                    let (s, c) = match full_c {
                        true => lif(&x, steps, &p),
                        false => lif_final(&x, steps, &p),
                    };
                    let loss = (&s * &tape.constant(gs.clone())).sum()
                        + (&c * &tape.constant(gc.clone())).sum();
                    let g = loss.backward();
                    (
                        s.value().clone(),
                        c.value().clone(),
                        g.get(&x).expect("gradient").clone(),
                    )
                };
                let tiled = {
                    let tape = Tape::new();
                    let x = tape.var(current.clone());
                    let (mut carry, mut t0, mut loss) = (None, 0, None);
                    let (mut spikes, mut cs) = (vec![], vec![]);
                    for len in tiles {
                        let rows = t0 * b..(t0 + len) * b;
                        let part = x.slice_axis(0, rows.clone());
                        let options = TileOptions {
                            full_c,
                            carry: carry.as_ref(),
                            carry_out: true,
                            spikes_shape: None,
                        };
                        let out = lif_tile(&part, len, &p, options);
                        let (s, c, next) = (out.spikes, out.c, out.carry.expect("a carry"));
                        let gs = gs
                            .slice_axis(ndarray::Axis(0), rows.clone().into())
                            .to_owned();
                        let mut term = (&s * &tape.constant(gs)).sum();
                        if full_c {
                            let gc = gc.slice_axis(ndarray::Axis(0), rows.into()).to_owned();
                            term = term + (&c * &tape.constant(gc)).sum();
                        } else if t0 + len == steps {
                            term = term + (&c * &tape.constant(gc.clone())).sum();
                        }
                        loss = Some(match loss {
                            Some(l) => l + term,
                            None => term,
                        });
                        spikes.push(s);
                        cs.push(c);
                        carry = Some(next);
                        t0 += len;
                    }
                    let g = loss.expect("tiles").backward();
                    let s = Var::concat(&spikes.iter().collect::<Vec<_>>(), 0);
                    let c = match full_c {
                        true => Var::concat(&cs.iter().collect::<Vec<_>>(), 0),
                        false => cs.pop().expect("a last tile"),
                    };
                    (
                        s.value().clone(),
                        c.value().clone(),
                        g.get(&x).expect("gradient").clone(),
                    )
                };
                let bits = |t: &Tensor| t.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(whole.0, tiled.0, "spikes differ for {p:?}");
                assert_eq!(bits(&whole.1), bits(&tiled.1), "c differs for {p:?}");
                assert_eq!(bits(&whole.2), bits(&tiled.2), "gradient differs for {p:?}");
            }
        }
    }

    pub(crate) fn all_params() -> Vec<LifParams> {
        let mut out = vec![];
        for reset in [Reset::Zero, Reset::Subtract] {
            for floor in [Floor::None, Floor::Clamp, Floor::Authors] {
                for surrogate in [
                    Surrogate::Membrane,
                    Surrogate::FastSigmoid { slope: 5.0 },
                    Surrogate::Arctan { slope: 2.0 },
                    Surrogate::Triangle { slope: 1.0 },
                ] {
                    out.push(LifParams {
                        leak: 0.9,
                        threshold: 1.0,
                        reset,
                        floor,
                        surrogate,
                    });
                }
            }
        }
        out
    }

    #[test]
    fn fused_op_matches_the_composition_of_plain_ops() {
        let (steps, rows) = (6, 3);
        for (k, p) in all_params().iter().enumerate() {
            let current = random(&[steps * rows, 2, 5], -1.5, 2.0, k as u64);
            let gs = random(current.shape(), -1.0, 1.0, 100 + k as u64);
            let gc = random(current.shape(), -1.0, 1.0, 200 + k as u64);
            let run = |fused: bool| {
                let tape = Tape::new();
                let i = tape.var(current.clone());
                let (s, c) = if fused {
                    lif(&i, steps, p)
                } else {
                    composed(&i, steps, p)
                };
                let loss = (&s * &tape.constant(gs.clone())).sum()
                    + (&c * &tape.constant(gc.clone())).sum();
                let g = loss.backward();
                (
                    s.value().clone(),
                    c.value().clone(),
                    g.get(&i).unwrap().clone(),
                )
            };
            let (s1, c1, g1) = run(true);
            let (s2, c2, g2) = run(false);
            assert_eq!(s1, s2, "spikes differ for {p:?}");
            let close = |a: &Tensor, b: &Tensor| {
                let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
                a.iter()
                    .zip(b)
                    .all(|(x, y)| (x - y).abs() <= 1e-5 * scale.max(1.0))
            };
            assert!(close(&c1, &c2), "c differs for {p:?}");
            assert!(close(&g1, &g2), "gradient differs for {p:?}:\n{g1}\n{g2}");
        }
    }
}
