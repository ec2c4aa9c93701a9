//! The executor: one attempt at carrying out a plan, reporting everything it did and did not do.
//!
//! Order, chosen so that capacity never drops below what the plan keeps:
//! 1. in-place updates, starts of stopped instances and creates (concurrently, within the
//!    client's rate limits);
//! 2. wait until the new and started instances, and those the plan says to await, are RUNNING
//!    (DescribeInstancesStatus, 100 IDs per call, backing off from 0.5 s to 1 s);
//! 3. terminations (100 IDs per call); instances a group replaces go only when everything it
//!    created, started or awaits runs (a rolling replacement stops there, and says why);
//! 4. creates that wait for terminated instances to be gone (their private IPs), once those
//!    are gone.
//!
//! The executor makes no decisions of its own beyond that order: the plan fixed every count,
//! zone, instance and token. What the cloud answered that a fresh plan must take into account
//! is reported as data: a token replayed with instances that are all gone, or refused as
//! reused with other parameters, is *spent* ([`Report::spent_tokens`]); instances of a create
//! that vanished before they ran are *lost* ([`Report::lost`]). The converge loop re-plans
//! from a new observation with the spent tokens (see `cvmfleet_plan::token`); the executor
//! never sends a token the plan did not name.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use cvmfleet_client::{CvmClient, Error as ApiError};
use cvmfleet_plan::plan::{AttributeChange, Create, FleetPlan, GroupPlan, Plan, Start, Termination, Update};
use cvmfleet_wire::api::{
    ModifyInstancesAttributeRequest, RunInstancesRequest, StartInstancesRequest, TerminateInstancesRequest,
};
use cvmfleet_wire::vocab::InstanceState;
use cvmfleet_wire::{MAX_BATCH, codes};

use crate::error::ExecError;

/// Tunables of an execution.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Calls in flight at once; the client's rate limits still apply on top.
    pub concurrency: usize,
    /// Longest wait for instances to run or disappear. 15 minutes, like the Terraform
    /// provider's create timeout, which was raised to that after real launches took longer.
    pub wait_timeout: Duration,
    /// First poll interval while waiting.
    pub poll_min: Duration,
    /// Longest poll interval while waiting.
    pub poll_max: Duration,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            concurrency: 8,
            wait_timeout: Duration::from_secs(15 * 60),
            poll_min: Duration::from_millis(500),
            // Short enough that waiting adds at most about a second to the boot delay (the
            // benchmark's target is 1.2x the bound set by rate limits and boot delay), long
            // enough that polling 1,000 instances (10 calls) stays well under the 40/s limit.
            poll_max: Duration::from_secs(1),
        }
    }
}

/// Set when the user interrupts (Ctrl-C): calls in flight finish, nothing new starts.
///
/// A [`Interrupt::child`] is set when its parent is, or when its own condition says so: `watch`
/// gives each term of leadership a child whose condition is "the lease is no longer held", so
/// losing the lease stops execution between calls exactly as Ctrl-C does.
#[derive(Clone, Default)]
pub struct Interrupt(Arc<Flag>);

/// What an [`Interrupt`] consults.
#[derive(Default)]
struct Flag {
    set: AtomicBool,
    parent: Option<Interrupt>,
    condition: Option<Box<dyn Fn() -> bool + Send + Sync>>,
}

impl std::fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Interrupt").field(&self.is_set()).finish()
    }
}

impl Interrupt {
    /// A flag that is not set.
    #[must_use]
    pub fn new() -> Self {
        Interrupt::default()
    }
    /// A flag that is set when this one is, when it is triggered itself, or as soon as
    /// `condition` returns true (it is asked at every check, so it must be cheap).
    #[must_use]
    pub fn child(&self, condition: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        Interrupt(Arc::new(Flag {
            set: AtomicBool::new(false),
            parent: Some(self.clone()),
            condition: Some(Box::new(condition)),
        }))
    }
    /// Asks the execution to stop.
    pub fn trigger(&self) {
        self.0.set.store(true, Ordering::SeqCst);
    }
    /// Whether a stop was asked for.
    #[must_use]
    pub fn is_set(&self) -> bool {
        self.0.set.load(Ordering::SeqCst)
            || self.0.condition.as_ref().is_some_and(|stop| stop())
            || self.0.parent.as_ref().is_some_and(Interrupt::is_set)
    }
}

/// What an execution reports as it goes; the CLI draws a progress bar or prints lines.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A step was sent.
    Started(String),
    /// A step finished.
    Finished(String),
    /// Waiting for instances: how many of how many are ready.
    Waiting {
        /// Ready so far.
        ready: usize,
        /// All being waited for.
        total: usize,
    },
    /// A status poll failed (the client already retried it); waiting goes on until
    /// [`MAX_FAILED_POLLS`] fail in a row.
    PollFailed {
        /// The error, with its action, code and RequestId.
        error: String,
        /// Failed polls in a row so far.
        in_a_row: u32,
    },
}

/// Status polls that may fail in a row before waiting gives up: at the longest poll interval
/// (1 s) about half a minute of an unreachable endpoint, long enough for a blip, short enough
/// that a dead endpoint is reported instead of waited on for the whole wait bound.
pub const MAX_FAILED_POLLS: u32 = 30;

