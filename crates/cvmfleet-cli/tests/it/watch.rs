//! `drift` and `watch` end to end (issue 6): the real binary against an emulator on a loopback
//! port. Out-of-band changes (terminate, stop, rename, security groups) and emulator faults are
//! detected within one cycle and, under `correct`, converged within two; `report` groups are
//! never touched; a watcher killed mid-cycle and restarted converges without duplicates; the
//! metrics scraped over HTTP hold what the scenario implies.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cvmfleet_emulator::FaultRule;
use cvmfleet_wire::Action;
use cvmfleet_wire::api::{ModifyInstancesAttributeRequest, StopInstancesRequest, TerminateInstancesRequest};
use cvmfleet_wire::model::{Filter, Instance};
use serde_json::Value;

use crate::common::{Cloud, cvmfleet, cvmfleet_command, repo_root};

pub(crate) const REGION: &str = "ap-guangzhou";

/// Fleet `wt`: group `web` under the default policies, group `audit` reporting every kind of
/// drift but `missing` unless `audit_missing` is `report` too.
pub(crate) fn spec(web: u32, web_type: &str, extra: &str, audit_missing: &str) -> String {
    format!(
        "fleets:
  - name: wt
    region: {REGION}
    policies: {{maxTerminatePercent: 100{extra}}}
    defaults: {{ImageId: img-pmqg1cw7, SecurityGroupIds: [sg-5ld3mz1q]}}
    groups:
      - name: web
        replicas: {web}
        zones: [ap-guangzhou-3]
        template: {{InstanceType: {web_type}, InstanceName: web}}
      - name: audit
        replicas: 2
        zones: [ap-guangzhou-4]
        policies:
          drift: {{missing: {audit_missing}, surplus: report, outdated: report, stopped: report, instanceName: report, securityGroups: report}}
        template: {{InstanceType: S5.MEDIUM2, InstanceName: audit}}
"
    )
}

impl Cloud {
    /// Instances of fleet `wt` that count (not leaving, not failed), by group.
    pub(crate) async fn groups(&self) -> BTreeMap<String, Vec<Instance>> {
        let all = self
            .client
            .describe_instances_all(REGION, vec![Filter::new("tag:cvmfleet:fleet", ["wt"])])
            .await
            .expect("describe");
        let mut groups: BTreeMap<String, Vec<Instance>> = BTreeMap::new();
        for i in all {
            if !matches!(i.instance_state.as_str(), "SHUTDOWN" | "TERMINATING" | "LAUNCH_FAILED") {
                groups.entry(i.tag("cvmfleet:group").unwrap_or_default().to_owned()).or_default().push(i);
            }
        }
        groups
    }

    /// Starts `cvmfleet watch fleet.yaml` with a 300 ms interval (unless `extra` gives one) and
    /// JSON logs.
    fn watch(&self, extra: &[&str]) -> Watch {
        let mut args = vec!["watch", "fleet.yaml", "--log-format", "json"];
        if !extra.contains(&"--interval") {
            args.extend(["--interval", "300ms"]);
        }
        args.extend_from_slice(extra);
        Watch::spawn(cvmfleet_command(self.dir.path(), &self.emulator.endpoint(), &args))
    }
}

/// A running watcher and its JSON log.
pub(crate) struct Watch {
    pub(crate) child: Child,
    pub(crate) events: mpsc::Receiver<Value>,
    pub(crate) log: Vec<Value>,
}

impl Watch {
    /// Starts `command` (a `cvmfleet watch ... --log-format json`) and reads its log.
    pub(crate) fn spawn(mut command: std::process::Command) -> Watch {
        let mut child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn watch");
        let stderr = child.stderr.take().expect("stderr");
        let (sender, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let event = serde_json::from_str::<Value>(&line).unwrap_or(Value::String(line));
                if sender.send(event).is_err() {
                    break;
                }
            }
        });
        Watch { child, events, log: Vec::new() }
    }
}

pub(crate) fn message(event: &Value) -> &str {
    event["fields"]["message"].as_str().unwrap_or_default()
}

