//! Capacity-aware placement end to end (issue 13): the real binary against a real emulator whose
//! offerings run short. Creates go to the first zone and offering with stock, fallbacks are shown
//! and kept (or rebalanced), refusals and stock that vanished are remembered for the TTL, and no
//! interleaving of concurrent, killed or retried applies creates an instance beyond the spec.
//!
//! Every scenario ends the same way ([`Stocked::assert_converged`]): a final `apply` converges,
//! `plan` then shows no changes, the fleet's live instances are exactly the ones stated (by the
//! zone they run in, their home zone from the `cvmfleet:pool` tag, type and charge type), and
//! the emulator's count of every instance it ever created (`Stats::instances_created`: failed
//! launches and terminated duplicates included) equals the creations the scenario allows,
//! stated in each test. Instances that end `LAUNCH_FAILED` are allowed only where the test made
//! the stock vanish.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use cvmfleet_emulator::catalog::InstanceTypeSpec;
use cvmfleet_emulator::{Catalog, EmulatorConfig, FaultConfig, FaultKind, FaultRule, PriceTable, StockSpec};
use cvmfleet_wire::Action;
use cvmfleet_wire::api::TerminateInstancesRequest;
use cvmfleet_wire::codes;
use cvmfleet_wire::model::{Filter, Instance};

use crate::common::{Cloud, Run, cvmfleet_command};
use crate::watch::{Watch, message, scrape};

const REGION: &str = "ap-guangzhou";
const Z3: &str = "ap-guangzhou-3";
const Z4: &str = "ap-guangzhou-4";
const FLEET: &str = "cap";
/// The preferred type of every scenario.
const S5: &str = "S5.MEDIUM2";
/// Its fallback, the issue's example (not in the built-in catalog: [`catalog`] adds it).
const SA2: &str = "SA2.MEDIUM2";
const HOURLY: &str = "POSTPAID_BY_HOUR";
const SPOT: &str = "SPOTPAID";
/// Both types, on demand, S5 first.
const BOTH: &str = "[S5.MEDIUM2, SA2.MEDIUM2]";

/// The built-in catalog plus SA2.MEDIUM2 (2 vCPU, 2 GiB, sold in every zone, priced like its
/// family).
fn catalog() -> Catalog {
    let mut catalog = Catalog::builtin();
    catalog.instance_types.push(InstanceTypeSpec {
        instance_type: SA2.into(),
        cpu: 2,
        memory: 2,
        gpu: 0,
        fpga: 0,
        zones: Vec::new(),
        requires_permission: false,
    });
    let regions: Vec<String> = catalog.regions.iter().map(|r| r.region.clone()).collect();
    let regions: Vec<&str> = regions.iter().map(String::as_str).collect();
    catalog.prices = PriceTable::builtin(&catalog.instance_types, &regions);
    catalog
}

/// The one group `web` of fleet `cap`.
#[derive(Clone, Copy)]
struct Group {
    replicas: u32,
    zones: &'static str,
    /// `instanceTypes:` as YAML flow text.
    instance_types: &'static str,
    zone_policy: &'static str,
    rebalance: bool,
    /// `policies.rollout`, e.g. `{maxSurge: 1, maxUnavailable: 0}`.
    rollout: Option<&'static str>,
}

impl Group {
    /// `replicas` over `zones` (flow text), S5 then SA2, spread, no rebalance.
    fn of(replicas: u32, zones: &'static str) -> Self {
        Group {
            replicas,
            zones,
            instance_types: BOTH,
            zone_policy: "spread",
            rebalance: false,
            rollout: None,
        }
    }

    fn yaml(&self) -> String {
        let policies =
            self.rollout.map(|r| format!("        policies: {{rollout: {r}}}\n")).unwrap_or_default();
        // No `instanceTypes:` (empty): the type is the template's, S5.
        let types = if self.instance_types.is_empty() {
            format!("template: {{InstanceType: {S5}}}")
        } else {
            format!("instanceTypes: {}", self.instance_types)
        };
        format!(
            "fleets:
  - name: {FLEET}
    region: {REGION}
    policies: {{maxTerminatePercent: 100}}
    defaults: {{ImageId: img-pmqg1cw7}}
    groups:
      - name: web
        replicas: {replicas}
        zones: {zones}
        {types}
        zonePolicy: {policy}
        rebalance: {rebalance}
{policies}",
            replicas = self.replicas,
            zones = self.zones,
            policy = self.zone_policy,
            rebalance = self.rebalance,
        )
    }
}

/// Where a live instance is: the zone it runs in, its home zone (from its pool tag), its type
/// and charge type.
type Spot = (String, String, String, String);

