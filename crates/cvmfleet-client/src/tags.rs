//! Helpers over the Tag service and DescribeRegions: typed calls that split their work into the
//! API's per-call limits and walk every page.
//!
//! Costs, for N instances (each call waits for its action's rate limit, pages and batches run
//! `page_concurrency` at a time):
//!
//! | helper | calls |
//! |---|---|
//! | [`CvmClient::describe_regions`] | 1 DescribeRegions |
//! | [`CvmClient::describe_instances_by_tag`] (V values) | ⌈V/5⌉ listings of ⌈N/100⌉ DescribeInstances pages |
//! | [`CvmClient::find_tagged_instances`], [`CvmClient::describe_resources_by_tags`] | ⌈N/200⌉ DescribeResourcesByTags pages (one when none), every region at once |
//! | [`CvmClient::tag_resources`] (T tags) | ⌈N/10⌉ · ⌈T/10⌉ TagResources |
//! | [`CvmClient::untag_resources`] (K keys) | ⌈N/10⌉ · ⌈K/10⌉ UnTagResources |
//! | [`CvmClient::modify_resource_tags`] | ⌈max(T, K)/10⌉ ModifyResourceTags for one instance |
//! | [`CvmClient::describe_instance_tags`] (R tag rows) | ⌈N/50⌉ batches of ⌈R/200⌉ DescribeResourceTagsByResourceIds pages |
//!
//! Tag actions take no region; the region of an instance is in its resource name
//! ([`CvmClient::instance_resource_name`]).

use std::collections::{BTreeMap, BTreeSet};

use cvmfleet_wire::api::DescribeRegionsRequest;
use cvmfleet_wire::model::{Filter, Instance, RegionInfo, Tag as InstanceTag};
use cvmfleet_wire::tag::api::{
    DescribeResourceTagsByResourceIdsRequest, DescribeResourcesByTagsRequest,
    DescribeResourcesByTagsResponse, FailedResourcesResponse, ModifyResourceTagsRequest, TagResourcesRequest,
    UnTagResourcesRequest,
};
use cvmfleet_wire::tag::model::{ResourceTag, Tag, TagFilter, TagKeyObject};
use cvmfleet_wire::tag::{self, ResourceName};
use cvmfleet_wire::{Action, ApiRequest, vocab};

use crate::client::{Answer, CvmClient};
use crate::error::Error;
use crate::paging::{BatchOutcome, LISTING_ROUNDS, batches_of};

/// What DescribeResourcesByTags looks at besides the tags: a service, a resource prefix, a
/// region. `None` leaves a dimension open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceScope {
    /// Service, e.g. `cvm`.
    pub service_type: Option<String>,
    /// Resource prefix, e.g. `instance`.
    pub resource_prefix: Option<String>,
    /// One region; `None` for every region.
    pub region: Option<String>,
}

impl ResourceScope {
    /// CVM instances in every region.
    #[must_use]
    pub fn cvm_instances() -> Self {
        ResourceScope {
            service_type: Some(tag::SERVICE_TYPE_CVM.into()),
            resource_prefix: Some(tag::RESOURCE_PREFIX_INSTANCE.into()),
            region: None,
        }
    }
}

/// A CVM instance found by its tags, in any region.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TaggedInstance {
    /// Region of the instance.
    pub region: String,
    /// Instance ID.
    pub instance_id: String,
    /// Every tag of the instance, as CVM spells tags.
    pub tags: Vec<InstanceTag>,
}

impl CvmClient {
    /// The six-segment name the Tag service knows an instance by:
    /// `qcs::cvm:<region>:uin/<uin>:instance/<id>`, the uin [`crate::ClientConfig::account_uin`]
    /// or empty (the caller's account).
    #[must_use]
    pub fn instance_resource_name(&self, region: &str, instance_id: &str) -> String {
        ResourceName::cvm_instance(region, self.config().account_uin.as_deref(), instance_id).to_string()
    }

