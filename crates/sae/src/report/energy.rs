//! Synaptic operations of a spiking model per image next to the dense network's MACs,
//! and the energy estimate at [`PJ_PER_SOP`] per accumulate and [`PJ_PER_MAC`] per MAC.

use crate::config::Encoder;
use crate::nn::Sae;
use crate::nn::layers::Synapse;
use crate::report::spikes::SpikeStats;

/// Energy of one synaptic accumulate (a spike arriving at one synapse), picojoules.
pub const PJ_PER_SOP: f64 = 0.9;
/// Energy of one multiply-accumulate, picojoules.
pub const PJ_PER_MAC: f64 = 4.6;

/// Synaptic operations and energy of a spiking model on the evaluation set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EnergyReport {
    /// Synaptic operations (accumulates) per image: over layers and time steps, every
    /// spike arriving at a layer's input times that input neuron's fan-out.
    pub sops_per_image: f64,
    /// Multiply-accumulates of the spiking model per image: nonzero analog inputs times
    /// their fan-out; only the first layer under the `current` encoder, otherwise 0.
    pub snn_macs_per_image: f64,
    /// MACs per image of the same network run densely for all `T` steps
    /// (`T · dense_macs_per_frame`).
    pub dense_macs_per_image: f64,
    /// MACs of the non-spiking network of the same shapes on one frame (`T = 1`).
    pub dense_macs_per_frame: f64,
    /// `(sops · PJ_PER_SOP + snn_macs · PJ_PER_MAC)` per image, in microjoules.
    pub snn_energy_uj: f64,
    /// `dense_macs_per_frame · PJ_PER_MAC` per image, in microjoules.
    pub ann_energy_uj: f64,
}

/// Synaptic operations and energy of `net` from the spike counts `stats` accumulated
/// over its evaluation (the encoded input first, then every layer, as [`Sae::run`](crate::nn::Sae::run)
/// reports them).
///
/// Fan-out is exact per input neuron, borders included: a conv input pixel reaches
/// `C_out` times the number of output positions whose window covers it, a transposed
/// conv input pixel `C_out` times the number of its `k × k` output positions that fall
/// inside the (cropped) output, a linear input `out_features` neurons. The output
/// layer's spikes feed nothing and are not counted. The dense MACs count the same
/// connections (the number of weight uses of one frame, padding zeros excluded), so an
/// input where every neuron spikes at every step has exactly as many synaptic operations
/// as the dense network has MACs. Biases are not counted.
///
/// # Panics
/// If `stats` is empty, or its layers or time steps do not match `net`.
pub fn energy(net: &Sae, stats: &SpikeStats) -> EnergyReport {
    assert!(
        stats.images > 0 && stats.layers.len() == net.layers.len() + 1 && stats.steps == net.steps,
        "energy: spike statistics of {} layers, {} images, T = {} do not fit a network of \
         {} layers (plus input), T = {}",
        stats.layers.len(),
        stats.images,
        stats.steps,
        net.layers.len(),
        net.steps
    );
    let work = layer_work(net, stats);
    let (mut sops, mut snn_macs) = (0.0f64, 0.0f64);
    for (i, w) in work.iter().enumerate() {
        if i == 0 && net.encoder == Encoder::Current {
            snn_macs += w.ops;
        } else {
            sops += w.ops;
        }
    }
    let images = stats.images as f64;
    let (sops, snn_macs) = (sops / images, snn_macs / images);
    let dense: f64 = work.iter().map(|w| w.dense_macs_per_frame).sum();
    EnergyReport {
        sops_per_image: sops,
        snn_macs_per_image: snn_macs,
        dense_macs_per_image: dense * net.steps as f64,
        dense_macs_per_frame: dense,
        snn_energy_uj: (sops * PJ_PER_SOP + snn_macs * PJ_PER_MAC) * 1e-6,
        ann_energy_uj: dense * PJ_PER_MAC * 1e-6,
    }
}

/// One synaptic layer's work on the images of a [`SpikeStats`] (all `T` steps): what
/// arrived at its input times the fan-out (synaptic operations; multiply-accumulates for
/// analog input), and the MACs of the same connections run densely on one frame.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerWork {
    /// The layer whose input this is.
    pub layer: String,
    /// Inputs that arrived (nonzero) times their fan-out, over all the images.
    pub ops: f64,
    /// Every connection once: the dense MACs of one frame.
    pub dense_macs_per_frame: f64,
}

