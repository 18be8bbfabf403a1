//! Parity with the PyTorch reference (`shared/reference/torch_sae.py step-dump`).
//!
//! Reads every `*.safetensors` dump in `PARITY_DIR` (default `tests/fixtures/parity`,
//! made by `tests/fixtures/parity/make.sh`), builds the same network from the dump's
//! `__metadata__` and weights, replays the same input (the dumped Poisson spikes, or the
//! current encoding), and compares, per dump:
//! - the loss and the MSE (relative error ≤ 1e-4),
//! - every weight gradient (`‖ours − ref‖ / ‖ref‖ ≤ 1e-3`),
//! - every layer's spike counts over `T` (identical for ≥ 99.99 % of all neurons),
//! - every layer's final leaky cumulative potential `c[T−1]` and the read-out `x̂`
//!   (relative norm ≤ 1e-4),
//! - with `adam_steps = K > 0`: the loss before each of K Adam steps (same input every
//!   step, gradients clipped by value first when `grad_clip > 0`) and the weights after
//!   them (relative norm ≤ 1e-4), and the update `after − before` (relative norm ≤ 1e-3).
//!
//! Each dump is checked twice: the window as one time tile, and in tiles of 3 steps with
//! the neurons' state carried (`Sae::time_tile`), against the same tolerances.
//!
//! One line per dump gives the worst errors (`cargo test --release --test parity --
//! --nocapture`); a failure names the dump and the quantity.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use autograd::io::{TensorFile, load_tensors};
use autograd::nn::Module;
use autograd::optim::clip_grad_value;
use autograd::{Adam, Optimizer, Parameter, Tape, Tensor};
use ndarray::IxDyn;
use rand::SeedableRng;
use rand::rngs::StdRng;
use sae::config::{Coefficients, Config, Encoder, Floor, Readout, Reset, Surrogate};
use sae::nn::{Model, Objective, Sae};

/// Loss and MSE: `|ours − ref| / |ref|`.
const LOSS_TOL: f64 = 1e-4;
/// Weight gradients: `‖ours − ref‖ / ‖ref‖`.
const GRAD_TOL: f64 = 1e-3;
/// Fraction of neurons (all layers, all images) whose spike count must be identical.
const SPIKE_AGREEMENT: f64 = 0.9999;
/// `c[T−1]`, `x̂` and the weights after the Adam steps: `‖ours − ref‖ / ‖ref‖`.
const VALUE_TOL: f64 = 1e-4;

/// The Adam update `after − before`: `‖ours − ref‖ / ‖ref‖` (as loose as the gradients:
/// Adam divides each gradient element by its own magnitude).
const UPDATE_TOL: f64 = 1e-3;

/// Reference layer name → ours, in the network's order.
const LAYERS: [(&str, &str); 6] = [
    ("conv1", "conv1"),
    ("conv2", "conv2"),
    ("fc_enc", "latent"),
    ("fc_dec", "decoder_fc"),
    ("convt1", "deconv1"),
    ("convt2", "output"),
];

/// The metadata keys that only describe the run (no setting to reproduce).
const INFORMATIONAL: [&str; 8] = [
    "images",
    "poisson_seed",
    "weights",
    "weights_sha256",
    "grad_max_abs",
    "torch",
    "loss",
    "dtype",
];

fn parity_dir() -> PathBuf {
    let dir = std::env::var("PARITY_DIR").map_or_else(
        |_| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parity"),
        PathBuf::from,
    );
    assert!(
        dir.is_dir(),
        "parity fixtures: {} is not a directory (set PARITY_DIR)",
        dir.display()
    );
    dir
}

/// `‖a − b‖ / ‖b‖` in f64 (the plain difference norm when `b` is zero).
fn rel_norm(ours: &[f32], reference: &[f32]) -> f64 {
    assert_eq!(ours.len(), reference.len(), "length differs");
    let (mut diff, mut norm) = (0.0f64, 0.0f64);
    for (&a, &b) in ours.iter().zip(reference) {
        diff += (f64::from(a) - f64::from(b)).powi(2);
        norm += f64::from(b).powi(2);
    }
    if norm > 0.0 {
        (diff / norm).sqrt()
    } else {
        diff.sqrt()
    }
}

/// `|a − b| / |b|` in f64.
fn rel_scalar(ours: f32, reference: f32) -> f64 {
    let (a, b) = (f64::from(ours), f64::from(reference));
    (a - b).abs() / b.abs().max(f64::MIN_POSITIVE)
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.iter().copied().collect()
}

