//! The shipped examples and starter specs: all valid, and the seed examples mean exactly the
//! seed's RunInstances requests.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use cvmfleet_spec::{Group, SpecSet};
use serde_json::{Value, json};

pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load(rel: &str) -> SpecSet {
    cvmfleet_spec::load_paths(&[repo().join(rel)]).unwrap_or_else(|d| panic!("{rel}:\n{d}"))
}

fn only_group(specs: &SpecSet) -> &Group {
    assert_eq!(specs.fleets.len(), 1);
    assert_eq!(specs.fleets[0].groups.len(), 1);
    &specs.fleets[0].groups[0]
}

/// The request a group stands for: its API parameters for its one zone, plus InstanceCount.
fn request(group: &Group) -> Value {
    assert_eq!(group.placements.len(), 1);
    let mut params = group.template.api_params_for(&group.placements[0]);
    let placement = &group.placements[0];
    if !placement.private_ips.is_empty() {
        let ips: Vec<String> = placement.private_ips.iter().map(ToString::to_string).collect();
        params["VirtualPrivateCloud"]["PrivateIpAddresses"] = json!(ips);
    }
    params["InstanceCount"] = json!(group.replicas);
    params
}

#[test]
fn examples_and_starter_specs_are_valid_together() {
    let specs = cvmfleet_spec::load_paths(&[repo().join("examples"), repo().join("specs")])
        .unwrap_or_else(|d| panic!("{d}"));
    assert!(specs.fleets.len() >= 10);
    let names: Vec<&str> = specs.fleets.iter().map(|f| f.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "fleets are sorted by name");
}

#[test]
fn seed_1_minimal() {
    let specs = load("examples/seed-1-minimal.yaml");
    assert_eq!(
        request(only_group(&specs)),
        json!({"Placement": {"Zone": "ap-guangzhou-2"}, "ImageId": "img-pmqg1cw7", "InstanceCount": 1})
    );
}

fn seed_with_disks(charge: Value, extra: Value) -> Value {
    let mut expected = json!({
        "Placement": {"Zone": "ap-guangzhou-2"},
        "InstanceChargeType": charge,
        "ImageId": "img-pmqg1cw7",
        "SystemDisk": {"DiskType": "LOCAL_BASIC", "DiskSize": 50},
        "DataDisks": [{"DiskType": "LOCAL_BASIC", "DiskSize": 100}],
        "InternetAccessible": {
            "InternetChargeType": "TRAFFIC_POSTPAID_BY_HOUR",
            "InternetMaxBandwidthOut": 10,
            "PublicIpAssigned": true
        },
        "InstanceName": "QCLOUD-TEST",
        "LoginSettings": {"Password": {"fromEnv": "SEED_PASSWORD"}},
        "EnhancedService": {"SecurityService": {"Enabled": true}, "MonitorService": {"Enabled": true}},
        "InstanceCount": 1
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        if let (Some(Value::Object(target)), Value::Object(more)) = (expected.get_mut(k), v) {
            target.extend(more.clone());
        } else {
            expected[k] = v.clone();
        }
    }
    expected
}

#[test]
fn seed_2_prepaid() {
    let specs = load("examples/seed-2-prepaid.yaml");
    let expected = seed_with_disks(
        json!("PREPAID"),
        json!({
            "InstanceChargePrepaid": {"Period": 1, "RenewFlag": "NOTIFY_AND_AUTO_RENEW"},
            "InstanceType": "S1.SMALL1"
        }),
    );
    assert_eq!(request(only_group(&specs)), expected);
}

#[test]
fn seed_3_postpaid() {
    let specs = load("examples/seed-3-postpaid.yaml");
    let expected = seed_with_disks(json!("POSTPAID_BY_HOUR"), json!({"InstanceType": "S2.SMALL1"}));
    assert_eq!(request(only_group(&specs)), expected);
}

#[test]
fn seed_4_cdh() {
    let specs = load("examples/seed-4-cdh.yaml");
    let expected = seed_with_disks(
        json!("CDHPAID"),
        json!({"Placement": {"HostIds": ["host-q88gab4i"]}, "InstanceType": "CDH_1C1G"}),
    );
    assert_eq!(request(only_group(&specs)), expected);
}

#[test]
fn seed_5_private_ips() {
    let specs = load("examples/seed-5-private-ips.yaml");
    let group = only_group(&specs);
    assert_eq!(group.placements[0].private_ips, [Ipv4Addr::new(10, 0, 0, 18), Ipv4Addr::new(10, 0, 0, 19)]);
    assert_eq!(
        request(group),
        json!({
            "InstanceType": "S1.SMALL2",
            "SystemDisk": {"DiskType": "CLOUD_BASIC", "DiskSize": 50},
            "Placement": {"Zone": "ap-hongkong-1"},
            "ImageId": "img-dkwyg6sr",
            "VirtualPrivateCloud": {
                "SubnetId": "subnet-dcs9x3gz",
                "VpcId": "vpc-1urkhbj4",
                "PrivateIpAddresses": ["10.0.0.18", "10.0.0.19"]
            },
            "InstanceCount": 2
        })
    );
}

/// The resolved model of every example, as data: what the planner receives.
#[test]
fn resolved_examples_snapshot() {
    let specs = cvmfleet_spec::load_paths(&[repo().join("examples"), repo().join("specs")])
        .unwrap_or_else(|d| panic!("{d}"));
    let fleets: Vec<Value> = specs
        .fleets
        .iter()
        .map(|f| {
            json!({
                "name": f.name,
                "region": f.region,
                "policies": f.policies,
                // Relative to the repository, so that the snapshot holds on any checkout.
                "source": f.source.to_string().replace(&format!("{}/", repo().display()), ""),
                "groups": f.groups.iter().map(|g| json!({
                    "name": g.name,
                    "replicas": g.replicas,
                    "placements": g.placements.iter().map(|p| json!({
                        "zone": p.zone,
                        "replicas": p.replicas,
                        "subnet_id": p.subnet_id,
                        "private_ips": p.private_ips.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                    "template": g.template,
                    "canonical_hash": g.template.canonical_hash().short(),
                    "replacement_hash": g.template.replacement_hash().short(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    insta::assert_json_snapshot!(fleets);
}

#[test]
fn starter_spread_over_two_zones() {
    let specs = load("specs");
    let fleet = &specs.fleets[0];
    let web = &fleet.groups[0];
    let spread: Vec<(&str, u32, Option<&str>)> =
        web.placements.iter().map(|p| (p.zone.as_str(), p.replicas, p.subnet_id.as_deref())).collect();
    assert_eq!(
        spread,
        [("ap-guangzhou-3", 2, Some("subnet-g3a1x7k2")), ("ap-guangzhou-4", 1, Some("subnet-h4b2y8m3"))]
    );
    assert!(web.template.fields().login_settings.as_ref().is_some_and(|l| l.password.is_none()));
}
