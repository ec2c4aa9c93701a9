//! The Tag service (2018-08-13) over the instances' own tags: TagResources, UnTagResources,
//! ModifyResourceTags, DescribeResourcesByTags, DescribeResourceTagsByResourceIds and
//! GetResources, plus CVM's DescribeRegions.
//!
//! A tag is one thing: the Tag service reads and writes `Instance.Tags`, so a change shows in
//! the next DescribeInstances (and its tag index) at once, and is journaled like any other
//! change of a record. The checks and their codes are the wire crate's
//! ([`cvmfleet_wire::tag::rules`]); what is decided here is only how a name maps to a record.
//!
//! Resource names: `qcs::cvm:<region>:uin/<uin>:instance/<id>`, the uin the emulator's account
//! ([`crate::EmulatorConfig::account_uin`]) or empty (the caller's own). A name of another
//! account, service, prefix or region, or of an instance that does not exist, fails for that
//! resource alone (`FailedResources`) in TagResources and UnTagResources, and fails the call in
//! ModifyResourceTags. These outcomes are the emulator's reading: Tencent documents the codes,
//! not which one answers which case.

use std::collections::BTreeMap;

use cvmfleet_wire::api::DescribeRegionsResponse;
use cvmfleet_wire::model::RegionInfo;
use cvmfleet_wire::tag::api::{
    DescribeResourceTagsByResourceIdsRequest, DescribeResourceTagsByResourceIdsResponse,
    DescribeResourcesByTagsRequest, DescribeResourcesByTagsResponse, FailedResourcesResponse,
    GetResourcesRequest, GetResourcesResponse, ModifyResourceTagsRequest, TagResourcesRequest,
    UnTagResourcesRequest,
};
use cvmfleet_wire::tag::model::{FailedResource, ResourceTag, ResourceTagMapping, Tag, TagResource};
use cvmfleet_wire::tag::rules::{self, Problem};
use cvmfleet_wire::tag::{self, ResourceName, codes};

use super::{Mutation, Record, World};
use crate::api_error::ApiError;

impl From<Problem> for ApiError {
    fn from(p: Problem) -> Self {
        ApiError::new(p.code, p.message)
    }
}

/// Pages of GetResources resume after the record with this sequence number.
fn token_of(seq: u64) -> String {
    format!("emu-{seq:016x}")
}

fn seq_of_token(token: &str) -> Option<u64> {
    token.strip_prefix("emu-").and_then(|hex| u64::from_str_radix(hex, 16).ok())
}

impl World {
    /// The account's uin.
    pub(crate) fn account_uin(&self) -> &str {
        &self.settings.account_uin
    }

    /// DescribeRegions: the catalog's regions, all `AVAILABLE`.
    pub(crate) fn describe_regions(&self) -> DescribeRegionsResponse {
        let regions: Vec<RegionInfo> = self
            .catalog
            .catalog
            .regions
            .iter()
            .map(|r| RegionInfo {
                region: r.region.clone(),
                region_name: r.region_name.clone(),
                region_state: "AVAILABLE".into(),
            })
            .collect();
        DescribeRegionsResponse { total_count: regions.len() as u64, region_set: regions }
    }

    /// The canonical name of an instance, with the account's uin.
    fn resource_name(&self, r: &Record) -> ResourceName {
        ResourceName::cvm_instance(&r.region, Some(&self.settings.account_uin), &r.instance.instance_id)
    }

    /// The record a name designates.
    fn resolve_resource(&self, name: &ResourceName) -> Result<u64, Problem> {
        if !name.uin.is_empty() && name.uin != self.settings.account_uin {
            return Err(Problem::new(
                codes::AUTH_FAILURE_UNAUTHORIZED_OPERATION,
                format!("The resource `{name}` belongs to account {}, not to the caller's.", name.uin),
            ));
        }
        if name.service_type != tag::SERVICE_TYPE_CVM {
            return Err(Problem::new(
                codes::INVALID_PARAMETER_UNSUPPORTED_SERVICE,
                format!("The emulator tags CVM resources only, not `{}` ones.", name.service_type),
            ));
        }
        if name.resource_prefix != tag::RESOURCE_PREFIX_INSTANCE {
            return Err(Problem::new(
                codes::INVALID_PARAMETER_VALUE_RESOURCE_PREFIX_INVALID,
                format!("The emulator tags CVM instances only, not `{}` resources.", name.resource_prefix),
            ));
        }
        if self.catalog.region(&name.region).is_none() {
            return Err(Problem::new(
                codes::INVALID_PARAMETER_VALUE_REGION_INVALID,
                format!("The region `{}` of resource `{name}` does not exist.", name.region),
            ));
        }
        match self.record_by_id(&name.resource_id).filter(|r| r.region == name.region) {
            Some(r) => Ok(r.seq),
            None => Err(Problem::new(
                codes::INVALID_PARAMETER_VALUE_RESOURCE_ID_INVALID,
                format!("The instance `{}` does not exist in region `{}`.", name.resource_id, name.region),
            )),
        }
    }

