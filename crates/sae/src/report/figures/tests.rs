//! The figures, read back: PNG decoded, SVG searched for its text.

use std::fs;
use std::io;
use std::path::Path;

use autograd::Tensor;
use ndarray::{Array2, IxDyn};
use plotters::coord::ranged1d::Ranged;
use plotters::prelude::IntoDrawingArea;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis::{Axis, PAD, Scale, number};
use super::canvas::*;
use super::charts::*;
use super::histograms::count_axis;
use super::text::Bitmap;
use super::*;
use crate::config::SIDE;
use crate::report::spikes::{HISTOGRAM_BINS, LayerReport};

/// Decodes a PNG: `(width, height, RGB bytes)`.
fn decode(path: &Path) -> (u32, u32, Vec<u8>) {
    let file = io::BufReader::new(fs::File::open(path).unwrap());
    let mut reader = png::Decoder::new(file).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

fn pixel(img: &(u32, u32, Vec<u8>), x: usize, y: usize) -> Rgb {
    let i = 3 * (y * img.0 as usize + x);
    [img.2[i], img.2[i + 1], img.2[i + 2]]
}

/// The names in `dir`, sorted: only the written files, no temporary one.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The chart at `png`: its PNG's size, after checking that the SVG beside it has the
/// same size and every one of `texts` as text.
fn chart(png: &Path, texts: &[&str]) -> (u32, u32) {
    let (w, h, _) = decode(png);
    let svg = fs::read_to_string(svg_path(png)).unwrap();
    assert!(
        svg.starts_with(&format!("<svg width=\"{w}\" height=\"{h}\"")),
        "{}",
        &svg[..80]
    );
    for t in texts {
        assert!(
            svg.contains(&format!("\n{t}\n</text>")),
            "{t:?} not a text of the SVG"
        );
    }
    (w, h)
}

#[test]
fn reconstruction_grid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("recon.png");
    let px = SIDE * SIDE;
    let originals = vec![1.0f32; 12 * px]; // white
    let recons = vec![0.5f32; 12 * px]; // grey
    reconstructions(&path, &originals, &recons, 12).unwrap();
    let img = decode(&path);
    // 10 per row, 2 rows per block: 10·(84+2)+2 wide, 2·(2·86)+2+6 high.
    assert_eq!((img.0, img.1), (862, 352));
    assert_eq!(pixel(&img, 2, 2), WHITE);
    assert_eq!(pixel(&img, 1, 1), GAP);
    assert_eq!(pixel(&img, 2, 2 * 86 + 6 + 2), [128, 128, 128]);
    // Overwrites atomically.
    reconstructions(&path, &originals, &recons, 3).unwrap();
    assert_eq!(decode(&path).0, 3 * 86 + 2);
    assert_eq!(names(dir.path()), ["recon.png"]);
    assert!(reconstructions(&path, &[], &recons, 3).is_err());
}

#[test]
fn labelled_reconstruction_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.png");
    let px = SIDE * SIDE;
    let originals = vec![1.0f32; 3 * px]; // white
    let best = vec![0.5f32; 2 * px]; // grey
    let rows: [(&str, &[f32]); 2] = [("original", &originals), ("sae-best", &best)];
    reconstruction_rows(&path, &rows, 5).unwrap();
    let img = decode(&path);
    // The longer label with 12-pixel margins, then three 86-pixel cells; two rows.
    let width = |s| text_width(s, super::theme::LEGEND).unwrap();
    let label = width("original").max(width("sae-best"));
    assert!(label > 40, "{label}");
    let strip = 12 + label + 12;
    assert_eq!((img.0 as usize, img.1), (strip + 3 * 86 + 2, 2 * 86 + 2));
    assert_eq!(pixel(&img, strip + 2, 2), WHITE);
    assert_eq!(pixel(&img, strip + 2, 88), [128, 128, 128]);
    assert_eq!(pixel(&img, strip + 2 + 2 * 86, 88), GAP); // the second row has two images
    assert_eq!(pixel(&img, strip, 88), GAP);
    // The label is drawn: dark pixels left of the images, in the first row.
    let dark = (12..strip).any(|x| (0..86).any(|y| pixel(&img, x, y)[0] < 100));
    assert!(dark);
    assert_eq!(names(dir.path()), ["rows.png"]);
    assert!(reconstruction_rows(&path, &[], 5).is_err());
    assert!(reconstruction_rows(&path, &rows, 0).is_err());
    let short = [rows[0], ("ae", &best[..px - 1])];
    assert!(reconstruction_rows(&path, &short, 5).is_err());
}

fn correlation(classes: usize) -> Vec<Vec<f64>> {
    (0..classes)
        .map(|a| {
            (0..classes)
                .map(|b| if a == b { 1.0 } else { -0.2 })
                .collect()
        })
        .collect()
}

