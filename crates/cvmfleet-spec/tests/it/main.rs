//! Integration tests of the spec crate.
