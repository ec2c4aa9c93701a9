//! Running the built `cvmfleet` binary and turning its outcome into snapshot text.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cvmfleet_client::{ClientConfig, Credentials, CvmClient};
use cvmfleet_emulator::{
    DEV_SECRET_ID, DEV_SECRET_KEY, Emulator, EmulatorConfig, RunningEmulator, TokenMode,
};

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

/// A client of an emulator, signed with its development key.
pub(crate) fn dev_client(endpoint: &str) -> CvmClient {
    CvmClient::new(ClientConfig::with_endpoint(endpoint), Credentials::new(DEV_SECRET_ID, DEV_SECRET_KEY))
        .expect("client")
}

/// An emulator on a loopback port with short lifecycle delays, strict about tokens reused with
/// other parameters (a reconciler bug), a client of it, and a work directory for specs.
pub(crate) struct Cloud {
    pub(crate) emulator: RunningEmulator,
    pub(crate) client: CvmClient,
    pub(crate) dir: tempfile::TempDir,
}

impl Cloud {
    pub(crate) async fn start() -> Cloud {
        Cloud::start_with(|c| c).await
    }

    pub(crate) async fn start_with(configure: impl FnOnce(EmulatorConfig) -> EmulatorConfig) -> Cloud {
        let config = EmulatorConfig::default()
            .boot_delay(Duration::from_millis(200))
            .stop_delay(Duration::from_millis(200))
            .terminate_delay(Duration::from_millis(200))
            .token_mode(TokenMode::Strict);
        let emulator = Emulator::start(configure(config)).await.expect("emulator starts");
        let client = dev_client(&emulator.endpoint());
        Cloud { emulator, client, dir: tempfile::tempdir().expect("temp dir") }
    }

    /// Writes `fleet.yaml` in the work directory.
    pub(crate) fn write_spec(&self, text: &str) {
        std::fs::write(self.dir.path().join("fleet.yaml"), text).expect("write spec");
    }

    /// Runs `cvmfleet` in the work directory against the emulator, off the async runtime.
    pub(crate) async fn run(&self, args: &[&str]) -> Run {
        let (dir, endpoint) = (self.dir.path().to_owned(), self.emulator.endpoint());
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cvmfleet_at(&dir, &endpoint, &args)
        })
        .await
        .expect("cvmfleet ran")
    }
}
