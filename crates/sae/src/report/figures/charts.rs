//! x–y line plots with titled axes, round ticks and a legend beside the plot (the loss
//! curve is one).

use std::io;
use std::path::Path;

use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis::{Axis, Scale};
use super::panel::{self, Chart};
use super::render::{self, Drawn, Figure};
use super::theme;

/// One named curve of a [`line_plot`].
pub struct Series<'a> {
    /// Shown in the legend beside the series' colour; an empty label has no entry.
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
pub(super) const LINE_PLOT: (u32, u32) = (900, 540);
/// Room around the whole picture.
const OUTER: u32 = 8;
/// The least mean distance in pixels between a series' consecutive points for them to be
/// marked: closer markers would merge into a band that hides the curve.
pub(super) const MARKER_SPACING: f64 = 10.0;
/// Radius in pixels of a point's marker.
const MARKER: i32 = 4;
/// Width of a legend entry's key (a short line through a marker) and the gaps around it.
const LEGEND_KEY: u32 = 28;
const LEGEND_GAP: u32 = 10;
/// The most points drawn of a series per pixel of plot width; a longer series (a training
/// curve of thousands of steps) is thinned to every k-th point, its last kept.
const POINTS_PER_PIXEL: usize = 2;

/// A [`line_plot`] laid out: its axes fitted to the points they can show.
pub(super) struct LinePlot<'a> {
    pub(super) axes: &'a Axes<'a>,
    pub(super) series: &'a [Series<'a>],
    pub(super) x: Axis,
    pub(super) y: Axis,
}

impl<'a> LinePlot<'a> {
    pub(super) fn new(axes: &'a Axes<'a>, series: &'a [Series<'a>]) -> Self {
        let x_scale = if axes.x_log {
            Scale::Log
        } else {
            Scale::Linear
        };
        let points = || series.iter().flat_map(|s| s.points.iter().copied());
        let on_x = || points().filter(move |p| x_scale.shows(p.0));
        let y_scale = match axes.y_log {
            Some(true) => Scale::Log,
            Some(false) => Scale::Linear,
            None => Scale::fitting(on_x().map(|p| p.1)),
        };
        let shown = || on_x().filter(move |p| y_scale.shows(p.1));
        LinePlot {
            axes,
            series,
            x: Axis::fit(x_scale, shown().map(|p| p.0)),
            y: Axis::fit(y_scale, shown().map(|p| p.1)),
        }
    }

    /// The points of `s` the axes can show, at most `max` of them (see
    /// [`POINTS_PER_PIXEL`]).
    pub(super) fn shown(&self, s: &Series, max: usize) -> Vec<(f64, f64)> {
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|p| self.x.scale.shows(p.0) && self.y.scale.shows(p.1))
            .collect();
        let every = pts.len().div_ceil(max.max(1)).max(1);
        let last = pts.len().saturating_sub(1);
        pts.iter()
            .enumerate()
            .filter(|&(i, _)| i % every == 0 || i == last)
            .map(|(_, &p)| p)
            .collect()
    }
}

/// The shape of a series' point markers, by the series' place: circle, square, triangle,
/// diamond, then again, so series of one colour or at one point stay apart.
fn mark<DB: DrawingBackend, CT: CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    at: CT::From,
    series: usize,
    colour: RGBColor,
) -> Drawn<DB> {
    let (r, style) = (MARKER, colour.filled());
    let here = EmptyElement::at(at);
    match series % 4 {
        0 => area.draw(&(here + Circle::new((0, 0), r, style))),
        1 => area.draw(&(here + Rectangle::new([(-r, -r), (r, r)], style))),
        2 => area.draw(&(here + Polygon::new(vec![(0, -r - 1), (r + 1, r), (-r - 1, r)], style))),
        _ => {
            let d = r + 1;
            area.draw(&(here + Polygon::new(vec![(0, -d), (d, 0), (0, d), (-d, 0)], style)))
        }
    }
}

/// Whether the points, drawn on `chart`, lie far enough apart to be marked.
fn marked<DB: DrawingBackend>(chart: &Chart<'_, DB>, pts: &[(f64, f64)]) -> bool {
    if pts.len() < 2 {
        return true;
    }
    let length: f64 = pts
        .windows(2)
        .map(|w| {
            let (a, b) = (chart.backend_coord(&w[0]), chart.backend_coord(&w[1]));
            f64::from((b.0 - a.0).abs().max((b.1 - a.1).abs()))
        })
        .sum();
    length >= MARKER_SPACING * (pts.len() - 1) as f64
}

/// An axis title, followed by ` (log scale)` on a logarithmic axis.
pub(super) fn scale_title(title: &str, scale: Scale) -> String {
    match scale {
        Scale::Log if !title.is_empty() => format!("{title} (log scale)"),
        _ => title.to_string(),
    }
}

