//! Continuous reconciliation: one [`Watcher::cycle`] makes one round ([`crate::round`], fleet
//! by fleet) over every due fleet, reports its drift and, with auto-apply, converges it within
//! the safety limits. What happened is returned
//! as data ([`CycleReport`]); the caller logs it, exports metrics and sleeps until
//! [`Watcher::next_delay`].
//!
//! Failure policy lives here and nowhere else: a fleet whose cycle failed (observation, an
//! error while converging, a stopped rollout) is skipped by the following cycles for an
//! exponentially growing time, `interval × 2^(failures-1)`, at most `interval ×`
//! [`MAX_BACKOFF_FACTOR`]; one success resets it. The state is in every report.
//!
//! The cloud is reached through [`Cloud`] (a round's [`Reads`] and a convergence), so the
//! cycle logic runs in tests against in-process fakes under paused time; [`ClientCloud`] is
//! the real one.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use std::sync::Arc;

use cvmfleet_client::CvmClient;
use cvmfleet_plan::{DesiredFleet, Drift, ObservedFleet, OfferingState, Plan, PlanOptions};
use cvmfleet_wire::api::RunInstancesRequest;
use cvmfleet_wire::model::Filter;

use crate::converge::{Converged, Stop, converge};
use crate::error::ExecError;
use crate::execute::{Event, ExecOptions, Interrupt, Progress};
use crate::market::Unavailable;
use crate::observe::Observation;
use crate::prices::{PriceCache, QuoteFuture, Quoter};
use crate::round::{Reads, Round};

/// Longest backoff, in intervals: a fleet that keeps failing is still retried about every
/// 16 intervals (80 minutes at the default 5), so a fixed cause is noticed within the hour.
pub const MAX_BACKOFF_FACTOR: u32 = 16;

/// Jitter on the interval, as a fraction: ±10% spreads watchers started together (a fleet of
/// CI runners, a restarted deployment) so they do not hit the API in the same second.
pub const JITTER: f64 = 0.1;

/// The cloud as the watcher uses it: what a round reads ([`Reads`], prices through
/// [`Quoter`]) and a convergence.
pub trait Cloud: Reads + Clone + Send + Sync + 'static {
    /// Converges one fleet, starting with `first` (see [`converge`]), quoting its rounds'
    /// prices through `prices`.
    fn converge(
        &self,
        fleet: DesiredFleet,
        options: PlanOptions,
        first: Plan,
        interrupt: Interrupt,
        prices: Arc<PriceCache>,
    ) -> impl Future<Output = Converged> + Send;

    /// Offerings a launch found short, kept across cycles (see [`crate::market`]); none by
    /// default.
    fn unavailable(&self) -> Option<&Unavailable> {
        None
    }
}

/// The real cloud: a [`CvmClient`], steps logged with `tracing`.
#[derive(Debug, Clone)]
pub struct ClientCloud {
    /// The client.
    pub client: CvmClient,
    /// Execution tunables.
    pub exec: ExecOptions,
    /// Offerings a launch found short, kept across cycles (see [`crate::market`]).
    pub unavailable: Arc<Unavailable>,
}

/// Logs execution steps as `tracing` events of the fleet.
struct Logged(String);

impl Progress for Logged {
    fn event(&self, event: Event) {
        match event {
            Event::Started(step) => tracing::info!(fleet = %self.0, %step, "started"),
            Event::Finished(step) => tracing::info!(fleet = %self.0, %step, "done"),
            Event::Waiting { ready, total } => tracing::debug!(fleet = %self.0, ready, total, "waiting"),
            Event::PollFailed { error, in_a_row } => {
                tracing::warn!(fleet = %self.0, in_a_row, %error, "status poll failed");
            }
        }
    }
}

impl Quoter for ClientCloud {
    fn quote(&self, region: &str, request: &RunInstancesRequest) -> QuoteFuture {
        Quoter::quote(&self.client, region, request)
    }
}

