//! `cvmfleet schema`: print the JSON Schema of spec files, for editors and other tools.

use crate::commands::exit::Exit;
use std::io::Write;

/// Arguments of `cvmfleet schema`.
#[derive(Debug, clap::Args)]
pub(crate) struct SchemaArgs {}

/// Prints the schema (the same text as `schemas/fleet.schema.json`).
pub(crate) fn run(_args: &SchemaArgs) -> anyhow::Result<Exit> {
    let text = serde_json::to_string_pretty(&cvmfleet_spec::json_schema())?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()?;
    Ok(Exit::Success)
}
