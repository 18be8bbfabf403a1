//! `sae experiment tune`: every regularizer family over a grid of coefficients, scored
//! on held-out training images, then the chosen values combined.

use crate::config::Config;
use crate::data::{Mnist, Split, resolve_dir};
use crate::run::error::RunError;
use crate::study::protocol::{
    FAMILIES, Group, Protocol, Row, TUNED, Tuned, combine, tune_base, tune_rows,
};
use crate::study::runner::Context;
use crate::study::summary::{Chosen, RowSummary, RunResult, StudySummary, nonzero};
use crate::study::{Study, run_rows};

/// The validation split: the last `n` images of MNIST's training split.
fn validation_split(ctx: &Context<'_>, n: usize) -> Result<Split, RunError> {
    let mnist = Mnist::load(&resolve_dir(ctx.data_dir.as_deref())?)?;
    Ok(mnist.train.range(mnist.train.len() - n, n))
}

/// The most latent neurons, as a fraction, that a tuning run may leave dead or bursting on
/// the validation images and still count as healthy. Not zero: on the quick budget the
/// model whose 2 % of latent neurons stay silent reconstructs far better than the one that
/// silences none (the regularizer strong enough for that also silences most spikes).
pub const HEALTHY_LATENT: f64 = 0.05;

/// Whether a tuning run's latent layer is healthy (see [`HEALTHY_LATENT`]), and its
/// validation MSE.
fn score(r: &RunResult) -> (bool, f64) {
    let v = r.validation.as_ref().expect("tuning runs are validated");
    let within = |f: Option<f64>| f.is_some_and(|f| f <= HEALTHY_LATENT);
    let healthy = within(v.latent_dead_frac) && within(v.latent_bursting_frac);
    let mse = if v.mse.is_nan() { f64::INFINITY } else { v.mse };
    (healthy, mse)
}

/// The better of the candidates: healthy latents first, then the lower validation MSE.
pub(crate) fn best<'a>(candidates: impl Iterator<Item = (usize, &'a RunResult)>) -> Option<usize> {
    candidates
        .min_by(|(_, a), (_, b)| {
            let ((ha, ma), (hb, mb)) = (score(a), score(b));
            hb.cmp(&ha).then(ma.total_cmp(&mb))
        })
        .map(|(i, _)| i)
}

/// The coefficient search: every family over the grid, then the chosen values combined.
pub(crate) fn tune(ctx: &Context<'_>, p: &Protocol) -> Result<StudySummary, RunError> {
    let validation = validation_split(ctx, p.validation_images)?;
    let mut rows = tune_rows(p);
    let total = rows.len() + 2;
    let mut done = 0;
    let mut runs: Vec<RunResult> = run_rows(ctx, &rows, Some(&validation), &mut done, total)?
        .into_iter()
        .flatten()
        .collect();
    let mut chosen = [0.0f32; 3];
    let mut picked = vec![];
    for (fi, c) in chosen.iter_mut().enumerate() {
        let first = 1 + fi * p.grid.len();
        let i = best((first..first + p.grid.len()).map(|i| (i, &runs[i]))).expect("a grid");
        *c = p.grid[i - first];
        picked.push(i);
    }
    let base = tune_base(p);
    let combos = [
        [Some(chosen[0]), Some(chosen[1]), None],
        [Some(chosen[0]), Some(chosen[1]), Some(chosen[2])],
    ];
    let first_combo = rows.len();
    for (name, values) in ["potential-l2 + burst-l2", "all three"].iter().zip(&combos) {
        let row = Row {
            name: (*name).to_string(),
            group: Group::Tune,
            cfg: Config {
                coefficients: combine(values),
                ..base.clone()
            },
            seeds: vec![p.seeds[0]],
            probe_images: 0,
        };
        let new = run_rows(
            ctx,
            std::slice::from_ref(&row),
            Some(&validation),
            &mut done,
            total,
        )?;
        runs.extend(new.into_iter().flatten());
        rows.push(row);
    }
    let combo = best((first_combo..runs.len()).map(|i| (i, &runs[i]))).expect("two combinations");
    let overall = best(picked.iter().chain([&combo]).map(|&i| (i, &runs[i]))).expect("candidates");
    // A family alone as a combination: its value, the others unused.
    let alone = |fi: usize| {
        let mut v = [None; 3];
        v[fi] = Some(chosen[fi]);
        v
    };
    let tuned = Tuned {
        families: chosen,
        combined: combos[combo - first_combo],
        best: match picked.iter().position(|&i| i == overall) {
            Some(fi) => alone(fi),
            None => combos[combo - first_combo],
        },
    };
    let summaries: Vec<RowSummary> = rows
        .iter()
        .zip(&runs)
        .map(|(r, run)| RowSummary::of(r, std::slice::from_ref(run)))
        .collect();
    let families = FAMILIES
        .iter()
        .zip(&tuned.families)
        .map(|((name, _), v)| ((*name).to_string(), *v))
        .collect();
    if tuned != TUNED {
        ctx.say(&format!(
            "note: these choices differ from study::TUNED (the paper study's): {tuned:?}"
        ));
    }
    Ok(StudySummary {
        study: Study::Tune,
        budget: None,
        rule: Some(format!(
            "per family, the grid value with the lowest validation MSE among the runs that \
             leave at most {:.0} % of the latent neurons dead and at most {:.0} % bursting on \
             the validation images (the lowest MSE if none does); then the better of the \
             two combinations of the chosen values likewise, and the best of all likewise",
            100.0 * HEALTHY_LATENT,
            100.0 * HEALTHY_LATENT
        )),
        validation_images: Some(validation.len()),
        chosen: Some(Chosen {
            families,
            combined: rows[combo].name.clone(),
            combined_coefficients: nonzero(&combine(&tuned.combined)),
            best: rows[overall].name.clone(),
            best_coefficients: nonzero(&combine(&tuned.best)),
        }),
        rows: summaries,
        runs: 0,
        runs_wall_s: 0.0,
        call_wall_s: 0.0,
        command: String::new(),
    })
}