/// Receives [`Event`]s.
pub trait Progress: Send + Sync {
    /// One event.
    fn event(&self, event: Event);
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn event(&self, _: Event) {}
}

/// What an execution did and did not do.
#[derive(Debug, Default)]
pub struct Report {
    /// Instances created and running.
    pub created: Vec<String>,
    /// Stopped instances started and running.
    pub started: Vec<String>,
    /// Instances changed in place.
    pub updated: Vec<String>,
    /// Instances terminated.
    pub terminated: Vec<String>,
    /// Steps that failed.
    pub failures: Vec<ExecError>,
    /// Steps not attempted (interrupted, or held back because a step they depend on failed).
    pub skipped: Vec<String>,
    /// Groups (fleet, group) whose rolling replacement stopped: their new instances did not
    /// come up, so the instances they replace were kept.
    pub rollouts_stopped: Vec<(String, String)>,
    /// ClientTokens the cloud has used before, although none of their instances exists now:
    /// replayed with instances that are all gone, or refused as reused with other
    /// parameters. The next plan steps over them.
    pub spent_tokens: Vec<String>,
    /// Instances a create answered with that vanished before they ran (terminated out of
    /// band): the next plan fills their slots.
    pub lost: Vec<String>,
    /// Steps left to the next round because the cloud moved (a spent token, lost instances,
    /// a batch refused because another run changed some of its instances): the terminations
    /// of a group whose creates did not all come up, such batches. Not failures.
    pub deferred: Vec<String>,
    /// The instances of the deferred batch steps: the next round may plan them again without
    /// that counting as someone else's change.
    pub deferred_ids: Vec<String>,
    /// Instances adopted: their ownership tags were written (issue 12 §4).
    pub adopted: Vec<String>,
    /// Creates the cloud refused for stock: nothing was created and the token stays unspent
    /// (see `cvmfleet_plan::token`); the offering is marked unavailable and the next round
    /// plans the same slots onto the next candidate. Not failures.
    pub stock_shortages: Vec<StockShortage>,
}

/// A create refused for stock.
#[derive(Debug, Clone)]
pub struct StockShortage {
    /// The step.
    pub step: String,
    /// Where it would have launched.
    pub offering: crate::market::OfferingKey,
    /// The refusal (action, code, RequestId).
    pub error: String,
}

impl Report {
    /// Whether everything in the plan was done.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.failures.is_empty()
            && self.skipped.is_empty()
            && self.deferred.is_empty()
            && self.stock_shortages.is_empty()
    }

    /// Whether a fresh plan has something to pick up that this one could not finish (spent
    /// tokens, lost instances, deferred steps).
    #[must_use]
    pub fn needs_replan(&self) -> bool {
        !self.spent_tokens.is_empty()
            || !self.lost.is_empty()
            || !self.deferred.is_empty()
            || !self.stock_shortages.is_empty()
    }
}

pub(crate) fn create_step(fleet: &FleetPlan, group: &GroupPlan, create: &Create) -> String {
    format!("create {} in {} (fleet {}, group {})", create.count, create.zone, fleet.name, group.name)
}

