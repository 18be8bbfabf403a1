//! The regularized spiking convolutional auto-encoder of `model-spec.md`.
//!
//! Every layer is a [`LifLayer`]; the whole window of `T` steps runs one layer at a time
//! over the time-folded batch `[T·B, …]`. The loss is the reconstruction MSE plus the
//! regularizers, each with its own coefficient.

use autograd::{Parameter, Tape, Tensor, Var};
use ndarray::IxDyn;
use rand::Rng;

use crate::config::{Coefficients, Config, Encoder, Readout};
use crate::layers::{LifLayer, Synapse};
use crate::lif::{LifParams, parse_floor, parse_reset, parse_surrogate};

/// MNIST's image side.
pub const SIDE: usize = 28;

/// The spiking auto-encoder: encoder convs, a linear latent layer, and the mirrored
/// decoder, all LIF.
#[derive(Clone, Debug)]
pub struct Sae {
    /// Layers in order; the output layer is the last.
    pub layers: Vec<LifLayer>,
    /// Index of the latent layer in `layers`.
    pub latent: usize,
    /// `[C, H, W]` of the last encoder conv's output (the decoder reshapes to it).
    pub feature_shape: [usize; 3],
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
    /// Regularizer coefficients.
    pub coefficients: Coefficients,
    /// Neuron parameters (the input encoder's latency code uses leak and threshold).
    pub neuron: LifParams,
}

/// One layer's activity in a forward pass.
#[derive(Clone, Debug)]
pub struct LayerActivity<'t> {
    /// The layer's name.
    pub name: String,
    /// Events per neuron and image, `[B, …]`: the spike count `S = Σ_t s[t]` of a LIF
    /// layer (differentiable, through the surrogate), and for the encoded input the steps
    /// at which it is nonzero. The spike trains themselves are not kept: at `T = 100`
    /// they would hold most of a pass's memory.
    pub counts: Var<'t>,
    /// Leaky cumulative potential at the last step, `C = c[T−1]` `[B, …]`: what the
    /// regularizers read. (The full `c [T·B, …]` is not kept: at `T = 100` it would
    /// double the memory of a pass; the read-out takes what it needs as it goes.)
    pub c_last: Var<'t>,
}

/// What a forward pass of any of the auto-encoders gives.
#[derive(Clone, Debug)]
pub struct Output<'t> {
    /// Reconstruction `[B, 1, 28, 28]`, pixels in `[0, 1]`-ish.
    pub recon: Var<'t>,
    /// Reconstruction MSE against the input images.
    pub mse: Var<'t>,
    /// The training loss: `mse` plus regularizers for the spiking model; the baselines'
    /// own objectives (BCE, BCE + β·KL) for them.
    pub loss: Var<'t>,
    /// The latent code `[B, latent]`: spike rates `S/T` for the spiking model,
    /// activations for the AE, `μ` for the VAE.
    pub latent: Var<'t>,
    /// Spiking models only: per layer, in order, the encoded input first (its `c_last` is
    /// the input's last frame).
    pub layers: Vec<LayerActivity<'t>>,
    /// Spiking models only: the latent layer's spikes `[T·B, latent]`, for rasters.
    pub latent_spikes: Option<Var<'t>>,
}

/// The interface the training loop, evaluation and benchmarks use for every model.
pub trait AutoEncoder {
    /// Every trainable parameter, with unique names.
    fn params(&self) -> Vec<Parameter>;
    /// Runs the model on images `x [B, 1, 28, 28]`; `seed` drives any randomness
    /// (input encoding, noise, the VAE's sampling).
    fn forward<'t>(&self, tape: &'t Tape, x: &Tensor, seed: u64) -> Output<'t>;
    /// Time steps per image (1 for the non-spiking baselines).
    fn steps(&self) -> usize {
        1
    }
}

/// The model `cfg.model` names, initialized from `rng`.
pub fn build(cfg: &Config, rng: &mut impl Rng) -> Box<dyn AutoEncoder> {
    match cfg.model {
        crate::config::ModelKind::Sae => Box::new(Sae::new(cfg, rng)),
        crate::config::ModelKind::Ae => Box::new(crate::baselines::Ae::new(cfg, rng)),
        crate::config::ModelKind::Vae => Box::new(crate::baselines::Vae::new(cfg, rng)),
    }
}

