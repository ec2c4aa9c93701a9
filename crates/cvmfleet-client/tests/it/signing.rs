//! What the client puts on the wire, checked by a server that recomputes the signature.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use cvmfleet_client::{ClientConfig, Clock, Credentials, CvmClient, Language, RequestMethod};
use cvmfleet_wire::api::{DescribeInstancesRequest, RunInstancesRequest};
use cvmfleet_wire::model::{Filter, LoginSettings, Placement, Tag, TagSpecification};
use cvmfleet_wire::{Action, flat};
use serde_json::json;

use crate::fake::{Fake, Reply, error, success};
use crate::{client_with, credentials, test_config};

fn run_request() -> RunInstancesRequest {
    RunInstancesRequest {
        placement: Some(Placement { zone: "ap-guangzhou-3".into(), ..Placement::default() }),
        image_id: Some("img-pmqg1cw7".into()),
        instance_type: Some("S5.MEDIUM2".into()),
        instance_count: Some(2),
        instance_name: Some("未命名 web {R:1}".into()),
        client_token: Some("tok-1".into()),
        login_settings: Some(LoginSettings {
            password: Some("Pa55w0rd!".into()),
            ..LoginSettings::default()
        }),
        tag_specification: Some(vec![TagSpecification {
            resource_type: "instance".into(),
            tags: vec![Tag::new("fleet", "web"), Tag::new("env", "a b&c=d")],
        }]),
        dry_run: Some(false),
        ..RunInstancesRequest::default()
    }
}

#[tokio::test]
async fn post_requests_verify_server_side() {
    let fake =
        Fake::scripted(vec![success(json!({"InstanceIdSet": ["ins-aaaaaaaa", "ins-bbbbbbbb"]}), "r-1")])
            .await;
    let client = client_with(&fake, |_| {});
    let answer = client.run_instances("ap-guangzhou", &run_request()).await.unwrap();
    assert_eq!(answer.data.instance_id_set, ["ins-aaaaaaaa", "ins-bbbbbbbb"]);
    assert_eq!(answer.request_id, "r-1");

    let [request] = &fake.requests()[..] else { panic!("one request expected") };
    request.verify_signature().unwrap();
    assert_eq!(request.method, "POST");
    assert_eq!(request.target, "/");
    assert_eq!(request.header("Content-Type"), Some("application/json"));
    assert_eq!(request.header("Host"), Some(fake.addr.to_string().as_str()));
    assert_eq!(request.action(), "RunInstances");
    assert_eq!(request.header("X-TC-Version"), Some("2017-03-12"));
    assert_eq!(request.header("X-TC-Region"), Some("ap-guangzhou"));
    assert_eq!(request.header("X-TC-Language"), Some("en-US"));
    assert!(request.header("X-TC-RequestClient").unwrap().starts_with("cvmfleet/"));
    assert_eq!(request.header("X-TC-Token"), None);
    assert!(request.header("Authorization").unwrap().contains("SignedHeaders=content-type;host, "));
    let sent: RunInstancesRequest = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(sent, run_request());
}

