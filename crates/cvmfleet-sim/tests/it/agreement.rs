//! Issue 20 §2: the two faces of the one cloud agree. The same seeded sequence of calls goes
//! to the emulator over HTTP (signed by `CvmClient`, as every user's call) and to the simulation
//! in process (the same `CvmClient` over the sim's transport), and every answer must be the
//! same: the same data, or the same error code and message. RequestIds and times are set
//! aside (`LatestOperationRequestId`, `CreatedTime`, `ExpiredTime`): the emulator's clock is
//! the wall clock, the simulation's tokio's paused one.
//!
//! Lifecycle delays are 60 s and the clock moves in steps of 45 s, so no check falls within
//! 15 s of a transition: the wall-clock time the emulator's calls take cannot tip one face
//! over a deadline the other has not reached.

use std::fmt::Write as _;
use std::time::Duration;

use cvmfleet_client::{ClientConfig, Credentials, CvmClient, RetryPolicy};
use cvmfleet_emulator::{DEFAULT_ACCOUNT_UIN, Emulator, EmulatorConfig, RunningEmulator, StockSpec};
use cvmfleet_sim::{SimCloud, SimConfig, TokenMode};
use cvmfleet_wire::ApiRequest;
use cvmfleet_wire::api::{
    DescribeInstancesRequest, DescribeZoneInstanceConfigInfosRequest, InquiryPriceRunInstancesRequest,
    RunInstancesRequest, StartInstancesRequest, StopInstancesRequest, TerminateInstancesRequest,
};
use cvmfleet_wire::model::{Filter, InstanceMarketOptionsRequest, Placement, Tag, TagSpecification};
use cvmfleet_wire::tag::api::{TagResourcesRequest, UnTagResourcesRequest};
use cvmfleet_wire::tag::model::Tag as TagPair;
use serde_json::Value;

const REGION: &str = "ap-guangzhou";
const ZONES: [&str; 2] = ["ap-guangzhou-3", "ap-guangzhou-4"];
const TYPES: [&str; 3] = ["S5.MEDIUM2", "S5.MEDIUM4", "SA2.MEDIUM4"];
const DELAY: Duration = Duration::from_secs(60);
const STEP: Duration = Duration::from_secs(45);
/// Calls per schedule.
const CALLS: usize = 60;

/// What a face answered, with what may differ between faces removed.
type Outcome = Result<Value, (String, String)>;

/// Both faces, each with its own runtime: the emulator's real, the simulation's paused.
struct Faces {
    real: tokio::runtime::Runtime,
    emulator: Option<RunningEmulator>,
    http: CvmClient,
    paused: tokio::runtime::Runtime,
    cloud: SimCloud,
    sim: CvmClient,
}

impl Faces {
    fn new(seed: u64) -> Faces {
        let real =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let mut config = EmulatorConfig::default()
            .boot_delay(DELAY)
            .stop_delay(DELAY)
            .terminate_delay(DELAY)
            .token_mode(TokenMode::Strict)
            .rate_limits(false)
            .seed(seed);
        config.launch_failed_retention = DELAY;
        let emulator = real.block_on(Emulator::start(config)).unwrap();
        let retry = RetryPolicy { jitter_seed: Some(seed), ..RetryPolicy::default() };
        let http = CvmClient::new(
            ClientConfig { retry: retry.clone(), ..ClientConfig::with_endpoint(emulator.endpoint()) },
            Credentials::new(cvmfleet_emulator::DEV_SECRET_ID, cvmfleet_emulator::DEV_SECRET_KEY),
        )
        .unwrap();
        let paused =
            tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        let cloud = paused.block_on(async {
            SimCloud::new(SimConfig {
                boot_delay: DELAY,
                stop_delay: DELAY,
                terminate_delay: DELAY,
                failed_linger: DELAY,
                token_mode: TokenMode::Strict,
                ..SimConfig::seeded(seed)
            })
        });
        let sim = cloud.client().unwrap();
        Faces { real, emulator: Some(emulator), http, paused, cloud, sim }
    }

