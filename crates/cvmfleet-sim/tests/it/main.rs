//! The simulation crate's integration tests: one binary, a module per feature.

mod agreement;
