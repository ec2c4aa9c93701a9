//! The RunInstances vocabulary, defined once: the enums of values, the numeric limits and the
//! rules the API states in prose, each with the text it comes from beside it.
//!
//! The spec validator (`cvmfleet-spec`), the emulator and (through them) the planner and the
//! executor read these definitions; the agreement property test in the emulator's integration
//! tests shows that `cvmfleet validate` accepts a launch template exactly when the emulator's
//! RunInstances with `DryRun` does.
//!
//! Sources: `api.json` is the CVM API model `cvm-2017-03-12` (the newer text); "the seed" is the
//! RunInstances reference page the project started from. Where they differ, the doc comment says
//! which one is followed and why. Where neither states a number (the API model points to a
//! product page instead), the constant follows that page when it is known, and otherwise keeps
//! the more permissive of the earlier copies: refusing what the cloud would accept is the worse
//! error, and `plan --preflight` shows the cloud's own verdict.
//!
//! ```
//! use cvmfleet_wire::vocab::{self, DiskType, InstanceState};
//!
//! assert_eq!(vocab::data_disk_size_problem(DiskType::CloudSsd, 10), Some(vocab::DiskSizeProblem::TooSmall(20)));
//! assert_eq!(DiskType::parse("LOCAL_BASIC"), Some(vocab::DATA_DISK_DEFAULT_TYPE));
//! assert!(InstanceState::from("TERMINATING").is_leaving());
//! assert_eq!(InstanceState::from("HIBERNATED"), InstanceState::Unknown("HIBERNATED".into()));
//! ```

use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codes;

/// Defines an enum of API strings with `ALL`, `as_str`, `parse`, `Display` and serde as the
/// API's strings.
macro_rules! api_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in the order the API model lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The API's spelling.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// Reads the API's spelling (exact, case-sensitive, as the API compares).
            #[must_use]
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// Every value's spelling, joined with `, ` (for error messages).
            #[must_use]
            pub fn names() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                $name::parse(&text).ok_or_else(|| {
                    serde::de::Error::custom(format!("`{text}` is not one of {}", $name::names()))
                })
            }
        }
    };
}

mod market;
pub use market::*;

api_enum! {
    /// `InstanceChargeType` of RunInstances. api.json: "PREPAID：预付费，即包年包月 /
    /// POSTPAID_BY_HOUR：按小时后付费 / CDHPAID：独享子机 / SPOTPAID：竞价付费 / CDCPAID：专用集群付费
    /// 默认值：POSTPAID_BY_HOUR" (the seed lists only the first three; api.json is newer).
    InstanceChargeType {
        /// Monthly subscription, paid in advance.
        Prepaid = "PREPAID",
        /// Pay as you go, billed by the hour.
        PostpaidByHour = "POSTPAID_BY_HOUR",
        /// Instance on a dedicated host (CDH).
        Cdhpaid = "CDHPAID",
        /// Spot instance.
        Spotpaid = "SPOTPAID",
        /// Instance in a dedicated cluster (CDC).
        Cdcpaid = "CDCPAID",
    }
}

/// api.json: "默认值：POSTPAID_BY_HOUR".
pub const INSTANCE_CHARGE_TYPE_DEFAULT: InstanceChargeType = InstanceChargeType::PostpaidByHour;

