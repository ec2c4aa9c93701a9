//! An in-process, deterministic CVM cloud for simulation testing (FoundationDB-style): the real
//! [`CvmClient`], planner and executor run against it, on tokio's paused clock, thousands of
//! times under seeded schedules.
//!
//! - [`SimCloud`] is a cheap, cloneable handle on one world. It is a
//!   [`cvmfleet_client::Transport`]: `CvmClient::with_transport(.., Arc::new(cloud.clone()))`.
//! - The cloud is the emulator's own world ([`cvmfleet_cloud::World`]), the same code behind
//!   another transport: every action, check and error code of the emulator, on a [`Catalog`]
//!   ([`SimConfig::catalog`], the emulator's built-in one by default), with ClientTokens
//!   remembered forever, stock ([`SimCloud::set_stock`]), prices ([`SimCloud::set_price`]),
//!   spot reclamation ([`SimCloud::reclaim_spot`]) and the Tag service. A test
//!   (`tests/it/agreement.rs`) sends the same calls to both faces and requires the same
//!   answers.
//! - Launches whose stock vanished after acceptance come at
//!   [`SimConfig::low_stock_launch_failure_rate`]; a replayed token ignores stock.
//! - Time is `tokio::time` relative to the construction instant, shown to the world as
//!   2026-01-01T00:00:00Z plus the elapsed time: PENDING → RUNNING after
//!   [`SimConfig::boot_delay`], TERMINATING → gone after [`SimConfig::terminate_delay`], applied
//!   lazily at the start of every call and inspection.
//! - Faults ([`FaultConfig`], [`Rule`]) come from the one seeded generator of the world: latency
//!   before and after processing (which reorders concurrent callers), throttling, server
//!   errors, resets, lost responses, failed launches.
//! - The harness inspects the world without API calls ([`SimCloud::created`],
//!   [`SimCloud::live`], [`SimCloud::calls`], [`SimCloud::lost`]) and changes it out of band
//!   ([`SimCloud::terminate_out_of_band`], …).
//!
//! Everything is deterministic given the seed and the order of calls: IDs from a counter, no
//! wall clock, one generator.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use cvmfleet_client::{ClientConfig, Credentials, CvmClient, RetryPolicy};
//! use cvmfleet_sim::{SimCloud, SimConfig};
//! use cvmfleet_wire::api::RunInstancesRequest;
//! use cvmfleet_wire::model::Placement;
//!
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build()?;
//! runtime.block_on(async {
//!     let cloud = SimCloud::new(SimConfig::seeded(7));
//!     let config = ClientConfig {
//!         retry: RetryPolicy { jitter_seed: Some(7), ..RetryPolicy::default() },
//!         ..ClientConfig::default()
//!     };
//!     let credentials = Credentials::new(cvmfleet_sim::DEV_SECRET_ID, cvmfleet_sim::DEV_SECRET_KEY);
//!     let client = CvmClient::with_transport(config, credentials, Arc::new(cloud.clone()))?;
//!     let request = RunInstancesRequest {
//!         placement: Some(Placement { zone: "ap-guangzhou-3".into(), ..Placement::default() }),
//!         image_id: Some("img-pmqg1cw7".into()),
//!         instance_count: Some(2),
//!         client_token: Some("web-batch-0".into()),
//!         ..RunInstancesRequest::default()
//!     };
//!     let first = client.call("ap-guangzhou", &request).await?.data.instance_id_set;
//!     // The same token again: the original instances, nothing new.
//!     let again = client.call("ap-guangzhou", &request).await?.data.instance_id_set;
//!     assert_eq!(first, again);
//!     assert_eq!(cloud.created().len(), 2);
//!     assert!(cloud.live().iter().all(|i| i.instance_state == "PENDING"));
//!     tokio::time::sleep(Duration::from_secs(2)).await;
//!     assert!(cloud.live().iter().all(|i| i.instance_state == "RUNNING"));
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```

mod faults;
mod transport;

#[cfg(test)]
mod tag_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_market;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use cvmfleet_client::{ClientConfig, Credentials, CvmClient, RetryPolicy, Transport, TransportFuture};
use cvmfleet_wire::Action;
use cvmfleet_wire::model::Instance;
use serde::Serialize;
use serde_json::Value;

pub use cvmfleet_cloud::{Catalog, DEFAULT_ACCOUNT_UIN, StockSpec, TokenMode};
pub use faults::{FaultConfig, Rule, RuleKind};
use transport::Sim;

/// A SecretId for clients of the simulation (the sim checks no signature).
pub const DEV_SECRET_ID: &str = "AKIDcvmfleetSimulationKey000000000";
/// The matching SecretKey.
pub const DEV_SECRET_KEY: &str = "cvmfleetSimulationSecretKey00000";

/// How a [`SimCloud`] behaves. `Default`: seed 0, the built-in catalog, 2 s boot, 2 s stop, 1 s
/// terminate, `LAUNCH_FAILED` instances listed for 600 s (the emulator's retention), strict
/// tokens, no faults.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Seed of the world's one generator (faults, failed launches) and salt of the IDs.
    pub seed: u64,
    /// The regions, zones, images, instance types, networks, stock and prices of the world
    /// (the emulator's [`Catalog::builtin`] by default); calls to other regions answer
    /// `UnsupportedRegion`.
    pub catalog: Catalog,
    /// How long a new instance stays `PENDING` (and a started one `STARTING`).
    pub boot_delay: Duration,
    /// How long a stopped instance stays `STOPPING`.
    pub stop_delay: Duration,
    /// How long a terminated instance stays `TERMINATING` before it is gone.
    pub terminate_delay: Duration,
    /// How long a `LAUNCH_FAILED` instance stays listed before it is gone.
    pub failed_linger: Duration,
    /// What a reused ClientToken with different parameters gets.
    pub token_mode: TokenMode,
    /// Random faults from the start.
    pub faults: FaultConfig,
    /// The account's uin, in the Tag service's resource names.
    pub account_uin: String,
    /// Created instances of an offering low on stock (`UnderStock`, fewer than 10 left) that
    /// end `LAUNCH_FAILED` because the stock vanished after acceptance (their unit goes with
    /// them), as the emulator's `low_stock_launch_failure_rate`. Drawn from the world's
    /// generator only for such instances. [`SimCloud::calm`] sets it to 0.
    pub low_stock_launch_failure_rate: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 0,
            catalog: Catalog::builtin(),
            boot_delay: Duration::from_secs(2),
            stop_delay: Duration::from_secs(2),
            terminate_delay: Duration::from_secs(1),
            failed_linger: Duration::from_secs(600),
            token_mode: TokenMode::Strict,
            faults: FaultConfig::default(),
            account_uin: DEFAULT_ACCOUNT_UIN.to_owned(),
            low_stock_launch_failure_rate: 0.0,
        }
    }
}

impl SimConfig {
    /// The default configuration with `seed`.
    #[must_use]
    pub fn seeded(seed: u64) -> Self {
        SimConfig { seed, ..SimConfig::default() }
    }
}

/// One instance ever created, as the checker counts them (live or long gone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreatedInstance {
    /// Instance ID.
    pub instance_id: String,
    /// Region of the call.
    pub region: String,
    /// Zone.
    pub zone: String,
    /// Display name at creation.
    pub name: String,
    /// Primary private IP at creation.
    pub private_ip: String,
    /// The RunInstances ClientToken, if any.
    pub client_token: Option<String>,
    /// Tags at creation.
    pub tags: BTreeMap<String, String>,
    /// Simulated time of creation, since the cloud was built.
    pub created_at: Duration,
    /// `CreatedTime` as DescribeInstances shows it.
    pub created_time: String,
    /// Whether the launch was decided (at creation) to fail: the instance shows
    /// `LAUNCH_FAILED` after the boot delay, unless removed out of band before.
    pub launch_failed: bool,
    /// Instance type.
    pub instance_type: String,
    /// Charge type.
    pub charge_type: String,
    /// Whether the launch fails because the offering's stock vanished after acceptance (then
    /// `launch_failed` too).
    pub stock_vanished: bool,
}

/// An instance removed out of band, through no fault of the reconciler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LostInstance {
    /// Instance ID.
    pub instance_id: String,
    /// Simulated time of the removal.
    pub at: Duration,
    /// Its state just before (e.g. `RUNNING`, `PENDING`, `LAUNCH_FAILED`).
    pub state: String,
    /// What happened.
    pub reason: String,
}

/// Calls of one action. `calls = processed + (faulted - lost_responses)` once every call in
/// flight has been answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CallCount {
    /// Calls that arrived.
    pub calls: u64,
    /// Calls the model acted on (answered errors and lost responses included).
    pub processed: u64,
    /// Calls that got an injected fault (throttle, error, reset, lost response).
    pub faulted: u64,
    /// Processed calls whose answer was lost.
    pub lost_responses: u64,
}

/// A handle on one simulated cloud; clones share it.
#[derive(Clone)]
pub struct SimCloud {
    world: Arc<Mutex<Sim>>,
}

impl fmt::Debug for SimCloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimCloud").finish_non_exhaustive()
    }
}

impl SimCloud {
    /// A new, empty cloud; its clock starts now (`tokio::time::Instant::now()`).
    #[must_use]
    pub fn new(config: SimConfig) -> Self {
        SimCloud { world: Arc::new(Mutex::new(Sim::new(config))) }
    }

    /// The world, advanced to now.
    fn world(&self) -> MutexGuard<'_, Sim> {
        let mut world = self.world.lock().unwrap_or_else(PoisonError::into_inner);
        world.advance();
        world
    }

    /// A client of this cloud: default settings, retry jitter seeded with the cloud's seed.
    ///
    /// # Errors
    /// None in practice; [`CvmClient::with_transport`]'s configuration errors.
    pub fn client(&self) -> Result<CvmClient, cvmfleet_client::Error> {
        let seed = self.world().config.seed;
        let config = ClientConfig {
            retry: RetryPolicy { jitter_seed: Some(seed), ..RetryPolicy::default() },
            ..ClientConfig::default()
        };
        let credentials = Credentials::new(DEV_SECRET_ID, DEV_SECRET_KEY);
        CvmClient::with_transport(config, credentials, Arc::new(self.clone()))
    }

    /// Simulated time since the cloud was built.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.world().now()
    }

    /// Every instance ever created, in creation order.
    #[must_use]
    pub fn created(&self) -> Vec<CreatedInstance> {
        self.world().created.clone()
    }

    /// The instances currently listed (not gone), in creation order.
    #[must_use]
    pub fn live(&self) -> Vec<Instance> {
        self.world().live()
    }

    /// A listed instance.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<Instance> {
        self.world().world.get(id).cloned()
    }

    /// Calls per action; actions never called are absent.
    #[must_use]
    pub fn calls(&self) -> BTreeMap<Action, CallCount> {
        self.world().calls.clone()
    }

    /// Every out-of-band removal, in order.
    #[must_use]
    pub fn lost(&self) -> Vec<LostInstance> {
        self.world().lost.clone()
    }

    /// Terminates an instance out of band (a person, or the cloud reclaiming it): it goes
    /// `TERMINATING` from any state, `PENDING` included, and is gone after the terminate
    /// delay; a `LAUNCH_FAILED` one vanishes at once. Recorded in [`SimCloud::lost`]. `false`
    /// (and nothing recorded) when it is not listed or already `TERMINATING`.
    pub fn terminate_out_of_band(&self, id: &str) -> bool {
        self.world().terminate_out_of_band(id)
    }

    /// Stops a `RUNNING` instance out of band (`STOPPING`, then `STOPPED` after the stop
    /// delay); `false` in any other state.
    pub fn stop_out_of_band(&self, id: &str) -> bool {
        let mut sim = self.world();
        let now = sim.now_ms();
        sim.world.stop_out_of_band(id, now).is_some()
    }

    /// Renames an instance out of band; `false` when it is not listed.
    pub fn rename_out_of_band(&self, id: &str, name: &str) -> bool {
        let mut sim = self.world();
        let now = sim.now_ms();
        sim.world.rename_out_of_band(id, name, now).is_some()
    }

    /// Removes a tag out of band; `false` when the instance or the tag is missing.
    pub fn remove_tag_out_of_band(&self, id: &str, key: &str) -> bool {
        let mut sim = self.world();
        let now = sim.now_ms();
        sim.world.remove_tag_out_of_band(id, key, now).is_some()
    }

    /// Replaces the random faults (the generator keeps its state).
    pub fn set_faults(&self, faults: FaultConfig) {
        self.world().config.faults = faults;
    }

    /// Queues a one-shot rule.
    pub fn add_rule(&self, rule: Rule) {
        self.world().rules.push(rule);
    }

    /// Drops every pending one-shot rule.
    pub fn clear_rules(&self) {
        self.world().rules.clear();
    }

    /// Turns every random fault off at once, failed launches included (those of low stock
    /// too), keeping latency (which only reorders calls) and the pending one-shot rules: the
    /// harness's "let it converge".
    pub fn calm(&self) {
        let mut world = self.world();
        world.config.faults = world.config.faults.calm();
        world.config.low_stock_launch_failure_rate = 0.0;
    }

    /// Sets how many more instances an offering can launch: `zone`, `instance_type` and one
    /// charge type (`None`: PREPAID, POSTPAID_BY_HOUR, SPOTPAID and CDCPAID each); `available`
    /// `None` makes it unlimited (the default of every offering). As the emulator's
    /// `PUT /_emulator/stock`: creates take from it, an instance gives its unit back when it is
    /// gone, a launch whose stock vanished keeps it. `false` (nothing set) for a charge type
    /// without stock (CDHPAID, or an unknown one), a zone the catalog does not have or a type
    /// the zone does not sell.
    pub fn set_stock(
        &self,
        zone: &str,
        instance_type: &str,
        charge_type: Option<&str>,
        available: Option<u64>,
    ) -> bool {
        let spec = StockSpec {
            zone: zone.to_owned(),
            instance_type: instance_type.to_owned(),
            charge_type: charge_type.map(str::to_owned),
            available,
        };
        self.world().world.set_stock(&[spec]).is_ok()
    }

    /// What an offering can still launch; `None` when unlimited.
    #[must_use]
    pub fn available(&self, zone: &str, instance_type: &str, charge_type: &str) -> Option<u64> {
        self.world().world.stock_available(zone, instance_type, charge_type)
    }

    /// Every limited offering, (zone, instance type, charge type), with what it has left.
    #[must_use]
    pub fn stock(&self) -> BTreeMap<(String, String, String), u64> {
        let sim = self.world();
        sim.world
            .stock_view()
            .into_iter()
            .map(|v| ((v.zone, v.instance_type, v.charge_type), v.available))
            .collect()
    }

    /// Sets the price of an instance type under PREPAID (yuan per month), POSTPAID_BY_HOUR or
    /// SPOTPAID (yuan per hour; a SPOTPAID bid below it gets
    /// `InvalidParameterValue.InsufficientPrice`), in every region, replacing the catalog's price. `false` for another charge type or a
    /// negative price.
    pub fn set_price(&self, instance_type: &str, charge_type: &str, price: f64) -> bool {
        self.world().world.set_price(instance_type, charge_type, price)
    }

    /// Reclaims a SPOTPAID instance as the cloud does: `TERMINATING` at once, gone after the
    /// terminate delay, `LatestOperationErrorMsg` [`cvmfleet_wire::vocab::EMULATED_SPOT_RECLAIM_MESSAGE`];
    /// recorded in [`SimCloud::lost`] with reason `spot instance reclaimed`. `false` when it is
    /// not a listed, live SPOTPAID instance.
    pub fn reclaim_spot(&self, id: &str) -> bool {
        self.world().reclaim_spot(id)
    }

    /// Changes the token mode from now on.
    pub fn set_token_mode(&self, mode: TokenMode) {
        let mut sim = self.world();
        sim.config.token_mode = mode;
        sim.world.set_token_mode(mode);
    }

    /// One call: faults decided on arrival, a sleep, processing at one instant, a sleep.
    async fn exchange(
        self,
        action: Action,
        region: String,
        params: Value,
    ) -> Result<(Value, String), cvmfleet_client::Error> {
        let decision = self.world().arrive(action);
        if !decision.before.is_zero() {
            tokio::time::sleep(decision.before).await;
        }
        let outcome = self.world().process(action, &region, &params, &decision);
        if !decision.after.is_zero() {
            tokio::time::sleep(decision.after).await;
        }
        outcome
    }
}

impl Transport for SimCloud {
    fn send(&self, action: Action, region: &str, params: &Value) -> TransportFuture {
        Box::pin(self.clone().exchange(action, region.to_owned(), params.clone()))
    }
}
