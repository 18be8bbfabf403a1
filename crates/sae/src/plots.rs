//! The run's figures as PNG files, drawn pixel by pixel on an RGB canvas (no plotting
//! library): reconstructions (also as labelled rows, one per model), the latent raster
//! beside the class-correlation heat map, per-layer firing-rate histograms, and x–y line
//! plots such as the loss curve. Labels use a built-in 3×5 pixel font (digits, upper-case
//! letters, a few signs): lower case is drawn as upper case, a character the font lacks
//! as `?`. Every file is written atomically: a temporary file in the same folder, renamed
//! over the target.

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use autograd::Tensor;
use ndarray::Array2;

use crate::metrics::LayerReport;
use crate::model::SIDE;

type Rgb = [u8; 3];

const WHITE: Rgb = [255, 255, 255];
const BLACK: Rgb = [0, 0, 0];
const GAP: Rgb = [160, 160, 160];
const GRID: Rgb = [225, 225, 225];
const RED: Rgb = [178, 24, 43];
const BLUE: Rgb = [33, 102, 172];
const BAR: Rgb = [70, 110, 170];
/// Colours of a [`line_plot`]'s series, in order, repeating after the last.
const PALETTE: [Rgb; 8] = [
    RED,
    BLUE,
    [27, 120, 55],  // green
    [230, 120, 0],  // orange
    [118, 42, 131], // purple
    [0, 150, 160],  // teal
    [140, 81, 10],  // brown
    [90, 90, 90],   // grey
];

/// Scale of reconstructions: one MNIST pixel becomes `ZOOM × ZOOM`.
const ZOOM: usize = 3;
/// Images per row of [`reconstructions`].
const PER_ROW: usize = 10;

/// An RGB image being drawn; drawing outside it is clipped.
struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: usize, height: usize, background: Rgb) -> Self {
        Canvas {
            width,
            height,
            pixels: background.repeat(width * height),
        }
    }

    fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if (0..self.width as i64).contains(&x) && (0..self.height as i64).contains(&y) {
            let i = 3 * (y as usize * self.width + x as usize);
            self.pixels[i..i + 3].copy_from_slice(&c);
        }
    }

    fn rect(&mut self, x: i64, y: i64, w: usize, h: usize, c: Rgb) {
        for dy in 0..h as i64 {
            for dx in 0..w as i64 {
                self.set(x + dx, y + dy, c);
            }
        }
    }

    /// A one-pixel outline of the rectangle.
    fn frame(&mut self, x: i64, y: i64, w: usize, h: usize, c: Rgb) {
        let (r, b) = (x + w as i64 - 1, y + h as i64 - 1);
        self.line((x, y), (r, y), c);
        self.line((x, b), (r, b), c);
        self.line((x, y), (x, b), c);
        self.line((r, y), (r, b), c);
    }

    /// Bresenham's line between two pixels, both included.
    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: Rgb) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = ((x1 - x0).signum(), (y1 - y0).signum());
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            self.set(x, y, c);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// A line two pixels thick: [`line`](Self::line) and its neighbour below it, or to
    /// its right where it is steeper than 45°.
    fn thick_line(&mut self, a: (i64, i64), b: (i64, i64), c: Rgb) {
        let (dx, dy) = if (b.0 - a.0).abs() >= (b.1 - a.1).abs() {
            (0, 1)
        } else {
            (1, 0)
        };
        self.line(a, b, c);
        self.line((a.0 + dx, a.1 + dy), (b.0 + dx, b.1 + dy), c);
    }

    /// Draws `text` with its top-left corner at `(x, y)`, each font pixel `scale`
    /// pixels wide; returns the width drawn.
    fn text(&mut self, x: i64, y: i64, text: &str, scale: usize, c: Rgb) -> usize {
        for (along, across) in font_pixels(text) {
            let (px, py) = (x + (along * scale) as i64, y + (across * scale) as i64);
            self.rect(px, py, scale, scale, c);
        }
        text_width(text, scale)
    }

    /// Draws `text` turned a quarter to the left, reading bottom to top (a vertical axis
    /// label), with the top-left corner of what is drawn at `(x, y)`; returns the height
    /// drawn.
    fn text_up(&mut self, x: i64, y: i64, text: &str, scale: usize, c: Rgb) -> usize {
        let length = text_width(text, 1);
        for (along, across) in font_pixels(text) {
            let (px, py) = (across * scale, (length - 1 - along) * scale);
            self.rect(x + px as i64, y + py as i64, scale, scale, c);
        }
        text_width(text, scale)
    }

    /// Draws one `SIDE × SIDE` image (pixels row by row, shaded by [`grey`]) with its
    /// top-left corner at `(x, y)`, each pixel `ZOOM × ZOOM`.
    fn image(&mut self, x: usize, y: usize, pixels: &[f32]) {
        for (j, &v) in pixels.iter().enumerate() {
            let (px, py) = (x + (j % SIDE) * ZOOM, y + (j / SIDE) * ZOOM);
            self.rect(px as i64, py as i64, ZOOM, ZOOM, grey(v));
        }
    }

    /// Encodes the canvas as PNG and writes it to `path` atomically.
    fn save(&self, path: &Path) -> io::Result<()> {
        let mut bytes = vec![];
        {
            let mut encoder = png::Encoder::new(&mut bytes, self.width as u32, self.height as u32);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().map_err(io::Error::other)?;
            writer
                .write_image_data(&self.pixels)
                .map_err(io::Error::other)?;
            writer.finish().map_err(io::Error::other)?;
        }
        write_atomically(path, &bytes)
    }
}

