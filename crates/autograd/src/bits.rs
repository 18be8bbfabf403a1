//! [`BitTensor`]: a tensor whose every element is 0 or 1 (spikes, masks), kept one bit per
//! element. An op may give one as its output ([`Tape::record`](crate::Tape::record) takes
//! [`Value`]s); ops that read bits (the square convolutions, `linear`) take it as it is,
//! and any other op reads its `f32` values, expanded once when first asked for.

use std::sync::Arc;

use kernels::bits::{BitSlice, pack_binary, unpack_binary};
use ndarray::IxDyn;

use crate::Tensor;

/// A binary tensor, one bit per element in `kernels::bits` layout (row-major). Its words
/// are shared: clones and reshapes copy none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BitTensor {
    words: Arc<[u64]>,
    shape: Vec<usize>,
}

impl BitTensor {
    /// The tensor of shape `shape` whose elements `words` hold (bit `i` of word `k` is
    /// element `64·k + i`, row-major).
    ///
    /// # Panics
    /// If `words` does not hold exactly `⌈len/64⌉` words, or sets a bit past the last
    /// element.
    #[track_caller]
    pub fn from_words(words: Vec<u64>, shape: &[usize]) -> Self {
        let len: usize = shape.iter().product();
        assert_eq!(
            words.len(),
            len.div_ceil(64),
            "BitTensor: {} words cannot hold the {len} elements of shape {shape:?}",
            words.len()
        );
        if len % 64 != 0 {
            let last = words[words.len() - 1];
            assert_eq!(
                last >> (len % 64),
                0,
                "BitTensor: bits set past the last of {len} elements"
            );
        }
        BitTensor {
            words: words.into(),
            shape: shape.to_vec(),
        }
    }

    /// The same elements in shape `shape`, sharing the words.
    ///
    /// # Panics
    /// If `shape` holds another number of elements.
    #[track_caller]
    pub fn reshaped(&self, shape: &[usize]) -> Self {
        assert_eq!(
            shape.iter().product::<usize>(),
            self.len(),
            "BitTensor: cannot reshape {:?} to {shape:?}",
            self.shape
        );
        BitTensor {
            shape: shape.to_vec(),
            ..self.clone()
        }
    }

    /// `t` packed, when every element is 0.0 or 1.0 (−0.0 counts as 0.0); `None` otherwise.
    pub fn from_tensor(t: &Tensor) -> Option<Self> {
        let values = t.as_standard_layout();
        let words = pack_binary(values.as_slice().expect("standard layout"))?;
        Some(Self::from_words(words, t.shape()))
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of elements that are 1 (counted when asked: the LIF op makes a tensor of
    /// bits per layer and tile, and nothing on that path needs the count).
    pub fn ones(&self) -> usize {
        self.as_bits().count_ones()
    }

    /// The packed words.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// All elements, as the event kernels read them.
    pub fn as_bits(&self) -> BitSlice<'_> {
        BitSlice::new(&self.words, self.len())
    }

    /// The `f32` values, 0.0 or 1.0.
    pub fn to_tensor(&self) -> Tensor {
        let values = unpack_binary(&self.words, self.len());
        Tensor::from_shape_vec(IxDyn(&self.shape), values).expect("shape holds the elements")
    }
}

/// An op's output as it hands it to the tape: `f32` values, or bits.
#[derive(Clone, Debug)]
pub enum Value {
    /// Any values.
    Dense(Tensor),
    /// A binary tensor kept as bits.
    Bits(BitTensor),
}

impl From<Tensor> for Value {
    fn from(t: Tensor) -> Self {
        Value::Dense(t)
    }
}

impl From<BitTensor> for Value {
    fn from(b: BitTensor) -> Self {
        Value::Bits(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Var;
    use crate::gradcheck::random;

    #[test]
    fn packs_binary_tensors_and_counts_their_ones() {
        let t = random(&[3, 5, 7], 0.0, 1.0, 1).mapv(|u| f32::from(u8::from(u < 0.3)));
        let b = BitTensor::from_tensor(&t).expect("binary");
        assert_eq!(b.shape(), &[3, 5, 7]);
        assert_eq!(b.ones(), t.iter().filter(|&&v| v == 1.0).count());
        assert_eq!(b.to_tensor(), t);
        assert!(BitTensor::from_tensor(&t.mapv(|v| v * 0.5)).is_none());
        assert!(
            BitTensor::from_tensor(&Tensor::zeros(IxDyn(&[0, 4])))
                .expect("empty")
                .is_empty()
        );
    }

    /// `x` through an identity op whose output the tape keeps as bits.
    fn as_bits<'t>(x: &Var<'t>) -> Var<'t> {
        let b = BitTensor::from_tensor(x.value()).expect("binary");
        let identity: crate::BackwardFn = Box::new(|mut g, _| vec![g.pop().flatten()]);
        x.tape()
            .record("as_bits", &[x], vec![b], identity)
            .remove(0)
    }

