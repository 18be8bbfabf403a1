//! Pictures of images and spikes: reconstructions, rasters, heat maps, histograms.

use std::io;
use std::path::Path;

use autograd::Tensor;
use ndarray::Array2;

use super::canvas::*;
use crate::config::SIDE;
use crate::report::spikes::LayerReport;

/// If there is no image to show, or writing the file fails.
/// A grid of MNIST images: the first `n` `originals` on the top row(s), their
/// `reconstructions` in the same places below, each pixel ×3, 2-pixel grey gaps,
/// ten images per row. Both inputs are `28·28` pixels per image, image
/// after image (e.g. the contiguous data of `[B, 1, 28, 28]`); pixels are clamped to
/// `[0, 1]`, 0 black. Fewer than `n` images are shown if fewer are given.
///
/// # Errors
/// If there is no image to show, or writing the file fails.
pub fn reconstructions(path: &Path, originals: &[f32], recons: &[f32], n: usize) -> io::Result<()> {
    let px = SIDE * SIDE;
    let n = n.min(originals.len() / px).min(recons.len() / px);
    if n == 0 {
        return Err(invalid(format!(
            "{}: no image to show ({} original and {} reconstructed pixels, {px} per image)",
            path.display(),
            originals.len(),
            recons.len()
        )));
    }
    let (cols, rows) = (n.min(PER_ROW), n.div_ceil(PER_ROW));
    let (cell, gap, split) = (SIDE * ZOOM, 2, 6);
    let block = rows * (cell + gap);
    let width = cols * (cell + gap) + gap;
    let height = 2 * block + gap + split;
    let mut canvas = Canvas::new(width, height, GAP);
    // The two blocks are set apart by a white band.
    canvas.rect(0, (block + gap) as i64, width, split - gap, WHITE);
    for (b, images) in [originals, recons].into_iter().enumerate() {
        let top = b * (block + split);
        for (i, image) in images.chunks_exact(px).take(n).enumerate() {
            let x = gap + (i % PER_ROW) * (cell + gap);
            let y = top + gap + (i / PER_ROW) * (cell + gap);
            canvas.image(x, y, image);
        }
    }
    canvas.save(path)
}

/// Labelled rows of MNIST images, to compare models: each row's label at the left (e.g.
/// `ORIGINAL`, `AE`, `SAE BEST`), then the first `n` images of its pixels on one line,
/// drawn as in [`reconstructions`] (each pixel ×3, clamped to `[0, 1]`, 0 black, 2-pixel
/// grey gaps). Each row's pixels are `28·28` per image, image after image; a row with
/// fewer than `n` images shows those it has.
///
/// # Errors
/// If there is no row, `n` is 0, a row holds less than one image, or writing the file
/// fails.
pub fn reconstruction_rows(path: &Path, rows: &[(&str, &[f32])], n: usize) -> io::Result<()> {
    let px = SIDE * SIDE;
    if rows.is_empty() || n == 0 {
        return Err(invalid(format!(
            "{}: no image to show ({} rows, n = {n})",
            path.display(),
            rows.len()
        )));
    }
    if let Some((label, pixels)) = rows.iter().find(|(_, pixels)| pixels.len() < px) {
        return Err(invalid(format!(
            "{}: row {label:?} has {} pixels, less than one image ({px})",
            path.display(),
            pixels.len()
        )));
    }
    let cols = rows
        .iter()
        .map(|(_, pixels)| (pixels.len() / px).min(n))
        .max()
        .unwrap_or(0);
    let (cell, gap, margin) = (SIDE * ZOOM, 2, 12);
    let label_w = rows
        .iter()
        .map(|(label, _)| text_width(label, 2))
        .max()
        .unwrap_or(0);
    let strip = margin + label_w + margin; // the images' grey band starts here
    let width = strip + cols * (cell + gap) + gap;
    let height = rows.len() * (cell + gap) + gap;
    let mut canvas = Canvas::new(width, height, WHITE);
    canvas.rect(strip as i64, 0, width - strip, height, GAP);
    for (r, (label, pixels)) in rows.iter().enumerate() {
        let y = gap + r * (cell + gap);
        canvas.text(margin as i64, (y + cell / 2 - 5) as i64, label, 2, BLACK);
        for (i, image) in pixels.chunks_exact(px).take(n).enumerate() {
            canvas.image(strip + gap + i * (cell + gap), y, image);
        }
    }
    canvas.save(path)
}

