//! The checkpoint: parameters, optimizer state and the position in the run, in one
//! safetensors file written atomically. Only finite tensors are written, so the
//! checkpoint on disk is always one a run can continue from; loading checks every
//! tensor's name, shape and values, and a resume's position and optimizer state against
//! the run, before it changes anything.

use std::collections::HashMap;
use std::path::Path;

use autograd::tensor::non_finite;
use autograd::{Adam, Optimizer, Parameter, Tensor};

use crate::config::Config;
use crate::run::error::RunError;

/// Format tag in the checkpoint's metadata.
const CHECKPOINT_FORMAT: &str = "sae-checkpoint-1";

/// When a run evaluates and checkpoints. Saved in the checkpoint, so `--resume` keeps
/// the schedule of the interrupted run (and with it, identical metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// A checkpoint every this many optimizer steps, besides epoch ends (0: none).
    pub checkpoint_every: u64,
    /// An evaluation every this many optimizer steps, besides epoch ends (0: none).
    pub eval_every: u64,
    /// Training images encoded for the latent linear probe at each evaluation.
    pub probe_images: usize,
}

impl Default for Schedule {
    /// Checkpoints every 100 steps, evaluations at epoch ends, 2000 probe images.
    fn default() -> Self {
        Schedule {
            checkpoint_every: 100,
            eval_every: 0,
            probe_images: 2000,
        }
    }
}

/// Where a run stands, saved in the checkpoint's metadata.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Position {
    /// Optimizer steps done.
    pub step: u64,
    /// Sum of training losses since the last evaluation.
    pub loss_sum: f64,
    /// Sum of training MSEs since the last evaluation.
    pub mse_sum: f64,
    /// Steps summed.
    pub count: u64,
    /// The schedule the run follows.
    pub schedule: Schedule,
    /// The evaluation due at `step` was cut short by a signal: a resumed run does it
    /// first.
    pub eval_pending: bool,
}

/// What a resumed run expects of its checkpoint.
pub struct Resume<'a> {
    /// The optimizer to restore.
    pub opt: &'a mut Adam,
    /// The run's seed.
    pub seed: u64,
    /// Optimizer steps per epoch.
    pub steps_per_epoch: u64,
    /// Optimizer steps of the whole run.
    pub total_steps: u64,
}

/// The parameters and optimizer buffers that hold NaN or infinite values (see
/// [`non_finite`]); empty when all are finite.
pub fn non_finite_state(params: &[Parameter], opt: &impl Optimizer) -> Vec<String> {
    let values: Vec<_> = params.iter().map(|p| (p.name(), p.value())).collect();
    let buffers = opt.buffers();
    non_finite(
        values
            .iter()
            .map(|(n, v)| (*n, &**v))
            .chain(buffers.iter().map(|(n, t)| (n.as_str(), *t))),
    )
}

/// Writes parameters, optimizer state and position atomically; refuses (and leaves the
/// file on disk as it was) when a tensor holds NaN or infinite values.
pub fn save(
    path: &Path,
    cfg: &Config,
    params: &[Parameter],
    opt: &Adam,
    pos: &Position,
    spe: u64,
) -> Result<(), RunError> {
    let bad = non_finite_state(params, opt);
    if !bad.is_empty() {
        return Err(RunError::Diverged(format!(
            "not writing a checkpoint at step {} with non-finite tensors: {}; the one in {} \
             is kept",
            pos.step,
            bad.join(", "),
            path.display()
        )));
    }
    let values: Vec<(String, std::sync::Arc<Tensor>)> = params
        .iter()
        .map(|p| (p.name().to_string(), p.value()))
        .collect();
    let state = opt.state();
    let tensors = values
        .iter()
        .map(|(n, v)| (n.clone(), &**v))
        .chain(state.iter().map(|(n, t)| (n.clone(), t)));
    // Floats as Rust's shortest round-trip decimal: they parse back bit-exactly.
    let metadata = HashMap::from([
        ("format".to_string(), CHECKPOINT_FORMAT.to_string()),
        ("step".into(), pos.step.to_string()),
        ("epoch".into(), (pos.step / spe).to_string()),
        ("batch_in_epoch".into(), (pos.step % spe).to_string()),
        ("seed".into(), cfg.seed.to_string()),
        ("loss_sum".into(), pos.loss_sum.to_string()),
        ("mse_sum".into(), pos.mse_sum.to_string()),
        ("count".into(), pos.count.to_string()),
        (
            "checkpoint_every".into(),
            pos.schedule.checkpoint_every.to_string(),
        ),
        ("eval_every".into(), pos.schedule.eval_every.to_string()),
        ("probe_images".into(), pos.schedule.probe_images.to_string()),
        ("eval_pending".into(), pos.eval_pending.to_string()),
        ("config".into(), cfg.to_toml()),
        (
            "rng".into(),
            "data order of epoch e: epoch_order(n, epoch_seed(seed, e)); encoding of step s: \
             step_seed(seed, s)"
                .into(),
        ),
    ]);
    autograd::io::save_tensors(path, tensors, Some(metadata))
        .map_err(|e| RunError::Checkpoint(e.to_string()))
}

