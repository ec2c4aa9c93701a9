//! The service files under `deploy/` that only a tool can check (issue 15). Their flags are
//! checked against the CLI's parser by unit tests beside the watch command
//! (`src/commands/watch/service_files.rs`).

use std::process::Command;

use crate::common::repo_root;

/// `systemd-analyze verify` on the shipped unit, with its ExecStart pointed at the binary
/// under test (verify checks that it exists and is executable). Skipped, with a message, where
/// systemd-analyze is not installed.
#[test]
fn the_systemd_unit_verifies() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    }
    let unit =
        std::fs::read_to_string(repo_root().join("deploy/systemd/cvmfleet-watch.service")).expect("unit");
    let local = unit.replace("/usr/local/bin/cvmfleet", env!("CARGO_BIN_EXE_cvmfleet"));
    assert_ne!(unit, local, "ExecStart names /usr/local/bin/cvmfleet");
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("cvmfleet-watch.service");
    std::fs::write(&path, local).expect("write unit");
    let out = Command::new("systemd-analyze").arg("verify").arg(&path).output().expect("systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Unknown keys and bad values are only warnings to systemd: none may mention the unit.
    let ours: Vec<&str> = stderr.lines().filter(|l| l.contains("cvmfleet-watch")).collect();
    assert!(ours.is_empty(), "{}", ours.join("\n"));
}
