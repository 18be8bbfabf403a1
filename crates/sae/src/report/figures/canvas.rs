//! The RGB canvas the image grids are drawn on, pixel by pixel (an MNIST pixel is a
//! block of pixels), with text drawn over it in the embedded font.

use std::io;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::render;
use super::text::Bitmap;
use super::theme;
use crate::config::SIDE;

pub(super) type Rgb = [u8; 3];

pub(super) const WHITE: Rgb = [255, 255, 255];
/// The gaps between images.
pub(super) const GAP: Rgb = [160, 160, 160];

/// Scale of reconstructions: one MNIST pixel becomes `ZOOM × ZOOM`.
pub(super) const ZOOM: usize = 3;
/// Images per row of [`reconstructions`](super::reconstructions).
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

    /// Draws one `SIDE × SIDE` image (pixels row by row, shaded by [`grey`]) with its
    /// top-left corner at `(x, y)`, each pixel `ZOOM × ZOOM`.
    pub(super) fn image(&mut self, x: usize, y: usize, pixels: &[f32]) {
        for (j, &v) in pixels.iter().enumerate() {
            let (px, py) = (x + (j % SIDE) * ZOOM, y + (j / SIDE) * ZOOM);
            self.rect(px as i64, py as i64, ZOOM, ZOOM, grey(v));
        }
    }

    /// Draws `text` in black, `size` pixels high, its left end at `x` and its middle at
    /// height `y`.
    pub(super) fn text(&mut self, x: i32, y: i32, text: &str, size: f64) -> io::Result<()> {
        theme::register();
        let (w, h) = (self.width as u32, self.height as u32);
        let area = Bitmap::new(&mut self.pixels, (w, h)).into_drawing_area();
        let style = theme::text(size).pos(Pos::new(HPos::Left, VPos::Center));
        area.draw_text(text, &style, (x, y))
            .and_then(|()| area.present())
            .map_err(|e| io::Error::other(format!("drawing failed: {e}")))
    }

    /// Encodes the canvas as PNG and writes it to `path` atomically.
    pub(super) fn save(&self, path: &Path) -> io::Result<()> {
        render::write_png(path, self.width as u32, self.height as u32, &self.pixels)
    }
}

/// Width in pixels of `text` drawn `size` pixels high.
pub(super) fn text_width(text: &str, size: f64) -> io::Result<usize> {
    theme::register();
    let mut none = [0u8; 3];
    let area = Bitmap::new(&mut none, (1, 1)).into_drawing_area();
    let (w, _) = area
        .estimate_text_size(text, &theme::text(size))
        .map_err(|e| io::Error::other(format!("text layout failed: {e}")))?;
    Ok(w as usize)
}

/// Grey level of a pixel value in `[0, 1]` (clamped; NaN is black).
pub(super) fn grey(v: f32) -> Rgb {
    let g = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    [g, g, g]
}
