//! The Tag service's behaviour over any store of tagged CVM instances, once, so that the
//! emulator and the in-process simulation answer every Tag request the same way: a store
//! implements [`TagStore`] (its instances, in creation order, with their tags), each action is
//! a function of the store and the request, and the mutations return the tag changes for the
//! store to commit (and, in the emulator, to journal).
//!
//! Resource names: `qcs::cvm:<region>:uin/<uin>:instance/<id>`, the uin the store's account or
//! empty (the caller's own). A name of another account, service, prefix or region, or of an
//! instance that does not exist, fails for that resource alone (`FailedResources`) in
//! TagResources and UnTagResources, and fails the call in ModifyResourceTags. Which code
//! answers which of these cases is this crate's reading: Tencent lists the codes per action,
//! not the cases.
//!
//! Paging: DescribeResourcesByTags and DescribeResourceTagsByResourceIds page by offset over
//! the matches in creation order; GetResources by a token that resumes after the last
//! instance of the page, so that instances created or removed meanwhile shift nothing.

use std::collections::{BTreeMap, BTreeSet};

use super::api::{
    DescribeResourceTagsByResourceIdsRequest, DescribeResourceTagsByResourceIdsResponse,
    DescribeResourcesByTagsRequest, DescribeResourcesByTagsResponse, FailedResourcesResponse,
    GetResourcesRequest, GetResourcesResponse, ModifyResourceTagsRequest, TagResourcesRequest,
    UnTagResourcesRequest,
};
use super::model::{FailedResource, ResourceTag, ResourceTagMapping, Tag, TagResource};
use super::resource::ResourceName;
use super::rules::{self, Problem};
use super::{CATEGORY_CUSTOM, RESOURCE_PREFIX_INSTANCE, SERVICE_TYPE_CVM, codes};
use crate::codes as common;
use crate::model::Tag as InstanceTag;

/// One instance as the Tag service sees it.
#[derive(Debug, Clone, Copy)]
pub struct Tagged<'a> {
    /// The store's key of the instance; ascending in creation order.
    pub seq: u64,
    /// Region of the instance.
    pub region: &'a str,
    /// Instance ID.
    pub instance_id: &'a str,
    /// Its tags (`Instance.Tags`).
    pub tags: &'a [InstanceTag],
}

/// A store of tagged instances: the emulator's world or the simulation's.
pub trait TagStore {
    /// The account every instance belongs to (digits).
    fn account_uin(&self) -> &str;
    /// Whether the region exists.
    fn has_region(&self, region: &str) -> bool;
    /// The instance `id` of `region`, if it is listed.
    fn instance(&self, region: &str, id: &str) -> Option<Tagged<'_>>;
    /// The listed instances with a key above `after` (all for `None`), in ascending key order.
    fn instances_after(&self, after: Option<u64>) -> Box<dyn Iterator<Item = Tagged<'_>> + '_>;
}

/// Tag changes for the store to commit: (instance key, its new tags), in ascending key order,
/// each instance once, only instances whose tags actually change.
pub type Changes = Vec<(u64, Vec<InstanceTag>)>;

/// The canonical name of an instance, with the account's uin.
#[must_use]
pub fn resource_name(store: &impl TagStore, t: &Tagged<'_>) -> ResourceName {
    ResourceName::cvm_instance(t.region, Some(store.account_uin()), t.instance_id)
}