#[test]
fn latent_raster_and_heat_map() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latent.png");
    let (t, b, n) = (5, 2, 7);
    let spikes = Tensor::from_shape_fn(IxDyn(&[t * b, n]), |i| {
        f32::from(u8::from((i[0] + i[1]) % 3 == 0))
    });
    let raster = raster_of(&spikes, t, 1);
    assert_eq!(raster.dim(), (t, n));
    assert_eq!(raster[[2, 4]], spikes[[2 * b + 1, 4]]);
    let corr = correlation(10);
    latent_figure(&path, &raster, &corr).unwrap();
    let texts = [
        "Latent spikes of one test image",
        "Time step",
        "Neuron",
        "Class correlation of the latent code",
        "Class",
        "Correlation",
    ];
    assert_eq!(chart(&path, &texts), (1120, 540));
    assert_eq!(names(dir.path()), ["latent.png", "latent.svg"]);
    // The colour map's ends and middle.
    use super::theme::{BLUE, RED, WHITE as PLAIN, diverging};
    assert_eq!(diverging(1.0), RED);
    assert_eq!(diverging(-1.0), BLUE);
    assert_eq!(diverging(0.0), PLAIN);
    // A non-spiking code (one step of real values), one class, NaN correlations.
    let code = Array2::from_shape_fn((1, 4), |(_, j)| j as f32 - 1.5);
    latent_figure(&path, &code, &[vec![f64::NAN]]).unwrap();
    chart(&path, &["Class", "Time step"]);
    assert!(latent_figure(&path, &raster, &corr[..3]).is_err());
    assert!(latent_figure(&path, &raster, &[]).is_err());
    assert!(latent_figure(&path, &Array2::zeros((0, 3)), &corr).is_err());
}

fn layer(name: &str, dead: u64) -> LayerReport {
    let mut histogram = vec![1u64; HISTOGRAM_BINS];
    histogram[0] = dead;
    LayerReport {
        name: name.into(),
        neurons: histogram.iter().sum::<u64>() as usize,
        dead_frac: 0.5,
        bursting_frac: 0.0,
        density: 0.21,
        spikes_per_image: 3.0,
        histogram,
    }
}

#[test]
fn histograms_in_panels_with_count_axes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rates.png");
    // Counts 1 to 500: a log count axis; 1 to 3: a linear one.
    let layers = [layer("input", 0), layer("conv1", 500), layer("latent", 3)];
    firing_rate_histograms(&path, &layers).unwrap();
    let texts = [
        "Firing rates per layer (test images)",
        "conv1 (519 neurons)",
        "Firing rate (spikes per step)",
        "Neurons (log scale)",
        "Neurons",
    ];
    let (w, h) = chart(&path, &texts);
    let one = dir.path().join("one.png");
    firing_rate_histograms(&one, &layers[2..]).unwrap();
    let (w1, h1) = chart(&one, &["latent (22 neurons)", "Neurons"]);
    // Two columns, two rows against one panel.
    assert_eq!((w - 16, h - 56), (2 * (w1 - 16), 2 * (h1 - 56)));
    // No neuron at all still draws its axes.
    let mut silent = layer("latent", 0);
    silent.histogram = vec![0; HISTOGRAM_BINS];
    firing_rate_histograms(&one, &[silent]).unwrap();
    chart(&one, &["Neurons", "Firing rate (spikes per step)"]);
    assert!(firing_rate_histograms(&path, &[]).is_err());
    let mut files = names(dir.path());
    files.sort();
    assert_eq!(files, ["one.png", "one.svg", "rates.png", "rates.svg"]);
}

#[test]
fn count_axes_start_at_zero_or_below_one() {
    let linear = count_axis(Scale::Linear, 40);
    assert_eq!((linear.from, linear.to), (0.0, 42.0));
    assert_eq!(linear.ticks(5), [0.0, 10.0, 20.0, 30.0, 40.0]);
    let log = count_axis(Scale::Log, 1000);
    assert_eq!(log.from, 0.5);
    // Whole numbers only: no 0.5 tick.
    assert_eq!(log.ticks(4), [1.0, 10.0, 100.0, 1000.0]);
    assert_eq!(count_axis(Scale::Linear, 0).ticks(5), [0.0, 1.0]);
}

