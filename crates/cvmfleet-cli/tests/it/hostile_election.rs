//! Hostile input to `watch --leader-election` (issue 25, items 3-7): the etcd URL and every file
//! its flags name. Nothing hangs, nothing is read without bound, no secret is printed, and each
//! refusal names the flag and the file.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::Run;

/// The longest any of these refusals may take: they happen before anything is contacted.
const PROMPT: Duration = Duration::from_secs(10);

/// A password that must never be printed.
const CANARY: &str = "s3cretPw";

/// Runs `cvmfleet watch fleet.yaml ARGS` in `dir` with `env`, killing it if it outlives
/// [`PROMPT`] (a hang fails the test instead of stalling it).
fn watch(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cvmfleet"));
    command
        .arg("watch")
        .arg("fleet.yaml")
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("CVMFLEET_ENDPOINT", "http://127.0.0.1:9")
        .env_remove("CVMFLEET_ETCD_USER")
        .env_remove("CVMFLEET_ETCD_PASSWORD")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn cvmfleet");
    let started = Instant::now();
    while child.try_wait().expect("status").is_none() {
        if started.elapsed() > PROMPT {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!("watch {args:?} still ran after {PROMPT:?}: {}", String::from_utf8_lossy(&output.stderr));
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

fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("fleet.yaml"), "fleets: []\n").expect("spec");
    dir
}

#[cfg(unix)]
fn fifo(dir: &Path) -> String {
    let path = dir.join("fifo");
    let made = Command::new("mkfifo").arg(&path).status().expect("mkfifo");
    assert!(made.success());
    path.display().to_string()
}

/// Issue 25, item 3: the password in `etcd://root:s3cretPw@host` was printed twice in the error.
#[test]
fn issue_25_an_etcd_url_password_is_never_printed() {
    let dir = workdir();
    let run = watch(dir.path(), &["--leader-election", "etcd://root:s3cretPw@127.0.0.1:2379"], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!run.stderr.contains(CANARY) && !run.stdout.contains(CANARY), "{}", run.stderr);
    insta::assert_snapshot!("issue_25_etcd_url_with_credentials", run.snapshot(&[]));
}

/// Issue 25, items 4 and 5: a FIFO named by `--etcd-password-file` or `--etcd-cacert` hung
/// `watch` before anything was logged, and `/dev/zero` was read until memory ran out.
#[cfg(unix)]
#[test]
fn issue_25_a_fifo_or_a_device_named_by_a_flag_is_refused_at_once() {
    let dir = workdir();
    let fifo = fifo(dir.path());
    for (file, kind) in [(fifo.as_str(), "a FIFO"), ("/dev/zero", "a character device")] {
        let password = watch(
            dir.path(),
            &[
                "--leader-election",
                "etcd://127.0.0.1:2379",
                "--etcd-user",
                "root",
                "--etcd-password-file",
                file,
            ],
            &[],
        );
        assert_eq!(password.code, 1, "{}", password.stderr);
        let expected =
            format!("error: --etcd-password-file {file}: cannot read it: it is {kind}, not a regular file");
        assert!(password.stderr.contains(&expected), "{}", password.stderr);
        let ca =
            watch(dir.path(), &["--leader-election", "etcds://127.0.0.1:2379", "--etcd-cacert", file], &[]);
        assert_eq!(ca.code, 1, "{}", ca.stderr);
        assert!(
            ca.stderr.contains(&format!("error: --etcd-cacert {file}: cannot read it: it is {kind}")),
            "{}",
            ca.stderr
        );
    }
}

/// Issue 25, item 6: a malformed CA was reported as an unreachable etcd ("transport error"),
/// never naming the file.
#[test]
fn issue_25_tls_material_errors_name_the_file_and_the_fault() {
    let dir = workdir();
    std::fs::write(dir.path().join("hello.pem"), "hello\n").expect("write");
    let key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    std::fs::write(dir.path().join("key.pem"), key).expect("write");
    let tls = ["--leader-election", "etcds://127.0.0.1:2379", "--etcd-cacert"];
    let not_pem = watch(dir.path(), &[&tls[..], &["hello.pem"]].concat(), &[]);
    assert_eq!(not_pem.code, 1, "{}", not_pem.stderr);
    insta::assert_snapshot!("issue_25_ca_not_pem", not_pem.snapshot(&[]));
    let no_certificate = watch(dir.path(), &[&tls[..], &["key.pem"]].concat(), &[]);
    assert!(
        no_certificate
            .stderr
            .contains("error: --etcd-cacert key.pem: the CA certificate holds no certificate"),
        "{}",
        no_certificate.stderr
    );
    assert!(!no_certificate.stderr.contains("unreachable"), "{}", no_certificate.stderr);
}

/// Issue 25, item 7: an empty etcd password file (or one holding only a newline) was accepted
/// and sent to etcd.
#[test]
fn issue_25_an_empty_etcd_password_is_an_error() {
    let dir = workdir();
    let user = ["--leader-election", "etcd://127.0.0.1:2379", "--etcd-user", "root"];
    for content in ["", "\n", "\r\n"] {
        std::fs::write(dir.path().join("pw"), content).expect("write");
        let run = watch(dir.path(), &[&user[..], &["--etcd-password-file", "pw"]].concat(), &[]);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(
            run.stderr.contains("error: --etcd-password-file pw: the etcd password is empty"),
            "{content:?}: {}",
            run.stderr
        );
    }
    let env = watch(dir.path(), &user, &[("CVMFLEET_ETCD_PASSWORD", "")]);
    assert_eq!(env.code, 1, "{}", env.stderr);
    assert!(
        env.stderr.contains("error: CVMFLEET_ETCD_PASSWORD: the etcd password is empty"),
        "{}",
        env.stderr
    );
}

/// Issue 25's sweep of `watch`'s leader-election flags: every URL and every file flag, against
/// every hostile input, ends promptly with exit 1, names the flag, and never prints the
/// canary password.
#[cfg(unix)]
#[test]
fn issue_25_sweep_of_the_leader_election_flags() {
    let dir = workdir();
    let fifo = fifo(dir.path());
    let huge = dir.path().join("huge");
    std::fs::File::create(&huge).and_then(|f| f.set_len(64 * 1024 * 1024)).expect("sparse file");
    std::fs::write(dir.path().join("pw"), format!("{CANARY}\n")).expect("write");
    let huge = huge.display().to_string();
    let sub = dir.path().display().to_string();
    let files = [fifo.as_str(), "/dev/zero", "/dev/null", huge.as_str(), sub.as_str(), "missing"];
    let mut cases: Vec<(Vec<String>, &str)> = Vec::new();
    for file in files {
        let with = |flags: &[&str]| flags.iter().map(|s| (*s).to_owned()).chain([file.to_owned()]).collect();
        cases.push((
            with(&[
                "--leader-election",
                "etcd://127.0.0.1:2379",
                "--etcd-user",
                "root",
                "--etcd-password-file",
            ]),
            "--etcd-password-file",
        ));
        cases
            .push((with(&["--leader-election", "etcds://127.0.0.1:2379", "--etcd-cacert"]), "--etcd-cacert"));
        let ca = ["--leader-election", "etcds://127.0.0.1:2379", "--etcd-cacert", "pw", "--etcd-cert"];
        cases.push((with(&[&ca[..], &["pw", "--etcd-key"]].concat()), "--etcd-key"));
    }
    for url in [
        format!("etcd://root:{CANARY}@127.0.0.1:2379"),
        format!("etcds://root:{CANARY}@127.0.0.1:2379,10.0.0.2:2379"),
        format!("etcd://root:{CANARY}/x@127.0.0.1:2379"),
        format!("etcd://root:{CANARY}#x@127.0.0.1:2379"),
        format!("etcd://127.0.0.1:2379/?password={CANARY}"),
        format!("etcd://127.0.0.1:2379#{CANARY}"),
        format!("http://root:{CANARY}@127.0.0.1:2379"),
        format!("root:{CANARY}@127.0.0.1:2379"),
    ] {
        cases.push((vec!["--leader-election".into(), url], "--leader-election"));
    }
    for (args, flag) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = watch(dir.path(), &args, &[]);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(flag), "{args:?} names {flag}: {}", run.stderr);
        let shown = format!("{}{}", run.stdout, run.stderr);
        assert!(!shown.contains(CANARY), "{args:?} printed the password: {shown}");
        assert!(shown.len() < 4096, "{args:?}: {} bytes", shown.len());
    }
}
