//! The checkpoint: parameters, optimizer state and the position in the run, in one
//! safetensors file written atomically; loading checks every tensor's name and shape
//! before it changes anything.

use std::collections::HashMap;
use std::path::Path;

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
}

/// Writes parameters, optimizer state and position atomically.
pub fn save(
    path: &Path,
    cfg: &Config,
    params: &[Parameter],
    opt: &Adam,
    pos: &Position,
    spe: u64,
) -> Result<(), RunError> {
    let values: Vec<(String, std::rc::Rc<Tensor>)> = params
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

/// Loads a checkpoint into `params` (and `opt`, when given). Checks everything before
/// changing anything: a tensor the model lacks, one it needs, or a shape that differs is
/// an error naming the tensor and both shapes.
pub fn load(
    path: &Path,
    params: &[Parameter],
    opt: Option<&mut Adam>,
) -> Result<Position, RunError> {
    let bad = |m: String| RunError::Checkpoint(format!("{}: {m}", path.display()));
    if !path.is_file() {
        return Err(bad("no such file".into()));
    }
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
    };
    if let Some(opt) = opt {
        let state = file
            .tensors
            .iter()
            .filter(|(n, _)| is_state(n))
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect();
        opt.load_state(&state).map_err(bad)?;
    }
    for p in params {
        p.set_value(file.tensors[p.name()].clone());
    }
    Ok(pos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Model;
    use crate::run::folder::CHECKPOINT_FILE;
    use crate::run::small_config as small;
    use crate::run::train::optimizer;

    #[test]
    fn checkpoints_round_trip_and_refuse_other_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CHECKPOINT_FILE);
        let cfg = small();
        let model = Model::new(&cfg);
        let params = model.net().params();
        let opt = optimizer(&cfg, params.clone());
        let pos = Position {
            step: 7,
            loss_sum: 0.1 + 0.2,
            mse_sum: 1.0 / 3.0,
            count: 3,
            schedule: Schedule {
                checkpoint_every: 5,
                eval_every: 2,
                probe_images: 1,
            },
        };
        save(&path, &cfg, &params, &opt, &pos, 16).unwrap();
        let other = Model::new(&Config {
            seed: 1,
            ..cfg.clone()
        });
        let mut opt2 = optimizer(&cfg, other.net().params());
        let back = load(&path, &other.net().params(), Some(&mut opt2)).unwrap();
        assert_eq!(back, pos);
        for (a, b) in params.iter().zip(other.net().params()) {
            assert_eq!(*a.value(), *b.value());
        }
        let wider = Model::new(&Config { latent: 33, ..cfg });
        let err = load(&path, &wider.net().params(), None)
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
}
