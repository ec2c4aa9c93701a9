//! `cvmfleet apply`: plan, confirm, converge; or execute a saved plan exactly.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use cvmfleet_plan::render::{RenderOptions, render_text, summary_line};
use cvmfleet_plan::{DesiredFleet, Plan};
use cvmfleet_reconcile::{
    Event, ExecOptions, Interrupt, MAX_FAILED_POLLS, Progress, Report, Stop, converge, execute,
};

use super::plan::{PlanFlags, colour_stdout, observe_and_plan};
use super::target::{Target, TargetArgs, connect};
use crate::commands::exit::Exit;

/// Arguments of `cvmfleet apply`.
#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    /// Spec files or directories (default `specs/`), or one plan file saved by
    /// `cvmfleet plan --out`.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Apply without asking (for pipelines). Without it, apply asks on a terminal and refuses
    /// when there is none.
    #[arg(long)]
    auto_approve: bool,
    #[command(flatten)]
    flags: PlanFlags,
    #[command(flatten)]
    target: TargetArgs,
}

/// Reads a saved plan, if `paths` is one plan file.
fn saved_plan(paths: &[PathBuf]) -> anyhow::Result<Option<Plan>> {
    let [path] = paths else { return Ok(None) };
    // `metadata` follows links and opens nothing: a FIFO named `*.json` is refused by the reader
    // below, never waited on.
    if path.extension().is_none_or(|e| e != "json") || std::fs::metadata(path).is_err() {
        return Ok(None);
    }
    let text = cvmfleet_spec::read_flag_file("saved plan", path, MAX_SAVED_PLAN_BYTES)?;
    let plan = Plan::read_saved(&text, super::plan::plan_key().as_deref())
        .with_context(|| format!("{} cannot be applied; nothing was applied", path.display()))?;
    Ok(Some(plan))
}

/// Largest saved plan read: a plan of 10,000 creates is about 30 MB of JSON.
const MAX_SAVED_PLAN_BYTES: u64 = 64 * 1024 * 1024;

/// The first 12 characters of a fingerprint, for messages. Characters, not bytes: a saved plan
/// is an artifact anyone may have edited, and slicing `"aéé…"` at byte 12 panics (issue 10).
fn short(fingerprint: &str) -> String {
    fingerprint.chars().take(12).collect()
}

/// What an apply works from.
enum Work {
    /// A plan saved by `plan --out`, executed exactly.
    Saved(Box<Plan>),
    /// Specs, planned now and converged.
    Specs(Vec<DesiredFleet>),
}

pub(crate) fn run(args: ApplyArgs) -> anyhow::Result<Exit> {
    let work = match saved_plan(&args.paths)? {
        Some(plan) => Work::Saved(Box::new(plan)),
        None => match super::specs::load(&args.paths, args.target.project())? {
            Some(desired) => Work::Specs(desired),
            None => return Ok(Exit::Failure),
        },
    };
    super::runtime()?.block_on(async {
        let target = connect(&args.target).await?;
        let interrupt = Interrupt::new();
        watch_ctrl_c(interrupt.clone());
        let result = match &work {
            Work::Saved(plan) => apply_saved(&target, plan, &args, &interrupt).await,
            Work::Specs(desired) => apply_specs(&target, desired, &args, &interrupt).await,
        };
        let closed = target.close().await;
        let code = result?;
        closed?;
        Ok(code)
    })
}

/// First Ctrl-C: finish the calls in flight and stop. Second: exit at once.
fn watch_ctrl_c(interrupt: Interrupt) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            anstream::eprintln!(
                "\nInterrupted: finishing the calls in flight; press Ctrl-C again to quit at once."
            );
            interrupt.trigger();
            if tokio::signal::ctrl_c().await.is_ok() {
                Exit::Interrupted.now();
            }
        }
    });
}

fn show(plan: &Plan, target: &Target) {
    anstream::print!("{}", render_text(plan, &target.description, RenderOptions { colour: colour_stdout() }));
}

