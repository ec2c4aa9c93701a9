//! The watch cycle (issue 6) against an in-process fake cloud under paused time: drift found
//! and corrected, report-only fleets untouched, safety limits held, failing fleets backed off
//! exponentially and retried, jitter within bounds.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cvmfleet_client::Error as ApiError;
use cvmfleet_plan::{DesiredFleet, ObservedFleet, ObservedInstance, Plan, PlanOptions};
use cvmfleet_reconcile::watch::{FleetOutcome, JITTER, MAX_BACKOFF_FACTOR};
use cvmfleet_reconcile::{
    Cloud, Converged, ExecError, Interrupt, Observation, PRICE_TTL, PriceCache, QuoteFuture, Quoter, Reads,
    Report, WatchOptions, Watcher,
};
use cvmfleet_spec::{DriftPolicies, DriftPolicy};
use cvmfleet_wire::Action;
use cvmfleet_wire::api::RunInstancesRequest;
use cvmfleet_wire::model::{ItemPrice, Price};
use cvmfleet_wire::vocab::ChargeUnit;

use crate::fixtures::one_group_fleet;

const ZONE: &str = "ap-guangzhou-3";
const HASH: &str = "aaaaaaaaaaaaaaaa";
const INTERVAL: Duration = Duration::from_secs(60);

fn fleet(name: &str, replicas: u32, drift: DriftPolicies) -> DesiredFleet {
    let mut fleet = one_group_fleet(name, ZONE, replicas, HASH);
    fleet.orphans = DriftPolicy::Correct;
    fleet.groups[0].policies = cvmfleet_spec::GroupPolicies { drift, ..Default::default() };
    fleet
}

#[derive(Default)]
struct World {
    instances: BTreeMap<String, Vec<ObservedInstance>>,
    next_id: u32,
    /// Observations of a fleet that fail, counted down.
    failing: BTreeMap<String, u32>,
    observed: Vec<String>,
    converged: Vec<String>,
    /// Hourly price of every configuration (none: quotes fail), and the quotes asked.
    hourly: Option<f64>,
    quotes: u32,
}

/// A cloud in memory: observation lists the world, convergence applies the plan at once.
#[derive(Clone, Default)]
struct FakeCloud(Arc<Mutex<World>>);

impl FakeCloud {
    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.0.lock().unwrap()
    }

    fn running(&self, fleet: &str, n: usize) {
        let mut w = self.world();
        for _ in 0..n {
            w.next_id += 1;
            let id = format!("ins-{:08}", w.next_id);
            w.instances.entry(fleet.into()).or_default().push(instance(&id, fleet));
        }
    }

    fn count(&self, fleet: &str) -> usize {
        self.world().instances.get(fleet).map_or(0, Vec::len)
    }
}

fn instance(id: &str, fleet: &str) -> ObservedInstance {
    ObservedInstance {
        id: id.into(),
        zone: ZONE.into(),
        state: "RUNNING".into(),
        name: "app".into(),
        security_groups: vec![],
        private_ips: vec![],
        subnet_id: String::new(),
        created_time: format!("2026-01-01T00:00:00.{id}Z"),
        instance_type: "S5.MEDIUM2".into(),
        image_id: "img-pmqg1cw7".into(),
        protected: false,
        fleet: Some(fleet.into()),
        group: Some("app".into()),
        template: Some(HASH.into()),
        token: Some(format!("t-{id}")),
        pool: None,
        project: None,
        instance_charge_type: "POSTPAID_BY_HOUR".into(),
        latest_error: None,
    }
}

