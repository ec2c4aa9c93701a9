//! A local Tencent Cloud speaking the API 3.0 wire protocol: CVM 2017-03-12 and the Tag service
//! 2018-08-13, on one port. It is the embedded default target of cvmfleet, the ground truth of
//! its end-to-end tests, and a LocalStack-style tool of its own (`cvmfleet emulator`).
//!
//! - Wire: POST JSON and GET query requests signed with TC3-HMAC-SHA256, and v1 (HmacSHA1 /
//!   HmacSHA256) in a GET query or a POST form body, verified exactly as the service does.
//!   Every processed request answers HTTP 200 with `Content-Type: application/json`.
//! - Services on one port: a TC3 request is routed by its credential scope
//!   (`Credential=<id>/<date>/tag/tc3_request` is a Tag call, as only `tag.tencentcloudapi.com`
//!   would verify it), a v1 request by its `Version`; the version must be the service's
//!   (`NoSuchVersion`) and the action one of its own (`InvalidAction`). `Host` is not used, so
//!   one endpoint serves both.
//! - CVM actions: RunInstances, DescribeInstances (filters incl. `tag-key`, `tag-value`,
//!   `tag:<key>`, at most 10 filters of 5 values), DescribeInstancesStatus, TerminateInstances,
//!   ModifyInstancesAttribute, StartInstances, StopInstances, DescribeZones, DescribeImages,
//!   DescribeInstanceTypeConfigs, DescribeZoneInstanceConfigInfos, InquiryPriceRunInstances
//!   and DescribeRegions (the catalog's regions; no region needed), with the reference's
//!   validation and error codes.
//! - Tag actions (no region needed): TagResources, UnTagResources, ModifyResourceTags,
//!   DescribeResourcesByTags (every region, offset-paged), DescribeResourceTagsByResourceIds and
//!   GetResources (token-paged), over the instances' own tags: a change shows in the next
//!   DescribeInstances, and is journaled before it is acknowledged like every change. Resources
//!   are named `qcs::cvm:<region>:uin/<uin>:instance/<id>`, the uin the account's
//!   ([`EmulatorConfig::account_uin`], default [`DEFAULT_ACCOUNT_UIN`]) or empty.
//! - Stock per offering ([`stock`]: sold-out codes, `MinCount`, launches whose stock vanished),
//!   a price table ([`pricing`]) and spot instances that the cloud reclaims.
//! - A world ([`Catalog`]), lifecycle delays, idempotent ClientTokens ([`TokenMode`]),
//!   per-region quota, published rate limits, seeded fault injection ([`FaultConfig`],
//!   [`FaultRule`]) and crash-safe persistence (snapshot + journal in a state directory).
//! - The cloud itself (instances, tokens, stock, prices, the catalog, tags) is
//!   [`cvmfleet_cloud::World`], the same code the in-process simulation (`cvmfleet-sim`) runs;
//!   this crate adds HTTP, signatures, the journal, rate limits, fault injection and the admin
//!   API around it.
//! - Admin endpoints under `/_emulator/` (no signature; loopback only): `stats`, `faults`,
//!   `faults/rules`, `clock`, `health`, `stock`, `spot/reclaim`, `spot/reclaims`.
//!
//! ```
//! use cvmfleet_emulator::{Emulator, EmulatorConfig, FaultRule};
//! use cvmfleet_wire::Action;
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let emulator = Emulator::start(EmulatorConfig::default().instant()).await?;
//! // Point any client at this endpoint with DEV_SECRET_ID / DEV_SECRET_KEY.
//! assert!(emulator.endpoint().starts_with("http://127.0.0.1:"));
//! // Make the next RunInstances take effect but lose its response.
//! emulator.add_fault(FaultRule::lose_response(Action::RunInstances))?;
//! assert_eq!(emulator.stats().instances, 0);
//! emulator.shutdown().await?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod admin;
mod admin_market;
mod app;
mod auth;
mod config;
mod faults;
mod ratelimit;
mod server;
mod stats;
mod store;

