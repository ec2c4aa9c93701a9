//! The validated model the planner consumes, and the resolution that produces it: defaults
//! merged into group templates, zones and private IPs turned into a deterministic placement, and
//! the semantic rules checked on the way.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::diagnostic::Diagnostic;
use crate::hash::{TemplateHash, canonical_json, strip_defaults};
use crate::model::FleetSpec;
use crate::policy::{DriftPolicy, GroupPolicies, MonthlyAmount};
use crate::rules::Locator;
use crate::schema::span_of;
use crate::source::{Source, Span};
use crate::template::Template;
use crate::yaml::{Document, push_token};

mod group;

use group::resolve_group;

/// Every fleet of a set of spec files, sorted by name.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecSet {
    /// The project the files declare (`project:`), if any declares one; they agree.
    pub project: Option<String>,
    /// Fleets, sorted by name (names are unique).
    pub fleets: Vec<Fleet>,
}

/// Where something was declared.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SourceLocation {
    /// The file as named to the loader.
    pub file: String,
    /// Line, starting at 1.
    pub line: usize,
    /// Column, starting at 1.
    pub column: usize,
}

impl std::fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A validated fleet.
#[derive(Debug, Clone, PartialEq)]
pub struct Fleet {
    /// Unique fleet name.
    pub name: String,
    /// Region of all its instances.
    pub region: String,
    /// Reconciler policies, defaults applied.
    pub policies: FleetPolicies,
    /// Groups in declaration order (names unique within the fleet).
    pub groups: Vec<Group>,
    /// Where the fleet is declared (its `name`).
    pub source: SourceLocation,
    /// What to do about orphans (`policies.drift.orphan`).
    pub orphan: DriftPolicy,
}

/// Reconciler policies of a fleet, with defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FleetPolicies {
    /// Terminate managed instances that no group declares any more.
    pub prune: bool,
    /// Largest share (percent) of a group's current instances one plan may terminate to
    /// shrink it (replacements excluded) without an explicit override.
    pub max_terminate_percent: u8,
    /// Allow a plan that terminates every instance of the fleet.
    pub allow_fleet_deletion: bool,
    /// `maxMonthlyCostIncrease`: the most one plan may add to the monthly cost of the fleet's
    /// groups that set no bound of their own; `None`: no bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_monthly_cost_increase: Option<MonthlyAmount>,
}

impl FleetPolicies {
    /// `maxTerminatePercent` when the spec does not say: half the fleet at most per apply, so
    /// that a mistaken edit cannot take a fleet down in one go.
    pub const DEFAULT_MAX_TERMINATE_PERCENT: u8 = 50;
}

impl Default for FleetPolicies {
    fn default() -> FleetPolicies {
        FleetPolicies {
            prune: false,
            max_terminate_percent: FleetPolicies::DEFAULT_MAX_TERMINATE_PERCENT,
            allow_fleet_deletion: false,
            max_monthly_cost_increase: None,
        }
    }
}

/// A validated group of interchangeable instances.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Group name, unique within its fleet.
    pub name: String,
    /// Total number of instances (the sum over `placements`).
    pub replicas: u32,
    /// Launch template with the fleet's defaults merged in. Zone-specific settings (Zone,
    /// SubnetId, PrivateIpAddresses) are not in it: they are in `placements`.
    pub template: LaunchTemplate,
    /// How many instances go to each zone, in the order the zones are listed.
    pub placements: Vec<ZonePlacement>,
    /// Where the group is declared (its `name`).
    pub source: SourceLocation,
    /// Drift and rollout policies: the fleet's, overridden by the group's.
    pub policies: GroupPolicies,
    /// Existing instances to adopt (`adopt:`), as listed.
    pub adopt: Vec<String>,
    /// The offerings it accepts and how it places creates when stock is short.
    pub capacity: crate::offering::Capacity,
}

/// The instances of a group in one zone. The planner reads it as it is (as
/// `cvmfleet_plan::DesiredZone`), so it serializes with the planner's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ZonePlacement {
    /// Availability zone.
    pub zone: String,
    /// Number of instances in this zone (equals `private_ips.len()` when IPs are listed).
    pub replicas: u32,
    /// Subnet of the instances in this zone, when they are in a VPC.
    pub subnet_id: Option<String>,
    /// Primary private IPs of the instances in this zone, one each; empty when the API chooses.
    pub private_ips: Vec<Ipv4Addr>,
}

/// A group's launch template: RunInstances parameters under the API's names, with defaults
/// merged, `Tags` folded into `TagSpecification`, and no Zone, SubnetId, PrivateIpAddresses,
/// InstanceCount or ClientToken (the planner adds those per call).
///
/// `Serialize` yields the API's JSON shape, omitting unset fields; the password appears as its
/// reference (`{"fromEnv": "VAR"}`), never as a value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct LaunchTemplate(Template);

