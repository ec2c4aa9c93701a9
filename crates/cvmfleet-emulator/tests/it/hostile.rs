//! Hostile requests to the emulator (issue 10): oversize requests get the API's envelope, and
//! the admin clock cannot wrap.

use std::io::{Read as _, Write as _};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Client, admin, config, start};

/// Sends `head` (and nothing after it) on a raw connection and returns the whole answer. The
/// request is written from another thread: the emulator answers before it has read all of it.
fn raw_exchange(host: &str, head: Vec<u8>) -> String {
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&head);
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if answer.is_empty() => panic!("no answer: {e}"),
            Err(_) => break,
        }
    }
    let _ = sender.join();
    String::from_utf8_lossy(&answer).into_owned()
}

fn body_of(answer: &str) -> Value {
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {answer}"))
}

/// Issue 10, item 19: a 1 MB request header got a bare HTTP 431 with an empty body; every
/// answer is the API's JSON envelope, oversize requests included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_10_oversize_requests_are_answered_with_the_envelope() {
    let emulator = start(config()).await;
    let host = emulator.host();
    let big_header = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nX-Padding: {}\r\nContent-Length: 2\r\n\r\n{{}}",
        "a".repeat(1024 * 1024)
    );
    let many_headers: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("POST / HTTP/1.1\r\nHost: {host}\r\n{many_headers}Content-Length: 2\r\n\r\n{{}}");
    let long_uri = format!("GET /?{} HTTP/1.1\r\nHost: {host}\r\n\r\n", "a".repeat(1024 * 1024));
    for request in [big_header, many, long_uri] {
        let host = host.clone();
        let answer = tokio::task::spawn_blocking(move || raw_exchange(&host, request.into_bytes()))
            .await
            .expect("exchange");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.to_ascii_lowercase().contains("content-type: application/json"), "{answer}");
        let body = body_of(&answer);
        assert_eq!(body["Response"]["Error"]["Code"], "RequestSizeLimitExceeded", "{answer}");
        assert!(body["Response"]["RequestId"].as_str().is_some_and(|id| !id.is_empty()), "{answer}");
    }
    // An oversize body, through the API path.
    let body = format!("{{\"a\": \"{}\"}}", "b".repeat(11 * 1024 * 1024));
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let answer = tokio::task::spawn_blocking(move || raw_exchange(&host, request.into_bytes()))
        .await
        .expect("exchange");
    assert_eq!(body_of(&answer)["Response"]["Error"]["Code"], "RequestSizeLimitExceeded", "{answer}");
    // The emulator still serves.
    Client::new(&emulator).call("DescribeZones", json!({})).await.assert_envelope();
}

/// Issue 10, item 20: advancing the clock by u64::MAX ms twice answered i64::MAX while the stored
/// offset wrapped to -2. The offset saturates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_10_the_admin_clock_saturates() {
    let emulator = start(config()).await;
    for _ in 0..2 {
        let (status, body) =
            admin(&emulator, Method::POST, "/_emulator/clock", Some(json!({"advance_ms": u64::MAX}))).await;
        assert_eq!((status, body["offset_ms"].as_i64()), (200, Some(i64::MAX)));
    }
    emulator.advance_clock(Duration::from_secs(1));
    let (_, body) = admin(&emulator, Method::POST, "/_emulator/clock", Some(json!({"advance_ms": 0}))).await;
    assert_eq!(body["offset_ms"].as_i64(), Some(i64::MAX), "the offset never wraps to the past");
    Client::new(&emulator).call("DescribeZones", json!({})).await.assert_envelope();
}
