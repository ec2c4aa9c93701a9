//! The simulated cloud's state and the mutating actions, after the emulator's
//! `world/{mod,run,ops}.rs`: same checks in the same order, same error codes, without the
//! catalog (any image, type, VPC, subnet or security group exists).
//!
//! Time is the elapsed time since the world was built, read from `tokio::time`; transitions
//! are applied lazily by [`World::advance`], in deadline order (ties by creation order).

mod describe;
mod market;
mod run;
mod tags;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cvmfleet_client::Error;
use cvmfleet_wire::api::{
    EmptyResponse, ModifyInstancesAttributeRequest, StartInstancesRequest, StopInstancesRequest,
    TerminateInstancesRequest,
};

use cvmfleet_wire::codes;
use cvmfleet_wire::model::Instance;
use cvmfleet_wire::{Action, MAX_BATCH};
pub(crate) use market::Offering;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;

use crate::faults::{self, Decision, Pre, Rule};
use crate::{CallCount, CreatedInstance, LostInstance, SimConfig};

/// Instance states, as the API spells them (the wire crate's constants).
pub(crate) use cvmfleet_wire::vocab::state;

/// Longest resulting instance name, in bytes (`InvalidInstanceName.TooLong`).
const MAX_NAME_BYTES: usize = cvmfleet_wire::vocab::INSTANCE_NAME_MAX_BYTES;
/// An error answer: a code of the CVM or common error tables and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) code: String,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(code: &str, message: impl Into<String>) -> Self {
        ApiError { code: code.to_owned(), message: message.into() }
    }

    fn missing(parameter: &str) -> Self {
        ApiError::new(
            codes::MISSING_PARAMETER,
            format!("The request is missing a required parameter `{parameter}`."),
        )
    }
}

/// Where a timed transition leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Running,
    LaunchFailed,
    Stopped,
    Gone,
}

/// One listed instance.
#[derive(Debug, Clone)]
struct Record {
    seq: u64,
    region: String,
    instance: Instance,
    /// The next timed transition: (deadline, step).
    next: Option<(Duration, Step)>,
    /// The launch fails because its stock vanished after acceptance: it holds no stock.
    stock_vanished: bool,
}

#[derive(Debug, Clone)]
struct TokenRecord {
    instance_ids: Vec<String>,
    fingerprint: String,
}

/// The simulated cloud.
#[derive(Debug)]
pub(crate) struct World {
    pub(crate) config: SimConfig,
    pub(crate) rules: Vec<Rule>,
    rng: fastrand::Rng,
    origin: Instant,
    next_seq: u64,
    next_request: u64,
    next_ip: u32,
    records: BTreeMap<u64, Record>,
    by_id: BTreeMap<String, u64>,
    /// (deadline, seq) of every record with a pending transition.
    queue: BTreeSet<(Duration, u64)>,
    /// (region, token) → what the token created, forever.
    tokens: BTreeMap<(String, String), TokenRecord>,
    pub(crate) created: Vec<CreatedInstance>,
    pub(crate) lost: Vec<LostInstance>,
    pub(crate) calls: BTreeMap<Action, CallCount>,
    /// Capacity of each limited offering (the emulator's stock model); others are unlimited.
    stock: BTreeMap<Offering, u64>,
    /// (instance type, charge type) → yuan per hour, or per month for PREPAID.
    prices: BTreeMap<(String, String), f64>,
}

impl World {
    pub(crate) fn new(config: SimConfig) -> Self {
        World {
            rng: fastrand::Rng::with_seed(config.seed),
            config,
            rules: Vec::new(),
            origin: Instant::now(),
            next_seq: 1,
            next_request: 0,
            next_ip: 0,
            records: BTreeMap::new(),
            by_id: BTreeMap::new(),
            queue: BTreeSet::new(),
            tokens: BTreeMap::new(),
            created: Vec::new(),
            lost: Vec::new(),
            calls: BTreeMap::new(),
            stock: BTreeMap::new(),
            prices: BTreeMap::new(),
        }
    }