/// Instances being waited for: a create in flight (the request as last sent and the
/// instances it answered with), or instances started or awaited (no request).
struct Launch {
    step: String,
    region: String,
    fleet: String,
    group: String,
    /// The ClientToken, when the instances come from a create.
    token: Option<String>,
    /// The offering a create launches on.
    offering: Option<crate::market::OfferingKey>,
    ids: Vec<String>,
    missing_polls: u32,
    done: bool,
    failed: bool,
    /// Done, but not everything came up for a reason a fresh plan handles (spent, lost).
    incomplete: bool,
    /// Where the running ones are reported.
    kind: WaitKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WaitKind {
    Created,
    Started,
    Awaited,
}

impl Launch {
    fn waiting(
        step: String,
        region: &str,
        fleet: &str,
        group: &str,
        ids: Vec<String>,
        kind: WaitKind,
    ) -> Self {
        Launch {
            step,
            region: region.to_owned(),
            fleet: fleet.to_owned(),
            group: group.to_owned(),
            token: None,
            offering: None,
            ids,
            missing_polls: 0,
            done: false,
            failed: false,
            incomplete: false,
            kind,
        }
    }
}

/// Carries out a plan once. Never panics on API answers; every failure is in the report.
pub async fn execute(
    client: &CvmClient,
    plan: &Plan,
    options: &ExecOptions,
    progress: &dyn Progress,
    interrupt: &Interrupt,
) -> Report {
    let mut report = Report::default();
    let semaphore = Arc::new(Semaphore::new(options.concurrency.max(1)));

    // 0. Whatever the plan says (a saved plan travels and can be edited), nothing is
    // terminated, stopped, started or changed that the cloud does not show as ours.
    let owned = match keep_owned(client, plan).await {
        Ok((owned, refused)) => {
            report.failures.extend(refused);
            owned
        }
        Err(error) => {
            report.failures.push(error);
            without_mutations(plan)
        }
    };
    let plan = &owned;

    // 1. Adoptions, updates and immediate creates.
    adopt(client, plan, progress, interrupt, &mut report).await;
    let mut launches: Vec<Launch> = Vec::new();
    let mut later: Vec<(String, String, String, String, Create)> = Vec::new();
    let mut tasks: JoinSet<StepOutcome> = JoinSet::new();
    for fleet in &plan.fleets {
        for group in &fleet.groups {
            for update in &group.updates {
                let step = update_step(fleet, group, update);
                if interrupt.is_set() {
                    report.skipped.push(step);
                    continue;
                }
                let (client, region, update, permit) =
                    (client.clone(), fleet.region.clone(), update.clone(), semaphore.clone());
                progress.event(Event::Started(step.clone()));
                tasks.spawn(async move {
                    let _permit = permit.acquire_owned().await;
                    let request = modify_request(&update);
                    let result = client.call(&region, &request).await.map(|_| update.instance_ids.clone());
                    StepOutcome::Update { step, result }
                });
            }
            for start in &group.starts {
                let step = format!(
                    "start {} instance(s) (fleet {}, group {})",
                    start.instance_ids.len(),
                    fleet.name,
                    group.name
                );
                if interrupt.is_set() {
                    report.skipped.push(step);
                    continue;
                }
                progress.event(Event::Started(step.clone()));
                let index = launches.len();
                launches.push(Launch::waiting(
                    step.clone(),
                    &fleet.region,
                    &fleet.name,
                    &group.name,
                    start.instance_ids.clone(),
                    WaitKind::Started,
                ));
                let (client, region, start, permit, options, interrupt) = (
                    client.clone(),
                    fleet.region.clone(),
                    start.clone(),
                    semaphore.clone(),
                    options.clone(),
                    interrupt.clone(),
                );
                tasks.spawn(async move {
                    let _permit = permit.acquire_owned().await;
                    let outcome = start_instances(&client, &region, &start, &options, &interrupt).await;
                    StepOutcome::Start { index, step, outcome, ids: start.instance_ids }
                });
            }
            if !group.await_running.is_empty() {
                launches.push(Launch::waiting(
                    format!(
                        "wait for {} booting instance(s) (fleet {}, group {})",
                        group.await_running.len(),
                        fleet.name,
                        group.name
                    ),
                    &fleet.region,
                    &fleet.name,
                    &group.name,
                    group.await_running.clone(),
                    WaitKind::Awaited,
                ));
            }
            for create in &group.creates {
                let step = create_step(fleet, group, create);
                if !create.wait_for_gone.is_empty() {
                    later.push((
                        step,
                        fleet.region.clone(),
                        fleet.name.clone(),
                        group.name.clone(),
                        create.clone(),
                    ));
                    continue;
                }
                if interrupt.is_set() {
                    report.skipped.push(step);
                    continue;
                }
                match prepare(create, &step) {
                    Ok(request) => {
                        progress.event(Event::Started(step.clone()));
                        let (client, region, permit) =
                            (client.clone(), fleet.region.clone(), semaphore.clone());
                        let offering = crate::market::OfferingKey {
                            region: fleet.region.clone(),
                            zone: create.zone.clone(),
                            instance_type: request.instance_type.clone().unwrap_or_default(),
                            charge_type: request.instance_charge_type.clone().unwrap_or_else(|| {
                                cvmfleet_wire::vocab::InstanceChargeType::PostpaidByHour.as_str().to_owned()
                            }),
                        };
                        let launch = Launch {
                            token: request.client_token.clone(),
                            offering: Some(offering),
                            ..Launch::waiting(
                                step.clone(),
                                &region,
                                &fleet.name,
                                &group.name,
                                Vec::new(),
                                WaitKind::Created,
                            )
                        };
                        let index = launches.len();
                        launches.push(launch);
                        tasks.spawn(async move {
                            let _permit = permit.acquire_owned().await;
                            let result = client.call(&region, &request).await.map(|a| a.data.instance_id_set);
                            StepOutcome::Create { index, step, result }
                        });
                    }
                    Err(error) => report.failures.push(error),
                }
            }
        }
    }
    while let Some(joined) = tasks.join_next().await {
        let Ok(outcome) = joined else { continue };
        match outcome {
            StepOutcome::Update { step, result } => match result {
                Ok(ids) => {
                    progress.event(Event::Finished(step));
                    report.updated.extend(ids);
                }
                Err(source) => report.failures.push(ExecError::Api { step, source }),
            },
            StepOutcome::Create { index, step, result } => {
                created_or_refused(&mut launches[index], step, result, &mut report);
            }
            StepOutcome::Start { index, step, outcome, ids } => match outcome {
                BatchOutcome::Done => {}
                BatchOutcome::Deferred(source) => {
                    // Someone else moved some of them; the next round plans from what is there.
                    launches[index].done = true;
                    launches[index].incomplete = true;
                    report.deferred.push(format!("{step}: {source}; the next round re-plans it"));
                    report.deferred_ids.extend(ids);
                }
                BatchOutcome::Failed(source) => {
                    launches[index].failed = true;
                    launches[index].done = true;
                    report.failures.push(ExecError::Api { step, source });
                }
            },
        }
    }

    // 2. Wait for the new instances to run.
    wait_running(client, &mut launches, options, progress, interrupt, &mut report).await;
    let mut failed_groups: BTreeSet<(String, String)> = BTreeSet::new();
    let mut replan_groups: BTreeSet<(String, String)> = BTreeSet::new();
    for launch in &launches {
        if launch.failed || !launch.done {
            failed_groups.insert((launch.fleet.clone(), launch.group.clone()));
        } else if launch.incomplete {
            replan_groups.insert((launch.fleet.clone(), launch.group.clone()));
        }
    }

    // 3. Terminations, per region in batches of 100.
    let mut by_region: BTreeMap<String, Vec<(String, Termination)>> = BTreeMap::new();
    for fleet in &plan.fleets {
        for group in &fleet.groups {
            let key = (fleet.name.clone(), group.name.clone());
            let held_back = failed_groups.contains(&key);
            let replanned = replan_groups.contains(&key);
            for t in &group.terminations {
                if replanned && t.waits_for_launches {
                    report.deferred_ids.push(t.instance_id.clone());
                    report.deferred.push(format!(
                        "terminate {} (fleet {}, group {}): not all of the group's new instances came \
                         up; the next round re-plans it",
                        t.instance_id, fleet.name, group.name
                    ));
                    continue;
                }
                if held_back && t.waits_for_launches {
                    let key = (fleet.name.clone(), group.name.clone());
                    if !report.rollouts_stopped.contains(&key) {
                        report.rollouts_stopped.push(key);
                    }
                    report.skipped.push(format!(
                        "terminate {} (fleet {}, group {}): rolling replacement stopped, the new \
                         instances did not come up; the old instance is kept",
                        t.instance_id, fleet.name, group.name
                    ));
                    continue;
                }
                by_region.entry(fleet.region.clone()).or_default().push((fleet.name.clone(), t.clone()));
            }
        }
        if fleet.prune {
            for t in &fleet.orphans {
                by_region.entry(fleet.region.clone()).or_default().push((fleet.name.clone(), t.clone()));
            }
        }
    }
    for (region, terminations) in by_region {
        let batch: Vec<Termination> = terminations.into_iter().map(|(_, t)| t).collect();
        for chunk in batch.chunks(MAX_BATCH) {
            let step = format!("terminate {} instance(s) in {region}", chunk.len());
            if interrupt.is_set() {
                report.skipped.push(step);
                continue;
            }
            progress.event(Event::Started(step.clone()));
            let ids = chunk.iter().map(|t| t.instance_id.clone());
            match terminate(client, &region, chunk, options, interrupt).await {
                BatchOutcome::Done => {
                    progress.event(Event::Finished(step));
                    report.terminated.extend(ids);
                }
                BatchOutcome::Deferred(source) => {
                    report.deferred.push(format!("{step}: {source}; the next round re-plans it"));
                    report.deferred_ids.extend(ids);
                }
                BatchOutcome::Failed(source) => report.failures.push(ExecError::Api { step, source }),
            }
        }
    }

    // 4. Creates that waited for private IPs to be freed.
    if !later.is_empty() {
        let mut waiting: Vec<Launch> = Vec::new();
        let terminated: BTreeSet<String> = report.terminated.iter().cloned().collect();
        let mut not_terminated = Vec::new();
        for (step, region, fleet, group, create) in later {
            if interrupt.is_set() {
                report.skipped.push(step);
                continue;
            }
            // Its predecessors were not terminated (held back or failed): they will not go.
            if create.wait_for_gone.iter().any(|id| !terminated.contains(id)) {
                not_terminated.push(format!("{step}: the instances it replaces were not terminated"));
                continue;
            }
            if let Err(error) =
                wait_gone(client, &region, &create.wait_for_gone, options, interrupt, &step).await
            {
                report.failures.push(error);
                continue;
            }
            let request = match prepare(&create, &step) {
                Ok(request) => request,
                Err(error) => {
                    report.failures.push(error);
                    continue;
                }
            };
            progress.event(Event::Started(step.clone()));
            let mut launch = Launch {
                token: request.client_token.clone(),
                ..Launch::waiting(step.clone(), &region, &fleet, &group, Vec::new(), WaitKind::Created)
            };
            let result = client.call(&region, &request).await.map(|answer| answer.data.instance_id_set);
            created_or_refused(&mut launch, step, result, &mut report);
            waiting.push(launch);
        }
        report.skipped.extend(not_terminated);
        wait_running(client, &mut waiting, options, progress, interrupt, &mut report).await;
    }
    report
}

/// Writes the ownership tags of every adoption in the plan with the Tag service (TagResources,
/// ten instances a call), one call per batch of instances sharing the same tags. Tag writes
/// are idempotent: an adoption run twice, or by two applies at once, writes the same tags.
async fn adopt(
    client: &CvmClient,
    plan: &Plan,
    progress: &dyn Progress,
    interrupt: &Interrupt,
    report: &mut Report,
) {
    // (region, fleet, group, tags) → instances.
    type Batch<'a> = (&'a str, &'a str, &'a str, Vec<(String, String)>);
    let mut batches: BTreeMap<Batch<'_>, Vec<String>> = BTreeMap::new();
    for fleet in &plan.fleets {
        for group in &fleet.groups {
            for a in &group.adoptions {
                let tags = a.tags.iter().map(|t| (t.key.clone(), t.value.clone())).collect();
                batches
                    .entry((fleet.region.as_str(), fleet.name.as_str(), group.name.as_str(), tags))
                    .or_default()
                    .push(a.instance_id.clone());
            }
        }
    }
    for ((region, fleet, group, tags), ids) in batches {
        let step = format!("adopt {} instance(s) (fleet {fleet}, group {group})", ids.len());
        if interrupt.is_set() {
            report.skipped.push(step);
            continue;
        }
        progress.event(Event::Started(step.clone()));
        let tags: Vec<cvmfleet_wire::model::Tag> =
            tags.iter().map(|(k, v)| cvmfleet_wire::model::Tag::new(k.as_str(), v.as_str())).collect();
        let mut all_done = true;
        for outcome in client.tag_resources(region, &ids, &tags).await {
            match outcome.result {
                Ok(_) => report.adopted.extend(outcome.instance_ids),
                Err(source) => {
                    all_done = false;
                    let step = format!("{step}: {}", outcome.instance_ids.join(", "));
                    report.failures.push(ExecError::Api { step, source });
                }
            }
        }
        if all_done {
            progress.event(Event::Finished(step));
        }
    }
}

