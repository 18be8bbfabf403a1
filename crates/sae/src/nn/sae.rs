//! The regularized spiking convolutional auto-encoder of `model-spec.md`.
//!
//! Every layer is a [`LifLayer`]; the window of `T` steps runs in time tiles
//! ([`Sae::time_tile`]), each tile through all layers over its time-folded batch
//! `[steps·B, …]`, the neurons' state carried from tile to tile. What it is trained to minimize is
//! [`Objective`](crate::nn::Objective)'s.

use autograd::nn::{Module, Visitor};
use autograd::{BitTensor, Parameter, Tape, Tensor, Var};
use std::ops::Range;

use ndarray::{Axis, IxDyn, Slice};
use rand::Rng;

use crate::config::{Config, Encoder, Readout, SIDE};
use crate::nn::autoencoder::{AutoEncoder, LayerActivity, Output, Sampling, rows};
use crate::nn::layers::{LifLayer, Synapse};
use crate::nn::lif::{LifCarry, LifParams, TileOptions};
use crate::nn::plan;
use crate::seeds;

/// The spiking auto-encoder: encoder convs, a linear latent layer, and the mirrored
/// decoder, all LIF.
#[derive(Clone, Debug)]
pub struct Sae {
    /// Layers in order; the output layer is the last.
    pub layers: Vec<LifLayer>,
    /// Index of the latent layer in `layers`.
    pub latent: usize,
    /// Time steps `T`.
    pub steps: usize,
    /// Input encoder.
    pub encoder: Encoder,
    /// Input scale.
    pub input_scale: f32,
    /// Input noise.
    pub input_noise: f32,
    /// Read-out.
    pub readout: Readout,
    /// Neuron parameters (the input encoder's latency code uses leak and threshold).
    pub neuron: LifParams,
    /// Steps per time tile: the window runs through every layer one tile of steps at a
    /// time, each layer's neurons carrying their state to the next tile, so a pass holds
    /// one tile's activity at a time. Results agree with one tile of all `T` steps up to
    /// rounding (the synaptic kernels pick event or dense paths by each tile's density).
    pub time_tile: usize,
}

impl Sae {
    /// The network with another [`Sae::time_tile`] (at least 1).
    pub fn with_time_tile(mut self, steps: usize) -> Self {
        self.time_tile = steps.max(1);
        self
    }
}

impl Sae {
    /// Builds the network of `cfg` ([`plan::layers`]) with the paper's initialization:
    /// conv and transposed conv weights `N(0, √(2/(k²·C_in)))`, linear weights
    /// `N(0, 2·√(2/fan_in))`, no biases.
    ///
    /// # Panics
    /// If `cfg` does not validate (call [`Config::validate`] first).
    pub fn new(cfg: &Config, rng: &mut impl Rng) -> Self {
        cfg.validate().expect("valid configuration");
        let neuron = cfg.neuron();
        let k = cfg.kernel;
        let plan = plan::layers(cfg, &["latent"]);
        let latent = plan
            .iter()
            .position(|l| l.name == "latent")
            .expect("a latent layer");
        let layers = plan
            .into_iter()
            .map(|l| {
                let sd = match l.synapse {
                    Synapse::Linear => 2.0 * (2.0 / l.inputs() as f32).sqrt(),
                    _ => (2.0 / (k * k * l.inputs()) as f32).sqrt(),
                };
                let w = autograd::init::normal(&l.weight, 0.0, sd, rng);
                LifLayer {
                    weight: Parameter::new(format!("{}.weight", l.name), w),
                    name: l.name,
                    bias: None,
                    synapse: l.synapse,
                    input: l.input,
                    neuron,
                }
            })
            .collect();
        Sae {
            layers,
            latent,
            steps: cfg.steps,
            encoder: cfg.encoder,
            input_scale: cfg.input_scale,
            input_noise: cfg.input_noise,
            readout: cfg.readout,
            neuron,
            time_tile: cfg.time_tile,
        }
    }

    /// The first layer's input for images `x [B, 1, 28, 28]`: `[T·B, 1, 28, 28]`,
    /// time-major. `seed` drives the input noise and the Poisson draws.
    pub fn encode(&self, x: &Tensor, seed: u64) -> Tensor {
        let pixels = self.noisy_pixels(x, seed);
        self.encode_steps(&pixels, x.shape(), 0..self.steps, seed)
    }

