//! The layers every auto-encoder of a configuration is built from, in network order:
//! the encoder's convs shrink 28×28 step by step, one or more linear heads map the
//! flattened features to the latent code, `decoder_fc` maps it back, and the decoder's
//! transposed convs restore each size exactly (the last gives one channel, `output`).
//! The spiking model and the baselines differ only in the neurons and the heads.

use crate::config::Config;
use crate::nn::layers::{Reshape, Synapse};

/// One synaptic layer: its name, op, weight shape and what its input is reshaped to.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerPlan {
    /// The layer's name (`conv1`, `latent`, `decoder_fc`, `deconv1`, `output`, …).
    pub name: String,
    /// The synaptic op.
    pub synapse: Synapse,
    /// The weight's shape (`[C_out, C_in, k, k]`, `[C_in, C_out, k, k]` or `[out, in]`).
    pub weight: Vec<usize>,
    /// What the layer does to its input's frames first.
    pub input: Reshape,
}

impl LayerPlan {
    /// Output channels (or features): the length of a bias.
    pub fn outputs(&self) -> usize {
        match self.synapse {
            Synapse::ConvTranspose2d { .. } => self.weight[1],
            Synapse::Conv2d { .. } | Synapse::Linear => self.weight[0],
        }
    }

    /// Input channels (or features).
    pub fn inputs(&self) -> usize {
        match self.synapse {
            Synapse::ConvTranspose2d { .. } => self.weight[0],
            Synapse::Conv2d { .. } | Synapse::Linear => self.weight[1],
        }
    }
}

/// The layers of the network of `cfg` with latent heads named `heads` (`["latent"]`, or
/// `["mu", "logvar"]` for the VAE), in order: encoder convs, heads, `decoder_fc`,
/// decoder. Output padding of a transposed conv takes up what the encoder's floor
/// division dropped.
///
/// # Panics
/// If `cfg` does not validate.
pub fn layers(cfg: &Config, heads: &[&str]) -> Vec<LayerPlan> {
    let sides = cfg.feature_sides().expect("a validated configuration");
    let (k, stride, padding) = (cfg.kernel, cfg.stride, cfg.padding);
    let feature = [
        *cfg.channels.last().expect("validated"),
        sides[sides.len() - 1],
        sides[sides.len() - 1],
    ];
    let flat: usize = feature.iter().product();
    let layer = |name: String, synapse, weight: Vec<usize>, input| LayerPlan {
        name,
        synapse,
        weight,
        input,
    };
    let mut plan = vec![];
    let mut c_in = 1;
    for (i, &c_out) in cfg.channels.iter().enumerate() {
        let synapse = Synapse::Conv2d { stride, padding };
        plan.push(layer(
            format!("conv{}", i + 1),
            synapse,
            vec![c_out, c_in, k, k],
            Reshape::None,
        ));
        c_in = c_out;
    }
    for head in heads {
        plan.push(layer(
            head.to_string(),
            Synapse::Linear,
            vec![cfg.latent, flat],
            Reshape::Flatten,
        ));
    }
    plan.push(layer(
        "decoder_fc".into(),
        Synapse::Linear,
        vec![flat, cfg.latent],
        Reshape::None,
    ));
    let outs: Vec<usize> = cfg
        .channels
        .iter()
        .rev()
        .skip(1)
        .copied()
        .chain([1])
        .collect();
    let n = sides.len();
    for (i, &c_out) in outs.iter().enumerate() {
        let (from, to) = (sides[n - 1 - i], sides[n - 2 - i]);
        let output_padding = to + 2 * padding - ((from - 1) * stride + k);
        let synapse = Synapse::ConvTranspose2d {
            stride,
            padding,
            output_padding,
        };
        let name = if i + 1 == outs.len() {
            "output".into()
        } else {
            format!("deconv{}", i + 1)
        };
        let input = if i == 0 {
            Reshape::Map(feature)
        } else {
            Reshape::None
        };
        plan.push(layer(name, synapse, vec![c_in, c_out, k, k], input));
        c_in = c_out;
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paper_network() {
        let plan = layers(&Config::paper(), &["latent"]);
        let names: Vec<&str> = plan.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "conv1",
                "conv2",
                "latent",
                "decoder_fc",
                "deconv1",
                "output"
            ]
        );
        assert_eq!(plan[2].input, Reshape::Flatten);
        assert_eq!(plan[4].input, Reshape::Map([32, 20, 20]));
        assert_eq!(plan[4].outputs(), 16);
        assert_eq!(plan[5].weight, [16, 1, 5, 5]);
    }
}
