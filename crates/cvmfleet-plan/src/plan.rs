//! The plan: every decision made, nothing left to the executor but carrying it out.
//!
//! A plan serializes to a versioned JSON document (`cvmfleet plan --format json` and
//! `--out plan.json`); see [`FORMAT_VERSION`].

use serde::{Deserialize, Serialize};

use cvmfleet_wire::api::RunInstancesRequest;

use crate::cost::Cost;
use crate::desired::PasswordSource;
use crate::drift::Drift;
use crate::token::TokenSeed;

/// Version of the plan document. Bumped on any incompatible change; `apply` refuses plans of
/// another version. Version 2 added starts, rolling replacement steps and the drift list (a
/// version-1 reader would silently skip the starts); version 3 made creates pool generations
/// (`token_seed.slots.pool`, `token_seed.request_digest`) and dropped `skip_generations`: the
/// executor no longer chooses generations.
pub const FORMAT_VERSION: u32 = 3;

/// A complete plan for a set of fleets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// [`FORMAT_VERSION`] of the document.
    pub format_version: u32,
    /// Hash of the observed facts the plan was made from; `apply plan.json` refuses to run when
    /// the cloud no longer has this fingerprint.
    pub fingerprint: String,
    /// Per-fleet changes, sorted by fleet name.
    pub fleets: Vec<FleetPlan>,
    /// Reasons the plan must not be applied as is (safety limits); empty when it may.
    pub refusals: Vec<Refusal>,
    /// Things worth knowing that do not block the plan.
    pub warnings: Vec<String>,
    /// Every difference between the specs and the cloud, with what this plan does about it;
    /// sorted by fleet, group, zone, kind and instance.
    pub drift: Vec<Drift>,
    /// Counts.
    pub summary: Summary,
    /// Seal of the plan's content ([`Plan::seal`]): `apply plan.json` refuses a plan whose
    /// content no longer matches it. Empty until the plan is written out.
    #[serde(default)]
    pub digest: String,
}

impl Plan {
    /// Seals the plan: `digest` becomes the SHA-256 of its canonical JSON (with `digest`
    /// empty), or its HMAC-SHA256 under `key` when one is shared between the job that plans
    /// and the one that applies (`CVMFLEET_PLAN_KEY`). Without a key the seal catches edits,
    /// truncation and tools rewriting the file, not someone who recomputes it; with a key,
    /// only holders of the key can make a plan `apply` accepts.
    pub fn seal(&mut self, key: Option<&[u8]>) {
        self.digest = self.content_digest(key);
    }

    /// Whether the plan is sealed and its content matches the seal.
    #[must_use]
    pub fn seal_holds(&self, key: Option<&[u8]>) -> bool {
        !self.digest.is_empty() && self.digest == self.content_digest(key)
    }

    /// Reads a plan saved by `cvmfleet plan --out` (or `--format json`): a JSON document of
    /// this [`FORMAT_VERSION`], well formed, whose content matches its seal.
    ///
    /// # Errors
    /// [`SavedPlanError`], saying which of those it is not.
    pub fn read_saved(bytes: &[u8], key: Option<&[u8]>) -> Result<Plan, SavedPlanError> {
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| SavedPlanError::NotAPlan)?;
        let version = value
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
            .ok_or(SavedPlanError::NotAPlan)?;
        if version != u64::from(FORMAT_VERSION) {
            return Err(SavedPlanError::Version { found: version });
        }
        let plan: Plan =
            serde_json::from_value(value).map_err(|e| SavedPlanError::Malformed(e.to_string()))?;
        if plan.fingerprint.len() != 64 || !plan.fingerprint.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SavedPlanError::Malformed("`fingerprint` is not a SHA-256 in hex".into()));
        }
        if !plan.seal_holds(key) {
            return Err(SavedPlanError::Seal);
        }
        Ok(plan)
    }

    fn content_digest(&self, key: Option<&[u8]>) -> String {
        let mut content = self.clone();
        content.digest.clear();
        // Typed structs serialize deterministically: fields in declaration order.
        let bytes = serde_json::to_vec(&content).unwrap_or_default();
        match key {
            Some(key) => format!("hmac-sha256:{}", cvmfleet_wire::sign::hmac_sha256_hex(key, &bytes)),
            None => format!("sha256:{}", cvmfleet_wire::sign::sha256_hex(&bytes)),
        }
    }

    /// Whether the plan changes nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.summary.changes() == 0
    }
}