impl Reads for FakeCloud {
    async fn list(&self, fleets: &[DesiredFleet], _everywhere: bool) -> Result<Observation, ExecError> {
        // Listing takes a little time, as it would over the network.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut w = self.world();
        let mut out = BTreeMap::new();
        for f in fleets {
            w.observed.push(f.name.clone());
            let failing = w.failing.get_mut(&f.name).filter(|n| **n > 0);
            let result = if let Some(left) = failing {
                *left -= 1;
                Err(ExecError::Observe {
                    fleet: f.name.clone(),
                    source: std::sync::Arc::new(ApiError::Api {
                        action: Action::DescribeInstances,
                        code: "InternalError".into(),
                        message: "boom".into(),
                        request_id: "req-1".into(),
                    }),
                })
            } else {
                Ok(ObservedFleet {
                    instances: w.instances.get(&f.name).cloned().unwrap_or_default(),
                    ..Default::default()
                })
            };
            out.insert(f.name.clone(), result);
        }
        // Fleets seen where no spec declares them (see `cvmfleet_plan::observed::elsewhere_key`).
        for (key, instances) in w.instances.iter().filter(|(key, _)| key.contains('@')) {
            out.insert(key.clone(), Ok(ObservedFleet { instances: instances.clone(), ..Default::default() }));
        }
        Ok(Observation { fleets: out, paged: BTreeSet::new() })
    }
}

impl Cloud for FakeCloud {
    async fn converge(
        &self,
        fleet: DesiredFleet,
        _: PlanOptions,
        first: Plan,
        _: Interrupt,
        _: Arc<PriceCache>,
    ) -> Converged {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let mut w = self.world();
        w.converged.push(fleet.name.clone());
        let mut report = Report::default();
        for g in first.fleets.iter().flat_map(|f| &f.groups) {
            for c in &g.creates {
                for _ in 0..c.count {
                    w.next_id += 1;
                    let id = format!("ins-{:08}", w.next_id);
                    report.created.push(id.clone());
                    let mut made = instance(&id, &fleet.name);
                    made.token = c.request.client_token.clone();
                    w.instances.entry(fleet.name.clone()).or_default().push(made);
                }
            }
            let gone: BTreeSet<&str> = g.terminations.iter().map(|t| t.instance_id.as_str()).collect();
            report.terminated.extend(gone.iter().map(|s| (*s).to_owned()));
            if let Some(list) = w.instances.get_mut(&fleet.name) {
                list.retain(|i| !gone.contains(i.id.as_str()));
            }
        }
        Converged { reports: vec![report], last_plan: first, stop: None }
    }
}

impl Quoter for FakeCloud {
    fn quote(&self, _region: &str, _request: &RunInstancesRequest) -> QuoteFuture {
        let hourly = {
            let mut w = self.world();
            w.quotes += 1;
            w.hourly
        };
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let hourly =
                hourly.ok_or("InquiryPriceRunInstances failed: FailedOperation.InquiryPriceFailed")?;
            Ok(Price {
                instance_price: ItemPrice::pay_as_you_go(hourly, hourly, ChargeUnit::Hour),
                bandwidth_price: ItemPrice::pay_as_you_go(0.0, 0.0, ChargeUnit::Hour),
            })
        })
    }
}

fn watcher(auto_apply: bool) -> Watcher {
    Watcher::new(WatchOptions {
        interval: INTERVAL,
        auto_apply,
        plan: PlanOptions { max_terminations_per_group: Some(2), ..Default::default() },
    })
}

fn outcome<'a>(report: &'a cvmfleet_reconcile::CycleReport, fleet: &str) -> &'a FleetOutcome {
    &report.fleets.iter().find(|f| f.fleet == fleet).unwrap().outcome
}

