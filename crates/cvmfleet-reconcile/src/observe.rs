//! Observation, per region, not per fleet (issue 12): every instance of the project in a region
//! is listed together by its `cvmfleet:project` tag, ⌈N/100⌉ DescribeInstances calls, regions
//! concurrently (the published rate limits are per action and region), and sorted into fleets
//! by their `cvmfleet:fleet` tag. A fleet's instances in a region its spec does not name are
//! keyed [`elsewhere_key`]: the planner shows them as an orphan fleet.
//!
//! Instances made before projects carry no project tag. Two single-result probes per spec
//! region (instances with a `cvmfleet:fleet` tag, instances with a `cvmfleet:project` tag)
//! tell whether any exist; only then are the region's spec fleets listed by name (five names a
//! call), keeping the untagged ones: they count for the project whose specs name their fleet.
//!
//! Cost of one observation: Σ over listed regions of ⌈N_r/100⌉ listing calls, plus 2 probes per
//! spec region, plus ⌈F_r/5⌉·pages listing calls in a region that still holds instances from
//! before projects.
//!
//! Offset paging over a set that changes meanwhile is not a snapshot: a live instance can be
//! missed while the totals still agree. A region whose listing took one page is one consistent
//! read. For a region that took several, the listing says so ([`Observation::paged`]), and the
//! round ([`crate::round`]) reads every pool its plan would create in again with one
//! tag-filtered, single-page DescribeInstances ([`reread_pool`]: its fleet, group, template and
//! pool tags) and plans again from that, until every create's count comes from such a read (see
//! `cvmfleet_plan::token`). Cost: one DescribeInstances per create, and only in regions of
//! more than 100 of the project's instances. Observing plans nothing.

use std::collections::{BTreeMap, BTreeSet};

use tokio::task::JoinSet;

use cvmfleet_client::{CvmClient, Error as ApiError};
use cvmfleet_plan::observed::{elsewhere_key, tags};
use cvmfleet_plan::plan::Create;
use cvmfleet_plan::{DEFAULT_PROJECT, DesiredFleet, ObservedFleet, ObservedInstance, Presence};
use cvmfleet_wire::MAX_BATCH;
use cvmfleet_wire::api::DescribeInstancesRequest;
use cvmfleet_wire::model::{Filter, Instance};
use cvmfleet_wire::vocab::state;

use crate::error::ExecError;

/// What one observation listed: each fleet's instances (or why it could not be listed), and
/// which fleets' regions took several pages to list.
#[derive(Debug, Default)]
pub struct Observation {
    /// Per fleet (and per fleet found where no spec declares it, see
    /// [`cvmfleet_plan::observed::elsewhere_key`]), its instances or its error.
    pub fleets: BTreeMap<String, Result<ObservedFleet, ExecError>>,
    /// Fleets whose region's listing took more than one page: not one consistent read, so the
    /// pools their plans create in are read again before a create counts on them.
    pub paged: BTreeSet<String>,
}

/// Lists the project's instances in every region of `fleets` (their project: see
/// [`project_of`]), keyed by fleet (see the module docs).
///
/// # Errors
/// The first API failure, naming a fleet of the region that failed.
pub async fn observe(
    client: &CvmClient,
    fleets: &[DesiredFleet],
) -> Result<BTreeMap<String, ObservedFleet>, ExecError> {
    observe_in(client, project_of(fleets), fleets, &[]).await
}

/// Like [`observe`] for `project`, in the fleets' regions and in `more_regions` (where the
/// project may have instances no spec places there).
///
/// # Errors
/// The first API failure, naming a fleet of the region that failed (or the region).
pub async fn observe_in(
    client: &CvmClient,
    project: &str,
    fleets: &[DesiredFleet],
    more_regions: &[String],
) -> Result<BTreeMap<String, ObservedFleet>, ExecError> {
    let mut observed = BTreeMap::new();
    for (name, result) in observe_each(client, project, fleets, more_regions).await.fleets {
        observed.insert(name, result?);
    }
    Ok(observed)
}

