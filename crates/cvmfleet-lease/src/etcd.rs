//! The lock in etcd (v3 API, through the `etcd-client` crate), the way etcd's own election
//! recipe does it: a key attached to a lease.
//!
//! - **acquire**: `get` the key; when absent, grant a lease of the TTL and, in one transaction,
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

use std::fmt;
use std::time::Duration;

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, EventType, Identity, PutOptions, TlsOptions,
    Txn, TxnOp,
};
use tokio::sync::OnceCell;

use crate::store::{Acquired, BoxError, LeaseError, LeaseStore};

/// gRPC status codes etcd answers with when it refuses rather than fails (tonic's `Code`
/// numbering, which is gRPC's).
const GRPC_INVALID_ARGUMENT: i32 = 3;
const GRPC_NOT_FOUND: i32 = 5;
const GRPC_PERMISSION_DENIED: i32 = 7;
const GRPC_UNAUTHENTICATED: i32 = 16;

/// TLS for the connection to etcd.
#[derive(Clone)]
pub struct EtcdTls {
    /// PEM of the CA that signed the servers' certificates.
    pub ca_pem: Vec<u8>,
    /// PEM of a client certificate and its key, for servers that ask for one.
    pub client: Option<(Vec<u8>, Vec<u8>)>,
    /// The name to check the servers' certificates against, when not the endpoints' host.
    pub server_name: Option<String>,
}

impl fmt::Debug for EtcdTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdTls")
            .field("client_certificate", &self.client.is_some())
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// Where and how to reach etcd, and which key to elect on.
#[derive(Clone)]
pub struct EtcdOptions {
    /// `host:port` of each member.
    pub endpoints: Vec<String>,
    /// TLS, or plain gRPC when `None`.
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
    client: OnceCell<Client>,
    described: String,
}

impl fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdStore").field("options", &self.options).finish_non_exhaustive()
    }
}

impl EtcdStore {
    /// A store for `options`; nothing is contacted yet.
    #[must_use]
    pub fn new(options: EtcdOptions) -> Self {
        let scheme = if options.tls.is_some() { "etcds" } else { "etcd" };
        let described = format!("{scheme}://{} (key {})", options.endpoints.join(","), options.key);
        EtcdStore { options, client: OnceCell::new(), described }
    }

