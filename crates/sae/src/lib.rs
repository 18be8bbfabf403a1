//! The regularized spiking convolutional auto-encoder: MNIST data, model, training, metrics.

#![warn(missing_docs)]

pub mod baselines;
pub mod cli;
pub mod config;
pub mod data;
pub mod experiment;
pub mod layers;
pub mod lif;
pub mod metrics;
pub mod model;
pub mod plots;
pub mod train;