/// The spike raster `[T, N]` of one image in a layer whose spikes are `[T·B, …]`
/// (time-major, e.g. [`LayerActivity::spikes`](crate::model::LayerActivity)), for image
/// `image` of the batch.
///
/// # Panics
/// If the tensor's first dimension is not a multiple of `steps` or `image` is not in the
/// batch.
pub fn raster_of(spikes: &Tensor, steps: usize, image: usize) -> Array2<f32> {
    let frames = spikes.shape().first().copied().unwrap_or(0);
    assert!(
        steps > 0 && frames % steps == 0 && image < frames / steps,
        "raster_of: spikes {:?} hold no image {image} at T = {steps}",
        spikes.shape()
    );
    let batch = frames / steps;
    let n = spikes.len() / frames;
    let flat = spikes.as_standard_layout();
    let flat = flat.as_slice().expect("standard layout");
    Array2::from_shape_fn((steps, n), |(t, j)| flat[(t * batch + image) * n + j])
}

/// The latent layer at a glance: left, the spike raster of one image (`raster [T, N]`,
/// see [`raster_of`]; time runs left to right, one row per neuron, a spike black);
/// right, `class_correlation` (10×10, e.g. [`LatentReport`](crate::metrics::LatentReport))
/// as a blue (−1) – white (0) – red (+1) heat map with class labels and a colour bar.
///
/// # Errors
/// If the raster is empty, the matrix not square, or writing the file fails.
pub fn latent_figure(
    path: &Path,
    raster: &Array2<f32>,
    class_correlation: &[Vec<f64>],
) -> io::Result<()> {
    let (steps, neurons) = raster.dim();
    let classes = class_correlation.len();
    if steps == 0 || neurons == 0 || class_correlation.iter().any(|r| r.len() != classes) {
        return Err(invalid(format!(
            "{}: raster {steps}×{neurons} or a {classes}-row correlation matrix that is not \
             square",
            path.display()
        )));
    }
    let margin = 12;
    let title = 16; // a line of scale-2 text and a gap
    // Raster cells sized to about 300 pixels on the longer side.
    let px = (300 / steps.max(neurons)).clamp(1, 8);
    let (rw, rh) = (steps * px, neurons * px);
    let cell = 24;
    let label = 14; // class labels left of and above the heat map
    let hm = classes * cell;
    let (bar_w, bar_gap) = (12, 10);
    let caption = format!("X TIME (T={steps}) Y NEURON (N={neurons})");
    let left_w = (rw + 2)
        .max(text_width("LATENT SPIKES", 2))
        .max(text_width(&caption, 2));
    let hx = margin + left_w + 3 * margin + label; // heat map's left edge
    let width = hx + hm + bar_gap + bar_w + 6 + text_width("-1", 2) + margin;
    let height = margin + title + (rh + 2 + 16).max(label + hm) + margin;
    let mut c = Canvas::new(width, height, WHITE);

    let top = (margin + title) as i64;
    c.text(margin as i64, margin as i64, "LATENT SPIKES", 2, BLACK);
    c.frame(margin as i64, top, rw + 2, rh + 2, GAP);
    for ((t, j), &v) in raster.indexed_iter() {
        if v != 0.0 {
            let (x, y) = (margin + 1 + t * px, margin + title + 1 + j * px);
            c.rect(x as i64, y as i64, px, px, BLACK);
        }
    }
    c.text(margin as i64, top + rh as i64 + 6, &caption, 2, BLACK);

    c.text(
        (hx - label) as i64,
        margin as i64,
        "CLASS CORRELATION",
        2,
        BLACK,
    );
    let hy = margin + title + label;
    for (a, row) in class_correlation.iter().enumerate() {
        let digit = (a % 10).to_string();
        let centre = (a * cell + cell / 2 - 5) as i64;
        c.text((hx - label) as i64, hy as i64 + centre, &digit, 2, BLACK);
        c.text(
            hx as i64 + centre + 2,
            (hy - label) as i64,
            &digit,
            2,
            BLACK,
        );
        for (b, &v) in row.iter().enumerate() {
            let (x, y) = (hx + b * cell, hy + a * cell);
            c.rect(x as i64, y as i64, cell, cell, diverging(v));
        }
    }
    c.frame(hx as i64 - 1, hy as i64 - 1, hm + 2, hm + 2, GAP);
    let bx = hx + hm + bar_gap;
    for y in 0..hm {
        let v = 1.0 - 2.0 * (y as f64 + 0.5) / hm as f64;
        c.rect(bx as i64, (hy + y) as i64, bar_w, 1, diverging(v));
    }
    c.frame(bx as i64 - 1, hy as i64 - 1, bar_w + 2, hm + 2, GAP);
    let lx = (bx + bar_w + 6) as i64;
    c.text(lx, hy as i64, "1", 2, BLACK);
    c.text(lx, (hy + hm / 2 - 5) as i64, "0", 2, BLACK);
    c.text(lx, (hy + hm - 10) as i64, "-1", 2, BLACK);
    c.save(path)
}