/// Width in pixels of `text` drawn at `scale`.
fn text_width(text: &str, scale: usize) -> usize {
    (text.chars().count() * 4).saturating_sub(1) * scale
}

/// The lit font pixels of `text` as `(along, across)`: the pixel column counted from the
/// start of the text (each glyph 3 wide, 1 apart) and the pixel row from its top.
fn font_pixels(text: &str) -> impl Iterator<Item = (usize, usize)> {
    text.chars().enumerate().flat_map(|(i, ch)| {
        glyph(ch)
            .into_iter()
            .enumerate()
            .flat_map(move |(row, bits)| {
                (0..3)
                    .filter(move |col| bits & (4 >> col) != 0)
                    .map(move |col| (4 * i + col, row))
            })
    })
}

/// Writes `bytes` to a temporary file next to `path`, syncs it and renames it over `path`,
/// so a reader never sees a half-written file.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file path", path.display()),
        )
    })?;
    let tmp = path.with_file_name(format!(
        ".{}.{}-{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    match written.and_then(|()| fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            // Best effort: the temporary file may not exist.
            let _ = fs::remove_file(&tmp);
            Err(io::Error::new(
                e.kind(),
                format!("writing {}: {e}", path.display()),
            ))
        }
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Rows of a 3×5 glyph, bit 2 the left column. Lower case draws as upper case; an
/// unknown character as `?`.
fn glyph(c: char) -> [u8; 5] {
    match c.to_ascii_uppercase() {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 2, 2],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        'A' => [2, 5, 7, 5, 5],
        'B' => [6, 5, 6, 5, 6],
        'C' => [3, 4, 4, 4, 3],
        'D' => [6, 5, 5, 5, 6],
        'E' => [7, 4, 6, 4, 7],
        'F' => [7, 4, 6, 4, 4],
        'G' => [3, 4, 5, 5, 3],
        'H' => [5, 5, 7, 5, 5],
        'I' => [7, 2, 2, 2, 7],
        'J' => [1, 1, 1, 5, 2],
        'K' => [5, 5, 6, 5, 5],
        'L' => [4, 4, 4, 4, 7],
        'M' => [5, 7, 7, 5, 5],
        'N' => [6, 5, 5, 5, 5],
        'O' => [2, 5, 5, 5, 2],
        'P' => [6, 5, 6, 4, 4],
        'Q' => [2, 5, 5, 6, 3],
        'R' => [6, 5, 6, 5, 5],
        'S' => [3, 4, 2, 1, 6],
        'T' => [7, 2, 2, 2, 2],
        'U' => [5, 5, 5, 5, 7],
        'V' => [5, 5, 5, 5, 2],
        'W' => [5, 5, 7, 7, 5],
        'X' => [5, 5, 2, 5, 5],
        'Y' => [5, 5, 2, 2, 2],
        'Z' => [7, 1, 2, 4, 7],
        ' ' => [0, 0, 0, 0, 0],
        '.' => [0, 0, 0, 0, 2],
        ',' => [0, 0, 0, 2, 4],
        ':' => [0, 2, 0, 2, 0],
        '-' => [0, 0, 7, 0, 0],
        '+' => [0, 2, 7, 2, 0],
        '=' => [0, 7, 0, 7, 0],
        '_' => [0, 0, 0, 0, 7],
        '/' => [1, 1, 2, 4, 4],
        '%' => [5, 1, 2, 4, 5],
        '(' => [1, 2, 2, 2, 1],
        ')' => [4, 2, 2, 2, 4],
        _ => [7, 1, 2, 0, 2],
    }
}

