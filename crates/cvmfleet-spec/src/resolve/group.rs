//! Resolution of one group: its zones, network and private IPs checked, its replicas, adoption,
//! policies and offerings settled, and its template reduced to the zone-independent part the
//! planner hashes. Each step is a function of its own; `resolve_group` runs them in order.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;

use super::{Group, LaunchTemplate, ZonePlacement, location};
use crate::diagnostic::Diagnostic;
use crate::model::{FleetSpec, GroupSpec, ZoneEntry};
use crate::offering::ZonePolicy;
use crate::policy::{DriftPolicies, FleetDriftSpec, GroupPolicies, MonthlyAmount, Rollout};
use crate::rules::{self, Locator};
use crate::schema::span_of;
use crate::source::Span;
use crate::template::{Tag, TagSpecification, Template, VirtualPrivateCloud};

/// Checks a group and computes its placements.
#[allow(clippy::too_many_arguments)]
pub(super) fn resolve_group(
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
    let zones = group_zones(at, fleet, group, &template, name_span, out)?;
    check_zones(at, fleet, group, &zones, out);
    let network = Network::of(&template, &zones, at);
    check_vpc(at, group, &template, &zones, &network, out);
    let (mut ip_lists, ip_count) = private_ips(at, group, &zones, &network, all_ips, out);
    let replicas = group_replicas(at, group, ip_count, network.any_ips(), name_span, out);
    let adopt = group.adopt.clone().unwrap_or_default();
    check_adopt(at, group, &adopt, replicas, out);
    let policies = group_policies(at, fleet, group, out);
    let zone_policy = group.zone_policy.unwrap_or_default();
    check_zone_policy(at, group, zone_policy, ip_count, out);
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
    let placements = spread(&zones, &network, &mut ip_lists, ip_count, zone_policy, replicas);

    // Names depend on how many instances one call creates: at most a zone's share.
    let largest_call = placements.iter().map(|p| p.replicas).max().unwrap_or(0);
    rules::check_names(at, &template, largest_call, out);
    if out.len() > before {
        return None;
    }
    zone_independent(&mut template, base_dir);
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

/// The group's zones: its `zones` list, or the single-zone shorthand Placement.Zone. `None`
/// (with a diagnostic) when it gives both or neither, since nothing else can be checked then.
fn group_zones(
    at: &Locator<'_>,
    fleet: &FleetSpec,
    group: &GroupSpec,
    template: &Template,
    name_span: Span,
    out: &mut Vec<Diagnostic>,
) -> Option<Vec<ZoneEntry>> {
    let shorthand = template.placement.as_ref().and_then(|p| p.zone.clone());
    match (&group.zones, shorthand) {
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
            None
        }
        (Some(zones), None) => Some(zones.clone()),
        (None, Some(zone)) => Some(vec![ZoneEntry::Name(zone)]),
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
            None
        }
    }
}

/// Checks that every zone is in the fleet's region and is listed once.
fn check_zones(
    at: &Locator<'_>,
    fleet: &FleetSpec,
    group: &GroupSpec,
    zones: &[ZoneEntry],
    out: &mut Vec<Diagnostic>,
) {
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
}

/// The group's network settings side by side: the template's VPC and what each zone entry adds.
struct Network {
    /// `VirtualPrivateCloud` of the template (default when unset).
    vpc: VirtualPrivateCloud,
    /// `SubnetId` of each zone entry, in zone order.
    zone_subnets: Vec<Option<String>>,
    /// `PrivateIpAddresses` of each zone entry, in zone order.
    zone_ips: Vec<Option<Vec<String>>>,
    /// Pointer to the group's `zones`, where zone-level findings point.
    zones_ptr: String,
}

impl Network {
    /// Collects the VPC of `template` and the per-zone settings of `zones`.
    fn of(template: &Template, zones: &[ZoneEntry], at: &Locator<'_>) -> Network {
        let zone_subnets = zones
            .iter()
            .map(|z| match z {
                ZoneEntry::Detailed(d) => d.subnet_id.clone(),
                ZoneEntry::Name(_) => None,
            })
            .collect();
        let zone_ips = zones
            .iter()
            .map(|z| match z {
                ZoneEntry::Detailed(d) => d.private_ip_addresses.clone(),
                ZoneEntry::Name(_) => None,
            })
            .collect();
        Network {
            vpc: template.virtual_private_cloud.clone().unwrap_or_default(),
            zone_subnets,
            zone_ips,
            zones_ptr: format!("{}/zones", at.group_ptr),
        }
    }

    /// Whether any zone entry lists private IPs.
    fn zones_list_ips(&self) -> bool {
        self.zone_ips.iter().any(Option::is_some)
    }

    /// Whether private IPs are listed anywhere, in the VPC or in a zone entry.
    fn any_ips(&self) -> bool {
        self.vpc.private_ip_addresses.is_some() || self.zones_list_ips()
    }
}

