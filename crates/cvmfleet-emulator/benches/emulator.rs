//! Emulator benchmark with 10,000 instances in a persistent state:
//!
//! - RunInstances(InstanceCount=100) per second, filling the state;
//! - memory (resident set growth) per 10,000 instances;
//! - DescribeInstances pages per second (Limit 100, `tag:` filter), one client and four
//!   concurrent ones (the reconciler fetches pages concurrently);
//! - restart time, from a clean snapshot and by replaying the journal.
//!
//! Run in release: `cargo bench -p cvmfleet-emulator --bench emulator`
//! (`BENCH_INSTANCES` changes the fleet size, `BENCH_SECONDS` the length of each read phase).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cvmfleet_emulator::{DEV_SECRET_ID, DEV_SECRET_KEY, Emulator, EmulatorConfig};
use cvmfleet_wire::API_VERSION;
use cvmfleet_wire::api::DescribeInstancesResponse;
use cvmfleet_wire::envelope::{Reply, decode_reply};
use cvmfleet_wire::sign::{self, SecretKey, Tc3Request};
use serde_json::{Value, json};

/// A minimal TC3 POST client.
struct Client {
    http: reqwest::Client,
    host: String,
    key: SecretKey,
}

impl Client {
    async fn call(&self, action: &str, params: &Value) -> Result<Value, String> {
        let bytes = self.call_raw(action, params).await?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        match value["Response"]["Error"]["Code"].as_str() {
            Some(code) => Err(format!("{action}: {code}: {}", value["Response"]["Error"]["Message"])),
            None => Ok(value),
        }
    }

