//! What the specs ask for, in the shape the planner needs: per fleet and group, the launch
//! request (without zone, count, token or secrets) and the resolved spread over zones.

use serde::{Deserialize, Serialize};

use cvmfleet_spec::{
    Capacity, DriftPolicy, GroupPolicies, MonthlyAmount, RequestTemplate, Secret, SecretError, SecretRef,
};
use cvmfleet_wire::api::RunInstancesRequest;

/// Where a login password comes from. Plans carry the reference, never the value; the executor
/// resolves it at the moment it sends RunInstances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PasswordSource {
    /// An environment variable's name.
    FromEnv(String),
    /// A file whose content (trailing newline trimmed) is the password.
    FromFile(String),
}

impl PasswordSource {
    /// The source a spec's secret reference names (relative files resolved against the spec
    /// file's directory).
    #[must_use]
    pub fn of(reference: &SecretRef) -> PasswordSource {
        match (reference.env_var(), reference.file_path()) {
            (Some(var), _) => PasswordSource::FromEnv(var.to_owned()),
            (None, path) => PasswordSource::FromFile(path.unwrap_or_default().display().to_string()),
        }
    }

    /// Reads the password now, through the spec crate's one secret reader (one rule for line
    /// breaks, empty values and non-Unicode variables; a typed error naming the reference).
    ///
    /// # Errors
    /// [`SecretError`] when the source cannot give a password.
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        match self {
            PasswordSource::FromEnv(var) => SecretRef::from_env(var),
            PasswordSource::FromFile(path) => SecretRef::from_file(path, None),
        }
        .resolve()
    }
}

impl std::fmt::Display for PasswordSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordSource::FromEnv(var) => write!(f, "env:{var}"),
            PasswordSource::FromFile(path) => write!(f, "file:{path}"),
        }
    }
}

/// The project of a spec set that declares none (and of `--project` unset): what `specs/` and
/// `examples/` run under.
pub const DEFAULT_PROJECT: &str = "default";

/// A fleet as the specs declare it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredFleet {
    /// The project (spec set) it belongs to; instances carry it in the `cvmfleet:project` tag
    /// and count as the fleet's only with it.
    pub project: String,
    /// Fleet name, unique across all specs; instances carry it in the `cvmfleet:fleet` tag.
    pub name: String,
    /// Region, e.g. `ap-guangzhou`.
    pub region: String,
    /// Whether instances of groups no longer in the spec may be terminated.
    pub prune: bool,
    /// Whether a plan may terminate every instance of the fleet.
    pub allow_deletion: bool,
    /// Groups, in spec order.
    pub groups: Vec<DesiredGroup>,
    /// What to do about orphans (`policies.drift.orphan`): `correct` terminates them when
    /// pruning is allowed.
    pub orphans: DriftPolicy,
    /// `policies.maxMonthlyCostIncrease`: the most one plan may add to the monthly cost of the
    /// fleet's groups that set no bound of their own (see [`crate::cost`]); `None`: no bound.
    #[serde(default)]
    pub max_monthly_cost_increase: Option<MonthlyAmount>,
}

/// A group of interchangeable instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredGroup {
    /// Group name, unique in its fleet.
    pub name: String,
    /// The launch request every instance is created from, without Placement.Zone,
    /// InstanceCount, ClientToken, password or ownership tags.
    pub template: RunInstancesRequest,
    /// Where the login password comes from, if any.
    pub password: Option<PasswordSource>,
    /// Hash of the fields that cannot change in place (16 hex); instances whose
    /// `cvmfleet:template` tag differs are replaced.
    pub replacement_hash: String,
    /// The spread over zones.
    pub zones: Vec<DesiredZone>,
    /// Most of the group's present instances one plan may terminate without being told
    /// explicitly, in percent.
    pub max_terminate_percent: u8,
    /// Drift policies and rolling replacement bounds.
    pub policies: GroupPolicies,
    /// Existing instances to bring under the group (`adopt:`): see [`crate::plan::Adoption`].
    #[serde(default)]
    pub adopt: Vec<String>,
    /// The offerings it accepts (`instanceTypes:`) and how creates are placed when stock is
    /// short: see [`crate::placement`].
    #[serde(default)]
    pub capacity: Capacity,
}

/// A group's share of one zone: the spec's own [`cvmfleet_spec::ZonePlacement`] (zone,
/// replicas, subnet, explicit IPs), which the planner reads as it is.
pub use cvmfleet_spec::ZonePlacement as DesiredZone;

