//! Lifecycle over HTTP: PENDING → RUNNING, stop/start, terminate, ModifyInstancesAttribute,
//! idempotent ClientTokens, quota. Delays are long and the world clock is moved forward,
//! so the tests do not sleep.

use std::time::Duration;

use cvmfleet_emulator::{EmulatorConfig, FaultRule, TokenMode};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Client, admin, start};

fn slow() -> EmulatorConfig {
    EmulatorConfig::default()
        .rate_limits(false)
        .boot_delay(Duration::from_secs(30))
        .stop_delay(Duration::from_secs(30))
        .terminate_delay(Duration::from_secs(30))
}

async fn state(client: &Client, id: &str) -> String {
    let reply = client.call("DescribeInstances", json!({"InstanceIds": [id]})).await;
    reply.ok()["InstanceSet"][0]["InstanceState"].as_str().unwrap_or("GONE").to_owned()
}

fn run_params() -> Value {
    json!({"Placement": {"Zone": "ap-guangzhou-3"}, "ImageId": "img-pmqg1cw7", "InstanceType": "S5.MEDIUM2"})
}

#[tokio::test]
async fn instances_move_through_their_states() {
    let emulator = start(slow()).await;
    let client = Client::new(&emulator);
    let ids = client.call("RunInstances", run_params()).await.instance_ids();
    let id = ids[0].as_str();
    // Listed at once, as PENDING.
    assert_eq!(state(&client, id).await, "PENDING");
    emulator.advance_clock(Duration::from_secs(31));
    assert_eq!(state(&client, id).await, "RUNNING");

    let start_running = client.call("StartInstances", json!({"InstanceIds": [id]})).await;
    assert_eq!(start_running.code(), "UnsupportedOperation.InstanceStateRunning");
    client.call("StopInstances", json!({"InstanceIds": [id], "StoppedMode": "STOP_CHARGING"})).await.ok();
    assert_eq!(state(&client, id).await, "STOPPING");
    emulator.advance_clock(Duration::from_secs(31));
    assert_eq!(state(&client, id).await, "STOPPED");
    let described = client.call("DescribeInstances", json!({"InstanceIds": [id]})).await;
    assert_eq!(described.ok()["InstanceSet"][0]["StopChargingMode"], "STOP_CHARGING");
    assert_eq!(
        client.call("StopInstances", json!({"InstanceIds": [id]})).await.code(),
        "UnsupportedOperation.InstanceStateStopped"
    );
    client.call("StartInstances", json!({"InstanceIds": [id]})).await.ok();
    assert_eq!(state(&client, id).await, "STARTING");
    emulator.advance_clock(Duration::from_secs(31));
    assert_eq!(state(&client, id).await, "RUNNING");

    client.call("TerminateInstances", json!({"InstanceIds": [id]})).await.ok();
    assert_eq!(state(&client, id).await, "TERMINATING");
    let described = client.call("DescribeInstances", json!({"InstanceIds": [id]})).await;
    assert_eq!(described.ok()["InstanceSet"][0]["LatestOperation"], "TerminateInstances");
    assert_eq!(described.ok()["InstanceSet"][0]["LatestOperationState"], "OPERATING");
    emulator.advance_clock(Duration::from_secs(31));
    assert_eq!(state(&client, id).await, "GONE");
    assert_eq!(
        client.call("TerminateInstances", json!({"InstanceIds": [id]})).await.code(),
        "InvalidInstanceId.NotFound"
    );
}

