//! What a finished run leaves in its folder: `eval.json`, the figures and `report.md`.

use std::path::Path;

use crate::config::{Config, ModelKind};
use crate::report::evaluation::{Evaluation, to_json};
use crate::report::figures;
use crate::run::error::RunError;
use crate::run::evaluate::SAMPLE_IMAGES;
use crate::run::folder::{
    EVAL_FILE, FIRING_RATES_FILE, LATENT_FILE, LOSS_FILE, RECONSTRUCTIONS_FILE, REPORT_FILE,
    STEPS_FILE, write_text,
};

/// Writes `eval.json`, the four figures and `report.md` into the run folder; refuses an
/// evaluation with a non-finite test MSE before writing anything.
pub fn write_outputs(
    dir: &Path,
    cfg: &Config,
    eval: &Evaluation,
    step: u64,
    wall_s: Option<f64>,
) -> Result<(), RunError> {
    if !eval.test_mse.is_finite() {
        return Err(RunError::Io(format!(
            "{}: not writing the outputs of an evaluation whose test MSE is {}",
            dir.display(),
            eval.test_mse
        )));
    }
    write_text(&dir.join(EVAL_FILE), &to_json(&eval.record()))?;
    let mut figures = vec![];
    let mut problems = vec![];
    let mut figure = |name: &str, result: std::io::Result<()>| match result {
        Ok(()) => figures.push(name.to_string()),
        Err(e) => problems.push(format!("{name}: {e}")),
    };
    figure(
        RECONSTRUCTIONS_FILE,
        figures::reconstructions(
            &dir.join(RECONSTRUCTIONS_FILE),
            &eval.originals,
            &eval.recons,
            SAMPLE_IMAGES,
        ),
    );
    if let (Some(raster), Some(latent)) = (&eval.raster, &eval.latent) {
        figure(
            LATENT_FILE,
            figures::latent_figure(&dir.join(LATENT_FILE), raster, &latent.class_correlation),
        );
    }
    if !eval.layers.is_empty() {
        figure(
            FIRING_RATES_FILE,
            figures::firing_rate_histograms(&dir.join(FIRING_RATES_FILE), &eval.layers),
        );
    }
    let (loss, mse) = step_curves(&dir.join(STEPS_FILE));
    figure(
        LOSS_FILE,
        figures::loss_curve(&dir.join(LOSS_FILE), &loss, &mse),
    );
    let report = report(dir, cfg, eval, step, wall_s, &figures);
    write_text(&dir.join(REPORT_FILE), &report)?;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(RunError::Io(format!(
            "could not draw: {}",
            problems.join("; ")
        )))
    }
}

/// `(step, value)` points of a curve.
pub type Curve = Vec<(f64, f64)>;

/// Training loss and MSE per step from the step log (`steps.tsv` at `path`), as running
/// means over 20 steps; empty curves if the log cannot be read.
pub fn step_curves(path: &Path) -> (Curve, Curve) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let rows: Vec<(f64, f64, f64)> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<f64> = l.split('\t').filter_map(|v| v.parse().ok()).collect();
            (f.len() == 4).then(|| (f[0], f[1], f[2]))
        })
        .collect();
    const WINDOW: usize = 20;
    let smooth = |k: usize| -> Curve {
        rows.iter()
            .enumerate()
            .map(|(i, r)| {
                let from = (i + 1).saturating_sub(WINDOW);
                let w = &rows[from..=i];
                let v = w
                    .iter()
                    .map(|r| if k == 1 { r.1 } else { r.2 })
                    .sum::<f64>()
                    / w.len() as f64;
                (r.0, v)
            })
            .collect()
    };
    (smooth(1), smooth(2))
}

fn report(
    dir: &Path,
    cfg: &Config,
    eval: &Evaluation,
    step: u64,
    wall_s: Option<f64>,
    figures: &[String],
) -> String {
    let name = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let model = match cfg.model {
        ModelKind::Sae => "spiking auto-encoder",
        ModelKind::Ae => "conv auto-encoder (baseline)",
        ModelKind::Vae => "conv VAE (baseline)",
    };
    let mut r = format!("# Run `{name}`\n\n");
    r += &format!(
        "{model}; T = {}, batch {}, {} epoch(s), lr {}, channels {:?}, latent {}; {} training \
         and {} test images; {step} optimizer steps",
        cfg.steps,
        cfg.batch,
        cfg.epochs,
        cfg.lr,
        cfg.channels,
        cfg.latent,
        if cfg.train_images == 0 {
            "all".to_string()
        } else {
            cfg.train_images.to_string()
        },
        eval.images,
    );
    if let Some(w) = wall_s {
        r += &format!(", {w:.0} s of wall time in the last session");
    }
    r += ". The full configuration is in `config.toml`.\n\n";
    r += &format!(
        "**Test MSE: {:.5}** (mean per-pixel squared error",
        eval.test_mse
    );
    r += &match &eval.sampled_mse {
        Some(s) => format!(
            ", decoding z = μ). With z sampled (z = μ + σ·ε, ε fixed by the seed and the \
             image): {s} (mean ± standard deviation over the test images of the per-image \
             MSE).\n\n"
        ),
        None => ").\n\n".into(),
    };
    if !eval.layers.is_empty() {
        r += "| layer | neurons | dead | bursting | density |\n|---|---:|---:|---:|---:|\n";
        for l in &eval.layers {
            r += &format!(
                "| {} | {} | {:.1} % | {:.1} % | {:.4} |\n",
                l.name,
                l.neurons,
                100.0 * l.dead_frac,
                100.0 * l.bursting_frac,
                l.density
            );
        }
        r += &format!(
            "\nDead: never fired on the test images; bursting: above {} spikes per step; \
             density: spikes per alive neuron and step.\n\n",
            cfg.burst_threshold
        );
    }
    if let Some(l) = &eval.latent {
        r += &format!(
            "Latent code: linear-probe accuracy {:.1} %, within/between-class correlation \
             ratio {:.2}.\n\n",
            100.0 * l.probe_accuracy,
            l.within_between_ratio
        );
    }
    if let Some(e) = &eval.energy {
        r += &format!(
            "Energy per image: {:.3e} synaptic operations vs {:.3e} dense MACs: {:.2} µJ \
             (at 0.9 pJ per accumulate{}) vs {:.2} µJ for the dense network (4.6 pJ per MAC).\n\n",
            e.sops_per_image,
            e.dense_macs_per_image,
            e.snn_energy_uj,
            if e.snn_macs_per_image > 0.0 {
                ", plus the analog input layer's MACs"
            } else {
                ""
            },
            e.ann_energy_uj
        );
    }
    for f in figures {
        r += &format!("![{f}]({f})\n");
    }
    r
}
