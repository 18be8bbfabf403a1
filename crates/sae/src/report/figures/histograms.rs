//! The firing-rate histograms of a model's layers, one panel per layer.

use std::io;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::axis::{Axis, PAD, Scale};
use super::charts::scale_title;
use super::panel;
use super::render::{self, Drawn, Figure, invalid};
use super::theme;
use crate::report::spikes::LayerReport;

/// Size in pixels of one layer's panel.
const PANEL: (u32, u32) = (500, 340);
/// Panels side by side.
const COLUMNS: usize = 2;
/// Room around the whole picture.
const OUTER: u32 = 8;
/// Height of the figure's title line.
const TITLE_H: u32 = 40;
/// The share of a bin left empty at each side of its bar.
const BAR_GAP: f64 = 0.08;
/// Where the bars of a logarithmic count axis start: below 1, so a bin of one neuron
/// shows, and above 0, which the axis cannot show.
const LOG_BASE: f64 = 0.5;

/// The count axis of a histogram whose largest bin holds `max`: from 0 (or
/// [`LOG_BASE`] on a log axis) to `max` and [`PAD`] more, ticked at whole numbers.
pub(super) fn count_axis(scale: Scale, max: u64) -> Axis {
    let max = (max as f64).max(1.0);
    match scale {
        Scale::Linear => Axis::span(0.0, max * (1.0 + PAD)),
        Scale::Log => Axis {
            from: LOG_BASE,
            to: max * (max / LOG_BASE).powf(PAD),
            scale,
            whole: false,
            ticked: None,
        },
    }
    .whole()
}

struct Histograms<'a> {
    layers: &'a [LayerReport],
}

impl Histograms<'_> {
    fn columns(&self) -> usize {
        self.layers.len().clamp(1, COLUMNS)
    }
}

impl Figure for Histograms<'_> {
    fn size(&self) -> (u32, u32) {
        let cols = self.columns();
        let rows = self.layers.len().div_ceil(cols);
        (
            2 * OUTER + cols as u32 * PANEL.0,
            2 * OUTER + TITLE_H + rows as u32 * PANEL.1,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn<DB> {
        let root = root.margin(OUTER, OUTER, OUTER, OUTER);
        let body = root.titled(
            "Firing rates per layer (test images)",
            theme::text(theme::TITLE),
        )?;
        let cols = self.columns();
        let rows = self.layers.len().div_ceil(cols);
        for (layer, area) in self.layers.iter().zip(body.split_evenly((rows, cols))) {
            layer_panel(&area, layer)?;
        }
        Ok(())
    }
}

/// One layer's histogram: bars of neurons per firing-rate bin, under the layer's name and
/// its dead, bursting and density figures.
fn layer_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, l: &LayerReport) -> Drawn<DB> {
    let area = area.margin(6, 6, 6, 6);
    let area = area.titled(
        &format!("{} ({} neurons)", l.name, l.neurons),
        theme::text(theme::SUBTITLE),
    )?;
    let area = area.titled(
        &format!(
            "dead {:.1} %, bursting {:.1} %, density {:.3}",
            100.0 * l.dead_frac,
            100.0 * l.bursting_frac,
            l.density
        ),
        theme::quiet(theme::TICK),
    )?;
    let nonzero = l.histogram.iter().filter(|&&c| c > 0).map(|&c| c as f64);
    let scale = Scale::fitting(nonzero);
    let max = l.histogram.iter().copied().max().unwrap_or(0);
    let y = count_axis(scale, max);
    let x = Axis::span(-PAD / 2.0, 1.0 + PAD / 2.0);
    let y_title = scale_title("Neurons", scale);
    let chart = panel::panel(&area, (&x, "Firing rate (spikes per step)"), (&y, &y_title))?;
    let bins = l.histogram.len().max(1) as f64;
    for (b, &count) in l.histogram.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let (lo, hi) = (
            (b as f64 + BAR_GAP) / bins,
            (b as f64 + 1.0 - BAR_GAP) / bins,
        );
        chart.plotting_area().draw(&Rectangle::new(
            [(lo, y.from), (hi, count as f64)],
            theme::BAR.filled(),
        ))?;
    }
    panel::frame(&chart)
}

/// The firing-rate histogram of every layer (rates 0 to 1 spike per step, left to right;
/// neurons per bin up the side, on a log scale when the counts span decades), one panel
/// per layer in two columns, each under the layer's name, size and its dead and bursting
/// percentages and density; as PNG at `path` and as SVG beside it.
///
/// # Errors
/// If there is no layer, or drawing or writing a file fails.
pub fn firing_rate_histograms(path: &Path, layers: &[LayerReport]) -> io::Result<()> {
    if layers.is_empty() {
        return Err(invalid(format!("{}: no layer to plot", path.display())));
    }
    render::write(path, &Histograms { layers })
}
