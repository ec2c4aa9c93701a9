//! The read actions: DescribeInstances (IDs or filters, paging) and DescribeInstancesStatus,
//! after the emulator's `world/describe.rs`. A page is read at one instant; the pages of one
//! listing are separate calls, so a listing over several pages is not a snapshot.

use cvmfleet_wire::MAX_BATCH;
use cvmfleet_wire::api::{
    DescribeInstancesRequest, DescribeInstancesResponse, DescribeInstancesStatusRequest,
    DescribeInstancesStatusResponse,
};
use cvmfleet_wire::codes;
use cvmfleet_wire::model::{Filter, Instance, InstanceStatus};
use cvmfleet_wire::vocab::{self, FILTER_TAG_PREFIX};

use super::{ApiError, Record, World, check_ids};

/// Default page size of the Describe actions.
const DEFAULT_LIMIT: i64 = 20;
/// Filter names supported besides `tag:<key>`.
const FILTERS: [&str; 10] = [
    "zone",
    "instance-id",
    "instance-name",
    "instance-state",
    "private-ip-address",
    "vpc-id",
    "subnet-id",
    "security-group-id",
    vocab::FILTER_TAG_KEY,
    vocab::FILTER_TAG_VALUE,
];

fn check_filter(filter: &Filter) -> Result<(), ApiError> {
    let name = filter.name.as_str();
    if filter.values.is_empty() {
        return Err(ApiError::new(codes::INVALID_FILTER, format!("The filter `{name}` has no values.")));
    }
    if name == FILTER_TAG_PREFIX {
        return Err(ApiError::new(codes::INVALID_FILTER, "The filter `tag:` names no tag key."));
    }
    if !name.starts_with(FILTER_TAG_PREFIX) && !FILTERS.contains(&name) {
        return Err(ApiError::new(codes::INVALID_FILTER, format!("The filter `{name}` is not supported.")));
    }
    Ok(())
}

/// Whether `i` passes `filter`: one of its values matches (`instance-name` by substring).
fn matches(filter: &Filter, i: &Instance) -> bool {
    let any = |field: &str| filter.values.iter().any(|v| v == field);
    if let Some(key) = filter.name.strip_prefix(FILTER_TAG_PREFIX) {
        return i.tags.iter().any(|t| t.key == key && any(&t.value));
    }
    match filter.name.as_str() {
        "zone" => any(&i.placement.zone),
        "instance-id" => any(&i.instance_id),
        "instance-name" => filter.values.iter().any(|v| i.instance_name.contains(v.as_str())),
        "instance-state" => any(&i.instance_state),
        "private-ip-address" => i.private_ip_addresses.iter().any(|ip| any(ip)),
        "vpc-id" => any(&i.virtual_private_cloud.vpc_id),
        "subnet-id" => any(&i.virtual_private_cloud.subnet_id),
        "security-group-id" => i.security_group_ids.iter().any(|sg| any(sg)),
        vocab::FILTER_TAG_KEY => i.tags.iter().any(|t| any(&t.key)),
        vocab::FILTER_TAG_VALUE => i.tags.iter().any(|t| any(&t.value)),
        _ => false,
    }
}

/// Reads Offset (default 0) and Limit (default 20, 1 to 100).
fn page(offset: Option<i64>, limit: Option<i64>) -> Result<(usize, usize), ApiError> {
    let offset = offset.unwrap_or(0);
    let Ok(offset) = usize::try_from(offset) else {
        return Err(ApiError::new(
            "InvalidParameterValueOffset",
            format!("The Offset {offset} must not be negative."),
        ));
    };
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_BATCH as i64).contains(&limit) {
        return Err(ApiError::new(
            codes::INVALID_PARAMETER_VALUE_RANGE,
            format!("The value `{limit}` of parameter `Limit` is out of range; allowed: 1 to {MAX_BATCH}."),
        ));
    }
    Ok((offset, limit.unsigned_abs() as usize))
}

impl World {
    /// The records of `region` with the given IDs (unknown ones left out), in creation order.
    fn by_ids(&self, region: &str, ids: &[String]) -> Result<Vec<&Record>, ApiError> {
        check_ids(ids)?;
        Ok(self
            .records
            .values()
            .filter(|r| r.region == region && ids.contains(&r.instance.instance_id))
            .collect())
    }

    /// DescribeInstances: by `InstanceIds` or by `Filters` (values OR-ed, filters AND-ed), in
    /// creation order.
    pub(super) fn describe_instances(
        &self,
        region: &str,
        req: &DescribeInstancesRequest,
    ) -> Result<DescribeInstancesResponse, ApiError> {
        let ids = req.instance_ids.as_deref().filter(|ids| !ids.is_empty());
        let filters = req.filters.as_deref().unwrap_or_default();
        if ids.is_some() && !filters.is_empty() {
            return Err(ApiError::new(
                codes::INVALID_PARAMETER,
                "The parameters `InstanceIds` and `Filters` cannot be specified at the same time.",
            ));
        }
        let (offset, limit) = page(req.offset, req.limit)?;
        let matching: Vec<&Record> = match ids {
            Some(ids) => self.by_ids(region, ids)?,
            None => {
                vocab::check_filter_limits(filters)
                    .map_err(|(code, message)| ApiError::new(code, message))?;
                filters.iter().try_for_each(check_filter)?;
                self.records
                    .values()
                    .filter(|r| r.region == region && filters.iter().all(|f| matches(f, &r.instance)))
                    .collect()
            }
        };
        Ok(DescribeInstancesResponse {
            total_count: matching.len() as i64,
            instance_set: matching.iter().skip(offset).take(limit).map(|r| r.instance.clone()).collect(),
        })
    }

    /// DescribeInstancesStatus: the given instances that exist (or every instance), paged.
    pub(super) fn describe_status(
        &self,
        region: &str,
        req: &DescribeInstancesStatusRequest,
    ) -> Result<DescribeInstancesStatusResponse, ApiError> {
        let (offset, limit) = page(req.offset, req.limit)?;
        let records = match req.instance_ids.as_deref().filter(|ids| !ids.is_empty()) {
            Some(ids) => self.by_ids(region, ids)?,
            None => self.records.values().filter(|r| r.region == region).collect(),
        };
        Ok(DescribeInstancesStatusResponse {
            total_count: records.len() as i64,
            instance_status_set: records
                .iter()
                .skip(offset)
                .take(limit)
                .map(|r| InstanceStatus {
                    instance_id: r.instance.instance_id.clone(),
                    instance_state: r.instance.instance_state.clone(),
                })
                .collect(),
        })
    }
}