    fn emulator(&self) -> &RunningEmulator {
        self.emulator.as_ref().expect("running")
    }

    /// Sends one call to both faces.
    fn call<R: ApiRequest>(&self, region: &str, request: &R) -> (Outcome, Outcome) {
        let emulator = self.real.block_on(self.http.call(region, request));
        let sim = self.paused.block_on(self.sim.call(region, request));
        (outcome(emulator), outcome(sim))
    }

    /// Moves both clocks forward.
    fn wait(&self, by: Duration) {
        self.emulator().advance_clock(by);
        self.paused.block_on(async { tokio::time::sleep(by).await });
    }

    /// Limits an offering on both faces; `true` when both accepted.
    fn set_stock(&self, zone: &str, instance_type: &str, charge: &str, available: Option<u64>) -> bool {
        let spec = StockSpec {
            zone: zone.into(),
            instance_type: instance_type.into(),
            charge_type: Some(charge.into()),
            available,
        };
        let emulator = self.emulator().set_stock(&[spec]).is_ok();
        let sim = self
            .paused
            .block_on(async { self.cloud.set_stock(zone, instance_type, Some(charge), available) });
        assert_eq!(emulator, sim, "set_stock {zone} {instance_type} {charge} {available:?}");
        emulator
    }
}

impl Drop for Faces {
    fn drop(&mut self) {
        if let Some(emulator) = self.emulator.take() {
            let _ = self.real.block_on(emulator.shutdown());
        }
    }
}

/// An answer with what may differ between faces removed.
fn outcome<T: serde::Serialize>(
    answer: Result<cvmfleet_client::Answer<T>, cvmfleet_client::Error>,
) -> Outcome {
    match answer {
        Ok(answer) => {
            let mut value = serde_json::to_value(&answer.data).unwrap();
            scrub(&mut value);
            Ok(value)
        }
        Err(cvmfleet_client::Error::Api { code, message, .. }) => Err((code, message)),
        Err(other) => Err(("(not an API error)".into(), other.to_string())),
    }
}

/// Blanks the fields that carry a RequestId or a time.
fn scrub(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                if matches!(key.as_str(), "LatestOperationRequestId" | "CreatedTime" | "ExpiredTime") {
                    *field = Value::Null;
                } else {
                    scrub(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub),
        _ => {}
    }
}

/// The calls of one schedule, drawn from the seed and from what the faces answered so far.
struct Script {
    rng: fastrand::Rng,
    /// Instance IDs answered so far (gone ones included).
    ids: Vec<String>,
    /// Requests sent with a token, for replays.
    tokened: Vec<RunInstancesRequest>,
    next_token: u32,
}

impl Script {
    fn pick_ids(&mut self, most: usize) -> Vec<String> {
        let mut picked = Vec::new();
        for _ in 0..self.rng.usize(1..=most) {
            if self.ids.is_empty() || self.rng.u8(0..12) == 0 {
                picked.push("ins-00000000".to_owned());
            } else {
                picked.push(self.ids[self.rng.usize(0..self.ids.len())].clone());
            }
        }
        picked
    }

