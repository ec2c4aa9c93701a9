//! Command-line surface: one module per subcommand, each turning raw arguments into typed values
//! once and returning the process exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod schema;
mod validate;

/// Declarative reconciler for Tencent Cloud CVM fleets.
#[derive(Debug, Parser)]
#[command(name = "cvmfleet", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check spec files and report every problem with its position. Exits 0 when valid, 1 when
    /// not.
    Validate(validate::ValidateArgs),
    /// Print the JSON Schema of spec files (for editor completion).
    Schema(schema::SchemaArgs),
}

/// Runs the parsed command and returns the exit code it decided on.
pub(crate) fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Schema(args) => schema::run(&args),
    }
}
