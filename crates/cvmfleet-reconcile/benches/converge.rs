//! Reconciler benchmark against the emulator (issue 5), in-process, release build:
//!
//! 1. **Plan at scale:** 10,000 instances in 100 fleets (one group of 100 each); one plan of all
//!    of them: DescribeInstances calls and wall time, with Tencent's published rate limits on
//!    both ends, and with both lifted (to see the reconciler's own cost).
//! 2. **Apply from empty to 1,000 instances:** four groups over two zones; RunInstances calls
//!    per group and zone (target ⌈n/100⌉) and wall time against the lower bound set by the
//!    RunInstances rate (10/s) and the boot delay.
//! 3. **Refill after losses (issue 9):** three instances of that fleet, in three different
//!    pools, terminated out of band; one plan and apply: the listing's DescribeInstances, the
//!    verification re-reads (one per pool created in, since the listing spans pages), and
//!    RunInstances, against the floor (the listing plus one RunInstances per pool).
//! 4. Peak memory of the whole process (VmHWM), which includes the emulator.
//!
//! Run: `cargo bench -p cvmfleet-reconcile --bench converge`
//! (`BENCH_BOOT_DELAY_MS` sets the boot delay of part 2, default 5000).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cvmfleet_client::{ClientConfig, Credentials, CvmClient, RateLimit};
use cvmfleet_emulator::{DEV_SECRET_ID, DEV_SECRET_KEY, Emulator, EmulatorConfig, RunningEmulator};
use cvmfleet_plan::{DesiredFleet, DesiredGroup, DesiredZone, PlanOptions, plan};
use cvmfleet_reconcile::{ExecOptions, Interrupt, Silent, execute, observe};
use cvmfleet_wire::Action;
use cvmfleet_wire::api::{RunInstancesRequest, TerminateInstancesRequest};

fn group(name: &str, zones: &[(&str, u32)]) -> DesiredGroup {
    DesiredGroup {
        zones: zones
            .iter()
            .map(|(zone, replicas)| DesiredZone {
                zone: (*zone).into(),
                replicas: *replicas,
                subnet_id: None,
                private_ips: vec![],
            })
            .collect(),
        ..DesiredGroup::new(
            name,
            RunInstancesRequest {
                image_id: Some("img-pmqg1cw7".into()),
                instance_type: Some("S5.MEDIUM2".into()),
                ..Default::default()
            },
            format!("{:0>16}", name.len()),
        )
    }
}

fn fleet(name: String, groups: Vec<DesiredGroup>) -> DesiredFleet {
    DesiredFleet {
        project: "default".into(),
        name,
        region: "ap-guangzhou".into(),
        prune: false,
        allow_deletion: false,
        groups,
        orphans: Default::default(),
        max_monthly_cost_increase: None,
    }
}