#[tokio::test]
async fn get_requests_verify_server_side_and_flatten_parameters() {
    let fake = Fake::scripted(vec![success(json!({"InstanceIdSet": ["ins-aaaaaaaa"]}), "r-1")]).await;
    let client = client_with(&fake, |c| {
        c.method = RequestMethod::Get;
        c.language = Language::Chinese;
    });
    client.run_instances("ap-guangzhou", &run_request()).await.unwrap();
    let [request] = &fake.requests()[..] else { panic!("one request expected") };
    request.verify_signature().unwrap();
    assert_eq!(request.method, "GET");
    assert!(request.body.is_empty());
    assert_eq!(request.header("Content-Type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(request.header("X-TC-Language"), Some("zh-CN"));
    assert!(
        request
            .query()
            .contains("Placement.Zone=ap-guangzhou-3&InstanceType=S5.MEDIUM2&ImageId=img-pmqg1cw7"),
        "{}",
        request.query()
    );
    assert!(request.query().contains("TagSpecification.0.Tags.1.Value=a%20b%26c%3Dd"), "{}", request.query());
    let back: RunInstancesRequest = flat::from_pairs(&crate::fake::form_pairs(request.query())).unwrap();
    assert_eq!(back, run_request());
}

#[tokio::test]
async fn session_token_travels_as_x_tc_token() {
    let fake = Fake::scripted(vec![success(json!({"TotalCount": 0, "InstanceSet": []}), "r-1")]).await;
    let config = test_config(fake.endpoint());
    let client = CvmClient::new(config, credentials().with_token("sts-token-1")).unwrap();
    client.describe_instances_all("ap-shanghai", Vec::new()).await.unwrap();
    let request = &fake.requests()[0];
    request.verify_signature().unwrap();
    assert_eq!(request.header("X-TC-Token"), Some("sts-token-1"));
    assert_eq!(request.header("X-TC-Region"), Some("ap-shanghai"));
}

/// Notes §9 V5: the client's own GET request reproduces the Python SDK's signature.
#[test]
fn get_signature_matches_the_python_sdk_vector() {
    let config = ClientConfig {
        method: RequestMethod::Get,
        clock: Clock::fixed(1_551_113_065),
        ..ClientConfig::default()
    };
    let client = CvmClient::new(
        config,
        Credentials::new("AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******", "Gu5t9xGARNpq86cd98joQYCN3*******"),
    )
    .unwrap();
    let request = DescribeInstancesRequest {
        filters: Some(vec![Filter::new("instance-name", ["未命名"])]),
        limit: Some(1),
        ..DescribeInstancesRequest::default()
    };
    let signed = client.sign_request("ap-guangzhou", &request).unwrap();
    assert_eq!(
        signed.url,
        "https://cvm.tencentcloudapi.com/?Filters.0.Name=instance-name&Filters.0.Values.0=%E6%9C%AA%E5%91%BD%E5%90%8D&Limit=1"
    );
    let header = |name: &str| signed.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str());
    assert_eq!(
        header("Authorization"),
        Some(
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, \
             SignedHeaders=content-type;host, \
             Signature=b45aca44ded2c355722c92fe75f31c6f3d1a7353970a3d6fde8b7476f99ffe23"
        )
    );
    assert_eq!(header("Host"), Some("cvm.tencentcloudapi.com"));
    assert_eq!(header("X-TC-Timestamp"), Some("1551113065"));
}

#[tokio::test]
async fn every_retry_is_signed_afresh() {
    let fake = Fake::scripted(vec![
        error("RequestLimitExceeded", "slow down", "r-1"),
        error("RequestLimitExceeded", "slow down", "r-2"),
        success(json!({"TotalCount": 0, "InstanceStatusSet": []}), "r-3"),
    ])
    .await;
    let tick = Arc::new(AtomicI64::new(1_700_000_000));
    let clock = {
        let tick = tick.clone();
        Clock::from_fn(move || tick.fetch_add(7, Ordering::Relaxed))
    };
    let client = client_with(&fake, |c| c.clock = clock);
    client.describe_statuses("ap-guangzhou", &crate::ids(3)).await.unwrap();
    let requests = fake.requests();
    let stamps: Vec<&str> = requests.iter().map(|r| r.header("X-TC-Timestamp").unwrap()).collect();
    assert_eq!(stamps, ["1700000000", "1700000007", "1700000014"]);
    for request in &requests {
        request.verify_signature().unwrap();
    }
    assert_eq!(client.call_counts().get(&Action::DescribeInstancesStatus), Some(&3));
}

#[tokio::test]
async fn status_reply_fixture_is_sane() {
    // The fake itself must reject a wrong signature, or the tests above prove nothing.
    let fake = Fake::scripted(vec![Reply::Json("{}".into())]).await;
    let client =
        CvmClient::new(test_config(fake.endpoint()), Credentials::new(crate::fake::SECRET_ID, "wrong-key"))
            .unwrap();
    let _ = client.describe_statuses("ap-guangzhou", &crate::ids(1)).await;
    let error = fake.requests()[0].verify_signature().unwrap_err();
    assert!(error.starts_with("signature mismatch"), "{error}");
}
