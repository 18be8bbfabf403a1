//! Trains a two-layer perceptron on MNIST for one epoch with the `autograd` crate and
//! prints the test accuracy (expect > 95 %).
//!
//! ```text
//! ./data-fetch.sh && cargo run --release --example mnist_mlp [-- --data-dir DIR]
//! ```

use std::path::PathBuf;

use autograd::{Adam, Optimizer, Parameter, Tape, Tensor, Var, init};
use ndarray::IxDyn;
use rand::SeedableRng;
use rand::rngs::StdRng;
use sae::data::{Mnist, Split, epoch_order, resolve_dir};

const HIDDEN: usize = 256;
const BATCH: usize = 32;

struct Mlp {
    w1: Parameter,
    b1: Parameter,
    w2: Parameter,
    b2: Parameter,
}

impl Mlp {
    fn new(inputs: usize, classes: usize, rng: &mut StdRng) -> Self {
        Mlp {
            w1: Parameter::new("fc1.weight", init::default_uniform(&[HIDDEN, inputs], rng)),
            b1: Parameter::new("fc1.bias", Tensor::zeros(IxDyn(&[HIDDEN]))),
            w2: Parameter::new("fc2.weight", init::default_uniform(&[classes, HIDDEN], rng)),
            b2: Parameter::new("fc2.bias", Tensor::zeros(IxDyn(&[classes]))),
        }
    }

    fn params(&self) -> Vec<Parameter> {
        vec![
            self.w1.clone(),
            self.b1.clone(),
            self.w2.clone(),
            self.b2.clone(),
        ]
    }

    /// Logits `[N, 10]` for images `[N, 1, 28, 28]`.
    fn forward<'t>(&self, tape: &'t Tape, images: Tensor) -> Var<'t> {
        // Standardized with MNIST's pixel mean and deviation, as torchvision examples do.
        let x = (tape.constant(images).flatten() - 0.1307) / 0.3081;
        let h = x
            .linear(&tape.param(&self.w1), Some(&tape.param(&self.b1)))
            .relu();
        h.linear(&tape.param(&self.w2), Some(&tape.param(&self.b2)))
    }
}

fn batch(split: &Split, idx: &[usize]) -> (Tensor, Vec<usize>) {
    let images = split.images_f32(idx).into_dyn();
    let labels = split.labels_of(idx).into_iter().map(usize::from).collect();
    (images, labels)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let explicit = args
        .iter()
        .position(|a| a == "--data-dir")
        .map(|i| {
            args.get(i + 1)
                .map(PathBuf::from)
                .ok_or("--data-dir needs a folder")
        })
        .transpose()?;
    let mnist = Mnist::load(&resolve_dir(explicit.as_deref())?)?;
    let mut rng = StdRng::seed_from_u64(0);
    let model = Mlp::new(28 * 28, 10, &mut rng);
    let mut opt = Adam::new(model.params(), 1e-3);

    let start = std::time::Instant::now();
    let order = epoch_order(mnist.train.len(), 0);
    for (step, idx) in order.chunks(BATCH).enumerate() {
        let (images, labels) = batch(&mnist.train, idx);
        let tape = Tape::new();
        let loss = model.forward(&tape, images).cross_entropy(&labels);
        opt.zero_grad();
        loss.backward();
        opt.step();
        if step % 200 == 0 {
            println!("step {step:4}  loss {:.4}", loss.item());
        }
    }
    let train_s = start.elapsed().as_secs_f32();

    let tape = Tape::eval();
    let test: Vec<usize> = (0..mnist.test.len()).collect();
    let mut correct = 0;
    for idx in test.chunks(1000) {
        let (images, labels) = batch(&mnist.test, idx);
        let logits = model.forward(&tape, images);
        for (row, &label) in logits.value().outer_iter().zip(&labels) {
            let pred = row
                .iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |b, (i, &v)| if v > b.1 { (i, v) } else { b },
                )
                .0;
            correct += usize::from(pred == label);
        }
    }
    let accuracy = correct as f32 / mnist.test.len() as f32;
    println!(
        "one epoch in {train_s:.1} s; test accuracy {:.2} %",
        100.0 * accuracy
    );
    Ok(())
}
