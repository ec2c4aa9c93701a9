//! Deterministic simulation of exactly-once (issue 9): the real planner, observer, executor,
//! converge loop and client, several applies at once, against an in-process cloud with
//! ClientToken semantics, paging and lifecycle (`cvmfleet-sim`), on tokio's paused clock.
//!
//! One *schedule* is one seed. The seed decides the fleet (groups, zones, sizes from 1 to over
//! 200 instances so that pools and multi-page listings occur), the specs applied one after the
//! other (scale up, scale down, a new image rolled out under random surge/unavailability
//! bounds), how many applies run at once (1 to 4) and when each starts, which are killed and
//! when (a dropped future: SIGKILL between or inside API calls, before or after the cloud
//! acted), the cloud's faults (latency that reorders every call, throttling, errors, resets,
//! lost responses, failed launches, lenient or strict tokens), and out-of-band terminations
//! during the run (which also make listings race with changes). Then the faults stop and one
//! apply converges the fleet.
//!
//! After every schedule the checker reads the cloud's record of every instance it ever created
//! and asserts, per launch template: created ≤ what an ideal reconciler needs (the sum of the
//! group's size increases over the specs applied, plus every instance of that template lost
//! out of band or failed to launch); and that the fleet converged to exactly the last spec.
//!
//! Issue 13 adds [`CI_STOCK_SCHEDULES`] *scarce-stock* schedules ([`Schedule::with_stock`]):
//! the same schedules, but the groups accept offerings (spot first or not, two hourly types,
//! `spread` or `priority`, with or without `rebalance`), stock starts short or sold out in some
//! offerings and runs out or returns while the applies run, and accepted creates in low-stock
//! offerings may end `LAUNCH_FAILED`. The checker counts by home zone (an instance may run
//! elsewhere while its home is short) and allows, under `rebalance`, one replacement per
//! instance made on a fallback placement.
//!
//! `cargo test` runs [`CI_SCHEDULES`] schedules over two threads. `CVMFLEET_SIM_SCHEDULES=N`
//! runs more, `CVMFLEET_SIM_FIRST=S` starts at another seed, and `CVMFLEET_SIM_SEED=S` replays
//! one schedule (printing what it did); a failure prints the seed to replay. The scarce-stock
//! test reads the same variables with `STOCK_` after `SIM_` (`CVMFLEET_SIM_STOCK_SEED`, …).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use cvmfleet_client::CvmClient;
use cvmfleet_plan::observed::tags;
use cvmfleet_plan::token::pool_tag_zone;
use cvmfleet_plan::{DesiredFleet, DesiredGroup, DesiredZone, PlanOptions};
use cvmfleet_reconcile::{ExecOptions, Interrupt, PriceCache, Round, Silent, Unavailable, converge};
use cvmfleet_sim::{Catalog, FaultConfig, SimCloud, SimConfig, TokenMode};
use cvmfleet_spec::policy::Amount;
use cvmfleet_spec::{Capacity, GroupPolicies, Offering, OfferingPolicy, Rollout, ZonePolicy};
use cvmfleet_wire::api::RunInstancesRequest;
use cvmfleet_wire::model::VirtualPrivateCloud;

/// Schedules `cargo test --workspace` explores (issue 9 asks for at least 10,000).
const CI_SCHEDULES: u64 = 10_000;

/// Scarce-stock schedules `cargo test --workspace` explores (issue 13).
const CI_STOCK_SCHEDULES: u64 = 2_000;

const REGION: &str = "ap-guangzhou";
const ZONES: [&str; 3] = ["ap-guangzhou-3", "ap-guangzhou-4", "ap-guangzhou-6"];
const IMAGES: [&str; 3] = ["img-pmqg1cw7", "img-8toqc6s3", "img-9qabwvbn"];

