//! Watch cycles against the in-process emulator (no paused time: real sockets).

use std::time::Duration;

use cvmfleet_client::{ClientConfig, Credentials, CvmClient};
use cvmfleet_emulator::{DEV_SECRET_ID, DEV_SECRET_KEY, Emulator, EmulatorConfig, TokenMode};
use cvmfleet_plan::{DesiredFleet, PlanOptions};
use cvmfleet_reconcile::{ClientCloud, ExecOptions, Interrupt, WatchOptions, Watcher};
use cvmfleet_wire::api::TerminateInstancesRequest;
use cvmfleet_wire::model::Filter;

use crate::fixtures::one_group_fleet;

fn fleet() -> DesiredFleet {
    one_group_fleet("slots", "ap-guangzhou-3", 3, &"3".repeat(16))
}

/// Regression test for issue 6: the same slot lost out of band again and again (each time the
/// newest instance goes, or an older one does) is replaced every time, never by replaying a
/// live instance's token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_6_the_same_slot_lost_again_and_again_is_replaced_every_time() {
    let emulator = Emulator::start(
        EmulatorConfig::default().instant().terminate_delay(Duration::ZERO).token_mode(TokenMode::Strict),
    )
    .await
    .expect("emulator");
    let client = CvmClient::new(
        ClientConfig::with_endpoint(emulator.endpoint()),
        Credentials::new(DEV_SECRET_ID, DEV_SECRET_KEY),
    )
    .expect("client");
    let options =
        WatchOptions { interval: Duration::from_secs(1), auto_apply: true, plan: PlanOptions::default() };
    let mut watcher = Watcher::new(options);
    let cloud = ClientCloud {
        client: client.clone(),
        exec: ExecOptions { poll_min: Duration::from_millis(20), ..ExecOptions::default() },
        unavailable: Default::default(),
    };
    let desired = [fleet()];
    let list =
        || client.describe_instances_all("ap-guangzhou", vec![Filter::new("tag:cvmfleet:fleet", ["slots"])]);
    for round in 0..6 {
        let report = watcher.cycle(&cloud, &desired, &Interrupt::new()).await;
        assert!(report.succeeded(), "round {round}: {report:?}");
        let mut live = list().await.expect("list");
        live.retain(|i| i.instance_state == "RUNNING");
        assert_eq!(live.len(), 3, "round {round}: {live:#?}");
        // Lose the newest instance on even rounds, the oldest on odd ones.
        live.sort_by(|a, b| (&a.created_time, &a.instance_id).cmp(&(&b.created_time, &b.instance_id)));
        let victim = if round % 2 == 0 { live[2].instance_id.clone() } else { live[0].instance_id.clone() };
        let terminate = TerminateInstancesRequest { instance_ids: vec![victim], ..Default::default() };
        client.call("ap-guangzhou", &terminate).await.expect("terminate");
        emulator.advance_clock(Duration::from_millis(10));
    }
    emulator.shutdown().await.expect("shutdown");
}