    fn run_request(&mut self) -> RunInstancesRequest {
        let rng = &mut self.rng;
        let spot = rng.u8(0..4) == 0;
        let tags: Vec<Tag> = [("fleet", "web"), ("fleet", "db"), ("tier", "a")]
            .into_iter()
            .filter(|_| rng.bool())
            .fold(Vec::new(), |mut tags, (k, v)| {
                if !tags.iter().any(|t: &Tag| t.key == k) {
                    tags.push(Tag::new(k, v));
                }
                tags
            });
        let mut request = RunInstancesRequest {
            placement: Some(Placement { zone: ZONES[rng.usize(0..2)].into(), ..Placement::default() }),
            image_id: Some(if rng.u8(0..15) == 0 { "img-00000000" } else { "img-pmqg1cw7" }.into()),
            instance_type: Some(TYPES[rng.usize(0..TYPES.len())].into()),
            instance_charge_type: Some(if spot { "SPOTPAID" } else { "POSTPAID_BY_HOUR" }.into()),
            instance_market_options: spot.then(InstanceMarketOptionsRequest::default),
            instance_count: Some(rng.i64(1..=4)),
            min_count: (rng.u8(0..4) == 0).then_some(1),
            instance_name: Some(if rng.bool() { "web-{R:1,F:2}" } else { "db" }.into()),
            tag_specification: (!tags.is_empty())
                .then(|| vec![TagSpecification { resource_type: "instance".into(), tags }]),
            ..RunInstancesRequest::default()
        };
        match rng.u8(0..6) {
            // A replay of an earlier request, token and all.
            0 | 1 if !self.tokened.is_empty() => {
                request = self.tokened[rng.usize(0..self.tokened.len())].clone();
            }
            // An earlier token with other parameters: strict tokens refuse it.
            2 if !self.tokened.is_empty() => {
                request.client_token = self.tokened[rng.usize(0..self.tokened.len())].client_token.clone();
            }
            3 | 4 => {
                self.next_token += 1;
                request.client_token = Some(format!("token-{}", self.next_token));
                self.tokened.push(request.clone());
            }
            _ => {}
        }
        request
    }
}

fn describe(
    filters: Option<Vec<Filter>>,
    ids: Option<Vec<String>>,
    offset: i64,
    limit: i64,
) -> DescribeInstancesRequest {
    DescribeInstancesRequest { instance_ids: ids, filters, offset: Some(offset), limit: Some(limit) }
}