/// Why a saved plan cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SavedPlanError {
    /// Not JSON, or no `format_version`.
    #[error("not a plan saved by `cvmfleet plan --out`")]
    NotAPlan,
    /// Another format version.
    #[error("a plan of format version {found}; this cvmfleet reads version {FORMAT_VERSION}")]
    Version {
        /// The version found.
        found: u64,
    },
    /// A field is missing or of the wrong kind.
    #[error("a malformed plan: {0}")]
    Malformed(String),
    /// The content does not match the seal.
    #[error(
        "the plan does not match its seal: it was changed after `cvmfleet plan` wrote it (or is sealed \
         with another CVMFLEET_PLAN_KEY)"
    )]
    Seal,
}

/// Counts of a plan, in instances, and what it costs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Instances to create (replacements included).
    pub create: u32,
    /// Instances to change in place.
    pub update: u32,
    /// Existing instances to adopt (ownership tags written, nothing created or terminated).
    #[serde(default)]
    pub adopt: u32,
    /// Stopped instances to start.
    pub start: u32,
    /// Instances to terminate (replaced ones included).
    pub terminate: u32,
    /// Of those, instances replaced (one create and one terminate each).
    pub replace: u32,
    /// Present instances that stay as they are.
    pub unchanged: u32,
    /// The monthly cost of every fleet of the plan, before and after it; absent when the plan
    /// was not priced (see [`crate::cost`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
}

impl Summary {
    /// Number of changes of any kind.
    #[must_use]
    pub fn changes(&self) -> u32 {
        self.create + self.update + self.start + self.terminate + self.adopt
    }
}

/// The plan of one fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetPlan {
    /// The project the fleet belongs to (its instances' `cvmfleet:project` tag).
    #[serde(default = "default_project")]
    pub project: String,
    /// Fleet name.
    pub name: String,
    /// Region.
    pub region: String,
    /// No spec declares this fleet in this region (deleted, renamed or moved): every instance
    /// is an orphan, kept unless pruned.
    #[serde(default)]
    pub orphan_fleet: bool,
    /// Per group, in spec order.
    pub groups: Vec<GroupPlan>,
    /// Instances tagged with the fleet whose group is not in the spec.
    pub orphans: Vec<Termination>,
    /// Whether orphans are terminated (prune allowed) or only shown.
    pub prune: bool,
    /// The fleet's monthly cost (its groups and orphans), before and after the plan; absent
    /// when the plan was not priced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
}

/// The plan of one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupPlan {
    /// Group name.
    pub name: String,
    /// Instances wanted.
    pub desired: u32,
    /// Instances present now (any template).
    pub present: u32,
    /// Existing instances adopted by this plan (`adopt:`), counted in `present`.
    #[serde(default)]
    pub adoptions: Vec<Adoption>,
    /// RunInstances calls, at most 100 instances each.
    pub creates: Vec<Create>,
    /// Instances to terminate.
    pub terminations: Vec<Termination>,
    /// Instances in `LAUNCH_FAILED`: they never run, the API refuses to terminate them and the
    /// cloud removes them itself; the plan replaces them and leaves them alone.
    pub launch_failed: Vec<Termination>,
    /// In-place changes.
    pub updates: Vec<Update>,
    /// Instances that cannot be acted on, with why (e.g. termination protection).
    pub blocked: Vec<Blocked>,
    /// Field-level differences between the replaced instances and the template, as
    /// `(field, observed, desired)`; empty unless instances are replaced.
    pub replacement_diff: Vec<FieldChange>,
    /// Stopped instances to start (StartInstances, at most 100 per call).
    pub starts: Vec<Start>,
    /// Instances of the current template that are still booting (or being started): the
    /// group's replacement terminations wait until they run, and are held back if they do not.
    pub await_running: Vec<String>,
    /// The step of a rolling replacement this plan makes, when instances are being replaced.
    pub rollout: Option<RolloutStep>,
    /// Slots no zone or offering the group accepts can take now (every candidate sold out or
    /// unavailable): nothing is created for them, and the group is reported as failed while
    /// the rest of the plan proceeds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unplaced: Vec<Unplaced>,
    /// Instances on a less preferred zone or offering than the best one with stock now: they
    /// count as present; with `rebalance: true` they are replaced under the rollout bounds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_fallback: Vec<OnFallback>,
    /// Instances the rolling replacement replaces in later steps, not in this plan: the plan's
    /// cost counts them as replaced, so that it shows what the whole change costs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaced_later: Vec<String>,
    /// The group's monthly cost before and after the plan (and its rollout); absent when the
    /// plan was not priced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
}

