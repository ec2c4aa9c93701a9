//! Adoption (issue 12 §4): existing instances a group lists under `adopt:` are brought under it
//! by writing the ownership tags, never by creating or terminating.
//!
//! Why this keeps the exactly-once promise: adoption creates nothing; an adoptee counts as
//! present in the plan that adopts it, so the group's creates fill only what is still
//! missing. If its tag write fails (the instance vanished, the call failed), the next plan no
//! longer sees it as the group's and fills its slot: the group falls short for one round, never
//! over. Two applies adopting the same instance write the same tags (idempotent). Nothing is
//! adopted that another project, fleet or group holds: that is a refusal, not a skip.

use crate::desired::{DesiredFleet, DesiredGroup};
use crate::observed::{ObservedFleet, ObservedInstance, Presence, tags};
use crate::plan::{Adoption, FieldChange, Refusal};

/// The `cvmfleet:template` value of an adoptee whose launch settings differ from the group's:
/// it matches no template, so the group replaces it under its rollout policy.
pub const ADOPTED_TEMPLATE: &str = "adopted";

/// What adopting the group's `adopt:` list takes: the steps, and the adoptees as they will be
/// observed once adopted (so that this plan counts them).
pub(crate) struct Adopting {
    pub(crate) adoptions: Vec<Adoption>,
    pub(crate) adoptees: Vec<ObservedInstance>,
}

/// Plans the adoptions of one group; what cannot be adopted is a refusal.
pub(crate) fn plan_adoptions(
    fleet: &DesiredFleet,
    group: &DesiredGroup,
    seen: &ObservedFleet,
    refusals: &mut Vec<Refusal>,
) -> Adopting {
    let mut out = Adopting { adoptions: Vec::new(), adoptees: Vec::new() };
    let mut refuse = |id: &str, why: String| {
        refusals.push(Refusal {
            fleet: fleet.name.clone(),
            group: Some(group.name.clone()),
            message: format!("cannot adopt {id}: {why}"),
        });
    };
    for id in &group.adopt {
        if let Some(own) = seen.instances.iter().find(|i| i.id == *id) {
            if own.group.as_deref() != Some(group.name.as_str()) {
                let held = own.group.as_deref().unwrap_or("(none)");
                refuse(id, format!("it already belongs to group {held} of fleet {}", fleet.name));
            }
            continue; // Already the group's: counted like any other instance.
        }
        let Some(instance) = seen.adoptable.iter().find(|i| i.id == *id) else {
            refuse(id, format!("no such instance in {}", fleet.region));
            continue;
        };
        if let Some(project) = instance.project.as_deref().filter(|p| *p != fleet.project) {
            refuse(id, format!("it belongs to project {project}"));
            continue;
        }
        if let Some(other) = instance.fleet.as_deref() {
            let group_name = instance.group.as_deref().unwrap_or("(none)");
            refuse(id, format!("it is already managed by cvmfleet (fleet {other}, group {group_name})"));
            continue;
        }
        if instance.presence() != Presence::Present {
            refuse(id, format!("it is {}", instance.state));
            continue;
        }
        let Some(zone) = group.zones.iter().find(|z| z.zone == instance.zone) else {
            refuse(id, format!("it is in {}, a zone the group does not use", instance.zone));
            continue;
        };
        let mut differences = Vec::new();
        let mut immutable_differs = false;
        let mut differ = |field: &str, observed: &str, desired: &str, immutable: bool| {
            if observed != desired {
                immutable_differs |= immutable;
                differences.push(FieldChange {
                    field: field.into(),
                    observed: observed.into(),
                    desired: desired.into(),
                });
            }
        };
        if let Some(t) = &group.template.instance_type {
            differ("InstanceType", &instance.instance_type, t, true);
        }
        if let Some(image) = &group.template.image_id {
            differ("ImageId", &instance.image_id, image, true);
        }
        if let Some(subnet) = &zone.subnet_id {
            differ("SubnetId", &instance.subnet_id, subnet, true);
        }
        if let Some(name) = group.instance_name()
            && !cvmfleet_wire::names::NameTemplate::parse(name, false).matches(&instance.name)
        {
            differ("InstanceName", &instance.name, name, false);
        }
        if let Some(groups) = &group.template.security_group_ids {
            let mut wanted = groups.clone();
            wanted.sort();
            differ("SecurityGroupIds", &instance.security_groups.join(", "), &wanted.join(", "), false);
        }
        let template = if immutable_differs { ADOPTED_TEMPLATE } else { group.replacement_hash.as_str() };
        let written = [
            (tags::PROJECT, fleet.project.as_str()),
            (tags::FLEET, fleet.name.as_str()),
            (tags::GROUP, group.name.as_str()),
            (tags::TEMPLATE, template),
        ];
        out.adoptions.push(Adoption {
            instance_id: id.clone(),
            zone: instance.zone.clone(),
            name: instance.name.clone(),
            state: instance.state.to_string(),
            tags: written.iter().map(|(k, v)| cvmfleet_wire::model::Tag::new(*k, *v)).collect(),
            differences,
        });
        // Counted as it will be seen once adopted, as up to date for this plan: its differences
        // are planned (replacement, in-place changes) once the tags are written, because until
        // then the executor does not touch it.
        let mut adoptee = instance.clone();
        adoptee.project = Some(fleet.project.clone());
        adoptee.fleet = Some(fleet.name.clone());
        adoptee.group = Some(group.name.clone());
        adoptee.template = Some(group.replacement_hash.clone());
        if let Some(t) = &group.template.instance_type {
            adoptee.instance_type.clone_from(t);
        }
        if let Some(image) = &group.template.image_id {
            adoptee.image_id.clone_from(image);
        }
        if let Some(subnet) = &zone.subnet_id {
            adoptee.subnet_id.clone_from(subnet);
        }
        if let Some(name) = group.instance_name() {
            adoptee.name = name.to_owned();
        }
        if let Some(groups) = &group.template.security_group_ids {
            let mut groups = groups.clone();
            groups.sort();
            adoptee.security_groups = groups;
        }
        out.adoptees.push(adoptee);
    }
    out
}