impl Watch {
    /// Reads the log until `done` holds for an event, or panics after `within`.
    pub(crate) fn until(&mut self, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => {
                    self.log.push(event.clone());
                    if done(&event) {
                        return event;
                    }
                }
                Err(_) => panic!("not seen within {within:?}; log:\n{}", self.dump()),
            }
        }
    }

    /// Waits for the end of a cycle numbered at least `n`; returns its number.
    pub(crate) fn cycle(&mut self, n: u64) -> u64 {
        let event = self.until(Duration::from_secs(30), |e| {
            message(e) == "cycle finished" && e["fields"]["cycle"].as_u64().is_some_and(|c| c >= n)
        });
        event["fields"]["cycle"].as_u64().unwrap_or_default()
    }

    /// Events of cycle `n` with this message.
    pub(crate) fn of_cycle(&self, n: u64, what: &str) -> Vec<&Value> {
        self.log.iter().filter(|e| message(e) == what && e["fields"]["cycle"].as_u64() == Some(n)).collect()
    }

    fn drift_kinds(&self, n: u64, group_fleet: &str) -> Vec<String> {
        self.of_cycle(n, "drift")
            .into_iter()
            .filter(|e| e["fields"]["fleet"].as_str() == Some(group_fleet))
            .filter_map(|e| e["fields"]["kind"].as_str().map(str::to_owned))
            .collect()
    }

    pub(crate) fn dump(&self) -> String {
        self.log.iter().map(Value::to_string).collect::<Vec<_>>().join("\n")
    }

    pub(crate) fn signal(&self, name: &str) {
        let sent = std::process::Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
    }

    pub(crate) fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit code.
    pub(crate) fn stop(mut self) -> Option<i32> {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "watch did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A plain HTTP GET over a TCP socket (the test needs nothing more than a status and a body).
pub(crate) async fn scrape(host: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// The value of a metric line `name{labels} value`, or 0 when absent.
pub(crate) fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_reports_each_kind_and_exits_2() {
    let cloud = Cloud::start().await;
    cloud.write_spec(&spec(2, "S5.MEDIUM2", "", "correct"));
    let before = cloud.run(&["drift", "fleet.yaml"]).await;
    assert_eq!(before.code, 2, "{}", before.snapshot(&[]));
    let applied = cloud.run(&["apply", "fleet.yaml", "--auto-approve"]).await;
    assert_eq!(applied.code, 0, "{}", applied.snapshot(&[]));
    let clean = cloud.run(&["drift", "fleet.yaml"]).await;
    assert_eq!(clean.code, 0, "{}", clean.snapshot(&[]));
    assert!(clean.stdout.contains("No drift. 4 instance(s) match the spec."), "{}", clean.stdout);

    let web = cloud.groups().await["web"].clone();
    let rename = ModifyInstancesAttributeRequest {
        instance_ids: vec![web[0].instance_id.clone()],
        instance_name: Some("hand-edited".into()),
        ..Default::default()
    };
    cloud.client.call(REGION, &rename).await.expect("rename");
    let drifted = cloud.run(&["drift", "fleet.yaml", "--format", "json"]).await;
    assert_eq!(drifted.code, 2);
    let doc: Value = serde_json::from_str(&drifted.stdout).expect("json");
    assert_eq!(doc["drift"][0]["kind"], "instance_name");
    assert_eq!(doc["drift"][0]["handling"], "corrected");
    let markdown = cloud.run(&["drift", "fleet.yaml", "--format", "markdown"]).await;
    assert!(markdown.stdout.contains("| wt | web | ap-guangzhou-3 | instance_name |"), "{}", markdown.stdout);
    // The drift report changes nothing.
    assert_eq!(cloud.run(&["drift", "fleet.yaml"]).await.code, 2);

    let bad = cloud.run(&["drift", "missing.yaml"]).await;
    assert_eq!(bad.code, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_corrects_out_of_band_changes_within_two_cycles_and_leaves_report_groups_alone() {
    let cloud = Cloud::start().await;
    cloud.write_spec(&spec(4, "S5.MEDIUM2", "", "correct"));
    let applied = cloud.run(&["apply", "fleet.yaml", "--auto-approve"]).await;
    assert_eq!(applied.code, 0, "{}", applied.snapshot(&[]));
    cloud.write_spec(&spec(4, "S5.MEDIUM2", "", "report"));
    let mut watch = cloud.watch(&["--auto-apply"]);
    let quiet = watch.cycle(1);
    assert!(watch.of_cycle(quiet, "drift").is_empty(), "{}", watch.dump());

    // Out of band, in both groups: terminate, stop, rename, swap security groups.
    let groups = cloud.groups().await;
    let before_audit = groups["audit"].clone();
    for group in ["web", "audit"] {
        let ids: Vec<String> = groups[group].iter().map(|i| i.instance_id.clone()).collect();
        let terminate =
            TerminateInstancesRequest { instance_ids: vec![ids[0].clone()], ..Default::default() };
        cloud.client.call(REGION, &terminate).await.expect("terminate");
        let stop = StopInstancesRequest { instance_ids: vec![ids[1].clone()], ..Default::default() };
        cloud.client.call(REGION, &stop).await.expect("stop");
        if group == "web" {
            let rename = ModifyInstancesAttributeRequest {
                instance_ids: vec![ids[2].clone()],
                instance_name: Some("hand-edited".into()),
                ..Default::default()
            };
            cloud.client.call(REGION, &rename).await.expect("rename");
            let sgs = ModifyInstancesAttributeRequest {
                instance_ids: vec![ids[3].clone()],
                security_groups: Some(vec!["sg-p1ezv4wz".into()]),
                ..Default::default()
            };
            cloud.client.call(REGION, &sgs).await.expect("security groups");
        }
    }
    let changed_at = watch.cycle(0);
    // The cycle after the one in flight sees everything; the one after that finds nothing left.
    let detect = watch.cycle(changed_at + 1);
    let mut seen: Vec<String> = (changed_at..=detect).flat_map(|c| watch.drift_kinds(c, "wt")).collect();
    seen.sort();
    seen.dedup();
    for kind in ["instance_name", "missing", "security_groups", "stopped"] {
        assert!(
            seen.iter().any(|k| k == kind),
            "{kind} not detected by cycle {detect}: {seen:?}\n{}",
            watch.dump()
        );
    }
    let converged = watch.cycle(detect + 1);
    let _ = watch.cycle(converged + 1);
    let groups = cloud.groups().await;
    let web = &groups["web"];
    assert_eq!(web.len(), 4, "{web:#?}");
    // Names as RunInstances gives them: the template's, numbered when several are made at once.
    assert!(
        web.iter().all(|i| i.instance_state == "RUNNING" && i.instance_name.starts_with("web")),
        "{web:#?}"
    );
    assert!(web.iter().all(|i| i.instance_name != "hand-edited"), "{web:#?}");
    assert!(web.iter().all(|i| i.security_group_ids == ["sg-5ld3mz1q"]), "{web:#?}");
    // The report-only group: still one instance short, the stopped one still stopped.
    let audit = &groups["audit"];
    assert_eq!(audit.len(), 1, "{audit:#?}");
    assert_eq!(audit[0].instance_id, before_audit[1].instance_id);
    assert!(matches!(audit[0].instance_state.as_str(), "STOPPED" | "STOPPING"), "{audit:#?}");
    let remaining: Vec<String> = watch.drift_kinds(converged, "wt");
    assert_eq!(remaining, ["missing", "stopped"], "only the report group's drift is left:\n{}", watch.dump());
    assert_eq!(watch.stop(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_back_off_and_metrics_tell_the_story() {
    let cloud = Cloud::start().await;
    cloud.write_spec(&spec(2, "S5.MEDIUM2", "", "correct"));
    assert_eq!(cloud.run(&["apply", "fleet.yaml", "--auto-approve"]).await.code, 0);
    let mut watch = cloud.watch(&["--auto-apply", "--metrics-addr", "127.0.0.1:0"]);
    let serving = watch.until(Duration::from_secs(10), |e| message(e) == "serving /metrics and /healthz");
    let addr = serving["fields"]["addr"].as_str().expect("addr").to_owned();
    let first = watch.cycle(1);

    // Every attempt of the next listing fails (the client tries five times): the cycle fails
    // and the fleet backs off; then it recovers.
    cloud
        .emulator
        .add_fault(FaultRule::error(Action::DescribeInstances, "InternalError", "injected").times(5))
        .expect("fault");
    let failed = watch.until(Duration::from_secs(10), |e| message(e) == "observing failed");
    assert_eq!(failed["fields"]["failures"], 1, "{failed}");
    let failed_cycle = failed["fields"]["cycle"].as_u64().unwrap_or_default();
    // An instance lost meanwhile, and its first replacement fails to launch: replaced again.
    let web = cloud.groups().await["web"].clone();
    cloud.emulator.add_fault(FaultRule::launch_failures(1)).expect("fault");
    let terminate =
        TerminateInstancesRequest { instance_ids: vec![web[0].instance_id.clone()], ..Default::default() };
    cloud.client.call(REGION, &terminate).await.expect("terminate");
    let applied = watch.until(Duration::from_secs(30), |e| {
        message(e) == "applied" && e["fields"]["created"].as_u64() == Some(1)
    });
    assert!(applied["fields"]["cycle"].as_u64() > Some(failed_cycle));
    let later = watch.cycle(applied["fields"]["cycle"].as_u64().unwrap_or_default() + 1);
    assert!(later > first);
    assert_eq!(cloud.groups().await["web"].len(), 2);

    let (status, text) = scrape(&addr, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(
        metric(&text, "cvmfleet_api_errors_total{action=\"DescribeInstances\",code=\"InternalError\"}"),
        5.0,
        "{text}"
    );
    assert_eq!(metric(&text, "cvmfleet_watch_cycles_total{result=\"failure\"}"), 1.0, "{text}");
    assert!(metric(&text, "cvmfleet_watch_cycles_total{result=\"success\"}") >= 3.0, "{text}");
    assert_eq!(metric(&text, "cvmfleet_actions_total{action=\"create\"}"), 1.0, "{text}");
    assert_eq!(
        metric(&text, "cvmfleet_api_calls_total{action=\"RunInstances\"}"),
        2.0,
        "a first try and one replacement: {text}"
    );
    assert!(
        text.contains("cvmfleet_drift_instances{fleet=\"wt\",kind=\"missing\"} 0"),
        "seen, then gone: {text}"
    );
    assert_eq!(metric(&text, "cvmfleet_fleet_consecutive_failures{fleet=\"wt\"}"), 0.0, "{text}");
    assert!(metric(&text, "cvmfleet_watch_last_success_timestamp_seconds") > 1.0e9, "{text}");
    let (health, body) = scrape(&addr, "/healthz").await;
    assert_eq!((health, body.as_str()), (200, "ok\n"));
    assert_eq!(watch.stop(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_killed_mid_cycle_and_restarted_converges_without_duplicates() {
    // Surplus is only reported here, so a duplicate would stay visible instead of being
    // quietly terminated.
    let cloud = Cloud::start().await;
    let policy = ", drift: {surplus: report}";
    cloud.write_spec(&spec(6, "S5.MEDIUM2", policy, "correct"));
    for kill_after in [Duration::from_millis(60), Duration::from_millis(250)] {
        let watch = cloud.watch(&["--auto-apply"]);
        tokio::time::sleep(kill_after).await;
        watch.kill();
    }
    let mut watch = cloud.watch(&["--auto-apply"]);
    let n = watch.cycle(1);
    let _ = watch.cycle(n + 1);
    watch.kill();
    assert_eq!(cloud.groups().await["web"].len(), 6);

    // A rolling replacement (one instance per step at 25% of 6 = 2), killed mid-step twice.
    cloud.write_spec(&spec(6, "S5.LARGE8", policy, "correct"));
    for kill_after in [Duration::from_millis(150), Duration::from_millis(400)] {
        let watch = cloud.watch(&["--auto-apply"]);
        tokio::time::sleep(kill_after).await;
        watch.kill();
    }
    let mut watch = cloud.watch(&["--auto-apply"]);
    watch.until(Duration::from_secs(60), |e| {
        message(e) == "cycle finished" && e["fields"]["drift"].as_u64() == Some(0)
    });
    assert_eq!(watch.stop(), Some(0));
    cloud.emulator.advance_clock(Duration::from_secs(5));
    let groups = cloud.groups().await;
    let web = &groups["web"];
    assert_eq!(web.len(), 6, "no duplicates: {web:#?}");
    assert!(web.iter().all(|i| i.instance_type == "S5.LARGE8"), "{web:#?}");
    let mut ids: Vec<&str> = web.iter().map(|i| i.instance_id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_that_stops_validating_keeps_its_last_good_version_and_sighup_runs_a_cycle() {
    let cloud = Cloud::start().await;
    cloud.write_spec(&spec(1, "S5.MEDIUM2", "", "correct"));
    let mut watch = cloud.watch(&["--auto-apply", "--interval", "1h"]);
    let first = watch.cycle(1);
    cloud.write_spec("fleets: [{name: wt");
    watch.signal("HUP");
    let second = watch.cycle(first + 1);
    let complained = watch
        .log
        .iter()
        .any(|e| message(e).starts_with("spec does not validate") && e["fields"]["kept_last_good"] == true);
    assert!(complained, "{}", watch.dump());
    assert!(watch.of_cycle(second, "observing failed").is_empty());
    assert_eq!(cloud.groups().await["web"].len(), 1, "the last good spec is still reconciled");
    assert_eq!(watch.stop(), Some(0));
}

#[test]
fn drift_and_watch_help() {
    for args in [&["drift", "--help"][..], &["watch", "--help"]] {
        let run = cvmfleet(repo_root(), args);
        assert_eq!(run.code, 0);
        insta::assert_snapshot!(format!("help_{}", args[0]), run.stdout);
    }
    let bad = cvmfleet(repo_root(), &["watch", "--interval", "10ms"]);
    assert_eq!(bad.code, 1, "a usage error exits 1 (issue 10, item 14)");
    assert!(bad.stderr.contains("at least 100ms"), "{}", bad.stderr);
}
