//! Layers and the models built from them: a [`Module`] names its parameters, buffers
//! and child modules through a [`Visitor`], so a struct of layers yields hierarchical
//! names (`encoder.conv1.weight`), collected for an optimizer, counted, saved and
//! loaded by those names; a [`Layer`] adds a forward pass of one input.
//!
//! - [`Linear`], [`Conv2d`], [`ConvTranspose2d`]: PyTorch's default initialization.
//! - [`LayerNorm`], [`BatchNorm`] (with running statistics as buffers and a [`Mode`]).
//! - [`Sequential`]: a chain of boxed layers and functions.
//!
//! A model is a plain struct: [`Module::visit`] names its parts, [`Layer::forward`]
//! runs them. Write the forward pass with the tape lifetime spelled out,
//! `fn forward<'t>(&self, x: &Var<'t>) -> Var<'t>` (the elided form does not compile).
//!
//! ```
//! use autograd::nn::{Layer, Linear, Module, Visitor};
//! use autograd::{Adam, Optimizer, Tape, Tensor, Var};
//! use ndarray::IxDyn;
//! use rand::SeedableRng;
//! use rand::rngs::StdRng;
//!
//! /// A perceptron with one hidden layer.
//! struct Mlp {
//!     hidden: Linear,
//!     out: Linear,
//! }
//!
//! impl Mlp {
//!     fn new(seed: u64) -> Self {
//!         let rng = &mut StdRng::seed_from_u64(seed);
//!         Mlp {
//!             hidden: Linear::new(2, 16, true, rng),
//!             out: Linear::new(16, 1, true, rng),
//!         }
//!     }
//! }
//!
//! impl Module for Mlp {
//!     fn visit(&self, v: &mut Visitor<'_>) {
//!         v.child("hidden", &self.hidden);
//!         v.child("out", &self.out);
//!     }
//! }
//!
//! impl Layer for Mlp {
//!     fn forward<'t>(&self, x: &Var<'t>) -> Var<'t> {
//!         self.out.forward(&self.hidden.forward(x).tanh())
//!     }
//! }
//!
//! let net = Mlp::new(0);
//! let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
//! assert_eq!(names, ["hidden.weight", "hidden.bias", "out.weight", "out.bias"]);
//! assert_eq!(net.num_parameters(), 2 * 16 + 16 + 16 + 1);
//!
//! // Learn y = x₀·x₁ on the four corners of the square.
//! let x = Tensor::from_shape_vec(IxDyn(&[4, 2]), vec![-1., -1., -1., 1., 1., -1., 1., 1.])?;
//! let y = Tensor::from_shape_vec(IxDyn(&[4, 1]), vec![1., -1., -1., 1.])?;
//! let loss = |tape: &Tape| -> f32 {
//!     let pred = net.forward(&tape.constant(x.clone()));
//!     let loss = pred.mse_loss(&tape.constant(y.clone()));
//!     if tape.is_recording() {
//!         loss.backward();
//!     }
//!     loss.item()
//! };
//! let before = loss(&Tape::eval());
//! let mut opt = Adam::new(net.parameters(), 0.05);
//! for _ in 0..100 {
//!     opt.zero_grad();
//!     loss(&Tape::new());
//!     opt.step();
//! }
//! let after = loss(&Tape::eval());
//! assert!(after < 0.05 * before, "{before} → {after}");
//!
//! // Saved by path; loaded into a differently initialized copy.
//! let path = std::env::temp_dir().join(format!("mlp-{}.safetensors", std::process::id()));
//! net.save(&path)?;
//! let copy = Mlp::new(1);
//! copy.load(&path)?;
//! assert_eq!(*copy.out.weight.value(), *net.out.weight.value());
//! std::fs::remove_file(&path)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Names
//! A built-in layer makes its parameters with their local names (`weight`, `bias`), so
//! layers are built without names; a walk of the tree hands out each parameter under its
//! path ([`Parameter::renamed`](crate::Parameter::renamed): another handle to the same
//! value and gradient). So [`Module::parameters`] gives an optimizer path-named handles,
//! and its saved state ([`Optimizer::state`](crate::Optimizer::state)) is keyed by the
//! same paths as [`Module::save`] — two layers' `weight`s never collide.

pub mod conv;
pub mod linear;
pub mod module;
pub mod norm;
pub mod sequential;

pub use conv::{Conv2d, ConvTranspose2d};
pub use linear::Linear;
pub use module::{Entry, Layer, Mode, Module, Visitor};
pub use norm::{BatchNorm, LayerNorm};
pub use sequential::Sequential;
