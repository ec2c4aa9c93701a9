//! Observation: list every fleet's instances by its ownership tag, ⌈N/100⌉ DescribeInstances
//! calls per fleet, fleets observed concurrently within the client's rate limits, keeping the
//! fleet's project's instances (another project's fleet of the same name is not ours; one made
//! before projects is, see `ObservedInstance::belongs_to`); then make the counts that decide
//! creates consistent.
//!
//! Offset paging over a set that changes meanwhile is not a snapshot: a live instance can be
//! missed while the totals still agree. A fleet whose listing took one page is one consistent
//! read. For a fleet that took several, every pool the plan would create in is read again
//! with one tag-filtered, single-page DescribeInstances (its fleet, group, template and pool
//! tags) and planned again from that, until every create's count comes from such a read (see
//! `cvmfleet_plan::token`). Cost: one DescribeInstances per create, and only for fleets of
//! more than 100 instances.

use std::collections::{BTreeMap, BTreeSet};

use tokio::task::JoinSet;

use cvmfleet_client::{CvmClient, Error as ApiError};
use cvmfleet_plan::observed::tags;
use cvmfleet_plan::plan::Create;
use cvmfleet_plan::{DesiredFleet, ObservedFleet, ObservedInstance, PlanOptions, Presence};
use cvmfleet_wire::MAX_BATCH;
use cvmfleet_wire::api::DescribeInstancesRequest;
use cvmfleet_wire::model::{Filter, Instance};
use cvmfleet_wire::vocab::state;

use crate::error::ExecError;

/// Lists the instances of each fleet (by its `cvmfleet:fleet` tag, in its region).
///
/// # Errors
/// The first API failure, naming the fleet.
pub async fn observe(
    client: &CvmClient,
    fleets: &[DesiredFleet],
) -> Result<BTreeMap<String, ObservedFleet>, ExecError> {
    let mut observed = BTreeMap::new();
    for (name, result) in observe_each(client, fleets).await {
        observed.insert(name, result?);
    }
    Ok(observed)
}

/// Lists the instances of each fleet like [`observe`], with each fleet's own outcome, so that
/// one failing fleet does not hide the others (the watcher backs off per fleet).
pub async fn observe_each(
    client: &CvmClient,
    fleets: &[DesiredFleet],
) -> BTreeMap<String, Result<ObservedFleet, ExecError>> {
    let mut tasks = JoinSet::new();
    for fleet in fleets {
        let client = client.clone();
        let name = fleet.name.clone();
        let region = fleet.region.clone();
        let project = fleet.project.clone();
        tasks.spawn(async move {
            let filter = Filter::new(format!("tag:{}", tags::FLEET), [name.clone()]);
            let result = client.describe_instances_all(&region, vec![filter]).await;
            (name, result.map(|listed| (listed.len(), reduce(&listed, &project))))
        });
    }
    let mut observed = BTreeMap::new();
    let mut paged: BTreeSet<String> = BTreeSet::new();
    while let Some(joined) = tasks.join_next().await {
        let Ok((name, result)) = joined else { continue };
        let result = match result {
            Ok((listed, instances)) => {
                if listed > MAX_BATCH {
                    paged.insert(name.clone());
                }
                Ok(ObservedFleet { instances, ..ObservedFleet::default() })
            }
            Err(source) => Err(ExecError::Observe { fleet: name.clone(), source }),
        };
        observed.insert(name, result);
    }
    // A listing task that died must not read as an empty fleet (that would plan to create it all).
    for fleet in fleets {
        observed
            .entry(fleet.name.clone())
            .or_insert_with(|| Err(ExecError::ObserveAborted { fleet: fleet.name.clone() }));
    }
    let paged: Vec<&DesiredFleet> = fleets.iter().filter(|f| paged.contains(&f.name)).collect();
    for fleet in paged {
        let Some(Ok(seen)) = observed.get_mut(&fleet.name) else { continue };
        if let Err(source) = reread_pools(client, fleet, seen).await {
            observed
                .insert(fleet.name.clone(), Err(ExecError::Observe { fleet: fleet.name.clone(), source }));
        }
    }
    observed
}

