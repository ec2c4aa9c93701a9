//! An in-process [`LeaseStore`] on tokio's clock: for tests of the election and of whatever
//! runs under it (paused time), and for the crate's example. It can be switched "down" to act
//! like an unreachable store.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::store::{Acquired, LeaseError, LeaseStore};

#[derive(Debug)]
struct Holder {
    lease: u64,
    identity: String,
    expires: Instant,
    ttl: Duration,
}

#[derive(Debug, Default)]
struct State {
    holder: Option<Holder>,
    next_lease: u64,
    down: bool,
    /// Operations answered, for tests that count the store's traffic.
    operations: u64,
}

impl State {
    fn live_holder(&mut self) -> Option<&Holder> {
        let now = Instant::now();
        if self.holder.as_ref().is_some_and(|h| h.expires <= now) {
            self.holder = None;
        }
        self.holder.as_ref()
    }
}

/// A lock in memory; clones share it.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes every operation fail as unreachable (`true`) or work again (`false`). The lock's
    /// expiry keeps running meanwhile, as a real store's does.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
        self.changed.notify_waiters();
    }

    /// The current holder's identity, if the lock is held and not expired.
    #[must_use]
    pub fn holder(&self) -> Option<String> {
        self.lock().live_holder().map(|h| h.identity.clone())
    }

    /// Operations answered so far.
    #[must_use]
    pub fn operations(&self) -> u64 {
        self.lock().operations
    }

    fn answer(&self, operation: &'static str) -> Result<std::sync::MutexGuard<'_, State>, LeaseError> {
        let mut state = self.lock();
        if state.down {
            return Err(LeaseError::Unavailable {
                store: self.describe(),
                operation,
                source: Box::new(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "store is down")),
            });
        }
        state.operations += 1;
        Ok(state)
    }
}

impl LeaseStore for MemoryStore {
    type Lease = u64;

    async fn acquire(&self, identity: &str, ttl: Duration) -> Result<Acquired<u64>, LeaseError> {
        let mut state = self.answer("take the lease")?;
        if let Some(holder) = state.live_holder() {
            return Ok(Acquired::Taken { holder: holder.identity.clone() });
        }
        state.next_lease += 1;
        let lease = state.next_lease;
        state.holder =
            Some(Holder { lease, identity: identity.to_owned(), expires: Instant::now() + ttl, ttl });
        Ok(Acquired::Held { lease, ttl })
    }

    async fn renew(&self, lease: &u64) -> Result<Duration, LeaseError> {
        let mut state = self.answer("renew the lease")?;
        match state.live_holder() {
            Some(holder) if holder.lease == *lease => {
                let ttl = holder.ttl;
                if let Some(holder) = state.holder.as_mut() {
                    holder.expires = Instant::now() + ttl;
                }
                Ok(ttl)
            }
            _ => Err(LeaseError::Lost { reason: format!("lease {lease} has expired") }),
        }
    }

    async fn release(&self, lease: &u64) -> Result<(), LeaseError> {
        let mut state = self.answer("release the lease")?;
        if state.holder.as_ref().is_some_and(|h| h.lease == *lease) {
            state.holder = None;
        }
        drop(state);
        self.changed.notify_waiters();
        Ok(())
    }

    async fn wait_vacant(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let changed = self.changed.notified();
        let expires = {
            let mut state = self.lock();
            if state.down {
                None
            } else {
                match state.live_holder() {
                    None => return,
                    Some(holder) => Some(holder.expires),
                }
            }
        };
        let wake = expires.map_or(deadline, |e| e.min(deadline));
        tokio::select! {
            () = changed => {}
            () = tokio::time::sleep_until(wake) => {}
        }
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}
