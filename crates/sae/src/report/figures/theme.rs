//! The look every chart shares: the embedded font, text sizes and colours.
//!
//! The font is DejaVu Sans, compiled into the binary (`assets/fonts/`, with its licence)
//! and registered with plotters under the generic name `sans-serif`, so drawing text
//! needs no system font library and an SVG names a family every viewer has.

use std::sync::Once;

use plotters::style::{FontStyle, IntoFont, RGBColor, TextStyle, register_font};

/// The family charts are drawn in, and the name SVG files give it.
pub(super) const FAMILY: &str = "sans-serif";

/// DejaVu Sans, embedded.
static DEJAVU_SANS: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// The embedded font, for the bitmap text of [`Bitmap`](super::text::Bitmap).
pub(super) fn font() -> ab_glyph::FontRef<'static> {
    // Compiled in and known to parse.
    ab_glyph::FontRef::try_from_slice(DEJAVU_SANS).expect("the embedded DejaVu Sans parses")
}

/// Registers the embedded font with plotters, once per process, before anything is drawn.
pub(super) fn register() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // Compiled in and known to parse, so this cannot fail at run time.
        if register_font(FAMILY, FontStyle::Normal, DEJAVU_SANS).is_err() {
            panic!("the embedded DejaVu Sans does not parse as a font");
        }
    });
}

/// Pixel heights of the text of a chart.
pub(super) const TITLE: f64 = 22.0;
pub(super) const SUBTITLE: f64 = 17.0;
pub(super) const AXIS_TITLE: f64 = 18.0;
pub(super) const TICK: f64 = 15.0;
pub(super) const LEGEND: f64 = 15.0;

/// Text of `size` pixels in black.
pub(super) fn text(size: f64) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&BLACK)
}

/// Text of `size` pixels in dark grey, for secondary lines.
pub(super) fn quiet(size: f64) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&DARK)
}

pub(super) const BLACK: RGBColor = RGBColor(0, 0, 0);
pub(super) const WHITE: RGBColor = RGBColor(255, 255, 255);
/// Secondary text.
pub(super) const DARK: RGBColor = RGBColor(70, 70, 70);
/// The grid at the ticks.
pub(super) const GRID: RGBColor = RGBColor(225, 225, 225);
/// Histogram bars.
pub(super) const BAR: RGBColor = RGBColor(70, 110, 170);
/// Ends of the diverging colour map: −1 and +1.
pub(super) const BLUE: RGBColor = RGBColor(33, 102, 172);
pub(super) const RED: RGBColor = RGBColor(178, 24, 43);
/// A missing (NaN) value in a heat map.
pub(super) const MISSING: RGBColor = RGBColor(160, 160, 160);

/// Colours of a line plot's series, in order, repeating after the last: the ten of
/// Tableau's qualitative palette, distinct in print and on screen.
pub(super) const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),  // blue
    RGBColor(255, 127, 14),  // orange
    RGBColor(44, 160, 44),   // green
    RGBColor(214, 39, 40),   // red
    RGBColor(148, 103, 189), // purple
    RGBColor(140, 86, 75),   // brown
    RGBColor(227, 119, 194), // pink
    RGBColor(127, 127, 127), // grey
    RGBColor(188, 189, 34),  // olive
    RGBColor(23, 190, 207),  // cyan
];

/// Blue (−1) through white (0) to red (+1); values outside are clamped, NaN is grey.
pub(super) fn diverging(v: f64) -> RGBColor {
    if v.is_nan() {
        return MISSING;
    }
    let v = v.clamp(-1.0, 1.0);
    let end = if v < 0.0 { BLUE } else { RED };
    let mix = |e: u8| (255.0 + (f64::from(e) - 255.0) * v.abs()).round() as u8;
    RGBColor(mix(end.0), mix(end.1), mix(end.2))
}

/// A grey from white (0) to black (1); values outside are clamped, NaN is white.
pub(super) fn darkness(v: f64) -> RGBColor {
    let g = if v.is_nan() {
        255
    } else {
        (255.0 * (1.0 - v.clamp(0.0, 1.0))).round() as u8
    };
    RGBColor(g, g, g)
}
