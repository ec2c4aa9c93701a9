//! `plan` and `apply` end to end: the real binary against an emulator on a loopback port,
//! with out-of-band changes and injected faults. After every scenario the fleet has exactly the
//! spec's instances and no duplicates (issue 5).

use std::collections::BTreeMap;
use std::time::Duration;

use cvmfleet_emulator::FaultRule;
use cvmfleet_wire::Action;
use cvmfleet_wire::api::{ModifyInstancesAttributeRequest, TerminateInstancesRequest};
use cvmfleet_wire::model::{Filter, Instance};

use crate::common::{Cloud, Run, cvmfleet_at, cvmfleet_command};

const REGION: &str = "ap-guangzhou";

/// A spec of one fleet `e2e` with one group `web` spread over two zones.
struct Spec {
    replicas: u32,
    instance_type: &'static str,
    name: &'static str,
    security_groups: &'static str,
    extra_group: bool,
    prune: bool,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            replicas: 3,
            instance_type: "S5.MEDIUM2",
            name: "web",
            security_groups: "[sg-5ld3mz1q]",
            extra_group: false,
            prune: false,
        }
    }
}

impl Spec {
    fn yaml(&self) -> String {
        let mut text = format!(
            "fleets:
  - name: e2e
    region: {REGION}
    policies: {{prune: {prune}, maxTerminatePercent: 100}}
    defaults:
      ImageId: img-pmqg1cw7
      VirtualPrivateCloud: {{VpcId: vpc-2zxc8w1p}}
    groups:
      - name: web
        replicas: {replicas}
        zones:
          - {{zone: ap-guangzhou-3, SubnetId: subnet-g3a1x7k2}}
          - {{zone: ap-guangzhou-4, SubnetId: subnet-h4b2y8m3}}
        template:
          InstanceType: {itype}
          InstanceName: {name}
          SecurityGroupIds: {sgs}
",
            prune = self.prune,
            replicas = self.replicas,
            itype = self.instance_type,
            name = self.name,
            sgs = self.security_groups,
        );
        if self.extra_group {
            text.push_str(
                "      - name: batch
        replicas: 1
        zones: [{zone: ap-guangzhou-4, SubnetId: subnet-h4b2y8m3}]
        template: {InstanceType: S5.MEDIUM2, InstanceName: batch}
",
            );
        }
        text
    }
}

impl Cloud {
    fn write(&self, spec: &Spec) {
        self.write_spec(&spec.yaml());
    }

    async fn apply(&self) -> Run {
        let run = self.run(&["apply", "fleet.yaml", "--auto-approve"]).await;
        assert_eq!(run.code, 0, "apply failed:\n{}", run.snapshot(&[]));
        run
    }

    async fn plan_code(&self) -> i32 {
        self.run(&["plan", "fleet.yaml"]).await.code
    }

    /// Every instance of fleet `e2e` that counts: not on its way out, not failed to launch.
    async fn instances(&self) -> Vec<Instance> {
        let all = self
            .client
            .describe_instances_all(REGION, vec![Filter::new("tag:cvmfleet:fleet", ["e2e"])])
            .await
            .expect("describe");
        all.into_iter()
            .filter(|i| !matches!(i.instance_state.as_str(), "SHUTDOWN" | "TERMINATING" | "LAUNCH_FAILED"))
            .collect()
    }

    /// Asserts the fleet holds exactly `per_zone` instances of group `web` per zone, all of
    /// `instance_type`, with distinct IDs, and returns them.
    async fn assert_exactly(&self, per_zone: &[(&str, usize)], instance_type: &str) -> Vec<Instance> {
        let instances: Vec<Instance> =
            self.instances().await.into_iter().filter(|i| i.tag("cvmfleet:group") == Some("web")).collect();
        let mut zones: BTreeMap<String, usize> = BTreeMap::new();
        for i in &instances {
            *zones.entry(i.placement.zone.clone()).or_default() += 1;
            assert_eq!(i.instance_type, instance_type, "{}", i.instance_id);
        }
        let wanted: BTreeMap<String, usize> =
            per_zone.iter().filter(|(_, n)| *n > 0).map(|(z, n)| ((*z).to_owned(), *n)).collect();
        assert_eq!(zones, wanted, "instances per zone");
        let mut ids: Vec<&str> = instances.iter().map(|i| i.instance_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), instances.len(), "duplicate IDs");
        instances
    }

    /// Lets terminating instances disappear and pending ones boot.
    fn settle(&self) {
        self.emulator.advance_clock(Duration::from_secs(5));
    }
}