/// The regions, other than `known`, where `project` has instances: one DescribeRegions, then
/// one single-result DescribeInstances (by the project tag) per other region, concurrently.
/// This is how a fleet moved to another region, or a region dropped from the specs, stays
/// visible.
///
/// # Errors
/// The first API failure.
pub async fn regions_with_instances(
    client: &CvmClient,
    project: &str,
    known: &BTreeSet<String>,
) -> Result<Vec<String>, ApiError> {
    let regions = client.describe_regions().await?;
    let mut probes = JoinSet::new();
    for region in regions.into_iter().map(|r| r.region).filter(|r| !known.contains(r)) {
        let (client, project) = (client.clone(), project.to_owned());
        probes.spawn(async move {
            let answer = count_matching(&client, &region, Filter::tag(tags::PROJECT, [project])).await;
            (region, answer.map(|total| total > 0))
        });
    }
    let mut found = Vec::new();
    while let Some(joined) = probes.join_next().await {
        let Ok((region, answer)) = joined else { continue };
        if answer? {
            found.push(region);
        }
    }
    found.sort();
    Ok(found)
}

/// The project of a set of fleets: theirs (they share it), or the default one.
#[must_use]
pub fn project_of(fleets: &[DesiredFleet]) -> &str {
    fleets.first().map_or(DEFAULT_PROJECT, |f| f.project.as_str())
}

/// One region's listing: the project's instances (and those from before projects of the
/// region's spec fleets), and whether it took more than one page.
struct RegionListing {
    instances: Vec<Instance>,
    paged: bool,
}

/// Lists like [`observe_in`], with each fleet's own outcome, so that one failing region does
/// not hide the others (the watcher backs off per fleet).
pub async fn observe_each(
    client: &CvmClient,
    project: &str,
    fleets: &[DesiredFleet],
    more_regions: &[String],
) -> Observation {
    let mut by_region: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for fleet in fleets {
        by_region.entry(fleet.region.clone()).or_default().push(fleet.name.clone());
    }
    for region in more_regions {
        by_region.entry(region.clone()).or_default();
    }
    let mut tasks = JoinSet::new();
    for (region, names) in &by_region {
        let (client, project, region, names) =
            (client.clone(), project.to_owned(), region.clone(), names.clone());
        tasks.spawn(async move {
            let result = list_region(&client, &project, &region, &names).await;
            (region, result)
        });
    }
    let mut observed: BTreeMap<String, Result<ObservedFleet, ExecError>> = BTreeMap::new();
    let mut paged: BTreeSet<String> = BTreeSet::new();
    let mut listed: BTreeSet<String> = BTreeSet::new();
    while let Some(joined) = tasks.join_next().await {
        let Ok((region, result)) = joined else { continue };
        listed.insert(region.clone());
        let names = &by_region[&region];
        match result {
            Ok(listing) => {
                for name in names {
                    observed.insert(name.clone(), Ok(ObservedFleet::default()));
                }
                for instance in reduce(&listing.instances, project) {
                    let Some(fleet) = instance.fleet.clone() else { continue };
                    let key = if names.contains(&fleet) { fleet } else { elsewhere_key(&fleet, &region) };
                    if let Ok(seen) = observed.entry(key).or_insert_with(|| Ok(ObservedFleet::default())) {
                        seen.instances.push(instance);
                    }
                }
                if listing.paged {
                    paged.insert(region);
                }
            }
            Err(source) => {
                let source = std::sync::Arc::new(source);
                for name in names {
                    let error = ExecError::Observe { fleet: name.clone(), source: source.clone() };
                    observed.insert(name.clone(), Err(error));
                }
                if names.is_empty() {
                    let key = elsewhere_key("*", &region);
                    observed.insert(key.clone(), Err(ExecError::Observe { fleet: key, source }));
                }
            }
        }
    }
    // A listing task that died must not read as an empty fleet (that would plan to create it all).
    for fleet in fleets {
        if !listed.contains(&fleet.region) {
            observed.insert(fleet.name.clone(), Err(ExecError::ObserveAborted { fleet: fleet.name.clone() }));
        }
    }
    for seen in observed.values_mut().flatten() {
        seen.instances.sort_by(|a, b| a.id.cmp(&b.id));
    }
    // Instances to adopt that are not the fleet's yet: looked up by ID, 100 a call.
    for fleet in fleets {
        let Some(Ok(seen)) = observed.get_mut(&fleet.name) else { continue };
        let wanted: Vec<String> = fleet
            .groups
            .iter()
            .flat_map(|g| &g.adopt)
            .filter(|id| !seen.instances.iter().any(|i| i.id == **id))
            .cloned()
            .collect();
        if wanted.is_empty() {
            continue;
        }
        match client.describe_instances_by_ids(&fleet.region, &wanted).await {
            Ok(found) => seen.adoptable = found.iter().map(ObservedInstance::from_wire).collect(),
            Err(source) => {
                let error = ExecError::Observe { fleet: fleet.name.clone(), source: source.into() };
                observed.insert(fleet.name.clone(), Err(error));
            }
        }
    }
    let paged = fleets.iter().filter(|f| paged.contains(&f.region)).map(|f| f.name.clone()).collect();
    Observation { fleets: observed, paged }
}

