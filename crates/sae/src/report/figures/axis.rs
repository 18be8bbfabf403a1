//! A chart's axis: the range shown, linear or logarithmic, with round ticks and their
//! labels. One type for both scales, so a chart's axes are chosen at run time, and our
//! own ticks, so every axis has round ones (plotters' logarithmic axis has none on a
//! range within one decade).

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};

/// How values are laid along an axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Scale {
    Linear,
    /// Base-10 logarithmic: equal ratios at equal distances; only positive values.
    Log,
}

/// The share of the data's span (of its log-span on a logarithmic axis) left empty at
/// each end, so no mark touches the frame.
pub(super) const PAD: f64 = 0.05;

/// One axis of a chart: values from `from` (at the left or bottom) to `to` (at the right
/// or top; `to < from` runs the axis backwards), on `scale`.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Axis {
    pub(super) from: f64,
    pub(super) to: f64,
    pub(super) scale: Scale,
    /// Ticks at whole numbers only (counts; indices: time steps, neurons, classes).
    pub(super) whole: bool,
    /// Ticks only within this range, if given (an index axis: its cells, not the padding).
    pub(super) ticked: Option<(f64, f64)>,
}

impl Scale {
    /// Whether `v` can be drawn on this scale: finite, and positive on a log scale.
    pub(super) fn shows(self, v: f64) -> bool {
        v.is_finite() && (self == Scale::Linear || v > 0.0)
    }

    /// Logarithmic when every value is positive and the largest is more than 10 times the
    /// smallest (the data spans decades), linear otherwise; values that cannot be drawn at
    /// all (not finite) are ignored.
    pub(super) fn fitting(values: impl Iterator<Item = f64>) -> Scale {
        let (lo, hi) = extent(values.filter(|v| v.is_finite()));
        if lo > 0.0 && hi > 10.0 * lo {
            Scale::Log
        } else {
            Scale::Linear
        }
    }
}

/// The smallest and largest of `values`; `(∞, −∞)` if there is none.
pub(super) fn extent(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

impl Axis {
    /// The axis over `values` (those the scale cannot show are ignored), padded by
    /// [`PAD`] at each end: additively on a linear axis, multiplicatively on a log one. A
    /// single value gets ±10 % of itself (±1 at zero; ×/÷ 2 on a log axis); no value,
    /// 0 to 1 (1 to 10 on a log axis).
    pub(super) fn fit(scale: Scale, values: impl Iterator<Item = f64>) -> Axis {
        let (lo, hi) = extent(values.filter(|&v| scale.shows(v)));
        let (from, to) = match scale {
            _ if lo > hi => match scale {
                Scale::Linear => (0.0, 1.0),
                Scale::Log => (1.0, 10.0),
            },
            Scale::Linear if lo == hi => {
                let half = if lo == 0.0 { 1.0 } else { 0.1 * lo.abs() };
                (lo - half, hi + half)
            }
            Scale::Log if lo == hi => (lo / 2.0, hi * 2.0),
            Scale::Linear => (lo - PAD * (hi - lo), hi + PAD * (hi - lo)),
            Scale::Log => {
                let f = (hi / lo).powf(PAD);
                (lo / f, hi * f)
            }
        };
        if !(from.is_finite() && to.is_finite()) {
            // Values near the largest float: their span overflows.
            return Axis::fit(scale, std::iter::empty());
        }
        Axis {
            from,
            to,
            scale,
            whole: false,
            ticked: None,
        }
    }

    /// The linear axis from `from` to `to` exactly.
    pub(super) fn span(from: f64, to: f64) -> Axis {
        Axis {
            from,
            to,
            scale: Scale::Linear,
            whole: false,
            ticked: None,
        }
    }

    /// The same axis, ticked at whole numbers only.
    pub(super) fn whole(self) -> Axis {
        Axis {
            whole: true,
            ..self
        }
    }

    /// The same axis, ticked only from `lo` to `hi`.
    pub(super) fn ticked_within(self, lo: f64, hi: f64) -> Axis {
        Axis {
            ticked: Some((lo, hi)),
            ..self
        }
    }

    /// The smaller and larger end of where ticks may go.
    fn bounds(&self) -> (f64, f64) {
        let (lo, hi) = (self.from.min(self.to), self.from.max(self.to));
        match self.ticked {
            Some((a, b)) => (lo.max(a.min(b)), hi.min(a.max(b))),
            None => (lo, hi),
        }
    }

    /// How far along the axis `v` lies: 0 at `from`, 1 at `to`; `None` if the scale
    /// cannot show it.
    pub(super) fn fraction(&self, v: f64) -> Option<f64> {
        if !self.scale.shows(v) {
            return None;
        }
        Some(match self.scale {
            Scale::Linear => (v - self.from) / (self.to - self.from),
            Scale::Log => (v / self.from).log10() / (self.to / self.from).log10(),
        })
    }

    /// At most `max` (at least 2) round ticks inside the axis. Linear: the multiples of
    /// 1, 2 or 5 × 10^k, the finest step that gives no more than `max`. Logarithmic: 1, 2
    /// and 5 × the powers of ten, else the powers of ten (every k-th if still too many);
    /// on a range too narrow for two of those, as on a linear axis with half as many.
    pub(super) fn ticks(&self, max: usize) -> Vec<f64> {
        let max = max.max(2);
        let (lo, hi) = self.bounds();
        if self.scale == Scale::Log {
            let inside = |v: &f64| (lo..=hi).contains(v);
            let decades = lo.log10().floor() as i32..=hi.log10().ceil() as i32;
            let inside = |v: &f64| inside(v) && (!self.whole || v.fract() == 0.0);
            let fine: Vec<f64> = decades
                .clone()
                .flat_map(|k| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(k)))
                .filter(inside)
                .collect();
            if (2..=max).contains(&fine.len()) {
                return fine;
            }
            let powers: Vec<f64> = decades.map(|k| 10f64.powi(k)).filter(inside).collect();
            if powers.len() >= 2 {
                let every = powers.len().div_ceil(max);
                return powers.into_iter().step_by(every).collect();
            }
            // Even steps crowd towards the top of a log axis: half as many.
            return linear_ticks(lo, hi, (max / 2).max(2), self.whole);
        }
        linear_ticks(lo, hi, max, self.whole)
    }

    /// The labels of `ticks` (see [`number`]): plain decimals when every tick is between
    /// 0.001 and 100 000 in size (or zero), else all in powers of ten.
    pub(super) fn labels(ticks: &[f64]) -> impl Fn(f64) -> String + use<> {
        let plain = ticks
            .iter()
            .all(|&t| t == 0.0 || (1e-3..1e5).contains(&t.abs()));
        move |v| number(v, plain)
    }
}

