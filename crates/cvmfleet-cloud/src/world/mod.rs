//! The emulated cloud's mutable state and its rules, free of I/O and of the clock: every
//! operation takes the current time as a number, which keeps it deterministic and testable.
//!
//! Instances are [`Record`]s keyed by a sequence number (their creation order, which is also
//! the listing order). A record carries its next timed transition as an absolute wall-clock
//! deadline, so a restarted emulator resumes transitions where they were. Transitions are
//! applied lazily by [`World::advance`] before each request, and are never journaled: they
//! follow from the stored deadlines.

mod call;
mod checks;
mod console;
mod describe;
mod market;
mod ops;
mod run;
mod tags;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use cvmfleet_wire::model::Instance;
use cvmfleet_wire::vocab::InstanceState;
use serde::{Deserialize, Serialize};

use crate::DEFAULT_ACCOUNT_UIN;
use crate::catalog::CatalogIndex;
use crate::net::parse_ipv4;
use crate::stock::{Capacity, Offering};

pub use market::{LaunchDraw, LaunchFate};
pub use market::{Reclaim, SpotReclaim};

pub use call::Encode;
pub use describe::InstancePage;

/// Where a timed transition leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// `PENDING`/`STARTING` → `RUNNING`.
    Running,
    /// `PENDING` → `LAUNCH_FAILED`.
    LaunchFailed,
    /// `PENDING` → `LAUNCH_FAILED` because the offering's stock vanished after the request was
    /// accepted; the instance holds no stock meanwhile.
    LaunchFailedNoStock,
    /// `STOPPING` → `STOPPED`.
    Stopped,
    /// The instance disappears (after `TERMINATING`, or a `LAUNCH_FAILED` retention).
    Gone,
}

/// A timed transition: at `at` (Unix milliseconds) the instance moves to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub(crate) at: i64,
    pub(crate) to: Step,
}

/// One instance with what the emulator keeps beside its API form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Creation order; the instance ID derives from it.
    pub(crate) seq: u64,
    /// Region of the instance's zone.
    pub(crate) region: String,
    /// The next timed transition. A launch that is going to fail is decided at creation
    /// (`to: launch_failed`), so that a replayed state agrees with the live one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) next: Option<Transition>,
    /// A scheduled termination (RunInstances `ActionTimer`), Unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) terminate_at: Option<i64>,
    /// When the cloud reclaims this SPOTPAID instance (decided at creation), Unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reclaim_at: Option<i64>,
    /// The instance as DescribeInstances shows it.
    pub(crate) instance: Instance,
}

impl Record {
    fn wake_at(&self) -> Option<i64> {
        [self.next.map(|t| t.at), self.terminate_at, self.reclaim_at].into_iter().flatten().min()
    }

    /// Whether the instance holds IPs, host capacity and quota; launch failures hold nothing.
    fn holds_resources(&self) -> bool {
        !self.instance.state().is_failed()
    }

    /// Whether the instance holds a unit of its offering's stock: it holds resources and its
    /// launch is not going to fail for lack of stock.
    fn holds_stock(&self) -> bool {
        self.holds_resources() && !self.next.is_some_and(|t| t.to == Step::LaunchFailedNoStock)
    }

    /// The offering the instance was created on.
    fn offering(&self) -> Offering {
        let i = &self.instance;
        Offering::new(&i.placement.zone, &i.instance_type, &i.instance_charge_type)
    }

    /// The scope its private IPs are unique in: the subnet, or the region's basic network.
    fn ip_scope(&self) -> String {
        ip_scope(&self.region, &self.instance.virtual_private_cloud.subnet_id)
    }
}

fn ip_scope(region: &str, subnet_id: &str) -> String {
    if subnet_id.is_empty() { format!("basic:{region}") } else { subnet_id.to_owned() }
}

/// A ClientToken bound to the instances it created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub(crate) secret_id: String,
    pub(crate) region: String,
    pub(crate) token: String,
    pub(crate) instance_ids: Vec<String>,
    /// SHA-256 of the request's other parameters, to detect reuse with different ones.
    pub(crate) fingerprint: String,
    /// Unix milliseconds.
    pub(crate) created: i64,
}

type TokenKey = (String, String, String);

