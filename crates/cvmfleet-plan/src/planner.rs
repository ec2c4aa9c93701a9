//! The planner: a pure, deterministic function of desired fleets and observed instances.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use cvmfleet_spec::DriftPolicy;

use crate::adopt::{Adopting, plan_adoptions};
use crate::create::termination;
use crate::desired::DesiredFleet;
use crate::drift::{Drift, DriftKind, Handling};
use crate::group::plan_group;
use crate::observed::{ObservedFleet, ObservedInstance, Presence};
use crate::plan::{FORMAT_VERSION, FleetPlan, GroupPlan, Plan, Refusal, Summary, TerminateReason};

/// Switches that change what a plan may do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Terminate orphans even where the fleet's policy does not allow pruning (`--prune`).
    pub prune: bool,
    /// Lift the termination safety limits (`--allow-mass-termination`).
    pub allow_mass_termination: bool,
    /// Refuse a plan that terminates more than this many instances of one group without
    /// replacing them (surplus, removed zones): the per-cycle bound of `watch --auto-apply`.
    /// Lifted by `allow_mass_termination` like the other limits.
    pub max_terminations_per_group: Option<u32>,
    /// Lift the cost bounds (`policies.maxMonthlyCostIncrease`; `--allow-cost-increase`),
    /// checked when the plan is priced ([`crate::plan_priced`]).
    pub allow_cost_increase: bool,
}

/// Plans the changes that make the observed fleets match the desired ones, and prices them
/// from `prices` (the quotes the reconciler got for what an unpriced plan of the same inputs
/// needs, [`crate::cost::quotes`]): the costs of every group and fleet, and the cost bounds
/// checked. Prices change no create, termination or token, only costs, refusals and warnings.
///
/// `observed` is keyed by fleet name; a fleet missing from it is taken as having no instances.
/// Same inputs, byte-identical plan.
#[must_use]
pub fn plan_priced(
    desired: &[DesiredFleet],
    observed: &BTreeMap<String, ObservedFleet>,
    prices: &crate::cost::PriceBook,
    options: PlanOptions,
) -> Plan {
    let mut made = plan(desired, observed, options);
    crate::cost::price(&mut made, desired, observed, prices, options);
    made
}

/// Plans like [`plan_priced`], without prices: every cost is left out (`None`) and no cost
/// bound is checked. What the reconciler plans first, to learn what else to read.
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
        drift: Vec::new(),
        summary: Summary::default(),
        digest: String::new(),
    };
    for fleet in fleets {
        let seen = observed.get(&fleet.name).unwrap_or(&empty);
        let fleet_plan = plan_fleet(fleet, seen, options, &mut plan);
        plan.fleets.push(fleet_plan);
    }
    // Orphan fleets: the project's instances of a fleet no spec declares in their region (its
    // file was deleted, it was renamed, or its region changed). Kept and reported; terminated
    // only with `--prune`, and as a whole fleet only with `--allow-mass-termination`.
    let default_project = desired.first().map_or(crate::desired::DEFAULT_PROJECT, |f| f.project.as_str());
    for (key, seen) in observed {
        let Some((name, region)) = crate::observed::parse_elsewhere_key(key) else { continue };
        if !seen.instances.iter().any(|i| i.presence() == Presence::Present) {
            continue;
        }
        let project = seen.instances.iter().find_map(|i| i.project.as_deref()).unwrap_or(default_project);
        let orphan = DesiredFleet {
            project: project.to_owned(),
            name: name.to_owned(),
            region: region.to_owned(),
            prune: false,
            allow_deletion: false,
            groups: Vec::new(),
            orphans: DriftPolicy::Correct,
            max_monthly_cost_increase: None,
        };
        let (drift_before, warnings_before) = (plan.drift.len(), plan.warnings.len());
        let mut fleet_plan = plan_fleet(&orphan, seen, options, &mut plan);
        fleet_plan.orphan_fleet = true;
        for drift in &mut plan.drift[drift_before..] {
            drift.desired = format!("no spec declares fleet {name} in {region}");
        }
        plan.warnings.truncate(warnings_before);
        if !fleet_plan.prune {
            plan.warnings.push(format!(
                "fleet {name} ({region}): no spec declares this fleet here (its file was deleted, it was \
                 renamed, or its region changed); its {} instance(s) are kept (pass --prune to terminate them)",
                fleet_plan.orphans.len()
            ));
        }
        plan.fleets.push(fleet_plan);
    }
    plan.summary = summarize(&plan.fleets);
    crate::drift::sort(&mut plan.drift);
    plan
}

