//! The one thing an election needs from a store: a lock that expires unless renewed. etcd
//! ([`crate::EtcdStore`]) is the store shipped; a Kubernetes `Lease` object fits the same four
//! operations (get-or-create with a resource version, update the renew time, clear the holder,
//! watch the object), so it can be added without touching [`crate::Elector`] or the watch loop.

use std::future::Future;
use std::time::Duration;

/// A boxed error from a store's client library, kept opaque so the public API pins none.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseError {
    /// The store could not be reached or did not answer in time: nothing is known about the
    /// lock, so a holder keeps it only until its deadline.
    #[error("the lease store {store} is unreachable while trying to {operation}")]
    Unavailable {
        /// The store, as configured (endpoints, never credentials).
        store: String,
        /// What was being done (`take the lease`, `renew the lease`, ...).
        operation: &'static str,
        /// What the client library reported.
        #[source]
        source: BoxError,
    },
    /// The store answered that the lease is gone: expired, revoked, or the lock now belongs to
    /// someone else.
    #[error("the lease was lost: {reason}")]
    Lost {
        /// What the store said.
        reason: String,
    },
    /// The store refused the request (authentication, permissions, a bad argument).
    #[error("the lease store {store} refused to {operation}")]
    Refused {
        /// The store, as configured.
        store: String,
        /// What was being done.
        operation: &'static str,
        /// What the client library reported.
        #[source]
        source: BoxError,
    },
}

/// The answer to one attempt at taking the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired<H> {
    /// This candidate holds the lock now, for `ttl` from when the request was sent.
    Held {
        /// The store's handle on the lease, for renewing and releasing it.
        lease: H,
        /// How long the store keeps it without renewal (at least the TTL asked for; etcd
        /// rounds up to whole seconds and to its minimum).
        ttl: Duration,
    },
    /// Another candidate holds it.
    Taken {
        /// The holder's identity, as it wrote it.
        holder: String,
    },
}

/// A lock that expires unless renewed, in some store. Implementations make one attempt per call
/// and bound it in time; the policy (when to renew, when to give up, backoff) is
/// [`crate::Elector`]'s.
pub trait LeaseStore: Send + Sync + 'static {
    /// The store's handle on a lease this candidate holds.
    type Lease: Clone + Send + Sync + std::fmt::Debug + 'static;

    /// Tries once to take the lock for `ttl`, writing `identity` as the holder.
    fn acquire(
        &self,
        identity: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<Acquired<Self::Lease>, LeaseError>> + Send;

    /// Renews a lease this candidate holds; returns how long it now lasts from when the request
    /// was sent. [`LeaseError::Lost`] when the lock is no longer this lease's.
    fn renew(&self, lease: &Self::Lease) -> impl Future<Output = Result<Duration, LeaseError>> + Send;

    /// Gives the lock up, so that a standby can take it at once.
    fn release(&self, lease: &Self::Lease) -> impl Future<Output = Result<(), LeaseError>> + Send;

    /// Waits until the lock looks free, at most `timeout`, so that a standby takes over as soon
    /// as a holder resigns or expires rather than at its next poll. Returns early on any error.
    fn wait_vacant(&self, timeout: Duration) -> impl Future<Output = ()> + Send;

    /// The store as configured, for messages (endpoints, never credentials).
    fn describe(&self) -> String;
}