/// Slots of one home zone that cannot be placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unplaced {
    /// The slots' home zone.
    pub zone: String,
    /// How many.
    pub count: u32,
    /// Every candidate, and why it cannot take them.
    pub passed_over: Vec<crate::placement::PassedOver>,
}

/// An instance on a less preferred placement than one available now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnFallback {
    /// Instance ID.
    pub instance_id: String,
    /// Where it runs and on what, e.g. `SA2.MEDIUM2 in ap-guangzhou-4`.
    pub placement: String,
    /// The preferred placement that has stock now.
    pub preferred: String,
}

/// One StartInstances call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Start {
    /// Zone (for display).
    pub zone: String,
    /// Instances started (≤ 100), in one StartInstances call.
    pub instance_ids: Vec<String>,
    /// Some were still `STOPPING` when observed (StartInstances refuses them): the call is
    /// sent once every one of them has stopped.
    #[serde(default)]
    pub waits_for_transition: bool,
}

/// One step of a rolling replacement: at most `max_surge` instances above the group's size
/// and `max_unavailable` below it, new instances running before old ones go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutStep {
    /// Instances still to be replaced before this step.
    pub remaining: u32,
    /// Of those, replaced in this step.
    pub replacing: u32,
    /// Instances the group may have above its size (resolved from `maxSurge`).
    pub max_surge: u32,
    /// Instances the group may have below its size (resolved from `maxUnavailable`).
    pub max_unavailable: u32,
}

/// One RunInstances call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Create {
    /// Zone.
    pub zone: String,
    /// Instances this call creates (≤ 100).
    pub count: u32,
    /// What the token is derived from.
    pub token_seed: TokenSeed,
    /// The pool's generation this create is (see [`crate::token`]).
    pub generation: u32,
    /// The request to send, complete but for the password; its ClientToken and token tag are
    /// those of `generation`.
    pub request: RunInstancesRequest,
    /// Password to resolve at execution time.
    pub password: Option<PasswordSource>,
    /// Why the instances are created.
    pub reason: CreateReason,
    /// Instances that must be gone before this call (they hold the private IPs it needs; only
    /// groups with explicit IPs wait, see [`crate::token`]).
    pub wait_for_gone: Vec<String>,
    /// The slots' home zone, when the create launches elsewhere (a spread zone short of stock,
    /// or `zonePolicy: priority`): its pool and token are the home zone's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_zone: Option<String>,
    /// The offering it launches on (groups with `instanceTypes`; otherwise the template's
    /// InstanceType).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offering: Option<cvmfleet_spec::Offering>,
    /// The more preferred candidates passed over, with why (e.g. sold out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub passed_over: Vec<crate::placement::PassedOver>,
}

/// Why instances are created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreateReason {
    /// The group has fewer instances than wanted.
    Missing,
    /// They replace outdated or failed instances.
    Replacement,
}

/// One instance to terminate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Termination {
    /// Instance ID.
    pub instance_id: String,
    /// Zone.
    pub zone: String,
    /// Display name.
    pub name: String,
    /// State when observed.
    pub state: String,
    /// Why.
    pub reason: TerminateReason,
    /// Whether it goes only once everything its group creates, starts or awaits in this plan
    /// runs. When some of that did not come up, it is kept: the rollout stops and says why.
    #[serde(default)]
    pub waits_for_launches: bool,
    /// It was in a transition when observed (`PENDING`, `STARTING`, `STOPPING`, `REBOOTING`)
    /// during which TerminateInstances refuses it: its batch is sent once the transition ended.
    #[serde(default)]
    pub waits_for_transition: bool,
}