    /// Simulated time since the world was built.
    pub(crate) fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.origin)
    }

    fn schedule(&mut self, seq: u64, next: Option<(Duration, Step)>) {
        let Some(record) = self.records.get_mut(&seq) else { return };
        if let Some((at, _)) = record.next {
            self.queue.remove(&(at, seq));
        }
        record.next = next;
        if let Some((at, _)) = next {
            self.queue.insert((at, seq));
        }
    }

    /// Applies every transition due now.
    pub(crate) fn advance(&mut self) {
        let now = self.now();
        while let Some(&(at, seq)) = self.queue.first() {
            if at > now {
                break;
            }
            self.queue.pop_first();
            let Some(record) = self.records.get_mut(&seq) else { continue };
            let Some((_, step)) = record.next.take() else { continue };
            let i = &mut record.instance;
            match step {
                Step::Gone => {
                    self.by_id.remove(&i.instance_id);
                    self.records.remove(&seq);
                }
                Step::Running | Step::Stopped => {
                    let done = if step == Step::Running { state::RUNNING } else { state::STOPPED };
                    i.instance_state = done.into();
                    i.latest_operation_state = Some("SUCCESS".into());
                }
                Step::LaunchFailed => {
                    // As the emulator: a failed launch holds no address and lingers a while.
                    if record.stock_vanished {
                        i.latest_operation_error_msg = Some(market::no_stock_message(i));
                    }
                    i.instance_state = state::LAUNCH_FAILED.into();
                    i.latest_operation_state = Some("FAILED".into());
                    i.private_ip_addresses.clear();
                    i.virtual_private_cloud.private_ip_addresses = None;
                    let gone = at + self.config.failed_linger;
                    record.next = Some((gone, Step::Gone));
                    self.queue.insert((gone, seq));
                }
            }
        }
    }

    /// Counts a call on arrival and decides its faults.
    pub(crate) fn arrive(&mut self, action: Action) -> Decision {
        self.calls.entry(action).or_default().calls += 1;
        faults::decide(&self.config.faults, &mut self.rules, &mut self.rng, action)
    }

    /// Processes a call (or fails it as `decision` says).
    pub(crate) fn process(
        &mut self,
        action: Action,
        region: &str,
        params: &Value,
        decision: &Decision,
    ) -> Result<(Value, String), Error> {
        self.next_request += 1;
        let request_id = format!("00000000-0000-4000-8000-{:012x}", self.next_request);
        let transport = |what: &str| Error::Transport {
            action,
            source: Box::new(std::io::Error::new(std::io::ErrorKind::ConnectionReset, what.to_owned())),
        };
        let count = self.calls.entry(action).or_default();
        match &decision.pre {
            Some(Pre::Reset) => {
                count.faulted += 1;
                return Err(transport("connection reset before the request was processed (simulated)"));
            }
            Some(Pre::Error(code)) => {
                count.faulted += 1;
                let message = if code == codes::REQUEST_LIMIT_EXCEEDED {
                    "Your current request rate has exceeded the limit (simulated fault)."
                } else {
                    "An internal error occurred (simulated fault)."
                };
                return Err(Error::Api { action, code: code.clone(), message: message.into(), request_id });
            }
            None => count.processed += 1,
        }
        let result = self.dispatch(action, region, params, &request_id);
        if decision.lose_response {
            let count = self.calls.entry(action).or_default();
            count.faulted += 1;
            count.lost_responses += 1;
            return Err(transport("the connection closed before the response arrived (simulated)"));
        }
        match result {
            Ok(data) => Ok((data, request_id)),
            Err(e) => Err(Error::Api { action, code: e.code, message: e.message, request_id }),
        }
    }

    fn dispatch(
        &mut self,
        action: Action,
        region: &str,
        params: &Value,
        rid: &str,
    ) -> Result<Value, ApiError> {
        if action.needs_region() && !self.config.regions.is_empty() && !self.config.regions.contains(region) {
            return Err(ApiError::new(
                codes::UNSUPPORTED_REGION,
                format!("The region `{region}` is not supported."),
            ));
        }
        match action {
            Action::RunInstances => encode(&self.run_instances(region, &decode(params)?, rid)?),
            Action::DescribeInstances => encode(&self.describe_instances(region, &decode(params)?)?),
            Action::DescribeInstancesStatus => encode(&self.describe_status(region, &decode(params)?)?),
            Action::TerminateInstances => self.terminate(region, &decode(params)?, rid),
            Action::ModifyInstancesAttribute => self.modify(region, &decode(params)?, rid),
            Action::StartInstances => self.start(region, &decode(params)?, rid),
            Action::StopInstances => self.stop(region, &decode(params)?, rid),
            Action::DescribeRegions => {
                let _: cvmfleet_wire::api::DescribeRegionsRequest = decode(params)?;
                encode(&self.describe_regions())
            }
            Action::TagResources
            | Action::UnTagResources
            | Action::ModifyResourceTags
            | Action::DescribeResourcesByTags
            | Action::DescribeResourceTagsByResourceIds
            | Action::GetResources => self.tag_action(action, params),
            Action::DescribeZoneInstanceConfigInfos => {
                encode(&self.describe_zone_configs(region, &decode(params)?)?)
            }
            Action::InquiryPriceRunInstances => encode(&self.inquiry_price(region, &decode(params)?)?),
            other => Err(ApiError::new(
                codes::INVALID_ACTION,
                format!("The action `{other}` is not supported by the simulation."),
            )),
        }
    }

    /// Checks instance IDs of `region`: their records' keys, in the order given, without repeats.
    fn resolve_ids(&self, region: &str, ids: &[String]) -> Result<Vec<u64>, ApiError> {
        if ids.is_empty() {
            return Err(ApiError::missing("InstanceIds"));
        }
        check_ids(ids)?;
        let mut seqs = Vec::new();
        let mut missing = Vec::new();
        for id in ids {
            match self.by_id.get(id).filter(|s| self.records[*s].region == region) {
                Some(&seq) if !seqs.contains(&seq) => seqs.push(seq),
                Some(_) => {}
                None => missing.push(id.as_str()),
            }
        }
        if !missing.is_empty() {
            return Err(ApiError::new(
                codes::INVALID_INSTANCE_ID_NOT_FOUND,
                format!("The instances {} do not exist in region `{region}`.", missing.join(", ")),
            ));
        }
        Ok(seqs)
    }

    /// Refuses unless every instance is in one of `allowed` (all-or-nothing).
    fn check_states(&self, seqs: &[u64], allowed: &[&str]) -> Result<(), ApiError> {
        match seqs
            .iter()
            .map(|s| &self.records[s].instance)
            .find(|i| !allowed.contains(&i.instance_state.as_str()))
        {
            Some(i) => Err(state_error(i)),
            None => Ok(()),
        }
    }

    /// Moves every instance to `to` with an operation in progress, and schedules `next`.
    fn begin(&mut self, seqs: &[u64], operation: &str, to: &str, next: Option<(Duration, Step)>, rid: &str) {
        for &seq in seqs {
            if let Some(r) = self.records.get_mut(&seq) {
                set_operation(&mut r.instance, operation, "OPERATING", rid);
                r.instance.instance_state = to.into();
            }
            self.schedule(seq, next);
        }
    }

    fn terminate(
        &mut self,
        region: &str,
        req: &TerminateInstancesRequest,
        rid: &str,
    ) -> Result<Value, ApiError> {
        let seqs = self.resolve_ids(region, &req.instance_ids)?;
        self.check_states(&seqs, &[state::RUNNING, state::STOPPED, state::SHUTDOWN])?;
        if let Some(i) = seqs.iter().map(|s| &self.records[s].instance).find(|i| i.disable_api_termination) {
            return Err(ApiError::new(
                codes::UNSUPPORTED_OPERATION_INSTANCES_PROTECTED,
                format!(
                    "The instance `{}` has termination protection; turn DisableApiTermination off first.",
                    i.instance_id
                ),
            ));
        }
        let gone = self.now() + self.config.terminate_delay;
        self.begin(&seqs, "TerminateInstances", state::TERMINATING, Some((gone, Step::Gone)), rid);
        encode(&EmptyResponse {})
    }

    fn stop(&mut self, region: &str, req: &StopInstancesRequest, rid: &str) -> Result<Value, ApiError> {
        let seqs = self.resolve_ids(region, &req.instance_ids)?;
        self.check_states(&seqs, &[state::RUNNING])?;
        let stopped = self.now() + self.config.stop_delay;
        self.begin(&seqs, "StopInstances", state::STOPPING, Some((stopped, Step::Stopped)), rid);
        encode(&EmptyResponse {})
    }

    fn start(&mut self, region: &str, req: &StartInstancesRequest, rid: &str) -> Result<Value, ApiError> {
        let seqs = self.resolve_ids(region, &req.instance_ids)?;
        self.check_states(&seqs, &[state::STOPPED])?;
        let running = self.now() + self.config.boot_delay;
        self.begin(&seqs, "StartInstances", state::STARTING, Some((running, Step::Running)), rid);
        encode(&EmptyResponse {})
    }

    fn modify(
        &mut self,
        region: &str,
        req: &ModifyInstancesAttributeRequest,
        rid: &str,
    ) -> Result<Value, ApiError> {
        let set = req.attributes_set();
        match set.len() {
            0 => {
                return Err(ApiError::new(
                    codes::MISSING_PARAMETER,
                    "The request must set one attribute: InstanceName, UserData, SecurityGroups, HostName or \
                     DisableApiTermination.",
                ));
            }
            1 => {}
            _ => {
                return Err(ApiError::new(
                    codes::INVALID_PARAMETER_COMBINATION,
                    format!(
                        "Only one attribute can be changed per request; this one sets {}.",
                        set.join(", ")
                    ),
                ));
            }
        }
        let seqs = self.resolve_ids(region, &req.instance_ids)?;
        let changeable = [state::RUNNING, state::STOPPED, state::STARTING, state::STOPPING];
        self.check_states(&seqs, &changeable)?;
        if let Some(name) = &req.instance_name {
            check_name(name)?;
        }
        for seq in seqs {
            let Some(r) = self.records.get_mut(&seq) else { continue };
            let i = &mut r.instance;
            if let Some(name) = &req.instance_name {
                i.instance_name.clone_from(name);
            }
            if let Some(groups) = &req.security_groups {
                i.security_group_ids.clone_from(groups);
            }
            if let Some(host_name) = &req.host_name {
                i.host_name.clone_from(host_name);
            }
            if let Some(protect) = req.disable_api_termination {
                i.disable_api_termination = protect;
            }
            set_operation(i, "ModifyInstancesAttribute", "SUCCESS", rid);
        }
        encode(&EmptyResponse {})
    }

    fn record_mut(&mut self, id: &str) -> Option<&mut Record> {
        let seq = *self.by_id.get(id)?;
        self.records.get_mut(&seq)
    }

    /// Out of band: the instance goes `TERMINATING` (from any state but `TERMINATING`), or
    /// vanishes at once when `LAUNCH_FAILED`. Recorded in [`World::lost`].
    pub(crate) fn terminate_out_of_band(&mut self, id: &str) -> bool {
        let now = self.now();
        let Some(r) = self.record_mut(id) else { return false };
        let was = r.instance.instance_state.clone();
        let seq = r.seq;
        if was == state::TERMINATING {
            return false;
        }
        let reason = if was == state::LAUNCH_FAILED {
            self.schedule(seq, None);
            self.records.remove(&seq);
            self.by_id.remove(id);
            "removed out of band while LAUNCH_FAILED"
        } else {
            r.instance.instance_state = state::TERMINATING.into();
            self.schedule(seq, Some((now + self.config.terminate_delay, Step::Gone)));
            "terminated out of band"
        };
        self.lost.push(LostInstance {
            instance_id: id.to_owned(),
            at: now,
            state: was,
            reason: reason.into(),
        });
        true
    }

    /// Out of band: a `RUNNING` instance goes `STOPPING`, then `STOPPED`.
    pub(crate) fn stop_out_of_band(&mut self, id: &str) -> bool {
        let stopped = self.now() + self.config.stop_delay;
        let Some(r) = self.record_mut(id).filter(|r| r.instance.instance_state == state::RUNNING) else {
            return false;
        };
        r.instance.instance_state = state::STOPPING.into();
        let seq = r.seq;
        self.schedule(seq, Some((stopped, Step::Stopped)));
        true
    }

    /// Out of band: a new display name.
    pub(crate) fn rename_out_of_band(&mut self, id: &str, name: &str) -> bool {
        self.record_mut(id).map(|r| r.instance.instance_name = name.to_owned()).is_some()
    }

    /// Out of band: a tag removed; `false` when the instance or the tag is missing.
    pub(crate) fn remove_tag_out_of_band(&mut self, id: &str, key: &str) -> bool {
        let Some(r) = self.record_mut(id) else { return false };
        let before = r.instance.tags.len();
        r.instance.tags.retain(|t| t.key != key);
        r.instance.tags.len() != before
    }

    /// The listed instances, in creation order.
    pub(crate) fn live(&self) -> Vec<Instance> {
        self.records.values().map(|r| r.instance.clone()).collect()
    }

    /// One listed instance.
    pub(crate) fn get(&self, id: &str) -> Option<Instance> {
        self.by_id.get(id).map(|seq| self.records[seq].instance.clone())
    }
}

