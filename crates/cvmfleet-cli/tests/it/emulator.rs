//! `cvmfleet emulator` as a process: it prints its endpoint, serves signed requests, stops
//! cleanly on SIGTERM, and loses no acknowledged instance or token when killed with SIGKILL
//! in the middle of a load.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cvmfleet_emulator::{DEV_SECRET_ID, DEV_SECRET_KEY};
use cvmfleet_wire::sign::{self, SecretKey, Tc3Request};
use serde_json::{Value, json};

/// A running `cvmfleet emulator`, killed when dropped.
struct Process {
    child: Child,
    host: String,
}

impl Process {
    fn start(state: &Path, extra: &[&str]) -> Process {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cvmfleet"))
            .args(["emulator", "--listen", "127.0.0.1:0", "--state"])
            .arg(state)
            .args(["--boot-delay", "0", "--no-rate-limits"])
            .args(extra)
            .env_remove("TENCENTCLOUD_SECRET_ID")
            .env_remove("TENCENTCLOUD_SECRET_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cvmfleet emulator starts");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout is piped");
        BufReader::new(stdout).read_line(&mut line).expect("the endpoint line");
        let host = line
            .trim()
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("endpoint line {line:?}"))
            .to_owned();
        Process { child, host }
    }

    fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// One signed TC3 POST over a fresh connection; `None` when the connection fails or closes
/// without an answer.
fn call(host: &str, action: &str, params: &Value) -> Option<Value> {
    let body = params.to_string();
    let ts = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let hash = sign::sha256_hex(body.as_bytes());
    let signed = [("content-type", "application/json"), ("host", host)];
    let request = Tc3Request {
        method: "POST",
        query: "",
        headers: &signed,
        payload_hash: &hash,
        service: "cvm",
        timestamp: ts,
    };
    let authorization =
        sign::tc3_sign(&request, &SecretKey::new(DEV_SECRET_KEY)).authorization(DEV_SECRET_ID, "cvm");
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Authorization: {authorization}\r\nX-TC-Action: {action}\r\nX-TC-Version: 2017-03-12\r\n\
         X-TC-Timestamp: {ts}\r\nX-TC-Region: ap-guangzhou\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut stream = TcpStream::connect(host).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body.as_bytes()).ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let split = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let (status_and_headers, rest) = response.split_at(split);
    let text = String::from_utf8_lossy(status_and_headers);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.to_ascii_lowercase().contains("content-type: application/json\r\n"), "{text}");
    serde_json::from_slice(&rest[4..]).ok()
}

fn ok(reply: Option<Value>) -> Value {
    let reply = reply.expect("an answer");
    assert!(reply["Response"]["Error"].is_null(), "{reply}");
    reply["Response"].clone()
}

#[test]
fn prints_its_endpoint_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut process = Process::start(dir.path(), &[]);
    let zones = ok(call(&process.host, "DescribeZones", &json!({})));
    assert_eq!(zones["TotalCount"], 5);
    let params =
        json!({"Placement": {"Zone": "ap-guangzhou-3"}, "ImageId": "img-pmqg1cw7", "ClientToken": "t-1"});
    let ids = ok(call(&process.host, "RunInstances", &params))["InstanceIdSet"].clone();

    let status =
        Command::new("kill").args(["-TERM", &process.child.id().to_string()]).status().expect("kill runs");
    assert!(status.success());
    let exit = process.child.wait().expect("the emulator exits");
    assert!(exit.success(), "{exit:?}");
    assert!(dir.path().join("snapshot.json").exists());

    let process = Process::start(dir.path(), &[]);
    assert_eq!(ok(call(&process.host, "RunInstances", &params))["InstanceIdSet"], ids);
}

/// Issue #4: the state survives `kill -9` at any moment without losing an acknowledged
/// instance or token. Two clients create instances with fresh ClientTokens as fast as they
/// can; the emulator is killed mid-load, restarted on the same state, killed again, and so
/// on. Every acknowledged token must still answer with its instances, and those instances
/// must still be listed.
#[test]
fn kill_9_mid_load_loses_no_acknowledged_instance_or_token() {
    let dir = tempfile::tempdir().expect("temp dir");
    let acknowledged: Arc<Mutex<BTreeMap<String, Value>>> = Arc::default();
    let mut process = Process::start(dir.path(), &[]);
    for round in 0..6 {
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..2)
            .map(|worker| {
                let (host, stop, acknowledged) = (process.host.clone(), Arc::clone(&stop), Arc::clone(&acknowledged));
                std::thread::spawn(move || {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let token = format!("r{round}-w{worker}-{n}");
                        n += 1;
                        let params = json!({
                            "Placement": {"Zone": "ap-guangzhou-3"}, "ImageId": "img-pmqg1cw7", "InstanceCount": 20,
                            "ClientToken": token,
                            "TagSpecification": [{"ResourceType": "instance", "Tags": [{"Key": "cvmfleet:fleet", "Value": "kill"}]}],
                        });
                        match call(&host, "RunInstances", &params) {
                            Some(reply) if reply["Response"]["Error"].is_null() => {
                                let ids = reply["Response"]["InstanceIdSet"].clone();
                                acknowledged.lock().unwrap_or_else(|e| e.into_inner()).insert(token, ids);
                            }
                            // Killed mid-request: not acknowledged, may or may not exist.
                            _ => break,
                        }
                    }
                })
            })
            .collect();
        let started = Instant::now();
        // Kill after a varying number of acknowledged requests, while both clients are busy.
        while acknowledged.lock().unwrap_or_else(|e| e.into_inner()).len() < 7 * (round + 1) * (round + 1)
            && started.elapsed() < Duration::from_secs(20)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        process.kill_9();
        stop.store(true, Ordering::Relaxed);
        for worker in workers {
            let _ = worker.join();
        }
        process = Process::start(dir.path(), &[]);
    }

    let acknowledged = acknowledged.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(acknowledged.len() >= 7 * 36, "only {} requests were acknowledged", acknowledged.len());
    let listed = ok(call(
        &process.host,
        "DescribeInstances",
        &json!({"Filters": [{"Name": "tag:cvmfleet:fleet", "Values": ["kill"]}], "Limit": 1}),
    ));
    let total = listed["TotalCount"].as_u64().unwrap_or(0);
    assert!(
        total >= 5 * acknowledged.len() as u64,
        "{total} instances for {} acknowledged requests",
        acknowledged.len()
    );
    for (token, ids) in &acknowledged {
        let params = json!({
            "Placement": {"Zone": "ap-guangzhou-3"}, "ImageId": "img-pmqg1cw7", "InstanceCount": 20, "ClientToken": token,
            "TagSpecification": [{"ResourceType": "instance", "Tags": [{"Key": "cvmfleet:fleet", "Value": "kill"}]}],
        });
        assert_eq!(&ok(call(&process.host, "RunInstances", &params))["InstanceIdSet"], ids, "token {token}");
        let described = ok(call(&process.host, "DescribeInstances", &json!({"InstanceIds": ids})));
        assert_eq!(described["TotalCount"], 20, "instances of {token}");
    }
}

#[test]
fn help_is_stable() {
    let output =
        Command::new(env!("CARGO_BIN_EXE_cvmfleet")).args(["emulator", "--help"]).output().expect("runs");
    assert!(output.status.success());
    insta::assert_snapshot!(String::from_utf8_lossy(&output.stdout));
}
