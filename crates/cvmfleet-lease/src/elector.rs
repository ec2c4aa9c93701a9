//! The election policy, the same for every store: how often to renew, when a holder must
//! consider itself deposed, how a standby waits, how failures back off.
//!
//! **The deadline rule.** A lease renewed by a request sent at `t` lasts, in the store, at least
//! until `t + ttl` (the store counts from when it *received* the request). The holder therefore
//! considers itself the leader only until `t + ttl - margin` by its own monotonic clock, and
//! [`Standing::holds`] reads that clock on every call: a process frozen past its deadline
//! (SIGSTOP, a stalled VM) sees the deadline passed at its first check after it resumes, before
//! any background task had a chance to notice. The margin absorbs clock-rate differences
//! between the holder and the store.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use crate::store::{Acquired, LeaseError, LeaseStore};

/// How an [`Elector`] campaigns.
#[derive(Debug, Clone)]
pub struct ElectionOptions {
    /// Who this candidate is, as written into the lock (host name and process ID, say).
    pub identity: String,
    /// How long the store keeps the lock without renewal: the longest a dead leader blocks its
    /// standbys.
    pub ttl: Duration,
}

impl ElectionOptions {
    /// Options for `identity` with a lease of `ttl`.
    #[must_use]
    pub fn new(identity: impl Into<String>, ttl: Duration) -> Self {
        ElectionOptions { identity: identity.into(), ttl }
    }

    /// Renewal period: a third of the lease (as etcd's own clients do), so two renewals can
    /// fail before the lease is in danger.
    #[must_use]
    pub fn renew_every(ttl: Duration) -> Duration {
        ttl / 3
    }

    /// How much before the store's expiry a holder gives up: a tenth of the lease, for clock
    /// rates that differ between holder and store.
    #[must_use]
    pub fn margin(ttl: Duration) -> Duration {
        ttl / 10
    }

    /// How long a standby waits before trying again when nothing told it the lock is free, and
    /// the first backoff after an error: a fifth of the lease, at most 2 s (Cluster API's retry
    /// period at its 15 s lease).
    #[must_use]
    pub fn retry(&self) -> Duration {
        (self.ttl / 5).clamp(Duration::from_millis(100), Duration::from_secs(2))
    }

    /// Backoff after `failures` store errors in a row: [`Self::retry`] doubled each time, at
    /// most one lease, so a store that comes back is noticed within a TTL.
    #[must_use]
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.retry().saturating_mul(factor).min(self.ttl.max(self.retry()))
    }

    /// The longest one store operation may take before it counts as unavailable.
    fn operation_timeout(&self) -> Duration {
        self.ttl.max(Duration::from_secs(1))
    }
}

/// The state a holder publishes to its [`Standing`] handles.
#[derive(Debug, Clone)]
pub(crate) struct Tenure {
    /// The holder's own deadline (see the module doc).
    pub(crate) until: Instant,
    /// Why it is over, once it is.
    pub(crate) over: Option<String>,
}

/// A cheap handle that answers "am I still the leader?" by the clock, for checks between API
/// calls (the executor's interrupt, the client's gate).
#[derive(Debug, Clone)]
pub struct Standing(pub(crate) watch::Receiver<Tenure>);

impl Standing {
    /// Whether the lease is still held: not lost, resigned or past its deadline.
    #[must_use]
    pub fn holds(&self) -> bool {
        let tenure = self.0.borrow();
        tenure.over.is_none() && Instant::now() < tenure.until
    }

    /// The holder's current deadline.
    #[must_use]
    pub fn until(&self) -> Instant {
        self.0.borrow().until
    }
}

/// What one attempt at leading found.
#[derive(Debug)]
pub enum Attempt {
    /// This candidate leads now.
    Leader(Leadership),
    /// Another one does.
    Standby {
        /// Its identity.
        holder: String,
    },
}

/// The lock, held: renewed in the background until lost or resigned.
#[derive(Debug)]
pub struct Leadership {
    standing: Standing,
    resign: Option<oneshot::Sender<oneshot::Sender<Result<(), LeaseError>>>>,
    ttl: Duration,
}

impl Leadership {
    /// A handle for checks between API calls.
    #[must_use]
    pub fn standing(&self) -> Standing {
        self.standing.clone()
    }

