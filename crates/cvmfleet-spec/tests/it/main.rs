//! Integration tests of the spec crate: one module per feature.

mod budget;
mod corpus;
mod examples;
mod fuzz;
mod hashing;
mod hostile;
mod project;
mod props;
mod schema_file;
mod yaml_emit;