impl Reads for ClientCloud {
    fn list(
        &self,
        fleets: &[DesiredFleet],
        everywhere: bool,
    ) -> impl Future<Output = Result<Observation, ExecError>> + Send {
        self.client.list(fleets, everywhere)
    }

    fn stock(
        &self,
        fleets: &[&DesiredFleet],
    ) -> impl Future<Output = Result<BTreeMap<String, Vec<OfferingState>>, ExecError>> + Send {
        self.client.stock(fleets)
    }

    fn reread_pool(
        &self,
        fleet: &DesiredFleet,
        filters: &[Filter],
        seen: &mut ObservedFleet,
    ) -> impl Future<Output = Result<(), ExecError>> + Send {
        self.client.reread_pool(fleet, filters, seen)
    }
}

impl Cloud for ClientCloud {
    fn converge(
        &self,
        fleet: DesiredFleet,
        options: PlanOptions,
        first: Plan,
        interrupt: Interrupt,
        prices: Arc<PriceCache>,
    ) -> impl Future<Output = Converged> + Send {
        let this = self.clone();
        async move {
            let name = fleet.name.clone();
            let progress = Logged(name.clone());
            let on_round = move |round: u32, plan: &Plan| {
                tracing::info!(fleet = %name, round, summary = %cvmfleet_plan::render::summary_line(plan), "next round");
            };
            converge(
                &this.client,
                &[fleet],
                options,
                first,
                &this.exec,
                &progress,
                &on_round,
                &interrupt,
                &this.unavailable,
                &prices,
            )
            .await
        }
    }

    fn unavailable(&self) -> Option<&Unavailable> {
        Some(&self.unavailable)
    }
}

/// How a watcher behaves.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Time between cycles (before jitter).
    pub interval: Duration,
    /// Carry out the plans, not only report drift.
    pub auto_apply: bool,
    /// Planning switches; `max_terminations_per_group` is the per-cycle bound.
    pub plan: PlanOptions,
}

/// A fleet's failure streak.
#[derive(Debug, Clone, Default)]
struct Health {
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<String>,
}

/// A fleet's backoff, as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    /// Failed cycles in a row.
    pub failures: u32,
    /// Time until the fleet is tried again.
    pub retry_in: Duration,
    /// The last failure.
    pub last_error: String,
}

/// What applying a fleet's plan did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Rounds executed.
    pub rounds: usize,
    /// Instances created and running.
    pub created: usize,
    /// Instances started.
    pub started: usize,
    /// Instances changed in place.
    pub updated: usize,
    /// Instances terminated.
    pub terminated: usize,
    /// Why it stopped before converging, if it did.
    pub stopped: Option<String>,
    /// Steps that failed, with their errors.
    pub failures: Vec<String>,
}

/// One fleet's part of a cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FleetOutcome {
    /// Skipped: backing off after failures.
    BackingOff,
    /// Observing the fleet failed.
    ObserveFailed(String),
    /// The cloud matches the specs, or every difference is one the policy only reports.
    InSync,
    /// Changes are pending and auto-apply is off.
    Pending,
    /// Changes are pending but exceed a safety limit: nothing was done; a human must apply.
    Held(Vec<String>),
    /// Nothing else to do, but slots no zone or offering the groups accept has stock for
    /// (`fleet/group: N in zone`): tried again each cycle, never before an offering's TTL.
    Unplaced(Vec<String>),
    /// The plan was carried out.
    Applied(Applied),
}

/// One fleet in a cycle report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetReport {
    /// Fleet.
    pub fleet: String,
    /// What happened.
    pub outcome: FleetOutcome,
    /// Changes the fleet's plan held (creates + updates + starts + terminations), before any
    /// apply.
    pub changes: u32,
    /// The backoff after this cycle, when the fleet is failing.
    pub backoff: Option<Backoff>,
}

