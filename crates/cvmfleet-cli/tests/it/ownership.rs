//! Issue 12 end to end: a fleet whose file is deleted, or that is renamed, stays visible as an
//! orphan fleet of its project (reported by `plan` and `drift`, kept, pruned only with
//! `--prune` inside the mass-termination guard), and the plan is clean afterwards.

use std::time::Duration;

use cvmfleet_wire::model::{Filter, Instance};
use serde_json::Value;

use crate::common::Cloud;

const REGION: &str = "ap-guangzhou";

fn fleet(name: &str) -> String {
    format!(
        "fleets:
  - name: {name}
    region: {REGION}
    groups:
      - name: web
        replicas: 1
        zones: [ap-guangzhou-3]
        template: {{ImageId: img-pmqg1cw7, InstanceType: S5.MEDIUM2}}
"
    )
}

impl Cloud {
    fn write_file(&self, file: &str, text: &str) {
        std::fs::write(self.dir.path().join("specs").join(file), text).expect("write spec");
    }

    fn remove_file(&self, file: &str) {
        std::fs::remove_file(self.dir.path().join("specs").join(file)).expect("remove spec");
    }

    /// Live instances by fleet tag.
    async fn live(&self) -> Vec<Instance> {
        let all = self
            .client
            .describe_instances_all(REGION, vec![Filter::new("tag-key", ["cvmfleet:fleet"])])
            .await
            .expect("describe");
        all.into_iter().filter(|i| !matches!(i.instance_state.as_str(), "SHUTDOWN" | "TERMINATING")).collect()
    }

    async fn fleets(&self) -> Vec<String> {
        let mut names: Vec<String> =
            self.live().await.iter().filter_map(|i| i.tag("cvmfleet:fleet").map(str::to_owned)).collect();
        names.sort();
        names
    }
}