    /// DescribeRegions: every region of the account, in one call.
    ///
    /// # Errors
    /// The call's [`Error`].
    pub async fn describe_regions(&self) -> Result<Vec<RegionInfo>, Error> {
        Ok(self.call("", &DescribeRegionsRequest {}).await?.data.region_set)
    }

    /// Every instance of `region` whose tag `key` has one of `values`, with `extra` filters
    /// AND-ed: one listing ([`CvmClient::describe_instances_all`]) per 5 values (a filter holds
    /// at most [`vocab::MAX_FILTER_VALUES`]), each instance once, in the order the listings
    /// return them. No call is made for an empty `values`.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] when `extra` leaves no room for the tag filter (a request holds
    /// at most [`vocab::MAX_FILTERS`]) or is itself over the limits; else the first failed
    /// listing's error.
    pub async fn describe_instances_by_tag(
        &self,
        region: &str,
        key: &str,
        values: &[String],
        extra: Vec<Filter>,
    ) -> Result<Vec<Instance>, Error> {
        let invalid = |reason: String| Error::InvalidRequest { action: Action::DescribeInstances, reason };
        if extra.len() >= vocab::MAX_FILTERS {
            return Err(invalid(format!(
                "{} extra filters leave no room for the tag filter (at most {} per request)",
                extra.len(),
                vocab::MAX_FILTERS
            )));
        }
        vocab::check_filter_limits(&extra).map_err(|(_, message)| invalid(message))?;
        let mut seen = BTreeSet::new();
        let mut instances = Vec::new();
        for chunk in batches_of(values, vocab::MAX_FILTER_VALUES) {
            let mut filters = extra.clone();
            filters.push(Filter::tag(key, chunk));
            for instance in self.describe_instances_all(region, filters).await? {
                if seen.insert(instance.instance_id.clone()) {
                    instances.push(instance);
                }
            }
        }
        Ok(instances)
    }

    /// TagResources for instances of `region`: batches of [`tag::MAX_RESOURCES_PER_CALL`]
    /// instances, each sent once per [`tag::MAX_TAGS_PER_CALL`] tags. A key an instance
    /// carries gets the new value. Every batch is attempted; a batch's `FailedResources` come
    /// back as one [`BatchOutcome`] per failed instance ([`Error::Api`] with the resource's
    /// code and the call's RequestId), beside one for the instances it tagged. Nothing is sent
    /// for no instances or no tags.
    pub async fn tag_resources(
        &self,
        region: &str,
        instance_ids: &[String],
        tags: &[InstanceTag],
    ) -> Vec<BatchOutcome> {
        let tags: Vec<Tag> = tags.iter().map(Tag::from).collect();
        let requests = self.resource_batches(region, instance_ids, tags.len(), |names, part| {
            TagResourcesRequest { resource_list: names, tags: tags[part].to_vec() }
        });
        self.tag_batches(requests).await
    }

    /// UnTagResources for instances of `region`, batched like [`CvmClient::tag_resources`]. A
    /// key an instance does not carry is no error.
    pub async fn untag_resources(
        &self,
        region: &str,
        instance_ids: &[String],
        keys: &[String],
    ) -> Vec<BatchOutcome> {
        let requests = self.resource_batches(region, instance_ids, keys.len(), |names, part| {
            UnTagResourcesRequest { resource_list: names, tag_keys: keys[part].to_vec() }
        });
        self.tag_batches(requests).await
    }

    /// ModifyResourceTags for one instance: sets `replace` and removes `delete` in one call when
    /// each holds at most [`tag::MAX_TAGS_PER_CALL`] tags, in several calls (in order, not
    /// atomically) otherwise. Returns the calls' RequestIds; nothing is sent when both are
    /// empty.
    ///
    /// # Errors
    /// The first failed call's [`Error`] (the calls before it took effect).
    pub async fn modify_resource_tags(
        &self,
        region: &str,
        instance_id: &str,
        replace: &[InstanceTag],
        delete: &[String],
    ) -> Result<Vec<String>, Error> {
        let resource = self.instance_resource_name(region, instance_id);
        let replace: Vec<Tag> = replace.iter().map(Tag::from).collect();
        let size = tag::MAX_TAGS_PER_CALL;
        let calls = replace.len().div_ceil(size).max(delete.len().div_ceil(size));
        let mut request_ids = Vec::with_capacity(calls);
        for i in 0..calls {
            let part = |len: usize| (i * size).min(len)..((i + 1) * size).min(len);
            let set = &replace[part(replace.len())];
            let remove = &delete[part(delete.len())];
            let request = ModifyResourceTagsRequest {
                resource: resource.clone(),
                replace_tags: (!set.is_empty()).then(|| set.to_vec()),
                delete_tags: (!remove.is_empty())
                    .then(|| remove.iter().map(|k| TagKeyObject { tag_key: k.clone() }).collect()),
            };
            request_ids.push(self.call("", &request).await?.request_id);
        }
        Ok(request_ids)
    }

