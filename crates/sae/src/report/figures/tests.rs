//! The figures, decoded back from their PNG files.

use std::fs;
use std::io;
use std::path::Path;

use autograd::Tensor;
use ndarray::IxDyn;

use super::canvas::*;
use super::charts::*;
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

/// Only the written file is left in the folder: no temporary file.
fn only(dir: &Path, name: &str) {
    let names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec![name.to_string()]);
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
    only(dir.path(), "recon.png");
    assert!(reconstructions(&path, &[], &recons, 3).is_err());
}

#[test]
fn labelled_reconstruction_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.png");
    let px = SIDE * SIDE;
    let originals = vec![1.0f32; 3 * px]; // white
    let best = vec![0.5f32; 2 * px]; // grey
    let rows: [(&str, &[f32]); 2] = [("ORIGINAL", &originals), ("sae best", &best)];
    reconstruction_rows(&path, &rows, 5).unwrap();
    let img = decode(&path);
    // Labels 8·4−1 = 31 font pixels ×2 with 12-pixel margins: images from x = 86;
    // three 86-pixel cells, two 86-pixel rows.
    assert_eq!((img.0, img.1), (86 + 3 * 86 + 2, 2 * 86 + 2));
    assert_eq!(pixel(&img, 88, 2), WHITE);
    assert_eq!(pixel(&img, 88, 88), [128, 128, 128]);
    assert_eq!(pixel(&img, 88 + 2 * 86, 88), GAP); // the second row has two images
    assert_eq!(pixel(&img, 86, 88), GAP);
    only(dir.path(), "rows.png");
    assert!(reconstruction_rows(&path, &[], 5).is_err());
    assert!(reconstruction_rows(&path, &rows, 0).is_err());
    let short = [rows[0], ("AE", &best[..px - 1])];
    assert!(reconstruction_rows(&path, &short, 5).is_err());
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
    let corr: Vec<Vec<f64>> = (0..10)
        .map(|a| (0..10).map(|b| if a == b { 1.0 } else { -0.2 }).collect())
        .collect();
    latent_figure(&path, &raster, &corr).unwrap();
    let img = decode(&path);
    assert!(img.0 > 240 && img.1 > 240);
    assert_eq!(diverging(1.0), RED);
    assert_eq!(diverging(-1.0), BLUE);
    assert_eq!(diverging(0.0), WHITE);
    only(dir.path(), "latent.png");
    assert!(latent_figure(&path, &raster, &corr[..3]).is_err());
}

#[test]
fn histograms_stacked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rates.png");
    let layer = |name: &str, dead: u64| {
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
    };
    let layers = [layer("input", 0), layer("conv1", 500), layer("latent", 3)];
    firing_rate_histograms(&path, &layers).unwrap();
    let one = dir.path().join("one.png");
    firing_rate_histograms(&one, &layers[..1]).unwrap();
    let (tall, short) = (decode(&path), decode(&one));
    assert!(tall.0 >= short.0 && short.0 as usize >= HISTOGRAM_BINS * 16 + 24);
    assert_eq!(tall.1 - 24, 3 * (short.1 - 24));
    assert!(firing_rate_histograms(&path, &[]).is_err());
}

#[test]
fn loss_curve_png() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loss.png");
    let loss: Vec<(f64, f64)> = (0..50)
        .map(|i| (i as f64, 1.0 / (1.0 + i as f64)))
        .collect();
    let mse: Vec<(f64, f64)> = loss.iter().map(|&(x, y)| (x, 0.5 * y)).collect();
    loss_curve(&path, &loss, &mse).unwrap();
    assert_eq!((decode(&path).0, decode(&path).1), (720, 420));
    // Degenerate inputs still give a picture.
    loss_curve(&path, &[(0.0, f64::NAN), (1.0, 2.0)], &[]).unwrap();
    loss_curve(&path, &[], &[]).unwrap();
    only(dir.path(), "loss.png");
}

#[test]
fn line_plot_series_legend_and_log_axes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sweep.png");
    let falling: Vec<(f64, f64)> = (1..=32).map(|t| (t as f64, 1.0 / t as f64)).collect();
    let pair = [(2.0, 0.5), (8.0, 0.3)];
    let single = [(4.0, 0.04)];
    let labels: Vec<String> = (0..8)
        .map(|i| format!("SERIES {i} ABCDEFGHIJKLMNOP"))
        .collect();
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
        y_label: "MSE ±σ",
        x_log: true,
        y_log: None,
    };
    line_plot(&path, &axes, &series).unwrap();
    let img = decode(&path);
    assert_eq!((img.0, img.1), (720, 420));
    let f = Frame::new(&axes, &series);
    assert!(f.y.log, "1/32 .. 1 spans more than a decade");
    // Every legend entry fits in the picture, above the plot.
    for (s, &(x, y)) in series.iter().zip(&f.legend) {
        assert!(x + LEGEND_KEY + text_width(s.label, 2) <= 720 && y + TEXT_LINE <= f.top);
    }
    // The single point's marker, in the eighth colour, drawn last.
    let (x, y) = f.pixel(plotted(true, true, single[0]).unwrap());
    let (x, y) = (x as usize, y as usize);
    for (dx, dy) in [(0, 0), (-2, -2), (2, 2)] {
        let p = pixel(&img, x.wrapping_add_signed(dx), y.wrapping_add_signed(dy));
        assert_eq!(p, PALETTE[7]);
    }
    let labels: Vec<String> = f.x.ticks().iter().map(|&u| f.x.label(u)).collect();
    assert_eq!(labels, ["1", "2", "5", "10", "20"]);
    let wide = Scale {
        lo: -6.0,
        hi: 0.3,
        log: true,
    };
    let labels: Vec<String> = wide.ticks().iter().map(|&u| wide.label(u)).collect();
    assert_eq!(labels[..2], ["1.0e-6", "1.0e-5"]);
    assert_eq!(labels.len(), 7);

    // Degenerate inputs still give a picture.
    let nan = [(f64::NAN, 1.0), (1.0, f64::NAN), (f64::INFINITY, 2.0)];
    let nonpositive = [(0.0, 1.0), (-3.0, 2.0)];
    for points in [&nan[..], &nonpositive, &[]] {
        let s = [Series { label: "X", points }];
        line_plot(&path, &axes, &s).unwrap();
        assert_eq!(decode(&path).0, 720);
    }
    line_plot(&path, &axes, &[]).unwrap();
    let forced = Axes {
        y_log: Some(true),
        ..axes
    };
    line_plot(
        &path,
        &forced,
        &[Series {
            label: "",
            points: &nonpositive,
        }],
    )
    .unwrap();
    only(dir.path(), "sweep.png");
}

#[test]
fn glyphs_and_numbers() {
    assert_eq!(glyph('a'), glyph('A'));
    assert_eq!(number(0.0123), "0.012");
    assert_eq!(number(2.5), "2.5");
    assert_eq!(number(1.0e-4), "1.0e-4");
    assert_eq!(text_width("AB", 2), 14);
}
