//! Planning one group: classify every instance (kept, to replace, failed), apply the group's
//! drift policies, and take one step of a rolling replacement.
//!
//! # Rolling replacement
//!
//! Instances to replace (an older template; an instance type or image changed out of band;
//! stopped under `stopped: replace`) go in steps. With `n` wanted in a zone, `c` kept and `o`
//! to replace, the `o - min(o, n - c)` beyond what the zone needs go at once; of the rest, a
//! step replaces `s + u`, where `s` and `u` are what is left of the group's surge and
//! unavailability budgets (resolved from `maxSurge` / `maxUnavailable`, shared by its zones in
//! spec order). The `s` replacements are created first and must run before their old instances
//! are terminated; the `u` are terminated without waiting for a replacement, and the next
//! round's plan, seeing them gone, fills their slots. The next plan sees the new instances as
//! kept and takes the next step.
//!
//! Creates are the next generations of the zone's pools with room (see [`crate::token`]), one
//! per pool, lowest pool first, so a step's ClientTokens depend only on what it was planned
//! from: a killed step re-planned from the same state sends the same tokens; re-planned after
//! its creates landed, it counts them as live, asks only for what is still missing and
//! finishes the terminations (once the new instances run: [`GroupPlan::await_running`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use cvmfleet_spec::{DriftPolicy, StoppedPolicy};
use cvmfleet_wire::MAX_BATCH;
use cvmfleet_wire::vocab::{InstanceState, state};

use crate::create::{CreateSpec, make_create, termination};
use crate::desired::{DesiredFleet, DesiredGroup, DesiredZone};
use crate::drift::{Drift, DriftKind, Handling};
use crate::observed::OfferingState;
use crate::observed::{ObservedInstance, Presence};
use crate::placement;
use crate::plan::{
    AttributeChange, Blocked, CreateReason, FieldChange, GroupPlan, OnFallback, RolloutStep, Start,
    TerminateReason, Termination, Unplaced, Update,
};
use crate::token::{Slots, parse_pool_tag, pool_targets};

mod ip_zone;
mod updates;

use ip_zone::plan_ip_zone;
use updates::{plan_updates, replacement_diff};

/// A drift item whose handling depends on whether its instance is terminated in this step.
struct Found<'a> {
    instance: &'a ObservedInstance,
    kind: DriftKind,
    observed: String,
    desired: String,
    /// Fixed handling, or `None` for "corrected when the instance goes in this plan, pending
    /// otherwise".
    handling: Option<Handling>,
}

/// A zone's instances, classified.
struct ZoneState<'a> {
    zone: &'a DesiredZone,
    /// Instances that stay (current template, or drift the policy keeps).
    kept: Vec<&'a ObservedInstance>,
    /// Instances to replace, with why.
    replace: Vec<(&'a ObservedInstance, TerminateReason)>,
    /// `LAUNCH_FAILED` instances.
    failed: Vec<&'a ObservedInstance>,
    /// Every instance (for IPs held by leaving ones).
    all: Vec<&'a ObservedInstance>,
    /// Per pool of the zone: its target and its live instances (see [`crate::token`]).
    pools: Vec<(u32, u32)>,
    /// Where the zone's slots may launch, most preferred first ([`crate::placement`]).
    candidates: Vec<placement::Candidate<'a>>,
}

/// An instance's position among a zone's candidates, for [`surplus_order`] (0 when it is none
/// of them).
fn rank_among(candidates: &[placement::Candidate<'_>], instance: &ObservedInstance) -> usize {
    placement::rank_of(candidates, instance).unwrap_or(0)
}

/// Order in which instances go first: stopped or otherwise unhealthy first, then those on the
/// least preferred placement (`rank`: their position among the group's candidates, see
/// [`crate::placement`]), then booting before running, then the newest. The placement comes
/// before booting and age so that whichever observer picks a surplus instance picks one on a
/// fallback, never the preferred one a rebalance just made (an observer that does not see the
/// fallback as one, having found the preferred offering short, would otherwise terminate the
/// new instance, and a rebalance would make it again: found by the scarce-stock simulation).
pub(crate) fn surplus_order(
    rank: &dyn Fn(&ObservedInstance) -> usize,
) -> impl Fn(&&ObservedInstance, &&ObservedInstance) -> std::cmp::Ordering + '_ {
    fn health(state: &InstanceState) -> u8 {
        if state.is_running() {
            2
        } else if state.is_transitional() && !state.is_stopped() {
            1
        } else {
            0
        }
    }
    move |a, b| {
        let healthy = |i: &ObservedInstance| health(&i.state) > 0;
        healthy(a)
            .cmp(&healthy(b))
            .then_with(|| rank(b).cmp(&rank(a)))
            .then_with(|| health(&a.state).cmp(&health(&b.state)))
            .then_with(|| b.created_time.cmp(&a.created_time))
            .then_with(|| b.id.cmp(&a.id))
    }
}