/// The plan with every step on an instance the cloud does not show as the step's (its fleet's
/// and group's tags; for orphans, its fleet's) left out, and a failure for each. One
/// DescribeInstances per 100 instances the plan would change.
async fn keep_owned(client: &CvmClient, plan: &Plan) -> Result<(Plan, Vec<ExecError>), ExecError> {
    type Owner<'a> = (&'a str, &'a str, Option<&'a str>);
    let mut wanted: BTreeMap<&str, BTreeMap<&str, Owner<'_>>> = BTreeMap::new();
    // Instances to adopt may carry no ownership tags yet, or already this group's.
    let mut adopting: BTreeSet<&str> = BTreeSet::new();
    for fleet in &plan.fleets {
        let ids = wanted.entry(fleet.region.as_str()).or_default();
        for group in &fleet.groups {
            for a in &group.adoptions {
                ids.insert(&a.instance_id, (&fleet.project, &fleet.name, Some(&group.name)));
                adopting.insert(&a.instance_id);
            }
            let touched = group.updates.iter().flat_map(|u| &u.instance_ids);
            let touched = touched.chain(group.starts.iter().flat_map(|s| &s.instance_ids));
            for id in touched.chain(group.terminations.iter().map(|t| &t.instance_id)) {
                ids.insert(id, (&fleet.project, &fleet.name, Some(&group.name)));
            }
        }
        if fleet.prune {
            for t in &fleet.orphans {
                ids.insert(&t.instance_id, (&fleet.project, &fleet.name, None));
            }
        }
    }
    let mut refused: BTreeMap<String, String> = BTreeMap::new();
    for (region, ids) in &wanted {
        let list: Vec<String> = ids.keys().map(|id| (*id).to_owned()).collect();
        let found =
            client.describe_instances_by_ids(region, &list).await.map_err(|source| ExecError::Api {
                step: format!("check the ownership of {} instance(s) in {region}", list.len()),
                source,
            })?;
        for instance in &found {
            let Some((project, fleet, group)) = ids.get(instance.instance_id.as_str()) else { continue };
            let fleet_tag = instance.tag(cvmfleet_plan::observed::tags::FLEET);
            let group_tag = instance.tag(cvmfleet_plan::observed::tags::GROUP);
            let project_tag = instance.tag(cvmfleet_plan::observed::tags::PROJECT);
            let unowned = project_tag.is_none() && fleet_tag.is_none() && group_tag.is_none();
            if unowned && adopting.contains(instance.instance_id.as_str()) {
                continue;
            }
            if let Some(other) = project_tag.filter(|p| p != project) {
                refused.insert(
                    instance.instance_id.clone(),
                    format!("it belongs to project {other}, not {project}"),
                );
            } else if fleet_tag != Some(*fleet) || group.is_some_and(|g| group_tag != Some(g)) {
                let owner = match (fleet_tag, group_tag) {
                    (Some(f), Some(g)) => format!("fleet {f}, group {g}"),
                    (Some(f), None) => format!("fleet {f}"),
                    _ => "no cvmfleet fleet".to_owned(),
                };
                let expected =
                    group.map_or_else(|| format!("fleet {fleet}"), |g| format!("fleet {fleet}, group {g}"));
                refused
                    .insert(instance.instance_id.clone(), format!("it belongs to {owner}, not {expected}"));
            }
        }
    }
    let failures = refused
        .iter()
        .map(|(id, why)| ExecError::NotOwned { instance_id: id.clone(), reason: why.clone() })
        .collect();
    let mut kept = plan.clone();
    let keep = |id: &String| !refused.contains_key(id);
    for fleet in &mut kept.fleets {
        for group in &mut fleet.groups {
            for update in &mut group.updates {
                update.instance_ids.retain(keep);
            }
            group.updates.retain(|u| !u.instance_ids.is_empty());
            for start in &mut group.starts {
                start.instance_ids.retain(keep);
            }
            group.starts.retain(|s| !s.instance_ids.is_empty());
            group.terminations.retain(|t| keep(&t.instance_id));
            group.adoptions.retain(|a| keep(&a.instance_id));
        }
        fleet.orphans.retain(|t| keep(&t.instance_id));
    }
    Ok((kept, failures))
}

