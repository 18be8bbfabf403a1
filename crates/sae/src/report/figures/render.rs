//! Drawing a chart twice, as PNG and as SVG, and writing both files atomically.

use std::io;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::{DrawingArea, DrawingAreaErrorKind, DrawingBackend};
use plotters::prelude::{IntoDrawingArea, SVGBackend};

use super::text::Bitmap;
use super::theme;

/// What drawing on a backend returns.
pub(super) type Drawn<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A chart that can be drawn on any plotters backend (a bitmap for PNG, SVG).
pub(super) trait Figure {
    /// Width and height in pixels (SVG user units).
    fn size(&self) -> (u32, u32);
    /// Draws the chart on `root`, already white and of [`size`](Self::size).
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn<DB>;
}

/// The SVG beside a PNG: the same path with the extension `svg`.
pub fn svg_path(png: &Path) -> PathBuf {
    png.with_extension("svg")
}

/// Draws `figure` as PNG into `path` and as SVG beside it (see [`svg_path`]), each written
/// atomically; both are drawn before either is written.
pub(super) fn write(path: &Path, figure: &impl Figure) -> io::Result<()> {
    theme::register();
    let (width, height) = figure.size();
    let mut rgb = vec![255u8; 3 * width as usize * height as usize];
    {
        let root = Bitmap::new(&mut rgb, (width, height)).into_drawing_area();
        draw_on(&root, figure).map_err(drawing_failed)?;
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        draw_on(&root, figure).map_err(drawing_failed)?;
    }
    write_png(path, width, height, &rgb)?;
    write_file(&svg_path(path), svg.as_bytes())
}

fn draw_on<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, figure: &impl Figure) -> Drawn<DB> {
    root.fill(&theme::WHITE)?;
    figure.draw(root)?;
    root.present()
}

fn drawing_failed(e: impl std::error::Error) -> io::Error {
    io::Error::other(format!("drawing failed: {e}"))
}

/// Encodes `width × height` RGB pixels as PNG and writes them to `path` atomically.
pub(super) fn write_png(path: &Path, width: u32, height: u32, rgb: &[u8]) -> io::Result<()> {
    let mut bytes = vec![];
    {
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(io::Error::other)?;
        writer.write_image_data(rgb).map_err(io::Error::other)?;
        writer.finish().map_err(io::Error::other)?;
    }
    write_file(path, &bytes)
}

/// Writes `bytes` to `path` through a temporary file in the same folder, renamed over it.
fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    autograd::io::write_atomically(path, bytes).map_err(|e| io::Error::other(e.to_string()))
}

pub(super) fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}