/// Loads a checkpoint into `params` (and, to resume, the optimizer). Checks everything
/// before changing anything: a tensor the model lacks, one it needs, a shape that differs
/// (named with both shapes), a NaN or infinite value (named with the tensor), and to
/// resume, a position or optimizer state that does not fit the run.
pub fn load(
    path: &Path,
    params: &[Parameter],
    resume: Option<Resume<'_>>,
) -> Result<Position, RunError> {
    let bad = |m: String| RunError::Checkpoint(format!("{}: {m}", path.display()));
    autograd::io::regular_file(path).map_err(|e| bad(e.to_string()))?;
    let file = autograd::io::load_tensors(path).map_err(|e| RunError::Checkpoint(e.to_string()))?;
    let is_state = |name: &str| name.starts_with("adam.");
    for p in params {
        match file.tensors.get(p.name()) {
            None => {
                return Err(bad(format!(
                    "lacks tensor `{}` (shape {:?}) the model needs; it was written for \
                     another configuration",
                    p.name(),
                    p.shape()
                )));
            }
            Some(t) if t.shape() != p.shape().as_slice() => {
                return Err(bad(format!(
                    "tensor `{}` has shape {:?}, the model needs {:?}; it was written for \
                     another configuration",
                    p.name(),
                    t.shape(),
                    p.shape()
                )));
            }
            Some(_) => {}
        }
    }
    let extra: Vec<&str> = file
        .tensors
        .keys()
        .filter(|n| !is_state(n) && !params.iter().any(|p| p.name() == n.as_str()))
        .map(String::as_str)
        .collect();
    if !extra.is_empty() {
        return Err(bad(format!(
            "holds tensors the model does not have: {}",
            extra.join(", ")
        )));
    }
    let broken = non_finite(params.iter().map(|p| (p.name(), &file.tensors[p.name()])));
    if !broken.is_empty() {
        return Err(bad(format!(
            "parameters {}; a model with them computes nothing meaningful",
            broken.join(", ")
        )));
    }
    let meta = |key: &str| -> Result<&str, RunError> {
        file.metadata
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| bad(format!("metadata lacks `{key}`")))
    };
    let num = |key: &str| -> Result<f64, RunError> {
        meta(key)?
            .parse::<f64>()
            .map_err(|e| bad(format!("metadata `{key}`: {e}")))
    };
    let int = |key: &str| -> Result<u64, RunError> {
        meta(key)?
            .parse::<u64>()
            .map_err(|e| bad(format!("metadata `{key}`: {e}")))
    };
    let pos = Position {
        step: int("step")?,
        loss_sum: num("loss_sum")?,
        mse_sum: num("mse_sum")?,
        count: int("count")?,
        schedule: Schedule {
            checkpoint_every: int("checkpoint_every")?,
            eval_every: int("eval_every")?,
            probe_images: int("probe_images")? as usize,
        },
        // Absent from checkpoints written before it existed.
        eval_pending: match file.metadata.get("eval_pending").map(String::as_str) {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(bad(format!(
                    "metadata `eval_pending` = {other:?}: expected true or false"
                )));
            }
        },
    };
    if let Some(resume) = resume {
        check_position(&pos, &int, &resume).map_err(bad)?;
        let state = file
            .tensors
            .iter()
            .filter(|(n, _)| is_state(n))
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect();
        resume
            .opt
            .load_state(&state)
            .map_err(|e| bad(e.to_string()))?;
        if resume.opt.steps() != pos.step {
            return Err(bad(format!(
                "optimizer state `adam.steps` = {}, but the position is step {}; one \
                 optimizer step is taken per step",
                resume.opt.steps(),
                pos.step
            )));
        }
    }
    for p in params {
        p.set_value(file.tensors[p.name()].clone());
    }
    Ok(pos)
}