impl LaunchTemplate {
    /// The template's fields.
    #[must_use]
    pub fn fields(&self) -> &Template {
        &self.0
    }

    fn canonical(&self, drop_in_place_fields: bool) -> String {
        let mut value = serde_json::to_value(&self.0).unwrap_or(Value::Null);
        strip_defaults(&mut value);
        if drop_in_place_fields && let Some(map) = value.as_object_mut() {
            for field in LaunchTemplate::IN_PLACE_FIELDS {
                map.remove(*field);
            }
        }
        canonical_json(&value)
    }

    /// Fields the reconciler can change on a running instance (ModifyInstancesAttribute), and
    /// so excluded from [`LaunchTemplate::replacement_hash`].
    pub const IN_PLACE_FIELDS: &'static [&'static str] = &["InstanceName", "SecurityGroupIds"];

    /// SHA-256 over the canonical form: unchanged by formatting, key order, comments or defaults
    /// written out; changed by any value that reaches the API.
    #[must_use]
    pub fn canonical_hash(&self) -> TemplateHash {
        TemplateHash::of("cvmfleet-template-v1", &self.canonical(false))
    }

    /// Like [`LaunchTemplate::canonical_hash`] but without the fields that can change in place
    /// ([`LaunchTemplate::IN_PLACE_FIELDS`]): instances whose recorded replacement hash differs
    /// must be replaced.
    #[must_use]
    pub fn replacement_hash(&self) -> TemplateHash {
        TemplateHash::of("cvmfleet-replacement-v1", &self.canonical(true))
    }

    /// The canonical JSON the hashes are computed over (for diffs and debugging).
    #[must_use]
    pub fn canonical_json(&self) -> String {
        self.canonical(false)
    }

    /// The template's API JSON for instances in `placement`: adds `Placement.Zone` and
    /// `VirtualPrivateCloud.SubnetId`. InstanceCount, ClientToken and PrivateIpAddresses are
    /// left to the caller, which decides them per RunInstances call.
    #[must_use]
    pub fn api_params_for(&self, placement: &ZonePlacement) -> Value {
        let mut value = serde_json::to_value(&self.0).unwrap_or(Value::Null);
        if let Some(map) = value.as_object_mut() {
            let p = map.entry("Placement").or_insert_with(|| Value::Object(serde_json::Map::new()));
            if let Some(p) = p.as_object_mut() {
                p.insert("Zone".into(), Value::from(placement.zone.as_str()));
            }
            if let (Some(subnet), Some(vpc)) =
                (&placement.subnet_id, map.get_mut("VirtualPrivateCloud").and_then(Value::as_object_mut))
            {
                vpc.insert("SubnetId".into(), Value::from(subnet.as_str()));
            }
        }
        value
    }
}

/// Deep merge: mappings merge key by key (`over` wins), anything else is replaced by `over`.
pub(crate) fn merge(base: &Value, over: &Value) -> Value {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            let mut out = b.clone();
            for (k, v) in o {
                let merged = match out.get(k) {
                    Some(existing) if !v.is_null() => merge(existing, v),
                    Some(existing) => existing.clone(),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (_, Value::Null) => base.clone(),
        (_, o) => o.clone(),
    }
}

/// Turns a serde path into a JSON pointer below `base`.
fn serde_pointer(base: &str, path: &serde_path_to_error::Path) -> String {
    let mut pointer = base.to_owned();
    for segment in path.iter() {
        pointer = match segment {
            serde_path_to_error::Segment::Seq { index } => push_token(&pointer, &index.to_string()),
            serde_path_to_error::Segment::Map { key } => push_token(&pointer, key),
            serde_path_to_error::Segment::Enum { .. } | serde_path_to_error::Segment::Unknown => pointer,
        };
    }
    pointer
}

/// Deserializes a typed value from a JSON node, reporting failures as positioned diagnostics.
pub(crate) fn typed<T: serde::de::DeserializeOwned>(
    source: &Source,
    doc: &Document,
    pointer: &str,
    value: &Value,
    out: &mut Vec<Diagnostic>,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => Some(v),
        Err(err) => {
            let at = serde_pointer(pointer, err.path());
            out.push(Diagnostic::new(
                source,
                span_of(doc, &at, false),
                &at,
                "spec.type",
                err.inner().to_string(),
            ));
            None
        }
    }
}

