//! Spot instances the cloud reclaims (issue 14 §1, replaced by the existing drift handling):
//! `watch` names the reason and refills the slot, on spot again when spot has stock and on the
//! on-demand fallback when it has none.

use std::time::Duration;

use cvmfleet_plan::{DesiredFleet, DriftKind, PlanOptions};
use cvmfleet_reconcile::{ClientCloud, ExecOptions, FleetOutcome, Interrupt, WatchOptions, Watcher};
use cvmfleet_sim::{SimCloud, SimConfig};
use cvmfleet_spec::{Capacity, Offering};

use crate::fixtures::one_group_fleet;

const ZONE: &str = "ap-guangzhou-3";

fn spot_first_fleet() -> DesiredFleet {
    let mut fleet = one_group_fleet("spotty", ZONE, 3, &"5".repeat(16));
    let group = &mut fleet.groups[0];
    group.template.instance_type = None;
    let offering = |charge: &str| Offering {
        instance_type: "S5.MEDIUM2".into(),
        charge_type: charge.into(),
        market_options: None,
    };
    group.capacity = Capacity {
        offerings: vec![offering("SPOTPAID"), offering("POSTPAID_BY_HOUR")],
        ..Capacity::default()
    };
    fleet
}

/// A watcher with auto-apply over the simulated cloud.
fn watching(cloud: &SimCloud) -> (ClientCloud, Watcher) {
    let watch_cloud = ClientCloud {
        client: cloud.client().expect("client"),
        exec: ExecOptions::default(),
        unavailable: Default::default(),
    };
    let watcher = Watcher::new(WatchOptions {
        interval: Duration::from_secs(30),
        auto_apply: true,
        plan: PlanOptions::default(),
    });
    (watch_cloud, watcher)
}

fn running(cloud: &SimCloud, charge: &str) -> usize {
    cloud.live().iter().filter(|i| i.instance_state == "RUNNING" && i.instance_charge_type == charge).count()
}

#[tokio::test(start_paused = true)]
async fn a_reclaimed_spot_instance_is_named_and_replaced_by_watch() {
    let cloud = SimCloud::new(SimConfig::default());
    let (watch_cloud, mut watcher) = watching(&cloud);
    let desired = [spot_first_fleet()];
    let report = watcher.cycle(&watch_cloud, &desired, &Interrupt::new()).await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(running(&cloud, "SPOTPAID"), 3);

    // The cloud takes one back; the next cycle says so and refills the slot on spot.
    let victim = cloud.live().into_iter().find(|i| i.instance_state == "RUNNING").expect("one").instance_id;
    assert!(cloud.reclaim_spot(&victim));
    let report = watcher.cycle(&watch_cloud, &desired, &Interrupt::new()).await;
    assert!(report.succeeded(), "{report:?}");
    let missing = report.drift.iter().find(|d| d.kind == DriftKind::Missing).expect("missing drift");
    assert_eq!(missing.observed, "2 present; 1 spot instance(s) reclaimed by the cloud");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(running(&cloud, "SPOTPAID"), 3);

    // Spot runs out and another is reclaimed: the slot goes on demand.
    cloud.set_stock(ZONE, "S5.MEDIUM2", Some("SPOTPAID"), Some(0));
    let victim = cloud
        .live()
        .into_iter()
        .find(|i| i.instance_state == "RUNNING" && i.instance_id != victim)
        .expect("one")
        .instance_id;
    assert!(cloud.reclaim_spot(&victim));
    let report = watcher.cycle(&watch_cloud, &desired, &Interrupt::new()).await;
    assert!(report.succeeded(), "{report:?}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!((running(&cloud, "SPOTPAID"), running(&cloud, "POSTPAID_BY_HOUR")), (2, 1));
    // Five creates in all: three, then one per reclaimed instance; none beyond.
    assert_eq!(cloud.created().len(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_group_nothing_can_place_is_reported_each_cycle_and_placed_when_stock_returns() {
    let cloud = SimCloud::new(SimConfig::default());
    for charge in ["SPOTPAID", "POSTPAID_BY_HOUR"] {
        cloud.set_stock(ZONE, "S5.MEDIUM2", Some(charge), Some(0));
    }
    let (watch_cloud, mut watcher) = watching(&cloud);
    let desired = [spot_first_fleet()];
    for _ in 0..3 {
        let report = watcher.cycle(&watch_cloud, &desired, &Interrupt::new()).await;
        assert_eq!(
            report.fleets[0].outcome,
            FleetOutcome::Unplaced(vec!["spotty/app: 3 in ap-guangzhou-3".into()]),
            "{report:?}"
        );
        assert!(report.fleets[0].backoff.is_none(), "no stock is no failure: tried again next cycle");
        let missing = report.drift.iter().find(|d| d.kind == DriftKind::Missing).expect("missing drift");
        assert_eq!(missing.handling, cvmfleet_plan::Handling::Pending);
    }
    assert!(cloud.created().is_empty());
    assert_eq!(cloud.calls().get(&cvmfleet_wire::Action::RunInstances).map_or(0, |c| c.calls), 0);
    cloud.set_stock(ZONE, "S5.MEDIUM2", Some("POSTPAID_BY_HOUR"), None);
    let report = watcher.cycle(&watch_cloud, &desired, &Interrupt::new()).await;
    assert!(report.succeeded(), "{report:?}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(running(&cloud, "POSTPAID_BY_HOUR"), 3);
    assert_eq!(cloud.created().len(), 3);
}
