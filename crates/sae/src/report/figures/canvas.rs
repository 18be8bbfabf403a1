//! The canvas every figure is drawn on: RGB pixels, a 3×5 pixel font, colours, and
//! PNG encoding written atomically.

use std::io;
use std::path::Path;

use crate::config::SIDE;

pub(super) type Rgb = [u8; 3];

pub(super) const WHITE: Rgb = [255, 255, 255];
pub(super) const BLACK: Rgb = [0, 0, 0];
pub(super) const GAP: Rgb = [160, 160, 160];
pub(super) const GRID: Rgb = [225, 225, 225];
pub(super) const RED: Rgb = [178, 24, 43];
pub(super) const BLUE: Rgb = [33, 102, 172];
pub(super) const BAR: Rgb = [70, 110, 170];
/// Colours of a [`line_plot`]'s series, in order, repeating after the last.
pub(super) const PALETTE: [Rgb; 8] = [
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
pub(super) const ZOOM: usize = 3;
/// Images per row of [`reconstructions`].
pub(super) const PER_ROW: usize = 10;

/// An RGB image being drawn; drawing outside it is clipped.
pub(super) struct Canvas {
    pub(super) width: usize,
    pub(super) height: usize,
    pub(super) pixels: Vec<u8>,
}

impl Canvas {
    pub(super) fn new(width: usize, height: usize, background: Rgb) -> Self {
        Canvas {
            width,
            height,
            pixels: background.repeat(width * height),
        }
    }

    pub(super) fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if (0..self.width as i64).contains(&x) && (0..self.height as i64).contains(&y) {
            let i = 3 * (y as usize * self.width + x as usize);
            self.pixels[i..i + 3].copy_from_slice(&c);
        }
    }

    pub(super) fn rect(&mut self, x: i64, y: i64, w: usize, h: usize, c: Rgb) {
        for dy in 0..h as i64 {
            for dx in 0..w as i64 {
                self.set(x + dx, y + dy, c);
            }
        }
    }

    /// A one-pixel outline of the rectangle.
    pub(super) fn frame(&mut self, x: i64, y: i64, w: usize, h: usize, c: Rgb) {
        let (r, b) = (x + w as i64 - 1, y + h as i64 - 1);
        self.line((x, y), (r, y), c);
        self.line((x, b), (r, b), c);
        self.line((x, y), (x, b), c);
        self.line((r, y), (r, b), c);
    }

    /// Bresenham's line between two pixels, both included.
    pub(super) fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: Rgb) {
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
    pub(super) fn thick_line(&mut self, a: (i64, i64), b: (i64, i64), c: Rgb) {
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
    pub(super) fn text(&mut self, x: i64, y: i64, text: &str, scale: usize, c: Rgb) -> usize {
        for (along, across) in font_pixels(text) {
            let (px, py) = (x + (along * scale) as i64, y + (across * scale) as i64);
            self.rect(px, py, scale, scale, c);
        }
        text_width(text, scale)
    }

    /// Draws `text` turned a quarter to the left, reading bottom to top (a vertical axis
    /// label), with the top-left corner of what is drawn at `(x, y)`; returns the height
    /// drawn.
    pub(super) fn text_up(&mut self, x: i64, y: i64, text: &str, scale: usize, c: Rgb) -> usize {
        let length = text_width(text, 1);
        for (along, across) in font_pixels(text) {
            let (px, py) = (across * scale, (length - 1 - along) * scale);
            self.rect(x + px as i64, y + py as i64, scale, scale, c);
        }
        text_width(text, scale)
    }

    /// Draws one `SIDE × SIDE` image (pixels row by row, shaded by [`grey`]) with its
    /// top-left corner at `(x, y)`, each pixel `ZOOM × ZOOM`.
    pub(super) fn image(&mut self, x: usize, y: usize, pixels: &[f32]) {
        for (j, &v) in pixels.iter().enumerate() {
            let (px, py) = (x + (j % SIDE) * ZOOM, y + (j / SIDE) * ZOOM);
            self.rect(px as i64, py as i64, ZOOM, ZOOM, grey(v));
        }
    }

    /// Encodes the canvas as PNG and writes it to `path` atomically.
    pub(super) fn save(&self, path: &Path) -> io::Result<()> {
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
        autograd::io::write_atomically(path, &bytes).map_err(|e| io::Error::other(e.to_string()))
    }
}

/// Width in pixels of `text` drawn at `scale`.
pub(super) fn text_width(text: &str, scale: usize) -> usize {
    (text.chars().count() * 4).saturating_sub(1) * scale
}

/// The lit font pixels of `text` as `(along, across)`: the pixel column counted from the
/// start of the text (each glyph 3 wide, 1 apart) and the pixel row from its top.
pub(super) fn font_pixels(text: &str) -> impl Iterator<Item = (usize, usize)> {
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

pub(super) fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Rows of a 3×5 glyph, bit 2 the left column. Lower case draws as upper case; an
/// unknown character as `?`.
pub(super) fn glyph(c: char) -> [u8; 5] {
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
pub(super) fn grey(v: f32) -> Rgb {
    let g = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    [g, g, g]
}

/// Blue (−1) through white (0) to red (+1); values outside are clamped, NaN is grey.
pub(super) fn diverging(v: f64) -> Rgb {
    if v.is_nan() {
        return GAP;
    }
    let v = v.clamp(-1.0, 1.0);
    let end = if v < 0.0 { BLUE } else { RED };
    let t = v.abs();
    std::array::from_fn(|i| (255.0 + (f64::from(end[i]) - 255.0) * t).round() as u8)
}

/// A compact label for an axis value.
pub(super) fn number(v: f64) -> String {
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