/// Layer sizes shared by the spiking model and the baselines: the encoder convs shrink
/// 28×28 step by step, the decoder's transposed convs restore each size exactly.
pub(crate) struct Geometry {
    /// Feature-map side after each encoder conv, the input's first.
    sides: Vec<usize>,
    channels: Vec<usize>,
    kernel: usize,
    stride: usize,
    padding: usize,
}

impl Geometry {
    pub(crate) fn of(cfg: &Config) -> Self {
        let mut sides = vec![SIDE];
        for _ in &cfg.channels {
            let side = *sides.last().expect("input side");
            sides.push((side + 2 * cfg.padding - cfg.kernel) / cfg.stride + 1);
        }
        Geometry {
            sides,
            channels: cfg.channels.clone(),
            kernel: cfg.kernel,
            stride: cfg.stride,
            padding: cfg.padding,
        }
    }

    /// `[C, H, W]` after the last encoder conv.
    pub(crate) fn feature_shape(&self) -> [usize; 3] {
        let side = *self.sides.last().expect("feature side");
        [*self.channels.last().expect("validated"), side, side]
    }

    /// Elements of the flattened feature map.
    pub(crate) fn flat(&self) -> usize {
        self.feature_shape().iter().product()
    }

    /// Output channels and synapse of each decoder transposed conv, the last giving one
    /// channel. Output padding takes up what the encoder's floor division dropped.
    pub(crate) fn decoder(&self) -> Vec<(usize, Synapse)> {
        let outs = self.channels.iter().rev().skip(1).copied().chain([1]);
        let (n, k, stride, padding) = (self.sides.len(), self.kernel, self.stride, self.padding);
        outs.enumerate()
            .map(|(i, c_out)| {
                let (from, to) = (self.sides[n - 1 - i], self.sides[n - 2 - i]);
                let output_padding = to + 2 * padding - ((from - 1) * stride + k);
                (
                    c_out,
                    Synapse::ConvTranspose2d {
                        stride,
                        padding,
                        output_padding,
                    },
                )
            })
            .collect()
    }
}

/// Samples of `N(0, sd²)` of a shape.
fn normal(shape: &[usize], sd: f32, rng: &mut impl Rng) -> Tensor {
    autograd::init::normal(shape, 0.0, sd, rng)
}

impl Sae {
    /// Builds the network of `cfg` with the paper's initialization: conv and transposed
    /// conv weights `N(0, √(2/(k²·C_in)))`, linear weights `N(0, 2·√(2/fan_in))`, no biases.
    ///
    /// # Panics
    /// If `cfg` does not validate (call [`Config::validate`] first).
    pub fn new(cfg: &Config, rng: &mut impl Rng) -> Self {
        cfg.validate().expect("valid configuration");
        let neuron = LifParams {
            leak: cfg.leak,
            threshold: cfg.threshold,
            reset: parse_reset(&cfg.reset).expect("validated"),
            floor: parse_floor(&cfg.floor).expect("validated"),
            surrogate: parse_surrogate(&cfg.surrogate, cfg.slope).expect("validated"),
        };
        let (k, stride, padding) = (cfg.kernel, cfg.stride, cfg.padding);
        let layer = |name: String, synapse, w: Tensor| LifLayer {
            weight: Parameter::new(format!("{name}.weight"), w),
            name,
            bias: None,
            synapse,
            neuron,
        };
        let conv_sd = |c_in: usize| (2.0 / (k * k * c_in) as f32).sqrt();
        let linear_sd = |fan_in: usize| 2.0 * (2.0 / fan_in as f32).sqrt();
        let geometry = Geometry::of(cfg);
        let mut layers = vec![];
        let mut c_in = 1;
        for (i, &c_out) in cfg.channels.iter().enumerate() {
            let w = normal(&[c_out, c_in, k, k], conv_sd(c_in), rng);
            let synapse = Synapse::Conv2d { stride, padding };
            layers.push(layer(format!("conv{}", i + 1), synapse, w));
            c_in = c_out;
        }
        let flat = geometry.flat();
        let latent = layers.len();
        let w = normal(&[cfg.latent, flat], linear_sd(flat), rng);
        layers.push(layer("latent".into(), Synapse::Linear, w));
        let w = normal(&[flat, cfg.latent], linear_sd(cfg.latent), rng);
        layers.push(layer("decoder_fc".into(), Synapse::Linear, w));
        let decoder = geometry.decoder();
        for (i, &(c_out, synapse)) in decoder.iter().enumerate() {
            let w = normal(&[c_in, c_out, k, k], conv_sd(c_in), rng);
            let last = i + 1 == decoder.len();
            let name = if last {
                "output".into()
            } else {
                format!("deconv{}", i + 1)
            };
            layers.push(layer(name, synapse, w));
            c_in = c_out;
        }
        Sae {
            layers,
            latent,
            feature_shape: geometry.feature_shape(),
            steps: cfg.steps,
            encoder: cfg.encoder,
            input_scale: cfg.input_scale,
            input_noise: cfg.input_noise,
            readout: cfg.readout,
            coefficients: cfg.coefficients,
            neuron,
        }
    }