    /// Whether the lease is still held (see [`Standing::holds`]).
    #[must_use]
    pub fn holds(&self) -> bool {
        self.standing.holds()
    }

    /// The lease's length as the store granted it.
    #[must_use]
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Waits until the lease is lost (renewal refused, or not renewed before the deadline) and
    /// says why.
    pub async fn lost(&self) -> String {
        let mut rx = self.standing.0.clone();
        loop {
            let (until, over) = {
                let tenure = rx.borrow_and_update();
                (tenure.until, tenure.over.clone())
            };
            if let Some(why) = over {
                return why;
            }
            if Instant::now() >= until {
                return "the lease was not renewed before its deadline".into();
            }
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return "the lease keeper stopped".into();
                    }
                }
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    /// Gives the lease up so that a standby takes over at once. Stops renewing first, so this
    /// handle reports the lease lost from the moment it is called.
    ///
    /// # Errors
    /// The store's error when releasing failed; the lease then expires on its own within its
    /// TTL.
    pub async fn resign(mut self) -> Result<(), LeaseError> {
        let Some(resign) = self.resign.take() else { return Ok(()) };
        let (reply, answer) = oneshot::channel();
        if resign.send(reply).is_err() {
            // The keeper already stopped: the lease was lost and released (or left to expire).
            return Ok(());
        }
        answer.await.unwrap_or(Ok(()))
    }
}

/// Campaigns for one lock in a [`LeaseStore`].
#[derive(Debug)]
pub struct Elector<S: LeaseStore> {
    store: Arc<S>,
    options: ElectionOptions,
    /// A lease lost while the store was unreachable, to release when it answers again, so the
    /// lock is free at once rather than after the store's own expiry.
    stale: Arc<Mutex<Option<S::Lease>>>,
}

impl<S: LeaseStore> Elector<S> {
    /// An elector on `store`.
    pub fn new(store: S, options: ElectionOptions) -> Self {
        Elector { store: Arc::new(store), options, stale: Arc::new(Mutex::new(None)) }
    }

