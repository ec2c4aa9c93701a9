//! Convergence: plan, execute, observe and plan again, for as long as the new plan is only the
//! continuation of the first one (the next step of a rolling replacement, replacements of
//! launches that failed), and stop, saying why, at anything else. `apply` and `watch` both go
//! through here; the whole retry policy of a convergence is [`Rounds`].

use std::collections::BTreeSet;

use cvmfleet_client::CvmClient;
use cvmfleet_plan::{DesiredFleet, Plan, PlanOptions};

use crate::error::ExecError;
use crate::execute::{ExecOptions, Interrupt, Progress, Report, execute};
use crate::market::Unavailable;
use crate::prices::PriceCache;
use crate::round::Round;

/// How many extra rounds may replace instances that failed to launch (outside a rolling
/// replacement, which stops at the first failure instead). Two, so a flaky launch gets three
/// tries in all, while a launch that always fails costs little.
pub const LAUNCH_RETRIES: u32 = 2;

/// Most rounds one convergence makes. A rollout of a quarter of a group per step needs four;
/// one instance at a time needs one per instance. This bounds a plan that never converges.
pub const MAX_ROUNDS: u32 = 64;

/// Why a convergence stopped before the cloud matched the specs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stop {
    /// Interrupted (Ctrl-C, SIGTERM): calls in flight finished, nothing new started.
    Interrupted,
    /// Steps failed; the report lists them.
    Failed,
    /// New instances of a rolling replacement did not come up: the old instances were kept.
    RolloutStopped {
        /// `fleet/group` of each stopped rollout.
        groups: Vec<String>,
    },
    /// Instances kept failing to launch.
    LaunchRetriesExhausted,
    /// The next plan exceeds a safety limit; a human must allow it.
    SafetyLimits,
    /// The cloud changed in a way the first plan did not imply (someone else acted); a human,
    /// or the next watch cycle, should look at a fresh plan.
    Unexpected,
    /// A round changed nothing; planning again would change nothing either.
    NoProgress,
    /// [`MAX_ROUNDS`] rounds were made.
    RoundLimit,
    /// Observing the cloud for the next round failed.
    Observe(String),
    /// Everything else is done, but these groups have slots no zone or offering they accept
    /// can take now (all sold out or unavailable).
    Unplaced {
        /// `fleet/group` of each.
        groups: Vec<String>,
    },
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Interrupted => f.write_str("interrupted"),
            Stop::Failed => f.write_str("steps failed"),
            Stop::RolloutStopped { groups } => write!(
                f,
                "rolling replacement of {} stopped: new instances did not come up, the old ones were kept",
                groups.join(", ")
            ),
            Stop::LaunchRetriesExhausted => {
                write!(f, "instances kept failing to launch ({LAUNCH_RETRIES} retries)")
            }
            Stop::SafetyLimits => f.write_str("the next step exceeds a safety limit"),
            Stop::Unexpected => f.write_str("the cloud changed during the run; review a fresh plan"),
            Stop::NoProgress => f.write_str("a round changed nothing"),
            Stop::RoundLimit => write!(f, "stopped after {MAX_ROUNDS} rounds"),
            Stop::Observe(error) => write!(f, "observing for the next round failed: {error}"),
            Stop::Unplaced { groups } => write!(
                f,
                "no zone or offering that {} accept(s) has stock for the missing instances",
                groups.join(", ")
            ),
        }
    }
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing is left to do.
    Converged,
    /// Run (or plan) another round.
    Again,
    /// Stop here.
    Stop(Stop),
}

/// The retry policy of one convergence: decides after each execution whether to plan again,
/// and whether the new plan may run without a human.
#[derive(Debug, Clone, Default)]
pub struct Rounds {
    rounds: u32,
    launch_retries: u32,
    /// Instances whose steps the last round deferred: planning them again continues the run.
    deferred: BTreeSet<String>,
}

impl Rounds {
    /// A convergence that has made no round yet.
    #[must_use]
    pub fn new() -> Self {
        Rounds::default()
    }

    /// Rounds executed so far.
    #[must_use]
    pub fn count(&self) -> u32 {
        self.rounds
    }

