//! The built-in ops, one file per family, each op's forward and backward side by side.
//! All are methods on [`Var`](crate::Var) (so their documentation is on that page),
//! recorded through [`Tape::record`](crate::Tape::record); each module here says what its
//! family holds and lists its methods. [The crate's front page](crate) groups them by use.
//!
//! | family | module |
//! |---|---|
//! | elementwise maths and activations | [`unary`], [`softmax`], [`select`], [`dropout`] |
//! | arithmetic and broadcasting | [`arith`], [`binary`] |
//! | reductions | [`reduce`] |
//! | shape and indexing | [`shape`], [`index`] |
//! | linear algebra | [`linalg`] |
//! | convolution and pooling | [`conv`], [`pool`] |
//! | normalization | [`norm`] |
//! | losses | [`loss`] |

pub mod arith;
pub mod binary;
pub mod conv;
pub mod dropout;
pub mod index;
pub mod linalg;
pub mod loss;
pub mod norm;
pub mod pool;
pub mod reduce;
pub mod select;
pub mod shape;
pub mod softmax;
pub mod unary;
