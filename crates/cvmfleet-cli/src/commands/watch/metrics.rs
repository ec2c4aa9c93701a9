//! Prometheus metrics of `cvmfleet watch`, and the small HTTP server that serves them with a
//! health check:
//!
//! - `GET /metrics`: OpenMetrics text;
//! - `GET /healthz`: 200 while a cycle succeeded within the last [`UNHEALTHY_AFTER`] intervals
//!   (or the watcher started less than that long ago), 503 otherwise.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use cvmfleet_client::CallStats;
use cvmfleet_reconcile::{CycleReport, FleetOutcome};

/// Intervals without a successful cycle after which `/healthz` reports unhealthy: three, so
/// one failed cycle (a blip of the API) does not restart a healthy watcher.
pub(crate) const UNHEALTHY_AFTER: u32 = 3;

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// Every metric of the watcher.
pub(crate) struct Metrics {
    registry: Registry,
    cycles: Family<Labels, Counter>,
    cycle_seconds: Histogram,
    drift: Family<Labels, Gauge>,
    actions: Family<Labels, Counter>,
    api_calls: Family<Labels, Counter>,
    api_errors: Family<Labels, Counter>,
    throttled: Counter,
    last_success: Gauge<f64, std::sync::atomic::AtomicU64>,
    failures: Family<Labels, Gauge>,
    backoff_seconds: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    held: Family<Labels, Gauge>,
    spec_problems: Gauge,
    leader: Gauge,
    leadership_changes: Family<Labels, Counter>,
    unavailable: Family<Labels, Gauge>,
    health: Mutex<Health>,
}

struct Health {
    started: Instant,
    last_success: Option<Instant>,
    interval: Duration,
    /// Standing by under leader election: healthy without cycles of its own.
    standby: bool,
}

