//! The Tag service (2018-08-13) over the instances' own tags, and CVM's DescribeRegions.
//!
//! A tag is one thing: the Tag service reads and writes `Instance.Tags`, so a change shows in
//! the next DescribeInstances (and its tag index) at once, and is journaled like any other
//! change of a record. What the actions do is the wire crate's
//! ([`cvmfleet_wire::tag::engine`], shared with the simulation); the world is its store.

use cvmfleet_wire::api::DescribeRegionsResponse;
use cvmfleet_wire::model::RegionInfo;
use cvmfleet_wire::tag::api::{
    DescribeResourceTagsByResourceIdsRequest, DescribeResourceTagsByResourceIdsResponse,
    DescribeResourcesByTagsRequest, DescribeResourcesByTagsResponse, FailedResourcesResponse,
    GetResourcesRequest, GetResourcesResponse, ModifyResourceTagsRequest, TagResourcesRequest,
    UnTagResourcesRequest,
};
use cvmfleet_wire::tag::engine::{self, Changes, TagStore, Tagged};
use cvmfleet_wire::tag::rules::Problem;

use super::{Mutation, Record, World};
use crate::api_error::ApiError;

impl From<Problem> for ApiError {
    fn from(p: Problem) -> Self {
        ApiError::new(p.code, p.message)
    }
}

fn tagged(r: &Record) -> Tagged<'_> {
    Tagged { seq: r.seq, region: &r.region, instance_id: &r.instance.instance_id, tags: &r.instance.tags }
}

impl TagStore for World {
    fn account_uin(&self) -> &str {
        &self.settings.account_uin
    }

    fn has_region(&self, region: &str) -> bool {
        self.catalog.region(region).is_some()
    }

    fn instance(&self, region: &str, id: &str) -> Option<Tagged<'_>> {
        self.record_by_id(id).filter(|r| r.region == region).map(tagged)
    }

    fn instances_after(&self, after: Option<u64>) -> Box<dyn Iterator<Item = Tagged<'_>> + '_> {
        let start = after.map_or(0, |a| a.saturating_add(1));
        Box::new(self.records.range(start..).map(|(_, r)| tagged(r)))
    }
}

impl World {
    /// The account's uin.
    pub fn account_uin(&self) -> &str {
        &self.settings.account_uin
    }

    /// DescribeRegions: the catalog's regions, all `AVAILABLE`.
    pub fn describe_regions(&self) -> DescribeRegionsResponse {
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

    /// Applies tag changes to their records: the journal entry.
    fn commit_tags(&mut self, changes: Changes) -> Mutation {
        let put: Vec<Record> = changes
            .into_iter()
            .filter_map(|(seq, tags)| {
                let mut record = self.records.get(&seq)?.clone();
                record.instance.tags = tags;
                Some(record)
            })
            .collect();
        let mutation = Mutation { put, ..Mutation::default() };
        self.apply(mutation.clone());
        mutation
    }

    /// TagResources.
    pub fn tag_resources(
        &mut self,
        req: &TagResourcesRequest,
    ) -> Result<(FailedResourcesResponse, Mutation), ApiError> {
        let (response, changes) = engine::tag_resources(self, req)?;
        Ok((response, self.commit_tags(changes)))
    }

    /// UnTagResources.
    pub fn untag_resources(
        &mut self,
        req: &UnTagResourcesRequest,
    ) -> Result<(FailedResourcesResponse, Mutation), ApiError> {
        let (response, changes) = engine::untag_resources(self, req)?;
        Ok((response, self.commit_tags(changes)))
    }

    /// ModifyResourceTags.
    pub fn modify_resource_tags(&mut self, req: &ModifyResourceTagsRequest) -> Result<Mutation, ApiError> {
        let changes = engine::modify_resource_tags(self, req)?;
        Ok(self.commit_tags(changes))
    }

    /// DescribeResourcesByTags.
    pub fn describe_resources_by_tags(
        &self,
        req: &DescribeResourcesByTagsRequest,
    ) -> Result<DescribeResourcesByTagsResponse, ApiError> {
        Ok(engine::describe_resources_by_tags(self, req)?)
    }

    /// DescribeResourceTagsByResourceIds.
    pub fn describe_resource_tags_by_ids(
        &self,
        req: &DescribeResourceTagsByResourceIdsRequest,
    ) -> Result<DescribeResourceTagsByResourceIdsResponse, ApiError> {
        Ok(engine::describe_resource_tags_by_ids(self, req)?)
    }

    /// GetResources.
    pub fn get_resources(&self, req: &GetResourcesRequest) -> Result<GetResourcesResponse, ApiError> {
        Ok(engine::get_resources(self, req)?)
    }
}
