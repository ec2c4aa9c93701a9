//! Observation cost per region, not per fleet (issue 12), against the emulator in-process with
//! Tencent's published rate limits on both ends (DescribeInstances 40/s per region):
//!
//! (a) 500 fleets × 1 instance in one region, (b) 100 fleets × 100 in one region,
//! (c) 10 fleets × 1,000 over 3 regions. For each: DescribeInstances calls and wall time of one
//! observation as cvmfleet makes it now (by project, per region, with the two probes for
//! instances from before projects), against the way it did before (one tag-filtered listing
//! per fleet, replayed here), and the bound Σ_regions ⌈N_r/100⌉ + 2 probes per region.
//!
//! Run: `cargo bench -p cvmfleet-reconcile --bench observe_regions`

use std::time::Instant;

use cvmfleet_client::{ClientConfig, Credentials, CvmClient, RateLimit};
use cvmfleet_emulator::{DEV_SECRET_ID, DEV_SECRET_KEY, Emulator, EmulatorConfig, RunningEmulator};
use cvmfleet_plan::{DesiredFleet, DesiredGroup, PlanOptions, plan};
use cvmfleet_reconcile::{ExecOptions, Interrupt, Silent, execute, observe};
use cvmfleet_wire::Action;
use cvmfleet_wire::api::RunInstancesRequest;
use cvmfleet_wire::model::Filter;

const REGIONS: [(&str, &str); 3] =
    [("ap-guangzhou", "ap-guangzhou-3"), ("ap-shanghai", "ap-shanghai-2"), ("ap-hongkong", "ap-hongkong-2")];

fn fleet(name: String, (region, zone): (&str, &str), replicas: u32) -> DesiredFleet {
    DesiredFleet {
        project: "bench".into(),
        name,
        region: region.into(),
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
                "0".repeat(16),
            )
            .in_zone(zone, replicas),
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

async fn scenario(label: &str, fleets: Vec<DesiredFleet>) {
    // The emulator enforces the published limits; the filler keeps the client's own, so that
    // it is paced rather than refused.
    let emulator = Emulator::start(EmulatorConfig::default().instant()).await.expect("emulator");
    let filler = client(&emulator, false);
    let empty = observe(&filler, &fleets).await.expect("observe");
    let fill = plan(&fleets, &empty, PlanOptions::default());
    let report = execute(&filler, &fill, &ExecOptions::default(), &Silent, &Interrupt::new()).await;
    assert!(report.is_complete(), "{:?}", report.failures);
    let total: u32 = fleets.iter().flat_map(|f| &f.groups).flat_map(|g| &g.zones).map(|z| z.replicas).sum();
    assert_eq!(report.created.len(), total as usize);

    let now = client(&emulator, false);
    let started = Instant::now();
    let observed = observe(&now, &fleets).await.expect("observe");
    let now_time = started.elapsed();
    assert!(plan(&fleets, &observed, PlanOptions::default()).is_empty(), "no changes expected");
    let now_calls = now.call_counts().get(&Action::DescribeInstances).copied().unwrap_or(0);

    // Before: one listing per fleet by its fleet tag, fleets concurrently.
    let before = client(&emulator, false);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for f in &fleets {
        let (client, region, name) = (before.clone(), f.region.clone(), f.name.clone());
        tasks.spawn(async move {
            client.describe_instances_all(&region, vec![Filter::new("tag:cvmfleet:fleet", [name])]).await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task").expect("listing");
    }
    let before_time = started.elapsed();
    let before_calls = before.call_counts().get(&Action::DescribeInstances).copied().unwrap_or(0);

    let mut per_region: std::collections::BTreeMap<&str, u64> = Default::default();
    for f in &fleets {
        *per_region.entry(f.region.as_str()).or_default() += u64::from(f.groups[0].zones[0].replicas);
    }
    let bound: u64 = per_region.values().map(|n| n.div_ceil(100) + 2).sum();
    println!(
        "{label}: now {now_calls} DescribeInstances in {:.2} s (bound Σ⌈N_r/100⌉ + 2 probes per region = {bound}); \
         before {before_calls} in {:.2} s",
        now_time.as_secs_f64(),
        before_time.as_secs_f64()
    );
    let _ = emulator.shutdown().await;
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let a = (0..500).map(|i| fleet(format!("f{i:03}"), REGIONS[0], 1)).collect();
        scenario("(a) 500 fleets x 1 instance, 1 region", a).await;
        let b = (0..100).map(|i| fleet(format!("f{i:03}"), REGIONS[0], 100)).collect();
        scenario("(b) 100 fleets x 100 instances, 1 region", b).await;
        let c = (0..10).map(|i| fleet(format!("f{i:02}"), REGIONS[i % 3], 1000)).collect();
        scenario("(c) 10 fleets x 1,000 instances, 3 regions", c).await;
    });
}
