//! Data objects of the CVM 2017-03-12 API (`api.json` "objects"), shared by requests and
//! responses. Field names follow the API exactly; optional inputs are `Option` and are left out of
//! the wire form when unset, as the official SDKs do.

use serde::{Deserialize, Deserializer, Serialize};

/// Deserializes `null` as the type's default: the real API returns `null` for many fields that
/// cvmfleet treats as plain values (empty list, empty string).
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

mod offering;
pub use offering::*;

/// Where an instance lives: zone, project and (for CDHPAID) dedicated hosts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Placement {
    /// Availability zone, e.g. `ap-guangzhou-3`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub zone: String,
    /// Project ID; 0 is the default project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<i64>,
    /// Dedicated hosts to create on (input, CDHPAID only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_ids: Option<Vec<String>>,
    /// Dedicated host the instance runs on (output).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
}

/// Prepaid (monthly) purchase terms.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceChargePrepaid {
    /// Months: 1..=12, 24 or 36.
    pub period: i64,
    /// `NOTIFY_AND_AUTO_RENEW`, `NOTIFY_AND_MANUAL_RENEW` or `DISABLE_NOTIFY_AND_MANUAL_RENEW`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renew_flag: Option<String>,
}

/// The system disk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SystemDisk {
    /// Disk type, e.g. `CLOUD_PREMIUM`, `LOCAL_BASIC`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_type: Option<String>,
    /// Disk ID (output).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_id: Option<String>,
    /// Size in GiB; the API default is 50.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_size: Option<i64>,
}

/// One data disk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DataDisk {
    /// Size in GiB.
    #[serde(default)]
    pub disk_size: i64,
    /// Disk type, e.g. `CLOUD_PREMIUM`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_type: Option<String>,
    /// Disk ID (output).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_id: Option<String>,
    /// Whether the disk is destroyed with the instance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_with_instance: Option<bool>,
    /// Snapshot to create the disk from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    /// Whether the disk is encrypted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encrypt: Option<bool>,
}

/// VPC networking of an instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VirtualPrivateCloud {
    /// VPC ID, `vpc-…`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub vpc_id: String,
    /// Subnet ID, `subnet-…`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub subnet_id: String,
    /// Whether the instance is a public gateway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_vpc_gateway: Option<bool>,
    /// Primary private IPs, one per instance (their count must equal InstanceCount).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_ip_addresses: Option<Vec<String>>,
    /// Number of IPv6 addresses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_address_count: Option<u64>,
}

/// Public network settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InternetAccessible {
    /// `BANDWIDTH_PREPAID`, `TRAFFIC_POSTPAID_BY_HOUR`, `BANDWIDTH_POSTPAID_BY_HOUR` or
    /// `BANDWIDTH_PACKAGE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internet_charge_type: Option<String>,
    /// Outbound bandwidth cap in Mbps; 0 means none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internet_max_bandwidth_out: Option<i64>,
    /// Whether a public IP is assigned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_ip_assigned: Option<bool>,
    /// Bandwidth package ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth_package_id: Option<String>,
}

/// How to log in to new instances. Only `KeyIds` is ever returned by the API.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoginSettings {
    /// Login password (input only). Redacted from `Debug`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// SSH key IDs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_ids: Option<Vec<String>>,
    /// `TRUE` to keep the image's login settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_image_login: Option<String>,
}

impl std::fmt::Debug for LoginSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginSettings")
            .field("password", &self.password.as_ref().map(|_| "(sensitive)"))
            .field("key_ids", &self.key_ids)
            .field("keep_image_login", &self.keep_image_login)
            .finish()
    }
}

/// A service switch (`{"Enabled": true}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceEnabled {
    /// Whether the service is enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Cloud security, monitoring and automation agents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnhancedService {
    /// Cloud Workload Protection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_service: Option<ServiceEnabled>,
    /// Cloud Monitor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitor_service: Option<ServiceEnabled>,
    /// TencentCloud Automation Tools.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub automation_service: Option<ServiceEnabled>,
}

/// Extra options of a timed action.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Externals {
    /// Release the public IP with the instance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_address: Option<bool>,
    /// Networks that are not supported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsupport_networks: Option<Vec<String>>,
}

/// A scheduled action on the instance; only `TerminateInstances` exists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ActionTimer {
    /// `TerminateInstances`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timer_action: Option<String>,
    /// When, `YYYY-MM-DD hh:mm:ss` (UTC+8 per the API docs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_time: Option<String>,
    /// Extra options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub externals: Option<Externals>,
}

/// A key/value tag.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    /// Tag key.
    #[serde(default)]
    pub key: String,
    /// Tag value.
    #[serde(default, deserialize_with = "null_as_default")]
    pub value: String,
}

impl Tag {
    /// A tag from its key and value.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Tag { key: key.into(), value: value.into() }
    }
}

