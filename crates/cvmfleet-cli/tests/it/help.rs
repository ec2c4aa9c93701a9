//! Every command's `--help` is part of the interface: snapshot it.

use crate::common::{cvmfleet, repo_root};

#[test]
fn help_texts() {
    // `import --help` and `schema --help` joined the set with issue 20 §5.
    let commands: [&[&str]; 5] = [
        &["--help"],
        &["plan", "--help"],
        &["apply", "--help"],
        &["import", "--help"],
        &["schema", "--help"],
    ];
    for args in commands {
        let run = cvmfleet(repo_root(), args);
        assert_eq!(run.code, 0);
        insta::assert_snapshot!(format!("help_{}", args.join("_").trim_start_matches("--")), run.stdout);
    }
}

/// Regression test for issue 10, item 14: a usage error exits 1, never 2 (which means "changes
/// pending" or "drift found" to a pipeline), with clap's message kept; help and version exit 0.
#[test]
fn issue_10_usage_errors_exit_1() {
    let cases: [&[&str]; 5] = [
        &["plan", "specs", "--no-such-flag"],
        &["drift", "--format", "pdf"],
        &["watch", "--interval", "0"],
        &["watch", "--interval", "-5s"],
        &["apply", "--bogus"],
    ];
    for args in cases {
        let run = cvmfleet(repo_root(), args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("error:"), "{args:?}: {}", run.stderr);
    }
    assert_eq!(cvmfleet(repo_root(), &["--version"]).code, 0);
}
