//! The spiking auto-encoder as an NIR graph (Neuromorphic Intermediate Representation,
//! neuroir.org): the nodes, their parameters and the edges, independent of the file
//! format ([`super::hdf5`] writes them the way the `nir` Python package reads them).
//!
//! Our discrete LIF `v[t] = λ·v̂[t−1] + I[t]`, spike when `v[t] > θ`, reset to zero, is
//! NIR's `τ·dv/dt = (v_leak − v) + R·I` integrated by one Euler step of `dt` per time step
//! with `dt/τ = 1 − λ`, `R = τ/dt`, `v_leak = v_reset = 0`, `v_threshold = θ`. The leaky
//! cumulative potential `c[t] = λ·(c[t−1] + I[t])` is an `LI` with the same `τ` and
//! `R = λ·τ/dt`. A stride-1 transposed conv is the `Conv2d` with the kernel flipped,
//! the channels swapped and padding `k − 1 − p`.

use ndarray::{Array1, ArrayD, Axis, IxDyn};

use crate::config::{Encoder, Readout};
use crate::nn::layers::{LifLayer, Reshape, Synapse};
use crate::nn::lif::{Floor, LifParams, Reset};
use crate::nn::sae::Sae;

/// The NIR version whose node definitions the file follows.
pub const NIR_VERSION: &str = "1.0.7";

/// Seconds per time step written into the file: NIR's time constants are physical, ours
/// are counted in steps.
pub const DT_SECONDS: f64 = 1e-3;

crate::choice! {
    /// Which part of the network to export.
    pub enum Part {
        /// The input through the latent layer's spikes.
        Encoder = "encoder",
        /// From the decoder's first transposed conv (its input: `decoder_fc`'s spikes as
        /// feature maps) to the output layer's spikes and potential.
        Decoder = "decoder",
        /// The whole auto-encoder (refused: NIR has no un-flatten).
        Network = "network",
    }
}

/// One NIR node with its parameters (NIR's names and shapes).
// A graph holds a dozen nodes: their size does not matter, their plain fields do.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// Where data enters: one frame's shape.
    Input {
        /// Frame shape.
        shape: Vec<usize>,
    },
    /// Where data leaves.
    Output {
        /// Frame shape.
        shape: Vec<usize>,
    },
    /// 2-D convolution, weight `[C_out, C_in, k, k]`.
    Conv2d {
        /// Spatial input size `[H, W]`.
        input_shape: [usize; 2],
        /// Kernel.
        weight: ArrayD<f32>,
        /// Stride per axis.
        stride: [usize; 2],
        /// Zero padding per axis.
        padding: [usize; 2],
        /// Dilation per axis (always 1 here).
        dilation: [usize; 2],
        /// Channel groups (always 1 here).
        groups: usize,
        /// Per output channel.
        bias: Array1<f32>,
    },
    /// Merges dimensions `start_dim..=end_dim` of a frame.
    Flatten {
        /// The frame's shape before.
        input_type: Vec<usize>,
        /// First merged dimension (frames have no batch dimension in NIR).
        start_dim: i64,
        /// Last merged dimension.
        end_dim: i64,
    },
    /// `W·x`.
    Linear {
        /// `[out, in]`.
        weight: ArrayD<f32>,
    },
    /// `W·x + b`.
    Affine {
        /// `[out, in]`.
        weight: ArrayD<f32>,
        /// `[out]`.
        bias: Array1<f32>,
    },
    /// Leaky integrate-and-fire neurons, one value per neuron for every parameter.
    Lif {
        /// Membrane time constant (s).
        tau: ArrayD<f32>,
        /// Resistance.
        r: ArrayD<f32>,
        /// Resting potential.
        v_leak: ArrayD<f32>,
        /// Firing threshold.
        v_threshold: ArrayD<f32>,
        /// Potential after a spike.
        v_reset: ArrayD<f32>,
    },
    /// Leaky integrators.
    Li {
        /// Time constant (s).
        tau: ArrayD<f32>,
        /// Resistance.
        r: ArrayD<f32>,
        /// Resting potential.
        v_leak: ArrayD<f32>,
    },
}