/// The project's instances of a listing, in ID order.
fn reduce(instances: &[Instance], project: &str) -> Vec<ObservedInstance> {
    let mut instances: Vec<ObservedInstance> =
        instances.iter().map(ObservedInstance::from_wire).filter(|i| i.belongs_to(project)).collect();
    instances.sort_by(|a, b| a.id.cmp(&b.id));
    instances
}

/// The ownership tags of a create that name its pool: fleet, group, template and pool.
fn pool_filters(create: &Create) -> Option<Vec<Filter>> {
    let tag_value = |key: &str| {
        create.request.tag_specification.iter().flatten().flat_map(|s| &s.tags).find(|t| t.key == key)
    };
    let keys = [tags::FLEET, tags::GROUP, tags::TEMPLATE, tags::POOL];
    keys.iter()
        .map(|key| tag_value(key).map(|t| Filter::new(format!("tag:{key}"), [t.value.clone()])))
        .collect()
}

/// Re-reads, one consistent page each, the pools the fleet's plan would create in, and plans
/// again, until every pool it creates in was read that way.
async fn reread_pools(
    client: &CvmClient,
    fleet: &DesiredFleet,
    seen: &mut ObservedFleet,
) -> Result<(), ApiError> {
    let key = |filters: &[Filter]| -> Vec<String> { filters.iter().flat_map(|f| f.values.clone()).collect() };
    let mut read: BTreeSet<Vec<String>> = BTreeSet::new();
    loop {
        let observed = BTreeMap::from([(fleet.name.clone(), seen.clone())]);
        let plan = cvmfleet_plan::plan(std::slice::from_ref(fleet), &observed, PlanOptions::default());
        let pending: Vec<Vec<Filter>> = plan
            .fleets
            .iter()
            .flat_map(|f| &f.groups)
            .flat_map(|g| &g.creates)
            .filter_map(pool_filters)
            .filter(|filters| !read.contains(&key(filters)))
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        for filters in pending {
            let mut live_only = filters.clone();
            live_only.push(Filter::new("instance-state", LIVE_STATES));
            let instances = read_pool(client, &fleet.region, live_only).await?;
            let value = |i: usize| filters[i].values.first().cloned();
            let (group, template, pool) = (value(1), value(2), value(3));
            // The re-read replaces the pool's live instances; its failed and leaving ones stay
            // as listed (they count for nothing, but their tokens are in use).
            seen.instances.retain(|i| {
                !(i.group == group
                    && i.template == template
                    && i.pool == pool
                    && i.presence() == Presence::Present)
            });
            seen.instances.extend(reduce(&instances, &fleet.project));
            seen.instances.sort_by(|a, b| a.id.cmp(&b.id));
            read.insert(key(&filters));
        }
    }
}

/// The states a re-read asks for (the API takes five values per filter): the live ones, so that
/// a pool (at most 100 live instances) is one page whatever it holds of failed launches and
/// instances on their way out, which could otherwise push it onto a second, inconsistent page.
/// `REBOOTING` is the one live state left out: an instance rebooting out of band at the instant
/// of the re-read is not counted (a residual case, see `cvmfleet_plan::token`).
const LIVE_STATES: [&str; 5] =
    [state::PENDING, state::RUNNING, state::STARTING, state::STOPPING, state::STOPPED];

/// One pool's live instances: one page (one consistent read); should it ever hold more than a
/// page, the pages are walked.
async fn read_pool(
    client: &CvmClient,
    region: &str,
    filters: Vec<Filter>,
) -> Result<Vec<Instance>, ApiError> {
    let page = DescribeInstancesRequest {
        instance_ids: None,
        filters: Some(filters.clone()),
        offset: Some(0),
        limit: Some(MAX_BATCH as i64),
    };
    let answer = client.call(region, &page).await?.data;
    if usize::try_from(answer.total_count).unwrap_or(usize::MAX) <= answer.instance_set.len() {
        return Ok(answer.instance_set);
    }
    client.describe_instances_all(region, filters).await
}
