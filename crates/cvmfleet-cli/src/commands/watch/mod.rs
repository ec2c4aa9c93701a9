//! `cvmfleet watch`: reconcile continuously. Every interval (± 10% jitter) a cycle re-reads the
//! specs from disk, observes every fleet, reports its drift and, with `--auto-apply`, converges
//! it within the safety limits. Fleets that fail back off exponentially. SIGTERM/SIGINT finish
//! the cycle in flight and exit (a second one stops it between calls); SIGHUP starts a cycle
//! now. Logs are structured (`--log-format json`); `--metrics-addr` serves Prometheus metrics and
//! `/healthz`.
//!
//! With `--leader-election` the loop runs in terms: campaign for the lease (standing by, serving
//! metrics and health, sending nothing to the cloud), then run cycles while it is held. Each term
//! gets a child of the Ctrl-C [`Interrupt`] and a gated client, both closed by the clock the
//! moment the lease's deadline passes, so a replica that loses the lease stops between API calls
//! and sends nothing more. SIGTERM finishes the cycle and resigns the lease.

pub(crate) mod election;
mod metrics;
#[cfg(test)]
mod service_files;
mod specs;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Args, ValueEnum};
use tokio::sync::Notify;

use cvmfleet_lease::{Attempt, Elector, EtcdStore, Leadership, LeaseStore as _};
use cvmfleet_plan::drift::counts;
use cvmfleet_reconcile::{
    ClientCloud, CycleReport, ExecOptions, FleetOutcome, Interrupt, WatchOptions, Watcher, error_chain,
};

use super::plan::PlanFlags;
use super::target::{TargetArgs, connect};
use crate::commands::exit::Exit;
use metrics::Metrics;
use specs::SpecCache;

/// Log output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Shortest interval accepted: 100 ms, so tests can run many cycles quickly while a typo like
/// `--interval 0` cannot spin against the API.
const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Longest interval accepted: one day. A watch that looks less often than daily is a cron job
/// (`cvmfleet drift`), and the bound keeps every later sum and product of intervals (backoff up
/// to 16 intervals, health after 3, deadlines on the clock) far from overflowing (issue 10).
const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Parses `300ms`, `30s`, `5m`, `1h` (a bare number is seconds), between [`MIN_INTERVAL`] and
/// [`MAX_INTERVAL`].
pub(crate) fn parse_interval(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 =
        number.parse().map_err(|_| format!("`{text}` is not a duration like 300ms, 30s, 5m or 1h"))?;
    let duration = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(format!("unknown unit `{unit}` in `{text}`; use ms, s, m or h")),
    };
    if duration < MIN_INTERVAL {
        return Err(format!("the interval must be at least {}ms", MIN_INTERVAL.as_millis()));
    }
    if duration > MAX_INTERVAL {
        return Err(format!("the interval must be at most {}h", MAX_INTERVAL.as_secs() / 3600));
    }
    Ok(duration)
}

/// Arguments of `cvmfleet watch`.
#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    /// Spec files or directories (read recursively for *.yaml / *.yml); default `specs/`.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Time between cycles, e.g. 300ms, 30s, 5m, 1h (± 10% jitter).
    #[arg(long, default_value = "5m", value_parser = parse_interval)]
    interval: Duration,
    /// Correct drift (carry out the plans) instead of only reporting it.
    #[arg(long)]
    auto_apply: bool,
    /// Most instances one cycle may terminate in a group without replacing them (scale-down,
    /// removed zones); above it the fleet is held and reported until a human runs `apply`.
    #[arg(long, value_name = "N", default_value_t = 10)]
    max_terminations: u32,
    /// Serve Prometheus metrics (`/metrics`) and a health check (`/healthz`) here, e.g.
    /// 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// Log format (logs go to stderr; level from CVMFLEET_LOG, default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
    #[command(flatten)]
    election: election::ElectionArgs,
    #[command(flatten)]
    flags: PlanFlags,
    #[command(flatten)]
    target: TargetArgs,
}

/// Signals, as the loop sees them.
#[derive(Default)]
struct Signals {
    stop: AtomicBool,
    wake: Notify,
}