/// Issue 20: the simulation is the emulator's world, which checks images, types and subnets
/// against its catalog. The schedules run on the built-in catalog extended, as an emulator's
/// `--catalog` file in `extend` mode would, with this fixture's third image, its second type and
/// one subnet per zone of `vpc-2zxc8w1p` (the built-in ones kept), each a /20: the largest fleets
/// (230 replicas in a zone, twice that during a rollout) outgrow the built-in /24 subnets.
const CATALOG: &str = r#"{
  "images": [{"image_id": "img-9qabwvbn", "image_name": "sim", "os_name": "sim", "platform": "TencentOS"}],
  "instance_types": [{"instance_type": "SA2.MEDIUM2", "cpu": 2, "memory": 2}],
  "vpcs": [{"vpc_id": "vpc-2zxc8w1p", "region": "ap-guangzhou", "cidr": "10.0.0.0/16", "subnets": [
    {"subnet_id": "subnet-f2c0w6j1", "zone": "ap-guangzhou-2", "cidr": "10.0.0.0/24"},
    {"subnet_id": "subnet-g3a1x7k2", "zone": "ap-guangzhou-3", "cidr": "10.0.1.0/24"},
    {"subnet_id": "subnet-h4b2y8m3", "zone": "ap-guangzhou-4", "cidr": "10.0.2.0/24"},
    {"subnet_id": "subnet-00000001", "zone": "ap-guangzhou-3", "cidr": "10.0.16.0/20"},
    {"subnet_id": "subnet-00000002", "zone": "ap-guangzhou-4", "cidr": "10.0.32.0/20"},
    {"subnet_id": "subnet-00000003", "zone": "ap-guangzhou-6", "cidr": "10.0.48.0/20"}
  ]}]
}"#;

fn catalog() -> Catalog {
    Catalog::builtin().apply_json(CATALOG, std::path::Path::new("sim.rs")).expect("the fixture's catalog")
}

/// One spec of the fleet: per group, its size and image, and its rollout bounds.
#[derive(Debug, Clone)]
struct Spec {
    groups: Vec<GroupSpec>,
    /// Issue 13: the groups accept these offerings under this zone policy (else one type).
    offerings: Option<Offerings>,
}

/// How a scarce-stock schedule's groups choose where to launch.
#[derive(Debug, Clone)]
struct Offerings {
    list: Vec<Offering>,
    zone_policy: ZonePolicy,
    rebalance: bool,
}

/// The offerings a scarce-stock schedule draws from: spot first, then two hourly types.
fn offering(instance_type: &str, charge_type: &str) -> Offering {
    Offering { instance_type: instance_type.into(), charge_type: charge_type.into(), market_options: None }
}

#[derive(Debug, Clone)]
struct GroupSpec {
    name: String,
    zones: Vec<&'static str>,
    replicas: u32,
    image: usize,
    rollout: Rollout,
}

/// The replacement hash cvmfleet would tag an image's instances with (any stable text will
/// do: the planner treats it as opaque).
fn template_tag(image: usize) -> String {
    format!("{:016x}", 0xc0ffee_u64 + image as u64)
}

