//! [`CvmClient`]: one signed, rate-limited, retried call at a time.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use cvmfleet_wire::envelope::{Reply, decode_reply};
use cvmfleet_wire::sign::{Tc3Request, sha256_hex, tc3_sign};
use cvmfleet_wire::{Action, ApiRequest, Service, flat};
use serde_json::Value;
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::config::{ClientConfig, Endpoint, RequestMethod};
use crate::credentials::Credentials;
use crate::error::{ConfigError, Error};
use crate::ratelimit::RateLimiter;
use crate::retry::Decision;

/// The TLS configuration of every cloud API connection: rustls on its `ring` provider, the one
/// crypto provider compiled into cvmfleet (issue 23 §2), with the platform's trust roots through
/// rustls-platform-verifier, as reqwest's own default would have them.
fn tls_config() -> Result<rustls::ClientConfig, ConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let unusable = |e: rustls::Error| ConfigError::HttpClient(Box::new(e));
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone()).map_err(unusable)?;
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(unusable)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// Largest response body read, in bytes: the documented maximum response size (50 MB).
pub const MAX_RESPONSE_BYTES: usize = 50 * 1024 * 1024;

/// Largest GET request the service accepts, in bytes of query string (32 KiB).
pub const MAX_GET_QUERY_BYTES: usize = 32 * 1024;

/// Longest excerpt of an unexpected HTTP error body kept in [`Error::HttpStatus`].
const BODY_EXCERPT_CHARS: usize = 200;

/// The future a [`Transport`] answers with: the `Response` object's fields (without
/// `RequestId`) and the RequestId, or the error the call failed with.
pub type TransportFuture = Pin<Box<dyn Future<Output = Result<(Value, String), Error>> + Send>>;

/// Where calls go instead of HTTPS: an in-process cloud, so that the whole client (rate limits,
/// retries, paging) and everything above it runs under a deterministic simulation with paused
/// time. Production clients never set one ([`CvmClient::new`]); [`CvmClient::with_transport`]
/// does.
pub trait Transport: Send + Sync + 'static {
    /// Delivers one attempt of `action` with its parameters as they would be serialized on
    /// the wire. An answered error is [`Error::Api`]; a lost or broken exchange is
    /// [`Error::Transport`] (ambiguous: the call may have happened).
    fn send(&self, action: Action, region: &str, params: &Value) -> TransportFuture;
}

/// A successful call: the response fields and the request's ID.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer<T> {
    /// The `Response` fields.
    pub data: T,
    /// The `RequestId`, for Tencent support and for logs.
    pub request_id: String,
}

/// Counters of what the client sent, for benchmarks and run summaries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Attempts sent per action (retries included); actions never called are absent.
    pub attempts: BTreeMap<Action, u64>,
    /// Attempts the service answered with `RequestLimitExceeded*`.
    pub throttled: u64,
    /// Attempts that were retries of an earlier failed attempt.
    pub retries: u64,
    /// Failed attempts per action and error code: the service's code (e.g.
    /// `RequestLimitExceeded`), or the failure's kind when the service did not answer with one
    /// (`Connect`, `Transport`, `Timeout`, `HttpStatus`, `MalformedResponse`).
    pub errors: BTreeMap<Action, BTreeMap<String, u64>>,
}

#[derive(Debug, Default)]
struct Stats {
    attempts: [AtomicU64; Action::ALL.len()],
    throttled: AtomicU64,
    retries: AtomicU64,
    errors: Mutex<BTreeMap<(Action, String), u64>>,
}

/// The label a failed attempt is counted under in [`CallStats::errors`].
fn error_label(error: &Error) -> String {
    match error {
        Error::Api { code, .. } => code.clone(),
        Error::Connect { .. } => "Connect".into(),
        Error::Transport { .. } => "Transport".into(),
        Error::Timeout { .. } => "Timeout".into(),
        Error::HttpStatus { .. } => "HttpStatus".into(),
        Error::MalformedResponse { .. } => "MalformedResponse".into(),
        Error::ListingChanged { .. } => "ListingChanged".into(),
        Error::InvalidRequest { .. } | Error::Config(_) => "InvalidRequest".into(),
        Error::Withheld { .. } => "Withheld".into(),
    }
}

