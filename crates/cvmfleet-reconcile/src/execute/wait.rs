//! Waiting on the cloud: the one polling cadence, waiting until instances run or are gone,
//! and the batched start and terminate calls that wait for their instances to settle.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use cvmfleet_client::{CvmClient, Error as ApiError};
use cvmfleet_plan::plan::{Start, Termination};
use cvmfleet_wire::api::{StartInstancesRequest, TerminateInstancesRequest};
use cvmfleet_wire::codes;
use cvmfleet_wire::vocab::InstanceState;

use super::{Launch, WaitKind};
use crate::error::ExecError;
use crate::execute::report::{Event, ExecOptions, Interrupt, MAX_FAILED_POLLS, Progress, Report};

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

pub(super) async fn wait_running(
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
pub(super) enum BatchOutcome {
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
pub(super) async fn terminate(
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
pub(super) async fn start_instances(
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
pub(super) async fn wait_gone(
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
