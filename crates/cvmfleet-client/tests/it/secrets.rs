//! The secret key never shows: not in errors (Display, Debug, source chains), not in Debug of
//! the client and its parts, not in any tracing output. Also the error texts, snapshotted.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cvmfleet_client::{ClientConfig, CvmClient, Error, RequestMethod};
use cvmfleet_wire::api::{DescribeInstancesRequest, RunInstancesRequest};
use cvmfleet_wire::model::LoginSettings;
use serde_json::json;

use crate::fake::{Fake, Reply, SECRET_KEY, error, success};
use crate::{credentials, ids, test_config};

/// A tracing writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = format!("{error} | {error:?}");
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(&format!(" | {inner} | {inner:?}"));
        source = inner.source();
    }
    text
}

/// One failing call of every kind, in order.
async fn failures() -> (Vec<Error>, Vec<String>) {
    let fake = Fake::scripted(vec![
        error(
            "AuthFailure.SignatureFailure",
            "The provided credentials could not be validated.",
            "ed93f3cb-f35e",
        ),
        Reply::Status(502, "<html>Bad Gateway</html>\n".into()),
        Reply::Json("not json".into()),
        Reply::Reset,
        Reply::Stall,
        success(json!({}), "r-ok"),
    ])
    .await;
    let config = ClientConfig {
        retry: cvmfleet_client::RetryPolicy::never(),
        timeout: Duration::from_millis(300),
        method: RequestMethod::Get,
        ..test_config(fake.endpoint())
    };
    let client = CvmClient::new(config, credentials().with_token("sts-token-secret")).unwrap();
    let run = RunInstancesRequest {
        login_settings: Some(LoginSettings { password: Some("Pa55w0rd!".into()), ..Default::default() }),
        ..RunInstancesRequest::default()
    };
    let mut errors = Vec::new();
    for _ in 0..5 {
        errors.push(client.run_instances("ap-guangzhou", &run).await.unwrap_err());
    }
    errors.push(client.call("bad region", &DescribeInstancesRequest::default()).await.unwrap_err());
    let refused = {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = ClientConfig {
            retry: cvmfleet_client::RetryPolicy::never(),
            ..test_config(format!("http://127.0.0.1:{port}"))
        };
        CvmClient::new(config, credentials()).unwrap()
    };
    errors.push(refused.terminate_instances("ap-guangzhou", &ids(1)).await.remove(0).result.unwrap_err());
    errors
        .push(CvmClient::new(ClientConfig::with_endpoint("http://example.com"), credentials()).unwrap_err());

    let debug_prints = vec![
        format!("{client:?}"),
        format!("{:?}", credentials().with_token("sts-token-secret")),
        format!("{:?}", client.sign_request("ap-guangzhou", &run).unwrap()),
        format!("{:?}", client.config()),
    ];
    (errors, debug_prints)
}

#[test]
fn the_secret_key_never_appears_in_errors_debug_or_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (errors, debug_prints) =
        tracing::subscriber::with_default(subscriber, || runtime.block_on(failures()));

    let mut everything = debug_prints.join("\n");
    for error in &errors {
        everything.push('\n');
        everything.push_str(&chain(error));
    }
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("cvm_call") && logs.contains("RunInstances"), "tracing was captured:\n{logs}");
    everything.push_str(&logs);
    for secret in [SECRET_KEY, "sts-token-secret", "Pa55w0rd!"] {
        assert!(!everything.contains(secret), "`{secret}` leaked:\n{everything}");
    }

    // The error kinds are the ones intended, and their texts are reviewed in a snapshot.
    let kinds: Vec<&str> = errors
        .iter()
        .map(|e| match e {
            Error::Api { .. } => "Api",
            Error::HttpStatus { .. } => "HttpStatus",
            Error::MalformedResponse { .. } => "MalformedResponse",
            Error::Transport { .. } => "Transport",
            Error::Timeout { .. } => "Timeout",
            Error::InvalidRequest { .. } => "InvalidRequest",
            Error::Connect { .. } => "Connect",
            Error::Config(_) => "Config",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "Api",
            "HttpStatus",
            "MalformedResponse",
            "Transport",
            "Timeout",
            "InvalidRequest",
            "Connect",
            "Config"
        ]
    );
    let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    insta::assert_snapshot!("error_messages", texts.join("\n"));
}