/// Tags to bind to resources created by the request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagSpecification {
    /// Resource type; `instance` for CVM.
    #[serde(default)]
    pub resource_type: String,
    /// Tags to bind.
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// A DescribeInstances / DescribeImages filter: values within one filter are OR-ed, filters AND-ed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Filter {
    /// Filter name, e.g. `zone`, `tag:owner`.
    #[serde(default)]
    pub name: String,
    /// Accepted values.
    #[serde(default)]
    pub values: Vec<String>,
}

impl Filter {
    /// A filter from its name and values.
    pub fn new<I, S>(name: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Filter { name: name.into(), values: values.into_iter().map(Into::into).collect() }
    }

    /// `tag:<key>`: instances whose tag `key` has one of `values`.
    pub fn tag<I, S>(key: &str, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Filter::new(format!("{}{key}", crate::vocab::FILTER_TAG_PREFIX), values)
    }

    /// `tag-key`: instances carrying one of `keys`.
    pub fn tag_key<I, S>(keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Filter::new(crate::vocab::FILTER_TAG_KEY, keys)
    }

    /// `tag-value`: instances with a tag of one of `values`, whatever its key.
    pub fn tag_value<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Filter::new(crate::vocab::FILTER_TAG_VALUE, values)
    }
}

/// An instance as DescribeInstances returns it.
///
/// Fields that real clients dereference without checking (IDs, state, placement, type, lists)
/// are plain values, read as their default when the server sends `null`; fields the API
/// documents as nullable stay `Option` and are sent as `null` when absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Instance {
    /// Location.
    #[serde(default, deserialize_with = "null_as_default")]
    pub placement: Placement,
    /// `ins-` and 8 lowercase letters or digits.
    #[serde(default, deserialize_with = "null_as_default")]
    pub instance_id: String,
    /// Instance type, e.g. `S5.MEDIUM2`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub instance_type: String,
    /// vCPUs.
    #[serde(rename = "CPU", default, deserialize_with = "null_as_default")]
    pub cpu: i64,
    /// Memory in GiB.
    #[serde(default, deserialize_with = "null_as_default")]
    pub memory: i64,
    /// `NORMAL`, `EXPIRED` or `PROTECTIVELY_ISOLATED`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub restrict_state: String,
    /// Display name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub instance_name: String,
    /// Billing mode.
    #[serde(default, deserialize_with = "null_as_default")]
    pub instance_charge_type: String,
    /// System disk.
    #[serde(default, deserialize_with = "null_as_default")]
    pub system_disk: SystemDisk,
    /// Data disks.
    #[serde(default, deserialize_with = "null_as_default")]
    pub data_disks: Vec<DataDisk>,
    /// Primary private IPs.
    #[serde(default, deserialize_with = "null_as_default")]
    pub private_ip_addresses: Vec<String>,
    /// Public IPs, `null` when none.
    #[serde(default)]
    pub public_ip_addresses: Option<Vec<String>>,
    /// Public network settings.
    #[serde(default, deserialize_with = "null_as_default")]
    pub internet_accessible: InternetAccessible,
    /// VPC settings.
    #[serde(default, deserialize_with = "null_as_default")]
    pub virtual_private_cloud: VirtualPrivateCloud,
    /// Image the instance was created from.
    #[serde(default, deserialize_with = "null_as_default")]
    pub image_id: String,
    /// Renewal flag; `null` for postpaid instances.
    #[serde(default)]
    pub renew_flag: Option<String>,
    /// Creation time, ISO 8601 UTC.
    #[serde(default, deserialize_with = "null_as_default")]
    pub created_time: String,
    /// Expiry time for prepaid instances, else `null`.
    #[serde(default)]
    pub expired_time: Option<String>,
    /// Operating system name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub os_name: String,
    /// Security groups.
    #[serde(default, deserialize_with = "null_as_default")]
    pub security_group_ids: Vec<String>,
    /// Login settings (only `KeyIds` is returned).
    #[serde(default, deserialize_with = "null_as_default")]
    pub login_settings: LoginSettings,
    /// `PENDING`, `LAUNCH_FAILED`, `RUNNING`, `STOPPED`, `STARTING`, `STOPPING`, `REBOOTING`,
    /// `SHUTDOWN`, `TERMINATING`, …
    #[serde(default, deserialize_with = "null_as_default")]
    pub instance_state: String,
    /// Tags.
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: Vec<Tag>,
    /// `KEEP_CHARGING`, `STOP_CHARGING` or `NOT_APPLICABLE`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub stop_charging_mode: String,
    /// Globally unique ID.
    #[serde(default, deserialize_with = "null_as_default")]
    pub uuid: String,
    /// Last operation, e.g. `StopInstances`.
    #[serde(default)]
    pub latest_operation: Option<String>,
    /// `SUCCESS`, `OPERATING` or `FAILED`.
    #[serde(default)]
    pub latest_operation_state: Option<String>,
    /// RequestId of the last operation.
    #[serde(default)]
    pub latest_operation_request_id: Option<String>,
    /// Error of the last operation, if it failed.
    #[serde(default)]
    pub latest_operation_error_msg: Option<String>,
    /// Whether termination through the API is disabled.
    #[serde(default, deserialize_with = "null_as_default")]
    pub disable_api_termination: bool,
    /// Host name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub host_name: String,
    /// Default login user.
    #[serde(default, deserialize_with = "null_as_default")]
    pub default_login_user: String,
    /// Default login port.
    #[serde(default, deserialize_with = "null_as_default")]
    pub default_login_port: i64,
    /// Licence type, `TencentCloud` by default.
    #[serde(default, deserialize_with = "null_as_default")]
    pub license_type: String,
    /// IPv6 addresses.
    #[serde(rename = "IPv6Addresses", default)]
    pub ipv6_addresses: Option<Vec<String>>,
    /// Isolation source: `ARREAR`, `EXPIRE`, `MANMADE` or `NOTISOLATED`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub isolated_source: String,
}