impl Node {
    /// NIR's type name (the `type` field of the file).
    pub fn type_name(&self) -> &'static str {
        match self {
            Node::Input { .. } => "Input",
            Node::Output { .. } => "Output",
            Node::Conv2d { .. } => "Conv2d",
            Node::Flatten { .. } => "Flatten",
            Node::Linear { .. } => "Linear",
            Node::Affine { .. } => "Affine",
            Node::Lif { .. } => "LIF",
            Node::Li { .. } => "LI",
        }
    }
}

/// A graph-level metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Meta {
    /// Text.
    Text(String),
    /// A number.
    Number(f64),
}

/// An NIR graph: named nodes in network order, edges between them and metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    /// `(name, node)`, inputs first.
    pub nodes: Vec<(String, Node)>,
    /// `(from, to)` node names.
    pub edges: Vec<(String, String)>,
    /// What the graph cannot say itself: time step, units, encoding, read-out.
    pub metadata: Vec<(String, Meta)>,
}

/// Why (part of) a network cannot be written as NIR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unexpressible {
    /// The part of the network (`decoder_fc → deconv1`, `neurons`, …).
    pub part: String,
    /// Why, and what to do instead.
    pub why: String,
}

impl std::fmt::Display for Unexpressible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.part, self.why)
    }
}

fn refuse(part: impl Into<String>, why: impl Into<String>) -> Unexpressible {
    Unexpressible {
        part: part.into(),
        why: why.into(),
    }
}

/// The LIF node's name for layer `layer`.
pub fn lif_name(layer: &str) -> String {
    format!("{layer}.lif")
}

/// The LI node's name (the leaky cumulative potential `c`) for layer `layer`.
pub fn potential_name(layer: &str) -> String {
    format!("{layer}.potential")
}

/// The synaptic node's name for layer `layer`.
pub fn synapse_name(layer: &str) -> String {
    format!("{layer}.synapse")
}

/// The layers of `part` (indices into `sae.layers`).
pub fn part_layers(sae: &Sae, part: Part) -> Result<std::ops::Range<usize>, Unexpressible> {
    let unflatten = sae
        .layers
        .iter()
        .position(|l| matches!(l.input, Reshape::Map(_)))
        .expect("the decoder un-flattens decoder_fc's spikes");
    match part {
        Part::Encoder => Ok(0..sae.latent + 1),
        Part::Decoder => Ok(unflatten..sae.layers.len()),
        Part::Network => Err(refuse(
            format!(
                "{} → {}",
                sae.layers[unflatten - 1].name,
                sae.layers[unflatten].name
            ),
            "the decoder un-flattens a vector into feature maps and NIR has no un-flatten \
             (its Flatten only merges dimensions); export `--part encoder` (input → latent) \
             and `--part decoder` (the feature maps → output) instead",
        )),
    }
}

