//! Turning a decision into the exact request: a create's RunInstances body with its ownership
//! tags, request digest, pool generation and ClientToken (see [`crate::token`]), and a
//! termination's plan entry.

use cvmfleet_spec::ZonePolicy;
use cvmfleet_wire::api::RunInstancesRequest;
use cvmfleet_wire::model::{Placement, Tag, TagSpecification, VirtualPrivateCloud};

use crate::desired::{DesiredFleet, DesiredGroup, DesiredZone};
use crate::observed::{ObservedInstance, tags};
use crate::placement::{Candidate, PassedOver};
use crate::plan::{Create, CreateReason, TerminateReason, Termination};
use crate::token::{Slots, TokenSeed, request_digest};

pub(crate) fn termination(instance: &ObservedInstance, reason: TerminateReason) -> Termination {
    Termination {
        instance_id: instance.id.clone(),
        zone: instance.zone.clone(),
        name: instance.name.clone(),
        state: instance.state.to_string(),
        reason,
        waits_for_launches: false,
        waits_for_transition: instance.state.is_transitional(),
    }
}

/// What a create is for, before the planner derives its request and token.
pub(crate) struct CreateSpec<'a> {
    /// The slots' home zone: its pool and token (see [`crate::token`]).
    pub(crate) zone: &'a DesiredZone,
    /// Where it launches and on what, chosen from stock ([`crate::placement`]), with the
    /// candidates passed over.
    pub(crate) placement: (Candidate<'a>, Vec<PassedOver>),
    /// The slots it fills.
    pub(crate) slots: Slots,
    /// Instances it makes.
    pub(crate) count: u32,
    /// Explicit private IPs (IP groups), one per instance.
    pub(crate) private_ips: Vec<std::net::Ipv4Addr>,
    /// Instances that must be gone first (they hold its IPs).
    pub(crate) wait_for_gone: Vec<String>,
    /// Why.
    pub(crate) reason: CreateReason,
}

/// Builds a create: the request as the spec makes it, its digest, the next free generation of
/// its pool (see [`crate::token`]), and the token and count set last.
pub(crate) fn make_create(
    fleet: &DesiredFleet,
    group: &DesiredGroup,
    spec: CreateSpec<'_>,
    in_use: &dyn Fn(&str) -> bool,
) -> Create {
    let CreateSpec {
        zone,
        placement: (launch, passed_over),
        slots,
        count,
        private_ips,
        wait_for_gone,
        reason,
    } = spec;
    let mut request = group.template.clone();
    let mut placement = request.placement.take().unwrap_or_default();
    placement.zone = zone.zone.clone();
    request.placement = Some(Placement { ..placement });
    if zone.subnet_id.is_some() || !private_ips.is_empty() {
        let mut vpc: VirtualPrivateCloud = request.virtual_private_cloud.take().unwrap_or_default();
        if let Some(subnet) = &zone.subnet_id {
            vpc.subnet_id = subnet.clone();
        }
        vpc.private_ip_addresses = if private_ips.is_empty() {
            None
        } else {
            Some(private_ips.iter().map(ToString::to_string).collect())
        };
        request.virtual_private_cloud = Some(vpc);
    }
    request.instance_count = None;
    request.client_token = None;
    if let Some(login) = request.login_settings.as_mut() {
        login.password = None;
    }
    let pool = match &slots {
        Slots::Pool { index } => Some(crate::token::pool_tag(&zone.zone, *index)),
        Slots::Ips(_) => None,
    };
    let owned = OwnershipTags {
        project: &fleet.project,
        fleet: &fleet.name,
        group: &group.name,
        template: &group.replacement_hash,
        pool: pool.as_deref(),
    };
    set_ownership_tags(&mut request, &owned, None);
    let password_ref = group.password.as_ref().map(ToString::to_string);
    let token_seed = TokenSeed {
        fleet: fleet.name.clone(),
        group: group.name.clone(),
        zone: zone.zone.clone(),
        request_digest: request_digest(&request, password_ref.as_deref()),
        slots,
    };
    let generation = token_seed.next_generation(in_use);
    let token = token_seed.token(generation);
    set_ownership_tags(&mut request, &owned, Some(&token));
    request.instance_count = Some(i64::from(count));
    request.client_token = Some(token);
    // The placement is applied after the token: two observers that choose differently for the
    // same generation send the same token, and the cloud creates once (see `token`).
    let home_zone = (launch.zone.zone != zone.zone).then(|| zone.zone.clone());
    if home_zone.is_some() {
        if let Some(placement) = request.placement.as_mut() {
            placement.zone = launch.zone.zone.clone();
        }
        if let (Some(subnet), Some(vpc)) = (&launch.zone.subnet_id, request.virtual_private_cloud.as_mut()) {
            vpc.subnet_id = subnet.clone();
        }
    }
    let offering = (!group.capacity.offerings.is_empty()).then(|| {
        request.instance_type = Some(launch.offering.instance_type.clone());
        request.instance_charge_type = Some(launch.offering.charge_type.clone());
        request.instance_market_options = launch.offering.market_options.clone();
        launch.offering.clone()
    });
    // Deliver what stock allows: the rest of the pool is planned again, next round, onto the
    // next candidate with stock. Under `zonePolicy: priority` that is what fills the first zone
    // to its stock before the next one (issue 25 §9), with or without `instanceTypes`.
    if offering.is_some() || group.capacity.zone_policy == ZonePolicy::Priority {
        request.min_count = Some(1);
    }
    Create {
        zone: launch.zone.zone.clone(),
        count,
        token_seed,
        generation,
        request,
        password: group.password.clone(),
        reason,
        wait_for_gone,
        home_zone,
        offering,
        passed_over,
    }
}

/// The ownership tags of a create.
struct OwnershipTags<'a> {
    project: &'a str,
    fleet: &'a str,
    group: &'a str,
    template: &'a str,
    pool: Option<&'a str>,
}

/// Sets (replacing any earlier ones) cvmfleet's ownership tags in the request's `instance` tag
/// specification, the token tag only when given.
fn set_ownership_tags(request: &mut RunInstancesRequest, owned: &OwnershipTags<'_>, token: Option<&str>) {
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
    spec.tags.push(Tag::new(tags::PROJECT, owned.project));
    spec.tags.push(Tag::new(tags::FLEET, owned.fleet));
    spec.tags.push(Tag::new(tags::GROUP, owned.group));
    spec.tags.push(Tag::new(tags::TEMPLATE, owned.template));
    if let Some(pool) = owned.pool {
        spec.tags.push(Tag::new(tags::POOL, pool));
    }
    if let Some(token) = token {
        spec.tags.push(Tag::new(tags::TOKEN, token));
    }
}
