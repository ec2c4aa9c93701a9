//! Injected faults and the exact number of attempts each one costs.

use std::time::{Duration, Instant};

use cvmfleet_client::{Error, RateLimit};
use cvmfleet_wire::Action;
use cvmfleet_wire::api::{
    DescribeInstancesRequest, DescribeZonesRequest, ModifyInstancesAttributeRequest, RunInstancesRequest,
    StopInstancesRequest,
};
use serde_json::json;

use crate::fake::{Fake, Reply, error, success};
use crate::{client, client_with, ids};

fn statuses_ok() -> Reply {
    success(
        json!({"TotalCount": 1, "InstanceStatusSet": [{"InstanceId": "ins-00000000", "InstanceState": "RUNNING"}]}),
        "r-ok",
    )
}

fn describe() -> DescribeInstancesRequest {
    DescribeInstancesRequest { limit: Some(1), ..DescribeInstancesRequest::default() }
}

fn run(token: Option<&str>) -> RunInstancesRequest {
    RunInstancesRequest {
        image_id: Some("img-pmqg1cw7".into()),
        client_token: token.map(str::to_owned),
        ..RunInstancesRequest::default()
    }
}

fn only_error(outcomes: Vec<cvmfleet_client::BatchOutcome>) -> Error {
    let [outcome] = <[_; 1]>::try_from(outcomes).expect("one batch");
    outcome.result.expect_err("the batch should fail")
}

#[tokio::test]
async fn server_errors_on_reads_are_retried_until_the_budget_is_spent() {
    let fake = Fake::scripted(vec![Reply::Status(502, "<html>bad gateway</html>".into())]).await;
    let client = client(&fake);
    let err = client.call("ap-guangzhou", &describe()).await.unwrap_err();
    assert!(matches!(err, Error::HttpStatus { status: 502, .. }), "{err:?}");
    assert_eq!(fake.count(), 3);
    let stats = client.stats();
    assert_eq!((stats.attempts[&Action::DescribeInstances], stats.retries, stats.throttled), (3, 2, 0));
    // Every failed attempt is counted by action and code (issue 6, for watch metrics).
    assert_eq!(stats.errors[&Action::DescribeInstances].get("HttpStatus"), Some(&3));
    assert_eq!(client.take_stats().errors.len(), 1);
    assert!(client.stats().errors.is_empty(), "take_stats resets the error counts too");
}

#[tokio::test]
async fn a_transient_server_error_costs_one_extra_attempt() {
    let fake = Fake::scripted(vec![Reply::Status(503, String::new()), statuses_ok()]).await;
    let client = client(&fake);
    let statuses = client.describe_statuses("ap-guangzhou", &ids(1)).await.unwrap();
    assert_eq!(statuses[0].instance_state, "RUNNING");
    assert_eq!(fake.count(), 2);
}

#[tokio::test]
async fn client_errors_from_a_gateway_are_not_retried() {
    let fake = Fake::scripted(vec![Reply::Status(404, "not here".into())]).await;
    let err = client(&fake).call("ap-guangzhou", &describe()).await.unwrap_err();
    assert!(matches!(err, Error::HttpStatus { status: 404, .. }), "{err:?}");
    assert_eq!(fake.count(), 1);
}

#[tokio::test]
async fn server_errors_on_mutations_without_a_token_are_not_retried() {
    let fake = Fake::scripted(vec![Reply::Status(500, String::new())]).await;
    let client = client(&fake);
    let err = only_error(client.terminate_instances("ap-guangzhou", &ids(1)).await);
    assert!(matches!(err, Error::HttpStatus { status: 500, .. }), "{err:?}");
    assert_eq!(fake.count(), 1);
    let err = client.run_instances("ap-guangzhou", &run(None)).await.unwrap_err();
    assert!(matches!(err, Error::HttpStatus { .. }), "{err:?}");
    assert_eq!(fake.count(), 2);
    assert_eq!(client.stats().retries, 0);
}

#[tokio::test]
async fn run_instances_with_a_token_is_retried_with_the_same_token() {
    let fake = Fake::scripted(vec![
        error("InternalError", "oops", "r-1"),
        Reply::Reset,
        success(json!({"InstanceIdSet": ["ins-aaaaaaaa"]}), "r-3"),
    ])
    .await;
    let answer = client(&fake).run_instances("ap-guangzhou", &run(Some("fleet-web-0001"))).await.unwrap();
    assert_eq!(answer.data.instance_id_set, ["ins-aaaaaaaa"]);
    let requests = fake.requests();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        assert_eq!(request.body, requests[0].body);
        assert_eq!(request.params()["ClientToken"], "fleet-web-0001");
    }
}