/// Per synaptic layer of `net`, its work on the spike counts `stats` (see [`energy`]).
///
/// # Panics
/// As [`energy`].
pub fn layer_work(net: &Sae, stats: &SpikeStats) -> Vec<LayerWork> {
    net.layers
        .iter()
        .zip(&stats.layers)
        .map(|(layer, input)| {
            let frame = layer.input.frame(&input.shape);
            let fan = fan_out(layer.synapse, &layer.weight.shape(), &frame);
            let ops: f64 = fan
                .iter()
                .zip(&input.events)
                .map(|(&f, &e)| f as f64 * e as f64)
                .sum();
            LayerWork {
                layer: layer.name.clone(),
                ops,
                dense_macs_per_frame: fan.iter().map(|&f| f as f64).sum(),
            }
        })
        .collect()
}

/// Per input neuron of a layer with input frames of `input` shape, the number of output
/// neurons it connects to (see [`energy`]), in the input's row-major order.
///
/// # Panics
/// If the input shape does not fit the weight.
pub fn fan_out(synapse: Synapse, weight: &[usize], input: &[usize]) -> Vec<u64> {
    let n: usize = input.iter().product();
    let spatial = |c_in: usize, c_out: usize, per_dim: &dyn Fn(usize, usize) -> Vec<u64>| {
        assert!(
            input.len() == 3 && input[0] == c_in && weight.len() == 4,
            "fan_out: input {input:?} does not fit weight {weight:?}"
        );
        let (fh, fw) = (per_dim(input[1], weight[2]), per_dim(input[2], weight[3]));
        let mut out = Vec::with_capacity(n);
        for _ in 0..c_in {
            for &h in &fh {
                out.extend(fw.iter().map(|&w| c_out as u64 * h * w));
            }
        }
        out
    };
    match synapse {
        Synapse::Linear => {
            assert!(
                weight.len() == 2 && weight[1] == n,
                "fan_out: input {input:?} does not fit linear weight {weight:?}"
            );
            vec![weight[0] as u64; n]
        }
        Synapse::Conv2d { stride, padding } => spatial(weight[1], weight[0], &|size, k| {
            let out = (size + 2 * padding - k) / stride + 1;
            // Output position o covers input rows o·s − p … o·s − p + k − 1.
            (0..size)
                .map(|i| {
                    (0..out)
                        .filter(|&o| (o * stride..o * stride + k).contains(&(i + padding)))
                        .count() as u64
                })
                .collect()
        }),
        Synapse::ConvTranspose2d {
            stride,
            padding,
            output_padding,
        } => spatial(weight[0], weight[1], &|size, k| {
            let out = (size - 1) * stride + k + output_padding - 2 * padding;
            // Input i reaches output rows i·s − p + r, r < k, those inside [0, out).
            (0..size)
                .map(|i| {
                    (0..k)
                        .filter(|&r| (padding..padding + out).contains(&(i * stride + r)))
                        .count() as u64
                })
                .collect()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::nn::{AutoEncoder, Sampling};
    use autograd::{Tape, Tensor};
    use ndarray::IxDyn;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn tiny() -> Sae {
        let cfg = Config {
            steps: 4,
            channels: vec![2, 3],
            latent: 5,
            ..Config::quick()
        };
        Sae::new(&cfg, &mut StdRng::seed_from_u64(0))
    }

    /// Frame shapes of the tiny network's input and layers.
    const TINY_SHAPES: [&[usize]; 7] = [
        &[1, 28, 28],
        &[2, 24, 24],
        &[3, 20, 20],
        &[5],
        &[1200],
        &[2, 24, 24],
        &[1, 28, 28],
    ];

    #[test]
    fn energy_of_all_ones_is_the_hand_count() {
        let net = tiny();
        let (t, b) = (4, 2);
        let ones: Vec<Tensor> = TINY_SHAPES
            .iter()
            .map(|s| Tensor::ones(IxDyn(&[&[t * b][..], s].concat())))
            .collect();
        let names = [
            "input",
            "conv1",
            "conv2",
            "latent",
            "decoder_fc",
            "deconv1",
            "output",
        ];
        let layers: Vec<(&str, &Tensor)> = names.iter().copied().zip(&ones).collect();
        let mut stats = SpikeStats::new(t);
        stats.add_tensors(&layers, b);
        stats.add_tensors(&layers, b);
        // Per frame, every weight used once per output position (no padding):
        //   conv1   1→2,  k5, 24×24 outputs: 24²·2·1·25 = 28 800
        //   conv2   2→3,  k5, 20×20 outputs: 20²·3·2·25 = 60 000
        //   latent  1200→5:                               6 000
        //   dec_fc  5→1200:                               6 000
        //   deconv1 3→2,  k5, 20×20 inputs:  20²·3·2·25 = 60 000
        //   output  2→1,  k5, 24×24 inputs:  24²·2·1·25 = 28 800
        let frame = 28_800.0 + 60_000.0 + 6_000.0 + 6_000.0 + 60_000.0 + 28_800.0;
        let e = energy(&net, &stats);
        assert_eq!(e.dense_macs_per_frame, frame);
        assert_eq!(e.dense_macs_per_image, 4.0 * frame);
        assert_eq!(e.sops_per_image, 4.0 * frame);
        assert_eq!(e.snn_macs_per_image, 0.0);
        assert!((e.snn_energy_uj - 4.0 * frame * 0.9e-6).abs() < 1e-9);
        assert!((e.ann_energy_uj - frame * 4.6e-6).abs() < 1e-9);
    }

    #[test]
    fn energy_counts_single_spikes_by_their_fan_out() {
        let net = tiny();
        let mut frames: Vec<Tensor> = TINY_SHAPES
            .iter()
            .map(|s| Tensor::zeros(IxDyn(&[&[4][..], s].concat())))
            .collect();
        frames[0][[0, 0, 0, 0]] = 1.0; // input corner: 1 window × 2 channels
        frames[0][[1, 0, 14, 14]] = 1.0; // input centre: 25 windows × 2 channels
        frames[3][[2, 4]] = 1.0; // latent neuron: 1200 outputs
        // deconv input corner (channel 1 of the flat [3·20·20] features): 25 outputs × 2 channels
        frames[4][[3, 400]] = 1.0;
        frames[6][[0, 0, 5, 5]] = 1.0; // output spikes feed nothing
        let names = ["input", "c1", "c2", "latent", "fc", "d1", "output"];
        let layers: Vec<(&str, &Tensor)> = names.iter().copied().zip(&frames).collect();
        let mut stats = SpikeStats::new(4);
        stats.add_tensors(&layers, 1);
        let e = energy(&net, &stats);
        assert_eq!(e.sops_per_image, 2.0 + 50.0 + 1200.0 + 50.0);
    }

    /// `c_out·f[h]·f[w]` for every pixel of one input channel, row-major.
    fn outer(c_out: u64, f: &[u64]) -> Vec<u64> {
        f.iter()
            .flat_map(|h| f.iter().map(move |w| c_out * h * w))
            .collect()
    }

    #[test]
    fn fan_out_at_borders() {
        let conv = Synapse::Conv2d {
            stride: 2,
            padding: 1,
        };
        // 5 inputs, k3, s2, p1: 3 outputs covering padded rows 0-2, 2-4, 4-6,
        // i.e. inputs −1…1, 1…3, 3…5; the fan-out of pixel (h, w) is C_out·f[h]·f[w].
        assert_eq!(
            fan_out(conv, &[2, 1, 3, 3], &[1, 5, 5]),
            outer(2, &[1, 2, 1, 2, 1])
        );
        let convt = Synapse::ConvTranspose2d {
            stride: 2,
            padding: 1,
            output_padding: 1,
        };
        // 3 inputs, k3, s2, p1, op1: 6 outputs; input i reaches rows 2i−1…2i+1.
        assert_eq!(
            fan_out(convt, &[1, 3, 3, 3], &[1, 3, 3]),
            outer(3, &[2, 3, 3])
        );
        assert_eq!(fan_out(Synapse::Linear, &[7, 6], &[2, 3]), vec![7; 6]);
        // Total fan-out of a conv is its MAC count: C_out·C_in·k²·outputs without padding.
        let plain = Synapse::Conv2d {
            stride: 1,
            padding: 0,
        };
        let total: u64 = fan_out(plain, &[4, 3, 5, 5], &[3, 12, 12]).iter().sum();
        assert_eq!(total, 4 * 3 * 25 * 8 * 8);
    }

    /// `add` reads a real forward pass's activity, and the counts match the energy's
    /// expectations of the network's layers.
    #[test]
    fn stats_of_a_forward_pass() {
        let net = tiny();
        let x = autograd::gradcheck::random(&[3, 1, 28, 28], 0.0, 1.0, 2);
        let tape = Tape::eval();
        let out = net.forward(&tape, &x, 7, Sampling::Mean);
        let mut stats = SpikeStats::new(net.steps());
        stats.add(&out.layers, 3);
        stats.add(&out.layers, 3);
        assert_eq!(stats.images(), 6);
        let reports = stats.layers(0.5);
        assert_eq!(reports.len(), net.layers.len() + 1);
        assert_eq!(reports[0].name, "input");
        for (r, shape) in reports.iter().zip(TINY_SHAPES) {
            assert_eq!(r.neurons, shape.iter().product::<usize>());
            assert_eq!(r.histogram.iter().sum::<u64>(), r.neurons as u64);
        }
        let e = energy(&net, &stats);
        assert!(e.sops_per_image <= e.dense_macs_per_image);
        assert_eq!(e.dense_macs_per_frame, 189_600.0);
    }
}
