//! The memory a configuration needs, estimated before anything is allocated, and the
//! check that refuses a run the machine cannot hold (the measured peaks the estimate is
//! calibrated on are in `BENCHMARKS.md`, "Memory estimate of a
//! configuration").

use super::{Config, ModelKind, Surrogate};

/// What a process does with a configuration's network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Training steps: forward, backward and the optimizer (`sae train`, `sae bench`).
    Train,
    /// Forward passes only (`sae eval`, `reconstruct`, `analyze`, `sae bench --mode infer`).
    Infer,
}

/// MNIST in memory as `u8`: 70 000 images of 28×28 and their labels.
const DATASET_BYTES: u64 = 70_000 * (28 * 28 + 1);

/// The process without its tensors: code, thread stacks, allocator.
const BASE_BYTES: u64 = 16 << 20;

/// Images whose latent codes an evaluation may keep: every test image and a probe of
/// up to the whole training set.
const CODED_IMAGES: u64 = 70_000;

const GIB: f64 = (1u64 << 30) as f64;

impl Config {
    /// An upper bound on the peak memory of `w`, in bytes: for the frames of one time
    /// tile (all frames for the baselines), one f32 per neuron and frame for every layer's
    /// output and half again for the step's transients and heap fragmentation; for the
    /// spiking model in training, a byte per neuron and frame of the whole window for what
    /// the tape keeps as bits (spikes, floor masks) and four more for the potentials a
    /// non-`membrane` surrogate keeps; in inference over several tiles, the state carried
    /// between them, and one image's latent raster; the parameters (×4 in training: gradients and
    /// two Adam moments); latent codes of an evaluation; the dataset. An error when a
    /// count overflows.
    pub fn estimate_bytes(&self, w: Workload) -> Result<u64, String> {
        let sizes = self.sizes()?;
        let overflow = |what: &str| {
            format!(
                "steps = {}: {what} of batch {} × {} neurons per frame is more than 2^64 − 1 \
                 bytes",
                self.steps, self.batch, sizes.neurons
            )
        };
        let spiking = self.model == ModelKind::Sae;
        // Values of one tensor per layer over a tile, and over one step (a frame per image).
        let per_step = sizes.values / (sizes.frames / self.batch.max(1) as u64).max(1);
        let tile_steps = match spiking {
            true => self.steps.min(self.time_tile) as u64,
            false => 1,
        };
        let tile = per_step
            .checked_mul(tile_steps)
            .ok_or_else(|| overflow("a tile's activations"))?;
        let mut tensors = tile
            .checked_mul(6)
            .ok_or_else(|| overflow("a tile's activations"))?;
        let mut add = |bytes: Option<u64>, what: &str| -> Result<(), String> {
            tensors = bytes
                .and_then(|b| tensors.checked_add(b))
                .ok_or_else(|| overflow(what))?;
            Ok(())
        };
        match (spiking, w) {
            (true, Workload::Train) => {
                add(Some(sizes.values), "the saved spikes")?;
                if self.surrogate != Surrogate::Membrane {
                    add(sizes.values.checked_mul(4), "the saved potentials")?;
                }
            }
            (true, Workload::Infer) => {
                if self.steps > self.time_tile {
                    add(per_step.checked_mul(8), "the carried state")?;
                }
                let raster = (self.steps as u64).checked_mul(self.latent as u64 * 4);
                add(raster, "the latent raster")?;
            }
            (false, _) => {}
        }
        let copies = match w {
            Workload::Train => 4,
            Workload::Infer => 1,
        };
        let parameters = sizes.parameters.checked_mul(4 * copies);
        let codes = (self.latent as u64).checked_mul(4 * CODED_IMAGES);
        [parameters, codes, Some(DATASET_BYTES), Some(BASE_BYTES)]
            .into_iter()
            .try_fold(tensors, |sum, b| sum.checked_add(b?))
            .ok_or_else(|| {
                format!(
                    "latent = {}: the parameters ({}) and latent codes of this configuration \
                     need more than 2^64 − 1 bytes (channels = {:?})",
                    self.latent, sizes.parameters, self.channels
                )
            })
    }

