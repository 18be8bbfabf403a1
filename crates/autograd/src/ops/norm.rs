//! Normalization, each one fused op with a hand-written backward: layer norm over the
//! trailing axes (each sample's features, PyTorch's `F.layer_norm`) and batch norm over
//! every axis but the channel axis 1 of `[N, C, …]` (`F.batch_norm`).
//!
//! Both compute `y = x̂·w + b` with `x̂ = (x − μ)·r`, `r = 1/√(σ² + ε)` over a group of
//! `M` elements (a row for layer norm, a channel for batch norm). When `μ` and `σ²` are
//! the group's own (biased) moments, with `ĝ = g·w`,
//!
//! `∂x = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))`, `∂w = Σ g·x̂`, `∂b = Σ g`;
//!
//! when they are fixed (batch norm in evaluation) `∂x = r·ĝ`. Backward keeps the input
//! (shared, not copied) and one `(μ, r)` per group, and recomputes `x̂`. Moments and
//! gradient sums accumulate in `f64`; every sum is split by shape, never by thread count,
//! so results are the same on any number of threads.

use kernels::rayon::prelude::*;
use ndarray::IxDyn;

use crate::Tensor;
use crate::tape::{Var, op1};
use crate::tensor::contiguous;

/// Rows of layer norm per task of its weight-gradient sum: the sum's fixed split.
const ROWS_PER_TASK: usize = 64;

/// Elements a task of an elementwise pass takes at least, so that short rows or planes
/// are not one task each.
const MIN_TASK: usize = 1 << 14;

/// Rows (or planes) of `len` elements per task, at least one: see [`MIN_TASK`].
fn min_rows(len: usize) -> usize {
    (MIN_TASK / len.max(1)).max(1)
}

/// Running estimates of each channel's mean and variance, which batch norm updates in
/// training and normalizes with in evaluation (PyTorch's `running_mean`, `running_var`).
#[derive(Clone, Debug, PartialEq)]
pub struct RunningStats {
    /// Running mean per channel, `[C]`.
    pub mean: Tensor,
    /// Running variance per channel, `[C]`, updated with the batch's unbiased variance.
    pub var: Tensor,
    /// Weight of each new batch: `s ← (1 − momentum)·s + momentum·batch`.
    pub momentum: f32,
}

impl RunningStats {
    /// PyTorch's start for `channels` channels: mean 0, variance 1, momentum 0.1.
    pub fn new(channels: usize) -> Self {
        RunningStats {
            mean: Tensor::zeros(IxDyn(&[channels])),
            var: Tensor::ones(IxDyn(&[channels])),
            momentum: 0.1,
        }
    }
}

/// Which statistics batch norm normalizes with (PyTorch's `training` flag).
#[derive(Debug)]
pub enum BatchNormMode<'a> {
    /// Training: the batch's own mean and biased variance; the running statistics, if
    /// given, are updated with the batch's mean and unbiased variance.
    Train(Option<&'a mut RunningStats>),
    /// Evaluation: the running statistics, which stay as they are.
    Eval(&'a RunningStats),
}

fn slice(t: &Tensor) -> &[f32] {
    t.as_slice().expect("tensors on the tape are contiguous")
}

fn tensor(shape: &[usize], data: Vec<f32>) -> Tensor {
    Tensor::from_shape_vec(IxDyn(shape), data).expect("shape matches data")
}

/// Mean and biased variance of the values of `blocks`, in two passes.
fn moments<'a>(blocks: impl Iterator<Item = &'a [f32]> + Clone) -> (f64, f64) {
    let (sum, count) = blocks.clone().fold((0.0f64, 0usize), |(s, n), b| {
        (
            s + b.iter().map(|&v| f64::from(v)).sum::<f64>(),
            n + b.len(),
        )
    });
    let mean = sum / count.max(1) as f64;
    let sq: f64 = blocks
        .map(|b| {
            b.iter()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum::<f64>()
        })
        .sum();
    (mean, sq / count.max(1) as f64)
}

/// `1/√(σ² + ε)`.
fn rstd(var: f64, eps: f32) -> f32 {
    (1.0 / (var + f64::from(eps)).sqrt()) as f32
}