/// SIGTERM/SIGINT: finish the cycle in flight, then exit; again: stop between calls; a third
/// time: exit at once. SIGHUP: a cycle now.
#[cfg(unix)]
fn listen(signals: Arc<Signals>, interrupt: Interrupt) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        let mut count = 0;
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: starting a cycle now");
                    signals.wake.notify_one();
                    continue;
                }
            }
            count += 1;
            match count {
                1 => {
                    tracing::info!(
                        "stopping: finishing the cycle in flight (signal again to stop it sooner)"
                    );
                    signals.stop.store(true, Ordering::SeqCst);
                    signals.wake.notify_one();
                }
                2 => {
                    tracing::warn!("stopping the cycle in flight after the calls under way");
                    interrupt.trigger();
                }
                _ => Exit::Interrupted.now(),
            }
        }
    });
    Ok(())
}

#[cfg(not(unix))]
fn listen(signals: Arc<Signals>, interrupt: Interrupt) -> anyhow::Result<()> {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            signals.stop.store(true, Ordering::SeqCst);
            signals.wake.notify_one();
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupt.trigger();
            }
        }
    });
    Ok(())
}

pub(crate) fn run(args: WatchArgs) -> anyhow::Result<Exit> {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(super::specs::DEFAULT_SPEC_DIR)]
    } else {
        args.paths.clone()
    };
    let elector = election::elector(&args.election, &paths, args.target.project())?;
    super::runtime()?.block_on(async {
        let signals = Arc::new(Signals::default());
        let interrupt = Interrupt::new();
        listen(signals.clone(), interrupt.clone())?;
        let metrics = Arc::new(Metrics::new(args.interval));
        if let Some(addr) = args.metrics_addr {
            let bound = metrics::serve(addr, metrics.clone()).await?;
            tracing::info!(addr = %bound, "serving /metrics and /healthz");
        }
        // etcd unreachable at start is an error unless asked to wait (issue 15).
        let first = match &elector {
            None => None,
            Some(elector) => {
                metrics.set_leader(false, None);
                tracing::info!(
                    store = %elector.store().describe(),
                    identity = %elector.options().identity,
                    ttl_ms = args.election.lease_ttl.as_millis() as u64,
                    "campaigning for the lease"
                );
                match elector.try_lead().await {
                    Ok(attempt) => Some(attempt),
                    Err(error) if !args.election.wait_for_lease => {
                        anyhow::bail!("{} (pass --wait-for-lease to keep trying)", error_chain(&error))
                    }
                    Err(error) => {
                        tracing::warn!(error = %error_chain(&error), "the lease store is unreachable; waiting for it (--wait-for-lease)");
                        None
                    }
                }
            }
        };
        let target = connect(&args.target).await?;
        tracing::info!(target = %target.description, interval_ms = args.interval.as_millis() as u64, auto_apply = args.auto_apply, "watching");
        let terms = Terms { elector: elector.as_ref(), first };
        let result = watch(&target.client, paths, &args, &metrics, &signals, &interrupt, terms).await;
        let closed = target.close().await;
        result?;
        closed?;
        tracing::info!("stopped");
        Ok(Exit::Success)
    })
}

/// Leader election as the loop sees it: the elector, and what its first attempt found.
struct Terms<'a> {
    elector: Option<&'a Elector<EtcdStore>>,
    first: Option<Attempt>,
}

/// How a term of leadership ended.
enum Ended {
    /// SIGTERM/SIGINT: exit.
    Stopped,
    /// The lease was lost: stand by and campaign again.
    Lost(String),
}

impl Terms<'_> {
    /// Waits for the lease (`Some`), or for a stop signal (`None`). Without election, every
    /// term is the leader's and has no lease.
    async fn lead(&mut self, signals: &Signals) -> Option<Option<Leadership>> {
        let Some(elector) = self.elector else { return Some(None) };
        match self.first.take() {
            Some(Attempt::Leader(leadership)) => return Some(Some(leadership)),
            Some(Attempt::Standby { holder }) => tracing::info!(leader = %holder, "standing by"),
            None => {}
        }
        let campaign = elector.campaign();
        tokio::pin!(campaign);
        loop {
            tokio::select! {
                leadership = &mut campaign => return Some(Some(leadership)),
                () = signals.wake.notified() => {
                    if signals.stop.load(Ordering::SeqCst) {
                        return None;
                    }
                }
            }
        }
    }
}