    /// The ops that read bits give, from bits, what they give from the same values, bit
    /// for bit: outputs, weight gradients and input gradients (also where only the
    /// nonzero inputs' gradient is asked for), at densities on both sides of the event
    /// kernels' crossovers.
    #[test]
    fn ops_read_bits_as_their_values() {
        let spikes = |shape: &[usize], density: f32, seed| {
            random(shape, 0.0, 1.0, seed).mapv(|u| f32::from(u8::from(u < density)))
        };
        let cases: Vec<(&str, Vec<usize>, Vec<usize>)> = vec![
            ("conv2d", vec![3, 2, 7, 6], vec![5, 2, 3, 3]),
            ("conv_transpose2d", vec![3, 2, 5, 3], vec![2, 4, 3, 3]),
            ("linear", vec![5, 37], vec![11, 37]),
        ];
        for (op, x_shape, w_shape) in cases {
            for (k, density) in [0.0, 0.03, 0.3, 0.9].into_iter().enumerate() {
                let x = spikes(&x_shape, density, k as u64);
                for sparse in [false, true] {
                    let run = |bits: bool| {
                        let tape = crate::Tape::new();
                        let xv = tape.var(x.clone());
                        let mut input = if bits { as_bits(&xv) } else { &xv * 1.0 };
                        assert_eq!(input.bits().is_some(), bits);
                        if sparse {
                            input = input.grad_where_nonzero();
                        }
                        let w = tape.var(random(&w_shape, -1.0, 1.0, 9));
                        let y = match op {
                            "conv2d" => input.conv2d(&w, None, 2, 1),
                            "conv_transpose2d" => input.conv_transpose2d(&w, None, 2, 1, 1),
                            _ => input.linear(&w, None),
                        };
                        let gy = tape.constant(random(y.shape(), -1.0, 1.0, 10));
                        let g = (&y * &gy).sum().backward();
                        let value = y.value().clone();
                        (value, g.get(&xv).cloned(), g.get(&w).cloned())
                    };
                    let (from_bits, from_values) = (run(true), run(false));
                    let same = |a: &Tensor, b: &Tensor| {
                        a.shape() == b.shape()
                            && a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits())
                    };
                    let what = format!("{op} at density {density}, sparse {sparse}");
                    assert!(same(&from_bits.0, &from_values.0), "{what}: outputs differ");
                    for (a, b) in [
                        (&from_bits.1, &from_values.1),
                        (&from_bits.2, &from_values.2),
                    ] {
                        let (a, b) = (a.as_ref().expect("grad"), b.as_ref().expect("grad"));
                        assert!(same(a, b), "{what}: gradients differ");
                    }
                }
            }
        }
    }

    #[test]
    fn reshape_keeps_bits_and_passes_the_gradient_back() {
        let tape = crate::Tape::new();
        let values = random(&[4, 3, 5], 0.0, 1.0, 2).mapv(|u| f32::from(u8::from(u < 0.4)));
        let x = tape.var(values.clone());
        let r = as_bits(&x).reshape(&[4, 15]);
        assert!(r.bits().is_some(), "reshaped bits stay bits");
        let want = values
            .to_shape(IxDyn(&[4, 15]))
            .expect("contiguous")
            .to_owned();
        assert_eq!(r.value(), &want);
        let weights = random(&[4, 15], -1.0, 1.0, 3);
        let g = (&r * &tape.constant(weights.clone())).sum().backward();
        let gx = g.get(&x).expect("gradient");
        assert_eq!(
            gx,
            &weights.to_shape(IxDyn(&[4, 3, 5])).expect("contiguous")
        );
        let constant = tape.constant(BitTensor::from_tensor(&values).expect("binary"));
        assert!(constant.bits().is_some() && constant.value() == values);
    }

    #[test]
    #[should_panic(expected = "bits set past the last of 3 elements")]
    fn stray_bits_are_refused() {
        BitTensor::from_words(vec![0b1001], &[3]);
    }
}
