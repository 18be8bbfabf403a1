//! Grids of MNIST images (test images and their reconstructions), as PNG only: they are
//! pictures, not charts, drawn pixel for pixel.

use std::io;
use std::path::Path;

use super::canvas::*;
use super::render::invalid;
use super::theme;
use crate::config::SIDE;

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
/// `original`, `ae`, `sae-best`), then the first `n` images of its pixels on one line,
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
    let mut label_w = 0;
    for (label, _) in rows {
        label_w = label_w.max(text_width(label, theme::LEGEND)?);
    }
    let strip = margin + label_w + margin; // the images' grey band starts here
    let width = strip + cols * (cell + gap) + gap;
    let height = rows.len() * (cell + gap) + gap;
    let mut canvas = Canvas::new(width, height, WHITE);
    canvas.rect(strip as i64, 0, width - strip, height, GAP);
    for (r, (label, pixels)) in rows.iter().enumerate() {
        let y = gap + r * (cell + gap);
        canvas.text(margin as i32, (y + cell / 2) as i32, label, theme::LEGEND)?;
        for (i, image) in pixels.chunks_exact(px).take(n).enumerate() {
            canvas.image(strip + gap + i * (cell + gap), y, image);
        }
    }
    canvas.save(path)
}