fn spot(zone: &str, home: &str, instance_type: &str, charge: &str) -> Spot {
    (zone.into(), home.into(), instance_type.into(), charge.into())
}

fn is_live(instance: &Instance) -> bool {
    !matches!(instance.instance_state.as_str(), "SHUTDOWN" | "TERMINATING" | "LAUNCH_FAILED")
}

/// The runs of a scenario, for failure messages.
#[derive(Default)]
struct Log(String);

impl Log {
    fn run(&mut self, label: &str, run: &Run) {
        let _ = writeln!(self.0, "--- {label}: exit {}\n{}", run.code, run.snapshot(&[]));
    }

    fn note(&mut self, text: &str) {
        let _ = writeln!(self.0, "--- {text}");
    }
}

/// An emulator with stock, and fleet `cap`.
struct Stocked {
    cloud: Cloud,
}

impl Stocked {
    /// The common test emulator (fast lifecycle, strict tokens) with [`catalog`], without
    /// server-side rate limits (so no throttling changes the timing), adjusted by `more`.
    async fn start(more: impl FnOnce(EmulatorConfig) -> EmulatorConfig) -> Stocked {
        let cloud = Cloud::start_with(|c| more(c.catalog(catalog()).rate_limits(false))).await;
        Stocked { cloud }
    }

    fn write(&self, group: &Group) {
        self.cloud.write_spec(&group.yaml());
    }

    /// Sets the stock of an offering in every charge type (`charge` `None`) or one.
    fn stock(&self, zone: &str, instance_type: &str, charge: Option<&str>, available: Option<u64>) {
        let charge = charge.map(|c| cvmfleet_wire::vocab::InstanceChargeType::parse(c).expect("charge type"));
        self.cloud
            .emulator
            .set_stock(&[StockSpec::new(zone, instance_type, charge, available)])
            .expect("stock");
    }

    async fn apply(&self) -> Run {
        self.cloud.run(&["apply", "fleet.yaml", "--auto-approve"]).await
    }

    async fn plan(&self) -> Run {
        self.cloud.run(&["plan", "fleet.yaml"]).await
    }

    /// A step that is not under test: it must succeed.
    async fn setup_apply(&self, log: &mut Log, label: &str) {
        let run = self.apply().await;
        log.run(label, &run);
        assert_eq!(run.code, 0, "setup apply `{label}` failed:\n{}", log.0);
    }

    /// Every instance of the fleet the emulator still lists, whatever its state.
    async fn all(&self) -> Vec<Instance> {
        self.cloud
            .client
            .describe_instances_all(REGION, vec![Filter::new("tag:cvmfleet:fleet", [FLEET])])
            .await
            .expect("describe the fleet")
    }

    /// Live instances by where they are.
    async fn spots(&self) -> BTreeMap<Spot, usize> {
        let mut spots = BTreeMap::new();
        for i in self.all().await.iter().filter(|i| is_live(i)) {
            let home = i.tag("cvmfleet:pool").and_then(cvmfleet_plan::token::pool_tag_zone).unwrap_or("");
            *spots
                .entry(spot(&i.placement.zone, home, &i.instance_type, &i.instance_charge_type))
                .or_default() += 1;
        }
        spots
    }

    /// Instances the emulator ever created.
    fn created(&self) -> u64 {
        self.cloud.emulator.stats().instances_created
    }

    /// RunInstances requests that named this offering (on arrival, refused ones included).
    fn attempts(&self, zone: &str, instance_type: &str, charge: &str) -> u64 {
        self.cloud.emulator.stats().run_instances_on(zone, instance_type, charge)
    }

    async fn terminate_out_of_band(&self, ids: Vec<String>) {
        let request = TerminateInstancesRequest { instance_ids: ids, ..Default::default() };
        self.cloud.client.call(REGION, &request).await.expect("terminate out of band");
    }

