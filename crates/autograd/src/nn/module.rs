//! The module tree. A [`Module`] hands a [`Visitor`] its parameters, buffers, mode flag
//! and child modules, each under a local name; the visitor joins the names into paths,
//! so a struct of layers yields `encoder.conv1.weight`. Everything else — collecting,
//! counting, saving, loading, switching between training and evaluation — is one walk
//! with one visitor, so a module implements a single method.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::io::{self, IoError};
use crate::{Parameter, Var};

/// A part of a model that owns parameters (and possibly buffers and other modules),
/// PyTorch's `nn.Module` without the forward pass (which is [`Layer`]'s, for modules of
/// one input and one output).
///
/// Implement [`Module::visit`]; the other methods walk the tree with it. Cloning a
/// built-in layer gives another handle to the same parameters, as [`Parameter`] does.
pub trait Module {
    /// Hands `v` every parameter ([`Visitor::param`]), buffer ([`Visitor::buffer`]),
    /// mode flag ([`Visitor::mode`]) and child module ([`Visitor::child`]), each under
    /// its local name, always in the same order.
    fn visit(&self, v: &mut Visitor<'_>);

    /// Calls `f` with the path and the entry of everything [`Module::visit`] hands over.
    fn walk(&self, f: &mut dyn FnMut(&str, Entry<'_>)) {
        self.visit(&mut Visitor::new(f));
    }

    /// The trainable parameters with their paths, in visiting order; each handle is
    /// named by its path ([`Parameter::renamed`]).
    fn named_parameters(&self) -> Vec<(String, Parameter)> {
        let mut out = Vec::new();
        self.walk(&mut |path, e| {
            if let Entry::Parameter(p) = e {
                out.push((path.to_string(), p.renamed(path)));
            }
        });
        out
    }

    /// The trainable parameters, for an optimizer, each named by its path (see the
    /// [module docs](crate::nn) on names).
    fn parameters(&self) -> Vec<Parameter> {
        self.named_parameters()
            .into_iter()
            .map(|(_, p)| p)
            .collect()
    }

    /// The number of trainable values (elements of all parameters).
    fn num_parameters(&self) -> usize {
        self.parameters().iter().map(Parameter::len).sum()
    }

    /// The buffers (saved, not trained) with their paths, in visiting order.
    fn named_buffers(&self) -> Vec<(String, Parameter)> {
        let mut out = Vec::new();
        self.walk(&mut |path, e| {
            if let Entry::Buffer(b) = e {
                out.push((path.to_string(), b.renamed(path)));
            }
        });
        out
    }

    /// Parameters and buffers with their paths, in visiting order: what
    /// [`Module::save`] writes (PyTorch's `state_dict`).
    fn state(&self) -> Vec<(String, Parameter)> {
        let mut out = Vec::new();
        self.walk(&mut |path, e| {
            if let Entry::Parameter(p) | Entry::Buffer(p) = e {
                out.push((path.to_string(), p.renamed(path)));
            }
        });
        out
    }

    /// Saves parameters and buffers as safetensors under their paths, atomically.
    /// Two entries of one path are an error ([`IoError::Duplicate`]).
    fn save(&self, path: &Path) -> Result<(), IoError> {
        io::save(path, &state_handles(self), None)
    }

    /// Loads parameters and buffers by path, strictly: a tensor missing from the file,
    /// one the module lacks or a shape that differs is an error, and then nothing is
    /// changed.
    fn load(&self, path: &Path) -> Result<(), IoError> {
        io::load(path, &state_handles(self)).map(drop)
    }

    /// Switches every [`Mode`] of the tree to training (`true`) or evaluation, as
    /// PyTorch's `module.train(training)`.
    fn set_training(&self, training: bool) {
        self.walk(&mut |_, e| {
            if let Entry::Mode(m) = e {
                m.set_training(training);
            }
        });
    }
}

/// [`Module::state`]'s handles, each named by its path: what save and load key by.
fn state_handles<M: Module + ?Sized>(m: &M) -> Vec<Parameter> {
    m.state().into_iter().map(|(_, p)| p).collect()
}

/// A module with one input and one output: a layer, or a network of them.
///
/// The lifetime `'t` ties the output to the input's tape. Spell it out when
/// implementing: with the elided `fn forward(&self, x: &Var) -> Var` the output would
/// borrow from `&self` instead, and the implementation would not compile.
///
/// ```
/// use autograd::nn::{Layer, Linear, Module, Visitor};
/// use autograd::Var;
///
/// /// `tanh(W·x + b)`.
/// struct Dense(Linear);
///
/// impl Module for Dense {
///     fn visit(&self, v: &mut Visitor<'_>) {
///         v.child("", &self.0); // no level of its own: `weight`, `bias`
///     }
/// }
///
/// impl Layer for Dense {
///     fn forward<'t>(&self, x: &Var<'t>) -> Var<'t> {
///         self.0.forward(x).tanh()
///     }
/// }
/// ```
///
/// The elided signature is refused:
///
/// ```compile_fail
/// # use autograd::nn::{Layer, Module, Visitor};
/// # use autograd::Var;
/// struct Tanh;
/// impl Module for Tanh {
///     fn visit(&self, _: &mut Visitor<'_>) {}
/// }
/// impl Layer for Tanh {
///     fn forward(&self, x: &Var) -> Var {
///         x.tanh()
///     }
/// }
/// ```
pub trait Layer: Module {
    /// The output for input `x`, recorded on `x`'s tape.
    fn forward<'t>(&self, x: &Var<'t>) -> Var<'t>;
}

/// What a [`Visitor`] meets in a module tree.
#[derive(Clone, Copy, Debug)]
pub enum Entry<'a> {
    /// A trainable parameter.
    Parameter(&'a Parameter),
    /// A tensor saved with the module but not trained (batch norm's running statistics).
    Buffer(&'a Parameter),
    /// The training/evaluation flag of a module whose forward depends on it.
    Mode(&'a Mode),
}

/// Walks a module tree, calling its callback with each entry and its path: local names
/// joined by dots (`encoder.conv1.weight`); for a [`Mode`], the path of its module.
pub struct Visitor<'a> {
    path: String,
    f: &'a mut dyn FnMut(&str, Entry<'_>),
}

impl<'a> Visitor<'a> {
    /// A visitor at the root of a tree, calling `f` for each entry.
    pub fn new(f: &'a mut dyn FnMut(&str, Entry<'_>)) -> Self {
        Visitor {
            path: String::new(),
            f,
        }
    }

