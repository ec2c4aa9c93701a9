//! The launch template: RunInstances parameters under the API's own names, so that users can
//! paste from Tencent's documentation. Field descriptions are translated from the CVM API model
//! (`cvm-2017-03-12/api.json`). The reconciler derives `InstanceCount` and `ClientToken` itself,
//! and places instances in zones from the group's `zones`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use cvmfleet_wire::vocab::{
    self, DATA_DISK_SIZE_MAX, DATA_DISK_SIZE_MIN, DATA_DISK_SIZE_STEP, HOST_NAME_MIN_CHARS,
    INSTANCE_NAME_MAX_CHARS, INTERNET_MAX_BANDWIDTH_OUT_MAX, MAX_DATA_DISKS, PREPAID_PERIODS,
    SYSTEM_DISK_SIZE_MAX, SYSTEM_DISK_SIZE_MIN, TAG_KEY_MAX_CHARS, TAG_VALUE_MAX_CHARS,
    USER_DATA_MAX_BASE64_CHARS,
};

use crate::secret::SecretRef;

/// RunInstances parameters for the instances of a group. Every field is optional here because
/// a group's template is merged over its fleet's `defaults` (the group wins, mappings merge key
/// by key, lists are replaced whole); the merged result must name at least an `ImageId`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct Template {
    /// Instance billing mode: PREPAID (monthly subscription), POSTPAID_BY_HOUR (pay as you go)
    /// or CDHPAID (instance on a dedicated host; the host's resources are not billed).
    /// Default: POSTPAID_BY_HOUR.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_charge_type: Option<InstanceChargeType>,
    /// Subscription settings (period, auto-renewal). Required when InstanceChargeType is PREPAID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_charge_prepaid: Option<InstanceChargePrepaid>,
    /// Where the instances live: project and dedicated hosts. The zone comes from the group's
    /// `zones`; `Placement.Zone` is accepted only as a single-zone shorthand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// Instance type, e.g. S5.MEDIUM2 (see DescribeInstanceTypeConfigs). For CDHPAID instances it
    /// is `CDH_<cpu>C<memory>G`, e.g. CDH_1C1G for 1 core and 1 GB.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(CDH_[0-9]+C[0-9]+G|[A-Za-z0-9]+\.[A-Z0-9]+)$"))]
    pub instance_type: Option<String>,
    /// Image ID, like `img-xxx`: a public, custom, shared or marketplace image (see
    /// DescribeImages).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^img-[a-z0-9]{8}$"))]
    pub image_id: Option<String>,
    /// System disk. Default: allocated with system defaults (50 GiB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_disk: Option<SystemDisk>,
    /// Data disks. Default: none. At most 21: at most 1 local disk (LOCAL_BASIC or LOCAL_SSD) and
    /// at most 20 cloud disks.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_DATA_DISKS))]
    pub data_disks: Option<Vec<DataDisk>>,
    /// VPC settings. Default: the classic network. Private IPs listed here give one instance
    /// each; with several zones, list them per zone in `zones` instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_private_cloud: Option<VirtualPrivateCloud>,
    /// Public network settings. Default: 0 Mbps public bandwidth.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internet_accessible: Option<InternetAccessible>,
    /// Display name. Default: "未命名" (unnamed). At most 128 characters including the
    /// `{R:x}`/`{R:x,F:y}` patterns, and every resulting name at most 60 bytes (a CJK character
    /// takes 3). Without a pattern, several instances get the suffixes 1, 2, ….
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = INSTANCE_NAME_MAX_CHARS))]
    pub instance_name: Option<String>,
    /// Login settings: a password reference, key pairs, or keep the image's login settings.
    /// Default: a random password is generated and sent to the account's message center.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_settings: Option<LoginSettings>,
    /// Security groups (see DescribeSecurityGroups). Default: the project's default security
    /// group. Order matters: earlier groups take precedence.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(inner(regex(pattern = r"^sg-[a-z0-9]{8}$")), length(min = 1))]
    pub security_group_ids: Option<Vec<String>>,
    /// Enhanced services (Cloud Workload Protection, Cloud Monitor, Automation Tools). Default:
    /// security and monitoring are enabled for public images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enhanced_service: Option<EnhancedService>,
    /// Host name. `.` and `-` may not be first, last or doubled. Linux and others: 2-60
    /// characters, segments between dots of letters, digits and `-`. Windows: 2-15 characters of
    /// letters, digits and `-`, no dot, not all digits. `{R:x}`, `{R:x,F:y}` and `{IP}` patterns
    /// are substituted by the API, and the lengths apply to the resulting names; without a
    /// pattern, several instances get the suffixes 1, 2, ….
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = HOST_NAME_MIN_CHARS))]
    pub host_name: Option<String>,
    /// Scheduled action; only timed termination is supported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_timer: Option<ActionTimer>,
    /// Tags to bind at creation, in the API's shape. `Tags` is a friendlier form of the same.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag_specification: Option<Vec<TagSpecification>>,
    /// Instance tags as a map (key: value): shorthand for a TagSpecification with ResourceType
    /// `instance`. Keys starting with `cvmfleet:` are reserved for the reconciler.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("propertyNames" = {"minLength": 1, "maxLength": TAG_KEY_MAX_CHARS}, "additionalProperties" = {"type": "string", "maxLength": TAG_VALUE_MAX_CHARS}))]
    pub tags: Option<BTreeMap<String, String>>,
    /// User data for the instance, base64 encoded, at most 16 KiB of data (21,848 characters
    /// of base64).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9+/]*={0,2}$"), length(max = USER_DATA_MAX_BASE64_CHARS))]
    pub user_data: Option<String>,
    /// Termination protection: when true the instance cannot be terminated through the API.
    /// Default: false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_api_termination: Option<bool>,
}