api_enum! {
    /// Disk types (`SystemDisk.DiskType`, `DataDisk.DiskType`). api.json lists the same eight for
    /// both: "LOCAL_BASIC：本地硬盘 / LOCAL_SSD：本地SSD硬盘 / CLOUD_BASIC：普通云硬盘 / CLOUD_SSD：SSD云硬盘 /
    /// CLOUD_PREMIUM：高性能云硬盘 / CLOUD_BSSD：通用型SSD云硬盘 / CLOUD_HSSD：增强型SSD云硬盘 /
    /// CLOUD_TSSD：极速型SSD云硬盘". Data disks also name LOCAL_NVME and LOCAL_PRO, "与InstanceType强相关，
    /// 不支持指定" (they follow the instance type and cannot be asked for), so they are not here.
    DiskType {
        /// Local disk.
        LocalBasic = "LOCAL_BASIC",
        /// Local SSD disk.
        LocalSsd = "LOCAL_SSD",
        /// Basic cloud disk.
        CloudBasic = "CLOUD_BASIC",
        /// SSD cloud disk.
        CloudSsd = "CLOUD_SSD",
        /// Premium cloud disk.
        CloudPremium = "CLOUD_PREMIUM",
        /// Balanced SSD cloud disk.
        CloudBssd = "CLOUD_BSSD",
        /// Enhanced SSD cloud disk.
        CloudHssd = "CLOUD_HSSD",
        /// Tremendous SSD cloud disk.
        CloudTssd = "CLOUD_TSSD",
    }
}

impl DiskType {
    /// Disks local to the host (LOCAL_BASIC, LOCAL_SSD).
    #[must_use]
    pub const fn is_local(self) -> bool {
        matches!(self, DiskType::LocalBasic | DiskType::LocalSsd)
    }

    /// SSD-class cloud disks, which start at [`SSD_DATA_DISK_SIZE_MIN`] GiB as data disks.
    #[must_use]
    pub const fn is_ssd_cloud(self) -> bool {
        matches!(self, DiskType::CloudSsd | DiskType::CloudBssd | DiskType::CloudHssd | DiskType::CloudTssd)
    }
}

/// Type of a data disk given without one. api.json, `DataDisk.DiskType`: "默认取值：LOCAL_BASIC".
/// (The emulator used CLOUD_PREMIUM before; the spec already said LOCAL_BASIC.)
pub const DATA_DISK_DEFAULT_TYPE: DiskType = DiskType::LocalBasic;

/// Type of a system disk given without one. api.json, `SystemDisk.DiskType`: "默认取值：当前有库存的
/// 硬盘类型" (a type in stock); the emulator's stock is CLOUD_PREMIUM.
pub const SYSTEM_DISK_DEFAULT_TYPE: DiskType = DiskType::CloudPremium;

api_enum! {
    /// `InternetAccessible.InternetChargeType`. api.json: "BANDWIDTH_PREPAID：预付费按带宽结算 /
    /// TRAFFIC_POSTPAID_BY_HOUR：流量按小时后付费 / BANDWIDTH_POSTPAID_BY_HOUR：带宽按小时后付费 /
    /// BANDWIDTH_PACKAGE：带宽包用户".
    InternetChargeType {
        /// Prepaid, by bandwidth.
        BandwidthPrepaid = "BANDWIDTH_PREPAID",
        /// Pay as you go, by traffic, billed hourly.
        TrafficPostpaidByHour = "TRAFFIC_POSTPAID_BY_HOUR",
        /// Pay as you go, by bandwidth, billed hourly.
        BandwidthPostpaidByHour = "BANDWIDTH_POSTPAID_BY_HOUR",
        /// Bandwidth package (needs BandwidthPackageId).
        BandwidthPackage = "BANDWIDTH_PACKAGE",
    }
}

/// The emulator's default network billing. api.json: "非带宽包用户默认与子机付费类型保持一致" (follows
/// the instance's billing); the emulator models the pay-as-you-go case.
pub const INTERNET_CHARGE_TYPE_DEFAULT: InternetChargeType = InternetChargeType::TrafficPostpaidByHour;

api_enum! {
    /// `InstanceChargePrepaid.RenewFlag`. api.json: "NOTIFY_AND_AUTO_RENEW：通知过期且自动续费 /
    /// NOTIFY_AND_MANUAL_RENEW：通知过期不自动续费 / DISABLE_NOTIFY_AND_MANUAL_RENEW：不通知过期不自动续费
    /// 默认取值：NOTIFY_AND_MANUAL_RENEW".
    RenewFlag {
        /// Notify before expiry and renew automatically.
        NotifyAndAutoRenew = "NOTIFY_AND_AUTO_RENEW",
        /// Notify before expiry, renew manually.
        NotifyAndManualRenew = "NOTIFY_AND_MANUAL_RENEW",
        /// Do not notify, renew manually.
        DisableNotifyAndManualRenew = "DISABLE_NOTIFY_AND_MANUAL_RENEW",
    }
}

