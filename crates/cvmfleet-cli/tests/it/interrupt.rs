//! Ctrl-C during `apply`: the calls in flight finish, nothing new starts, the summary says what
//! was and was not done, the exit code is 1, and a re-run picks up where it stopped (issue 5).

use std::time::Duration;

use cvmfleet_emulator::{Emulator, EmulatorConfig};
use cvmfleet_wire::model::Filter;

use crate::common::{cvmfleet_at, cvmfleet_command, dev_client};

const SPEC: &str = "fleets:
  - name: ctrlc
    region: ap-guangzhou
    defaults: {ImageId: img-pmqg1cw7, InstanceType: S5.MEDIUM2}
    groups:
      - {name: web, replicas: 3, zones: [ap-guangzhou-3, ap-guangzhou-4]}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_after_calls_in_flight_and_a_rerun_finishes() {
    // A long boot delay keeps the apply waiting, where the interrupt lands.
    let emulator = Emulator::start(EmulatorConfig::default().boot_delay(Duration::from_secs(30)))
        .await
        .expect("emulator");
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("fleet.yaml"), SPEC).expect("write");
    let child =
        cvmfleet_command(dir.path(), &emulator.endpoint(), &["apply", "fleet.yaml", "--auto-approve"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn apply");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let sent =
        std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill");
    assert!(sent.success());
    let output =
        tokio::task::spawn_blocking(move || child.wait_with_output()).await.expect("joined").expect("waited");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("Interrupted"), "{stderr}");
    assert!(stdout.contains("Apply INCOMPLETE"), "{stdout}");
    assert!(stderr.contains("run `cvmfleet apply` again"), "{stderr}");

    // The creates were sent before the interrupt: the instances exist, nothing is lost.
    let client = dev_client(&emulator.endpoint());
    let listed = client
        .describe_instances_all("ap-guangzhou", vec![Filter::new("tag:cvmfleet:fleet", ["ctrlc"])])
        .await
        .expect("list");
    assert_eq!(listed.len(), 3);

    // The re-run finds them, creates nothing, and finishes once they run.
    emulator.advance_clock(Duration::from_secs(60));
    let (path, endpoint) = (dir.path().to_owned(), emulator.endpoint());
    let rerun = tokio::task::spawn_blocking(move || {
        cvmfleet_at(&path, &endpoint, &["apply", "fleet.yaml", "--auto-approve"])
    })
    .await
    .expect("joined");
    assert_eq!(rerun.code, 0, "{}", rerun.snapshot(&[]));
    assert_eq!(emulator.stats().instances, 3, "nothing created twice");
    let _ = emulator.shutdown().await;
}
