//! What a layer of LIF neurons carries from one time tile to the next: the state
//! `(v̂, c)` forward ([`LifState`]) and the adjoint `(Au, Ac)` backward ([`LifAdjoint`]),
//! and how a chunk task loads its piece of either into lanes and stores it back.

use wide::f32x8;

/// The state a layer of LIF neurons carries from one step to the next: the reset
/// potential `v̂` and the leaky cumulative potential `c`, one each per neuron. Starting
/// from [`LifState::new`] (all zero) is the recurrence's `v̂[−1] = c[−1] = 0`; passing
/// the state one call leaves to the next runs a long time axis in tiles, with the same
/// results as one call over all of it.
#[derive(Clone, Debug, PartialEq)]
pub struct LifState {
    vhat: Vec<f32>,
    c: Vec<f32>,
}

impl LifState {
    /// The resting state of `neurons` neurons.
    pub fn new(neurons: usize) -> Self {
        LifState {
            vhat: vec![0.0; neurons],
            c: vec![0.0; neurons],
        }
    }

    /// The state from its parts, `v̂` and `c`.
    ///
    /// # Panics
    /// If the two are not of one length.
    pub fn from_parts(vhat: Vec<f32>, c: Vec<f32>) -> Self {
        assert_eq!(vhat.len(), c.len(), "LifState: v̂ and c of unequal length");
        LifState { vhat, c }
    }

    /// `(v̂, c)`, consuming the state.
    pub fn into_parts(self) -> (Vec<f32>, Vec<f32>) {
        (self.vhat, self.c)
    }

    /// Number of neurons.
    pub fn neurons(&self) -> usize {
        self.vhat.len()
    }

    /// `v̂` after the last step run.
    pub fn reset_potential(&self) -> &[f32] {
        &self.vhat
    }

    /// `c` after the last step run.
    pub fn cumulative(&self) -> &[f32] {
        &self.c
    }

    /// Panics unless the state holds `neurons` neurons.
    pub(super) fn check(&self, kernel: &str, neurons: usize) {
        check_neurons(kernel, "state", self.neurons(), neurons);
    }

    /// `(v̂, c)` for [`carried_pieces`].
    pub(super) fn pair(&mut self) -> (&mut [f32], &mut [f32]) {
        (&mut self.vhat, &mut self.c)
    }
}

/// What the backward pass carries from one step to the one before, per neuron: the
/// adjoints `Au` and `Ac` of the [module docs](crate::lif). [`LifAdjoint::new`] (all zero) is
/// `Au[T] = Ac[T] = 0`; passing the adjoint one tile's backward leaves to the backward of
/// the tile before runs a long time axis backward in tiles, with the same results as one
/// call.
#[derive(Clone, Debug, PartialEq)]
pub struct LifAdjoint {
    au: Vec<f32>,
    ac: Vec<f32>,
}

impl LifAdjoint {
    /// The adjoint after the last step of a run: zero for `neurons` neurons.
    pub fn new(neurons: usize) -> Self {
        LifAdjoint {
            au: vec![0.0; neurons],
            ac: vec![0.0; neurons],
        }
    }

    /// The adjoint from its parts, `Au` and `Ac`.
    ///
    /// # Panics
    /// If the two are not of one length.
    pub fn from_parts(au: Vec<f32>, ac: Vec<f32>) -> Self {
        assert_eq!(
            au.len(),
            ac.len(),
            "LifAdjoint: Au and Ac of unequal length"
        );
        LifAdjoint { au, ac }
    }

    /// `(Au, Ac)`, consuming the adjoint.
    pub fn into_parts(self) -> (Vec<f32>, Vec<f32>) {
        (self.au, self.ac)
    }

    /// Number of neurons.
    pub fn neurons(&self) -> usize {
        self.au.len()
    }

