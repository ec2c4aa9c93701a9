//! Every command's `--help` is part of the interface: snapshot it.

use crate::common::{cvmfleet, repo_root};

#[test]
fn help_texts() {
    for args in [&["--help"][..], &["plan", "--help"], &["apply", "--help"]] {
        let run = cvmfleet(repo_root(), args);
        assert_eq!(run.code, 0);
        insta::assert_snapshot!(format!("help_{}", args.join("_").trim_start_matches("--")), run.stdout);
    }
}