/// The instance a name designates.
fn resolve<'s>(store: &'s impl TagStore, name: &ResourceName) -> Result<Tagged<'s>, Problem> {
    if !name.uin.is_empty() && name.uin != store.account_uin() {
        return Err(Problem::new(
            codes::AUTH_FAILURE_UNAUTHORIZED_OPERATION,
            format!("The resource `{name}` belongs to account {}, not to the caller's.", name.uin),
        ));
    }
    if name.service_type != SERVICE_TYPE_CVM {
        return Err(Problem::new(
            codes::INVALID_PARAMETER_UNSUPPORTED_SERVICE,
            format!("Only CVM resources can be tagged here, not `{}` ones.", name.service_type),
        ));
    }
    if name.resource_prefix != RESOURCE_PREFIX_INSTANCE {
        return Err(Problem::new(
            codes::INVALID_PARAMETER_VALUE_RESOURCE_PREFIX_INVALID,
            format!("Only CVM instances can be tagged here, not `{}` resources.", name.resource_prefix),
        ));
    }
    if !store.has_region(&name.region) {
        return Err(Problem::new(
            codes::INVALID_PARAMETER_VALUE_REGION_INVALID,
            format!("The region `{}` of resource `{name}` does not exist.", name.region),
        ));
    }
    store.instance(&name.region, &name.resource_id).ok_or_else(|| {
        Problem::new(
            codes::INVALID_PARAMETER_VALUE_RESOURCE_ID_INVALID,
            format!("The instance `{}` does not exist in region `{}`.", name.resource_id, name.region),
        )
    })
}

/// Applies `set`/`remove` to each named instance; the ones that fail are reported, the others
/// changed. An instance named twice is changed twice, in order.
fn change_each(
    store: &impl TagStore,
    list: &[String],
    names: &[ResourceName],
    set: &[Tag],
    remove: &[String],
) -> (FailedResourcesResponse, Changes) {
    let mut changed: BTreeMap<u64, Vec<InstanceTag>> = BTreeMap::new();
    let mut original: BTreeMap<u64, Vec<InstanceTag>> = BTreeMap::new();
    let mut failed = Vec::new();
    for (text, name) in list.iter().zip(names) {
        let outcome = resolve(store, name).and_then(|t| {
            let current = changed.get(&t.seq).map_or(t.tags, Vec::as_slice);
            Ok((t.seq, t.tags, rules::apply_change(current, set, remove)?))
        });
        match outcome {
            Ok((seq, before, after)) => {
                original.entry(seq).or_insert_with(|| before.to_vec());
                changed.insert(seq, after);
            }
            Err(p) => failed.push(FailedResource {
                resource: text.clone(),
                code: p.code.into(),
                message: p.message,
            }),
        }
    }
    let changes = changed.into_iter().filter(|(seq, tags)| original.get(seq) != Some(tags)).collect();
    (FailedResourcesResponse { failed_resources: failed }, changes)
}

/// TagResources.
///
/// # Errors
/// The request's [`Problem`]; a problem of one resource is in `FailedResources` instead.
pub fn tag_resources(
    store: &impl TagStore,
    req: &TagResourcesRequest,
) -> Result<(FailedResourcesResponse, Changes), Problem> {
    let names = rules::check_resource_list(&req.resource_list)?;
    rules::check_tags_to_set("Tags", &req.tags)?;
    Ok(change_each(store, &req.resource_list, &names, &req.tags, &[]))
}

/// UnTagResources. A key an instance does not carry is no error.
///
/// # Errors
/// The request's [`Problem`]; a problem of one resource is in `FailedResources` instead.
pub fn untag_resources(
    store: &impl TagStore,
    req: &UnTagResourcesRequest,
) -> Result<(FailedResourcesResponse, Changes), Problem> {
    let names = rules::check_resource_list(&req.resource_list)?;
    rules::check_keys_to_remove("TagKeys", &req.tag_keys)?;
    Ok(change_each(store, &req.resource_list, &names, &[], &req.tag_keys))
}