/// Resolves when the lease is lost; never without one.
async fn lost(leadership: Option<&Leadership>) -> String {
    match leadership {
        Some(leadership) => leadership.lost().await,
        None => std::future::pending().await,
    }
}

async fn watch(
    client: &cvmfleet_client::CvmClient,
    paths: Vec<PathBuf>,
    args: &WatchArgs,
    metrics: &Metrics,
    signals: &Signals,
    interrupt: &Interrupt,
    mut terms: Terms<'_>,
) -> anyhow::Result<()> {
    let mut options = args.flags.options();
    // One memory of unavailable offerings for the whole watch: across cycles and terms.
    let unavailable = Arc::new(args.flags.unavailable());
    options.max_terminations_per_group = Some(args.max_terminations);
    let mut watcher =
        Watcher::new(WatchOptions { interval: args.interval, auto_apply: args.auto_apply, plan: options });
    let mut specs = SpecCache::new(paths).with_project(args.target.project());
    let mut rng = fastrand::Rng::new();
    let mut cycle = 0u64;
    loop {
        let Some(leadership) = terms.lead(signals).await else { return Ok(()) };
        // Each term acts through a flag and a client that close when the lease's deadline
        // passes, read from the clock at every check: nothing is sent after it.
        let (term, term_client) = match &leadership {
            Some(held) => {
                let (a, b) = (held.standing(), held.standing());
                metrics.set_leader(true, Some("acquired"));
                tracing::info!(
                    ttl_ms = held.ttl().as_millis() as u64,
                    "leading: this replica acts on the cloud"
                );
                (interrupt.child(move || !a.holds()), client.gated(move || b.holds()))
            }
            None => {
                metrics.set_leader(true, None);
                (interrupt.clone(), client.clone())
            }
        };
        let cloud = ClientCloud {
            client: term_client,
            exec: ExecOptions::default(),
            unavailable: unavailable.clone(),
        };
        let ended = loop {
            if leadership.as_ref().is_some_and(|held| !held.holds()) {
                break Ended::Lost(lost(leadership.as_ref()).await);
            }
            cycle += 1;
            let loaded = specs.load();
            for problem in &loaded.problems {
                tracing::error!(
                    cycle,
                    file = %problem.file,
                    kept_last_good = problem.kept_last_good,
                    diagnostics = %problem.message,
                    "spec does not validate; {}",
                    if problem.kept_last_good { "its last good version stays in use" } else { "it is left out" }
                );
            }
            client.take_stats();
            let report = watcher.cycle(&cloud, &loaded.fleets, &term).await;
            let calls = client.take_stats();
            metrics.record(&report, &calls, loaded.problems.len());
            metrics.set_unavailable(&unavailable.marked());
            log_cycle(cycle, &report, &calls);
            if signals.stop.load(Ordering::SeqCst) {
                break Ended::Stopped;
            }
            let delay = watcher.next_delay(rng.f64());
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = signals.wake.notified() => {}
                why = lost(leadership.as_ref()) => break Ended::Lost(why),
            }
            if signals.stop.load(Ordering::SeqCst) {
                break Ended::Stopped;
            }
        };
        match ended {
            Ended::Stopped => {
                if let Some(held) = leadership {
                    match held.resign().await {
                        Ok(()) => tracing::info!("resigned the lease: a standby takes over now"),
                        Err(error) => {
                            tracing::warn!(error = %error_chain(&error), "could not resign the lease; it expires within its TTL");
                        }
                    }
                    metrics.set_leader(false, Some("resigned"));
                }
                return Ok(());
            }
            Ended::Lost(why) => {
                metrics.set_leader(false, Some("lost"));
                tracing::warn!(reason = %why, "lost the lease: stepped down; nothing is sent to the cloud until it is won again");
            }
        }
    }
}

