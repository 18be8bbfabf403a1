//! The tensor type and the broadcasting helpers every op shares.

use std::sync::Arc;

use kernels::event::Input;
use ndarray::{ArrayD, Axis, IxDyn, Zip};
use rayon::iter::ParallelExtend;

use crate::Var;
use crate::bits::BitTensor;

/// The value type: a dynamic-rank, row-major `f32` array.
pub type Tensor = ArrayD<f32>;

/// The named tensors that hold NaN or infinite values, each as "`name` (k of n values
/// NaN or infinite)": what a divergence check reports. Empty when all are finite.
pub fn non_finite<'a>(tensors: impl IntoIterator<Item = (&'a str, &'a Tensor)>) -> Vec<String> {
    tensors
        .into_iter()
        .filter_map(|(name, t)| {
            let bad = t.iter().filter(|v| !v.is_finite()).count();
            (bad > 0).then(|| format!("`{name}` ({bad} of {} values NaN or infinite)", t.len()))
        })
        .collect()
}

/// Fewest elements [`zeros`] writes with all threads.
const PAR_ZEROS_MIN: usize = 1 << 16;

/// A tensor of zeros, written by all threads when it is large: an allocator hands a
/// recycled block back as it was, and zeroing it is then a full pass over it, which one
/// thread would otherwise make while the others wait.
pub fn zeros(shape: &[usize]) -> Tensor {
    let values = zeroed(shape.iter().product());
    Tensor::from_shape_vec(IxDyn(shape), values).expect("one value per element")
}

/// `n` zeros, as [`zeros`] writes them.
pub fn zeroed(n: usize) -> Vec<f32> {
    if n < PAR_ZEROS_MIN {
        return vec![0.0; n];
    }
    let mut values = Vec::with_capacity(n);
    values.par_extend(rayon::iter::repeat_n(0.0f32, n));
    values
}

/// `t` in row-major layout: moved as is when it already is, copied otherwise. Every
/// value on a tape is contiguous, so kernels can take it as a slice.
pub fn contiguous(t: Tensor) -> Tensor {
    if t.is_standard_layout() {
        t
    } else {
        t.as_standard_layout().into_owned()
    }
}

/// A value an op keeps for its backward pass. A binary one (every element 0 or 1: spikes)
/// is kept as bits, 32 times smaller: as it is when the value already is bits
/// ([`Var::bits`](crate::Var::bits)), packed otherwise, and expanded again only where
/// backward needs `f32` values; any other is shared as it is.
pub(crate) enum Saved {
    Shared(Arc<Tensor>),
    Bits(Arc<BitTensor>),
}

impl Saved {
    /// Keeps `t`, packed if it is binary. One parallel pass checks and packs
    /// (`kernels::bits`).
    pub(crate) fn new(t: Arc<Tensor>) -> Self {
        let packed = t.as_slice().and_then(kernels::bits::pack_binary);
        match packed {
            Some(words) => Saved::Bits(Arc::new(BitTensor::from_words(words, t.shape()))),
            None => Saved::Shared(t),
        }
    }

    /// Holds `v`'s value as it is, bits or values, for an op's forward pass to read
    /// ([`Saved::input`]) without expanding bits; [`Saved::kept`] then makes what backward
    /// keeps of it.
    pub(crate) fn hold(v: &Var<'_>) -> Self {
        match v.bits() {
            Some(b) => Saved::Bits(b.clone()),
            None => Saved::Shared(v.shared()),
        }
    }

    /// What backward keeps of a held value: bits as they are, values packed if binary.
    pub(crate) fn kept(self) -> Self {
        match self {
            Saved::Shared(t) => Saved::new(t),
            bits => bits,
        }
    }

    /// The value as the event kernels read it.
    pub(crate) fn input(&self) -> Input<'_> {
        match self {
            Saved::Shared(t) => Input::Values(t.as_slice().expect("tape values are contiguous")),
            Saved::Bits(b) => Input::Bits(b.as_bits()),
        }
    }

    /// The value's shape.
    pub(crate) fn shape(&self) -> &[usize] {
        match self {
            Saved::Shared(t) => t.shape(),
            Saved::Bits(b) => b.shape(),
        }
    }

    /// The value again, as `f32` values.
    pub(crate) fn tensor(&self) -> Arc<Tensor> {
        match self {
            Saved::Shared(t) => t.clone(),
            Saved::Bits(b) => Arc::new(b.to_tensor()),
        }
    }
}

