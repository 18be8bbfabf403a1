//! `sae export`: what NIR cannot express is refused by name, and (with the `nir` feature)
//! the HDF5 file holds the graph the `nir` Python package reads, with our parameters.
//! Tiny MNIST-shaped data, so no MNIST is needed; `benches/check_nir.sh` simulates a file
//! with an independent reader.

use std::path::{Path, PathBuf};

mod common;
use common::{sae, stderr};

/// A trained tiny run ([`common::TINY`] at T = 3) with `extra` flags.
fn tiny_run(root: &Path, name: &str, extra: &[&str]) -> (PathBuf, PathBuf) {
    let data = common::random_mnist(&root.join("mnist"), 64, 16);
    let runs = root.join("runs");
    let extra = [&["--steps", "3"][..], extra].concat();
    let o = sae(&common::tiny_train_args(&data, &runs, name, &extra));
    assert!(o.status.success(), "{}", stderr(&o));
    (runs.join(name), data)
}

#[test]
fn what_nir_cannot_express_is_refused_naming_the_part() {
    let dir = tempfile::tempdir().unwrap();
    let (run, _) = tiny_run(dir.path(), "floor", &["--floor", "authors"]);
    let file = dir.path().join("x.nir");
    let o = sae(&["export", run.to_str().unwrap(), file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("floor `authors`"), "{}", stderr(&o));
    let (run, _) = tiny_run(dir.path(), "plain", &[]);
    let o = sae(&[
        "export",
        run.to_str().unwrap(),
        file.to_str().unwrap(),
        "--part",
        "network",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("decoder_fc → deconv1") && stderr(&o).contains("un-flatten"),
        "{}",
        stderr(&o)
    );
    let (ae, _) = tiny_run(dir.path(), "ae", &["--model", "ae"]);
    let o = sae(&["export", ae.to_str().unwrap(), file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not a spiking network"),
        "{}",
        stderr(&o)
    );
    assert!(!file.exists());
}

#[cfg(not(feature = "nir"))]
#[test]
fn without_the_feature_export_says_how_to_build_it() {
    let dir = tempfile::tempdir().unwrap();
    let (run, _) = tiny_run(dir.path(), "plain", &[]);
    let file = dir.path().join("x.nir");
    let o = sae(&["export", run.to_str().unwrap(), file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("--features nir") && err.contains("libhdf5-dev"),
        "{err}"
    );
    assert!(!file.exists());
}

#[cfg(feature = "nir")]
mod file {
    use super::*;
    use hdf5::types::VarLenUnicode;
    use hdf5_metno as hdf5;
    use ndarray::{ArrayD, Axis, IxDyn};

    fn string(g: &hdf5::Group, name: &str) -> String {
        g.dataset(name)
            .unwrap()
            .read_scalar::<VarLenUnicode>()
            .unwrap()
            .to_string()
    }

    fn floats(g: &hdf5::Group, name: &str) -> ArrayD<f32> {
        let d = g.dataset(name).unwrap();
        ArrayD::from_shape_vec(IxDyn(&d.shape()), d.read_raw::<f32>().unwrap()).unwrap()
    }

    fn ints(g: &hdf5::Group, name: &str) -> Vec<i64> {
        g.dataset(name).unwrap().read_raw::<i64>().unwrap()
    }

    fn checkpoint(run: &Path, name: &str) -> ArrayD<f32> {
        let file = autograd::io::load_tensors(run.join("checkpoint.safetensors")).unwrap();
        file.tensors[name].clone()
    }

    fn export(run: &Path, file: &Path, part: &str, activity: &Path, data: &Path) {
        let o = sae(&[
            "export",
            run.to_str().unwrap(),
            file.to_str().unwrap(),
            "--format",
            "nir",
            "--part",
            part,
            "--activity",
            activity.to_str().unwrap(),
            "--images",
            "5",
            "--data-dir",
            data.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }

    #[test]
    fn the_encoder_file_holds_the_graph_and_our_parameters() {
        let dir = tempfile::tempdir().unwrap();
        let (run, data) = tiny_run(dir.path(), "plain", &[]);
        let (file, activity) = (dir.path().join("enc.nir"), dir.path().join("enc.st"));
        export(&run, &file, "encoder", &activity, &data);
        let f = hdf5::File::open(&file).unwrap();
        assert_eq!(string(&f, "version"), "1.0.7");
        let root = f.group("node").unwrap();
        assert_eq!(string(&root, "type"), "NIRGraph");
        let nodes = root.group("nodes").unwrap();
        let types: Vec<(String, String)> = nodes
            .member_names()
            .unwrap()
            .into_iter()
            .map(|n| {
                let t = string(&nodes.group(&n).unwrap(), "type");
                (n, t)
            })
            .collect();
        let expected = [
            ("conv1.lif", "LIF"),
            ("conv1.synapse", "Conv2d"),
            ("conv2.lif", "LIF"),
            ("conv2.synapse", "Conv2d"),
            ("input", "Input"),
            ("latent.flatten", "Flatten"),
            ("latent.lif", "LIF"),
            ("latent.synapse", "Linear"),
            ("output", "Output"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(types, expected);
        let edges = root.dataset("edges").unwrap();
        assert_eq!(edges.shape(), [8, 2]);
        let edges: Vec<String> = edges
            .read_raw::<VarLenUnicode>()
            .unwrap()
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            &edges[..4],
            ["input", "conv1.synapse", "conv1.synapse", "conv1.lif"]
        );
        assert_eq!(&edges[14..], ["latent.lif", "output"]);
        // Parameters: the checkpoint's, bit for bit.
        let conv1 = nodes.group("conv1.synapse").unwrap();
        assert_eq!(floats(&conv1, "weight"), checkpoint(&run, "conv1.weight"));
        assert_eq!(ints(&conv1, "input_shape"), [28, 28]);
        assert_eq!(ints(&conv1, "stride"), [1, 1]);
        assert_eq!(ints(&conv1, "padding"), [0, 0]);
        let latent = nodes.group("latent.synapse").unwrap();
        assert_eq!(floats(&latent, "weight"), checkpoint(&run, "latent.weight"));
        let flatten = nodes.group("latent.flatten").unwrap();
        assert_eq!(ints(&flatten, "input_type"), [4, 20, 20]);
        let lif = nodes.group("conv2.lif").unwrap();
        let (tau, r) = (floats(&lif, "tau"), floats(&lif, "r"));
        assert_eq!(tau.shape(), [4, 20, 20]);
        let dt = root
            .group("metadata")
            .unwrap()
            .dataset("dt")
            .unwrap()
            .read_scalar::<f64>()
            .unwrap();
        // One Euler step is v ← λ·v + I with the default λ = 0.99.
        let (tau, r) = (f64::from(tau[[0, 0, 0]]), f64::from(r[[0, 0, 0]]));
        assert!((1.0 - dt / tau - 0.99).abs() < 1e-6, "{tau}");
        assert!((r * dt / tau - 1.0).abs() < 1e-6, "{r}");
        assert!(floats(&lif, "v_threshold").iter().all(|&v| v == 1.0));
        assert!(floats(&lif, "v_reset").iter().all(|&v| v == 0.0));
        assert_eq!(ints(&nodes.group("input").unwrap(), "shape"), [1, 28, 28]);
        assert_eq!(ints(&nodes.group("output").unwrap(), "shape"), [8]);
        // The activity: named as the graph's LIF nodes, one count per neuron and image.
        let act = autograd::io::load_tensors(&activity).unwrap();
        assert_eq!(act.tensors["input"].shape(), [5, 1, 28, 28]);
        assert_eq!(act.tensors["conv1.lif"].shape(), [5, 2, 24, 24]);
        assert_eq!(act.tensors["latent.lif"].shape(), [5, 8]);
        assert!(
            act.tensors["conv1.lif"]
                .iter()
                .all(|&c| (0.0..=3.0).contains(&c))
        );
    }

    #[test]
    fn the_decoder_file_holds_flipped_kernels_and_the_potential() {
        let dir = tempfile::tempdir().unwrap();
        let (run, data) = tiny_run(dir.path(), "plain", &[]);
        let (file, activity) = (dir.path().join("dec.nir"), dir.path().join("dec.st"));
        export(&run, &file, "decoder", &activity, &data);
        let f = hdf5::File::open(&file).unwrap();
        let nodes = f.group("node/nodes").unwrap();
        let deconv = nodes.group("deconv1.synapse").unwrap();
        assert_eq!(string(&deconv, "type"), "Conv2d");
        // [C_in, C_out, k, k] → [C_out, C_in, k, k], both spatial axes reversed.
        let mut flipped = checkpoint(&run, "deconv1.weight");
        flipped.swap_axes(0, 1);
        flipped.invert_axis(Axis(2));
        flipped.invert_axis(Axis(3));
        assert_eq!(floats(&deconv, "weight"), flipped);
        assert_eq!(ints(&deconv, "padding"), [4, 4]);
        assert_eq!(ints(&nodes.group("input").unwrap(), "shape"), [4, 20, 20]);
        let li = nodes.group("output.potential").unwrap();
        assert_eq!(string(&li, "type"), "LI");
        let (tau, r) = (floats(&li, "tau"), floats(&li, "r"));
        // c[t] = λ·c[t−1] + λ·I[t]: R·dt/τ = λ.
        let dt = 1e-3;
        assert!((r[[0, 0, 0]] as f64 * dt / tau[[0, 0, 0]] as f64 - 0.99).abs() < 1e-6);
        let act = autograd::io::load_tensors(&activity).unwrap();
        assert_eq!(act.tensors["input"].shape(), [3, 5, 4, 20, 20]);
        assert!(act.tensors["input"].iter().all(|&s| s == 0.0 || s == 1.0));
        assert_eq!(act.tensors["output.potential.max"].shape(), [5, 1, 28, 28]);
        assert_eq!(act.tensors["output.lif"].shape(), [5, 1, 28, 28]);
    }
}
