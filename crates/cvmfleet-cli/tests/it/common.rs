//! Running the built `cvmfleet` binary and turning its outcome into snapshot text.

use std::path::Path;
use std::process::Command;

/// Outcome of one run.
#[derive(Debug)]
pub(crate) struct Run {
    /// Exit code (-1 when killed by a signal).
    pub(crate) code: i32,
    /// Standard output.
    pub(crate) stdout: String,
    /// Standard error.
    pub(crate) stderr: String,
}

impl Run {
    /// `exit_code`, stdout and stderr in one text, with `filters` (from, to) applied, for
    /// snapshots.
    pub(crate) fn snapshot(&self, filters: &[(&str, &str)]) -> String {
        let mut text = format!(
            "exit_code: {}\n----- stdout -----\n{}----- stderr -----\n{}",
            self.code, self.stdout, self.stderr
        );
        for (from, to) in filters {
            text = text.replace(from, to);
        }
        text
    }
}

/// Runs `cvmfleet` with `args` in `dir`, colour off, and waits for it.
pub(crate) fn cvmfleet(dir: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_cvmfleet"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("CVMFLEET_ENDPOINT")
        .env_remove("CVMFLEET_STATE_DIR")
        .output()
        .unwrap_or_else(|e| panic!("cannot run cvmfleet: {e}"));
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The repository root (for `examples/` and `specs/`).
pub(crate) fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Runs `cvmfleet` with `args` in `dir` against `endpoint`, with no Tencent credentials in its
/// environment (so it signs with the emulator's development key), and waits for it.
pub(crate) fn cvmfleet_at(dir: &Path, endpoint: &str, args: &[&str]) -> Run {
    let output =
        cvmfleet_command(dir, endpoint, args).output().unwrap_or_else(|e| panic!("cannot run cvmfleet: {e}"));
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The command [`cvmfleet_at`] runs, for tests that start and kill it themselves.
pub(crate) fn cvmfleet_command(dir: &Path, endpoint: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cvmfleet"));
    command
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("CVMFLEET_ENDPOINT", endpoint)
        .env_remove("CLICOLOR_FORCE")
        .env_remove("TENCENTCLOUD_SECRET_ID")
        .env_remove("TENCENTCLOUD_SECRET_KEY")
        .env_remove("TENCENTCLOUD_SESSION_TOKEN")
        .stdin(std::process::Stdio::null());
    command
}