    /// The options.
    #[must_use]
    pub fn options(&self) -> &ElectionOptions {
        &self.options
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &S {
        &self.store
    }

    fn take_stale(&self) -> Option<S::Lease> {
        self.stale.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }

    /// One attempt at taking the lock.
    ///
    /// # Errors
    /// The store's error (unreachable, refused).
    pub async fn try_lead(&self) -> Result<Attempt, LeaseError> {
        let timeout = self.options.operation_timeout();
        if let Some(stale) = self.take_stale() {
            match tokio::time::timeout(timeout, self.store.release(&stale)).await {
                Ok(Ok(())) => {
                    tracing::info!(lease = ?stale, "released a lease lost while the store was unreachable")
                }
                _ => *self.stale.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(stale),
            }
        }
        let sent = Instant::now();
        let acquired =
            tokio::time::timeout(timeout, self.store.acquire(&self.options.identity, self.options.ttl))
                .await
                .map_err(|_| self.timed_out("take the lease"))??;
        match acquired {
            Acquired::Taken { holder } => Ok(Attempt::Standby { holder }),
            Acquired::Held { lease, ttl } => Ok(Attempt::Leader(self.keep(lease, ttl, sent))),
        }
    }

    fn timed_out(&self, operation: &'static str) -> LeaseError {
        LeaseError::Unavailable {
            store: self.store.describe(),
            operation,
            source: Box::new(std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in time")),
        }
    }

    /// Campaigns until this candidate leads: polls the lock, waits for it to look free between
    /// polls, and backs off while the store fails ([`ElectionOptions::backoff`]). Logs each
    /// change of holder and each failure.
    pub async fn campaign(&self) -> Leadership {
        let mut failures = 0u32;
        let mut last_holder: Option<String> = None;
        loop {
            match self.try_lead().await {
                Ok(Attempt::Leader(leadership)) => return leadership,
                Ok(Attempt::Standby { holder }) => {
                    if failures > 0 {
                        tracing::info!(store = %self.store.describe(), "the lease store answers again");
                    }
                    failures = 0;
                    if last_holder.as_deref() != Some(holder.as_str()) {
                        tracing::info!(leader = %holder, "standing by");
                        last_holder = Some(holder);
                    }
                    self.store.wait_vacant(self.options.retry()).await;
                }
                Err(error) => {
                    failures += 1;
                    last_holder = None;
                    let wait = self.options.backoff(failures);
                    tracing::warn!(
                        error = %error_chain(&error),
                        failures,
                        retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        "cannot campaign for the lease; nobody acts without it"
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Starts renewing a lease granted for `ttl` by a request sent at `sent`.
    fn keep(&self, lease: S::Lease, ttl: Duration, sent: Instant) -> Leadership {
        let (tx, rx) =
            watch::channel(Tenure { until: sent + ttl - ElectionOptions::margin(ttl), over: None });
        let (resign_tx, resign_rx) = oneshot::channel();
        let keeper = Keeper {
            store: self.store.clone(),
            lease,
            tx,
            retry: self.options.retry(),
            stale: self.stale.clone(),
            timeout: self.options.operation_timeout(),
        };
        tokio::spawn(keeper.run(sent + ElectionOptions::renew_every(ttl), resign_rx));
        Leadership { standing: Standing(rx), resign: Some(resign_tx), ttl }
    }
}

/// The background task that renews a held lease.
struct Keeper<S: LeaseStore> {
    store: Arc<S>,
    lease: S::Lease,
    tx: watch::Sender<Tenure>,
    retry: Duration,
    stale: Arc<Mutex<Option<S::Lease>>>,
    timeout: Duration,
}

impl<S: LeaseStore> Keeper<S> {
    async fn run(
        self,
        mut next: Instant,
        mut resign: oneshot::Receiver<oneshot::Sender<Result<(), LeaseError>>>,
    ) {
        loop {
            let until = self.tx.borrow().until;
            tokio::select! {
                biased;
                asked = &mut resign => {
                    // Resigned, or the handle was dropped: either way nobody acts on this lease.
                    self.end("resigned");
                    let released = tokio::time::timeout(self.timeout, self.store.release(&self.lease)).await;
                    let released = released.unwrap_or_else(|_| Err(self.timed_out("release the lease")));
                    if let Ok(reply) = asked {
                        let _ = reply.send(released);
                    }
                    return;
                }
                () = tokio::time::sleep_until(until) => {
                    self.end("the lease was not renewed before its deadline");
                    break;
                }
                () = tokio::time::sleep_until(next) => {
                    let sent = Instant::now();
                    match tokio::time::timeout_at(until, self.store.renew(&self.lease)).await {
                        Ok(Ok(ttl)) => {
                            let deadline = sent + ttl - ElectionOptions::margin(ttl);
                            self.tx.send_modify(|t| t.until = t.until.max(deadline));
                            next = sent + ElectionOptions::renew_every(ttl);
                        }
                        Ok(Err(LeaseError::Lost { reason })) => {
                            self.end(&format!("the store says the lease is gone: {reason}"));
                            break;
                        }
                        Ok(Err(error)) => {
                            tracing::warn!(
                                error = %error_chain(&error),
                                left_ms = u64::try_from(until.saturating_duration_since(Instant::now()).as_millis()).unwrap_or(u64::MAX),
                                "renewing the lease failed; retrying until its deadline"
                            );
                            next = Instant::now() + self.retry;
                        }
                        Err(_) => {
                            self.end("the lease store did not answer before the lease's deadline");
                            break;
                        }
                    }
                }
            }
        }
        // Lost: release it if the store answers, so nobody waits for its expiry; otherwise
        // leave it to the next campaign to release.
        match tokio::time::timeout(self.retry, self.store.release(&self.lease)).await {
            Ok(Ok(())) => {}
            _ => {
                *self.stale.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some(self.lease.clone())
            }
        }
    }

    fn end(&self, why: &str) {
        self.tx.send_modify(|t| {
            if t.over.is_none() {
                t.over = Some(why.to_owned());
            }
        });
    }

    fn timed_out(&self, operation: &'static str) -> LeaseError {
        LeaseError::Unavailable {
            store: self.store.describe(),
            operation,
            source: Box::new(std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in time")),
        }
    }
}

/// An error with its sources, `: `-separated.
#[must_use]
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
