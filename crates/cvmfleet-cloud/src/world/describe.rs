//! The read actions: DescribeInstances (filters, paging, the tag index), DescribeInstancesStatus,
//! DescribeZones, DescribeImages and DescribeInstanceTypeConfigs.

use std::collections::BTreeSet;

use cvmfleet_wire::MAX_BATCH;
use cvmfleet_wire::api::{
    DescribeImagesRequest, DescribeImagesResponse, DescribeInstanceTypeConfigsRequest,
    DescribeInstanceTypeConfigsResponse, DescribeInstancesRequest, DescribeInstancesStatusRequest,
    DescribeInstancesStatusResponse, DescribeZonesResponse,
};
use cvmfleet_wire::codes;
use cvmfleet_wire::model::{Filter, Image, Instance, InstanceStatus, InstanceTypeConfig, ZoneInfo};
use cvmfleet_wire::vocab::{self, FILTER_TAG_KEY, FILTER_TAG_PREFIX, FILTER_TAG_VALUE, MAX_FILTER_VALUES};
use serde::Serialize;

use super::{Record, World};
use crate::api_error::ApiError;
use crate::names;
use crate::net::parse_ipv4;

/// Default page size of the Describe actions.
const DEFAULT_LIMIT: i64 = 20;

/// One DescribeInstances filter, compiled.
#[derive(Debug)]
enum Matcher {
    Zone(Vec<String>),
    InstanceId(Vec<String>),
    /// Substring match: the API calls instance-name matching fuzzy.
    InstanceName(Vec<String>),
    InstanceState(Vec<String>),
    PrivateIp(Vec<String>),
    PublicIp(Vec<String>),
    VpcId(Vec<String>),
    SubnetId(Vec<String>),
    SecurityGroupId(Vec<String>),
    ChargeType(Vec<String>),
    HostId(Vec<String>),
    Uuid(Vec<String>),
    ProjectId(Vec<i64>),
    TagKey(Vec<String>),
    TagValue(Vec<String>),
    /// `tag:<key>`; the key may itself contain `:` (`tag:cvmfleet:fleet`).
    Tag(String, Vec<String>),
}

impl Matcher {
    fn compile(filter: &Filter) -> Result<Matcher, ApiError> {
        let values = filter.values.clone();
        if values.is_empty() {
            return Err(ApiError::new(
                codes::INVALID_FILTER,
                format!("The filter `{}` has no values.", filter.name),
            ));
        }
        if values.len() > MAX_FILTER_VALUES {
            return Err(ApiError::new(
                codes::INVALID_FILTER_VALUE_LIMIT_EXCEEDED,
                format!(
                    "The filter `{}` has {} values; at most {MAX_FILTER_VALUES} are allowed.",
                    filter.name,
                    values.len()
                ),
            ));
        }
        if let Some(key) = filter.name.strip_prefix(FILTER_TAG_PREFIX) {
            if key.is_empty() {
                return Err(ApiError::new(codes::INVALID_FILTER, "The filter `tag:` names no tag key."));
            }
            return Ok(Matcher::Tag(key.to_owned(), values));
        }
        Ok(match filter.name.as_str() {
            "zone" => Matcher::Zone(values),
            "instance-id" => {
                if let Some(bad) = values.iter().find(|v| !names::is_resource_id(v, "ins")) {
                    return Err(ApiError::new(
                        codes::INVALID_PARAMETER_VALUE_INSTANCE_ID_MALFORMED,
                        format!("The instance ID `{bad}` is malformed; instance IDs look like ins-xxxxxxxx."),
                    ));
                }
                Matcher::InstanceId(values)
            }
            "instance-name" => Matcher::InstanceName(values),
            "instance-state" => Matcher::InstanceState(values),
            "private-ip-address" | "public-ip-address" => {
                if let Some(bad) = values.iter().find(|v| parse_ipv4(v).is_none()) {
                    return Err(ApiError::new(
                        codes::INVALID_PARAMETER_VALUE_IP_ADDRESS_MALFORMED,
                        format!("`{bad}` is not an IPv4 address."),
                    ));
                }
                if filter.name == "private-ip-address" {
                    Matcher::PrivateIp(values)
                } else {
                    Matcher::PublicIp(values)
                }
            }
            "vpc-id" => Matcher::VpcId(values),
            "subnet-id" => Matcher::SubnetId(values),
            "security-group-id" => Matcher::SecurityGroupId(values),
            "instance-charge-type" => Matcher::ChargeType(values),
            "host-id" => Matcher::HostId(values),
            "uuid" => Matcher::Uuid(values),
            "project-id" => {
                let ids = values
                    .iter()
                    .map(|v| v.parse::<i64>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| ApiError::invalid_value("The filter `project-id` takes numbers."))?;
                Matcher::ProjectId(ids)
            }
            FILTER_TAG_KEY => Matcher::TagKey(values),
            FILTER_TAG_VALUE => Matcher::TagValue(values),
            other => {
                return Err(ApiError::new(
                    codes::INVALID_FILTER,
                    format!("The filter `{other}` is not supported."),
                ));
            }
        })
    }