#[tokio::test(start_paused = true)]
async fn drift_is_found_in_one_cycle_and_corrected_unless_only_reported() {
    let cloud = FakeCloud::default();
    cloud.running("web", 3);
    cloud.running("audit", 3);
    let report_all = DriftPolicies { missing: DriftPolicy::Report, ..DriftPolicies::default() };
    let desired = [fleet("web", 3, DriftPolicies::default()), fleet("audit", 3, report_all)];
    let mut w = watcher(true);
    let first = w.cycle(&cloud, &desired, &Interrupt::new()).await;
    assert!(first.drift.is_empty() && first.succeeded());
    assert!(first.fleets.iter().all(|f| f.outcome == FleetOutcome::InSync));

    // Out of band: one instance of each fleet disappears.
    for name in ["web", "audit"] {
        cloud.world().instances.get_mut(name).unwrap().pop();
    }
    let second = w.cycle(&cloud, &desired, &Interrupt::new()).await;
    let missing: Vec<(&str, u32)> = second.drift.iter().map(|d| (d.fleet.as_str(), d.count)).collect();
    assert_eq!(missing, [("audit", 1), ("web", 1)], "both detected in the cycle after the change");
    assert!(matches!(outcome(&second, "web"), FleetOutcome::Applied(a) if a.created == 1));
    assert_eq!(*outcome(&second, "audit"), FleetOutcome::InSync, "report-only drift needs nothing");
    assert_eq!((cloud.count("web"), cloud.count("audit")), (3, 2));
    assert_eq!(cloud.world().converged, ["web"], "the report-only fleet was never touched");

    let third = w.cycle(&cloud, &desired, &Interrupt::new()).await;
    assert!(third.drift.iter().all(|d| d.fleet == "audit"), "web converged: {:?}", third.drift);
}

#[tokio::test(start_paused = true)]
async fn without_auto_apply_nothing_is_touched() {
    let cloud = FakeCloud::default();
    cloud.running("web", 1);
    let desired = [fleet("web", 3, DriftPolicies::default())];
    let report = watcher(false).cycle(&cloud, &desired, &Interrupt::new()).await;
    assert_eq!(*outcome(&report, "web"), FleetOutcome::Pending);
    assert_eq!(report.fleets[0].changes, 2);
    assert!(cloud.world().converged.is_empty());
}

#[tokio::test(start_paused = true)]
async fn terminations_above_the_per_cycle_bound_wait_for_a_human() {
    let cloud = FakeCloud::default();
    cloud.running("web", 8);
    let mut desired = fleet("web", 5, DriftPolicies::default());
    desired.groups[0].max_terminate_percent = 100;
    let report = watcher(true).cycle(&cloud, &[desired], &Interrupt::new()).await;
    let FleetOutcome::Held(why) = outcome(&report, "web") else { panic!("{report:?}") };
    assert!(why[0].contains("more than the bound of 2"), "{why:?}");
    assert_eq!(cloud.count("web"), 8, "nothing was terminated");
    assert!(report.succeeded(), "a held fleet is not a failing one");
}

#[tokio::test(start_paused = true)]
async fn a_failing_fleet_backs_off_exponentially_while_the_others_go_on() {
    let cloud = FakeCloud::default();
    cloud.running("web", 1);
    cloud.running("api", 1);
    cloud.world().failing.insert("api".into(), 3);
    let desired = [fleet("web", 1, DriftPolicies::default()), fleet("api", 1, DriftPolicies::default())];
    let mut w = watcher(true);
    let mut attempts = Vec::new();
    let mut backoffs = Vec::new();
    for cycle in 0..12 {
        let report = w.cycle(&cloud, &desired, &Interrupt::new()).await;
        let api = report.fleets.iter().find(|f| f.fleet == "api").unwrap();
        if *outcome(&report, "api") != FleetOutcome::BackingOff {
            attempts.push(cycle);
        }
        backoffs.push(api.backoff.as_ref().map(|b| b.failures));
        assert_eq!(*outcome(&report, "web"), FleetOutcome::InSync, "the healthy fleet is never held up");
        tokio::time::sleep(w.next_delay(0.5)).await;
    }
    // Fails at 0, 1 (after 1 interval), 3 (after 2), then succeeds at 7 (after 4).
    assert_eq!(attempts[..4], [0, 1, 3, 7]);
    assert_eq!(backoffs[0], Some(1));
    assert_eq!(backoffs[3], Some(3));
    assert_eq!(backoffs[7], None, "one success resets the backoff");
    let last = attempts.len();
    assert_eq!(attempts[last - 1], 11, "and the fleet is back to every cycle");
}