/// api.json: "默认取值：NOTIFY_AND_MANUAL_RENEW".
pub const RENEW_FLAG_DEFAULT: RenewFlag = RenewFlag::NotifyAndManualRenew;

/// Prepaid periods in months. The seed's `InvalidPeriod`: "目前只支持时长：[1, 2, 3, 4, 5, 6, 7, 8, 9,
/// 10, 11, 12, 24, 36]". api.json's `InstanceChargePrepaid.Period` adds 48 and 60; they are left
/// out until the emulator's error table (pinned by the seed) is updated with them, so validate and
/// the emulator keep agreeing on the seed's list.
pub const PREPAID_PERIODS: [u32; 14] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 24, 36];

// ---- numeric limits -------------------------------------------------------------------------

/// Smallest system disk, GiB. api.json says only "系统盘大小，单位：GiB。默认值为 50" and points to
/// the storage overview; 20 is what both earlier copies used.
pub const SYSTEM_DISK_SIZE_MIN: u32 = 20;
/// Largest system disk, GiB. api.json states no maximum (see [`SYSTEM_DISK_SIZE_MIN`]); the spec
/// said 2048, the emulator 1024. 2048 is kept, the more permissive copy (see the module docs).
pub const SYSTEM_DISK_SIZE_MAX: u32 = 2048;
/// api.json: "默认值为 50".
pub const SYSTEM_DISK_SIZE_DEFAULT: u32 = 50;

/// Smallest data disk, GiB, for types without a larger minimum.
pub const DATA_DISK_SIZE_MIN: u32 = 10;
/// Smallest SSD-class cloud data disk ([`DiskType::is_ssd_cloud`]), GiB. api.json: "不同数据盘类型
/// 取值范围不同，具体限制详见存储概述"; the storage overview gives 20 GiB for the SSD classes. (The error
/// table's `InvalidParameterValue.CloudSsdDataDiskSizeTooSmall` still says 100 GB, an older limit.)
/// Enforced by the spec only until now.
pub const SSD_DATA_DISK_SIZE_MIN: u32 = 20;
/// Largest data disk, GiB (both earlier copies; api.json points to the storage overview).
pub const DATA_DISK_SIZE_MAX: u32 = 32_000;
/// api.json: "最小调整步长为10GiB" (sizes in steps of 10 GiB).
pub const DATA_DISK_SIZE_STEP: u32 = 10;

/// api.json, `DataDisks`: "支持购买的时候指定21块数据盘，其中最多包含1块LOCAL_BASIC数据盘或者LOCAL_SSD数据盘，
/// 最多包含20块CLOUD_BASIC数据盘、CLOUD_PREMIUM数据盘或者CLOUD_SSD数据盘". (The seed said one disk.)
pub const MAX_DATA_DISKS: usize = 21;
/// See [`MAX_DATA_DISKS`].
pub const MAX_LOCAL_DATA_DISKS: usize = 1;
/// See [`MAX_DATA_DISKS`].
pub const MAX_CLOUD_DATA_DISKS: usize = 20;

/// Largest `InternetMaxBandwidthOut`, Mbps. api.json: "不同机型带宽上限范围不一致，具体限制详见购买网络
/// 带宽" (document 213/12523); that page's largest cap, of the bandwidth package, is 0 - 2000 Mbps
/// (the per-mode caps, 100 or 200 Mbps, depend on region and billing and are left to the cloud).
/// The spec said 65535, the emulator 1000.
pub const INTERNET_MAX_BANDWIDTH_OUT_MAX: u32 = 2000;