    /// A trainable parameter named `name` here; `None` (an absent bias) is skipped.
    ///
    /// # Panics
    /// If `name` is empty.
    #[track_caller]
    pub fn param<'p>(&mut self, name: &str, p: impl Into<Option<&'p Parameter>>) {
        if let Some(p) = p.into() {
            self.leaf(name, Entry::Parameter(p));
        }
    }

    /// A buffer named `name` here: saved and loaded with the parameters, never trained.
    ///
    /// # Panics
    /// If `name` is empty.
    #[track_caller]
    pub fn buffer(&mut self, name: &str, b: &Parameter) {
        self.leaf(name, Entry::Buffer(b));
    }

    /// The module's training/evaluation flag.
    pub fn mode(&mut self, m: &Mode) {
        (self.f)(&self.path, Entry::Mode(m));
    }

    /// A child module named `name` here: its entries' paths start with `name.`. An
    /// empty name adds no level (a wrapper whose child's entries are its own).
    pub fn child<M: Module + ?Sized>(&mut self, name: &str, m: &M) {
        let len = self.path.len();
        self.push(name);
        m.visit(self);
        self.path.truncate(len);
    }

    #[track_caller]
    fn leaf(&mut self, name: &str, e: Entry<'_>) {
        assert!(
            !name.is_empty(),
            "a parameter or buffer needs a name (module `{}`)",
            self.path
        );
        let len = self.path.len();
        self.push(name);
        (self.f)(&self.path, e);
        self.path.truncate(len);
    }

    fn push(&mut self, name: &str) {
        if name.is_empty() {
            return;
        }
        if !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(name);
    }
}

/// Whether a module trains or evaluates (PyTorch's `module.training`): batch norm
/// normalizes by the batch's statistics while training and by its running ones while
/// evaluating. New modules train; [`Module::set_training`] switches a whole tree.
#[derive(Debug)]
pub struct Mode(AtomicBool);