    fn matches(&self, i: &Instance) -> bool {
        let any = |values: &[String], field: &str| values.iter().any(|v| v == field);
        match self {
            Matcher::Zone(v) => any(v, &i.placement.zone),
            Matcher::InstanceId(v) => any(v, &i.instance_id),
            Matcher::InstanceName(v) => v.iter().any(|name| i.instance_name.contains(name.as_str())),
            Matcher::InstanceState(v) => any(v, &i.instance_state),
            Matcher::PrivateIp(v) => i.private_ip_addresses.iter().any(|ip| any(v, ip)),
            Matcher::PublicIp(v) => i.public_ip_addresses.iter().flatten().any(|ip| any(v, ip)),
            Matcher::VpcId(v) => any(v, &i.virtual_private_cloud.vpc_id),
            Matcher::SubnetId(v) => any(v, &i.virtual_private_cloud.subnet_id),
            Matcher::SecurityGroupId(v) => i.security_group_ids.iter().any(|sg| any(v, sg)),
            Matcher::ChargeType(v) => any(v, &i.instance_charge_type),
            Matcher::HostId(v) => i.placement.host_id.as_deref().is_some_and(|h| any(v, h)),
            Matcher::Uuid(v) => any(v, &i.uuid),
            Matcher::ProjectId(v) => v.contains(&i.placement.project_id.unwrap_or(0)),
            Matcher::TagKey(v) => i.tags.iter().any(|t| any(v, &t.key)),
            Matcher::TagValue(v) => i.tags.iter().any(|t| any(v, &t.value)),
            Matcher::Tag(key, v) => i.tags.iter().any(|t| &t.key == key && any(v, &t.value)),
        }
    }
}

/// A page of DescribeInstances that borrows its instances; it serializes exactly as
/// `DescribeInstancesResponse` (a unit test checks), without copying 100 instances per page.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstancePage<'a> {
    /// How many instances match.
    pub total_count: i64,
    /// The page.
    pub instance_set: Vec<&'a Instance>,
}

/// Records that may match, from the tag index, in creation order.
enum Candidates<'a> {
    Index(&'a BTreeSet<u64>),
    Owned(Vec<u64>),
}

impl Candidates<'_> {
    fn len(&self) -> usize {
        match self {
            Candidates::Index(set) => set.len(),
            Candidates::Owned(list) => list.len(),
        }
    }

    fn iter(&self) -> Box<dyn Iterator<Item = u64> + '_> {
        match self {
            Candidates::Index(set) => Box::new(set.iter().copied()),
            Candidates::Owned(list) => Box::new(list.iter().copied()),
        }
    }
}