impl Metrics {
    /// Registers every metric under `cvmfleet_`.
    pub(crate) fn new(interval: Duration) -> Self {
        let mut registry = Registry::with_prefix("cvmfleet");
        let m = Metrics {
            cycles: Family::default(),
            // 10 ms to about 40 min: a cycle with nothing to do up to a large rollout.
            cycle_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 18)),
            drift: Family::default(),
            actions: Family::default(),
            api_calls: Family::default(),
            api_errors: Family::default(),
            throttled: Counter::default(),
            last_success: Gauge::default(),
            failures: Family::default(),
            backoff_seconds: Family::default(),
            held: Family::default(),
            spec_problems: Gauge::default(),
            leader: Gauge::default(),
            leadership_changes: Family::default(),
            unavailable: Family::default(),
            health: Mutex::new(Health {
                started: Instant::now(),
                last_success: None,
                interval,
                standby: false,
            }),
            registry: Registry::default(),
        };
        registry.register("watch_cycles", "Watch cycles by result (success, failure)", m.cycles.clone());
        registry.register(
            "watch_cycle_duration_seconds",
            "Duration of watch cycles",
            m.cycle_seconds.clone(),
        );
        registry.register(
            "drift_instances",
            "Instances drifted from the specs, by fleet and kind, as of the fleet's last observation",
            m.drift.clone(),
        );
        registry.register(
            "actions",
            "Instances acted on by action (create, start, update, terminate)",
            m.actions.clone(),
        );
        registry.register("api_calls", "API call attempts by action", m.api_calls.clone());
        registry.register(
            "api_errors",
            "Failed API call attempts by action and error code",
            m.api_errors.clone(),
        );
        registry.register(
            "api_throttled",
            "API call attempts answered RequestLimitExceeded",
            m.throttled.clone(),
        );
        registry.register(
            "watch_last_success_timestamp_seconds",
            "Unix time of the last cycle in which every fleet succeeded",
            m.last_success.clone(),
        );
        registry.register(
            "fleet_consecutive_failures",
            "Failed cycles in a row per fleet (0 when healthy)",
            m.failures.clone(),
        );
        registry.register(
            "fleet_backoff_seconds",
            "Time until a failing fleet is tried again",
            m.backoff_seconds.clone(),
        );
        registry.register(
            "fleet_held",
            "1 when a fleet's changes exceed a safety limit and wait for a human",
            m.held.clone(),
        );
        registry.register(
            "spec_problems",
            "Spec files that do not validate (last good version in use)",
            m.spec_problems.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica acts on the cloud (the lease holder, or any watcher without --leader-election)",
            m.leader.clone(),
        );
        registry.register(
            "leadership_changes",
            "Times this replica took the lease (acquired) or stopped acting on it (lost, resigned)",
            m.leadership_changes.clone(),
        );
        registry.register(
            "unavailable_offerings",
            "1 for each offering (zone, instance type, charge type) a launch found short of stock, \
             not tried again until its TTL ends (--unavailable-ttl)",
            m.unavailable.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The offerings marked unavailable now (only those are exported).
    pub(crate) fn set_unavailable(&self, marked: &[cvmfleet_reconcile::OfferingKey]) {
        self.unavailable.clear();
        for key in marked {
            let labels = labels(&[
                ("region", key.region.as_str()),
                ("zone", key.zone.as_str()),
                ("instance_type", key.instance_type.as_str()),
                ("charge_type", key.charge_type.as_str()),
            ]);
            self.unavailable.get_or_create(&labels).set(1);
        }
    }

    /// This replica acts (`true`) or stands by. `change` counts a transition of the lease
    /// (`acquired`, `lost`, `resigned`); a leader's health is counted from the moment it leads.
    pub(crate) fn set_leader(&self, leader: bool, change: Option<&str>) {
        self.leader.set(i64::from(leader));
        if let Some(change) = change {
            self.leadership_changes.get_or_create(&labels(&[("change", change)])).inc();
        }
        let mut health = self.lock_health();
        if leader && health.standby {
            health.started = Instant::now();
        }
        health.standby = !leader;
    }

    /// Records a cycle: its result and duration, drift, actions, backoff, API counters (taken
    /// from the client and reset), and spec problems.
    pub(crate) fn record(&self, report: &CycleReport, calls: &CallStats, spec_problems: usize) {
        let success = report.succeeded();
        self.cycles.get_or_create(&labels(&[("result", if success { "success" } else { "failure" })])).inc();
        self.cycle_seconds.observe(report.duration.as_secs_f64());
        for fleet in &report.fleets {
            let fleet_label = [("fleet", fleet.fleet.as_str())];
            if fleet.outcome != FleetOutcome::BackingOff
                && !matches!(fleet.outcome, FleetOutcome::ObserveFailed(_))
            {
                for kind in cvmfleet_plan::DriftKind::ALL {
                    let count: u64 = report
                        .drift
                        .iter()
                        .filter(|d| d.fleet == fleet.fleet && d.kind == kind)
                        .map(|d| u64::from(d.count))
                        .sum();
                    let key = labels(&[("fleet", fleet.fleet.as_str()), ("kind", kind.as_str())]);
                    if count > 0 || self.drift.get(&key).is_some() {
                        self.drift.get_or_create(&key).set(i64::try_from(count).unwrap_or(i64::MAX));
                    }
                }
            }
            if let FleetOutcome::Applied(applied) = &fleet.outcome {
                for (action, n) in [
                    ("create", applied.created),
                    ("start", applied.started),
                    ("update", applied.updated),
                    ("terminate", applied.terminated),
                ] {
                    if n > 0 {
                        self.actions.get_or_create(&labels(&[("action", action)])).inc_by(n as u64);
                    }
                }
            }
            let held = i64::from(matches!(fleet.outcome, FleetOutcome::Held(_)));
            self.held.get_or_create(&labels(&fleet_label)).set(held);
            let (failures, backoff) =
                fleet.backoff.as_ref().map_or((0, 0.0), |b| (b.failures, b.retry_in.as_secs_f64()));
            self.failures.get_or_create(&labels(&fleet_label)).set(i64::from(failures));
            self.backoff_seconds.get_or_create(&labels(&fleet_label)).set(backoff);
        }
        for (action, n) in &calls.attempts {
            self.api_calls.get_or_create(&labels(&[("action", action.as_str())])).inc_by(*n);
        }
        for (action, codes) in &calls.errors {
            for (code, n) in codes {
                self.api_errors
                    .get_or_create(&labels(&[("action", action.as_str()), ("code", code)]))
                    .inc_by(*n);
            }
        }
        self.throttled.inc_by(calls.throttled);
        self.spec_problems.set(i64::try_from(spec_problems).unwrap_or(i64::MAX));
        if success {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
            self.last_success.set(now);
            self.lock_health().last_success = Some(Instant::now());
        }
    }

    fn lock_health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `None` when healthy, else why not.
    pub(crate) fn unhealthy(&self) -> Option<String> {
        let health = self.lock_health();
        if health.standby {
            return None;
        }
        let limit = health.interval * UNHEALTHY_AFTER;
        let since = health.last_success.map_or(health.started, |s| s.max(health.started));
        let quiet = since.elapsed();
        (quiet > limit).then(|| {
            format!(
                "no successful cycle for {:.1}s (more than {UNHEALTHY_AFTER} intervals of {:.1}s)",
                quiet.as_secs_f64(),
                health.interval.as_secs_f64()
            )
        })
    }

    fn text(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

async fn metrics_text(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], m.text())
}

async fn healthz(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    match m.unhealthy() {
        None if m.lock_health().standby => (StatusCode::OK, "ok (standby)\n".to_owned()),
        None => (StatusCode::OK, "ok\n".to_owned()),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("unhealthy: {why}\n")),
    }
}

