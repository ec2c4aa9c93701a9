//! Hostile input to the binary (issue 10): reports that stay bounded, secrets that are never
//! echoed, saved plans edited by hand, durations that would overflow.

use crate::common::{Cloud, cvmfleet, cvmfleet_at};

fn spec(password: &str) -> String {
    format!(
        "fleets:
  - name: e2e
    region: ap-guangzhou
    defaults:
      ImageId: img-pmqg1cw7
      VirtualPrivateCloud: {{VpcId: vpc-2zxc8w1p}}
    groups:
      - name: web
        replicas: 1
        zones: [{{zone: ap-guangzhou-3, SubnetId: subnet-g3a1x7k2}}]
        template:
          InstanceType: S5.MEDIUM2
          LoginSettings: {{Password: {password}}}
"
    )
}

/// Issue 10, item 5: a one-line flow file with thousands of problems wrote hundreds of MB to
/// stderr. At most 100 diagnostics are printed, each with a window of the line, then a count.
#[test]
fn issue_10_validate_prints_a_bounded_report() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = format!("fleets: [{}]\n", vec!["1"; 20_000].join(","));
    std::fs::write(dir.path().join("flow.yaml"), text).expect("write");
    let run = cvmfleet(dir.path(), &["validate", "flow.yaml"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.len() < 64 * 1024, "{} bytes of diagnostics", run.stderr.len());
    assert!(
        run.stderr.contains("... and 19900 more problems not shown"),
        "{}",
        &run.stderr[run.stderr.len() - 300..]
    );
    assert!(
        run.stderr.ends_with("error: 20000 problems in 1 file\n"),
        "{}",
        &run.stderr[run.stderr.len() - 300..]
    );
}

/// Issue 10, item 8: `--endpoint` with a key in its userinfo or query was refused with an error
/// that repeated the key.
#[test]
fn issue_10_endpoint_errors_never_echo_keys() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("fleet.yaml"), spec("{fromEnv: CVMFLEET_TEST_PASSWORD}")).expect("write");
    for endpoint in
        ["http://AKIDexample:TOPSECRETKEY@127.0.0.1:9", "http://127.0.0.1:9/?SecretKey=TOPSECRETKEY"]
    {
        let run = cvmfleet_at(dir.path(), endpoint, &["plan", "fleet.yaml"]);
        assert_eq!(run.code, 1, "{}", run.snapshot(&[]));
        let shown = format!("{}{}", run.stdout, run.stderr);
        assert!(shown.contains("invalid endpoint"), "{shown}");
        assert!(!shown.contains("TOPSECRETKEY") && !shown.contains("AKIDexample"), "{shown}");
    }
}

/// Issue 10, item 10: a plain `plan` with an unset `{fromEnv}` variable exited 2 with no word
/// about it; the plan says it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_10_plan_warns_about_passwords_it_cannot_read() {
    let cloud = Cloud::start().await;
    cloud.write_spec(&spec("{fromEnv: CVMFLEET_TEST_SURELY_UNSET_PASSWORD}"));
    let run = cloud.run(&["plan", "fleet.yaml"]).await;
    assert_eq!(run.code, 2, "{}", run.snapshot(&[]));
    assert!(
        run.stdout.contains(
            "warning: the password env:CVMFLEET_TEST_SURELY_UNSET_PASSWORD cannot be read (environment variable `CVMFLEET_TEST_SURELY_UNSET_PASSWORD` is not set); apply will not create the instances of e2e/web"
        ),
        "{}",
        run.stdout
    );
    std::fs::write(cloud.dir.path().join("pw"), "Passw0rd-Example\n").expect("write");
    cloud.write_spec(&spec("{fromFile: pw}"));
    let run = cloud.run(&["plan", "fleet.yaml"]).await;
    assert_eq!(run.code, 2, "{}", run.snapshot(&[]));
    assert!(!run.stdout.contains("warning:"), "{}", run.stdout);
    assert!(!run.stdout.contains("Passw0rd"), "{}", run.stdout);
}

/// Issue 10, item 13: `"fingerprint": "aéééé…"` in a saved plan made `apply plan.json` panic
/// (a string sliced inside a character). It is refused like any other mismatch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_10_a_saved_plan_with_a_non_ascii_fingerprint_is_refused_without_a_panic() {
    let cloud = Cloud::start().await;
    std::fs::write(cloud.dir.path().join("pw"), "Passw0rd-Example\n").expect("write");
    cloud.write_spec(&spec("{fromFile: pw}"));
    let plan = cloud.run(&["plan", "fleet.yaml", "--out", "plan.json"]).await;
    assert_eq!(plan.code, 2, "{}", plan.snapshot(&[]));
    let path = cloud.dir.path().join("plan.json");
    let mut saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    saved["fingerprint"] = format!("a{}", "é".repeat(40)).into();
    std::fs::write(&path, serde_json::to_vec(&saved).expect("json")).expect("write");
    let run = cloud.run(&["apply", "plan.json", "--auto-approve"]).await;
    assert_eq!(run.code, 1, "{}", run.snapshot(&[]));
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

/// Issue 10, item 15: `watch --interval 18446744073709551615s` was accepted and panicked after
/// the first cycle. The interval is bounded when parsed.
#[test]
fn issue_10_watch_refuses_an_interval_that_would_overflow() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = cvmfleet(dir.path(), &["watch", "--interval", "18446744073709551615s"]);
    assert_ne!(run.code, 0, "{}", run.snapshot(&[]));
    assert!(run.stderr.contains("at most 24h"), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

/// Issue 25 item 1: `import --fleet` takes only what a spec's fleet name may be (the spec's one
/// rule, like `--project`): refused before anything is listed, and nothing is printed on stdout,
/// so a line break can never add lines to the printed document.
#[test]
fn issue_25_import_fleet_is_checked_like_a_spec_fleet_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let long = "a".repeat(33);
    for name in ["Bad_Name", "", long.as_str(), "a:b", "wéb", "1web", "web\nfleets: []"] {
        let run =
            cvmfleet(dir.path(), &["import", "--region", "ap-guangzhou", "--fleet", name, "ins-aaaaaaa1"]);
        assert_eq!(run.code, 1, "{name:?}: {}", run.snapshot(&[]));
        assert!(run.stdout.is_empty(), "{name:?}: {}", run.stdout);
        assert!(
            run.stderr.contains("--fleet <NAME>") && run.stderr.contains("lowercase letters"),
            "{}",
            run.stderr
        );
    }
}