    /// The verdict of every scenario (see the module docs): a final apply and plan change
    /// nothing more, the live instances are exactly `want`, all running, with distinct IDs, and
    /// the emulator created exactly `legitimate` instances in all.
    async fn assert_converged(&self, log: &Log, want: &[(Spot, usize)], legitimate: u64) {
        let apply = self.apply().await;
        let plan = self.plan().await;
        let all = self.all().await;
        let created = self.created();
        let spots = self.spots().await;
        let want: BTreeMap<Spot, usize> = want.iter().cloned().collect();
        let mut states: BTreeMap<&str, usize> = BTreeMap::new();
        for i in &all {
            *states.entry(i.instance_state.as_str()).or_default() += 1;
        }
        let live: Vec<&Instance> = all.iter().filter(|i| is_live(i)).collect();
        let mut ids: Vec<&str> = live.iter().map(|i| i.instance_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let running = live.iter().all(|i| i.instance_state == "RUNNING");
        let ok = apply.code == 0
            && plan.code == 0
            && plan.stdout.contains("No changes.")
            && spots == want
            && running
            && ids.len() == live.len()
            && created == legitimate;
        assert!(
            ok,
            "created {created} instances, legitimate {legitimate} (excess {excess:+}); live {spots:?}, \
             wanted {want:?}; all running: {running}; duplicate IDs: {dups}; every instance by state: {states:?}\n\
             final apply exit {a}, plan exit {p}\n{before}--- final apply\n{apply_text}\n--- plan\n{plan_text}",
            excess = i128::from(created) - i128::from(legitimate),
            dups = live.len() - ids.len(),
            a = apply.code,
            p = plan.code,
            before = log.0,
            apply_text = apply.snapshot(&[]),
            plan_text = plan.snapshot(&[]),
        );
    }
}

/// Polls `done` every 10 ms for at most `timeout`; whether it became true.
async fn wait_for(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done()
}

/// Plan text for snapshots: endpoint and instance IDs redacted.
fn redacted(cloud: &Stocked, run: &Run) -> String {
    let endpoint = cloud.cloud.emulator.endpoint();
    let text = run.snapshot(&[(endpoint.as_str(), "[ENDPOINT]")]);
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find("ins-") {
        out.push_str(&rest[..at]);
        let id_len = 4 + rest[at + 4..].chars().take_while(char::is_ascii_alphanumeric).count();
        out.push_str("[ID]");
        rest = &rest[at + id_len..];
    }
    out.push_str(rest);
    out
}

/// (a) S5 sold out in ap-guangzhou-3: that zone's share launches on SA2 there, the other zone's
/// on S5; the plan says why, and afterwards `plan` has nothing to do. The stock read said sold
/// out, so S5 was never even tried there.
///
/// Legitimate creations: 4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_13_a_sold_out_first_type_falls_back_in_its_zone_only() {
    let cloud = Stocked::start(|c| c).await;
    let mut log = Log::default();
    cloud.write(&Group::of(4, "[ap-guangzhou-3, ap-guangzhou-4]"));
    cloud.stock(Z3, S5, None, Some(0));

    let plan = cloud.plan().await;
    assert_eq!(plan.code, 2, "{}", plan.snapshot(&[]));
    insta::assert_snapshot!("sold_out_type_plan", redacted(&cloud, &plan));
    cloud.setup_apply(&mut log, "apply").await;

    assert_eq!(cloud.attempts(Z3, S5, HOURLY), 0, "the stock read said sold out: never tried");
    let want = [(spot(Z3, Z3, SA2, HOURLY), 2), (spot(Z4, Z4, S5, HOURLY), 2)];
    cloud.assert_converged(&log, &want, 4).await;
}

/// (b) Under `spread`, a whole zone sold out: its slots launch in the other zone, still in
/// their home pool (their pool tag names ap-guangzhou-3), and the plan is clean afterwards.
/// When the zone's stock returns, `rebalance: true` brings them home.
///
/// Legitimate creations: 4, then 2 moved home = 6.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_13_under_spread_a_sold_out_zone_sends_its_slots_to_the_other_zone() {
    let cloud = Stocked::start(|c| c).await;
    let mut log = Log::default();
    let mut group = Group::of(4, "[ap-guangzhou-3, ap-guangzhou-4]");
    cloud.write(&group);
    cloud.stock(Z3, S5, None, Some(0));
    cloud.stock(Z3, SA2, None, Some(0));

    let plan = cloud.plan().await;
    log.run("plan", &plan);
    assert!(
        plan.stdout.contains(
            "S5.MEDIUM2 sold out in ap-guangzhou-3, SA2.MEDIUM2 sold out in ap-guangzhou-3 → S5.MEDIUM2 in ap-guangzhou-4"
        ),
        "{}",
        log.0
    );
    cloud.setup_apply(&mut log, "apply").await;
    let want = [(spot(Z4, Z3, S5, HOURLY), 2), (spot(Z4, Z4, S5, HOURLY), 2)];
    cloud.assert_converged(&log, &want, 4).await;

    cloud.stock(Z3, S5, None, None);
    cloud.stock(Z3, SA2, None, None);
    let kept = cloud.plan().await;
    log.run("plan with the zone's stock back, rebalance off", &kept);
    assert!(
        kept.code == 0
            && kept.stdout.contains(
                "~ fallback 2 on S5.MEDIUM2 in ap-guangzhou-4; the preferred S5.MEDIUM2 in ap-guangzhou-3 has stock (kept: rebalance is off)"
            ),
        "{}",
        log.0
    );
    group.rebalance = true;
    cloud.write(&group);
    cloud.setup_apply(&mut log, "apply with rebalance: true").await;
    let want = [(spot(Z3, Z3, S5, HOURLY), 2), (spot(Z4, Z4, S5, HOURLY), 2)];
    cloud.assert_converged(&log, &want, 6).await;
}

