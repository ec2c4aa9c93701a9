//! The Tag service and DescribeRegions, after the emulator's `world/tags.rs`: the behaviour is
//! the wire crate's ([`cvmfleet_wire::tag::engine`]), this world is its store, and a change is
//! the instances' own tags, so DescribeInstances shows it at once.

use cvmfleet_wire::Action;
use cvmfleet_wire::api::{DescribeRegionsResponse, EmptyResponse};
use cvmfleet_wire::model::RegionInfo;
use cvmfleet_wire::tag::engine::{self, Changes, TagStore, Tagged};
use cvmfleet_wire::tag::rules::Problem;
use serde_json::Value;

use super::{ApiError, Record, World, decode, encode};

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
        &self.config.account_uin
    }

    fn has_region(&self, region: &str) -> bool {
        if self.config.regions.is_empty() { !region.is_empty() } else { self.config.regions.contains(region) }
    }

    fn instance(&self, region: &str, id: &str) -> Option<Tagged<'_>> {
        let seq = self.by_id.get(id)?;
        self.records.get(seq).filter(|r| r.region == region).map(tagged)
    }

    fn instances_after(&self, after: Option<u64>) -> Box<dyn Iterator<Item = Tagged<'_>> + '_> {
        let start = after.map_or(0, |a| a.saturating_add(1));
        Box::new(self.records.range(start..).map(|(_, r)| tagged(r)))
    }
}

impl World {
    /// DescribeRegions: the configured regions, or, when every region is served, those that
    /// hold an instance. The sim has no display names; a region's name is itself.
    pub(super) fn describe_regions(&self) -> DescribeRegionsResponse {
        let mut regions: Vec<&str> = if self.config.regions.is_empty() {
            self.records.values().map(|r| r.region.as_str()).collect()
        } else {
            self.config.regions.iter().map(String::as_str).collect()
        };
        regions.sort_unstable();
        regions.dedup();
        let set: Vec<RegionInfo> = regions
            .into_iter()
            .map(|r| RegionInfo { region: r.into(), region_name: r.into(), region_state: "AVAILABLE".into() })
            .collect();
        DescribeRegionsResponse { total_count: set.len() as u64, region_set: set }
    }

    fn commit_tags(&mut self, changes: Changes) {
        for (seq, tags) in changes {
            if let Some(r) = self.records.get_mut(&seq) {
                r.instance.tags = tags;
            }
        }
    }

    /// One Tag action.
    pub(super) fn tag_action(&mut self, action: Action, params: &Value) -> Result<Value, ApiError> {
        match action {
            Action::TagResources => {
                let (response, changes) = engine::tag_resources(self, &decode(params)?)?;
                self.commit_tags(changes);
                encode(&response)
            }
            Action::UnTagResources => {
                let (response, changes) = engine::untag_resources(self, &decode(params)?)?;
                self.commit_tags(changes);
                encode(&response)
            }
            Action::ModifyResourceTags => {
                let changes = engine::modify_resource_tags(self, &decode(params)?)?;
                self.commit_tags(changes);
                encode(&EmptyResponse {})
            }
            Action::DescribeResourcesByTags => {
                encode(&engine::describe_resources_by_tags(self, &decode(params)?)?)
            }
            Action::DescribeResourceTagsByResourceIds => {
                encode(&engine::describe_resource_tags_by_ids(self, &decode(params)?)?)
            }
            Action::GetResources => encode(&engine::get_resources(self, &decode(params)?)?),
            other => Err(ApiError::new(
                cvmfleet_wire::codes::INVALID_ACTION,
                format!("The action `{other}` is not a Tag action."),
            )),
        }
    }
}