/// The settings of a dump's `__metadata__`.
struct Settings {
    cfg: Config,
    adam_steps: usize,
    /// Smallest `|v − θ|` over the layers (`margin.<layer>`), if recorded.
    margin: Option<f64>,
}

/// Builds the configuration from the metadata; every key must be known and every value
/// supported, else the error names the key and the value.
fn settings(meta: &HashMap<String, String>) -> Result<Settings, String> {
    fn num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String> {
        v.trim()
            .parse()
            .map_err(|_| format!("metadata {key}={v:?} is not a number"))
    }
    fn require(key: &str, v: &str, ok: bool, what: &str) -> Result<(), String> {
        if ok {
            Ok(())
        } else {
            Err(format!(
                "metadata {key}={v:?} is not supported: must be {what}"
            ))
        }
    }
    let mut cfg = Config {
        input_noise: 0.0,
        reset: Reset::Zero,
        surrogate: Surrogate::Membrane,
        readout: Readout::MaxPotential,
        stride: 1,
        padding: 0,
        coefficients: Coefficients::default(),
        ..Config::paper()
    };
    let mut adam_steps = 0;
    let mut margin: Option<f64> = None;
    let mut seen = vec![];
    let mut keys: Vec<&String> = meta.keys().collect();
    keys.sort();
    for key in keys {
        let v = meta[key].as_str();
        match key.as_str() {
            "format" => require(key, v, v == "torch_sae.py step-dump", "a step-dump")?,
            "T" => cfg.steps = num(key, v)?,
            "batch" => cfg.batch = num(key, v)?,
            "encoder" => {
                cfg.encoder = match v {
                    "poisson" => Encoder::Poisson,
                    "current" => Encoder::Current,
                    _ => return Err(format!("metadata encoder={v:?}: not supported")),
                }
            }
            "scale" => cfg.input_scale = num(key, v)?,
            "floor" => {
                require(key, v, ["authors", "clamp", "none"].contains(&v), "a floor")?;
                cfg.floor = v.parse::<Floor>()?;
            }
            "readout" => require(key, v, v == "max-potential", "max-potential")?,
            "readout_formula" => require(
                key,
                v,
                v == "xhat = max_t c_out[t] / (T * scale)",
                "the max-potential read-out",
            )?,
            "surrogate" => require(key, v, v == "membrane", "membrane")?,
            "reset" => require(key, v, v == "zero", "zero")?,
            "bias" => require(key, v, v == "none", "none")?,
            "threshold" => cfg.threshold = num(key, v)?,
            "leak" => cfg.leak = num(key, v)?,
            "channels" => {
                cfg.channels = v
                    .split(',')
                    .map(|c| num(key, c))
                    .collect::<Result<_, _>>()?;
                require(key, v, cfg.channels.len() == 2, "two conv layers")?;
            }
            "kernel" => cfg.kernel = num(key, v)?,
            "latent" => cfg.latent = num(key, v)?,
            "in_hw" => require(key, v, v == "28", "28")?,
            "stride" => require(key, v, v == "1", "1")?,
            "padding" => require(key, v, v == "0", "0")?,
            "layers" => require(
                key,
                v,
                v == "conv1,conv2,fc_enc,fc_dec,convt1,convt2",
                "the six reference layers",
            )?,
            "latent_layer" => require(key, v, v == "fc_enc", "fc_enc")?,
            "lambd1" => cfg.coefficients.burst_l1 = num(key, v)?,
            "lambd2" => cfg.coefficients.burst_l2 = num(key, v)?,
            "beta1" => cfg.coefficients.potential_l1 = num(key, v)?,
            "beta2" => cfg.coefficients.potential_l2 = num(key, v)?,
            "example2" => cfg.coefficients.example_l2 = num(key, v)?,
            "neuron2" => cfg.coefficients.neuron_l2 = num(key, v)?,
            "neuron1" => cfg.coefficients.neuron_l1 = num(key, v)?,
            "l1" => cfg.coefficients.weight_l1 = num(key, v)?,
            "l2" => cfg.coefficients.weight_l2 = num(key, v)?,
            "lr" => cfg.lr = num(key, v)?,
            "adam_steps" => adam_steps = num(key, v)?,
            "adam" => require(
                key,
                v,
                v.contains("betas=(0.9,0.999) eps=1e-8 weight_decay=0 amsgrad=False"),
                "plain Adam with PyTorch's defaults",
            )?,
            "grad_clip" => {
                cfg.clip_value = if v == "none" {
                    0.0
                } else {
                    let clip = v
                        .strip_prefix("clip_grad_value_(")
                        .and_then(|rest| rest.split(')').next())
                        .ok_or_else(|| {
                            format!("metadata grad_clip={v:?}: not clip_grad_value_ or none")
                        })?;
                    num(key, clip)?
                };
            }
            m if m.starts_with("margin.") => {
                let min = v
                    .strip_prefix("min|v-th|=")
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|x| x.parse::<f64>().ok());
                if let Some(min) = min {
                    margin = Some(margin.map_or(min, |m| m.min(min)));
                }
            }
            i if INFORMATIONAL.contains(&i) => {}
            _ => return Err(format!("unknown metadata key {key}={v:?}")),
        }
        seen.push(key.as_str());
    }
    let needed = [
        "format",
        "T",
        "batch",
        "encoder",
        "scale",
        "floor",
        "readout",
        "surrogate",
        "reset",
        "threshold",
        "leak",
        "channels",
        "kernel",
        "latent",
        "lambd1",
        "lambd2",
        "beta1",
        "beta2",
        "example2",
        "neuron2",
        "neuron1",
        "l1",
        "l2",
        "lr",
        "adam_steps",
        "grad_clip",
    ];
    if let Some(missing) = needed.iter().find(|n| !seen.contains(n)) {
        return Err(format!("metadata lacks `{missing}`"));
    }
    cfg.validate()?;
    Ok(Settings {
        cfg,
        adam_steps,
        margin,
    })
}