    /// The first layer's input for images `x [B, 1, 28, 28]`: `[T·B, 1, 28, 28]`,
    /// time-major. `seed` drives the input noise and the Poisson draws.
    pub fn encode(&self, x: &Tensor, seed: u64) -> Tensor {
        let mut pixels = x.as_standard_layout().into_owned();
        let flat = pixels.as_slice_mut().expect("contiguous");
        if self.input_noise > 0.0 {
            kernels::encode::add_noise(flat, self.input_noise, seed ^ 0x9E37_79B9);
        }
        let (t, n) = (self.steps, flat.len());
        let mut out = vec![0.0; t * n];
        match self.encoder {
            Encoder::Poisson => {
                kernels::encode::poisson_encode(flat, t, self.input_scale, seed, &mut out)
            }
            Encoder::Current => out.chunks_mut(n.max(1)).for_each(|frame| {
                frame
                    .iter_mut()
                    .zip(flat.iter())
                    .for_each(|(o, x)| *o = x * self.input_scale)
            }),
            Encoder::Latency => kernels::encode::latency_encode(
                flat,
                t,
                self.neuron.leak,
                self.neuron.threshold,
                self.input_scale,
                &mut out,
            ),
        }
        let mut shape = x.shape().to_vec();
        shape[0] *= t;
        Tensor::from_shape_vec(IxDyn(&shape), out).expect("T·B frames")
    }

    /// Runs the network on images `x [B, 1, 28, 28]`.
    pub fn run<'t>(&self, tape: &'t Tape, x: &Tensor, seed: u64) -> Output<'t> {
        self.run_encoded(tape, x, self.encode(x, seed))
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
        let input = tape.constant(input);
        let last_step = |v: &Var<'t>| v.slice_axis(0, (t - 1) * b..t * b);
        let events = input.value().mapv(|v| f32::from(u8::from(v != 0.0)));
        let mut layers = vec![LayerActivity {
            name: "input".into(),
            counts: tape.constant(events).sum_blocks(t),
            c_last: last_step(&input),
        }];
        let (mut h, mut out_c) = (input.clone(), input);
        let mut latent_spikes = None;
        for (i, layer) in self.layers.iter().enumerate() {
            if i == self.latent {
                h = tape.scope(&layer.name, || h.flatten());
            }
            let output = i + 1 == self.layers.len();
            let (s, counts, c_last) = tape.scope(&layer.name, || {
                // The read-out needs the output layer's c at every step; the others only C.
                let (mut s, mut c_last) = if output {
                    let (s, c) = layer.forward(tape, &h, t);
                    let c_last = last_step(&c);
                    out_c = c;
                    (s, c_last)
                } else {
                    layer.forward_final(tape, &h, t)
                };
                if i == self.latent + 1 {
                    let [f, hh, ww] = self.feature_shape;
                    s = s.reshape(&[t * b, f, hh, ww]);
                    c_last = c_last.reshape(&[b, f, hh, ww]);
                }
                (s.clone(), s.sum_blocks(t), c_last)
            });
            layers.push(LayerActivity {
                name: layer.name.clone(),
                counts,
                c_last,
            });
            if i == self.latent {
                latent_spikes = Some(s.clone());
            }
            h = s;
        }
        // `h` now holds the output layer's spikes.
        let out = tape.scope("loss", || self.finish(tape, x, layers, &out_c, &h));
        Output {
            latent_spikes,
            ..out
        }
    }

    /// The read-out (from the output layer's `c` and `s`, `[T·B, …]`), loss and latent
    /// code.
    fn finish<'t>(
        &self,
        tape: &'t Tape,
        x: &Tensor,
        layers: Vec<LayerActivity<'t>>,
        out_c: &Var<'t>,
        out_s: &Var<'t>,
    ) -> Output<'t> {
        let (t, b) = (self.steps, x.shape()[0]);
        let pixels = SIDE * SIDE;
        let recon = match self.readout {
            Readout::MaxPotential => {
                out_c.reshape(&[t, b, pixels]).max_axis(0, false) / (t as f32 * self.input_scale)
            }
            Readout::MeanPotential => out_c.reshape(&[t, b, pixels]).mean_axes(&[0], false),
            Readout::SpikeRate => out_s.sum_blocks(t).reshape(&[b, pixels]) / t as f32,
        }
        .reshape(&[b, 1, SIDE, SIDE]);
        let mse = recon.mse_loss(&tape.constant(x.clone()));
        let loss = &mse + &self.regularizers(tape, &layers[1..], b);
        let n = self.layers[self.latent].weight.shape()[0];
        let latent = layers[self.latent + 1].counts.reshape(&[b, n]) / t as f32;
        Output {
            recon,
            mse,
            loss,
            latent,
            layers,
            latent_spikes: None,
        }
    }
}