/// ModifyResourceTags: one resource, all or nothing.
///
/// # Errors
/// The request's or the resource's [`Problem`].
pub fn modify_resource_tags(
    store: &impl TagStore,
    req: &ModifyResourceTagsRequest,
) -> Result<Changes, Problem> {
    if req.resource.is_empty() {
        return Err(Problem::new(
            common::MISSING_PARAMETER,
            "The request is missing a required parameter `Resource`.",
        ));
    }
    let name = ResourceName::parse(&req.resource)?;
    if req.replace_tags.is_none() && req.delete_tags.is_none() {
        return Err(Problem::new(
            common::MISSING_PARAMETER,
            "The request must give `ReplaceTags`, `DeleteTags` or both.",
        ));
    }
    if req.replace_tags.as_ref().is_some_and(Vec::is_empty)
        || req.delete_tags.as_ref().is_some_and(Vec::is_empty)
    {
        return Err(Problem::new(
            codes::INVALID_PARAMETER_TAG,
            "`ReplaceTags` and `DeleteTags` may be left out but may not be empty lists.",
        ));
    }
    let set = req.replace_tags.clone().unwrap_or_default();
    let remove: Vec<String> = req.delete_tags.iter().flatten().map(|k| k.tag_key.clone()).collect();
    if req.replace_tags.is_some() {
        rules::check_tags_to_set("ReplaceTags", &set)?;
    }
    if req.delete_tags.is_some() {
        rules::check_keys_to_remove("DeleteTags", &remove)?;
    }
    if let Some(both) = set.iter().find(|t| remove.contains(&t.tag_key)) {
        return Err(Problem::new(
            codes::INVALID_PARAMETER_VALUE_DELETE_TAGS_PARAM_ERROR,
            format!("The tag key `{}` is both replaced and deleted.", both.tag_key),
        ));
    }
    let t = resolve(store, &name)?;
    let after = rules::apply_change(t.tags, &set, &remove)?;
    Ok(if after.as_slice() == t.tags { Vec::new() } else { vec![(t.seq, after)] })
}

