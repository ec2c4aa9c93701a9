//! Integration tests of the `cvmfleet` binary: one module per command.

mod common;
mod validate;
