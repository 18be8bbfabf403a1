//! What an importer checks itself against: the activity of the exported layers on the
//! first test images under the current encoder (every step the frame `x·scale`), as one
//! safetensors file whose tensor names are the NIR graph's node names.

use autograd::{Tape, Tensor};
use ndarray::{Axis, IxDyn};

use super::nir::{Part, lif_name, part_layers, potential_name};
use crate::config::Encoder;
use crate::nn::sae::Sae;

/// Images run through the network at once.
const CHUNK: usize = 16;

/// For images `x [N, 1, 28, 28]` and part `part` of `sae`: `input` (the graph's input,
/// `[N, 1, 28, 28]` for the encoder — the same frame every step — and `[T, N, …]` spike
/// frames for the decoder), `<layer>.lif` spike counts `[N, …]` of every exported layer,
/// and for the decoder `<output>.potential.max`, the potential's maximum over time.
///
/// # Panics
/// If `part` cannot be exported ([`super::nir::graph`] says why first).
pub fn sample(sae: &Sae, x: &Tensor, part: Part) -> Vec<(String, Tensor)> {
    let mut net = sae.clone();
    net.encoder = Encoder::Current;
    net.input_noise = 0.0;
    let layers = part_layers(&net, part).expect("an exportable part");
    let n = x.shape()[0];
    let chunks: Vec<Vec<(String, Tensor)>> = (0..n)
        .step_by(CHUNK)
        .map(|start| {
            let part_x = x
                .slice_axis(Axis(0), (start..(start + CHUNK).min(n)).into())
                .to_owned();
            chunk(&net, &part_x, part, layers.clone())
        })
        .collect();
    // Concatenated over images: axis 1 for `[T, N, …]` frames, axis 0 otherwise.
    (0..chunks[0].len())
        .map(|i| {
            let name = chunks[0][i].0.clone();
            let axis = Axis(usize::from(name == "input" && part == Part::Decoder));
            let views: Vec<_> = chunks.iter().map(|c| c[i].1.view()).collect();
            let joined = ndarray::concatenate(axis, &views).expect("chunks of one shape");
            (name, joined)
        })
        .collect()
}

fn chunk(
    net: &Sae,
    x: &Tensor,
    part: Part,
    layers: std::ops::Range<usize>,
) -> Vec<(String, Tensor)> {
    let (t, n) = (net.steps, x.shape()[0]);
    let tape = Tape::eval();
    let mut out = vec![];
    if part == Part::Encoder {
        out.push(("input".to_string(), x.mapv(|v| v * net.input_scale)));
    }
    let mut h = tape.constant(net.encode(x, 0));
    for (i, layer) in net.layers.iter().enumerate().take(layers.end) {
        if i == layers.start && part == Part::Decoder {
            let frames = layer.input.apply(&h).value().clone();
            let shape = [&[t, n][..], &frames.shape()[1..]].concat();
            out.push((
                "input".into(),
                frames
                    .into_shape_with_order(IxDyn(&shape))
                    .expect("T·N frames"),
            ));
        }
        let last = i + 1 == net.layers.len();
        let (s, c) = if last {
            layer.forward(&tape, &h, t)
        } else {
            layer.forward_final(&tape, &h, t)
        };
        if layers.contains(&i) {
            out.push((lif_name(&layer.name), s.sum_blocks(t).value().clone()));
        }
        if last && part == Part::Decoder {
            let c = c.value();
            let frame = &c.shape()[1..];
            let per_step = c
                .view()
                .into_shape_with_order((t, c.len() / t))
                .expect("T·N frames");
            let max = per_step.fold_axis(Axis(0), f32::NEG_INFINITY, |m, &v| m.max(v));
            let shape = [&[n][..], frame].concat();
            out.push((
                format!("{}.max", potential_name(&layer.name)),
                max.into_shape_with_order(IxDyn(&shape)).expect("N frames"),
            ));
        }
        h = s;
    }
    out
}
