//! The regularized spiking convolutional auto-encoder: MNIST data, the models, training
//! runs, their reports, the paper's study and the `sae` command line.
//!
//! Imports point one way: [`cli`] → [`study`], [`export`] → [`run`] → [`nn`], [`data`], [`report`],
//! [`seeds`], [`cluster`] → [`config`]. `ARCHITECTURE.md` at the workspace root has the map.

#![warn(missing_docs)]

pub mod cli;
pub mod cluster;
pub mod config;
pub mod data;
pub mod export;
pub mod nn;
pub mod report;
pub mod run;
pub mod seeds;
pub mod study;
