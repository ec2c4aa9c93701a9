//! Command-line surface: one module per subcommand, each turning raw arguments into typed values
//! once and returning the process exit code.

mod apply;
#[cfg(test)]
mod args_fuzz;
mod drift;
mod emulator;
pub(crate) mod exit;
mod import;
mod plan;
mod schema;
mod specs;
mod target;
mod validate;
mod watch;

use crate::commands::exit::Exit;
use clap::{Parser, Subcommand};

/// Declarative reconciler for Tencent Cloud CVM fleets.
#[derive(Debug, Parser)]
#[command(name = "cvmfleet", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what `apply` would change: observe the cloud and diff it against the specs.
    /// Exits 0 with no changes, 2 with changes pending, 1 on error.
    Plan(plan::PlanArgs),
    /// Converge the cloud to the specs (or execute a saved plan exactly). Exits 0 when
    /// converged, 1 otherwise.
    Apply(apply::ApplyArgs),
    /// Report every difference between the specs and the cloud (drift), by kind, with what
    /// `apply` would do about it. Exits 0 without drift, 2 with drift, 1 on error.
    Drift(drift::DriftArgs),
    /// Reconcile continuously: every interval, re-read the specs, observe, report drift and,
    /// with --auto-apply, correct it within the safety limits. Runs until SIGTERM/SIGINT.
    Watch(watch::WatchArgs),
    /// Check spec files and report every problem with its position. Exits 0 when valid, 1 when
    /// not.
    Validate(validate::ValidateArgs),
    /// Print a spec that adopts existing instances (by ID or tag) without recreating them:
    /// one group per launch template, `replicas` and `adopt:` filled. Exits 0, or 1 when
    /// nothing could be imported.
    Import(import::ImportArgs),
    /// Print the JSON Schema of spec files (for editor completion).
    Schema(schema::SchemaArgs),
    /// Run the local CVM cloud (wire-compatible with Tencent Cloud API 3.0) until SIGINT or
    /// SIGTERM; prints its endpoint on stdout.
    Emulator(emulator::EmulatorArgs),
}

/// How a command wants its logs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Logging {
    /// Level when `CVMFLEET_LOG` / `RUST_LOG` say nothing.
    pub(crate) default_level: &'static str,
    /// One JSON object per line.
    pub(crate) json: bool,
}

impl Cli {
    /// The logging the command asks for.
    pub(crate) fn logging(&self) -> Logging {
        match &self.command {
            Command::Watch(args) => {
                Logging { default_level: "info", json: args.log_format == watch::LogFormat::Json }
            }
            _ => Logging { default_level: "warn", json: false },
        }
    }
}

/// Runs the parsed command and returns the exit code it decided on.
pub(crate) fn run(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Plan(args) => plan::run(args),
        Command::Apply(args) => apply::run(args),
        Command::Drift(args) => drift::run(args),
        Command::Watch(args) => watch::run(args),
        Command::Validate(args) => validate::run(&args),
        Command::Schema(args) => schema::run(&args),
        Command::Import(args) => import::run(args),
        Command::Emulator(args) => emulator::run(args),
    }
}

/// The async runtime for commands that talk to a cloud.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}