impl TokenRecord {
    fn key(&self) -> TokenKey {
        (self.secret_id.clone(), self.region.clone(), self.token.clone())
    }
}

/// The changes one request made: a journal entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Mutation {
    /// Records created or changed, whole.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) put: Vec<Record>,
    /// Tokens bound.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) tokens: Vec<TokenRecord>,
    /// Stock capacities set (absolute values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) stock: Vec<Capacity>,
}

impl Mutation {
    /// How many instance records the call created or changed (a RunInstances: how many it
    /// created; a replayed token: none).
    #[must_use]
    pub fn len(&self) -> usize {
        self.put.len()
    }

    /// Whether the call changed nothing.
    pub fn is_empty(&self) -> bool {
        self.put.is_empty() && self.tokens.is_empty() && self.stock.is_empty()
    }
}

/// One instance a RunInstances created, as [`Mutation::launched`] shows it.
#[derive(Debug, Clone, Copy)]
pub struct Launched<'a> {
    /// The instance as created (`PENDING`).
    pub instance: &'a Instance,
    /// Its launch is going to fail (it ends `LAUNCH_FAILED`).
    pub launch_fails: bool,
    /// It fails because its offering's stock vanished after the request was accepted.
    pub stock_vanishes: bool,
}

impl Mutation {
    /// The instances the call put, with their decided fate: after a RunInstances, the ones it
    /// created.
    pub fn launched(&self) -> impl Iterator<Item = Launched<'_>> {
        self.put.iter().map(|r| {
            let to = r.next.map(|t| t.to);
            Launched {
                instance: &r.instance,
                launch_fails: matches!(to, Some(Step::LaunchFailed | Step::LaunchFailedNoStock)),
                stock_vanishes: to == Some(Step::LaunchFailedNoStock),
            }
        })
    }
}

/// The whole state in one document (the snapshot).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Salt of the IDs, fixed when the state is created.
    pub(crate) salt: u64,
    /// The next sequence number.
    pub(crate) next_seq: u64,
    pub(crate) records: Vec<Record>,
    pub(crate) tokens: Vec<TokenRecord>,
    /// Stock capacities set so far (states written before stock existed have none).
    #[serde(default)]
    pub(crate) stock: Vec<Capacity>,
}

impl Snapshot {
    /// The state of a world with no instance yet whose next sequence number is `next_seq`.
    #[must_use]
    pub fn empty(salt: u64, next_seq: u64) -> Snapshot {
        Snapshot { salt, next_seq, records: Vec::new(), tokens: Vec::new(), stock: Vec::new() }
    }

    /// The sequence number the next instance gets.
    #[must_use]
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }
}

/// tag key → tag value → records, of one region.
type TagIndex = HashMap<String, HashMap<String, BTreeSet<u64>>>;

/// What a RunInstances with a ClientToken already used by the same SecretId in the same region,
/// but with different parameters, gets. Tencent documents no rule for this.
///
/// In both modes a repeated token with the *same* parameters returns the original
/// `InstanceIdSet` and creates nothing, even when those instances were terminated since.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenMode {
    /// Replay the original `InstanceIdSet`, ignoring the new parameters (the default; what
    /// the real service appears to do, as it has no mismatch error code).
    #[default]
    Lenient,
    /// Refuse with `InvalidParameter`, naming the token: a reconciler that reuses a token for
    /// a different request has a bug, and cvmfleet's own tests run in this mode to catch it.
    Strict,
}

/// Timing, quota and policy of a world, in the units the world uses.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a new instance stays `PENDING` (and a started one `STARTING`).
    pub boot_delay_ms: i64,
    /// How long a stopped instance stays `STOPPING`.
    pub stop_delay_ms: i64,
    /// How long a terminated instance stays `TERMINATING`.
    pub terminate_delay_ms: i64,
    /// How long a `LAUNCH_FAILED` instance stays listed.
    pub launch_failed_retention_ms: i64,
    /// Most instances per region; `None` for no quota.
    pub instance_quota: Option<u32>,
    /// What a reused ClientToken with different parameters gets.
    pub token_mode: TokenMode,
    /// SecretIds whose RunInstances gets `AccountQualificationRestrictions`.
    pub unqualified_secret_ids: BTreeSet<String>,
    /// The account's uin, in the six-segment names of the Tag service.
    pub account_uin: String,
}

