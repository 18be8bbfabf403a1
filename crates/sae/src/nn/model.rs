//! The model a configuration names, built from its seed: the one factory.

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::config::{Config, ModelKind};
use crate::nn::autoencoder::AutoEncoder;
use crate::nn::baselines::{Ae, Vae};
use crate::nn::sae::Sae;

/// The model a configuration names.
#[derive(Clone, Debug)]
pub enum Model {
    /// The spiking auto-encoder.
    Sae(Sae),
    /// The conv auto-encoder baseline.
    Ae(Ae),
    /// The conv VAE baseline.
    Vae(Vae),
}

impl Model {
    /// The model `cfg.model` names, initialized from `StdRng::seed_from_u64(cfg.seed)`.
    ///
    /// # Panics
    /// If `cfg` does not validate.
    pub fn new(cfg: &Config) -> Self {
        let rng = &mut StdRng::seed_from_u64(cfg.seed);
        match cfg.model {
            ModelKind::Sae => Model::Sae(Sae::new(cfg, rng)),
            ModelKind::Ae => Model::Ae(Ae::new(cfg, rng)),
            ModelKind::Vae => Model::Vae(Vae::new(cfg, rng)),
        }
    }

    /// The model behind the common interface.
    pub fn net(&self) -> &dyn AutoEncoder {
        match self {
            Model::Sae(m) => m,
            Model::Ae(m) => m,
            Model::Vae(m) => m,
        }
    }

    /// The spiking model, if it is one.
    pub fn spiking(&self) -> Option<&Sae> {
        match self {
            Model::Sae(m) => Some(m),
            _ => None,
        }
    }
}
