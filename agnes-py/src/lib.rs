//! Python bindings for Agnes.
//!
//! This crate will expose contract validation and an extract writer to Python connectors through
//! pyo3, built into a wheel with maturin. It has no bindings yet; Python connector authors can
//! run `agnes contract validate` on their output in the meantime.