/// Largest `UserData`, in bytes of the decoded data. api.json: "需要以 base64 方式编码，支持的最大数据
/// 大小为 16KB": the limit is on the data, which base64 encodes (the emulator counted the base64
/// text, the spec its 21,848 characters).
pub const USER_DATA_MAX_BYTES: usize = 16 * 1024;
/// Longest base64 text of [`USER_DATA_MAX_BYTES`]: 4 · ⌈16384 / 3⌉ characters.
pub const USER_DATA_MAX_BASE64_CHARS: usize = USER_DATA_MAX_BYTES.div_ceil(3) * 4;

/// Most instances per RunInstances call. The seed: "取值范围：[1，100]"; api.json now says
/// "[1，500]". The seed's range is kept: the emulator's error table pins it, and the reconciler cuts
/// its creates into pools of [`crate::MAX_BATCH`] = 100 anyway.
pub const INSTANCE_COUNT_MAX: u32 = 100;

/// Longest `InstanceName` as written, in characters. api.json: "最多支持128个字符（含模式串）".
pub const INSTANCE_NAME_MAX_CHARS: usize = 128;
/// Longest resulting instance name, in bytes. Error table: `InvalidInstanceName.TooLong`
/// "必须小于等于60字节" (a CJK character is 3 bytes).
pub const INSTANCE_NAME_MAX_BYTES: usize = 60;
/// api.json: "不指定实例显示名称则默认显示‘未命名’".
pub const INSTANCE_NAME_DEFAULT: &str = "未命名";

/// `HostName` lengths in characters. api.json: "Windows 实例：主机名名字符长度为[2, 15] … 其他类型（Linux
/// 等）实例：主机名字符长度为[2, 60]". (The seed says [2, 30] for Linux; api.json is newer.)
pub const HOST_NAME_MIN_CHARS: usize = 2;
/// See [`HOST_NAME_MIN_CHARS`].
pub const HOST_NAME_MAX_CHARS: usize = 60;
/// See [`HOST_NAME_MIN_CHARS`].
pub const WINDOWS_HOST_NAME_MAX_CHARS: usize = 15;

/// Most security groups per instance (the emulator's limit, `InvalidParameterValue.LimitExceeded`).
pub const MAX_SECURITY_GROUPS: usize = 5;
/// Most tags per instance (`InvalidParameterValue.TagQuotaLimitExceeded`).
pub const MAX_TAGS: usize = 50;
/// Longest tag key, characters (`FailedOperation.IllegalTagKey`).
pub const TAG_KEY_MAX_CHARS: usize = 127;
/// Longest tag value, characters (`FailedOperation.IllegalTagValue`).
pub const TAG_VALUE_MAX_CHARS: usize = 255;

/// Most filters in one DescribeInstances request. api.json, `DescribeInstancesRequest.Filters`:
/// "每次请求的`Filters`的上限为10，`Filter.Values`的上限为5"; more answer
/// `InvalidParameterValue.LimitExceeded` (参数值数量超过限制).
pub const MAX_FILTERS: usize = 10;
/// Most values in one DescribeInstances filter (same sentence); more answer
/// `InvalidFilterValue.LimitExceeded` (`Filter`传值超出限制).
pub const MAX_FILTER_VALUES: usize = 5;

/// The DescribeInstances filter on tag keys: instances carrying one of the keys.
pub const FILTER_TAG_KEY: &str = "tag-key";
/// The DescribeInstances filter on tag values: instances with a tag of one of the values.
pub const FILTER_TAG_VALUE: &str = "tag-value";
/// The prefix of the DescribeInstances filter on one tag, `tag:<key>` (api.json: "tag:tag-key
/// … tag-key使用具体的标签键进行替换"); the key may itself hold `:` (`tag:cvmfleet:fleet`).
pub const FILTER_TAG_PREFIX: &str = "tag:";

