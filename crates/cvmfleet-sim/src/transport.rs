//! The in-process face of the cloud: the world of `cvmfleet-cloud` (the emulator's, the same
//! code) behind a transport that adds what a network adds (latency, throttling, errors, resets,
//! lost responses), on tokio's clock, with one seeded generator for every random draw, and the
//! harness's ledgers (every instance created, every call, every out-of-band loss).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cvmfleet_client::Error;
use cvmfleet_cloud::{CatalogIndex, Ctx, Encode, LaunchDraw, LaunchFate, Params, Settings, World};
use cvmfleet_wire::Action;
use cvmfleet_wire::codes;
use cvmfleet_wire::model::Instance;
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::faults::{self, Decision, Pre, Rule};
use crate::{CallCount, CreatedInstance, DEV_SECRET_ID, LostInstance, SimConfig};

/// The world's clock at the simulation's start: 2026-01-01T00:00:00Z, in Unix milliseconds.
pub(crate) const EPOCH_MS: i64 = 1_767_225_600_000;

/// Milliseconds of a duration, saturating.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The simulation's [`Encode`]: a response is the JSON value the transport hands the client.
struct Json;

impl Encode for Json {
    type Body = Value;

    fn encode<T: Serialize>(&self, data: &T) -> Value {
        serde_json::to_value(data).unwrap_or(Value::Null)
    }
}

/// The world, its clock and its faults.
#[derive(Debug)]
pub(crate) struct Sim {
    pub(crate) world: World,
    pub(crate) config: SimConfig,
    pub(crate) rules: Vec<Rule>,
    rng: fastrand::Rng,
    origin: Instant,
    next_request: u64,
    pub(crate) created: Vec<CreatedInstance>,
    pub(crate) lost: Vec<LostInstance>,
    pub(crate) calls: BTreeMap<Action, CallCount>,
}

impl Sim {
    pub(crate) fn new(config: SimConfig) -> Self {
        let settings = Settings {
            boot_delay_ms: millis(config.boot_delay),
            stop_delay_ms: millis(config.stop_delay),
            terminate_delay_ms: millis(config.terminate_delay),
            launch_failed_retention_ms: millis(config.failed_linger),
            instance_quota: None,
            token_mode: config.token_mode,
            unqualified_secret_ids: std::collections::BTreeSet::new(),
            account_uin: config.account_uin.clone(),
        };
        let catalog = Arc::new(CatalogIndex::new(config.catalog.clone()));
        let world = World::new(catalog, settings, cvmfleet_cloud::salt_of(config.seed));
        Sim {
            world,
            rng: fastrand::Rng::with_seed(config.seed),
            config,
            rules: Vec::new(),
            origin: Instant::now(),
            next_request: 0,
            created: Vec::new(),
            lost: Vec::new(),
            calls: BTreeMap::new(),
        }
    }

