//! Issue 25 §2: `import` round-trips. Random sets of instances made outside cvmfleet, in every
//! launch shape the emulator makes (types, images, charge types, disks, VPC or not, bandwidth,
//! security groups, names, zones), go through `import` → `validate` → `plan`, which must show
//! only adoptions: every instance adopted as it is, nothing created or terminated.
//!
//! `cargo test` runs a few sizes within seconds (0, a small random set, and 1,001 instances of
//! one shape, more than a group holds). By hand, larger or more sets:
//! `CVMFLEET_IMPORT_SIZES=2500,1700,40 CVMFLEET_IMPORT_SEED=7 cargo test -p cvmfleet-cli --test it issue_25_import`.

use std::time::Duration;

use cvmfleet_wire::api::RunInstancesRequest;
use serde_json::{Value, json};

use crate::common::Cloud;

const REGION: &str = "ap-guangzhou";

/// xorshift64*, seeded: the same sets on every run with the same seed.
struct Draw(u64);

impl Draw {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        usize::try_from(self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64).unwrap_or(0)
    }
}

/// A launch shape: a RunInstances request without a count, drawn from every axis the
/// emulator's catalog offers in ap-guangzhou.
fn shape(draw: &mut Draw) -> Value {
    let zone = ["ap-guangzhou-3", "ap-guangzhou-4"][draw.below(2)];
    let image = ["img-pmqg1cw7", "img-dkwyg6sr", "img-8toqc6s3"][draw.below(3)];
    let instance_type = ["S5.MEDIUM2", "S5.SMALL2", "S5.LARGE8", "S1.SMALL1"][draw.below(4)];
    let mut request = json!({"Placement": {"Zone": zone}, "ImageId": image, "InstanceType": instance_type});
    match draw.below(3) {
        0 => {}
        1 => request["InstanceChargeType"] = json!("PREPAID"),
        _ => {
            request["InstanceChargeType"] = json!("PREPAID");
            request["InstanceChargePrepaid"] = json!({"Period": 1, "RenewFlag": "NOTIFY_AND_AUTO_RENEW"});
        }
    }
    if request.get("InstanceChargeType").is_some() && request.get("InstanceChargePrepaid").is_none() {
        request["InstanceChargePrepaid"] = json!({"Period": 1});
    }
    if draw.below(2) == 1 {
        let disk = ["CLOUD_PREMIUM", "CLOUD_SSD"][draw.below(2)];
        request["SystemDisk"] = json!({"DiskType": disk, "DiskSize": 50});
    }
    if draw.below(3) == 1 {
        request["DataDisks"] = json!([{"DiskType": "CLOUD_PREMIUM", "DiskSize": 100}]);
    }
    if draw.below(2) == 1 {
        let subnet = if zone == "ap-guangzhou-3" { "subnet-g3a1x7k2" } else { "subnet-h4b2y8m3" };
        request["VirtualPrivateCloud"] = json!({"VpcId": "vpc-2zxc8w1p", "SubnetId": subnet});
    }
    if draw.below(2) == 1 {
        request["InternetAccessible"] =
            json!({"InternetChargeType": "TRAFFIC_POSTPAID_BY_HOUR", "InternetMaxBandwidthOut": 10});
    }
    if draw.below(2) == 1 {
        request["SecurityGroupIds"] = json!(["sg-5ld3mz1q"]);
    }
    if draw.below(2) == 1 {
        let name = ["legacy", "web server", "db-01"][draw.below(3)];
        request["InstanceName"] = json!(name);
    }
    request
}

/// Makes `count` instances of `request` outside cvmfleet, tagged `batch=<batch>`.
async fn launch(cloud: &Cloud, mut request: Value, count: usize, batch: &str) {
    request["TagSpecification"] =
        json!([{"ResourceType": "instance", "Tags": [{"Key": "batch", "Value": batch}]}]);
    let mut left = count;
    while left > 0 {
        let n = left.min(100);
        request["InstanceCount"] = json!(n);
        let typed: RunInstancesRequest = serde_json::from_value(request.clone()).expect("a request");
        cloud.client.call(REGION, &typed).await.unwrap_or_else(|e| panic!("{e}: {request}"));
        left -= n;
    }
}