/// (b) Under `zonePolicy: priority`, zones fill in list order: ap-guangzhou-3 while it has
/// stock (3 left of S5, the only type), then ap-guangzhou-4, in one apply. With stock back in
/// ap-guangzhou-3 and `rebalance: true`, the fourth moves there.
///
/// Legitimate creations: 4, then 1 moved = 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_13_under_priority_the_first_zone_fills_then_the_next() {
    let cloud = Stocked::start(|c| c).await;
    let mut log = Log::default();
    let group = Group {
        instance_types: "[S5.MEDIUM2]",
        zone_policy: "priority",
        ..Group::of(4, "[ap-guangzhou-3, ap-guangzhou-4]")
    };
    cloud.write(&group);
    cloud.stock(Z3, S5, None, Some(3));
    let plan = cloud.plan().await;
    log.run("plan", &plan);
    assert!(
        plan.stdout.contains("+ create 4 in ap-guangzhou-3"),
        "every slot's home is the first zone:\n{}",
        log.0
    );
    cloud.setup_apply(&mut log, "apply").await;
    let want = [(spot(Z3, Z3, S5, HOURLY), 3), (spot(Z4, Z3, S5, HOURLY), 1)];
    cloud.assert_converged(&log, &want, 4).await;

    // Stock back in the first zone: with `rebalance: true` the fourth moves there.
    cloud.stock(Z3, S5, None, None);
    cloud.write(&Group { rebalance: true, ..group });
    cloud.setup_apply(&mut log, "apply with stock back and rebalance: true").await;
    let want = [(spot(Z3, Z3, S5, HOURLY), 4)];
    cloud.assert_converged(&log, &want, 5).await;
}

/// Issue 25 §9: `zonePolicy: priority` without `instanceTypes` fills the first zone to its stock
/// before the next (it sends `MinCount` like an offering group): zones [ap-guangzhou-4,
/// ap-guangzhou-3], 5 replicas, 3 left in ap-guangzhou-4 gives 3 there and 2 in ap-guangzhou-3,
/// in one apply, not all 5 in ap-guangzhou-3.
///
/// Legitimate creations: 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_25_priority_without_instance_types_fills_the_first_zone_to_its_stock() {
    let cloud = Stocked::start(|c| c).await;
    let mut log = Log::default();
    let group = Group {
        instance_types: "",
        zone_policy: "priority",
        ..Group::of(5, "[ap-guangzhou-4, ap-guangzhou-3]")
    };
    cloud.write(&group);
    cloud.stock(Z4, S5, None, Some(3));
    cloud.setup_apply(&mut log, "apply").await;
    let want = [(spot(Z4, Z4, S5, HOURLY), 3), (spot(Z3, Z4, S5, HOURLY), 2)];
    cloud.assert_converged(&log, &want, 5).await;
}

/// A group nothing can place (every offering it accepts sold out in every zone it uses) is
/// reported `! unplaced` and makes `apply` exit 1, naming it; the fleet's other group is
/// created all the same. Once stock returns, the next apply fills it.
///
/// Legitimate creations: 2 (batch), then 2 (web) = 4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_13_a_group_nothing_can_place_fails_alone_and_the_others_proceed() {
    let cloud = Stocked::start(|c| c).await;
    let mut log = Log::default();
    cloud.cloud.write_spec(&format!(
        "{}      - name: batch
        replicas: 2
        zones: [ap-guangzhou-4]
        template: {{InstanceType: S5.LARGE8}}
",
        Group::of(2, "[ap-guangzhou-3]").yaml()
    ));
    cloud.stock(Z3, S5, None, Some(0));
    cloud.stock(Z3, SA2, None, Some(0));
    let run = cloud.apply().await;
    log.run("apply with web unplaceable", &run);
    assert!(
        run.code == 1
            && run.stdout.contains("! unplaced 2 in ap-guangzhou-3: nothing the group accepts has stock")
            && run.stderr.contains("cap/web"),
        "{}",
        log.0
    );
    let batch = spot(Z4, Z4, "S5.LARGE8", HOURLY);
    assert_eq!(cloud.spots().await, BTreeMap::from([(batch.clone(), 2)]), "{}", log.0);
    assert_eq!(cloud.attempts(Z3, S5, HOURLY) + cloud.attempts(Z3, SA2, HOURLY), 0);

    cloud.stock(Z3, SA2, None, None);
    cloud.setup_apply(&mut log, "apply with SA2 back").await;
    let want = [(batch, 2), (spot(Z3, Z3, SA2, HOURLY), 2)];
    cloud.assert_converged(&log, &want, 4).await;
}

