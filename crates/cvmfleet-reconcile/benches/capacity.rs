//! Capacity-aware placement benchmark (issue 13), against the emulator in-process with
//! Tencent's published rate limits on both ends (RunInstances 10/s, DescribeInstances and
//! DescribeZoneInstanceConfigInfos 40/s per region):
//!
//! 1. **Converge from empty to 1,000 instances over 2 zones** (500 each, one group accepting
//!    S5.MEDIUM2 then SA2.MEDIUM2) with S5.MEDIUM2 sold out in ap-guangzhou-3, as `apply` does
//!    it (observe, read stock, plan, converge): API calls by action, RunInstances attempts and
//!    failures per offering, wall time, against the floor: 10 creates of 100, one stock read
//!    per region and charge type, and one observation. Twice: (a) the stock read shows the sold
//!    out offering; (b) it does not (the cloud refuses creates there while its stock view still
//!    says SELL), so the first round's creates there are refused, marked unavailable and re-sent
//!    to SA2.
//! 2. **`watch`, 30 cycles, one offering refusing creates throughout** (S5.MEDIUM2 in
//!    ap-guangzhou-3, stock read SELL), a group that rebalances (so every cycle would go back
//!    to it), a 200 ms interval and a 1 s TTL: RunInstances attempts on it, against the target
//!    of at most one per TTL; and the same with the memory off (TTL 0), which is the churn loop
//!    the TTL prevents.
//!
//! Run: `cargo bench -p cvmfleet-reconcile --bench capacity`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cvmfleet_client::{ClientConfig, Credentials, CvmClient};
use cvmfleet_emulator::catalog::InstanceTypeSpec;
use cvmfleet_emulator::{
    Catalog, DEV_SECRET_ID, DEV_SECRET_KEY, Emulator, EmulatorConfig, FaultRule, PriceTable, RunningEmulator,
    StockSpec,
};
use cvmfleet_plan::{DesiredFleet, DesiredGroup, DesiredZone, PlanOptions};
use cvmfleet_reconcile::{
    ClientCloud, ExecOptions, Interrupt, PriceCache, Round, Silent, Unavailable, WatchOptions, Watcher,
    converge, observe,
};
use cvmfleet_spec::{Capacity, Offering, OfferingPolicy, ZonePolicy};
use cvmfleet_wire::api::RunInstancesRequest;
use cvmfleet_wire::{Action, codes};

const REGION: &str = "ap-guangzhou";
const Z3: &str = "ap-guangzhou-3";
const Z4: &str = "ap-guangzhou-4";
const S5: &str = "S5.MEDIUM2";
const SA2: &str = "SA2.MEDIUM2";
const HOURLY: &str = "POSTPAID_BY_HOUR";

/// The built-in catalog plus SA2.MEDIUM2, the fallback type.
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

fn hourly(instance_type: &str) -> Offering {
    Offering { instance_type: instance_type.into(), charge_type: HOURLY.into(), market_options: None }
}

/// Fleet `name`: one group `app` of S5.MEDIUM2 then SA2.MEDIUM2 over `zones`.
fn fleet(name: &str, zones: &[(&str, u32)], rebalance: bool) -> DesiredFleet {
    DesiredFleet {
        project: "default".into(),
        name: name.into(),
        region: REGION.into(),
        prune: false,
        allow_deletion: false,
        max_monthly_cost_increase: None,
        orphans: Default::default(),
        groups: vec![DesiredGroup {
            zones: zones
                .iter()
                .map(|(zone, replicas)| DesiredZone {
                    zone: (*zone).into(),
                    replicas: *replicas,
                    subnet_id: None,
                    private_ips: vec![],
                })
                .collect(),
            capacity: Capacity {
                offerings: vec![hourly(S5), hourly(SA2)],
                zone_policy: ZonePolicy::Spread,
                offering_policy: OfferingPolicy::Priority,
                rebalance,
            },
            ..DesiredGroup::new(
                "app",
                RunInstancesRequest { image_id: Some("img-pmqg1cw7".into()), ..Default::default() },
                "c".repeat(16),
            )
        }],
    }
}

fn client(emulator: &RunningEmulator) -> CvmClient {
    CvmClient::new(
        ClientConfig::with_endpoint(emulator.endpoint()),
        Credentials::new(DEV_SECRET_ID, DEV_SECRET_KEY),
    )
    .expect("client")
}

/// The emulator refuses every create of S5.MEDIUM2 in ap-guangzhou-3 (its stock read still
/// says SELL).
fn refusing_s5_in_z3() -> FaultRule {
    FaultRule {
        count: u32::MAX,
        ..FaultRule::error(
            Action::RunInstances,
            codes::RESOURCES_SOLD_OUT_SPECIFIED_INSTANCE_TYPE,
            "S5.MEDIUM2 (POSTPAID_BY_HOUR) in ap-guangzhou-3 is sold out.",
        )
        .when("InstanceType", S5)
        .when("Placement.Zone", Z3)
    }
}