/// The NIR graph of `part` of `sae`.
pub fn graph(sae: &Sae, part: Part) -> Result<Graph, Unexpressible> {
    check_neurons(&sae.neuron)?;
    let layers = part_layers(sae, part)?;
    let first = &sae.layers[layers.start];
    let mut frame = match first.input {
        Reshape::Map(m) => m.to_vec(),
        _ => vec![1, crate::config::SIDE, crate::config::SIDE],
    };
    let mut nodes = vec![(
        "input".to_string(),
        Node::Input {
            shape: frame.clone(),
        },
    )];
    let mut edges = vec![];
    let mut last = "input".to_string();
    let mut link = |nodes: &mut Vec<(String, Node)>, name: String, node: Node| {
        edges.push((last.clone(), name.clone()));
        nodes.push((name.clone(), node));
        last = name;
    };
    let mut potential = None;
    for (i, layer) in sae.layers[layers.clone()].iter().enumerate() {
        if layer.input == Reshape::Flatten && frame.len() > 1 {
            let input_type = frame.clone();
            frame = vec![frame.iter().product()];
            link(
                &mut nodes,
                format!("{}.flatten", layer.name),
                Node::Flatten {
                    input_type,
                    start_dim: 0,
                    end_dim: -1,
                },
            );
        }
        let (synapse, out) = synapse_node(layer, &frame)?;
        frame = out;
        let syn = synapse_name(&layer.name);
        link(&mut nodes, syn.clone(), synapse);
        link(
            &mut nodes,
            lif_name(&layer.name),
            lif_node(&sae.neuron, &frame),
        );
        if part == Part::Decoder && i + 1 == layers.len() {
            // The read-out's potential c: an LI fed by the same current.
            potential = Some((syn, frame.clone()));
        }
    }
    let out_shape = frame.clone();
    link(
        &mut nodes,
        "output".into(),
        Node::Output {
            shape: out_shape.clone(),
        },
    );
    if let Some((syn, shape)) = potential {
        let layer = &sae.layers[layers.end - 1].name;
        let li = potential_name(layer);
        nodes.push((li.clone(), li_node(&sae.neuron, &shape)));
        nodes.push((
            "output_potential".into(),
            Node::Output {
                shape: shape.clone(),
            },
        ));
        edges.push((syn, li.clone()));
        edges.push((li, "output_potential".into()));
    }
    Ok(Graph {
        nodes,
        edges,
        metadata: metadata(sae, part, layers.start),
    })
}

/// Refuses neuron options NIR's LIF cannot express.
fn check_neurons(neuron: &LifParams) -> Result<(), Unexpressible> {
    match neuron.floor {
        Floor::None => {}
        Floor::Clamp => {
            return Err(refuse(
                "neurons",
                "floor `clamp` (v ← max(v, −θ)) has no NIR equivalent: NIR's LIF has no floor \
                 under the membrane potential (train with `--floor none` to export)",
            ));
        }
        Floor::Authors => {
            return Err(refuse(
                "neurons",
                "floor `authors` (v ← θ where v < −θ, the authors' code) has no NIR \
                 equivalent: NIR's LIF has no floor under the membrane potential (train with \
                 `--floor none` to export)",
            ));
        }
    }
    if neuron.reset == Reset::Subtract {
        return Err(refuse(
            "neurons",
            "reset `subtract` (v ← v − θ) has no NIR equivalent: NIR's LIF sets the \
             potential to v_reset after a spike (train with `--reset zero` to export)",
        ));
    }
    Ok(())
}

/// A layer's synaptic op as a node, and the frame shape it gives for input `frame`.
fn synapse_node(layer: &LifLayer, frame: &[usize]) -> Result<(Node, Vec<usize>), Unexpressible> {
    let w: ArrayD<f32> = (*layer.weight.value()).clone();
    let bias = |n: usize| {
        layer.bias.as_ref().map_or_else(
            || Array1::zeros(n),
            |b| Array1::from(b.value().iter().copied().collect::<Vec<_>>()),
        )
    };
    // Kernel size and input side of a conv (a linear layer has neither).
    let (k, side) = (
        w.shape().get(2).copied().unwrap_or(0),
        frame.get(1).copied().unwrap_or(0),
    );
    let conv = |weight: ArrayD<f32>, stride: usize, padding: usize| {
        let c_out = weight.shape()[0];
        let out = (side + 2 * padding - k) / stride + 1;
        (
            Node::Conv2d {
                input_shape: [frame[1], frame[2]],
                weight,
                stride: [stride; 2],
                padding: [padding; 2],
                dilation: [1; 2],
                groups: 1,
                bias: bias(c_out),
            },
            vec![c_out, out, out],
        )
    };
    Ok(match layer.synapse {
        Synapse::Conv2d { stride, padding } => conv(w, stride, padding),
        Synapse::ConvTranspose2d {
            stride,
            padding,
            output_padding,
        } => {
            if stride != 1 {
                return Err(refuse(
                    layer.name.clone(),
                    format!(
                        "a transposed conv of stride {stride} has no NIR equivalent (NIR's \
                         Conv2d cannot dilate its input; only stride 1 is a Conv2d with the \
                         kernel flipped)"
                    ),
                ));
            }
            if padding + 1 > k || output_padding != 0 {
                return Err(refuse(
                    layer.name.clone(),
                    format!(
                        "a transposed conv with padding {padding} and output padding \
                         {output_padding} for kernel {k} has no Conv2d equivalent"
                    ),
                ));
            }
            conv(transposed_as_conv(&w), 1, k - 1 - padding)
        }
        Synapse::Linear => {
            let out = w.shape()[0];
            let node = match &layer.bias {
                None => Node::Linear { weight: w },
                Some(_) => Node::Affine {
                    weight: w,
                    bias: bias(out),
                },
            };
            (node, vec![out])
        }
    })
}

