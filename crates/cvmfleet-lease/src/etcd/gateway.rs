//! etcd's HTTP/JSON gateway (`/v3/...`, etcd ≥ 3.4), spoken with the `reqwest` client cvmfleet
//! already uses for the cloud API.
//!
//! Why the gateway and not gRPC (issue 23 §1): a gRPC client needs code generated from etcd's
//! `.proto` files, and `etcd-client` generates it at build time with `protoc`, so a machine with
//! only Rust could not build cvmfleet. The gateway is part of every etcd server since 3.4, serves
//! the same RPCs as JSON on the client port, and needs no generated code: the six calls the
//! lock uses are a few JSON fields each (bytes fields are base64, 64-bit integers are strings).
//! It also drops tonic, prost, h2 and a second TLS stack from the build. etcd 3.3 served it under
//! `/v3beta` and is out of support; it is not handled.
//!
//! Every call is one HTTP/1.1 POST; errors come back as `{"code": N, "message": ...}` with gRPC's
//! code numbers (3.4 also adds `"error"`), streamed answers as one `{"result": ...}` or
//! `{"error": ...}` object per line.

use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::EtcdOptions;

/// The most of an answer read: etcd's answers to these calls are a few hundred bytes; a
/// misbehaving peer cannot make the client buffer more.
const MAX_ANSWER: usize = 1 << 20;

/// gRPC status codes etcd answers with.
pub(crate) const INVALID_ARGUMENT: i64 = 3;
pub(crate) const NOT_FOUND: i64 = 5;
pub(crate) const PERMISSION_DENIED: i64 = 7;
pub(crate) const FAILED_PRECONDITION: i64 = 9;
pub(crate) const UNAUTHENTICATED: i64 = 16;

/// What went wrong with one call.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// No answer: connection refused, TLS handshake failed, the connection broke.
    #[error("transport error")]
    Transport(#[source] reqwest::Error),
    /// etcd answered with an error status.
    #[error("etcd answered code {code}: {message}")]
    Status {
        /// gRPC's code number.
        code: i64,
        /// etcd's message.
        message: String,
    },
    /// The answer is not what the API documents.
    #[error("etcd's answer is not understood: {0}")]
    Malformed(String),
}