/// Checks the VPC settings: subnets and IPs need a VPC ID, a VPC needs a subnet for every zone,
/// and one template-level subnet cannot serve several zones.
fn check_vpc(
    at: &Locator<'_>,
    group: &GroupSpec,
    template: &Template,
    zones: &[ZoneEntry],
    net: &Network,
    out: &mut Vec<Diagnostic>,
) {
    let vpc = &net.vpc;
    let any_subnet = vpc.subnet_id.is_some() || net.zone_subnets.iter().any(Option::is_some);
    if vpc.vpc_id.is_none() && (any_subnet || net.any_ips()) {
        let (ptr, span) = if template.virtual_private_cloud.is_some() {
            at.locate("/VirtualPrivateCloud")
        } else {
            (net.zones_ptr.clone(), span_of(at.doc, &net.zones_ptr, true))
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
            .zip(&net.zone_subnets)
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
        let relying = net.zone_subnets.iter().filter(|s| s.is_none()).count();
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
}

/// The group's private IPs, parsed and assigned to zones (one list per zone), and how many are
/// listed; `None` when the API chooses them. Every parsed IP is also added to `all_ips` for the
/// fleet-wide uniqueness check.
fn private_ips(
    at: &Locator<'_>,
    group: &GroupSpec,
    zones: &[ZoneEntry],
    net: &Network,
    all_ips: &mut Vec<(Ipv4Addr, Span, String)>,
    out: &mut Vec<Diagnostic>,
) -> (Vec<Vec<Ipv4Addr>>, Option<usize>) {
    let mut ip_lists: Vec<Vec<Ipv4Addr>> = vec![Vec::new(); zones.len()];
    let mut ip_count: Option<usize> = None;
    if let Some(list) = &net.vpc.private_ip_addresses {
        let (ptr, span) = at.locate("/VirtualPrivateCloud/PrivateIpAddresses");
        if net.zones_list_ips() {
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
            parse_ips(at, &ptr, list, &mut ip_lists[0], all_ips, out);
            ip_count = Some(list.len());
        }
    } else if net.zones_list_ips() {
        let without: Vec<&str> =
            zones.iter().zip(&net.zone_ips).filter(|(_, ips)| ips.is_none()).map(|(z, _)| z.zone()).collect();
        if without.is_empty() {
            let mut total = 0;
            for (i, list) in net.zone_ips.iter().enumerate() {
                if let Some(list) = list {
                    let ptr_base = format!("{}/{i}/PrivateIpAddresses", net.zones_ptr);
                    parse_ips(at, &ptr_base, list, &mut ip_lists[i], all_ips, out);
                    total += list.len();
                }
            }
            ip_count = Some(total);
        } else {
            out.push(Diagnostic::new(
                at.source,
                span_of(at.doc, &net.zones_ptr, true),
                &net.zones_ptr,
                "semantic.private-ips-partial",
                format!(
                    "some zones list private IPs but {} do{} not; either every zone lists its IPs or none does",
                    without.iter().map(|z| format!("`{z}`")).collect::<Vec<_>>().join(", "),
                    if without.len() == 1 { "es" } else { "" }
                ),
            ));
        }
    }
    (ip_lists, ip_count)
}

/// Parses the IPs of one list (at `ptr_base`) into `into` and `all_ips`; an entry that is no
/// IPv4 address gets a diagnostic.
fn parse_ips(
    at: &Locator<'_>,
    ptr_base: &str,
    list: &[String],
    into: &mut Vec<Ipv4Addr>,
    all_ips: &mut Vec<(Ipv4Addr, Span, String)>,
    out: &mut Vec<Diagnostic>,
) {
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
}

/// The group's replica count: `replicas`, else the number of private IPs. A count that
/// disagrees with the IPs, or neither being given, is a diagnostic.
fn group_replicas(
    at: &Locator<'_>,
    group: &GroupSpec,
    ip_count: Option<usize>,
    any_ips: bool,
    name_span: Span,
    out: &mut Vec<Diagnostic>,
) -> u32 {
    let replicas_ptr = format!("{}/replicas", at.group_ptr);
    match (group.replicas, ip_count) {
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
    }
}

/// Checks that the group adopts no more instances than it has replicas: adoption never
/// terminates, so the surplus could never be reconciled.
fn check_adopt(
    at: &Locator<'_>,
    group: &GroupSpec,
    adopt: &[String],
    replicas: u32,
    out: &mut Vec<Diagnostic>,
) {
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
}

/// Checks that `zonePolicy: priority` is not combined with listed private IPs, which fix each
/// zone's count.
fn check_zone_policy(
    at: &Locator<'_>,
    group: &GroupSpec,
    zone_policy: ZonePolicy,
    ip_count: Option<usize>,
    out: &mut Vec<Diagnostic>,
) {
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
}

/// The group's placements: one per zone, with the zone's IPs (taken from `ip_lists`) and
/// subnet. Without IPs the replicas spread deterministically: evenly (zone i gets n/k plus one
/// when i < n mod k), or all in the first zone under `zonePolicy: priority`.
fn spread(
    zones: &[ZoneEntry],
    net: &Network,
    ip_lists: &mut [Vec<Ipv4Addr>],
    ip_count: Option<usize>,
    zone_policy: ZonePolicy,
    replicas: u32,
) -> Vec<ZonePlacement> {
    let k = u32::try_from(zones.len()).unwrap_or(u32::MAX).max(1);
    zones
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let ips = std::mem::take(&mut ip_lists[i]);
            let count = if ip_count.is_some() {
                u32::try_from(ips.len()).unwrap_or(u32::MAX)
            } else if zone_policy == ZonePolicy::Priority {
                // The zones fill in list order: every slot's home is the first zone.
                if i == 0 { replicas } else { 0 }
            } else {
                let i = u32::try_from(i).unwrap_or(u32::MAX);
                replicas / k + u32::from(i < replicas % k)
            };
            ZonePlacement {
                zone: entry.zone().to_owned(),
                replicas: count,
                subnet_id: net.zone_subnets[i].clone().or_else(|| net.vpc.subnet_id.clone()),
                private_ips: ips,
            }
        })
        .collect()
}

/// Reduces the template to its zone-independent part (Zone, SubnetId and PrivateIpAddresses
/// live in the placements), folds its tags and anchors the password to the spec's directory.
fn zone_independent(template: &mut Template, base_dir: Option<&Path>) {
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
    fold_tags(template);
    if let Some(password) = template.login_settings.as_mut().and_then(|l| l.password.as_mut()) {
        password.set_base_dir(base_dir);
    }
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
