//! The built-in ops, one file per family, each op's forward and backward side by side.
//! All are methods on [`Var`](crate::Var), recorded through [`Tape::record`](crate::Tape::record).

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