fn handling_of(policy: DriftPolicy) -> Option<Handling> {
    match policy {
        DriftPolicy::Correct => Some(Handling::Corrected),
        DriftPolicy::Report => Some(Handling::Reported),
        DriftPolicy::Ignore => None,
    }
}

/// Plans one group; returns its plan and its drift.
pub(crate) fn plan_group(
    fleet: &DesiredFleet,
    group: &DesiredGroup,
    instances: &[&ObservedInstance],
    market: &[OfferingState],
    in_use: &dyn Fn(&str) -> bool,
) -> (GroupPlan, Vec<Drift>) {
    let mut gp = empty_plan(group, instances);
    let mut found: Vec<Found<'_>> = Vec::new();
    let mut missing_drift: Vec<MissingDrift> = Vec::new();
    let mut terminations: Vec<Termination> = Vec::new();
    outside_zones(group, instances, &mut found, &mut terminations);
    let mut zones: Vec<ZoneState<'_>> = group
        .zones
        .iter()
        .map(|zone| classify_zone(group, zone, instances, market, &mut found, &mut gp.on_fallback))
        .collect();
    let needs = zone_needs(group, &mut zones, &mut found, &mut missing_drift, &mut terminations);
    let ctx = StepContext { fleet, group, market, in_use };
    let starts = rollout_step(&ctx, &zones, &needs, &mut gp, &mut missing_drift, &mut terminations);
    gp.await_running.sort();
    plan_starts(&mut gp, starts, instances);
    settle_terminations(&mut gp, terminations, instances);

    let replaced: Vec<&ObservedInstance> = instances
        .iter()
        .copied()
        .filter(|i| gp.terminations.iter().any(|t| t.instance_id == i.id && t.reason.is_replacement()))
        .collect();
    if !replaced.is_empty() {
        gp.replacement_diff = replacement_diff(group, &replaced);
    }
    let kept: Vec<&ObservedInstance> = zones.iter().flat_map(|z| z.kept.iter().copied()).collect();
    gp.updates = plan_updates(group, &kept, &mut found);
    gp.replaced_later = replaced_later(&gp, &zones);
    let drift = group_drift(fleet, group, &gp, found, missing_drift);
    (gp, drift)
}

/// A zone's missing slots as drift: (zone, missing, observed, wanted, handling).
type MissingDrift = (String, u32, String, u32, Handling);

/// What the step of one group is planned for: the fleet and group, the offerings' stock, and
/// which ClientTokens are taken.
struct StepContext<'a> {
    fleet: &'a DesiredFleet,
    group: &'a DesiredGroup,
    market: &'a [OfferingState],
    in_use: &'a dyn Fn(&str) -> bool,
}

/// What each zone needs from the rolling-replacement step, in zone order, and what the group
/// already uses of its budgets.
struct ZoneNeeds {
    /// Creates for missing (and, under `launchFailed: correct`, failed) slots, before any surge.
    creates_first: Vec<u32>,
    /// Whether replacements beyond what the zone needs are terminated in this plan.
    excess_going: Vec<bool>,
    /// Whether the zone's creates replace `LAUNCH_FAILED` instances.
    replaces_failed: Vec<bool>,
    /// Missing slots over all zones: they use up the unavailability budget.
    short_total: u32,
    /// Instances above the wanted size now (a killed step's creates that landed): they use up
    /// the surge budget until the instances they replace are gone.
    above: u32,
}

/// The group's plan before anything is planned: its counts, and every list empty.
fn empty_plan(group: &DesiredGroup, instances: &[&ObservedInstance]) -> GroupPlan {
    GroupPlan {
        name: group.name.clone(),
        desired: group.replicas(),
        present: u32::try_from(instances.iter().filter(|i| i.presence() == Presence::Present).count())
            .unwrap_or(u32::MAX),
        adoptions: Vec::new(),
        creates: Vec::new(),
        terminations: Vec::new(),
        launch_failed: Vec::new(),
        updates: Vec::new(),
        blocked: Vec::new(),
        replacement_diff: Vec::new(),
        starts: Vec::new(),
        await_running: Vec::new(),
        rollout: None,
        unplaced: Vec::new(),
        on_fallback: Vec::new(),
        replaced_later: Vec::new(),
        cost: None,
    }
}

