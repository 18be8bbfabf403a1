//! The run's and the study's figures. Charts (the loss curve and other x–y line plots,
//! the per-layer firing-rate histograms, the latent raster beside the class-correlation
//! heat map) are drawn with plotters, each written twice under one name: `name.png` and
//! `name.svg` (text kept as text). They have titled axes with round ticks, log scales
//! where the data spans decades, legends beside the plot and padded ranges, and their
//! text is set in DejaVu Sans, embedded in the binary, so drawing needs no system
//! library. Grids of MNIST images (reconstructions) are pictures, drawn pixel for pixel
//! and written as PNG only. Every file is written atomically (a temporary file in the
//! same folder, renamed over the target).

mod axis;
mod canvas;
mod charts;
mod histograms;
mod latent;
mod panel;
mod pictures;
mod render;
mod text;
mod theme;

pub use charts::{Axes, Series, line_plot, loss_curve};
pub use histograms::firing_rate_histograms;
pub use latent::{latent_figure, raster_of};
pub use pictures::{reconstruction_rows, reconstructions};
pub use render::svg_path;

#[cfg(test)]
mod tests;
