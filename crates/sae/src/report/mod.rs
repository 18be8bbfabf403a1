//! What a run reports beyond its loss: spike statistics ([`spikes`]), the latent code's
//! class structure ([`latent`]), synaptic operations and energy ([`energy`]), the typed
//! evaluation that `eval.json` holds ([`evaluation`]) and the figures ([`figures`]).

pub mod energy;
pub mod evaluation;
pub mod figures;
pub mod latent;
pub mod spikes;
