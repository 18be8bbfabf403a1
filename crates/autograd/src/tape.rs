//! The tape: values, parameters, recorded ops and the reverse walk.
//!
//! A [`Var`] is a value on a [`Tape`]. Every op computes its output eagerly and, when the
//! tape is recording and some input needs a gradient, pushes one backward closure onto the
//! tape. [`Var::backward`] walks those closures in reverse, handing each op the gradients
//! of its outputs and collecting the gradients of its inputs. A gradient is dropped as soon
//! as the op that produced it has been walked, so backward holds only the live frontier.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::Tensor;
use crate::bits::{BitTensor, Value};
use crate::tensor::contiguous;

/// A recorded op's backward: gradients of its outputs (`None` where no gradient reached
/// an output) and which inputs need a gradient, to gradients of its inputs (`None` where
/// not needed). Each returned gradient has its input's shape.
pub type BackwardFn = Box<dyn FnOnce(Vec<Option<Tensor>>, &[bool]) -> Vec<Option<Tensor>>>;

/// A user-defined op with a hand-written backward, in the manner of PyTorch's
/// `autograd.Function`: register it on a tape with [`Tape::apply`].
///
/// `forward` saves into `self` whatever `backward` will need (only when `record` is true:
/// in evaluation mode backward never runs, so nothing need be kept).
pub trait Function: 'static {
    /// Short name used in error messages.
    fn name(&self) -> &str;
    /// Computes the outputs from the inputs. May return several outputs.
    fn forward(&mut self, inputs: &[Arc<Tensor>], record: bool) -> Vec<Tensor>;
    /// Gradients of the inputs from gradients of the outputs (`None`: no gradient reached
    /// that output, treat as zero). Return `None` for inputs whose gradient is not needed.
    fn backward(
        self: Box<Self>,
        grad_outputs: Vec<Option<Tensor>>,
        needs_input_grad: &[bool],
    ) -> Vec<Option<Tensor>>;
}

struct OpRecord {
    name: String,
    /// Index of this op's entry in the profile, when the tape profiles.
    timing: Option<usize>,
    inputs: Vec<Option<usize>>,
    input_shapes: Vec<Vec<usize>>,
    outputs: Vec<usize>,
    backward: BackwardFn,
}

#[derive(Default)]
struct Inner {
    next_id: usize,
    ops: Vec<OpRecord>,
    /// Leaves created with [`Tape::var`] or [`Tape::param`]: id → parameter, if any.
    leaves: Vec<(usize, Option<Parameter>)>,
    spent: bool,
}

/// Time spent in one op, as a profiling tape ([`Tape::profiled`]) measured it.
#[derive(Clone, Debug, PartialEq)]
pub struct OpTime {
    /// The [`Tape::scope`] the op ran in (empty outside any).
    pub scope: String,
    /// The op's name.
    pub op: String,
    /// Wall time from the previous op's end to this op's end: its own forward
    /// computation plus whatever ran between the two.
    pub forward: Duration,
    /// Wall time of its backward (zero when backward did not reach it).
    pub backward: Duration,
}

/// What a profiling tape keeps.
struct Profile {
    last: Instant,
    times: Vec<OpTime>,
}

/// Records ops for reverse-mode differentiation. Create one per forward pass.
///
/// A tape made with [`Tape::eval`] (or switched with [`Tape::set_recording`]) records
/// nothing: ops compute their values and keep no backward state.
pub struct Tape {
    inner: RefCell<Inner>,
    recording: std::cell::Cell<bool>,
    scope: RefCell<String>,
    profile: Option<RefCell<Profile>>,
}

impl Default for Tape {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Tape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.borrow();
        f.debug_struct("Tape")
            .field("recording", &self.recording.get())
            .field("ops", &inner.ops.len())
            .field("leaves", &inner.leaves.len())
            .finish()
    }
}

impl Tape {
    /// A tape that records ops for a backward pass.
    pub fn new() -> Self {
        Tape {
            inner: RefCell::new(Inner::default()),
            recording: std::cell::Cell::new(true),
            scope: RefCell::new(String::new()),
            profile: None,
        }
    }

    /// A recording tape that also times every op, forward and backward, by the scope it
    /// ran in (like `torch.profiler` with `record_function`); read with
    /// [`Tape::op_times`]. Switch recording off for an inference profile.
    pub fn profiled() -> Self {
        Tape {
            profile: Some(RefCell::new(Profile {
                last: Instant::now(),
                times: Vec::new(),
            })),
            ..Self::new()
        }
    }