    /// The pixels of `x` the encoder reads: the input noise mixed in.
    fn noisy_pixels(&self, x: &Tensor, seed: u64) -> Vec<f32> {
        let mut pixels: Vec<f32> = x.iter().copied().collect();
        if self.input_noise > 0.0 {
            kernels::encode::add_noise(&mut pixels, self.input_noise, seeds::noise_seed(seed));
        }
        pixels
    }

    /// Steps `frames` of the encoding of `pixels` (images of `shape` `[B, …]`, the noise
    /// mixed in): `[frames·B, …]`, the same rows [`Sae::encode`] gives for them.
    fn encode_steps(
        &self,
        pixels: &[f32],
        shape: &[usize],
        frames: Range<usize>,
        seed: u64,
    ) -> Tensor {
        let n = pixels.len();
        let mut out = vec![0.0; frames.len() * n];
        match self.encoder {
            Encoder::Poisson => kernels::encode::poisson_encode_steps(
                pixels,
                frames.clone(),
                self.input_scale,
                seed,
                &mut out,
            ),
            Encoder::Current => out.chunks_mut(n.max(1)).for_each(|frame| {
                frame
                    .iter_mut()
                    .zip(pixels)
                    .for_each(|(o, x)| *o = x * self.input_scale)
            }),
            Encoder::Latency => kernels::encode::latency_encode_steps(
                pixels,
                self.steps,
                frames.clone(),
                self.neuron.leak,
                self.neuron.threshold,
                self.input_scale,
                &mut out,
            ),
        }
        let mut shape = shape.to_vec();
        shape[0] *= frames.len();
        Tensor::from_shape_vec(IxDyn(&shape), out).expect("frames of B images")
    }

