//! Request and response bodies of each supported action.
//!
//! Requests reject unknown top-level parameters (the emulator answers `UnknownParameter`, as the
//! real service does); nested objects and responses ignore unknown fields so that a newer
//! service never breaks an older client.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::action::Action;
use crate::model::{
    ActionTimer, DataDisk, EnhancedService, Filter, Image, Instance, InstanceChargePrepaid, InstanceStatus,
    InstanceTypeConfig, InternetAccessible, LoginSettings, Placement, RegionInfo, SystemDisk,
    TagSpecification, VirtualPrivateCloud, ZoneInfo, null_as_default,
};

/// A request body of one action, tied to its response body.
pub trait ApiRequest: Serialize + DeserializeOwned {
    /// The action this request is for.
    const ACTION: Action;
    /// The `Response` body of a successful call, without `RequestId`.
    type Response: Serialize + DeserializeOwned;
}

macro_rules! bind {
    ($req:ty, $action:ident, $resp:ty) => {
        impl ApiRequest for $req {
            const ACTION: Action = Action::$action;
            type Response = $resp;
        }
    };
}

mod offering;
pub use offering::*;

/// RunInstances: create instances. Every parameter of the RunInstances reference, plus `DryRun`,
/// `UserData`, `DisableApiTermination`, `MinCount` and `InstanceMarketOptions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct RunInstancesRequest {
    /// `PREPAID`, `POSTPAID_BY_HOUR` (default), `CDHPAID`, `SPOTPAID`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_charge_type: Option<String>,
    /// Required for `PREPAID`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_charge_prepaid: Option<InstanceChargePrepaid>,
    /// Zone, project, dedicated hosts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// Instance type; the API default is `S1.SMALL1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// Image, `img-…`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// System disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_disk: Option<SystemDisk>,
    /// Data disks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_disks: Option<Vec<DataDisk>>,
    /// VPC; basic network when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_private_cloud: Option<VirtualPrivateCloud>,
    /// Public network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internet_accessible: Option<InternetAccessible>,
    /// How many instances, 1..=100 per the reference (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_count: Option<i64>,
    /// Deliver at least this many and as many more as stock allows, up to `InstanceCount`
    /// ([`crate::vocab::min_count_in_range`]); without it the create is all or nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_count: Option<i64>,
    /// Display name; `{R:x}` patterns number multiple instances.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_name: Option<String>,
    /// Login settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_settings: Option<LoginSettings>,
    /// Security groups.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_group_ids: Option<Vec<String>>,
    /// Agents to install.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enhanced_service: Option<EnhancedService>,
    /// Idempotency token, at most 64 ASCII characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    /// Host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_name: Option<String>,
    /// Scheduled termination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_timer: Option<ActionTimer>,
    /// Tags bound atomically with the create.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag_specification: Option<Vec<TagSpecification>>,
    /// Spot bid, for `SPOTPAID` ([`crate::vocab::market_options_problem`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_market_options: Option<crate::model::InstanceMarketOptionsRequest>,
    /// Base64 user data, at most 16 KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    /// Check parameters, quota and stock without creating anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// Forbid termination through the API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_api_termination: Option<bool>,
}

/// RunInstances result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunInstancesResponse {
    /// IDs of the instances created (or, for a repeated ClientToken, created before).
    #[serde(default, deserialize_with = "null_as_default")]
    pub instance_id_set: Vec<String>,
}
bind!(RunInstancesRequest, RunInstances, RunInstancesResponse);

/// DescribeInstances: list instances by IDs or by filters (not both).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeInstancesRequest {
    /// At most 100 IDs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_ids: Option<Vec<String>>,
    /// At most 10 filters of at most 5 values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<Vec<Filter>>,
    /// Offset, default 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    /// Page size, default 20, at most 100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// DescribeInstances result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeInstancesResponse {
    /// Number of matches across all pages.
    #[serde(default, deserialize_with = "null_as_default")]
    pub total_count: i64,
    /// This page.
    #[serde(default, deserialize_with = "null_as_default")]
    pub instance_set: Vec<Instance>,
}
bind!(DescribeInstancesRequest, DescribeInstances, DescribeInstancesResponse);

/// DescribeInstancesStatus: states of instances, paged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeInstancesStatusRequest {
    /// At most 100 IDs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_ids: Option<Vec<String>>,
    /// Offset, default 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    /// Page size, default 20, at most 100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// DescribeInstancesStatus result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeInstancesStatusResponse {
    /// Number of matches across all pages.
    #[serde(default, deserialize_with = "null_as_default")]
    pub total_count: i64,
    /// This page.
    #[serde(default, deserialize_with = "null_as_default")]
    pub instance_status_set: Vec<InstanceStatus>,
}
bind!(DescribeInstancesStatusRequest, DescribeInstancesStatus, DescribeInstancesStatusResponse);