    /// Every resource whose tags match all `filters` within `scope`, walking the pages of
    /// DescribeResourcesByTags at [`tag::MAX_PAGE_LIMIT`]: the first page gives `TotalCount`,
    /// the others are fetched concurrently. Pages that do not add up (the set changed while it
    /// was paged) make the walk start over, three walks at most, as for DescribeInstances.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] for no filter or too many (at most [`tag::MAX_TAG_FILTERS`]);
    /// the first failed page's error; [`Error::ListingChanged`] after three changing walks.
    pub async fn describe_resources_by_tags(
        &self,
        filters: Vec<TagFilter>,
        scope: &ResourceScope,
    ) -> Result<Vec<ResourceTag>, Error> {
        let invalid =
            |reason: String| Error::InvalidRequest { action: Action::DescribeResourcesByTags, reason };
        if filters.is_empty() {
            return Err(invalid("DescribeResourcesByTags needs at least one tag filter".into()));
        }
        tag::rules::check_tag_filters(&filters, None).map_err(|p| invalid(p.message))?;
        let page = |offset: u64| DescribeResourcesByTagsRequest {
            tag_filters: filters.clone(),
            offset: Some(offset),
            limit: Some(tag::MAX_PAGE_LIMIT),
            service_type: scope.service_type.clone(),
            resource_prefix: scope.resource_prefix.clone(),
            resource_region: scope.region.clone(),
            ..DescribeResourcesByTagsRequest::default()
        };
        let mut reason = String::new();
        for round in 1..=LISTING_ROUNDS {
            let first = self.call("", &page(0)).await?.data;
            let offsets: Vec<u64> = (1..first.total_count.div_ceil(tag::MAX_PAGE_LIMIT))
                .map(|i| i * tag::MAX_PAGE_LIMIT)
                .collect();
            let rest = self.fan_out_ok("", offsets.into_iter().map(page).collect()).await?;
            match assemble(first, rest) {
                Ok(rows) => return Ok(rows),
                Err(why) => {
                    tracing::debug!(round, reason = %why, "DescribeResourcesByTags listing changed; walking again");
                    reason = why;
                }
            }
        }
        Err(Error::ListingChanged { action: Action::DescribeResourcesByTags, reason })
    }

    /// Every CVM instance whose tags match all `filters`, in every region, with its region and
    /// tags: the cheap way to learn where a project has instances (⌈N/200⌉ calls whatever the
    /// number of regions). Sorted by region, then instance ID.
    ///
    /// # Errors
    /// As [`CvmClient::describe_resources_by_tags`].
    pub async fn find_tagged_instances(&self, filters: Vec<TagFilter>) -> Result<Vec<TaggedInstance>, Error> {
        let rows = self.describe_resources_by_tags(filters, &ResourceScope::cvm_instances()).await?;
        let mut found: Vec<TaggedInstance> = rows
            .into_iter()
            .filter(|r| {
                r.service_type == tag::SERVICE_TYPE_CVM && r.resource_prefix == tag::RESOURCE_PREFIX_INSTANCE
            })
            .map(|r| TaggedInstance {
                region: r.resource_region,
                instance_id: r.resource_id,
                tags: r.tags.into_iter().map(InstanceTag::from).collect(),
            })
            .collect();
        found.sort();
        Ok(found)
    }