    /// Runs `f` with the ops it records labelled `name` in the profile.
    pub fn scope<R>(&self, name: &str, f: impl FnOnce() -> R) -> R {
        let outer = self.scope.replace(name.to_string());
        let out = f();
        *self.scope.borrow_mut() = outer;
        out
    }

    /// The times a [`Tape::profiled`] tape measured, in the order the ops ran (empty for
    /// other tapes).
    pub fn op_times(&self) -> Vec<OpTime> {
        self.profile
            .as_ref()
            .map(|p| p.borrow().times.clone())
            .unwrap_or_default()
    }

    /// Closes the forward time of op `name` in the profile; its index there.
    fn time_forward(&self, name: &str) -> Option<usize> {
        let mut p = self.profile.as_ref()?.borrow_mut();
        let now = Instant::now();
        let forward = now - p.last;
        p.last = now;
        p.times.push(OpTime {
            scope: self.scope.borrow().clone(),
            op: name.to_string(),
            forward,
            backward: Duration::ZERO,
        });
        Some(p.times.len() - 1)
    }

    /// A tape in evaluation mode: nothing is recorded, nothing kept for backward.
    pub fn eval() -> Self {
        let tape = Self::new();
        tape.set_recording(false);
        tape
    }

    /// Switches recording on or off for the ops that follow.
    pub fn set_recording(&self, on: bool) {
        self.recording.set(on);
    }

    /// Whether ops are being recorded now.
    pub fn is_recording(&self) -> bool {
        self.recording.get()
    }

    /// Runs `f` with recording off (like `torch.no_grad()`), then restores the mode.
    pub fn no_grad<R>(&self, f: impl FnOnce() -> R) -> R {
        let was = self.recording.replace(false);
        let out = f();
        self.recording.set(was);
        out
    }

    /// Number of ops recorded so far (and not yet consumed by backward).
    pub fn len(&self) -> usize {
        self.inner.borrow().ops.len()
    }

