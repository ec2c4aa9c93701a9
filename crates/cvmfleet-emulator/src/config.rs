//! How an emulator is set up: address, state directory, credentials, delays, catalog, limits,
//! token policy and faults.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use cvmfleet_wire::sign::SecretKey;

use crate::faults::FaultConfig;
use cvmfleet_cloud::{Catalog, TokenMode};

/// The development SecretId the emulator accepts when no key pair is configured
/// (`TENCENTCLOUD_SECRET_ID` unset for the CLI). Not a secret: never use it against the real
/// cloud, where it does not exist.
pub const DEV_SECRET_ID: &str = "AKIDcvmfleetEmulatorDevelopmentKey00";

/// The development SecretKey paired with [`DEV_SECRET_ID`].
pub const DEV_SECRET_KEY: &str = "cvmfleetEmulatorDevSecretKey0000";

pub use cvmfleet_cloud::DEFAULT_ACCOUNT_UIN;

/// Everything an emulator needs to start. `Default` gives an in-memory emulator on an
/// ephemeral loopback port that accepts the development key pair, with 3-second boot and
/// 3-second terminate delays, the built-in catalog, no quota, published rate limits and no
/// faults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EmulatorConfig {
    /// Address to listen on; port 0 picks a free port ([`crate::RunningEmulator::addr`]).
    pub listen: SocketAddr,
    /// Directory holding the state (snapshot and journal); `None` keeps it in memory only.
    pub state_path: Option<PathBuf>,
    /// Accepted (SecretId, SecretKey) pairs.
    pub credentials: Vec<(String, SecretKey)>,
    /// How long a new instance stays `PENDING` (and a started one `STARTING`).
    pub boot_delay: Duration,
    /// How long a stopped instance stays `STOPPING`.
    pub stop_delay: Duration,
    /// How long a terminated instance stays `TERMINATING` before it disappears.
    pub terminate_delay: Duration,
    /// How long a `LAUNCH_FAILED` instance stays listed before it disappears.
    pub launch_failed_retention: Duration,
    /// The fixed resources of the world.
    pub catalog: Catalog,
    /// Most instances per region (`LAUNCH_FAILED` ones do not count); `None` for no quota.
    pub instance_quota: Option<u32>,
    /// Whether to refuse requests above the published per-action rates.
    pub rate_limits: bool,
    /// What a reused ClientToken with different parameters gets.
    pub token_mode: TokenMode,
    /// Random faults to inject from the start.
    pub faults: FaultConfig,
    /// Seed of the fault generator and of the IDs of a new state.
    pub seed: u64,
    /// SecretIds whose account has not passed the qualification audit: their RunInstances
    /// gets `AccountQualificationRestrictions`.
    pub unqualified_secret_ids: BTreeSet<String>,
    /// Journal size at which the state is compacted into a new snapshot (also never before
    /// the journal is twice the snapshot). Large by default so that a 10,000-instance
    /// snapshot is rewritten rarely; tests lower it to exercise compaction.
    pub compact_after_bytes: u64,
    /// The uin of the one account every key pair belongs to ([`DEFAULT_ACCOUNT_UIN`] by
    /// default): resource names `qcs::cvm:<region>:uin/<uin>:instance/<id>` with this uin (or
    /// an empty one) name its instances.
    pub account_uin: String,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            state_path: None,
            credentials: vec![(DEV_SECRET_ID.to_owned(), SecretKey::new(DEV_SECRET_KEY))],
            boot_delay: Duration::from_secs(3),
            stop_delay: Duration::from_secs(2),
            terminate_delay: Duration::from_secs(3),
            launch_failed_retention: Duration::from_secs(600),
            catalog: Catalog::builtin(),
            instance_quota: None,
            rate_limits: true,
            token_mode: TokenMode::Lenient,
            faults: FaultConfig::default(),
            seed: 0,
            unqualified_secret_ids: BTreeSet::new(),
            compact_after_bytes: 64 * 1024 * 1024,
            account_uin: DEFAULT_ACCOUNT_UIN.to_owned(),
        }
    }
}

impl EmulatorConfig {
    /// Sets the listen address.
    #[must_use]
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Keeps the state in `dir` (created if missing).
    #[must_use]
    pub fn state_path(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_path = Some(dir.into());
        self
    }

    /// Accepts only this key pair.
    #[must_use]
    pub fn credentials(mut self, secret_id: impl Into<String>, secret_key: SecretKey) -> Self {
        self.credentials = vec![(secret_id.into(), secret_key)];
        self
    }

    /// Accepts this key pair too.
    #[must_use]
    pub fn add_credentials(mut self, secret_id: impl Into<String>, secret_key: SecretKey) -> Self {
        self.credentials.push((secret_id.into(), secret_key));
        self
    }

    /// Sets the boot delay (also used for starting).
    #[must_use]
    pub fn boot_delay(mut self, delay: Duration) -> Self {
        self.boot_delay = delay;
        self
    }

    /// Sets the stop delay.
    #[must_use]
    pub fn stop_delay(mut self, delay: Duration) -> Self {
        self.stop_delay = delay;
        self
    }

    /// Sets the terminate delay.
    #[must_use]
    pub fn terminate_delay(mut self, delay: Duration) -> Self {
        self.terminate_delay = delay;
        self
    }

    /// Sets every lifecycle delay to zero: instances are `RUNNING` on the first look after
    /// creation and gone on the first look after termination.
    #[must_use]
    pub fn instant(self) -> Self {
        self.boot_delay(Duration::ZERO).stop_delay(Duration::ZERO).terminate_delay(Duration::ZERO)
    }

    /// Sets the catalog.
    #[must_use]
    pub fn catalog(mut self, catalog: Catalog) -> Self {
        self.catalog = catalog;
        self
    }

    /// Sets the per-region instance quota.
    #[must_use]
    pub fn instance_quota(mut self, quota: Option<u32>) -> Self {
        self.instance_quota = quota;
        self
    }

    /// Turns rate limiting on or off.
    #[must_use]
    pub fn rate_limits(mut self, on: bool) -> Self {
        self.rate_limits = on;
        self
    }

    /// Sets the token mode.
    #[must_use]
    pub fn token_mode(mut self, mode: TokenMode) -> Self {
        self.token_mode = mode;
        self
    }

    /// Sets the random faults.
    #[must_use]
    pub fn faults(mut self, faults: FaultConfig) -> Self {
        self.faults = faults;
        self
    }

    /// Sets the seed.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the account's uin (digits).
    #[must_use]
    pub fn account_uin(mut self, uin: impl Into<String>) -> Self {
        self.account_uin = uin.into();
        self
    }
}