/// Billing mode of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InstanceChargeType {
    /// Monthly subscription, paid in advance.
    Prepaid,
    /// Pay as you go, billed by the hour.
    PostpaidByHour,
    /// Instance on a dedicated host (CDH).
    Cdhpaid,
}

impl InstanceChargeType {
    /// The wire value. The spec offers the charge types the reconciler manages; the API's
    /// SPOTPAID and CDCPAID (`vocab::InstanceChargeType`) are not offered.
    #[must_use]
    pub fn wire(self) -> vocab::InstanceChargeType {
        match self {
            InstanceChargeType::Prepaid => vocab::InstanceChargeType::Prepaid,
            InstanceChargeType::PostpaidByHour => vocab::InstanceChargeType::PostpaidByHour,
            InstanceChargeType::Cdhpaid => vocab::InstanceChargeType::Cdhpaid,
        }
    }

    /// The API's name for the value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.wire().as_str()
    }
}

/// Subscription settings of a PREPAID instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct InstanceChargePrepaid {
    /// Subscription length in months: 1-12, 24 or 36.
    #[schemars(extend("enum" = PREPAID_PERIODS))]
    pub period: u32,
    /// Auto-renewal: NOTIFY_AND_AUTO_RENEW (notify and renew monthly while the balance allows),
    /// NOTIFY_AND_MANUAL_RENEW (notify, do not renew) or DISABLE_NOTIFY_AND_MANUAL_RENEW (neither).
    /// Default: NOTIFY_AND_MANUAL_RENEW.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renew_flag: Option<RenewFlag>,
}

/// Auto-renewal of a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RenewFlag {
    /// Notify before expiry and renew automatically.
    NotifyAndAutoRenew,
    /// Notify before expiry, renew manually.
    NotifyAndManualRenew,
    /// Do not notify, renew manually.
    DisableNotifyAndManualRenew,
}

impl RenewFlag {
    /// The wire value.
    #[must_use]
    pub fn wire(self) -> vocab::RenewFlag {
        match self {
            RenewFlag::NotifyAndAutoRenew => vocab::RenewFlag::NotifyAndAutoRenew,
            RenewFlag::NotifyAndManualRenew => vocab::RenewFlag::NotifyAndManualRenew,
            RenewFlag::DisableNotifyAndManualRenew => vocab::RenewFlag::DisableNotifyAndManualRenew,
        }
    }
}

/// Where instances live.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct Placement {
    /// Availability zone (see DescribeZones). Single-zone shorthand for the group's `zones`;
    /// do not give both.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z]+(-[a-z]+)+-[0-9]+$"))]
    pub zone: Option<String>,
    /// Project ID (see DescribeProject). Default: 0, the default project.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub project_id: Option<i64>,
    /// Dedicated hosts to create the instances on (CDHPAID); instances are spread over them at
    /// random (see DescribeHosts).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(inner(regex(pattern = r"^host-[a-z0-9]{8}$")), length(min = 1))]
    pub host_ids: Option<Vec<String>>,
}