    /// Whether no op has been recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn fresh_id(&self) -> usize {
        let mut inner = self.inner.borrow_mut();
        inner.next_id += 1;
        inner.next_id - 1
    }

    /// A constant: a value that never receives a gradient (data, targets); a
    /// [`BitTensor`] stays bits (binary input spikes).
    pub fn constant(&self, value: impl Into<Value>) -> Var<'_> {
        let value = match value.into() {
            Value::Dense(t) => Value::Dense(contiguous(t)),
            bits => bits,
        };
        Var::untracked(self, Stored::new(value))
    }

    /// A leaf that receives a gradient, read back with [`Gradients::get`].
    pub fn var(&self, value: Tensor) -> Var<'_> {
        self.leaf(Arc::new(contiguous(value)), None)
    }

    /// A parameter as a leaf: after [`Var::backward`] its gradient is added to
    /// [`Parameter::grad`]. The value is shared with the parameter, not copied.
    pub fn param(&self, p: &Parameter) -> Var<'_> {
        self.leaf(p.shared_value(), Some(p.clone()))
    }

    fn leaf(&self, value: Arc<Tensor>, param: Option<Parameter>) -> Var<'_> {
        if !self.is_recording() {
            return Var::untracked(self, Stored::Dense(value));
        }
        let id = self.fresh_id();
        self.inner.borrow_mut().leaves.push((id, param));
        Var {
            tape: self,
            id: Some(id),
            value: Stored::Dense(value),
            nonzero_grad_only: false,
        }
    }

    /// Records an op given its already computed outputs and its backward closure: the
    /// one mechanism behind every built-in op and [`Tape::apply`].
    ///
    /// `backward` is only kept when the tape records and some input needs a gradient;
    /// otherwise the outputs are returned as constants.
    ///
    /// An output may be a [`BitTensor`] (binary values kept as bits, see [`Var::bits`]).
    #[track_caller]
    pub fn record<V: Into<Value>>(
        &self,
        name: &str,
        inputs: &[&Var<'_>],
        outputs: Vec<V>,
        backward: BackwardFn,
    ) -> Vec<Var<'_>> {
        let timing = self.time_forward(name);
        let tracked = self.is_recording() && inputs.iter().any(|v| v.requires_grad());
        let values: Vec<Stored> = outputs.into_iter().map(|v| Stored::new(v.into())).collect();
        if !tracked {
            return values
                .into_iter()
                .map(|value| Var::untracked(self, value))
                .collect();
        }
        for v in inputs {
            assert!(
                std::ptr::eq(v.tape, self),
                "op `{name}`: an input belongs to another tape"
            );
        }
        let vars: Vec<Var<'_>> = values
            .into_iter()
            .map(|value| Var {
                tape: self,
                id: Some(self.fresh_id()),
                value,
                nonzero_grad_only: false,
            })
            .collect();
        self.inner.borrow_mut().ops.push(OpRecord {
            name: name.to_string(),
            timing,
            inputs: inputs.iter().map(|v| v.id).collect(),
            input_shapes: inputs.iter().map(|v| v.shape().to_vec()).collect(),
            outputs: vars.iter().map(|v| v.id.expect("tracked")).collect(),
            backward,
        });
        vars
    }

    /// Applies a user-defined [`Function`] to `inputs`, recording its backward.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use autograd::{Function, Tape, Tensor};
    /// use autograd::ndarray::IxDyn;
    ///
    /// /// `softplus(x) = ln(1 + eˣ)`, with `σ(x)` as its derivative.
    /// struct Softplus {
    ///     x: Option<Arc<Tensor>>,
    /// }
    ///
    /// impl Function for Softplus {
    ///     fn name(&self) -> &str {
    ///         "softplus"
    ///     }
    ///     fn forward(&mut self, inputs: &[Arc<Tensor>], record: bool) -> Vec<Tensor> {
    ///         if record {
    ///             self.x = Some(inputs[0].clone()); // kept only when backward will run
    ///         }
    ///         vec![inputs[0].mapv(|x| x.exp().ln_1p())]
    ///     }
    ///     fn backward(self: Box<Self>, g: Vec<Option<Tensor>>, _: &[bool]) -> Vec<Option<Tensor>> {
    ///         let (x, g) = (self.x.expect("saved"), g[0].clone().expect("one output"));
    ///         vec![Some(g * &x.mapv(|x| 1.0 / (1.0 + (-x).exp())))]
    ///     }
    /// }
    ///
    /// let tape = Tape::new();
    /// let x = tape.var(Tensor::from_shape_vec(IxDyn(&[3]), vec![-1.0, 0.0, 2.0]).unwrap());
    /// let y = tape.apply(Softplus { x: None }, &[&x]).remove(0);
    /// let grads = y.sum().backward();
    /// assert!((grads.get(&x).unwrap()[1] - 0.5).abs() < 1e-6);
    /// // The same op checked against finite differences:
    /// autograd::assert_gradients(vec![x.value().clone()], |v| {
    ///     v[0].tape().apply(Softplus { x: None }, &[&v[0]]).remove(0)
    /// });
    /// ```
    #[track_caller]
    pub fn apply<F: Function>(&self, mut f: F, inputs: &[&Var<'_>]) -> Vec<Var<'_>> {
        let record = self.is_recording() && inputs.iter().any(|v| v.requires_grad());
        let values: Vec<Arc<Tensor>> = inputs.iter().map(|v| v.shared()).collect();
        let outputs = f.forward(&values, record);
        let name = f.name().to_string();
        let f = Box::new(f);
        self.record(
            &name,
            inputs,
            outputs,
            Box::new(move |g, needs| f.backward(g, needs)),
        )
    }

    fn backward_from(&self, root: &Var<'_>, seed: Tensor) -> Result<Gradients, BackwardError> {
        if seed.shape() != root.shape() {
            return Err(BackwardError::SeedShape {
                value: root.shape().to_vec(),
                seed: seed.shape().to_vec(),
            });
        }
        if self.inner.borrow().spent {
            return Err(BackwardError::AlreadyRun);
        }
        let Some(root_id) = root.id else {
            return Err(BackwardError::NothingRequiresGrad {
                recording: self.is_recording(),
            });
        };
        let (ops, leaves, next_id) = {
            let mut inner = self.inner.borrow_mut();
            inner.spent = true;
            (
                std::mem::take(&mut inner.ops),
                std::mem::take(&mut inner.leaves),
                inner.next_id,
            )
        };
        let mut grads: Vec<Option<Tensor>> = (0..next_id).map(|_| None).collect();
        grads[root_id] = Some(seed);
        for op in ops.into_iter().rev() {
            let outs: Vec<Option<Tensor>> = op.outputs.iter().map(|&i| grads[i].take()).collect();
            if outs.iter().all(Option::is_none) {
                continue;
            }
            let needs: Vec<bool> = op.inputs.iter().map(Option::is_some).collect();
            let start = Instant::now();
            let in_grads = (op.backward)(outs, &needs);
            if let (Some(p), Some(i)) = (&self.profile, op.timing) {
                p.borrow_mut().times[i].backward = start.elapsed();
            }
            assert_eq!(
                in_grads.len(),
                op.inputs.len(),
                "op `{}`: backward returned {} gradients for {} inputs",
                op.name,
                in_grads.len(),
                op.inputs.len()
            );
            for ((input, shape), g) in op.inputs.iter().zip(&op.input_shapes).zip(in_grads) {
                let (Some(id), Some(g)) = (input, g) else {
                    continue;
                };
                assert_eq!(
                    g.shape(),
                    &shape[..],
                    "op `{}`: gradient shape does not match its input",
                    op.name
                );
                match &mut grads[*id] {
                    Some(acc) => *acc += &g,
                    slot => *slot = Some(g),
                }
            }
        }
        let mut out = Gradients::default();
        for (id, param) in leaves {
            let Some(g) = grads[id].take() else { continue };
            match param {
                Some(p) => p.accumulate_grad(g),
                None => {
                    out.grads.insert(id, g);
                }
            }
        }
        Ok(out)
    }
}

/// Why a backward pass could not run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackwardError {
    /// [`Var::backward`] on a value with more than one element.
    NotScalar {
        /// The value's shape.
        shape: Vec<usize>,
    },
    /// The seed gradient of [`Var::backward_with`] has another shape than the value.
    SeedShape {
        /// The value's shape.
        value: Vec<usize>,
        /// The seed's shape.
        seed: Vec<usize>,
    },
    /// No parameter or variable reached the value through recorded ops: there is nothing to
    /// differentiate (an optimizer step after it would change nothing).
    NothingRequiresGrad {
        /// Whether the tape was recording (an evaluation tape records nothing).
        recording: bool,
    },
    /// Backward already ran on this tape (a tape supports one).
    AlreadyRun,
}