impl CallError {
    /// The gRPC code etcd answered with, if it answered.
    pub(crate) fn code(&self) -> Option<i64> {
        match self {
            CallError::Status { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// The gateway of one etcd cluster: its members' base URLs, the HTTP client and, with
/// authentication, the current token.
pub(crate) struct Gateway {
    http: reqwest::Client,
    bases: Vec<String>,
    /// The member that answered last, tried first.
    preferred: AtomicUsize,
    user: Option<(String, String)>,
    token: Mutex<Option<String>>,
}

impl Gateway {
    /// A gateway for `options`; connects nothing yet.
    pub(crate) fn new(options: &EtcdOptions) -> Result<Gateway, CallError> {
        let scheme = if options.tls.is_some() { "https" } else { "http" };
        let config = match &options.tls {
            Some(tls) => tls.config(),
            None => rustls::ClientConfig::builder_with_provider(super::tls::provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| CallError::Malformed(e.to_string()))?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        };
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .connect_timeout(options.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(transport)?;
        Ok(Gateway {
            http,
            bases: options.endpoints.iter().map(|e| format!("{scheme}://{e}")).collect(),
            preferred: AtomicUsize::new(0),
            user: options.user.clone(),
            token: Mutex::new(None),
        })
    }

    /// Sends `body` to `path` on the first member that accepts a connection, starting with the
    /// one that answered last. Only connection failures move on to the next member: a request
    /// that may have arrived is never sent twice.
    async fn send(
        &self,
        path: &str,
        body: &Value,
        token: Option<&str>,
    ) -> Result<reqwest::Response, CallError> {
        let count = self.bases.len();
        let start = self.preferred.load(Ordering::Relaxed);
        let mut last = None;
        for step in 0..count {
            let member = (start + step) % count;
            let mut request = self.http.post(format!("{}{path}", self.bases[member])).json(body);
            if let Some(token) = token {
                request = request.header(reqwest::header::AUTHORIZATION, token);
            }
            match request.send().await {
                Ok(answer) => {
                    self.preferred.store(member, Ordering::Relaxed);
                    return Ok(answer);
                }
                Err(e) if e.is_connect() && step + 1 < count => last = Some(e),
                Err(e) => return Err(transport(e)),
            }
        }
        Err(last.map_or_else(|| CallError::Malformed("no etcd endpoint".into()), transport))
    }

    /// The token to send, authenticating first when a user is configured and none is held.
    async fn token(&self, renew: bool) -> Result<Option<String>, CallError> {
        let Some((name, password)) = &self.user else { return Ok(None) };
        let mut held = self.token.lock().await;
        if renew || held.is_none() {
            let body = json!({"name": name, "password": password});
            let answer = read(self.send("/v3/auth/authenticate", &body, None).await?).await?;
            let token = answer["token"]
                .as_str()
                .ok_or_else(|| CallError::Malformed("authenticate answered no token".into()))?;
            *held = Some(token.to_owned());
        }
        Ok(held.clone())
    }

    /// One unary call: its answer object. An expired token is renewed once.
    pub(crate) async fn call(&self, path: &str, body: &Value) -> Result<Value, CallError> {
        let token = self.token(false).await?;
        match read(self.send(path, body, token.as_deref()).await?).await {
            Err(CallError::Status { code: UNAUTHENTICATED, .. }) if self.user.is_some() => {
                let token = self.token(true).await?;
                read(self.send(path, body, token.as_deref()).await?).await
            }
            other => other,
        }
    }

    /// A streaming call (watch): the answer, to read with [`Lines`].
    pub(crate) async fn stream(&self, path: &str, body: &Value) -> Result<Lines, CallError> {
        let token = self.token(false).await?;
        let answer = self.send(path, body, token.as_deref()).await?;
        if !answer.status().is_success() {
            return Err(read(answer)
                .await
                .err()
                .unwrap_or_else(|| CallError::Malformed("error status".into())));
        }
        Ok(Lines { answer, buffer: Vec::new() })
    }
}

/// A transport error without its URL: the store's description already names the endpoints.
fn transport(error: reqwest::Error) -> CallError {
    CallError::Transport(error.without_url())
}

/// Reads an answer of at most [`MAX_ANSWER`] bytes.
async fn body(mut answer: reqwest::Response) -> Result<Vec<u8>, CallError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(transport)? {
        if bytes.len() + chunk.len() > MAX_ANSWER {
            return Err(CallError::Malformed(format!("an answer longer than {MAX_ANSWER} bytes")));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// An error object (`{"code": N, "message": ...}`, or a stream's `{"grpc_code": N, ...}`).
fn status(error: &Value) -> CallError {
    let code = int(&error["code"]).or_else(|| int(&error["grpc_code"])).unwrap_or(2);
    let message = error["message"].as_str().or_else(|| error["error"].as_str()).unwrap_or("no message");
    CallError::Status { code, message: message.to_owned() }
}

/// A unary answer: the object on success, the status on an error.
async fn read(answer: reqwest::Response) -> Result<Value, CallError> {
    let success = answer.status().is_success();
    let http_status = answer.status();
    let bytes = body(answer).await?;
    // A streamed call answers one object per line; the unary calls used here read the first.
    let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let value: Value = serde_json::from_slice(first).map_err(|e| {
        CallError::Malformed(format!(
            "HTTP {http_status}, {e}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        ))
    })?;
    if !success {
        return Err(status(&value));
    }
    if value["error"].is_object() {
        return Err(status(&value["error"]));
    }
    Ok(match value.get("result") {
        Some(result) => result.clone(),
        None => value,
    })
}

/// The messages of a streamed answer, one JSON object per line.
pub(crate) struct Lines {
    answer: reqwest::Response,
    buffer: Vec<u8>,
}

impl Lines {
    /// The next message, `None` at the end of the stream.
    pub(crate) async fn next(&mut self) -> Result<Option<Value>, CallError> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let value: Value =
                    serde_json::from_slice(&line).map_err(|e| CallError::Malformed(e.to_string()))?;
                if value["error"].is_object() {
                    return Err(status(&value["error"]));
                }
                return Ok(Some(value.get("result").cloned().unwrap_or(value)));
            }
            match self.answer.chunk().await.map_err(transport)? {
                Some(chunk) if self.buffer.len() + chunk.len() <= MAX_ANSWER => {
                    self.buffer.extend_from_slice(&chunk)
                }
                Some(_) => {
                    return Err(CallError::Malformed(format!("a message longer than {MAX_ANSWER} bytes")));
                }
                None if self.buffer.is_empty() => return Ok(None),
                None => self.buffer.push(b'\n'),
            }
        }
    }
}

/// A 64-bit integer field: a string in proto3's JSON mapping, a number accepted too.
pub(crate) fn int(value: &Value) -> Option<i64> {
    match value {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// A bytes field.
pub(crate) fn bytes(data: impl AsRef<[u8]>) -> String {
    BASE64.encode(data)
}

/// A bytes field read back as text (holders are written as UTF-8).
pub(crate) fn text(value: &Value) -> String {
    let decoded = value.as_str().and_then(|s| BASE64.decode(s).ok()).unwrap_or_default();
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proto3_json_fields_read_both_ways() {
        assert_eq!(int(&json!("7587869219453462275")), Some(7_587_869_219_453_462_275));
        assert_eq!(int(&json!(15)), Some(15));
        assert_eq!(int(&Value::Null), None);
        assert_eq!(text(&json!(bytes("replica-a/42"))), "replica-a/42");
        let error = status(&json!({"error": "etcdserver: user name is empty", "code": 3}));
        assert_eq!(error.to_string(), "etcd answered code 3: etcdserver: user name is empty");
        assert_eq!(status(&json!({"grpc_code": 5, "message": "gone"})).code(), Some(NOT_FOUND));
    }
}