/// Instances in zones the group no longer lists are surplus: recorded as drift, and terminated
/// under `surplus: correct`.
fn outside_zones<'a>(
    group: &DesiredGroup,
    instances: &[&'a ObservedInstance],
    found: &mut Vec<Found<'a>>,
    terminations: &mut Vec<Termination>,
) {
    let policy = group.policies.drift;
    let zone_names: BTreeSet<&str> = group.zones.iter().map(|z| z.zone.as_str()).collect();
    let wanted_zones = group.zones.iter().map(|z| z.zone.as_str()).collect::<Vec<_>>().join(", ");
    for instance in instances.iter().filter(|i| !zone_names.contains(i.zone.as_str())) {
        if instance.presence() != Presence::Present {
            continue;
        }
        let Some(handling) = handling_of(policy.surplus) else { continue };
        if handling == Handling::Corrected {
            terminations.push(termination(instance, TerminateReason::ZoneRemoved));
        }
        found.push(Found {
            instance,
            kind: DriftKind::Surplus,
            observed: format!("zone {}", instance.zone),
            desired: format!("zones {wanted_zones}"),
            handling: if handling == Handling::Corrected { None } else { Some(handling) },
        });
    }
}

/// Per zone without private IPs: assigns the kept instances to pools, handles the surplus,
/// terminates replacements beyond what the zone needs, and counts what is missing.
fn zone_needs<'a>(
    group: &DesiredGroup,
    zones: &mut [ZoneState<'a>],
    found: &mut Vec<Found<'a>>,
    missing_drift: &mut Vec<MissingDrift>,
    terminations: &mut Vec<Termination>,
) -> ZoneNeeds {
    let policy = group.policies.drift;
    let mut needs = ZoneNeeds {
        creates_first: Vec::new(),
        excess_going: Vec::new(),
        replaces_failed: Vec::new(),
        short_total: 0,
        above: 0,
    };
    for z in zones {
        let n = z.zone.replicas as usize;
        if !z.zone.private_ips.is_empty() {
            needs.creates_first.push(0);
            needs.excess_going.push(false);
            needs.replaces_failed.push(false);
            continue;
        }
        let candidates = &z.candidates;
        let (pools, surplus) = assign_pools(z.zone, &z.kept, &|i| rank_among(candidates, i));
        z.pools = pools;
        if !surplus.is_empty()
            && let Some(handling) = handling_of(policy.surplus)
        {
            for instance in &surplus {
                found.push(Found {
                    instance,
                    kind: DriftKind::Surplus,
                    observed: format!("{} in {}", z.kept.len(), z.zone.zone),
                    desired: format!("{n} in {}", z.zone.zone),
                    handling: if handling == Handling::Corrected { None } else { Some(handling) },
                });
            }
            if handling == Handling::Corrected {
                let going: BTreeSet<&str> = surplus.iter().map(|i| i.id.as_str()).collect();
                z.kept.retain(|i| !going.contains(i.id.as_str()));
                for instance in surplus {
                    terminations.push(termination(instance, TerminateReason::Surplus));
                }
            }
        }
        // Replacements beyond what the zone needs go now, without replacement.
        let candidates = &z.candidates;
        let rank = |i: &ObservedInstance| rank_among(candidates, i);
        let order = surplus_order(&rank);
        z.replace.sort_by(|a, b| order(&a.0, &b.0));
        let need = z.replace.len().min(n.saturating_sub(z.kept.len()));
        let excess = z.replace.len() - need;
        needs.excess_going.push(excess > 0);
        needs.above += u32::try_from(excess).unwrap_or(u32::MAX);
        for (instance, _) in z.replace.drain(..excess) {
            terminations.push(termination(instance, TerminateReason::Surplus));
        }
        let present = z.kept.len() + z.replace.len();
        let missing = u32::try_from(n.saturating_sub(present)).unwrap_or(u32::MAX);
        let failed = u32::try_from(z.failed.len()).unwrap_or(u32::MAX).min(missing);
        let plain = missing - failed;
        let mut creating = 0;
        if plain > 0
            && let Some(handling) = handling_of(policy.missing)
        {
            // Say why when it is known: spot instances the cloud is reclaiming.
            let reclaimed = z.all.iter().filter(|i| i.spot_reclaimed()).count();
            let observed = if reclaimed > 0 {
                format!("{present} present; {reclaimed} spot instance(s) reclaimed by the cloud")
            } else {
                format!("{present} present")
            };
            missing_drift.push((z.zone.zone.clone(), plain, observed, z.zone.replicas, handling));
            if handling == Handling::Corrected {
                creating += plain;
            }
        }
        if policy.launch_failed == DriftPolicy::Correct {
            creating += failed;
            needs.replaces_failed.push(failed > 0);
        } else {
            needs.replaces_failed.push(false);
        }
        // Missing slots are unavailable capacity until they run, whether or not this plan
        // creates them: they use up the unavailability budget.
        needs.short_total += missing;
        needs.creates_first.push(creating);
    }
    needs
}