impl FleetReport {
    /// Whether this fleet's part of the cycle failed.
    #[must_use]
    pub fn failed(&self) -> bool {
        match &self.outcome {
            FleetOutcome::ObserveFailed(_) => true,
            FleetOutcome::Applied(applied) => is_failure(applied.stopped.as_deref(), &applied.failures),
            _ => false,
        }
    }
}

fn is_failure(stopped: Option<&str>, failures: &[String]) -> bool {
    stopped.is_some() && !failures.is_empty()
}

/// What one cycle did.
#[derive(Debug, Clone)]
pub struct CycleReport {
    /// How long it took.
    pub duration: Duration,
    /// Per fleet, sorted by name.
    pub fleets: Vec<FleetReport>,
    /// The drift of every fleet observed in this cycle.
    pub drift: Vec<Drift>,
}

impl CycleReport {
    /// Whether every fleet attempted in this cycle succeeded.
    #[must_use]
    pub fn succeeded(&self) -> bool {
        !self.fleets.iter().any(FleetReport::failed)
    }
}

/// A watcher's state across cycles: the backoff of every fleet.
#[derive(Debug)]
pub struct Watcher {
    options: WatchOptions,
    health: BTreeMap<String, Health>,
    /// ClientTokens the cloud reported spent in earlier cycles (see `cvmfleet_plan::token`).
    spent_tokens: BTreeSet<String>,
    /// Prices of earlier cycles and their convergences, fresh for
    /// [`crate::prices::PRICE_TTL`]: an unchanged group's plan costs no quote.
    prices: Arc<PriceCache>,
}

/// Whether a convergence's stop counts as a failure of the fleet (and so backs it off).
fn stop_is_failure(stop: &Stop) -> bool {
    matches!(
        stop,
        Stop::Failed
            | Stop::RolloutStopped { .. }
            | Stop::LaunchRetriesExhausted
            | Stop::NoProgress
            | Stop::RoundLimit
            | Stop::Observe(_)
    )
}

fn applied(outcome: &Converged) -> Applied {
    let mut applied = Applied { rounds: outcome.reports.len(), ..Applied::default() };
    for r in &outcome.reports {
        applied.created += r.created.len();
        applied.started += r.started.len();
        applied.updated += r.updated.len();
        applied.terminated += r.terminated.len();
    }
    if let Some(stop) = &outcome.stop {
        applied.stopped = Some(stop.to_string());
        if stop_is_failure(stop) {
            let last = outcome.reports.last();
            applied.failures = last
                .map(|r| r.failures.iter().map(|f| crate::converge::error_chain(f)).collect())
                .unwrap_or_default();
            if applied.failures.is_empty() {
                applied.failures.push(stop.to_string());
            }
        }
    }
    applied
}

impl Watcher {
    /// A watcher with no history.
    #[must_use]
    pub fn new(options: WatchOptions) -> Self {
        Watcher {
            options,
            health: BTreeMap::new(),
            spent_tokens: BTreeSet::new(),
            prices: Arc::new(PriceCache::new()),
        }
    }

    /// Quotes sent for the plans' costs since the watcher started.
    #[must_use]
    pub fn quotes_sent(&self) -> u64 {
        self.prices.quotes_sent()
    }

    /// The options.
    #[must_use]
    pub fn options(&self) -> &WatchOptions {
        &self.options
    }

    /// The delay before the next cycle for a uniform random `u` in `0..1`: the interval ±
    /// [`JITTER`].
    #[must_use]
    pub fn next_delay(&self, u: f64) -> Duration {
        let factor = 1.0 + JITTER * (2.0 * u.clamp(0.0, 1.0) - 1.0);
        self.options.interval.mul_f64(factor)
    }

    /// The backoff after `failures` failed cycles in a row.
    #[must_use]
    pub fn backoff_delay(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(MAX_BACKOFF_FACTOR.trailing_zeros());
        // Saturating: the interval comes from outside (issue 10: 18446744073709551615s overflowed).
        self.options.interval.saturating_mul(factor.min(MAX_BACKOFF_FACTOR))
    }