/// (c) Stock returning. Without `rebalance` the instances on the fallback stay: `plan` shows
/// them as `~ fallback`, kept, and has no changes. With `rebalance: true`, `apply` moves them
/// back as a rolling replacement, never more than `maxSurge` (1) above the spec's 4.
///
/// Legitimate creations: 4 + 2 replacements = 6.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_13_stock_returning_keeps_fallbacks_unless_rebalance_then_moves_them_within_max_surge() {
    let cloud = Stocked::start(|c| c).await;
    let mut log = Log::default();
    let mut group = Group {
        rollout: Some("{maxSurge: 1, maxUnavailable: 0}"),
        ..Group::of(4, "[ap-guangzhou-3, ap-guangzhou-4]")
    };
    cloud.write(&group);
    cloud.stock(Z3, S5, None, Some(0));
    cloud.setup_apply(&mut log, "apply while S5 is sold out in ap-guangzhou-3").await;
    cloud.stock(Z3, S5, None, None);

    let kept = cloud.plan().await;
    log.run("plan with stock back, rebalance off", &kept);
    assert_eq!(kept.code, 0, "{}", log.0);
    insta::assert_snapshot!("fallback_kept_plan", redacted(&cloud, &kept));
    let again = cloud.apply().await;
    log.run("apply with stock back, rebalance off", &again);
    assert_eq!((again.code, cloud.created()), (0, 4), "nothing moves without rebalance:\n{}", log.0);

    group.rebalance = true;
    cloud.write(&group);
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (rebalanced, ()) = tokio::join!(
        async {
            let run = cloud.apply().await;
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            run
        },
        async {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let live = cloud.all().await.iter().filter(|i| is_live(i)).count();
                peak.fetch_max(live, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    );
    log.run("apply with rebalance: true", &rebalanced);
    let peak = peak.load(std::sync::atomic::Ordering::SeqCst);
    log.note(&format!("most live instances during the rebalance: {peak}"));
    assert_eq!(rebalanced.code, 0, "{}", log.0);
    assert!(peak <= 5, "maxSurge 1 over 4 replicas allows 5 live at most, saw {peak}\n{}", log.0);
    let want = [(spot(Z3, Z3, S5, HOURLY), 2), (spot(Z4, Z4, S5, HOURLY), 2)];
    cloud.assert_converged(&log, &want, 6).await;
}

/// (d) Spot first, on demand when spot is short: 3 spot instances left for 4 wanted, so one
/// create delivers 3 spot instances and the fourth runs on demand, in one apply.
///
/// Legitimate creations: 4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_13_spot_first_then_on_demand_when_spot_is_short() {
    let cloud = Stocked::start(|c| c).await;
    let mut log = Log::default();
    let group = Group {
        instance_types: "[{InstanceType: S5.MEDIUM2, InstanceChargeType: SPOTPAID}, S5.MEDIUM2]",
        ..Group::of(4, "[ap-guangzhou-3]")
    };
    cloud.write(&group);
    cloud.stock(Z3, S5, Some(SPOT), Some(3));
    let plan = cloud.plan().await;
    log.run("plan", &plan);
    assert!(
        plan.stdout.contains("+ create 4 in ap-guangzhou-3 (missing) type=S5.MEDIUM2 charge=SPOTPAID "),
        "the plan shows the offering chosen, billing included:\n{}",
        log.0
    );
    cloud.setup_apply(&mut log, "apply").await;
    assert_eq!(
        (cloud.attempts(Z3, S5, SPOT), cloud.attempts(Z3, S5, HOURLY)),
        (1, 1),
        "one spot create (partial), one on demand:\n{}",
        log.0
    );
    let want = [(spot(Z3, Z3, S5, SPOT), 3), (spot(Z3, Z3, S5, HOURLY), 1)];
    cloud.assert_converged(&log, &want, 4).await;
}