/// Checks the sizes of a DescribeInstances filter list against [`MAX_FILTERS`] and
/// [`MAX_FILTER_VALUES`], returning the code the API answers and a message.
///
/// # Errors
/// `InvalidParameterValue.LimitExceeded` for too many filters, `InvalidFilterValue.LimitExceeded`
/// for a filter with too many values.
pub fn check_filter_limits(filters: &[crate::model::Filter]) -> Result<(), (&'static str, String)> {
    if filters.len() > MAX_FILTERS {
        return Err((
            codes::INVALID_PARAMETER_VALUE_LIMIT_EXCEEDED,
            format!("{} filters were given; at most {MAX_FILTERS} are allowed.", filters.len()),
        ));
    }
    match filters.iter().find(|f| f.values.len() > MAX_FILTER_VALUES) {
        Some(f) => Err((
            codes::INVALID_FILTER_VALUE_LIMIT_EXCEEDED,
            format!(
                "The filter `{}` has {} values; at most {MAX_FILTER_VALUES} are allowed.",
                f.name,
                f.values.len()
            ),
        )),
        None => Ok(()),
    }
}

/// Tag key prefixes the cloud reserves for its own tags (`FailedOperation.TagKeyReserved`),
/// compared without regard to ASCII case.
pub const RESERVED_TAG_KEY_PREFIXES: [&str; 3] = ["qcloud", "tencent", "project"];

/// Whether a tag key starts with one of [`RESERVED_TAG_KEY_PREFIXES`].
#[must_use]
pub fn is_reserved_tag_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    RESERVED_TAG_KEY_PREFIXES.iter().any(|p| lower.starts_with(p))
}

// ---- rules ----------------------------------------------------------------------------------

/// The sizes a data disk of `kind` may have, GiB.
#[must_use]
pub const fn data_disk_size_range(kind: DiskType) -> (u32, u32) {
    let min = if kind.is_ssd_cloud() { SSD_DATA_DISK_SIZE_MIN } else { DATA_DISK_SIZE_MIN };
    (min, DATA_DISK_SIZE_MAX)
}

/// What is wrong with a data disk's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskSizeProblem {
    /// Below the type's smallest size, GiB.
    TooSmall(u32),
    /// Above the type's largest size, GiB.
    TooLarge(u32),
    /// Not a multiple of [`DATA_DISK_SIZE_STEP`].
    NotAStep,
}

impl DiskSizeProblem {
    /// The error code the API answers with.
    #[must_use]
    pub fn code(self, kind: DiskType) -> &'static str {
        match self {
            DiskSizeProblem::TooSmall(_) if kind.is_ssd_cloud() => codes::CLOUD_SSD_DATA_DISK_SIZE_TOO_SMALL,
            _ => codes::INVALID_PARAMETER_VALUE_RANGE,
        }
    }
}

/// Checks a data disk's size against its type's range and the 10 GiB step.
#[must_use]
pub fn data_disk_size_problem(kind: DiskType, size: i64) -> Option<DiskSizeProblem> {
    let (min, max) = data_disk_size_range(kind);
    if size < i64::from(min) {
        return Some(DiskSizeProblem::TooSmall(min));
    }
    if size > i64::from(max) {
        return Some(DiskSizeProblem::TooLarge(max));
    }
    (size % i64::from(DATA_DISK_SIZE_STEP) != 0).then_some(DiskSizeProblem::NotAStep)
}

/// What is wrong with the set of data disks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskCountProblem {
    /// More than [`MAX_DATA_DISKS`].
    TooMany(usize),
    /// More than [`MAX_LOCAL_DATA_DISKS`] local disks.
    TooManyLocal(usize),
    /// More than [`MAX_CLOUD_DATA_DISKS`] cloud disks.
    TooManyCloud(usize),
}