/// The `[S]` blocks of channel `ch` in `[N, C, S]` data.
fn channel(data: &[f32], c: usize, s: usize, ch: usize) -> impl Iterator<Item = &[f32]> + Clone {
    data.chunks_exact(c * s)
        .map(move |sample| &sample[ch * s..(ch + 1) * s])
}

/// Asserts that an optional weight or bias has shape `shape`.
#[track_caller]
fn check_affine(op: &str, what: &str, v: Option<&Var<'_>>, shape: &[usize], input: &[usize]) {
    if let Some(v) = v {
        assert!(
            v.shape() == shape,
            "{op}: {what} has shape {:?}, expected {shape:?} for input {input:?}",
            v.shape()
        );
    }
}

/// `[x, weight?, bias?]` and the positions of weight and bias in it.
fn with_affine<'a, 't>(
    x: &'a Var<'t>,
    weight: Option<&'a Var<'t>>,
    bias: Option<&'a Var<'t>>,
) -> (Vec<&'a Var<'t>>, Option<usize>, Option<usize>) {
    let mut inputs = vec![x];
    let mut push = |v: &'a Var<'t>| {
        inputs.push(v);
        inputs.len() - 1
    };
    let wi = weight.map(&mut push);
    let bi = bias.map(&mut push);
    (inputs, wi, bi)
}