/// A resolved fleet plus what cross-file checks need to point at.
pub(crate) struct LocatedFleet {
    pub(crate) fleet: Fleet,
    pub(crate) source: Source,
    pub(crate) name_span: Span,
    pub(crate) name_pointer: String,
    /// Every private IP of the fleet with its position.
    pub(crate) ips: Vec<(Ipv4Addr, Span, String)>,
    /// Every instance the fleet's groups adopt, with its position.
    pub(crate) adopts: Vec<(String, Span, String)>,
}

fn location(source: &Source, span: Span) -> SourceLocation {
    SourceLocation { file: source.name.clone(), line: span.start.line, column: span.start.column }
}

/// Resolves one fleet of a schema-valid document. The fleet is complete only when no diagnostic
/// was added.
pub(crate) fn resolve_fleet(
    source: &Source,
    doc: &Document,
    index: usize,
    base_dir: Option<&Path>,
    out: &mut Vec<Diagnostic>,
) -> Option<LocatedFleet> {
    let fleet_ptr = format!("/fleets/{index}");
    let raw = doc.value.pointer(&fleet_ptr)?;
    let spec: FleetSpec = typed(source, doc, &fleet_ptr, raw, out)?;
    let policies = spec.policies.clone().unwrap_or_default();
    let defaults_value = raw.get("defaults").cloned().unwrap_or(Value::Null);
    let mut groups = Vec::new();
    let mut ips = Vec::new();
    let mut adopts = Vec::new();
    // First use of each group name: one lookup per group, so 100,000 groups stay linear.
    let mut names: HashMap<&str, Span> = HashMap::new();
    for (g_index, group) in spec.groups.iter().enumerate() {
        let group_ptr = format!("{fleet_ptr}/groups/{g_index}");
        let name_ptr = format!("{group_ptr}/name");
        let name_span = span_of(doc, &name_ptr, false);
        if let Some(first) = names.get(group.name.as_str()) {
            out.push(
                Diagnostic::new(
                    source,
                    name_span,
                    &name_ptr,
                    "semantic.duplicate-group",
                    format!(
                        "group name `{}` is used twice in fleet `{}`; group names are unique within a fleet",
                        group.name, spec.name
                    ),
                )
                .with_related(source, *first, "first used here"),
            );
        } else {
            names.insert(&group.name, name_span);
        }
        for (i, id) in group.adopt.iter().flatten().enumerate() {
            let ptr = format!("{group_ptr}/adopt/{i}");
            adopts.push((id.clone(), span_of(doc, &ptr, false), ptr));
        }
        let template_value =
            raw.pointer(&format!("/groups/{g_index}/template")).cloned().unwrap_or(Value::Null);
        let merged = merge(&defaults_value, &template_value);
        let merged = if merged.is_null() { Value::Object(serde_json::Map::new()) } else { merged };
        let template_ptr = format!("{group_ptr}/template");
        let Some(template) = typed::<Template>(source, doc, &template_ptr, &merged, out) else {
            continue;
        };
        let locator = Locator { source, doc, fleet_ptr: &fleet_ptr, group_ptr: &group_ptr };
        if let Some(resolved) =
            resolve_group(&locator, &spec, group, template, base_dir, name_span, &mut ips, out)
        {
            groups.push(resolved);
        }
    }
    // Returned even when a group failed: the cross-file checks (fleet names, private IPs) still
    // run on it, and the caller reports failure as soon as there is any diagnostic.
    let name_pointer = format!("{fleet_ptr}/name");
    let name_span = span_of(doc, &name_pointer, false);
    Some(LocatedFleet {
        fleet: Fleet {
            name: spec.name.clone(),
            region: spec.region.clone(),
            policies: FleetPolicies {
                prune: policies.prune.unwrap_or(false),
                max_terminate_percent: policies
                    .max_terminate_percent
                    .unwrap_or(FleetPolicies::DEFAULT_MAX_TERMINATE_PERCENT),
                allow_fleet_deletion: policies.allow_fleet_deletion.unwrap_or(false),
                // The schema has ruled out negative amounts; YAML cannot spell NaN as a number.
                max_monthly_cost_increase: policies.max_monthly_cost_increase.and_then(MonthlyAmount::new),
            },
            groups,
            source: location(source, name_span),
            orphan: policies.drift.as_ref().and_then(|d| d.orphan).unwrap_or_default(),
        },
        source: source.clone(),
        name_span,
        name_pointer,
        ips,
        adopts,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_is_deep_and_over_wins() {
        let base = json!({"a": {"x": 1, "y": 2}, "l": [1, 2], "s": "base"});
        let over = json!({"a": {"y": 3}, "l": [9], "n": null});
        assert_eq!(merge(&base, &over), json!({"a": {"x": 1, "y": 3}, "l": [9], "s": "base", "n": null}));
    }
}
