//! Leader election for `cvmfleet watch`: of several replicas watching the same specs, one holds
//! a lease and acts; the others stand by and take over within a lease's TTL when it dies, hangs
//! or loses the store.
//!
//! The lease lives in a [`LeaseStore`], a lock that expires unless renewed: [`EtcdStore`] for
//! etcd, [`MemoryStore`] in process (tests). An [`Elector`] campaigns for it and returns a
//! [`Leadership`], which renews in the background and whose [`Standing`] answers "still the
//! leader?" by the clock, so the watch loop can check it between any two API calls (see
//! [`elector`] for the deadline rule). Safety does not rest on the lease: cvmfleet's ClientTokens
//! are derived from the specs, so two replicas acting at once send the same requests; the lease
//! only saves the API budget and the noise of doing it twice.
//!
//! ```
//! use std::time::Duration;
//! use cvmfleet_lease::{Attempt, ElectionOptions, Elector, MemoryStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let store = MemoryStore::new();
//! let a = Elector::new(store.clone(), ElectionOptions::new("replica-a", Duration::from_secs(15)));
//! let b = Elector::new(store.clone(), ElectionOptions::new("replica-b", Duration::from_secs(15)));
//! let leader = a.campaign().await;
//! assert!(leader.holds());
//! assert!(matches!(b.try_lead().await, Ok(Attempt::Standby { holder }) if holder == "replica-a"));
//! leader.resign().await.expect("released");
//! assert!(matches!(b.try_lead().await, Ok(Attempt::Leader(_))));
//! # }
//! ```

pub mod elector;
pub mod etcd;
pub mod memory;
pub mod store;

pub use elector::{Attempt, ElectionOptions, Elector, Leadership, Standing, error_chain};
pub use etcd::{EtcdOptions, EtcdStore, EtcdTls, TlsError, TlsPart};
pub use memory::MemoryStore;
pub use store::{Acquired, BoxError, LeaseError, LeaseStore};

#[cfg(test)]
mod tests;