    /// The tags of instances of `region` (DescribeResourceTagsByResourceIds), in batches of
    /// [`tag::MAX_RESOURCE_IDS_PER_DESCRIBE`] IDs, every page of each. Instances that do not
    /// exist, or carry no tag, are absent. No call is made for an empty list.
    ///
    /// # Errors
    /// The first failed call's [`Error`].
    pub async fn describe_instance_tags(
        &self,
        region: &str,
        instance_ids: &[String],
    ) -> Result<BTreeMap<String, Vec<InstanceTag>>, Error> {
        let mut tags: BTreeMap<String, Vec<InstanceTag>> = BTreeMap::new();
        for batch in batches_of(instance_ids, tag::MAX_RESOURCE_IDS_PER_DESCRIBE) {
            let page = |offset: u64| DescribeResourceTagsByResourceIdsRequest {
                service_type: tag::SERVICE_TYPE_CVM.into(),
                resource_prefix: tag::RESOURCE_PREFIX_INSTANCE.into(),
                resource_ids: batch.clone(),
                resource_region: region.to_owned(),
                offset: Some(offset),
                limit: Some(tag::MAX_PAGE_LIMIT),
                category: None,
            };
            let first = self.call("", &page(0)).await?.data;
            let offsets: Vec<u64> = (1..first.total_count.div_ceil(tag::MAX_PAGE_LIMIT))
                .map(|i| i * tag::MAX_PAGE_LIMIT)
                .collect();
            let rest = self.fan_out_ok("", offsets.into_iter().map(page).collect()).await?;
            for row in first.tags.into_iter().chain(rest.into_iter().flat_map(|a| a.data.tags)) {
                let entry = tags.entry(row.resource_id).or_default();
                if !entry.iter().any(|t| t.key == row.tag_key) {
                    entry.push(InstanceTag::new(row.tag_key, row.tag_value));
                }
            }
        }
        Ok(tags)
    }

    /// Requests for the instances in batches of 10, each batch once per 10 items (tags or
    /// keys) of `items`, with the instances' names. Nothing for no instances or no items.
    fn resource_batches<R>(
        &self,
        region: &str,
        instance_ids: &[String],
        items: usize,
        make: impl Fn(Vec<String>, std::ops::Range<usize>) -> R,
    ) -> Vec<(Vec<String>, R)> {
        let size = tag::MAX_TAGS_PER_CALL;
        let mut requests = Vec::new();
        for ids in batches_of(instance_ids, tag::MAX_RESOURCES_PER_CALL) {
            for start in (0..items).step_by(size) {
                let names = ids.iter().map(|id| self.instance_resource_name(region, id)).collect();
                requests.push((ids.clone(), make(names, start..(start + size).min(items))));
            }
        }
        requests
    }

    /// Sends tag batches concurrently and reports each instance's outcome.
    async fn tag_batches<R>(&self, requests: Vec<(Vec<String>, R)>) -> Vec<BatchOutcome>
    where
        R: ApiRequest<Response = FailedResourcesResponse> + Send + Sync + 'static,
    {
        let (ids, requests): (Vec<Vec<String>>, Vec<R>) = requests.into_iter().unzip();
        let mut results: BTreeMap<usize, Result<Answer<FailedResourcesResponse>, Error>> = BTreeMap::new();
        self.fan_out("", requests, |index, result| {
            results.insert(index, result);
            true
        })
        .await;
        let mut outcomes = Vec::new();
        for (index, instance_ids) in ids.into_iter().enumerate() {
            match results.remove(&index) {
                Some(Ok(answer)) => outcomes.extend(split_failures(R::ACTION, instance_ids, answer)),
                Some(Err(error)) => outcomes.push(BatchOutcome { instance_ids, result: Err(error) }),
                None => outcomes.push(BatchOutcome {
                    instance_ids,
                    result: Err(Error::InvalidRequest {
                        action: R::ACTION,
                        reason: "not sent: the runtime shut down first".into(),
                    }),
                }),
            }
        }
        outcomes
    }
}