impl fmt::Display for BackwardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackwardError::NotScalar { shape } => write!(
                f,
                "backward needs a scalar (one element), got shape {shape:?}; use backward_with \
                 and a seed gradient for others"
            ),
            BackwardError::SeedShape { value, seed } => write!(
                f,
                "backward_with: the seed gradient has shape {seed:?}, the value {value:?}"
            ),
            BackwardError::NothingRequiresGrad { recording: true } => write!(
                f,
                "backward: the value does not depend on anything that requires a gradient \
                 (no Tape::param or Tape::var reached it through recorded ops; was it \
                 detached or computed from constants only?)"
            ),
            BackwardError::NothingRequiresGrad { recording: false } => write!(
                f,
                "backward: the value was computed with recording off (Tape::eval, no_grad or \
                 set_recording(false)), so nothing was recorded to differentiate"
            ),
            BackwardError::AlreadyRun => write!(f, "backward has already run on this tape"),
        }
    }
}

impl std::error::Error for BackwardError {}

/// How a [`Var`] holds its value: `f32` values, or bits whose values are expanded once,
/// when first asked for, and shared by every clone of the `Var`.
#[derive(Clone)]
enum Stored {
    Dense(Arc<Tensor>),
    Bits(Arc<BitTensor>, Arc<OnceLock<Arc<Tensor>>>),
}

impl Stored {
    fn new(value: Value) -> Self {
        match value {
            Value::Dense(t) => Stored::Dense(Arc::new(t)),
            Value::Bits(b) => Stored::Bits(Arc::new(b), Arc::default()),
        }
    }

    fn dense(&self) -> &Arc<Tensor> {
        match self {
            Stored::Dense(t) => t,
            Stored::Bits(b, values) => values.get_or_init(|| Arc::new(b.to_tensor())),
        }
    }

    fn shape(&self) -> &[usize] {
        match self {
            Stored::Dense(t) => t.shape(),
            Stored::Bits(b, _) => b.shape(),
        }
    }
}