/// TerminateInstances: return instances (at most 100 per call).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct TerminateInstancesRequest {
    /// Instances to terminate.
    #[serde(default)]
    pub instance_ids: Vec<String>,
    /// Release the public IP too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_address: Option<bool>,
    /// Release prepaid data disks too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_prepaid_data_disks: Option<bool>,
}

/// A response that carries nothing but its `RequestId`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyResponse {}

bind!(TerminateInstancesRequest, TerminateInstances, EmptyResponse);

/// ModifyInstancesAttribute: change exactly one attribute of up to 100 instances.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ModifyInstancesAttributeRequest {
    /// Instances to change.
    #[serde(default)]
    pub instance_ids: Vec<String>,
    /// New display name, at most 60 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_name: Option<String>,
    /// New user data (base64).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    /// Replaces the set of security groups.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_groups: Option<Vec<String>>,
    /// New host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_name: Option<String>,
    /// Termination protection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_api_termination: Option<bool>,
    /// Reboot after a host name change (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_reboot: Option<bool>,
}

impl ModifyInstancesAttributeRequest {
    /// Names of the attributes this request sets; the API requires exactly one.
    #[must_use]
    pub fn attributes_set(&self) -> Vec<&'static str> {
        let mut set = Vec::new();
        if self.instance_name.is_some() {
            set.push("InstanceName");
        }
        if self.user_data.is_some() {
            set.push("UserData");
        }
        if self.security_groups.is_some() {
            set.push("SecurityGroups");
        }
        if self.host_name.is_some() {
            set.push("HostName");
        }
        if self.disable_api_termination.is_some() {
            set.push("DisableApiTermination");
        }
        set
    }
}
bind!(ModifyInstancesAttributeRequest, ModifyInstancesAttribute, EmptyResponse);

/// StartInstances.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct StartInstancesRequest {
    /// Instances to start.
    #[serde(default)]
    pub instance_ids: Vec<String>,
}
bind!(StartInstancesRequest, StartInstances, EmptyResponse);

/// StopInstances.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct StopInstancesRequest {
    /// Instances to stop.
    #[serde(default)]
    pub instance_ids: Vec<String>,
    /// Deprecated force flag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_stop: Option<bool>,
    /// `SOFT`, `HARD` or `SOFT_FIRST`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_type: Option<String>,
    /// `KEEP_CHARGING` or `STOP_CHARGING`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_mode: Option<String>,
}
bind!(StopInstancesRequest, StopInstances, EmptyResponse);

/// DescribeZones: zones of the request's region.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DescribeZonesRequest {}

/// DescribeZones result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeZonesResponse {
    /// Number of zones.
    #[serde(default, deserialize_with = "null_as_default")]
    pub total_count: u64,
    /// The zones.
    #[serde(default, deserialize_with = "null_as_default")]
    pub zone_set: Vec<ZoneInfo>,
}
bind!(DescribeZonesRequest, DescribeZones, DescribeZonesResponse);

/// DescribeImages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeImagesRequest {
    /// Image IDs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_ids: Option<Vec<String>>,
    /// Filters (`image-id`, `image-type`, `image-name`, `platform`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<Vec<Filter>>,
    /// Offset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Page size, default 20, at most 100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Only images usable with this instance type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
}

/// DescribeImages result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeImagesResponse {
    /// This page.
    #[serde(default, deserialize_with = "null_as_default")]
    pub image_set: Vec<Image>,
    /// Number of matches.
    #[serde(default, deserialize_with = "null_as_default")]
    pub total_count: i64,
}
bind!(DescribeImagesRequest, DescribeImages, DescribeImagesResponse);

/// DescribeInstanceTypeConfigs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeInstanceTypeConfigsRequest {
    /// Filters (`zone`, `instance-family`, `instance-type`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<Vec<Filter>>,
}

/// DescribeInstanceTypeConfigs result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeInstanceTypeConfigsResponse {
    /// Matching instance types.
    #[serde(default, deserialize_with = "null_as_default")]
    pub instance_type_config_set: Vec<InstanceTypeConfig>,
}
bind!(DescribeInstanceTypeConfigsRequest, DescribeInstanceTypeConfigs, DescribeInstanceTypeConfigsResponse);

/// DescribeRegions: every region of the account. It takes no parameters, not even a region.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DescribeRegionsRequest {}

/// DescribeRegions result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeRegionsResponse {
    /// Number of regions.
    #[serde(default, deserialize_with = "null_as_default")]
    pub total_count: u64,
    /// The regions.
    #[serde(default, deserialize_with = "null_as_default")]
    pub region_set: Vec<RegionInfo>,
}
bind!(DescribeRegionsRequest, DescribeRegions, DescribeRegionsResponse);