/// Why an instance is terminated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TerminateReason {
    /// More instances than wanted in its zone (the newest, or unhealthy ones, go first).
    Surplus,
    /// Its zone is no longer one of the group's.
    ZoneRemoved,
    /// Made from an older template; replaced.
    Outdated,
    /// Its instance type or image was changed out of band; replaced.
    Changed,
    /// Stopped, and the group's policy replaces stopped instances.
    Stopped,
    /// On a less preferred zone or offering while a better one has stock (`rebalance: true`).
    Rebalance,
    /// `LAUNCH_FAILED`; replaced (listed in [`GroupPlan::launch_failed`], never terminated).
    LaunchFailed,
    /// Its group is not in the spec.
    Orphan,
}

impl TerminateReason {
    /// Whether the instance goes only once its replacement runs (a rolling replacement).
    #[must_use]
    pub fn is_replacement(self) -> bool {
        matches!(
            self,
            TerminateReason::Outdated
                | TerminateReason::Changed
                | TerminateReason::Stopped
                | TerminateReason::Rebalance
        )
    }

    /// Whether the termination lowers capacity (as opposed to a replacement).
    #[must_use]
    pub fn reduces_capacity(self) -> bool {
        matches!(self, TerminateReason::Surplus | TerminateReason::ZoneRemoved | TerminateReason::Orphan)
    }

    /// Short human text.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            TerminateReason::Surplus => "surplus",
            TerminateReason::ZoneRemoved => "zone no longer in the group",
            TerminateReason::Outdated => "template changed",
            TerminateReason::Changed => "instance type or image changed out of band",
            TerminateReason::Stopped => "stopped; the group's policy replaces stopped instances",
            TerminateReason::Rebalance => "a more preferred zone or offering has stock again",
            TerminateReason::LaunchFailed => "LAUNCH_FAILED, replaced; the cloud removes it",
            TerminateReason::Orphan => "group not in spec",
        }
    }
}

/// An in-place change of one attribute on up to 100 instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    /// Zone (for display).
    pub zone: String,
    /// Instances changed.
    pub instance_ids: Vec<String>,
    /// The change.
    pub change: AttributeChange,
}

/// An attribute ModifyInstancesAttribute changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeChange {
    /// Rename.
    InstanceName {
        /// Current name.
        from: String,
        /// New name.
        to: String,
    },
    /// Replace the set of security groups.
    SecurityGroups {
        /// Current set.
        from: Vec<String>,
        /// New set.
        to: Vec<String>,
    },
}

/// An instance the plan should act on but may not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocked {
    /// Instance ID.
    pub instance_id: String,
    /// What was wanted and why it cannot happen.
    pub reason: String,
}

/// An existing instance brought under a group (issue 12 §4): the executor writes `tags` (the
/// ownership tags) with the Tag service, and from then on the instance is the group's. It
/// counts as present in this plan already, so the group creates only what adoption leaves
/// missing. Fields in `differences` that cannot change in place make it `outdated` afterwards
/// (its `cvmfleet:template` tag is then `adopted`): replaced under the rollout policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adoption {
    /// Instance ID.
    pub instance_id: String,
    /// Zone.
    pub zone: String,
    /// Display name.
    pub name: String,
    /// State when observed.
    pub state: String,
    /// The ownership tags written (project, fleet, group, template).
    pub tags: Vec<cvmfleet_wire::model::Tag>,
    /// Where the instance differs from the group's template.
    pub differences: Vec<FieldChange>,
}

/// A field that differs between observed instances and the template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    /// API field name.
    pub field: String,
    /// Observed value.
    pub observed: String,
    /// Desired value.
    pub desired: String,
}

/// Why a plan must not be applied without an explicit override.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// Fleet.
    pub fleet: String,
    /// Group, when the limit is per group.
    pub group: Option<String>,
    /// What the limit is and how to override it.
    pub message: String,
}

fn default_project() -> String {
    crate::desired::DEFAULT_PROJECT.to_owned()
}
