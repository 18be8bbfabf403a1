//! Spiking layers: a synaptic op (conv, transposed conv or linear) over all `T·B` frames
//! at once, then the multi-step LIF op ([`crate::nn::lif::lif`]) over the resulting
//! currents. Each layer reshapes its own input ([`Reshape`]), so a network is a plain
//! sequence of layers.
//!
//! The synaptic ops are autograd's own, which pick the event-driven or the dense kernel
//! from the input's density (`kernels::event`): binary, sparse spikes take the event path.

use autograd::nn::{Module, Visitor};
use autograd::{Parameter, Tape, Var};

use crate::nn::lif::{LifOutput, LifParams, TileOptions, lif, lif_final, lif_tile};

/// The synaptic op of a layer and its geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Synapse {
    /// `conv2d`, weight `[C_out, C_in, k, k]`.
    Conv2d {
        /// Step between windows.
        stride: usize,
        /// Zero padding on each side.
        padding: usize,
    },
    /// `conv_transpose2d`, weight `[C_in, C_out, k, k]`.
    ConvTranspose2d {
        /// Step between input pixels in the output.
        stride: usize,
        /// Padding removed from each side of the output.
        padding: usize,
        /// Extra rows and columns added to one side of the output.
        output_padding: usize,
    },
    /// `linear`, weight `[out, in]`.
    Linear,
}

/// What a layer does to the frames of its input before its synaptic op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reshape {
    /// Takes them as they are.
    None,
    /// `[N, …]` → `[N, ∏…]`: feature maps into a linear layer.
    Flatten,
    /// `[N, C·H·W]` → `[N, C, H, W]`: features into a (transposed) conv.
    Map([usize; 3]),
}

impl Reshape {
    /// `x` reshaped; `x` itself (no copy) when it already has the shape.
    pub fn apply<'t>(&self, x: &Var<'t>) -> Var<'t> {
        let n = x.shape()[0];
        let shape = [&[n][..], &self.frame(&x.shape()[1..])].concat();
        if x.shape() == shape.as_slice() {
            x.clone()
        } else {
            x.reshape(&shape)
        }
    }

    /// The shape of one frame of input `frame` after the reshape.
    pub fn frame(&self, frame: &[usize]) -> Vec<usize> {
        match *self {
            Reshape::None => frame.to_vec(),
            Reshape::Flatten => vec![frame.iter().product()],
            Reshape::Map(m) => m.to_vec(),
        }
    }
}

impl Synapse {
    /// `W ⊛ x (+ b)`: the synaptic op on `x` with weight `w` and optional bias `b`.
    pub fn apply<'t>(&self, x: &Var<'t>, w: &Var<'t>, b: Option<&Var<'t>>) -> Var<'t> {
        match *self {
            Synapse::Conv2d { stride, padding } => x.conv2d(w, b, stride, padding),
            Synapse::ConvTranspose2d {
                stride,
                padding,
                output_padding,
            } => x.conv_transpose2d(w, b, stride, padding, output_padding),
            Synapse::Linear => x.linear(w, b),
        }
    }
}

/// A layer of LIF neurons behind a synaptic op. State (potentials) never lives here: it
/// exists only inside one call of [`LifLayer::forward`].
#[derive(Clone, Debug)]
pub struct LifLayer {
    /// Name used in reports (parameters are named `<name>.weight`, `<name>.bias`).
    pub name: String,
    /// The synaptic weights.
    pub weight: Parameter,
    /// Optional bias, one per output channel or feature.
    pub bias: Option<Parameter>,
    /// The synaptic op.
    pub synapse: Synapse,
    /// What the layer does to its input first.
    pub input: Reshape,
    /// Leak, threshold, reset, floor and surrogate of the neurons.
    pub neuron: LifParams,
}

impl LifLayer {
    /// Currents `I = W ⊛ x (+ b)` for all frames of `x [T·B, …]` (reshaped first).
    pub fn current<'t>(&self, tape: &'t Tape, x: &Var<'t>) -> Var<'t> {
        let w = tape.param(&self.weight);
        let b = self.bias.as_ref().map(|b| tape.param(b));
        self.synapse.apply(&self.input.apply(x), &w, b.as_ref())
    }

