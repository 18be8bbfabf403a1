//! An optimizer's running state as named tensors (`<kind>.<parameter name>`), and the
//! typed error of a state that cannot be restored.
//!
//! The names do not depend on the groups, so a checkpoint loads into an optimizer
//! whose parameters are grouped differently.

use std::collections::BTreeMap;
use std::fmt;

use ndarray::IxDyn;

use crate::{Parameter, Tensor};

/// Why [`Optimizer::load_state`](super::Optimizer::load_state) refused a state; the
/// optimizer is then unchanged.
#[derive(Clone, Debug, PartialEq)]
pub enum OptimStateError {
    /// A tensor the state must hold is absent.
    Missing {
        /// The tensor's name.
        name: String,
    },
    /// A buffer's shape differs from its parameter's.
    ShapeMismatch {
        /// The buffer's name.
        name: String,
        /// The parameter's shape.
        expected: Vec<usize>,
        /// The buffer's shape.
        found: Vec<usize>,
    },
    /// Buffers that hold NaN or infinite values.
    NonFinite {
        /// Each as `` `name` (k of n values NaN or infinite) ``.
        tensors: Vec<String>,
    },
    /// A value no run can produce.
    Invalid {
        /// The tensor's name.
        name: String,
        /// What is wrong with it.
        reason: InvalidState,
    },
}

/// What makes a stored value impossible.
#[derive(Clone, Debug, PartialEq)]
pub enum InvalidState {
    /// A step count that is not a whole number from 0 to 2²⁴ (an `f32` counts exactly
    /// up to there).
    StepCount {
        /// The stored count.
        value: f32,
    },
    /// A second moment with negative values (it is a mean of squares).
    NegativeSecondMoment {
        /// How many values are negative.
        count: usize,
    },
    /// A step count of 0 alongside moments, which only steps write.
    MomentsWithoutSteps,
}

impl fmt::Display for OptimStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptimStateError::Missing { name } => write!(f, "optimizer state: missing `{name}`"),
            OptimStateError::ShapeMismatch {
                name,
                expected,
                found,
            } => write!(
                f,
                "optimizer state `{name}`: expected shape {expected:?}, found {found:?}"
            ),
            OptimStateError::NonFinite { tensors } => {
                write!(f, "optimizer state {}", tensors.join(", "))
            }
            OptimStateError::Invalid { name, reason } => match reason {
                InvalidState::StepCount { value } => write!(
                    f,
                    "optimizer state `{name}` = {value}: expected a whole number of steps \
                     from 0 to 2^24"
                ),
                InvalidState::NegativeSecondMoment { count } => write!(
                    f,
                    "optimizer state `{name}`: {count} negative values; a second moment is \
                     a mean of squares, never negative"
                ),
                InvalidState::MomentsWithoutSteps => write!(
                    f,
                    "optimizer state: `{name}` = 0 but moments are present; the state was \
                     not written by a run"
                ),
            },
        }
    }
}

impl std::error::Error for OptimStateError {}

/// The per-parameter buffers of one kind that exist, named `<kind>.<parameter name>`.
pub(crate) fn named<'a>(
    kind: &str,
    params: &[Parameter],
    bufs: &'a [Option<Tensor>],
) -> Vec<(String, &'a Tensor)> {
    params
        .iter()
        .zip(bufs)
        .filter_map(|(p, b)| Some((format!("{kind}.{}", p.name()), b.as_ref()?)))
        .collect()
}

/// Owned copies of named buffers, as [`Optimizer::state`](super::Optimizer::state)
/// returns them.
pub(crate) fn cloned(buffers: Vec<(String, &Tensor)>) -> BTreeMap<String, Tensor> {
    buffers.into_iter().map(|(n, t)| (n, t.clone())).collect()
}

/// Refuses named buffers that hold NaN or infinite values.
pub(crate) fn check_finite(buffers: &[(String, &Tensor)]) -> Result<(), OptimStateError> {
    let bad = crate::tensor::non_finite(buffers.iter().map(|(n, t)| (n.as_str(), *t)));
    if bad.is_empty() {
        Ok(())
    } else {
        Err(OptimStateError::NonFinite { tensors: bad })
    }
}

/// The buffers of one kind found in `state`, one per parameter (`None` where absent: a
/// parameter that has not had a gradient yet), each checked against its parameter's
/// shape.
pub(crate) fn load(
    state: &BTreeMap<String, Tensor>,
    kind: &str,
    params: &[Parameter],
) -> Result<Vec<Option<Tensor>>, OptimStateError> {
    params
        .iter()
        .map(|p| {
            let name = format!("{kind}.{}", p.name());
            match state.get(&name) {
                None => Ok(None),
                Some(t) if t.shape() == &p.shape()[..] => Ok(Some(t.clone())),
                Some(t) => Err(OptimStateError::ShapeMismatch {
                    name,
                    expected: p.shape(),
                    found: t.shape().to_vec(),
                }),
            }
        })
        .collect()
}

/// A one-element tensor holding a counter.
pub(crate) fn scalar(v: f32) -> Tensor {
    Tensor::from_elem(IxDyn(&[1]), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_tensor_and_what_is_wrong() {
        let shape = OptimStateError::ShapeMismatch {
            name: "adam.m.w".into(),
            expected: vec![2],
            found: vec![3],
        };
        assert_eq!(
            shape.to_string(),
            "optimizer state `adam.m.w`: expected shape [2], found [3]"
        );
        let steps = OptimStateError::Invalid {
            name: "adam.steps".into(),
            reason: InvalidState::StepCount { value: 2.5 },
        };
        assert_eq!(
            steps.to_string(),
            "optimizer state `adam.steps` = 2.5: expected a whole number of steps from 0 \
             to 2^24"
        );
        let missing = OptimStateError::Missing {
            name: "adam.steps".into(),
        };
        assert_eq!(missing.to_string(), "optimizer state: missing `adam.steps`");
        let boxed: Box<dyn std::error::Error> = Box::new(missing);
        assert!(boxed.to_string().contains("adam.steps"));
    }
}
