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
//! `cargo test` runs [`CI_SCHEDULES`] schedules over two threads. `CVMFLEET_SIM_SCHEDULES=N`
//! runs more, `CVMFLEET_SIM_FIRST=S` starts at another seed, and `CVMFLEET_SIM_SEED=S` replays
//! one schedule (printing what it did); a failure prints the seed to replay.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use cvmfleet_client::CvmClient;
use cvmfleet_plan::observed::tags;
use cvmfleet_plan::{DesiredFleet, DesiredGroup, DesiredZone, PlanOptions};
use cvmfleet_reconcile::{ExecOptions, Interrupt, Silent, converge, observe};
use cvmfleet_sim::{FaultConfig, SimCloud, SimConfig, TokenMode};
use cvmfleet_spec::policy::Amount;
use cvmfleet_spec::{GroupPolicies, Rollout};
use cvmfleet_wire::api::RunInstancesRequest;
use cvmfleet_wire::model::VirtualPrivateCloud;

/// Schedules `cargo test --workspace` explores (issue 9 asks for at least 10,000).
const CI_SCHEDULES: u64 = 10_000;

const REGION: &str = "ap-guangzhou";
const ZONES: [&str; 3] = ["ap-guangzhou-3", "ap-guangzhou-4", "ap-guangzhou-6"];
const IMAGES: [&str; 3] = ["img-pmqg1cw7", "img-8toqc6s3", "img-9qabwvbn"];

/// One spec of the fleet: per group, its size and image, and its rollout bounds.
#[derive(Debug, Clone)]
struct Spec {
    groups: Vec<GroupSpec>,
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
                let zones = g
                    .zones
                    .iter()
                    .enumerate()
                    .map(|(i, zone)| DesiredZone {
                        zone: (*zone).into(),
                        replicas: g.replicas / k + u32::from((i as u32) < g.replicas % k),
                        subnet_id: Some(format!("subnet-{:08}", i + 1)),
                        private_ips: vec![],
                    })
                    .collect();
                DesiredGroup {
                    name: g.name.clone(),
                    template: RunInstancesRequest {
                        image_id: Some(IMAGES[g.image].into()),
                        instance_type: Some("S5.MEDIUM2".into()),
                        instance_name: Some(g.name.clone()),
                        security_group_ids: Some(vec!["sg-5ld3mz1q".into()]),
                        virtual_private_cloud: Some(VirtualPrivateCloud {
                            vpc_id: "vpc-2zxc8w1p".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    password: None,
                    replacement_hash: template_tag(g.image),
                    zones,
                    max_terminate_percent: 100,
                    policies: GroupPolicies { rollout: g.rollout, ..Default::default() },
                    adopt: Vec::new(),
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
}

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
        let mut specs = vec![Spec { groups: first }];
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
        Schedule { seed, specs, applies, faults, token_mode, chaos }
    }
}

/// One apply as an operator's pipeline runs it: plan, then converge; re-run (at most three
/// times) when a run stops before converging, as `cvmfleet apply` would be.
async fn apply(client: CvmClient, desired: Vec<DesiredFleet>) -> bool {
    apply_traced(client, desired, &mut String::new()).await
}

async fn apply_traced(client: CvmClient, desired: Vec<DesiredFleet>, trace: &mut String) -> bool {
    let options = PlanOptions { allow_mass_termination: true, ..PlanOptions::default() };
    for _ in 0..3 {
        let observed = match observe(&client, &desired).await {
            Ok(observed) => observed,
            Err(error) => {
                let _ = writeln!(trace, "apply: observe failed: {}", cvmfleet_reconcile::error_chain(&error));
                continue;
            }
        };
        let plan = cvmfleet_plan::plan(&desired, &observed, options);
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
        ..SimConfig::default()
    });
    let _ = writeln!(trace, "seed {} {:?} {:?}", schedule.seed, schedule.token_mode, schedule.faults);
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
        while tasks.join_next().await.is_some() {}
    }
    // The faults stop; one apply of the last spec must converge the fleet.
    cloud.calm();
    let last = schedule.specs.last().unwrap_or_else(|| unreachable!());
    // Instances created before the faults stopped may still fail to launch after this apply
    // saw them PENDING: once they have settled, a second apply replaces them.
    apply_traced(cloud.client().expect("client"), last.desired(), &mut trace).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let converged = apply_traced(cloud.client().expect("client"), last.desired(), &mut trace).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let failure = check(&cloud, schedule, converged);
    if failure.is_some() {
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
    for (key, (count, gone)) in &made {
        let allowed = needed.get(key).copied().unwrap_or(0) + gone;
        if *count > allowed {
            return Some(format!(
                "group {} template {}: {count} instances created, {allowed} justified ({} by the specs, {gone} lost or failed)",
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
            let here = live
                .iter()
                .filter(|i| i.tag(tags::GROUP) == Some(group.name.as_str()) && i.placement.zone == zone.zone)
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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    let schedule = Schedule::from_seed(seed);
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
    if let Some(seed) = env_u64("CVMFLEET_SIM_SEED") {
        let outcome = run_seed(seed);
        println!("{}", outcome.trace);
        assert!(outcome.failure.is_none(), "seed {seed}: {}", outcome.failure.unwrap_or_default());
        return;
    }
    let count = env_u64("CVMFLEET_SIM_SCHEDULES").unwrap_or(CI_SCHEDULES);
    let first = env_u64("CVMFLEET_SIM_FIRST").unwrap_or(0);
    let threads = 2;
    let started = std::time::Instant::now();
    let failures: Vec<(u64, String)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut failed = Vec::new();
                    let mut seed = first + t;
                    while seed < first + count {
                        if let Some(why) = run_seed(seed).failure {
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
        .map(|(seed, why)| format!("seed {seed}: {why} (replay: CVMFLEET_SIM_SEED={seed} cargo test -p cvmfleet-reconcile --test it sim)"))
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
