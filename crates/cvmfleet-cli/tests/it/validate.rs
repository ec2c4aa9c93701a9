//! `cvmfleet validate` and `cvmfleet schema`: exit codes, human and JSON output.

use insta::assert_snapshot;

use crate::common::{cvmfleet, repo_root};

const INVALID: &str = "\
fleets:
  - name: web
    region: ap-guangzhou
    groups:
      - name: frontend
        replicas: 2
        zones: [ap-guangzhou-3]
        template:
          ImageId: img-pmqg1cw7
          InstanceChargeType: PREPAID
          InstanceCount: 2
          LoginSettings:
            Password: hunter2-Secret
";

const DUPLICATE: &str = "\
fleets:
  - name: web
    region: ap-guangzhou
    groups:
      - {name: a, replicas: 1, zones: [ap-guangzhou-3], template: {ImageId: img-pmqg1cw7}}
";

fn write(dir: &std::path::Path, name: &str, text: &str) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir: {e}"));
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write: {e}"));
}

#[test]
fn starter_specs_and_examples_are_valid() {
    let run = cvmfleet(repo_root(), &["validate", "specs", "examples"]);
    assert_snapshot!(run.snapshot(&[]), @r"
    exit_code: 0
    ----- stdout -----
    valid: 11 fleets, 14 groups, 30 instances
    ----- stderr -----
    ");
}

#[test]
fn default_path_is_specs() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let run = cvmfleet(dir.path(), &["validate"]);
    assert_snapshot!(run.snapshot(&[]), @r"
    exit_code: 1
    ----- stdout -----
    ----- stderr -----
    specs:1:1: io.read: cannot read specs: No such file or directory (os error 2)

    error: 1 problem in 1 file
    ");
}

#[test]
fn invalid_spec_reports_every_problem_with_its_line() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    write(dir.path(), "specs/web.yaml", INVALID);
    write(dir.path(), "specs/nested/more.yml", DUPLICATE);
    write(dir.path(), "specs/notes.txt", "not a spec");
    let run = cvmfleet(dir.path(), &["validate"]);
    assert!(!run.stderr.contains("hunter2"), "a literal password leaked: {}", run.stderr);
    assert_snapshot!(run.snapshot(&[]));
}

#[test]
fn json_format_lists_diagnostics() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    write(dir.path(), "web.yaml", INVALID);
    let run = cvmfleet(dir.path(), &["validate", "--format", "json", "web.yaml"]);
    assert!(!run.stdout.contains("hunter2"));
    let parsed: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("json: {e}"));
    assert_eq!(parsed.as_array().map(Vec::len), Some(3));
    assert_snapshot!(run.snapshot(&[]));
}

#[test]
fn json_format_on_valid_specs_is_an_empty_list() {
    let run = cvmfleet(repo_root(), &["validate", "--format", "json", "specs"]);
    assert_snapshot!(run.snapshot(&[]), @r"
    exit_code: 0
    ----- stdout -----
    []
    ----- stderr -----
    ");
}

#[test]
fn schema_prints_the_committed_schema() {
    let run = cvmfleet(repo_root(), &["schema"]);
    assert_eq!(run.code, 0);
    let committed = std::fs::read_to_string(repo_root().join("schemas/fleet.schema.json"))
        .unwrap_or_else(|e| panic!("read schema: {e}"));
    assert_eq!(run.stdout, committed);
}

#[test]
fn validate_help() {
    let run = cvmfleet(repo_root(), &["validate", "--help"]);
    assert_snapshot!(run.snapshot(&[]));
}