/// The plan without any step that changes an existing instance (when ownership cannot be
/// checked): its creates only.
fn without_mutations(plan: &Plan) -> Plan {
    let mut kept = plan.clone();
    for fleet in &mut kept.fleets {
        fleet.orphans.clear();
        for group in &mut fleet.groups {
            group.updates.clear();
            group.starts.clear();
            group.terminations.clear();
        }
    }
    kept
}

/// Records what RunInstances answered: the instances to wait for, a token the cloud refused
/// as reused with other parameters (spent: the next plan steps over it), or a failure.
fn created_or_refused(
    launch: &mut Launch,
    step: String,
    result: Result<Vec<String>, ApiError>,
    report: &mut Report,
) {
    match result {
        Ok(ids) => launch.ids = ids,
        Err(source) => {
            launch.done = true;
            if source.code().is_some_and(|code| code == codes::INVALID_PARAMETER)
                && source.to_string().contains("ClientToken")
                && let Some(token) = launch.token.clone()
            {
                launch.incomplete = true;
                report.spent_tokens.push(token);
            } else if source.is_stock_shortage()
                && let Some(offering) = launch.offering.clone()
            {
                // Nothing was created and the token is not spent: the next round plans the
                // same generation onto another offering.
                launch.incomplete = true;
                let error = crate::converge::error_chain(&source);
                report.stock_shortages.push(StockShortage { step, offering, error });
            } else {
                launch.failed = true;
                report.failures.push(ExecError::Api { step, source });
            }
        }
    }
}