    fn backoff(&self, fleet: &str, now: Instant) -> Option<Backoff> {
        let h = self.health.get(fleet)?;
        let retry_at = h.retry_at?;
        Some(Backoff {
            failures: h.failures,
            retry_in: retry_at.saturating_duration_since(now),
            last_error: h.last_error.clone().unwrap_or_default(),
        })
    }

    /// Whether the fleet is due: not backing off. Cycles come at the interval minus jitter, so
    /// a fleet is due a quarter interval before its retry time.
    fn due(&self, fleet: &str, now: Instant) -> bool {
        let slack = self.options.interval / 4;
        self.health.get(fleet).and_then(|h| h.retry_at).is_none_or(|at| now + slack >= at)
    }

    fn record(&mut self, fleet: &str, error: Option<String>, now: Instant) {
        match error {
            None => {
                self.health.remove(fleet);
            }
            Some(error) => {
                let failures = self.health.get(fleet).map_or(0, |h| h.failures) + 1;
                let delay = self.backoff_delay(failures);
                self.health.insert(
                    fleet.to_owned(),
                    Health { failures, retry_at: Some(now + delay), last_error: Some(error) },
                );
            }
        }
    }

    /// One cycle over `desired`: observe the due fleets, plan, and converge the fleets with
    /// changes when auto-apply is on and no safety limit is exceeded. Fleets converge
    /// concurrently; `interrupt` stops them between calls.
    pub async fn cycle<C: Cloud>(
        &mut self,
        cloud: &C,
        desired: &[DesiredFleet],
        interrupt: &Interrupt,
    ) -> CycleReport {
        let started = Instant::now();
        // Fleets no longer in the specs have no backoff to keep.
        self.health.retain(|name, _| desired.iter().any(|f| &f.name == name));
        let due: Vec<DesiredFleet> = desired.iter().filter(|f| self.due(&f.name, started)).cloned().collect();
        let mut round = Round::new(self.options.plan, &self.prices).spent(&self.spent_tokens);
        if let Some(memory) = cloud.unavailable() {
            round = round.memory(memory);
        }
        // Not `everywhere`: a watcher lists its fleets' regions only.
        let mut each = round.plan_each(cloud, &due).await.unwrap_or_default();
        if let Some(error) = &each.stock_error {
            // Planned without stock, the preferred offerings are tried and a shortage marks
            // them; the marks already known still apply.
            tracing::warn!(error = %crate::converge::error_chain(error), "stock read failed; planning without it");
        }
        let mut reports: BTreeMap<String, FleetReport> = BTreeMap::new();
        let mut drift = Vec::new();
        let mut applying: JoinSet<(String, u32, Converged)> = JoinSet::new();
        for fleet in desired {
            let report =
                |outcome, changes| FleetReport { fleet: fleet.name.clone(), outcome, changes, backoff: None };
            if !due.iter().any(|f| f.name == fleet.name) {
                reports.insert(fleet.name.clone(), report(FleetOutcome::BackingOff, 0));
                continue;
            }
            let plan = match (each.plans.remove(&fleet.name), each.failed.remove(&fleet.name)) {
                (Some(plan), _) => plan,
                (None, Some(error)) => {
                    let text = crate::converge::error_chain(&error);
                    reports.insert(fleet.name.clone(), report(FleetOutcome::ObserveFailed(text), 0));
                    continue;
                }
                (None, None) => {
                    let text = format!("observing fleet {} returned nothing", fleet.name);
                    reports.insert(fleet.name.clone(), report(FleetOutcome::ObserveFailed(text), 0));
                    continue;
                }
            };
            drift.extend(plan.drift.iter().cloned());
            let changes = plan.summary.changes();
            let unplaced: Vec<String> = plan
                .fleets
                .iter()
                .flat_map(|f| f.groups.iter().flat_map(move |g| g.unplaced.iter().map(move |u| (f, g, u))))
                .map(|(f, g, u)| format!("{}/{}: {} in {}", f.name, g.name, u.count, u.zone))
                .collect();
            if plan.is_empty() && !unplaced.is_empty() {
                reports.insert(fleet.name.clone(), report(FleetOutcome::Unplaced(unplaced), 0));
            } else if plan.is_empty() {
                reports.insert(fleet.name.clone(), report(FleetOutcome::InSync, 0));
            } else if !plan.refusals.is_empty() {
                let held = plan.refusals.iter().map(|r| r.message.clone()).collect();
                reports.insert(fleet.name.clone(), report(FleetOutcome::Held(held), changes));
            } else if !self.options.auto_apply || interrupt.is_set() {
                reports.insert(fleet.name.clone(), report(FleetOutcome::Pending, changes));
            } else {
                let (cloud, fleet, options, interrupt, prices) =
                    (cloud.clone(), fleet.clone(), self.options.plan, interrupt.clone(), self.prices.clone());
                applying.spawn(async move {
                    let name = fleet.name.clone();
                    (name, changes, cloud.converge(fleet, options, plan, interrupt, prices).await)
                });
            }
        }
        // Orphan fleets of the regions observed (issue 12): reported as drift, held for a human.
        // A watcher never prunes a whole fleet; `cvmfleet apply --prune` does.
        for (key, plan) in each.plans {
            if cvmfleet_plan::observed::parse_elsewhere_key(&key).is_none() {
                continue;
            }
            let Some(orphan) = plan.fleets.first() else { continue };
            drift.extend(plan.drift.iter().cloned());
            let held = vec![format!(
                "orphan fleet: no spec declares fleet {} in {}; {} instance(s) kept (prune it with `cvmfleet apply --prune`)",
                orphan.name,
                orphan.region,
                orphan.orphans.len()
            )];
            let changes = u32::try_from(orphan.orphans.len()).unwrap_or(u32::MAX);
            reports.insert(
                key.clone(),
                FleetReport { fleet: key, outcome: FleetOutcome::Held(held), changes, backoff: None },
            );
        }
        while let Some(joined) = applying.join_next().await {
            let Ok((name, changes, outcome)) = joined else { continue };
            // Spent tokens stay spent: later cycles step over them without asking again.
            self.spent_tokens.extend(outcome.reports.iter().flat_map(|r| r.spent_tokens.iter().cloned()));
            let applied = applied(&outcome);
            reports.insert(
                name.clone(),
                FleetReport { fleet: name, outcome: FleetOutcome::Applied(applied), changes, backoff: None },
            );
        }
        let now = Instant::now();
        for fleet in desired {
            let Some(report) = reports.get_mut(&fleet.name) else {
                // Its convergence task died: count it as a failure, not as done.
                let failure = FleetReport {
                    fleet: fleet.name.clone(),
                    outcome: FleetOutcome::ObserveFailed("the fleet's task was aborted".into()),
                    changes: 0,
                    backoff: None,
                };
                reports.insert(fleet.name.clone(), failure);
                self.record(&fleet.name, Some("the fleet's task was aborted".into()), now);
                continue;
            };
            // An interrupted cycle (Ctrl-C, a lost lease) says nothing about a fleet's health:
            // its failures are the interruption's, not the cloud's, and must not back it off.
            if report.outcome != FleetOutcome::BackingOff && !interrupt.is_set() {
                let error = match &report.outcome {
                    FleetOutcome::ObserveFailed(e) => Some(e.clone()),
                    FleetOutcome::Applied(a) if report.failed() => Some(a.failures.join("; ")),
                    _ => None,
                };
                self.record(&fleet.name, error, now);
            }
        }
        let mut fleets: Vec<FleetReport> = reports.into_values().collect();
        for report in &mut fleets {
            report.backoff = self.backoff(&report.fleet, now);
        }
        cvmfleet_plan::drift::sort(&mut drift);
        CycleReport { duration: started.elapsed(), fleets, drift }
    }
}
