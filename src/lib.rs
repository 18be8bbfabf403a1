//! Integration tests, benches and examples live beside this crate.