#[test]
fn loss_curve_png_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loss.png");
    let loss: Vec<(f64, f64)> = (0..50)
        .map(|i| (i as f64, 1.0 / (1.0 + i as f64)))
        .collect();
    let mse: Vec<(f64, f64)> = loss.iter().map(|&(x, y)| (x, 0.5 * y)).collect();
    loss_curve(&path, &loss, &mse).unwrap();
    let texts = [
        "Training curves",
        "Training step",
        "Loss (log scale)",
        "Training loss",
        "Training MSE",
    ];
    assert_eq!(chart(&path, &texts), (900, 540));
    // Deterministic: the same bytes again.
    let (png, svg) = (fs::read(&path).unwrap(), fs::read(svg_path(&path)).unwrap());
    loss_curve(&path, &loss, &mse).unwrap();
    assert_eq!(fs::read(&path).unwrap(), png);
    assert_eq!(fs::read(svg_path(&path)).unwrap(), svg);
    // Degenerate inputs still give a picture.
    loss_curve(&path, &[(0.0, f64::NAN), (1.0, 2.0)], &[]).unwrap();
    loss_curve(&path, &[(3.0, 0.092); 5], &[(3.0, 0.092)]).unwrap();
    loss_curve(&path, &[], &[]).unwrap();
    chart(&path, &["Loss", "Training step"]);
    assert_eq!(names(dir.path()), ["loss.png", "loss.svg"]);
}

#[test]
fn line_plot_series_legend_and_log_axes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sweep.png");
    let falling: Vec<(f64, f64)> = (1..=32).map(|t| (t as f64, 1.0 / t as f64)).collect();
    let pair = [(2.0, 0.5), (8.0, 0.3)];
    let single = [(4.0, 0.04)];
    let labels: Vec<String> = (0..12).map(|i| format!("Series {i} of many")).collect();
    let mut series: Vec<Series> = labels
        .iter()
        .map(|label| Series {
            label,
            points: &pair,
        })
        .collect();
    series[0].points = &falling;
    series[7].points = &single;
    let axes = Axes {
        title: "MSE vs T",
        x_label: "T",
        y_label: "MSE ± σ",
        x_log: true,
        y_log: None,
    };
    line_plot(&path, &axes, &series).unwrap();
    let texts = [
        "MSE vs T",
        "T (log scale)",
        "MSE ± σ (log scale)",
        "Series 0 of many",
        "Series 11 of many",
    ];
    assert_eq!(chart(&path, &texts), (900, 540));
    let plot = LinePlot::new(&axes, &series);
    assert_eq!(
        plot.y.scale,
        Scale::Log,
        "1/32 .. 1 spans more than a decade"
    );
    // Padded multiplicatively: 5 % of the log-span beyond 1 and 32.
    assert!((plot.x.from - 32f64.powf(-PAD)).abs() < 1e-12);
    assert!((plot.x.to - 32f64.powf(1.0 + PAD)).abs() < 1e-9);
    let ticks = plot.x.ticks(8);
    assert_eq!(ticks, [1.0, 2.0, 5.0, 10.0, 20.0]);
    let label = Axis::labels(&ticks);
    let labels: Vec<String> = ticks.iter().map(|&t| label(t)).collect();
    assert_eq!(labels, ["1", "2", "5", "10", "20"]);

    // Degenerate inputs still give a picture: nothing drawable, a point or value alone,
    // no series at all.
    let nan = [(f64::NAN, 1.0), (1.0, f64::NAN), (f64::INFINITY, 2.0)];
    let nonpositive = [(0.0, 1.0), (-3.0, 2.0)];
    let constant = [(1.0, 0.25), (2.0, 0.25), (3.0, 0.25)];
    for points in [&nan[..], &nonpositive, &[], &single, &constant] {
        let s = [Series { label: "X", points }];
        line_plot(&path, &axes, &s).unwrap();
        chart(&path, &["X", "MSE vs T"]);
    }
    line_plot(&path, &axes, &[]).unwrap();
    let forced = Axes {
        y_log: Some(true),
        x_log: false,
        ..axes
    };
    let zeros = [(0.0, 0.0), (1.0, 0.0), (2.0, 3.0)];
    for points in [&nonpositive[..], &zeros] {
        let s = [Series { label: "", points }];
        line_plot(&path, &forced, &s).unwrap();
        chart(&path, &["MSE vs T"]);
    }
    assert_eq!(names(dir.path()), ["sweep.png", "sweep.svg"]);
}