impl AutoEncoder for Sae {
    fn params(&self) -> Vec<Parameter> {
        self.layers.iter().flat_map(LifLayer::params).collect()
    }

    fn forward<'t>(&self, tape: &'t Tape, x: &Tensor, seed: u64) -> Output<'t> {
        self.run(tape, x, seed)
    }

    fn steps(&self) -> usize {
        self.steps
    }
}

impl Sae {
    /// The regularizers of `model-spec.md` over the LIF layers' activity.
    fn regularizers<'t>(&self, tape: &'t Tape, layers: &[LayerActivity<'t>], b: usize) -> Var<'t> {
        let k = self.coefficients;
        let t = self.steps;
        let mut total = tape.constant(Tensor::zeros(IxDyn(&[])));
        let mut add = |term: Var<'t>, coef: f32| {
            if coef != 0.0 {
                total = &total + &(term * coef);
            }
        };
        for (i, layer) in layers.iter().enumerate() {
            let n = layer.counts.value().len() / b;
            let norm = 1.0 / (b * n) as f32;
            // S/T and C/T, made only when a term needs them.
            let rate = || layer.counts.reshape(&[b, n]) / t as f32;
            let last = || layer.c_last.reshape(&[b, n]) / t as f32;
            if k.burst_l1 != 0.0 {
                add(rate().abs().sum() * norm, k.burst_l1);
            }
            if k.burst_l2 != 0.0 {
                add(rate().square().sum() * norm, k.burst_l2);
            }
            if k.potential_l1 != 0.0 {
                add(last().abs().sum() * norm, k.potential_l1);
            }
            if k.potential_l2 != 0.0 {
                add(last().square().sum() * norm, k.potential_l2);
            }
            if i == self.latent {
                if k.example_l2 != 0.0 {
                    add(
                        rate().sum_axes(&[1], false).square().sum() * norm,
                        k.example_l2,
                    );
                }
                if k.neuron_l2 != 0.0 {
                    add(
                        rate().sum_axes(&[0], false).square().sum() * norm,
                        k.neuron_l2,
                    );
                }
                if k.neuron_l1 != 0.0 {
                    add(rate().sum() * norm, k.neuron_l1);
                }
            }
        }
        for layer in &self.layers {
            if k.weight_l1 != 0.0 || k.weight_l2 != 0.0 {
                let w = tape.param(&layer.weight);
                add(w.abs().sum(), k.weight_l1);
                add(w.square().sum(), k.weight_l2);
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
                    let net = Sae::new(&cfg, &mut StdRng::seed_from_u64(0));
                    let tape = Tape::new();
                    let out = net.run(&tape, &x, 5);
                    out.loss.backward();
                    let grads: Vec<Tensor> = net
                        .params()
                        .iter()
                        .map(|p| p.grad().expect("gradient").clone())
                        .collect();
                    (out.loss.item().to_bits(), grads)
                })
            };
            let (one, two) = (step(1), step(2));
            assert_eq!(one.0, two.0, "{encoder:?}: loss differs");
            for (a, b) in one.1.iter().zip(&two.1) {
                assert!(a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()));
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
        assert_eq!(net.feature_shape, [32, 20, 20]);
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
        let out = net.forward(&tape, &x, 7);
        assert_eq!(out.recon.shape(), &[3, 1, 28, 28]);
        assert_eq!(out.layers.len(), net.layers.len() + 1);
        assert!(out.loss.item() >= out.mse.item());
        out.loss.backward();
        assert!(net.params().iter().all(|p| p.grad().is_some()));
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
        assert_eq!(net.forward(&tape, &x, 0).recon.shape(), &[2, 1, 28, 28]);
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