impl<'t> Var<'t> {
    /// Layer normalization over the trailing axes `normalized_shape`, as PyTorch's
    /// `F.layer_norm`: each sample's features get zero mean and unit (biased) variance,
    /// then the optional elementwise `weight` and `bias` (of shape `normalized_shape`).
    ///
    /// # Panics
    /// If `normalized_shape` is empty, holds a zero, or is not the input's trailing
    /// axes, or if `weight` or `bias` has another shape.
    #[track_caller]
    pub fn layer_norm(
        &self,
        normalized_shape: &[usize],
        weight: Option<&Var<'t>>,
        bias: Option<&Var<'t>>,
        eps: f32,
    ) -> Var<'t> {
        let shape = self.shape();
        let d: usize = normalized_shape.iter().product();
        assert!(
            !normalized_shape.is_empty() && d > 0 && shape.ends_with(normalized_shape),
            "layer_norm: normalized_shape {normalized_shape:?} must be the trailing axes of \
             the input {shape:?} (at least one, none empty)"
        );
        check_affine("layer_norm", "weight", weight, normalized_shape, shape);
        check_affine("layer_norm", "bias", bias, normalized_shape, shape);
        let (x, w, b) = (
            self.shared(),
            weight.map(Var::shared),
            bias.map(Var::shared),
        );
        let (xs, ws, bs) = (slice(&x), w.as_deref().map(slice), b.as_deref().map(slice));
        let mut y = vec![0.0; xs.len()];
        let mut stats = vec![(0.0f32, 0.0f32); xs.len() / d];
        y.par_chunks_mut(d)
            .zip(xs.par_chunks(d))
            .zip(stats.par_iter_mut())
            .with_min_len(min_rows(d))
            .for_each(|((y, x), st)| {
                let (mean, var) = moments(std::iter::once(x));
                let (mean, r) = (mean as f32, rstd(var, eps));
                *st = (mean, r);
                y.iter_mut().zip(x).for_each(|(y, &x)| *y = (x - mean) * r);
                if let Some(w) = ws {
                    y.iter_mut().zip(w).for_each(|(y, w)| *y *= w);
                }
                if let Some(b) = bs {
                    y.iter_mut().zip(b).for_each(|(y, b)| *y += b);
                }
            });
        let out = tensor(shape, y);
        let norm_shape = normalized_shape.to_vec();
        let (inputs, wi, bi) = with_affine(self, weight, bias);
        op1(self.tape(), "layer_norm", &inputs, out, move |g, needs| {
            let g = contiguous(g);
            let (xs, gs, ws) = (slice(&x), slice(&g), w.as_deref().map(slice));
            let mut grads = vec![None; needs.len()];
            if needs[0] {
                let mut gx = vec![0.0; xs.len()];
                gx.par_chunks_mut(d)
                    .zip(xs.par_chunks(d))
                    .zip(gs.par_chunks(d))
                    .zip(stats.par_iter())
                    .with_min_len(min_rows(d))
                    .for_each(|(((gx, x), g), &(mean, r))| {
                        layer_norm_input_grad(gx, x, g, ws, mean, r)
                    });
                grads[0] = Some(tensor(x.shape(), gx));
            }
            let need = |i: Option<usize>| i.filter(|&i| needs[i]);
            if need(wi).is_some() || need(bi).is_some() {
                let (gw, gb) = layer_norm_affine_grads(xs, gs, &stats, d);
                if let Some(i) = need(wi) {
                    grads[i] = Some(tensor(&norm_shape, gw));
                }
                if let Some(i) = need(bi) {
                    grads[i] = Some(tensor(&norm_shape, gb));
                }
            }
            grads
        })
    }

    /// Batch normalization over every axis but axis 1 of `x [N, C, …]`, as PyTorch's
    /// `F.batch_norm` (so `BatchNorm1d`, `2d` and `3d` alike): each channel is
    /// normalized by the statistics `mode` names, then scaled by `weight [C]` and shifted
    /// by `bias [C]` if given. In training the running statistics, if given, are updated
    /// in place (no gradient flows through them).
    ///
    /// # Panics
    /// If the input has fewer than 2 axes, if `weight`, `bias` or the running statistics
    /// are not `[C]`, or in training if a channel has a single value (its variance is
    /// undefined).
    #[track_caller]
    pub fn batch_norm(
        &self,
        mode: BatchNormMode<'_>,
        weight: Option<&Var<'t>>,
        bias: Option<&Var<'t>>,
        eps: f32,
    ) -> Var<'t> {
        let shape = self.shape();
        assert!(
            shape.len() >= 2,
            "batch_norm: input must be [N, C, …], got {shape:?}"
        );
        let (n, c) = (shape[0], shape[1]);
        let s: usize = shape[2..].iter().product();
        let count = n * s;
        check_affine("batch_norm", "weight", weight, &[c], shape);
        check_affine("batch_norm", "bias", bias, &[c], shape);
        let running = match &mode {
            BatchNormMode::Train(r) => r.as_deref(),
            BatchNormMode::Eval(r) => Some(*r),
        };
        if let Some(r) = running {
            assert!(
                r.mean.shape() == [c] && r.var.shape() == [c],
                "batch_norm: running mean {:?} and variance {:?} must be [{c}] for input \
                 {shape:?}",
                r.mean.shape(),
                r.var.shape()
            );
        }
        let x = self.shared();
        let xs = slice(&x);
        let batch_stats = matches!(mode, BatchNormMode::Train(_));
        let stats: Vec<(f32, f32)> = match mode {
            BatchNormMode::Train(running) => {
                assert!(
                    count > 1,
                    "batch_norm: training needs more than one value per channel, got input \
                     {shape:?}"
                );
                let batch: Vec<(f64, f64)> = (0..c)
                    .into_par_iter()
                    .map(|ch| moments(channel(xs, c, s, ch)))
                    .collect();
                if let Some(r) = running {
                    let m = r.momentum;
                    let unbiased = count as f64 / (count - 1) as f64;
                    for ((rm, rv), &(mean, var)) in
                        r.mean.iter_mut().zip(r.var.iter_mut()).zip(&batch)
                    {
                        *rm = (1.0 - m) * *rm + m * mean as f32;
                        *rv = (1.0 - m) * *rv + m * (var * unbiased) as f32;
                    }
                }
                batch
                    .into_iter()
                    .map(|(mean, var)| (mean as f32, rstd(var, eps)))
                    .collect()
            }
            BatchNormMode::Eval(r) => r
                .mean
                .iter()
                .zip(&r.var)
                .map(|(&mean, &var)| (mean, rstd(f64::from(var), eps)))
                .collect(),
        };
        let (w, b) = (weight.map(Var::shared), bias.map(Var::shared));
        let (ws, bs) = (w.as_deref().map(slice), b.as_deref().map(slice));
        let mut y = vec![0.0; xs.len()];
        if s > 0 {
            y.par_chunks_mut(s)
                .zip(xs.par_chunks(s))
                .enumerate()
                .with_min_len(min_rows(s))
                .for_each(|(i, (y, x))| {
                    let ch = i % c;
                    let (mean, r) = stats[ch];
                    let scale = r * ws.map_or(1.0, |w| w[ch]);
                    let shift = bs.map_or(0.0, |b| b[ch]);
                    y.iter_mut()
                        .zip(x)
                        .for_each(|(y, &x)| *y = (x - mean) * scale + shift);
                });
        }
        let out = tensor(shape, y);
        let (inputs, wi, bi) = with_affine(self, weight, bias);
        op1(self.tape(), "batch_norm", &inputs, out, move |g, needs| {
            let g = contiguous(g);
            let (xs, gs, ws) = (slice(&x), slice(&g), w.as_deref().map(slice));
            let need = |i: Option<usize>| i.filter(|&i| needs[i]);
            // Per channel: Σg and Σg·x̂, which every gradient but the input's in
            // evaluation needs.
            let sums: Vec<(f64, f64)> = if batch_stats || need(wi).is_some() || need(bi).is_some() {
                (0..c)
                    .into_par_iter()
                    .map(|ch| {
                        let (mean, r) = stats[ch];
                        channel(xs, c, s, ch).zip(channel(gs, c, s, ch)).fold(
                            (0.0, 0.0),
                            |(sg, sgh), (x, g)| {
                                x.iter().zip(g).fold((sg, sgh), |(sg, sgh), (&x, &g)| {
                                    let h = (x - mean) * r;
                                    (sg + f64::from(g), sgh + f64::from(g * h))
                                })
                            },
                        )
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let mut grads = vec![None; needs.len()];
            if needs[0] {
                let mut gx = vec![0.0; xs.len()];
                if s > 0 {
                    gx.par_chunks_mut(s)
                        .zip(xs.par_chunks(s))
                        .zip(gs.par_chunks(s))
                        .enumerate()
                        .with_min_len(min_rows(s))
                        .for_each(|(i, ((gx, x), g))| {
                            let ch = i % c;
                            let (mean, r) = stats[ch];
                            let scale = r * ws.map_or(1.0, |w| w[ch]);
                            if batch_stats {
                                let (sg, sgh) = sums[ch];
                                let mean_g = (sg / count as f64) as f32;
                                let mean_gh = (sgh / count as f64) as f32;
                                for ((gx, &x), &g) in gx.iter_mut().zip(x).zip(g) {
                                    let h = (x - mean) * r;
                                    *gx = scale * (g - mean_g - h * mean_gh);
                                }
                            } else {
                                gx.iter_mut().zip(g).for_each(|(gx, &g)| *gx = scale * g);
                            }
                        });
                }
                grads[0] = Some(tensor(x.shape(), gx));
            }
            if let Some(i) = need(wi) {
                grads[i] = Some(tensor(&[c], sums.iter().map(|s| s.1 as f32).collect()));
            }
            if let Some(i) = need(bi) {
                grads[i] = Some(tensor(&[c], sums.iter().map(|s| s.0 as f32).collect()));
            }
            grads
        })
    }
}

/// One row's input gradient of layer norm: `r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))`, `ĝ = g·w`.
fn layer_norm_input_grad(
    gx: &mut [f32],
    x: &[f32],
    g: &[f32],
    w: Option<&[f32]>,
    mean: f32,
    r: f32,
) {
    match w {
        Some(w) => gx
            .iter_mut()
            .zip(g)
            .zip(w)
            .for_each(|((o, g), w)| *o = g * w),
        None => gx.copy_from_slice(g),
    }
    let (sg, sgh) = gx
        .iter()
        .zip(x)
        .fold((0.0f64, 0.0f64), |(sg, sgh), (&gh, &x)| {
            (sg + f64::from(gh), sgh + f64::from(gh * (x - mean) * r))
        });
    let d = x.len() as f64;
    let (mean_g, mean_gh) = ((sg / d) as f32, (sgh / d) as f32);
    for (gx, &x) in gx.iter_mut().zip(x) {
        *gx = r * (*gx - mean_g - (x - mean) * r * mean_gh);
    }
}

/// Layer norm's `(∂w, ∂b) = (Σ g·x̂, Σ g)` over the rows, summed per block of
/// [`ROWS_PER_TASK`] rows in parallel and then over the blocks in order.
fn layer_norm_affine_grads(
    xs: &[f32],
    gs: &[f32],
    stats: &[(f32, f32)],
    d: usize,
) -> (Vec<f32>, Vec<f32>) {
    let block = d * ROWS_PER_TASK;
    let partials: Vec<(Vec<f64>, Vec<f64>)> = xs
        .par_chunks(block)
        .zip(gs.par_chunks(block))
        .zip(stats.par_chunks(ROWS_PER_TASK))
        .map(|((x, g), st)| {
            let (mut gw, mut gb) = (vec![0.0f64; d], vec![0.0f64; d]);
            for ((x, g), &(mean, r)) in x.chunks_exact(d).zip(g.chunks_exact(d)).zip(st) {
                for (((gw, gb), &x), &g) in gw.iter_mut().zip(&mut gb).zip(x).zip(g) {
                    *gw += f64::from(g * (x - mean) * r);
                    *gb += f64::from(g);
                }
            }
            (gw, gb)
        })
        .collect();
    let (mut gw, mut gb) = (vec![0.0f64; d], vec![0.0f64; d]);
    for (pw, pb) in &partials {
        gw.iter_mut().zip(pw).for_each(|(a, b)| *a += b);
        gb.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
    }
    let narrow = |v: Vec<f64>| v.into_iter().map(|v| v as f32).collect();
    (narrow(gw), narrow(gb))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tape;
    use crate::gradcheck::{assert_gradients, random};

    /// Layer norm from plain ops: the oracle of the fused op.
    fn layer_norm_composed<'t>(
        x: &Var<'t>,
        axes: &[usize],
        w: Option<&Var<'t>>,
        b: Option<&Var<'t>>,
        eps: f32,
    ) -> Var<'t> {
        let centered = x - &x.mean_axes(axes, true);
        let var = centered.square().mean_axes(axes, true);
        let y = &centered / &var.add_scalar(eps).sqrt();
        let y = w.map_or(y.clone(), |w| &y * w);
        b.map_or(y.clone(), |b| &y + b)
    }

    /// Batch norm from plain ops, normalizing by the batch's statistics.
    fn batch_norm_composed<'t>(
        x: &Var<'t>,
        w: Option<&Var<'t>>,
        b: Option<&Var<'t>>,
        eps: f32,
    ) -> Var<'t> {
        let axes: Vec<usize> = (0..x.ndim()).filter(|&a| a != 1).collect();
        let mut view = vec![1; x.ndim()];
        view[1] = x.shape()[1];
        let centered = x - &x.mean_axes(&axes, true);
        let var = centered.square().mean_axes(&axes, true);
        let y = &centered / &var.add_scalar(eps).sqrt();
        let y = w.map_or(y.clone(), |w| &y * &w.reshape(&view));
        b.map_or(y.clone(), |b| &y + &b.reshape(&view))
    }

    /// Values and gradients of `fused` and `composed` agree on random inputs.
    fn same_as_composed(
        inputs: Vec<Tensor>,
        fused: impl for<'t> Fn(&[Var<'t>]) -> Var<'t>,
        composed: impl for<'t> Fn(&[Var<'t>]) -> Var<'t>,
    ) {
        let run = |f: &dyn for<'t> Fn(&[Var<'t>]) -> Var<'t>| {
            let tape = Tape::new();
            let vars: Vec<Var<'_>> = inputs.iter().map(|x| tape.var(x.clone())).collect();
            let y = f(&vars);
            let seed = random(y.shape(), -1.0, 1.0, 42);
            let out = y.value().clone();
            let g = y.backward_with(seed);
            let grads: Vec<Tensor> = vars.iter().map(|v| g.get(v).unwrap().clone()).collect();
            (out, grads)
        };
        let (a, b) = (run(&fused), run(&composed));
        let close = |p: &Tensor, q: &Tensor| {
            p.shape() == q.shape() && p.iter().zip(q).all(|(p, q)| (p - q).abs() < 1e-4)
        };
        assert!(close(&a.0, &b.0), "values differ");
        for (i, (p, q)) in a.1.iter().zip(&b.1).enumerate() {
            assert!(close(p, q), "gradient of input {i} differs: {p} vs {q}");
        }
    }

    #[test]
    fn layer_norm_matches_the_composition_of_plain_ops() {
        let x = random(&[3, 4, 5], -2.0, 2.0, 1);
        let w = random(&[5], 0.5, 1.5, 2);
        let b = random(&[5], -0.5, 0.5, 3);
        same_as_composed(
            vec![x.clone(), w, b],
            |v| v[0].layer_norm(&[5], Some(&v[1]), Some(&v[2]), 1e-5),
            |v| layer_norm_composed(&v[0], &[2], Some(&v[1]), Some(&v[2]), 1e-5),
        );
        same_as_composed(
            vec![x],
            |v| v[0].layer_norm(&[4, 5], None, None, 1e-5),
            |v| layer_norm_composed(&v[0], &[1, 2], None, None, 1e-5),
        );
    }

    #[test]
    fn batch_norm_matches_the_composition_of_plain_ops() {
        for shape in [&[6, 3][..], &[2, 3, 4], &[2, 3, 2, 3]] {
            let x = random(shape, -2.0, 2.0, 4);
            let w = random(&[3], 0.5, 1.5, 5);
            let b = random(&[3], -0.5, 0.5, 6);
            same_as_composed(
                vec![x, w, b],
                |v| v[0].batch_norm(BatchNormMode::Train(None), Some(&v[1]), Some(&v[2]), 1e-5),
                |v| batch_norm_composed(&v[0], Some(&v[1]), Some(&v[2]), 1e-5),
            );
        }
    }

    #[test]
    fn layer_norm_gradients() {
        let x = random(&[3, 2, 6], -1.0, 1.0, 7);
        let w = random(&[2, 6], 0.5, 1.5, 8);
        let b = random(&[2, 6], -0.5, 0.5, 9);
        assert_gradients(vec![x.clone(), w.clone(), b.clone()], |v| {
            v[0].layer_norm(&[2, 6], Some(&v[1]), Some(&v[2]), 1e-5)
        });
        assert_gradients(vec![x.clone(), b], |v| {
            v[0].layer_norm(&[2, 6], None, Some(&v[1]), 1e-5)
        });
        assert_gradients(vec![x.clone()], |v| v[0].layer_norm(&[6], None, None, 1e-5));
        assert_gradients(vec![x, w.clone()], |v| {
            v[0].layer_norm(&[2, 6], Some(&v[1]), None, 1e-5)
        });
        // A large eps: the variance term matters in the backward too.
        let x = random(&[4, 3], -0.2, 0.2, 10);
        assert_gradients(vec![x], |v| v[0].layer_norm(&[3], None, None, 0.5));
    }

    #[test]
    fn batch_norm_gradients_in_training_and_evaluation() {
        let running = RunningStats {
            mean: random(&[3], -0.5, 0.5, 11),
            var: random(&[3], 0.5, 2.0, 12),
            momentum: 0.1,
        };
        let w = random(&[3], 0.5, 1.5, 13);
        let b = random(&[3], -0.5, 0.5, 14);
        for (i, shape) in [&[5, 3][..], &[2, 3, 4], &[2, 3, 2, 3]].iter().enumerate() {
            let x = random(shape, -1.0, 1.0, 20 + i as u64);
            assert_gradients(vec![x.clone(), w.clone(), b.clone()], |v| {
                v[0].batch_norm(BatchNormMode::Train(None), Some(&v[1]), Some(&v[2]), 1e-5)
            });
            assert_gradients(vec![x.clone()], |v| {
                v[0].batch_norm(BatchNormMode::Train(None), None, None, 1e-5)
            });
            assert_gradients(vec![x.clone(), w.clone(), b.clone()], |v| {
                v[0].batch_norm(
                    BatchNormMode::Eval(&running),
                    Some(&v[1]),
                    Some(&v[2]),
                    1e-5,
                )
            });
            assert_gradients(vec![x, b.clone()], |v| {
                v[0].batch_norm(BatchNormMode::Eval(&running), None, Some(&v[1]), 1e-5)
            });
        }
    }

    #[test]
    fn batch_norm_updates_running_statistics_in_training_only() {
        let x = random(&[4, 2, 3], -1.0, 1.0, 30);
        let mut running = RunningStats::new(2);
        let tape = Tape::eval();
        let xv = tape.constant(x.clone());
        xv.batch_norm(BatchNormMode::Train(Some(&mut running)), None, None, 1e-5);
        // Channel 0 holds x[n, 0, :] for every n: 12 values.
        let values: Vec<f64> = (0..4)
            .flat_map(|n| (0..3).map(move |k| (n, k)))
            .map(|(n, k)| f64::from(x[[n, 0, k]]))
            .collect();
        let mean = values.iter().sum::<f64>() / 12.0;
        let unbiased = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 11.0;
        assert!((f64::from(running.mean[0]) - 0.1 * mean).abs() < 1e-6);
        assert!((f64::from(running.var[0]) - (0.9 + 0.1 * unbiased)).abs() < 1e-6);
        let before = running.clone();
        let y = xv.batch_norm(BatchNormMode::Eval(&running), None, None, 1e-5);
        assert_eq!(running, before);
        let r = 1.0 / (running.var[1] + 1e-5).sqrt();
        assert!((y.value()[[1, 1, 2]] - (x[[1, 1, 2]] - running.mean[1]) * r).abs() < 1e-6);
    }

    /// The weight gradient's sum is split by shape: the same bits on one and two threads.
    #[test]
    fn gradients_are_the_same_on_one_and_two_threads() {
        let x = random(&[300, 7], -1.0, 1.0, 31);
        let w = random(&[7], 0.5, 1.5, 32);
        let grads = |threads: usize| {
            let pool = kernels::rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("thread pool");
            pool.install(|| {
                let tape = Tape::new();
                let (xv, wv) = (tape.var(x.clone()), tape.var(w.clone()));
                let y = xv.layer_norm(&[7], Some(&wv), None, 1e-5);
                let z = xv.reshape(&[100, 3, 7]).batch_norm(
                    BatchNormMode::Train(None),
                    None,
                    None,
                    1e-5,
                );
                let g = (y.square().sum() + z.powi(3).sum()).backward();
                (g.get(&xv).unwrap().clone(), g.get(&wv).unwrap().clone())
            })
        };
        let (one, two) = (grads(1), grads(2));
        let bits = |t: &Tensor| t.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&one.0), bits(&two.0));
        assert_eq!(bits(&one.1), bits(&two.1));
    }

    #[test]
    #[should_panic(
        expected = "layer_norm: normalized_shape [4] must be the trailing axes \
                               of the input [2, 4, 3]"
    )]
    fn layer_norm_names_a_shape_that_is_not_trailing() {
        let tape = Tape::eval();
        let x = tape.constant(random(&[2, 4, 3], -1.0, 1.0, 1));
        x.layer_norm(&[4], None, None, 1e-5);
    }

    #[test]
    #[should_panic(expected = "layer_norm: weight has shape [4], expected [3] for input [2, 3]")]
    fn layer_norm_names_a_weight_of_another_shape() {
        let tape = Tape::eval();
        let x = tape.constant(random(&[2, 3], -1.0, 1.0, 1));
        let w = tape.constant(random(&[4], -1.0, 1.0, 2));
        x.layer_norm(&[3], Some(&w), None, 1e-5);
    }

    #[test]
    #[should_panic(
        expected = "batch_norm: training needs more than one value per channel, \
                               got input [1, 3]"
    )]
    fn batch_norm_refuses_one_value_per_channel_in_training() {
        let tape = Tape::eval();
        let x = tape.constant(random(&[1, 3], -1.0, 1.0, 1));
        x.batch_norm(BatchNormMode::Train(None), None, None, 1e-5);
    }

    #[test]
    #[should_panic(expected = "batch_norm: running mean [2] and variance [2] must be [3]")]
    fn batch_norm_names_running_statistics_of_another_shape() {
        let tape = Tape::eval();
        let x = tape.constant(random(&[2, 3, 4], -1.0, 1.0, 1));
        x.batch_norm(BatchNormMode::Eval(&RunningStats::new(2)), None, None, 1e-5);
    }

    #[test]
    #[should_panic(expected = "batch_norm: input must be [N, C, …], got [5]")]
    fn batch_norm_needs_a_channel_axis() {
        let tape = Tape::eval();
        let x = tape.constant(random(&[5], -1.0, 1.0, 1));
        x.batch_norm(BatchNormMode::Train(None), None, None, 1e-5);
    }
}