#[tokio::test]
async fn operation_errors() {
    let emulator = start(slow()).await;
    let client = Client::new(&emulator);
    let ids = client.call("RunInstances", run_params()).await.instance_ids();
    let id = ids[0].as_str();
    for (action, params, code) in [
        ("TerminateInstances", json!({"InstanceIds": [id]}), "UnsupportedOperation.InstanceStatePending"),
        ("TerminateInstances", json!({"InstanceIds": []}), "MissingParameter"),
        ("TerminateInstances", json!({"InstanceIds": ["ins-12"]}), "InvalidInstanceId.Malformed"),
        ("TerminateInstances", json!({"InstanceIds": ["ins-zzzzzzzz"]}), "InvalidInstanceId.NotFound"),
        (
            "TerminateInstances",
            json!({"InstanceIds": (0..101).map(|i| format!("ins-{i:08}")).collect::<Vec<_>>()}),
            "InvalidParameterValue.LimitExceeded",
        ),
        ("StopInstances", json!({"InstanceIds": [id]}), "UnsupportedOperation.InstanceStatePending"),
        ("StopInstances", json!({"InstanceIds": [id], "StopType": "GENTLE"}), "InvalidParameterValue"),
        ("ModifyInstancesAttribute", json!({"InstanceIds": [id]}), "MissingParameter"),
    ] {
        let reply = client.call(action, params.clone()).await;
        reply.assert_envelope();
        assert_eq!(reply.code(), code, "{action} {params}");
    }
    emulator.advance_clock(Duration::from_secs(31));
    for (params, code) in [
        (json!({"InstanceIds": [id], "InstanceName": "a", "HostName": "b1"}), "InvalidParameterCombination"),
        (json!({"InstanceIds": [id], "InstanceName": "n".repeat(61)}), "InvalidInstanceName.TooLong"),
        (json!({"InstanceIds": [id], "HostName": "a..b"}), "InvalidParameterValue.IllegalHostName"),
        (json!({"InstanceIds": [id], "SecurityGroups": ["sg-zzzzzzzz"]}), "InvalidSecurityGroupId.NotFound"),
        (json!({"InstanceIds": [id], "UserData": "???"}), "InvalidParameterValue.InvalidUserDataFormat"),
    ] {
        assert_eq!(client.call("ModifyInstancesAttribute", params.clone()).await.code(), code, "{params}");
    }
    for params in [
        json!({"InstanceIds": [id], "InstanceName": "renamed"}),
        json!({"InstanceIds": [id], "HostName": "web-1.prod"}),
        json!({"InstanceIds": [id], "SecurityGroups": ["sg-5ld3mz1q", "sg-p1ezv4wz"]}),
        json!({"InstanceIds": [id], "DisableApiTermination": true}),
    ] {
        client.call("ModifyInstancesAttribute", params).await.ok();
    }
    let described = client.call("DescribeInstances", json!({"InstanceIds": [id]})).await;
    let instance = &described.ok()["InstanceSet"][0];
    assert_eq!(instance["InstanceName"], "renamed");
    assert_eq!(instance["HostName"], "web-1.prod");
    assert_eq!(instance["SecurityGroupIds"], json!(["sg-5ld3mz1q", "sg-p1ezv4wz"]));
    assert_eq!(instance["LatestOperation"], "ModifyInstancesAttribute");
    assert_eq!(instance["LatestOperationState"], "SUCCESS");
    assert_eq!(
        client.call("TerminateInstances", json!({"InstanceIds": [id]})).await.code(),
        "UnsupportedOperation.InstancesProtected"
    );
}

#[tokio::test]
async fn repeated_client_tokens_replay_even_after_termination() {
    let emulator = start(slow().token_mode(TokenMode::Strict)).await;
    let client = Client::new(&emulator);
    let mut params = run_params();
    params["ClientToken"] = json!("fleet-web-0123456789abcdef");
    params["InstanceCount"] = json!(3);
    let first = client.call("RunInstances", params.clone()).await.instance_ids();
    let again = client.call("RunInstances", params.clone()).await.instance_ids();
    assert_eq!(first, again);
    assert_eq!(emulator.stats().instances, 3);

    emulator.advance_clock(Duration::from_secs(31));
    client.call("TerminateInstances", json!({"InstanceIds": first})).await.ok();
    emulator.advance_clock(Duration::from_secs(31));
    assert_eq!(client.call("DescribeInstances", json!({})).await.ok()["TotalCount"], 0);
    assert_eq!(client.call("RunInstances", params.clone()).await.instance_ids(), first);
    assert_eq!(emulator.stats().instances, 0);

    // Strict mode: the same token with other parameters is refused.
    let mut changed = params.clone();
    changed["InstanceCount"] = json!(4);
    let reply = client.call("RunInstances", changed).await;
    assert_eq!(reply.code(), "InvalidParameter");
    assert!(
        reply.response()["Error"]["Message"]
            .as_str()
            .unwrap_or_default()
            .contains("fleet-web-0123456789abcdef")
    );
}

