//! Canonical hashes: stable under layout and explicit defaults, sensitive to every API value.

use cvmfleet_spec::{LaunchTemplate, SpecSet};

fn spec(template: &str) -> String {
    format!(
        "fleets:\n  - name: web\n    region: ap-guangzhou\n    groups:\n      - name: a\n        replicas: 3\n        zones: [ap-guangzhou-3, ap-guangzhou-4]\n        template:\n{template}"
    )
}

fn template_of(text: &str) -> LaunchTemplate {
    let specs: SpecSet = cvmfleet_spec::load_str("h.yaml", text).unwrap_or_else(|d| panic!("{d}"));
    specs.fleets[0].groups[0].template.clone()
}

const BASE: &str = "          ImageId: img-pmqg1cw7\n          InstanceType: S5.MEDIUM2\n          InstanceName: web\n          SecurityGroupIds: [sg-5ld3mz1q]\n          InternetAccessible: {InternetMaxBandwidthOut: 10}\n          Tags: {team: web, env: prod}\n";

#[test]
fn layout_comments_and_explicit_defaults_do_not_change_the_hash() {
    let base = template_of(&spec(BASE));
    let variants = [
        // Flow style, other key order, quotes, comments.
        "          {InstanceType: \"S5.MEDIUM2\", 'ImageId': img-pmqg1cw7,   # image\n           Tags: {env: prod, team: web}, SecurityGroupIds: [sg-5ld3mz1q],\n           InternetAccessible: {InternetMaxBandwidthOut: 10}, InstanceName: web}\n",
        // Defaults written out.
        "          ImageId: img-pmqg1cw7\n          InstanceType: S5.MEDIUM2\n          InstanceName: web\n          InstanceChargeType: POSTPAID_BY_HOUR\n          Placement: {ProjectId: 0}\n          DisableApiTermination: false\n          SecurityGroupIds: [sg-5ld3mz1q]\n          InternetAccessible: {InternetMaxBandwidthOut: 10, PublicIpAssigned: true}\n          TagSpecification: [{ResourceType: instance, Tags: [{Key: env, Value: prod}]}]\n          Tags: {team: web}\n",
    ];
    for v in variants {
        let t = template_of(&spec(v));
        assert_eq!(
            t.canonical_hash(),
            base.canonical_hash(),
            "{}\nvs\n{}",
            t.canonical_json(),
            base.canonical_json()
        );
        assert_eq!(t.replacement_hash(), base.replacement_hash());
    }
}

#[test]
fn defaults_from_the_fleet_hash_like_the_same_values_in_the_group() {
    let inline = template_of(&spec(BASE));
    let text = "fleets:\n  - name: web\n    region: ap-guangzhou\n    defaults:\n      ImageId: img-pmqg1cw7\n      Tags: {team: web}\n      InstanceName: other\n    groups:\n      - name: a\n        replicas: 3\n        zones: [ap-guangzhou-3, ap-guangzhou-4]\n        template:\n          InstanceType: S5.MEDIUM2\n          InstanceName: web\n          SecurityGroupIds: [sg-5ld3mz1q]\n          InternetAccessible: {InternetMaxBandwidthOut: 10}\n          Tags: {env: prod}\n";
    assert_eq!(template_of(text).canonical_hash(), inline.canonical_hash());
}

#[test]
fn every_api_value_changes_the_hash() {
    let base = template_of(&spec(BASE));
    let changes = [
        ("S5.MEDIUM2", "S5.LARGE8"),
        ("img-pmqg1cw7", "img-dkwyg6sr"),
        ("InternetMaxBandwidthOut: 10", "InternetMaxBandwidthOut: 20"),
        ("env: prod", "env: staging"),
        ("ImageId: img-pmqg1cw7\n", "ImageId: img-pmqg1cw7\n          DisableApiTermination: true\n"),
        (
            "ImageId: img-pmqg1cw7\n",
            "ImageId: img-pmqg1cw7\n          LoginSettings: {Password: {fromEnv: A}}\n",
        ),
    ];
    for (from, to) in changes {
        let t = template_of(&spec(&BASE.replace(from, to)));
        assert_ne!(t.canonical_hash(), base.canonical_hash(), "{from} -> {to}");
        assert_ne!(t.replacement_hash(), base.replacement_hash(), "{from} -> {to}");
    }
    let env_a = template_of(&spec(&format!("{BASE}          LoginSettings: {{Password: {{fromEnv: A}}}}\n")));
    let env_b = template_of(&spec(&format!("{BASE}          LoginSettings: {{Password: {{fromEnv: B}}}}\n")));
    assert_ne!(env_a.canonical_hash(), env_b.canonical_hash(), "the reference is part of the hash");
}

#[test]
fn in_place_fields_change_only_the_canonical_hash() {
    let base = template_of(&spec(BASE));
    for (from, to) in
        [("InstanceName: web", "InstanceName: web-2"), ("[sg-5ld3mz1q]", "[sg-5ld3mz1q, sg-9db0x2ka]")]
    {
        let t = template_of(&spec(&BASE.replace(from, to)));
        assert_ne!(t.canonical_hash(), base.canonical_hash(), "{from}");
        assert_eq!(t.replacement_hash(), base.replacement_hash(), "{from}");
    }
}

#[test]
fn hash_is_pinned() {
    // A change here changes every ClientToken and replacement tag: bump the domain instead.
    let t = template_of(&spec("          ImageId: img-pmqg1cw7\n"));
    assert_eq!(t.canonical_json(), r#"{"ImageId":"img-pmqg1cw7"}"#);
    insta::assert_snapshot!(format!("{}\n{}", t.canonical_hash(), t.replacement_hash()));
}

#[test]
fn even_spread_over_zones() {
    for (replicas, zones, expected) in [
        (5u32, 3usize, vec![2u32, 2, 1]),
        (1, 3, vec![1, 0, 0]),
        (0, 2, vec![0, 0]),
        (7, 1, vec![7]),
        (6, 4, vec![2, 2, 1, 1]),
    ] {
        let list: Vec<String> = (0..zones).map(|i| format!("ap-guangzhou-{}", i + 1)).collect();
        let text = format!(
            "fleets:\n  - name: web\n    region: ap-guangzhou\n    groups:\n      - name: a\n        replicas: {replicas}\n        zones: [{}]\n        template: {{ImageId: img-pmqg1cw7}}\n",
            list.join(", ")
        );
        let specs = cvmfleet_spec::load_str("s.yaml", &text).unwrap_or_else(|d| panic!("{d}"));
        let got: Vec<u32> = specs.fleets[0].groups[0].placements.iter().map(|p| p.replicas).collect();
        assert_eq!(got, expected, "{replicas} over {zones}");
    }
}