enum StepOutcome {
    Update { step: String, result: Result<Vec<String>, ApiError> },
    Create { index: usize, step: String, result: Result<Vec<String>, ApiError> },
    Start { index: usize, step: String, outcome: BatchOutcome, ids: Vec<String> },
}

fn update_step(fleet: &FleetPlan, group: &GroupPlan, update: &Update) -> String {
    let what = match &update.change {
        AttributeChange::InstanceName { .. } => "rename",
        AttributeChange::SecurityGroups { .. } => "set security groups of",
    };
    format!("{what} {} instance(s) (fleet {}, group {})", update.instance_ids.len(), fleet.name, group.name)
}

fn modify_request(update: &Update) -> ModifyInstancesAttributeRequest {
    let mut request =
        ModifyInstancesAttributeRequest { instance_ids: update.instance_ids.clone(), ..Default::default() };
    match &update.change {
        AttributeChange::InstanceName { to, .. } => request.instance_name = Some(to.clone()),
        AttributeChange::SecurityGroups { to, .. } => request.security_groups = Some(to.clone()),
    }
    request
}

/// The request of a create with its password read from its source.
pub(crate) fn prepare(create: &Create, step: &str) -> Result<RunInstancesRequest, ExecError> {
    let mut request = create.request.clone();
    if let Some(source) = &create.password {
        let password = source.resolve().map_err(|error| ExecError::Secret {
            step: step.to_owned(),
            source_ref: source.to_string(),
            reason: error.to_string(),
        })?;
        request.login_settings.get_or_insert_with(Default::default).password =
            Some(password.expose().to_owned());
    }
    Ok(request)
}

/// Instance states as DescribeInstancesStatus reports them; absent IDs are not in the map.
async fn statuses(
    client: &CvmClient,
    region: &str,
    ids: &[String],
) -> Result<BTreeMap<String, InstanceState>, ApiError> {
    let found = client.describe_statuses(region, ids).await?;
    Ok(found.into_iter().map(|s| (s.instance_id.clone(), s.state())).collect())
}

/// The executor's one polling cadence, shared by every wait: from `poll_min`, doubling up to
/// `poll_max`, for at most `wait_timeout`, and over at once when the user interrupts.
struct Poll<'a> {
    options: &'a ExecOptions,
    interrupt: &'a Interrupt,
    started: Instant,
    delay: Duration,
}

impl<'a> Poll<'a> {
    fn new(options: &'a ExecOptions, interrupt: &'a Interrupt) -> Self {
        Poll { options, interrupt, started: Instant::now(), delay: options.poll_min }
    }

    fn interrupted(&self) -> bool {
        self.interrupt.is_set()
    }

    fn timed_out(&self) -> bool {
        self.started.elapsed() > self.options.wait_timeout
    }

    /// Whether waiting any longer is allowed.
    fn may_wait(&self) -> bool {
        !self.interrupted() && !self.timed_out()
    }