/// Logs a cycle: one event per fleet that has something to say, then a summary.
fn log_cycle(cycle: u64, report: &CycleReport, calls: &cvmfleet_client::CallStats) {
    for ((fleet, kind), count) in counts(&report.drift) {
        let items: Vec<&cvmfleet_plan::Drift> =
            report.drift.iter().filter(|d| d.fleet == fleet && d.kind == kind).collect();
        let sample: Vec<String> =
            items.iter().take(5).map(|d| d.instance_id.clone().unwrap_or_else(|| d.zone.clone())).collect();
        let reported = items.iter().filter(|d| d.handling == cvmfleet_plan::Handling::Reported).count();
        tracing::warn!(cycle, %fleet, kind = kind.as_str(), count, reported, sample = %sample.join(","), "drift");
    }
    for fleet in &report.fleets {
        let name = fleet.fleet.as_str();
        match &fleet.outcome {
            FleetOutcome::BackingOff => {
                let b = fleet.backoff.as_ref();
                tracing::info!(
                    cycle,
                    fleet = name,
                    failures = b.map_or(0, |b| b.failures),
                    retry_in_ms = b.map_or(0, |b| b.retry_in.as_millis() as u64),
                    "backing off"
                );
            }
            FleetOutcome::ObserveFailed(error) => {
                let b = fleet.backoff.as_ref();
                tracing::error!(
                    cycle,
                    fleet = name,
                    %error,
                    failures = b.map_or(0, |b| b.failures),
                    retry_in_ms = b.map_or(0, |b| b.retry_in.as_millis() as u64),
                    "observing failed"
                );
            }
            FleetOutcome::Held(why) => {
                tracing::warn!(cycle, fleet = name, reason = %why.join("; "), "held: waiting for a human (run `cvmfleet apply`)");
            }
            FleetOutcome::Unplaced(slots) => {
                tracing::warn!(
                    cycle,
                    fleet = name,
                    slots = %slots.join("; "),
                    "no stock: nothing the groups accept can take these instances now; tried again next cycle"
                );
            }
            FleetOutcome::Pending => {
                tracing::info!(
                    cycle,
                    fleet = name,
                    changes = fleet.changes,
                    "changes pending (no --auto-apply)"
                );
            }
            FleetOutcome::Applied(a) => {
                let b = fleet.backoff.as_ref();
                if fleet.failed() {
                    tracing::error!(
                        cycle,
                        fleet = name,
                        stopped = a.stopped.as_deref().unwrap_or(""),
                        failures = %a.failures.join("; "),
                        consecutive_failures = b.map_or(0, |b| b.failures),
                        retry_in_ms = b.map_or(0, |b| b.retry_in.as_millis() as u64),
                        "apply failed"
                    );
                } else {
                    tracing::info!(
                        cycle,
                        fleet = name,
                        rounds = a.rounds,
                        created = a.created,
                        started = a.started,
                        updated = a.updated,
                        terminated = a.terminated,
                        stopped = a.stopped.as_deref().unwrap_or(""),
                        "applied"
                    );
                }
            }
            _ => {}
        }
    }
    let api_calls: u64 = calls.attempts.values().sum();
    let describe = calls.attempts.get(&cvmfleet_wire::Action::DescribeInstances).copied().unwrap_or(0);
    tracing::info!(
        cycle,
        duration_ms = report.duration.as_millis() as u64,
        fleets = report.fleets.len(),
        drift = report.drift.iter().map(|d| u64::from(d.count)).sum::<u64>(),
        succeeded = report.succeeded(),
        api_calls,
        describe_instances = describe,
        "cycle finished"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_with_units_and_a_floor() {
        assert_eq!(parse_interval("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_interval("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_interval("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_interval("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_interval("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_interval("10ms").unwrap_err().contains("at least 100ms"));
        assert!(parse_interval("5 minutes").is_err());
        assert!(parse_interval("m").is_err());
    }

    /// Issue 10, item 15: `--interval 18446744073709551615s` was accepted and a `Duration`
    /// multiply panicked after the first cycle. Intervals are bounded when parsed.
    #[test]
    fn issue_10_intervals_are_bounded_at_parse_time() {
        assert_eq!(parse_interval("24h"), Ok(MAX_INTERVAL));
        for huge in ["18446744073709551615s", "18446744073709551615", "25h", "1441m", "86400001ms"] {
            assert!(parse_interval(huge).unwrap_err().contains("at most 24h"), "{huge}");
        }
        assert!(parse_interval("184467440737095516150000s").is_err());
    }
}