/// What one forward and backward pass of ours gives, as plain vectors.
struct Pass {
    loss: f32,
    mse: f32,
    recon: Vec<f32>,
    /// Per LIF layer: spike counts over `T` `[B·N]` and `c[T−1]` `[B·N]`.
    counts: Vec<Vec<f32>>,
    c_final: Vec<Vec<f32>>,
}

/// Zeroes the gradients, runs the network on the encoded input and back-propagates.
fn forward_backward(sae: &Sae, objective: &Objective, x: &Tensor, input: &Tensor) -> Pass {
    let params = sae.parameters();
    params.iter().for_each(Parameter::zero_grad);
    let tape = Tape::new();
    let out = sae.run_encoded(&tape, x, input.clone());
    let loss = objective.loss(&tape, &out, x);
    loss.backward();
    let mut counts = vec![];
    let mut c_final = vec![];
    // layers[0] is the encoded input; the LIF layers follow in order.
    for layer in &out.layers[1..] {
        counts.push(flat(layer.counts.value()));
        c_final.push(flat(layer.c_last.value()));
    }
    Pass {
        loss: loss.item(),
        mse: out.mse.item(),
        recon: flat(out.recon.value()),
        counts,
        c_final,
    }
}

/// A check's outcome: the worst error and where, against its tolerance.
struct Worst {
    err: f64,
    at: String,
}

impl Worst {
    fn new() -> Self {
        Worst {
            err: 0.0,
            at: "-".into(),
        }
    }

    fn add(&mut self, err: f64, at: impl Into<String>) {
        if err > self.err || err.is_nan() {
            self.err = err;
            self.at = at.into();
        }
    }
}

/// One dump file, for lookups whose failure names it.
struct Dump<'a> {
    name: &'a str,
    path: &'a Path,
    file: &'a TensorFile,
}

impl<'a> Dump<'a> {
    fn fail(&self, e: String) -> ! {
        panic!("{}: {e}", self.name)
    }

    fn get(&self, key: &str) -> &'a Tensor {
        self.file
            .get(self.path, key)
            .unwrap_or_else(|e| self.fail(e.to_string()))
    }
}