    fn waited_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// Sleeps until the next poll.
    async fn next(&mut self) {
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(self.options.poll_max);
    }
}

async fn wait_running(
    client: &CvmClient,
    launches: &mut [Launch],
    options: &ExecOptions,
    progress: &dyn Progress,
    interrupt: &Interrupt,
    report: &mut Report,
) {
    let mut poll = Poll::new(options, interrupt);
    let mut failed_polls = 0u32;
    loop {
        let pending: Vec<usize> = (0..launches.len()).filter(|i| !launches[*i].done).collect();
        if pending.is_empty() {
            return;
        }
        if poll.interrupted() {
            for i in pending {
                report.skipped.push(format!("wait for {} (interrupted)", launches[i].step));
                launches[i].done = true;
                launches[i].failed = true;
            }
            return;
        }
        if poll.timed_out() {
            for i in pending {
                report.failures.push(ExecError::Timeout {
                    step: launches[i].step.clone(),
                    waited_secs: poll.waited_secs(),
                });
                launches[i].done = true;
                launches[i].failed = true;
            }
            return;
        }
        poll.next().await;

        let mut by_region: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for &i in &pending {
            by_region.entry(launches[i].region.clone()).or_default().extend(launches[i].ids.iter().cloned());
        }
        let mut states: BTreeMap<String, InstanceState> = BTreeMap::new();
        let mut poll_error = None;
        for (region, ids) in &by_region {
            match statuses(client, region, ids).await {
                Ok(found) => states.extend(found),
                Err(error) => poll_error = Some(error),
            }
        }
        if let Some(error) = poll_error {
            // Said as it happens; retried at the next interval, up to a bounded run.
            failed_polls += 1;
            let text = crate::converge::error_chain(&error);
            progress.event(Event::PollFailed { error: text.clone(), in_a_row: failed_polls });
            if failed_polls >= MAX_FAILED_POLLS {
                for i in pending {
                    launches[i].done = true;
                    launches[i].failed = true;
                    report.failures.push(ExecError::Unobservable {
                        step: launches[i].step.clone(),
                        polls: failed_polls,
                        last_error: text.clone(),
                    });
                }
                return;
            }
            continue;
        }
        failed_polls = 0;
        let (mut ready, mut total) = (0usize, 0usize);
        for &i in &pending {
            let launch = &mut launches[i];
            total += launch.ids.len();
            let gone = |id: &String| states.get(id).is_none_or(InstanceState::is_leaving);
            let present = launch.ids.iter().filter(|id| !gone(id)).count();
            if present < launch.ids.len() && launch.token.is_none() {
                // Started or awaited instances that disappeared will not run.
                launch.done = true;
                launch.failed = true;
                report.failures.push(ExecError::Gone { step: launch.step.clone() });
                continue;
            }
            if present == 0 {
                // Absent twice in a row: the token replayed instances that no longer exist. It
                // is spent; the next plan uses the pool's next generation.
                launch.missing_polls += 1;
                if launch.missing_polls >= 2 {
                    launch.done = true;
                    launch.incomplete = true;
                    report.spent_tokens.extend(launch.token.clone());
                }
                continue;
            }
            launch.missing_polls = 0;
            let running =
                launch.ids.iter().filter(|id| states.get(*id).is_some_and(InstanceState::is_running)).count();
            let failed: Vec<&String> = launch
                .ids
                .iter()
                .filter(|id| states.get(*id).is_some_and(InstanceState::is_failed))
                .collect();
            ready += running;
            if running + failed.len() == present {
                launch.done = true;
                if present < launch.ids.len() {
                    // Some of the batch vanished (terminated out of band): their slots are
                    // the next plan's to fill; the rest stay.
                    launch.incomplete = true;
                    report.lost.extend(launch.ids.iter().filter(|id| gone(id)).cloned());
                }
                let mut awaited = Vec::new();
                let into = match launch.kind {
                    WaitKind::Created => &mut report.created,
                    WaitKind::Started => &mut report.started,
                    WaitKind::Awaited => &mut awaited,
                };
                into.extend(
                    launch
                        .ids
                        .iter()
                        .filter(|id| states.get(*id).is_some_and(InstanceState::is_running))
                        .cloned(),
                );
                if !failed.is_empty() {
                    launch.failed = true;
                    report.failures.push(ExecError::LaunchFailed {
                        step: launch.step.clone(),
                        ids: failed.iter().map(|s| (*s).clone()).collect(),
                    });
                }
            }
        }
        progress.event(Event::Waiting { ready, total });
    }
}

/// Error codes with which TerminateInstances and StartInstances refuse a batch because of the
/// state some of its instances are in (already going or gone, already started, or in a
/// transition).
fn refused_for_state(code: &str) -> bool {
    code == codes::INVALID_INSTANCE_ID_NOT_FOUND
        || InstanceState::KNOWN.iter().any(|s| s.unsupported_code() == code)
}