impl DesiredGroup {
    /// A group `name` launching `template`, whose instances carry `replacement_hash`, in no zone
    /// yet and with what a spec that says nothing more resolves to: no password, no adoption,
    /// the default policies and capacity, and the fleet default `maxTerminatePercent`. The one
    /// way to build a group without a spec (tests, benches, examples); [`DesiredGroup::in_zone`]
    /// adds its zones.
    #[must_use]
    pub fn new(
        name: impl Into<String>,
        template: RunInstancesRequest,
        replacement_hash: impl Into<String>,
    ) -> DesiredGroup {
        DesiredGroup {
            name: name.into(),
            template,
            password: None,
            replacement_hash: replacement_hash.into(),
            zones: Vec::new(),
            max_terminate_percent: cvmfleet_spec::FleetPolicies::DEFAULT_MAX_TERMINATE_PERCENT,
            policies: GroupPolicies::default(),
            adopt: Vec::new(),
            capacity: Capacity::default(),
        }
    }

    /// The group with `replicas` instances wanted in `zone` too (after its other zones; no
    /// subnet of its own, IPs the API chooses).
    #[must_use]
    pub fn in_zone(mut self, zone: impl Into<String>, replicas: u32) -> DesiredGroup {
        self.zones.push(DesiredZone {
            zone: zone.into(),
            replicas,
            subnet_id: None,
            private_ips: Vec::new(),
        });
        self
    }

    /// The group a spec resolves to, in a fleet with `policies`: the spec's template as a
    /// request (its password as a reference: the executor reads the value when it sends), its
    /// replacement hash, zones, policies, adoptions and offerings.
    #[must_use]
    pub fn from_spec(policies: &cvmfleet_spec::FleetPolicies, group: &cvmfleet_spec::Group) -> DesiredGroup {
        let RequestTemplate { request: template, password } = group.template.to_request();
        DesiredGroup {
            name: group.name.clone(),
            template,
            password: password.map(|reference| PasswordSource::of(&reference)),
            replacement_hash: group.template.replacement_hash().short(),
            zones: group.placements.clone(),
            max_terminate_percent: policies.max_terminate_percent,
            policies: group.policies,
            adopt: group.adopt.clone(),
            capacity: group.capacity.clone(),
        }
    }

    /// Instances the group wants in all zones.
    #[must_use]
    pub fn replicas(&self) -> u32 {
        self.zones.iter().map(|z| z.replicas).sum()
    }

    /// The offerings the group accepts, in list order: its `instanceTypes`, or without them
    /// the template's InstanceType under its charge type (an empty type when the template names
    /// none, which the API then defaults).
    #[must_use]
    pub fn offerings(&self) -> Vec<cvmfleet_spec::Offering> {
        if !self.capacity.offerings.is_empty() {
            return self.capacity.offerings.clone();
        }
        vec![cvmfleet_spec::Offering {
            instance_type: self.template.instance_type.clone().unwrap_or_default(),
            charge_type: self.template.instance_charge_type.clone().unwrap_or_else(|| {
                cvmfleet_wire::vocab::InstanceChargeType::PostpaidByHour.as_str().to_owned()
            }),
            market_options: None,
        }]
    }

    /// The template's display name (API default `未命名` when unset).
    #[must_use]
    pub fn instance_name(&self) -> Option<&str> {
        self.template.instance_name.as_deref()
    }

    /// The template's security groups, sorted, as the API treats them: a set.
    #[must_use]
    pub fn security_groups(&self) -> Option<Vec<String>> {
        self.template.security_group_ids.as_ref().map(|sgs| {
            let mut sorted = sgs.clone();
            sorted.sort();
            sorted.dedup();
            sorted
        })
    }
}

/// Turns validated specs into the planner's input, for `project` (see [`project_of`]).
#[must_use]
pub fn from_spec(specs: &cvmfleet_spec::SpecSet, project: &str) -> Vec<DesiredFleet> {
    specs.fleets.iter().map(|fleet| fleet_from_spec(fleet, project)).collect()
}

/// The project a command works for: the one given (`--project`, `CVMFLEET_PROJECT`), else the
/// one the specs declare, else [`DEFAULT_PROJECT`].
#[must_use]
pub fn project_of(given: Option<&str>, specs: &cvmfleet_spec::SpecSet) -> String {
    given.or(specs.project.as_deref()).unwrap_or(DEFAULT_PROJECT).to_owned()
}

fn fleet_from_spec(fleet: &cvmfleet_spec::Fleet, project: &str) -> DesiredFleet {
    DesiredFleet {
        project: project.to_owned(),
        name: fleet.name.clone(),
        region: fleet.region.clone(),
        prune: fleet.policies.prune,
        allow_deletion: fleet.policies.allow_fleet_deletion,
        groups: fleet.groups.iter().map(|group| DesiredGroup::from_spec(&fleet.policies, group)).collect(),
        orphans: fleet.orphan,
        max_monthly_cost_increase: fleet.policies.max_monthly_cost_increase,
    }
}