    /// Refuses `w` when [`Config::estimate_bytes`] exceeds this machine's memory (or its
    /// control group's limit); no check where the machine does not say.
    pub fn check_memory(&self, w: Workload) -> Result<(), String> {
        match autograd::memory::machine_memory() {
            Some(m) => self.check_memory_within(w, m.total),
            None => self.estimate_bytes(w).map(|_| ()),
        }
    }

    /// [`Config::check_memory`] against `total` bytes.
    pub fn check_memory_within(&self, w: Workload, total: u64) -> Result<(), String> {
        let need = self.estimate_bytes(w)?;
        if need <= total {
            return Ok(());
        }
        let what = match w {
            Workload::Train => "training",
            Workload::Infer => "inference",
        };
        Err(format!(
            "memory: {what} with steps = {}, batch = {}, channels = {:?}, latent = {} needs \
             about {:.1} GiB (estimate), more than this machine's {:.1} GiB; lower --steps, \
             --batch or --channels",
            self.steps,
            self.batch,
            self.channels,
            self.latent,
            need as f64 / GIB,
            total as f64 / GIB
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn the_estimate_bounds_the_measured_peaks() {
        // (configuration, workload, measured peak RSS in MiB: BENCHMARKS.md).
        let paper = |steps, batch| Config {
            steps,
            batch,
            ..Config::paper()
        };
        let cases = [
            (paper(25, 40), Workload::Train, 196),
            (paper(25, 40), Workload::Infer, 191),
            (paper(100, 40), Workload::Train, 325),
            (paper(100, 40), Workload::Infer, 244),
            (
                Config {
                    surrogate: Surrogate::FastSigmoid,
                    ..paper(100, 40)
                },
                Workload::Train,
                997,
            ),
            (Config::quick(), Workload::Train, 94),
            (Config::quick(), Workload::Infer, 61),
            (paper(25, 80), Workload::Train, 367),
            (
                Config {
                    steps: 25,
                    channels: vec![32, 64],
                    ..Config::paper()
                },
                Workload::Train,
                383,
            ),
            (
                Config {
                    steps: 25,
                    kernel: 3,
                    padding: 1,
                    ..Config::paper()
                },
                Workload::Train,
                340,
            ),
            (
                Config {
                    steps: 25,
                    surrogate: Surrogate::FastSigmoid,
                    ..Config::paper()
                },
                Workload::Train,
                373,
            ),
            (
                Config {
                    model: ModelKind::Ae,
                    ..Config::paper()
                },
                Workload::Train,
                58,
            ),
            (
                Config {
                    model: ModelKind::Vae,
                    ..Config::paper()
                },
                Workload::Train,
                81,
            ),
            (
                Config {
                    model: ModelKind::Ae,
                    ..Config::paper()
                },
                Workload::Infer,
                51,
            ),
        ];
        for (cfg, w, measured) in cases {
            let est = cfg.estimate_bytes(w).unwrap() / MIB;
            assert!(
                est >= measured && est <= 3 * measured,
                "T = {}, {w:?}: estimate {est} MiB, measured {measured} MiB",
                cfg.steps
            );
        }
    }

    #[test]
    fn a_run_larger_than_the_machine_is_refused() {
        let big = Config {
            steps: 1000,
            batch: 1000,
            ..Config::paper()
        };
        let err = big
            .check_memory_within(Workload::Train, 8 << 30)
            .unwrap_err();
        for part in [
            "memory: training",
            "steps = 1000",
            "batch = 1000",
            "8.0 GiB",
            "--steps",
        ] {
            assert!(err.contains(part), "{part}: {err}");
        }
        Config::paper()
            .check_memory_within(Workload::Train, 8 << 30)
            .unwrap();
        // The live machine: no machine holds this (≈ 60 TiB for one time tile).
        let huge = Config {
            batch: 10_000_000,
            ..big
        };
        let err = huge.check_memory(Workload::Infer);
        if autograd::memory::machine_memory().is_some() {
            assert!(err.unwrap_err().starts_with("memory: inference"));
        }
        // Inference runs in time tiles: a long window alone does not make it large.
        let long = Config {
            steps: 1_000_000,
            ..Config::paper()
        };
        let (short, long) = (
            Config::paper().estimate_bytes(Workload::Infer).unwrap(),
            long.estimate_bytes(Workload::Infer).unwrap(),
        );
        assert!(long < short + (512 << 20), "{short} → {long} bytes");
    }
}