    /// Runs the network on images `x [B, 1, 28, 28]`, encoding each time tile's steps as
    /// it reaches them (the whole window's input is never held).
    pub fn run<'t>(&self, tape: &'t Tape, x: &Tensor, seed: u64) -> Output<'t> {
        let pixels = self.noisy_pixels(x, seed);
        let mut frames = |steps: Range<usize>| self.encode_steps(&pixels, x.shape(), steps, seed);
        self.run_frames(tape, x, &mut frames)
    }

    /// Runs the network on images `x [B, 1, 28, 28]` whose encoding `input
    /// [T·B, 1, 28, 28]` (time-major, as [`Sae::encode`] gives it) is already made, e.g.
    /// to replay the input spikes of another implementation.
    ///
    /// # Panics
    /// If `input` does not hold `T·B` frames of the images' shape.
    pub fn run_encoded<'t>(&self, tape: &'t Tape, x: &Tensor, input: Tensor) -> Output<'t> {
        let (t, b) = (self.steps, x.shape()[0]);
        let mut expected = x.shape().to_vec();
        expected[0] *= t;
        assert_eq!(
            input.shape(),
            &expected[..],
            "encoded input must be [T·B, …] with T = {t}, B = {b}"
        );
        let mut input = Some(input);
        let mut frames = |steps: Range<usize>| match (steps.start, steps.end == t) {
            // One tile of all steps takes the input itself.
            (0, true) => input.take().expect("the input, once"),
            (first, _) => {
                let whole = input.as_ref().expect("the input");
                let rows = Slice::from(first * b..steps.end * b);
                whole.slice_axis(Axis(0), rows).to_owned()
            }
        };
        self.run_frames(tape, x, &mut frames)
    }

    /// Runs the network on images `x [B, 1, 28, 28]` in time tiles, `frames(steps)` giving
    /// each tile's encoded input `[steps·B, 1, 28, 28]`.
    fn run_frames<'t>(
        &self,
        tape: &'t Tape,
        x: &Tensor,
        frames: &mut dyn FnMut(Range<usize>) -> Tensor,
    ) -> Output<'t> {
        let (t, b) = (self.steps, x.shape()[0]);
        let tiles = time_tiles(t, self.time_tile);
        let n_layers = self.layers.len();
        // Per layer (the encoded input first): spike counts summed over the tiles, and the
        // last tile's C = c[T−1].
        let mut counts: Vec<Option<Var<'t>>> = vec![None; n_layers + 1];
        let mut c_last: Vec<Option<Var<'t>>> = vec![None; n_layers + 1];
        let mut carries: Vec<Option<LifCarry<'t>>> = vec![None; n_layers];
        let (mut latent_raster, mut readout) = (vec![], None);
        for (k, steps) in tiles.iter().enumerate() {
            let (len, last) = (steps.len(), k + 1 == tiles.len());
            let input = frames(steps.clone());
            let events = input.mapv(|v| f32::from(u8::from(v != 0.0)));
            add_to(&mut counts[0], tape.constant(events).sum_blocks(len));
            if last {
                let rows = Slice::from((len - 1) * b..len * b);
                c_last[0] = Some(tape.constant(input.slice_axis(Axis(0), rows).to_owned()));
            }
            // Binary input spikes (Poisson, latency) go to the first layer as bits.
            let mut h = match BitTensor::from_tensor(&input) {
                Some(bits) => tape.constant(bits),
                None => tape.constant(input),
            };
            for (i, layer) in self.layers.iter().enumerate() {
                // A potential read-out needs the output layer's c at every step; the rest
                // only C.
                let output = i + 1 == n_layers;
                let full_c = output && self.readout != Readout::SpikeRate;
                let carry = carries[i].take();
                // The spikes come out in the next layer's input shape: no reshape copy.
                let next = self.layers.get(i + 1).map(|next| next.input);
                let (s, c) = tape.scope(&layer.name, || {
                    let options = TileOptions {
                        full_c,
                        carry: carry.as_ref(),
                        carry_out: !last,
                        spikes_shape: None,
                    };
                    let out = layer.forward_tile(tape, &h, len, options, next);
                    carries[i] = out.carry;
                    add_to(&mut counts[i + 1], out.counts);
                    (out.spikes, out.c)
                });
                if full_c {
                    let part = tape.scope("loss", || self.readout_part(&c, len, b));
                    match (&mut readout, self.readout) {
                        (None, _) => readout = Some(part),
                        (Some(r), Readout::MaxPotential) => *r = r.maximum(&part),
                        (Some(r), _) => *r = &*r + &part,
                    }
                }
                if last {
                    c_last[i + 1] = Some(match full_c {
                        true => c.slice_axis(0, (len - 1) * b..len * b),
                        false => c,
                    });
                }
                if i == self.latent {
                    // The first image's rows, for rasters: T·latent values, not T·B·latent.
                    let first = Slice::new(0, None, b as isize);
                    latent_raster.push(s.value().slice_axis(Axis(0), first).to_owned());
                }
                h = s;
            }
        }
        let names = std::iter::once("input").chain(self.layers.iter().map(|l| l.name.as_str()));
        let layers: Vec<LayerActivity<'t>> = (names.zip(counts).zip(c_last))
            .map(|((name, counts), c_last)| LayerActivity {
                name: name.into(),
                counts: counts.expect("every tile counted"),
                c_last: c_last.expect("a last tile"),
            })
            .collect();
        let recon = tape.scope("loss", || {
            self.readout(readout, &layers[n_layers].counts, b)
        });
        let mse = tape.scope("loss", || recon.mse_loss(&tape.constant(x.clone())));
        let n = self.layers[self.latent].weight.shape()[0];
        let latent = layers[self.latent + 1].counts.reshape(&[b, n]) / t as f32;
        let views: Vec<_> = latent_raster.iter().map(|r| r.view()).collect();
        let latent_spikes = ndarray::concatenate(Axis(0), &views).ok();
        Output {
            recon,
            mse,
            latent,
            layers,
            latent_spikes,
            posterior: None,
        }
    }

    /// What one time tile of `steps` steps adds to a potential read-out, from the output
    /// layer's `c [steps·B, …]`: its maximum over the tile, or its sum.
    fn readout_part<'t>(&self, out_c: &Var<'t>, steps: usize, b: usize) -> Var<'t> {
        let c = out_c.reshape(&[steps, b, SIDE * SIDE]);
        match self.readout {
            Readout::MaxPotential => c.max_axis(0, false),
            Readout::MeanPotential => c.sum_axes(&[0], false),
            Readout::SpikeRate => unreachable!("the spike rate reads the counts"),
        }
    }

    /// The reconstruction `[B, 1, 28, 28]` from the tiles' potential read-out combined
    /// (`acc`, none for the spike rate) or the output layer's spike counts `[B, …]`.
    fn readout<'t>(&self, acc: Option<Var<'t>>, out_counts: &Var<'t>, b: usize) -> Var<'t> {
        let t = self.steps;
        let acc = || acc.expect("a potential read-out for each tile");
        match self.readout {
            Readout::MaxPotential => acc() / (t as f32 * self.input_scale),
            Readout::MeanPotential => acc().mul_scalar(1.0 / t as f32),
            Readout::SpikeRate => out_counts.reshape(&[b, SIDE * SIDE]) / t as f32,
        }
        .reshape(&[b, 1, SIDE, SIDE])
    }
}