    /// Applies `set`/`remove` to each named resource; the ones that fail are reported, the
    /// others changed. A resource named twice is changed twice, in order.
    fn change_tags(
        &mut self,
        list: &[String],
        names: &[ResourceName],
        set: &[Tag],
        remove: &[String],
    ) -> Result<(FailedResourcesResponse, Mutation), ApiError> {
        let mut changed: BTreeMap<u64, Record> = BTreeMap::new();
        let mut failed = Vec::new();
        for (text, name) in list.iter().zip(names) {
            let outcome = self.resolve_resource(name).and_then(|seq| {
                let record = match changed.get(&seq) {
                    Some(r) => r.clone(),
                    None => self.records.get(&seq).cloned().ok_or_else(|| {
                        Problem::new(
                            codes::INVALID_PARAMETER_VALUE_RESOURCE_ID_INVALID,
                            "The instance is gone.",
                        )
                    })?,
                };
                let tags = rules::apply_change(&record.instance.tags, set, remove)?;
                Ok((seq, record, tags))
            });
            match outcome {
                Ok((seq, mut record, tags)) => {
                    if tags != record.instance.tags {
                        record.instance.tags = tags;
                        changed.insert(seq, record);
                    }
                }
                Err(p) => failed.push(FailedResource {
                    resource: text.clone(),
                    code: p.code.into(),
                    message: p.message,
                }),
            }
        }
        let mutation = Mutation { put: changed.into_values().collect(), tokens: Vec::new() };
        self.apply(mutation.clone());
        Ok((FailedResourcesResponse { failed_resources: failed }, mutation))
    }

    /// TagResources.
    pub(crate) fn tag_resources(
        &mut self,
        req: &TagResourcesRequest,
    ) -> Result<(FailedResourcesResponse, Mutation), ApiError> {
        let names = rules::check_resource_list(&req.resource_list)?;
        rules::check_tags_to_set("Tags", &req.tags)?;
        self.change_tags(&req.resource_list, &names, &req.tags, &[])
    }

    /// UnTagResources.
    pub(crate) fn untag_resources(
        &mut self,
        req: &UnTagResourcesRequest,
    ) -> Result<(FailedResourcesResponse, Mutation), ApiError> {
        let names = rules::check_resource_list(&req.resource_list)?;
        rules::check_keys_to_remove("TagKeys", &req.tag_keys)?;
        self.change_tags(&req.resource_list, &names, &[], &req.tag_keys)
    }

    /// ModifyResourceTags: one resource, all or nothing.
    pub(crate) fn modify_resource_tags(
        &mut self,
        req: &ModifyResourceTagsRequest,
    ) -> Result<Mutation, ApiError> {
        if req.resource.is_empty() {
            return Err(ApiError::missing("Resource"));
        }
        let name = ResourceName::parse(&req.resource)?;
        let (set, remove) = match (&req.replace_tags, &req.delete_tags) {
            (None, None) => return Err(ApiError::missing("ReplaceTags` or `DeleteTags")),
            (set, remove) => (
                set.clone().unwrap_or_default(),
                remove.iter().flatten().map(|k| k.tag_key.clone()).collect::<Vec<_>>(),
            ),
        };
        if req.replace_tags.as_ref().is_some_and(Vec::is_empty)
            || req.delete_tags.as_ref().is_some_and(Vec::is_empty)
        {
            return Err(ApiError::new(
                codes::INVALID_PARAMETER_TAG,
                "`ReplaceTags` and `DeleteTags` may be left out but not be empty lists.",
            ));
        }
        if req.replace_tags.is_some() {
            rules::check_tags_to_set("ReplaceTags", &set)?;
        }
        if req.delete_tags.is_some() {
            rules::check_keys_to_remove("DeleteTags", &remove)?;
        }
        if let Some(both) = set.iter().find(|t| remove.contains(&t.tag_key)) {
            return Err(ApiError::new(
                codes::INVALID_PARAMETER_VALUE_DELETE_TAGS_PARAM_ERROR,
                format!("The tag key `{}` is both replaced and deleted.", both.tag_key),
            ));
        }
        let seq = self.resolve_resource(&name)?;
        let Some(mut record) = self.records.get(&seq).cloned() else {
            return Err(ApiError::internal("The instance vanished while it was being tagged."));
        };
        let tags = rules::apply_change(&record.instance.tags, &set, &remove)?;
        if tags == record.instance.tags {
            return Ok(Mutation::default());
        }
        record.instance.tags = tags;
        let mutation = Mutation { put: vec![record], tokens: Vec::new() };
        self.apply(mutation.clone());
        Ok(mutation)
    }

