//! Trains a two-layer perceptron on MNIST for one epoch with the `autograd` crate and
//! prints the test accuracy (expect > 95 %).
//!
//! ```text
//! ./data-fetch.sh && cargo run --release --example mnist_mlp [-- --data-dir DIR]
//! ```

use std::path::PathBuf;

use autograd::nn::{Layer, Linear, Module, Visitor};
use autograd::{Adam, Optimizer, Parameter, Tape, Tensor, Var};
use ndarray::IxDyn;
use rand::SeedableRng;
use rand::rngs::StdRng;
use sae::data::{Mnist, Split, epoch_order, resolve_dir};

const HIDDEN: usize = 256;
const BATCH: usize = 32;

/// Two linear layers with a ReLU between.
struct Mlp {
    fc1: Linear,
    fc2: Linear,
}

/// A linear layer with PyTorch's default weights and a zero bias.
fn linear(inputs: usize, outputs: usize, rng: &mut StdRng) -> Linear {
    let zeros = Tensor::zeros(IxDyn(&[outputs]));
    Linear {
        bias: Some(Parameter::new("bias", zeros)),
        ..Linear::new(inputs, outputs, false, rng)
    }
}

impl Mlp {
    fn new(inputs: usize, classes: usize, rng: &mut StdRng) -> Self {
        Mlp {
            fc1: linear(inputs, HIDDEN, rng),
            fc2: linear(HIDDEN, classes, rng),
        }
    }
}

impl Module for Mlp {
    fn visit(&self, v: &mut Visitor<'_>) {
        v.child("fc1", &self.fc1);
        v.child("fc2", &self.fc2);
    }
}

impl Layer for Mlp {
    /// Logits `[N, 10]` for images `[N, 1, 28, 28]`.
    fn forward<'t>(&self, images: &Var<'t>) -> Var<'t> {
        // Standardized with MNIST's pixel mean and deviation, as torchvision examples do.
        let x = (images.flatten() - 0.1307) / 0.3081;
        self.fc2.forward(&self.fc1.forward(&x).relu())
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
    let mut opt = Adam::new(model.parameters(), 1e-3);

    let start = std::time::Instant::now();
    let order = epoch_order(mnist.train.len(), 0);
    for (step, idx) in order.chunks(BATCH).enumerate() {
        let (images, labels) = batch(&mnist.train, idx);
        let tape = Tape::new();
        let loss = model.forward(&tape.constant(images)).cross_entropy(&labels);
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
        let logits = model.forward(&tape.constant(images));
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
