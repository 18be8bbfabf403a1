//! 2-D convolution layers over `[N, C, H, W]`: PyTorch's `nn.Conv2d` and
//! `nn.ConvTranspose2d`, square kernels, one stride and padding for both axes.

use rand::Rng;

use crate::nn::{Layer, Module, Visitor};
use crate::{Parameter, Var, init};

/// `W [C_out, C_in, k, k]` and an optional `b [C_out]` of PyTorch's default init, drawn
/// from `rng` in that order.
fn weight_and_bias(
    shape: [usize; 4],
    outputs: usize,
    bias: bool,
    rng: &mut impl Rng,
) -> (Parameter, Option<Parameter>) {
    let weight = Parameter::new("weight", init::default_uniform(&shape, rng));
    let bias = bias.then(|| Parameter::new("bias", init::default_bias(outputs, &shape, rng)));
    (weight, bias)
}

/// `conv2d(x, W) + b` ([`Var::conv2d`]).
#[derive(Clone, Debug)]
pub struct Conv2d {
    /// `W [C_out, C_in, k, k]`.
    pub weight: Parameter,
    /// `b [C_out]`, if the layer has one.
    pub bias: Option<Parameter>,
    /// Step between windows, on both axes.
    pub stride: usize,
    /// Zeros added on each side of both axes.
    pub padding: usize,
}

impl Conv2d {
    /// A `kernel × kernel` convolution from `in_channels` to `out_channels`, stride 1,
    /// no padding, initialized as PyTorch does ([`init::default_uniform`], then
    /// [`init::default_bias`] if `bias`). The parameters are named `weight` and `bias`.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        bias: bool,
        rng: &mut impl Rng,
    ) -> Self {
        let shape = [out_channels, in_channels, kernel, kernel];
        let (weight, bias) = weight_and_bias(shape, out_channels, bias, rng);
        Conv2d {
            weight,
            bias,
            stride: 1,
            padding: 0,
        }
    }

    /// The same layer with stride `stride`.
    pub fn with_stride(self, stride: usize) -> Self {
        Conv2d { stride, ..self }
    }

    /// The same layer with zero padding `padding`.
    pub fn with_padding(self, padding: usize) -> Self {
        Conv2d { padding, ..self }
    }
}

impl Module for Conv2d {
    fn visit(&self, v: &mut Visitor<'_>) {
        v.param("weight", &self.weight);
        v.param("bias", self.bias.as_ref());
    }
}

impl Layer for Conv2d {
    fn forward<'t>(&self, x: &Var<'t>) -> Var<'t> {
        let tape = x.tape();
        let b = self.bias.as_ref().map(|b| tape.param(b));
        x.conv2d(
            &tape.param(&self.weight),
            b.as_ref(),
            self.stride,
            self.padding,
        )
    }
}

/// `conv_transpose2d(x, W) + b` ([`Var::conv_transpose2d`]), the adjoint of a
/// [`Conv2d`] of the same geometry: with `output_padding` it restores the size the
/// convolution's floor division dropped.
#[derive(Clone, Debug)]
pub struct ConvTranspose2d {
    /// `W [C_in, C_out, k, k]`.
    pub weight: Parameter,
    /// `b [C_out]`, if the layer has one.
    pub bias: Option<Parameter>,
    /// Step between input pixels in the output, on both axes.
    pub stride: usize,
    /// Rows and columns removed from each side of the output.
    pub padding: usize,
    /// Rows and columns added to one side of the output (less than `stride`).
    pub output_padding: usize,
}

impl ConvTranspose2d {
    /// A `kernel × kernel` transposed convolution from `in_channels` to
    /// `out_channels`, stride 1, no padding, initialized as PyTorch does (its fan-in is
    /// `C_out·k²`, [`init::fan_in`]). The parameters are named `weight` and `bias`.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        bias: bool,
        rng: &mut impl Rng,
    ) -> Self {
        let shape = [in_channels, out_channels, kernel, kernel];
        let (weight, bias) = weight_and_bias(shape, out_channels, bias, rng);
        ConvTranspose2d {
            weight,
            bias,
            stride: 1,
            padding: 0,
            output_padding: 0,
        }
    }

    /// The same layer with stride `stride`.
    pub fn with_stride(self, stride: usize) -> Self {
        ConvTranspose2d { stride, ..self }
    }

    /// The same layer with padding `padding`.
    pub fn with_padding(self, padding: usize) -> Self {
        ConvTranspose2d { padding, ..self }
    }

    /// The same layer with output padding `output_padding`.
    pub fn with_output_padding(self, output_padding: usize) -> Self {
        ConvTranspose2d {
            output_padding,
            ..self
        }
    }
}

impl Module for ConvTranspose2d {
    fn visit(&self, v: &mut Visitor<'_>) {
        v.param("weight", &self.weight);
        v.param("bias", self.bias.as_ref());
    }
}

impl Layer for ConvTranspose2d {
    fn forward<'t>(&self, x: &Var<'t>) -> Var<'t> {
        let tape = x.tape();
        let b = self.bias.as_ref().map(|b| tape.param(b));
        x.conv_transpose2d(
            &tape.param(&self.weight),
            b.as_ref(),
            self.stride,
            self.padding,
            self.output_padding,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tape;
    use crate::gradcheck::random;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn shapes_and_initialization() {
        let rng = &mut StdRng::seed_from_u64(3);
        let conv = Conv2d::new(2, 4, 3, true, rng);
        assert_eq!(conv.weight.shape(), [4, 2, 3, 3]);
        assert_eq!(conv.bias.as_ref().unwrap().shape(), [4]);
        let convt = ConvTranspose2d::new(4, 2, 3, true, rng);
        assert_eq!(convt.weight.shape(), [4, 2, 3, 3]);
        assert_eq!(convt.bias.as_ref().unwrap().shape(), [2]);
        // PyTorch's fan-in of a transposed conv is C_out·k² = 18, not C_in·k² = 36.
        let (w, b) = (convt.weight.value(), convt.bias.as_ref().unwrap().value());
        let largest = w.iter().chain(b.iter()).fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(largest <= 1.0 / 18f32.sqrt() && largest > 1.0 / 36f32.sqrt());
    }

    #[test]
    fn a_strided_conv_and_its_transpose_restore_the_size() {
        let rng = &mut StdRng::seed_from_u64(4);
        let down = Conv2d::new(1, 3, 3, true, rng)
            .with_stride(2)
            .with_padding(1);
        let up = ConvTranspose2d::new(3, 1, 3, false, rng)
            .with_stride(2)
            .with_padding(1)
            .with_output_padding(1);
        let tape = Tape::new();
        let x = tape.constant(random(&[2, 1, 8, 6], -1.0, 1.0, 5));
        let h = down.forward(&x);
        assert_eq!(h.shape(), [2, 3, 4, 3]);
        let w = tape.constant((*down.weight.value()).clone());
        let b = tape.constant((*down.bias.as_ref().unwrap().value()).clone());
        assert_eq!(h.value(), x.conv2d(&w, Some(&b), 2, 1).value());
        let y = up.forward(&h);
        assert_eq!(y.shape(), [2, 1, 8, 6]);
        y.sum().backward();
        assert!(down.weight.grad().is_some() && up.weight.grad().is_some());
    }
}
