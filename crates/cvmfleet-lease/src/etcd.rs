//! The lock in etcd (v3 API, through etcd's HTTP/JSON gateway: the `gateway` module says why), the
//! way etcd's own election recipe does it: a key attached to a lease.
//!
//! - **acquire**: `range` the key; when absent, grant a lease of the TTL and, in one transaction,
//!   create the key with this candidate's identity under that lease *if it still does not
//!   exist* (`create_revision == 0`). Losing the race revokes the fresh lease.
//! - **renew**: one keep-alive on the lease (TTL 0 in the answer means it expired), then check
//!   that the key is still attached to it (someone may have deleted it by hand).
//! - **release**: revoke the lease; etcd deletes the key with it.
//! - **wait_vacant**: watch the key for its deletion (a revoke or an expiry), so a standby takes
//!   over within milliseconds of the holder's exit rather than at its next poll.
//!
//! etcd counts a lease's TTL in whole seconds and enforces a minimum (1.5 × its election
//! timeout, 2 s with the defaults); the TTL it grants, which may be longer than asked, is the
//! one the elector's deadlines use.

mod gateway;
mod tls;

use std::fmt;
use std::time::Duration;

use serde_json::json;
use tokio::sync::OnceCell;

use self::gateway::{CallError, Gateway, bytes, int, text};
pub use self::tls::{EtcdTls, TlsError, TlsPart};
use crate::store::{Acquired, BoxError, LeaseError, LeaseStore};

/// Where and how to reach etcd, and which key to elect on.
#[derive(Clone)]
pub struct EtcdOptions {
    /// `host:port` of each member.
    pub endpoints: Vec<String>,
    /// TLS, or plain HTTP when `None`.
    pub tls: Option<EtcdTls>,
    /// User name and password for etcd's authentication.
    pub user: Option<(String, String)>,
    /// The election's key.
    pub key: String,
    /// The longest one request may take.
    pub timeout: Duration,
}

impl fmt::Debug for EtcdOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password is never printed.
        f.debug_struct("EtcdOptions")
            .field("endpoints", &self.endpoints)
            .field("tls", &self.tls)
            .field("user", &self.user.as_ref().map(|(name, _)| name))
            .field("key", &self.key)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The lock in etcd. Connects on first use, so a store that is down at start is reported by the
/// first operation like any later failure.
pub struct EtcdStore {
    options: EtcdOptions,
    gateway: OnceCell<Gateway>,
    described: String,
}

impl fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdStore").field("options", &self.options).finish_non_exhaustive()
    }
}

/// Whether etcd refused rather than failed: retrying the same request cannot succeed.
fn refused(code: i64) -> bool {
    matches!(
        code,
        gateway::INVALID_ARGUMENT
            | gateway::PERMISSION_DENIED
            | gateway::FAILED_PRECONDITION
            | gateway::UNAUTHENTICATED
    )
}

impl EtcdStore {
    /// A store for `options`; nothing is contacted yet.
    #[must_use]
    pub fn new(options: EtcdOptions) -> Self {
        let scheme = if options.tls.is_some() { "etcds" } else { "etcd" };
        let described = format!("{scheme}://{} (key {})", options.endpoints.join(","), options.key);
        EtcdStore { options, gateway: OnceCell::new(), described }
    }

    fn error(&self, operation: &'static str, error: CallError) -> LeaseError {
        let is_refused = error.code().is_some_and(refused);
        let source: BoxError = Box::new(error);
        if is_refused {
            LeaseError::Refused { store: self.described.clone(), operation, source }
        } else {
            LeaseError::Unavailable { store: self.described.clone(), operation, source }
        }
    }

    fn timeout(&self, operation: &'static str) -> LeaseError {
        LeaseError::Unavailable {
            store: self.described.clone(),
            operation,
            source: Box::new(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {:?}", self.options.timeout),
            )),
        }
    }

    fn gateway(&self) -> Result<&Gateway, CallError> {
        if let Some(gateway) = self.gateway.get() {
            return Ok(gateway);
        }
        let _ = self.gateway.set(Gateway::new(&self.options)?);
        self.gateway.get().ok_or_else(|| CallError::Malformed("no gateway".into()))
    }

    /// Runs `work` within the request timeout.
    async fn within<T>(
        &self,
        operation: &'static str,
        work: impl Future<Output = Result<T, LeaseError>>,
    ) -> Result<T, LeaseError> {
        tokio::time::timeout(self.options.timeout, work).await.map_err(|_| self.timeout(operation))?
    }
}

/// The holder written in the first key-value of a range answer, if any.
fn first_holder(range: &serde_json::Value) -> Option<String> {
    range["kvs"].as_array().and_then(|kvs| kvs.first()).map(|kv| text(&kv["value"]))
}

impl LeaseStore for EtcdStore {
    type Lease = i64;