/// One step of the rolling replacement, budgets shared by the zones in spec order: the
/// terminations and creates of each zone, the instances to await, and the `LAUNCH_FAILED` ones
/// to clean up. Returns the stopped instances to start, by zone.
fn rollout_step<'z>(
    ctx: &StepContext<'_>,
    zones: &'z [ZoneState<'_>],
    needs: &ZoneNeeds,
    gp: &mut GroupPlan,
    missing_drift: &mut Vec<MissingDrift>,
    terminations: &mut Vec<Termination>,
) -> BTreeMap<&'z str, Vec<String>> {
    let (fleet, group, market, in_use) = (ctx.fleet, ctx.group, ctx.market, ctx.in_use);
    let policy = group.policies.drift;
    let mut starts: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let n_group = group.replicas();
    let rollout = group.policies.rollout;
    let (max_surge, max_unavailable) = (rollout.surge(n_group), rollout.unavailable(n_group));
    let mut surge_left = max_surge.saturating_sub(needs.above);
    let mut unavailable_left = max_unavailable.saturating_sub(needs.short_total);
    // Groups with private IPs cannot surge (a replacement needs its predecessor's IP): they
    // replace terminate-first, as many at a time as either bound allows.
    let mut ip_left = max_surge.max(max_unavailable);
    let mut remaining = 0u32;
    let mut replacing = 0u32;
    for (((z, first), excess), refill) in
        zones.iter().zip(&needs.creates_first).zip(&needs.excess_going).zip(&needs.replaces_failed)
    {
        let o = u32::try_from(z.replace.len()).unwrap_or(u32::MAX);
        remaining += o;
        let zone_terminating_before = terminations.len();
        if !z.zone.private_ips.is_empty() {
            let step = o.min(ip_left);
            ip_left -= step;
            replacing += step;
            let free = plan_ip_zone(z, step as usize, fleet, group, market, in_use, gp, terminations);
            if free > 0
                && let Some(handling) = handling_of(policy.missing)
            {
                let present = z.kept.len() + z.replace.len();
                missing_drift.push((
                    z.zone.zone.clone(),
                    free,
                    format!("{present} present"),
                    z.zone.replicas,
                    handling,
                ));
            }
        } else {
            let surge = o.min(surge_left);
            surge_left -= surge;
            let unavailable = (o - surge).min(unavailable_left);
            unavailable_left -= unavailable;
            replacing += surge + unavailable;
            let going = &z.replace[..(surge + unavailable) as usize];
            for (instance, reason) in going {
                terminations.push(termination(instance, *reason));
            }
            // The slots of the `unavailable` instances are filled by the next round, once they
            // are gone.
            let reason = if surge > 0 || *refill { CreateReason::Replacement } else { CreateReason::Missing };
            pool_creates(ctx, z, first + surge, reason, gp);
        }
        // Stopped instances that stay are started; instances still booting must run before
        // the zone's old instances go.
        let zone_replaces =
            *excess || terminations[zone_terminating_before..].iter().any(|t| t.reason.is_replacement());
        for instance in &z.kept {
            if policy.stopped == StoppedPolicy::Correct && instance.state.is_stopped() {
                starts.entry(z.zone.zone.as_str()).or_default().push(instance.id.clone());
                if zone_replaces {
                    gp.await_running.push(instance.id.clone());
                }
            } else if zone_replaces
                && matches!(instance.state, InstanceState::Pending | InstanceState::Starting)
            {
                gp.await_running.push(instance.id.clone());
            }
        }
        if policy.launch_failed == DriftPolicy::Correct {
            for failed in &z.failed {
                gp.launch_failed.push(termination(failed, TerminateReason::LaunchFailed));
            }
        }
    }
    if remaining > 0 {
        gp.rollout = Some(RolloutStep { remaining, replacing, max_surge, max_unavailable });
    }
    starts
}