/// One bar chart per layer, stacked top to bottom: the firing-rate histogram (rates 0 to
/// 1 spike per step, left to right), bar heights proportional to `ln(1 + neurons)` so
/// that a large dead bin does not flatten the rest, under a label with the layer's name,
/// dead and bursting percentages and density.
///
/// # Errors
/// If there is no layer, or writing the file fails.
pub fn firing_rate_histograms(path: &Path, layers: &[LayerReport]) -> io::Result<()> {
    if layers.is_empty() {
        return Err(invalid(format!("{}: no layer to plot", path.display())));
    }
    let labels: Vec<String> = layers
        .iter()
        .map(|l| {
            format!(
                "{} N={} DEAD {:.1}% BURST {:.1}% DENSITY {:.3}",
                l.name,
                l.neurons,
                100.0 * l.dead_frac,
                100.0 * l.bursting_frac,
                l.density
            )
        })
        .collect();
    let (margin, bar_w, bars_h) = (12, 16, 64);
    let bins = layers.iter().map(|l| l.histogram.len()).max().unwrap_or(0);
    let chart_w = bins.max(1) * bar_w;
    let label_w = labels.iter().map(|s| text_width(s, 2)).max().unwrap_or(0);
    let width = 2 * margin + chart_w.max(label_w);
    let panel = 14 + bars_h + 2 + 12 + 12; // label, bars, axis, tick labels, spacing
    let height = 2 * margin + layers.len() * panel;
    let mut c = Canvas::new(width, height, WHITE);
    for (i, (layer, label)) in layers.iter().zip(&labels).enumerate() {
        let y0 = (margin + i * panel) as i64;
        c.text(margin as i64, y0, label, 2, BLACK);
        let base = y0 + 14 + bars_h as i64; // the axis row
        let max = layer.histogram.iter().copied().max().unwrap_or(0);
        let scale = (1.0 + max as f64).ln();
        for (b, &count) in layer.histogram.iter().enumerate() {
            let h = if max == 0 {
                0
            } else {
                ((1.0 + count as f64).ln() / scale * bars_h as f64).round() as usize
            };
            let x = (margin + b * bar_w) as i64;
            c.rect(x + 1, base - h as i64, bar_w - 2, h, BAR);
        }
        c.line(
            (margin as i64, base),
            ((margin + chart_w) as i64 - 1, base),
            BLACK,
        );
        c.text(margin as i64, base + 4, "0", 2, BLACK);
        let one = (margin + chart_w - text_width("1", 2)) as i64;
        c.text(one, base + 4, "1", 2, BLACK);
        let mid = "SPIKES/STEP";
        c.text(
            (margin + (chart_w - text_width(mid, 2).min(chart_w)) / 2) as i64,
            base + 4,
            mid,
            2,
            GAP,
        );
    }
    c.save(path)
}
