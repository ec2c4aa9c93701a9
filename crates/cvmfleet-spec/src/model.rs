//! The spec file as written: fleets, groups, zones and policies. These types generate the JSON
//! Schema (`schemas/fleet.schema.json`) and receive the typed deserialization; the resolved,
//! validated model the planner uses lives in [`crate::resolve`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::offering::{OfferingEntry, OfferingPolicy, ZonePolicy};
use crate::policy::{FleetDriftSpec, GroupPoliciesSpec, RolloutSpec};
use crate::template::Template;

/// The one rule for project, fleet and group names, as the JSON Schema states it: lowercase
/// letters, digits and `-`, starting with a letter and not ending with `-`, at most 32
/// characters. Names become tag values, election keys and YAML scalars that need no quoting.
pub const NAME_PATTERN: &str = r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$";

/// Most replicas one group declares (the schema's maximum): a larger fleet is several groups,
/// as `cvmfleet import` writes it.
pub const MAX_REPLICAS: u32 = 1000;

/// What [`check_name`] says of a name that breaks [`NAME_PATTERN`].
pub const NAME_RULE: &str = "expected lowercase letters, digits and `-`, starting with a letter and not ending with `-`, at most 32 characters";

/// Checks a project, fleet or group name given outside a spec (a flag) by the rule the schema
/// applies inside one ([`NAME_PATTERN`]); the error is [`NAME_RULE`].
///
/// # Errors
/// [`NAME_RULE`] when `text` is not a name.
pub fn check_name(text: &str) -> Result<(), &'static str> {
    let bytes = text.as_bytes();
    let shaped = (1..=32).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && !text.ends_with('-');
    if shaped { Ok(()) } else { Err(NAME_RULE) }
}

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
    #[schemars(regex(pattern = NAME_PATTERN))]
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
    #[schemars(regex(pattern = NAME_PATTERN))]
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
    #[schemars(regex(pattern = NAME_PATTERN))]
    pub name: String,
    /// Number of instances. May be left out when private IPs are listed (one instance per IP);
    /// when both are given they must agree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = MAX_REPLICAS))]
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Whether the loader accepts `name` as a fleet name (no diagnostic at its pointer).
    fn schema_accepts(name: &str) -> bool {
        let quoted = serde_json::Value::from(name).to_string();
        let text = format!(
            "fleets:\n  - name: {quoted}\n    region: ap-guangzhou\n    groups:\n      - name: g\n        replicas: 0\n        zones: [ap-guangzhou-3]\n        template: {{ImageId: img-pmqg1cw7, InstanceType: S5.MEDIUM2}}\n"
        );
        match crate::load_str("a.yaml", &text) {
            Ok(_) => true,
            Err(diagnostics) => !diagnostics.iter().any(|d| d.pointer == "/fleets/0/name"),
        }
    }

    /// Issue 25 item 1: a name flag (`--project`, `import --fleet`) and a spec file accept the
    /// same names: `check_name` agrees with the schema's pattern.
    #[test]
    fn issue_25_check_name_is_the_schema_rule() {
        for name in ["imported", "a", "web-1", &"a".repeat(32)] {
            assert!(check_name(name).is_ok() && schema_accepts(name), "{name}");
        }
        for name in ["", "Bad_Name", &"a".repeat(33), "a:b", "é", "1web", "web-", "a\nfleets: []", "a b"] {
            assert!(check_name(name).is_err() && !schema_accepts(name), "{name:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn check_name_agrees_with_the_schema(name in "[a-z0-9A-Z_:é\n -]{0,36}") {
            prop_assert_eq!(check_name(&name).is_ok(), schema_accepts(&name), "{:?}", name);
        }
    }
}