/// The multiples of the finest step of 1, 2 or 5 × 10^k (at least 1 when `whole`) that
/// puts no more than `max` of them in `lo..=hi`.
fn linear_ticks(lo: f64, hi: f64, max: usize, whole: bool) -> Vec<f64> {
    let span = hi - lo;
    if !span.is_finite() || span < 0.0 {
        return vec![];
    }
    if span <= 1e-12 * lo.abs().max(1.0) {
        return vec![lo];
    }
    let mut step = 10f64.powf((span / max as f64).log10().floor());
    let count = |step: f64| ((hi / step).floor() - (lo / step).ceil()) as i64 + 1;
    for m in [1.0, 2.0, 5.0, 10.0, 20.0, 50.0] {
        if count(step * m) <= max as i64 {
            step *= m;
            break;
        }
    }
    if whole {
        step = step.max(1.0).round();
    }
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    if last.saturating_sub(first) > 10 * max as i64 {
        return vec![];
    }
    (first..=last).map(|k| k as f64 * step).collect()
}

/// `v` as a tick label. Plain: the shortest decimal that rounds to it at 10 significant
/// digits (so 3 × 0.1 is `0.3`); else `m×10ⁿ` with a superscript exponent (`10ⁿ` when
/// m is 1). A value within 10⁻¹² of zero is `0`.
pub(super) fn number(v: f64, plain: bool) -> String {
    if v.abs() < 1e-12 {
        return "0".into();
    }
    let rounded = |x: f64| format!("{x:.9e}").parse::<f64>().unwrap_or(x);
    if plain {
        return format!("{}", rounded(v)).replace('-', "\u{2212}");
    }
    let mut exp = v.abs().log10().floor() as i32;
    let mut mantissa = rounded(v / 10f64.powi(exp));
    if mantissa.abs() >= 10.0 {
        // log10 rounded down across a power of ten.
        exp += 1;
        mantissa = rounded(v / 10f64.powi(exp));
    }
    let power = format!("10{}", superscript(exp));
    let sign = if v < 0.0 { "\u{2212}" } else { "" };
    if mantissa.abs() == 1.0 {
        format!("{sign}{power}")
    } else {
        format!("{sign}{}×{power}", mantissa.abs())
    }
}

/// `n` in superscript digits.
fn superscript(n: i32) -> String {
    let digits = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let body: String = n
        .unsigned_abs()
        .to_string()
        .chars()
        .map(|c| digits[c.to_digit(10).unwrap_or(0) as usize])
        .collect();
    if n < 0 { format!("⁻{body}") } else { body }
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        // A value the scale cannot show is put at the start; charts filter them first.
        let f = self.fraction(*value).unwrap_or(0.0);
        let pixel = f64::from(limit.0) + f * f64::from(limit.1 - limit.0);
        pixel.round().clamp(-1e6, 1e6) as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        self.ticks(hint.bold_points())
    }

    fn range(&self) -> Range<f64> {
        self.from..self.to
    }
}
