//! Scoring a model on a test set: the MSE (and the VAE's with `z` sampled), spike
//! statistics, the latent code's class structure and the energy estimate ([`evaluate`]),
//! and a trained run loaded back from its checkpoint for that ([`load_run`]).

use std::path::Path;

use autograd::{Tape, Tensor, Var};
use ndarray::Array2;

use crate::cluster::Group;
use crate::config::{Config, SIDE};
use crate::data::{Mnist, Split, resolve_dir};
use crate::nn::{AutoEncoder, Model, Output, Sampling};
use crate::report::energy::energy;
use crate::report::evaluation::{Evaluation, SampledMse};
use crate::report::figures;
use crate::report::latent::latent_structure;
use crate::report::spikes::SpikeStats;
use crate::run::checkpoint;
use crate::run::error::{RunError, io_err};
use crate::run::signals::Stop;
use crate::seeds::{eval_seed, probe_seed, sample_seed};

/// Test images kept for the reconstruction figure.
pub(crate) const SAMPLE_IMAGES: usize = 20;

/// Runs the model in evaluation mode over this rank's batches of `split` (batch `b`,
/// encoded with `seed(b)`, on rank `b mod N`), calling `each(b, output, images)`. Returns
/// `false` on every rank when `stop` was requested on any before its last batch.
fn sweep(
    net: &dyn AutoEncoder,
    split: &Split,
    batch: usize,
    seed: impl Fn(u64) -> u64,
    (stop, group): (&Stop, &Group),
    mut each: impl FnMut(usize, &Output<'_>, &Tensor),
) -> bool {
    let n = split.len();
    let indices: Vec<usize> = (0..n).collect();
    let mut stopped = false;
    let mine = indices
        .chunks(batch.max(1))
        .enumerate()
        .filter(|(b, _)| b % group.size() == group.rank());
    for (b, idx) in mine {
        if stop.requested().is_some() {
            stopped = true;
            break;
        }
        let x = split.images_f32(idx).into_dyn();
        let tape = Tape::eval();
        let out = net.forward(&tape, &x, seed(b as u64), Sampling::Mean);
        each(b, &out, &x);
    }
    let mut flag = [f64::from(u8::from(stopped))];
    group.sum_f64(&mut flag);
    flag[0] == 0.0
}

/// Evaluates `model` on `test`: MSE (for the VAE with `z = μ`, and with `z` sampled),
/// spike statistics, the latent structure (train codes of the first `probe_images` of
/// `train`) and the energy estimate.
pub fn evaluate(
    model: &Model,
    cfg: &Config,
    train: &Split,
    test: &Split,
    probe_images: usize,
) -> Evaluation {
    let (stop, one) = (Stop::new(), Group::single());
    evaluate_unless_stopped(model, cfg, (train, test), probe_images, (&stop, &one))
        .expect("nothing stops it")
}

/// [`evaluate`] over the ranks of `group` (each its share of the batches, the sums and
/// codes then combined on every rank; the spike statistics, samples and raster complete
/// on rank 0), abandoned (`None`) as soon as `stop` is requested: a scheduler's SIGTERM
/// need not wait for minutes of evaluation before the run's checkpoint.
pub(crate) fn evaluate_unless_stopped(
    model: &Model,
    cfg: &Config,
    (train, test): (&Split, &Split),
    probe_images: usize,
    (stop, group): (&Stop, &Group),
) -> Option<Evaluation> {
    let net = model.net();
    let steps = net.steps();
    let mut stats = SpikeStats::new(steps);
    let (mut sq, mut images) = (0.0f64, 0usize);
    let (mut codes, mut width) = (Vec::new(), 0usize);
    let pixels = SIDE * SIDE;
    let samples = SAMPLE_IMAGES.min(test.len());
    let mut recons = vec![0.0f32; samples * pixels];
    let mut raster = None;
    let spiking = model.spiking().is_some();
    let vae = match model {
        Model::Vae(vae) => Some(vae),
        _ => None,
    };
    // The VAE's per-image MSE with z sampled, by test image: zeros where another rank
    // computes, so the all-reduce is exact and the figures those of one process.
    let mut sampled = vec![0.0f64; if vae.is_some() { test.len() } else { 0 }];
    let batch = cfg.batch.max(1);
    let done = sweep(
        net,
        test,
        batch,
        |b| eval_seed(cfg.seed, b),
        (stop, group),
        |b, out, x| {
            let n = x.shape()[0];
            sq += f64::from(out.mse.item()) * n as f64;
            images += n;
            if let Some(vae) = vae {
                let posterior = out.posterior.as_ref().expect("the VAE's posterior");
                let recon = vae.decode_sample(posterior, sample_seed(cfg.seed), b * batch);
                for (m, v) in sampled[b * batch..]
                    .iter_mut()
                    .zip(per_image_mse(&recon, x))
                {
                    *m = v;
                }
            }
            if spiking {
                stats.add(&out.layers, n);
            }
            let code = out.latent.value();
            width = code.len() / n;
            if codes.is_empty() {
                codes = vec![0.0f32; test.len() * width];
            }
            codes[b * batch * width..][..code.len()]
                .copy_from_slice(code.as_slice().expect("contiguous"));
            let first = b * batch * pixels;
            if first < recons.len() {
                let take = (recons.len() - first).min(x.len());
                recons[first..first + take]
                    .iter_mut()
                    .zip(out.recon.value().iter())
                    .for_each(|(r, v)| *r = *v);
            }
            if b == 0 {
                raster = Some(match &out.latent_spikes {
                    Some(spikes) => figures::raster_of(spikes, steps, 0),
                    None => Array2::from_shape_vec(
                        (1, width),
                        code.iter().take(width).copied().collect(),
                    )
                    .expect("one code"),
                });
            }
        },
    );
    if !done {
        return None;
    }
    // Each rank's part, combined: zeros elsewhere, so the sums are the parts.
    let mut totals = [sq, images as f64];
    group.sum_f64(&mut totals);
    let [sq, images] = totals;
    let images = images as usize;
    let width = group
        .gather_u64(width as u64)
        .into_iter()
        .max()
        .unwrap_or(0) as usize;
    codes.resize(test.len() * width, 0.0);
    group.sum_f32(&mut codes);
    group.sum_f32(&mut recons);
    if vae.is_some() {
        group.sum_f64(&mut sampled);
    }
    if spiking {
        combine_spike_counts(&mut stats, group);
    }
    let originals: Vec<f32> = test
        .images_f32(&(0..samples).collect::<Vec<_>>())
        .iter()
        .copied()
        .collect();
    let test_mse = if images > 0 {
        sq / images as f64
    } else {
        f64::NAN
    };
    let latent = if probe_images > 0 && images > 0 {
        let probe = train.take(probe_images);
        let mut train_codes = vec![0.0f32; probe.len() * width];
        let done = sweep(
            net,
            &probe,
            batch,
            |b| probe_seed(cfg.seed, b),
            (stop, group),
            |b, out, _| {
                let code = out.latent.value();
                train_codes[b * batch * width..][..code.len()]
                    .copy_from_slice(code.as_slice().expect("contiguous"));
            },
        );
        if !done {
            return None;
        }
        group.sum_f32(&mut train_codes);
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
    let sampled_mse = vae.map(|_| SampledMse::of(&sampled));
    Some(Evaluation {
        test_mse,
        sampled_mse,
        images,
        layers,
        latent,
        energy,
        originals,
        recons,
        raster,
    })
}

/// The mean squared error of each image of `x [B, …]` against its reconstruction, in
/// `f64`, pixels summed in order.
fn per_image_mse<'a>(recon: &'a Var<'_>, x: &'a Tensor) -> impl Iterator<Item = f64> + 'a {
    let pixels = x.len() / x.shape()[0].max(1);
    let (r, x) = (recon.value().as_slice(), x.as_slice());
    let (r, x) = (r.expect("contiguous"), x.expect("contiguous"));
    r.chunks(pixels).zip(x.chunks(pixels)).map(move |(r, x)| {
        let sq: f64 = r
            .iter()
            .zip(x)
            .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
            .sum();
        sq / pixels as f64
    })
}

