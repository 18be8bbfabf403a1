//! The networks: the regularized spiking auto-encoder ([`Sae`]) of `model-spec.md`, its
//! non-spiking baselines ([`Ae`], [`Vae`]) with the same layer plan ([`plan`]), the LIF
//! op they are made of ([`lif`], [`layers`]) and what they are trained to minimize
//! ([`loss`]). A model maps images to an [`Output`] ([`autoencoder`]); it knows nothing
//! of training. [`Model`] is the one factory.

pub mod autoencoder;
pub mod baselines;
pub mod layers;
pub mod lif;
pub mod loss;
pub mod model;
pub mod plan;
pub mod sae;

pub use autoencoder::{AutoEncoder, LayerActivity, Output, Sampling};
pub use baselines::{Ae, Vae};
pub use loss::Objective;
pub use model::Model;
pub use sae::Sae;