impl Default for Settings {
    /// The emulator's defaults: 3 s boot, stop and terminate, `LAUNCH_FAILED` listed 600 s, no
    /// quota, lenient tokens, every account qualified, the default account uin.
    fn default() -> Self {
        Settings {
            boot_delay_ms: 3_000,
            stop_delay_ms: 3_000,
            terminate_delay_ms: 3_000,
            launch_failed_retention_ms: 600_000,
            instance_quota: None,
            token_mode: TokenMode::Lenient,
            unqualified_secret_ids: BTreeSet::new(),
            account_uin: DEFAULT_ACCOUNT_UIN.to_owned(),
        }
    }
}

/// Who calls, where, and when: the context of one API call.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The caller's SecretId (ClientTokens are the caller's own).
    pub secret_id: String,
    /// The region of the call; empty for actions that take none.
    pub region: String,
    /// The call's RequestId, as `LatestOperationRequestId` records it.
    pub request_id: String,
    /// The world's clock, Unix milliseconds.
    pub now_ms: i64,
}

/// The emulated cloud.
#[derive(Debug)]
pub struct World {
    catalog: Arc<CatalogIndex>,
    settings: Settings,
    salt: u64,
    next_seq: u64,
    records: BTreeMap<u64, Record>,
    by_id: HashMap<String, u64>,
    /// (deadline, seq) of every record with a pending transition.
    queue: BTreeSet<(i64, u64)>,
    /// region → tag key → tag value → records: the reconciler observes a fleet by tag, so
    /// this is the hot path of DescribeInstances.
    tags: HashMap<String, TagIndex>,
    private_ips: HashSet<(String, u32)>,
    public_ips: HashSet<u32>,
    /// host → (vCPUs, GiB) in use.
    host_usage: HashMap<String, (i64, i64)>,
    /// region → instances holding quota.
    region_count: HashMap<String, u32>,
    tokens: HashMap<TokenKey, TokenRecord>,
    /// Where the next automatic IP search starts, per scope (not persisted).
    ip_cursor: HashMap<String, u32>,
    public_cursor: u32,
    /// Capacities set through the admin API (and journaled); other offerings take the
    /// catalog's. `None`: set to unlimited.
    stock: BTreeMap<Offering, Option<u64>>,
    /// Instances holding a unit of each offering's stock.
    held: HashMap<Offering, u64>,
    /// Spot reclamations since the emulator started (not persisted).
    reclaims: Vec<Reclaim>,
}

impl World {
    /// An empty world on `catalog`; `salt` makes its IDs (see [`crate::salt_of`]).
    #[must_use]
    pub fn new(catalog: Arc<CatalogIndex>, settings: Settings, salt: u64) -> Self {
        World {
            catalog,
            settings,
            salt,
            next_seq: 1,
            records: BTreeMap::new(),
            by_id: HashMap::new(),
            queue: BTreeSet::new(),
            tags: HashMap::new(),
            private_ips: HashSet::new(),
            public_ips: HashSet::new(),
            host_usage: HashMap::new(),
            region_count: HashMap::new(),
            tokens: HashMap::new(),
            ip_cursor: HashMap::new(),
            public_cursor: 0,
            stock: BTreeMap::new(),
            held: HashMap::new(),
            reclaims: Vec::new(),
        }
    }

    /// Rebuilds a world from a snapshot.
    pub fn from_snapshot(catalog: Arc<CatalogIndex>, settings: Settings, snapshot: Snapshot) -> Self {
        let mut world = World::new(catalog, settings, snapshot.salt);
        world.next_seq = snapshot.next_seq.max(1);
        world.apply(Mutation { put: snapshot.records, tokens: snapshot.tokens, stock: snapshot.stock });
        world
    }

    /// The whole state.
    pub fn snapshot(&self) -> Snapshot {
        let mut tokens: Vec<TokenRecord> = self.tokens.values().cloned().collect();
        tokens.sort_by_key(TokenRecord::key);
        Snapshot {
            salt: self.salt,
            next_seq: self.next_seq,
            records: self.records.values().cloned().collect(),
            tokens,
            stock: self
                .stock
                .iter()
                .map(|(offering, capacity)| Capacity { offering: offering.clone(), capacity: *capacity })
                .collect(),
        }
    }

