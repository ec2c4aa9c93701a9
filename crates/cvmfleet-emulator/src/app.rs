//! The request pipeline: faults, authentication, rate limits, the action, the journal, the
//! answer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use cvmfleet_wire::Action;
use cvmfleet_wire::envelope::{RESPONSE_CONTENT_TYPE, encode_error, encode_success};
use cvmfleet_wire::sign::SecretKey;

use crate::auth::{self, RawRequest};
use crate::faults::{Faults, PreFault};
use crate::ratelimit::RateLimiter;
use crate::stats::Stats;
use crate::store::{PendingSnapshot, Store};
use cvmfleet_cloud::{ApiError, Ctx, Encode, LaunchDraw, World};

/// Largest request body accepted (the v1 POST limit is 1 MB; JSON bodies are allowed more).
const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// The state and the journal it is saved in, under one lock so that journal order is state
/// order.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) world: World,
    pub(crate) store: Option<Store>,
}

/// Everything a request handler needs.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) inner: Mutex<Inner>,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) stats: Mutex<Stats>,
    pub(crate) limiter: Mutex<RateLimiter>,
    pub(crate) credentials: HashMap<String, SecretKey>,
    pub(crate) rate_limits: bool,
    /// Added to the wall clock for lifecycle deadlines (admin `clock` endpoint); signatures
    /// always use the real clock.
    pub(crate) clock_offset_ms: AtomicI64,
    /// Journal size that triggers a compaction (see [`crate::store`]).
    pub(crate) compact_after_bytes: u64,
}

/// Locks a mutex, carrying on after a panic elsewhere: every critical section leaves the data
/// consistent or is a plain counter.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Marks a response that must not be sent: the connection is closed instead (reset when
/// `reset`). The server's connection loop acts on it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Disconnect {
    pub(crate) reset: bool,
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// [`encode_success`] without building a JSON tree first: the response struct is written
/// directly and `RequestId` appended, which makes a 100-instance page several times cheaper.
/// The bytes are the same (unit-tested); anything that does not serialize to an object goes
/// through the wire crate's encoder.
pub(crate) fn encode<T: serde::Serialize>(data: &T, request_id: &str) -> Vec<u8> {
    let Ok(body) = serde_json::to_vec(data) else { return encode_success(data, request_id) };
    if body.first() != Some(&b'{') || body.last() != Some(&b'}') {
        return encode_success(data, request_id);
    }
    let mut out = Vec::with_capacity(body.len() + 80);
    out.extend_from_slice(br#"{"Response":"#);
    out.extend_from_slice(&body[..body.len() - 1]);
    if body.len() > 2 {
        out.push(b',');
    }
    out.extend_from_slice(br#""RequestId":"#);
    if serde_json::to_writer(&mut out, request_id).is_err() {
        return encode_success(data, request_id);
    }
    out.extend_from_slice(b"}}");
    out
}

/// The emulator's [`Encode`]: the HTTP body of a success, with the request's `RequestId`.
struct Bytes<'a> {
    request_id: &'a str,
}

impl Encode for Bytes<'_> {
    type Body = Vec<u8>;

    fn encode<T: serde::Serialize>(&self, data: &T) -> Vec<u8> {
        encode(data, self.request_id)
    }
}

fn json(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, RESPONSE_CONTENT_TYPE)], body).into_response()
}

fn disconnect(reset: bool) -> Response {
    let mut response = Response::new(Body::empty());
    response.extensions_mut().insert(Disconnect { reset });
    response
}

impl App {
    /// Moves the world's clock forward by `by` ms and returns the new offset. Saturating: the
    /// offset stops at `i64::MAX` instead of wrapping to the past (issue 10), however often it
    /// is advanced.
    pub(crate) fn advance_clock_ms(&self, by: i64) -> i64 {
        let step = |offset: i64| Some(offset.saturating_add(by));
        let previous = self.clock_offset_ms.fetch_update(Ordering::Relaxed, Ordering::Relaxed, step);
        previous.unwrap_or_else(|offset| offset).saturating_add(by)
    }

    /// The clock of the world: wall clock plus the admin offset.
    pub(crate) fn world_now_ms(&self) -> i64 {
        now_ms().saturating_add(self.clock_offset_ms.load(Ordering::Relaxed))
    }