fn client(emulator: &RunningEmulator, unlimited: bool) -> CvmClient {
    let mut config = ClientConfig::with_endpoint(emulator.endpoint());
    if unlimited {
        config.rate_limits = Action::ALL.into_iter().map(|a| (a, RateLimit::unlimited())).collect();
    }
    CvmClient::new(config, Credentials::new(DEV_SECRET_ID, DEV_SECRET_KEY)).expect("client")
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

async fn plan_at_scale(rate_limited: bool) {
    let emulator = Emulator::start(EmulatorConfig::default().instant().rate_limits(rate_limited))
        .await
        .expect("emulator");
    let fleets: Vec<DesiredFleet> = (0..100)
        .map(|i| fleet(format!("fleet-{i:03}"), vec![group("app", &[("ap-guangzhou-3", 100)])]))
        .collect();

    // Populate through the reconciler itself (without client limits when the emulator has none).
    let filler = client(&emulator, !rate_limited);
    let empty = observe(&filler, &fleets).await.expect("observe");
    let fill = plan(&fleets, &empty, PlanOptions::default());
    let report = execute(&filler, &fill, &ExecOptions::default(), &Silent, &Interrupt::new()).await;
    assert!(report.is_complete(), "{:?}", report.failures);
    assert_eq!(report.created.len(), 10_000);

    let measured = client(&emulator, !rate_limited);
    let started = Instant::now();
    let observed = observe(&measured, &fleets).await.expect("observe");
    let observe_time = started.elapsed();
    let result = plan(&fleets, &observed, PlanOptions::default());
    let total = started.elapsed();
    assert!(result.is_empty(), "no changes expected");
    let calls = measured.call_counts();
    println!(
        "plan, 10,000 instances in 100 fleets, {}: {} DescribeInstances calls, observe {:.0} ms, \
         plan {:.1} ms, total {:.0} ms",
        if rate_limited { "published rate limits (40/s)" } else { "rate limits lifted" },
        calls.get(&Action::DescribeInstances).copied().unwrap_or(0),
        observe_time.as_secs_f64() * 1000.0,
        (total - observe_time).as_secs_f64() * 1000.0,
        total.as_secs_f64() * 1000.0,
    );
    let _ = emulator.shutdown().await;
}

async fn apply_thousand(boot_delay: Duration) {
    let emulator = Emulator::start(EmulatorConfig::default().boot_delay(boot_delay)).await.expect("emulator");
    let zones = ["ap-guangzhou-3", "ap-guangzhou-4"];
    let sizes = [("a", 200u32), ("b", 150), ("c", 100), ("d", 50)];
    let groups: Vec<DesiredGroup> =
        sizes.iter().map(|(n, per_zone)| group(n, &[(zones[0], *per_zone), (zones[1], *per_zone)])).collect();
    let fleets = vec![fleet("thousand".into(), groups)];
    let client = client(&emulator, false);

    let started = Instant::now();
    let observed = observe(&client, &fleets).await.expect("observe");
    let result = plan(&fleets, &observed, PlanOptions::default());
    let report = execute(&client, &result, &ExecOptions::default(), &Silent, &Interrupt::new()).await;
    let wall = started.elapsed();
    assert!(report.is_complete(), "{:?}", report.failures);
    assert_eq!(report.created.len(), 1000);

    let mut per_group_zone: BTreeMap<(String, String), u32> = BTreeMap::new();
    for g in &result.fleets[0].groups {
        for c in &g.creates {
            *per_group_zone.entry((g.name.clone(), c.zone.clone())).or_default() += 1;
        }
    }
    let expected: u32 = sizes.iter().map(|(_, n)| 2 * n.div_ceil(100)).sum();
    let calls = client.call_counts();
    let runs = calls.get(&Action::RunInstances).copied().unwrap_or(0);
    // Lower bound: the RunInstances bucket (10/s, burst 1) sends the last call (runs-1)/10 s
    // after the first, and that call's instances take the boot delay to run.
    let bound = Duration::from_millis((runs.saturating_sub(1)) * 100) + boot_delay;
    println!(
        "apply 0 -> 1,000 instances (4 groups x 2 zones): RunInstances {runs} (expected sum of ceil(n/100) = {expected}; \
         per group and zone {per_group_zone:?}), DescribeInstances {}, DescribeInstancesStatus {}; \
         wall {:.2} s, lower bound {:.2} s, ratio {:.2}",
        calls.get(&Action::DescribeInstances).copied().unwrap_or(0),
        calls.get(&Action::DescribeInstancesStatus).copied().unwrap_or(0),
        wall.as_secs_f64(),
        bound.as_secs_f64(),
        wall.as_secs_f64() / bound.as_secs_f64(),
    );
    refill_after_losses(&client, &fleets).await;
    let _ = emulator.shutdown().await;
}

/// Part 3: three instances of three different pools lost out of band, then one refill.
async fn refill_after_losses(client: &CvmClient, fleets: &[DesiredFleet]) {
    let observed = observe(client, fleets).await.expect("observe");
    let mut victims: BTreeMap<(String, String), String> = BTreeMap::new();
    for i in &observed["thousand"].instances {
        let pool = i.pool.clone().unwrap_or_default();
        victims.entry((i.group.clone().unwrap_or_default(), pool)).or_insert_with(|| i.id.clone());
    }
    let victims: Vec<String> = victims.into_values().step_by(4).take(3).collect();
    let request = TerminateInstancesRequest { instance_ids: victims.clone(), ..Default::default() };
    client.call("ap-guangzhou", &request).await.expect("terminate");
    loop {
        let states = client.describe_statuses("ap-guangzhou", &victims).await.expect("status");
        if states.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    client.take_stats();
    let started = Instant::now();
    let observed = observe(client, fleets).await.expect("observe");
    let listing = client.call_counts().get(&Action::DescribeInstances).copied().unwrap_or(0);
    let result = plan(fleets, &observed, PlanOptions::default());
    let report = execute(client, &result, &ExecOptions::default(), &Silent, &Interrupt::new()).await;
    assert!(report.is_complete(), "{:?}", report.failures);
    assert_eq!(report.created.len(), 3);
    let calls = client.call_counts();
    let runs = calls.get(&Action::RunInstances).copied().unwrap_or(0);
    println!(
        "refill 3 lost instances of 3 pools in the 1,000-instance fleet: DescribeInstances {listing} \
         (10 listing pages + {} verification re-reads), RunInstances {runs}, DescribeInstancesStatus {}; \
         floor {} calls (listing + one RunInstances per pool), {} made; wall {:.2} s",
        listing.saturating_sub(10),
        calls.get(&Action::DescribeInstancesStatus).copied().unwrap_or(0),
        10 + runs,
        listing + runs,
        started.elapsed().as_secs_f64(),
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let boot_ms: u64 = std::env::var("BENCH_BOOT_DELAY_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(5000);
    runtime.block_on(async {
        plan_at_scale(true).await;
        plan_at_scale(false).await;
        apply_thousand(Duration::from_millis(boot_ms)).await;
    });
    println!("peak memory (VmHWM, emulator included): {:.0} MiB", peak_rss_mib());
}