pub use cvmfleet_cloud::{catalog, pricing, stock};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use crate::config::{DEFAULT_ACCOUNT_UIN, DEV_SECRET_ID, DEV_SECRET_KEY, EmulatorConfig};
pub use crate::faults::{FaultConfig, FaultKind, FaultRule};
pub use crate::stats::Stats;
pub use cvmfleet_cloud::{
    ApiError, BadCidr, BandwidthPriceSpec, Catalog, CatalogError, Cidr, DiskPriceSpec, InstancePriceSpec,
    PriceTable, Reclaim, SpotReclaim, StockSpec, StockView, TokenMode,
};

use crate::app::{App, Inner, lock};
use crate::faults::Faults;
use crate::store::{Store, StoreError};
use cvmfleet_cloud::{CatalogIndex, Settings, World};

/// The emulator could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unusable.
    #[error("invalid emulator configuration: {0}")]
    Config(String),
    /// The catalog is inconsistent.
    #[error("invalid catalog")]
    Catalog(#[source] CatalogError),
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another emulator holds the state directory.
    #[error("state directory {} is in use by another emulator", path.display())]
    Locked {
        /// The directory.
        path: PathBuf,
    },
    /// A state file cannot be read or written.
    #[error("cannot use state file {}", path.display())]
    State {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A state file holds something this emulator cannot read.
    #[error("state file {} is corrupt: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Locked { path } => Error::Locked { path },
            StoreError::Io { path, source } => Error::State { path, source },
            StoreError::Corrupt { path, reason } => Error::Corrupt { path, reason },
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Starts emulators.
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// Loads the state (if `config.state_path` is set), binds `config.listen` and serves on the
    /// current tokio runtime until [`RunningEmulator::shutdown`] (or drop).
    ///
    /// # Errors
    /// [`Error`] when the configuration or catalog is invalid, the state directory is locked
    /// or unreadable, or the address cannot be bound.
    pub async fn start(config: EmulatorConfig) -> Result<RunningEmulator, Error> {
        if config.credentials.is_empty() {
            return Err(Error::Config("at least one key pair is needed".into()));
        }
        config.catalog.validate().map_err(Error::Catalog)?;
        config.faults.validate().map_err(Error::Config)?;
        if config.account_uin.is_empty() || !config.account_uin.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::Config(format!("the account uin `{}` is not a number", config.account_uin)));
        }
        let catalog = Arc::new(CatalogIndex::new(config.catalog.clone()));
        let settings = Settings {
            boot_delay_ms: millis(config.boot_delay),
            stop_delay_ms: millis(config.stop_delay),
            terminate_delay_ms: millis(config.terminate_delay),
            launch_failed_retention_ms: millis(config.launch_failed_retention),
            instance_quota: config.instance_quota,
            token_mode: config.token_mode,
            unqualified_secret_ids: config.unqualified_secret_ids.clone(),
            account_uin: config.account_uin.clone(),
        };

        let (world, store) = match &config.state_path {
            None => (World::new(Arc::clone(&catalog), settings, cvmfleet_cloud::salt_of(config.seed)), None),
            Some(dir) => {
                let dir = dir.clone();
                let catalog = Arc::clone(&catalog);
                let seed = config.seed;
                tokio::task::spawn_blocking(move || load(&dir, catalog, settings, seed))
                    .await
                    .map_err(|e| Error::Config(format!("the state loader failed: {e}")))??
            }
        };

        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind { addr: config.listen, source })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind { addr: config.listen, source })?;
        let app = Arc::new(App {
            inner: Mutex::new(Inner { world, store }),
            faults: Mutex::new(Faults::new(config.faults.clone(), config.seed)),
            stats: Mutex::new(Stats::default()),
            limiter: Mutex::new(ratelimit::RateLimiter::default()),
            credentials: config.credentials.iter().cloned().collect::<HashMap<_, _>>(),
            rate_limits: config.rate_limits,
            clock_offset_ms: AtomicI64::new(0),
            compact_after_bytes: config.compact_after_bytes,
        });
        let router =
            admin::routes().merge(admin_market::routes()).fallback(app::api).with_state(Arc::clone(&app));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(server::serve(listener, router, stopped));
        tracing::info!(%addr, "CVM emulator listening");
        Ok(RunningEmulator { addr, app, stop, task: Some(task) })
    }
}