    async fn acquire(&self, identity: &str, ttl: Duration) -> Result<Acquired<i64>, LeaseError> {
        const OP: &str = "take the lease";
        let key = bytes(&self.options.key);
        let err = |e| self.error(OP, e);
        let gateway = self.gateway().map_err(|e| self.error(OP, e))?;
        self.within(OP, async move {
            let current = gateway.call("/v3/kv/range", &json!({"key": key})).await.map_err(err)?;
            if let Some(holder) = first_holder(&current) {
                return Ok(Acquired::Taken { holder });
            }
            let seconds = i64::try_from(ttl.as_secs_f64().ceil() as u64).unwrap_or(i64::MAX).max(1);
            let grant = gateway.call("/v3/lease/grant", &json!({"TTL": seconds.to_string()})).await.map_err(err)?;
            let lease = int(&grant["ID"]).ok_or_else(|| err(CallError::Malformed("a grant without an ID".into())))?;
            let txn = json!({
                "compare": [{"key": key, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
                "success": [{"request_put": {"key": key, "value": bytes(identity), "lease": lease.to_string()}}],
                "failure": [{"request_range": {"key": key}}],
            });
            let answer = gateway.call("/v3/kv/txn", &txn).await.map_err(err)?;
            if answer["succeeded"].as_bool() == Some(true) {
                let granted = int(&grant["TTL"]).and_then(|t| u64::try_from(t).ok()).unwrap_or(0).max(1);
                return Ok(Acquired::Held { lease, ttl: Duration::from_secs(granted) });
            }
            // Someone else created it between our range and our transaction.
            let _ = gateway.call("/v3/lease/revoke", &json!({"ID": lease.to_string()})).await;
            let holder = answer["responses"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|response| first_holder(&response["response_range"]))
                .unwrap_or_default();
            Ok(Acquired::Taken { holder })
        })
        .await
    }

    async fn renew(&self, lease: &i64) -> Result<Duration, LeaseError> {
        const OP: &str = "renew the lease";
        let (key, lease) = (bytes(&self.options.key), *lease);
        let gateway = self.gateway().map_err(|e| self.error(OP, e))?;
        self.within(OP, async move {
            let gone = |e: CallError| {
                if e.code() == Some(gateway::NOT_FOUND) {
                    LeaseError::Lost {
                        reason: format!("etcd lease {lease:x} is not found (expired or revoked)"),
                    }
                } else {
                    self.error(OP, e)
                }
            };
            let answer =
                gateway.call("/v3/lease/keepalive", &json!({"ID": lease.to_string()})).await.map_err(gone)?;
            // proto3's JSON leaves a zero TTL out: an expired lease answers without one.
            let ttl = int(&answer["TTL"]).unwrap_or(0);
            if ttl <= 0 {
                return Err(LeaseError::Lost { reason: format!("etcd lease {lease:x} has expired") });
            }
            let current =
                gateway.call("/v3/kv/range", &json!({"key": key})).await.map_err(|e| self.error(OP, e))?;
            match current["kvs"].as_array().and_then(|kvs| kvs.first()) {
                Some(kv) if int(&kv["lease"]) == Some(lease) => {
                    Ok(Duration::from_secs(u64::try_from(ttl).unwrap_or(0)))
                }
                Some(kv) => {
                    Err(LeaseError::Lost { reason: format!("the key now belongs to {}", text(&kv["value"])) })
                }
                None => Err(LeaseError::Lost { reason: "the key was deleted".into() }),
            }
        })
        .await
    }

    async fn release(&self, lease: &i64) -> Result<(), LeaseError> {
        const OP: &str = "release the lease";
        let lease = *lease;
        let gateway = self.gateway().map_err(|e| self.error(OP, e))?;
        self.within(OP, async move {
            match gateway.call("/v3/lease/revoke", &json!({"ID": lease.to_string()})).await {
                Ok(_) => Ok(()),
                // Already expired: released all the same.
                Err(e) if e.code() == Some(gateway::NOT_FOUND) => Ok(()),
                Err(e) => Err(self.error(OP, e)),
            }
        })
        .await
    }

    async fn wait_vacant(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        let watched = tokio::time::timeout_at(deadline, async {
            let gateway = self.gateway().ok()?;
            let key = bytes(&self.options.key);
            // Watch first, then look: a deletion between the two cannot be missed.
            let mut events =
                gateway.stream("/v3/watch", &json!({"create_request": {"key": key}})).await.ok()?;
            let created = events.next().await.ok()??;
            if created["canceled"].as_bool() == Some(true) {
                return None;
            }
            let current = gateway.call("/v3/kv/range", &json!({"key": key})).await.ok()?;
            if first_holder(&current).is_none() {
                return Some(());
            }
            loop {
                let answer = events.next().await.ok()??;
                if answer["canceled"].as_bool() == Some(true) {
                    return None;
                }
                let deleted = answer["events"]
                    .as_array()
                    .is_some_and(|events| events.iter().any(|e| e["type"].as_str() == Some("DELETE")));
                if deleted {
                    return Some(());
                }
            }
        })
        .await;
        // On an error, wait out the period instead, so a broken watch cannot make the campaign
        // poll in a tight loop.
        if !matches!(watched, Ok(Some(()))) {
            tokio::time::sleep_until(deadline).await;
        }
    }

    fn describe(&self) -> String {
        self.described.clone()
    }
}
