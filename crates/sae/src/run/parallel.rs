//! Data-parallel training over the ranks of a [`Group`]: what each rank checks before the
//! first step (the same job, a batch the ranks can share), the sum of the gradients, and
//! how a failure on one rank reaches the others instead of leaving them waiting.

use autograd::Parameter;

use crate::cluster::{FNV_START, Group, fnv1a};
use crate::config::Config;
use crate::run::error::RunError;

/// Refuses what the ranks cannot compute together: a batch (or an epoch's last, smaller
/// batch) with fewer images than ranks, and a regularizer that couples a batch's images.
pub fn check_shares(cfg: &Config, n_train: usize, group: &Group) -> Result<(), RunError> {
    let ranks = group.size();
    if ranks == 1 {
        return Ok(());
    }
    if cfg.batch < ranks {
        return Err(RunError::Usage(format!(
            "batch = {}: a global batch shared by {ranks} ranks needs at least one image \
             per rank (--batch {ranks} or more)",
            cfg.batch
        )));
    }
    let last = n_train % cfg.batch;
    if last != 0 && last < ranks {
        return Err(RunError::Usage(format!(
            "train_images: {n_train} images in batches of {} leave a last batch of {last}, \
             fewer than the {ranks} ranks; choose train_images or batch so that it has at \
             least {ranks}",
            cfg.batch
        )));
    }
    if cfg.coefficients.neuron_l2 != 0.0 {
        return Err(RunError::Usage(
            "neuron_l2: the per-neuron rate of a batch couples its images, so the ranks' \
             shares cannot be summed; train it on one process"
                .into(),
        ));
    }
    Ok(())
}

/// Refuses ranks started with a different `job` (the resolved configuration, a study's
/// name and budget) or a different `sae` binary.
pub fn check_same_job(job: &str, group: &Group) -> Result<(), RunError> {
    if group.size() == 1 {
        return Ok(());
    }
    let exe = std::env::current_exe()
        .and_then(std::fs::read)
        .unwrap_or_default();
    let hash = fnv1a(exe, fnv1a(job.bytes(), FNV_START));
    let differ = group.disagreeing(hash);
    if differ.is_empty() {
        Ok(())
    } else {
        Err(RunError::Usage(format!(
            "ranks {differ:?} run another configuration or another sae binary than rank 0; \
             start every rank with the same binary and flags"
        )))
    }
}

/// Every rank's `result` agreed on collectively: an error on any rank is an error on
/// all (each rank returns its own, or one naming the ranks that failed), so none goes on
/// to wait for the others.
pub fn agree<T>(group: &Group, result: Result<T, RunError>) -> Result<T, RunError> {
    if group.size() == 1 {
        return result;
    }
    let failed: Vec<usize> = group
        .gather_u64(u64::from(result.is_err()))
        .iter()
        .enumerate()
        .filter(|(_, f)| **f != 0)
        .map(|(r, _)| r)
        .collect();
    match result {
        Err(e) => Err(e),
        Ok(_) if !failed.is_empty() => Err(RunError::Io(format!(
            "rank(s) {failed:?} failed (their messages say why); this rank stops too"
        ))),
        Ok(v) => Ok(v),
    }
}

/// A rank-0 action whose failure must end every rank (a write to the run folder): on
/// error, says so and aborts the job with the error's exit code.
pub fn or_abort<T>(group: &Group, result: Result<T, RunError>) -> Result<T, RunError> {
    if let (Err(e), true) = (&result, group.size() > 1) {
        eprintln!("{}error: {e}", crate::cluster::rank_prefix());
        group.abort_others(e.exit_code());
    }
    result
}

/// Replaces every parameter's gradient by its sum over the ranks (one all-reduce of all
/// gradients, in parameter order).
pub fn sum_gradients(params: &[Parameter], group: &Group) {
    if group.size() == 1 {
        return;
    }
    let mut flat: Vec<f32> = Vec::new();
    for p in params {
        if let Some(g) = p.grad() {
            flat.extend(g.iter());
        }
    }
    group.sum_f32(&mut flat);
    let mut at = 0;
    for p in params {
        p.update_grad(|g| {
            for (v, s) in g.iter_mut().zip(&flat[at..]) {
                *v = *s;
            }
            at += g.len();
        });
    }
}

/// A hash of every parameter's bits, to check that all ranks hold the same.
pub fn params_hash(params: &[Parameter]) -> u64 {
    params.iter().fold(FNV_START, |h, p| {
        fnv1a(p.value().iter().flat_map(|v| v.to_le_bytes()), h)
    })
}

/// Refuses to go on when a rank's parameters differ from rank 0's.
pub fn check_same_params(params: &[Parameter], group: &Group, step: u64) -> Result<(), RunError> {
    if group.size() == 1 {
        return Ok(());
    }
    let differ = group.disagreeing(params_hash(params));
    if differ.is_empty() {
        Ok(())
    } else {
        Err(RunError::Diverged(format!(
            "at step {step} the parameters of ranks {differ:?} differ from rank 0's; the \
             ranks no longer compute one run (the checkpoint on disk is from before)"
        )))
    }
}