/// The conv kernel `[C_out, C_in, k, k]` equivalent to the stride-1 transposed-conv
/// kernel `w [C_in, C_out, k, k]`: channels swapped, both spatial axes reversed.
pub fn transposed_as_conv(w: &ArrayD<f32>) -> ArrayD<f32> {
    let mut v = w.view();
    v.swap_axes(0, 1);
    v.invert_axis(Axis(2));
    v.invert_axis(Axis(3));
    v.as_standard_layout().into_owned()
}

/// `τ` in seconds for leak `λ`: `dt/τ = 1 − λ`.
fn tau(neuron: &LifParams) -> f64 {
    DT_SECONDS / (1.0 - f64::from(neuron.leak))
}

fn filled(shape: &[usize], value: f64) -> ArrayD<f32> {
    ArrayD::from_elem(IxDyn(shape), value as f32)
}

fn lif_node(neuron: &LifParams, shape: &[usize]) -> Node {
    let tau = tau(neuron);
    Node::Lif {
        tau: filled(shape, tau),
        r: filled(shape, tau / DT_SECONDS),
        v_leak: filled(shape, 0.0),
        v_threshold: filled(shape, f64::from(neuron.threshold)),
        v_reset: filled(shape, 0.0),
    }
}

fn li_node(neuron: &LifParams, shape: &[usize]) -> Node {
    let tau = tau(neuron);
    Node::Li {
        tau: filled(shape, tau),
        r: filled(shape, f64::from(neuron.leak) * tau / DT_SECONDS),
        v_leak: filled(shape, 0.0),
    }
}

/// `x` as the decimal it was written as (`0.99`, not `0.9900000095…`).
fn decimal(x: f32) -> f64 {
    x.to_string().parse().expect("a float prints as a float")
}