    /// After executing a round: plan again, or stop.
    pub fn after_execute(&mut self, report: &Report, interrupt: &Interrupt) -> Verdict {
        self.rounds += 1;
        // Deferred steps, and the instances just adopted (their differences are planned once
        // their tags are written), are the run's own continuation.
        self.deferred = report.deferred_ids.iter().chain(&report.adopted).cloned().collect();
        if interrupt.is_set() {
            return Verdict::Stop(Stop::Interrupted);
        }
        if !report.rollouts_stopped.is_empty() {
            let groups = report.rollouts_stopped.iter().map(|(f, g)| format!("{f}/{g}")).collect();
            return Verdict::Stop(Stop::RolloutStopped { groups });
        }
        let launch_failures_only = !report.failures.is_empty()
            && report.failures.iter().all(|f| matches!(f, ExecError::LaunchFailed { .. }));
        if launch_failures_only {
            if self.launch_retries >= LAUNCH_RETRIES {
                return Verdict::Stop(Stop::LaunchRetriesExhausted);
            }
            self.launch_retries += 1;
        } else if !report.failures.is_empty() || !report.skipped.is_empty() {
            return Verdict::Stop(Stop::Failed);
        }
        let did = report.created.len()
            + report.started.len()
            + report.updated.len()
            + report.terminated.len()
            + report.adopted.len();
        // A spent token or lost instances are news a fresh plan acts on (the pool's next
        // generation), so they count as progress; the round limit still bounds them.
        if did == 0 && !launch_failures_only && !report.needs_replan() {
            return Verdict::Stop(Stop::NoProgress);
        }
        if self.rounds >= MAX_ROUNDS {
            return Verdict::Stop(Stop::RoundLimit);
        }
        Verdict::Again
    }

    /// Before executing a follow-up plan: whether it is the continuation of the first one.
    /// (The first plan is the caller's to show and confirm.)
    #[must_use]
    pub fn follow_up(&self, plan: &Plan) -> Verdict {
        if plan.is_empty() {
            let groups = unplaced_groups(plan);
            return if groups.is_empty() {
                Verdict::Converged
            } else {
                Verdict::Stop(Stop::Unplaced { groups })
            };
        }
        if !plan.refusals.is_empty() {
            return Verdict::Stop(Stop::SafetyLimits);
        }
        let new = |id: &String| !self.deferred.contains(id);
        let unexpected =
            plan.fleets.iter().flat_map(|f| &f.groups).any(|g| {
                g.updates.iter().flat_map(|u| &u.instance_ids).any(new)
                    || g.starts.iter().flat_map(|s| &s.instance_ids).any(new)
                    || g.terminations.iter().any(|t| t.reason.reduces_capacity() && new(&t.instance_id))
            }) || plan.fleets.iter().any(|f| f.prune && f.orphans.iter().any(|t| new(&t.instance_id)));
        if unexpected { Verdict::Stop(Stop::Unexpected) } else { Verdict::Again }
    }
}

/// `fleet/group` of every group of `plan` with unplaced slots.
#[must_use]
pub fn unplaced_groups(plan: &Plan) -> Vec<String> {
    plan.fleets
        .iter()
        .flat_map(|f| {
            f.groups.iter().filter(|g| !g.unplaced.is_empty()).map(move |g| format!("{}/{}", f.name, g.name))
        })
        .collect()
}

/// The outcome of a convergence.
#[derive(Debug)]
pub struct Converged {
    /// One report per round executed.
    pub reports: Vec<Report>,
    /// The last plan made (empty when converged).
    pub last_plan: Plan,
    /// Why it stopped early; `None` when the cloud matches the specs.
    pub stop: Option<Stop>,
}

impl Converged {
    /// Whether the cloud matched the specs at the end.
    #[must_use]
    pub fn is_converged(&self) -> bool {
        self.stop.is_none()
    }
}