/// Checks the counts of data disks of the given types (give the default for untyped disks).
#[must_use]
pub fn data_disk_count_problem(types: &[DiskType]) -> Option<DiskCountProblem> {
    let local = types.iter().filter(|t| t.is_local()).count();
    let cloud = types.len() - local;
    if types.len() > MAX_DATA_DISKS {
        Some(DiskCountProblem::TooMany(types.len()))
    } else if local > MAX_LOCAL_DATA_DISKS {
        Some(DiskCountProblem::TooManyLocal(local))
    } else if cloud > MAX_CLOUD_DATA_DISKS {
        Some(DiskCountProblem::TooManyCloud(cloud))
    } else {
        None
    }
}

/// What is wrong with `UserData`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserDataProblem {
    /// Not standard, padded base64.
    NotBase64,
    /// Decodes to more than [`USER_DATA_MAX_BYTES`] bytes.
    TooLarge(usize),
}

/// Checks `UserData`: padded base64 of at most [`USER_DATA_MAX_BYTES`] bytes. Both answers are
/// `InvalidParameterValue.InvalidUserDataFormat`.
pub fn check_user_data(data: &str) -> Result<(), UserDataProblem> {
    // Longer text cannot decode to few enough bytes; do not decode megabytes to find out.
    if data.len() > USER_DATA_MAX_BASE64_CHARS {
        return Err(UserDataProblem::TooLarge(data.len() / 4 * 3));
    }
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(data).map_err(|_| UserDataProblem::NotBase64)?;
    if bytes.len() > USER_DATA_MAX_BYTES {
        return Err(UserDataProblem::TooLarge(bytes.len()));
    }
    Ok(())
}

// ---- instance states ------------------------------------------------------------------------

/// The instance states' spellings as constants, usable in `match` patterns on raw strings
/// (prefer [`InstanceState`] and its predicates).
pub mod state {
    /// 创建中.
    pub const PENDING: &str = "PENDING";
    /// 创建失败.
    pub const LAUNCH_FAILED: &str = "LAUNCH_FAILED";
    /// 运行中.
    pub const RUNNING: &str = "RUNNING";
    /// 关机.
    pub const STOPPED: &str = "STOPPED";
    /// 开机中.
    pub const STARTING: &str = "STARTING";
    /// 关机中.
    pub const STOPPING: &str = "STOPPING";
    /// 重启中.
    pub const REBOOTING: &str = "REBOOTING";
    /// 停止待销毁.
    pub const SHUTDOWN: &str = "SHUTDOWN";
    /// 销毁中.
    pub const TERMINATING: &str = "TERMINATING";
    /// 已销毁.
    pub const TERMINATED: &str = "TERMINATED";
}

/// An instance's state (`Instance.InstanceState`, `InstanceStatus.InstanceState`), as the
/// instance state table (api.json links "实例状态表") spells it. States added later read as
/// [`InstanceState::Unknown`], so an old client keeps working.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InstanceState {
    /// 创建中: being created.
    Pending,
    /// 创建失败: the launch failed.
    LaunchFailed,
    /// 运行中.
    Running,
    /// 关机.
    Stopped,
    /// 开机中.
    Starting,
    /// 关机中.
    Stopping,
    /// 重启中.
    Rebooting,
    /// 停止待销毁 (in the recycle bin).
    Shutdown,
    /// 销毁中.
    Terminating,
    /// 已销毁.
    Terminated,
    /// A state this version does not know.
    Unknown(String),
}

impl InstanceState {
    /// Every known state.
    pub const KNOWN: [InstanceState; 10] = [
        InstanceState::Pending,
        InstanceState::LaunchFailed,
        InstanceState::Running,
        InstanceState::Stopped,
        InstanceState::Starting,
        InstanceState::Stopping,
        InstanceState::Rebooting,
        InstanceState::Shutdown,
        InstanceState::Terminating,
        InstanceState::Terminated,
    ];

