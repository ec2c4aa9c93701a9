//! Property tests: valid specs survive any layout, and the typed model round-trips.

use cvmfleet_spec::{SourceLocation, SpecFile, SpecSet};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::yaml_emit::{Layout, emit};

fn layout() -> impl Strategy<Value = Layout> {
    (
        0usize..6,
        0u8..3,
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(2usize), Just(4)],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(flow, quoting, reverse_keys, comments, indent, crlf, bom)| Layout {
            flow_from_depth: if flow == 5 { usize::MAX } else { flow },
            quoting,
            reverse_keys,
            comments,
            indent,
            crlf,
            bom,
        })
}

/// Optional template fields, each valid on its own and together.
/// `group`: a group's template (with image, billing and login); otherwise fleet defaults, which
/// leave billing and login to the groups so that merging never combines exclusive settings.
fn template(group: bool) -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["S5.MEDIUM2", "S5.LARGE8", "SA2.MEDIUM4"]),
        prop::option::of(prop::sample::select(vec!["POSTPAID_BY_HOUR", "PREPAID"])),
        prop::option::of((prop::sample::select(vec!["CLOUD_PREMIUM", "CLOUD_SSD", "CLOUD_BASIC"]), 2u32..10)),
        prop::collection::vec((prop::sample::select(vec!["CLOUD_PREMIUM", "CLOUD_SSD", "CLOUD_HSSD"]), 2u32..100, any::<bool>()), 0..3),
        prop::option::of((1u32..100, any::<bool>())),
        prop::option::of("[a-z][a-z0-9]{0,20}"),
        prop::collection::btree_map("[a-z]{1,8}", "[a-zA-Z0-9 _.:/-]{0,12}", 0..3),
        prop::option::of(prop_oneof![Just(json!({"KeyIds": ["skey-3glfot13"]})), Just(json!({"Password": {"fromEnv": "WEB_PASSWORD"}}))]),
        any::<bool>(),
    )
        .prop_map(move |(itype, charge, sys, disks, net, name, tags, login, protect)| {
            let mut t = Map::new();
            if group {
                t.insert("ImageId".into(), json!("img-pmqg1cw7"));
            }
            let (charge, login) = if group { (charge, login) } else { (None, None) };
            t.insert("InstanceType".into(), json!(itype));
            if let Some(charge) = charge {
                t.insert("InstanceChargeType".into(), json!(charge));
                if charge == "PREPAID" {
                    t.insert("InstanceChargePrepaid".into(), json!({"Period": 12, "RenewFlag": "NOTIFY_AND_AUTO_RENEW"}));
                }
            }
            if let Some((kind, tens)) = sys {
                t.insert("SystemDisk".into(), json!({"DiskType": kind, "DiskSize": tens * 10}));
            }
            if !disks.is_empty() {
                let disks: Vec<Value> = disks
                    .iter()
                    .map(|(kind, tens, keep)| json!({"DiskType": kind, "DiskSize": tens * 10, "DeleteWithInstance": !keep}))
                    .collect();
                t.insert("DataDisks".into(), Value::Array(disks));
            }
            if let Some((bw, public)) = net {
                t.insert("InternetAccessible".into(), json!({"InternetChargeType": "TRAFFIC_POSTPAID_BY_HOUR", "InternetMaxBandwidthOut": bw, "PublicIpAssigned": public}));
            }
            if let Some(name) = name {
                t.insert("InstanceName".into(), json!(name));
                t.insert("HostName".into(), json!(format!("h{name}")));
            }
            if !tags.is_empty() {
                t.insert("Tags".into(), json!(tags));
            }
            if let Some(login) = login {
                t.insert("LoginSettings".into(), login);
            }
            if protect {
                t.insert("DisableApiTermination".into(), json!(true));
            }
            Value::Object(t)
        })
}

fn group(index: usize) -> impl Strategy<Value = Value> {
    (
        0u32..12,
        prop::sample::subsequence(vec!["ap-guangzhou-3", "ap-guangzhou-4", "ap-guangzhou-6"], 1..=3),
        template(true),
    )
        .prop_map(move |(replicas, zones, template)| {
            json!({"name": format!("group-{index}"), "replicas": replicas, "zones": zones, "template": template})
        })
}

/// A valid spec file with one to three fleets.
fn spec() -> impl Strategy<Value = Value> {
    let fleet = |index: usize| {
        (
            (group(0), group(1), group(2), 1usize..4),
            prop::option::of(template(false)),
            prop::option::of((any::<bool>(), 0u8..=100)),
        )
            .prop_map(move |((g0, g1, g2, n), defaults, policies)| {
                let groups: Vec<Value> = [g0, g1, g2].into_iter().take(n).collect();
                let mut f =
                    json!({"name": format!("fleet-{index}"), "region": "ap-guangzhou", "groups": groups});
                if let Some(d) = defaults {
                    f["defaults"] = d;
                }
                if let Some((prune, pct)) = policies {
                    f["policies"] = json!({"prune": prune, "maxTerminatePercent": pct});
                }
                f
            })
    };
    (fleet(0), fleet(1), fleet(2), 1usize..4).prop_map(|(a, b, c, n)| {
        let fleets: Vec<Value> = [a, b, c].into_iter().take(n).collect();
        json!({ "fleets": fleets })
    })
}

/// Source positions differ with layout; everything else must not.
fn without_positions(mut set: SpecSet) -> SpecSet {
    let blank = || SourceLocation { file: String::new(), line: 0, column: 0 };
    for fleet in &mut set.fleets {
        fleet.source = blank();
        for group in &mut fleet.groups {
            group.source = blank();
        }
    }
    set
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn layout_never_changes_meaning_or_hashes(value in spec(), a in layout(), b in layout()) {
        let text_a = emit(&value, &a);
        let text_b = emit(&value, &b);
        let set_a = cvmfleet_spec::load_str("a.yaml", &text_a).map_err(|d| TestCaseError::fail(format!("{text_a}\n{d}")))?;
        let set_b = cvmfleet_spec::load_str("b.yaml", &text_b).map_err(|d| TestCaseError::fail(format!("{text_b}\n{d}")))?;
        let hashes = |s: &SpecSet| -> Vec<String> {
            s.fleets.iter().flat_map(|f| &f.groups).map(|g| format!("{} {}", g.template.canonical_hash(), g.template.replacement_hash())).collect()
        };
        prop_assert_eq!(hashes(&set_a), hashes(&set_b));
        prop_assert_eq!(without_positions(set_a), without_positions(set_b));
    }

    #[test]
    fn typed_model_round_trips(value in spec(), l in layout()) {
        let typed: SpecFile = serde_json::from_value(value.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let again = serde_json::to_value(&typed).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&again, &value);
        let original = cvmfleet_spec::load_str("a.yaml", &emit(&value, &l)).map_err(|d| TestCaseError::fail(d.to_string()))?;
        let reloaded = cvmfleet_spec::load_str("b.yaml", &emit(&again, &Layout::default())).map_err(|d| TestCaseError::fail(d.to_string()))?;
        prop_assert_eq!(without_positions(original), without_positions(reloaded));
    }
}