/// Binds `addr` and serves `/metrics` and `/healthz` until the runtime stops; returns the bound
/// address (port 0 picks a free one).
pub(crate) async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the metrics address {addr}"))?;
    let bound = listener.local_addr()?;
    let router = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .with_state(metrics);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, "the metrics server stopped");
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_turns_bad_after_three_quiet_intervals() {
        let m = Metrics::new(Duration::from_millis(10));
        assert!(m.unhealthy().is_none());
        m.lock_health().started = Instant::now() - Duration::from_millis(50);
        assert!(m.unhealthy().is_some_and(|why| why.contains("3 intervals")));
        m.lock_health().last_success = Some(Instant::now());
        assert!(m.unhealthy().is_none());
    }

    #[test]
    fn a_standby_is_healthy_and_a_new_leader_gets_three_intervals() {
        let m = Metrics::new(Duration::from_millis(10));
        m.set_leader(false, None);
        m.lock_health().started = Instant::now() - Duration::from_secs(60);
        assert!(m.unhealthy().is_none(), "standing by is healthy");
        m.set_leader(true, Some("acquired"));
        assert!(m.unhealthy().is_none(), "counted from the moment it leads");
        let text = m.text();
        assert!(text.contains("cvmfleet_leader 1"), "{text}");
        assert!(text.contains("cvmfleet_leadership_changes_total{change=\"acquired\"} 1"), "{text}");
    }

    /// Every series name the exporter serves, from its `# TYPE` lines (a counter `x` is served
    /// as `x_total`, a histogram as `x_bucket`, `x_sum` and `x_count`).
    fn served(m: &Metrics) -> std::collections::BTreeSet<String> {
        let mut names = std::collections::BTreeSet::new();
        for line in m.text().lines() {
            let mut words = line.strip_prefix("# TYPE ").unwrap_or_default().split(' ');
            let (Some(name), Some(kind)) = (words.next(), words.next()) else { continue };
            match kind {
                "counter" => names.insert(format!("{name}_total")),
                "histogram" => {
                    names.extend(["_bucket", "_sum", "_count"].map(|s| format!("{name}{s}")));
                    true
                }
                _ => names.insert(name.to_owned()),
            };
        }
        names
    }

    /// The metric names a PromQL expression refers to.
    fn queried(expr: &str) -> Vec<String> {
        let mut names = Vec::new();
        let mut rest = expr;
        while let Some(at) = rest.find("cvmfleet_") {
            let tail = &rest[at..];
            let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
            names.push(tail[..end].to_owned());
            rest = &tail[end..];
        }
        names
    }

    fn exprs(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                        _ => exprs(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| exprs(v, out)),
            _ => {}
        }
    }

    /// Issue 15: the Grafana dashboard in deploy/ queries only metrics the exporter serves, and
    /// covers what the issue lists (cycles, drift, actions, API calls and errors, throttling,
    /// backoff, leader).
    #[test]
    fn every_metric_the_dashboard_queries_is_served() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/grafana/cvmfleet-watch.json");
        let dashboard: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("dashboard")).expect("JSON");
        // Families with labels are encoded once they have a series: give each one.
        let m = Metrics::new(Duration::from_secs(1));
        let one = labels(&[("x", "y")]);
        for family in [&m.cycles, &m.actions, &m.api_calls, &m.api_errors, &m.leadership_changes] {
            family.get_or_create(&one).inc();
        }
        for family in [&m.drift, &m.failures, &m.held] {
            family.get_or_create(&one).set(1);
        }
        m.backoff_seconds.get_or_create(&one).set(1.0);
        let served = served(&m);
        assert!(
            served.contains("cvmfleet_leader") && served.contains("cvmfleet_watch_cycles_total"),
            "{served:?}"
        );
        let mut all = Vec::new();
        exprs(&dashboard, &mut all);
        let used: std::collections::BTreeSet<String> = all.iter().flat_map(|e| queried(e)).collect();
        let unknown: Vec<&String> = used.iter().filter(|n| !served.contains(*n)).collect();
        assert!(unknown.is_empty(), "queried but not served: {unknown:?}");
        for wanted in [
            "cvmfleet_watch_cycles_total",
            "cvmfleet_drift_instances",
            "cvmfleet_actions_total",
            "cvmfleet_api_calls_total",
            "cvmfleet_api_errors_total",
            "cvmfleet_api_throttled_total",
            "cvmfleet_fleet_backoff_seconds",
            "cvmfleet_leader",
            "cvmfleet_leadership_changes_total",
        ] {
            assert!(used.contains(wanted), "the dashboard shows no {wanted}");
        }
    }
}