/// System disk type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[allow(clippy::upper_case_acronyms)]
pub enum SystemDiskType {
    /// Local disk.
    #[serde(rename = "LOCAL_BASIC")]
    LocalBasic,
    /// Local SSD disk.
    #[serde(rename = "LOCAL_SSD")]
    LocalSsd,
    /// Basic cloud disk.
    #[serde(rename = "CLOUD_BASIC")]
    CloudBasic,
    /// SSD cloud disk.
    #[serde(rename = "CLOUD_SSD")]
    CloudSsd,
    /// Premium cloud disk.
    #[serde(rename = "CLOUD_PREMIUM")]
    CloudPremium,
    /// Balanced SSD cloud disk.
    #[serde(rename = "CLOUD_BSSD")]
    CloudBssd,
    /// Enhanced SSD cloud disk.
    #[serde(rename = "CLOUD_HSSD")]
    CloudHssd,
    /// Tremendous SSD cloud disk.
    #[serde(rename = "CLOUD_TSSD")]
    CloudTssd,
}

impl SystemDiskType {
    /// The wire value.
    #[must_use]
    pub fn wire(self) -> vocab::DiskType {
        match self {
            SystemDiskType::LocalBasic => vocab::DiskType::LocalBasic,
            SystemDiskType::LocalSsd => vocab::DiskType::LocalSsd,
            SystemDiskType::CloudBasic => vocab::DiskType::CloudBasic,
            SystemDiskType::CloudSsd => vocab::DiskType::CloudSsd,
            SystemDiskType::CloudPremium => vocab::DiskType::CloudPremium,
            SystemDiskType::CloudBssd => vocab::DiskType::CloudBssd,
            SystemDiskType::CloudHssd => vocab::DiskType::CloudHssd,
            SystemDiskType::CloudTssd => vocab::DiskType::CloudTssd,
        }
    }
}

/// The system disk.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct SystemDisk {
    /// System disk type. Default: a type currently in stock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_type: Option<SystemDiskType>,
    /// Size in GiB. Default: 50.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = SYSTEM_DISK_SIZE_MIN, max = SYSTEM_DISK_SIZE_MAX))]
    pub disk_size: Option<u32>,
}

/// Data disk type (LOCAL_NVME and LOCAL_PRO follow the instance type and cannot be chosen).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum DataDiskType {
    /// Local disk.
    #[serde(rename = "LOCAL_BASIC")]
    LocalBasic,
    /// Local SSD disk.
    #[serde(rename = "LOCAL_SSD")]
    LocalSsd,
    /// Basic cloud disk.
    #[serde(rename = "CLOUD_BASIC")]
    CloudBasic,
    /// Premium cloud disk.
    #[serde(rename = "CLOUD_PREMIUM")]
    CloudPremium,
    /// SSD cloud disk.
    #[serde(rename = "CLOUD_SSD")]
    CloudSsd,
    /// Enhanced SSD cloud disk.
    #[serde(rename = "CLOUD_HSSD")]
    CloudHssd,
    /// Tremendous SSD cloud disk.
    #[serde(rename = "CLOUD_TSSD")]
    CloudTssd,
    /// Balanced SSD cloud disk.
    #[serde(rename = "CLOUD_BSSD")]
    CloudBssd,
}

impl DataDiskType {
    /// The wire value.
    #[must_use]
    pub fn wire(self) -> vocab::DiskType {
        match self {
            DataDiskType::LocalBasic => vocab::DiskType::LocalBasic,
            DataDiskType::LocalSsd => vocab::DiskType::LocalSsd,
            DataDiskType::CloudBasic => vocab::DiskType::CloudBasic,
            DataDiskType::CloudPremium => vocab::DiskType::CloudPremium,
            DataDiskType::CloudSsd => vocab::DiskType::CloudSsd,
            DataDiskType::CloudHssd => vocab::DiskType::CloudHssd,
            DataDiskType::CloudTssd => vocab::DiskType::CloudTssd,
            DataDiskType::CloudBssd => vocab::DiskType::CloudBssd,
        }
    }

    /// True for disks local to the host.
    #[must_use]
    pub fn is_local(self) -> bool {
        self.wire().is_local()
    }

    /// The API's name for the value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.wire().as_str()
    }
}

/// A data disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DataDisk {
    /// Size in GiB, in steps of 10 GiB; the range depends on the disk type (SSD-class cloud disks
    /// start at 20 GiB).
    #[schemars(range(min = DATA_DISK_SIZE_MIN, max = DATA_DISK_SIZE_MAX), extend("multipleOf" = DATA_DISK_SIZE_STEP))]
    pub disk_size: u32,
    /// Data disk type. Default: LOCAL_BASIC (a local disk; at most one per instance).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_type: Option<DataDiskType>,
    /// Whether the disk is destroyed with the instance (only pay-as-you-go cloud disks).
    /// Default: true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_with_instance: Option<bool>,
    /// Snapshot to create the disk from; it must be smaller than the disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^snap-[a-z0-9]{8}$"))]
    pub snapshot_id: Option<String>,
    /// Whether the disk is encrypted. Default: false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encrypt: Option<bool>,
}