/// One outcome for the instances a call changed, one per instance it failed for.
fn split_failures(
    action: Action,
    instance_ids: Vec<String>,
    answer: Answer<FailedResourcesResponse>,
) -> Vec<BatchOutcome> {
    let failed: BTreeMap<String, (String, String)> = answer
        .data
        .failed_resources
        .into_iter()
        .filter_map(|f| {
            let id = ResourceName::parse(&f.resource).ok()?.resource_id;
            Some((id, (f.code, f.message)))
        })
        .collect();
    let (bad, good): (Vec<String>, Vec<String>) =
        instance_ids.into_iter().partition(|id| failed.contains_key(id));
    let mut outcomes = Vec::new();
    if !good.is_empty() {
        outcomes.push(BatchOutcome { instance_ids: good, result: Ok(answer.request_id.clone()) });
    }
    for id in bad {
        let (code, message) = failed.get(&id).cloned().unwrap_or_default();
        outcomes.push(BatchOutcome {
            instance_ids: vec![id],
            result: Err(Error::Api { action, code, message, request_id: answer.request_id.clone() }),
        });
    }
    outcomes
}

/// The rows of a walk, or why its pages do not add up.
fn assemble(
    first: DescribeResourcesByTagsResponse,
    rest: Vec<Answer<DescribeResourcesByTagsResponse>>,
) -> Result<Vec<ResourceTag>, String> {
    let total = first.total_count;
    let mut seen = BTreeSet::new();
    let mut rows = Vec::new();
    for (index, page) in std::iter::once(first).chain(rest.into_iter().map(|a| a.data)).enumerate() {
        if page.total_count != total {
            return Err(format!(
                "page {} reported TotalCount {} but the first page {total}",
                index + 1,
                page.total_count
            ));
        }
        for row in page.rows {
            let key = (row.service_type.clone(), row.resource_region.clone(), row.resource_id.clone());
            if seen.insert(key) {
                rows.push(row);
            }
        }
    }
    if rows.len() as u64 != total {
        return Err(format!("the pages held {} distinct resources, not {total}", rows.len()));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cvmfleet_wire::tag::model::FailedResource;

    #[test]
    fn failures_are_reported_per_instance() {
        let answer = Answer {
            data: FailedResourcesResponse {
                failed_resources: vec![FailedResource {
                    resource: "qcs::cvm:ap-guangzhou:uin/:instance/ins-00000002".into(),
                    code: "InvalidParameterValue.ResourceIdInvalid".into(),
                    message: "gone".into(),
                }],
            },
            request_id: "r-1".into(),
        };
        let ids = vec!["ins-00000001".to_owned(), "ins-00000002".to_owned(), "ins-00000003".to_owned()];
        let outcomes = split_failures(Action::TagResources, ids, answer);
        assert_eq!(outcomes.len(), 2);
        assert_eq!(outcomes[0].instance_ids, ["ins-00000001", "ins-00000003"]);
        assert_eq!(outcomes[0].result.as_ref().ok().map(String::as_str), Some("r-1"));
        assert_eq!(outcomes[1].instance_ids, ["ins-00000002"]);
        let error = outcomes[1].result.as_ref().unwrap_err();
        assert_eq!(
            (error.code(), error.request_id()),
            (Some("InvalidParameterValue.ResourceIdInvalid"), Some("r-1"))
        );
    }

    #[test]
    fn pages_that_do_not_add_up_are_reported() {
        let row = |id: &str| ResourceTag { resource_id: id.into(), ..ResourceTag::default() };
        let page = |total, rows: Vec<ResourceTag>| DescribeResourcesByTagsResponse {
            total_count: total,
            rows,
            ..Default::default()
        };
        let answer = |p| Answer { data: p, request_id: String::new() };
        assert_eq!(
            assemble(page(2, vec![row("a")]), vec![answer(page(2, vec![row("b")]))]).unwrap().len(),
            2
        );
        assert!(assemble(page(2, vec![row("a")]), vec![answer(page(3, vec![row("b")]))]).is_err());
        assert!(assemble(page(2, vec![row("a")]), vec![answer(page(2, vec![row("a")]))]).is_err());
    }
}