/// What became of one batch step (a TerminateInstances or StartInstances call).
#[derive(Debug)]
enum BatchOutcome {
    /// The cloud did it, or had already done it (another run got there first).
    Done,
    /// Refused for the state of some of its instances while others still need the step: the
    /// step is left to the next round, which plans from a fresh observation.
    Deferred(ApiError),
    /// Failed.
    Failed(ApiError),
}

/// Waits, when the plan says a batch holds instances in a transition, until none of them is in
/// one any more (gone counts as settled). The plan states the wait; nothing is re-chosen.
async fn wait_settled(
    client: &CvmClient,
    region: &str,
    ids: &[String],
    options: &ExecOptions,
    interrupt: &Interrupt,
) -> Result<(), ApiError> {
    let mut poll = Poll::new(options, interrupt);
    loop {
        let states = statuses(client, region, ids).await?;
        if !states.values().any(InstanceState::is_transitional) || !poll.may_wait() {
            return Ok(());
        }
        poll.next().await;
    }
}

/// Sends one batch step once. A refusal for state is looked at once: when every instance of
/// the batch already is where the step takes it (`arrived`), the step is done; otherwise it is
/// deferred, reported, and the next round plans afresh.
async fn batch_step<R: cvmfleet_wire::api::ApiRequest>(
    client: &CvmClient,
    region: &str,
    request: &R,
    ids: &[String],
    arrived: fn(Option<&InstanceState>) -> bool,
) -> BatchOutcome {
    let error = match client.call(region, request).await {
        Ok(_) => return BatchOutcome::Done,
        Err(error) if error.code().is_some_and(refused_for_state) => error,
        Err(error) => return BatchOutcome::Failed(error),
    };
    match statuses(client, region, ids).await {
        Ok(states) if ids.iter().all(|id| arrived(states.get(id))) => BatchOutcome::Done,
        Ok(_) => BatchOutcome::Deferred(error),
        Err(read) => BatchOutcome::Failed(read),
    }
}

/// Terminates one planned batch: after the transitions the plan names have ended, one
/// TerminateInstances call.
async fn terminate(
    client: &CvmClient,
    region: &str,
    batch: &[Termination],
    options: &ExecOptions,
    interrupt: &Interrupt,
) -> BatchOutcome {
    let ids: Vec<String> = batch.iter().map(|t| t.instance_id.clone()).collect();
    if batch.iter().any(|t| t.waits_for_transition)
        && let Err(error) = wait_settled(client, region, &ids, options, interrupt).await
    {
        return BatchOutcome::Failed(error);
    }
    let request = TerminateInstancesRequest { instance_ids: ids.clone(), ..Default::default() };
    // Absent, leaving, or failed to launch (never billed, cleaned up by the cloud): terminated.
    batch_step(client, region, &request, &ids, |state| state.is_none_or(|s| s.is_leaving() || s.is_failed()))
        .await
}

/// Starts one planned batch of stopped instances: after the `STOPPING` ones the plan names have
/// stopped, one StartInstances call.
async fn start_instances(
    client: &CvmClient,
    region: &str,
    start: &Start,
    options: &ExecOptions,
    interrupt: &Interrupt,
) -> BatchOutcome {
    if start.waits_for_transition
        && let Err(error) = wait_settled(client, region, &start.instance_ids, options, interrupt).await
    {
        return BatchOutcome::Failed(error);
    }
    let request = StartInstancesRequest { instance_ids: start.instance_ids.clone() };
    batch_step(client, region, &request, &start.instance_ids, |state| {
        state.is_some_and(|s| s.is_running() || *s == InstanceState::Starting)
    })
    .await
}

/// Waits until every listed instance has disappeared.
async fn wait_gone(
    client: &CvmClient,
    region: &str,
    ids: &[String],
    options: &ExecOptions,
    interrupt: &Interrupt,
    step: &str,
) -> Result<(), ExecError> {
    let mut poll = Poll::new(options, interrupt);
    loop {
        if poll.interrupted() {
            return Err(ExecError::Interrupted { step: step.to_owned() });
        }
        match statuses(client, region, ids).await {
            Ok(states) if states.is_empty() => return Ok(()),
            Ok(_) => {}
            Err(source) => return Err(ExecError::Api { step: step.to_owned(), source }),
        }
        if poll.timed_out() {
            return Err(ExecError::Timeout { step: step.to_owned(), waited_secs: poll.waited_secs() });
        }
        poll.next().await;
    }
}

#[cfg(test)]
mod interrupt_tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::Interrupt;

    #[test]
    fn a_child_is_set_by_its_parent_itself_or_its_condition_and_never_sets_the_parent() {
        let parent = Interrupt::new();
        let lost = Arc::new(AtomicBool::new(false));
        let seen = lost.clone();
        let child = parent.child(move || seen.load(Ordering::SeqCst));
        assert!(!child.is_set());
        lost.store(true, Ordering::SeqCst);
        assert!(child.is_set() && !parent.is_set(), "losing a term stops that term only");
        let other = parent.child(|| false);
        other.trigger();
        assert!(other.is_set() && !parent.is_set());
        let third = parent.child(|| false);
        parent.trigger();
        assert!(third.is_set(), "Ctrl-C stops every term");
    }
}