    /// Runs one authenticated action and returns its encoded answer, plus a snapshot to write
    /// when the journal asks for compaction.
    fn process(
        &self,
        raw: &RawRequest<'_>,
        request_id: &str,
    ) -> (Result<Vec<u8>, ApiError>, Option<PendingSnapshot>) {
        let call = match auth::authenticate(raw, &self.credentials, now_secs()) {
            Ok(call) => call,
            Err(e) => return (Err(e), None),
        };
        if let Err(e) = lock(&self.inner).world.check_region(call.action, &call.region) {
            return (Err(e), None);
        }
        if self.rate_limits
            && !lock(&self.limiter).admit(call.action, &call.region, &call.secret_id, Instant::now())
        {
            let e = ApiError::new(
                "RequestLimitExceeded",
                format!(
                    "Your current request rate of {} in region {} has exceeded the limit of {} per second.",
                    call.action,
                    call.region,
                    call.action.published_rate_limit()
                ),
            );
            return (Err(e), None);
        }
        let ctx = Ctx {
            secret_id: call.secret_id.clone(),
            region: call.region.clone(),
            request_id: request_id.to_owned(),
            now_ms: self.world_now_ms(),
        };
        let mut inner = lock(&self.inner);
        let (mut failures, mut vanished) = (0u64, 0u64);
        let mut faults = lock(&self.faults);
        let mut launch = |draw: LaunchDraw| {
            let fate = faults.launch_fate(draw);
            failures += u64::from(fate.fails);
            vanished += u64::from(!fate.fails && fate.stock_vanishes && draw.low_stock);
            fate
        };
        let outcome = inner.world.call(&ctx, call.action, &call.params, &mut launch, &Bytes { request_id });
        drop(faults);
        if call.action == Action::RunInstances
            && let Ok((_, mutation)) = &outcome
        {
            let mut stats = lock(&self.stats);
            for _ in 0..failures {
                stats.fault("launch_failure");
            }
            for _ in 0..vanished {
                stats.fault("stock_vanished");
            }
            // A create puts exactly its new records; a replayed token puts none.
            stats.created(mutation.len());
        }
        let (body, mutation) = match outcome {
            Ok(pair) => pair,
            Err(e) => return (Err(e), None),
        };
        if mutation.is_empty() {
            return (Ok(body), None);
        }
        let Inner { world, store } = &mut *inner;
        let Some(store) = store else { return (Ok(body), None) };
        if let Err(e) = store.append(&mutation) {
            tracing::error!(error = %e, "cannot append to the state journal");
            return (Err(ApiError::internal("The emulator could not save its state.")), None);
        }
        let pending = if store.wants_compaction(self.compact_after_bytes) {
            match store.begin_compaction(&world.snapshot()) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::error!(error = %e, "cannot start a state compaction");
                    None
                }
            }
        } else {
            None
        };
        (Ok(body), pending)
    }
}

/// The API endpoint: every request that is not under `/_emulator/`.
pub(crate) async fn api(State(app): State<Arc<App>>, request: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            let e = ApiError::new("RequestSizeLimitExceeded", "The request body is larger than 10 MB.");
            lock(&app.stats).error("-", &e.code);
            return json(encode_error(&e.code, &e.message, &request_id));
        }
    };
    let raw = RawRequest {
        method: &parts.method,
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        body: &body,
    };
    let action = auth::action_hint(&raw);
    lock(&app.stats).request(&action);

    // Parameters are read for the fault rules only when one matches on them.
    let wants_params = lock(&app.faults).wants_params();
    let run_instances = action == Action::RunInstances.as_str();
    let params = if wants_params || run_instances { auth::params_hint(&raw) } else { Vec::new() };
    if run_instances {
        lock(&app.stats).run_instances_request(&params);
    }
    let decision = lock(&app.faults).decide(&action, &params);
    if !decision.latency.is_zero() {
        lock(&app.stats).fault("latency");
        tokio::time::sleep(decision.latency).await;
    }
    match decision.pre {
        Some(PreFault::Reset) => {
            lock(&app.stats).fault("reset");
            return disconnect(true);
        }
        Some(PreFault::Error(e)) => {
            let mut stats = lock(&app.stats);
            stats.fault("error");
            stats.error(&action, &e.code);
            return json(encode_error(&e.code, &e.message, &request_id));
        }
        None => {}
    }

    let started = Instant::now();
    let (result, pending) = app.process(&raw, &request_id);
    let body = match result {
        Ok(body) => {
            tracing::debug!(%action, %request_id, elapsed_us = started.elapsed().as_micros(), "ok");
            body
        }
        Err(e) => {
            tracing::debug!(%action, %request_id, code = %e.code, message = %e.message, "error");
            lock(&app.stats).error(&action, &e.code);
            encode_error(&e.code, &e.message, &request_id)
        }
    };
    if let Some(pending) = pending {
        match tokio::task::spawn_blocking(move || pending.write()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot write the state snapshot"),
            Err(e) => tracing::error!(error = %e, "the snapshot writer failed"),
        }
    }
    if decision.lose_response {
        lock(&app.stats).fault("lose_response");
        return disconnect(false);
    }
    json(body)
}

/// Answers admin requests that went wrong.
pub(crate) fn admin_error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": message.into() });
    (status, [(header::CONTENT_TYPE, RESPONSE_CONTENT_TYPE)], body.to_string()).into_response()
}

#[cfg(test)]
mod tests {
    use cvmfleet_wire::api::{
        DescribeInstancesResponse, DescribeZonesResponse, EmptyResponse, RunInstancesResponse,
    };
    use cvmfleet_wire::model::{Instance, Tag, ZoneInfo};

    use super::*;
    use cvmfleet_cloud::InstancePage;

    #[test]
    fn fast_encoding_is_byte_identical_to_the_wire_encoder() {
        let id = "3c140219-cfe9-470e-b241-907877d6fb03";
        let run = RunInstancesResponse { instance_id_set: vec!["ins-1vogaxgk".into()] };
        assert_eq!(encode(&run, id), encode_success(&run, id));
        assert_eq!(encode(&EmptyResponse {}, id), encode_success(&EmptyResponse {}, id));
        let zones = DescribeZonesResponse { total_count: 1, zone_set: vec![ZoneInfo::default()] };
        assert_eq!(encode(&zones, id), encode_success(&zones, id));
        let instance = Instance {
            instance_id: "ins-1vogaxgk".into(),
            tags: vec![Tag::new("cvmfleet:fleet", "web \"1\" 未命名")],
            public_ip_addresses: Some(vec!["198.18.0.1".into()]),
            ..Instance::default()
        };
        let owned = DescribeInstancesResponse {
            total_count: 7,
            instance_set: vec![instance.clone(), instance.clone()],
        };
        let page = InstancePage { total_count: 7, instance_set: vec![&instance, &instance] };
        assert_eq!(encode(&page, id), encode_success(&owned, id));
    }
}