impl Spec {
    fn desired(&self) -> Vec<DesiredFleet> {
        let groups = self
            .groups
            .iter()
            .map(|g| {
                let k = g.zones.len() as u32;
                let priority = self.offerings.as_ref().is_some_and(|o| o.zone_policy == ZonePolicy::Priority);
                let zones = g
                    .zones
                    .iter()
                    .enumerate()
                    .map(|(i, zone)| DesiredZone {
                        zone: (*zone).into(),
                        replicas: if priority {
                            if i == 0 { g.replicas } else { 0 }
                        } else {
                            g.replicas / k + u32::from((i as u32) < g.replicas % k)
                        },
                        subnet_id: Some(format!("subnet-{:08}", i + 1)),
                        private_ips: vec![],
                    })
                    .collect();
                DesiredGroup {
                    zones,
                    max_terminate_percent: 100,
                    policies: GroupPolicies { rollout: g.rollout, ..Default::default() },
                    capacity: self
                        .offerings
                        .as_ref()
                        .map(|o| Capacity {
                            offerings: o.list.clone(),
                            zone_policy: o.zone_policy,
                            offering_policy: OfferingPolicy::Priority,
                            rebalance: o.rebalance,
                        })
                        .unwrap_or_default(),
                    ..DesiredGroup::new(
                        g.name.clone(),
                        RunInstancesRequest {
                            image_id: Some(IMAGES[g.image].into()),
                            instance_type: self.offerings.is_none().then(|| "S5.MEDIUM2".into()),
                            instance_name: Some(g.name.clone()),
                            security_group_ids: Some(vec!["sg-5ld3mz1q".into()]),
                            virtual_private_cloud: Some(VirtualPrivateCloud {
                                vpc_id: "vpc-2zxc8w1p".into(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                        template_tag(g.image),
                    )
                }
            })
            .collect();
        vec![DesiredFleet {
            project: "default".into(),
            name: "sim".into(),
            region: REGION.into(),
            prune: true,
            allow_deletion: true,
            groups,
            orphans: Default::default(),
            max_monthly_cost_increase: None,
        }]
    }
}

/// Everything a seed decides.
#[derive(Debug)]
struct Schedule {
    seed: u64,
    specs: Vec<Spec>,
    /// Per spec: the applies, as (start offset, kill after).
    applies: Vec<Vec<(Duration, Option<Duration>)>>,
    faults: FaultConfig,
    token_mode: TokenMode,
    /// Out-of-band terminations: (time since the phase started, phase).
    chaos: Vec<(Duration, usize)>,
    /// Issue 13: stock at the start, as (zone, instance type, charge type, available).
    stock: Vec<StockSetting>,
    /// Stock changes during the run: (time since the phase started, phase, setting).
    stock_events: Vec<(Duration, usize, StockSetting)>,
    /// Share of accepted creates in a low-stock offering whose stock vanishes (LAUNCH_FAILED).
    low_stock_launch_failure_rate: f64,
}

/// An offering's stock: (zone, instance type, charge type, available; `None` unlimited).
type StockSetting = (&'static str, &'static str, &'static str, Option<u64>);

fn millis(rng: &mut fastrand::Rng, max: u64) -> Duration {
    Duration::from_millis(rng.u64(0..=max))
}

impl Schedule {
    fn from_seed(seed: u64) -> Schedule {
        let mut rng = fastrand::Rng::with_seed(seed);
        let large = rng.u8(0..100) < 4;
        let groups = if large { 1 } else { rng.usize(1..=2) };
        let mut first = Vec::new();
        for g in 0..groups {
            let zones = ZONES[..rng.usize(1..=2)].to_vec();
            let replicas = if large { rng.u32(95..=230) } else { rng.u32(1..=9) };
            // Large groups roll a quarter or more at a time (one at a time would take hundreds
            // of rounds); small ones by count, zero included.
            let rollout = if large {
                Rollout {
                    max_surge: Amount::Percent(rng.u8(25..=50)),
                    max_unavailable: Amount::Percent(rng.u8(0..=25)),
                }
            } else {
                Rollout {
                    max_surge: Amount::Count(rng.u32(0..=2)),
                    max_unavailable: Amount::Count(rng.u32(0..=2)),
                }
            };
            // A rollout needs room to move: surge or unavailability.
            let rollout =
                if rollout.max_surge == Amount::Count(0) && rollout.max_unavailable == Amount::Count(0) {
                    Rollout { max_surge: Amount::Count(1), ..rollout }
                } else {
                    rollout
                };
            first.push(GroupSpec { name: format!("g{g}"), zones, replicas, image: 0, rollout });
        }
        let mut specs = vec![Spec { groups: first, offerings: None }];
        for _ in 0..rng.usize(0..=2) {
            let mut next = specs.last().cloned().unwrap_or_else(|| unreachable!());
            for g in &mut next.groups {
                match rng.u8(0..3) {
                    0 => g.replicas = if large { rng.u32(95..=230) } else { rng.u32(0..=9) },
                    1 => g.image = (g.image + 1).min(IMAGES.len() - 1),
                    _ => {}
                }
            }
            specs.push(next);
        }
        let applies = specs
            .iter()
            .map(|_| {
                (0..rng.usize(1..=4))
                    .map(|_| {
                        let start = millis(&mut rng, 2_000);
                        let kill = (rng.u8(0..100) < 35).then(|| millis(&mut rng, 20_000));
                        (start, kill)
                    })
                    .collect()
            })
            .collect();
        let calm = rng.u8(0..100) < 15;
        let rate = |rng: &mut fastrand::Rng, max: f64| if calm { 0.0 } else { rng.f64() * max };
        let faults = FaultConfig {
            latency_max: millis(&mut rng, 400),
            throttle_rate: rate(&mut rng, 0.1),
            error_rate: rate(&mut rng, 0.05),
            reset_rate: rate(&mut rng, 0.05),
            lose_response_rate: rate(&mut rng, 0.1),
            launch_failure_rate: rate(&mut rng, 0.08),
        };
        let token_mode = if rng.bool() { TokenMode::Strict } else { TokenMode::Lenient };
        // Out-of-band terminations mostly while the applies run (their listings and plans then
        // race with them), some later.
        let chaos = (0..rng.usize(0..=5))
            .map(|_| {
                let window = if rng.u8(0..4) == 0 { 30_000 } else { 8_000 };
                (millis(&mut rng, window), rng.usize(0..specs.len()))
            })
            .collect();
        Schedule {
            seed,
            specs,
            applies,
            faults,
            token_mode,
            chaos,
            stock: Vec::new(),
            stock_events: Vec::new(),
            low_stock_launch_failure_rate: 0.0,
        }
    }

    /// Issue 13: the schedule of `seed` with offerings and scarce stock. The groups accept
    /// spot and two hourly types (or two hourly types), under `spread` or `priority`, with or
    /// without `rebalance`; stock starts short in some offerings and runs out, or returns,
    /// while the applies run. (Drawn from a second generator, so `from_seed` is unchanged.)
    fn with_stock(seed: u64) -> Schedule {
        let mut schedule = Schedule::from_seed(seed);
        let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed_0013);
        let mut list =
            vec![offering("S5.MEDIUM2", "POSTPAID_BY_HOUR"), offering("SA2.MEDIUM2", "POSTPAID_BY_HOUR")];
        if rng.bool() {
            list.insert(0, offering("S5.MEDIUM2", "SPOTPAID"));
        }
        let offerings = Offerings {
            list: list.clone(),
            zone_policy: if rng.u8(0..3) == 0 { ZonePolicy::Priority } else { ZonePolicy::Spread },
            rebalance: rng.bool(),
        };
        for spec in &mut schedule.specs {
            spec.offerings = Some(offerings.clone());
        }
        let pick = |rng: &mut fastrand::Rng| -> StockSetting {
            let o = &list[rng.usize(0..list.len())];
            let instance_type: &'static str =
                if o.instance_type == "S5.MEDIUM2" { "S5.MEDIUM2" } else { "SA2.MEDIUM2" };
            let charge: &'static str =
                if o.charge_type == "SPOTPAID" { "SPOTPAID" } else { "POSTPAID_BY_HOUR" };
            let available = match rng.u8(0..4) {
                0 => None,
                1 => Some(0),
                _ => Some(rng.u64(0..=12)),
            };
            (ZONES[rng.usize(0..2)], instance_type, charge, available)
        };
        schedule.stock = (0..rng.usize(1..=4)).map(|_| pick(&mut rng)).collect();
        schedule.stock_events = (0..rng.usize(0..=4))
            .map(|_| (millis(&mut rng, 8_000), rng.usize(0..schedule.specs.len()), pick(&mut rng)))
            .collect();
        schedule.low_stock_launch_failure_rate = if rng.bool() { rng.f64() * 0.3 } else { 0.0 };
        schedule
    }
}

/// One apply as an operator's pipeline runs it: plan, then converge; re-run (at most three
/// times) when a run stops before converging, as `cvmfleet apply` would be.
async fn apply(client: CvmClient, desired: Vec<DesiredFleet>) -> bool {
    apply_traced(client, desired, &mut String::new()).await
}

async fn apply_traced(client: CvmClient, desired: Vec<DesiredFleet>, trace: &mut String) -> bool {
    let options = PlanOptions { allow_mass_termination: true, ..PlanOptions::default() };
    // One memory of unavailable offerings per apply process, as `cvmfleet apply` keeps.
    let unavailable = Unavailable::default();
    let prices = PriceCache::new();
    for _ in 0..3 {
        let round = Round::new(options, &prices).memory(&unavailable);
        let plan = match round.plan(&client, &desired).await {
            Ok(plan) => plan,
            Err(error) => {
                let _ = writeln!(trace, "apply: round failed: {}", cvmfleet_reconcile::error_chain(&error));
                continue;
            }
        };
        if plan.is_empty() {
            return true;
        }
        let outcome = converge(
            &client,
            &desired,
            options,
            plan,
            &ExecOptions::default(),
            &Silent,
            &|_, _| {},
            &Interrupt::new(),
            &unavailable,
            &prices,
        )
        .await;
        if outcome.is_converged() {
            return true;
        }
        let _ = writeln!(trace, "apply: stopped after {} rounds: {:?}", outcome.reports.len(), outcome.stop);
        for report in &outcome.reports {
            for failure in &report.failures {
                let _ = writeln!(trace, "  failed: {}", cvmfleet_reconcile::error_chain(failure));
            }
        }
    }
    false
}

/// What a schedule did, for the checker and for replays.
struct Outcome {
    trace: String,
    failure: Option<String>,
}

async fn run(schedule: &Schedule) -> Outcome {
    let mut trace = String::new();
    let cloud = SimCloud::new(SimConfig {
        seed: schedule.seed,
        token_mode: schedule.token_mode,
        faults: schedule.faults.clone(),
        low_stock_launch_failure_rate: schedule.low_stock_launch_failure_rate,
        catalog: catalog(),
        ..SimConfig::default()
    });
    let _ = writeln!(trace, "seed {} {:?} {:?}", schedule.seed, schedule.token_mode, schedule.faults);
    for (at, phase, setting) in &schedule.stock_events {
        let _ = writeln!(trace, "stock event phase {phase} at {at:?}: {setting:?}");
    }
    for (zone, instance_type, charge, available) in &schedule.stock {
        cloud.set_stock(zone, instance_type, Some(charge), *available);
        let _ = writeln!(trace, "stock {zone} {instance_type} {charge} {available:?}");
    }
    for (phase, spec) in schedule.specs.iter().enumerate() {
        let desired = spec.desired();
        let _ = writeln!(trace, "phase {phase}: {:?}", spec.groups);
        let mut tasks = tokio::task::JoinSet::new();
        for (start, kill) in &schedule.applies[phase] {
            let (client, desired, start, kill) =
                (cloud.client().expect("client"), desired.clone(), *start, *kill);
            tasks.spawn(async move {
                tokio::time::sleep(start).await;
                match kill {
                    Some(after) => tokio::time::timeout(after, apply(client, desired)).await.unwrap_or(false),
                    None => apply(client, desired).await,
                }
            });
        }
        let chaos: Vec<Duration> =
            schedule.chaos.iter().filter(|(_, p)| *p == phase).map(|(at, _)| *at).collect();
        let (chaos_cloud, mut chaos_rng) =
            (cloud.clone(), fastrand::Rng::with_seed(schedule.seed ^ phase as u64));
        tasks.spawn(async move {
            let mut elapsed = Duration::ZERO;
            let mut at: Vec<Duration> = chaos;
            at.sort();
            for when in at {
                tokio::time::sleep(when.saturating_sub(elapsed)).await;
                elapsed = when;
                let live: Vec<String> = chaos_cloud
                    .live()
                    .into_iter()
                    .filter(|i| i.instance_state != "TERMINATING")
                    .map(|i| i.instance_id)
                    .collect();
                if !live.is_empty() {
                    chaos_cloud.terminate_out_of_band(&live[chaos_rng.usize(0..live.len())]);
                }
            }
            true
        });
        let events: Vec<(Duration, StockSetting)> = schedule
            .stock_events
            .iter()
            .filter(|(_, p, _)| *p == phase)
            .map(|(at, _, s)| (*at, *s))
            .collect();
        let stock_cloud = cloud.clone();
        tasks.spawn(async move {
            let mut elapsed = Duration::ZERO;
            let mut events = events;
            events.sort_by_key(|(at, _)| *at);
            for (when, (zone, instance_type, charge, available)) in events {
                tokio::time::sleep(when.saturating_sub(elapsed)).await;
                elapsed = when;
                stock_cloud.set_stock(zone, instance_type, Some(charge), available);
            }
            true
        });
        while tasks.join_next().await.is_some() {}
    }
    // The faults stop and stock returns; one apply of the last spec must converge the fleet.
    cloud.calm();
    for (zone, instance_type, charge) in cloud.stock().into_keys() {
        cloud.set_stock(&zone, &instance_type, Some(&charge), None);
    }
    let last = schedule.specs.last().unwrap_or_else(|| unreachable!());
    // Instances created before the faults stopped may still fail to launch after this apply
    // saw them PENDING: once they have settled, a second apply replaces them.
    apply_traced(cloud.client().expect("client"), last.desired(), &mut trace).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let converged = apply_traced(cloud.client().expect("client"), last.desired(), &mut trace).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let failure = check(&cloud, schedule, converged);
    if failure.is_some() {
        for c in cloud.created() {
            let _ = writeln!(
                trace,
                "created {} {:?} {:?} at {:?} {} {} {} token {:?} pool {:?} failed {} live {}",
                c.instance_id,
                c.tags.get(tags::GROUP),
                c.tags.get(tags::TEMPLATE),
                c.created_at,
                c.zone,
                c.instance_type,
                c.charge_type,
                c.client_token,
                c.tags.get(tags::POOL),
                c.launch_failed,
                cloud.get(&c.instance_id).map(|i| i.instance_state).unwrap_or_default()
            );
        }
        for i in cloud.live() {
            let _ = writeln!(
                trace,
                "live {} {} {} {:?} {:?} {:?}",
                i.instance_id,
                i.placement.zone,
                i.instance_state,
                i.tag(tags::GROUP),
                i.tag(tags::TEMPLATE),
                i.tag(tags::POOL)
            );
        }
    }
    let _ = writeln!(
        trace,
        "created {} lost {} calls {:?}",
        cloud.created().len(),
        cloud.lost().len(),
        cloud.calls()
    );
    Outcome { trace, failure }
}

/// The checker: no instance beyond what the specs and the losses justify, and the fleet is
/// exactly the last spec.
fn check(cloud: &SimCloud, schedule: &Schedule, converged: bool) -> Option<String> {
    let created = cloud.created();
    let lost: std::collections::BTreeSet<String> = cloud.lost().into_iter().map(|l| l.instance_id).collect();
    // Per (group, template): instances created, and instances lost or failed.
    let mut made: BTreeMap<(String, String), (u32, u32)> = BTreeMap::new();
    for c in &created {
        let key = (
            c.tags.get(tags::GROUP).cloned().unwrap_or_default(),
            c.tags.get(tags::TEMPLATE).cloned().unwrap_or_default(),
        );
        let entry = made.entry(key).or_default();
        entry.0 += 1;
        if c.launch_failed || lost.contains(&c.instance_id) {
            entry.1 += 1;
        }
    }
    // What an ideal reconciler needs per (group, template): the sum of the size increases
    // over the specs, counting a new template as starting from zero.
    let mut needed: BTreeMap<(String, String), u32> = BTreeMap::new();
    let mut size: BTreeMap<(String, String), u32> = BTreeMap::new();
    for spec in &schedule.specs {
        for g in &spec.groups {
            let key = (g.name.clone(), template_tag(g.image));
            let before = size.get(&key).copied().unwrap_or(0);
            if g.replicas > before {
                *needed.entry(key.clone()).or_default() += g.replicas - before;
            }
            size.insert(key, g.replicas);
        }
    }
    // Issue 13: under `rebalance: true`, an instance made on a fallback placement (a later
    // offering than the first, or outside its home zone) may be replaced once by the
    // preferred one, as a rolling replacement the spec asks for.
    let rebalance = schedule.specs.iter().filter_map(|s| s.offerings.as_ref()).find(|o| o.rebalance);
    let live_ids: std::collections::BTreeSet<String> =
        cloud.live().into_iter().map(|i| i.instance_id).collect();
    let mut rebalanced: BTreeMap<(String, String), u32> = BTreeMap::new();
    if let Some(offerings) = rebalance {
        let first = &offerings.list[0];
        for c in &created {
            let home = c.tags.get(tags::POOL).and_then(|p| pool_tag_zone(p));
            let fallback = c.instance_type != first.instance_type
                || c.charge_type != first.charge_type
                || home.is_some_and(|h| h != c.zone);
            if fallback
                && !c.launch_failed
                && !lost.contains(&c.instance_id)
                && !live_ids.contains(&c.instance_id)
            {
                let key = (
                    c.tags.get(tags::GROUP).cloned().unwrap_or_default(),
                    c.tags.get(tags::TEMPLATE).cloned().unwrap_or_default(),
                );
                *rebalanced.entry(key).or_default() += 1;
            }
        }
    }
    for (key, (count, gone)) in &made {
        let gone = gone + rebalanced.get(key).copied().unwrap_or(0);
        let allowed = needed.get(key).copied().unwrap_or(0) + gone;
        if *count > allowed {
            return Some(format!(
                "group {} template {}: {count} instances created, {allowed} justified ({} by the specs, {gone} lost, failed or rebalanced)",
                key.0,
                key.1,
                needed.get(key).copied().unwrap_or(0)
            ));
        }
    }
    if !converged {
        return Some("the final apply did not converge".into());
    }
    let last = schedule.specs.last().unwrap_or_else(|| unreachable!());
    // Failed launches stay listed until the cloud removes them; they never ran.
    let live: Vec<_> = cloud
        .live()
        .into_iter()
        .filter(|i| !matches!(i.instance_state.as_str(), "TERMINATING" | "LAUNCH_FAILED"))
        .collect();
    for group in &last.desired()[0].groups {
        for zone in &group.zones {
            // By home zone: the zone its pool tag names (an instance may run elsewhere while its
            // home zone is short, issue 13), else the zone it runs in.
            let home = |i: &cvmfleet_wire::model::Instance| {
                i.tag(tags::POOL).and_then(pool_tag_zone).unwrap_or(&i.placement.zone).to_owned()
            };
            let here = live
                .iter()
                .filter(|i| i.tag(tags::GROUP) == Some(group.name.as_str()) && home(i) == zone.zone)
                .collect::<Vec<_>>();
            let current = here
                .iter()
                .filter(|i| i.tag(tags::TEMPLATE) == Some(group.replacement_hash.as_str()))
                .count();
            if here.len() != zone.replicas as usize || current != here.len() {
                return Some(format!(
                    "group {} zone {}: {} live ({current} current) where the spec wants {}",
                    group.name,
                    zone.zone,
                    here.len(),
                    zone.replicas
                ));
            }
        }
    }
    let spec_groups: Vec<&str> = last.groups.iter().map(|g| g.name.as_str()).collect();
    if let Some(stray) = live.iter().find(|i| !i.tag(tags::GROUP).is_some_and(|g| spec_groups.contains(&g))) {
        return Some(format!("instance {} of no group in the spec is still there", stray.instance_id));
    }
    None
}

fn run_seed(seed: u64) -> Outcome {
    run_schedule(Schedule::from_seed(seed))
}

fn run_stock_seed(seed: u64) -> Outcome {
    run_schedule(Schedule::with_stock(seed))
}

fn run_schedule(schedule: Schedule) -> Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    runtime.block_on(async {
        // A schedule that livelocks would advance paused time forever: bound it.
        match tokio::time::timeout(Duration::from_secs(6 * 3600), run(&schedule)).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome {
                trace: String::new(),
                failure: Some("did not finish in 6 hours of simulated time".into()),
            },
        }
    })
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Issue 9: seeded schedules of concurrent, killed and faulted applies never create an
/// instance beyond the spec and always converge.
#[test]
fn issue_9_no_schedule_creates_beyond_the_spec() {
    run_many("", CI_SCHEDULES, run_seed);
}

/// Issue 13: the same, with offerings and scarce stock — sold-out and short offerings, stock
/// that runs out or returns while concurrent, killed and faulted applies fall back over spot,
/// two types and the group's zones, and creates whose stock vanishes after acceptance. Every
/// instance the cloud ever made is counted.
#[test]
fn issue_13_no_schedule_with_scarce_stock_creates_beyond_the_spec() {
    run_many("STOCK_", CI_STOCK_SCHEDULES, run_stock_seed);
}

/// Runs `CVMFLEET_SIM_{prefix}SCHEDULES` (default `default`) schedules from
/// `CVMFLEET_SIM_{prefix}FIRST` over two threads, or replays `CVMFLEET_SIM_{prefix}SEED`.
fn run_many(prefix: &str, default: u64, runner: fn(u64) -> Outcome) {
    let var = |name: &str| env_u64(&format!("CVMFLEET_SIM_{prefix}{name}"));
    if let Some(seed) = var("SEED") {
        let outcome = runner(seed);
        println!("{}", outcome.trace);
        assert!(outcome.failure.is_none(), "seed {seed}: {}", outcome.failure.unwrap_or_default());
        return;
    }
    let count = var("SCHEDULES").unwrap_or(default);
    let first = var("FIRST").unwrap_or(0);
    let threads = 2;
    let started = std::time::Instant::now();
    let failures: Vec<(u64, String)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut failed = Vec::new();
                    let mut seed = first + t;
                    while seed < first + count {
                        if let Some(why) = runner(seed).failure {
                            failed.push((seed, why));
                        }
                        seed += threads;
                    }
                    failed
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("worker")).collect()
    });
    println!("{count} schedules from seed {first} in {:.1}s", started.elapsed().as_secs_f64());
    let report: Vec<String> = failures
        .iter()
        .take(10)
        .map(|(seed, why)| format!("seed {seed}: {why} (replay: CVMFLEET_SIM_{prefix}SEED={seed} cargo test -p cvmfleet-reconcile --test it sim)"))
        .collect();
    assert!(failures.is_empty(), "{} of {count} schedules failed:\n{}", failures.len(), report.join("\n"));
}

/// A schedule replays exactly: the same seed, the same calls and the same instances.
#[test]
fn a_seed_replays_exactly() {
    for seed in [7, 1234] {
        let (a, b) = (run_seed(seed), run_seed(seed));
        assert_eq!(a.trace, b.trace, "seed {seed}");
    }
}

/// Schedules that once failed, kept as regressions (issue 9). Seed 22900: 96 live instances
/// plus a dozen lingering failed launches made a pool's re-read two pages, and a paging race
/// created one instance too many; re-reads now ask for the live states only.
#[test]
fn issue_9_schedules_that_once_failed() {
    const SEEDS: &[u64] = &[22_900];
    for &seed in SEEDS {
        let outcome = run_seed(seed);
        assert!(outcome.failure.is_none(), "seed {seed}: {}", outcome.failure.unwrap_or_default());
    }
}
