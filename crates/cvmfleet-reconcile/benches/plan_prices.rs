//! What pricing adds to a plan (issue 14), against the emulator in-process with Tencent's
//! published rate limits on both ends (InquiryPriceRunInstances 10/s, DescribeInstances 40/s):
//! 100 fleets × 100 instances in one region, each fleet one group over two zones.
//!
//! Two fleet sets: (a) *shared settings*: the fleets use four instance types and otherwise the
//! same launch settings, so fleets share quotes; (b) *distinct settings*: every fleet has its
//! own system disk size, so none shares (the bound's worst case, 2 zones × 100 fleets). For
//! each: observing and planning (for scale), then pricing the unchanged plan with a fresh
//! cache and with a warm one, and a scale-up plan (+1 instance per fleet) with the warm cache:
//! InquiryPriceRunInstances calls and added wall time, and the plan's cost line.
//!
//! Run: `cargo bench -p cvmfleet-reconcile --bench plan_prices`

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cvmfleet_client::{ClientConfig, Credentials, CvmClient};
use cvmfleet_emulator::{DEV_SECRET_ID, DEV_SECRET_KEY, Emulator, EmulatorConfig, RunningEmulator};
use cvmfleet_plan::render::cost_line;
use cvmfleet_plan::{
    DesiredFleet, DesiredGroup, DesiredZone, ObservedFleet, Plan, PlanOptions, plan, plan_priced,
};
use cvmfleet_reconcile::{ExecOptions, Interrupt, PriceCache, Silent, execute, observe};
use cvmfleet_wire::Action;
use cvmfleet_wire::api::RunInstancesRequest;
use cvmfleet_wire::model::SystemDisk;

const TYPES: [&str; 4] = ["S5.MEDIUM2", "S5.MEDIUM4", "SA2.MEDIUM4", "S5.LARGE8"];

fn fleet(i: usize, replicas: u32, distinct: bool) -> DesiredFleet {
    let system_disk = distinct.then(|| SystemDisk {
        disk_type: Some("CLOUD_PREMIUM".into()),
        disk_size: Some(50 + 10 * i64::try_from(i).unwrap_or(0)),
        disk_id: None,
    });
    let zone = |zone: &str, replicas| DesiredZone {
        zone: zone.into(),
        replicas,
        subnet_id: None,
        private_ips: vec![],
    };
    DesiredFleet {
        project: "bench".into(),
        name: format!("f{i:03}"),
        region: "ap-guangzhou".into(),
        prune: false,
        allow_deletion: false,
        orphans: Default::default(),
        max_monthly_cost_increase: None,
        groups: vec![DesiredGroup {
            zones: vec![zone("ap-guangzhou-3", replicas.div_ceil(2)), zone("ap-guangzhou-4", replicas / 2)],
            ..DesiredGroup::new(
                "app",
                RunInstancesRequest {
                    image_id: Some("img-pmqg1cw7".into()),
                    instance_type: Some(TYPES[i % TYPES.len()].into()),
                    system_disk,
                    instance_name: Some(format!("f{i:03}-app")),
                    ..Default::default()
                },
                "0".repeat(16),
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

/// Prices the plan of `fleets` and `observed` as a round does (the unpriced plan's quotes
/// through `cache`, then the plan made with them): quotes sent, wall time, the priced plan.
async fn priced(
    client: &CvmClient,
    cache: &PriceCache,
    fleets: &[DesiredFleet],
    observed: &BTreeMap<String, ObservedFleet>,
) -> (u64, Duration, Plan) {
    let before = client.call_counts().get(&Action::InquiryPriceRunInstances).copied().unwrap_or(0);
    let started = Instant::now();
    let needed =
        cvmfleet_plan::cost::quotes(&plan(fleets, observed, PlanOptions::default()), fleets, observed);
    let book = cache.book(client, &needed).await;
    let made = plan_priced(fleets, observed, &book, PlanOptions::default());
    let took = started.elapsed();
    let after = client.call_counts().get(&Action::InquiryPriceRunInstances).copied().unwrap_or(0);
    (after - before, took, made)
}

async fn scenario(label: &str, distinct: bool) {
    let emulator = Emulator::start(EmulatorConfig::default().instant()).await.expect("emulator");
    let now = client(&emulator);
    let fleets: Vec<DesiredFleet> = (0..100).map(|i| fleet(i, 100, distinct)).collect();
    let empty = observe(&now, &fleets).await.expect("observe");
    let fill = plan(&fleets, &empty, PlanOptions::default());
    let report = execute(&now, &fill, &ExecOptions::default(), &Silent, &Interrupt::new()).await;
    assert!(report.is_complete(), "{:?}", report.failures);
    assert_eq!(report.created.len(), 10_000);

    let started = Instant::now();
    let observed = observe(&now, &fleets).await.expect("observe");
    let made = plan(&fleets, &observed, PlanOptions::default());
    let planning = started.elapsed();
    assert!(made.is_empty(), "no changes expected");
    let needed = cvmfleet_plan::cost::quotes(&made, &fleets, &observed).len();

    let cache = PriceCache::new();
    let (fresh_calls, fresh_time, made) = priced(&now, &cache, &fleets, &observed).await;
    assert!(made.warnings.is_empty(), "{:?}", made.warnings);
    let line = cost_line(&made).unwrap_or_default();
    let (warm_calls, warm_time, _) = priced(&now, &cache, &fleets, &observed).await;

    let grown: Vec<DesiredFleet> = (0..100).map(|i| fleet(i, 101, distinct)).collect();
    let (up_calls, up_time, scale_up) = priced(&now, &cache, &grown, &observed).await;
    let up_line = cost_line(&scale_up).unwrap_or_default();

    println!("{label}:");
    println!("  observe + plan: {:.2} s; configurations to price: {needed}", planning.as_secs_f64());
    println!(
        "  fresh cache: {fresh_calls} InquiryPriceRunInstances in {:.2} s (+{:.0} % of observe + plan)",
        fresh_time.as_secs_f64(),
        100.0 * fresh_time.as_secs_f64() / planning.as_secs_f64()
    );
    println!("  warm cache:  {warm_calls} calls in {:.1} ms", warm_time.as_secs_f64() * 1000.0);
    println!("  {line}");
    println!(
        "  scale-up (+1 per fleet), warm cache: {up_calls} calls in {:.1} ms",
        up_time.as_secs_f64() * 1000.0
    );
    println!("  {up_line}");
    let _ = emulator.shutdown().await;
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        scenario("(a) 100 fleets x 100 instances, shared settings (4 types)", false).await;
        scenario("(b) 100 fleets x 100 instances, distinct settings per fleet", true).await;
    });
}
