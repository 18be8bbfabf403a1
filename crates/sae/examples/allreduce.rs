//! Times the all-reduce of one training step's gradients of the paper network over the
//! ranks of an MPI job: `mpirun -np 2 target/release/examples/allreduce` (feature `mpi`).

use std::time::Instant;

use sae::cluster::Group;
use sae::config::Config;
use sae::nn::Model;

fn main() {
    let group = Group::from_launcher().expect("an MPI job");
    let values = Model::new(&Config::paper()).net().num_parameters();
    let mut grads = vec![1.0f32; values];
    let reps = 200;
    for _ in 0..10 {
        group.sum_f32(&mut grads);
    }
    group.barrier();
    let t0 = Instant::now();
    for _ in 0..reps {
        group.sum_f32(&mut grads);
    }
    let each = t0.elapsed().as_secs_f64() / reps as f64;
    if group.is_root() {
        println!(
            "{} ranks: all-reduce of {values} f32 ({:.2} MB) in {:.3} ms",
            group.size(),
            values as f64 * 4.0 / 1e6,
            each * 1e3
        );
    }
}
