//! A tape-based reverse-mode automatic differentiation engine over `ndarray` (`f32`).
//!
//! ```
//! use autograd::{Parameter, Tape, Tensor};
//! use autograd::ndarray::IxDyn;
//!
//! let w = Parameter::new("w", Tensor::from_elem(IxDyn(&[3]), 2.0));
//! let tape = Tape::new();
//! let x = tape.constant(Tensor::from_shape_vec(IxDyn(&[3]), vec![1.0, 2.0, 3.0]).unwrap());
//! let loss = (&tape.param(&w) * &x).sum(); // Σ wᵢxᵢ
//! loss.backward();
//! assert_eq!(w.grad().unwrap().as_slice().unwrap(), &[1.0, 2.0, 3.0]);
//! ```
//!
//! - [`Tape`] records ops; [`Var`] is a value on it; [`Parameter`] a named trainable
//!   tensor that outlives tapes and accumulates its gradient (`Send + Sync`; its
//!   [`grad`](Parameter::grad) is a snapshot). One tape per forward pass; [`Tape::eval`]
//!   and [`Tape::no_grad`] record nothing.
//! - Ops are methods on [`Var`], listed [below](#ops); new ones with a hand-written
//!   backward are registered through [`Function`] and [`Tape::apply`].
//! - [`nn`] holds layers ([`nn::Linear`], [`nn::Conv2d`], [`nn::ConvTranspose2d`],
//!   [`nn::LayerNorm`], [`nn::BatchNorm`], [`nn::Sequential`]) and the [`nn::Module`]
//!   trait that names a model's parameters by path, collects, saves and loads them.
//! - [`gradcheck`] compares any graph's gradients with finite differences.
//! - [`optim`] holds SGD, Adam and AdamW over parameter groups, learning-rate schedules
//!   and gradient clipping; [`io`] saves and loads named parameters as safetensors.
//! - [`ndarray`] is re-exported, so `autograd::ndarray` is the version [`Tensor`] uses.
//!
//! # Ops
//!
//! Every op is a method (or an associated function, such as [`Var::concat`]) of [`Var`],
//! so all are documented on its page; each [`ops`] module describes one family. Binary
//! ops broadcast as NumPy does. An axis may count from the end (`x.softmax(-1)`, see
//! [`AxisIndex`]); [`Var::reshape`] infers one `-1` dimension; arithmetic takes a scalar
//! on either side (`2.0 * &x`, `1.0 - &x`, `x.add(1.0)`, see [`Operand`]).
//!
//! - **Elementwise and activations**: [`Var::exp`], [`Var::log`], [`Var::sqrt`],
//!   [`Var::powi`], [`Var::powf`], [`Var::square`], [`Var::abs`], [`Var::sin`],
//!   [`Var::cos`], [`Var::clamp`], [`Var::relu`], [`Var::leaky_relu`], [`Var::sigmoid`],
//!   [`Var::tanh`], [`Var::gelu`], [`Var::gelu_tanh`], [`Var::silu`], [`Var::softplus`],
//!   [`Var::softmax`], [`Var::log_softmax`], [`Var::logsumexp`], [`Var::where_cond`],
//!   [`Var::masked_fill`], [`Var::dropout`].
//! - **Arithmetic and broadcasting**: `+ − × ÷` and unary `−`, [`Var::add`],
//!   [`Var::sub`], [`Var::mul`], [`Var::div`], [`Var::neg`], [`Var::maximum`],
//!   [`Var::minimum`], [`Var::pow`], [`Var::add_scalar`], [`Var::mul_scalar`],
//!   [`Var::rsub_scalar`], [`Var::rdiv_scalar`].
//! - **Reductions**: [`Var::sum`], [`Var::mean`], [`Var::sum_axes`], [`Var::mean_axes`],
//!   [`Var::max_axis`], [`Var::min_axis`], [`Var::var`], [`Var::std`]; positions (not
//!   differentiable): [`Var::argmax`], [`Var::argmin`].
//! - **Shape and indexing**: [`Var::reshape`], [`Var::flatten`], [`Var::permute`],
//!   [`Var::transpose`], [`Var::slice_axis`], [`Var::concat`], [`Var::stack`],
//!   [`Var::index_select`], [`Var::gather`], [`Var::embedding`] (integer arguments as
//!   [`Indices`]).
//! - **Linear algebra**: [`Var::matmul`] (batched and broadcast, as `torch.matmul`),
//!   [`Var::linear`].
//! - **Convolution and pooling**: [`Var::conv2d`], [`Var::conv2d_with`],
//!   [`Var::conv_transpose2d`], [`Var::conv_transpose2d_with`], [`Var::conv1d`],
//!   [`Var::avg_pool2d`], [`Var::avg_pool2d_with`], [`Var::max_pool2d`],
//!   [`Var::max_pool2d_with`] (options: [`Conv2dOptions`], [`ConvTranspose2dOptions`],
//!   [`Conv1dOptions`], [`Pool2dOptions`]).
//! - **Normalization**: [`Var::layer_norm`], [`Var::batch_norm`] (running statistics in
//!   [`ops::norm::RunningStats`], mode [`ops::norm::BatchNormMode`]).
//! - **Losses**: [`Var::mse_loss`], [`Var::bce_loss`], [`Var::bce_with_logits`],
//!   [`Var::l1_loss`], [`Var::huber_loss`], [`Var::smooth_l1_loss`], [`Var::kl_normal`],
//!   [`Var::cross_entropy`], [`Var::cross_entropy_with`], [`Var::cross_entropy_soft`],
//!   [`Var::nll_loss`] (options: [`Reduction`], [`CrossEntropy`], [`NllLoss`],
//!   [`BceWithLogits`]).
//! - **Spiking helpers**: [`Var::grad_where_nonzero`] (the gradient is needed only where
//!   the value is nonzero, so linear and the convolutions compute their input gradient at
//!   the spikes only), [`Var::sum_blocks`] (sums a time-folded `[T·B, …]` over its steps
//!   without a copy); [`Var::detach`] cuts a value from the graph.
//! - **Layers** ([`nn`]): a model is a struct whose [`nn::Module::visit`] names its
//!   parameters, buffers and sub-modules; [`nn::Module::parameters`] hands an optimizer
//!   handles named by path (`encoder.conv1.weight`), [`nn::Module::save`] and
//!   [`nn::Module::load`] use the same paths; [`nn::Layer::forward`] is the one-input
//!   forward pass.
//!
//! Misuse (mismatched shapes, an axis out of range) panics with a message naming the op,
//! the shapes and the values, at the caller's line (`#[track_caller]`).
//! [`Var::backward`] panics when it cannot run; [`Var::try_backward`] returns the
//! [`BackwardError`] instead. The optimizers' state and [`io`] return typed errors
//! ([`OptimStateError`], [`io::IoError`]).
//!
//! # A training loop
//!
//! A two-layer perceptron learns three classes of points in the plane: parameters live
//! across steps, each step records a fresh tape, and Adam follows a warmup-then-cosine
//! learning-rate schedule.
//!
//! ```
//! use autograd::{Adam, CosineAnnealing, LinearWarmup, Optimizer, Parameter, Scheduler};
//! use autograd::{Tape, Tensor, Var, init};
//! use autograd::ndarray::IxDyn;
//! use rand::SeedableRng;
//! use rand::rngs::StdRng;
//!
//! struct Mlp {
//!     w1: Parameter,
//!     b1: Parameter,
//!     w2: Parameter,
//!     b2: Parameter,
//! }
//!
//! impl Mlp {
//!     fn new(inputs: usize, hidden: usize, classes: usize, rng: &mut StdRng) -> Self {
//!         Mlp {
//!             w1: Parameter::new("fc1.weight", init::default_uniform(&[hidden, inputs], rng)),
//!             b1: Parameter::new("fc1.bias", Tensor::zeros(IxDyn(&[hidden]))),
//!             w2: Parameter::new("fc2.weight", init::default_uniform(&[classes, hidden], rng)),
//!             b2: Parameter::new("fc2.bias", Tensor::zeros(IxDyn(&[classes]))),
//!         }
//!     }
//!
//!     fn params(&self) -> Vec<Parameter> {
//!         vec![self.w1.clone(), self.b1.clone(), self.w2.clone(), self.b2.clone()]
//!     }
//!
//!     /// Logits `[N, classes]` for inputs `[N, inputs]`. The output lives on the tape,
//!     /// so it borrows the tape's lifetime `'t` (see below).
//!     fn forward<'t>(&self, tape: &'t Tape, x: &Var<'t>) -> Var<'t> {
//!         let h = x.linear(&tape.param(&self.w1), Some(&tape.param(&self.b1))).relu();
//!         h.linear(&tape.param(&self.w2), Some(&tape.param(&self.b2)))
//!     }
//! }
//!
//! // Synthetic data: 3 classes split by two lines through the plane.
//! let mut rng = StdRng::seed_from_u64(0);
//! let points = init::uniform(&[128, 2], -1.0, 1.0, &mut rng);
//! let labels: Vec<usize> = points
//!     .outer_iter()
//!     .map(|p| if p[0] + p[1] > 0.5 { 0 } else if p[0] > p[1] { 1 } else { 2 })
//!     .collect();
//!
//! let model = Mlp::new(2, 16, 3, &mut rng);
//! let mut opt = Adam::new(model.params(), 0.05);
//! // 10 steps of warmup from lr/10, then a cosine down to lr/100 over 140 steps.
//! let mut scheduler = Scheduler::new(
//!     LinearWarmup::new(10, 0.1).then(CosineAnnealing::new(140, 0.01)),
//!     &mut opt,
//! );
//! let mut losses = Vec::new();
//! for _ in 0..150 {
//!     let tape = Tape::new(); // one tape per step
//!     let x = tape.constant(points.clone()); // data: no gradient
//!     let loss = model.forward(&tape, &x).cross_entropy(&labels);
//!     opt.zero_grad();
//!     loss.backward(); // gradients land in each Parameter's grad()
//!     opt.step();
//!     scheduler.step(&mut opt);
//!     losses.push(loss.item());
//! }
//! let (first, last) = (losses[0], losses[losses.len() - 1]);
//! assert!(last < 0.3 * first, "loss went from {first} to {last}");
//! ```
//!
//! **Why `forward` names its lifetime.** A [`Var<'t>`](Var) borrows the tape it lives on,
//! so a function that returns one must say which argument it borrows from. Written with
//! elided lifetimes, `fn forward(&self, tape: &Tape, x: &Var) -> Var`, the output would
//! borrow `self` (the elision rule for methods), not the tape, and the body does not
//! compile ("lifetime may not live long enough"); a free function with two borrowed
//! arguments does not even get that far ("missing lifetime specifier"). Tie the tape, the
//! inputs and the output to one `'t`:
//!
//! ```compile_fail
//! # use autograd::{Parameter, Tape, Var};
//! struct Layer {
//!     w: Parameter,
//! }
//! impl Layer {
//!     fn forward(&self, tape: &Tape, x: &Var) -> Var {
//!         x.linear(&tape.param(&self.w), None) // error: the result borrows `tape`, not `self`
//!     }
//! }
//! ```
//!
//! # Your own ops
//!
//! An op with a hand-written backward implements [`Function`] (forward may return several
//! outputs; backward gets each output's gradient) and is recorded with [`Tape::apply`],
//! whose documentation has a complete example; `examples/custom_op.rs` is a two-input,
//! two-output one. Check it with [`gradcheck`], as below.
//!
//! # Checking a surrogate gradient
//!
//! A spike `s = H(v)` (Heaviside: 1 where `v > 0`) has derivative zero almost everywhere,
//! so spiking networks train through a *surrogate*: backward uses the derivative of a
//! smooth stand-in instead, here the fast sigmoid's `1/(1 + k|v|)²`. A finite-difference
//! check of the true forward cannot confirm it: the numeric gradient of `H` is zero (or
//! huge across the step). What can be checked is that the backward is the exact
//! derivative of the smooth function it claims: `v/(1 + k|v|)`. So the op keeps its
//! forward and its surrogate as a (primitive, derivative) pair, and the check runs the op
//! with the primitive as forward; the spiking op shares the same backward.
//!
//! ```
//! use std::sync::Arc;
//! use autograd::{Function, GradCheck, Tape, Tensor, Var, assert_gradients};
//! use autograd::gradcheck::random;
//!
//! /// `s = H(v)` forward, the fast-sigmoid surrogate `1/(1 + k|v|)²` backward. With
//! /// `smooth`, forward is the surrogate's primitive `v/(1 + k|v|)` instead, to check it.
//! struct Spike {
//!     k: f32,
//!     smooth: bool,
//!     v: Option<Arc<Tensor>>,
//! }
//!
//! impl Function for Spike {
//!     fn name(&self) -> &str {
//!         "spike"
//!     }
//!     fn forward(&mut self, inputs: &[Arc<Tensor>], record: bool) -> Vec<Tensor> {
//!         let (v, k) = (&inputs[0], self.k);
//!         if record {
//!             self.v = Some(v.clone());
//!         }
//!         let s = if self.smooth {
//!             v.mapv(|v| v / (1.0 + k * v.abs()))
//!         } else {
//!             v.mapv(|v| if v > 0.0 { 1.0 } else { 0.0 })
//!         };
//!         vec![s]
//!     }
//!     fn backward(self: Box<Self>, g: Vec<Option<Tensor>>, _: &[bool]) -> Vec<Option<Tensor>> {
//!         let (v, k) = (self.v.expect("saved by forward"), self.k);
//!         let g = g.into_iter().next().flatten().expect("one output");
//!         vec![Some(g * &v.mapv(|v| 1.0 / (1.0 + k * v.abs()).powi(2)))]
//!     }
//! }
//!
//! fn spike<'t>(v: &Var<'t>, k: f32, smooth: bool) -> Var<'t> {
//!     v.tape().apply(Spike { k, smooth, v: None }, &[v]).remove(0)
//! }
//!
//! let v = random(&[4, 5], -2.0, 2.0, 0);
//! // The backward is the derivative of the primitive: this passes.
//! assert_gradients(vec![v.clone()], |x| spike(&x[0], 4.0, true));
//! // Against the Heaviside forward it fails, as it should: the numeric gradient is 0.
//! let report = GradCheck::default().run(vec![v.clone()], |x| spike(&x[0], 4.0, false));
//! assert!(!report.passed);
//!
//! // In the network: binary spikes forward, the surrogate backward.
//! let tape = Tape::new();
//! let vv = tape.var(v);
//! let s = spike(&vv, 4.0, false);
//! assert!(s.value().iter().all(|&s| s == 0.0 || s == 1.0));
//! let grads = s.sum().backward();
//! assert!(grads.get(&vv).unwrap().iter().all(|&g| g > 0.0));
//! ```

#![warn(missing_docs)]

pub mod axis;
pub mod bits;
pub mod gradcheck;
pub mod init;
pub mod io;
pub mod memory;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod tape;
pub mod tensor;

pub use axis::{AxisIndex, ReshapeDim};
pub use bits::{BitTensor, Value};
pub use gradcheck::{GradCheck, GradCheckReport, assert_gradients};
/// The array crate our tensors come from, re-exported so users need not pin its version.
pub use ndarray;
pub use ops::arith::Operand;
pub use ops::conv::{Conv1dOptions, Conv2dOptions, ConvTranspose2dOptions};
pub use ops::index::Indices;
pub use ops::loss::{BceWithLogits, CrossEntropy, NllLoss, Reduction};
pub use ops::pool::Pool2dOptions;
pub use optim::{
    Adam, CosineAnnealing, LinearWarmup, LrSchedule, OptimStateError, Optimizer, ParamGroup,
    Scheduler, Sgd, StepLr,
};
pub use tape::{BackwardError, BackwardFn, Function, Gradients, OpTime, Parameter, Tape, Var};
pub use tensor::Tensor;

/// The README's Rust examples, compiled and run by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
