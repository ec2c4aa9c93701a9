//! Watch benchmark against the emulator (issue 6), in-process, release build:
//!
//! 1. **Cycle at scale:** 10,000 instances in 100 fleets (one group of 100 each), no drift:
//!    one watch cycle's wall time and API calls, with Tencent's published rate limits in the
//!    client (40 DescribeInstances/s: 100 listings need 2.5 s at least), and with them lifted
//!    (the watcher's own cost).
//! 2. **Out-of-band termination to a RUNNING replacement:** a watcher with `--auto-apply` at
//!    a 5 s interval, the emulator's default 3 s boot delay; an instance is terminated at a
//!    random point of the interval and the time until its replacement runs is measured.
//!
//! Run: `cargo bench -p cvmfleet-reconcile --bench watch_cycle` (`BENCH_FLEETS` sets the number
//! of fleets of part 1, default 100; `BENCH_SKIP_SCALE=1` runs part 2 only).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cvmfleet_client::{ClientConfig, Credentials, CvmClient, RateLimit};
use cvmfleet_emulator::{DEV_SECRET_ID, DEV_SECRET_KEY, Emulator, EmulatorConfig, RunningEmulator};
use cvmfleet_plan::{DesiredFleet, DesiredGroup, PlanOptions, plan};
use cvmfleet_reconcile::watch::FleetOutcome;
use cvmfleet_reconcile::{
    ClientCloud, ExecOptions, Interrupt, Silent, WatchOptions, Watcher, execute, observe,
};
use cvmfleet_wire::Action;
use cvmfleet_wire::api::{RunInstancesRequest, TerminateInstancesRequest};
use cvmfleet_wire::model::Filter;

fn fleet(name: String, replicas: u32) -> DesiredFleet {
    DesiredFleet {
        project: "default".into(),
        name,
        region: "ap-guangzhou".into(),
        prune: false,
        allow_deletion: false,
        orphans: Default::default(),
        max_monthly_cost_increase: None,
        groups: vec![
            DesiredGroup::new(
                "app",
                RunInstancesRequest {
                    image_id: Some("img-pmqg1cw7".into()),
                    instance_type: Some("S5.MEDIUM2".into()),
                    ..Default::default()
                },
                "1".repeat(16),
            )
            .in_zone("ap-guangzhou-3", replicas),
        ],
    }
}

fn client(emulator: &RunningEmulator, unlimited: bool) -> CvmClient {
    let mut config = ClientConfig::with_endpoint(emulator.endpoint());
    if unlimited {
        config.rate_limits = Action::ALL.into_iter().map(|a| (a, RateLimit::unlimited())).collect();
    }
    CvmClient::new(config, Credentials::new(DEV_SECRET_ID, DEV_SECRET_KEY)).expect("client")
}

fn options(interval: Duration, auto_apply: bool) -> WatchOptions {
    WatchOptions {
        interval,
        auto_apply,
        plan: PlanOptions { max_terminations_per_group: Some(10), ..Default::default() },
    }
}

