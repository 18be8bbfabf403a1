//! The study's outputs for people: `report.md` (the tables) and `figures/`.

use std::fmt::Write as _;
use std::path::Path;

use crate::config::ModelKind;
use crate::report::energy::PJ_PER_MAC;
use crate::report::figures::{self, Axes, Series, svg_path};
use crate::run::error::{RunError, io_err};
use crate::run::folder::{CHECKPOINT_FILE, FIRING_RATES_FILE, LATENT_FILE};
use crate::run::load_run;
use crate::study::protocol::{Group, Row};
use crate::study::runner::Context;
use crate::study::summary::{RowSummary, RunResult, StudySummary};

/// The study's figures in `<out>/figures/`: reconstructions of every model (PNG),
/// firing-rate histograms and latent figures of chosen runs and MSE against synaptic
/// operations (each PNG and SVG).
pub(crate) fn figures(
    ctx: &Context<'_>,
    rows: &[Row],
    runs: &[Vec<RunResult>],
    summaries: &[RowSummary],
) -> Result<(), RunError> {
    let dir = ctx.out.join("figures");
    std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
    let first = |name: &str| -> Option<(&Row, &RunResult)> {
        let i = rows.iter().position(|r| r.name == name)?;
        Some((&rows[i], runs[i].first()?))
    };
    // Reconstructions of the first seed of each main model.
    let mut pictures: Vec<(String, Vec<f32>)> = vec![];
    for name in ["ae", "vae", "sae-unregularized", "sae-best"] {
        if let Some((row, run)) = first(name) {
            let loaded = load_run(
                &row.seeded(row.seeds[0]),
                &run.dir.join(CHECKPOINT_FILE),
                ctx.data_dir.as_deref(),
            )?;
            let (originals, recons) = loaded.reconstruction(10);
            if pictures.is_empty() {
                pictures.push(("original".into(), originals));
            }
            pictures.push((name.to_string(), recons));
        }
    }
    let path = dir.join("reconstructions.png");
    let refs: Vec<(&str, &[f32])> = pictures
        .iter()
        .map(|(l, p)| (l.as_str(), p.as_slice()))
        .collect();
    figures::reconstruction_rows(&path, &refs, 10).map_err(|e| io_err(&path, e))?;
    // Per-run charts, copied: the PNG and the SVG beside it.
    for (name, file, to) in [
        (
            "sae-unregularized",
            FIRING_RATES_FILE,
            "firing_rates_unregularized.png",
        ),
        ("sae-best", FIRING_RATES_FILE, "firing_rates_best.png"),
        (
            "sae-unregularized",
            LATENT_FILE,
            "latent_sae_unregularized.png",
        ),
        ("sae-best", LATENT_FILE, "latent_sae_best.png"),
        ("vae", LATENT_FILE, "latent_vae.png"),
        ("ae", LATENT_FILE, "latent_ae.png"),
    ] {
        if let Some((_, run)) = first(name) {
            let (from, to) = (run.dir.join(file), dir.join(to));
            for (from, to) in [(from.clone(), to.clone()), (svg_path(&from), svg_path(&to))] {
                std::fs::copy(&from, &to).map_err(|e| io_err(&from, e))?;
            }
        }
    }
    mse_vs_sops(&dir, summaries)
}

/// `mse_vs_sops.png` (and `.svg`) in `dir`: test MSE against synaptic operations per
/// image, the T sweeps as curves, the spiking model's main rows as points. Drawn from
/// the summaries alone, so a study's committed `summary.json` is enough to redraw it.
///
/// # Errors
/// If drawing or writing a file fails.
pub fn mse_vs_sops(dir: &Path, summaries: &[RowSummary]) -> Result<(), RunError> {
    let point = |r: &RowSummary| r.sops_per_image.zip(r.test_mse);
    let mut curves: Vec<(String, Vec<(f64, f64)>)> = vec![];
    for prefix in ["sae-unregularized-t", "sae-best-t"] {
        let pts: Vec<(f64, f64)> = summaries
            .iter()
            .filter(|r| r.group == Group::Sweep && r.name.starts_with(prefix))
            .filter_map(point)
            .collect();
        curves.push((format!("{}, T sweep", prefix.trim_end_matches("-t")), pts));
    }
    for r in summaries
        .iter()
        .filter(|r| r.group == Group::Main && r.model == ModelKind::Sae)
    {
        if let Some(p) = point(r) {
            // A row that is another (sae-best is often one family alone) joins its label
            // rather than hiding its marker.
            match curves.iter_mut().find(|(_, pts)| pts[..] == [p]) {
                Some((label, _)) => *label = format!("{label} = {}", r.name),
                None => curves.push((r.name.clone(), vec![p])),
            }
        }
    }
    let series: Vec<Series<'_>> = curves
        .iter()
        .map(|(label, points)| Series { label, points })
        .collect();
    let path = dir.join("mse_vs_sops.png");
    figures::line_plot(
        &path,
        &Axes {
            title: "Test MSE against synaptic operations per image",
            x_label: "Synaptic operations per image",
            y_label: "Test MSE",
            x_log: true,
            y_log: Some(false),
        },
        &series,
    )
    .map_err(|e| io_err(&path, e))
}

fn fmt_opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or("–".into(), f)
}