/// A value on a tape: the result of an op, a leaf or a constant. Cloning is cheap (the
/// value is shared).
#[derive(Clone)]
pub struct Var<'t> {
    tape: &'t Tape,
    /// `Some` when this value is part of the recorded graph (it needs a gradient).
    id: Option<usize>,
    value: Stored,
    /// See [`Var::grad_where_nonzero`].
    nonzero_grad_only: bool,
}

impl fmt::Debug for Var<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Var")
            .field("id", &self.id)
            .field("shape", &self.shape())
            .finish()
    }
}

impl<'t> Var<'t> {
    fn untracked(tape: &'t Tape, value: Stored) -> Self {
        Var {
            tape,
            id: None,
            value,
            nonzero_grad_only: false,
        }
    }

    /// The tape this value lives on.
    pub fn tape(&self) -> &'t Tape {
        self.tape
    }

    /// The value (expanded from bits the first time, when the op that made it gave bits).
    pub fn value(&self) -> &Tensor {
        self.value.dense()
    }

    /// The value as bits, when the op that made it gave a [`BitTensor`]: what ops that read
    /// bits take instead of [`Var::value`].
    pub fn bits(&self) -> Option<&Arc<BitTensor>> {
        match &self.value {
            Stored::Bits(b, _) => Some(b),
            Stored::Dense(_) => None,
        }
    }

    /// The value as a shared handle (for custom ops that save it for backward).
    pub fn shared(&self) -> Arc<Tensor> {
        self.value.dense().clone()
    }

    /// The shape of the value.
    pub fn shape(&self) -> &[usize] {
        self.value.shape()
    }

    /// The single element of a one-element value.
    ///
    /// # Panics
    /// If the value has more than one element.
    #[track_caller]
    pub fn item(&self) -> f32 {
        assert_eq!(
            self.value().len(),
            1,
            "item() needs one element, got shape {:?}",
            self.shape()
        );
        *self.value().iter().next().expect("one element")
    }

    /// Whether a gradient will flow to this value in backward.
    pub fn requires_grad(&self) -> bool {
        self.id.is_some()
    }

    /// The same value, declared to need its gradient only where it is nonzero: ops that
    /// consume it may skip the rest and leave its gradient at zero there. For values whose
    /// own backward reads the gradient only at their nonzero entries, such as spikes under
    /// a surrogate that vanishes where no spike was emitted; linear, conv2d and
    /// conv_transpose2d then take event-driven input-gradient kernels. [`Var::reshape`]
    /// keeps the declaration.
    pub fn grad_where_nonzero(&self) -> Var<'t> {
        Var {
            nonzero_grad_only: true,
            ..self.clone()
        }
    }

    /// Whether [`Var::grad_where_nonzero`] declared this value.
    pub fn needs_grad_only_where_nonzero(&self) -> bool {
        self.nonzero_grad_only
    }

    /// The same value cut from the graph: no gradient flows through it.
    pub fn detach(&self) -> Var<'t> {
        Var::untracked(self.tape, self.value.clone())
    }

    /// Reverse-mode differentiation from this scalar: adds gradients to the parameters
    /// reached and returns the gradients of the [`Tape::var`] leaves. Consumes the tape's
    /// records; a tape supports one backward.
    ///
    /// # Panics
    /// Where [`Var::try_backward`] returns an error: this value is not a scalar, nothing
    /// that requires a gradient reached it, or backward already ran on the tape.
    #[track_caller]
    pub fn backward(&self) -> Gradients {
        self.try_backward().unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Var::backward`], returning the reason instead of panicking when it cannot run.
    pub fn try_backward(&self) -> Result<Gradients, BackwardError> {
        if self.shape().iter().product::<usize>() != 1 {
            return Err(BackwardError::NotScalar {
                shape: self.shape().to_vec(),
            });
        }
        self.tape.backward_from(self, Tensor::ones(self.shape()))
    }

    /// Reverse-mode differentiation seeded with `grad` = ∂L/∂self for a value of any
    /// shape (PyTorch's `y.backward(gradient)`), otherwise as [`Var::backward`].
    ///
    /// # Panics
    /// Where [`Var::try_backward_with`] returns an error.
    #[track_caller]
    pub fn backward_with(&self, grad: Tensor) -> Gradients {
        self.try_backward_with(grad)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Var::backward_with`], returning the reason instead of panicking when it cannot run.
    pub fn try_backward_with(&self, grad: Tensor) -> Result<Gradients, BackwardError> {
        self.tape.backward_from(self, grad)
    }

    /// Applies a single-output op: `forward` is the computed value, `backward` maps the
    /// output gradient to the input gradients.
    #[track_caller]
    pub(crate) fn unary_op(
        &self,
        name: &str,
        out: Tensor,
        backward: impl FnOnce(Tensor, &[bool]) -> Vec<Option<Tensor>> + 'static,
    ) -> Var<'t> {
        op1(self.tape, name, &[self], out, backward)
    }
}