/// Grey level of a pixel value in `[0, 1]` (clamped; NaN is black).
fn grey(v: f32) -> Rgb {
    let g = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    [g, g, g]
}

/// Blue (−1) through white (0) to red (+1); values outside are clamped, NaN is grey.
fn diverging(v: f64) -> Rgb {
    if v.is_nan() {
        return GAP;
    }
    let v = v.clamp(-1.0, 1.0);
    let end = if v < 0.0 { BLUE } else { RED };
    let t = v.abs();
    std::array::from_fn(|i| (255.0 + (f64::from(end[i]) - 255.0) * t).round() as u8)
}

/// A compact label for an axis value.
fn number(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if (0.01..1000.0).contains(&a) {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').into()
    } else if (1000.0..1e6).contains(&a) {
        format!("{v:.0}")
    } else {
        format!("{v:.1e}")
    }
}

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

/// One named curve of a [`line_plot`].
pub struct Series<'a> {
    /// Shown in the legend beside the series' colour.
    pub label: &'a str,
    /// The points `(x, y)`, joined in the order given.
    pub points: &'a [(f64, f64)],
}

/// The titles and scales of a [`line_plot`].
pub struct Axes<'a> {
    /// Drawn above the plot.
    pub title: &'a str,
    /// Drawn under the x axis.
    pub x_label: &'a str,
    /// Drawn along the y axis, reading upwards.
    pub y_label: &'a str,
    /// Whether the x axis is logarithmic.
    pub x_log: bool,
    /// Whether the y axis is logarithmic; `None` chooses it when every plotted value is
    /// positive and the largest is more than 10 times the smallest.
    pub y_log: Option<bool>,
}

/// Size in pixels of a [`line_plot`].
const LINE_PLOT: (usize, usize) = (720, 420);
/// The most ticks on a logarithmic axis.
const MAX_TICKS: usize = 8;
/// Room for a line of scale-2 text and the gap under it.
const TEXT_LINE: usize = 14;
/// The least mean distance in pixels between a series' consecutive points for them to be
/// marked: closer markers would merge into a band that hides the curve.
const MARKER_SPACING: i64 = 8;
/// Width of a legend entry's key (a short line through a marker) and its gap to the label.
const LEGEND_KEY: usize = 22;

/// Where value `v` is drawn along an axis, in plotted units (the value itself, or its
/// base-10 logarithm on a logarithmic axis); `None` if it cannot be drawn: not finite, or
/// not positive on a logarithmic axis.
fn unit(log: bool, v: f64) -> Option<f64> {
    let u = if log { v.log10() } else { v };
    u.is_finite().then_some(u)
}

