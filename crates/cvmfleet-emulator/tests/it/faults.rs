//! Fault injection over HTTP: lost responses (the action takes effect), resets (it does not),
//! injected errors, latency, launch failures, seeded rates, and the admin endpoints.

use std::time::{Duration, Instant};

use cvmfleet_emulator::{FaultConfig, FaultRule};
use cvmfleet_wire::Action;
use cvmfleet_wire::sign::V1Method;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Client, Style, admin, config, start};

fn run_params(token: &str) -> Value {
    json!({"Placement": {"Zone": "ap-guangzhou-3"}, "ImageId": "img-pmqg1cw7", "ClientToken": token, "InstanceCount": 2})
}

/// The reconciler's case: the response of a RunInstances is lost; the retry with the same
/// ClientToken returns the instances the lost call created, and nothing more is created.
#[tokio::test]
async fn a_lost_response_takes_effect_and_the_token_replays_it() {
    let emulator = start(config()).await;
    let client = Client::new(&emulator);
    emulator.add_fault(FaultRule::lose_response(Action::RunInstances)).unwrap();
    let lost = client.send(Style::PostTc3, "RunInstances", &run_params("tok-lost")).await;
    assert!(lost.is_err(), "expected a transport error, got {lost:?}");
    let listed = client.call("DescribeInstances", json!({})).await;
    assert_eq!(listed.ok()["TotalCount"], 2);
    let replay = client.call("RunInstances", run_params("tok-lost")).await.instance_ids();
    let listed: Vec<String> = listed.ok()["InstanceSet"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["InstanceId"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(replay, listed);
    assert_eq!(emulator.stats().instances, 2);
    assert_eq!(emulator.stats().faults.get("lose_response"), Some(&1));
}

/// A rule with `params` picks a request by what it asks for, in every wire style: of two
/// RunInstances, only the one for two instances gets the error.
#[tokio::test]
async fn rules_match_requests_by_their_parameters() {
    let emulator = start(config()).await;
    let client = Client::new(&emulator);
    for style in
        [Style::PostTc3, Style::GetTc3, Style::GetV1(V1Method::HmacSha256), Style::PostV1(V1Method::HmacSha1)]
    {
        emulator
            .add_fault(
                FaultRule::error(
                    Action::RunInstances,
                    "ResourceInsufficient.SpecifiedInstanceType",
                    "sold out",
                )
                .when("InstanceCount", "2")
                .when("Placement.Zone", "ap-guangzhou-3"),
            )
            .unwrap();
        let mut one = run_params("");
        one.as_object_mut().unwrap().remove("ClientToken");
        one["InstanceCount"] = json!(1);
        let mut two = one.clone();
        two["InstanceCount"] = json!(2);
        let reply = client.send(style, "RunInstances", &one).await.expect("transport");
        assert_eq!(reply.instance_ids().len(), 1, "{style:?}");
        let reply = client.send(style, "RunInstances", &two).await.expect("transport");
        assert_eq!(reply.code(), "ResourceInsufficient.SpecifiedInstanceType", "{style:?}");
        let reply = client.send(style, "RunInstances", &two).await.expect("transport");
        assert_eq!(reply.instance_ids().len(), 2, "{style:?}: the rule fired once");
    }
    assert_eq!(emulator.stats().instances_created, 12);
}

#[tokio::test]
async fn a_reset_connection_does_not_take_effect() {
    let emulator = start(config()).await;
    let client = Client::new(&emulator);
    emulator.add_fault(FaultRule::reset(Action::RunInstances)).unwrap();
    assert!(client.send(Style::PostTc3, "RunInstances", &run_params("tok-reset")).await.is_err());
    assert_eq!(emulator.stats().instances, 0);
    let ids = client.call("RunInstances", run_params("tok-reset")).await.instance_ids();
    assert_eq!(ids.len(), 2);
}

#[tokio::test]
async fn one_shot_errors_latency_and_targeting() {
    let emulator = start(config()).await;
    let client = Client::new(&emulator);
    emulator
        .add_fault(
            FaultRule::error(Action::RunInstances, "ResourceInsufficient.SpecifiedInstanceType", "sold out")
                .after(1),
        )
        .unwrap();
    // The first passes, the second fails, the third passes.
    assert_eq!(client.call("RunInstances", run_params("a")).await.instance_ids().len(), 2);
    let reply = client.call("RunInstances", run_params("b")).await;
    reply.assert_envelope();
    assert_eq!(reply.code(), "ResourceInsufficient.SpecifiedInstanceType");
    assert_eq!(client.call("RunInstances", run_params("b")).await.instance_ids().len(), 2);

    let (status, _) = admin(
        &emulator,
        Method::POST,
        "/_emulator/faults/rules",
        Some(json!([{"action": "DescribeZones", "kind": "latency", "latency_ms": 300},
                    {"action": "DescribeZones", "kind": "request_limit_exceeded", "count": 2}])),
    )
    .await;
    assert_eq!(status, 200);
    let started = Instant::now();
    assert_eq!(client.call("DescribeZones", json!({})).await.code(), "RequestLimitExceeded");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(client.call("DescribeZones", json!({})).await.code(), "RequestLimitExceeded");
    client.call("DescribeZones", json!({})).await.ok();

    let stats = emulator.stats();
    assert_eq!(stats.errors_of("DescribeZones", "RequestLimitExceeded"), 2);
    assert_eq!(stats.requests_of("RunInstances"), 3);
}

#[tokio::test]
async fn launch_failures_show_as_launch_failed() {
    let emulator = start(config()).await;
    let client = Client::new(&emulator);
    emulator.add_fault(FaultRule::launch_failures(1).after(1)).unwrap();
    let ids = client.call("RunInstances", run_params("lf")).await.instance_ids();
    let reply = client.call("DescribeInstancesStatus", json!({"InstanceIds": ids})).await;
    let states: Vec<&str> = reply.ok()["InstanceStatusSet"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["InstanceState"].as_str())
        .collect();
    assert_eq!(states, ["RUNNING", "LAUNCH_FAILED"]);
    let failed = client.call("DescribeInstances", json!({"InstanceIds": [ids[1]]})).await;
    assert_eq!(failed.ok()["InstanceSet"][0]["LatestOperationState"], "FAILED");
    assert_eq!(
        client.call("TerminateInstances", json!({"InstanceIds": [ids[1]]})).await.code(),
        "UnsupportedOperation.InstanceStateLaunchFailed"
    );
}

/// The same seed gives the same faults to the same sequence of requests.
#[tokio::test]
async fn random_faults_are_deterministic_under_a_seed() {
    let faults = FaultConfig { error_rate: 0.3, throttle_rate: 0.2, ..FaultConfig::default() };
    let mut runs = Vec::new();
    for _ in 0..2 {
        let emulator = start(config().faults(faults.clone()).seed(99)).await;
        let client = Client::new(&emulator);
        let mut outcome = Vec::new();
        for _ in 0..30 {
            let reply = client.call("DescribeZones", json!({})).await;
            reply.assert_envelope();
            outcome.push(reply.error_code().unwrap_or("ok").to_owned());
        }
        runs.push(outcome);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(runs[0].iter().any(|c| c == "InternalError"), "{:?}", runs[0]);
    assert!(runs[0].iter().any(|c| c == "RequestLimitExceeded"), "{:?}", runs[0]);
    assert!(runs[0].iter().any(|c| c == "ok"), "{:?}", runs[0]);
}

#[tokio::test]
async fn admin_endpoints() {
    let emulator = start(config()).await;
    let client = Client::new(&emulator);
    let (status, body) = admin(&emulator, Method::GET, "/_emulator/health", None).await;
    assert_eq!((status, body), (200, json!({"ok": true})));

    let (status, body) = admin(
        &emulator,
        Method::PUT,
        "/_emulator/faults",
        Some(json!({"reset_rate": 1.0, "actions": ["RunInstances"]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["config"]["reset_rate"], 1.0);
    assert!(client.send(Style::PostTc3, "RunInstances", &run_params("x")).await.is_err());
    client.call("DescribeZones", json!({})).await.ok();

    let (status, body) =
        admin(&emulator, Method::PUT, "/_emulator/faults", Some(json!({"error_rate": 2}))).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) =
        admin(&emulator, Method::POST, "/_emulator/faults/rules", Some(json!({"kind": "explode"}))).await;
    assert_eq!(status, 400);
    let (status, _) = admin(
        &emulator,
        Method::POST,
        "/_emulator/faults/rules",
        Some(json!({"action": "Nope", "kind": "reset"})),
    )
    .await;
    assert_eq!(status, 400);

    let (status, body) = admin(&emulator, Method::DELETE, "/_emulator/faults", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["config"]["reset_rate"], 0.0);
    assert_eq!(client.call("RunInstances", run_params("x")).await.instance_ids().len(), 2);

    let (_, stats) = admin(&emulator, Method::GET, "/_emulator/stats", None).await;
    assert_eq!(stats["requests"]["RunInstances"], 2);
    assert_eq!(stats["requests"]["DescribeZones"], 1);
    assert_eq!(stats["faults"]["reset"], 1);
    assert_eq!(stats["instances"], 2);

    let (status, body) =
        admin(&emulator, Method::POST, "/_emulator/clock", Some(json!({"advance_ms": 1500}))).await;
    assert_eq!((status, body["offset_ms"].as_i64()), (200, Some(1500)));
}