/// Issue 10, item 15: a huge interval made the backoff's `Duration` multiply overflow (a
/// panic); it saturates.
#[test]
fn issue_10_backoff_saturates() {
    let w = Watcher::new(WatchOptions {
        interval: Duration::MAX,
        auto_apply: false,
        plan: PlanOptions::default(),
    });
    assert_eq!(w.backoff_delay(1), Duration::MAX);
    assert_eq!(w.backoff_delay(40), Duration::MAX);
}

#[test]
fn backoff_doubles_up_to_the_cap_and_jitter_stays_within_ten_percent() {
    let w = watcher(false);
    let delays: Vec<u64> = (1..=7).map(|n| w.backoff_delay(n).as_secs() / 60).collect();
    assert_eq!(delays, [1, 2, 4, 8, 16, 16, 16]);
    assert_eq!(w.backoff_delay(40), INTERVAL * MAX_BACKOFF_FACTOR);
    let (low, high) = (w.next_delay(0.0), w.next_delay(1.0));
    assert_eq!(low, INTERVAL.mul_f64(1.0 - JITTER));
    assert_eq!(high, INTERVAL.mul_f64(1.0 + JITTER));
    assert_eq!(w.next_delay(0.5), INTERVAL);
}

/// Issue 12 §3: a fleet of the project that no spec declares is reported by `watch` as orphan
/// drift and held for a human; the watcher never prunes a whole fleet.
#[tokio::test(start_paused = true)]
async fn orphan_fleets_are_reported_and_held_never_pruned() {
    let cloud = FakeCloud::default();
    cloud.running("web", 1);
    let orphans: Vec<ObservedInstance> =
        ["ins-old00001", "ins-old00002"].iter().map(|id| instance(id, "old")).collect();
    cloud.world().instances.insert("old@ap-guangzhou".into(), orphans);
    let desired = [fleet("web", 1, DriftPolicies::default())];
    let mut w = Watcher::new(WatchOptions {
        interval: INTERVAL,
        auto_apply: true,
        plan: PlanOptions { prune: true, allow_mass_termination: true, ..Default::default() },
    });
    let report = w.cycle(&cloud, &desired, &Interrupt::new()).await;
    let orphan_drift: Vec<(&str, &str)> =
        report.drift.iter().map(|d| (d.fleet.as_str(), d.desired.as_str())).collect();
    assert_eq!(orphan_drift, [("old", "no spec declares fleet old in ap-guangzhou"); 2]);
    assert!(
        matches!(outcome(&report, "old@ap-guangzhou"), FleetOutcome::Held(why) if why[0].contains("apply --prune")),
        "{:?}",
        report.fleets
    );
    assert_eq!(cloud.world().converged, Vec::<String>::new(), "nothing was converged");
    assert_eq!(cloud.count("old@ap-guangzhou"), 2);
}

/// Issue 15: a replica that loses its lease mid-cycle stops there (the term's interrupt is
/// set); the failures that causes are not the fleet's and must not back it off, so the next
/// leader term starts with the fleet due.
#[tokio::test(start_paused = true)]
async fn issue_15_a_cycle_interrupted_by_a_lost_lease_records_no_failure_and_applies_nothing() {
    let cloud = FakeCloud::default();
    cloud.running("web", 1);
    cloud.world().failing.insert("web".into(), 1);
    let desired = [fleet("web", 3, DriftPolicies::default())];
    let mut w = watcher(true);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(10);
    let term = Interrupt::new().child(move || tokio::time::Instant::now() >= deadline);
    let report = w.cycle(&cloud, &desired, &term).await;
    assert!(matches!(outcome(&report, "web"), FleetOutcome::ObserveFailed(_)));
    assert!(report.fleets[0].backoff.is_none(), "{report:?}");
    // Observed fine now, but the term is over: changes stay pending, nothing converges.
    let report = w.cycle(&cloud, &desired, &term).await;
    assert_eq!(*outcome(&report, "web"), FleetOutcome::Pending);
    assert!(cloud.world().converged.is_empty());
    // The next term (a fresh child) acts at once: no backoff was carried over.
    let report = w.cycle(&cloud, &desired, &Interrupt::new().child(|| false)).await;
    assert!(matches!(outcome(&report, "web"), FleetOutcome::Applied(a) if a.created == 2), "{report:?}");
}

