//! The latent layer at a glance: the spike raster of one image beside the class
//! correlation of the latent code as a heat map with its colour bar.

use std::io;
use std::path::Path;

use autograd::Tensor;
use ndarray::Array2;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::axis::{Axis, PAD};
use super::panel;
use super::render::{self, Drawn, Figure, invalid};
use super::theme;

/// Size in pixels of the whole figure, and the widths of its raster and heat-map parts
/// (the colour bar has the rest).
const LATENT: (u32, u32) = (1120, 540);
const RASTER_W: u32 = 470;
const HEAT_W: u32 = 520;
/// Room around the whole picture.
const OUTER: u32 = 8;
/// Width of the colour bar itself.
const BAR_W: u32 = 22;
/// Bands of the colour bar's gradient.
const BAR_STEPS: usize = 100;

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

struct Latent<'a> {
    raster: &'a Array2<f32>,
    correlation: &'a [Vec<f64>],
}

/// The axis of `n` cells centred on the whole numbers `0..n`, ticked at those numbers,
/// padded by [`PAD`] of `n` at each end when `pad`.
fn cells(n: usize, pad: bool) -> Axis {
    let margin = if pad { PAD * n as f64 } else { 0.0 };
    let last = n as f64 - 1.0;
    Axis::span(-0.5 - margin, last + 0.5 + margin)
        .whole()
        .ticked_within(0.0, last)
}

/// The rectangle of cell `(x, y)`.
fn cell(x: usize, y: usize) -> [(f64, f64); 2] {
    let (x, y) = (x as f64, y as f64);
    [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)]
}

impl Latent<'_> {
    /// The raster: a spike (1) black; other values (a non-spiking model's code) shaded
    /// from white at 0 to black at the largest magnitude.
    fn raster<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Drawn<DB> {
        let (steps, neurons) = self.raster.dim();
        let spikes = self.raster.iter().all(|&v| v == 0.0 || v == 1.0);
        let title = if spikes {
            "Latent spikes of one test image"
        } else {
            "Latent code of one test image (darker: larger |value|)"
        };
        let area = area.titled(title, theme::text(theme::SUBTITLE))?;
        let (x, y) = (cells(steps, true), cells(neurons, true));
        let chart = panel::panel(&area, (&x, "Time step"), (&y, "Neuron"))?;
        let largest = self.raster.iter().fold(0f32, |m, v| m.max(v.abs()));
        for ((t, j), &v) in self.raster.indexed_iter() {
            if v != 0.0 && v.is_finite() {
                let shade = theme::darkness(f64::from(v.abs() / largest));
                chart
                    .plotting_area()
                    .draw(&Rectangle::new(cell(t, j), shade.filled()))?;
            }
        }
        panel::frame(&chart)
    }

    /// The heat map, class 0 at the top left, and its colour bar at the right of `bar`.
    fn heat_map<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        bar: &DrawingArea<DB, Shift>,
    ) -> Drawn<DB> {
        let area = area.titled(
            "Class correlation of the latent code",
            theme::text(theme::SUBTITLE),
        )?;
        let classes = self.correlation.len();
        let x = cells(classes, false);
        let y = Axis {
            from: x.to,
            to: x.from,
            ..x.clone()
        };
        let chart = panel::panel(&area, (&x, "Class"), (&y, "Class"))?;
        for (a, row) in self.correlation.iter().enumerate() {
            for (b, &v) in row.iter().enumerate() {
                chart
                    .plotting_area()
                    .draw(&Rectangle::new(cell(b, a), theme::diverging(v).filled()))?;
            }
        }
        panel::frame(&chart)?;
        // The colour bar spans the heat map's height.
        let plot = chart.plotting_area();
        let top = (plot.get_base_pixel().1 - bar.get_base_pixel().1).max(0) as u32;
        let (_, bar_h) = bar.dim_in_pixel();
        let bottom = bar_h.saturating_sub(top + plot.dim_in_pixel().1);
        colour_bar(bar, top, bottom)
    }
}

/// The diverging colour map from −1 to 1 as a vertical bar `top` and `bottom` pixels from
/// the ends of `area`, ticked and titled at its right.
fn colour_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    top: u32,
    bottom: u32,
) -> Drawn<DB> {
    let unit = Axis::span(0.0, 1.0);
    let values = Axis::span(-1.0, 1.0);
    let (w, _) = area.dim_in_pixel();
    let mut chart = ChartBuilder::on(area)
        .margin_top(top)
        .margin_bottom(bottom)
        .margin_left(12)
        .right_y_label_area_size(w.saturating_sub(12 + BAR_W))
        .build_cartesian_2d(unit.clone(), values.clone())?
        .set_secondary_coord(unit, values.clone());
    for k in 0..BAR_STEPS {
        let (lo, hi) = (
            -1.0 + 2.0 * k as f64 / BAR_STEPS as f64,
            -1.0 + 2.0 * (k + 1) as f64 / BAR_STEPS as f64,
        );
        chart.plotting_area().draw(&Rectangle::new(
            [(0.0, lo), (1.0, hi)],
            theme::diverging((lo + hi) / 2.0).filled(),
        ))?;
    }
    let ticks = values.ticks(5);
    let label = Axis::labels(&ticks);
    let fmt = |v: &f64| label(*v);
    chart
        .configure_secondary_axes()
        .y_labels(ticks.len())
        .y_label_formatter(&fmt)
        .label_style(theme::text(theme::TICK))
        .axis_desc_style(theme::text(theme::AXIS_TITLE))
        .y_desc("Correlation")
        .axis_style(theme::BLACK.stroke_width(1))
        .draw()?;
    let plot = chart.plotting_area();
    let (pw, ph) = plot.dim_in_pixel();
    plot.strip_coord_spec().draw(&Rectangle::new(
        [(0, 0), (pw as i32 - 1, ph as i32 - 1)],
        theme::BLACK.stroke_width(1),
    ))
}

impl Figure for Latent<'_> {
    fn size(&self) -> (u32, u32) {
        LATENT
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn<DB> {
        let root = root.margin(OUTER, OUTER, OUTER, OUTER);
        let (left, rest) = root.split_horizontally(RASTER_W);
        let (heat, bar) = rest.split_horizontally(HEAT_W);
        self.raster(&left)?;
        // The bar's area starts as high as the heat map's, under a title line of its own.
        self.heat_map(&heat, &bar)
    }
}

/// The latent layer at a glance, as PNG at `path` and as SVG beside it: left, the spike
/// raster of one image (`raster [T, N]`, see [`raster_of`]; time step along x, neuron up
/// y, a spike a black cell; a non-spiking code shaded by magnitude); right,
/// `class_correlation` (classes × classes, e.g.
/// [`LatentReport`](crate::metrics::LatentReport)) as a blue (−1) – white (0) – red (+1)
/// heat map with class labels on both axes and a colour bar.
///
/// # Errors
/// If the raster or the matrix is empty, the matrix not square, or drawing or writing a file fails.
pub fn latent_figure(
    path: &Path,
    raster: &Array2<f32>,
    class_correlation: &[Vec<f64>],
) -> io::Result<()> {
    let (steps, neurons) = raster.dim();
    let classes = class_correlation.len();
    let square = classes > 0 && class_correlation.iter().all(|r| r.len() == classes);
    if steps == 0 || neurons == 0 || !square {
        return Err(invalid(format!(
            "{}: raster {steps}×{neurons} or a {classes}-row correlation matrix that is empty \
             or not square",
            path.display()
        )));
    }
    let figure = Latent {
        raster,
        correlation: class_correlation,
    };
    render::write(path, &figure)
}