#[test]
fn axes_padded_and_ticked_at_round_values() {
    // Linear: 5 % of the span beyond each end; ticks at 1, 2 or 5 × 10^k.
    let a = Axis::fit(Scale::Linear, [0.0, 94.5].into_iter());
    assert!((a.from + 0.05 * 94.5).abs() < 1e-12 && (a.to - 1.05 * 94.5).abs() < 1e-9);
    assert_eq!(a.ticks(6), [0.0, 20.0, 40.0, 60.0, 80.0]);
    let a = Axis::fit(Scale::Linear, [0.0397, 0.0641].into_iter());
    let ticks = a.ticks(6);
    let label = Axis::labels(&ticks);
    let labels: Vec<String> = ticks.iter().map(|&t| label(t)).collect();
    assert_eq!(labels, ["0.04", "0.045", "0.05", "0.055", "0.06", "0.065"]);
    // A constant: ±10 % of it; nothing: 0 to 1. NaN and ∞ are ignored.
    let a = Axis::fit(Scale::Linear, [0.092, f64::NAN, f64::INFINITY].into_iter());
    assert!((a.from - 0.0828).abs() < 1e-12 && (a.to - 0.1012).abs() < 1e-12);
    assert_eq!(
        Axis::fit(Scale::Linear, std::iter::empty()).range(),
        0.0..1.0
    );
    // Log: zeros and negatives ignored; wide ranges ticked at powers of ten.
    let a = Axis::fit(Scale::Log, [0.0, -1.0, 1e-6, 2.0].into_iter());
    assert!(a.from < 1e-6 && a.to > 2.0);
    let ticks = a.ticks(8);
    assert_eq!(ticks.len(), 7);
    let label = Axis::labels(&ticks);
    assert_eq!(label(1e-6), "10⁻⁶");
    assert_eq!(label(1.0), "10⁰");
    assert_eq!(Axis::fit(Scale::Log, [5.0].into_iter()).range(), 2.5..10.0);
    // A log range inside one decade still gets round ticks.
    let narrow = Axis::fit(Scale::Log, [0.052, 0.064].into_iter());
    assert!(narrow.ticks(6).len() >= 2);
    let narrow = Axis::fit(Scale::Log, [1.2e6, 4.1e6].into_iter());
    assert_eq!(narrow.ticks(9), [2e6, 3e6, 4e6]);
    // Whichever data: never a panic, and ticks inside the axis.
    for values in [[1e300, -1e300], [1e-300, 1e-300], [f64::MAX, f64::MIN]] {
        for scale in [Scale::Linear, Scale::Log] {
            let a = Axis::fit(scale, values.into_iter());
            assert!(a.from.is_finite() && a.to.is_finite() && a.from < a.to);
            assert!(a.ticks(8).iter().all(|t| (a.from..=a.to).contains(t)));
        }
    }
    assert_eq!(Scale::fitting([1.0, 20.0].into_iter()), Scale::Log);
    assert_eq!(Scale::fitting([0.0, 20.0].into_iter()), Scale::Linear);
    assert_eq!(Scale::fitting([1.0, 5.0].into_iter()), Scale::Linear);
}

#[test]
fn tick_labels() {
    assert_eq!(number(0.1 + 0.2, true), "0.3");
    assert_eq!(number(-0.5, true), "\u{2212}0.5");
    assert_eq!(number(7500.0, true), "7500");
    assert_eq!(number(1e-17, true), "0");
    assert_eq!(number(1e7, false), "10⁷");
    assert_eq!(number(2e7, false), "2×10⁷");
    assert_eq!(number(5e-4, false), "5×10⁻⁴");
    assert_eq!(number(-1e6, false), "\u{2212}10⁶");
    // Powers of ten throughout once one tick is out of the plain range.
    let label = Axis::labels(&[0.0, 50000.0, 100000.0]);
    assert_eq!(label(50000.0), "5×10⁴");
}

/// The rows of `rgb` (`width` wide) holding a dark pixel.
fn inked_rows(rgb: &[u8], width: usize) -> Vec<usize> {
    rgb.chunks(3 * width)
        .enumerate()
        .filter(|(_, row)| row.iter().any(|&v| v < 128))
        .map(|(y, _)| y)
        .collect()
}

#[test]
fn bitmap_text_sits_on_its_anchor() {
    super::theme::register();
    let (w, h) = (200usize, 80usize);
    let draw = |v: VPos| {
        let mut rgb = vec![255u8; 3 * w * h];
        {
            let area = Bitmap::new(&mut rgb, (w as u32, h as u32)).into_drawing_area();
            let style = super::theme::text(20.0).pos(Pos::new(HPos::Left, v));
            area.draw_text("Hxg", &style, (10, 40)).unwrap();
            let (tw, th) = area
                .estimate_text_size("Hxg", &super::theme::text(20.0))
                .unwrap();
            assert!(
                (30..60).contains(&tw) && (14..22).contains(&th),
                "{tw}×{th}"
            );
        }
        inked_rows(&rgb, w)
    };
    // Top: the capital's top on the anchor; bottom: the descender's foot on it.
    let top = draw(VPos::Top);
    assert!((39..=41).contains(&top[0]), "{top:?}");
    let bottom = draw(VPos::Bottom);
    assert!((38..=40).contains(bottom.last().unwrap()), "{bottom:?}");
    let centre = draw(VPos::Center);
    assert!(centre[0] < 40 && centre[0] > 25, "{centre:?}");
}
