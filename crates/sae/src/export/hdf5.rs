//! An [`Graph`] as the HDF5 file the `nir` Python package reads (`nir.read`): a `version`
//! string, and under `node` the graph's `type`, `nodes/<name>/…` (each node's `type` and
//! parameters), `edges` (`[n, 2]` strings) and `metadata`. Strings are variable-length
//! UTF-8 and integers i64, as h5py writes them.

use std::path::Path;

use hdf5::types::VarLenUnicode;
use hdf5::{Group, H5Type};
use hdf5_metno as hdf5;
use ndarray::ArrayD;

use super::nir::{Graph, Meta, NIR_VERSION, Node};

fn text(s: &str) -> VarLenUnicode {
    s.replace('\0', " ").parse().expect("no NUL bytes left")
}

fn string(g: &Group, name: &str, value: &str) -> hdf5::Result<()> {
    g.new_dataset::<VarLenUnicode>()
        .shape(())
        .create(name)?
        .write_scalar(&text(value))
}

fn scalar<T: H5Type>(g: &Group, name: &str, value: T) -> hdf5::Result<()> {
    g.new_dataset::<T>()
        .shape(())
        .create(name)?
        .write_scalar(&value)
}

fn array<T: H5Type>(g: &Group, name: &str, shape: &[usize], values: &[T]) -> hdf5::Result<()> {
    g.new_dataset::<T>()
        .shape(shape)
        .create(name)?
        .write_raw(values)
}

fn floats(g: &Group, name: &str, a: &ArrayD<f32>) -> hdf5::Result<()> {
    let a = a.as_standard_layout();
    array(g, name, a.shape(), a.as_slice().expect("standard layout"))
}

fn ints(g: &Group, name: &str, values: &[usize]) -> hdf5::Result<()> {
    let v: Vec<i64> = values.iter().map(|&x| x as i64).collect();
    array(g, name, &[v.len()], &v)
}

fn node(g: &Group, n: &Node) -> hdf5::Result<()> {
    string(g, "type", n.type_name())?;
    match n {
        Node::Input { shape } | Node::Output { shape } => ints(g, "shape", shape),
        Node::Conv2d {
            input_shape,
            weight,
            stride,
            padding,
            dilation,
            groups,
            bias,
        } => {
            ints(g, "input_shape", input_shape)?;
            floats(g, "weight", weight)?;
            ints(g, "stride", stride)?;
            ints(g, "padding", padding)?;
            ints(g, "dilation", dilation)?;
            scalar(g, "groups", *groups as i64)?;
            floats(g, "bias", &bias.clone().into_dyn())
        }
        Node::Flatten {
            input_type,
            start_dim,
            end_dim,
        } => {
            ints(g, "input_type", input_type)?;
            scalar(g, "start_dim", *start_dim)?;
            scalar(g, "end_dim", *end_dim)
        }
        Node::Linear { weight } => floats(g, "weight", weight),
        Node::Affine { weight, bias } => {
            floats(g, "weight", weight)?;
            floats(g, "bias", &bias.clone().into_dyn())
        }
        Node::Lif {
            tau,
            r,
            v_leak,
            v_threshold,
            v_reset,
        } => {
            floats(g, "tau", tau)?;
            floats(g, "r", r)?;
            floats(g, "v_leak", v_leak)?;
            floats(g, "v_threshold", v_threshold)?;
            floats(g, "v_reset", v_reset)
        }
        Node::Li { tau, r, v_leak } => {
            floats(g, "tau", tau)?;
            floats(g, "r", r)?;
            floats(g, "v_leak", v_leak)
        }
    }
}

fn write_file(path: &Path, graph: &Graph) -> hdf5::Result<()> {
    let f = hdf5::File::create(path)?;
    string(&f, "version", NIR_VERSION)?;
    let root = f.create_group("node")?;
    string(&root, "type", "NIRGraph")?;
    let nodes = root.create_group("nodes")?;
    for (name, n) in &graph.nodes {
        node(&nodes.create_group(name)?, n)?;
    }
    let edges: Vec<VarLenUnicode> = graph
        .edges
        .iter()
        .flat_map(|(a, b)| [text(a), text(b)])
        .collect();
    array(&root, "edges", &[graph.edges.len(), 2], &edges)?;
    let meta = root.create_group("metadata")?;
    for (key, value) in &graph.metadata {
        match value {
            Meta::Text(s) => string(&meta, key, s)?,
            Meta::Number(x) => scalar(&meta, key, *x)?,
        }
    }
    f.close()
}

/// Writes `graph` to `path` atomically (a temporary file beside it, renamed over it).
pub fn write(path: &Path, graph: &Graph) -> Result<(), autograd::io::IoError> {
    autograd::io::write_atomically_with(path, |tmp| {
        write_file(tmp, graph).map_err(std::io::Error::other)
    })
}