/// Compares one dump; returns the summary line and the failed checks.
fn check_dump(path: &Path, file: &TensorFile, time_tile: Option<usize>) -> (String, Vec<String>) {
    let mut name = path.file_name().unwrap().to_string_lossy().into_owned();
    if let Some(tile) = time_tile {
        name = format!("{name} (time tiles of {tile})");
    }
    let dump = Dump {
        name: &name,
        path,
        file,
    };
    let get = |key: &str| dump.get(key);
    let Settings {
        cfg,
        adam_steps,
        margin,
    } = settings(&file.metadata).unwrap_or_else(|e| dump.fail(e));
    let (t, b) = (cfg.steps, cfg.batch);
    let x = get("x").clone();
    if x.shape() != [b, 1, 28, 28] {
        dump.fail(format!("x has shape {:?}, not [{b}, 1, 28, 28]", x.shape()));
    }

    let mut sae = Sae::new(&cfg, &mut StdRng::seed_from_u64(0));
    if let Some(tile) = time_tile {
        sae.time_tile = tile;
    }
    for (layer, (reference, ours)) in sae.layers.iter_mut().zip(LAYERS) {
        assert_eq!(layer.name, ours, "layer order of sae::nn::Sae changed");
        let key = format!("{reference}.weight");
        if !file.tensors.contains_key(&key) {
            dump.fail(format!(
                "no `{key}`: make the dump with `step-dump --include-weights`"
            ));
        }
        let w = get(&key);
        if w.shape() != layer.weight.shape().as_slice() {
            dump.fail(format!(
                "`{key}` has shape {:?}, our {} has {:?}",
                w.shape(),
                layer.weight.name(),
                layer.weight.shape()
            ));
        }
        layer.weight.set_value(w.clone());
    }
    let objective = Objective::new(&cfg, &Model::Sae(sae.clone()));
    let params = sae.parameters();
    let initial: Vec<Vec<f32>> = params.iter().map(|p| flat(&p.value())).collect();
    let input = match cfg.encoder {
        Encoder::Poisson => {
            let spikes = get("input_spikes");
            if spikes.shape() != [t, b, 1, 28, 28] {
                dump.fail(format!(
                    "input_spikes has shape {:?}, not [{t}, {b}, 1, 28, 28]",
                    spikes.shape()
                ));
            }
            spikes
                .as_standard_layout()
                .into_owned()
                .into_shape_with_order(IxDyn(&[t * b, 1, 28, 28]))
                .expect("time-major frames")
        }
        _ => sae.encode(&x, 0),
    };

    let mut failures = vec![];
    let mut check = |what: String, err: f64, tol: f64| {
        if err.is_nan() || err > tol {
            failures.push(format!(
                "{name}: {what}: error {err:.3e} > tolerance {tol:.0e}"
            ));
        }
    };

    let pass = forward_backward(&sae, &objective, &x, &input);
    let loss_ref = get("loss")[[0]];
    let loss_err = rel_scalar(pass.loss, loss_ref);
    check(
        format!("loss (ours {} vs {loss_ref})", pass.loss),
        loss_err,
        LOSS_TOL,
    );
    let mse_ref = get("mse")[[0]];
    let mse_err = rel_scalar(pass.mse, mse_ref);
    check(
        format!("mse (ours {} vs {mse_ref})", pass.mse),
        mse_err,
        LOSS_TOL,
    );

    let mut grad = Worst::new();
    let mut ref_grad_norm = 0.0f64;
    for (p, (reference, _)) in params.iter().zip(LAYERS) {
        let key = format!("{reference}.weight.grad");
        let g_ref = flat(get(&key));
        ref_grad_norm += g_ref.iter().map(|&g| f64::from(g).powi(2)).sum::<f64>();
        let g = p
            .grad()
            .map(|g| flat(&g))
            .unwrap_or_else(|| dump.fail(format!("{} got no gradient", p.name())));
        let err = rel_norm(&g, &g_ref);
        check(format!("gradient {key}"), err, GRAD_TOL);
        grad.add(err, reference);
    }
    if ref_grad_norm == 0.0 {
        dump.fail("the reference's gradients are all zero: a silent fixture checks nothing".into());
    }

    let (mut differ, mut neurons) = (0usize, 0usize);
    let mut spikes_at = Worst::new();
    let mut c = Worst::new();
    for (i, (reference, _)) in LAYERS.iter().enumerate() {
        let count_ref = flat(get(&format!("{reference}.spike_count")));
        if count_ref.len() != pass.counts[i].len() {
            dump.fail(format!(
                "{reference}.spike_count has {} values, our layer {}",
                count_ref.len(),
                pass.counts[i].len()
            ));
        }
        let d = count_ref
            .iter()
            .zip(&pass.counts[i])
            .filter(|(a, b)| a != b)
            .count();
        differ += d;
        neurons += count_ref.len();
        spikes_at.add(d as f64, format!("{reference}:{d}"));
        let c_ref = flat(get(&format!("{reference}.c_final")));
        let err = rel_norm(&pass.c_final[i], &c_ref);
        check(format!("{reference}.c_final"), err, VALUE_TOL);
        c.add(err, *reference);
    }
    let agreement = 1.0 - differ as f64 / neurons as f64;
    check(
        format!(
            "spike counts ({differ} of {neurons} neurons differ, worst {})",
            spikes_at.at
        ),
        1.0 - agreement,
        1.0 - SPIKE_AGREEMENT,
    );
    let xhat_err = rel_norm(&pass.recon, &flat(get("xhat")));
    check("xhat (read-out)".into(), xhat_err, VALUE_TOL);

    let mut line = format!(
        "{name} [{:?} floor={} T={t} B={b} regs={} adam={adam_steps} clip={}]: \
         loss {loss_err:.1e} mse {mse_err:.1e} | grad {:.1e} ({}) | spikes {differ}/{neurons} \
         differ ({}) | c_final {:.1e} ({}) | xhat {xhat_err:.1e}",
        cfg.encoder,
        cfg.floor,
        if cfg.coefficients.any() {
            cfg.coefficients
                .named()
                .iter()
                .filter(|(_, v)| *v != 0.0)
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(",")
        } else {
            "none".into()
        },
        cfg.clip_value,
        grad.err,
        grad.at,
        spikes_at.at,
        c.err,
        c.at,
    );

    if adam_steps > 0 {
        let losses_ref = flat(get("adam.loss"));
        if losses_ref.len() != adam_steps {
            dump.fail(format!(
                "adam.loss has {} values, adam_steps = {adam_steps}",
                losses_ref.len()
            ));
        }
        let mut opt = Adam::new(params.clone(), cfg.lr);
        let mut loss_worst = Worst::new();
        for (k, &loss_k_ref) in losses_ref.iter().enumerate() {
            // Step 0 uses the gradient of the pass above, as the reference does.
            let loss_k = if k == 0 {
                pass.loss
            } else {
                forward_backward(&sae, &objective, &x, &input).loss
            };
            let err = rel_scalar(loss_k, loss_k_ref);
            check(
                format!("adam.loss[{k}] (ours {loss_k} vs {loss_k_ref})"),
                err,
                LOSS_TOL,
            );
            loss_worst.add(err, format!("step {k}"));
            if cfg.clip_value > 0.0 {
                clip_grad_value(&params, cfg.clip_value);
            }
            opt.step();
        }
        let mut after = Worst::new();
        let mut update = Worst::new();
        for ((p, (reference, _)), w0) in params.iter().zip(LAYERS).zip(&initial) {
            let key = format!("{reference}.weight.after");
            let w_ref = flat(get(&key));
            let w = flat(&p.value());
            let err = rel_norm(&w, &w_ref);
            check(key, err, VALUE_TOL);
            after.add(err, reference);
            // The update itself: a wrong step hides in `after` when the weights are
            // large next to lr·K.
            let du: Vec<f32> = w.iter().zip(w0).map(|(a, b)| a - b).collect();
            let du_ref: Vec<f32> = w_ref.iter().zip(w0).map(|(a, b)| a - b).collect();
            let err = rel_norm(&du, &du_ref);
            check(
                format!("Adam update {reference}.weight.after − weight"),
                err,
                UPDATE_TOL,
            );
            update.add(err, reference);
        }
        let _ = write!(
            line,
            " | adam.loss {:.1e} ({}) after {:.1e} ({}) update {:.1e} ({})",
            loss_worst.err, loss_worst.at, after.err, after.at, update.err, update.at
        );
    }
    if let Some(m) = margin {
        let _ = write!(line, " | ref margin min|v-θ| {m:.1e}");
    }
    (line, failures)
}

