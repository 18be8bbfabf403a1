//! The run's figures as PNG files, drawn pixel by pixel on an RGB canvas (no plotting
//! library): reconstructions (also as labelled rows, one per model), the latent raster
//! beside the class-correlation heat map, per-layer firing-rate histograms, and x–y line
//! plots such as the loss curve. Labels use a built-in 3×5 pixel font (digits, upper-case
//! letters, a few signs): lower case is drawn as upper case, a character the font lacks
//! as `?`. Every file is written atomically (a temporary file in the same folder, renamed
//! over the target).

mod canvas;
mod charts;
mod pictures;

pub use charts::{Axes, Series, line_plot, loss_curve};
pub use pictures::{
    firing_rate_histograms, latent_figure, raster_of, reconstruction_rows, reconstructions,
};

#[cfg(test)]
mod tests;