/// Issue 14: the plans of a cycle are priced with one quote per configuration, and later cycles
/// ask nothing while the prices are fresh (an hour), however the fleets change in size.
#[tokio::test(start_paused = true)]
async fn issue_14_prices_are_asked_once_per_configuration_and_kept_for_an_hour() {
    let cloud = FakeCloud::default();
    cloud.world().hourly = Some(0.2);
    cloud.running("web", 2);
    cloud.running("api", 2);
    // Two fleets of the same launch settings in the same zone: one configuration.
    let desired = [fleet("web", 2, DriftPolicies::default()), fleet("api", 2, DriftPolicies::default())];
    let mut w = watcher(true);
    let first = w.cycle(&cloud, &desired, &Interrupt::new()).await;
    assert!(first.fleets.iter().all(|f| f.outcome == FleetOutcome::InSync));
    assert_eq!((cloud.world().quotes, w.quotes_sent()), (1, 1));
    tokio::time::advance(INTERVAL).await;
    w.cycle(&cloud, &desired, &Interrupt::new()).await;
    assert_eq!(cloud.world().quotes, 1, "an unchanged fleet costs no quote while its price is fresh");
    // A scale-up creates the same configuration: still no quote.
    let grown = [fleet("web", 4, DriftPolicies::default()), desired[1].clone()];
    let third = w.cycle(&cloud, &grown, &Interrupt::new()).await;
    assert!(matches!(outcome(&third, "web"), FleetOutcome::Applied(a) if a.created == 2));
    assert_eq!(cloud.world().quotes, 1);
    // Stale after an hour: asked once again.
    tokio::time::advance(PRICE_TTL).await;
    w.cycle(&cloud, &grown, &Interrupt::new()).await;
    assert_eq!(cloud.world().quotes, 2);
}

/// Issue 14: a plan adding more than `maxMonthlyCostIncrease` is held for a human, like a mass
/// termination; `allow_cost_increase` lifts it; an unknown price never holds a plan.
#[tokio::test(start_paused = true)]
async fn issue_14_a_plan_over_its_cost_bound_is_held() {
    let cloud = FakeCloud::default();
    cloud.world().hourly = Some(0.2);
    cloud.running("web", 1);
    let mut web = fleet("web", 3, DriftPolicies::default());
    // Two more instances add 2 × 0.2 × 730 = 292 a month.
    web.max_monthly_cost_increase = cvmfleet_spec::MonthlyAmount::new(100.0);
    let report = watcher(true).cycle(&cloud, std::slice::from_ref(&web), &Interrupt::new()).await;
    let FleetOutcome::Held(why) = outcome(&report, "web") else { panic!("{report:?}") };
    assert_eq!(
        why,
        &[
            "would add ¥292.00/month to the fleet's monthly cost, more than its maxMonthlyCostIncrease of ¥100.00; \
           re-run with --allow-cost-increase if this is intended"
        ]
    );
    assert!(cloud.world().converged.is_empty());

    let mut allowing = Watcher::new(WatchOptions {
        interval: INTERVAL,
        auto_apply: true,
        plan: PlanOptions { allow_cost_increase: true, ..Default::default() },
    });
    let report = allowing.cycle(&cloud, std::slice::from_ref(&web), &Interrupt::new()).await;
    assert!(matches!(outcome(&report, "web"), FleetOutcome::Applied(a) if a.created == 2), "{report:?}");

    // Unknown prices: the bound cannot be checked, and the plan goes ahead.
    cloud.world().hourly = None;
    let bigger =
        DesiredFleet { groups: vec![fleet("web", 5, DriftPolicies::default()).groups.remove(0)], ..web };
    let report = watcher(true).cycle(&cloud, std::slice::from_ref(&bigger), &Interrupt::new()).await;
    assert!(matches!(outcome(&report, "web"), FleetOutcome::Applied(a) if a.created == 2), "{report:?}");
}