impl Mode {
    /// A flag that starts in training.
    pub fn new() -> Self {
        Mode(AtomicBool::new(true))
    }

    /// Whether the module trains.
    pub fn is_training(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Switches to training (`true`) or evaluation.
    pub fn set_training(&self, training: bool) {
        self.0.store(training, Ordering::Relaxed);
    }
}

impl Default for Mode {
    /// Training.
    fn default() -> Self {
        Mode::new()
    }
}

impl Clone for Mode {
    /// A separate flag in the same state.
    fn clone(&self) -> Self {
        Mode(AtomicBool::new(self.is_training()))
    }
}

impl<M: Module + ?Sized> Module for Box<M> {
    fn visit(&self, v: &mut Visitor<'_>) {
        (**self).visit(v);
    }
}

impl<L: Layer + ?Sized> Layer for Box<L> {
    fn forward<'t>(&self, x: &Var<'t>) -> Var<'t> {
        (**self).forward(x)
    }
}

/// A list of modules, named by position (`0`, `1`, …) as PyTorch's `nn.ModuleList`.
impl<M: Module> Module for [M] {
    fn visit(&self, v: &mut Visitor<'_>) {
        for (i, m) in self.iter().enumerate() {
            v.child(&i.to_string(), m);
        }
    }
}

/// As the slice: children named by position.
impl<M: Module> Module for Vec<M> {
    fn visit(&self, v: &mut Visitor<'_>) {
        self.as_slice().visit(v);
    }
}