fn usize_of(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// DescribeResourcesByTags, across every region unless `ResourceRegion` is given.
///
/// # Errors
/// The request's [`Problem`].
pub fn describe_resources_by_tags(
    store: &impl TagStore,
    req: &DescribeResourcesByTagsRequest,
) -> Result<DescribeResourcesByTagsResponse, Problem> {
    if req.tag_filters.is_empty() {
        return Err(Problem::new(
            common::MISSING_PARAMETER,
            "The request is missing a required parameter `TagFilters`.",
        ));
    }
    rules::check_tag_filters(&req.tag_filters, None)?;
    let (offset, limit) = rules::page(req.offset, req.limit)?;
    let wanted =
        |value: &Option<String>, actual: &str| value.as_deref().is_none_or(|v| v.is_empty() || v == actual);
    // Only the account's instances exist; tags created by another account match none.
    let other_account = req.create_uin.is_some_and(|uin| uin.to_string() != store.account_uin());
    let kind =
        wanted(&req.service_type, SERVICE_TYPE_CVM) && wanted(&req.resource_prefix, RESOURCE_PREFIX_INSTANCE);
    let matching: Vec<Tagged<'_>> = store
        .instances_after(None)
        .filter(|_| kind && !other_account)
        .filter(|t| wanted(&req.resource_region, t.region) && wanted(&req.resource_id, t.instance_id))
        .filter(|t| rules::filters_match(&req.tag_filters, t.tags))
        .collect();
    let rows = matching
        .iter()
        .skip(usize_of(offset))
        .take(usize_of(limit))
        .map(|t| ResourceTag {
            resource_region: t.region.to_owned(),
            service_type: SERVICE_TYPE_CVM.into(),
            resource_prefix: RESOURCE_PREFIX_INSTANCE.into(),
            resource_id: t.instance_id.to_owned(),
            tags: t.tags.iter().map(Tag::from).collect(),
        })
        .collect();
    Ok(DescribeResourcesByTagsResponse { total_count: matching.len() as u64, offset, limit, rows })
}

/// DescribeResourceTagsByResourceIds: one row per (instance, tag), instances in the order
/// given, unknown ones left out.
///
/// # Errors
/// The request's [`Problem`].
pub fn describe_resource_tags_by_ids(
    store: &impl TagStore,
    req: &DescribeResourceTagsByResourceIdsRequest,
) -> Result<DescribeResourceTagsByResourceIdsResponse, Problem> {
    for (parameter, value) in [("ServiceType", &req.service_type), ("ResourcePrefix", &req.resource_prefix)] {
        if value.is_empty() {
            return Err(Problem::new(
                common::MISSING_PARAMETER,
                format!("The request is missing a required parameter `{parameter}`."),
            ));
        }
    }
    if req.resource_ids.is_empty() {
        return Err(Problem::new(
            common::MISSING_PARAMETER,
            "The request is missing a required parameter `ResourceIds`.",
        ));
    }
    if req.resource_ids.len() > super::MAX_RESOURCE_IDS_PER_DESCRIBE {
        return Err(Problem::new(
            codes::LIMIT_EXCEEDED_RESOURCE_NUM_PER_REQUEST,
            format!(
                "`ResourceIds` holds {} IDs; at most {} are allowed.",
                req.resource_ids.len(),
                super::MAX_RESOURCE_IDS_PER_DESCRIBE
            ),
        ));
    }
    if !store.has_region(&req.resource_region) {
        return Err(Problem::new(
            codes::INVALID_PARAMETER_VALUE_REGION_INVALID,
            format!("The region `{}` does not exist.", req.resource_region),
        ));
    }
    if let Some(category) = req.category.as_deref()
        && !matches!(category, "Custom" | "System" | "All")
    {
        return Err(Problem::new(
            common::INVALID_PARAMETER_VALUE,
            format!("`Category` is `{category}`; it is one of Custom, System, All."),
        ));
    }
    let (offset, limit) = rules::page(req.offset, req.limit)?;
    // Every tag set through the API is a custom one.
    let wanted = req.service_type == SERVICE_TYPE_CVM
        && req.resource_prefix == RESOURCE_PREFIX_INSTANCE
        && req.category.as_deref() != Some("System");
    let mut seen = BTreeSet::new();
    let rows: Vec<TagResource> = req
        .resource_ids
        .iter()
        .filter(|_| wanted)
        .filter(|id| seen.insert(id.as_str()))
        .filter_map(|id| store.instance(&req.resource_region, id))
        .flat_map(|t| {
            t.tags.iter().map(move |tag| TagResource {
                tag_key: tag.key.clone(),
                tag_value: tag.value.clone(),
                resource_id: t.instance_id.to_owned(),
                tag_key_md5: rules::md5_hex(&tag.key),
                tag_value_md5: rules::md5_hex(&tag.value),
                service_type: SERVICE_TYPE_CVM.into(),
                category: CATEGORY_CUSTOM.into(),
            })
        })
        .collect();
    let total = rows.len() as u64;
    let tags = rows.into_iter().skip(usize_of(offset)).take(usize_of(limit)).collect();
    Ok(DescribeResourceTagsByResourceIdsResponse { total_count: total, offset, limit, tags })
}

/// The token of a GetResources page that ends with the instance of key `seq`.
fn token_of(seq: u64) -> String {
    format!("seq-{seq:016x}")
}

fn seq_of_token(token: &str) -> Option<u64> {
    token.strip_prefix("seq-").and_then(|hex| u64::from_str_radix(hex, 16).ok())
}

/// GetResources: by names (every match at once) or by filters, token-paged.
///
/// # Errors
/// The request's [`Problem`].
pub fn get_resources(
    store: &impl TagStore,
    req: &GetResourcesRequest,
) -> Result<GetResourcesResponse, Problem> {
    let filters = req.tag_filters.as_deref().unwrap_or_default();
    rules::check_tag_filters(filters, Some(super::GET_RESOURCES_MAX_FILTER_VALUES))?;
    let mapping = |t: &Tagged<'_>| ResourceTagMapping {
        resource: resource_name(store, t).to_string(),
        tags: t.tags.iter().map(Tag::from).collect(),
    };
    if let Some(list) = req.resource_list.as_deref().filter(|l| !l.is_empty()) {
        let names = rules::check_resource_list(list)?;
        let mut seen = BTreeSet::new();
        let found = names
            .iter()
            .filter_map(|name| resolve(store, name).ok())
            .filter(|t| seen.insert(t.seq))
            .filter(|t| rules::filters_match(filters, t.tags))
            .map(|t| mapping(&t))
            .collect();
        return Ok(GetResourcesResponse {
            pagination_token: String::new(),
            resource_tag_mapping_list: found,
        });
    }
    let max = match req.max_results {
        None | Some(0) => super::GET_RESOURCES_DEFAULT_MAX_RESULTS,
        Some(n) if n > super::GET_RESOURCES_MAX_RESULTS => {
            return Err(Problem::new(
                common::INVALID_PARAMETER_VALUE,
                format!(
                    "`MaxResults` {n} is above the largest page of {}.",
                    super::GET_RESOURCES_MAX_RESULTS
                ),
            ));
        }
        Some(n) => n,
    };
    let after = match req.pagination_token.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(token) => Some(seq_of_token(token).ok_or_else(|| {
            Problem::new(
                codes::INVALID_PARAMETER_PAGINATION_TOKEN_INVALID,
                format!("`PaginationToken` `{token}` was not issued by this service."),
            )
        })?),
    };
    let max = usize_of(max);
    let mut page: Vec<Tagged<'_>> = store
        .instances_after(after)
        .filter(|t| rules::filters_match(filters, t.tags))
        .take(max.saturating_add(1))
        .collect();
    let more = page.len() > max;
    page.truncate(max);
    let token = match page.last() {
        Some(last) if more => token_of(last.seq),
        _ => String::new(),
    };
    Ok(GetResourcesResponse {
        pagination_token: token,
        resource_tag_mapping_list: page.iter().map(mapping).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store of (region, id, tags) in creation order.
    struct Store(Vec<(String, String, Vec<InstanceTag>)>);

    impl TagStore for Store {
        fn account_uin(&self) -> &str {
            "1000"
        }
        fn has_region(&self, region: &str) -> bool {
            region.starts_with("ap-")
        }
        fn instance(&self, region: &str, id: &str) -> Option<Tagged<'_>> {
            self.instances_after(None).find(|t| t.region == region && t.instance_id == id)
        }
        fn instances_after(&self, after: Option<u64>) -> Box<dyn Iterator<Item = Tagged<'_>> + '_> {
            Box::new(
                self.0
                    .iter()
                    .enumerate()
                    .map(|(i, (region, id, tags))| Tagged {
                        seq: i as u64 + 1,
                        region,
                        instance_id: id,
                        tags,
                    })
                    .filter(move |t| after.is_none_or(|a| t.seq > a)),
            )
        }
    }

    fn store() -> Store {
        let tags = |v: &str| vec![InstanceTag::new("fleet", v)];
        Store(vec![
            ("ap-guangzhou".into(), "ins-00000001".into(), tags("web")),
            ("ap-guangzhou".into(), "ins-00000002".into(), tags("db")),
            ("ap-hongkong".into(), "ins-00000003".into(), tags("web")),
        ])
    }

    #[test]
    fn a_resource_named_twice_changes_once_with_both_effects() {
        let s = store();
        let name = "qcs::cvm:ap-guangzhou:uin/:instance/ins-00000001".to_owned();
        let req = TagResourcesRequest {
            resource_list: vec![name.clone(), name],
            tags: vec![Tag::new("fleet", "web")],
        };
        let (failed, changes) = tag_resources(&s, &req).unwrap();
        assert!(failed.failed_resources.is_empty());
        assert!(changes.is_empty(), "setting the value an instance has changes nothing");
        let req = UnTagResourcesRequest {
            resource_list: vec!["qcs::cvm:ap-hongkong:uin/1000:instance/ins-00000003".into()],
            tag_keys: vec!["fleet".into()],
        };
        assert_eq!(untag_resources(&s, &req).unwrap().1, vec![(3, Vec::new())]);
    }

    #[test]
    fn get_resources_pages_resume_after_the_last_key() {
        let s = store();
        let req = GetResourcesRequest { max_results: Some(1), ..Default::default() };
        let first = get_resources(&s, &req).unwrap();
        assert_eq!(
            first.resource_tag_mapping_list[0].resource,
            "qcs::cvm:ap-guangzhou:uin/1000:instance/ins-00000001"
        );
        let next = GetResourcesRequest { pagination_token: Some(first.pagination_token), ..req };
        let second = get_resources(&s, &next).unwrap();
        assert_eq!(
            second.resource_tag_mapping_list[0].resource,
            "qcs::cvm:ap-guangzhou:uin/1000:instance/ins-00000002"
        );
        assert_eq!(seq_of_token(&token_of(7)), Some(7));
        assert_eq!(seq_of_token("7"), None);
    }
}