    /// The response body, unparsed.
    async fn call_raw(&self, action: &str, params: &Value) -> Result<Vec<u8>, String> {
        let body = serde_json::to_vec(params).map_err(|e| e.to_string())?;
        let ts = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        let hash = sign::sha256_hex(&body);
        let headers = [("content-type", "application/json"), ("host", self.host.as_str())];
        let request = Tc3Request {
            method: "POST",
            query: "",
            headers: &headers,
            payload_hash: &hash,
            service: "cvm",
            timestamp: ts,
        };
        let authorization = sign::tc3_sign(&request, &self.key).authorization(DEV_SECRET_ID, "cvm");
        let response = self
            .http
            .post(format!("http://{}/", self.host))
            .header("authorization", authorization)
            .header("content-type", "application/json")
            .header("x-tc-action", action)
            .header("x-tc-version", API_VERSION)
            .header("x-tc-timestamp", ts.to_string())
            .header("x-tc-region", "ap-guangzhou")
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Ok(response.bytes().await.map_err(|e| e.to_string())?.to_vec())
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn config(dir: &std::path::Path) -> EmulatorConfig {
    EmulatorConfig::default().rate_limits(false).instant().state_path(dir)
}

/// Fetches every page repeatedly for `seconds`; `parse` decodes each page into the typed
/// response as a client would, otherwise only the bytes are read (the emulator's own
/// throughput).
async fn page_sweeps(
    client: Arc<Client>,
    concurrency: usize,
    pages: u64,
    seconds: u64,
    parse: bool,
) -> Result<f64, String> {
    let filter = json!([{"Name": "tag:cvmfleet:fleet", "Values": ["bench"]}]);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut fetched = 0u64;
    while Instant::now() < deadline {
        // One sweep over every page, `concurrency` requests in flight.
        let mut offset = 0;
        while offset < pages {
            let mut tasks: Vec<tokio::task::JoinHandle<Result<usize, String>>> = Vec::new();
            for _ in 0..concurrency {
                if offset >= pages {
                    break;
                }
                let client = Arc::clone(&client);
                let params = json!({"Filters": filter, "Offset": offset * 100, "Limit": 100});
                tasks.push(tokio::spawn(async move {
                    if parse {
                        // Decoded into the typed response, as cvmfleet's client does.
                        let bytes = client.call_raw("DescribeInstances", &params).await?;
                        match decode_reply::<DescribeInstancesResponse>(&bytes).map_err(|e| e.to_string())? {
                            Reply::Success { data, .. } => Ok(data.instance_set.len()),
                            Reply::Failure(e) => Err(format!("{}: {}", e.code, e.message)),
                        }
                    } else {
                        let bytes = client.call_raw("DescribeInstances", &params).await?;
                        // A full page holds 100 instances, each with one "InstanceId".
                        Ok(bytes.windows(13).filter(|w| w == b"\"InstanceId\":").count())
                    }
                }));
                offset += 1;
            }
            for task in tasks {
                let count: usize = task.await.map_err(|e| e.to_string())??;
                if count != 100 {
                    return Err(format!("a page held {count} instances, not 100"));
                }
                fetched += 1;
            }
        }
    }
    Ok(fetched as f64 / started.elapsed().as_secs_f64())
}

async fn bench() -> Result<(), String> {
    // reqwest is built without a default crypto provider (issue 23 §2).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let instances = env_number("BENCH_INSTANCES", 10_000);
    let seconds = env_number("BENCH_SECONDS", 3);
    let batches = instances / 100;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let emulator = Emulator::start(config(dir.path())).await.map_err(|e| e.to_string())?;
    let client = Arc::new(Client {
        http: reqwest::Client::builder().pool_max_idle_per_host(16).build().map_err(|e| e.to_string())?,
        host: emulator.host(),
        key: SecretKey::new(DEV_SECRET_KEY),
    });
    client.call("DescribeZones", &json!({})).await?;
    let rss_before = rss_kib();

    let started = Instant::now();
    for batch in 0..batches {
        let params = json!({
            "Placement": {"Zone": if batch % 2 == 0 { "ap-guangzhou-3" } else { "ap-guangzhou-4" }},
            "ImageId": "img-pmqg1cw7", "InstanceType": "S5.MEDIUM2", "InstanceCount": 100,
            "InstanceName": format!("bench-{batch}-{{R:1,F:3}}"),
            "ClientToken": format!("bench-{batch}"),
            "InternetAccessible": {"InternetMaxBandwidthOut": 10},
            "SecurityGroupIds": ["sg-5ld3mz1q"],
            "TagSpecification": [{"ResourceType": "instance", "Tags": [
                {"Key": "cvmfleet:fleet", "Value": "bench"}, {"Key": "cvmfleet:spec", "Value": format!("{batch:08x}")}]}],
        });
        client.call("RunInstances", &params).await?;
    }
    let create = started.elapsed();
    let rss_after = rss_kib();
    let stats = emulator.stats();
    if stats.instances != instances {
        return Err(format!("{} instances in the state, expected {instances}", stats.instances));
    }

    let sequential = page_sweeps(Arc::clone(&client), 1, batches, seconds, true).await?;
    let concurrent = page_sweeps(Arc::clone(&client), 4, batches, seconds, true).await?;
    let unparsed = page_sweeps(Arc::clone(&client), 4, batches, seconds, false).await?;

    let addr = emulator.addr();
    emulator.shutdown().await.map_err(|e| e.to_string())?;
    let started = Instant::now();
    let emulator = Emulator::start(config(dir.path()).listen(addr)).await.map_err(|e| e.to_string())?;
    let restart_snapshot = started.elapsed();
    // Pooled connections went with the old server.
    let client =
        Client { http: reqwest::Client::new(), host: emulator.host(), key: SecretKey::new(DEV_SECRET_KEY) };
    if emulator.stats().instances != instances {
        return Err("instances lost across the restart".into());
    }
    // Journal replay: change every instance, then stop without the final snapshot.
    let names = (0..batches).map(|b| format!("bench-{b}")).collect::<Vec<_>>();
    let listed = client.call("DescribeInstances", &json!({"Limit": 100})).await?;
    let ids: Vec<Value> = listed["Response"]["InstanceSet"]
        .as_array()
        .map(|s| s.iter().map(|i| i["InstanceId"].clone()).collect())
        .unwrap_or_default();
    for _ in &names {
        client
            .call("ModifyInstancesAttribute", &json!({"InstanceIds": ids, "DisableApiTermination": false}))
            .await?;
    }
    drop(emulator);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let emulator = Emulator::start(config(dir.path()).listen(addr)).await.map_err(|e| e.to_string())?;
    let restart_journal = started.elapsed();
    emulator.shutdown().await.map_err(|e| e.to_string())?;
    let snapshot_bytes = std::fs::metadata(dir.path().join("snapshot.json")).map(|m| m.len()).unwrap_or(0);

    println!("cvmfleet emulator benchmark, {instances} instances (release: {})", !cfg!(debug_assertions));
    println!(
        "RunInstances(InstanceCount=100):        {:>8.1} calls/s ({:.0} instances/s)",
        batches as f64 / create.as_secs_f64(),
        instances as f64 / create.as_secs_f64()
    );
    println!(
        "memory per {instances} instances:          {:>8.1} MiB (resident set growth)",
        rss_after.saturating_sub(rss_before) as f64 / 1024.0
    );
    println!(
        "DescribeInstances pages/s, 1 client:    {sequential:>8.0} (Limit 100, tag filter, typed decode)"
    );
    println!("DescribeInstances pages/s, 4 clients:   {concurrent:>8.0}");
    println!("  the same, bodies not parsed:          {unparsed:>8.0} (emulator-bound)");
    println!("restart from snapshot:                  {:>8.0} ms", restart_snapshot.as_secs_f64() * 1000.0);
    println!("restart replaying the journal:          {:>8.0} ms", restart_journal.as_secs_f64() * 1000.0);
    println!("snapshot size:                          {:>8.1} MiB", snapshot_bytes as f64 / 1048576.0);
    Ok(())
}

fn main() {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start a runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(bench()) {
        eprintln!("benchmark failed: {e}");
        std::process::exit(1);
    }
}