/// Sums every layer's event counts over the ranks into rank 0's statistics (the only
/// ones reported); a rank that had no batch adds zeros.
fn combine_spike_counts(stats: &mut SpikeStats, group: &Group) {
    if group.size() == 1 {
        return;
    }
    let mut events = stats.event_counts();
    let len = group
        .gather_u64(events.len() as u64)
        .into_iter()
        .max()
        .unwrap_or(0);
    events.resize(len as usize, 0.0);
    group.sum_f64(&mut events);
    let mut images = [stats.images() as f64];
    group.sum_f64(&mut images);
    stats.set_event_counts(&events, images[0] as u64);
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
    let pos = checkpoint::load(checkpoint, &model.net().parameters(), None)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelKind;
    use crate::data::Images;

    /// `n` patterned 28×28 images (no MNIST needed).
    fn split(n: usize) -> Split {
        let pixels = (0..n * SIDE * SIDE)
            .map(|k| (((k / SIDE + k % SIDE + 3 * (k / (SIDE * SIDE))) % 17) * 15) as u8)
            .collect();
        Split {
            images: Images {
                count: n,
                rows: SIDE,
                cols: SIDE,
                pixels,
            },
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
        }
    }

    fn tiny(model: ModelKind, batch: usize) -> Config {
        Config {
            model,
            steps: 3,
            batch,
            channels: vec![2, 3],
            latent: 6,
            ..Config::quick()
        }
    }

    #[test]
    fn only_the_vae_scores_a_sampled_code() {
        let (train, test) = (split(4), split(5));
        for kind in [ModelKind::Sae, ModelKind::Ae] {
            let cfg = tiny(kind, 2);
            let eval = evaluate(&Model::new(&cfg), &cfg, &train, &test, 0);
            assert!(eval.sampled_mse.is_none(), "{kind}");
            assert!(eval.record().sampled_mse.is_none(), "{kind}");
        }
        let cfg = tiny(ModelKind::Vae, 2);
        let eval = evaluate(&Model::new(&cfg), &cfg, &train, &test, 0);
        let s = eval.sampled_mse.expect("the VAE's sampled-z MSE");
        assert!(
            s.mean.is_finite() && s.std.is_finite() && s.std >= 0.0,
            "{s:?}"
        );
        assert_eq!(eval.record().sampled_mse, Some(s));
        // A sample, not the mean: the figure differs from the z = μ one.
        assert_ne!(s.mean, eval.test_mse);
    }

    /// The sampled-z MSE is the same bit for bit on one and two threads and in a second
    /// evaluation, and (up to the order of the kernels' sums) with another batch size:
    /// ε follows the test image, not the batch or the thread that computes it.
    #[test]
    fn the_sampled_mse_depends_on_the_images_only() {
        let (train, test) = (split(4), split(7));
        let cfg = tiny(ModelKind::Vae, 3);
        // The model is built on the pool's thread (its parameters are not `Send`), from
        // the same seed each time.
        let on = |threads: usize, cfg: &Config| {
            let pool = kernels::rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("thread pool");
            pool.install(|| evaluate(&Model::new(cfg), cfg, &train, &test, 0).sampled_mse)
                .expect("the VAE's sampled-z MSE")
        };
        let bits = |s: SampledMse| (s.mean.to_bits(), s.std.to_bits());
        let one = on(1, &cfg);
        assert_eq!(bits(one), bits(on(1, &cfg)), "a second evaluation");
        assert_eq!(bits(one), bits(on(2, &cfg)), "two threads");
        let other = on(1, &tiny(ModelKind::Vae, 2));
        for (a, b) in [(one.mean, other.mean), (one.std, other.std)] {
            assert!(
                (a - b).abs() <= 1e-5 * a.abs(),
                "batch 3: {a}, batch 2: {b}"
            );
        }
    }
}