/// Where point `(x, y)` is drawn, in plotted units, on axes logarithmic as `x_log` and
/// `y_log` say; `None` if it cannot be (see [`unit`]).
fn plotted(x_log: bool, y_log: bool, (x, y): (f64, f64)) -> Option<(f64, f64)> {
    Some((unit(x_log, x)?, unit(y_log, y)?))
}

/// The smallest and largest of `values`; `(∞, −∞)` if there is none.
fn extent(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

/// One axis of a [`line_plot`]: the range shown, in plotted units (see [`unit`]).
struct Scale {
    lo: f64,
    hi: f64,
    log: bool,
}

impl Scale {
    /// The range of the plotted `units`, widened by half a unit either side of a single
    /// value; `0..1` when there is none.
    fn fit(log: bool, units: impl Iterator<Item = f64>) -> Self {
        let (lo, hi) = match extent(units) {
            (lo, _) if !lo.is_finite() => (0.0, 1.0),
            (lo, hi) if lo < hi => (lo, hi),
            (lo, hi) => (lo - 0.5, hi + 0.5),
        };
        Scale { lo, hi, log }
    }

    /// How far along the axis plotted unit `u` lies, 0 at its start and 1 at its end.
    fn fraction(&self, u: f64) -> f64 {
        (u - self.lo) / (self.hi - self.lo)
    }

    /// The ticks, in plotted units. A linear axis has five, evenly spaced from end to
    /// end. A logarithmic one has them at 1, 2 and 5 times the powers of ten in range, or
    /// if those are more than [`MAX_TICKS`], at every power of ten (every k-th if still
    /// too many); if fewer than two values of the 1-2-5 series fall in range, at five
    /// evenly spaced places.
    fn ticks(&self) -> Vec<f64> {
        let even = (0..5)
            .map(|k| self.lo + k as f64 / 4.0 * (self.hi - self.lo))
            .collect();
        if !self.log {
            return even;
        }
        let inside = |u: &f64| (self.lo - 1e-9..=self.hi + 1e-9).contains(u);
        let decades = self.lo.floor() as i64..=self.hi.ceil() as i64;
        let fine: Vec<f64> = decades
            .clone()
            .flat_map(|k| [1.0f64, 2.0, 5.0].map(|m| k as f64 + m.log10()))
            .filter(inside)
            .collect();
        if fine.len() < 2 {
            return even;
        }
        if fine.len() <= MAX_TICKS {
            return fine;
        }
        let powers: Vec<f64> = decades.map(|k| k as f64).filter(inside).collect();
        let every = powers.len().div_ceil(MAX_TICKS);
        powers.into_iter().step_by(every).collect()
    }

    /// The label of the tick at plotted unit `u`: the value there.
    fn label(&self, u: f64) -> String {
        number(if self.log { 10f64.powf(u) } else { u })
    }
}

/// `label`, followed by `(LOG)` on a logarithmic axis.
fn axis_label(label: &str, log: bool) -> String {
    let suffix = if log { " (LOG)" } else { "" };
    format!("{label}{suffix}").trim_start().to_string()
}

/// The layout of a [`line_plot`]: the axes' scales, the plot area (`left`, `top`, `width`
/// × `height` pixels, axes included) and the top-left corner of each series' legend entry.
struct Frame {
    x: Scale,
    y: Scale,
    left: usize,
    top: usize,
    width: usize,
    height: usize,
    legend: Vec<(usize, usize)>,
}

impl Frame {
    /// Lays out a plot of `series` on `axes`.
    fn new(axes: &Axes, series: &[Series]) -> Self {
        let (width, height) = LINE_PLOT;
        let (margin, right, bottom) = (12, 24, 40);
        let points = || series.iter().flat_map(|s| s.points);
        let x_log = axes.x_log;
        let y_log = axes.y_log.unwrap_or_else(|| {
            let on_x = points().filter(|p| unit(x_log, p.0).is_some());
            let (lo, hi) = extent(on_x.filter_map(|p| unit(false, p.1)));
            lo > 0.0 && hi > 10.0 * lo
        });
        let plotted = || points().filter_map(|&p| plotted(x_log, y_log, p));
        let x = Scale::fit(x_log, plotted().map(|p| p.0));
        let y = Scale::fit(y_log, plotted().map(|p| p.1));
        let ticks = y.ticks().into_iter();
        let tick_w = ticks.map(|u| text_width(&y.label(u), 2)).max();
        // The y label, reading upwards, then the tick labels, each 8 pixels from the next.
        let left = margin + 10 + 8 + tick_w.unwrap_or(0) + 8;
        // Legend entries fill rows under the title, a new row when one would not fit.
        let first_row = margin + TEXT_LINE + 4;
        let (mut lx, mut ly) = (left, first_row);
        let mut legend = vec![];
        for s in series {
            let w = LEGEND_KEY + text_width(s.label, 2);
            if lx > left && lx + w > width - right {
                (lx, ly) = (left, ly + TEXT_LINE);
            }
            legend.push((lx, ly));
            lx += w + 16;
        }
        let top = legend.last().map_or(first_row, |_| ly + TEXT_LINE) + 8;
        Frame {
            x,
            y,
            left,
            top,
            width: width - left - right,
            height: height - top - bottom,
            legend,
        }
    }

    /// The pixel of a point in plotted units.
    fn pixel(&self, (x, y): (f64, f64)) -> (i64, i64) {
        let px = self.left as f64 + self.x.fraction(x) * (self.width - 1) as f64;
        let py = self.bottom() as f64 - self.y.fraction(y) * (self.height - 1) as f64;
        (px.round() as i64, py.round() as i64)
    }

    /// The pixel row of the x axis.
    fn bottom(&self) -> i64 {
        (self.top + self.height - 1) as i64
    }

    /// The pixel column of the plot area's right edge.
    fn right(&self) -> i64 {
        (self.left + self.width - 1) as i64
    }
}

/// Draws the `series` on shared axes in a 720×420 picture: each series in its own colour
/// (red, blue, then six more, repeating after the eighth), its points joined by 2-pixel
/// lines and marked by 5-pixel squares (unless they lie on average closer than 8 pixels,
/// as on a long training curve, where markers would hide the line), with a legend of the
/// series' labels in rows under the title. Both axes have labelled ticks and a light
/// grid; a logarithmic axis is labelled `(LOG)`, its ticks at 1, 2 and 5 times powers of
/// ten, or at powers of ten on a wide range. Points that cannot be drawn (not finite, or
/// not positive on a logarithmic axis) are skipped; any series may be empty, and so may
/// `series`.
///
/// # Errors
/// If writing the file fails.
pub fn line_plot(path: &Path, axes: &Axes, series: &[Series]) -> io::Result<()> {
    let f = Frame::new(axes, series);
    let (width, height) = LINE_PLOT;
    let (left, top, bottom, right) = (f.left as i64, f.top as i64, f.bottom(), f.right());
    let mut c = Canvas::new(width, height, WHITE);
    for u in f.x.ticks() {
        let (gx, _) = f.pixel((u, f.y.lo));
        c.line((gx, top), (gx, bottom), GRID);
        let label = f.x.label(u);
        let w = text_width(&label, 2) as i64;
        let tx = (gx - w / 2).clamp(0, (width - 1) as i64 - w);
        c.text(tx, bottom + 9, &label, 2, BLACK);
    }
    for u in f.y.ticks() {
        let (_, gy) = f.pixel((f.x.lo, u));
        c.line((left, gy), (right, gy), GRID);
        let label = f.y.label(u);
        let w = text_width(&label, 2) as i64;
        c.text(left - 8 - w, gy - 5, &label, 2, BLACK);
    }
    c.line((left, top), (left, bottom), BLACK);
    c.line((left, bottom), (right, bottom), BLACK);
    for (s, &colour) in series.iter().zip(PALETTE.iter().cycle()) {
        let pts: Vec<(i64, i64)> = s
            .points
            .iter()
            .filter_map(|&p| plotted(f.x.log, f.y.log, p))
            .map(|p| f.pixel(p))
            .collect();
        let mut length = 0;
        for w in pts.windows(2) {
            c.thick_line(w[0], w[1], colour);
            length += (w[1].0 - w[0].0).abs().max((w[1].1 - w[0].1).abs());
        }
        if length >= MARKER_SPACING * (pts.len() as i64 - 1) {
            for (x, y) in pts {
                c.rect(x - 2, y - 2, 5, 5, colour);
            }
        }
    }
    c.text(left, 12, axes.title, 2, BLACK);
    for ((s, &colour), &(x, y)) in series.iter().zip(PALETTE.iter().cycle()).zip(&f.legend) {
        let (x, y) = (x as i64, y as i64);
        c.thick_line((x, y + 4), (x + 15, y + 4), colour);
        c.rect(x + 6, y + 2, 5, 5, colour);
        c.text(x + LEGEND_KEY as i64, y, s.label, 2, BLACK);
    }
    let x_label = axis_label(axes.x_label, f.x.log);
    let centre = left + f.width as i64 / 2 - text_width(&x_label, 2) as i64 / 2;
    c.text(centre.max(0), (height - 14) as i64, &x_label, 2, GAP);
    let y_label = axis_label(axes.y_label, f.y.log);
    let middle = top + f.height as i64 / 2 - text_width(&y_label, 2) as i64 / 2;
    c.text_up(12, middle.max(0), &y_label, 2, GAP);
    c.save(path)
}

/// The training curves: `loss` (red) and `mse` (blue), each `(step, value)`, as a
/// [`line_plot`] titled `TRAINING CURVES` over `STEP`. The value axis is logarithmic when
/// every value is positive and the largest is more than 10 times the smallest, linear
/// otherwise. Non-finite points are skipped; either series may be empty.
///
/// # Errors
/// If writing the file fails.
pub fn loss_curve(path: &Path, loss: &[(f64, f64)], mse: &[(f64, f64)]) -> io::Result<()> {
    let axes = Axes {
        title: "TRAINING CURVES",
        x_label: "STEP",
        y_label: "",
        x_log: false,
        y_log: None,
    };
    let series = [
        Series {
            label: "LOSS",
            points: loss,
        },
        Series {
            label: "MSE",
            points: mse,
        },
    ];
    line_plot(path, &axes, &series)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::HISTOGRAM_BINS;
    use ndarray::IxDyn;

    /// Decodes a PNG: `(width, height, RGB bytes)`.
    fn decode(path: &Path) -> (u32, u32, Vec<u8>) {
        let file = io::BufReader::new(fs::File::open(path).unwrap());
        let mut reader = png::Decoder::new(file).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    fn pixel(img: &(u32, u32, Vec<u8>), x: usize, y: usize) -> Rgb {
        let i = 3 * (y * img.0 as usize + x);
        [img.2[i], img.2[i + 1], img.2[i + 2]]
    }

    /// Only the written file is left in the folder: no temporary file.
    fn only(dir: &Path, name: &str) {
        let names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![name.to_string()]);
    }

    #[test]
    fn reconstruction_grid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recon.png");
        let px = SIDE * SIDE;
        let originals = vec![1.0f32; 12 * px]; // white
        let recons = vec![0.5f32; 12 * px]; // grey
        reconstructions(&path, &originals, &recons, 12).unwrap();
        let img = decode(&path);
        // 10 per row, 2 rows per block: 10·(84+2)+2 wide, 2·(2·86)+2+6 high.
        assert_eq!((img.0, img.1), (862, 352));
        assert_eq!(pixel(&img, 2, 2), WHITE);
        assert_eq!(pixel(&img, 1, 1), GAP);
        assert_eq!(pixel(&img, 2, 2 * 86 + 6 + 2), [128, 128, 128]);
        // Overwrites atomically.
        reconstructions(&path, &originals, &recons, 3).unwrap();
        assert_eq!(decode(&path).0, 3 * 86 + 2);
        only(dir.path(), "recon.png");
        assert!(reconstructions(&path, &[], &recons, 3).is_err());
    }

    #[test]
    fn labelled_reconstruction_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.png");
        let px = SIDE * SIDE;
        let originals = vec![1.0f32; 3 * px]; // white
        let best = vec![0.5f32; 2 * px]; // grey
        let rows: [(&str, &[f32]); 2] = [("ORIGINAL", &originals), ("sae best", &best)];
        reconstruction_rows(&path, &rows, 5).unwrap();
        let img = decode(&path);
        // Labels 8·4−1 = 31 font pixels ×2 with 12-pixel margins: images from x = 86;
        // three 86-pixel cells, two 86-pixel rows.
        assert_eq!((img.0, img.1), (86 + 3 * 86 + 2, 2 * 86 + 2));
        assert_eq!(pixel(&img, 88, 2), WHITE);
        assert_eq!(pixel(&img, 88, 88), [128, 128, 128]);
        assert_eq!(pixel(&img, 88 + 2 * 86, 88), GAP); // the second row has two images
        assert_eq!(pixel(&img, 86, 88), GAP);
        only(dir.path(), "rows.png");
        assert!(reconstruction_rows(&path, &[], 5).is_err());
        assert!(reconstruction_rows(&path, &rows, 0).is_err());
        let short = [rows[0], ("AE", &best[..px - 1])];
        assert!(reconstruction_rows(&path, &short, 5).is_err());
    }

    #[test]
    fn latent_raster_and_heat_map() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latent.png");
        let (t, b, n) = (5, 2, 7);
        let spikes = Tensor::from_shape_fn(IxDyn(&[t * b, n]), |i| {
            f32::from(u8::from((i[0] + i[1]) % 3 == 0))
        });
        let raster = raster_of(&spikes, t, 1);
        assert_eq!(raster.dim(), (t, n));
        assert_eq!(raster[[2, 4]], spikes[[2 * b + 1, 4]]);
        let corr: Vec<Vec<f64>> = (0..10)
            .map(|a| (0..10).map(|b| if a == b { 1.0 } else { -0.2 }).collect())
            .collect();
        latent_figure(&path, &raster, &corr).unwrap();
        let img = decode(&path);
        assert!(img.0 > 240 && img.1 > 240);
        assert_eq!(diverging(1.0), RED);
        assert_eq!(diverging(-1.0), BLUE);
        assert_eq!(diverging(0.0), WHITE);
        only(dir.path(), "latent.png");
        assert!(latent_figure(&path, &raster, &corr[..3]).is_err());
    }

    #[test]
    fn histograms_stacked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rates.png");
        let layer = |name: &str, dead: u64| {
            let mut histogram = vec![1u64; HISTOGRAM_BINS];
            histogram[0] = dead;
            LayerReport {
                name: name.into(),
                neurons: histogram.iter().sum::<u64>() as usize,
                dead_frac: 0.5,
                bursting_frac: 0.0,
                density: 0.21,
                spikes_per_image: 3.0,
                histogram,
            }
        };
        let layers = [layer("input", 0), layer("conv1", 500), layer("latent", 3)];
        firing_rate_histograms(&path, &layers).unwrap();
        let one = dir.path().join("one.png");
        firing_rate_histograms(&one, &layers[..1]).unwrap();
        let (tall, short) = (decode(&path), decode(&one));
        assert!(tall.0 >= short.0 && short.0 as usize >= HISTOGRAM_BINS * 16 + 24);
        assert_eq!(tall.1 - 24, 3 * (short.1 - 24));
        assert!(firing_rate_histograms(&path, &[]).is_err());
    }

    #[test]
    fn loss_curve_png() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loss.png");
        let loss: Vec<(f64, f64)> = (0..50)
            .map(|i| (i as f64, 1.0 / (1.0 + i as f64)))
            .collect();
        let mse: Vec<(f64, f64)> = loss.iter().map(|&(x, y)| (x, 0.5 * y)).collect();
        loss_curve(&path, &loss, &mse).unwrap();
        assert_eq!((decode(&path).0, decode(&path).1), (720, 420));
        // Degenerate inputs still give a picture.
        loss_curve(&path, &[(0.0, f64::NAN), (1.0, 2.0)], &[]).unwrap();
        loss_curve(&path, &[], &[]).unwrap();
        only(dir.path(), "loss.png");
    }

    #[test]
    fn line_plot_series_legend_and_log_axes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sweep.png");
        let falling: Vec<(f64, f64)> = (1..=32).map(|t| (t as f64, 1.0 / t as f64)).collect();
        let pair = [(2.0, 0.5), (8.0, 0.3)];
        let single = [(4.0, 0.04)];
        let labels: Vec<String> = (0..8)
            .map(|i| format!("SERIES {i} ABCDEFGHIJKLMNOP"))
            .collect();
        let mut series: Vec<Series> = labels
            .iter()
            .map(|label| Series {
                label,
                points: &pair,
            })
            .collect();
        series[0].points = &falling;
        series[7].points = &single;
        let axes = Axes {
            title: "MSE vs T",
            x_label: "T",
            y_label: "MSE ±σ",
            x_log: true,
            y_log: None,
        };
        line_plot(&path, &axes, &series).unwrap();
        let img = decode(&path);
        assert_eq!((img.0, img.1), (720, 420));
        let f = Frame::new(&axes, &series);
        assert!(f.y.log, "1/32 .. 1 spans more than a decade");
        // Every legend entry fits in the picture, above the plot.
        for (s, &(x, y)) in series.iter().zip(&f.legend) {
            assert!(x + LEGEND_KEY + text_width(s.label, 2) <= 720 && y + TEXT_LINE <= f.top);
        }
        // The single point's marker, in the eighth colour, drawn last.
        let (x, y) = f.pixel(plotted(true, true, single[0]).unwrap());
        let (x, y) = (x as usize, y as usize);
        for (dx, dy) in [(0, 0), (-2, -2), (2, 2)] {
            let p = pixel(&img, x.wrapping_add_signed(dx), y.wrapping_add_signed(dy));
            assert_eq!(p, PALETTE[7]);
        }
        let labels: Vec<String> = f.x.ticks().iter().map(|&u| f.x.label(u)).collect();
        assert_eq!(labels, ["1", "2", "5", "10", "20"]);
        let wide = Scale {
            lo: -6.0,
            hi: 0.3,
            log: true,
        };
        let labels: Vec<String> = wide.ticks().iter().map(|&u| wide.label(u)).collect();
        assert_eq!(labels[..2], ["1.0e-6", "1.0e-5"]);
        assert_eq!(labels.len(), 7);

        // Degenerate inputs still give a picture.
        let nan = [(f64::NAN, 1.0), (1.0, f64::NAN), (f64::INFINITY, 2.0)];
        let nonpositive = [(0.0, 1.0), (-3.0, 2.0)];
        for points in [&nan[..], &nonpositive, &[]] {
            let s = [Series { label: "X", points }];
            line_plot(&path, &axes, &s).unwrap();
            assert_eq!(decode(&path).0, 720);
        }
        line_plot(&path, &axes, &[]).unwrap();
        let forced = Axes {
            y_log: Some(true),
            ..axes
        };
        line_plot(
            &path,
            &forced,
            &[Series {
                label: "",
                points: &nonpositive,
            }],
        )
        .unwrap();
        only(dir.path(), "sweep.png");
    }

    #[test]
    fn glyphs_and_numbers() {
        assert_eq!(glyph('a'), glyph('A'));
        assert_eq!(number(0.0123), "0.012");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(number(1.0e-4), "1.0e-4");
        assert_eq!(text_width("AB", 2), 14);
    }
}