/// (e) `MinCount` partial delivery: 3 S5 left for a create of 5. The create delivers the 3
/// (offering groups send `MinCount: 1`) and the other 2 fall back to SA2 in the same `apply`.
///
/// Legitimate creations: 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_13_a_short_offering_delivers_what_it_has_and_the_rest_falls_back_in_one_apply() {
    let cloud = Stocked::start(|c| c).await;
    let mut log = Log::default();
    cloud.write(&Group::of(5, "[ap-guangzhou-3]"));
    cloud.stock(Z3, S5, None, Some(3));
    cloud.setup_apply(&mut log, "the one apply").await;
    assert_eq!(
        (cloud.created(), cloud.attempts(Z3, S5, HOURLY), cloud.attempts(Z3, SA2, HOURLY)),
        (5, 1, 1),
        "one partial create on S5, one for the rest on SA2:\n{}",
        log.0
    );
    let stats = cloud.cloud.emulator.stats();
    assert_eq!(stats.errors.get("RunInstances"), None, "no create was refused: {stats:?}");
    let want = [(spot(Z3, Z3, S5, HOURLY), 3), (spot(Z3, Z3, SA2, HOURLY), 2)];
    cloud.assert_converged(&log, &want, 5).await;
}

/// Stock that vanishes after acceptance: every instance accepted in the low S5 offering ends
/// `LAUNCH_FAILED` (the emulator's `low_stock_launch_failure_rate` at 1). The apply marks S5
/// unavailable and replaces the three on SA2 at once, without trying S5 again.
///
/// Legitimate creations: 3 failed on S5 (the stock the test made vanish) + 3 on SA2 = 6.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_13_launches_whose_stock_vanished_mark_the_offering_and_fall_back() {
    let faults = FaultConfig { low_stock_launch_failure_rate: 1.0, ..FaultConfig::default() };
    let cloud = Stocked::start(|c| c.faults(faults)).await;
    let mut log = Log::default();
    cloud.write(&Group::of(3, "[ap-guangzhou-3]"));
    cloud.stock(Z3, S5, None, Some(5));
    let run = cloud.apply().await;
    log.run("apply", &run);
    let failed = cloud.all().await.iter().filter(|i| i.instance_state == "LAUNCH_FAILED").count();
    log.note(&format!("LAUNCH_FAILED after the apply: {failed}"));
    assert_eq!(run.code, 0, "{}", log.0);
    assert_eq!(
        (cloud.attempts(Z3, S5, HOURLY), cloud.attempts(Z3, SA2, HOURLY)),
        (1, 1),
        "S5 was tried once, then marked:\n{}",
        log.0
    );
    assert_eq!(cloud.cloud.emulator.stats().faults.get("stock_vanished"), Some(&3));
    let want = [(spot(Z3, Z3, SA2, HOURLY), 3)];
    cloud.assert_converged(&log, &want, 6).await;
}

