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

/// A group's share of one zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredZone {
    /// Zone, e.g. `ap-guangzhou-3`.
    pub zone: String,
    /// Instances wanted in this zone.
    pub replicas: u32,
    /// Subnet for this zone, overriding the template's.
    pub subnet_id: Option<String>,
    /// Explicit private IPs, one instance each (then `replicas` equals their count).
    pub private_ips: Vec<std::net::Ipv4Addr>,
}

impl DesiredGroup {
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
        groups: fleet.groups.iter().map(|group| group_from_spec(fleet, group)).collect(),
        orphans: fleet.orphan,
        max_monthly_cost_increase: fleet.policies.max_monthly_cost_increase,
    }
}

fn group_from_spec(fleet: &cvmfleet_spec::Fleet, group: &cvmfleet_spec::Group) -> DesiredGroup {
    // The password is a reference in the spec; the plan keeps the reference and the executor
    // reads the value when it sends the request.
    let RequestTemplate { request: template, password } = group.template.to_request();
    let password = password.map(|reference| PasswordSource::of(&reference));
    let zones = group
        .placements
        .iter()
        .map(|p| DesiredZone {
            zone: p.zone.clone(),
            replicas: p.replicas,
            subnet_id: p.subnet_id.clone(),
            private_ips: p.private_ips.clone(),
        })
        .collect();
    DesiredGroup {
        name: group.name.clone(),
        template,
        password,
        replacement_hash: group.template.replacement_hash().short(),
        zones,
        max_terminate_percent: fleet.policies.max_terminate_percent,
        policies: group.policies,
        adopt: group.adopt.clone(),
        capacity: group.capacity.clone(),
    }
}