async fn cycle_at_scale() {
    let emulator =
        Emulator::start(EmulatorConfig::default().instant().instance_quota(None).rate_limits(false))
            .await
            .expect("emulator");
    let count: usize = std::env::var("BENCH_FLEETS").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let fleets: Vec<DesiredFleet> = (0..count).map(|i| fleet(format!("bench-{i:03}"), 100)).collect();
    let setup = client(&emulator, true);
    let empty = observe(&setup, &fleets).await.expect("observe");
    let started = Instant::now();
    let report = execute(
        &setup,
        &plan(&fleets, &empty, PlanOptions::default()),
        &ExecOptions::default(),
        &Silent,
        &Interrupt::new(),
    )
    .await;
    assert!(report.is_complete(), "{:?}", report.failures);
    println!(
        "populated: {} instances in {} fleets in {:.1} s",
        emulator.stats().instances,
        fleets.len(),
        started.elapsed().as_secs_f64()
    );

    for (label, unlimited) in [("published rate limits", false), ("rate limits lifted", true)] {
        let client = client(&emulator, unlimited);
        let cloud = ClientCloud {
            client: client.clone(),
            exec: ExecOptions::default(),
            unavailable: Default::default(),
        };
        let mut watcher = Watcher::new(options(Duration::from_secs(300), true));
        let mut times = Vec::new();
        let mut calls = BTreeMap::new();
        for _ in 0..5 {
            client.take_stats();
            let started = Instant::now();
            let cycle = watcher.cycle(&cloud, &fleets, &Interrupt::new()).await;
            times.push(started.elapsed());
            assert!(cycle.drift.is_empty() && cycle.succeeded());
            assert!(cycle.fleets.iter().all(|f| f.outcome == FleetOutcome::InSync));
            calls = client.take_stats().attempts;
        }
        times.sort();
        println!(
            "cycle, {} instances / {} fleets, no drift, {label}: median {:.0} ms, min {:.0} ms, max {:.0} ms; API calls per cycle: {:?}",
            fleets.len() * 100,
            fleets.len(),
            times[2].as_secs_f64() * 1000.0,
            times[0].as_secs_f64() * 1000.0,
            times[4].as_secs_f64() * 1000.0,
            calls
        );
    }
    emulator.shutdown().await.expect("shutdown");
}

async fn termination_to_replacement() {
    let boot = Duration::from_secs(3);
    let interval = Duration::from_secs(5);
    let emulator =
        Emulator::start(EmulatorConfig::default().boot_delay(boot).terminate_delay(Duration::from_secs(3)))
            .await
            .expect("emulator");
    let fleets = vec![fleet("bench-oob".into(), 3)];
    let watch_client = client(&emulator, false);
    let probe = client(&emulator, false);
    let cloud =
        ClientCloud { client: watch_client, exec: ExecOptions::default(), unavailable: Default::default() };
    let mut watcher = Watcher::new(options(interval, true));
    let interrupt = Interrupt::new();
    let running = |instances: &[cvmfleet_wire::model::Instance]| {
        instances
            .iter()
            .filter(|i| i.instance_state == "RUNNING")
            .map(|i| i.instance_id.clone())
            .collect::<Vec<_>>()
    };
    let list = || {
        probe.describe_instances_all("ap-guangzhou", vec![Filter::new("tag:cvmfleet:fleet", ["bench-oob"])])
    };
    let watcher_task = tokio::spawn(async move {
        let mut rng = 42u64;
        loop {
            let _ = watcher.cycle(&cloud, &fleets, &interrupt).await;
            tokio::time::sleep(watcher.next_delay(next(&mut rng))).await;
        }
    });
    // Wait for the fleet to run.
    loop {
        let listed = list().await.expect("list");
        if running(&listed).len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut samples = Vec::new();
    let mut rng = 7u64;
    for _ in 0..5 {
        // Terminate at a random point of the interval.
        tokio::time::sleep(interval.mul_f64(next(&mut rng))).await;
        let before = running(&list().await.expect("list"));
        eprintln!("running before: {}", before.len());
        let victim = before[0].clone();
        let terminate =
            TerminateInstancesRequest { instance_ids: vec![victim.clone()], ..Default::default() };
        probe.call("ap-guangzhou", &terminate).await.expect("terminate");
        let started = Instant::now();
        loop {
            let now = running(&list().await.expect("list"));
            if now.len() == 3 && !now.contains(&victim) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        samples.push(started.elapsed());
        eprintln!("trial: {:.2} s", started.elapsed().as_secs_f64());
    }
    watcher_task.abort();
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / u32::try_from(samples.len()).unwrap_or(1);
    println!(
        "out-of-band termination -> replacement RUNNING (interval 5 s ± 10%, boot 3 s): mean {:.2} s, min {:.2} s, max {:.2} s over {} trials",
        mean.as_secs_f64(),
        samples[0].as_secs_f64(),
        samples[samples.len() - 1].as_secs_f64(),
        samples.len()
    );
    emulator.shutdown().await.expect("shutdown");
}

/// A small deterministic generator (splitmix64) for the bench's random points.
fn next(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        if std::env::var_os("BENCH_SKIP_SCALE").is_none() {
            cycle_at_scale().await;
        }
        termination_to_replacement().await;
    });
}