/// RunInstances attempts per offering the emulator saw, with their errors.
fn run_instances(emulator: &RunningEmulator) -> String {
    let stats = emulator.stats();
    let attempts: Vec<String> = stats.run_instances.iter().map(|(k, n)| format!("{k} {n}")).collect();
    format!(
        "RunInstances by offering: {}; RunInstances errors: {:?}",
        attempts.join(", "),
        stats.errors.get("RunInstances").cloned().unwrap_or_default()
    )
}

async fn thousand(label: &str, seen_by_stock_read: bool) {
    let emulator =
        Emulator::start(EmulatorConfig::default().instant().catalog(catalog())).await.expect("emulator");
    if seen_by_stock_read {
        emulator.set_stock(&[StockSpec::new(Z3, S5, None, Some(0))]).expect("stock");
    } else {
        emulator.add_fault(refusing_s5_in_z3()).expect("rule");
    }
    let fleets = vec![fleet("bench-cap", &[(Z3, 500), (Z4, 500)], false)];
    let options = PlanOptions::default();

    // The floor's observation: one observation of the empty fleet, on its own client.
    let probe = client(&emulator);
    observe(&probe, &fleets).await.expect("observe");
    let observation_floor = probe.call_counts();

    let client = client(&emulator);
    let memory = Unavailable::default();
    let started = Instant::now();
    let prices = PriceCache::new();
    let first = Round::new(options, &prices).memory(&memory).plan(&client, &fleets).await.expect("round");
    let done = converge(
        &client,
        &fleets,
        options,
        first,
        &ExecOptions::default(),
        &Silent,
        &|_, _| {},
        &Interrupt::new(),
        &memory,
        &prices,
    )
    .await;
    let wall = started.elapsed();
    assert!(done.stop.is_none(), "{:?}", done.stop);
    let stats = emulator.stats();
    assert_eq!((stats.instances, stats.instances_created), (1000, 1000), "exactly the spec");
    let calls = client.stats();
    let rounds = done.reports.len();
    println!(
        "(1{label}) 1,000 instances over 2 zones, S5.MEDIUM2 sold out in ap-guangzhou-3, {rounds} round(s):"
    );
    println!("    wall {:.2} s (instant boot: the API cost alone)", wall.as_secs_f64());
    println!("    API calls: {:?}", calls.attempts);
    println!("    client-side errors: {:?}; throttled {}", calls.errors, calls.throttled);
    println!("    {}", run_instances(&emulator));
    println!(
        "    floor: RunInstances 10 (5 pools of 100 per zone), DescribeZoneInstanceConfigInfos 1 (1 region x 1 charge type), \
         observation {:?}; RunInstances floor time at 10/s: ~1 s",
        observation_floor
    );
    let _ = emulator.shutdown().await;
}

async fn watch_sold_out(label: &str, ttl: Duration, cycles: usize) {
    let emulator =
        Emulator::start(EmulatorConfig::default().instant().catalog(catalog())).await.expect("emulator");
    emulator.add_fault(refusing_s5_in_z3()).expect("rule");
    let fleets = vec![fleet("bench-watch", &[(Z3, 10)], true)];
    let client = client(&emulator);
    let memory = Arc::new(Unavailable::new(ttl));
    let cloud =
        ClientCloud { client: client.clone(), exec: ExecOptions::default(), unavailable: memory.clone() };
    let interval = Duration::from_millis(200);
    let mut watcher = Watcher::new(WatchOptions {
        interval,
        auto_apply: true,
        plan: PlanOptions { max_terminations_per_group: Some(10), ..Default::default() },
    });
    let interrupt = Interrupt::new();
    let started = Instant::now();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut rng = 11u64;
    for _ in 0..cycles {
        let report = watcher.cycle(&cloud, &fleets, &interrupt).await;
        for f in &report.fleets {
            let kind = format!("{:?}", f.outcome);
            let kind = kind.split(['(', ' ']).next().unwrap_or_default().to_owned();
            *outcomes.entry(kind).or_default() += 1;
        }
        tokio::time::sleep(watcher.next_delay(next(&mut rng))).await;
    }
    let elapsed = started.elapsed();
    let stats = emulator.stats();
    let on_it = stats.run_instances_on(Z3, S5, HOURLY);
    let bound = if ttl.is_zero() {
        "no bound (memory off)".to_owned()
    } else {
        format!("target <= {} (one per TTL)", (elapsed.as_secs_f64() / ttl.as_secs_f64()).ceil())
    };
    let live = stats.instances;
    println!(
        "(2{label}) watch, {cycles} cycles in {:.1} s, interval {} ms, TTL {} ms, S5.MEDIUM2 refusing in ap-guangzhou-3 throughout, rebalance on:",
        elapsed.as_secs_f64(),
        interval.as_millis(),
        ttl.as_millis()
    );
    println!("    RunInstances attempts on it: {on_it}; {bound}");
    println!("    {}; instances created {}, held {live}", run_instances(&emulator), stats.instances_created);
    println!("    fleet outcomes per cycle: {outcomes:?}; API calls: {:?}", client.stats().attempts);
    let _ = emulator.shutdown().await;
}

/// A small deterministic generator (splitmix64) for the watcher's jitter.
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
        thousand("a", true).await;
        thousand("b", false).await;
        watch_sold_out("a", Duration::from_secs(1), 30).await;
        watch_sold_out("b", Duration::ZERO, 30).await;
    });
}