/// Records a single-output op; `backward` runs only when its output got a gradient.
#[track_caller]
pub(crate) fn op1<'t>(
    tape: &'t Tape,
    name: &str,
    inputs: &[&Var<'t>],
    out: Tensor,
    backward: impl FnOnce(Tensor, &[bool]) -> Vec<Option<Tensor>> + 'static,
) -> Var<'t> {
    let bw: BackwardFn =
        Box::new(move |mut g, needs| backward(g.pop().flatten().expect("output gradient"), needs));
    tape.record(name, inputs, vec![out], bw)
        .pop()
        .expect("one output")
}

/// Gradients of the [`Tape::var`] leaves after a backward pass.
#[derive(Default, Debug)]
pub struct Gradients {
    grads: HashMap<usize, Tensor>,
}

impl Gradients {
    /// The gradient of a leaf, if any reached it.
    pub fn get(&self, v: &Var<'_>) -> Option<&Tensor> {
        v.id.and_then(|id| self.grads.get(&id))
    }
}

struct ParamCell {
    value: Mutex<Arc<Tensor>>,
    grad: Mutex<Option<Arc<Tensor>>>,
}

/// Locks a parameter's slot. A panic while the lock was held (in a user's closure passed
/// to [`Parameter::update`]) leaves a complete tensor behind, so a poisoned lock is used.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A named trainable tensor that lives across tapes, with its accumulated gradient.
/// Cloning gives another handle to the same parameter (as does [`Parameter::renamed`],
/// under another name). `Send + Sync`: a model can move to another thread or be shared
/// by several (each with its own tape).
#[derive(Clone)]
pub struct Parameter {
    /// The name of this handle: what checkpoints and optimizer state key it by.
    name: Arc<str>,
    cell: Arc<ParamCell>,
}

impl fmt::Debug for Parameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parameter")
            .field("name", &self.name)
            .field("shape", &self.shape())
            .finish()
    }
}