/// Adds `v` into the running sum `acc` (which starts as `v`).
fn add_to<'t>(acc: &mut Option<Var<'t>>, v: Var<'t>) {
    *acc = Some(match acc.take() {
        Some(a) => &a + &v,
        None => v,
    });
}

/// The time axis `0..steps` cut into tiles of `tile` steps (the last one shorter).
fn time_tiles(steps: usize, tile: usize) -> Vec<Range<usize>> {
    let tile = tile.max(1);
    (0..steps.div_ceil(tile))
        .map(|k| k * tile..((k + 1) * tile).min(steps))
        .collect()
}

/// Each layer under its name: `conv1.weight`, …, `output.weight`.
impl Module for Sae {
    fn visit(&self, v: &mut Visitor<'_>) {
        for layer in &self.layers {
            v.child(&layer.name, layer);
        }
    }
}

impl AutoEncoder for Sae {
    fn forward<'t>(&self, tape: &'t Tape, x: &Tensor, seed: u64, _: Sampling) -> Output<'t> {
        self.run(tape, x, seed)
    }

    fn forward_part<'t>(
        &self,
        tape: &'t Tape,
        x: &Tensor,
        part: Range<usize>,
        seed: u64,
        _: Sampling,
    ) -> Output<'t> {
        // The whole batch is encoded (its draws are indexed over all of it), then each
        // time step's rows of the part are kept.
        let b = x.shape()[0];
        let encoded = self.encode(x, seed);
        let frames: Vec<Range<usize>> = (0..self.steps)
            .map(|t| t * b + part.start..t * b + part.end)
            .collect();
        let views: Vec<_> = frames
            .iter()
            .map(|f| encoded.slice_axis(Axis(0), Slice::from(f.clone())))
            .collect();
        let input = ndarray::concatenate(Axis(0), &views).expect("frames of one shape");
        self.run_encoded(tape, &rows(x, &part), input)
    }

    fn steps(&self) -> usize {
        self.steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Coefficients;
    use crate::nn::loss::loss_of;
    use crate::nn::{Model, Objective};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn small() -> Config {
        Config {
            steps: 4,
            channels: vec![2, 3],
            latent: 5,
            ..Config::quick()
        }
    }

    /// A training step's loss and every weight gradient are bit-for-bit the same on one
    /// and on two threads (the kernels split work by shape, never by thread count), for
    /// sparse (Poisson) and dense (current) input.
    #[test]
    fn gradients_are_identical_on_one_and_two_threads() {
        let x = autograd::gradcheck::random(&[8, 1, SIDE, SIDE], 0.0, 1.0, 3);
        for encoder in [Encoder::Poisson, Encoder::Current] {
            let cfg = Config {
                steps: 6,
                encoder,
                ..Config::paper()
            };
            let step = |threads: usize| {
                let pool = kernels::rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("thread pool");
                pool.install(|| {
                    let model = Model::Sae(Sae::new(&cfg, &mut StdRng::seed_from_u64(0)));
                    let tape = Tape::new();
                    let (_, loss) = loss_of(&cfg, &model, &tape, &x, 5);
                    loss.backward();
                    let grads: Vec<Tensor> = model
                        .net()
                        .parameters()
                        .iter()
                        .map(|p| Tensor::clone(&p.grad().expect("gradient")))
                        .collect();
                    (loss.item().to_bits(), grads)
                })
            };
            let (one, two) = (step(1), step(2));
            assert_eq!(one.0, two.0, "{encoder:?}: loss differs");
            for (a, b) in one.1.iter().zip(&two.1) {
                assert!(a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()));
            }
        }
    }

    /// A window run in time tiles of 3 steps (the last one of 1) gives the spike counts
    /// of one tile of all 7 steps, and the same loss and weight gradients up to rounding,
    /// for every read-out.
    #[test]
    fn time_tiles_match_one_tile() {
        let x = autograd::gradcheck::random(&[4, 1, SIDE, SIDE], 0.0, 1.0, 5);
        for readout in [
            Readout::MaxPotential,
            Readout::MeanPotential,
            Readout::SpikeRate,
        ] {
            let cfg = Config {
                steps: 7,
                readout,
                input_scale: 1.0,
                coefficients: Coefficients {
                    burst_l2: 0.1,
                    potential_l2: 0.1,
                    neuron_l1: 0.1,
                    ..Default::default()
                },
                ..small()
            };
            let run = |tile: usize| {
                let net = Sae::new(&cfg, &mut StdRng::seed_from_u64(2)).with_time_tile(tile);
                let model = Model::Sae(net);
                let tape = Tape::new();
                let (out, loss) = loss_of(&cfg, &model, &tape, &x, 9);
                loss.backward();
                let counts: Vec<Tensor> = out
                    .layers
                    .iter()
                    .map(|l| l.counts.value().clone())
                    .collect();
                let grads: Vec<Tensor> = model
                    .net()
                    .parameters()
                    .iter()
                    .map(|p| Tensor::clone(&p.grad().expect("gradient")))
                    .collect();
                let raster = out.latent_spikes.expect("latent spikes");
                (counts, loss.item(), grads, raster)
            };
            let (whole, tiled) = (run(7), run(3));
            assert_eq!(whole.0, tiled.0, "{readout:?}: spike counts differ");
            assert_eq!(whole.3, tiled.3, "{readout:?}: latent spikes differ");
            assert!(
                (whole.1 - tiled.1).abs() <= 1e-6 * whole.1.abs(),
                "{readout:?}: loss"
            );
            for (a, b) in whole.2.iter().zip(&tiled.2) {
                let scale = a.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
                let err = a
                    .iter()
                    .zip(b)
                    .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
                assert!(
                    err <= 1e-5 * scale,
                    "{readout:?}: gradient differs by {err}"
                );
            }
        }
    }

    #[test]
    fn shapes_of_the_paper_network() {
        let net = Sae::new(&Config::paper(), &mut StdRng::seed_from_u64(0));
        let shapes: Vec<Vec<usize>> = net.layers.iter().map(|l| l.weight.shape()).collect();
        assert_eq!(
            shapes,
            vec![
                vec![16, 1, 5, 5],
                vec![32, 16, 5, 5],
                vec![100, 12800],
                vec![12800, 100],
                vec![32, 16, 5, 5],
                vec![16, 1, 5, 5]
            ]
        );
        assert_eq!(
            net.layers[4].input,
            crate::nn::layers::Reshape::Map([32, 20, 20])
        );
    }

    #[test]
    fn forward_gives_a_reconstruction_and_gradients() {
        let cfg = Config {
            coefficients: Coefficients {
                burst_l2: 0.1,
                potential_l2: 0.1,
                example_l2: 0.1,
                neuron_l2: 0.1,
                neuron_l1: 0.1,
                weight_l2: 1e-4,
                ..Default::default()
            },
            input_scale: 1.0,
            ..small()
        };
        let net = Sae::new(&cfg, &mut StdRng::seed_from_u64(1));
        let x = autograd::gradcheck::random(&[3, 1, 28, 28], 0.0, 1.0, 2);
        let tape = Tape::new();
        let out = net.forward(&tape, &x, 7, Sampling::Sample);
        assert_eq!(out.recon.shape(), &[3, 1, 28, 28]);
        assert_eq!(out.layers.len(), net.layers.len() + 1);
        let model = Model::Sae(net);
        let loss = Objective::new(&cfg, &model).loss(&tape, &out, &x);
        assert!(loss.item() >= out.mse.item());
        loss.backward();
        assert!(model.net().parameters().iter().all(|p| p.grad().is_some()));
    }

    #[test]
    fn stride_two_restores_the_image_size() {
        let cfg = Config {
            stride: 2,
            padding: 1,
            kernel: 3,
            ..small()
        };
        let net = Sae::new(&cfg, &mut StdRng::seed_from_u64(0));
        let tape = Tape::eval();
        let x = autograd::gradcheck::random(&[2, 1, 28, 28], 0.0, 1.0, 3);
        assert_eq!(
            net.forward(&tape, &x, 0, Sampling::Mean).recon.shape(),
            &[2, 1, 28, 28]
        );
    }

    #[test]
    fn encoders_have_the_right_rates() {
        let x = Tensor::from_elem(IxDyn(&[1, 1, 28, 28]), 0.5);
        for (encoder, expected) in [(Encoder::Poisson, 0.1), (Encoder::Current, 0.1)] {
            let cfg = Config {
                encoder,
                steps: 50,
                input_scale: 0.2,
                ..small()
            };
            let net = Sae::new(&cfg, &mut StdRng::seed_from_u64(0));
            let e = net.encode(&x, 3);
            assert_eq!(e.shape(), &[50, 1, 28, 28]);
            assert!((e.mean().unwrap() - expected).abs() < 0.01, "{encoder:?}");
        }
    }
}
