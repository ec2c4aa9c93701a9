//! The planner: a pure, deterministic function of desired fleets and observed instances.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use cvmfleet_wire::MAX_BATCH;
use cvmfleet_wire::api::RunInstancesRequest;
use cvmfleet_wire::model::{Placement, Tag, TagSpecification, VirtualPrivateCloud};

use crate::desired::{DesiredFleet, DesiredGroup, DesiredZone};
use crate::observed::{ObservedFleet, ObservedInstance, Presence, tags};
use crate::plan::{
    AttributeChange, Blocked, Create, CreateReason, FORMAT_VERSION, FieldChange, FleetPlan, GroupPlan, Plan,
    Refusal, Summary, TerminateReason, Termination, Update,
};
use crate::token::{Slots, TokenSeed, chunk_slots};

/// Switches that change what a plan may do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Terminate orphans even where the fleet's policy does not allow pruning (`--prune`).
    pub prune: bool,
    /// Lift the termination safety limits (`--allow-mass-termination`).
    pub allow_mass_termination: bool,
}

/// Plans the changes that make the observed fleets match the desired ones.
///
/// `observed` is keyed by fleet name; a fleet missing from it is taken as having no instances.
/// Same inputs, byte-identical plan.
#[must_use]
pub fn plan(
    desired: &[DesiredFleet],
    observed: &BTreeMap<String, ObservedFleet>,
    options: PlanOptions,
) -> Plan {
    let empty = ObservedFleet::default();
    let mut fleets: Vec<&DesiredFleet> = desired.iter().collect();
    fleets.sort_by(|a, b| a.name.cmp(&b.name));

    let mut plan = Plan {
        format_version: FORMAT_VERSION,
        fingerprint: fingerprint(desired, observed),
        fleets: Vec::new(),
        refusals: Vec::new(),
        warnings: Vec::new(),
        summary: Summary::default(),
    };
    for fleet in fleets {
        let seen = observed.get(&fleet.name).unwrap_or(&empty);
        let fleet_plan = plan_fleet(fleet, seen, options, &mut plan);
        plan.fleets.push(fleet_plan);
    }
    plan.summary = summarize(&plan.fleets);
    plan
}