    /// The API's spelling.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            InstanceState::Pending => state::PENDING,
            InstanceState::LaunchFailed => state::LAUNCH_FAILED,
            InstanceState::Running => state::RUNNING,
            InstanceState::Stopped => state::STOPPED,
            InstanceState::Starting => state::STARTING,
            InstanceState::Stopping => state::STOPPING,
            InstanceState::Rebooting => state::REBOOTING,
            InstanceState::Shutdown => state::SHUTDOWN,
            InstanceState::Terminating => state::TERMINATING,
            InstanceState::Terminated => state::TERMINATED,
            InstanceState::Unknown(s) => s,
        }
    }

    /// Going away: SHUTDOWN (recycle bin), TERMINATING, TERMINATED.
    #[must_use]
    pub fn is_leaving(&self) -> bool {
        matches!(self, InstanceState::Shutdown | InstanceState::Terminating | InstanceState::Terminated)
    }

    /// On the way to another state: PENDING, STARTING, STOPPING, REBOOTING.
    #[must_use]
    pub fn is_transitional(&self) -> bool {
        matches!(
            self,
            InstanceState::Pending
                | InstanceState::Starting
                | InstanceState::Stopping
                | InstanceState::Rebooting
        )
    }

    /// Stopped or stopping: STOPPED, STOPPING.
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        matches!(self, InstanceState::Stopped | InstanceState::Stopping)
    }

    /// The launch failed: LAUNCH_FAILED.
    #[must_use]
    pub fn is_failed(&self) -> bool {
        matches!(self, InstanceState::LaunchFailed)
    }

    /// RUNNING.
    #[must_use]
    pub fn is_running(&self) -> bool {
        matches!(self, InstanceState::Running)
    }

    /// The `UnsupportedOperation.InstanceState*` code for an operation this state forbids
    /// (plain `UnsupportedOperation` for states without their own code).
    #[must_use]
    pub fn unsupported_code(&self) -> &'static str {
        match self {
            InstanceState::Pending => codes::UNSUPPORTED_OPERATION_INSTANCE_STATE_PENDING,
            InstanceState::LaunchFailed => codes::UNSUPPORTED_OPERATION_INSTANCE_STATE_LAUNCH_FAILED,
            InstanceState::Running => codes::UNSUPPORTED_OPERATION_INSTANCE_STATE_RUNNING,
            InstanceState::Stopped => codes::UNSUPPORTED_OPERATION_INSTANCE_STATE_STOPPED,
            InstanceState::Starting => codes::UNSUPPORTED_OPERATION_INSTANCE_STATE_STARTING,
            InstanceState::Stopping => codes::UNSUPPORTED_OPERATION_INSTANCE_STATE_STOPPING,
            InstanceState::Rebooting => codes::UNSUPPORTED_OPERATION_INSTANCE_STATE_REBOOTING,
            InstanceState::Shutdown => codes::UNSUPPORTED_OPERATION_INSTANCE_STATE_SHUTDOWN,
            InstanceState::Terminating => codes::UNSUPPORTED_OPERATION_INSTANCE_STATE_TERMINATING,
            InstanceState::Terminated => codes::UNSUPPORTED_OPERATION_INSTANCE_STATE_TERMINATED,
            InstanceState::Unknown(_) => codes::UNSUPPORTED_OPERATION,
        }
    }
}

impl From<&str> for InstanceState {
    fn from(text: &str) -> Self {
        InstanceState::KNOWN
            .into_iter()
            .find(|s| s.as_str() == text)
            .unwrap_or_else(|| InstanceState::Unknown(text.to_owned()))
    }
}

impl From<InstanceState> for String {
    fn from(state: InstanceState) -> Self {
        state.as_str().to_owned()
    }
}

impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for InstanceState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for InstanceState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(InstanceState::from(String::deserialize(deserializer)?.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_their_api_strings() {
        for t in DiskType::ALL {
            assert_eq!(DiskType::parse(t.as_str()), Some(*t));
            let json = serde_json::to_string(t).unwrap();
            assert_eq!(serde_json::from_str::<DiskType>(&json).unwrap(), *t);
        }
        assert_eq!(InstanceChargeType::parse("prepaid"), None);
        assert!(serde_json::from_str::<RenewFlag>("\"NEVER\"").is_err());
        assert_eq!(InternetChargeType::names().matches(", ").count(), 3);
    }

    #[test]
    fn states_and_predicates() {
        for s in InstanceState::KNOWN {
            assert_eq!(InstanceState::from(s.as_str()), s);
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(serde_json::from_str::<InstanceState>(&json).unwrap(), s);
        }
        let later: InstanceState = serde_json::from_str("\"HIBERNATING\"").unwrap();
        assert_eq!(later, InstanceState::Unknown("HIBERNATING".into()));
        assert_eq!(later.unsupported_code(), codes::UNSUPPORTED_OPERATION);
        let leaving: Vec<_> = InstanceState::KNOWN.into_iter().filter(InstanceState::is_leaving).collect();
        assert_eq!(leaving, [InstanceState::Shutdown, InstanceState::Terminating, InstanceState::Terminated]);
        assert!(InstanceState::Rebooting.is_transitional() && !InstanceState::Running.is_transitional());
        assert!(InstanceState::Stopping.is_stopped() && InstanceState::LaunchFailed.is_failed());
    }

    #[test]
    fn filter_limits() {
        use crate::model::Filter;
        let five = Filter::new("zone", ["a", "b", "c", "d", "e"]);
        assert!(check_filter_limits(&vec![five.clone(); MAX_FILTERS]).is_ok());
        let (code, _) = check_filter_limits(&vec![five.clone(); MAX_FILTERS + 1]).unwrap_err();
        assert_eq!(code, codes::INVALID_PARAMETER_VALUE_LIMIT_EXCEEDED);
        let six = Filter::new("zone", ["a", "b", "c", "d", "e", "f"]);
        assert_eq!(check_filter_limits(&[six]).unwrap_err().0, codes::INVALID_FILTER_VALUE_LIMIT_EXCEEDED);
    }

    #[test]
    fn disk_rules() {
        assert_eq!(data_disk_size_problem(DiskType::CloudPremium, 10), None);
        assert_eq!(data_disk_size_problem(DiskType::CloudPremium, 15), Some(DiskSizeProblem::NotAStep));
        assert_eq!(data_disk_size_problem(DiskType::CloudHssd, 10), Some(DiskSizeProblem::TooSmall(20)));
        assert!(data_disk_size_problem(DiskType::LocalBasic, 32_010).is_some());
        let two_local = [DiskType::LocalBasic, DiskType::LocalSsd];
        assert_eq!(data_disk_count_problem(&two_local), Some(DiskCountProblem::TooManyLocal(2)));
        assert_eq!(data_disk_count_problem(&[DiskType::CloudSsd; 20]), None);
        assert_eq!(
            data_disk_count_problem(&[DiskType::CloudSsd; 21]),
            Some(DiskCountProblem::TooManyCloud(21))
        );
        assert_eq!(data_disk_count_problem(&[DiskType::CloudSsd; 22]), Some(DiskCountProblem::TooMany(22)));
    }

    #[test]
    fn user_data_limit_is_on_the_decoded_bytes() {
        let b64 = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![7u8; n]);
        assert_eq!(USER_DATA_MAX_BASE64_CHARS, 21_848);
        assert_eq!(b64(USER_DATA_MAX_BYTES).len(), USER_DATA_MAX_BASE64_CHARS);
        assert!(check_user_data(&b64(USER_DATA_MAX_BYTES)).is_ok());
        assert_eq!(check_user_data(&b64(USER_DATA_MAX_BYTES + 1)), Err(UserDataProblem::TooLarge(16_385)));
        assert_eq!(check_user_data("not base64!"), Err(UserDataProblem::NotBase64));
        assert_eq!(check_user_data("aGVsbG8"), Err(UserDataProblem::NotBase64));
        assert!(check_user_data("").is_ok());
    }
}
