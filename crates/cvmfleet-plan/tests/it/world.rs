//! A tiny simulated cloud for planner tests: fixtures for desired and observed state, and
//! `apply_plan`, which does to an observed state what an executor would (creates land RUNNING
//! with their ownership tags, terminations disappear, starts run), so tests can follow a
//! multi-step rollout plan by plan.

use std::collections::BTreeMap;

use cvmfleet_plan::observed::tags;
use cvmfleet_plan::{DesiredFleet, DesiredGroup, DesiredZone, ObservedFleet, ObservedInstance, Plan};
use cvmfleet_wire::api::RunInstancesRequest;

pub(crate) const CURRENT: &str = "cccccccccccccccc";
pub(crate) const OLD: &str = "dddddddddddddddd";

pub(crate) fn group(replicas_per_zone: &[(&str, u32)]) -> DesiredGroup {
    DesiredGroup {
        zones: replicas_per_zone
            .iter()
            .map(|(zone, replicas)| DesiredZone {
                zone: (*zone).into(),
                replicas: *replicas,
                subnet_id: None,
                private_ips: vec![],
            })
            .collect(),
        ..DesiredGroup::new(
            "app",
            RunInstancesRequest {
                instance_type: Some("S5.MEDIUM2".into()),
                image_id: Some("img-pmqg1cw7".into()),
                instance_name: Some("app".into()),
                security_group_ids: Some(vec!["sg-5ld3mz1q".into()]),
                ..Default::default()
            },
            CURRENT,
        )
    }
}

pub(crate) fn fleet(groups: Vec<DesiredGroup>) -> DesiredFleet {
    DesiredFleet {
        project: "default".into(),
        name: "svc".into(),
        region: "ap-guangzhou".into(),
        prune: false,
        allow_deletion: false,
        groups,
        orphans: Default::default(),
        max_monthly_cost_increase: None,
    }
}

/// A RUNNING instance of group `app` made from `template`.
pub(crate) fn running(id: &str, zone: &str, template: &str) -> ObservedInstance {
    ObservedInstance {
        id: id.into(),
        zone: zone.into(),
        state: "RUNNING".into(),
        name: "app".into(),
        security_groups: vec!["sg-5ld3mz1q".into()],
        private_ips: vec![],
        subnet_id: String::new(),
        created_time: format!("2026-01-01T00:00:{:02}Z", id.len() % 60),
        instance_type: "S5.MEDIUM2".into(),
        image_id: "img-pmqg1cw7".into(),
        protected: false,
        fleet: Some("svc".into()),
        group: Some("app".into()),
        template: Some(template.into()),
        token: Some(format!("cvmf1-made-{id}")),
        pool: None,
        project: None,
        instance_charge_type: "POSTPAID_BY_HOUR".into(),
        latest_error: None,
    }
}

pub(crate) fn observed(instances: Vec<ObservedInstance>) -> BTreeMap<String, ObservedFleet> {
    BTreeMap::from([("svc".to_owned(), ObservedFleet { instances, ..Default::default() })])
}

/// Does what the executor would: creates land (RUNNING, tagged), terminations vanish, starts
/// run. New IDs are numbered from `next_id`.
pub(crate) fn apply_plan(plan: &Plan, world: &mut Vec<ObservedInstance>, next_id: &mut u32) {
    for fleet in &plan.fleets {
        for group in &fleet.groups {
            for create in &group.creates {
                let tag = |key: &str| request_tag(create, key);
                let template = tag(tags::TEMPLATE);
                for _ in 0..create.count {
                    *next_id += 1;
                    let mut instance = running(&format!("ins-new{next_id:05}"), &create.zone, "");
                    instance.template = template.clone();
                    instance.token = create.request.client_token.clone();
                    instance.pool = tag(tags::POOL);
                    instance.created_time = format!("2026-06-01T00:00:00.{next_id:05}Z");
                    world.push(instance);
                }
            }
            world.retain(|i| !group.terminations.iter().any(|t| t.instance_id == i.id));
            for start in &group.starts {
                for i in world.iter_mut().filter(|i| start.instance_ids.contains(&i.id)) {
                    i.state = "RUNNING".into();
                }
            }
        }
    }
}

/// The value of an ownership tag a create sets.
pub(crate) fn request_tag(create: &cvmfleet_plan::plan::Create, key: &str) -> Option<String> {
    create
        .request
        .tag_specification
        .iter()
        .flatten()
        .flat_map(|s| &s.tags)
        .find(|t| t.key == key)
        .map(|t| t.value.clone())
}
