//! The wire protocol over HTTP: request styles, signature checks and their error codes, the
//! response envelope, and rate limits.

use cvmfleet_wire::sign::{self, SecretKey, Tc3Request, V1Method};
use cvmfleet_wire::{API_VERSION, flat};
use serde_json::json;

use crate::common::{Client, Style, config, now, start};

#[tokio::test]
async fn every_style_is_accepted() {
    let emulator = start(config()).await;
    let client = Client::new(&emulator);
    for style in [
        Style::PostTc3,
        Style::GetTc3,
        Style::GetV1(V1Method::HmacSha1),
        Style::GetV1(V1Method::HmacSha256),
        Style::PostV1(V1Method::HmacSha1),
        Style::PostV1(V1Method::HmacSha256),
    ] {
        let params = json!({"Filters": [{"Name": "zone", "Values": ["ap-guangzhou-3"]}], "Limit": 5});
        let reply = client.send(style, "DescribeInstances", &params).await.expect("transport");
        reply.assert_envelope();
        assert_eq!(reply.ok()["TotalCount"], 0, "{style:?}");
    }
}

/// Sends a TC3 POST whose parts the test may spoil.
struct Tc3 {
    action: &'static str,
    version: &'static str,
    region: &'static str,
    ts: i64,
    body: Vec<u8>,
    sign_key: SecretKey,
    secret_id: String,
    signed_host: Option<String>,
    extra_signed: Vec<(&'static str, &'static str)>,
    authorization: Option<String>,
}

impl Tc3 {
    fn new(client: &Client, action: &'static str, body: &str) -> Self {
        Tc3 {
            action,
            version: API_VERSION,
            region: "ap-guangzhou",
            ts: now(),
            body: body.as_bytes().to_vec(),
            sign_key: client.key.clone(),
            secret_id: client.secret_id.clone(),
            signed_host: None,
            extra_signed: Vec::new(),
            authorization: None,
        }
    }

    async fn send(self, client: &Client) -> crate::common::Reply {
        let host = self.signed_host.clone().unwrap_or_else(|| client.host.clone());
        let mut signed = vec![("content-type", "application/json"), ("host", host.as_str())];
        signed.extend(self.extra_signed.iter().copied());
        let hash = sign::sha256_hex(&self.body);
        let request = Tc3Request {
            method: "POST",
            query: "",
            headers: &signed,
            payload_hash: &hash,
            service: "cvm",
            timestamp: self.ts,
        };
        let authorization = self.authorization.unwrap_or_else(|| {
            sign::tc3_sign(&request, &self.sign_key).authorization(&self.secret_id, "cvm")
        });
        let mut headers = vec![
            ("authorization".to_owned(), authorization),
            ("content-type".to_owned(), "application/json".to_owned()),
            ("x-tc-action".to_owned(), self.action.to_owned()),
            ("x-tc-version".to_owned(), self.version.to_owned()),
            ("x-tc-timestamp".to_owned(), self.ts.to_string()),
        ];
        if !self.region.is_empty() {
            headers.push(("x-tc-region".to_owned(), self.region.to_owned()));
        }
        for (k, v) in &self.extra_signed {
            if !headers.iter().any(|(h, _)| h == k) {
                headers.push(((*k).to_owned(), (*v).to_owned()));
            }
        }
        client.send_raw(reqwest::Method::POST, "", headers, self.body).await.expect("transport")
    }
}