/// `instances_created` counts what RunInstances created, not what it answered: a replayed
/// ClientToken (before or after its instances are gone), a refused reuse and a DryRun add
/// nothing; instances that fail to launch count. The CLI's exactly-once tests (issue 9) rely on
/// it to see duplicates that were terminated again before the end.
#[tokio::test]
async fn instances_created_counts_creations_not_replays() {
    let emulator = start(slow().token_mode(TokenMode::Strict)).await;
    let client = Client::new(&emulator);
    let mut params = run_params();
    params["ClientToken"] = json!("fleet-web-created-counter");
    params["InstanceCount"] = json!(3);
    let first = client.call("RunInstances", params.clone()).await.instance_ids();
    assert_eq!(emulator.stats().instances_created, 3);
    assert_eq!(client.call("RunInstances", params.clone()).await.instance_ids(), first);
    assert_eq!(emulator.stats().instances_created, 3, "a replayed token creates nothing");

    emulator.advance_clock(Duration::from_secs(31));
    client.call("TerminateInstances", json!({"InstanceIds": first})).await.ok();
    emulator.advance_clock(Duration::from_secs(31));
    assert_eq!(client.call("RunInstances", params.clone()).await.instance_ids(), first);
    let stats = emulator.stats();
    assert_eq!((stats.instances, stats.instances_created), (0, 3), "replayed after the instances are gone");

    let mut changed = params.clone();
    changed["InstanceCount"] = json!(4);
    assert_eq!(client.call("RunInstances", changed).await.code(), "InvalidParameter");
    let mut dry = run_params();
    dry["DryRun"] = json!(true);
    assert_eq!(client.call("RunInstances", dry).await.code(), "DryRunOperation");
    assert_eq!(emulator.stats().instances_created, 3, "refused and dry runs create nothing");

    emulator.add_fault(FaultRule::launch_failures(1)).unwrap();
    client.call("RunInstances", run_params()).await.ok();
    let mut other = run_params();
    other["ClientToken"] = json!("fleet-web-created-counter-2");
    other["InstanceCount"] = json!(2);
    client.call("RunInstances", other).await.ok();
    assert_eq!(emulator.stats().instances_created, 6, "a launch failure was created too");
    let (status, body) = admin(&emulator, Method::GET, "/_emulator/stats", None).await;
    assert_eq!((status, body["instances_created"].as_u64()), (200, Some(6)));
}

#[tokio::test]
async fn tokens_are_scoped_by_secret_id() {
    let config = slow()
        .add_credentials("AKIDsecondAccount000000000000000000", cvmfleet_wire::sign::SecretKey::new("k2"));
    let emulator = start(config).await;
    let mut params = run_params();
    params["ClientToken"] = json!("same-token");
    let a = Client::new(&emulator).call("RunInstances", params.clone()).await.instance_ids();
    let b = Client::new(&emulator)
        .credentials("AKIDsecondAccount000000000000000000", "k2")
        .call("RunInstances", params)
        .await
        .instance_ids();
    assert_ne!(a, b);
}

#[tokio::test]
async fn quota_is_per_region() {
    let emulator = start(slow().instance_quota(Some(3))).await;
    let client = Client::new(&emulator);
    let mut params = run_params();
    params["InstanceCount"] = json!(3);
    client.call("RunInstances", params.clone()).await.ok();
    params["InstanceCount"] = json!(1);
    assert_eq!(client.call("RunInstances", params).await.code(), "InstancesQuotaLimitExceeded");
    let hk = json!({"Placement": {"Zone": "ap-hongkong-2"}, "ImageId": "img-dkwyg6sr", "InstanceCount": 3});
    Client::new(&emulator).region("ap-hongkong").call("RunInstances", hk).await.ok();
}
