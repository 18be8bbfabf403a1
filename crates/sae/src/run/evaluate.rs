//! Scoring a model on a test set: the MSE, spike statistics, the latent code's class
//! structure and the energy estimate ([`evaluate`]), and a trained run loaded back from
//! its checkpoint for that ([`load_run`]).

use std::path::Path;

use autograd::{Tape, Tensor};
use ndarray::Array2;

use crate::config::{Config, SIDE};
use crate::data::{Mnist, Split, resolve_dir};
use crate::nn::{AutoEncoder, Model, Output, Sampling};
use crate::report::energy::energy;
use crate::report::evaluation::Evaluation;
use crate::report::figures;
use crate::report::latent::latent_structure;
use crate::report::spikes::SpikeStats;
use crate::run::checkpoint;
use crate::run::error::{RunError, io_err};
use crate::run::signals::Stop;
use crate::seeds::{eval_seed, probe_seed};

/// Test images kept for the reconstruction figure.
pub(crate) const SAMPLE_IMAGES: usize = 20;

/// Runs the model in evaluation mode over `split` in batches (batch `b` encoded with
/// `seed(b)`), calling `each` with every batch's output and images `[B, 1, 28, 28]`.
/// Returns `false` when `stop` was requested before the last batch.
fn sweep(
    net: &dyn AutoEncoder,
    split: &Split,
    batch: usize,
    seed: impl Fn(u64) -> u64,
    stop: &Stop,
    mut each: impl FnMut(&Output<'_>, &Tensor),
) -> bool {
    let n = split.len();
    let indices: Vec<usize> = (0..n).collect();
    for (b, idx) in indices.chunks(batch.max(1)).enumerate() {
        if stop.requested().is_some() {
            return false;
        }
        let x = split.images_f32(idx).into_dyn();
        let tape = Tape::eval();
        let out = net.forward(&tape, &x, seed(b as u64), Sampling::Mean);
        each(&out, &x);
    }
    true
}

/// Evaluates `model` on `test`: MSE, spike statistics, the latent structure (train codes
/// of the first `probe_images` of `train`) and the energy estimate.
pub fn evaluate(
    model: &Model,
    cfg: &Config,
    train: &Split,
    test: &Split,
    probe_images: usize,
) -> Evaluation {
    evaluate_unless_stopped(model, cfg, train, test, probe_images, &Stop::new())
        .expect("nothing stops it")
}

/// [`evaluate`], abandoned (`None`) as soon as `stop` is requested: a scheduler's
/// SIGTERM need not wait for minutes of evaluation before the run's checkpoint.
pub(crate) fn evaluate_unless_stopped(
    model: &Model,
    cfg: &Config,
    train: &Split,
    test: &Split,
    probe_images: usize,
    stop: &Stop,
) -> Option<Evaluation> {
    let net = model.net();
    let steps = net.steps();
    let mut stats = SpikeStats::new(steps);
    let (mut sq, mut images) = (0.0f64, 0usize);
    let (mut codes, mut width) = (Vec::new(), 0usize);
    let (mut originals, mut recons) = (Vec::new(), Vec::new());
    let mut raster = None;
    let spiking = model.spiking().is_some();
    let done = sweep(
        net,
        test,
        cfg.batch,
        |b| eval_seed(cfg.seed, b),
        stop,
        |out, x| {
            let b = x.shape()[0];
            sq += f64::from(out.mse.item()) * b as f64;
            images += b;
            if spiking {
                stats.add(&out.layers, b);
            }
            let code = out.latent.value();
            width = code.len() / b;
            codes.extend(code.iter());
            let room = SAMPLE_IMAGES * SIDE * SIDE - originals.len();
            if room > 0 {
                let take = room.min(x.len());
                originals.extend(x.iter().take(take));
                recons.extend(out.recon.value().iter().take(take));
            }
            if raster.is_none() {
                raster = Some(match &out.latent_spikes {
                    Some(spikes) => figures::raster_of(spikes.value(), steps, 0),
                    None => Array2::from_shape_vec(
                        (1, width),
                        code.iter().take(width).copied().collect(),
                    )
                    .expect("one code"),
                });
            }
        },
    );
    let test_mse = if images > 0 {
        sq / images as f64
    } else {
        f64::NAN
    };
    if !done {
        return None;
    }
    let latent = if probe_images > 0 && images > 0 {
        let probe = train.take(probe_images);
        let mut train_codes = Vec::new();
        let done = sweep(
            net,
            &probe,
            cfg.batch,
            |b| probe_seed(cfg.seed, b),
            stop,
            |out, _| train_codes.extend(out.latent.value().iter()),
        );
        if !done {
            return None;
        }
        let train_codes = Array2::from_shape_vec((probe.len(), width), train_codes)
            .expect("one code per probe image");
        let test_codes =
            Array2::from_shape_vec((images, width), codes).expect("one code per image");
        Some(latent_structure(
            &train_codes,
            &probe.labels,
            &test_codes,
            &test.labels,
            cfg.seed,
        ))
    } else {
        None
    };
    let (layers, energy) = match model.spiking() {
        Some(sae) if images > 0 => {
            let layers = stats
                .layers(f64::from(cfg.burst_threshold))
                .into_iter()
                .filter(|l| l.name != "input")
                .collect();
            (layers, Some(energy(sae, &stats)))
        }
        _ => (vec![], None),
    };
    Some(Evaluation {
        test_mse,
        images,
        layers,
        latent,
        energy,
        originals,
        recons,
        raster,
    })
}

/// MNIST, cut to the configuration's subsets; an empty split (a valid file of zero
/// images) is an error, before anything is computed or written.
pub(crate) fn load_data(cfg: &Config, data_dir: Option<&Path>) -> Result<(Split, Split), RunError> {
    let dir = resolve_dir(data_dir)?;
    let mnist = Mnist::load(&dir)?;
    let cut = |split: &Split, n: usize| if n == 0 { split.clone() } else { split.take(n) };
    let (train, test) = (
        cut(&mnist.train, cfg.train_images),
        cut(&mnist.test, cfg.test_images),
    );
    for (split, name) in [(&train, "train"), (&test, "test")] {
        if split.is_empty() {
            return Err(RunError::EmptySplit { dir, split: name });
        }
    }
    Ok((train, test))
}

/// A trained run loaded for evaluation.
pub struct Loaded {
    /// Its configuration.
    pub cfg: Config,
    /// The model with the checkpoint's parameters.
    pub model: Model,
    /// The training subset (for the probe codes).
    pub train: Split,
    /// The test subset.
    pub test: Split,
    /// Optimizer steps of the checkpoint.
    pub step: u64,
}

/// The model of `cfg` with the parameters of `checkpoint`, and the data.
pub fn load_run(
    cfg: &Config,
    checkpoint: &Path,
    data_dir: Option<&Path>,
) -> Result<Loaded, RunError> {
    cfg.validate().map_err(RunError::Usage)?;
    cfg.check_memory(crate::config::Workload::Infer)
        .map_err(RunError::Usage)?;
    let model = Model::new(cfg);
    let pos = checkpoint::load(checkpoint, &model.net().params(), None)?;
    let (train, test) = load_data(cfg, data_dir)?;
    Ok(Loaded {
        cfg: cfg.clone(),
        model,
        train,
        test,
        step: pos.step,
    })
}

impl Loaded {
    /// Evaluates on the test subset (see [`evaluate`]).
    pub fn evaluate(&self, probe_images: usize) -> Evaluation {
        evaluate(
            &self.model,
            &self.cfg,
            &self.train,
            &self.test,
            probe_images,
        )
    }

    /// The first `count` test images (at least one) and their reconstructions, pixels
    /// image after image.
    pub fn reconstruction(&self, count: usize) -> (Vec<f32>, Vec<f32>) {
        let idx: Vec<usize> = (0..count.clamp(1, self.test.len())).collect();
        let x = self.test.images_f32(&idx).into_dyn();
        let tape = Tape::eval();
        let o = self
            .model
            .net()
            .forward(&tape, &x, eval_seed(self.cfg.seed, 0), Sampling::Mean);
        let recons = o.recon.value().iter().copied().collect();
        (x.iter().copied().collect(), recons)
    }

    /// Draws the first `count` test images above their reconstructions.
    pub fn reconstruct(&self, out: &Path, count: usize) -> Result<(), RunError> {
        let (originals, recons) = self.reconstruction(count);
        let n = originals.len() / (SIDE * SIDE);
        figures::reconstructions(out, &originals, &recons, n).map_err(|e| io_err(out, e))
    }
}