/// Opens the state directory and rebuilds the world, compacting a non-empty journal.
fn load(
    dir: &std::path::Path,
    catalog: Arc<CatalogIndex>,
    settings: Settings,
    seed: u64,
) -> Result<(World, Option<Store>), Error> {
    let (mut store, loaded) = Store::open(dir)?;
    let fresh = loaded.snapshot.is_none();
    let mut world = match loaded.snapshot {
        Some(snapshot) => World::from_snapshot(catalog, settings, snapshot),
        None => World::new(catalog, settings, cvmfleet_cloud::salt_of(seed)),
    };
    for mutation in loaded.journal {
        world.apply(mutation);
    }
    world.advance(app::now_ms());
    if fresh || !store.journal_is_empty() {
        store.begin_compaction(&world.snapshot())?.write()?;
    }
    Ok((world, Some(store)))
}

/// A running emulator. Dropping it stops the server (without waiting); prefer
/// [`RunningEmulator::shutdown`].
#[derive(Debug)]
pub struct RunningEmulator {
    addr: SocketAddr,
    app: Arc<App>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl RunningEmulator {
    /// The address it listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<ip>:<port>`, for clients that take a URL.
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The account's uin, as the Tag service's resource names carry it.
    #[must_use]
    pub fn account_uin(&self) -> String {
        lock(&self.app.inner).world.account_uin().to_owned()
    }

    pub(crate) fn app(&self) -> &App {
        &self.app
    }

    /// `<ip>:<port>`, for SDKs that take a host (`HttpProfile(endpoint=…, protocol="http")`).
    #[must_use]
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Request, error and fault counters, the number of instances, and how many were ever
    /// created.
    #[must_use]
    pub fn stats(&self) -> Stats {
        admin::stats_of(&self.app)
    }

    /// Replaces the random fault rates.
    ///
    /// # Errors
    /// [`Error::Config`] when a rate or an action name is invalid.
    pub fn set_faults(&self, faults: FaultConfig) -> Result<(), Error> {
        faults.validate().map_err(Error::Config)?;
        lock(&self.app.faults).set_config(faults);
        Ok(())
    }

    /// Queues a one-shot fault rule.
    ///
    /// # Errors
    /// [`Error::Config`] when the rule is invalid.
    pub fn add_fault(&self, rule: FaultRule) -> Result<(), Error> {
        rule.validate().map_err(Error::Config)?;
        lock(&self.app.faults).push(rule);
        Ok(())
    }

    /// Removes every fault rate and pending rule.
    pub fn clear_faults(&self) {
        lock(&self.app.faults).clear();
    }

    /// Moves the world's clock forward: pending boots, stops and terminations complete as if
    /// that much time had passed.
    pub fn advance_clock(&self, by: Duration) {
        self.app.advance_clock_ms(millis(by));
    }

    /// Stops accepting connections, lets open ones finish, and writes a final snapshot.
    ///
    /// # Errors
    /// [`Error::State`] when the final snapshot cannot be written (the journal still holds
    /// everything).
    pub async fn shutdown(mut self) -> Result<(), Error> {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let pending = {
            let mut inner = lock(&self.app.inner);
            let Inner { world, store } = &mut *inner;
            world.advance(self.app.world_now_ms());
            match store {
                Some(store) if !store.journal_is_empty() => Some(store.begin_compaction(&world.snapshot())?),
                _ => None,
            }
        };
        if let Some(pending) = pending {
            tokio::task::spawn_blocking(move || pending.write())
                .await
                .map_err(|e| Error::Config(format!("the snapshot writer failed: {e}")))??;
        }
        Ok(())
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