#[tokio::test]
async fn run_instances_without_a_token_is_not_retried_after_an_internal_error() {
    let fake = Fake::scripted(vec![error("InternalError.TradeUnknownError", "unknown", "r-1")]).await;
    let err = client(&fake).run_instances("ap-guangzhou", &run(None)).await.unwrap_err();
    assert_eq!(err.code(), Some("InternalError.TradeUnknownError"));
    assert!(err.is_retryable(), "transient, but not safe to repeat blindly");
    assert_eq!(fake.count(), 1);
}

#[tokio::test]
async fn connection_resets_are_retried_for_reads_only() {
    let fake = Fake::scripted(vec![Reply::Reset]).await;
    let client = client(&fake);
    let err = client.call("ap-guangzhou", &DescribeZonesRequest {}).await.unwrap_err();
    assert!(matches!(err, Error::Transport { action: Action::DescribeZones, .. }), "{err:?}");
    assert_eq!(fake.count(), 3);

    let modify = ModifyInstancesAttributeRequest {
        instance_ids: ids(2),
        instance_name: Some("web".into()),
        ..ModifyInstancesAttributeRequest::default()
    };
    let err = only_error(client.modify_instances_attribute("ap-guangzhou", &modify).await);
    assert!(matches!(err, Error::Transport { action: Action::ModifyInstancesAttribute, .. }), "{err:?}");
    assert_eq!(fake.count(), 4);
}

#[tokio::test]
async fn slow_bodies_time_out() {
    let fake = Fake::scripted(vec![Reply::Stall]).await;
    let client = client_with(&fake, |c| c.timeout = Duration::from_millis(200));
    let started = Instant::now();
    let err = client.call("ap-guangzhou", &describe()).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { action: Action::DescribeInstances, .. }), "{err:?}");
    assert_eq!(fake.count(), 3);
    assert!(started.elapsed() >= Duration::from_millis(600), "{:?}", started.elapsed());

    let err = only_error(client.start_instances("ap-guangzhou", &ids(1)).await);
    assert!(matches!(err, Error::Timeout { action: Action::StartInstances, .. }), "{err:?}");
    assert_eq!(fake.count(), 4);
}

#[tokio::test]
async fn slow_answers_within_the_timeout_are_fine() {
    let fake =
        Fake::scripted(vec![Reply::Delayed(Duration::from_millis(100), Box::new(statuses_ok()))]).await;
    let client = client_with(&fake, |c| c.timeout = Duration::from_millis(1000));
    client.describe_statuses("ap-guangzhou", &ids(1)).await.unwrap();
    assert_eq!(fake.count(), 1);
}

#[tokio::test]
async fn non_json_bodies_are_malformed_and_not_retried() {
    let fake = Fake::scripted(vec![Reply::Json("<html>hello</html>".into())]).await;
    let err = client(&fake).call("ap-guangzhou", &describe()).await.unwrap_err();
    assert!(matches!(err, Error::MalformedResponse { request_id: None, .. }), "{err:?}");
    assert_eq!(fake.count(), 1);
}

#[tokio::test]
async fn mistyped_fields_are_malformed_with_their_request_id() {
    let fake =
        Fake::scripted(vec![success(json!({"TotalCount": "many", "InstanceSet": []}), "r-typed")]).await;
    let err = client(&fake).call("ap-guangzhou", &describe()).await.unwrap_err();
    assert!(matches!(err, Error::MalformedResponse { .. }), "{err:?}");
    assert_eq!(err.request_id(), Some("r-typed"));
    assert_eq!(fake.count(), 1);
}

#[tokio::test]
async fn error_envelopes_are_api_errors() {
    let fake = Fake::scripted(vec![error(
        "InvalidParameterValue.Range",
        "InstanceCount out of range",
        "3c140219-cfe9",
    )])
    .await;
    let err = client(&fake).run_instances("ap-guangzhou", &run(Some("t"))).await.unwrap_err();
    assert_eq!(err.code(), Some("InvalidParameterValue.Range"));
    assert_eq!(err.request_id(), Some("3c140219-cfe9"));
    assert_eq!(err.action(), Some(Action::RunInstances));
    assert!(!err.is_retryable());
    assert_eq!(fake.count(), 1);
}

#[tokio::test]
async fn internal_errors_on_reads_are_retried() {
    let fake = Fake::scripted(vec![error("InternalServerError", "try later", "r-1"), statuses_ok()]).await;
    client(&fake).describe_statuses("ap-guangzhou", &ids(1)).await.unwrap();
    assert_eq!(fake.count(), 2);
}