    /// The records whose tags pass `filters`, in creation order.
    fn tagged(&self, filters: &[cvmfleet_wire::tag::model::TagFilter]) -> impl Iterator<Item = &Record> {
        self.records.values().filter(move |r| rules::filters_match(filters, &r.instance.tags))
    }

    /// DescribeResourcesByTags, across every region unless `ResourceRegion` is given.
    pub(crate) fn describe_resources_by_tags(
        &self,
        req: &DescribeResourcesByTagsRequest,
    ) -> Result<DescribeResourcesByTagsResponse, ApiError> {
        if req.tag_filters.is_empty() {
            return Err(ApiError::missing("TagFilters"));
        }
        rules::check_tag_filters(&req.tag_filters, None)?;
        let (offset, limit) = rules::page(req.offset, req.limit)?;
        let wanted = |value: &Option<String>, actual: &str| {
            value.as_deref().is_none_or(|v| v.is_empty() || v == actual)
        };
        // Only this account's resources exist; a creator uin of another account has none.
        let other_account = req.create_uin.is_some_and(|uin| uin.to_string() != self.settings.account_uin);
        let matching: Vec<&Record> = self
            .tagged(&req.tag_filters)
            .filter(|_| !other_account)
            .filter(|_| wanted(&req.service_type, tag::SERVICE_TYPE_CVM))
            .filter(|_| wanted(&req.resource_prefix, tag::RESOURCE_PREFIX_INSTANCE))
            .filter(|r| wanted(&req.resource_region, &r.region))
            .filter(|r| wanted(&req.resource_id, &r.instance.instance_id))
            .collect();
        let rows = matching
            .iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|r| ResourceTag {
                resource_region: r.region.clone(),
                service_type: tag::SERVICE_TYPE_CVM.into(),
                resource_prefix: tag::RESOURCE_PREFIX_INSTANCE.into(),
                resource_id: r.instance.instance_id.clone(),
                tags: r.instance.tags.iter().map(Tag::from).collect(),
            })
            .collect();
        Ok(DescribeResourcesByTagsResponse { total_count: matching.len() as u64, offset, limit, rows })
    }

    /// DescribeResourceTagsByResourceIds: one row per (resource, tag), resources in the order
    /// given, unknown ones left out.
    pub(crate) fn describe_resource_tags_by_ids(
        &self,
        req: &DescribeResourceTagsByResourceIdsRequest,
    ) -> Result<DescribeResourceTagsByResourceIdsResponse, ApiError> {
        for (name, value) in [("ServiceType", &req.service_type), ("ResourcePrefix", &req.resource_prefix)] {
            if value.is_empty() {
                return Err(ApiError::missing(name));
            }
        }
        if req.resource_ids.is_empty() {
            return Err(ApiError::missing("ResourceIds"));
        }
        if req.resource_ids.len() > tag::MAX_RESOURCE_IDS_PER_DESCRIBE {
            return Err(ApiError::new(
                codes::LIMIT_EXCEEDED_RESOURCE_NUM_PER_REQUEST,
                format!(
                    "`ResourceIds` holds {} IDs; at most {} are allowed.",
                    req.resource_ids.len(),
                    tag::MAX_RESOURCE_IDS_PER_DESCRIBE
                ),
            ));
        }
        if self.catalog.region(&req.resource_region).is_none() {
            return Err(ApiError::new(
                codes::INVALID_PARAMETER_VALUE_REGION_INVALID,
                format!("The region `{}` does not exist.", req.resource_region),
            ));
        }
        if let Some(category) = req.category.as_deref()
            && !matches!(category, "Custom" | "System" | "All")
        {
            return Err(ApiError::invalid_value(format!(
                "`Category` is `{category}`; it is one of Custom, System, All."
            )));
        }
        let (offset, limit) = rules::page(req.offset, req.limit)?;
        // The emulator's tags are all custom ones.
        let custom = req.category.as_deref() != Some("System");
        let is_instances =
            req.service_type == tag::SERVICE_TYPE_CVM && req.resource_prefix == tag::RESOURCE_PREFIX_INSTANCE;
        let mut seen = std::collections::BTreeSet::new();
        let rows: Vec<TagResource> = req
            .resource_ids
            .iter()
            .filter(|_| is_instances && custom)
            .filter(|id| seen.insert(id.as_str()))
            .filter_map(|id| self.record_by_id(id).filter(|r| r.region == req.resource_region))
            .flat_map(|r| {
                r.instance.tags.iter().map(|t| TagResource {
                    tag_key: t.key.clone(),
                    tag_value: t.value.clone(),
                    resource_id: r.instance.instance_id.clone(),
                    tag_key_md5: rules::md5_hex(&t.key),
                    tag_value_md5: rules::md5_hex(&t.value),
                    service_type: tag::SERVICE_TYPE_CVM.into(),
                    category: tag::CATEGORY_CUSTOM.into(),
                })
            })
            .collect();
        let total = rows.len() as u64;
        let tags = rows
            .into_iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect();
        Ok(DescribeResourceTagsByResourceIdsResponse { total_count: total, offset, limit, tags })
    }

    /// GetResources: by names (every match at once) or by filters, paged by a token that
    /// resumes after the last record of the page, so that records created or removed meanwhile
    /// shift nothing.
    pub(crate) fn get_resources(&self, req: &GetResourcesRequest) -> Result<GetResourcesResponse, ApiError> {
        let filters = req.tag_filters.as_deref().unwrap_or_default();
        rules::check_tag_filters(filters, Some(tag::GET_RESOURCES_MAX_FILTER_VALUES))?;
        let mapping = |r: &Record| ResourceTagMapping {
            resource: self.resource_name(r).to_string(),
            tags: r.instance.tags.iter().map(Tag::from).collect(),
        };
        if let Some(list) = req.resource_list.as_deref().filter(|l| !l.is_empty()) {
            let names = rules::check_resource_list(list)?;
            let mut seen = std::collections::BTreeSet::new();
            let found = names
                .iter()
                .filter_map(|name| self.resolve_resource(name).ok())
                .filter(|seq| seen.insert(*seq))
                .filter_map(|seq| self.records.get(&seq))
                .filter(|r| rules::filters_match(filters, &r.instance.tags))
                .map(mapping)
                .collect();
            return Ok(GetResourcesResponse {
                pagination_token: String::new(),
                resource_tag_mapping_list: found,
            });
        }
        let max = match req.max_results {
            None | Some(0) => tag::GET_RESOURCES_DEFAULT_MAX_RESULTS,
            Some(n) if n > tag::GET_RESOURCES_MAX_RESULTS => {
                return Err(ApiError::invalid_value(format!(
                    "`MaxResults` {n} is above the largest page of {}.",
                    tag::GET_RESOURCES_MAX_RESULTS
                )));
            }
            Some(n) => n,
        };
        let after = match req.pagination_token.as_deref().filter(|t| !t.is_empty()) {
            None => 0,
            Some(token) => seq_of_token(token).ok_or_else(|| {
                ApiError::new(
                    codes::INVALID_PARAMETER_PAGINATION_TOKEN_INVALID,
                    format!("`PaginationToken` `{token}` was not issued by this service."),
                )
            })?,
        };
        let mut page: Vec<&Record> = self
            .records
            .range(after.saturating_add(1)..)
            .map(|(_, r)| r)
            .filter(|r| rules::filters_match(filters, &r.instance.tags))
            .take(usize::try_from(max).unwrap_or(usize::MAX).saturating_add(1))
            .collect();
        let more = page.len() > usize::try_from(max).unwrap_or(usize::MAX);
        page.truncate(usize::try_from(max).unwrap_or(usize::MAX));
        let token = match page.last() {
            Some(last) if more => token_of(last.seq),
            _ => String::new(),
        };
        Ok(GetResourcesResponse {
            pagination_token: token,
            resource_tag_mapping_list: page.into_iter().map(mapping).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_foreign_text() {
        assert_eq!(seq_of_token(&token_of(42)), Some(42));
        assert_eq!(seq_of_token("42"), None);
        assert_eq!(seq_of_token("emu-zz"), None);
    }
}