/// Checks a resumed position against the run: its seed, its place in the epochs, the
/// run's length and the running sums.
fn check_position(
    pos: &Position,
    int: &dyn Fn(&str) -> Result<u64, RunError>,
    run: &Resume<'_>,
) -> Result<(), String> {
    let meta = |key: &str| int(key).map_err(|e| e.to_string());
    let seed = meta("seed")?;
    if seed != run.seed {
        return Err(format!(
            "metadata `seed` = {seed}, the run's configuration has seed {}",
            run.seed
        ));
    }
    let spe = run.steps_per_epoch;
    let (epoch, batch) = (meta("epoch")?, meta("batch_in_epoch")?);
    if (epoch, batch) != (pos.step / spe, pos.step % spe) {
        return Err(format!(
            "metadata says step {} is batch {batch} of epoch {epoch}; with the run's {spe} \
             steps per epoch it is batch {} of epoch {} (batch or train_images changed?)",
            pos.step,
            pos.step % spe,
            pos.step / spe
        ));
    }
    if pos.step > run.total_steps {
        return Err(format!(
            "metadata `step` = {}, beyond the run's {} steps (fewer epochs than it was \
             trained for?)",
            pos.step, run.total_steps
        ));
    }
    if pos.count > pos.step {
        return Err(format!(
            "metadata `count` = {}: more steps summed than the {} done",
            pos.count, pos.step
        ));
    }
    for (key, v) in [("loss_sum", pos.loss_sum), ("mse_sum", pos.mse_sum)] {
        if !v.is_finite() {
            return Err(format!("metadata `{key}` = {v}: expected a finite number"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Model;
    use crate::run::folder::CHECKPOINT_FILE;
    use crate::run::small_config as small;
    use crate::run::train::optimizer;

    /// `steps` Adam steps on Σp² of every parameter.
    fn stepped(params: &[Parameter], steps: u64) -> Adam {
        let mut opt = optimizer(&small(), params.to_vec());
        for _ in 0..steps {
            opt.zero_grad();
            for p in params {
                autograd::Tape::new().param(p).square().sum().backward();
            }
            opt.step();
        }
        opt
    }

    fn position(step: u64) -> Position {
        Position {
            step,
            loss_sum: 0.1 + 0.2,
            mse_sum: 1.0 / 3.0,
            count: 3,
            schedule: Schedule {
                checkpoint_every: 5,
                eval_every: 2,
                probe_images: 1,
            },
            eval_pending: true,
        }
    }

    fn resume(opt: &mut Adam) -> Resume<'_> {
        Resume {
            opt,
            seed: small().seed,
            steps_per_epoch: 16,
            total_steps: 32,
        }
    }

    #[test]
    fn checkpoints_round_trip_and_refuse_other_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CHECKPOINT_FILE);
        let cfg = small();
        let model = Model::new(&cfg);
        let params = model.net().parameters();
        let opt = stepped(&params, 7);
        let pos = position(7);
        save(&path, &cfg, &params, &opt, &pos, 16).unwrap();
        let other = Model::new(&Config {
            seed: 1,
            ..cfg.clone()
        });
        let mut opt2 = optimizer(&cfg, other.net().parameters());
        let back = load(&path, &other.net().parameters(), Some(resume(&mut opt2))).unwrap();
        assert_eq!(back, pos);
        assert_eq!(opt2.state(), opt.state());
        for (a, b) in params.iter().zip(other.net().parameters()) {
            assert_eq!(*a.value(), *b.value());
        }
        let wider = Model::new(&Config { latent: 33, ..cfg });
        let err = load(&path, &wider.net().parameters(), None)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("`latent.weight`")
                && err.contains("[32, 3200]")
                && err.contains("[33, 3200]"),
            "{err}"
        );
    }

    #[test]
    fn a_non_finite_checkpoint_is_never_written_nor_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CHECKPOINT_FILE);
        let cfg = small();
        let params = Model::new(&cfg).net().parameters();
        let opt = stepped(&params, 2);
        save(&path, &cfg, &params, &opt, &position(2), 16).unwrap();
        let good = std::fs::read(&path).unwrap();
        let w = params.iter().find(|p| p.name() == "latent.weight").unwrap();
        let kept = w.value();
        w.update(|t| t[[0, 5]] = f32::NAN);
        let err = save(&path, &cfg, &params, &opt, &position(3), 16)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`latent.weight` (1 of 102400 values NaN or infinite)")
                && err.contains("is kept"),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), good, "the good one stays");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file is left"
        );

        // Written by hand (as a hostile or corrupted file would be), refused on load.
        let mut file = autograd::io::load_tensors(&path).unwrap();
        file.tensors.get_mut("latent.weight").unwrap()[[1, 1]] = f32::INFINITY;
        let bad = dir.path().join("bad.safetensors");
        autograd::io::save_tensors(
            &bad,
            file.tensors.iter().map(|(n, t)| (n.clone(), t)),
            Some(file.metadata.clone()),
        )
        .unwrap();
        w.set_value((*kept).clone());
        let before: Vec<_> = params.iter().map(|p| p.value()).collect();
        let err = load(&bad, &params, None).unwrap_err().to_string();
        assert!(
            err.contains("bad.safetensors") && err.contains("`latent.weight` (1 of"),
            "{err}"
        );
        for (p, b) in params.iter().zip(before) {
            assert_eq!(*p.value(), *b, "a refused load changes nothing");
        }
    }

    #[test]
    fn a_resumed_position_must_fit_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CHECKPOINT_FILE);
        let cfg = small();
        let params = Model::new(&cfg).net().parameters();
        let opt = stepped(&params, 5);
        let check = |pos: Position, spe: u64, edit: &dyn Fn(&mut Resume<'_>)| {
            save(&path, &cfg, &params, &opt, &pos, spe).unwrap();
            let mut fresh = optimizer(&cfg, params.clone());
            let mut r = resume(&mut fresh);
            edit(&mut r);
            load(&path, &params, Some(r))
                .map(|_| ())
                .unwrap_err()
                .to_string()
        };
        let none = |_: &mut Resume<'_>| {};
        for (err, want) in [
            (
                check(position(5), 16, &|r| r.seed = 9),
                "seed` = 0, the run's configuration has seed 9",
            ),
            (
                check(position(5), 4, &none),
                "batch 1 of epoch 1; with the run's 16 steps per epoch it is batch 5 of epoch 0",
            ),
            (
                check(position(5), 16, &|r| r.total_steps = 4),
                "beyond the run's 4 steps",
            ),
            (
                check(
                    Position {
                        count: 6,
                        ..position(5)
                    },
                    16,
                    &none,
                ),
                "`count` = 6",
            ),
            (
                check(
                    Position {
                        loss_sum: f64::NAN,
                        ..position(5)
                    },
                    16,
                    &none,
                ),
                "`loss_sum` = NaN",
            ),
            (
                check(position(6), 16, &none),
                "`adam.steps` = 5, but the position is step 6",
            ),
        ] {
            assert!(err.contains(want), "{want}: {err}");
        }
    }
}