/// Puts `count` creates of a zone without private IPs (what is missing now and the surge) into
/// the pools with room, one create per pool (the argument in `token` needs that); slots no
/// offering can take are recorded as unplaced.
fn pool_creates(
    ctx: &StepContext<'_>,
    z: &ZoneState<'_>,
    count: u32,
    reason: CreateReason,
    gp: &mut GroupPlan,
) {
    let mut left = count;
    for (index, (target, live)) in (0u32..).zip(&z.pools) {
        let count = target.saturating_sub(*live).min(left);
        if count == 0 {
            continue;
        }
        left -= count;
        let placement = match placement::choose(&z.candidates, ctx.market) {
            Ok(chosen) => chosen,
            Err(passed_over) => {
                unplaced(gp, z.zone, count, passed_over);
                continue;
            }
        };
        let slots = Slots::Pool { index };
        let spec = CreateSpec {
            zone: z.zone,
            placement,
            slots,
            count,
            private_ips: Vec::new(),
            wait_for_gone: Vec::new(),
            reason,
        };
        gp.creates.push(make_create(ctx.fleet, ctx.group, spec, ctx.in_use));
    }
}

/// Batches the instances to start, per zone, sorted; a batch waits for a transition when one
/// of its instances is still stopping.
fn plan_starts(gp: &mut GroupPlan, starts: BTreeMap<&str, Vec<String>>, instances: &[&ObservedInstance]) {
    for (zone, mut ids) in starts {
        ids.sort();
        for chunk in ids.chunks(MAX_BATCH) {
            let waits_for_transition = chunk
                .iter()
                .any(|id| instances.iter().any(|i| i.id == *id && i.state == InstanceState::Stopping));
            gp.starts.push(Start {
                zone: zone.to_owned(),
                instance_ids: chunk.to_vec(),
                waits_for_transition,
            });
        }
    }
}

/// Moves the planned terminations into the plan: those under termination protection become
/// blocked instead, and each waits for launches when it is a replacement or the group awaits
/// instances.
fn settle_terminations(gp: &mut GroupPlan, terminations: Vec<Termination>, instances: &[&ObservedInstance]) {
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
    // Replaced instances go only once their replacements run; while the group awaits booting
    // or started instances, nothing of it goes before they run.
    let group_awaits = !gp.await_running.is_empty();
    for t in &mut gp.terminations {
        t.waits_for_launches = t.reason.is_replacement() || group_awaits;
    }
}