/// VPC settings of the primary network interface.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct VirtualPrivateCloud {
    /// VPC ID, like `vpc-xxx` (see DescribeVpcs). `DEFAULT` together with SubnetId `DEFAULT`
    /// selects the default VPC.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(vpc-[a-z0-9]{8}|DEFAULT)$"))]
    pub vpc_id: Option<String>,
    /// Subnet ID, like `subnet-xxx` (see DescribeSubnets). A subnet lives in one zone: a group
    /// spread over several zones gives each zone its own `SubnetId` in `zones`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(subnet-[a-z0-9]{8}|DEFAULT)$"))]
    pub subnet_id: Option<String>,
    /// Primary private IPv4 addresses, one instance each, all in the subnet. The group then has
    /// exactly this many instances.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub private_ip_addresses: Option<Vec<String>>,
    /// Whether the instance is used as a public gateway (needs a public IP). Default: false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_vpc_gateway: Option<bool>,
    /// Number of random IPv6 addresses for the network interface.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 10))]
    pub ipv6_address_count: Option<u32>,
}

/// Public network billing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InternetChargeType {
    /// Prepaid, by bandwidth.
    BandwidthPrepaid,
    /// Pay as you go, by traffic, billed hourly.
    TrafficPostpaidByHour,
    /// Pay as you go, by bandwidth, billed hourly.
    BandwidthPostpaidByHour,
    /// Bandwidth package (needs BandwidthPackageId).
    BandwidthPackage,
}

impl InternetChargeType {
    /// The wire value.
    #[must_use]
    pub fn wire(self) -> vocab::InternetChargeType {
        match self {
            InternetChargeType::BandwidthPrepaid => vocab::InternetChargeType::BandwidthPrepaid,
            InternetChargeType::TrafficPostpaidByHour => vocab::InternetChargeType::TrafficPostpaidByHour,
            InternetChargeType::BandwidthPostpaidByHour => vocab::InternetChargeType::BandwidthPostpaidByHour,
            InternetChargeType::BandwidthPackage => vocab::InternetChargeType::BandwidthPackage,
        }
    }
}

/// Public network settings of the primary network interface.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct InternetAccessible {
    /// Network billing mode. Default: follows the instance's billing mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internet_charge_type: Option<InternetChargeType>,
    /// Maximum outbound public bandwidth in Mbps: 0-2000 (the bandwidth package's cap). Default:
    /// 0. Lower caps apply per billing mode and region (100 or 200 Mbps), checked by the cloud.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = INTERNET_MAX_BANDWIDTH_OUT_MAX))]
    pub internet_max_bandwidth_out: Option<u32>,
    /// Whether to assign a public IP. Only possible with bandwidth above 0 Mbps, where it
    /// defaults to true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_ip_assigned: Option<bool>,
    /// Bandwidth package ID (see DescribeBandwidthPackages); required with BANDWIDTH_PACKAGE.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^bwp-[a-z0-9]{8}$"))]
    pub bandwidth_package_id: Option<String>,
}

/// Login settings. Give at most one of Password, KeyIds and KeepImageLogin.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct LoginSettings {
    /// Login password, as a reference: `{fromEnv: VAR}` or `{fromFile: path}`, never a literal.
    /// Linux: 8-30 characters with at least two of lowercase, uppercase, digits and
    /// ``( ) ` ~ ! @ # $ % ^ & * - + = | { } [ ] : ; ' , . ? /``; Windows: 12-30 characters with
    /// at least three of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
    /// Key pair IDs (see DescribeKeyPairs); not with Password, not for Windows.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(inner(regex(pattern = r"^skey-[a-z0-9]{8}$")), length(min = 1))]
    pub key_ids: Option<Vec<String>>,
    /// Keep the image's login settings (custom, shared or imported images only); not with
    /// Password or KeyIds. Default: false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_image_login: Option<KeepImageLogin>,
}

/// `KeepImageLogin`: a boolean in the spec, the strings `"true"`/`"false"` on the wire (the API
/// types it as a string). Both spellings are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeepImageLogin(pub bool);

impl Serialize for KeepImageLogin {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(if self.0 { "true" } else { "false" })
    }
}

impl<'de> Deserialize<'de> for KeepImageLogin {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Bool(b) => Ok(KeepImageLogin(b)),
            Raw::Text(s) if s.eq_ignore_ascii_case("true") => Ok(KeepImageLogin(true)),
            Raw::Text(s) if s.eq_ignore_ascii_case("false") => Ok(KeepImageLogin(false)),
            Raw::Text(s) => {
                Err(serde::de::Error::custom(format!("invalid KeepImageLogin `{s}`, expected true or false")))
            }
        }
    }
}