/// The study's tables as Markdown.
pub(crate) fn markdown(summary: &StudySummary) -> String {
    let pct = |v: Option<f64>| fmt_opt(v, |x| format!("{:.1} %", 100.0 * x));
    let sci = |v: Option<f64>| fmt_opt(v, |x| format!("{x:.3e}"));
    let coefs = |r: &RowSummary| {
        if r.coefficients.is_empty() {
            "–".to_string()
        } else {
            r.coefficients
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let mut s = format!(
        "# `{}`\n\nWritten by the command; every number is from the run folders under `runs/` \
         (`summary.json` holds them all). Mean over seeds, ± sample standard deviation.\n\n",
        summary.command
    );
    let mean_sd = |mean: Option<f64>, sd: Option<f64>| {
        let m = fmt_opt(mean, |x| format!("{x:.4}"));
        match sd {
            Some(sd) => format!("{m} ± {sd:.4}"),
            None => m,
        }
    };
    let mse = |r: &RowSummary| mean_sd(r.test_mse, r.test_mse_std);
    for (group, title) in [
        (Group::Main, "Models"),
        (Group::Tune, "Tuning candidates"),
        (Group::Sweep, "T sweep"),
    ] {
        let rs: Vec<&RowSummary> = summary.rows.iter().filter(|r| r.group == group).collect();
        if rs.is_empty() {
            continue;
        }
        let tuning = group == Group::Tune;
        // The VAE's sampled-z column, in the tables that have a VAE row with it.
        let sampled = rs.iter().any(|r| r.sampled_mse.is_some());
        let mut head = vec!["row", "T", "coefficients", "seeds", "test MSE"];
        if sampled {
            head.push("test MSE, z sampled");
        }
        head.extend([
            "latent dead",
            "latent bursting",
            "latent density",
            "probe acc.",
            "within/between",
            "SOPs (MACs) per image",
            "energy vs AE",
            "wall s",
        ]);
        if tuning {
            head.extend(["validation MSE", "validation latent dead"]);
        }
        let _ = writeln!(
            s,
            "## {title}\n\n| {} |\n|{}",
            head.join(" | "),
            "---|".repeat(head.len())
        );
        for r in rs {
            let ops = match (r.sops_per_image, r.macs_per_image) {
                (Some(sops), _) => sci(Some(sops)),
                (None, Some(macs)) => format!("({macs:.3e})"),
                _ => "–".into(),
            };
            let mut cells = vec![
                r.name.clone(),
                r.steps.to_string(),
                coefs(r),
                r.seeds.len().to_string(),
                mse(r),
            ];
            if sampled {
                cells.push(mean_sd(r.sampled_mse, r.sampled_mse_std));
            }
            cells.extend([
                pct(r.latent_dead_frac),
                pct(r.latent_bursting_frac),
                fmt_opt(r.latent_density, |x| format!("{x:.3}")),
                pct(r.probe_accuracy),
                fmt_opt(r.within_between_ratio, |x| format!("{x:.2}")),
                ops,
                fmt_opt(r.energy_vs_ae, |x| format!("{x:.3}×")),
                fmt_opt(r.wall_s, |x| format!("{x:.0}")),
            ]);
            if tuning {
                let v = r.validation.as_ref();
                cells.push(fmt_opt(v.map(|v| v.mse).filter(|m| m.is_finite()), |x| {
                    format!("{x:.4}")
                }));
                cells.push(pct(v.and_then(|v| v.latent_dead_frac)));
            }
            let _ = writeln!(s, "| {} |", cells.join(" | "));
        }
        let _ = writeln!(s);
        if sampled {
            let _ = writeln!(
                s,
                "The VAE's test MSE decodes z = μ; \"z sampled\" decodes z = μ + σ·ε, ε fixed \
                 by the seed and the test image.\n"
            );
        }
    }
    let spiking: Vec<&RowSummary> = summary
        .rows
        .iter()
        .filter(|r| r.model == ModelKind::Sae && r.group != Group::Tune)
        .collect();
    if !spiking.is_empty() {
        let _ = writeln!(s, "## Every layer (dead / bursting / density)\n");
        let names: Vec<&str> = spiking[0].layers.iter().map(|l| l.name.as_str()).collect();
        let _ = writeln!(
            s,
            "| row | {} |\n|---|{}",
            names.join(" | "),
            "---|".repeat(names.len())
        );
        for r in spiking {
            let cells: Vec<String> = names
                .iter()
                .map(|n| {
                    r.layers
                        .iter()
                        .find(|l| l.name == *n)
                        .map_or("–".into(), |l| {
                            format!(
                                "{} / {} / {}",
                                pct(l.dead_frac),
                                pct(l.bursting_frac),
                                fmt_opt(l.density, |x| format!("{x:.3}"))
                            )
                        })
                })
                .collect();
            let _ = writeln!(s, "| {} | {} |", r.name, cells.join(" | "));
        }
        let _ = writeln!(s);
    }
    if let Some(macs) = summary.rows.iter().find_map(|r| r.dense_macs_per_frame) {
        let _ = writeln!(
            s,
            "The dense AE of the same shapes does {macs:.3e} MACs per image ({:.2} µJ at \
             {PJ_PER_MAC} pJ per MAC); \"energy vs AE\" divides the spiking model's \
             synaptic operations at 0.9 pJ each by it.\n",
            macs * PJ_PER_MAC * 1e-6
        );
    }
    if let Some(chosen) = &summary.chosen {
        let _ = writeln!(
            s,
            "## Chosen\n\n{}\n\nRule: {}\n",
            serde_json::to_string_pretty(chosen).expect("records serialize"),
            summary.rule.as_deref().unwrap_or("")
        );
    }
    let _ = writeln!(
        s,
        "Wall time: {:.0} s training and evaluating its {} runs (summed over runs and \
         over the calls that worked on them); the last call took {:.0} s.",
        summary.runs_wall_s, summary.runs, summary.call_wall_s
    );
    s
}