impl Figure for LinePlot<'_> {
    fn size(&self) -> (u32, u32) {
        LINE_PLOT
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn<DB> {
        let root = root.margin(OUTER, OUTER, OUTER, OUTER);
        let body = root.titled(self.axes.title, theme::text(theme::TITLE))?;
        let legend_style = theme::text(theme::LEGEND);
        let mut label_w = None;
        for s in self.series.iter().filter(|s| !s.label.is_empty()) {
            let w = body.estimate_text_size(s.label, &legend_style)?.0;
            label_w = label_w.max(Some(w));
        }
        let legend_w = label_w.map_or(0, |w| LEGEND_GAP + LEGEND_KEY + LEGEND_GAP + w);
        let (width, _) = body.dim_in_pixel();
        let (plot, legend) = body.split_horizontally(width.saturating_sub(legend_w));
        let (x_title, y_title) = (
            scale_title(self.axes.x_label, self.x.scale),
            scale_title(self.axes.y_label, self.y.scale),
        );
        let chart = panel::panel(&plot, (&self.x, &x_title), (&self.y, &y_title))?;
        let max = POINTS_PER_PIXEL * chart.plotting_area().dim_in_pixel().0 as usize;
        let mut keys = vec![];
        let colours = theme::PALETTE.iter().cycle();
        for (i, (s, &colour)) in self.series.iter().zip(colours).enumerate() {
            let pts = self.shown(s, max);
            chart
                .plotting_area()
                .draw(&PathElement::new(pts.clone(), colour.stroke_width(2)))?;
            let marks = marked(&chart, &pts);
            if marks {
                for &p in &pts {
                    mark(chart.plotting_area(), p, i, colour)?;
                }
            }
            if !s.label.is_empty() {
                keys.push((s.label, i, colour, marks, pts.len() > 1));
            }
        }
        panel::frame(&chart)?;
        // Entries from the height of the plot's top edge, one per line.
        let top = chart.plotting_area().get_base_pixel().1 - legend.get_base_pixel().1;
        let line = (1.7 * theme::LEGEND) as i32;
        // A key is what its series shows: a line if joined, a marker if marked.
        for (k, (label, i, colour, marks, joined)) in keys.into_iter().enumerate() {
            let y = top + line / 2 + k as i32 * line;
            let (x0, x1) = (LEGEND_GAP as i32, (LEGEND_GAP + LEGEND_KEY) as i32);
            if joined {
                let key = PathElement::new(vec![(x0, y), (x1, y)], colour.stroke_width(2));
                legend.draw(&key)?;
            }
            if marks {
                mark(&legend, ((x0 + x1) / 2, y), i, colour)?;
            }
            let style = legend_style.pos(Pos::new(HPos::Left, VPos::Center));
            legend.draw_text(label, &style, (x1 + LEGEND_GAP as i32, y))?;
        }
        Ok(())
    }
}

/// Draws the `series` on shared axes in a 900×540 picture, as PNG at `path` and as SVG
/// beside it (same name, extension `svg`): each series in its own colour (ten, repeating),
/// its points joined by a line and marked by a circle, square, triangle or diamond
/// (unless they lie on average closer than 10 pixels, as on a long training curve, where
/// markers would hide the line), with a legend of the labels beside the plot. Both axes are
/// titled, ticked at round values and padded so no mark touches the frame; a logarithmic
/// axis has its ticks at 1, 2 and 5 times powers of ten, or at powers of ten on a wide
/// range. Points that cannot be drawn (not finite, or not positive on a logarithmic axis)
/// are skipped; any series may be empty, and so may `series`.
///
/// # Errors
/// If drawing or writing a file fails.
pub fn line_plot(path: &Path, axes: &Axes, series: &[Series]) -> io::Result<()> {
    render::write(path, &LinePlot::new(axes, series))
}

/// The training curves: `loss` and `mse`, each `(step, value)`, as a [`line_plot`] over
/// the training step. The value axis is logarithmic when every value is positive and the
/// largest is more than 10 times the smallest, linear otherwise. Non-finite points are
/// skipped; either series may be empty.
///
/// # Errors
/// If drawing or writing a file fails.
pub fn loss_curve(path: &Path, loss: &[(f64, f64)], mse: &[(f64, f64)]) -> io::Result<()> {
    let axes = Axes {
        title: "Training curves",
        x_label: "Training step",
        y_label: "Loss",
        x_log: false,
        y_log: None,
    };
    let series = [
        Series {
            label: "Training loss",
            points: loss,
        },
        Series {
            label: "Training MSE",
            points: mse,
        },
    ];
    line_plot(path, &axes, &series)
}
