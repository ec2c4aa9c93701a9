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

mod report;
mod wait;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use cvmfleet_client::{CvmClient, Error as ApiError};
use cvmfleet_plan::plan::{AttributeChange, Create, FleetPlan, GroupPlan, Plan, Termination, Update};
use cvmfleet_wire::api::{ModifyInstancesAttributeRequest, RunInstancesRequest};
use cvmfleet_wire::{MAX_BATCH, codes};

pub use report::{Event, ExecOptions, Interrupt, MAX_FAILED_POLLS, Progress, Report, Silent, StockShortage};
use wait::{BatchOutcome, start_instances, terminate, wait_gone, wait_running};

use crate::error::ExecError;

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
    let run = Run { client, options, progress, interrupt };

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

    // 1. Adoptions, updates, starts and immediate creates.
    adopt(client, plan, progress, interrupt, &mut report).await;
    let (mut launches, later) = run.first_steps(plan, &mut report).await;

    // 2. Wait for the new instances to run.
    wait_running(client, &mut launches, options, progress, interrupt, &mut report).await;

    // 3. Terminations, per region in batches of 100.
    run.terminations(plan, &launches, &mut report).await;

    // 4. Creates that waited for private IPs to be freed.
    run.creates_after_gone(later, &mut report).await;
    report
}

/// A create that waits for the instances it replaces to be gone (their private IPs).
struct Later {
    step: String,
    region: String,
    fleet: String,
    group: String,
    create: Create,
}

/// What every step of one execution shares.
#[derive(Clone, Copy)]
struct Run<'a> {
    client: &'a CvmClient,
    options: &'a ExecOptions,
    progress: &'a dyn Progress,
    interrupt: &'a Interrupt,
}

impl Run<'_> {
    /// Step 1: in-place updates, starts and the creates that wait for nothing, concurrently
    /// (at most `concurrency` calls at once). Returns what to wait for, and the creates that
    /// wait for instances to be gone.
    async fn first_steps(&self, plan: &Plan, report: &mut Report) -> (Vec<Launch>, Vec<Later>) {
        let (client, options, progress, interrupt) =
            (self.client, self.options, self.progress, self.interrupt);
        let semaphore = Arc::new(Semaphore::new(options.concurrency.max(1)));
        let mut launches: Vec<Launch> = Vec::new();
        let mut later: Vec<Later> = Vec::new();
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
                        let result =
                            client.call(&region, &request).await.map(|_| update.instance_ids.clone());
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
                        later.push(Later {
                            step,
                            region: fleet.region.clone(),
                            fleet: fleet.name.clone(),
                            group: group.name.clone(),
                            create: create.clone(),
                        });
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
                                    cvmfleet_wire::vocab::InstanceChargeType::PostpaidByHour
                                        .as_str()
                                        .to_owned()
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
                                let result =
                                    client.call(&region, &request).await.map(|a| a.data.instance_id_set);
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
                    created_or_refused(&mut launches[index], step, result, report);
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
        (launches, later)
    }

    /// Step 3: the terminations, per region in batches of 100. Instances a group replaces go
    /// only when everything it created, started or awaits runs: a rolling replacement whose new
    /// instances did not come up stops, and one whose launches were incomplete is re-planned.
    async fn terminations(&self, plan: &Plan, launches: &[Launch], report: &mut Report) {
        let (client, options, progress, interrupt) =
            (self.client, self.options, self.progress, self.interrupt);
        let mut failed_groups: BTreeSet<(String, String)> = BTreeSet::new();
        let mut replan_groups: BTreeSet<(String, String)> = BTreeSet::new();
        for launch in launches {
            if launch.failed || !launch.done {
                failed_groups.insert((launch.fleet.clone(), launch.group.clone()));
            } else if launch.incomplete {
                replan_groups.insert((launch.fleet.clone(), launch.group.clone()));
            }
        }

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
    }

    /// Step 4: the creates that waited for the instances they replace to be gone, once those
    /// were terminated and are gone.
    async fn creates_after_gone(&self, later: Vec<Later>, report: &mut Report) {
        let (client, options, progress, interrupt) =
            (self.client, self.options, self.progress, self.interrupt);
        if later.is_empty() {
            return;
        }
        let mut waiting: Vec<Launch> = Vec::new();
        let terminated: BTreeSet<String> = report.terminated.iter().cloned().collect();
        let mut not_terminated = Vec::new();
        for Later { step, region, fleet, group, create } in later {
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
            created_or_refused(&mut launch, step, result, report);
            waiting.push(launch);
        }
        report.skipped.extend(not_terminated);
        wait_running(client, &mut waiting, options, progress, interrupt, report).await;
    }
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