/// The error for an instance whose state forbids the operation (the emulator's `state_error`).
fn state_error(i: &Instance) -> ApiError {
    let st = i.state();
    ApiError::new(
        st.unsupported_code(),
        format!("The instance `{}` is {st}, which does not allow this operation.", i.instance_id),
    )
}

fn set_operation(i: &mut Instance, operation: &str, op_state: &str, request_id: &str) {
    i.latest_operation = Some(operation.into());
    i.latest_operation_state = Some(op_state.into());
    i.latest_operation_request_id = Some(request_id.into());
}

/// At most 100 IDs, each `ins-` and 8 lowercase letters or digits.
fn check_ids(ids: &[String]) -> Result<(), ApiError> {
    if ids.len() > MAX_BATCH {
        return Err(ApiError::new(
            codes::INVALID_PARAMETER_VALUE_LIMIT_EXCEEDED,
            format!("{} instance IDs were given; at most {MAX_BATCH} are allowed per request.", ids.len()),
        ));
    }
    let well_formed = |id: &str| {
        id.strip_prefix("ins-")
            .is_some_and(|b| b.len() == 8 && b.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
    };
    match ids.iter().find(|id| !well_formed(id)) {
        Some(bad) => Err(ApiError::new(
            codes::INVALID_INSTANCE_ID_MALFORMED,
            format!("The instance ID `{bad}` is malformed; instance IDs look like ins-xxxxxxxx."),
        )),
        None => Ok(()),
    }
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(ApiError::new(codes::INVALID_PARAMETER_VALUE, "`InstanceName` must not be empty."));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(ApiError::new(
            codes::INVALID_INSTANCE_NAME_TOO_LONG,
            format!("The InstanceName `{name}` is longer than {MAX_NAME_BYTES} bytes."),
        ));
    }
    Ok(())
}

fn decode<T: DeserializeOwned>(params: &Value) -> Result<T, ApiError> {
    serde_json::from_value(params.clone()).map_err(|e| {
        let text = e.to_string();
        match text.strip_prefix("unknown field `").and_then(|r| r.split('`').next()) {
            Some(field) => {
                ApiError::new(codes::UNKNOWN_PARAMETER, format!("The parameter `{field}` is not recognized."))
            }
            None => ApiError::new(codes::INVALID_PARAMETER, format!("The parameters are malformed: {text}.")),
        }
    })
}

fn encode<T: Serialize>(response: &T) -> Result<Value, ApiError> {
    serde_json::to_value(response).map_err(|e| ApiError::new(codes::INTERNAL_ERROR, e.to_string()))
}