/// Hash of the observed facts a plan depends on. State changes that do not affect planning
/// (PENDING becoming RUNNING) leave it unchanged, so a saved plan does not go stale merely
/// because instances finished booting.
#[must_use]
pub fn fingerprint(desired: &[DesiredFleet], observed: &BTreeMap<String, ObservedFleet>) -> String {
    let wanted: BTreeSet<&str> = desired.iter().map(|f| f.name.as_str()).collect();
    let mut lines: Vec<String> = Vec::new();
    for (fleet, seen) in observed.iter().filter(|(name, _)| wanted.contains(name.as_str())) {
        for i in &seen.instances {
            lines.push(format!(
                "{fleet}\0{}\0{:?}\0{}\0{:?}\0{:?}\0{:?}\0{}\0{}\0{}\0{}",
                i.id,
                i.presence(),
                i.zone,
                i.group,
                i.template,
                i.token,
                i.name,
                i.security_groups.join(","),
                i.private_ips.join(","),
                i.protected
            ));
        }
    }
    lines.sort();
    let mut hasher = Sha256::new();
    for line in &lines {
        hasher.update(line.as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}

fn plan_fleet(
    fleet: &DesiredFleet,
    seen: &ObservedFleet,
    options: PlanOptions,
    plan: &mut Plan,
) -> FleetPlan {
    let group_names: BTreeSet<&str> = fleet.groups.iter().map(|g| g.name.as_str()).collect();
    let mut by_group: BTreeMap<&str, Vec<&ObservedInstance>> = BTreeMap::new();
    let mut orphans = Vec::new();
    for instance in &seen.instances {
        match instance.group.as_deref() {
            Some(group) if group_names.contains(group) => by_group.entry(group).or_default().push(instance),
            _ if instance.presence() == Presence::Leaving => {}
            _ => orphans.push(termination(instance, TerminateReason::Orphan)),
        }
    }
    orphans.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    let prune = fleet.prune || options.prune;

    let groups: Vec<GroupPlan> = fleet
        .groups
        .iter()
        .map(|group| {
            plan_group(fleet, group, by_group.get(group.name.as_str()).map_or(&[][..], Vec::as_slice))
        })
        .collect();

    // Safety limits: refuse plans that shrink a group by more than its share, or that empty a
    // fleet, unless explicitly allowed.
    if !options.allow_mass_termination {
        for (group, gp) in fleet.groups.iter().zip(&groups) {
            let losing = gp.terminations.iter().filter(|t| t.reason.reduces_capacity()).count() as u64;
            if gp.present > 0 && losing * 100 > u64::from(group.max_terminate_percent) * u64::from(gp.present)
            {
                plan.refusals.push(Refusal {
                    fleet: fleet.name.clone(),
                    group: Some(group.name.clone()),
                    message: format!(
                        "would terminate {losing} of {} instances, more than the group's limit of {}%; \
                         re-run with --allow-mass-termination if this is intended",
                        gp.present, group.max_terminate_percent
                    ),
                });
            }
        }
        let present: u32 =
            groups.iter().map(|g| g.present).sum::<u32>() + u32::try_from(orphans.len()).unwrap_or(u32::MAX);
        let desired: u32 = groups.iter().map(|g| g.desired).sum();
        let pruned = if prune { orphans.len() } else { 0 };
        let terminating: usize = groups.iter().map(|g| g.terminations.len()).sum::<usize>() + pruned;
        if !fleet.allow_deletion && present > 0 && desired == 0 && terminating as u64 >= u64::from(present) {
            plan.refusals.push(Refusal {
                fleet: fleet.name.clone(),
                group: None,
                message: format!(
                    "would terminate every instance of the fleet ({present}); \
                     re-run with --allow-mass-termination if this is intended"
                ),
            });
        }
    }
    if !orphans.is_empty() && !prune {
        plan.warnings.push(format!(
            "fleet {}: {} instance(s) belong to groups no longer in the spec; they are kept \
             (set `policies.prune: true` or pass --prune to terminate them)",
            fleet.name,
            orphans.len()
        ));
    }
    for gp in &groups {
        for blocked in &gp.blocked {
            plan.warnings.push(format!(
                "fleet {} group {}: {}: {}",
                fleet.name, gp.name, blocked.instance_id, blocked.reason
            ));
        }
    }
    FleetPlan { name: fleet.name.clone(), region: fleet.region.clone(), groups, orphans, prune }
}

fn termination(instance: &ObservedInstance, reason: TerminateReason) -> Termination {
    Termination {
        instance_id: instance.id.clone(),
        zone: instance.zone.clone(),
        name: instance.name.clone(),
        state: instance.state.clone(),
        reason,
    }
}

/// Order in which surplus instances go: unhealthy first, then the newest.
fn surplus_order(a: &&ObservedInstance, b: &&ObservedInstance) -> std::cmp::Ordering {
    fn rank(state: &str) -> u8 {
        match state {
            "RUNNING" => 2,
            "PENDING" | "STARTING" | "REBOOTING" => 1,
            _ => 0,
        }
    }
    rank(&a.state)
        .cmp(&rank(&b.state))
        .then_with(|| b.created_time.cmp(&a.created_time))
        .then_with(|| b.id.cmp(&a.id))
}

fn plan_group(fleet: &DesiredFleet, group: &DesiredGroup, instances: &[&ObservedInstance]) -> GroupPlan {
    let mut gp = GroupPlan {
        name: group.name.clone(),
        desired: group.replicas(),
        present: u32::try_from(instances.iter().filter(|i| i.presence() == Presence::Present).count())
            .unwrap_or(u32::MAX),
        creates: Vec::new(),
        terminations: Vec::new(),
        launch_failed: Vec::new(),
        updates: Vec::new(),
        blocked: Vec::new(),
        replacement_diff: Vec::new(),
    };
    let spent_tokens: BTreeSet<&str> = instances.iter().filter_map(|i| i.token.as_deref()).collect();
    let zones: BTreeSet<&str> = group.zones.iter().map(|z| z.zone.as_str()).collect();
    let mut kept: Vec<&ObservedInstance> = Vec::new();
    let mut terminations: Vec<Termination> = Vec::new();

    for instance in instances.iter().filter(|i| i.presence() != Presence::Leaving) {
        if !zones.contains(instance.zone.as_str()) {
            terminations.push(termination(instance, TerminateReason::ZoneRemoved));
        }
    }
    for zone in &group.zones {
        let in_zone: Vec<&ObservedInstance> =
            instances.iter().copied().filter(|i| i.zone == zone.zone).collect();
        plan_zone(fleet, group, zone, &in_zone, &spent_tokens, &mut gp, &mut kept, &mut terminations);
    }

    // Termination protection: such instances cannot go; say so instead of planning it.
    for t in terminations {
        let protected = instances.iter().any(|i| i.id == t.instance_id && i.protected);
        if protected {
            gp.blocked.push(Blocked {
                instance_id: t.instance_id,
                reason: format!("termination protection is on; not terminated ({})", t.reason.describe()),
            });
        } else {
            gp.terminations.push(t);
        }
    }
    gp.terminations.sort_by(|a, b| (&a.zone, &a.instance_id).cmp(&(&b.zone, &b.instance_id)));

    if gp.terminations.iter().any(|t| t.reason == TerminateReason::Outdated) {
        let outdated: Vec<&ObservedInstance> = instances
            .iter()
            .copied()
            .filter(|i| {
                gp.terminations.iter().any(|t| t.instance_id == i.id && t.reason == TerminateReason::Outdated)
            })
            .collect();
        gp.replacement_diff = replacement_diff(group, &outdated);
    }
    gp.updates = plan_updates(group, &kept);
    gp
}

#[allow(clippy::too_many_arguments)]
fn plan_zone<'a>(
    fleet: &DesiredFleet,
    group: &DesiredGroup,
    zone: &DesiredZone,
    in_zone: &[&'a ObservedInstance],
    spent_tokens: &BTreeSet<&str>,
    gp: &mut GroupPlan,
    kept: &mut Vec<&'a ObservedInstance>,
    terminations: &mut Vec<Termination>,
) {
    let mut current: Vec<&ObservedInstance> = Vec::new();
    let mut replaced = 0u32;
    for instance in in_zone {
        match instance.presence() {
            Presence::Leaving => {}
            Presence::Failed => {
                gp.launch_failed.push(termination(instance, TerminateReason::LaunchFailed));
                replaced += 1;
            }
            Presence::Present if instance.template.as_deref() == Some(group.replacement_hash.as_str()) => {
                current.push(instance);
            }
            Presence::Present => {
                terminations.push(termination(instance, TerminateReason::Outdated));
                replaced += 1;
            }
        }
    }
    let seed = |slots: Slots| TokenSeed {
        fleet: fleet.name.clone(),
        group: group.name.clone(),
        zone: zone.zone.clone(),
        template_hash: group.template_hash.clone(),
        slots,
    };

    if zone.private_ips.is_empty() {
        current.sort_by(surplus_order);
        let wanted = zone.replicas as usize;
        let surplus = current.len().saturating_sub(wanted);
        for instance in current.drain(..surplus) {
            terminations.push(termination(instance, TerminateReason::Surplus));
        }
        kept.extend(current.iter().copied());
        let present = u32::try_from(current.len()).unwrap_or(u32::MAX);
        let mut missing_left = zone.replicas.saturating_sub(present);
        for (start, end) in chunk_slots(present, zone.replicas, MAX_BATCH as u32) {
            let count = end - start;
            // Replacements are reported as such for as many instances as were replaced.
            let reason = if replaced > 0 && missing_left <= replaced + count {
                CreateReason::Replacement
            } else {
                CreateReason::Missing
            };
            missing_left -= count;
            gp.creates.push(make_create(
                group,
                zone,
                seed(Slots::Range { start, end }),
                spent_tokens,
                count,
                Vec::new(),
                Vec::new(),
                reason,
            ));
        }
        return;
    }

    // Explicit private IPs: one instance per IP; an instance holding a wanted IP keeps it.
    let wanted_ips: BTreeSet<&str> = zone.private_ips.iter().map(String::as_str).collect();
    let mut held: BTreeSet<&str> = BTreeSet::new();
    current.sort_by(|a, b| a.id.cmp(&b.id));
    for instance in current {
        match instance.private_ips.first().map(String::as_str) {
            Some(ip) if wanted_ips.contains(ip) && held.insert(ip) => kept.push(instance),
            _ => terminations.push(termination(instance, TerminateReason::Surplus)),
        }
    }
    // IPs still held by instances on their way out must be free before they can be reused.
    let mut blockers: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let leaving_ids: BTreeSet<&str> = terminations.iter().map(|t| t.instance_id.as_str()).collect();
    for instance in in_zone {
        let going = instance.presence() == Presence::Leaving || leaving_ids.contains(instance.id.as_str());
        if going {
            for ip in &instance.private_ips {
                blockers.entry(ip.as_str()).or_default().push(instance.id.clone());
            }
        }
    }
    let missing: Vec<&str> = wanted_ips.iter().copied().filter(|ip| !held.contains(ip)).collect();
    let (blocked, free): (Vec<&str>, Vec<&str>) =
        missing.into_iter().partition(|ip| blockers.contains_key(ip));
    for (ips, must_wait) in [(free, false), (blocked, true)] {
        for chunk in ips.chunks(MAX_BATCH) {
            let ips: Vec<String> = chunk.iter().map(|s| (*s).to_owned()).collect();
            let mut wait: Vec<String> = if must_wait {
                chunk.iter().flat_map(|ip| blockers[ip].iter().cloned()).collect()
            } else {
                Vec::new()
            };
            wait.sort();
            wait.dedup();
            let reason = if must_wait { CreateReason::Replacement } else { CreateReason::Missing };
            let count = u32::try_from(ips.len()).unwrap_or(u32::MAX);
            gp.creates.push(make_create(
                group,
                zone,
                seed(Slots::Ips(ips.clone())),
                spent_tokens,
                count,
                ips,
                wait,
                reason,
            ));
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn make_create(
    group: &DesiredGroup,
    zone: &DesiredZone,
    token_seed: TokenSeed,
    spent_tokens: &BTreeSet<&str>,
    count: u32,
    private_ips: Vec<String>,
    wait_for_gone: Vec<String>,
    reason: CreateReason,
) -> Create {
    let generation = (0..).find(|g| !spent_tokens.contains(token_seed.token(*g).as_str())).unwrap_or(0);
    let token = token_seed.token(generation);
    let mut request = group.template.clone();
    let mut placement = request.placement.take().unwrap_or_default();
    placement.zone = zone.zone.clone();
    request.placement = Some(Placement { ..placement });
    if zone.subnet_id.is_some() || !private_ips.is_empty() {
        let mut vpc: VirtualPrivateCloud = request.virtual_private_cloud.take().unwrap_or_default();
        if let Some(subnet) = &zone.subnet_id {
            vpc.subnet_id = subnet.clone();
        }
        vpc.private_ip_addresses = if private_ips.is_empty() { None } else { Some(private_ips) };
        request.virtual_private_cloud = Some(vpc);
    }
    request.instance_count = Some(i64::from(count));
    request.client_token = Some(token.clone());
    if let Some(login) = request.login_settings.as_mut() {
        login.password = None;
    }
    set_ownership_tags(&mut request, &token_seed, &group.replacement_hash, &token);
    Create {
        zone: zone.zone.clone(),
        count,
        token_seed,
        generation,
        request,
        password: group.password.clone(),
        reason,
        wait_for_gone,
    }
}

/// Adds (or replaces) cvmfleet's ownership tags in the request's `instance` tag specification.
pub fn set_ownership_tags(
    request: &mut RunInstancesRequest,
    seed: &TokenSeed,
    replacement_hash: &str,
    token: &str,
) {
    let specs = request.tag_specification.get_or_insert_with(Vec::new);
    let index = match specs.iter().position(|s| s.resource_type == "instance") {
        Some(index) => index,
        None => {
            specs.push(TagSpecification { resource_type: "instance".into(), tags: Vec::new() });
            specs.len() - 1
        }
    };
    let spec = &mut specs[index];
    spec.tags.retain(|t| !t.key.starts_with("cvmfleet:"));
    spec.tags.push(Tag::new(tags::FLEET, seed.fleet.clone()));
    spec.tags.push(Tag::new(tags::GROUP, seed.group.clone()));
    spec.tags.push(Tag::new(tags::TEMPLATE, replacement_hash));
    spec.tags.push(Tag::new(tags::TOKEN, token));
}

/// Whether an observed name is what the API makes of the template's `InstanceName`: the name
/// itself, or the name with the numeric suffix RunInstances appends when creating several.
fn name_matches(template: &str, observed: &str) -> bool {
    if observed == template {
        return true;
    }
    observed.strip_prefix(template).is_some_and(|rest| {
        let digits = rest.strip_prefix('-').unwrap_or(rest);
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

fn plan_updates(group: &DesiredGroup, kept: &[&ObservedInstance]) -> Vec<Update> {
    let mut updates = Vec::new();
    // Names with `{R:x}` patterns differ per instance by design; they are not compared.
    if let Some(name) = group.instance_name().filter(|n| !n.contains("{R:")) {
        let mut renames: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
        for i in kept.iter().filter(|i| !name_matches(name, &i.name)) {
            renames.entry((i.zone.as_str(), i.name.as_str())).or_default().push(i.id.clone());
        }
        for ((zone, from), mut ids) in renames {
            ids.sort();
            for chunk in ids.chunks(MAX_BATCH) {
                updates.push(Update {
                    zone: zone.to_owned(),
                    instance_ids: chunk.to_vec(),
                    change: AttributeChange::InstanceName { from: from.to_owned(), to: name.to_owned() },
                });
            }
        }
    }
    if let Some(wanted) = group.security_groups() {
        let mut changes: BTreeMap<(&str, &[String]), Vec<String>> = BTreeMap::new();
        for i in kept.iter().filter(|i| i.security_groups != wanted) {
            changes.entry((i.zone.as_str(), i.security_groups.as_slice())).or_default().push(i.id.clone());
        }
        for ((zone, from), mut ids) in changes {
            ids.sort();
            for chunk in ids.chunks(MAX_BATCH) {
                updates.push(Update {
                    zone: zone.to_owned(),
                    instance_ids: chunk.to_vec(),
                    change: AttributeChange::SecurityGroups { from: from.to_vec(), to: wanted.clone() },
                });
            }
        }
    }
    updates
}

fn replacement_diff(group: &DesiredGroup, outdated: &[&ObservedInstance]) -> Vec<FieldChange> {
    /// Reads one observable field of an instance.
    type Getter = fn(&ObservedInstance) -> &str;
    let mut changes = Vec::new();
    let distinct = |get: Getter| -> String {
        let values: BTreeSet<&str> = outdated.iter().map(|i| get(i)).collect();
        values.into_iter().collect::<Vec<_>>().join(", ")
    };
    let fields: [(&str, Getter, Option<&String>); 2] = [
        ("InstanceType", |i| i.instance_type.as_str(), group.template.instance_type.as_ref()),
        ("ImageId", |i| i.image_id.as_str(), group.template.image_id.as_ref()),
    ];
    for (field, get, desired) in fields {
        let observed = distinct(get);
        if let Some(desired) = desired.filter(|d| **d != observed) {
            changes.push(FieldChange { field: field.into(), observed, desired: desired.clone() });
        }
    }
    let observed_hashes =
        outdated.iter().map(|i| i.template.as_deref().unwrap_or("(untagged)")).collect::<BTreeSet<_>>();
    changes.push(FieldChange {
        field: "template".into(),
        observed: observed_hashes.into_iter().collect::<Vec<_>>().join(", "),
        desired: group.replacement_hash.clone(),
    });
    changes
}

fn summarize(fleets: &[FleetPlan]) -> Summary {
    let mut s = Summary::default();
    for fleet in fleets {
        for g in &fleet.groups {
            s.create += g.creates.iter().map(|c| c.count).sum::<u32>();
            s.terminate += u32::try_from(g.terminations.len()).unwrap_or(u32::MAX);
            s.replace += u32::try_from(
                g.terminations.iter().filter(|t| !t.reason.reduces_capacity()).count()
                    + g.launch_failed.len(),
            )
            .unwrap_or(u32::MAX);
            let updated: BTreeSet<&str> =
                g.updates.iter().flat_map(|u| u.instance_ids.iter().map(String::as_str)).collect();
            s.update += u32::try_from(updated.len()).unwrap_or(u32::MAX);
            let touched = u32::try_from(g.terminations.len() + updated.len()).unwrap_or(u32::MAX);
            s.unchanged += g.present.saturating_sub(touched);
        }
        if fleet.prune {
            s.terminate += u32::try_from(fleet.orphans.len()).unwrap_or(u32::MAX);
        }
    }
    s
}