impl Parameter {
    /// A parameter with a name (used by checkpoints) and an initial value.
    pub fn new(name: impl Into<String>, value: Tensor) -> Self {
        Parameter {
            name: Arc::from(name.into()),
            cell: Arc::new(ParamCell {
                value: Mutex::new(Arc::new(contiguous(value))),
                grad: Mutex::new(None),
            }),
        }
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Another handle to the same value and gradient, under `name`: how a module gives
    /// its layers' parameters their paths (`encoder.fc.weight`) for optimizers and
    /// checkpoints.
    pub fn renamed(&self, name: impl Into<String>) -> Parameter {
        Parameter {
            name: Arc::from(name.into()),
            cell: self.cell.clone(),
        }
    }

    /// Whether two handles share one value (whatever their names).
    pub fn same_as(&self, other: &Parameter) -> bool {
        Arc::ptr_eq(&self.cell, &other.cell)
    }

    /// The shape.
    pub fn shape(&self) -> Vec<usize> {
        lock(&self.cell.value).shape().to_vec()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        lock(&self.cell.value).len()
    }

    /// Whether the parameter has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The current value.
    pub fn value(&self) -> Arc<Tensor> {
        self.shared_value()
    }

    fn shared_value(&self) -> Arc<Tensor> {
        lock(&self.cell.value).clone()
    }

    /// Replaces the value.
    ///
    /// # Panics
    /// If the new value's shape differs.
    #[track_caller]
    pub fn set_value(&self, value: Tensor) {
        assert_eq!(
            value.shape(),
            &self.shape()[..],
            "parameter `{}`: new value has another shape",
            self.name()
        );
        *lock(&self.cell.value) = Arc::new(contiguous(value));
    }

    /// Updates the value in place (copying it first only if a tape still holds it).
    pub fn update(&self, f: impl FnOnce(&mut Tensor)) {
        let mut v = lock(&self.cell.value);
        f(Arc::make_mut(&mut v));
    }

    /// The accumulated gradient, `None` until a backward pass reached this parameter: a
    /// snapshot that stays valid (and unchanged) across later `zero_grad`s and backwards.
    pub fn grad(&self) -> Option<Arc<Tensor>> {
        lock(&self.cell.grad).clone()
    }

    /// Modifies the accumulated gradient in place, if there is one (clipping, scaling).
    pub fn update_grad(&self, f: impl FnOnce(&mut Tensor)) {
        if let Some(g) = lock(&self.cell.grad).as_mut() {
            f(Arc::make_mut(g));
        }
    }

    /// Forgets the accumulated gradient.
    pub fn zero_grad(&self) {
        *lock(&self.cell.grad) = None;
    }

    fn accumulate_grad(&self, g: Tensor) {
        let mut slot = lock(&self.cell.grad);
        match slot.as_mut() {
            Some(acc) => *Arc::make_mut(acc) += &g,
            None => *slot = Some(Arc::new(g)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{assert_gradients, random};
    use ndarray::IxDyn;

    #[test]
    fn profiled_tape_times_each_op_in_its_scope() {
        let tape = Tape::profiled();
        let x = tape.var(random(&[4, 3], -1.0, 1.0, 1));
        let y = tape.scope("layer", || x.relu().sum());
        let z = &y * 2.0;
        z.backward();
        let times = tape.op_times();
        let ops: Vec<(&str, &str)> = times
            .iter()
            .map(|t| (t.scope.as_str(), t.op.as_str()))
            .collect();
        assert_eq!(ops.len(), 3, "{ops:?}");
        assert!(
            ops[..2].iter().all(|(scope, _)| *scope == "layer"),
            "{ops:?}"
        );
        assert_eq!(ops[2].0, "");
        assert!(times.iter().all(|t| t.backward > Duration::ZERO));
        assert!(Tape::new().op_times().is_empty());
    }

    /// A two-output op, `x ↦ (max(x, 0), min(x, 0))`, written as a [`Function`].
    struct SplitSigns {
        x: Option<Arc<Tensor>>,
    }

    impl Function for SplitSigns {
        fn name(&self) -> &str {
            "split_signs"
        }

        fn forward(&mut self, inputs: &[Arc<Tensor>], record: bool) -> Vec<Tensor> {
            if record {
                self.x = Some(inputs[0].clone());
            }
            vec![
                inputs[0].mapv(|v| v.max(0.0)),
                inputs[0].mapv(|v| v.min(0.0)),
            ]
        }

        fn backward(self: Box<Self>, g: Vec<Option<Tensor>>, _: &[bool]) -> Vec<Option<Tensor>> {
            let x = self.x.expect("saved in forward");
            let mut gx = Tensor::zeros(x.raw_dim());
            for (out, g) in g.iter().enumerate() {
                let Some(g) = g else { continue };
                ndarray::Zip::from(&mut gx)
                    .and(g)
                    .and(&*x)
                    .for_each(|gx, &g, &x| {
                        if (x > 0.0) == (out == 0) {
                            *gx += g;
                        }
                    });
            }
            vec![Some(gx)]
        }
    }

    fn away_from_zero(seed: u64) -> Tensor {
        random(&[3, 4], -1.0, 1.0, seed).mapv(|x| if x.abs() < 0.1 { x + 0.25 } else { x })
    }

    #[test]
    fn custom_function_with_two_outputs() {
        let x = away_from_zero(1);
        assert_gradients(vec![x.clone()], |v| {
            let outs = v[0].tape().apply(SplitSigns { x: None }, &[&v[0]]);
            &outs[0] * 2.0 + &outs[1] * &outs[1]
        });
        // Only one output used: the other's gradient arrives as `None`.
        assert_gradients(vec![x], |v| {
            v[0].tape().apply(SplitSigns { x: None }, &[&v[0]])[1].clone()
        });
    }

    #[test]
    fn eval_mode_records_nothing() {
        let p = Parameter::new("w", random(&[3], -1.0, 1.0, 2));
        let tape = Tape::eval();
        let y = (&tape.param(&p) * 3.0).exp().sum();
        assert!(!y.requires_grad());
        assert!(tape.is_empty());
        let tape = Tape::new();
        let w = tape.param(&p);
        let y = tape.no_grad(|| w.exp().sum());
        assert!(!y.requires_grad() && tape.is_empty());
        assert!(w.exp().requires_grad() && tape.len() == 1);
    }

    #[test]
    fn constants_are_not_recorded() {
        let tape = Tape::new();
        let c = tape.constant(random(&[4], 0.0, 1.0, 3));
        let y = (&c * &c).sum();
        assert!(!y.requires_grad() && tape.is_empty());
    }

    #[test]
    fn detach_stops_the_gradient() {
        let tape = Tape::new();
        let x = tape.var(Tensor::from_elem(IxDyn(&[2]), 3.0));
        // y = x·stop(x): dy/dx = stop(x) = 3, not 2x = 6.
        let g = (&x * &x.detach()).sum().backward();
        assert!(g.get(&x).unwrap().iter().all(|&v| v == 3.0));
    }

    #[test]
    fn parameter_gradients_accumulate_until_zeroed() {
        let p = Parameter::new("w", Tensor::from_elem(IxDyn(&[2]), 1.0));
        for _ in 0..2 {
            let tape = Tape::new();
            let w = tape.param(&p);
            // Used twice on one tape: both uses add up.
            (&w * 2.0 + &w).sum().backward();
        }
        assert!(p.grad().unwrap().iter().all(|&g| g == 6.0));
        p.zero_grad();
        assert!(p.grad().is_none());
    }

    #[test]
    fn unused_leaves_get_no_gradient() {
        let tape = Tape::new();
        let x = tape.var(Tensor::from_elem(IxDyn(&[2]), 1.0));
        let unused = tape.var(Tensor::from_elem(IxDyn(&[2]), 1.0));
        let g = x.sum().backward();
        assert!(g.get(&x).is_some() && g.get(&unused).is_none());
    }

    #[test]
    #[should_panic(expected = "scalar")]
    fn backward_needs_a_scalar() {
        let tape = Tape::new();
        tape.var(Tensor::zeros(IxDyn(&[2]))).exp().backward();
    }

    #[test]
    fn backward_with_a_seed_gradient() {
        let tape = Tape::new();
        let x = tape.var(Tensor::from_elem(IxDyn(&[3]), 2.0));
        let seed = Tensor::from_shape_vec(IxDyn(&[3]), vec![1.0, 2.0, 3.0]).unwrap();
        let g = x.square().backward_with(seed);
        assert_eq!(g.get(&x).unwrap().as_slice().unwrap(), &[4.0, 8.0, 12.0]);
    }

    #[test]
    fn backward_without_anything_trainable_is_an_error() {
        let tape = Tape::new();
        let c = tape.constant(Tensor::ones(IxDyn(&[2])));
        let err = c.exp().sum().try_backward().unwrap_err();
        assert_eq!(err, BackwardError::NothingRequiresGrad { recording: true });
        assert!(
            err.to_string().contains("does not depend on anything"),
            "{err}"
        );
        let p = Parameter::new("w", Tensor::ones(IxDyn(&[2])));
        let tape = Tape::eval();
        let err = tape.param(&p).sum().try_backward().unwrap_err();
        assert!(err.to_string().contains("recording off"), "{err}");
        let tape = Tape::new();
        let x = tape.var(Tensor::ones(IxDyn(&[2])));
        let err = x.detach().sum().try_backward().unwrap_err();
        assert_eq!(err, BackwardError::NothingRequiresGrad { recording: true });
        // An error leaves the tape usable.
        assert!(x.sum().try_backward().is_ok());
    }

    #[test]
    fn parameters_are_send_and_sync_and_gradients_are_snapshots() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Parameter>();
        let p = Parameter::new("w", Tensor::ones(IxDyn(&[2])));
        let tape = Tape::new();
        tape.param(&p).sum().backward();
        let g = p.grad().unwrap();
        p.zero_grad(); // holding `g` is fine
        assert!(p.grad().is_none() && g.iter().all(|&v| v == 1.0));
        let q = p.clone();
        std::thread::spawn(move || {
            let tape = Tape::new();
            (&tape.param(&q) * 3.0).sum().backward();
        })
        .join()
        .unwrap();
        assert!(p.grad().unwrap().iter().all(|&v| v == 3.0));
    }

    #[test]
    #[should_panic(expected = "already run")]
    fn backward_runs_once() {
        let tape = Tape::new();
        let y = tape.var(Tensor::zeros(IxDyn(&[2]))).sum();
        y.backward();
        y.backward();
    }
}
