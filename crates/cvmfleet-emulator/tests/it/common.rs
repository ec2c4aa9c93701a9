//! Test helpers: an emulator on port 0 and a tiny signed-request client built on the wire
//! crate's signers (TC3 POST/GET and v1 GET/POST).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cvmfleet_emulator::{DEV_SECRET_ID, DEV_SECRET_KEY, Emulator, EmulatorConfig, RunningEmulator};
use cvmfleet_wire::sign::{self, SecretKey, Tc3Request, V1Method};
use cvmfleet_wire::{API_VERSION, Service, flat};
use serde_json::Value;

/// A config for tests: instant lifecycle, no rate limits.
pub fn config() -> EmulatorConfig {
    EmulatorConfig::default().instant().rate_limits(false)
}

pub async fn start(config: EmulatorConfig) -> RunningEmulator {
    Emulator::start(config).await.expect("emulator starts")
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// A decoded answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Value,
}

impl Reply {
    pub fn response(&self) -> &Value {
        &self.body["Response"]
    }

    pub fn error_code(&self) -> Option<&str> {
        self.response()["Error"]["Code"].as_str()
    }

    /// The error code, failing the test when the call succeeded.
    pub fn code(&self) -> &str {
        self.error_code().unwrap_or_else(|| panic!("expected an error, got {}", self.body))
    }

    /// The `Response` of a successful call, failing the test on an error.
    pub fn ok(&self) -> &Value {
        assert!(self.error_code().is_none(), "expected success, got {}", self.body);
        self.response()
    }

    pub fn request_id(&self) -> &str {
        self.response()["RequestId"].as_str().unwrap_or_default()
    }

    /// Checks the envelope every processed request must have.
    pub fn assert_envelope(&self) {
        assert_eq!(self.status, 200, "{}", self.body);
        assert_eq!(self.content_type.as_deref(), Some("application/json"));
        let id = self.request_id();
        assert!(uuid_like(id), "RequestId {id:?} is not a UUID");
    }

    pub fn instance_ids(&self) -> Vec<String> {
        self.ok()["InstanceIdSet"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }
}

pub fn uuid_like(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// How a request is signed and sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// POST, JSON body, TC3.
    PostTc3,
    /// GET, flattened query, TC3.
    GetTc3,
    /// GET, flattened query, v1 with this method.
    GetV1(V1Method),
    /// POST, form body, v1 with this method.
    PostV1(V1Method),
}

/// A signed-request client.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    pub host: String,
    pub secret_id: String,
    pub key: SecretKey,
    pub region: String,
}

impl Client {
    pub fn new(emulator: &RunningEmulator) -> Self {
        Client {
            http: http().timeout(Duration::from_secs(20)).build().expect("client"),
            host: emulator.host(),
            secret_id: DEV_SECRET_ID.into(),
            key: SecretKey::new(DEV_SECRET_KEY),
            region: "ap-guangzhou".into(),
        }
    }

    pub fn region(mut self, region: &str) -> Self {
        self.region = region.into();
        self
    }

    pub fn credentials(mut self, id: &str, key: &str) -> Self {
        self.secret_id = id.into();
        self.key = SecretKey::new(key);
        self
    }

    /// POST TC3 with the given params.
    pub async fn call(&self, action: &str, params: Value) -> Reply {
        self.send(Style::PostTc3, action, &params).await.expect("transport")
    }

    /// POST TC3 to the Tag service (scope `tag`, version 2018-08-13, no region).
    pub async fn tag(&self, action: &str, params: Value) -> Reply {
        let body = serde_json::to_vec(&params).unwrap_or_default();
        let mut headers = self.tc3_headers_for(
            Service::Tag,
            action,
            Service::Tag.version(),
            now(),
            "POST",
            "",
            &body,
            "application/json",
        );
        headers.retain(|(k, _)| k != "x-tc-region");
        self.send_raw(reqwest::Method::POST, "", headers, body).await.expect("transport")
    }