/// Executes `first` (already shown and approved), then makes a new round ([`Round`]: observe,
/// stock, plan, price, through `prices`) and executes it, while [`Rounds`] allows. `progress`
/// hears every step; `on_round` hears each follow-up plan before it runs.
#[allow(clippy::too_many_arguments)]
pub async fn converge(
    client: &CvmClient,
    desired: &[DesiredFleet],
    options: PlanOptions,
    first: Plan,
    exec: &ExecOptions,
    progress: &dyn Progress,
    on_round: &(dyn Fn(u32, &Plan) + Send + Sync),
    interrupt: &Interrupt,
    memory: &Unavailable,
    prices: &PriceCache,
) -> Converged {
    let mut rounds = Rounds::new();
    let mut reports = Vec::new();
    let mut plan = first;
    let mut spent: BTreeSet<String> = BTreeSet::new();
    loop {
        let report = execute(client, &plan, exec, progress, interrupt).await;
        for shortage in &report.stock_shortages {
            memory.mark(shortage.offering.clone());
        }
        let failed_launches: BTreeSet<String> = report
            .failures
            .iter()
            .filter_map(|f| match f {
                ExecError::LaunchFailed { ids, .. } => Some(ids.iter().cloned()),
                _ => None,
            })
            .flatten()
            .collect();
        let verdict = rounds.after_execute(&report, interrupt);
        spent.extend(report.spent_tokens.iter().cloned());
        reports.push(report);
        if let Verdict::Stop(stop) = verdict {
            return Converged { reports, last_plan: plan, stop: Some(stop) };
        }
        let round = Round::new(options, prices).memory(memory).spent(&spent).launched(&failed_launches);
        plan = match round.plan(client, desired).await {
            Ok(plan) => plan,
            Err(error) => {
                let text = error_chain(&error);
                return Converged { reports, last_plan: plan, stop: Some(Stop::Observe(text)) };
            }
        };
        match rounds.follow_up(&plan) {
            Verdict::Converged => return Converged { reports, last_plan: plan, stop: None },
            Verdict::Stop(stop) => return Converged { reports, last_plan: plan, stop: Some(stop) },
            Verdict::Again => on_round(rounds.count() + 1, &plan),
        }
    }
}

/// An error with its sources, `: `-separated, e.g.
/// `create 2 in ap-guangzhou-3 (…) failed: RunInstances failed: InstancesQuotaLimitExceeded: … (RequestId …)`.
#[must_use]
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(created: usize, failures: Vec<ExecError>) -> Report {
        Report { created: (0..created).map(|i| format!("ins-{i}")).collect(), failures, ..Report::default() }
    }

    fn launch_failed() -> ExecError {
        ExecError::LaunchFailed { step: "create 1".into(), ids: vec!["ins-x".into()] }
    }

    #[test]
    fn launch_failures_are_retried_twice_then_given_up() {
        let interrupt = Interrupt::new();
        let mut rounds = Rounds::new();
        assert_eq!(rounds.after_execute(&report(1, vec![launch_failed()]), &interrupt), Verdict::Again);
        assert_eq!(rounds.after_execute(&report(0, vec![launch_failed()]), &interrupt), Verdict::Again);
        assert_eq!(
            rounds.after_execute(&report(0, vec![launch_failed()]), &interrupt),
            Verdict::Stop(Stop::LaunchRetriesExhausted)
        );
    }

    #[test]
    fn a_stopped_rollout_stops_and_says_which() {
        let mut r = report(0, vec![launch_failed()]);
        r.rollouts_stopped.push(("web".into(), "frontend".into()));
        let verdict = Rounds::new().after_execute(&r, &Interrupt::new());
        let Verdict::Stop(stop) = verdict else { panic!("{verdict:?}") };
        assert_eq!(
            stop.to_string(),
            "rolling replacement of web/frontend stopped: new instances did not come up, the old ones were kept"
        );
    }

    #[test]
    fn other_failures_interrupts_and_idle_rounds_stop() {
        let interrupt = Interrupt::new();
        let failed = report(0, vec![ExecError::Interrupted { step: "x".into() }]);
        assert_eq!(Rounds::new().after_execute(&failed, &interrupt), Verdict::Stop(Stop::Failed));
        assert_eq!(
            Rounds::new().after_execute(&report(0, vec![]), &interrupt),
            Verdict::Stop(Stop::NoProgress)
        );
        interrupt.trigger();
        assert_eq!(
            Rounds::new().after_execute(&report(3, vec![]), &interrupt),
            Verdict::Stop(Stop::Interrupted)
        );
    }

    #[test]
    fn rounds_are_bounded() {
        let interrupt = Interrupt::new();
        let mut rounds = Rounds::new();
        for _ in 1..MAX_ROUNDS {
            assert_eq!(rounds.after_execute(&report(1, vec![]), &interrupt), Verdict::Again);
        }
        assert_eq!(rounds.after_execute(&report(1, vec![]), &interrupt), Verdict::Stop(Stop::RoundLimit));
    }
}
