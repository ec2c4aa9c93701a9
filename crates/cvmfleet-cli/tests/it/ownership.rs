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