/// Runs one schedule and returns its transcript; panics at the first disagreement.
fn schedule(seed: u64) -> String {
    let faces = Faces::new(seed);
    let mut script =
        Script { rng: fastrand::Rng::with_seed(seed), ids: Vec::new(), tokened: Vec::new(), next_token: 0 };
    let mut transcript = String::new();
    for step in 0..CALLS {
        let (what, (emulator, sim)) = match script.rng.u8(0..16) {
            0..=4 => {
                let request = script.run_request();
                ("RunInstances", faces.call(REGION, &request))
            }
            5 | 6 => {
                let filter = match script.rng.u8(0..4) {
                    0 => Filter::new("tag:fleet", ["web"]),
                    1 => Filter::new("tag-key", ["tier"]),
                    2 => Filter::new("zone", [ZONES[0]]),
                    _ => Filter::new("instance-state", ["RUNNING", "PENDING"]),
                };
                let (offset, limit) = (script.rng.i64(0..4), script.rng.i64(1..=5));
                ("DescribeInstances", faces.call(REGION, &describe(Some(vec![filter]), None, offset, limit)))
            }
            7 => {
                let ids = script.pick_ids(3);
                ("DescribeInstances", faces.call(REGION, &describe(None, Some(ids), 0, 20)))
            }
            8 => {
                let request =
                    TerminateInstancesRequest { instance_ids: script.pick_ids(3), ..Default::default() };
                ("TerminateInstances", faces.call(REGION, &request))
            }
            9 => {
                let request = StopInstancesRequest { instance_ids: script.pick_ids(2), ..Default::default() };
                ("StopInstances", faces.call(REGION, &request))
            }
            10 => {
                let request = StartInstancesRequest { instance_ids: script.pick_ids(2) };
                ("StartInstances", faces.call(REGION, &request))
            }
            11 => {
                let available = [Some(0), Some(2), Some(5), None][script.rng.usize(0..4)];
                let (zone, instance_type) = (ZONES[script.rng.usize(0..2)], TYPES[script.rng.usize(0..3)]);
                let charge = if script.rng.bool() { "SPOTPAID" } else { "POSTPAID_BY_HOUR" };
                faces.set_stock(zone, instance_type, charge, available);
                let _ = writeln!(transcript, "{step} stock {zone} {instance_type} {charge} {available:?}");
                let filters = vec![Filter::new("zone", [zone])];
                let request = DescribeZoneInstanceConfigInfosRequest { filters: Some(filters) };
                ("DescribeZoneInstanceConfigInfos", faces.call(REGION, &request))
            }
            12 => {
                let names: Vec<String> = script
                    .pick_ids(2)
                    .into_iter()
                    .map(|id| format!("qcs::cvm:{REGION}:uin/{DEFAULT_ACCOUNT_UIN}:instance/{id}"))
                    .collect();
                if script.rng.bool() {
                    let request =
                        TagResourcesRequest { resource_list: names, tags: vec![TagPair::new("tier", "b")] };
                    ("TagResources", faces.call("", &request))
                } else {
                    let request =
                        UnTagResourcesRequest { resource_list: names, tag_keys: vec!["fleet".into()] };
                    ("UnTagResources", faces.call("", &request))
                }
            }
            13 => {
                let run = script.run_request();
                let request = InquiryPriceRunInstancesRequest {
                    placement: run.placement,
                    image_id: run.image_id,
                    instance_charge_type: run.instance_charge_type,
                    instance_type: run.instance_type,
                    instance_count: run.instance_count,
                    ..Default::default()
                };
                ("InquiryPriceRunInstances", faces.call(REGION, &request))
            }
            _ => {
                faces.wait(STEP);
                let _ = writeln!(transcript, "{step} wait {}s", STEP.as_secs());
                ("DescribeInstances", faces.call(REGION, &describe(None, None, 0, 100)))
            }
        };
        assert_eq!(
            emulator, sim,
            "seed {seed}, call {step} ({what}): the emulator (left) and the simulation (right) disagree\n\
             transcript so far:\n{transcript}"
        );
        if let Ok(Value::Object(data)) = &emulator
            && let Some(Value::Array(ids)) = data.get("InstanceIdSet")
        {
            script.ids.extend(ids.iter().filter_map(Value::as_str).map(str::to_owned));
        }
        let summary = match &emulator {
            Ok(_) => "ok".to_owned(),
            Err((code, _)) => code.clone(),
        };
        let _ = writeln!(transcript, "{step} {what}: {summary}");
    }
    // The whole world at the end, listed by both.
    let (emulator, sim) = faces.call(REGION, &describe(None, None, 0, 100));
    assert_eq!(emulator, sim, "seed {seed}: the final listings disagree\n{transcript}");
    transcript
}

/// Issue 20 §2: several seeded schedules; every call's answer is the same on both faces.
#[test]
fn issue_20_the_emulator_and_the_simulation_answer_alike() {
    let seeds: Vec<u64> = match std::env::var("CVMFLEET_AGREEMENT_SEEDS") {
        Ok(n) => (0..n.parse().unwrap_or(4)).collect(),
        Err(_) => (0..4).collect(),
    };
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for seed in seeds {
        let transcript = schedule(seed);
        for line in transcript.lines() {
            let outcome = line.split_once(' ').map_or(line, |(_, rest)| rest);
            let key = if outcome.starts_with("stock") || outcome.starts_with("wait") {
                outcome.split(' ').next().unwrap_or(outcome).to_owned()
            } else {
                outcome.to_owned()
            };
            *outcomes.entry(key).or_default() += 1;
        }
    }
    // The schedules reach what they are meant to: creates, replays refused and accepted,
    // stock refusals, unknown instances, the clock.
    let seen = |prefix: &str| outcomes.iter().any(|(k, n)| k.starts_with(prefix) && *n > 0);
    assert!(seen("RunInstances: ok"), "{outcomes:?}");
    assert!(seen("RunInstances: InvalidParameter"), "no strict-token refusal: {outcomes:?}");
    assert!(seen("TerminateInstances: ok"), "{outcomes:?}");
    assert!(seen("wait"), "{outcomes:?}");
    assert!(
        seen("DescribeInstances: InvalidInstanceId") || seen("TerminateInstances: InvalidInstanceId"),
        "{outcomes:?}"
    );
}