/// Lists the project's instances in `region`, and, when the region holds instances from before
/// projects, those of the fleets `names` without a project tag.
async fn list_region(
    client: &CvmClient,
    project: &str,
    region: &str,
    names: &[String],
) -> Result<RegionListing, ApiError> {
    let by_project = Filter::tag(tags::PROJECT, [project]);
    let mut instances = client.describe_instances_all(region, vec![by_project]).await?;
    let mut paged = instances.len() > MAX_BATCH;
    if !names.is_empty() && has_instances_from_before_projects(client, region).await? {
        for chunk in names.chunks(cvmfleet_wire::vocab::MAX_FILTER_VALUES) {
            let by_fleet = Filter::tag(tags::FLEET, chunk.iter().cloned());
            let listed = client.describe_instances_all(region, vec![by_fleet]).await?;
            paged |= listed.len() > MAX_BATCH;
            instances.extend(listed.into_iter().filter(|i| i.tag(tags::PROJECT).is_none()));
        }
    }
    Ok(RegionListing { instances, paged })
}

/// Whether `region` holds cvmfleet instances without a project tag: more instances carry a
/// fleet tag than a project tag (every instance made since projects carries both).
async fn has_instances_from_before_projects(client: &CvmClient, region: &str) -> Result<bool, ApiError> {
    let (fleet_tagged, project_tagged) = tokio::try_join!(
        count_matching(client, region, Filter::tag_key([tags::FLEET])),
        count_matching(client, region, Filter::tag_key([tags::PROJECT])),
    )?;
    Ok(fleet_tagged > project_tagged)
}

/// How many instances of `region` match `filter`: one single-result DescribeInstances, whose
/// `TotalCount` says.
async fn count_matching(client: &CvmClient, region: &str, filter: Filter) -> Result<i64, ApiError> {
    let request = DescribeInstancesRequest {
        instance_ids: None,
        filters: Some(vec![filter]),
        offset: Some(0),
        limit: Some(1),
    };
    Ok(client.call(region, &request).await?.data.total_count)
}

/// The project's instances of a listing, in ID order.
fn reduce(instances: &[Instance], project: &str) -> Vec<ObservedInstance> {
    let mut instances: Vec<ObservedInstance> =
        instances.iter().map(ObservedInstance::from_wire).filter(|i| i.belongs_to(project)).collect();
    instances.sort_by(|a, b| a.id.cmp(&b.id));
    instances.dedup_by(|a, b| a.id == b.id);
    instances
}

/// The ownership tags of a create that name its pool: fleet, group, template and pool, as
/// DescribeInstances filters; `None` for a create without them.
#[must_use]
pub fn pool_filters(create: &Create) -> Option<Vec<Filter>> {
    let tag_value = |key: &str| {
        create.request.tag_specification.iter().flatten().flat_map(|s| &s.tags).find(|t| t.key == key)
    };
    let keys = [tags::FLEET, tags::GROUP, tags::TEMPLATE, tags::POOL];
    keys.iter()
        .map(|key| tag_value(key).map(|t| Filter::new(format!("tag:{key}"), [t.value.clone()])))
        .collect()
}

/// Reads one pool again, one consistent page ([`pool_filters`] and the live states), and puts
/// what it holds in place of the pool's live instances in `seen`: its failed and leaving ones
/// stay as listed (they count for nothing, but their tokens are in use).
///
/// # Errors
/// The API failure.
pub async fn reread_pool(
    client: &CvmClient,
    fleet: &DesiredFleet,
    filters: &[Filter],
    seen: &mut ObservedFleet,
) -> Result<(), ApiError> {
    let mut live_only = filters.to_vec();
    live_only.push(Filter::new("instance-state", LIVE_STATES));
    let instances = read_pool(client, &fleet.region, live_only).await?;
    let value = |i: usize| filters.get(i).and_then(|f| f.values.first().cloned());
    let (group, template, pool) = (value(1), value(2), value(3));
    seen.instances.retain(|i| {
        !(i.group == group && i.template == template && i.pool == pool && i.presence() == Presence::Present)
    });
    seen.instances.extend(reduce(&instances, &fleet.project));
    seen.instances.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(())
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