fn confirm(auto_approve: bool) -> anyhow::Result<bool> {
    if auto_approve {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "refusing to apply without confirmation: standard input is not a terminal; pass --auto-approve"
        );
    }
    print!("\nApply this plan? Only 'yes' is accepted: ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

async fn apply_saved(
    target: &Target,
    plan: &Plan,
    args: &ApplyArgs,
    interrupt: &Interrupt,
) -> anyhow::Result<Exit> {
    // The plan's fleets as they were planned: those of the specs, and the regions its orphan
    // fleets were found in (observed again, so the fingerprint covers the same instances).
    let fleets: Vec<DesiredFleet> = plan
        .fleets
        .iter()
        .filter(|f| !f.orphan_fleet)
        .map(|f| DesiredFleet {
            project: f.project.clone(),
            name: f.name.clone(),
            region: f.region.clone(),
            prune: f.prune,
            allow_deletion: false,
            groups: Vec::new(),
            orphans: Default::default(),
            max_monthly_cost_increase: None,
        })
        .collect();
    let orphan_regions: Vec<String> =
        plan.fleets.iter().filter(|f| f.orphan_fleet).map(|f| f.region.clone()).collect();
    let project = plan.fleets.first().map_or(cvmfleet_plan::DEFAULT_PROJECT, |f| f.project.as_str());
    let observed = cvmfleet_reconcile::observe_in(&target.client, project, &fleets, &orphan_regions).await?;
    let now = cvmfleet_plan::fingerprint(&fleets, &observed);
    if now != plan.fingerprint {
        bail!(
            "the saved plan is stale: the cloud changed since it was made (fingerprint {} now, {} in the plan); \
             run `cvmfleet plan --out` again",
            short(&now),
            short(&plan.fingerprint)
        );
    }
    if !plan.refusals.is_empty() {
        show(plan, target);
        bail!(
            "the saved plan exceeds safety limits (see `refused:` above); make it again with the override \
             each refusal names if intended"
        );
    }
    show(plan, target);
    if plan.is_empty() {
        return Ok(Exit::Success);
    }
    if !confirm(args.auto_approve)? {
        anstream::eprintln!("Apply cancelled.");
        return Ok(Exit::Failure);
    }
    let started = Instant::now();
    let report = run_execute(target, plan, interrupt).await;
    Ok(finish(target, &[report], started))
}

async fn apply_specs(
    target: &Target,
    desired: &[DesiredFleet],
    args: &ApplyArgs,
    interrupt: &Interrupt,
) -> anyhow::Result<Exit> {
    let options = args.flags.options();
    let unavailable = args.flags.unavailable();
    // One price cache for the command: its rounds quote each configuration once.
    let prices = cvmfleet_reconcile::PriceCache::new();
    let plan = observe_and_plan(target, desired, options, &unavailable, &prices).await?;
    show(&plan, target);
    if !plan.refusals.is_empty() {
        bail!("the plan exceeds safety limits (see `refused:` above); nothing was applied");
    }
    if plan.is_empty() {
        return Ok(unplaced_exit(&plan));
    }
    if !confirm(args.auto_approve)? {
        anstream::eprintln!("Apply cancelled.");
        return Ok(Exit::Failure);
    }
    // The time reported is the execution's, not the time spent at the confirmation prompt.
    let started = Instant::now();
    // Later rounds run without a new confirmation only when they continue this plan: the next
    // step of a rolling replacement, or replacing instances that failed to launch.
    let progress = Reporter::new();
    let on_round = |round: u32, plan: &Plan| {
        progress.line(format!("Round {round}: {}", summary_line(plan)));
    };
    let outcome = converge(
        &target.client,
        desired,
        options,
        plan,
        &ExecOptions::default(),
        &progress,
        &on_round,
        interrupt,
        &unavailable,
        &prices,
    )
    .await;
    progress.finish();
    let mut code = finish(target, &outcome.reports, started);
    if let Some(stop) = &outcome.stop {
        anstream::eprintln!("Stopped: {stop}.");
        if matches!(stop, Stop::Unexpected | Stop::SafetyLimits) {
            anstream::eprintln!("Run `cvmfleet plan` to review the rest.");
        }
        code = Exit::Failure;
    }
    Ok(code)
}

/// Success, unless groups have slots nothing can take: then they are named and the exit is a
/// failure (the rest of the plan was carried out).
fn unplaced_exit(plan: &Plan) -> Exit {
    let groups = cvmfleet_reconcile::unplaced_groups(plan);
    if groups.is_empty() {
        return Exit::Success;
    }
    anstream::eprintln!("Stopped: {}.", Stop::Unplaced { groups });
    Exit::Failure
}

async fn run_execute(target: &Target, plan: &Plan, interrupt: &Interrupt) -> Report {
    let progress = Reporter::new();
    let report = execute(&target.client, plan, &ExecOptions::default(), &progress, interrupt).await;
    progress.finish();
    report
}

fn finish(target: &Target, reports: &[Report], started: Instant) -> Exit {
    let created: usize = reports.iter().map(|r| r.created.len()).sum();
    let started_n: usize = reports.iter().map(|r| r.started.len()).sum();
    let updated: usize = reports.iter().map(|r| r.updated.len()).sum();
    let terminated: usize = reports.iter().map(|r| r.terminated.len()).sum();
    let calls = target.client.stats();
    let calls: Vec<String> = calls.attempts.iter().map(|(action, n)| format!("{action} {n}")).collect();
    // Only the last round decides: earlier rounds' launch failures were replaced by later ones.
    let last = reports.last();
    let complete = last.is_none_or(Report::is_complete);
    let verb = if complete { "Apply complete" } else { "Apply INCOMPLETE" };
    anstream::println!(
        "\n{verb}: {created} created, {updated} updated, {}{terminated} terminated in {:.1}s. API calls: {}.",
        if started_n > 0 { format!("{started_n} started, ") } else { String::new() },
        started.elapsed().as_secs_f64(),
        if calls.is_empty() { "none".to_owned() } else { calls.join(", ") }
    );
    if let Some(last) = last {
        for failure in &last.failures {
            anstream::eprintln!("failed: {}", cvmfleet_reconcile::error_chain(failure));
        }
        for skipped in &last.skipped {
            anstream::eprintln!("not done: {skipped}");
        }
        for deferred in &last.deferred {
            anstream::eprintln!("not done: {deferred}");
        }
        for shortage in &last.stock_shortages {
            anstream::eprintln!(
                "not done: {}: {} has no stock ({}); a new plan places it elsewhere",
                shortage.step,
                shortage.offering,
                shortage.error
            );
        }
        if !last.lost.is_empty() {
            anstream::eprintln!(
                "lost before they ran (terminated out of band): {}; a new plan replaces them",
                last.lost.join(", ")
            );
        }
        if !complete {
            anstream::eprintln!("Nothing is lost: run `cvmfleet apply` again to pick up where this stopped.");
        }
    }
    if complete { Exit::Success } else { Exit::Failure }
}

/// Draws progress: a spinner on a terminal, plain lines otherwise.
struct Reporter {
    bar: Option<ProgressBar>,
    last_wait: Mutex<Option<Instant>>,
}

impl Reporter {
    fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Reporter { bar, last_wait: Mutex::new(None) }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => anstream::eprintln!("{text}"),
        }
    }
}

