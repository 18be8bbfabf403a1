//! Axis arguments that may count from the end, as in NumPy and PyTorch: `-1` is the last.
//!
//! Every op that takes an axis takes any [`AxisIndex`]: `x.softmax(-1)`, `x.sum_axes(&[0, 2],
//! false)`, `x.transpose(-2, -1)`.

/// An axis given as an index from the front (`usize`, or a non-negative signed integer) or
/// from the end (a negative signed integer).
pub trait AxisIndex: Copy + std::fmt::Debug {
    /// The axis as an index from the front for a value of rank `ndim`.
    ///
    /// # Panics
    /// If the axis is out of range, with a message naming the op.
    #[track_caller]
    fn resolve(self, ndim: usize, op: &str) -> usize;
}

/// `axis` counted from the front, or from the end when negative; `None` if out of range.
fn from_either_end(axis: i64, ndim: usize) -> Option<usize> {
    let n = ndim as i64;
    let a = if axis < 0 { axis + n } else { axis };
    (0..n).contains(&a).then_some(a as usize)
}

#[track_caller]
fn out_of_range(op: &str, axis: impl std::fmt::Debug, ndim: usize) -> ! {
    let n = ndim as i64;
    panic!(
        "{op}: axis {axis:?} is out of range for a value of rank {ndim} (valid: {} to {})",
        -n,
        n - 1
    )
}

impl AxisIndex for usize {
    #[track_caller]
    fn resolve(self, ndim: usize, op: &str) -> usize {
        if self < ndim {
            self
        } else {
            out_of_range(op, self, ndim)
        }
    }
}

macro_rules! signed_axis {
    ($($t:ty),*) => {$(
        impl AxisIndex for $t {
            #[track_caller]
            fn resolve(self, ndim: usize, op: &str) -> usize {
                from_either_end(self as i64, ndim).unwrap_or_else(|| out_of_range(op, self, ndim))
            }
        }
    )*};
}

signed_axis!(i32, i64, isize);

/// One dimension of a [`Var::reshape`](crate::Var::reshape) target: a size, or (signed
/// integers only) `-1` for the one dimension inferred from the element count.
pub trait ReshapeDim: Copy + std::fmt::Debug {
    /// The size, `None` for the inferred dimension.
    ///
    /// # Panics
    /// On a negative size other than `-1`.
    #[track_caller]
    fn size(self) -> Option<usize>;
}

impl ReshapeDim for usize {
    fn size(self) -> Option<usize> {
        Some(self)
    }
}

macro_rules! signed_dim {
    ($($t:ty),*) => {$(
        impl ReshapeDim for $t {
            #[track_caller]
            fn size(self) -> Option<usize> {
                match self {
                    -1 => None,
                    d if d >= 0 => Some(d as usize),
                    d => panic!("reshape: dimension {d} is neither a size nor -1 (inferred)"),
                }
            }
        }
    )*};
}

signed_dim!(i32, i64, isize);

/// The shape `dims` asks for, for a value of `len` elements and shape `from`, inferring
/// the `-1` dimension.
///
/// # Panics
/// If more than one dimension is `-1`, or the element counts cannot agree.
#[track_caller]
pub fn resolve_shape<D: ReshapeDim>(dims: &[D], len: usize, from: &[usize]) -> Vec<usize> {
    let sizes: Vec<Option<usize>> = dims.iter().map(|d| d.size()).collect();
    let known: usize = sizes.iter().flatten().product();
    let inferred = sizes.iter().filter(|d| d.is_none()).count();
    let fits = match inferred {
        0 => known == len,
        1 => known != 0 && len % known == 0,
        _ => panic!("reshape: only one dimension can be -1, got {dims:?}"),
    };
    if !fits {
        panic!("reshape: {from:?} ({len} elements) cannot be viewed as {dims:?}");
    }
    sizes
        .into_iter()
        .map(|d| d.unwrap_or_else(|| len / known))
        .collect()
}

/// Resolves a list of axes, refusing repeats.
///
/// # Panics
/// If an axis is out of range or appears twice.
#[track_caller]
pub fn resolve_axes<A: AxisIndex>(axes: &[A], ndim: usize, op: &str) -> Vec<usize> {
    let resolved: Vec<usize> = axes.iter().map(|a| a.resolve(ndim, op)).collect();
    for (i, a) in resolved.iter().enumerate() {
        if resolved[..i].contains(a) {
            panic!("{op}: axis {a} appears twice in {axes:?}");
        }
    }
    resolved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_axes_count_from_the_end() {
        assert_eq!((-1i32).resolve(3, "t"), 2);
        assert_eq!((-3i64).resolve(3, "t"), 0);
        assert_eq!(2usize.resolve(3, "t"), 2);
        assert_eq!(resolve_axes(&[0, -1], 4, "t"), vec![0, 3]);
    }

    #[test]
    #[should_panic(expected = "sum_axes: axis -4 is out of range for a value of rank 3")]
    fn out_of_range_names_the_op() {
        (-4i32).resolve(3, "sum_axes");
    }

    #[test]
    fn reshape_infers_one_dimension() {
        assert_eq!(resolve_shape(&[2, -1], 12, &[3, 4]), vec![2, 6]);
        assert_eq!(resolve_shape(&[-1i64], 12, &[3, 4]), vec![12]);
        assert_eq!(resolve_shape(&[4usize, 3], 12, &[3, 4]), vec![4, 3]);
    }

    #[test]
    #[should_panic(expected = "reshape: [3, 4] (12 elements) cannot be viewed as [5, -1]")]
    fn reshape_that_cannot_fit_names_both_shapes() {
        resolve_shape(&[5, -1], 12, &[3, 4]);
    }

    #[test]
    #[should_panic(expected = "appears twice")]
    fn repeated_axes_are_refused() {
        resolve_axes(&[1, -1], 2, "t");
    }
}