impl JsonSchema for KeepImageLogin {
    fn schema_name() -> Cow<'static, str> {
        "KeepImageLogin".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Keep the image's login settings: true or false (the API's string form \"true\"/\"false\" is accepted too).",
            "anyOf": [
                {"type": "boolean"},
                {"type": "string", "enum": ["true", "false", "TRUE", "FALSE"]}
            ]
        })
    }
}

/// Enhanced services.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct EnhancedService {
    /// Cloud Workload Protection. Default: enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_service: Option<ServiceEnabled>,
    /// Cloud Monitor. Default: enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitor_service: Option<ServiceEnabled>,
    /// TencentCloud Automation Tools (TAT). Default: enabled for public images only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub automation_service: Option<ServiceEnabled>,
}

/// Whether a service is enabled.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ServiceEnabled {
    /// Whether to enable the service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// A scheduled action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ActionTimer {
    /// Timer action; only TerminateInstances is supported.
    pub timer_action: TimerAction,
    /// When to act, ISO 8601 in UTC: `YYYY-MM-DDThh:mm:ssZ`, at least 5 minutes in the future
    /// when the instance is created.
    #[schemars(regex(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"))]
    pub action_time: String,
    /// Extra settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub externals: Option<Externals>,
}

/// The only timer action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum TimerAction {
    /// Terminate the instance.
    TerminateInstances,
}

/// Extra settings of a scheduled action.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct Externals {
    /// Release the public address too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_address: Option<bool>,
    /// Network types not supported: BASIC (classic network), VPC1.0.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(inner(regex(pattern = r"^(BASIC|VPC1\.0)$")))]
    pub unsupport_networks: Option<Vec<String>>,
}

/// Tags to bind to one kind of resource at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct TagSpecification {
    /// Resource kind: `instance` (the CVM instance) or `disk` (its cloud disks).
    #[schemars(extend("enum" = ["instance", "disk"]))]
    pub resource_type: String,
    /// Tag pairs.
    pub tags: Vec<Tag>,
}

/// A tag pair (see DescribeTags).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct Tag {
    /// Tag key.
    #[schemars(length(min = 1, max = TAG_KEY_MAX_CHARS))]
    pub key: String,
    /// Tag value.
    #[schemars(length(max = TAG_VALUE_MAX_CHARS))]
    pub value: String,
}

#[cfg(test)]
mod tests {
    //! The spec's enums carry the schema's descriptions; their values are the wire crate's
    //! (issue 11): every spec value serializes to its wire spelling, and the spec offers every
    //! wire value except the charge types it does not manage.
    use super::*;

    fn spelled<T: Serialize>(value: T) -> String {
        serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
    }

    fn all<T: for<'de> Deserialize<'de>>(names: &[&str]) -> Vec<T> {
        names.iter().filter_map(|n| serde_json::from_value(serde_json::Value::from(*n)).ok()).collect()
    }

    #[test]
    fn enums_are_the_wire_vocabulary() {
        let disks: Vec<&str> = vocab::DiskType::ALL.iter().map(|d| d.as_str()).collect();
        let system: Vec<SystemDiskType> = all(&disks);
        let data: Vec<DataDiskType> = all(&disks);
        assert_eq!((system.len(), data.len()), (disks.len(), disks.len()));
        for d in system {
            assert_eq!(spelled(d), d.wire().as_str());
        }
        for d in data {
            assert_eq!(spelled(d), d.wire().as_str());
        }
        let internet: Vec<&str> = vocab::InternetChargeType::ALL.iter().map(|d| d.as_str()).collect();
        let spec: Vec<InternetChargeType> = all(&internet);
        assert_eq!(spec.len(), internet.len());
        assert!(spec.iter().all(|t| spelled(t) == t.wire().as_str()));
        let flags: Vec<&str> = vocab::RenewFlag::ALL.iter().map(|d| d.as_str()).collect();
        let spec: Vec<RenewFlag> = all(&flags);
        assert_eq!(spec.len(), flags.len());
        assert!(spec.iter().all(|t| spelled(t) == t.wire().as_str()));
        let charges: Vec<&str> = vocab::InstanceChargeType::ALL.iter().map(|d| d.as_str()).collect();
        let spec: Vec<InstanceChargeType> = all(&charges);
        assert_eq!(
            spec.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            ["PREPAID", "POSTPAID_BY_HOUR", "CDHPAID"]
        );
        assert!(spec.iter().all(|t| spelled(t) == t.as_str()));
    }
}