/// Hash of the observed facts a plan depends on. State changes that do not affect planning
/// (PENDING becoming RUNNING) leave it unchanged, so a saved plan does not go stale merely
/// because instances finished booting.
#[must_use]
pub fn fingerprint(desired: &[DesiredFleet], observed: &BTreeMap<String, ObservedFleet>) -> String {
    let wanted: BTreeSet<&str> = desired.iter().map(|f| f.name.as_str()).collect();
    let mut lines: Vec<String> = Vec::new();
    // Orphan fleets count as the planner sees them: with an instance that is present.
    let planned = |(name, seen): &(&String, &ObservedFleet)| {
        wanted.contains(name.as_str())
            || (crate::observed::parse_elsewhere_key(name).is_some()
                && seen.instances.iter().any(|i| i.presence() == Presence::Present))
    };
    for (fleet, seen) in observed.iter().filter(planned) {
        for i in &seen.instances {
            lines.push(format!(
                "{fleet}\0{}\0{:?}\0{}\0{}\0{}\0{}\0{:?}\0{:?}\0{:?}\0{}\0{}\0{}\0{}",
                i.id,
                i.presence(),
                // Stopped or not decides starts; type and image decide replacements.
                i.state.is_stopped(),
                i.instance_type,
                i.image_id,
                i.zone,
                i.group,
                i.template,
                i.token,
                i.name,
                i.security_groups.join(","),
                i.private_ips.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
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
            _ if instance.presence() != Presence::Present => {}
            _ if fleet.orphans == DriftPolicy::Ignore => {}
            _ => orphans.push(termination(instance, TerminateReason::Orphan)),
        }
    }
    orphans.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    let prune = (fleet.prune || options.prune) && fleet.orphans == DriftPolicy::Correct;
    for orphan in &orphans {
        let instance = seen.instances.iter().find(|i| i.id == orphan.instance_id);
        plan.drift.push(Drift {
            fleet: fleet.name.clone(),
            group: None,
            zone: orphan.zone.clone(),
            kind: DriftKind::Orphan,
            instance_id: Some(orphan.instance_id.clone()),
            count: 1,
            observed: format!("group {}", instance.and_then(|i| i.group.as_deref()).unwrap_or("(untagged)")),
            desired: "no such group".into(),
            handling: match fleet.orphans {
                DriftPolicy::Report => Handling::Reported,
                _ if prune => Handling::Corrected,
                _ => Handling::Pending,
            },
        });
    }

    // Tokens in use: carried by an observed instance, or known to be spent (see `token`).
    let carried: BTreeSet<&str> = seen.instances.iter().filter_map(|i| i.token.as_deref()).collect();
    let in_use = |token: &str| carried.contains(token) || seen.spent_tokens.contains(token);
    let adopting: Vec<Adopting> =
        fleet.groups.iter().map(|group| plan_adoptions(fleet, group, seen, &mut plan.refusals)).collect();
    let mut groups: Vec<GroupPlan> = Vec::new();
    for (group, adopting) in fleet.groups.iter().zip(&adopting) {
        let mut instances: Vec<&ObservedInstance> =
            by_group.get(group.name.as_str()).map_or_else(Vec::new, Clone::clone);
        instances.extend(adopting.adoptees.iter());
        let (mut group_plan, drift) = plan_group(fleet, group, &instances, &seen.market, &in_use);
        group_plan.adoptions = adopting.adoptions.clone();
        groups.push(group_plan);
        plan.drift.extend(drift);
    }

    // Safety limits: refuse plans that shrink a group by more than its share, or that empty a
    // fleet, unless explicitly allowed.
    if !options.allow_mass_termination {
        for (group, gp) in fleet.groups.iter().zip(&groups) {
            let losing = gp.terminations.iter().filter(|t| t.reason.reduces_capacity()).count() as u64;
            if let Some(bound) = options.max_terminations_per_group
                && losing > u64::from(bound)
            {
                plan.refusals.push(Refusal {
                    fleet: fleet.name.clone(),
                    group: Some(group.name.clone()),
                    message: format!(
                        "would terminate {losing} instances without replacement, more than the bound of \
                         {bound} per group and cycle; run `cvmfleet apply` to do it by hand"
                    ),
                });
            }
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
        for u in &gp.unplaced {
            plan.warnings.push(format!(
                "fleet {} group {}: {} instance(s) for {} cannot be placed: {}",
                fleet.name,
                gp.name,
                u.count,
                u.zone,
                crate::placement::describe_passed(&u.passed_over)
            ));
        }
        for blocked in &gp.blocked {
            plan.warnings.push(format!(
                "fleet {} group {}: {}: {}",
                fleet.name, gp.name, blocked.instance_id, blocked.reason
            ));
        }
    }
    FleetPlan {
        project: fleet.project.clone(),
        name: fleet.name.clone(),
        region: fleet.region.clone(),
        orphan_fleet: false,
        groups,
        orphans,
        prune,
        cost: None,
    }
}

fn summarize(fleets: &[FleetPlan]) -> Summary {
    let mut s = Summary::default();
    for fleet in fleets {
        for g in &fleet.groups {
            s.create += g.creates.iter().map(|c| c.count).sum::<u32>();
            s.adopt += u32::try_from(g.adoptions.len()).unwrap_or(u32::MAX);
            s.terminate += u32::try_from(g.terminations.len()).unwrap_or(u32::MAX);
            s.replace += u32::try_from(
                g.terminations.iter().filter(|t| t.reason.is_replacement()).count() + g.launch_failed.len(),
            )
            .unwrap_or(u32::MAX);
            let updated: BTreeSet<&str> =
                g.updates.iter().flat_map(|u| u.instance_ids.iter().map(String::as_str)).collect();
            s.update += u32::try_from(updated.len()).unwrap_or(u32::MAX);
            let started: usize = g.starts.iter().map(|st| st.instance_ids.len()).sum();
            s.start += u32::try_from(started).unwrap_or(u32::MAX);
            let touched = u32::try_from(g.terminations.len() + updated.len() + started + g.adoptions.len())
                .unwrap_or(u32::MAX);
            s.unchanged += g.present.saturating_sub(touched);
        }
        if fleet.prune {
            s.terminate += u32::try_from(fleet.orphans.len()).unwrap_or(u32::MAX);
        }
    }
    s
}