impl Stats {
    fn count_attempt(&self, action: Action) {
        if let Some(i) = Action::ALL.iter().position(|a| *a == action) {
            self.attempts[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn count_error(&self, action: Action, error: &Error) {
        let mut errors = self.errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *errors.entry((action, error_label(error))).or_insert(0) += 1;
    }

    fn read(&self, reset: bool) -> CallStats {
        let take = |counter: &AtomicU64| {
            if reset { counter.swap(0, Ordering::Relaxed) } else { counter.load(Ordering::Relaxed) }
        };
        let attempts = Action::ALL
            .iter()
            .zip(&self.attempts)
            .map(|(action, counter)| (*action, take(counter)))
            .filter(|(_, n)| *n > 0)
            .collect();
        let mut errors: BTreeMap<Action, BTreeMap<String, u64>> = BTreeMap::new();
        {
            let mut counted = self.errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for ((action, code), n) in counted.iter() {
                errors.entry(*action).or_default().insert(code.clone(), *n);
            }
            if reset {
                counted.clear();
            }
        }
        CallStats { attempts, throttled: take(&self.throttled), retries: take(&self.retries), errors }
    }
}

/// A request ready to send: what goes on the wire, signature included.
///
/// `Debug` leaves out the session token and the body (which may carry a login password).
#[derive(Clone)]
pub struct SignedRequest {
    /// `POST` or `GET`.
    pub method: RequestMethod,
    /// The full URL (with the query for GET).
    pub url: String,
    /// Every header sent, `Authorization` included.
    pub headers: Vec<(&'static str, String)>,
    /// The body (empty for GET).
    pub body: Vec<u8>,
}

impl fmt::Debug for SignedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (*k, if *k == "X-TC-Token" { "****" } else { v.as_str() }))
            .collect();
        f.debug_struct("SignedRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// A client of the CVM API. Cheap to clone: clones share the connection pool, the rate
/// limiters and the counters.
#[derive(Clone)]
pub struct CvmClient {
    inner: Arc<Inner>,
    /// Asked before every attempt; nothing is sent while it answers false ([`CvmClient::gated`]).
    gate: Option<Gate>,
}

/// A condition a [`CvmClient::gated`] client asks before every attempt.
pub type Gate = Arc<dyn Fn() -> bool + Send + Sync>;

struct Inner {
    config: ClientConfig,
    endpoint: Endpoint,
    /// The Tag service's endpoint ([`ClientConfig::tag_endpoint_url`]).
    tag_endpoint: Endpoint,
    credentials: Credentials,
    http: reqwest::Client,
    limiter: RateLimiter,
    stats: Stats,
    jitter: Mutex<fastrand::Rng>,
    /// Replaces signing and HTTP when set ([`CvmClient::with_transport`]).
    transport: Option<Arc<dyn Transport>>,
}

impl fmt::Debug for CvmClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CvmClient")
            .field("endpoint", &self.inner.endpoint.url.as_str())
            .field("tag_endpoint", &self.inner.tag_endpoint.url.as_str())
            .field("secret_id", &self.inner.credentials.secret_id)
            .field("method", &self.inner.config.method)
            .finish_non_exhaustive()
    }
}

impl CvmClient {
    /// Builds a client.
    ///
    /// # Errors
    /// [`Error::Config`] when the configuration or the credentials are unusable.
    pub fn new(config: ClientConfig, credentials: Credentials) -> Result<Self, Error> {
        let endpoint = config.validate()?;
        let tag_endpoint = config.validate_tag_endpoint()?;
        credentials.validate()?;
        let mut http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config()?)
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            // Redirects would re-send a signed request to a host it was not signed for.
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true);
        if endpoint.loopback || tag_endpoint.loopback {
            // A proxy from the environment must not intercept calls to a local emulator.
            http = http.no_proxy();
        }
        let http = http.build().map_err(|e| ConfigError::HttpClient(Box::new(e)))?;
        let limiter = RateLimiter::new(&config.rate_limits, config.throttle_cooldown);
        let jitter = match config.retry.jitter_seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        };
        Ok(CvmClient {
            inner: Arc::new(Inner {
                config,
                endpoint,
                tag_endpoint,
                credentials,
                http,
                limiter,
                stats: Stats::default(),
                jitter: Mutex::new(jitter),
                transport: None,
            }),
            gate: None,
        })
    }

    /// A client whose attempts go to `transport` instead of the network: rate limits, retries,
    /// paging and counters work as usual. For simulations and in-process tests.
    ///
    /// # Errors
    /// [`Error::Config`] when the configuration or the credentials are unusable.
    pub fn with_transport(
        config: ClientConfig,
        credentials: Credentials,
        transport: Arc<dyn Transport>,
    ) -> Result<Self, Error> {
        let mut client = CvmClient::new(config, credentials)?;
        if let Some(inner) = Arc::get_mut(&mut client.inner) {
            inner.transport = Some(transport);
        }
        Ok(client)
    }

    /// A clone (same connections, rate limits and counters) that asks `open` before every
    /// attempt, retries included, and fails with [`Error::Withheld`] instead of sending when it
    /// answers false. `watch` gates its client on holding the lease, so a replica that lost it
    /// sends nothing more, not even the retry of a call that was in flight.
    #[must_use]
    pub fn gated(&self, open: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        CvmClient { inner: self.inner.clone(), gate: Some(Arc::new(open)) }
    }

    /// The configuration the client was built with.
    #[must_use]
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Calls `R::ACTION` in `region` and returns the typed response.
    ///
    /// Waits for the action's rate limit before every attempt and retries per
    /// [`crate::retry`]. Each call is one debug-level `cvm_call` span carrying the action,
    /// region, attempts, latency, RequestId and error code.
    ///
    /// # Errors
    /// The last attempt's [`Error`].
    pub async fn call<R: ApiRequest>(&self, region: &str, request: &R) -> Result<Answer<R::Response>, Error> {
        let action = R::ACTION;
        let params = serde_json::to_value(request).map_err(|e| Error::InvalidRequest {
            action,
            reason: format!("cannot serialize the request: {e}"),
        })?;
        let has_client_token =
            params.get("ClientToken").and_then(Value::as_str).is_some_and(|token| !token.is_empty());
        let (data, request_id) = self.execute(action, region, &params, has_client_token).await?;
        match serde_json::from_value::<R::Response>(data) {
            Ok(data) => Ok(Answer { data, request_id }),
            Err(e) => Err(Error::MalformedResponse {
                action,
                reason: format!("unexpected fields ({e})"),
                request_id: Some(request_id),
            }),
        }
    }

    /// Signs `request` for `region` the way [`CvmClient::call`] would, without sending it: for
    /// inspection, debugging and benchmarks.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] when the request cannot be built.
    pub fn sign_request<R: ApiRequest>(&self, region: &str, request: &R) -> Result<SignedRequest, Error> {
        let action = R::ACTION;
        let params = serde_json::to_value(request).map_err(|e| Error::InvalidRequest {
            action,
            reason: format!("cannot serialize the request: {e}"),
        })?;
        self.sign(action, region, &params)
    }

    /// Attempts sent per action since the client was built or the counters were last taken.
    #[must_use]
    pub fn call_counts(&self) -> BTreeMap<Action, u64> {
        self.inner.stats.read(false).attempts
    }

    /// Every counter.
    #[must_use]
    pub fn stats(&self) -> CallStats {
        self.inner.stats.read(false)
    }

    /// Every counter, resetting them to zero.
    pub fn take_stats(&self) -> CallStats {
        self.inner.stats.read(true)
    }

    /// The rate currently in force for `action` (lower than configured while throttled).
    #[must_use]
    pub fn current_rate(&self, action: Action) -> Option<f64> {
        self.inner.limiter.current_rate(action)
    }

    async fn execute(
        &self,
        action: Action,
        region: &str,
        params: &Value,
        has_client_token: bool,
    ) -> Result<(Value, String), Error> {
        let span = tracing::debug_span!(
            "cvm_call",
            %action,
            region,
            attempts = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
            request_id = tracing::field::Empty,
            code = tracing::field::Empty,
        );
        self.attempts(action, region, params, has_client_token, &span).instrument(span.clone()).await
    }

    async fn attempts(
        &self,
        action: Action,
        region: &str,
        params: &Value,
        has_client_token: bool,
        span: &tracing::Span,
    ) -> Result<(Value, String), Error> {
        let inner = &self.inner;
        let started = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            inner.limiter.acquire(action).await;
            if self.gate.as_ref().is_some_and(|open| !open()) {
                tracing::debug!(attempt, "gate closed; not sending");
                return Err(Error::Withheld { action });
            }
            let sent = Instant::now();
            let result = match &inner.transport {
                Some(transport) => {
                    inner.stats.count_attempt(action);
                    transport.send(action, region, params).await
                }
                None => {
                    // Signed per attempt: a retry after a long backoff needs a fresh timestamp.
                    let signed = self.sign(action, region, params)?;
                    inner.stats.count_attempt(action);
                    self.send(action, signed).await
                }
            };
            let latency_ms = u64::try_from(sent.elapsed().as_millis()).unwrap_or(u64::MAX);
            span.record("attempts", attempt);
            span.record("latency_ms", u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
            let error = match result {
                Ok((data, request_id)) => {
                    span.record("request_id", request_id.as_str());
                    tracing::debug!(attempt, latency_ms, request_id = %request_id, "call succeeded");
                    return Ok((data, request_id));
                }
                Err(error) => error,
            };
            inner.stats.count_error(action, &error);
            if let Some(id) = error.request_id() {
                span.record("request_id", id);
            }
            if let Some(code) = error.code() {
                span.record("code", code);
            }
            if error.is_throttled() {
                inner.stats.throttled.fetch_add(1, Ordering::Relaxed);
                inner.limiter.slow_down(action);
            }
            let jitter = inner.jitter.lock().unwrap_or_else(std::sync::PoisonError::into_inner).f64();
            match inner.config.retry.decide(action, has_client_token, &error, attempt, jitter) {
                Decision::RetryAfter(wait) => {
                    tracing::debug!(
                        attempt,
                        latency_ms,
                        error = %error,
                        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        "attempt failed; retrying"
                    );
                    inner.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(wait).await;
                }
                Decision::GiveUp(reason) => {
                    tracing::debug!(attempt, latency_ms, error = %error, ?reason, "call failed");
                    return Err(error);
                }
            }
        }
    }

    fn sign(&self, action: Action, region: &str, params: &Value) -> Result<SignedRequest, Error> {
        let inner = &self.inner;
        let invalid = |reason: String| Error::InvalidRequest { action, reason };
        // Actions that take no region send none when given none (DescribeRegions, Tag).
        let needs_region = action.needs_region() || !region.is_empty();
        if needs_region
            && (region.is_empty() || !region.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            return Err(invalid(format!("`{region}` is not a region name")));
        }
        let service = action.service();
        let endpoint = match service {
            Service::Tag => &inner.tag_endpoint,
            _ => &inner.endpoint,
        };
        let method = inner.config.method;
        let (content_type, query, body) = match method {
            RequestMethod::Post => {
                let body = serde_json::to_vec(params)
                    .map_err(|e| invalid(format!("cannot serialize the request: {e}")))?;
                ("application/json", String::new(), body)
            }
            RequestMethod::Get => {
                let query = flat::encode_query(&flat::flatten(params));
                if query.len() > MAX_GET_QUERY_BYTES {
                    return Err(invalid(format!(
                        "the GET query is {} bytes, over the service's 32 KiB limit; use POST",
                        query.len()
                    )));
                }
                ("application/x-www-form-urlencoded", query, Vec::new())
            }
        };
        let timestamp = inner.config.clock.now();
        let payload_hash = sha256_hex(&body);
        let host = endpoint.host.as_str();
        // The two headers both official SDKs sign; every TC3 server accepts them.
        let signed_headers = [("content-type", content_type), ("host", host)];
        let signature = tc3_sign(
            &Tc3Request {
                method: method.as_str(),
                query: &query,
                headers: &signed_headers,
                payload_hash: &payload_hash,
                service: service.name(),
                timestamp,
            },
            &inner.credentials.secret_key,
        );
        let mut url = endpoint.url.clone();
        if !query.is_empty() {
            url.set_query(Some(&query));
        }
        let mut headers = vec![
            ("Authorization", signature.authorization(&inner.credentials.secret_id, service.name())),
            ("Content-Type", content_type.to_owned()),
            ("Host", host.to_owned()),
            ("X-TC-Action", action.as_str().to_owned()),
            ("X-TC-Timestamp", timestamp.to_string()),
            ("X-TC-Version", service.version().to_owned()),
        ];
        if !region.is_empty() {
            headers.push(("X-TC-Region", region.to_owned()));
        }
        headers.extend([
            ("X-TC-Language", inner.config.language.as_str().to_owned()),
            ("X-TC-RequestClient", inner.config.request_client.clone()),
        ]);
        if let Some(token) = &inner.credentials.token {
            headers.push(("X-TC-Token", token.expose().to_owned()));
        }
        Ok(SignedRequest { method, url: url.into(), headers, body })
    }

    async fn send(&self, action: Action, signed: SignedRequest) -> Result<(Value, String), Error> {
        let inner = &self.inner;
        let method = match signed.method {
            RequestMethod::Post => reqwest::Method::POST,
            RequestMethod::Get => reqwest::Method::GET,
        };
        let mut request = inner.http.request(method, signed.url.as_str());
        for (name, value) in &signed.headers {
            request = request.header(*name, value.as_str());
        }
        if signed.method == RequestMethod::Post {
            request = request.body(signed.body);
        }
        let mut response = request.send().await.map_err(|e| self.transport_error(action, e))?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport_error(action, e))? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(Error::MalformedResponse {
                    action,
                    reason: format!("the body exceeds {MAX_RESPONSE_BYTES} bytes"),
                    request_id: None,
                });
            }
            body.extend_from_slice(&chunk);
        }
        if status != reqwest::StatusCode::OK {
            let text = String::from_utf8_lossy(&body);
            let excerpt: String = text.chars().take(BODY_EXCERPT_CHARS).collect();
            return Err(Error::HttpStatus {
                action,
                status: status.as_u16(),
                body: excerpt.trim().to_owned(),
            });
        }
        match decode_reply::<Value>(&body) {
            Ok(Reply::Success { data, request_id }) => Ok((data, request_id)),
            Ok(Reply::Failure(e)) => {
                Err(Error::Api { action, code: e.code, message: e.message, request_id: e.request_id })
            }
            Err(e) => Err(Error::MalformedResponse { action, reason: e.reason, request_id: e.request_id }),
        }
    }

    fn transport_error(&self, action: Action, error: reqwest::Error) -> Error {
        if error.is_connect() {
            Error::Connect { action, source: Box::new(error) }
        } else if error.is_timeout() {
            Error::Timeout { action, after: self.inner.config.timeout }
        } else {
            Error::Transport { action, source: Box::new(error) }
        }
    }
}