    /// Sends in any style; `Err` on a transport failure (reset, lost response).
    pub async fn send(&self, style: Style, action: &str, params: &Value) -> Result<Reply, reqwest::Error> {
        let ts = now();
        match style {
            Style::PostTc3 => {
                let body = serde_json::to_vec(params).unwrap_or_default();
                let headers =
                    self.tc3_headers(action, API_VERSION, ts, "POST", "", &body, "application/json");
                self.send_raw(reqwest::Method::POST, "", headers, body).await
            }
            Style::GetTc3 => {
                let query = flat::encode_query(&flat::flatten(params));
                let headers = self.tc3_headers(
                    action,
                    API_VERSION,
                    ts,
                    "GET",
                    &query,
                    b"",
                    "application/x-www-form-urlencoded",
                );
                self.send_raw(reqwest::Method::GET, &query, headers, Vec::new()).await
            }
            Style::GetV1(method) | Style::PostV1(method) => {
                let pairs = self.v1_pairs(
                    action,
                    ts,
                    method,
                    params,
                    if matches!(style, Style::GetV1(_)) { "GET" } else { "POST" },
                );
                let encoded = flat::encode_query(&pairs);
                if matches!(style, Style::GetV1(_)) {
                    self.send_raw(reqwest::Method::GET, &encoded, Vec::new(), Vec::new()).await
                } else {
                    let headers =
                        vec![("content-type".to_owned(), "application/x-www-form-urlencoded".to_owned())];
                    self.send_raw(reqwest::Method::POST, "", headers, encoded.into_bytes()).await
                }
            }
        }
    }

    /// The v1 parameters, signed (Signature last).
    pub fn v1_pairs(
        &self,
        action: &str,
        ts: i64,
        method: V1Method,
        params: &Value,
        http: &str,
    ) -> Vec<(String, String)> {
        let mut pairs = flat::flatten(params);
        pairs.extend([
            ("Action".to_owned(), action.to_owned()),
            ("Version".to_owned(), API_VERSION.to_owned()),
            ("Region".to_owned(), self.region.clone()),
            ("Timestamp".to_owned(), ts.to_string()),
            ("Nonce".to_owned(), "11886".to_owned()),
            ("SecretId".to_owned(), self.secret_id.clone()),
        ]);
        if method == V1Method::HmacSha256 {
            pairs.push(("SignatureMethod".to_owned(), "HmacSHA256".to_owned()));
        }
        let to_sign = sign::v1_string_to_sign(http, &self.host, "/", &pairs);
        pairs.push(("Signature".to_owned(), sign::v1_sign(method, &self.key, &to_sign)));
        pairs
    }

    /// TC3 headers for a CVM request, signing content-type and host.
    #[allow(clippy::too_many_arguments)]
    pub fn tc3_headers(
        &self,
        action: &str,
        version: &str,
        ts: i64,
        method: &str,
        query: &str,
        body: &[u8],
        content_type: &str,
    ) -> Vec<(String, String)> {
        self.tc3_headers_for(Service::Cvm, action, version, ts, method, query, body, content_type)
    }

    /// TC3 headers for a request of `service`, signing content-type and host.
    #[allow(clippy::too_many_arguments)]
    pub fn tc3_headers_for(
        &self,
        service: Service,
        action: &str,
        version: &str,
        ts: i64,
        method: &str,
        query: &str,
        body: &[u8],
        content_type: &str,
    ) -> Vec<(String, String)> {
        let payload_hash = sign::sha256_hex(body);
        let signed = [("content-type", content_type), ("host", self.host.as_str())];
        let request = Tc3Request {
            method,
            query,
            headers: &signed,
            payload_hash: &payload_hash,
            service: service.name(),
            timestamp: ts,
        };
        let authorization =
            sign::tc3_sign(&request, &self.key).authorization(&self.secret_id, service.name());
        vec![
            ("authorization".into(), authorization),
            ("content-type".into(), content_type.into()),
            ("x-tc-action".into(), action.into()),
            ("x-tc-version".into(), version.into()),
            ("x-tc-timestamp".into(), ts.to_string()),
            ("x-tc-region".into(), self.region.clone()),
        ]
    }

    /// Sends a request as built; the Host header is the emulator's `ip:port`.
    pub async fn send_raw(
        &self,
        method: reqwest::Method,
        query: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Result<Reply, reqwest::Error> {
        let url = if query.is_empty() {
            format!("http://{}/", self.host)
        } else {
            format!("http://{}/?{query}", self.host)
        };
        let mut request = self.http.request(method, url).body(body);
        for (k, v) in headers {
            request = request.header(k, v);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let bytes = response.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Reply { status, content_type, body })
    }
}

/// A reqwest client builder. reqwest is built without a default crypto provider (issue 23 §2),
/// so the tests install ring, the one cvmfleet uses.
pub fn http() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// Fetches an admin endpoint.
pub async fn admin(
    emulator: &RunningEmulator,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let client = http().build().expect("client");
    let mut request = client.request(method, format!("{}{path}", emulator.endpoint()));
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_string());
    }
    let response = request.send().await.expect("admin request");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}