/// What later steps of the rollout replace (for the plan's cost, issue 14), sorted: instances
/// to replace that this plan neither terminates nor reports blocked, protected ones excepted.
fn replaced_later(gp: &GroupPlan, zones: &[ZoneState<'_>]) -> Vec<String> {
    let acted_on: BTreeSet<&str> = gp
        .terminations
        .iter()
        .map(|t| t.instance_id.as_str())
        .chain(gp.blocked.iter().map(|b| b.instance_id.as_str()))
        .collect();
    let mut later: Vec<String> = zones
        .iter()
        .flat_map(|z| &z.replace)
        .filter(|(i, _)| !i.protected && !acted_on.contains(i.id.as_str()))
        .map(|(i, _)| i.id.clone())
        .collect();
    later.sort();
    later
}

/// The group's drift: each instance's (corrected when it goes in this plan, pending otherwise),
/// then each zone's missing slots (pending when some of the zone's slots are unplaced).
fn group_drift(
    fleet: &DesiredFleet,
    group: &DesiredGroup,
    gp: &GroupPlan,
    found: Vec<Found<'_>>,
    missing_drift: Vec<MissingDrift>,
) -> Vec<Drift> {
    let going: BTreeSet<&str> = gp.terminations.iter().map(|t| t.instance_id.as_str()).collect();
    let mut drift: Vec<Drift> = found
        .into_iter()
        .map(|f| Drift {
            fleet: fleet.name.clone(),
            group: Some(group.name.clone()),
            zone: f.instance.zone.clone(),
            kind: f.kind,
            instance_id: Some(f.instance.id.clone()),
            count: 1,
            observed: f.observed,
            desired: f.desired,
            handling: f.handling.unwrap_or(if going.contains(f.instance.id.as_str()) {
                Handling::Corrected
            } else {
                Handling::Pending
            }),
        })
        .collect();
    for (zone, count, observed, wanted, handling) in missing_drift {
        // Slots planned but unplaced (no stock) are not being corrected by this plan.
        let handling = if handling == Handling::Corrected && gp.unplaced.iter().any(|u| u.zone == zone) {
            Handling::Pending
        } else {
            handling
        };
        drift.push(Drift {
            fleet: fleet.name.clone(),
            group: Some(group.name.clone()),
            zone: zone.clone(),
            kind: DriftKind::Missing,
            instance_id: None,
            count,
            observed,
            desired: format!("{wanted} wanted"),
            handling,
        });
    }
    drift
}

/// Counts a zone's kept instances into its pools (see [`crate::token`]): each by its
/// `cvmfleet:pool` tag while its pool has room; the rest (untagged instances from before pools,
/// tags of pools the zone no longer has, a pool's extras) fill the lowest pools' free room,
/// the healthiest and oldest first. Returns each pool's `(target, live)` and what is left over,
/// in the order it should go ([`surplus_order`]).
fn assign_pools<'a>(
    zone: &DesiredZone,
    kept: &[&'a ObservedInstance],
    rank: &dyn Fn(&ObservedInstance) -> usize,
) -> (Vec<(u32, u32)>, Vec<&'a ObservedInstance>) {
    let surplus_order = surplus_order(rank);
    let targets = pool_targets(zone.replicas, MAX_BATCH as u32);
    let mut members: Vec<Vec<&ObservedInstance>> = vec![Vec::new(); targets.len()];
    let mut overflow: Vec<&ObservedInstance> = Vec::new();
    for instance in kept.iter().copied() {
        let pool = instance.pool.as_deref().and_then(|p| parse_pool_tag(p, &zone.zone));
        match pool.and_then(|k| members.get_mut(k as usize)) {
            Some(pool) => pool.push(instance),
            None => overflow.push(instance),
        }
    }
    let mut live: Vec<u32> = Vec::with_capacity(targets.len());
    for (pool, target) in members.iter_mut().zip(&targets) {
        pool.sort_by(&surplus_order);
        let extra = pool.len().saturating_sub(*target as usize);
        overflow.extend(pool.drain(..extra));
        live.push(u32::try_from(pool.len()).unwrap_or(u32::MAX));
    }
    overflow.sort_by(&surplus_order);
    for (live, target) in live.iter_mut().zip(&targets) {
        while *live < *target && overflow.pop().is_some() {
            *live += 1;
        }
    }
    (targets.into_iter().zip(live).collect(), overflow)
}

/// Sorts a zone's instances into kept, to replace and failed, recording their drift.
fn classify_zone<'a>(
    group: &'a DesiredGroup,
    zone: &'a DesiredZone,
    instances: &[&'a ObservedInstance],
    market: &[OfferingState],
    found: &mut Vec<Found<'a>>,
    on_fallback: &mut Vec<OnFallback>,
) -> ZoneState<'a> {
    let policy = group.policies.drift;
    let mut state = ZoneState {
        zone,
        kept: Vec::new(),
        replace: Vec::new(),
        failed: Vec::new(),
        all: Vec::new(),
        pools: Vec::new(),
        candidates: placement::candidates(group, zone, market),
    };
    let candidates = &state.candidates;
    let best = placement::best_available(candidates, market);
    let listed = |name: &str| group.zones.iter().find(|z| z.zone == name);
    for instance in
        instances.iter().copied().filter(|i| listed(&i.zone).is_some() && home_of(group, i) == zone.zone)
    {
        state.all.push(instance);
        match instance.presence() {
            Presence::Leaving => continue,
            Presence::Failed => {
                state.failed.push(instance);
                if let Some(handling) = handling_of(policy.launch_failed) {
                    found.push(Found {
                        instance,
                        kind: DriftKind::LaunchFailed,
                        observed: state::LAUNCH_FAILED.into(),
                        desired: state::RUNNING.into(),
                        handling: Some(handling),
                    });
                }
                continue;
            }
            Presence::Present => {}
        }
        let mut replace: Option<TerminateReason> = None;
        // The subnet is per zone, not part of the template hash: an instance in another subnet
        // than its zone now names was made from an older spec.
        // (The subnet of the zone it runs in: a displaced instance runs in another zone than its
        // home.)
        let moved_subnet = listed(&instance.zone)
            .and_then(|z| z.subnet_id.as_ref())
            .is_some_and(|s| !instance.subnet_id.is_empty() && *s != instance.subnet_id);
        if moved_subnet || instance.template.as_deref() != Some(group.replacement_hash.as_str()) {
            if let Some(handling) = handling_of(policy.outdated) {
                found.push(Found {
                    instance,
                    kind: DriftKind::Outdated,
                    observed: instance.template.clone().unwrap_or_else(|| "(untagged)".into()),
                    desired: group.replacement_hash.clone(),
                    handling: (handling == Handling::Reported).then_some(handling),
                });
                if handling == Handling::Corrected {
                    replace = Some(TerminateReason::Outdated);
                }
            }
        } else {
            // With `instanceTypes`, any accepted offering is no drift.
            let accepted = if group.capacity.offerings.is_empty() {
                group.template.instance_type.clone()
            } else if placement::accepts(group, instance) {
                None
            } else {
                Some(group.offerings().iter().map(|o| o.label()).collect::<Vec<_>>().join(" or "))
            };
            let fields = [
                (DriftKind::InstanceType, policy.instance_type, &instance.instance_type, &accepted),
                (DriftKind::ImageId, policy.image_id, &instance.image_id, &group.template.image_id),
            ];
            for (kind, field_policy, observed, desired) in fields {
                let Some(desired) = desired.as_ref().filter(|d| *d != observed) else { continue };
                let Some(handling) = handling_of(field_policy) else { continue };
                found.push(Found {
                    instance,
                    kind,
                    observed: observed.clone(),
                    desired: desired.clone(),
                    handling: (handling == Handling::Reported).then_some(handling),
                });
                if handling == Handling::Corrected {
                    replace = Some(TerminateReason::Changed);
                }
            }
        }
        if instance.state.is_stopped() {
            let handling = match policy.stopped {
                StoppedPolicy::Correct if replace.is_none() => Some(Some(Handling::Corrected)),
                StoppedPolicy::Correct | StoppedPolicy::Replace => Some(None),
                StoppedPolicy::Report => Some(Some(Handling::Reported)),
                StoppedPolicy::Ignore => None,
            };
            if let Some(handling) = handling {
                found.push(Found {
                    instance,
                    kind: DriftKind::Stopped,
                    observed: instance.state.to_string(),
                    desired: state::RUNNING.into(),
                    handling,
                });
            }
            if policy.stopped == StoppedPolicy::Replace && replace.is_none() {
                replace = Some(TerminateReason::Stopped);
            }
        }
        // On a less preferred placement than one with stock now: shown, and replaced under
        // `rebalance: true`.
        if replace.is_none()
            && let (Some(rank), Some(best)) = (placement::rank_of(candidates, instance), best)
            && best < rank
        {
            let show = |c: &placement::Candidate<'_>| format!("{} in {}", c.offering.label(), c.zone.zone);
            on_fallback.push(OnFallback {
                instance_id: instance.id.clone(),
                placement: show(&candidates[rank]),
                preferred: show(&candidates[best]),
            });
            if group.capacity.rebalance {
                replace = Some(TerminateReason::Rebalance);
            }
        }
        match replace {
            Some(reason) => state.replace.push((instance, reason)),
            None => state.kept.push(instance),
        }
    }
    state
}

/// The zone whose slot an instance fills: the one its `cvmfleet:pool` tag names when that is
/// one of the group's zones (it may run elsewhere, see [`crate::placement`]), else the zone it
/// runs in (instances from before pools, IP groups).
fn home_of<'a>(group: &DesiredGroup, instance: &'a ObservedInstance) -> &'a str {
    instance
        .pool
        .as_deref()
        .and_then(crate::token::pool_tag_zone)
        .filter(|zone| group.zones.iter().any(|z| z.zone == *zone))
        .unwrap_or(&instance.zone)
}

/// Records slots that no candidate can take now.
fn unplaced(gp: &mut GroupPlan, home: &DesiredZone, count: u32, passed_over: Vec<placement::PassedOver>) {
    match gp.unplaced.iter_mut().find(|u| u.zone == home.zone) {
        Some(entry) => entry.count += count,
        None => gp.unplaced.push(Unplaced { zone: home.zone.clone(), count, passed_over }),
    }
}
