//! The bitmap backend of the PNG charts: plotters' bitmap, with text laid out glyph by
//! glyph in the embedded font, each glyph at its side bearing. (plotters' own `ab_glyph`
//! text drops the bearing, which sets narrow letters such as i, l and r off their place;
//! the SVG keeps text as text and needs none of this.)

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use plotters::prelude::BitMapBackend;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};

use super::theme;

/// A [`BitMapBackend`] on an RGB buffer whose text is set in the embedded font.
pub(super) struct Bitmap<'a> {
    inner: BitMapBackend<'a>,
    font: FontRef<'static>,
}

type Error<'a> = DrawingErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>;

impl<'a> Bitmap<'a> {
    /// Draws on `rgb`, `size` pixels of three bytes each, row by row.
    pub(super) fn new(rgb: &'a mut [u8], size: (u32, u32)) -> Self {
        Bitmap {
            inner: BitMapBackend::with_buffer(rgb, size),
            font: theme::font(),
        }
    }

    /// The layout of `text` at `size` pixels (the font's ascent to descent, as plotters
    /// scales it): its width (advances and kerning, as plotters measures it), the height
    /// of a capital letter and the depth of a descender, in pixels.
    fn measure(&self, text: &str, size: f64) -> (f32, f32, f32) {
        let scaled = self.font.as_scaled(PxScale::from(size as f32));
        let mut width = 0.0;
        let mut prev = None;
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = prev {
                width += scaled.kern(p, id);
            }
            width += scaled.h_advance(id);
            prev = Some(id);
        }
        let cap = self
            .font
            .outline(self.font.glyph_id('H'))
            // The outline's bounds are in font units, up from the baseline (ab_glyph
            // keeps the top in `min.y`): the larger is the capital's top.
            .map_or(scaled.ascent(), |o| {
                o.bounds.min.y.max(o.bounds.max.y) * scaled.v_scale_factor()
            });
        (width, cap, -scaled.descent())
    }
}

impl<'a> DrawingBackend for Bitmap<'a> {
    type ErrorType = <BitMapBackend<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), Error<'a>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), Error<'a>> {
        self.inner.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Result<(), Error<'a>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), Error<'a>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), Error<'a>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), Error<'a>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), Error<'a>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), Error<'a>> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), Error<'a>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    /// Sets `text` with its anchor at `pos`: a top anchor at the top of the capitals, a
    /// centre one halfway up them, a bottom one at the foot of the descenders; turned as
    /// the style says (a y-axis title reads upwards).
    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), Error<'a>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let (width, cap, descent) = self.measure(text, style.size());
        let anchor = style.anchor();
        let left = match anchor.h_pos {
            HPos::Left => 0.0,
            HPos::Center => -width / 2.0,
            HPos::Right => -width,
        };
        let baseline = match anchor.v_pos {
            VPos::Top => cap,
            VPos::Center => cap / 2.0,
            VPos::Bottom => -descent,
        };
        let turn = style.transform();
        let scaled = self.font.as_scaled(PxScale::from(style.size() as f32));
        let mut pixels = vec![];
        let (mut caret, mut prev) = (left, None);
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = prev {
                caret += scaled.kern(p, id);
            }
            let glyph = id.with_scale_and_position(scaled.scale(), point(caret, baseline));
            if let Some(outline) = self.font.outline_glyph(glyph) {
                let corner = outline.px_bounds().min;
                outline.draw(|x, y, coverage| {
                    let (x, y) = (corner.x as i32 + x as i32, corner.y as i32 + y as i32);
                    let (x, y) = turn.transform(x, y);
                    pixels.push(((pos.0 + x, pos.1 + y), coverage));
                });
            }
            caret += scaled.h_advance(id);
            prev = Some(id);
        }
        for (at, coverage) in pixels {
            let alpha = color.alpha * f64::from(coverage.clamp(0.0, 1.0));
            self.inner.draw_pixel(
                at,
                BackendColor {
                    alpha,
                    rgb: color.rgb,
                },
            )?;
        }
        Ok(())
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), Error<'a>> {
        let (width, cap, descent) = self.measure(text, style.size());
        Ok((width.ceil() as u32, (cap + descent).ceil() as u32))
    }
}