    /// Number of instances, in every region.
    #[must_use]
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no instance is listed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Replays a journal entry (or a snapshot's contents).
    pub fn apply(&mut self, mutation: Mutation) {
        for record in mutation.put {
            self.put(record);
        }
        for token in mutation.tokens {
            self.tokens.insert(token.key(), token);
        }
        for set in mutation.stock {
            self.stock.insert(set.offering, set.capacity);
        }
    }

    fn put(&mut self, record: Record) {
        self.next_seq = self.next_seq.max(record.seq.saturating_add(1));
        if let Some(old) = self.records.remove(&record.seq) {
            self.unindex(&old);
        }
        self.index(&record);
        self.by_id.insert(record.instance.instance_id.clone(), record.seq);
        self.records.insert(record.seq, record);
    }

    fn remove(&mut self, seq: u64) {
        if let Some(old) = self.records.remove(&seq) {
            self.unindex(&old);
            self.by_id.remove(&old.instance.instance_id);
        }
    }

    fn index(&mut self, r: &Record) {
        if let Some(at) = r.wake_at() {
            self.queue.insert((at, r.seq));
        }
        let index = self.tags.entry(r.region.clone()).or_default();
        for tag in &r.instance.tags {
            index.entry(tag.key.clone()).or_default().entry(tag.value.clone()).or_default().insert(r.seq);
        }
        if r.holds_stock() {
            *self.held.entry(r.offering()).or_default() += 1;
        }
        if !r.holds_resources() {
            return;
        }
        let scope = r.ip_scope();
        for ip in r.instance.private_ip_addresses.iter().filter_map(|ip| parse_ipv4(ip)) {
            self.private_ips.insert((scope.clone(), ip));
        }
        for ip in r.instance.public_ip_addresses.iter().flatten().filter_map(|ip| parse_ipv4(ip)) {
            self.public_ips.insert(ip);
        }
        if let Some(host) = &r.instance.placement.host_id {
            let usage = self.host_usage.entry(host.clone()).or_default();
            usage.0 += r.instance.cpu;
            usage.1 += r.instance.memory;
        }
        *self.region_count.entry(r.region.clone()).or_default() += 1;
    }

    fn unindex(&mut self, r: &Record) {
        if let Some(at) = r.wake_at() {
            self.queue.remove(&(at, r.seq));
        }
        if let Some(index) = self.tags.get_mut(&r.region) {
            for tag in &r.instance.tags {
                if let Some(values) = index.get_mut(&tag.key) {
                    if let Some(set) = values.get_mut(&tag.value) {
                        set.remove(&r.seq);
                        if set.is_empty() {
                            values.remove(&tag.value);
                        }
                    }
                    if values.is_empty() {
                        index.remove(&tag.key);
                    }
                }
            }
        }
        if r.holds_stock()
            && let Some(held) = self.held.get_mut(&r.offering())
        {
            *held = held.saturating_sub(1);
        }
        if !r.holds_resources() {
            return;
        }
        let scope = r.ip_scope();
        for ip in r.instance.private_ip_addresses.iter().filter_map(|ip| parse_ipv4(ip)) {
            self.private_ips.remove(&(scope.clone(), ip));
        }
        for ip in r.instance.public_ip_addresses.iter().flatten().filter_map(|ip| parse_ipv4(ip)) {
            self.public_ips.remove(&ip);
        }
        if let Some(host) = &r.instance.placement.host_id
            && let Some(usage) = self.host_usage.get_mut(host)
        {
            usage.0 -= r.instance.cpu;
            usage.1 -= r.instance.memory;
        }
        if let Some(count) = self.region_count.get_mut(&r.region) {
            *count = count.saturating_sub(1);
        }
    }

    /// Applies every transition due at `now_ms`.
    pub fn advance(&mut self, now_ms: i64) {
        let mut reclaimed = Vec::new();
        while let Some(&(at, seq)) = self.queue.first() {
            if at > now_ms {
                break;
            }
            let Some(mut record) = self.records.get(&seq).cloned() else {
                self.queue.remove(&(at, seq));
                continue;
            };
            let gone = self.step(&mut record, now_ms, &mut reclaimed);
            if gone {
                self.remove(seq);
            } else {
                self.put(record);
            }
        }
        self.log_reclaims(reclaimed);
    }

    /// Moves a record through every transition due at `now_ms`; `true` when it is gone. Spot
    /// reclamations that happen are added to `reclaimed`.
    fn step(&self, r: &mut Record, now_ms: i64, reclaimed: &mut Vec<Reclaim>) -> bool {
        loop {
            if let Some(at) = r.reclaim_at.filter(|&at| at <= now_ms) {
                // A reclamation due before every other transition happens first.
                let first = r.next.is_none_or(|t| at < t.at) && r.terminate_at.is_none_or(|t| at < t);
                if first {
                    if let Some(event) = market::reclaim(r, at, self.settings.terminate_delay_ms, "rate") {
                        reclaimed.push(event);
                    }
                    continue;
                }
            }
            let timer_due = r.terminate_at.is_some_and(|t| t <= now_ms);
            let next_due = r.next.filter(|t| t.at <= now_ms);
            // Whichever is earlier happens first.
            let take_timer = match (next_due, timer_due) {
                (Some(t), true) => r.terminate_at.is_some_and(|timer| timer < t.at),
                (None, true) => true,
                (_, false) => false,
            };
            if take_timer {
                let at = r.terminate_at.take().unwrap_or(now_ms);
                if !matches!(r.instance.state(), InstanceState::Terminating | InstanceState::LaunchFailed) {
                    set_operation(&mut r.instance, "TerminateInstances", "OPERATING", None);
                    r.instance.instance_state = InstanceState::Terminating.into();
                    r.next = Some(Transition { at: at + self.settings.terminate_delay_ms, to: Step::Gone });
                }
                continue;
            }
            let Some(t) = next_due else { return false };
            r.next = None;
            match t.to {
                Step::Gone => return true,
                Step::Running => {
                    r.instance.instance_state = InstanceState::Running.into();
                    r.instance.latest_operation_state = Some("SUCCESS".into());
                }
                Step::Stopped => {
                    r.instance.instance_state = InstanceState::Stopped.into();
                    r.instance.latest_operation_state = Some("SUCCESS".into());
                }
                Step::LaunchFailed | Step::LaunchFailedNoStock => {
                    r.instance.instance_state = InstanceState::LaunchFailed.into();
                    r.instance.latest_operation_state = Some("FAILED".into());
                    r.instance.latest_operation_error_msg = Some(if t.to == Step::LaunchFailed {
                        "The instance failed to launch (injected launch failure); submit a new request."
                            .into()
                    } else {
                        market::no_stock_message(&r.instance)
                    });
                    r.reclaim_at = None;
                    r.instance.private_ip_addresses.clear();
                    r.instance.virtual_private_cloud.private_ip_addresses = None;
                    r.instance.public_ip_addresses = None;
                    r.terminate_at = None;
                    r.next = Some(Transition {
                        at: t.at + self.settings.launch_failed_retention_ms,
                        to: Step::Gone,
                    });
                }
            }
        }
    }

    /// The listed instances of every region, in creation order.
    pub fn instances(&self) -> impl Iterator<Item = &Instance> {
        self.records.values().map(|r| &r.instance)
    }

    /// A listed instance.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<&Instance> {
        self.record_by_id(id).map(|r| &r.instance)
    }

    /// The policy for reused ClientTokens, from now on.
    pub fn set_token_mode(&mut self, mode: TokenMode) {
        self.settings.token_mode = mode;
    }

    fn record_by_id(&self, id: &str) -> Option<&Record> {
        self.by_id.get(id).and_then(|seq| self.records.get(seq))
    }
}

/// Sets the `LatestOperation*` fields.
fn set_operation(instance: &mut Instance, operation: &str, op_state: &str, request_id: Option<&str>) {
    instance.latest_operation = Some(operation.into());
    instance.latest_operation_state = Some(op_state.into());
    if let Some(id) = request_id {
        instance.latest_operation_request_id = Some(id.into());
    }
    instance.latest_operation_error_msg = Some(String::new());
}

#[cfg(test)]
mod market_tests;
#[cfg(test)]
pub(crate) mod tests;