#[tokio::test]
async fn throttling_is_retried_even_for_mutations_and_slows_the_action_down() {
    let fake =
        Fake::scripted(vec![error("RequestLimitExceeded", "too fast", "r-1"), success(json!({}), "r-2")])
            .await;
    let client = client_with(&fake, |c| {
        c.rate_limits.insert(Action::TerminateInstances, RateLimit::per_second(1000));
    });
    let outcomes = client.terminate_instances("ap-guangzhou", &ids(1)).await;
    assert_eq!(outcomes[0].result.as_deref().unwrap(), "r-2");
    assert_eq!(fake.count(), 2);
    let stats = client.stats();
    assert_eq!((stats.throttled, stats.retries), (1, 1));
    assert_eq!(stats.errors[&Action::TerminateInstances].get("RequestLimitExceeded"), Some(&1));
    assert_eq!(client.current_rate(Action::TerminateInstances), Some(500.0));
}

#[tokio::test]
async fn persistent_throttling_sub_codes_spend_the_budget() {
    let fake = Fake::scripted(vec![error("RequestLimitExceeded.UinLimitExceeded", "too fast", "r-1")]).await;
    let client = client(&fake);
    let err = only_error(
        client
            .stop_instances(
                "ap-guangzhou",
                &StopInstancesRequest { instance_ids: ids(1), ..Default::default() },
            )
            .await,
    );
    assert!(err.is_throttled(), "{err}");
    assert_eq!(fake.count(), 3);
    assert_eq!(client.stats().throttled, 3);
}

#[tokio::test]
async fn refused_connections_are_retried_for_every_action() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = crate::test_config(format!("http://127.0.0.1:{port}"));
    let client = cvmfleet_client::CvmClient::new(config, crate::credentials()).unwrap();
    let err = only_error(client.terminate_instances("ap-guangzhou", &ids(1)).await);
    assert!(matches!(err, Error::Connect { action: Action::TerminateInstances, .. }), "{err:?}");
    assert_eq!(client.call_counts()[&Action::TerminateInstances], 3);
}

#[tokio::test]
async fn the_client_paces_each_action_at_its_rate() {
    let fake = Fake::scripted(vec![statuses_ok()]).await;
    let client = client_with(&fake, |c| {
        c.rate_limits.insert(Action::DescribeInstancesStatus, RateLimit::per_second(20));
    });
    let started = Instant::now();
    for _ in 0..5 {
        client.describe_statuses("ap-guangzhou", &ids(1)).await.unwrap();
    }
    // Four gaps of 50 ms; the first call goes at once.
    assert!(started.elapsed() >= Duration::from_millis(200), "{:?}", started.elapsed());
    assert_eq!(fake.count(), 5);
}

#[tokio::test]
async fn invalid_regions_are_refused_before_sending() {
    let fake = Fake::scripted(vec![statuses_ok()]).await;
    let err = client(&fake).describe_statuses("ap guangzhou\r\nX: y", &ids(1)).await.unwrap_err();
    assert!(matches!(err, Error::InvalidRequest { .. }), "{err:?}");
    assert_eq!(fake.count(), 0);
}

/// Issue 15: a `watch` replica that lost its lease must send nothing more, not even the retry
/// of a call that failed while it still held it. A gated client asks its gate before every
/// attempt.
#[tokio::test]
async fn issue_15_a_closed_gate_withholds_every_attempt_retries_included() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let fake = Fake::scripted(vec![Reply::Status(502, String::new())]).await;
    let base = client(&fake);
    let open = Arc::new(AtomicBool::new(true));
    let seen = open.clone();
    let fake_count = Arc::new(fake);
    let counted = fake_count.clone();
    // The gate closes as soon as one attempt went out: the first failure's retry is withheld.
    let gated = base.gated(move || counted.count() == 0 && seen.load(Ordering::SeqCst));
    let err = gated.call("ap-guangzhou", &describe()).await.unwrap_err();
    assert!(matches!(err, Error::Withheld { action: Action::DescribeInstances }), "{err:?}");
    assert_eq!(fake_count.count(), 1, "the retry was not sent");
    open.store(false, Ordering::SeqCst);
    let err = gated.call("ap-guangzhou", &DescribeZonesRequest {}).await.unwrap_err();
    assert!(err.to_string().contains("DescribeZones not sent"), "{err}");
    assert_eq!(fake_count.count(), 1);
    // The ungated original shares the counters but not the gate.
    assert!(base.call("ap-guangzhou", &describe()).await.is_err());
    assert_eq!(fake_count.count(), 4);
    assert_eq!(base.stats().errors[&Action::DescribeInstances].get("Withheld"), None);
}
