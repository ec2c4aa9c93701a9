//! In-place corrections (names, security groups) batched per zone and value, and what forces
//! a replacement, field by field.

use super::*;

pub(super) fn plan_updates<'a>(
    group: &DesiredGroup,
    kept: &[&'a ObservedInstance],
    found: &mut Vec<Found<'a>>,
) -> Vec<Update> {
    let policy = group.policies.drift;
    let mut updates = Vec::new();
    // Names with `{R:x}` patterns differ per instance by design; they are not compared.
    if let Some(name) = group.instance_name().filter(|n| !n.contains("{R:"))
        && let Some(handling) = handling_of(policy.instance_name)
    {
        let mut renames: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
        // The suffixes the API appends when creating several are no drift: the wire crate's
        // one name-template reader says which names the template makes.
        let template = cvmfleet_wire::names::NameTemplate::parse(name, false);
        for i in kept.iter().filter(|i| !template.matches(&i.name)) {
            found.push(Found {
                instance: i,
                kind: DriftKind::InstanceName,
                observed: i.name.clone(),
                desired: name.to_owned(),
                handling: Some(handling),
            });
            renames.entry((i.zone.as_str(), i.name.as_str())).or_default().push(i.id.clone());
        }
        if handling == Handling::Corrected {
            updates.extend(batched_updates(renames, |from| AttributeChange::InstanceName {
                from: (*from).to_owned(),
                to: name.to_owned(),
            }));
        }
    }
    if let Some(wanted) = group.security_groups()
        && let Some(handling) = handling_of(policy.security_groups)
    {
        let mut changes: BTreeMap<(&str, &[String]), Vec<String>> = BTreeMap::new();
        for i in kept.iter().filter(|i| i.security_groups != wanted) {
            found.push(Found {
                instance: i,
                kind: DriftKind::SecurityGroups,
                observed: i.security_groups.join(", "),
                desired: wanted.join(", "),
                handling: Some(handling),
            });
            changes.entry((i.zone.as_str(), i.security_groups.as_slice())).or_default().push(i.id.clone());
        }
        if handling == Handling::Corrected {
            updates.extend(batched_updates(changes, |from| AttributeChange::SecurityGroups {
                from: from.to_vec(),
                to: wanted.clone(),
            }));
        }
    }
    updates
}

/// One ModifyInstancesAttribute per zone, current value and 100 instances (sorted IDs).
fn batched_updates<K>(
    by_zone_and_value: BTreeMap<(&str, K), Vec<String>>,
    change: impl Fn(&K) -> AttributeChange,
) -> Vec<Update> {
    let mut updates = Vec::new();
    for ((zone, from), mut ids) in by_zone_and_value {
        ids.sort();
        for chunk in ids.chunks(MAX_BATCH) {
            updates.push(Update {
                zone: zone.to_owned(),
                instance_ids: chunk.to_vec(),
                change: change(&from),
            });
        }
    }
    updates
}

pub(super) fn replacement_diff(group: &DesiredGroup, replaced: &[&ObservedInstance]) -> Vec<FieldChange> {
    /// Reads one observable field of an instance.
    type Getter = fn(&ObservedInstance) -> &str;
    let mut changes = Vec::new();
    let distinct = |get: Getter| -> String {
        let values: BTreeSet<&str> = replaced.iter().map(|i| get(i)).collect();
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
        replaced.iter().map(|i| i.template.as_deref().unwrap_or("(untagged)")).collect::<BTreeSet<_>>();
    let observed = observed_hashes.into_iter().collect::<Vec<_>>().join(", ");
    if observed != group.replacement_hash {
        changes.push(FieldChange {
            field: "template".into(),
            observed,
            desired: group.replacement_hash.clone(),
        });
    }
    changes
}
