//! The spec file as written: fleets, groups, zones and policies. These types generate the JSON
//! Schema (`schemas/fleet.schema.json`) and receive the typed deserialization; the resolved,
//! validated model the planner uses lives in [`crate::resolve`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::offering::{OfferingEntry, OfferingPolicy, ZonePolicy};
use crate::policy::{FleetDriftSpec, GroupPoliciesSpec, RolloutSpec};
use crate::template::Template;

/// A cvmfleet spec file: one or more fleets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "cvmfleet fleet spec")]
pub struct SpecFile {
    /// The project these fleets belong to: the name of the spec set (a repository, or a
    /// directory of one). Every instance carries it in the `cvmfleet:project` tag, and cvmfleet
    /// reports and changes only its project's instances. Lowercase letters, digits and `-`,
    /// starting with a letter, at most 32 characters. Files that declare it must agree;
    /// `--project` / `CVMFLEET_PROJECT` override it; without either, `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$"))]
    pub project: Option<String>,
    /// Fleets declared in this file. Fleet names are unique across all files.
    pub fleets: Vec<FleetSpec>,
}

/// A fleet: named groups of interchangeable instances in one region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FleetSpec {
    /// Fleet name: lowercase letters, digits and `-`, starting with a letter, at most 32
    /// characters. Unique across all spec files.
    #[schemars(regex(pattern = r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$"))]
    pub name: String,
    /// Region of every instance in the fleet, e.g. `ap-guangzhou`.
    #[schemars(regex(pattern = r"^[a-z]+(-[a-z]+)+$"))]
    pub region: String,
    /// How far the reconciler may go when it converges this fleet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<PoliciesSpec>,
    /// Launch template settings every group inherits. A group's `template` is merged over
    /// these: the group wins, mappings merge key by key, lists are replaced whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<Template>,
    /// Groups of identical instances. Names are unique within the fleet.
    pub groups: Vec<GroupSpec>,
}

/// Reconciler policies of a fleet.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PoliciesSpec {
    /// Terminate managed instances that no group of this fleet declares any more (a removed
    /// group, for instance). Default: false (they are reported, not terminated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune: Option<bool>,
    /// Largest share of a group's current instances, in percent, that one plan may terminate
    /// without `--allow-mass-termination`: scale-down and instances in zones the group left.
    /// Replacements do not count (the new instances run before the old ones go). Default: 50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub max_terminate_percent: Option<u8>,
    /// Allow a plan that terminates every instance of the fleet. Default: false, which
    /// protects against deleting a whole fleet by mistake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_fleet_deletion: Option<bool>,
    /// What the reconciler does about each kind of drift (every difference between the specs
    /// and the cloud): `correct` (the default), `report` (never act on it) or `ignore`. Applies
    /// to `plan`, `apply`, `drift` and `watch` alike; groups override it key by key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<FleetDriftSpec>,
    /// Bounds of rolling replacements for every group; groups override them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutSpec>,
    /// The most one plan may add to the fleet's monthly cost, in the currency the cloud quotes
    /// (yuan): `plan` prices every change, and a plan whose groups together add more is
    /// refused unless `--allow-cost-increase` is given. A group with its own
    /// `maxMonthlyCostIncrease` is checked against that instead and leaves this sum. A price
    /// the cloud cannot give never refuses a plan: it is reported as a warning. Default: none
    /// (no bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_monthly_cost_increase: Option<f64>,
}

/// A group of interchangeable instances sharing one launch template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupSpec {
    /// Group name: lowercase letters, digits and `-`, starting with a letter, at most 32
    /// characters. Unique within the fleet.
    #[schemars(regex(pattern = r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$"))]
    pub name: String,
    /// Number of instances. May be left out when private IPs are listed (one instance per IP);
    /// when both are given they must agree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: Option<u32>,
    /// Zones to spread the instances over, evenly and in the listed order: with n replicas and
    /// k zones, zone i gets n/k instances plus one more when i < n mod k. An entry is a zone
    /// name or a mapping with `zone` and a per-zone `SubnetId` and `PrivateIpAddresses`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub zones: Option<Vec<ZoneEntry>>,
    /// RunInstances parameters (API names), merged over the fleet's `defaults`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<Template>,
    /// Drift and rollout policies of this group, over the fleet's `policies`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<GroupPoliciesSpec>,
    /// Existing instances (of this fleet's region) to bring under this group without
    /// recreating them: `apply` writes the ownership tags, and from then on they count as the
    /// group's (replaced later, under the rollout policy, if their launch settings differ).
    /// At most `replicas`; an instance can be adopted by one group only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(inner(regex(pattern = r"^ins-[a-z0-9]{8}$")), extend("uniqueItems" = true))]
    pub adopt: Option<Vec<String>>,
    /// The offerings the group accepts, in order of preference: each an instance type (billed
    /// as the template says), or a mapping with `InstanceType` and optionally
    /// `InstanceChargeType` and `InstanceMarketOptions` (so "spot first, on-demand when spot is
    /// short" is a two-item list). Creates go to the first offering with stock; instances on
    /// any of them count as present. Exclusive with the template's InstanceType; at most 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 10))]
    pub instance_types: Option<Vec<OfferingEntry>>,
    /// How instances are placed over `zones`: `spread` (the default: an even split, and slots
    /// a short zone cannot take go to the other zones meanwhile) or `priority` (the zones fill
    /// in list order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_policy: Option<ZonePolicy>,
    /// How `instanceTypes` are ordered: `priority` (the default: list order) or `cheapest` (by
    /// the price the cloud quotes in each zone; ties in list order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type_policy: Option<OfferingPolicy>,
    /// Move instances back to the preferred zone and offering once it has stock again, as a
    /// rolling replacement within `maxSurge`/`maxUnavailable`. Default: false (instances on a
    /// less preferred one stay, and are shown as such).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebalance: Option<bool>,
}

/// A zone of a group: its name, or its name with zone-specific network settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ZoneEntry {
    /// Zone name, e.g. `ap-guangzhou-3`.
    Name(#[schemars(regex(pattern = r"^[a-z]+(-[a-z]+)+-[0-9]+$"))] String),
    /// Zone with its own subnet and private IPs.
    Detailed(ZoneSpec),
}

/// A zone with zone-specific network settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneSpec {
    /// Zone name, e.g. `ap-guangzhou-3`; it must belong to the fleet's region.
    #[schemars(regex(pattern = r"^[a-z]+(-[a-z]+)+-[0-9]+$"))]
    pub zone: String,
    /// Subnet for the instances in this zone (a subnet lives in one zone); overrides
    /// `VirtualPrivateCloud.SubnetId`.
    #[serde(rename = "SubnetId", default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^subnet-[a-z0-9]{8}$"))]
    pub subnet_id: Option<String>,
    /// Private IPs of the instances in this zone, one instance each. When one zone lists IPs,
    /// every zone must.
    #[serde(rename = "PrivateIpAddresses", default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub private_ip_addresses: Option<Vec<String>>,
}

impl ZoneEntry {
    /// The zone's name.
    #[must_use]
    pub fn zone(&self) -> &str {
        match self {
            ZoneEntry::Name(zone) => zone,
            ZoneEntry::Detailed(spec) => &spec.zone,
        }
    }
}