impl Instance {
    /// The instance's state, typed (`instance_state` stays the API's string on the wire).
    #[must_use]
    pub fn state(&self) -> crate::vocab::InstanceState {
        crate::vocab::InstanceState::from(self.instance_state.as_str())
    }

    /// The value of a tag, if the instance carries it.
    #[must_use]
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|t| t.key == key).map(|t| t.value.as_str())
    }
}

/// An instance ID with its state (DescribeInstancesStatus).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceStatus {
    /// Instance ID.
    #[serde(default)]
    pub instance_id: String,
    /// Instance state.
    #[serde(default, deserialize_with = "null_as_default")]
    pub instance_state: String,
}

impl InstanceStatus {
    /// The instance's state, typed.
    #[must_use]
    pub fn state(&self) -> crate::vocab::InstanceState {
        crate::vocab::InstanceState::from(self.instance_state.as_str())
    }
}

/// A zone of a region (DescribeZones).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ZoneInfo {
    /// Zone name, e.g. `ap-guangzhou-3`.
    #[serde(default)]
    pub zone: String,
    /// Display name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub zone_name: String,
    /// Numeric zone ID as a string.
    #[serde(default, deserialize_with = "null_as_default")]
    pub zone_id: String,
    /// `AVAILABLE` or `UNAVAILABLE`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub zone_state: String,
}

/// A region (DescribeRegions).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegionInfo {
    /// Region, e.g. `ap-guangzhou`.
    #[serde(default)]
    pub region: String,
    /// Display name, e.g. `华南地区(广州)`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub region_name: String,
    /// `AVAILABLE` when the region sells instances (api.json example).
    #[serde(default, deserialize_with = "null_as_default")]
    pub region_state: String,
}

/// An image (DescribeImages).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Image {
    /// Image ID, `img-…`.
    #[serde(default)]
    pub image_id: String,
    /// OS name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub os_name: String,
    /// `PUBLIC_IMAGE`, `PRIVATE_IMAGE`, `SHARED_IMAGE`, …
    #[serde(default, deserialize_with = "null_as_default")]
    pub image_type: String,
    /// Creation time.
    #[serde(default, deserialize_with = "null_as_default")]
    pub created_time: String,
    /// Image name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub image_name: String,
    /// Description.
    #[serde(default, deserialize_with = "null_as_default")]
    pub image_description: String,
    /// Size in GiB.
    #[serde(default, deserialize_with = "null_as_default")]
    pub image_size: i64,
    /// `x86_64` or `arm`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub architecture: String,
    /// `NORMAL`, `CREATING`, …
    #[serde(default, deserialize_with = "null_as_default")]
    pub image_state: String,
    /// OS platform, e.g. `TencentOS`, `Windows`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub platform: String,
    /// Creator account.
    #[serde(default, deserialize_with = "null_as_default")]
    pub image_creator: String,
    /// `OFFICIAL`, `CREATE`, `EXTERNAL_IMPORT`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub image_source: String,
    /// Whether cloud-init is supported.
    #[serde(default, deserialize_with = "null_as_default")]
    pub is_support_cloudinit: bool,
    /// Licence type.
    #[serde(default, deserialize_with = "null_as_default")]
    pub license_type: String,
}

/// An instance type offered in a zone (DescribeInstanceTypeConfigs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceTypeConfig {
    /// Zone.
    #[serde(default)]
    pub zone: String,
    /// Instance type, e.g. `S5.MEDIUM2`.
    #[serde(default)]
    pub instance_type: String,
    /// Family, e.g. `S5`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub instance_family: String,
    /// GPU cores.
    #[serde(rename = "GPU", default, deserialize_with = "null_as_default")]
    pub gpu: i64,
    /// vCPUs.
    #[serde(rename = "CPU", default, deserialize_with = "null_as_default")]
    pub cpu: i64,
    /// Memory in GiB.
    #[serde(default, deserialize_with = "null_as_default")]
    pub memory: i64,
    /// FPGA cores.
    #[serde(rename = "FPGA", default, deserialize_with = "null_as_default")]
    pub fpga: i64,
}
