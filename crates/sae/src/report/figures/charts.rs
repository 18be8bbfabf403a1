//! x–y line plots with axes, ticks and a legend (the loss curve is one).

use std::io;
use std::path::Path;

use super::canvas::*;

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
pub(super) const LINE_PLOT: (usize, usize) = (720, 420);
/// The most ticks on a logarithmic axis.
pub(super) const MAX_TICKS: usize = 8;
/// Room for a line of scale-2 text and the gap under it.
pub(super) const TEXT_LINE: usize = 14;
/// The least mean distance in pixels between a series' consecutive points for them to be
/// marked: closer markers would merge into a band that hides the curve.
pub(super) const MARKER_SPACING: i64 = 8;
/// Width of a legend entry's key (a short line through a marker) and its gap to the label.
pub(super) const LEGEND_KEY: usize = 22;

/// Where value `v` is drawn along an axis, in plotted units (the value itself, or its
/// base-10 logarithm on a logarithmic axis); `None` if it cannot be drawn: not finite, or
/// not positive on a logarithmic axis.
pub(super) fn unit(log: bool, v: f64) -> Option<f64> {
    let u = if log { v.log10() } else { v };
    u.is_finite().then_some(u)
}

/// Where point `(x, y)` is drawn, in plotted units, on axes logarithmic as `x_log` and
/// `y_log` say; `None` if it cannot be (see [`unit`]).
pub(super) fn plotted(x_log: bool, y_log: bool, (x, y): (f64, f64)) -> Option<(f64, f64)> {
    Some((unit(x_log, x)?, unit(y_log, y)?))
}

/// The smallest and largest of `values`; `(∞, −∞)` if there is none.
pub(super) fn extent(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

/// One axis of a [`line_plot`]: the range shown, in plotted units (see [`unit`]).
pub(super) struct Scale {
    pub(super) lo: f64,
    pub(super) hi: f64,
    pub(super) log: bool,
}

impl Scale {
    /// The range of the plotted `units`, widened by half a unit either side of a single
    /// value; `0..1` when there is none.
    pub(super) fn fit(log: bool, units: impl Iterator<Item = f64>) -> Self {
        let (lo, hi) = match extent(units) {
            (lo, _) if !lo.is_finite() => (0.0, 1.0),
            (lo, hi) if lo < hi => (lo, hi),
            (lo, hi) => (lo - 0.5, hi + 0.5),
        };
        Scale { lo, hi, log }
    }

    /// How far along the axis plotted unit `u` lies, 0 at its start and 1 at its end.
    pub(super) fn fraction(&self, u: f64) -> f64 {
        (u - self.lo) / (self.hi - self.lo)
    }

    /// The ticks, in plotted units. A linear axis has five, evenly spaced from end to
    /// end. A logarithmic one has them at 1, 2 and 5 times the powers of ten in range, or
    /// if those are more than [`MAX_TICKS`], at every power of ten (every k-th if still
    /// too many); if fewer than two values of the 1-2-5 series fall in range, at five
    /// evenly spaced places.
    pub(super) fn ticks(&self) -> Vec<f64> {
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
    pub(super) fn label(&self, u: f64) -> String {
        number(if self.log { 10f64.powf(u) } else { u })
    }
}

/// `label`, followed by `(LOG)` on a logarithmic axis.
pub(super) fn axis_label(label: &str, log: bool) -> String {
    let suffix = if log { " (LOG)" } else { "" };
    format!("{label}{suffix}").trim_start().to_string()
}

/// The layout of a [`line_plot`]: the axes' scales, the plot area (`left`, `top`, `width`
/// × `height` pixels, axes included) and the top-left corner of each series' legend entry.
pub(super) struct Frame {
    pub(super) x: Scale,
    pub(super) y: Scale,
    pub(super) left: usize,
    pub(super) top: usize,
    pub(super) width: usize,
    pub(super) height: usize,
    pub(super) legend: Vec<(usize, usize)>,
}

impl Frame {
    /// Lays out a plot of `series` on `axes`.
    pub(super) fn new(axes: &Axes, series: &[Series]) -> Self {
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
    pub(super) fn pixel(&self, (x, y): (f64, f64)) -> (i64, i64) {
        let px = self.left as f64 + self.x.fraction(x) * (self.width - 1) as f64;
        let py = self.bottom() as f64 - self.y.fraction(y) * (self.height - 1) as f64;
        (px.round() as i64, py.round() as i64)
    }

    /// The pixel row of the x axis.
    pub(super) fn bottom(&self) -> i64 {
        (self.top + self.height - 1) as i64
    }

    /// The pixel column of the plot area's right edge.
    pub(super) fn right(&self) -> i64 {
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
