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
use crate::model::{FleetSpec, GroupSpec, ZoneEntry};
use crate::offering::ZonePolicy;
use crate::policy::{DriftPolicies, DriftPolicy, FleetDriftSpec, GroupPolicies, MonthlyAmount, Rollout};
use crate::rules::{self, Locator};
use crate::schema::span_of;
use crate::source::{Source, Span};
use crate::template::{Tag, TagSpecification, Template};
use crate::yaml::{Document, push_token};

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

/// Checks a group and computes its placements.
#[allow(clippy::too_many_arguments)]
fn resolve_group(
    at: &Locator<'_>,
    fleet: &FleetSpec,
    group: &GroupSpec,
    mut template: Template,
    base_dir: Option<&Path>,
    name_span: Span,
    all_ips: &mut Vec<(Ipv4Addr, Span, String)>,
    out: &mut Vec<Diagnostic>,
) -> Option<Group> {
    let before = out.len();
    rules::check_template(at, &group.name, &template, out);

    // Zones: the group's list, or the single-zone shorthand Placement.Zone.
    let shorthand = template.placement.as_ref().and_then(|p| p.zone.clone());
    let zones: Vec<ZoneEntry> = match (&group.zones, shorthand) {
        (Some(_), Some(zone)) => {
            let (ptr, span) = at.locate("/Placement/Zone");
            out.push(
                Diagnostic::new(
                    at.source,
                    span,
                    &ptr,
                    "semantic.zone-conflict",
                    format!(
                        "group `{}` lists `zones` and also sets Placement.Zone `{zone}`; give the zones in one place",
                        group.name
                    ),
                )
                .with_help("remove Placement.Zone: `zones` decides where instances go"),
            );
            return None;
        }
        (Some(zones), None) => zones.clone(),
        (None, Some(zone)) => vec![ZoneEntry::Name(zone)],
        (None, None) => {
            out.push(
                Diagnostic::new(
                    at.source,
                    name_span,
                    &format!("{}/name", at.group_ptr),
                    "semantic.zone-missing",
                    format!(
                        "group `{}` has no zone; expected `zones: [<zone>, ...]` (or Placement.Zone)",
                        group.name
                    ),
                )
                .with_help(format!("for example `zones: [{}-3]`", fleet.region)),
            );
            return None;
        }
    };
    let zones_ptr = format!("{}/zones", at.group_ptr);
    let zone_ptr = |i: usize| -> String {
        if group.zones.is_some() {
            let entry = format!("{zones_ptr}/{i}");
            if at.doc.index.contains_key(&format!("{entry}/zone")) { format!("{entry}/zone") } else { entry }
        } else {
            at.locate("/Placement/Zone").0
        }
    };
    let mut first_listed: HashMap<&str, usize> = HashMap::new();
    for (i, entry) in zones.iter().enumerate() {
        let zone = entry.zone();
        let ptr = zone_ptr(i);
        let span = span_of(at.doc, &ptr, false);
        let in_region = zone
            .strip_prefix(fleet.region.as_str())
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if !in_region {
            out.push(Diagnostic::new(
                at.source,
                span,
                &ptr,
                "semantic.zone-region",
                format!(
                    "zone `{zone}` is not in the fleet's region `{}`; expected `{}-<n>`",
                    fleet.region, fleet.region
                ),
            ));
        }
        if let Some(&first) = first_listed.get(zone) {
            out.push(
                Diagnostic::new(
                    at.source,
                    span,
                    &ptr,
                    "semantic.duplicate-zone",
                    format!("zone `{zone}` is listed twice"),
                )
                .with_related(
                    at.source,
                    span_of(at.doc, &zone_ptr(first), false),
                    "first listed here",
                ),
            );
        } else {
            first_listed.insert(zone, i);
        }
    }

    // Network: VPC, subnets, private IPs.
    let vpc = template.virtual_private_cloud.clone().unwrap_or_default();
    let zone_subnets: Vec<Option<String>> = zones
        .iter()
        .map(|z| match z {
            ZoneEntry::Detailed(d) => d.subnet_id.clone(),
            ZoneEntry::Name(_) => None,
        })
        .collect();
    let zone_ips: Vec<Option<Vec<String>>> = zones
        .iter()
        .map(|z| match z {
            ZoneEntry::Detailed(d) => d.private_ip_addresses.clone(),
            ZoneEntry::Name(_) => None,
        })
        .collect();
    let any_subnet = vpc.subnet_id.is_some() || zone_subnets.iter().any(Option::is_some);
    let any_ips = vpc.private_ip_addresses.is_some() || zone_ips.iter().any(Option::is_some);
    if vpc.vpc_id.is_none() && (any_subnet || any_ips) {
        let (ptr, span) = if template.virtual_private_cloud.is_some() {
            at.locate("/VirtualPrivateCloud")
        } else {
            (zones_ptr.clone(), span_of(at.doc, &zones_ptr, true))
        };
        out.push(Diagnostic::new(
            at.source,
            span,
            &ptr,
            "semantic.vpc-needs-vpc-id",
            format!("group `{}` sets a subnet or private IPs but no VirtualPrivateCloud.VpcId; expected a VPC ID like `vpc-2zxc8w1p`", group.name),
        ));
    }
    if vpc.vpc_id.is_some() {
        let missing: Vec<&str> = zones
            .iter()
            .zip(&zone_subnets)
            .filter(|(_, s)| s.is_none() && vpc.subnet_id.is_none())
            .map(|(z, _)| z.zone())
            .collect();
        if !missing.is_empty() {
            let (ptr, span) = at.locate("/VirtualPrivateCloud/VpcId");
            out.push(Diagnostic::new(
                at.source,
                span,
                &ptr,
                "semantic.vpc-needs-subnet",
                format!(
                    "group `{}` is in a VPC but has no subnet for zone {}; expected VirtualPrivateCloud.SubnetId, or `SubnetId` on each zone in `zones`",
                    group.name,
                    missing.iter().map(|z| format!("`{z}`")).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        let relying = zone_subnets.iter().filter(|s| s.is_none()).count();
        if let Some(subnet) = &vpc.subnet_id
            && relying > 1
        {
            let (ptr, span) = at.locate("/VirtualPrivateCloud/SubnetId");
            out.push(
                Diagnostic::new(
                    at.source,
                    span,
                    &ptr,
                    "semantic.subnet-multi-zone",
                    format!("subnet `{subnet}` is used for {relying} zones, but a subnet lives in one zone"),
                )
                .with_help(
                    "give each zone its own subnet: `zones: [{zone: <zone>, SubnetId: <subnet>}, ...]`",
                ),
            );
        }
    }

    // Private IPs: parsed, assigned to zones, and compared with replicas.
    let mut ip_lists: Vec<Vec<Ipv4Addr>> = vec![Vec::new(); zones.len()];
    let mut ip_count: Option<usize> = None;
    let mut parse_ips = |ptr_base: &str,
                         list: &[String],
                         into: &mut Vec<Ipv4Addr>,
                         out: &mut Vec<Diagnostic>| {
        for (i, text) in list.iter().enumerate() {
            let ptr = format!("{ptr_base}/{i}");
            let span = span_of(at.doc, &ptr, false);
            match text.parse::<Ipv4Addr>() {
                Ok(ip) => {
                    into.push(ip);
                    all_ips.push((ip, span, ptr));
                }
                Err(_) => out.push(Diagnostic::new(
                    at.source,
                    span,
                    &ptr,
                    "semantic.private-ip-invalid",
                    format!("`{text}` is not an IPv4 address; expected four numbers 0-255 like `10.0.1.18`"),
                )),
            }
        }
    };
    if let Some(list) = &vpc.private_ip_addresses {
        let (ptr, span) = at.locate("/VirtualPrivateCloud/PrivateIpAddresses");
        if zone_ips.iter().any(Option::is_some) {
            out.push(Diagnostic::new(
                at.source,
                span,
                &ptr,
                "semantic.private-ips-conflict",
                "private IPs are listed both in VirtualPrivateCloud.PrivateIpAddresses and in `zones`; list them in one place",
            ));
        } else if zones.len() > 1 {
            out.push(
                Diagnostic::new(
                    at.source,
                    span,
                    &ptr,
                    "semantic.private-ips-multi-zone",
                    format!("group `{}` spans {} zones, so it is ambiguous which zone each private IP is for", group.name, zones.len()),
                )
                .with_help("list the IPs per zone: `zones: [{zone: <zone>, SubnetId: <subnet>, PrivateIpAddresses: [...]}, ...]`"),
            );
        } else {
            parse_ips(&ptr, list, &mut ip_lists[0], out);
            ip_count = Some(list.len());
        }
    } else if zone_ips.iter().any(Option::is_some) {
        let without: Vec<&str> =
            zones.iter().zip(&zone_ips).filter(|(_, ips)| ips.is_none()).map(|(z, _)| z.zone()).collect();
        if without.is_empty() {
            let mut total = 0;
            for (i, list) in zone_ips.iter().enumerate() {
                if let Some(list) = list {
                    parse_ips(&format!("{zones_ptr}/{i}/PrivateIpAddresses"), list, &mut ip_lists[i], out);
                    total += list.len();
                }
            }
            ip_count = Some(total);
        } else {
            out.push(Diagnostic::new(
                at.source,
                span_of(at.doc, &zones_ptr, true),
                &zones_ptr,
                "semantic.private-ips-partial",
                format!(
                    "some zones list private IPs but {} do{} not; either every zone lists its IPs or none does",
                    without.iter().map(|z| format!("`{z}`")).collect::<Vec<_>>().join(", "),
                    if without.len() == 1 { "es" } else { "" }
                ),
            ));
        }
    }
    let replicas_ptr = format!("{}/replicas", at.group_ptr);
    let replicas = match (group.replicas, ip_count) {
        (Some(n), Some(count)) if n as usize != count => {
            out.push(Diagnostic::new(
                at.source,
                span_of(at.doc, &replicas_ptr, false),
                &replicas_ptr,
                "semantic.private-ip-count",
                format!("replicas is {n} but {count} private IP{} listed; one instance is created per IP, so they must agree", if count == 1 { " is" } else { "s are" }),
            ));
            n
        }
        (Some(n), _) => n,
        (None, Some(count)) => u32::try_from(count).unwrap_or(u32::MAX),
        (None, None) => {
            if !any_ips {
                out.push(Diagnostic::new(
                    at.source,
                    name_span,
                    &format!("{}/name", at.group_ptr),
                    "semantic.replicas-missing",
                    format!(
                        "group `{}` has neither `replicas` nor private IPs; expected `replicas: <count>`",
                        group.name
                    ),
                ));
            }
            0
        }
    };
    let adopt = group.adopt.clone().unwrap_or_default();
    if adopt.len() > replicas as usize {
        let ptr = format!("{}/adopt", at.group_ptr);
        out.push(Diagnostic::new(
            at.source,
            span_of(at.doc, &ptr, true),
            &ptr,
            "semantic.adopt-count",
            format!(
                "group `{}` adopts {} instances but has {replicas} replicas; expected at most {replicas} (adoption never terminates)",
                group.name,
                adopt.len()
            ),
        ));
    }
    let policies = group_policies(at, fleet, group, out);
    let zone_policy = group.zone_policy.unwrap_or_default();
    if zone_policy == ZonePolicy::Priority && ip_count.is_some() {
        let ptr = format!("{}/zonePolicy", at.group_ptr);
        out.push(Diagnostic::new(
            at.source,
            span_of(at.doc, &ptr, false),
            &ptr,
            "semantic.zone-policy-ips",
            format!(
                "group `{}` lists private IPs per zone, so each zone's count is fixed; `zonePolicy: priority` needs the API to choose the IPs",
                group.name
            ),
        ));
    }
    let offerings = match &group.instance_types {
        Some(entries) => {
            crate::offering::resolve_offerings(at, entries, group.template.as_ref(), &template, out)
        }
        None => Vec::new(),
    };
    if out.len() > before {
        return None;
    }
    let policies = policies?;
    let capacity = crate::offering::Capacity {
        offerings,
        zone_policy,
        offering_policy: group.instance_type_policy.unwrap_or_default(),
        rebalance: group.rebalance.unwrap_or(false),
    };
    if !capacity.offerings.is_empty() {
        // The offerings decide the instance type; one inherited from `defaults` gives way.
        template.instance_type = None;
    }

    // Deterministic even spread: zone i gets n/k plus one when i < n mod k.
    let k = u32::try_from(zones.len()).unwrap_or(u32::MAX).max(1);
    let placements: Vec<ZonePlacement> = zones
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let ips = std::mem::take(&mut ip_lists[i]);
            let count = if ip_count.is_some() {
                u32::try_from(ips.len()).unwrap_or(u32::MAX)
            } else if capacity.zone_policy == ZonePolicy::Priority {
                // The zones fill in list order: every slot's home is the first zone.
                if i == 0 { replicas } else { 0 }
            } else {
                let i = u32::try_from(i).unwrap_or(u32::MAX);
                replicas / k + u32::from(i < replicas % k)
            };
            ZonePlacement {
                zone: entry.zone().to_owned(),
                replicas: count,
                subnet_id: zone_subnets[i].clone().or_else(|| vpc.subnet_id.clone()),
                private_ips: ips,
            }
        })
        .collect();

    // Names depend on how many instances one call creates: at most a zone's share.
    let largest_call = placements.iter().map(|p| p.replicas).max().unwrap_or(0);
    rules::check_names(at, &template, largest_call, out);
    if out.len() > before {
        return None;
    }

    // The template proper: zone-independent, tags folded, password anchored to its file.
    if let Some(p) = template.placement.as_mut() {
        p.zone = None;
        if p.project_id.is_none() && p.host_ids.is_none() {
            template.placement = None;
        }
    }
    if let Some(v) = template.virtual_private_cloud.as_mut() {
        v.subnet_id = None;
        v.private_ip_addresses = None;
    }
    fold_tags(&mut template);
    if let Some(password) = template.login_settings.as_mut().and_then(|l| l.password.as_mut()) {
        password.set_base_dir(base_dir);
    }
    Some(Group {
        name: group.name.clone(),
        replicas,
        template: LaunchTemplate(template),
        placements,
        source: location(at.source, name_span),
        policies,
        adopt,
        capacity,
    })
}

/// The group's drift and rollout policies: the fleet's `policies`, overridden by the group's.
fn group_policies(
    at: &Locator<'_>,
    fleet: &FleetSpec,
    group: &GroupSpec,
    out: &mut Vec<Diagnostic>,
) -> Option<GroupPolicies> {
    let fleet_policies = fleet.policies.as_ref();
    let own = group.policies.as_ref();
    let fleet_drift = fleet_policies.and_then(|p| p.drift.as_ref()).map(FleetDriftSpec::for_groups);
    let drift = DriftPolicies::default().over(fleet_drift.as_ref()).over(own.and_then(|p| p.drift.as_ref()));
    let rollout = Rollout::default()
        .over(fleet_policies.and_then(|p| p.rollout.as_ref()))?
        .over(own.and_then(|p| p.rollout.as_ref()))?;
    if rollout.is_stuck() {
        let group_ptr = format!("{}/policies/rollout", at.group_ptr);
        let ptr = if at.doc.index.contains_key(&group_ptr) {
            group_ptr
        } else {
            format!("{}/policies/rollout", at.fleet_ptr)
        };
        out.push(
            Diagnostic::new(
                at.source,
                span_of(at.doc, &ptr, false),
                &ptr,
                "semantic.rollout-stuck",
                format!(
                    "group `{}` has maxSurge 0 and maxUnavailable 0, so a replacement could never start",
                    group.name
                ),
            )
            .with_help("allow one of them, e.g. `maxSurge: 1` (create first) or `maxUnavailable: 1`"),
        );
        return None;
    }
    let max_monthly_cost_increase =
        own.and_then(|p| p.max_monthly_cost_increase).and_then(MonthlyAmount::new);
    Some(GroupPolicies { drift, rollout, max_monthly_cost_increase })
}

/// Folds the `Tags` map into `TagSpecification` (ResourceType `instance`), sorted by resource
/// type and key so that tag order never changes a hash.
fn fold_tags(template: &mut Template) {
    let mut by_type: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>> =
        std::collections::BTreeMap::new();
    for spec in template.tag_specification.take().unwrap_or_default() {
        let entry = by_type.entry(spec.resource_type).or_default();
        for tag in spec.tags {
            entry.insert(tag.key, tag.value);
        }
    }
    if let Some(tags) = template.tags.take() {
        by_type.entry("instance".to_owned()).or_default().extend(tags);
    }
    by_type.retain(|_, tags| !tags.is_empty());
    if !by_type.is_empty() {
        template.tag_specification = Some(
            by_type
                .into_iter()
                .map(|(resource_type, tags)| TagSpecification {
                    resource_type,
                    tags: tags.into_iter().map(|(key, value)| Tag { key, value }).collect(),
                })
                .collect(),
        );
    }
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
