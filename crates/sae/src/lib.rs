//! The regularized spiking convolutional auto-encoder: MNIST data, model, training, metrics.

#![warn(missing_docs)]

pub mod data;
pub mod layers;
pub mod lif;