/// Reads Offset and Limit.
fn page(offset: Option<i64>, limit: Option<i64>) -> Result<(usize, usize), ApiError> {
    let offset = offset.unwrap_or(0);
    let Ok(offset) = usize::try_from(offset) else {
        return Err(ApiError::new(
            "InvalidParameterValueOffset",
            format!("The Offset {offset} must not be negative."),
        ));
    };
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    let max = i64::try_from(MAX_BATCH).unwrap_or(100);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::out_of_range("Limit", limit, &format!("1 to {max}")));
    }
    Ok((offset, limit.unsigned_abs() as usize))
}

impl World {
    /// DescribeInstances.
    pub fn describe_instances<'a>(
        &'a self,
        region: &str,
        req: &DescribeInstancesRequest,
    ) -> Result<InstancePage<'a>, ApiError> {
        let ids = req.instance_ids.as_deref().filter(|ids| !ids.is_empty());
        let filters = req.filters.as_deref().filter(|f| !f.is_empty());
        if ids.is_some() && filters.is_some() {
            return Err(ApiError::invalid_parameter(
                "The parameters `InstanceIds` and `Filters` cannot be specified at the same time.",
            ));
        }
        let (offset, limit) = page(req.offset, req.limit)?;
        let mut total = 0usize;
        let mut set = Vec::new();
        let mut take = |r: &'a Record| {
            if total >= offset && set.len() < limit {
                set.push(&r.instance);
            }
            total += 1;
        };
        if let Some(ids) = ids {
            check_listed_ids(ids)?;
            let seqs: BTreeSet<u64> = ids.iter().filter_map(|id| self.by_id.get(id).copied()).collect();
            for r in seqs.iter().filter_map(|s| self.records.get(s)).filter(|r| r.region == region) {
                take(r);
            }
        } else {
            let filters = filters.unwrap_or_default();
            vocab::check_filter_limits(filters).map_err(|(code, message)| ApiError::new(code, message))?;
            let matchers = filters.iter().map(Matcher::compile).collect::<Result<Vec<_>, _>>()?;
            match self.tag_candidates(region, &matchers) {
                // The index answers the only filter: count and page without looking further.
                Some((candidates, _)) if matchers.len() == 1 => {
                    let set = candidates
                        .iter()
                        .skip(offset)
                        .take(limit)
                        .filter_map(|s| self.records.get(&s).map(|r| &r.instance))
                        .collect();
                    let total = i64::try_from(candidates.len()).unwrap_or(i64::MAX);
                    return Ok(InstancePage { total_count: total, instance_set: set });
                }
                Some((candidates, used)) => {
                    let rest: Vec<&Matcher> =
                        matchers.iter().enumerate().filter(|(i, _)| *i != used).map(|(_, m)| m).collect();
                    for r in candidates.iter().filter_map(|s| self.records.get(&s)) {
                        if rest.iter().all(|m| m.matches(&r.instance)) {
                            take(r);
                        }
                    }
                }
                None => {
                    for r in self.records.values() {
                        if r.region == region && matchers.iter().all(|m| m.matches(&r.instance)) {
                            take(r);
                        }
                    }
                }
            }
        }
        Ok(InstancePage { total_count: i64::try_from(total).unwrap_or(i64::MAX), instance_set: set })
    }

    /// The smallest candidate set the region's tag index gives for the tag filters, with the
    /// position of the filter it answers; `None` when no filter can use the index.
    fn tag_candidates(&self, region: &str, matchers: &[Matcher]) -> Option<(Candidates<'_>, usize)> {
        static EMPTY: BTreeSet<u64> = BTreeSet::new();
        let index = self.tags.get(region);
        let mut best: Option<(Candidates<'_>, usize)> = None;
        for (position, m) in matchers.iter().enumerate() {
            let found = match m {
                Matcher::Tag(key, values) => {
                    let by_value = index.and_then(|i| i.get(key));
                    match values.as_slice() {
                        [one] => Candidates::Index(by_value.and_then(|v| v.get(one)).unwrap_or(&EMPTY)),
                        many => {
                            let mut list: Vec<u64> = many
                                .iter()
                                .filter_map(|v| by_value.and_then(|b| b.get(v)))
                                .flatten()
                                .copied()
                                .collect();
                            list.sort_unstable();
                            list.dedup();
                            Candidates::Owned(list)
                        }
                    }
                }
                Matcher::TagKey(keys) => {
                    let mut list: Vec<u64> = keys
                        .iter()
                        .filter_map(|k| index.and_then(|i| i.get(k)))
                        .flat_map(|by_value| by_value.values().flatten().copied())
                        .collect();
                    list.sort_unstable();
                    list.dedup();
                    Candidates::Owned(list)
                }
                _ => continue,
            };
            if best.as_ref().is_none_or(|(b, _)| found.len() < b.len()) {
                best = Some((found, position));
            }
        }
        best
    }

    /// DescribeInstancesStatus.
    pub fn describe_status(
        &self,
        region: &str,
        req: &DescribeInstancesStatusRequest,
    ) -> Result<DescribeInstancesStatusResponse, ApiError> {
        let (offset, limit) = page(req.offset, req.limit)?;
        let ids = req.instance_ids.as_deref().filter(|ids| !ids.is_empty());
        let records: Vec<&Record> = match ids {
            Some(ids) => {
                check_listed_ids(ids)?;
                let seqs: BTreeSet<u64> = ids.iter().filter_map(|id| self.by_id.get(id).copied()).collect();
                seqs.iter().filter_map(|s| self.records.get(s)).filter(|r| r.region == region).collect()
            }
            None => self.records.values().filter(|r| r.region == region).collect(),
        };
        Ok(DescribeInstancesStatusResponse {
            total_count: i64::try_from(records.len()).unwrap_or(i64::MAX),
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

    /// DescribeZones of the caller's region.
    pub fn describe_zones(&self, region: &str) -> DescribeZonesResponse {
        let zones: Vec<ZoneInfo> = self
            .catalog
            .region(region)
            .map(|r| {
                r.zones
                    .iter()
                    .map(|z| ZoneInfo {
                        zone: z.zone.clone(),
                        zone_name: z.zone_name.clone(),
                        zone_id: z.zone_id.clone(),
                        zone_state: if z.available { "AVAILABLE" } else { "UNAVAILABLE" }.into(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        DescribeZonesResponse { total_count: zones.len() as u64, zone_set: zones }
    }

    /// DescribeImages: `image-id`, `image-type`, `image-name` (substring) and `platform` filters.
    pub fn describe_images(&self, req: &DescribeImagesRequest) -> Result<DescribeImagesResponse, ApiError> {
        let ids = req.image_ids.as_deref().filter(|ids| !ids.is_empty());
        let filters = req.filters.as_deref().unwrap_or_default();
        if ids.is_some() && !filters.is_empty() {
            return Err(ApiError::new(
                codes::INVALID_PARAMETER_INVALID_PARAMETER_COEXIST_IMAGE_IDS_FILTERS,
                "The parameters `ImageIds` and `Filters` cannot be specified at the same time.",
            ));
        }
        if let Some(bad) = ids.into_iter().flatten().find(|id| !names::is_resource_id(id, "img")) {
            return Err(ApiError::new(
                codes::INVALID_IMAGE_ID_MALFORMED,
                format!("The ImageId `{bad}` is malformed."),
            ));
        }
        for f in filters {
            if !matches!(f.name.as_str(), "image-id" | "image-type" | "image-name" | "platform") {
                return Err(ApiError::new(
                    codes::INVALID_FILTER,
                    format!("The filter `{}` is not supported.", f.name),
                ));
            }
        }
        let offset = i64::try_from(req.offset.unwrap_or(0)).ok();
        let limit = i64::try_from(req.limit.unwrap_or(20)).ok();
        let (offset, limit) = page(offset, limit)?;
        let matching: Vec<Image> = self
            .catalog
            .catalog
            .images
            .iter()
            .filter(|i| ids.is_none_or(|ids| ids.contains(&i.image_id)))
            .filter(|i| {
                filters.iter().all(|f| {
                    f.values.iter().any(|v| match f.name.as_str() {
                        "image-id" => *v == i.image_id,
                        "image-type" => *v == i.image_type,
                        "image-name" => i.image_name.contains(v.as_str()),
                        _ => *v == i.platform,
                    })
                })
            })
            .map(|i| Image {
                image_id: i.image_id.clone(),
                os_name: i.os_name.clone(),
                image_type: i.image_type.clone(),
                created_time: "2024-01-01T00:00:00Z".into(),
                image_name: i.image_name.clone(),
                image_description: i.image_name.clone(),
                image_size: i.image_size,
                architecture: i.architecture.clone(),
                image_state: "NORMAL".into(),
                platform: i.platform.clone(),
                image_creator: String::new(),
                image_source: "OFFICIAL".into(),
                is_support_cloudinit: true,
                license_type: "TencentCloud".into(),
            })
            .collect();
        Ok(DescribeImagesResponse {
            total_count: i64::try_from(matching.len()).unwrap_or(i64::MAX),
            image_set: matching.into_iter().skip(offset).take(limit).collect(),
        })
    }

    /// DescribeInstanceTypeConfigs of the caller's region: `zone`, `instance-family` and
    /// `instance-type` filters.
    pub fn describe_instance_types(
        &self,
        region: &str,
        req: &DescribeInstanceTypeConfigsRequest,
    ) -> Result<DescribeInstanceTypeConfigsResponse, ApiError> {
        let filters = req.filters.as_deref().unwrap_or_default();
        for f in filters {
            if !matches!(f.name.as_str(), "zone" | "instance-family" | "instance-type") {
                return Err(ApiError::new(
                    codes::INVALID_FILTER,
                    format!("The filter `{}` is not supported.", f.name),
                ));
            }
        }
        let mut out = Vec::new();
        let zones = self.catalog.region(region).map(|r| r.zones.as_slice()).unwrap_or_default();
        for zone in zones {
            for t in self.catalog.catalog.instance_types.iter().filter(|t| t.sold_in(&zone.zone)) {
                let keep = filters.iter().all(|f| {
                    f.values.iter().any(|v| match f.name.as_str() {
                        "zone" => *v == zone.zone,
                        "instance-family" => v == t.family(),
                        _ => *v == t.instance_type,
                    })
                });
                if keep {
                    out.push(InstanceTypeConfig {
                        zone: zone.zone.clone(),
                        instance_type: t.instance_type.clone(),
                        instance_family: t.family().to_owned(),
                        gpu: t.gpu,
                        cpu: t.cpu,
                        memory: t.memory,
                        fpga: t.fpga,
                    });
                }
            }
        }
        Ok(DescribeInstanceTypeConfigsResponse { instance_type_config_set: out })
    }
}

/// The checks DescribeInstances and DescribeInstancesStatus make of an `InstanceIds` list: at
/// most [`MAX_BATCH`] IDs, each shaped like an instance ID. IDs that name no instance are not an
/// error for these listings (they are left out).
fn check_listed_ids(ids: &[String]) -> Result<(), ApiError> {
    if ids.len() > MAX_BATCH {
        return Err(ApiError::new(
            codes::INVALID_PARAMETER_VALUE_LIMIT_EXCEEDED,
            format!("{} instance IDs were given; at most {MAX_BATCH} are allowed.", ids.len()),
        ));
    }
    if let Some(bad) = ids.iter().find(|id| !names::is_resource_id(id, "ins")) {
        return Err(ApiError::new(
            codes::INVALID_INSTANCE_ID_MALFORMED,
            format!("The instance ID `{bad}` is malformed; instance IDs look like ins-xxxxxxxx."),
        ));
    }
    Ok(())
}