    /// Spikes and leaky cumulative potential `(s, c)` of the layer for inputs
    /// `x [T·B, …]` over `steps = T` time steps.
    pub fn forward<'t>(&self, tape: &'t Tape, x: &Var<'t>, steps: usize) -> (Var<'t>, Var<'t>) {
        lif(&self.current(tape, x), steps, &self.neuron)
    }

    /// Spikes `[T·B, …]` and last-step potential `C = c[T−1]` `[B, …]` (see
    /// [`crate::lif::lif_final`]).
    pub fn forward_final<'t>(
        &self,
        tape: &'t Tape,
        x: &Var<'t>,
        steps: usize,
    ) -> (Var<'t>, Var<'t>) {
        lif_final(&self.current(tape, x), steps, &self.neuron)
    }

    /// One time tile of the layer: `steps` steps of inputs `x [steps·B, …]` (see
    /// [`lif_tile`] for what `options` choose and what it gives), the spikes shaped as the
    /// input of a next layer that reshapes its input as `next` does (no copy there).
    pub fn forward_tile<'t>(
        &self,
        tape: &'t Tape,
        x: &Var<'t>,
        steps: usize,
        mut options: TileOptions<'_, 't>,
        next: Option<Reshape>,
    ) -> LifOutput<'t> {
        let current = self.current(tape, x);
        if let Some(next) = next {
            let rows = current.shape()[0];
            options.spikes_shape = Some([&[rows][..], &next.frame(&current.shape()[1..])].concat());
        }
        lif_tile(&current, steps, &self.neuron, options)
    }
}

/// `weight`, then `bias` if any: under the layer's name, `<name>.weight`.
impl Module for LifLayer {
    fn visit(&self, v: &mut Visitor<'_>) {
        v.param("weight", &self.weight);
        v.param("bias", self.bias.as_ref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::lif::reference::composed;
    use crate::nn::lif::tests::all_params;
    use autograd::Tensor;
    use autograd::gradcheck::random;

    /// Binary spikes with about `density` of them set.
    fn spikes(shape: &[usize], density: f32, seed: u64) -> Tensor {
        random(shape, 0.0, 1.0, seed).mapv(|u| f32::from(u8::from(u < density)))
    }

    /// The fused layer and the plain-op composition give the same spikes, potentials and
    /// weight and input gradients.
    fn check(layer: &LifLayer, input: Tensor, steps: usize) {
        let run = |fused: bool| {
            let tape = Tape::new();
            let x = tape.var(input.clone());
            let (s, c) = if fused {
                layer.forward(&tape, &x, steps)
            } else {
                composed(&layer.current(&tape, &x), steps, &layer.neuron)
            };
            let gs = tape.constant(random(s.shape(), -1.0, 1.0, 7));
            let gc = tape.constant(random(c.shape(), -1.0, 1.0, 8));
            layer.weight.zero_grad();
            let g = ((&s * &gs).sum() + (&c * &gc).sum()).backward();
            let gw = Tensor::clone(&layer.weight.grad().expect("weight gradient"));
            (
                s.value().clone(),
                gw,
                g.get(&x).expect("input gradient").clone(),
            )
        };
        let (s1, gw1, gx1) = run(true);
        let (s2, gw2, gx2) = run(false);
        assert_eq!(s1, s2, "{}: spikes differ", layer.name);
        for (a, b, what) in [(&gw1, &gw2, "weight"), (&gx1, &gx2, "input")] {
            let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            let err = a
                .iter()
                .zip(b)
                .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(
                err <= 1e-4 * scale,
                "{}: {what} gradient differs by {err}",
                layer.name
            );
        }
    }

    fn layer(name: &str, synapse: Synapse, w_shape: &[usize], neuron: LifParams) -> LifLayer {
        let weight = Parameter::new(format!("{name}.weight"), random(w_shape, -0.6, 0.8, 3));
        let bias = Some(Parameter::new(
            format!("{name}.bias"),
            random(&[w_shape[0]], 0.0, 0.2, 4),
        ));
        LifLayer {
            name: name.into(),
            weight,
            bias,
            synapse,
            input: Reshape::None,
            neuron,
        }
    }

    #[test]
    fn layers_match_the_composition_of_plain_ops() {
        let steps = 4;
        for (k, neuron) in all_params().into_iter().enumerate().step_by(3) {
            let conv = Synapse::Conv2d {
                stride: 1,
                padding: 1,
            };
            check(
                &layer("conv", conv, &[3, 2, 3, 3], neuron),
                spikes(&[steps * 2, 2, 5, 6], 0.3, k as u64),
                steps,
            );
            let convt = Synapse::ConvTranspose2d {
                stride: 2,
                padding: 1,
                output_padding: 1,
            };
            let mut l = layer("convt", convt, &[2, 3, 3, 3], neuron);
            l.bias = Some(Parameter::new("convt.bias", random(&[3], 0.0, 0.2, 5)));
            check(&l, spikes(&[steps * 2, 2, 4, 3], 0.3, 10 + k as u64), steps);
            check(
                &layer("fc", Synapse::Linear, &[7, 11], neuron),
                spikes(&[steps * 3, 11], 0.3, 20 + k as u64),
                steps,
            );
        }
    }
}
