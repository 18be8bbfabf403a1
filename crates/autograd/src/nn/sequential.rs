//! A chain of layers, each fed the previous one's output: PyTorch's `nn.Sequential`.

use std::fmt;

use crate::Var;
use crate::nn::{Layer, Module, Visitor};

/// Layers applied in order; their entries are named by position (`0.weight`,
/// `2.running_mean`, …), functions counting as positions too, as in PyTorch.
///
/// ```
/// use autograd::nn::{BatchNorm, Conv2d, Layer, Linear, Module, Sequential};
/// use autograd::{Tape, Tensor};
/// use rand::SeedableRng;
///
/// let rng = &mut rand::rngs::StdRng::seed_from_u64(0);
/// let net = Sequential::new()
///     .push(Conv2d::new(1, 4, 3, false, rng).with_padding(1))
///     .push(BatchNorm::new(4, true))
///     .push_fn(|x| x.relu().flatten())
///     .push(Linear::new(4 * 8 * 8, 10, true, rng));
/// let tape = Tape::new();
/// let y = net.forward(&tape.constant(Tensor::ones(ndarray::IxDyn(&[2, 1, 8, 8]))));
/// assert_eq!(y.shape(), [2, 10]);
/// let names: Vec<String> = net.state().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(
///     names,
///     ["0.weight", "1.weight", "1.bias", "1.running_mean", "1.running_var", "3.weight", "3.bias"]
/// );
/// net.set_training(false); // batch norm now uses its running statistics
/// ```
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Layer>>,
}

impl Sequential {
    /// An empty chain (the identity).
    pub fn new() -> Self {
        Self::default()
    }

    /// The chain with `layer` appended.
    pub fn push(mut self, layer: impl Layer + 'static) -> Self {
        self.layers.push(Box::new(layer));
        self
    }

    /// The chain with a function of no parameters appended (an activation, a reshape).
    pub fn push_fn(self, f: impl for<'t> Fn(&Var<'t>) -> Var<'t> + 'static) -> Self {
        self.push(Function(f))
    }

    /// The number of layers and functions.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether the chain is empty.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl fmt::Debug for Sequential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sequential")
            .field("layers", &self.layers.len())
            .field("parameters", &self.num_parameters())
            .finish()
    }
}

impl Module for Sequential {
    fn visit(&self, v: &mut Visitor<'_>) {
        self.layers.visit(v);
    }
}

impl Layer for Sequential {
    fn forward<'t>(&self, x: &Var<'t>) -> Var<'t> {
        self.layers
            .iter()
            .fold(x.clone(), |h, layer| layer.forward(&h))
    }
}

/// A function as a layer without parameters.
struct Function<F>(F);

impl<F> Module for Function<F> {
    fn visit(&self, _: &mut Visitor<'_>) {}
}

impl<F: for<'t> Fn(&Var<'t>) -> Var<'t>> Layer for Function<F> {
    fn forward<'t>(&self, x: &Var<'t>) -> Var<'t> {
        (self.0)(x)
    }
}