#[tokio::test]
async fn signature_and_protocol_errors_have_their_codes() {
    let emulator = start(config()).await;
    let client = Client::new(&emulator);
    let body = r#"{"Limit": 1}"#;

    let ok = Tc3::new(&client, "DescribeInstances", body).send(&client).await;
    ok.assert_envelope();
    ok.ok();

    // The newest doc signs x-tc-action too.
    let mut with_action = Tc3::new(&client, "DescribeInstances", body);
    with_action.extra_signed = vec![("x-tc-action", "DescribeInstances")];
    with_action.send(&client).await.ok();

    let mut cases: Vec<(&str, Tc3)> = Vec::new();
    let mut expired = Tc3::new(&client, "DescribeInstances", body);
    expired.ts -= 301;
    cases.push(("AuthFailure.SignatureExpire", expired));
    let mut future = Tc3::new(&client, "DescribeInstances", body);
    future.ts += 400;
    cases.push(("AuthFailure.SignatureExpire", future));
    let mut unknown_id = Tc3::new(&client, "DescribeInstances", body);
    unknown_id.secret_id = "AKIDnobodyHasThisKey000000000000000".into();
    cases.push(("AuthFailure.SecretIdNotFound", unknown_id));
    let mut wrong_key = Tc3::new(&client, "DescribeInstances", body);
    wrong_key.sign_key = SecretKey::new("not the key");
    cases.push(("AuthFailure.SignatureFailure", wrong_key));
    let mut wrong_host = Tc3::new(&client, "DescribeInstances", body);
    // Signing the host without its port is a different host.
    wrong_host.signed_host = Some("127.0.0.1".into());
    cases.push(("AuthFailure.SignatureFailure", wrong_host));
    let mut garbage = Tc3::new(&client, "DescribeInstances", body);
    garbage.authorization = Some("Bearer abc".into());
    cases.push(("AuthFailure.InvalidAuthorization", garbage));
    cases.push(("InvalidAction", Tc3::new(&client, "DescribeEverything", body)));
    let mut version = Tc3::new(&client, "DescribeInstances", body);
    version.version = "2015-01-01";
    cases.push(("NoSuchVersion", version));
    cases.push((
        "UnknownParameter",
        Tc3::new(&client, "DescribeInstances", r#"{"Limit": 1, "Colour": "red"}"#),
    ));
    cases.push(("InvalidParameter", Tc3::new(&client, "DescribeInstances", r#"{"Limit": "#)));
    cases.push(("InvalidParameter", Tc3::new(&client, "DescribeInstances", "[1, 2]")));
    cases.push(("InvalidParameter", Tc3::new(&client, "DescribeInstances", r#"{"Limit": "lots"}"#)));
    let mut no_region = Tc3::new(&client, "DescribeInstances", body);
    no_region.region = "";
    cases.push(("MissingParameter", no_region));
    let mut bad_region = Tc3::new(&client, "DescribeInstances", body);
    bad_region.region = "mars-north-1";
    cases.push(("UnsupportedRegion", bad_region));
    for (code, request) in cases {
        let reply = request.send(&client).await;
        reply.assert_envelope();
        assert_eq!(reply.code(), code, "{}", reply.body);
    }

    // A body changed after signing fails.
    let ts = now();
    let mut headers = client.tc3_headers(
        "DescribeInstances",
        API_VERSION,
        ts,
        "POST",
        "",
        br#"{"Limit": 1}"#,
        "application/json",
    );
    headers.retain(|(k, _)| k != "x-tc-region");
    headers.push(("x-tc-region".into(), "ap-guangzhou".into()));
    let reply = client
        .send_raw(reqwest::Method::POST, "", headers, br#"{"Limit": 2}"#.to_vec())
        .await
        .expect("transport");
    assert_eq!(reply.code(), "AuthFailure.SignatureFailure");

    // Unsigned requests and other methods.
    let reply =
        client.send_raw(reqwest::Method::POST, "", Vec::new(), b"{}".to_vec()).await.expect("transport");
    reply.assert_envelope();
    assert_eq!(reply.code(), "AuthFailure.InvalidAuthorization");
    let reply = client.send_raw(reqwest::Method::PUT, "", Vec::new(), Vec::new()).await.expect("transport");
    reply.assert_envelope();
    assert_eq!(reply.code(), "UnsupportedProtocol");
}

#[tokio::test]
async fn v1_errors_and_get_query_order() {
    let emulator = start(config()).await;
    let client = Client::new(&emulator);
    let ts = now();
    let params = json!({"Limit": 2});

    // The signature covers the sorted parameters; any wire order verifies.
    let mut pairs = client.v1_pairs("DescribeInstances", ts, V1Method::HmacSha256, &params, "GET");
    pairs.reverse();
    let reply = client
        .send_raw(reqwest::Method::GET, &flat::encode_query(&pairs), Vec::new(), Vec::new())
        .await
        .unwrap();
    reply.ok();

    let tampered: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| if k == "Limit" { (k.clone(), "3".to_owned()) } else { (k.clone(), v.clone()) })
        .collect();
    let reply = client
        .send_raw(reqwest::Method::GET, &flat::encode_query(&tampered), Vec::new(), Vec::new())
        .await
        .unwrap();
    assert_eq!(reply.code(), "AuthFailure.SignatureFailure");

    // SHA-1 signature sent as SHA-256 fails.
    let mut sha1 = client.v1_pairs("DescribeInstances", ts, V1Method::HmacSha1, &params, "GET");
    sha1.push(("SignatureMethod".into(), "HmacSHA256".into()));
    let reply = client
        .send_raw(reqwest::Method::GET, &flat::encode_query(&sha1), Vec::new(), Vec::new())
        .await
        .unwrap();
    assert_eq!(reply.code(), "AuthFailure.SignatureFailure");

    let old = client.v1_pairs("DescribeInstances", ts - 1000, V1Method::HmacSha1, &params, "GET");
    let reply = client
        .send_raw(reqwest::Method::GET, &flat::encode_query(&old), Vec::new(), Vec::new())
        .await
        .unwrap();
    assert_eq!(reply.code(), "AuthFailure.SignatureExpire");

    let unknown = client.clone().credentials("AKIDnobody", "k");
    let pairs = unknown.v1_pairs("DescribeInstances", ts, V1Method::HmacSha1, &params, "GET");
    let reply = client
        .send_raw(reqwest::Method::GET, &flat::encode_query(&pairs), Vec::new(), Vec::new())
        .await
        .unwrap();
    assert_eq!(reply.code(), "AuthFailure.SecretIdNotFound");

    let pairs =
        client.v1_pairs("DescribeInstances", ts, V1Method::HmacSha1, &json!({"Offset.x": "1"}), "GET");
    let reply = client
        .send_raw(reqwest::Method::GET, &flat::encode_query(&pairs), Vec::new(), Vec::new())
        .await
        .unwrap();
    assert_eq!(reply.code(), "InvalidParameter");

    let pairs = client.v1_pairs("DescribeInstances", ts, V1Method::HmacSha1, &json!({"Bogus": "1"}), "GET");
    let reply = client
        .send_raw(reqwest::Method::GET, &flat::encode_query(&pairs), Vec::new(), Vec::new())
        .await
        .unwrap();
    assert_eq!(reply.code(), "UnknownParameter");

    let pairs = client.v1_pairs("Explode", ts, V1Method::HmacSha1, &params, "GET");
    let reply = client
        .send_raw(reqwest::Method::GET, &flat::encode_query(&pairs), Vec::new(), Vec::new())
        .await
        .unwrap();
    assert_eq!(reply.code(), "InvalidAction");
}

#[tokio::test]
async fn unsigned_payloads_are_accepted() {
    let emulator = start(config()).await;
    let client = Client::new(&emulator);
    let ts = now();
    let host = client.host.clone();
    let signed = [("content-type", "application/json"), ("host", host.as_str())];
    let hash = sign::sha256_hex(b"UNSIGNED-PAYLOAD");
    let request = Tc3Request {
        method: "POST",
        query: "",
        headers: &signed,
        payload_hash: &hash,
        service: "cvm",
        timestamp: ts,
    };
    let authorization = sign::tc3_sign(&request, &client.key).authorization(&client.secret_id, "cvm");
    let headers = vec![
        ("authorization".to_owned(), authorization),
        ("content-type".to_owned(), "application/json".to_owned()),
        ("x-tc-content-sha256".to_owned(), "UNSIGNED-PAYLOAD".to_owned()),
        ("x-tc-action".to_owned(), "DescribeZones".to_owned()),
        ("x-tc-version".to_owned(), API_VERSION.to_owned()),
        ("x-tc-timestamp".to_owned(), ts.to_string()),
        ("x-tc-region".to_owned(), "ap-guangzhou".to_owned()),
    ];
    let reply = client.send_raw(reqwest::Method::POST, "", headers, b"{}".to_vec()).await.unwrap();
    assert_eq!(reply.ok()["TotalCount"], 5);
}

#[tokio::test]
async fn rate_limits_follow_the_published_defaults() {
    let emulator = start(config().rate_limits(true)).await;
    let client = Client::new(&emulator);
    let started = std::time::Instant::now();
    let burst: Vec<_> = (0..25)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                client.call("TerminateInstances", json!({"InstanceIds": ["ins-00000000"]})).await
            })
        })
        .collect();
    let mut limited = 0u64;
    for task in burst {
        let reply = task.await.expect("join");
        reply.assert_envelope();
        match reply.code() {
            "RequestLimitExceeded" => limited += 1,
            "InvalidInstanceId.NotFound" => {}
            other => panic!("unexpected {other}"),
        }
    }
    // 10 per second with a full bucket of 10: the burst gets 10 in, plus what refilled while
    // it lasted, and the rest refused.
    let admitted = 25 - limited;
    let refilled = (started.elapsed().as_secs_f64() * 10.0).ceil() as u64;
    assert!((10..=10 + refilled).contains(&admitted), "{admitted} admitted, {refilled} refilled");
    // Another action, region or SecretId has its own allowance.
    client.call("DescribeZones", json!({})).await.ok();
    Client::new(&emulator)
        .region("ap-hongkong")
        .call("TerminateInstances", json!({"InstanceIds": ["ins-00000000"]}))
        .await;
    let stats = emulator.stats();
    assert_eq!(stats.errors_of("TerminateInstances", "RequestLimitExceeded"), limited);
}