/// The shape NumPy broadcasting gives two shapes: align on the right; each pair of
/// dimensions must be equal or contain a 1.
///
/// # Panics
/// If the shapes do not broadcast.
#[track_caller]
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Vec<usize> {
    try_broadcast_shape(a, b).unwrap_or_else(|| panic!("shapes {a:?} and {b:?} do not broadcast"))
}

/// The shape op `op`'s operands broadcast to.
///
/// # Panics
/// If they do not broadcast, naming the op and both shapes.
#[track_caller]
pub fn broadcast_for(op: &str, a: &[usize], b: &[usize]) -> Vec<usize> {
    try_broadcast_shape(a, b)
        .unwrap_or_else(|| panic!("{op}: shapes {a:?} and {b:?} do not broadcast"))
}

/// The shape NumPy broadcasting gives two shapes, `None` if they do not broadcast.
pub fn try_broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| {
        if i + s.len() >= n {
            s[i + s.len() - n]
        } else {
            1
        }
    };
    (0..n)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// `f(a, b)` elementwise over the broadcast shape of `a` and `b`.
#[track_caller]
pub fn zip_broadcast(a: &Tensor, b: &Tensor, f: impl Fn(f32, f32) -> f32) -> Tensor {
    if a.shape() == b.shape() {
        return Zip::from(a).and(b).map_collect(|&x, &y| f(x, y));
    }
    let shape = broadcast_shape(a.shape(), b.shape());
    let av = a.broadcast(IxDyn(&shape)).expect("broadcastable");
    let bv = b.broadcast(IxDyn(&shape)).expect("broadcastable");
    Zip::from(&av).and(&bv).map_collect(|&x, &y| f(x, y))
}

/// Sums a broadcast gradient back down to `shape`: over the leading axes `shape` lacks
/// and over the axes where `shape` has 1. The adjoint of broadcasting.
pub fn sum_to(g: Tensor, shape: &[usize]) -> Tensor {
    if g.shape() == shape {
        return g;
    }
    let mut g = g;
    while g.ndim() > shape.len() {
        g = g.sum_axis(Axis(0));
    }
    for (i, &d) in shape.iter().enumerate() {
        if d == 1 && g.shape()[i] != 1 {
            g = g.sum_axis(Axis(i)).insert_axis(Axis(i));
        }
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_values_come_back_unchanged() {
        let binary = Tensor::from_shape_fn(IxDyn(&[3, 45]), |i| {
            f32::from(u8::from((i[0] * 7 + i[1]) % 3 == 0))
        });
        let analog = binary.mapv(|v| v * 0.5);
        for t in [binary, analog, Tensor::zeros(IxDyn(&[0, 4]))] {
            let saved = Saved::new(Arc::new(t.clone()));
            assert_eq!(*saved.tensor(), t);
        }
        assert!(matches!(
            Saved::new(Arc::new(Tensor::ones(IxDyn(&[70])))),
            Saved::Bits(_)
        ));
    }

    #[test]
    fn broadcast_rules() {
        assert_eq!(broadcast_shape(&[2, 1, 4], &[3, 1]), vec![2, 3, 4]);
        assert_eq!(broadcast_shape(&[], &[5]), vec![5]);
        assert_eq!(broadcast_shape(&[0, 1], &[1, 3]), vec![0, 3]);
    }

    #[test]
    #[should_panic(expected = "do not broadcast")]
    fn broadcast_mismatch_panics() {
        broadcast_shape(&[2, 3], &[4]);
    }

    #[test]
    fn sum_to_is_adjoint_of_broadcast() {
        let g = Tensor::ones(IxDyn(&[2, 3, 4]));
        let s = sum_to(g, &[3, 1]);
        assert_eq!(s.shape(), &[3, 1]);
        assert!(s.iter().all(|&v| v == 8.0));
    }
}