/// (f) `watch` with an offering that goes sold out mid-run while the stock read still says
/// SELL: the emulator refuses every create of S5 in ap-guangzhou-3 (as a stale stock view
/// would), and the group rebalances, so every cycle would like to go back to S5. The refusal
/// marks S5 unavailable for the TTL (2 s): it is tried again only once the TTL has passed,
/// never sooner, while cycles run every 300 ms; `/metrics` shows the mark.
///
/// Legitimate creations: 2 + 1 replacement (on SA2) = 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_13_watch_does_not_retry_a_refusing_offering_before_its_ttl() {
    let ttl = Duration::from_secs(2);
    let cloud = Stocked::start(|c| c).await;
    let mut log = Log::default();
    let group = Group {
        rebalance: true,
        rollout: Some("{maxSurge: 1, maxUnavailable: 0}"),
        ..Group::of(2, "[ap-guangzhou-3]")
    };
    cloud.write(&group);
    let args = [
        "watch",
        "fleet.yaml",
        "--log-format",
        "json",
        "--auto-apply",
        "--interval",
        "300ms",
        "--unavailable-ttl",
        "2s",
        "--metrics-addr",
        "127.0.0.1:0",
    ];
    let mut watch =
        Watch::spawn(cvmfleet_command(cloud.cloud.dir.path(), &cloud.cloud.emulator.endpoint(), &args));
    let serving = watch.until(Duration::from_secs(10), |e| message(e) == "serving /metrics and /healthz");
    let addr = serving["fields"]["addr"].as_str().expect("addr").to_owned();
    watch.until(Duration::from_secs(30), |e| {
        message(e) == "cycle finished" && e["fields"]["drift"].as_u64() == Some(0)
    });
    assert_eq!(cloud.spots().await, BTreeMap::from([(spot(Z3, Z3, S5, HOURLY), 2)]), "{}", watch.dump());

    // S5 goes sold out in ap-guangzhou-3, unseen by the stock read; one instance is lost.
    let refusal = FaultRule {
        count: 10_000,
        ..FaultRule::error(
            Action::RunInstances,
            codes::RESOURCES_SOLD_OUT_SPECIFIED_INSTANCE_TYPE,
            "S5.MEDIUM2 (POSTPAID_BY_HOUR) in ap-guangzhou-3 is sold out.",
        )
        .when("InstanceType", S5)
        .when("Placement.Zone", Z3)
    };
    cloud.cloud.emulator.add_fault(refusal).expect("rule");
    let before = cloud.attempts(Z3, S5, HOURLY);
    let victim = cloud.all().await.into_iter().find(is_live).expect("an instance").instance_id;
    cloud.terminate_out_of_band(vec![victim]).await;

    // Record when each attempt on S5 arrives, for two TTLs after the first.
    let mut arrivals: Vec<Instant> = Vec::new();
    let mut seen = before;
    let mut metric_line = None;
    let mut cycle_ended_since = false;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        // Events first, then attempts: a cycle that finished after an attempt was seen is the
        // attempt's own or a later one.
        while let Ok(event) = watch.events.try_recv() {
            cycle_ended_since |= !arrivals.is_empty() && message(&event) == "cycle finished";
            watch.log.push(event);
        }
        let now = cloud.attempts(Z3, S5, HOURLY);
        for _ in seen..now {
            arrivals.push(Instant::now());
        }
        seen = now;
        if let Some(first) = arrivals.first() {
            if metric_line.is_none() && cycle_ended_since {
                // The metric is set as a cycle ends; the mark lasts 2 s from the refusal.
                let (_, text) = scrape(&addr, "/metrics").await;
                metric_line = Some(
                    text.lines()
                        .filter(|l| l.starts_with("cvmfleet_unavailable_offerings{"))
                        .map(str::to_owned)
                        .collect::<Vec<_>>(),
                );
            }
            if first.elapsed() > ttl * 2 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let gaps: Vec<f64> = arrivals.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
    while let Ok(event) = watch.events.try_recv() {
        watch.log.push(event);
    }
    let watch_log = watch.dump();
    watch.kill();
    log.note(&format!(
        "attempts on S5 in ap-guangzhou-3 after it went sold out: {}; gaps {gaps:?} s",
        arrivals.len()
    ));
    let metric_line = metric_line.unwrap_or_default();
    log.note(&format!("unavailable offerings on /metrics while marked: {metric_line:?}"));
    log.note(&format!("watch log:\n{watch_log}"));
    assert!(!arrivals.is_empty(), "the lost instance was first planned on S5:\n{}", log.0);
    assert!(
        gaps.iter().all(|g| *g >= ttl.as_secs_f64() - 0.1),
        "an unavailable offering was retried before its TTL of {ttl:?}:\n{}",
        log.0
    );
    assert!(
        (2..=3).contains(&arrivals.len()),
        "one attempt per TTL over two TTLs (the mark does expire):\n{}",
        log.0
    );
    assert_eq!(metric_line.len(), 1, "{}", log.0);
    let line = &metric_line[0];
    assert!(
        [r#"zone="ap-guangzhou-3""#, r#"instance_type="S5.MEDIUM2""#, r#"charge_type="POSTPAID_BY_HOUR""#]
            .iter()
            .all(|label| line.contains(label))
            && line.ends_with(" 1"),
        "{line}"
    );
    assert_eq!(cloud.attempts(Z4, S5, HOURLY) + cloud.attempts(Z4, SA2, HOURLY), 0);
    // The refusals created nothing; the refilled slot runs on SA2 (kept: S5 still refuses).
    cloud.cloud.emulator.clear_faults();
    cloud.stock(Z3, S5, None, Some(0));
    let want = [(spot(Z3, Z3, S5, HOURLY), 1), (spot(Z3, Z3, SA2, HOURLY), 1)];
    cloud.assert_converged(&log, &want, 3).await;
}

/// (g1) Three applies at once while stock runs out mid-way. 3 S5 are left for 6 wanted. The
/// first apply to read stock sees S5 selling and creates; the other two have observed the
/// empty fleet but read stock only once that create has taken the last S5 (their stock reads
/// are held until then), so they choose SA2 for the same slots. The choice is not in the
/// token: the emulator refuses their create as a reused token and they re-plan from a fresh
/// read. Held 300 ms, they re-plan while the first apply's SA2 create for the rest is still to
/// come, and race it for that too; held 800 ms, they find it done.
///
/// Legitimate creations: 6 (each time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_13_three_concurrent_applies_while_stock_runs_out_create_each_slot_once() {
    for hold_ms in [300, 800] {
        let cloud = Stocked::start(|c| c).await;
        let mut log = Log::default();
        log.note(&format!("the second and third stock reads held {hold_ms} ms"));
        cloud.write(&Group::of(6, "[ap-guangzhou-3]"));
        cloud.stock(Z3, S5, None, Some(3));
        let latency = FaultRule::new(Some(Action::DescribeZoneInstanceConfigInfos), FaultKind::Latency);
        let held = FaultRule { latency_ms: Some(hold_ms), ..latency }.after(1).times(2);
        cloud.cloud.emulator.add_fault(held).expect("rule");

        let (a, b, c) = tokio::join!(cloud.apply(), cloud.apply(), cloud.apply());
        for (label, run) in [("apply 1", &a), ("apply 2", &b), ("apply 3", &c)] {
            log.run(label, run);
        }
        let stats = cloud.cloud.emulator.stats();
        log.note(&format!(
            "stock reads held: {:?}; RunInstances on S5 {}, on SA2 {}; RunInstances errors {:?}",
            stats.faults.get("latency"),
            stats.run_instances_on(Z3, S5, HOURLY),
            stats.run_instances_on(Z3, SA2, HOURLY),
            stats.errors.get("RunInstances")
        ));
        assert!(
            stats.faults.get("latency") == Some(&2) && stats.run_instances_on(Z3, SA2, HOURLY) >= 2,
            "the race was not set up (two applies choosing SA2 for the slots S5 took):\n{}",
            log.0
        );
        let want = [(spot(Z3, Z3, S5, HOURLY), 3), (spot(Z3, Z3, SA2, HOURLY), 3)];
        cloud.assert_converged(&log, &want, 6).await;
    }
}

