//! Issue 25: every flag that names a file or a URL, on every command (the leader-election flags
//! are swept in `hostile_election.rs`). A FIFO, a device, a directory or an oversized file named by a
//! flag gets a clear error naming the flag and the path, at once: never a hang, never an
//! unbounded read; a URL with a key in it is never printed with the key.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::Run;

/// Longer than any of these runs takes when it does not hang (they fail before any network).
const PATIENCE: Duration = Duration::from_secs(60);

const SPEC: &str = "fleets:
  - name: e2e
    region: ap-guangzhou
    groups:
      - name: web
        replicas: 0
        zones: [ap-guangzhou-3]
        template: {ImageId: img-pmqg1cw7, InstanceType: S5.MEDIUM2}
";

/// A sandbox: a valid spec, a FIFO, a symbolic link to `/dev/zero`, a directory, a file
/// larger than any cap, and a home directory for `--profile`.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("temp dir");
        let at = |name: &str| dir.path().join(name);
        std::fs::write(at("fleet.yaml"), SPEC).expect("write spec");
        for fifo in ["fifo", "fifo.json", "fifo.yaml"] {
            mkfifo(&at(fifo));
        }
        std::os::unix::fs::symlink("/dev/zero", at("zero.json")).expect("link");
        std::fs::create_dir(at("dir.json")).expect("dir");
        // Sparse: a gigabyte that takes no disk, larger than every cap.
        let huge = std::fs::File::create(at("huge.json")).expect("create");
        huge.set_len(1 << 30).expect("set_len");
        let tccli = at("home/.tccli");
        std::fs::create_dir_all(&tccli).expect("home");
        mkfifo(&tccli.join("fifo.credential"));
        std::os::unix::fs::symlink("/dev/zero", tccli.join("zero.credential")).expect("link");
        std::os::unix::fs::symlink(at("huge.json"), tccli.join("huge.credential")).expect("link");
        Sandbox { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `cvmfleet args` with the embedded emulator's state in the sandbox, killing it
    /// after [`PATIENCE`] (a hang fails the test, naming the command).
    fn run(&self, args: &[&str]) -> Run {
        self.run_until(args, PATIENCE)
    }

    /// `cvmfleet args` with the embedded emulator's state in the sandbox.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cvmfleet"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.path("home"))
            .env("NO_COLOR", "1")
            .env("CVMFLEET_STATE_DIR", self.path("state"))
            .env_remove("CVMFLEET_ENDPOINT")
            .env_remove("TENCENTCLOUD_SECRET_ID")
            .env_remove("TENCENTCLOUD_SECRET_KEY")
            .stdin(Stdio::null());
        command
    }

    /// Runs `cvmfleet args`; one still running after `term_after` gets SIGTERM (a long-running
    /// command such as `watch`), and one still running [`PATIENCE`] later fails the test.
    fn run_until(&self, args: &[&str], term_after: Duration) -> Run {
        let mut child =
            self.command(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("cvmfleet runs");
        let started = Instant::now();
        let mut termed = false;
        while child.try_wait().expect("wait").is_none() {
            if !termed && started.elapsed() > term_after {
                let pid = child.id().to_string();
                Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
                termed = true;
            }
            if started.elapsed() > term_after.max(PATIENCE) + PATIENCE {
                let _ = child.kill();
                panic!("`cvmfleet {}` hung", args.join(" "));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let output = child.wait_with_output().expect("output");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs and checks: exit 1, and stderr names the flag, the path and what is wrong.
    fn refused(&self, args: &[&str], says: &[&str]) {
        let run = self.run(args);
        assert_eq!(run.code, 1, "`cvmfleet {}`:\n{}", args.join(" "), run.snapshot(&[]));
        for words in says {
            assert!(
                run.stderr.contains(words),
                "`cvmfleet {}` does not say {words:?}:\n{}",
                args.join(" "),
                run.stderr
            );
        }
    }
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Issue 25: spec paths of every command that reads specs.
#[test]
fn issue_25_spec_paths_refuse_fifos_and_devices_on_every_command() {
    let sandbox = Sandbox::new();
    for command in ["validate", "plan", "apply", "drift"] {
        sandbox.refused(&[command, "fifo.yaml"], &["fifo.yaml", "a FIFO"]);
    }
}

/// Issue 25: `plan --out` over a FIFO or a directory is refused before anything is opened; over
/// a regular file (or nothing) the plan is written whole.
#[test]
fn issue_25_plan_out_never_opens_a_fifo() {
    let sandbox = Sandbox::new();
    sandbox.refused(&["plan", "fleet.yaml", "--out", "fifo"], &["--out", "fifo: a FIFO, not a regular file"]);
    sandbox.refused(&["plan", "fleet.yaml", "--out", "dir.json"], &["--out", "dir.json: a directory"]);
    let run = sandbox.run(&["plan", "fleet.yaml", "--out", "saved.json"]);
    assert_eq!(run.code, 0, "{}", run.snapshot(&[]));
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sandbox.path("saved.json")).expect("saved")).expect("JSON");
    assert!(saved.get("format_version").is_some());
}

/// Issue 25: `apply plan.json` reads a saved plan through the one reader.
#[test]
fn issue_25_saved_plans_are_read_through_the_one_reader() {
    let sandbox = Sandbox::new();
    sandbox.refused(&["apply", "fifo.json"], &["saved plan", "fifo.json: a FIFO, not a regular file"]);
    sandbox.refused(&["apply", "zero.json"], &["saved plan", "zero.json: a character device"]);
    sandbox.refused(&["apply", "huge.json"], &["saved plan", "huge.json: larger than 67108864 bytes"]);
}

/// Issue 25: `--profile` (a tccli credential file) on every command that talks to a cloud.
#[test]
fn issue_25_profiles_are_read_through_the_one_reader() {
    let sandbox = Sandbox::new();
    for command in [
        &["plan", "fleet.yaml"][..],
        &["apply", "fleet.yaml"],
        &["drift", "fleet.yaml"],
        &["import", "--region", "ap-guangzhou", "ins-aaaaaaa1"],
    ] {
        for (profile, says) in [
            ("fifo", "a FIFO, not a regular file"),
            ("zero", "a character device, not a regular file"),
            ("huge", "larger than 65536 bytes"),
        ] {
            let args: Vec<&str> = command.iter().copied().chain(["--profile", profile]).collect();
            sandbox.refused(&args, &["--profile", &format!("{profile}.credential: {says}")]);
        }
    }
}

/// Issue 25: `emulator --catalog` and the state directories (`emulator --state`, the embedded
/// emulator's `--state-dir`) refuse what is not a regular file.
#[test]
fn issue_25_catalogs_and_state_files_never_hang() {
    let sandbox = Sandbox::new();
    for (catalog, says) in [
        ("fifo.json", "a FIFO, not a regular file"),
        ("zero.json", "a character device, not a regular file"),
        ("dir.json", "a directory, not a regular file"),
        ("huge.json", "larger than 16777216 bytes"),
    ] {
        sandbox.refused(
            &["emulator", "--listen", "127.0.0.1:0", "--catalog", catalog],
            &["--catalog", &format!("{catalog}: {says}")],
        );
    }
    let state = sandbox.path("planted");
    std::fs::create_dir(&state).expect("dir");
    mkfifo(&state.join("snapshot.json"));
    sandbox.refused(
        &["emulator", "--listen", "127.0.0.1:0", "--state", "planted"],
        &["snapshot.json", "not a regular file"],
    );
    sandbox
        .refused(&["plan", "fleet.yaml", "--state-dir", "planted"], &["snapshot.json", "not a regular file"]);
    sandbox.refused(&["plan", "fleet.yaml", "--state-dir", "fifo"], &["fifo"]);
}

/// Issue 25: an endpoint with a key in its userinfo, query or fragment, on every command that
/// takes `--endpoint`: refused or used, it is never printed with the key.
#[test]
fn issue_25_endpoints_never_print_their_keys_on_any_command() {
    let sandbox = Sandbox::new();
    for endpoint in [
        "http://AKIDexample:TOPSECRETKEY@127.0.0.1:9",
        "http://127.0.0.1:9/?SecretKey=TOPSECRETKEY",
        "http://127.0.0.1:9/#TOPSECRETKEY",
    ] {
        for command in [
            &["plan", "fleet.yaml"][..],
            &["apply", "fleet.yaml"],
            &["drift", "fleet.yaml"],
            &["import", "--region", "ap-guangzhou", "ins-aaaaaaa1"],
        ] {
            let args: Vec<&str> = command.iter().copied().chain(["--endpoint", endpoint]).collect();
            let run = sandbox.run(&args);
            assert_ne!(run.code, 0, "{}", run.snapshot(&[]));
            let shown = format!("{}{}", run.stdout, run.stderr);
            assert!(!shown.contains("TOPSECRETKEY"), "`cvmfleet {}`:\n{shown}", args.join(" "));
        }
    }
}

/// Issue 25: `watch` reads its spec paths through the same reader: a FIFO among them is
/// reported every cycle (never waited on) while the other files are reconciled, and SIGTERM
/// stops it as usual.
#[test]
fn issue_25_watch_reports_a_fifo_spec_path_and_keeps_watching() {
    let sandbox = Sandbox::new();
    let args = ["watch", "fleet.yaml", "fifo.yaml", "--interval", "200ms"];
    let run = sandbox.run_until(&args, Duration::from_secs(3));
    let shown = format!("{}{}", run.stdout, run.stderr);
    assert_eq!(run.code, 0, "`cvmfleet {}` stops on SIGTERM:\n{shown}", args.join(" "));
    assert!(shown.contains("fifo.yaml") && shown.contains("FIFO"), "the FIFO is named:\n{shown}");
    assert!(shown.matches("cycle finished").count() >= 2, "cycles go on:\n{shown}");
}

/// Issue 25: `watch --endpoint` with a key in its userinfo, query or fragment never prints the
/// key, whether it refuses the endpoint or keeps failing to reach it.
#[test]
fn issue_25_watch_never_prints_an_endpoint_key() {
    let sandbox = Sandbox::new();
    for endpoint in [
        "http://AKIDexample:TOPSECRETKEY@127.0.0.1:9",
        "http://127.0.0.1:9/?SecretKey=TOPSECRETKEY",
        "http://127.0.0.1:9/#TOPSECRETKEY",
    ] {
        let args = ["watch", "fleet.yaml", "--interval", "200ms", "--endpoint", endpoint];
        let run = sandbox.run_until(&args, Duration::from_secs(2));
        let shown = format!("{}{}", run.stdout, run.stderr);
        assert!(!shown.contains("TOPSECRETKEY"), "`cvmfleet {}`:\n{shown}", args.join(" "));
    }
}
