//! The regularized spiking convolutional auto-encoder: MNIST data, model, training, metrics.

pub mod data;
