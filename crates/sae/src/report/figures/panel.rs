//! One set of axes on a drawing area, drawn the same way in every chart: round ticks
//! with labels on both axes, axis titles, a light grid, a frame, and room around the
//! plot so no tick label is cut off.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::axis::{Axis, Scale};
use super::render::Drawn;
use super::theme;

/// A chart's plotting context on two [`Axis`] coordinates.
pub(super) type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<Axis, Axis>>;

/// What [`panel`] returns.
pub(super) type Built<'a, DB> =
    Result<Chart<'a, DB>, DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Pixels between tick labels, at the least, along each axis.
const X_TICK_SPACING: u32 = 60;
const Y_TICK_SPACING: u32 = 45;
/// Length of a tick mark; plotters sets labels twice as far from the axis.
const TICK_MARK: i32 = 5;
/// Room kept free around the plot, beyond what the labels need.
const MARGIN: u32 = 10;

/// The most ticks of `axis` on a side of `pixels`: 12 when the axis is a linear one of
/// whole numbers that holds at most 12 (classes, a few time steps: each gets one); else
/// as many as fit `spacing` apart. (plotters asks the axis for its ticks with this
/// number, so the labels' style is chosen from the same ticks.)
fn most_ticks(axis: &Axis, pixels: u32, spacing: u32) -> usize {
    const EVERY: usize = 12;
    if axis.whole && axis.scale == Scale::Linear {
        let every = axis.ticks(EVERY);
        if every.windows(2).all(|w| w[1] - w[0] == 1.0) {
            return EVERY;
        }
    }
    (pixels / spacing).max(2) as usize
}

/// Builds axes `x` (titled `x_title`, under the plot) and `y` (titled `y_title`, reading
/// upwards at the left) on `area` and draws their ticks, labels and grid.
pub(super) fn panel<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    (x, x_title): (&Axis, &str),
    (y, y_title): (&Axis, &str),
) -> Built<'a, DB> {
    let (width, height) = area.dim_in_pixel();
    let tick_style = theme::text(theme::TICK);
    let title_style = theme::text(theme::AXIS_TITLE);
    let (x_most, y_most) = (
        most_ticks(x, width, X_TICK_SPACING),
        most_ticks(y, height, Y_TICK_SPACING),
    );
    let (x_ticks, y_ticks) = (x.ticks(x_most), y.ticks(y_most));
    let (x_label, y_label) = (Axis::labels(&x_ticks), Axis::labels(&y_ticks));
    let size = |s: &str, style: &TextStyle| area.estimate_text_size(s, style);
    let mut y_label_w = 0;
    for &t in &y_ticks {
        y_label_w = y_label_w.max(size(&y_label(t), &tick_style)?.0);
    }
    let mut x_label_w = 0;
    for &t in &x_ticks {
        x_label_w = x_label_w.max(size(&x_label(t), &tick_style)?.0);
    }
    let tick_h = size("0", &tick_style)?.1;
    let title_h = size("Ag", &title_style)?.1;
    let gap = 2 * TICK_MARK as u32;
    let y_area = gap + y_label_w + gap + if y_title.is_empty() { 0 } else { title_h };
    let x_area = gap + tick_h + gap + if x_title.is_empty() { 0 } else { title_h };
    let mut chart = ChartBuilder::on(area)
        // Half a tick label beyond the plot's top and right ends, and a margin.
        .margin_top(MARGIN + tick_h / 2)
        .margin_right(MARGIN + x_label_w / 2)
        .margin_left(MARGIN)
        .margin_bottom(MARGIN)
        .x_label_area_size(x_area)
        .y_label_area_size(y_area)
        .build_cartesian_2d(x.clone(), y.clone())?;
    let (x_fmt, y_fmt) = (|v: &f64| x_label(*v), |v: &f64| y_label(*v));
    chart
        .configure_mesh()
        .x_labels(x_most)
        .y_labels(y_most)
        .max_light_lines(0)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style(tick_style.clone())
        .axis_desc_style(title_style)
        .x_desc(x_title)
        .y_desc(y_title)
        .bold_line_style(theme::GRID.stroke_width(1))
        .axis_style(theme::BLACK.stroke_width(1))
        .set_all_tick_mark_size(TICK_MARK)
        .draw()?;
    Ok(chart)
}

/// Draws a frame around the plot of `chart` (after its marks, so it stays on top).
pub(super) fn frame<DB: DrawingBackend>(chart: &Chart<'_, DB>) -> Drawn<DB> {
    let area = chart.plotting_area();
    let (w, h) = area.dim_in_pixel();
    let pixels = area.strip_coord_spec();
    pixels.draw(&Rectangle::new(
        [(0, 0), (w as i32 - 1, h as i32 - 1)],
        theme::BLACK.stroke_width(1),
    ))
}
