//! State across restarts: instances, tokens and pending deadlines survive; the directory is
//! locked while in use. (Killing the process mid-load is tested with the real binary in the
//! CLI crate's tests.)

use std::time::Duration;

use cvmfleet_emulator::{Emulator, EmulatorConfig, Error};
use serde_json::json;

use crate::common::{Client, start};

fn persistent(dir: &std::path::Path) -> EmulatorConfig {
    EmulatorConfig::default().rate_limits(false).state_path(dir)
}

#[tokio::test]
async fn instances_tokens_and_deadlines_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = persistent(dir.path()).boot_delay(Duration::from_millis(600));
    let emulator = start(config.clone()).await;
    let client = Client::new(&emulator);
    let params = json!({"Placement": {"Zone": "ap-guangzhou-3"}, "ImageId": "img-pmqg1cw7", "ClientToken": "keep-me", "InstanceCount": 3});
    let ids = client.call("RunInstances", params.clone()).await.instance_ids();
    // Locked while running.
    assert!(matches!(Emulator::start(config.clone()).await, Err(Error::Locked { .. })));
    emulator.shutdown().await.unwrap();

    tokio::time::sleep(Duration::from_millis(700)).await;
    let emulator = start(config.clone()).await;
    let client = Client::new(&emulator);
    let reply = client.call("DescribeInstances", json!({})).await;
    assert_eq!(reply.ok()["TotalCount"], 3);
    // The boot deadline passed while the emulator was down.
    assert_eq!(reply.ok()["InstanceSet"][0]["InstanceState"], "RUNNING");
    assert_eq!(client.call("RunInstances", params.clone()).await.instance_ids(), ids);
    // New IDs do not collide with the old ones.
    let more = client
        .call("RunInstances", json!({"Placement": {"Zone": "ap-guangzhou-3"}, "ImageId": "img-pmqg1cw7"}))
        .await;
    assert!(!ids.contains(&more.instance_ids()[0]));
    // Dropped without a clean shutdown: the journal alone carries the state.
    drop(emulator);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let emulator = start(config).await;
    assert_eq!(emulator.stats().instances, 4);
    assert_eq!(Client::new(&emulator).call("RunInstances", params).await.instance_ids(), ids);
    emulator.shutdown().await.unwrap();
}

/// Compaction during operation (forced on every change here) keeps every change.
#[tokio::test]
async fn compaction_while_serving_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = persistent(dir.path()).instant();
    config.compact_after_bytes = 1;
    let emulator = start(config.clone()).await;
    let client = Client::new(&emulator);
    let mut ids = Vec::new();
    for n in 0..10 {
        let params = json!({"Placement": {"Zone": "ap-guangzhou-3"}, "ImageId": "img-pmqg1cw7", "ClientToken": format!("c{n}")});
        ids.extend(client.call("RunInstances", params).await.instance_ids());
        client
            .call(
                "ModifyInstancesAttribute",
                json!({"InstanceIds": [ids[0]], "InstanceName": format!("n{n}")}),
            )
            .await
            .ok();
    }
    drop(emulator);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let journals = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().starts_with("journal-")))
        .count();
    assert_eq!(journals, 1, "old journals are deleted after each snapshot");
    let emulator = start(config).await;
    let client = Client::new(&emulator);
    let listed = client.call("DescribeInstances", json!({"InstanceIds": ids})).await;
    assert_eq!(listed.ok()["TotalCount"], 10);
    assert_eq!(listed.ok()["InstanceSet"][0]["InstanceName"], "n9");
}

#[tokio::test]
async fn a_corrupt_snapshot_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("snapshot.json"), b"{ nope").unwrap();
    let err = Emulator::start(persistent(dir.path())).await.unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
}