    /// Simulated time since the world was built.
    pub(crate) fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.origin)
    }

    /// The world's clock: [`EPOCH_MS`] plus the simulated time.
    pub(crate) fn now_ms(&self) -> i64 {
        EPOCH_MS.saturating_add(millis(self.now()))
    }

    /// Applies every transition due now.
    pub(crate) fn advance(&mut self) {
        let now = self.now_ms();
        self.world.advance(now);
    }

    /// Counts a call on arrival and decides its faults.
    pub(crate) fn arrive(&mut self, action: Action) -> Decision {
        self.calls.entry(action).or_default().calls += 1;
        faults::decide(&self.config.faults, &mut self.rules, &mut self.rng, action)
    }

    /// Processes a call (or fails it as `decision` says).
    pub(crate) fn process(
        &mut self,
        action: Action,
        region: &str,
        params: &Value,
        decision: &Decision,
    ) -> Result<(Value, String), Error> {
        self.next_request += 1;
        let request_id = format!("00000000-0000-4000-8000-{:012x}", self.next_request);
        let transport = |what: &str| Error::Transport {
            action,
            source: Box::new(std::io::Error::new(std::io::ErrorKind::ConnectionReset, what.to_owned())),
        };
        let count = self.calls.entry(action).or_default();
        match &decision.pre {
            Some(Pre::Reset) => {
                count.faulted += 1;
                return Err(transport("connection reset before the request was processed (simulated)"));
            }
            Some(Pre::Error(code)) => {
                count.faulted += 1;
                let message = if code == codes::REQUEST_LIMIT_EXCEEDED {
                    "Your current request rate has exceeded the limit (simulated fault)."
                } else {
                    "An internal error occurred (simulated fault)."
                };
                return Err(Error::Api { action, code: code.clone(), message: message.into(), request_id });
            }
            None => count.processed += 1,
        }
        let result = self.dispatch(action, region, params, &request_id);
        if decision.lose_response {
            let count = self.calls.entry(action).or_default();
            count.faulted += 1;
            count.lost_responses += 1;
            return Err(transport("the connection closed before the response arrived (simulated)"));
        }
        match result {
            Ok(data) => Ok((data, request_id)),
            Err(e) => Err(Error::Api { action, code: e.code, message: e.message, request_id }),
        }
    }

    /// Runs the call in the world, drawing each new instance's fate from the generator, and
    /// records what a RunInstances created.
    fn dispatch(
        &mut self,
        action: Action,
        region: &str,
        params: &Value,
        request_id: &str,
    ) -> Result<Value, cvmfleet_cloud::ApiError> {
        self.world.check_region(action, region)?;
        let ctx = Ctx {
            secret_id: DEV_SECRET_ID.to_owned(),
            region: if action.needs_region() { region.to_owned() } else { String::new() },
            request_id: request_id.to_owned(),
            now_ms: self.now_ms(),
        };
        let (rng, faults) = (&mut self.rng, &self.config.faults);
        let low_rate = self.config.low_stock_launch_failure_rate;
        // Drawn only in a low offering, so that runs without stock see the same faults.
        let mut launch = |draw: LaunchDraw| {
            let fails = rng.f64() < faults.launch_failure_rate;
            let stock_vanishes = draw.low_stock && rng.f64() < low_rate && !fails;
            LaunchFate { fails, stock_vanishes, reclaim_after_ms: None }
        };
        let params = Params::Json(params.clone());
        let (body, mutation) = self.world.call(&ctx, action, &params, &mut launch, &Json)?;
        if action == Action::RunInstances {
            let token = params_token(&params);
            let at = self.now();
            for launched in mutation.launched() {
                self.created.push(created(launched.instance, region, token.clone(), at, launched));
            }
        }
        Ok(body)
    }

    /// Out of band: the instance goes `TERMINATING`, or vanishes when `LAUNCH_FAILED`.
    pub(crate) fn terminate_out_of_band(&mut self, id: &str) -> bool {
        let now = self.now_ms();
        let Some((was, _)) = self.world.terminate_out_of_band(id, now) else { return false };
        let reason = if was.is_failed() {
            "removed out of band while LAUNCH_FAILED"
        } else {
            "terminated out of band"
        };
        let at = self.now();
        self.lost.push(LostInstance {
            instance_id: id.to_owned(),
            at,
            state: was.to_string(),
            reason: reason.into(),
        });
        true
    }

    /// Reclaims a live SPOTPAID instance, recorded as a loss.
    pub(crate) fn reclaim_spot(&mut self, id: &str) -> bool {
        let now = self.now_ms();
        let Some(state) = self.world.get(id).map(|i| i.instance_state.clone()) else { return false };
        let which = cvmfleet_cloud::SpotReclaim { instance_ids: vec![id.to_owned()], ..Default::default() };
        match self.world.reclaim_spot(&which, now) {
            Ok((ids, _)) if !ids.is_empty() => {
                let at = self.now();
                self.lost.push(LostInstance {
                    instance_id: id.to_owned(),
                    at,
                    state,
                    reason: "spot instance reclaimed".into(),
                });
                true
            }
            _ => false,
        }
    }

    /// The listed instances, in creation order.
    pub(crate) fn live(&self) -> Vec<Instance> {
        self.world.instances().cloned().collect()
    }
}

/// The request's `ClientToken`, if any.
fn params_token(params: &Params) -> Option<String> {
    match params {
        Params::Json(value) => value.get("ClientToken").and_then(Value::as_str).map(str::to_owned),
        Params::Pairs(pairs) => pairs.iter().find(|(k, _)| k == "ClientToken").map(|(_, v)| v.clone()),
    }
    .filter(|t| !t.is_empty())
}

fn created(
    i: &Instance,
    region: &str,
    client_token: Option<String>,
    at: Duration,
    launched: cvmfleet_cloud::Launched<'_>,
) -> CreatedInstance {
    CreatedInstance {
        instance_id: i.instance_id.clone(),
        region: region.to_owned(),
        zone: i.placement.zone.clone(),
        name: i.instance_name.clone(),
        private_ip: i.private_ip_addresses.first().cloned().unwrap_or_default(),
        client_token,
        tags: i.tags.iter().map(|t| (t.key.clone(), t.value.clone())).collect(),
        created_at: at,
        created_time: i.created_time.clone(),
        launch_failed: launched.launch_fails,
        instance_type: i.instance_type.clone(),
        charge_type: i.instance_charge_type.clone(),
        stock_vanished: launched.stock_vanishes,
    }
}