/// An optional module: its entries if present, none otherwise.
impl<M: Module> Module for Option<M> {
    fn visit(&self, v: &mut Visitor<'_>) {
        if let Some(m) = self {
            m.visit(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{BatchNorm, Conv2d, Linear};
    use crate::{Tape, Tensor};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    /// An encoder of a list of convs and a norm, and an optional head.
    struct Encoder {
        convs: Vec<Conv2d>,
        norm: BatchNorm,
    }

    impl Module for Encoder {
        fn visit(&self, v: &mut Visitor<'_>) {
            v.child("convs", &self.convs);
            v.child("norm", &self.norm);
        }
    }

    struct Net {
        encoder: Encoder,
        head: Option<Box<dyn Layer>>,
        scale: Parameter,
    }

    impl Module for Net {
        fn visit(&self, v: &mut Visitor<'_>) {
            v.child("encoder", &self.encoder);
            v.child("head", &self.head);
            v.param("scale", &self.scale);
        }
    }

    fn net(seed: u64, head: bool) -> Net {
        let rng = &mut StdRng::seed_from_u64(seed);
        Net {
            encoder: Encoder {
                convs: vec![
                    Conv2d::new(1, 2, 3, true, rng),
                    Conv2d::new(2, 2, 3, false, rng),
                ],
                norm: BatchNorm::new(2, true),
            },
            head: head.then(|| Box::new(Linear::new(8, 3, true, rng)) as Box<dyn Layer>),
            scale: Parameter::new("scale", Tensor::ones(ndarray::IxDyn(&[1]))),
        }
    }

    fn tmp(tag: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!(
            "autograd-nn-{tag}-{}.safetensors",
            std::process::id()
        ))
    }

    #[test]
    fn optimizer_state_is_keyed_by_path() {
        use crate::{Adam, Optimizer};
        let n = net(0, true);
        let mut opt = Adam::new(n.parameters(), 1e-2);
        let tape = crate::Tape::new();
        let x = tape.constant(Tensor::ones(ndarray::IxDyn(&[1, 8])));
        let head = n.head.as_ref().expect("head");
        (head.forward(&x).sum() * tape.param(&n.scale)).backward();
        opt.step();
        let keys: Vec<String> = opt.state().into_keys().collect();
        assert!(keys.contains(&"adam.m.head.weight".to_string()), "{keys:?}");
        // The path-named handles share the layers' values.
        assert!(n.parameters()[0].same_as(&n.encoder.convs[0].weight));
    }

    #[test]
    fn nested_modules_give_hierarchical_names() {
        let n = net(0, true);
        let names: Vec<String> = n.state().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "encoder.convs.0.weight",
                "encoder.convs.0.bias",
                "encoder.convs.1.weight",
                "encoder.norm.weight",
                "encoder.norm.bias",
                "encoder.norm.running_mean",
                "encoder.norm.running_var",
                "head.weight",
                "head.bias",
                "scale",
            ]
        );
        let buffers: Vec<String> = n.named_buffers().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            buffers,
            ["encoder.norm.running_mean", "encoder.norm.running_var"]
        );
        assert_eq!(n.parameters().len(), 8);
        assert_eq!(n.num_parameters(), 18 + 2 + 36 + 2 + 2 + 24 + 3 + 1);
        assert_eq!(
            net(0, false).parameters().len(),
            6,
            "no head, no head entries"
        );
        let mut modes = Vec::new();
        n.walk(&mut |path, e| {
            if let Entry::Mode(_) = e {
                modes.push(path.to_string());
            }
        });
        assert_eq!(modes, ["encoder.norm"]);
    }

    #[test]
    fn set_training_reaches_nested_modules() {
        let n = net(0, true);
        assert!(n.encoder.norm.mode.is_training());
        n.set_training(false);
        assert!(!n.encoder.norm.mode.is_training());
        let copy = n.encoder.norm.clone();
        n.set_training(true);
        assert!(!copy.mode.is_training(), "a clone has its own flag");
    }

    #[test]
    fn save_and_load_by_path_with_buffers() {
        let path = tmp("roundtrip");
        let a = net(0, true);
        a.encoder
            .norm
            .running_mean
            .set_value(Tensor::from_elem(ndarray::IxDyn(&[2]), 0.5));
        a.save(&path).unwrap();
        let file = crate::io::load_tensors(&path).unwrap();
        assert!(file.tensors.contains_key("encoder.norm.running_mean"));
        let b = net(1, true);
        assert_ne!(
            *b.encoder.convs[0].weight.value(),
            *a.encoder.convs[0].weight.value()
        );
        b.load(&path).unwrap();
        for ((na, pa), (nb, pb)) in a.state().iter().zip(b.state()) {
            assert_eq!(*na, nb);
            assert_eq!(*pa.value(), *pb.value(), "{na}");
        }
        let err = net(2, false).load(&path).unwrap_err().to_string();
        assert!(
            err.contains("does not have: head.bias, head.weight"),
            "{err}"
        );
        std::fs::remove_file(path).unwrap();
    }

    /// Two entries of one path: nothing is written.
    #[test]
    fn duplicate_paths_are_refused() {
        struct Twice(Linear);
        impl Module for Twice {
            fn visit(&self, v: &mut Visitor<'_>) {
                v.child("fc", &self.0);
                v.child("fc", &self.0);
            }
        }
        let path = tmp("duplicate");
        let twice = Twice(Linear::new(2, 2, false, &mut StdRng::seed_from_u64(0)));
        let err = twice.save(&path).unwrap_err();
        assert!(
            err.to_string().contains("named more than once: fc.weight"),
            "{err}"
        );
        assert!(!path.exists());
    }

    #[test]
    fn a_boxed_layer_runs_forward() {
        let layer: Box<dyn Layer> =
            Box::new(Linear::new(3, 2, true, &mut StdRng::seed_from_u64(0)));
        let tape = Tape::new();
        let y = layer.forward(&tape.constant(Tensor::ones(ndarray::IxDyn(&[4, 3]))));
        assert_eq!(y.shape(), [4, 2]);
    }

    #[test]
    #[should_panic(expected = "a parameter or buffer needs a name (module `encoder`)")]
    fn entries_need_names() {
        struct Unnamed(Parameter);
        impl Module for Unnamed {
            fn visit(&self, v: &mut Visitor<'_>) {
                v.param("", &self.0);
            }
        }
        struct Outer(Unnamed);
        impl Module for Outer {
            fn visit(&self, v: &mut Visitor<'_>) {
                v.child("encoder", &self.0);
            }
        }
        Outer(Unnamed(Parameter::new(
            "w",
            Tensor::zeros(ndarray::IxDyn(&[1])),
        )))
        .parameters();
    }
}
