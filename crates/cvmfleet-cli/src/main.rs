//! `cvmfleet`: a declarative reconciler for Tencent Cloud CVM fleets.
//!
//! `main` stays tiny: parse the arguments, run one command, map the outcome to an exit code.
//! Exit codes are a contract documented in the README.

mod commands;

use std::process::ExitCode;

use clap::Parser;

use crate::commands::exit::Exit;

fn main() -> ExitCode {
    let cli = match commands::Cli::try_parse() {
        Ok(cli) => cli,
        Err(usage) => {
            // clap's own messages, but exit 1 for a usage error: 2 means "changes pending" or
            // "drift found" to the pipelines that call us. `--help` and `--version` exit 0.
            let _ = usage.print();
            return if usage.use_stderr() { Exit::Failure.into() } else { Exit::Success.into() };
        }
    };
    init_logging(cli.logging());
    match commands::run(cli) {
        Ok(exit) => exit.into(),
        Err(err) => {
            // A closed pipe (`cvmfleet plan | head`) is not an error worth reporting.
            if err
                .chain()
                .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
                .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return Exit::Success.into();
            }
            anstream::eprintln!("error: {err:#}");
            Exit::Failure.into()
        }
    }
}

/// Logs go to stderr, filtered by `CVMFLEET_LOG` (or `RUST_LOG`), by default warnings only
/// (`info` for `watch`, whose log is its output); `CVMFLEET_LOG_FORMAT=json` (or `watch
/// --log-format json`) selects structured lines.
fn init_logging(logging: commands::Logging) {
    use std::io::IsTerminal as _;
    use tracing_subscriber::EnvFilter;

    let filter = std::env::var("CVMFLEET_LOG")
        .ok()
        .map(EnvFilter::new)
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new(logging.default_level));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if logging.json || std::env::var("CVMFLEET_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.with_ansi(colour).init();
    }
}