async fn started() -> Cloud {
    let cloud = Cloud::start().await;
    std::fs::create_dir_all(cloud.dir.path().join("specs")).expect("specs dir");
    cloud.write_file("alpha.yaml", &fleet("alpha"));
    cloud.write_file("beta.yaml", &fleet("beta"));
    let run = cloud.run(&["apply", "specs", "--auto-approve"]).await;
    assert_eq!(run.code, 0, "{}", run.snapshot(&[]));
    cloud.emulator.advance_clock(Duration::from_secs(5));
    assert_eq!(cloud.fleets().await, ["alpha", "beta"]);
    cloud
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_fleet_file_leaves_an_orphan_fleet_kept_until_pruned() {
    let cloud = started().await;
    cloud.remove_file("beta.yaml");

    let plan = cloud.run(&["plan", "specs"]).await;
    assert_eq!(plan.code, 0, "{}", plan.snapshot(&[]));
    assert!(
        plan.stdout.contains("fleet beta (ap-guangzhou)\n  orphan fleet: no spec declares it in this region"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("its 1 instance(s) are kept"), "{}", plan.stdout);
    let drift = cloud.run(&["drift", "specs", "--format", "json"]).await;
    assert_eq!(drift.code, 2, "an orphan fleet is drift: {}", drift.stdout);
    let doc: Value = serde_json::from_str(&drift.stdout).expect("json");
    let orphan =
        doc["drift"].as_array().unwrap().iter().find(|d| d["kind"] == "orphan").expect("orphan drift");
    assert_eq!(orphan["fleet"], "beta");
    assert_eq!(orphan["desired"], "no spec declares fleet beta in ap-guangzhou");

    // Kept by default: apply creates and terminates nothing.
    let apply = cloud.run(&["apply", "specs", "--auto-approve"]).await;
    assert_eq!(apply.code, 0, "{}", apply.snapshot(&[]));
    assert_eq!(cloud.fleets().await, ["alpha", "beta"]);
    // Pruning a whole fleet is a mass termination.
    let refused = cloud.run(&["apply", "specs", "--auto-approve", "--prune"]).await;
    assert_ne!(refused.code, 0, "{}", refused.snapshot(&[]));
    assert!(refused.stdout.contains("would terminate every instance of the fleet"), "{}", refused.stdout);
    assert_eq!(cloud.fleets().await, ["alpha", "beta"]);
    let pruned =
        cloud.run(&["apply", "specs", "--auto-approve", "--prune", "--allow-mass-termination"]).await;
    assert_eq!(pruned.code, 0, "{}", pruned.snapshot(&[]));
    cloud.emulator.advance_clock(Duration::from_secs(5));
    assert_eq!(cloud.fleets().await, ["alpha"]);
    let clean = cloud.run(&["plan", "specs"]).await;
    assert!(clean.stdout.contains("No changes."), "{}", clean.stdout);
    assert!(!clean.stdout.contains("orphan"), "{}", clean.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_fleet_is_an_orphan_fleet_beside_a_new_one() {
    let cloud = started().await;
    cloud.write_file("beta.yaml", &fleet("gamma"));
    let plan = cloud.run(&["plan", "specs", "--format", "json"]).await;
    let doc: Value = serde_json::from_str(&plan.stdout).expect("json");
    let fleets: Vec<(String, bool)> = doc["fleets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap().to_owned(), f["orphan_fleet"].as_bool().unwrap()))
        .collect();
    assert_eq!(fleets, [("alpha".into(), false), ("gamma".into(), false), ("beta".into(), true)]);
    assert_eq!(doc["summary"]["create"], 1);
    assert_eq!(doc["summary"]["terminate"], 0);
    let applied =
        cloud.run(&["apply", "specs", "--auto-approve", "--prune", "--allow-mass-termination"]).await;
    assert_eq!(applied.code, 0, "{}", applied.snapshot(&[]));
    cloud.emulator.advance_clock(Duration::from_secs(5));
    assert_eq!(cloud.fleets().await, ["alpha", "gamma"]);
    assert!(cloud.run(&["plan", "specs"]).await.stdout.contains("No changes."));
}

/// Instances created outside cvmfleet (no ownership tags), `count` in `zone`.
async fn unmanaged(cloud: &Cloud, zone: &str, count: i64) -> Vec<String> {
    let request = cvmfleet_wire::api::RunInstancesRequest {
        placement: Some(cvmfleet_wire::model::Placement { zone: zone.into(), ..Default::default() }),
        image_id: Some("img-pmqg1cw7".into()),
        instance_type: Some("S5.MEDIUM2".into()),
        instance_count: Some(count),
        ..Default::default()
    };
    let mut ids = cloud.client.call(REGION, &request).await.expect("create").data.instance_id_set;
    ids.sort();
    cloud.emulator.advance_clock(Duration::from_secs(5));
    ids
}

fn adopting(ids: &[String], replicas: usize) -> String {
    format!(
        "fleets:
  - name: legacy
    region: {REGION}
    groups:
      - name: web
        replicas: {replicas}
        zones: [ap-guangzhou-3]
        adopt: [{}]
        template: {{ImageId: img-pmqg1cw7, InstanceType: S5.MEDIUM2}}
",
        ids.join(", ")
    )
}

fn summary(run: &crate::common::Run) -> Value {
    let doc: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    doc["summary"].clone()
}

/// Issue 12 §4: instances made outside cvmfleet are adopted by writing tags: nothing is created
/// or terminated, and the plan is clean afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_instances_are_adopted_without_recreating_them() {
    let cloud = Cloud::start().await;
    std::fs::create_dir_all(cloud.dir.path().join("specs")).expect("specs dir");
    let ids = unmanaged(&cloud, "ap-guangzhou-3", 2).await;
    cloud.write_file("legacy.yaml", &adopting(&ids, 3));
    let created_before = cloud.emulator.stats().instances_created;

    let plan = cloud.run(&["plan", "specs", "--format", "json"]).await;
    let s = summary(&plan);
    assert_eq!(
        (s["adopt"].as_u64(), s["create"].as_u64(), s["terminate"].as_u64()),
        (Some(2), Some(1), Some(0))
    );
    let text = cloud.run(&["plan", "specs"]).await;
    assert!(text.stdout.contains(&format!("+ adopt {}", ids[0])), "{}", text.stdout);

    let apply = cloud.run(&["apply", "specs", "--auto-approve"]).await;
    assert_eq!(apply.code, 0, "{}", apply.snapshot(&[]));
    cloud.emulator.advance_clock(Duration::from_secs(5));
    assert_eq!(
        cloud.emulator.stats().instances_created,
        created_before + 1,
        "only the missing third is created"
    );
    for instance in cloud.live().await.iter().filter(|i| ids.contains(&i.instance_id)) {
        assert_eq!(instance.tag("cvmfleet:project"), Some("default"));
        assert_eq!(
            (instance.tag("cvmfleet:fleet"), instance.tag("cvmfleet:group")),
            (Some("legacy"), Some("web"))
        );
    }
    let clean = cloud.run(&["plan", "specs"]).await;
    assert!(clean.stdout.contains("No changes. 3 instance(s) match the spec."), "{}", clean.stdout);

    // Adopting what another project holds is refused, never skipped.
    let other = unmanaged(&cloud, "ap-guangzhou-3", 1).await;
    let run = cloud.run(&["apply", "specs", "--auto-approve", "--project", "blog"]).await;
    assert_ne!(run.code, 0);
    cloud.write_file("legacy.yaml", &adopting(&[ids[0].clone(), other[0].clone()], 3));
    let refused = cloud.run(&["plan", "specs", "--project", "blog"]).await;
    assert!(
        refused.stdout.contains(&format!("cannot adopt {}: it belongs to project default", ids[0])),
        "{}",
        refused.stdout
    );
}

/// `cvmfleet import` prints a spec that validates; planning it shows only adoptions; applying it
/// recreates nothing; the plan is then clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_round_trip_adopts_and_recreates_nothing() {
    let cloud = Cloud::start().await;
    std::fs::create_dir_all(cloud.dir.path().join("specs")).expect("specs dir");
    let mut ids = unmanaged(&cloud, "ap-guangzhou-3", 2).await;
    ids.extend(unmanaged(&cloud, "ap-guangzhou-4", 1).await);
    let mut args = vec!["import", "--region", REGION, "--fleet", "brought-in"];
    args.extend(ids.iter().map(String::as_str));
    let import = cloud.run(&args).await;
    assert_eq!(import.code, 0, "{}", import.snapshot(&[]));
    cloud.write_file("imported.yaml", &import.stdout);
    assert_eq!(cloud.run(&["validate", "specs"]).await.code, 0);
    let created_before = cloud.emulator.stats().instances_created;
    let s = summary(&cloud.run(&["plan", "specs", "--format", "json"]).await);
    assert_eq!(
        (s["adopt"].as_u64(), s["create"].as_u64(), s["terminate"].as_u64()),
        (Some(3), Some(0), Some(0))
    );
    let apply = cloud.run(&["apply", "specs", "--auto-approve"]).await;
    assert_eq!(apply.code, 0, "{}", apply.snapshot(&[]));
    let clean = cloud.run(&["plan", "specs"]).await;
    assert!(clean.stdout.contains("No changes. 3 instance(s) match the spec."), "{}", clean.stdout);
    assert_eq!(cloud.emulator.stats().instances_created, created_before, "zero instances recreated");
}

/// An adoption whose tag write was answered but the answer lost, and two applies adopting at
/// once: the re-run and the pair end adopted, with nothing created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adoption_survives_a_lost_answer_and_concurrent_applies() {
    let cloud = Cloud::start().await;
    std::fs::create_dir_all(cloud.dir.path().join("specs")).expect("specs dir");
    let ids = unmanaged(&cloud, "ap-guangzhou-3", 2).await;
    cloud.write_file("legacy.yaml", &adopting(&ids, 2));
    let created_before = cloud.emulator.stats().instances_created;
    cloud
        .emulator
        .add_fault(cvmfleet_emulator::FaultRule::lose_response(cvmfleet_wire::Action::TagResources))
        .expect("fault");
    let first = cloud.run(&["apply", "specs", "--auto-approve"]).await;
    let faults: u64 = cloud.emulator.stats().faults.values().sum();
    assert_eq!(faults, 1, "the TagResources answer was lost");
    let rerun = cloud.run(&["apply", "specs", "--auto-approve"]).await;
    assert_eq!(rerun.code, 0, "first:\n{}\nre-run:\n{}", first.snapshot(&[]), rerun.snapshot(&[]));
    assert!(cloud.run(&["plan", "specs"]).await.stdout.contains("No changes."));

    let more = unmanaged(&cloud, "ap-guangzhou-3", 2).await;
    let mut all = ids.clone();
    all.extend(more);
    cloud.write_file("legacy.yaml", &adopting(&all, 4));
    let (a, b) = tokio::join!(
        cloud.run(&["apply", "specs", "--auto-approve"]),
        cloud.run(&["apply", "specs", "--auto-approve"])
    );
    assert!(a.code == 0 || b.code == 0, "a:\n{}\nb:\n{}", a.snapshot(&[]), b.snapshot(&[]));
    let clean = cloud.run(&["plan", "specs"]).await;
    assert!(clean.stdout.contains("No changes. 4 instance(s) match the spec."), "{}", clean.stdout);
    assert_eq!(cloud.emulator.stats().instances_created, created_before + 2, "only the two made outside");
}

/// A fleet whose `region` changed: its old region's instances are found (DescribeRegions and a
/// probe per region) and shown as an orphan fleet beside the fleet's new instances; pruned with
/// `--prune`; the plan is clean afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_move_is_an_orphan_fleet_beside_the_moved_one() {
    let cloud = started().await;
    cloud.write_file(
        "alpha.yaml",
        &fleet("alpha")
            .replace("region: ap-guangzhou", "region: ap-shanghai")
            .replace("ap-guangzhou-3", "ap-shanghai-2"),
    );
    let plan = cloud.run(&["plan", "specs", "--format", "json"]).await;
    let doc: Value = serde_json::from_str(&plan.stdout).expect("json");
    let fleets: Vec<(String, String, bool)> = doc["fleets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().into(),
                f["region"].as_str().unwrap().into(),
                f["orphan_fleet"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        fleets,
        [
            ("alpha".into(), "ap-shanghai".into(), false),
            ("beta".into(), "ap-guangzhou".into(), false),
            ("alpha".into(), "ap-guangzhou".into(), true)
        ]
    );
    let applied =
        cloud.run(&["apply", "specs", "--auto-approve", "--prune", "--allow-mass-termination"]).await;
    assert_eq!(applied.code, 0, "{}", applied.snapshot(&[]));
    cloud.emulator.advance_clock(Duration::from_secs(5));
    assert_eq!(cloud.fleets().await, ["beta"], "alpha left ap-guangzhou");
    let clean = cloud.run(&["plan", "specs"]).await;
    assert!(clean.stdout.contains("No changes. 2 instance(s) match the spec."), "{}", clean.stdout);
}

/// An adopting apply killed (SIGKILL) at several points, before, during and after its tag
/// writes (each held 300 ms by a latency rule), then run again: the group ends adopted, with
/// the missing replica created once and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_adoption_converges_when_run_again() {
    let cloud = Cloud::start().await;
    std::fs::create_dir_all(cloud.dir.path().join("specs")).expect("specs dir");
    let ids = unmanaged(&cloud, "ap-guangzhou-3", 12).await;
    cloud.write_file("legacy.yaml", &adopting(&ids, 13));
    let created_before = cloud.emulator.stats().instances_created;
    for kill_after_ms in [5u64, 60, 200, 450] {
        let latency = cvmfleet_emulator::FaultRule {
            latency_ms: Some(300),
            ..cvmfleet_emulator::FaultRule::new(
                Some(cvmfleet_wire::Action::TagResources),
                cvmfleet_emulator::FaultKind::Latency,
            )
        };
        cloud.emulator.add_fault(latency).expect("rule");
        let mut child = crate::common::cvmfleet_command(
            cloud.dir.path(),
            &cloud.emulator.endpoint(),
            &["apply", "specs", "--auto-approve"],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn apply");
        tokio::time::sleep(Duration::from_millis(kill_after_ms)).await;
        let _ = child.kill();
        let _ = child.wait();
    }
    let last = cloud.run(&["apply", "specs", "--auto-approve"]).await;
    assert_eq!(last.code, 0, "{}", last.snapshot(&[]));
    cloud.emulator.advance_clock(Duration::from_secs(5));
    let clean = cloud.run(&["plan", "specs"]).await;
    assert!(clean.stdout.contains("No changes. 13 instance(s) match the spec."), "{}", clean.stdout);
    assert_eq!(cloud.emulator.stats().instances_created, created_before + 1, "one create for the 13th");
}