    /// Panics unless the adjoint holds `neurons` neurons.
    pub(super) fn check(&self, kernel: &str, neurons: usize) {
        check_neurons(kernel, "adjoint", self.neurons(), neurons);
    }

    /// `(Au, Ac)` for [`carried_pieces`].
    pub(super) fn pair(&mut self) -> (&mut [f32], &mut [f32]) {
        (&mut self.au, &mut self.ac)
    }

    /// `(Au[i], Ac[i])` of neuron `i`, for the reference kernel.
    pub(super) fn at(&mut self, i: usize) -> (&mut f32, &mut f32) {
        (&mut self.au[i], &mut self.ac[i])
    }
}

impl LifState {
    /// `(v̂[i], c[i])` of neuron `i`, for the reference kernel.
    pub(super) fn at(&mut self, i: usize) -> (&mut f32, &mut f32) {
        (&mut self.vhat[i], &mut self.c[i])
    }
}

fn check_neurons(kernel: &str, what: &str, held: usize, neurons: usize) {
    assert_eq!(
        held, neurons,
        "{kernel}: the {what} holds {held} neurons, the layer {neurons}"
    );
}

/// A chunk's piece of a carried pair of per-neuron buffers, `(v̂, c)` forward or
/// `(Au, Ac)` backward; none when the run starts from zero.
pub(super) type Carried<'a> = Option<(&'a mut [f32], &'a mut [f32])>;

/// The pair cut into the pieces of `chunk` neurons the tasks take, or `chunks` nones.
pub(super) fn carried_pieces<'a>(
    pair: Option<(&'a mut [f32], &'a mut [f32])>,
    chunk: usize,
    chunks: usize,
) -> Vec<Carried<'a>> {
    match pair {
        Some((a, b)) => (a.chunks_mut(chunk).zip(b.chunks_mut(chunk)))
            .map(Some)
            .collect(),
        None => (0..chunks).map(|_| None).collect(),
    }
}

/// A chunk's carried values in lanes (eight neurons to a vector pair) and, for the last
/// `tail` neurons, in scalars: where a task keeps them while it walks the steps.
pub(super) struct ChunkState {
    pub(super) lanes: Vec<(f32x8, f32x8)>,
    pub(super) tail: ([f32; 8], [f32; 8]),
}

impl ChunkState {
    /// The state of `m` neurons: the carried piece, or zeros without one.
    pub(super) fn load(carried: &Carried<'_>, m: usize) -> Self {
        let (groups, tail) = (m / 8, m % 8);
        let mut state = ChunkState {
            lanes: vec![(f32x8::ZERO, f32x8::ZERO); groups],
            tail: ([0.0; 8], [0.0; 8]),
        };
        if let Some((a, b)) = carried {
            let from = a.chunks_exact(8).zip(b.chunks_exact(8));
            for ((a, b), (x, y)) in from.zip(&mut state.lanes) {
                (*x, *y) = (f32x8::new(lanes(a)), f32x8::new(lanes(b)));
            }
            state.tail.0[..tail].copy_from_slice(&a[groups * 8..]);
            state.tail.1[..tail].copy_from_slice(&b[groups * 8..]);
        }
        state
    }

    /// Writes the state back into the carried piece, if any.
    pub(super) fn store(&self, carried: &mut Carried<'_>) {
        if let Some((a, b)) = carried {
            let groups = self.lanes.len();
            let tail = a.len() - groups * 8;
            let to = a.chunks_exact_mut(8).zip(b.chunks_exact_mut(8));
            for ((a, b), (x, y)) in to.zip(&self.lanes) {
                a.copy_from_slice(x.as_array());
                b.copy_from_slice(y.as_array());
            }
            a[groups * 8..].copy_from_slice(&self.tail.0[..tail]);
            b[groups * 8..].copy_from_slice(&self.tail.1[..tail]);
        }
    }
}

fn lanes(x: &[f32]) -> [f32; 8] {
    x.try_into().expect("a chunk of eight")
}