/// One round trip of `size` instances in random shapes (or one shape, `single`).
async fn round_trip(seed: u64, size: usize, single: bool) {
    let cloud = Cloud::start_with(|c| c.rate_limits(false).instance_quota(None)).await;
    std::fs::create_dir_all(cloud.dir.path().join("specs")).expect("specs dir");
    let mut draw = Draw(seed | 1);
    let batch = format!("b{seed}");
    let shapes: Vec<Value> =
        (0..if single { 1 } else { 1 + draw.below(12) }).map(|_| shape(&mut draw)).collect();
    let mut counts = vec![0; shapes.len()];
    for _ in 0..size {
        counts[draw.below(shapes.len())] += 1;
    }
    // A subnet is a /24: shapes that would overflow one launch outside the VPC instead.
    let mut in_subnet: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    let mut shapes = shapes;
    for (request, count) in shapes.iter_mut().zip(&counts) {
        if let Some(subnet) = request.pointer("/VirtualPrivateCloud/SubnetId").and_then(Value::as_str) {
            let used = in_subnet.entry(subnet.to_owned()).or_default();
            if *used + count > 200 {
                request.as_object_mut().expect("object").remove("VirtualPrivateCloud");
            } else {
                *used += count;
            }
        }
    }
    for (request, count) in shapes.iter().zip(&counts) {
        launch(&cloud, request.clone(), *count, &batch).await;
    }
    cloud.emulator.advance_clock(Duration::from_secs(5));

    let import = cloud
        .run(&["import", "--region", REGION, "--fleet", "brought-in", "--tag", &format!("batch={batch}")])
        .await;
    let context = format!("seed {seed}, {size} instances in shapes {shapes:?}\n{}", import.snapshot(&[]));
    if size == 0 {
        assert_eq!(import.code, 1, "{context}");
        assert!(import.stdout.is_empty() && import.stderr.contains("nothing to import"), "{context}");
        return;
    }
    assert_eq!(import.code, 0, "{context}");
    std::fs::write(cloud.dir.path().join("specs/imported.yaml"), &import.stdout).expect("write");
    let validate = cloud.run(&["validate", "specs"]).await;
    assert_eq!(validate.code, 0, "{context}\n{}", validate.snapshot(&[]));
    let created = cloud.emulator.stats().instances_created;
    let plan = cloud.run(&["plan", "specs", "--format", "json"]).await;
    let doc: Value =
        serde_json::from_str(&plan.stdout).unwrap_or_else(|e| panic!("{e}: {}", plan.snapshot(&[])));
    let s = &doc["summary"];
    assert_eq!(
        (s["adopt"].as_u64(), s["create"].as_u64(), s["terminate"].as_u64()),
        (Some(size as u64), Some(0), Some(0)),
        "{context}\n{}",
        plan.stdout.chars().take(4000).collect::<String>()
    );
    for group in doc["fleets"][0]["groups"].as_array().expect("groups") {
        for adoption in group["adoptions"].as_array().expect("adoptions") {
            let differences = adoption["differences"].as_array().filter(|d| !d.is_empty());
            assert!(differences.is_none(), "adopted as it is: {differences:?}\n{context}");
        }
    }
    assert_eq!(cloud.emulator.stats().instances_created, created, "the plan created nothing");
}

/// Issue 25 §2: random instance sets round-trip through import, validate and plan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_25_import_round_trips_random_instance_sets() {
    let seed: u64 = std::env::var("CVMFLEET_IMPORT_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(25);
    let sizes: Vec<usize> = std::env::var("CVMFLEET_IMPORT_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![0, 1 + Draw(seed | 1).below(60)]);
    for (i, size) in sizes.into_iter().enumerate() {
        round_trip(seed + i as u64, size, false).await;
    }
}

/// Issue 25 §2: 1,001 instances of one shape (more than a group may hold) import as groups
/// that validate, and plan only adoptions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_25_import_splits_what_one_group_cannot_hold() {
    round_trip(1001, 1001, true).await;
}
