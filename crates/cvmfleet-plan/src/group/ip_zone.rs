//! Zones of groups with explicit private IPs: one instance per wanted IP.

use super::*;

/// A zone of a group with explicit private IPs: one instance per IP; an instance holding a
/// wanted IP keeps it; `step` of the instances to replace go now, terminate-first. Returns how
/// many IPs have no instance (missing), whether or not the policy creates them.
#[allow(clippy::too_many_arguments)]
pub(super) fn plan_ip_zone(
    z: &ZoneState<'_>,
    step: usize,
    fleet: &DesiredFleet,
    group: &DesiredGroup,
    market: &[OfferingState],
    in_use: &dyn Fn(&str) -> bool,
    gp: &mut GroupPlan,
    terminations: &mut Vec<Termination>,
) -> u32 {
    let policy = group.policies.drift;
    let zone = z.zone;
    let wanted_ips: BTreeSet<Ipv4Addr> = zone.private_ips.iter().copied().collect();
    let mut held: BTreeSet<Ipv4Addr> = BTreeSet::new();
    let mut kept = z.kept.clone();
    kept.sort_by(|a, b| a.id.cmp(&b.id));
    let zone_start = terminations.len();
    for instance in kept {
        match instance.private_ips.first().copied() {
            Some(ip) if wanted_ips.contains(&ip) && held.insert(ip) => {}
            _ if policy.surplus == DriftPolicy::Correct => {
                terminations.push(termination(instance, TerminateReason::Surplus));
            }
            _ => {}
        }
    }
    let mut replace = z.replace.clone();
    replace.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    let mut stepped = 0;
    for (instance, reason) in replace {
        match instance.private_ips.first().copied() {
            Some(ip) if wanted_ips.contains(&ip) && !held.contains(&ip) => {
                held.insert(ip);
                if stepped < step {
                    stepped += 1;
                    terminations.push(termination(instance, reason));
                    // Its IP is free again once it is gone: the create below waits for it.
                    held.remove(&ip);
                }
            }
            _ => terminations.push(termination(instance, TerminateReason::Surplus)),
        }
    }
    // IPs still held by instances on their way out must be free before they can be reused.
    let mut blockers: BTreeMap<Ipv4Addr, Vec<String>> = BTreeMap::new();
    let leaving_ids: BTreeSet<&str> =
        terminations[zone_start..].iter().map(|t| t.instance_id.as_str()).collect();
    for instance in &z.all {
        let going = instance.presence() == Presence::Leaving || leaving_ids.contains(instance.id.as_str());
        if going {
            for ip in &instance.private_ips {
                blockers.entry(*ip).or_default().push(instance.id.clone());
            }
        }
    }
    let missing: Vec<Ipv4Addr> = wanted_ips.iter().copied().filter(|ip| !held.contains(ip)).collect();
    let (blocked, free): (Vec<Ipv4Addr>, Vec<Ipv4Addr>) =
        missing.into_iter().partition(|ip| blockers.contains_key(ip));
    let free_count = u32::try_from(free.len()).unwrap_or(u32::MAX);
    let free = if policy.missing == DriftPolicy::Correct { free } else { Vec::new() };
    for (ips, must_wait) in [(free, false), (blocked, true)] {
        for chunk in ips.chunks(MAX_BATCH) {
            let ips: Vec<Ipv4Addr> = chunk.to_vec();
            let mut wait: Vec<String> = if must_wait {
                chunk.iter().flat_map(|ip| blockers[ip].iter().cloned()).collect()
            } else {
                Vec::new()
            };
            wait.sort();
            wait.dedup();
            let reason = if must_wait { CreateReason::Replacement } else { CreateReason::Missing };
            let count = u32::try_from(ips.len()).unwrap_or(u32::MAX);
            let placement = match placement::choose(&z.candidates, market) {
                Ok(chosen) => chosen,
                Err(passed_over) => {
                    unplaced(gp, zone, count, passed_over);
                    continue;
                }
            };
            let spec = CreateSpec {
                zone,
                placement,
                slots: Slots::Ips(ips.iter().map(ToString::to_string).collect()),
                count,
                private_ips: ips,
                wait_for_gone: wait,
                reason,
            };
            gp.creates.push(make_create(fleet, group, spec, in_use));
        }
    }
    free_count
}