    fn error(&self, operation: &'static str, error: etcd_client::Error) -> LeaseError {
        let refused = match &error {
            etcd_client::Error::GRpcStatus(status) => matches!(
                i32::from(status.code()),
                GRPC_INVALID_ARGUMENT | GRPC_PERMISSION_DENIED | GRPC_UNAUTHENTICATED
            ),
            etcd_client::Error::InvalidArgs(_) | etcd_client::Error::InvalidUri(_) => true,
            _ => false,
        };
        let source: BoxError = Box::new(error);
        if refused {
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

    /// Runs `f` on the client within the request timeout.
    async fn call<T, F, Fut>(&self, operation: &'static str, f: F) -> Result<T, LeaseError>
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<T, LeaseError>>,
    {
        let work = async {
            let client = self
                .client
                .get_or_try_init(|| self.connect())
                .await
                .map_err(|e| self.error(operation, e))?
                .clone();
            f(client).await
        };
        tokio::time::timeout(self.options.timeout, work).await.map_err(|_| self.timeout(operation))?
    }

    async fn connect(&self) -> Result<Client, etcd_client::Error> {
        let o = &self.options;
        let mut connect = ConnectOptions::new()
            .with_timeout(o.timeout)
            .with_connect_timeout(o.timeout)
            .with_keep_alive(o.timeout, o.timeout)
            .with_auto_token_refresh(true);
        let scheme = match &o.tls {
            Some(tls) => {
                let mut config = TlsOptions::new().ca_certificate(Certificate::from_pem(&tls.ca_pem));
                if let Some((cert, key)) = &tls.client {
                    config = config.identity(Identity::from_pem(cert, key));
                }
                if let Some(name) = &tls.server_name {
                    config = config.domain_name(name.clone());
                }
                connect = connect.with_tls(config);
                "https"
            }
            None => "http",
        };
        if let Some((name, password)) = &o.user {
            connect = connect.with_user(name.clone(), password.clone());
        }
        let urls: Vec<String> = o.endpoints.iter().map(|e| format!("{scheme}://{e}")).collect();
        Client::connect(urls, Some(connect)).await
    }
}

/// Whether etcd says the lease does not exist (expired or revoked): a gRPC `NotFound`, or, on
/// the keep-alive stream, etcd-client's own error carrying etcd's message.
fn is_lease_not_found(error: &etcd_client::Error) -> bool {
    match error {
        etcd_client::Error::GRpcStatus(status) => i32::from(status.code()) == GRPC_NOT_FOUND,
        etcd_client::Error::LeaseKeepAliveError(message) => message.contains("not found"),
        _ => false,
    }
}

impl LeaseStore for EtcdStore {
    type Lease = i64;

    async fn acquire(&self, identity: &str, ttl: Duration) -> Result<Acquired<i64>, LeaseError> {
        const OP: &str = "take the lease";
        let key = self.options.key.clone();
        let identity = identity.to_owned();
        self.call(OP, |mut client| async move {
            let current = client.get(key.clone(), None).await.map_err(|e| self.error(OP, e))?;
            if let Some(kv) = current.kvs().first() {
                return Ok(Acquired::Taken { holder: String::from_utf8_lossy(kv.value()).into_owned() });
            }
            let seconds = i64::try_from(ttl.as_secs_f64().ceil() as u64).unwrap_or(i64::MAX).max(1);
            let grant = client.lease_grant(seconds, None).await.map_err(|e| self.error(OP, e))?;
            let lease = grant.id();
            let txn = Txn::new()
                .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(key.clone(), identity, Some(PutOptions::new().with_lease(lease)))])
                .or_else([TxnOp::get(key, None)]);
            let answer = client.txn(txn).await.map_err(|e| self.error(OP, e))?;
            if answer.succeeded() {
                let granted = u64::try_from(grant.ttl()).unwrap_or(0).max(1);
                return Ok(Acquired::Held { lease, ttl: Duration::from_secs(granted) });
            }
            // Someone else created it between our get and our transaction.
            let _ = client.lease_revoke(lease).await;
            let holder = answer
                .op_responses()
                .into_iter()
                .find_map(|op| match op {
                    etcd_client::TxnOpResponse::Get(get) => {
                        get.kvs().first().map(|kv| String::from_utf8_lossy(kv.value()).into_owned())
                    }
                    _ => None,
                })
                .unwrap_or_default();
            Ok(Acquired::Taken { holder })
        })
        .await
    }

    async fn renew(&self, lease: &i64) -> Result<Duration, LeaseError> {
        const OP: &str = "renew the lease";
        let (key, lease) = (self.options.key.clone(), *lease);
        self.call(OP, |mut client| async move {
            let gone = |e: etcd_client::Error| {
                if is_lease_not_found(&e) {
                    LeaseError::Lost {
                        reason: format!("etcd lease {lease:x} is not found (expired or revoked)"),
                    }
                } else {
                    self.error(OP, e)
                }
            };
            let (mut keeper, mut answers) = client.lease_keep_alive(lease).await.map_err(gone)?;
            keeper.keep_alive().await.map_err(gone)?;
            let answer = answers.message().await.map_err(gone)?;
            let ttl = answer.map_or(0, |a| a.ttl());
            if ttl <= 0 {
                return Err(LeaseError::Lost { reason: format!("etcd lease {lease:x} has expired") });
            }
            let current = client.get(key, None).await.map_err(|e| self.error(OP, e))?;
            match current.kvs().first() {
                Some(kv) if kv.lease() == lease => Ok(Duration::from_secs(u64::try_from(ttl).unwrap_or(0))),
                Some(kv) => Err(LeaseError::Lost {
                    reason: format!("the key now belongs to {}", String::from_utf8_lossy(kv.value())),
                }),
                None => Err(LeaseError::Lost { reason: "the key was deleted".into() }),
            }
        })
        .await
    }

    async fn release(&self, lease: &i64) -> Result<(), LeaseError> {
        const OP: &str = "release the lease";
        let lease = *lease;
        self.call(OP, |mut client| async move {
            match client.lease_revoke(lease).await {
                Ok(_) => Ok(()),
                // Already expired: released all the same.
                Err(e) if is_lease_not_found(&e) => Ok(()),
                Err(e) => Err(self.error(OP, e)),
            }
        })
        .await
    }

    async fn wait_vacant(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        let watched = tokio::time::timeout_at(deadline, async {
            let client = self.client.get_or_try_init(|| self.connect()).await.ok()?;
            let mut client = client.clone();
            // Watch first, then look: a deletion between the two cannot be missed.
            let mut events = client.watch(self.options.key.clone(), None).await.ok()?;
            let current = client.get(self.options.key.clone(), None).await.ok()?;
            if current.kvs().is_empty() {
                return Some(());
            }
            loop {
                let answer = events.message().await.ok()??;
                if answer.events().iter().any(|e| e.event_type() == EventType::Delete) {
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