fn ids(instances: &[Instance]) -> Vec<String> {
    let mut ids: Vec<String> = instances.iter().map(|i| i.instance_id.clone()).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_create_scale_replace_rename_prune() {
    let cloud = Cloud::start().await;
    let mut spec = Spec::default();
    cloud.write(&spec);
    assert_eq!(cloud.plan_code().await, 2, "changes pending before the first apply");

    let first = cloud.apply().await;
    let endpoint = cloud.emulator.endpoint();
    insta::assert_snapshot!(
        "first_apply",
        first
            .snapshot(&[(endpoint.as_str(), "[ENDPOINT]")])
            .lines()
            .filter(|l| !l.starts_with("Apply complete"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(first.stdout.contains("Apply complete: 3 created"), "{}", first.stdout);
    assert!(first.stdout.contains("RunInstances 2"), "one call per zone: {}", first.stdout);
    cloud.assert_exactly(&[("ap-guangzhou-3", 2), ("ap-guangzhou-4", 1)], "S5.MEDIUM2").await;
    assert_eq!(cloud.plan_code().await, 0, "no changes after apply");

    // Scale up.
    spec.replicas = 5;
    cloud.write(&spec);
    cloud.apply().await;
    cloud.assert_exactly(&[("ap-guangzhou-3", 3), ("ap-guangzhou-4", 2)], "S5.MEDIUM2").await;

    // Scale down: the newest go.
    let before = cloud.instances().await;
    spec.replicas = 2;
    cloud.write(&spec);
    cloud.apply().await;
    cloud.settle();
    let after = cloud.assert_exactly(&[("ap-guangzhou-3", 1), ("ap-guangzhou-4", 1)], "S5.MEDIUM2").await;
    let oldest_per_zone: Vec<String> = ["ap-guangzhou-3", "ap-guangzhou-4"]
        .iter()
        .map(|z| {
            before
                .iter()
                .filter(|i| i.placement.zone == *z)
                .min_by(|a, b| (&a.created_time, &a.instance_id).cmp(&(&b.created_time, &b.instance_id)))
                .map(|i| i.instance_id.clone())
                .unwrap()
        })
        .collect();
    let mut oldest_per_zone = oldest_per_zone;
    oldest_per_zone.sort();
    assert_eq!(ids(&after), oldest_per_zone, "the oldest instance of each zone stays");

    // Rename and new security groups: in place, same instances.
    spec.name = "web-v2";
    spec.security_groups = "[sg-5ld3mz1q, sg-p1ezv4wz]";
    cloud.write(&spec);
    let run = cloud.apply().await;
    assert!(run.stdout.contains("~ update"), "{}", run.stdout);
    let renamed = cloud.assert_exactly(&[("ap-guangzhou-3", 1), ("ap-guangzhou-4", 1)], "S5.MEDIUM2").await;
    assert_eq!(ids(&renamed), ids(&after));
    assert!(renamed.iter().all(|i| i.instance_name == "web-v2" && i.security_group_ids.len() == 2));

    // Template change: replaced, new instances, old ones gone.
    spec.instance_type = "S5.LARGE8";
    cloud.write(&spec);
    let run = cloud.apply().await;
    assert!(run.stdout.contains("-/+ replace"), "{}", run.stdout);
    cloud.settle();
    let replaced = cloud.assert_exactly(&[("ap-guangzhou-3", 1), ("ap-guangzhou-4", 1)], "S5.LARGE8").await;
    assert!(ids(&replaced).iter().all(|id| !ids(&renamed).contains(id)));
    assert_eq!(cloud.plan_code().await, 0);

    // A group removed from the spec: kept as an orphan without prune, terminated with it.
    spec.extra_group = true;
    cloud.write(&spec);
    cloud.apply().await;
    spec.extra_group = false;
    cloud.write(&spec);
    let kept = cloud.apply().await;
    assert!(kept.stdout.contains("orphans, kept"), "{}", kept.stdout);
    assert_eq!(cloud.instances().await.len(), 3);
    spec.prune = true;
    cloud.write(&spec);
    cloud.apply().await;
    cloud.settle();
    assert_eq!(cloud.instances().await.len(), 2, "orphan pruned");
    assert_eq!(cloud.plan_code().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_band_termination_and_changes_are_corrected() {
    let cloud = Cloud::start().await;
    cloud.write(&Spec::default());
    cloud.apply().await;
    let instances = cloud.instances().await;

    let victim = instances[0].instance_id.clone();
    let terminate = TerminateInstancesRequest { instance_ids: vec![victim.clone()], ..Default::default() };
    cloud.client.call(REGION, &terminate).await.expect("terminate out of band");
    let renamed = instances[1].instance_id.clone();
    let rename = ModifyInstancesAttributeRequest {
        instance_ids: vec![renamed.clone()],
        instance_name: Some("hand-edited".into()),
        ..Default::default()
    };
    cloud.client.call(REGION, &rename).await.expect("rename out of band");
    let sgs = ModifyInstancesAttributeRequest {
        instance_ids: vec![renamed.clone()],
        security_groups: Some(vec!["sg-p1ezv4wz".into()]),
        ..Default::default()
    };
    cloud.client.call(REGION, &sgs).await.expect("security groups out of band");

    assert_eq!(cloud.plan_code().await, 2);
    cloud.apply().await;
    cloud.settle();
    let now = cloud.assert_exactly(&[("ap-guangzhou-3", 2), ("ap-guangzhou-4", 1)], "S5.MEDIUM2").await;
    assert!(!ids(&now).contains(&victim));
    let fixed = now.iter().find(|i| i.instance_id == renamed).expect("renamed instance kept");
    assert_eq!(fixed.instance_name, "web");
    assert_eq!(fixed.security_group_ids, ["sg-5ld3mz1q"]);
    assert_eq!(cloud.plan_code().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_failures_are_replaced_within_the_same_apply() {
    let cloud = Cloud::start().await;
    cloud.emulator.add_fault(FaultRule::launch_failures(1)).expect("fault");
    cloud.write(&Spec::default());
    let run = cloud.apply().await;
    assert!(run.stderr.contains("Round 2"), "{}", run.snapshot(&[]));
    assert!(run.stdout.contains("Apply complete: 3 created"), "2, then 1 replacement: {}", run.stdout);
    cloud.settle();
    cloud.assert_exactly(&[("ap-guangzhou-3", 2), ("ap-guangzhou-4", 1)], "S5.MEDIUM2").await;
    assert_eq!(cloud.plan_code().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_response_is_retried_without_creating_twice() {
    let cloud = Cloud::start().await;
    cloud.emulator.add_fault(FaultRule::lose_response(Action::RunInstances).times(2)).expect("fault");
    cloud.write(&Spec::default());
    cloud.apply().await;
    cloud.assert_exactly(&[("ap-guangzhou-3", 2), ("ap-guangzhou-4", 1)], "S5.MEDIUM2").await;
    let stats = cloud.emulator.stats();
    assert_eq!(stats.faults.get("lose_response"), Some(&2));
    assert_eq!(stats.instances, 3, "nothing was created twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_killed_at_any_point_converges_when_run_again() {
    let cloud = Cloud::start().await;
    let spec = Spec { replicas: 4, ..Spec::default() };
    cloud.write(&spec);
    // Kill points spread over the apply: before, during and after the RunInstances calls and
    // while waiting for boot (each apply takes about 400 ms here).
    for kill_after_ms in [5u64, 40, 80, 150, 250, 400] {
        let mut child = cvmfleet_command(
            cloud.dir.path(),
            &cloud.emulator.endpoint(),
            &["apply", "fleet.yaml", "--auto-approve"],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn apply");
        tokio::time::sleep(Duration::from_millis(kill_after_ms)).await;
        let _ = child.kill();
        let _ = child.wait();
    }
    cloud.apply().await;
    cloud.assert_exactly(&[("ap-guangzhou-3", 2), ("ap-guangzhou-4", 2)], "S5.MEDIUM2").await;
    assert_eq!(cloud.emulator.stats().instances, 4, "no instance was ever created twice");
    assert_eq!(cloud.plan_code().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_applies_end_with_exactly_the_spec() {
    // 250 instances in one zone: three RunInstances batches each, racing.
    let cloud = Cloud::start_with(|c| c.rate_limits(true)).await;
    let spec = "fleets:
  - name: e2e
    region: ap-guangzhou
    defaults: {ImageId: img-pmqg1cw7, InstanceType: S5.MEDIUM2}
    groups:
      - {name: web, replicas: 250, zones: [ap-guangzhou-3]}
";
    std::fs::write(cloud.dir.path().join("fleet.yaml"), spec).expect("write");
    let (a, b) = tokio::join!(
        cloud.run(&["apply", "fleet.yaml", "--auto-approve"]),
        cloud.run(&["apply", "fleet.yaml", "--auto-approve"])
    );
    assert_eq!(a.code, 0, "{}", a.snapshot(&[]));
    assert_eq!(b.code, 0, "{}", b.snapshot(&[]));
    let instances = cloud.assert_exactly(&[("ap-guangzhou-3", 250)], "S5.MEDIUM2").await;
    assert_eq!(instances.len(), 250);
    assert_eq!(cloud.emulator.stats().instances, 250);
    assert_eq!(cloud.plan_code().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_replaying_terminated_instances_advances_to_a_new_generation() {
    let cloud = Cloud::start().await;
    cloud.write(&Spec::default());
    cloud.apply().await;
    let first = ids(&cloud.instances().await);
    let terminate = TerminateInstancesRequest { instance_ids: first.clone(), ..Default::default() };
    cloud.client.call(REGION, &terminate).await.expect("terminate all out of band");
    cloud.settle();
    assert!(cloud.instances().await.is_empty());
    // Same spec, same (empty) observation: the same tokens, which replay the gone instances.
    let run = cloud.apply().await;
    assert!(run.stdout.contains("3 created"), "{}", run.stdout);
    let second = cloud.assert_exactly(&[("ap-guangzhou-3", 2), ("ap-guangzhou-4", 1)], "S5.MEDIUM2").await;
    assert!(ids(&second).iter().all(|id| !first.contains(id)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_plans_run_exactly_and_stale_ones_are_refused() {
    let cloud = Cloud::start().await;
    cloud.write(&Spec::default());
    let plan = cloud.run(&["plan", "fleet.yaml", "--out", "plan.json"]).await;
    assert_eq!(plan.code, 2, "{}", plan.snapshot(&[]));
    let applied = cloud.run(&["apply", "plan.json", "--auto-approve"]).await;
    assert_eq!(applied.code, 0, "{}", applied.snapshot(&[]));
    cloud.assert_exactly(&[("ap-guangzhou-3", 2), ("ap-guangzhou-4", 1)], "S5.MEDIUM2").await;

    // The same saved plan again: the cloud changed since, so it is stale.
    let stale = cloud.run(&["apply", "plan.json", "--auto-approve"]).await;
    assert_eq!(stale.code, 1);
    assert!(stale.stderr.contains("stale"), "{}", stale.stderr);
    assert_eq!(cloud.instances().await.len(), 3);
}

/// Regression test for issue 10, item 11: a saved plan edited to create other, larger
/// instances (or more of them) is refused whole: its content no longer matches its seal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_10_an_edited_saved_plan_is_refused() {
    let cloud = Cloud::start().await;
    cloud.write(&Spec::default());
    let plan = cloud.run(&["plan", "fleet.yaml", "--out", "plan.json"]).await;
    assert_eq!(plan.code, 2, "{}", plan.snapshot(&[]));
    let path = cloud.dir.path().join("plan.json");
    let mut document: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let create = &mut document["fleets"][0]["groups"][0]["creates"][0];
    create["request"]["InstanceType"] = "S5.LARGE8".into();
    create["request"]["InstanceCount"] = 5.into();
    create["count"] = 5.into();
    std::fs::write(&path, serde_json::to_vec_pretty(&document).unwrap()).unwrap();
    let applied = cloud.run(&["apply", "plan.json", "--auto-approve"]).await;
    assert_eq!(applied.code, 1, "{}", applied.snapshot(&[]));
    assert!(applied.stderr.contains("does not match its seal"), "{}", applied.stderr);
    assert!(cloud.instances().await.is_empty(), "nothing was created");
}

/// The machine-facing outputs are contracts (issue 11): `plan --format json` (the document
/// `apply plan.json` reads) and `drift --format json`, from the real binary, snapshotted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_and_drift_json_are_stable() {
    let cloud = Cloud::start().await;
    cloud.write(&Spec::default());
    let plan = cloud.run(&["plan", "fleet.yaml", "--format", "json"]).await;
    assert_eq!(plan.code, 2, "{}", plan.snapshot(&[]));
    let document: serde_json::Value = serde_json::from_str(&plan.stdout).expect("plan JSON");
    insta::assert_json_snapshot!("plan_format_json", document);
    let drift = cloud.run(&["drift", "fleet.yaml", "--format", "json"]).await;
    assert_eq!(drift.code, 2, "{}", drift.snapshot(&[]));
    let mut document: serde_json::Value = serde_json::from_str(&drift.stdout).expect("drift JSON");
    assert!(document["target"].as_str().is_some_and(|t| t.contains("127.0.0.1")), "{document}");
    document["target"] = "(the emulator's endpoint)".into();
    insta::assert_json_snapshot!("drift_format_json", document);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_without_a_terminal_needs_auto_approve() {
    let cloud = Cloud::start().await;
    cloud.write(&Spec::default());
    let run = cloud.run(&["apply", "fleet.yaml"]).await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("--auto-approve"), "{}", run.stderr);
    assert!(cloud.instances().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_reports_quota_errors_before_anything_is_created() {
    let cloud = Cloud::start_with(|c| c.instance_quota(Some(1))).await;
    cloud.write(&Spec::default());
    let run = cloud.run(&["plan", "fleet.yaml", "--preflight"]).await;
    assert_eq!(run.code, 1, "{}", run.snapshot(&[]));
    assert!(run.stderr.contains("preflight FAILED"), "{}", run.stderr);
    assert!(run.stderr.contains("RequestId"), "API errors carry their RequestId: {}", run.stderr);
    assert!(cloud.instances().await.is_empty());
    let ok = Cloud::start().await;
    ok.write(&Spec::default());
    let run = ok.run(&["plan", "fleet.yaml", "--preflight"]).await;
    assert_eq!(run.code, 2, "{}", run.snapshot(&[]));
    assert!(ok.instances().await.is_empty(), "a dry run creates nothing");
}

#[test]
fn invalid_specs_stop_plan_with_positions() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("bad.yaml"),
        "fleets:\n  - name: e2e\n    region: ap-guangzhou\n    groups: 3\n",
    )
    .expect("write");
    let run = cvmfleet_at(dir.path(), "http://127.0.0.1:9", &["plan", "bad.yaml"]);
    assert_eq!(run.code, 1);
    insta::assert_snapshot!(run.snapshot(&[]));
}

/// Issue 12 §1: two projects in one account, the same spec (so the same fleet name). Each
/// creates and counts its own instances, and scaling one down never touches the other's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_projects_in_one_account_neither_see_nor_touch_the_other() {
    let cloud = Cloud::start().await;
    cloud.write(&Spec { replicas: 2, ..Spec::default() });
    for project in ["shop", "blog"] {
        let run = cloud.run(&["apply", "fleet.yaml", "--auto-approve", "--project", project]).await;
        assert_eq!(run.code, 0, "{}", run.snapshot(&[]));
    }
    cloud.settle();
    let of = |instances: &[Instance], project: &str| {
        instances.iter().filter(|i| i.tag("cvmfleet:project") == Some(project)).count()
    };
    let all = cloud.instances().await;
    assert_eq!((of(&all, "shop"), of(&all, "blog"), all.len()), (2, 2, 4));
    for project in ["shop", "blog"] {
        assert_eq!(
            cloud.run(&["plan", "fleet.yaml", "--project", project]).await.code,
            0,
            "{project} is clean"
        );
    }
    cloud.write(&Spec { replicas: 0, ..Spec::default() });
    let run = cloud
        .run(&["apply", "fleet.yaml", "--auto-approve", "--allow-mass-termination", "--project", "shop"])
        .await;
    assert_eq!(run.code, 0, "{}", run.snapshot(&[]));
    cloud.settle();
    let all = cloud.instances().await;
    assert_eq!((of(&all, "shop"), of(&all, "blog")), (0, 2), "blog's instances are untouched");
    // A project name is checked where it is given.
    let bad = cloud.run(&["plan", "fleet.yaml", "--project", "Shop_1"]).await;
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("--project"), "{}", bad.stderr);
}