#[test]
fn parity_with_the_pytorch_reference() {
    let dir = parity_dir();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    paths.sort();
    let mut dumps = 0;
    let mut failures = vec![];
    let mut last_keys = String::new();
    for path in &paths {
        let file = load_tensors(path).unwrap_or_else(|e| panic!("{e}"));
        let name = path.file_name().unwrap().to_string_lossy();
        if !file.tensors.contains_key("loss") {
            assert!(
                name.starts_with("init"),
                "{}: not a step-dump (no `loss` tensor) and not an init* weights file",
                path.display()
            );
            println!("{name}: weights, not a dump; skipped");
            continue;
        }
        dumps += 1;
        let mut keys: Vec<&str> = file.metadata.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let keys = keys.join(" ");
        if keys != last_keys {
            println!("{name}: metadata keys: {keys}");
            last_keys = keys;
        }
        // One tile of all T steps, and tiles of 3 steps with the state carried.
        for time_tile in [None, Some(3)] {
            let (line, fails) = check_dump(path, &file, time_tile);
            println!("{line}");
            failures.extend(fails);
        }
    }
    assert!(
        dumps > 0,
        "no step-dump (*.safetensors with a `loss` tensor) in {}",
        dir.display()
    );
    println!("{dumps} dumps from {}", dir.display());
    assert!(
        failures.is_empty(),
        "parity with the PyTorch reference failed:\n{}",
        failures.join("\n")
    );
}
