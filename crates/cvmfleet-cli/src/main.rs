//! `cvmfleet`: a declarative reconciler for Tencent Cloud CVM fleets.
//!
//! `main` stays tiny: parse the arguments, run one command, map the outcome to an exit code.
//! Exit codes are a contract documented in the README.

mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // A closed pipe (`cvmfleet plan | head`) is not an error worth reporting.
            if err
                .chain()
                .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
                .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            anstream::eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}
