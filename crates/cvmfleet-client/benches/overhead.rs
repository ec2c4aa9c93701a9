//! Timing loops: the client's own cost per call (serialization + TC3 signing, no network), and
//! the calls per second it sustains against an in-process fake endpoint and against the
//! emulator, both on loopback.
//!
//! `cargo bench -p cvmfleet-client --bench overhead`

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cvmfleet_client::{ClientConfig, Credentials, CvmClient, RateLimit, RequestMethod};
use cvmfleet_emulator::{DEV_SECRET_ID, DEV_SECRET_KEY, Emulator, EmulatorConfig};
use cvmfleet_wire::Action;
use cvmfleet_wire::api::{DescribeInstancesRequest, RunInstancesRequest};
use cvmfleet_wire::model::{DataDisk, Filter, Placement, SystemDisk, Tag, TagSpecification};
use serde_json::json;

#[allow(dead_code)]
#[path = "../tests/it/fake.rs"]
mod fake;

fn run_request() -> RunInstancesRequest {
    RunInstancesRequest {
        instance_charge_type: Some("POSTPAID_BY_HOUR".into()),
        placement: Some(Placement {
            zone: "ap-guangzhou-3".into(),
            project_id: Some(0),
            ..Default::default()
        }),
        instance_type: Some("S5.MEDIUM2".into()),
        image_id: Some("img-pmqg1cw7".into()),
        system_disk: Some(SystemDisk {
            disk_type: Some("CLOUD_PREMIUM".into()),
            disk_size: Some(50),
            ..Default::default()
        }),
        data_disks: Some(vec![DataDisk {
            disk_size: 100,
            disk_type: Some("CLOUD_SSD".into()),
            ..Default::default()
        }]),
        instance_count: Some(10),
        instance_name: Some("web-{R:1}".into()),
        client_token: Some("fleet-web-3f2a9c1d-0001".into()),
        tag_specification: Some(vec![TagSpecification {
            resource_type: "instance".into(),
            tags: vec![Tag::new("fleet", "web"), Tag::new("cvmfleet:spec-hash", "3f2a9c1d")],
        }]),
        ..Default::default()
    }
}

fn per_call<R: cvmfleet_wire::ApiRequest>(client: &CvmClient, request: &R, iterations: u32) -> Duration {
    // Warm up, then time.
    for _ in 0..iterations / 10 {
        black_box(client.sign_request("ap-guangzhou", request).ok());
    }
    let started = Instant::now();
    for _ in 0..iterations {
        black_box(client.sign_request("ap-guangzhou", black_box(request)).ok());
    }
    started.elapsed() / iterations
}

async fn throughput(client: &CvmClient, concurrency: usize, window: Duration) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + window;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let done = done.clone();
        tasks.spawn(async move {
            let ids = vec!["ins-00000001".to_owned()];
            while Instant::now() < deadline {
                if client.describe_statuses("ap-guangzhou", &ids).await.is_ok() {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    let started = Instant::now();
    tasks.join_all().await;
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let credentials = Credentials::new(fake::SECRET_ID, fake::SECRET_KEY);
    let post = CvmClient::new(ClientConfig::default(), credentials.clone()).expect("client");
    let get = CvmClient::new(
        ClientConfig { method: RequestMethod::Get, ..ClientConfig::default() },
        credentials.clone(),
    )
    .expect("client");
    let describe = DescribeInstancesRequest {
        filters: Some(vec![Filter::new("tag:fleet", ["web"]), Filter::new("zone", ["ap-guangzhou-3"])]),
        offset: Some(0),
        limit: Some(100),
        ..Default::default()
    };
    let run = run_request();
    let n = 50_000;
    println!("serialize + sign, per call (mean of {n}):");
    println!("  DescribeInstances POST  {:>8.2?}", per_call(&post, &describe, n));
    println!("  RunInstances      POST  {:>8.2?}", per_call(&post, &run, n));
    println!("  RunInstances      GET   {:>8.2?}", per_call(&get, &run, n));

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let server = fake::Fake::start(|_, _| {
            fake::success(json!({"TotalCount": 1, "InstanceStatusSet": [{"InstanceId": "ins-00000001", "InstanceState": "RUNNING"}]}), "r")
        })
        .await;
        let config = ClientConfig {
            rate_limits: Action::ALL.map(|a| (a, RateLimit::unlimited())).into(),
            ..ClientConfig::with_endpoint(server.endpoint())
        };
        let client = CvmClient::new(config, credentials).expect("client");
        println!("DescribeInstancesStatus against an in-process fake on loopback (rate limits off):");
        for concurrency in [1, 8, 32] {
            let rate = throughput(&client, concurrency, Duration::from_secs(2)).await;
            println!("  {concurrency:>2} in flight: {rate:>8.0} calls/s");
        }
        let limited = CvmClient::new(
            ClientConfig::with_endpoint(server.endpoint()),
            Credentials::new(fake::SECRET_ID, fake::SECRET_KEY),
        )
        .expect("client");
        let rate = throughput(&limited, 32, Duration::from_secs(2)).await;
        println!("  32 in flight, published limit (40/s): {rate:>6.1} calls/s");

        let emulator =
            Emulator::start(EmulatorConfig::default().instant().rate_limits(false)).await.expect("emulator");
        let config = ClientConfig {
            rate_limits: Action::ALL.map(|a| (a, RateLimit::unlimited())).into(),
            ..ClientConfig::with_endpoint(emulator.endpoint())
        };
        let client = CvmClient::new(config, Credentials::new(DEV_SECRET_ID, DEV_SECRET_KEY)).expect("client");
        println!("DescribeInstancesStatus against the emulator (rate limits off on both sides):");
        for concurrency in [1, 8, 32] {
            let rate = throughput(&client, concurrency, Duration::from_secs(2)).await;
            println!("  {concurrency:>2} in flight: {rate:>8.0} calls/s");
        }
        let limited = CvmClient::new(
            ClientConfig::with_endpoint(emulator.endpoint()),
            Credentials::new(DEV_SECRET_ID, DEV_SECRET_KEY),
        )
        .expect("client");
        let rate = throughput(&limited, 32, Duration::from_secs(2)).await;
        println!("  32 in flight, published limit (40/s): {rate:>6.1} calls/s");
        emulator.shutdown().await.expect("shutdown");
    });
}
