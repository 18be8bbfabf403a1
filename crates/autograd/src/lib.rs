//! A tape-based reverse-mode automatic differentiation engine over `ndarray` (`f32`).
//!
//! ```
//! use autograd::{Parameter, Tape, Tensor};
//! use ndarray::IxDyn;
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
//!   tensor that outlives tapes and accumulates its gradient.
//! - Ops are methods on [`Var`] (see [`ops`]); new ones with a hand-written backward are
//!   registered through [`Function`] and [`Tape::apply`].
//! - [`nn`] holds layers (linear, conv, norms) and the [`nn::Module`] trait that names
//!   a model's parameters hierarchically, collects, saves and loads them.
//! - [`gradcheck`] compares any graph's gradients with finite differences.
//! - [`optim`] holds SGD, Adam and AdamW over parameter groups, learning-rate schedules
//!   and gradient clipping; [`io`] saves and loads named parameters as safetensors.

#![warn(missing_docs)]

pub mod axis;
pub mod gradcheck;
pub mod init;
pub mod io;
pub mod memory;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod tape;
pub mod tensor;

pub use axis::AxisIndex;
pub use gradcheck::{GradCheck, GradCheckReport, assert_gradients};
/// The array crate our tensors come from, re-exported so users need not pin its version.
pub use ndarray;
pub use ops::arith::Operand;
pub use optim::{Adam, Optimizer, ParamGroup, Sgd};
pub use tape::{BackwardError, BackwardFn, Function, Gradients, OpTime, Parameter, Tape, Var};
pub use tensor::Tensor;