impl Progress for Reporter {
    fn event(&self, event: Event) {
        match event {
            Event::Started(step) => self.line(format!("  started  {step}")),
            Event::Finished(step) => self.line(format!("  done     {step}")),
            Event::PollFailed { error, in_a_row } => {
                self.line(format!(
                    "  polling failed ({in_a_row} in a row, giving up at {MAX_FAILED_POLLS}): {error}"
                ));
            }
            Event::Waiting { ready, total } => {
                let text = format!("waiting for instances to run: {ready}/{total}");
                match &self.bar {
                    Some(bar) => bar.set_message(text),
                    None => {
                        // Plain output: at most one waiting line every 10 s, like Terraform's
                        // "Still creating…".
                        let mut last =
                            self.last_wait.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                            *last = Some(Instant::now());
                            anstream::eprintln!("  {text}");
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 10, item 13: `"fingerprint": "aéééé…"` in a saved plan made `apply` panic.
    #[test]
    fn issue_10_fingerprints_are_cut_by_characters() {
        assert_eq!(short(&format!("a{}", "é".repeat(20))), format!("a{}", "é".repeat(11)));
        assert_eq!(short("abc"), "abc");
        assert_eq!(short("0123456789abcdef"), "0123456789ab");
    }

    #[test]
    fn a_spec_path_is_not_a_saved_plan() {
        assert!(saved_plan(&[PathBuf::from("specs")]).unwrap().is_none());
        assert!(saved_plan(&[PathBuf::from("a.json"), PathBuf::from("b.json")]).unwrap().is_none());
    }
}
