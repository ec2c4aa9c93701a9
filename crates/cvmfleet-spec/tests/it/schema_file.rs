//! `schemas/fleet.schema.json` (the generated schema) and `schemas/reference.md` (the reference
//! generated from it) are committed. These tests fail when they are stale;
//! `CVMFLEET_BLESS=1 cargo test -p cvmfleet-spec --test it schema_file` rewrites them.

use std::path::Path;

#[test]
fn committed_schema_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/fleet.schema.json");
    let generated = serde_json::to_string_pretty(&cvmfleet_spec::json_schema()).unwrap_or_default() + "\n";
    if std::env::var_os("CVMFLEET_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schemas/fleet.schema.json is stale: run `CVMFLEET_BLESS=1 cargo test -p cvmfleet-spec --test it schema_file` (or `cvmfleet schema > schemas/fleet.schema.json`) and commit it"
    );
}

#[test]
fn schema_carries_enums_ranges_patterns_and_descriptions() {
    let schema = cvmfleet_spec::json_schema();
    let defs = &schema["$defs"];
    let template = &defs["Template"]["properties"];
    assert!(template["ImageId"]["pattern"].as_str().is_some_and(|p| p.contains("img-")));
    assert!(template["InstanceName"]["description"].as_str().is_some_and(|d| d.contains("128")));
    assert_eq!(
        defs["InstanceChargePrepaid"]["properties"]["Period"]["enum"].as_array().map(Vec::len),
        Some(14)
    );
    assert_eq!(defs["DataDisk"]["properties"]["DiskSize"]["maximum"], 32000);
    let charge: Vec<&str> = defs["InstanceChargeType"]["oneOf"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["const"].as_str())
        .collect();
    assert_eq!(charge, ["PREPAID", "POSTPAID_BY_HOUR", "CDHPAID"]);
    assert!(template.get("InstanceCount").is_none() && template.get("ClientToken").is_none());
}

#[test]
fn committed_reference_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/reference.md");
    let generated = cvmfleet_spec::reference_markdown();
    if std::env::var_os("CVMFLEET_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schemas/reference.md is stale: run `CVMFLEET_BLESS=1 cargo test -p cvmfleet-spec --test it schema_file` and commit it"
    );
}