/// The graph's metadata for `part`, whose first layer is `sae.layers[first]`.
fn metadata(sae: &Sae, part: Part, first: usize) -> Vec<(String, Meta)> {
    let text = |k: &str, v: String| (k.to_string(), Meta::Text(v));
    let number = |k: &str, v: f64| (k.to_string(), Meta::Number(v));
    let scale = sae.input_scale;
    let input = match (part, sae.encoder) {
        (Part::Decoder, _) => format!(
            "the spikes of `{}` (one 0/1 frame per time step) as feature maps",
            // The decoder starts after the un-flatten of the layer before it.
            sae.layers[first - 1].name
        ),
        (_, Encoder::Current) => {
            format!("current: every time step the frame x·{scale} (pixels x in [0, 1])")
        }
        (_, Encoder::Poisson) => format!(
            "poisson: every time step a 0/1 frame, pixel on with probability x·{scale} \
             (pixels x in [0, 1]); the graph also runs on current frames x·{scale}"
        ),
        (_, Encoder::Latency) => format!(
            "latency: one spike per pixel, at the first step where λ·c + x·{scale} crosses θ"
        ),
    };
    let mut meta = vec![
        text("source", format!("sae {}", env!("CARGO_PKG_VERSION"))),
        text(
            "part",
            match part {
                Part::Encoder => "encoder: input → latent spikes",
                Part::Decoder => "decoder: feature maps → output spikes and potential",
                Part::Network => "network",
            }
            .into(),
        ),
        number("dt", DT_SECONDS),
        text("time_unit", "s (tau, dt)".into()),
        number("steps", sae.steps as f64),
        text("input", input),
        text(
            "neuron",
            format!(
                "one Euler step of dt per time step: v[t] = λ·v[t-1] + I[t] with λ = 1 - dt/tau \
                 = {}; a spike when v[t] > v_threshold, then v = v_reset in the same step",
                sae.neuron.leak
            ),
        ),
        number("leak", decimal(sae.neuron.leak)),
        number("threshold", decimal(sae.neuron.threshold)),
    ];
    if part == Part::Decoder {
        let readout = match sae.readout {
            Readout::MaxPotential => format!(
                "max-potential: x̂ = max over t of output_potential / (T·{scale}); the maximum \
                 over time is not an NIR node"
            ),
            Readout::MeanPotential => {
                "mean-potential: x̂ = mean over t of output_potential; the mean over time is \
                 not an NIR node"
                    .into()
            }
            Readout::SpikeRate => {
                "spike-rate: x̂ = spikes of `output` summed over t / T; the sum over time is \
                 not an NIR node"
                    .into()
            }
        };
        meta.push(text("readout", readout));
        meta.push(text(
            "potential",
            "output_potential is the leaky cumulative potential c[t] = λ·(c[t-1] + I[t]) of \
             model-spec.md: an LI with R = λ·tau/dt"
                .into(),
        ));
    }
    meta
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, Config, Preset};
    use autograd::{Tape, Tensor};
    use rand::SeedableRng;

    fn paper_like(floor: config::Floor, reset: config::Reset) -> Sae {
        let mut cfg = Config::preset(Preset::Quick);
        cfg.floor = floor;
        cfg.reset = reset;
        Sae::new(&cfg, &mut rand::rngs::StdRng::seed_from_u64(3))
    }

    fn names(g: &Graph) -> Vec<&str> {
        g.nodes.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn the_encoder_is_input_convs_flatten_latent_output() {
        let sae = paper_like(config::Floor::None, config::Reset::Zero);
        let g = graph(&sae, Part::Encoder).unwrap();
        assert_eq!(
            names(&g),
            [
                "input",
                "conv1.synapse",
                "conv1.lif",
                "conv2.synapse",
                "conv2.lif",
                "latent.flatten",
                "latent.synapse",
                "latent.lif",
                "output"
            ]
        );
        // A chain: every node feeds the next.
        for (e, w) in g.edges.iter().zip(g.nodes.windows(2)) {
            assert_eq!(
                (e.0.as_str(), e.1.as_str()),
                (w[0].0.as_str(), w[1].0.as_str())
            );
        }
        let Node::Conv2d {
            weight,
            input_shape,
            ..
        } = &g.nodes[1].1
        else {
            panic!("conv1 is a Conv2d")
        };
        assert_eq!(input_shape, &[28, 28]);
        assert_eq!(weight, &*sae.layers[0].weight.value());
        let Node::Lif {
            tau,
            r,
            v_threshold,
            v_reset,
            ..
        } = &g.nodes[4].1
        else {
            panic!("conv2.lif is a LIF")
        };
        assert_eq!(tau.shape(), &[32, 20, 20]);
        // dt/τ = 1 − λ and R·dt/τ = 1: one Euler step is v ← λ·v + I.
        let (t, r) = (f64::from(tau[[0, 0, 0]]), f64::from(r[[0, 0, 0]]));
        assert!((DT_SECONDS / t - (1.0 - f64::from(sae.neuron.leak))).abs() < 1e-6);
        assert!((r * DT_SECONDS / t - 1.0).abs() < 1e-6);
        assert!(v_threshold.iter().all(|&v| v == sae.neuron.threshold));
        assert!(v_reset.iter().all(|&v| v == 0.0));
        let Node::Output { shape } = &g.nodes[8].1 else {
            panic!("an output")
        };
        assert_eq!(shape, &[sae.layers[sae.latent].weight.shape()[0]]);
    }

    #[test]
    fn the_decoder_maps_transposed_convs_and_exports_the_potential() {
        let sae = paper_like(config::Floor::None, config::Reset::Zero);
        let g = graph(&sae, Part::Decoder).unwrap();
        assert_eq!(
            names(&g),
            [
                "input",
                "deconv1.synapse",
                "deconv1.lif",
                "output.synapse",
                "output.lif",
                "output",
                "output.potential",
                "output_potential"
            ]
        );
        assert!(
            g.edges
                .contains(&("output.synapse".into(), "output.potential".into()))
        );
        let Node::Input { shape } = &g.nodes[0].1 else {
            panic!("input")
        };
        assert_eq!(shape, &[32, 20, 20]);
        let Node::Conv2d {
            weight, padding, ..
        } = &g.nodes[1].1
        else {
            panic!("deconv1 is a Conv2d")
        };
        assert_eq!(weight.shape(), &[16, 32, 5, 5]);
        assert_eq!(padding, &[4, 4]);
    }

    #[test]
    fn a_flipped_conv_computes_the_stride_one_transposed_conv() {
        let rng = &mut rand::rngs::StdRng::seed_from_u64(1);
        let x = autograd::init::normal(&[2, 3, 6, 5], 0.0, 1.0, rng);
        let w = autograd::init::normal(&[3, 4, 3, 3], 0.0, 1.0, rng);
        for padding in 0..3 {
            let tape = Tape::eval();
            let (xv, wv) = (tape.constant(x.clone()), tape.constant(w.clone()));
            let reference: Tensor = xv
                .conv_transpose2d(&wv, None, 1, padding, 0)
                .value()
                .clone();
            let flipped = tape.constant(transposed_as_conv(&w));
            let conv = xv.conv2d(&flipped, None, 1, 2 - padding).value().clone();
            assert_eq!(reference.shape(), conv.shape());
            for (a, b) in reference.iter().zip(conv.iter()) {
                assert!((a - b).abs() < 1e-4, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn what_nir_cannot_say_is_refused_by_name() {
        let sae = paper_like(config::Floor::None, config::Reset::Zero);
        let e = graph(&sae, Part::Network).unwrap_err();
        assert_eq!(e.part, "decoder_fc → deconv1");
        assert!(e.why.contains("un-flatten"), "{e}");
        let e = graph(
            &paper_like(config::Floor::Authors, config::Reset::Zero),
            Part::Encoder,
        )
        .unwrap_err();
        assert!(e.to_string().contains("floor `authors`"), "{e}");
        let e = graph(
            &paper_like(config::Floor::None, config::Reset::Subtract),
            Part::Encoder,
        )
        .unwrap_err();
        assert!(e.to_string().contains("reset `subtract`"), "{e}");
        let mut cfg = Config::preset(Preset::Quick);
        cfg.floor = config::Floor::None;
        cfg.stride = 2;
        cfg.channels = vec![4, 8];
        cfg.validate().unwrap();
        let strided = Sae::new(&cfg, &mut rand::rngs::StdRng::seed_from_u64(3));
        let e = graph(&strided, Part::Decoder).unwrap_err();
        assert_eq!(e.part, "deconv1");
        assert!(e.why.contains("stride 2"), "{e}");
        // The encoder of a strided network is a plain strided Conv2d.
        assert!(graph(&strided, Part::Encoder).is_ok());
    }
}