/// (g2) `kill -9` between a create accepted on S5 and the fallback to SA2: 3 S5 are left for
/// 5 wanted; the apply is killed as soon as its first create (which delivered the 3) has been
/// answered, while it waits for them to boot. The re-run counts the 3 and creates only the
/// other 2, on SA2.
///
/// Legitimate creations: 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_13_an_apply_killed_between_a_create_and_its_fallback_reruns_without_duplicates() {
    let cloud = Stocked::start(|c| c.boot_delay(Duration::from_millis(1500))).await;
    let mut log = Log::default();
    cloud.write(&Group::of(5, "[ap-guangzhou-3]"));
    cloud.stock(Z3, S5, None, Some(3));
    let endpoint = cloud.cloud.emulator.endpoint();
    let mut child =
        cvmfleet_command(cloud.cloud.dir.path(), &endpoint, &["apply", "fleet.yaml", "--auto-approve"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn apply");
    let accepted = wait_for(Duration::from_secs(20), || cloud.created() >= 3).await;
    child.kill().expect("kill -9");
    let _ = child.wait();
    let (on_s5, on_sa2) = (cloud.attempts(Z3, S5, HOURLY), cloud.attempts(Z3, SA2, HOURLY));
    log.note(&format!(
        "killed with {} created; RunInstances on S5 {on_s5}, on SA2 {on_sa2}",
        cloud.created()
    ));
    assert!(accepted && on_s5 == 1 && on_sa2 == 0, "not killed between the two creates:\n{}", log.0);
    cloud.setup_apply(&mut log, "re-run").await;
    let want = [(spot(Z3, Z3, S5, HOURLY), 3), (spot(Z3, Z3, SA2, HOURLY), 2)];
    cloud.assert_converged(&log, &want, 5).await;
}

/// (g3) A lost response on the create that took the last stock: 3 S5 left for 4 wanted. Every
/// attempt of that create (the client tries five times) loses its answer, so the apply cannot
/// know what it made and stops; the retries replayed the token whatever the stock, creating
/// nothing. The re-run finds the 3, reads S5 sold out and creates only the fourth, on SA2.
///
/// Legitimate creations: 4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_13_a_lost_response_on_the_last_stock_is_neither_lost_nor_repeated() {
    let cloud = Stocked::start(|c| c).await;
    let mut log = Log::default();
    cloud.write(&Group::of(4, "[ap-guangzhou-3]"));
    cloud.stock(Z3, S5, None, Some(3));
    cloud.cloud.emulator.add_fault(FaultRule::lose_response(Action::RunInstances).times(5)).expect("rule");
    let first = cloud.apply().await;
    log.run("apply whose create loses every answer", &first);
    let stats = cloud.cloud.emulator.stats();
    log.note(&format!(
        "lost responses {:?}; created {}; RunInstances on S5 {}, on SA2 {}",
        stats.faults.get("lose_response"),
        stats.instances_created,
        stats.run_instances_on(Z3, S5, HOURLY),
        stats.run_instances_on(Z3, SA2, HOURLY)
    ));
    assert_eq!(
        (stats.faults.get("lose_response"), stats.instances_created),
        (Some(&5), 3),
        "the create took the last stock and every answer was lost:\n{}",
        log.0
    );
    cloud.setup_apply(&mut log, "re-run").await;
    let want = [(spot(Z3, Z3, S5, HOURLY), 3), (spot(Z3, Z3, SA2, HOURLY), 1)];
    cloud.assert_converged(&log, &want, 4).await;
}
