//! Error codes of the CVM API as constants, so that the emulator answers, the client's retry
//! classification and the reconciler's checks compare against one spelling. The descriptions are
//! the error table's (`errorcodes.tsv` of `cvm-2017-03-12`, or the common error codes), shortened.
//!
//! A code's family is what its prefix says: [`is_throttling`] and [`is_server_fault`] are the two
//! families the client's retry policy tells apart.

// ---- Common and parameter errors ----
/// `DryRunOperation`.
pub const DRY_RUN_OPERATION: &str = "DryRunOperation";
/// `MissingParameter`: 缺少参数错误。
pub const MISSING_PARAMETER: &str = "MissingParameter";
/// `UnknownParameter`: 未知参数错误。
pub const UNKNOWN_PARAMETER: &str = "UnknownParameter";
/// `InvalidParameter`: 参数错误。
pub const INVALID_PARAMETER: &str = "InvalidParameter";
/// `InvalidParameterValue`: 参数取值错误。
pub const INVALID_PARAMETER_VALUE: &str = "InvalidParameterValue";
/// `InvalidParameterValue.Range`: 无效参数值。参数值取值范围不合法。
pub const INVALID_PARAMETER_VALUE_RANGE: &str = "InvalidParameterValue.Range";
/// `InvalidParameterValue.LimitExceeded`: 参数值数量超过限制。
pub const INVALID_PARAMETER_VALUE_LIMIT_EXCEEDED: &str = "InvalidParameterValue.LimitExceeded";
/// `InvalidParameterCombination`: 表示参数组合不正确。
pub const INVALID_PARAMETER_COMBINATION: &str = "InvalidParameterCombination";
/// `InvalidParameter.ParameterConflict`: 不支持同时指定密钥登录和保持镜像登录方式。
pub const INVALID_PARAMETER_PARAMETER_CONFLICT: &str = "InvalidParameter.ParameterConflict";
/// `InvalidAction`.
pub const INVALID_ACTION: &str = "InvalidAction";
/// `UnsupportedRegion`.
pub const UNSUPPORTED_REGION: &str = "UnsupportedRegion";
/// `RequestSizeLimitExceeded`.
pub const REQUEST_SIZE_LIMIT_EXCEEDED: &str = "RequestSizeLimitExceeded";

// ---- Service faults and throttling (the client's retry classification) ----
/// `InternalError`: 内部错误。
pub const INTERNAL_ERROR: &str = "InternalError";
/// `InternalError.TradeUnknownError`: 内部错误
pub const INTERNAL_ERROR_TRADE_UNKNOWN_ERROR: &str = "InternalError.TradeUnknownError";
/// `InternalServerError`: 操作内部错误。
pub const INTERNAL_SERVER_ERROR: &str = "InternalServerError";
/// `ServiceUnavailable`.
pub const SERVICE_UNAVAILABLE: &str = "ServiceUnavailable";
/// `RequestLimitExceeded`.
pub const REQUEST_LIMIT_EXCEEDED: &str = "RequestLimitExceeded";
/// `RequestLimitExceeded.UinLimitExceeded`.
pub const REQUEST_LIMIT_EXCEEDED_UIN_LIMIT_EXCEEDED: &str = "RequestLimitExceeded.UinLimitExceeded";
/// `RequestLimitExceeded.IPLimitExceeded`.
pub const REQUEST_LIMIT_EXCEEDED_IP_LIMIT_EXCEEDED: &str = "RequestLimitExceeded.IPLimitExceeded";
/// `RequestLimitExceeded.GlobalRegionUinLimitExceeded`.
pub const REQUEST_LIMIT_EXCEEDED_GLOBAL_REGION_UIN_LIMIT_EXCEEDED: &str =
    "RequestLimitExceeded.GlobalRegionUinLimitExceeded";

// ---- Authentication ----
/// `AuthFailure.InvalidAuthorization`.
pub const AUTH_FAILURE_INVALID_AUTHORIZATION: &str = "AuthFailure.InvalidAuthorization";
/// `AuthFailure.SecretIdNotFound`.
pub const AUTH_FAILURE_SECRET_ID_NOT_FOUND: &str = "AuthFailure.SecretIdNotFound";
/// `AuthFailure.SignatureExpire`.
pub const AUTH_FAILURE_SIGNATURE_EXPIRE: &str = "AuthFailure.SignatureExpire";
/// `AuthFailure.SignatureFailure`.
pub const AUTH_FAILURE_SIGNATURE_FAILURE: &str = "AuthFailure.SignatureFailure";

// ---- RunInstances ----
/// `AccountQualificationRestrictions`: 该请求账户未通过资格审计。
pub const ACCOUNT_QUALIFICATION_RESTRICTIONS: &str = "AccountQualificationRestrictions";
/// `InstancesQuotaLimitExceeded`: 表示当前创建的实例个数超过了该账户允许购买的剩余配额数。
pub const INSTANCES_QUOTA_LIMIT_EXCEEDED: &str = "InstancesQuotaLimitExceeded";
/// `InvalidClientToken.TooLong`: 指定的ClientToken字符串长度超出限制，必须小于等于64字节。
pub const INVALID_CLIENT_TOKEN_TOO_LONG: &str = "InvalidClientToken.TooLong";
/// `InvalidZone.MismatchRegion`: 指定的`zone`不存在。
pub const INVALID_ZONE_MISMATCH_REGION: &str = "InvalidZone.MismatchRegion";
/// `InvalidParameterValue.ZoneNotSupported`: 请求不支持该可用区
pub const INVALID_PARAMETER_VALUE_ZONE_NOT_SUPPORTED: &str = "InvalidParameterValue.ZoneNotSupported";
/// `InvalidImageId.Malformed`: 错误的镜像Id格式。
pub const INVALID_IMAGE_ID_MALFORMED: &str = "InvalidImageId.Malformed";
/// `InvalidImageId.NotFound`: 未找到该镜像。
pub const INVALID_IMAGE_ID_NOT_FOUND: &str = "InvalidImageId.NotFound";
/// `InvalidPeriod`: 无效时长。目前只支持时长：[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 24, 36]，单位：月。
pub const INVALID_PERIOD: &str = "InvalidPeriod";
/// `InvalidInstanceType.Malformed`: 指定InstanceType参数格式不合法。
pub const INVALID_INSTANCE_TYPE_MALFORMED: &str = "InvalidInstanceType.Malformed";
/// `InvalidParameterValue.InstanceTypeNotFound`: 指定机型不存在
pub const INVALID_PARAMETER_VALUE_INSTANCE_TYPE_NOT_FOUND: &str =
    "InvalidParameterValue.InstanceTypeNotFound";
/// `InvalidPermission`: 账户不支持该操作。
pub const INVALID_PERMISSION: &str = "InvalidPermission";
/// `ResourceUnavailable.InstanceType`: 该可用区不售卖此机型
pub const RESOURCE_UNAVAILABLE_INSTANCE_TYPE: &str = "ResourceUnavailable.InstanceType";
/// `InvalidHostId.Malformed`: 无效[CDH](https://cloud.tencent.com/document/product/416)
/// `ID`。指定的[CDH](https://cloud.tencent.com/document/product/416) `ID`格式错误。例如`ID`长度错误`host-1122`。
pub const INVALID_HOST_ID_MALFORMED: &str = "InvalidHostId.Malformed";
/// `InvalidHostId.NotFound`: 指定的HostId不存在，或不属于该请求账号所有。
pub const INVALID_HOST_ID_NOT_FOUND: &str = "InvalidHostId.NotFound";
/// `ResourceInsufficient.SpecifiedInstanceType`: 指定的实例类型库存不足。
pub const RESOURCE_INSUFFICIENT_SPECIFIED_INSTANCE_TYPE: &str = "ResourceInsufficient.SpecifiedInstanceType";
/// `InvalidInstanceName.TooLong`: 指定的InstanceName字符串长度超出限制，必须小于等于60字节。
pub const INVALID_INSTANCE_NAME_TOO_LONG: &str = "InvalidInstanceName.TooLong";
/// `InvalidParameterValue.IllegalHostName`: HostName参数值不合法
pub const ILLEGAL_HOST_NAME: &str = "InvalidParameterValue.IllegalHostName";
/// `InvalidPassword`: 无效密码。指定的密码不符合密码复杂度限制。例如密码长度不符合限制等。
pub const INVALID_PASSWORD: &str = "InvalidPassword";
/// `UnsupportedOperation.KeyPairUnsupportedWindows`: 密钥不支持Windows操作系统
pub const UNSUPPORTED_OPERATION_KEY_PAIR_UNSUPPORTED_WINDOWS: &str =
    "UnsupportedOperation.KeyPairUnsupportedWindows";
/// `InvalidKeyPairId.Malformed`: 无效密钥对ID。指定的密钥对ID格式错误，例如 `ID` 长度错误`skey-1122`。
pub const INVALID_KEY_PAIR_ID_MALFORMED: &str = "InvalidKeyPairId.Malformed";
/// `InvalidKeyPairId.NotFound`: 无效密钥对ID。指定的密钥对ID不存在。
pub const INVALID_KEY_PAIR_ID_NOT_FOUND: &str = "InvalidKeyPairId.NotFound";
/// `InvalidSgId.Malformed`: 指定的`安全组ID`格式错误，例如`实例ID`长度错误`sg-ide32`。
pub const INVALID_SG_ID_MALFORMED: &str = "InvalidSgId.Malformed";
/// `InvalidSecurityGroupId.NotFound`: 指定的`安全组ID`不存在。
pub const INVALID_SECURITY_GROUP_ID_NOT_FOUND: &str = "InvalidSecurityGroupId.NotFound";
/// `InvalidParameterValue.CloudSsdDataDiskSizeTooSmall`: SSD云硬盘为数据盘时，购买大小不得小于100GB
pub const CLOUD_SSD_DATA_DISK_SIZE_TOO_SMALL: &str = "InvalidParameterValue.CloudSsdDataDiskSizeTooSmall";
/// `InvalidParameterValue.InvalidUserDataFormat`: UserData格式错误, 需要base64编码格式
pub const INVALID_USER_DATA_FORMAT: &str = "InvalidParameterValue.InvalidUserDataFormat";
/// `InvalidParameterValue.VpcIdMalformed`: VPC ID`xxx`不合要求，请提供规范的Vpc ID，
/// 类似vpc-xxxxxxxx，字母x代表小写字符或者数字。
pub const INVALID_PARAMETER_VALUE_VPC_ID_MALFORMED: &str = "InvalidParameterValue.VpcIdMalformed";
/// `InvalidParameterValue.VpcIdNotExist`: 指定的VpcId不存在。
pub const INVALID_PARAMETER_VALUE_VPC_ID_NOT_EXIST: &str = "InvalidParameterValue.VpcIdNotExist";
/// `InvalidParameterValue.SubnetIdMalformed`: 子网ID不合要求，请提供规范的子网ID，类似subnet-xxxxxxxx，字母x代表小写字符或者数字
pub const INVALID_PARAMETER_VALUE_SUBNET_ID_MALFORMED: &str = "InvalidParameterValue.SubnetIdMalformed";
/// `InvalidParameterValue.SubnetNotExist`: 创建失败，您指定的子网不存在，请您重新指定
pub const INVALID_PARAMETER_VALUE_SUBNET_NOT_EXIST: &str = "InvalidParameterValue.SubnetNotExist";
/// `InvalidParameterValue.VpcIdSubnetIdNotMatch`: 指定的VpcId和SubnetId不匹配。
pub const INVALID_PARAMETER_VALUE_VPC_ID_SUBNET_ID_NOT_MATCH: &str =
    "InvalidParameterValue.VpcIdSubnetIdNotMatch";
/// `InvalidParameterValue.SubnetIdZoneIdNotMatch`: 子网ID所在可用区与实例所在区不匹配。
pub const INVALID_PARAMETER_VALUE_SUBNET_ID_ZONE_ID_NOT_MATCH: &str =
    "InvalidParameterValue.SubnetIdZoneIdNotMatch";
/// `InvalidParameter.InvalidIpFormat`: 指定的私有网络ip格式不正确。
pub const INVALID_PARAMETER_INVALID_IP_FORMAT: &str = "InvalidParameter.InvalidIpFormat";
/// `VpcAddrNotInSubNet`: 私有网络ip不在子网内。
pub const VPC_ADDR_NOT_IN_SUB_NET: &str = "VpcAddrNotInSubNet";
/// `VpcIpIsUsed`: 私有网络ip已经被使用。
pub const VPC_IP_IS_USED: &str = "VpcIpIsUsed";
/// `FailedOperation.NoAvailableIpAddressCountInSubnet`: 子网可用IP已耗尽。
pub const FAILED_OPERATION_NO_AVAILABLE_IP_ADDRESS_COUNT_IN_SUBNET: &str =
    "FailedOperation.NoAvailableIpAddressCountInSubnet";
/// `ResourcesSoldOut.EipInsufficient`: 公网IP已售罄。
pub const RESOURCES_SOLD_OUT_EIP_INSUFFICIENT: &str = "ResourcesSoldOut.EipInsufficient";
/// `InvalidParameterValue.TagQuotaLimitExceeded`: 标签配额超限。
pub const INVALID_PARAMETER_VALUE_TAG_QUOTA_LIMIT_EXCEEDED: &str =
    "InvalidParameterValue.TagQuotaLimitExceeded";
/// `FailedOperation.IllegalTagKey`: 标签键存在不合法字符
pub const FAILED_OPERATION_ILLEGAL_TAG_KEY: &str = "FailedOperation.IllegalTagKey";
/// `FailedOperation.IllegalTagValue`: 标签值存在不合法字符。
pub const FAILED_OPERATION_ILLEGAL_TAG_VALUE: &str = "FailedOperation.IllegalTagValue";
/// `FailedOperation.TagKeyReserved`: 请求中指定的标签键为系统预留标签，禁止创建
pub const FAILED_OPERATION_TAG_KEY_RESERVED: &str = "FailedOperation.TagKeyReserved";
/// `InvalidParameterValue.BandwidthPackageIdMalformed`: 共享带宽包ID不合要求 (类似bwp-xxxxxxxx).
pub const INVALID_PARAMETER_VALUE_BANDWIDTH_PACKAGE_ID_MALFORMED: &str =
    "InvalidParameterValue.BandwidthPackageIdMalformed";
/// `UnsupportedOperation.BandwidthPackageIdNotSupported`: 指定的实例付费模式或者网络付费模式不支持共享带宽包.
pub const UNSUPPORTED_OPERATION_BANDWIDTH_PACKAGE_ID_NOT_SUPPORTED: &str =
    "UnsupportedOperation.BandwidthPackageIdNotSupported";

// ---- Stock and prices (RunInstances, DescribeZoneInstanceConfigInfos, InquiryPriceRunInstances) ----
// Which action may answer which code: the per-action lists of the Go SDK
// (`tencentcloud/cvm/v20170312/client.go`, v1.3.166). RunInstances lists
// ResourceInsufficient.SpecifiedInstanceType, ResourcesSoldOut.SpecifiedInstanceType,
// ResourceInsufficient.AvailabilityZoneSoldOut, ResourceInsufficient.InsufficientOfferingMinimum,
// InvalidParameterValue.InsufficientOffering and .InsufficientPrice;
// ResourceInsufficient.ZoneSoldOutForSpecifiedInstance and ResourcesSoldOut.AvailableZone appear
// only for other actions (AllocateHosts; ResetInstancesType, PurchaseResourcePoolPacks).
// InquiryPriceRunInstances lists ResourcesSoldOut.SpecifiedInstanceType and
// FailedOperation.InquiryPriceFailed; DescribeZoneInstanceConfigInfos
// ResourceInsufficient.AvailabilityZoneSoldOut.
/// `ResourcesSoldOut.SpecifiedInstanceType`: 指定的实例类型已售罄。 The emulator's answer when the
/// offering (zone, instance type, charge type) has no stock left at all.
pub const RESOURCES_SOLD_OUT_SPECIFIED_INSTANCE_TYPE: &str = "ResourcesSoldOut.SpecifiedInstanceType";
/// `ResourceInsufficient.ZoneSoldOutForSpecifiedInstance`: 指定的实例类型在选择的可用区已售罄。 Listed
/// by the Go SDK for AllocateHosts only; the emulator does not answer it to RunInstances.
pub const RESOURCE_INSUFFICIENT_ZONE_SOLD_OUT_FOR_SPECIFIED_INSTANCE: &str =
    "ResourceInsufficient.ZoneSoldOutForSpecifiedInstance";
/// `ResourceInsufficient.AvailabilityZoneSoldOut`: 该可用区已售罄。 The emulator's answer when every
/// instance type of the zone is sold out for the charge type.
pub const RESOURCE_INSUFFICIENT_AVAILABILITY_ZONE_SOLD_OUT: &str =
    "ResourceInsufficient.AvailabilityZoneSoldOut";
/// `ResourcesSoldOut.AvailableZone`: 该可用区已售罄。 (Not a RunInstances code.)
pub const RESOURCES_SOLD_OUT_AVAILABLE_ZONE: &str = "ResourcesSoldOut.AvailableZone";
/// `ResourceInsufficient.InsufficientOfferingMinimum`: 库存不满足最小数量。 RunInstances with `MinCount`
/// when the stock cannot deliver even that many.
pub const RESOURCE_INSUFFICIENT_INSUFFICIENT_OFFERING_MINIMUM: &str =
    "ResourceInsufficient.InsufficientOfferingMinimum";
/// `InvalidParameterValue.InsufficientOffering`: 竞价数量不足。 The emulator's answer when a SPOTPAID
/// offering is short (spot stock), in place of the two codes above.
pub const INVALID_PARAMETER_VALUE_INSUFFICIENT_OFFERING: &str = "InvalidParameterValue.InsufficientOffering";
/// `InvalidParameterValue.InsufficientPrice`: 竞价失败。 A SPOTPAID bid
/// (`InstanceMarketOptions.SpotOptions.MaxPrice`) below the current spot price.
pub const INVALID_PARAMETER_VALUE_INSUFFICIENT_PRICE: &str = "InvalidParameterValue.InsufficientPrice";
/// `FailedOperation.InquiryPriceFailed`: 询价失败。 InquiryPriceRunInstances for a configuration
/// without a price.
pub const FAILED_OPERATION_INQUIRY_PRICE_FAILED: &str = "FailedOperation.InquiryPriceFailed";

/// The codes that say an offering (zone, instance type, charge type) has not enough stock for
/// the request: a planning signal (choose another offering, or wait), not a fault to retry and
/// not a mistake in the request. `InvalidParameterValue.InsufficientPrice` (a spot bid too low)
/// is not among them.
pub const STOCK_SHORTAGE_CODES: [&str; 7] = [
    RESOURCE_INSUFFICIENT_SPECIFIED_INSTANCE_TYPE,
    RESOURCES_SOLD_OUT_SPECIFIED_INSTANCE_TYPE,
    RESOURCE_INSUFFICIENT_ZONE_SOLD_OUT_FOR_SPECIFIED_INSTANCE,
    RESOURCE_INSUFFICIENT_AVAILABILITY_ZONE_SOLD_OUT,
    RESOURCES_SOLD_OUT_AVAILABLE_ZONE,
    RESOURCE_INSUFFICIENT_INSUFFICIENT_OFFERING_MINIMUM,
    INVALID_PARAMETER_VALUE_INSUFFICIENT_OFFERING,
];

/// Whether `code` says the offering is short of stock ([`STOCK_SHORTAGE_CODES`]).
#[must_use]
pub fn is_stock_shortage(code: &str) -> bool {
    STOCK_SHORTAGE_CODES.contains(&code)
}

// ---- Instances by ID, states (Terminate/Start/Stop/Modify, Describe) ----
/// `InvalidInstanceId.Malformed`: 无效实例`ID`。指定的实例`ID`格式错误。例如实例`ID`长度错误`ins-1122`。
pub const INVALID_INSTANCE_ID_MALFORMED: &str = "InvalidInstanceId.Malformed";
/// `InvalidInstanceId.NotFound`: 没有找到相应实例。
pub const INVALID_INSTANCE_ID_NOT_FOUND: &str = "InvalidInstanceId.NotFound";
/// `InvalidParameterValue.InstanceIdMalformed`: 实例ID不合要求，请提供规范的实例ID，类似ins-xxxxxxxx，字母x代表小写字符或数字。
pub const INVALID_PARAMETER_VALUE_INSTANCE_ID_MALFORMED: &str = "InvalidParameterValue.InstanceIdMalformed";
/// `InvalidParameterValue.IPAddressMalformed`: IP格式非法。
pub const INVALID_PARAMETER_VALUE_IP_ADDRESS_MALFORMED: &str = "InvalidParameterValue.IPAddressMalformed";
/// `InvalidFilter`: 无效的过滤器。
pub const INVALID_FILTER: &str = "InvalidFilter";
/// `InvalidFilterValue.LimitExceeded`: [`Filter`](/document/api/213/15753#Filter)传值超出限制。
pub const INVALID_FILTER_VALUE_LIMIT_EXCEEDED: &str = "InvalidFilterValue.LimitExceeded";
/// `InvalidParameter.InvalidParameterCoexistImageIdsFilters`: 不能同时指定ImageIds和Filters。
pub const INVALID_PARAMETER_INVALID_PARAMETER_COEXIST_IMAGE_IDS_FILTERS: &str =
    "InvalidParameter.InvalidParameterCoexistImageIdsFilters";
/// `UnsupportedOperation`: 操作不支持。
pub const UNSUPPORTED_OPERATION: &str = "UnsupportedOperation";
/// `UnsupportedOperation.InstancesProtected`: 不支持已启用销毁保护的实例，请先到设置实例销毁保护，关闭实例销毁保护，然后重试。
pub const UNSUPPORTED_OPERATION_INSTANCES_PROTECTED: &str = "UnsupportedOperation.InstancesProtected";
/// `UnsupportedOperation.InstanceMixedPricingModel`: 不支持混合付费模式。
pub const UNSUPPORTED_OPERATION_INSTANCE_MIXED_PRICING_MODEL: &str =
    "UnsupportedOperation.InstanceMixedPricingModel";
/// `UnsupportedOperation.InstanceStatePending`: 请求不支持创建未完成的实例
pub const UNSUPPORTED_OPERATION_INSTANCE_STATE_PENDING: &str = "UnsupportedOperation.InstanceStatePending";
/// `UnsupportedOperation.InstanceStateLaunchFailed`: 不支持操作创建失败的实例。
pub const UNSUPPORTED_OPERATION_INSTANCE_STATE_LAUNCH_FAILED: &str =
    "UnsupportedOperation.InstanceStateLaunchFailed";
/// `UnsupportedOperation.InstanceStateRunning`: 请求不支持开机状态的实例
pub const UNSUPPORTED_OPERATION_INSTANCE_STATE_RUNNING: &str = "UnsupportedOperation.InstanceStateRunning";
/// `UnsupportedOperation.InstanceStateStopped`: 请求不支持已关机的实例
pub const UNSUPPORTED_OPERATION_INSTANCE_STATE_STOPPED: &str = "UnsupportedOperation.InstanceStateStopped";
/// `UnsupportedOperation.InstanceStateStarting`: 实例开机中，不允许该操作。
pub const UNSUPPORTED_OPERATION_INSTANCE_STATE_STARTING: &str = "UnsupportedOperation.InstanceStateStarting";
/// `UnsupportedOperation.InstanceStateStopping`: 请求不支持正在关机的实例
pub const UNSUPPORTED_OPERATION_INSTANCE_STATE_STOPPING: &str = "UnsupportedOperation.InstanceStateStopping";
/// `UnsupportedOperation.InstanceStateRebooting`: 请求不支持正在重启的实例
pub const UNSUPPORTED_OPERATION_INSTANCE_STATE_REBOOTING: &str =
    "UnsupportedOperation.InstanceStateRebooting";
/// `UnsupportedOperation.InstanceStateShutdown`: 请求不支持隔离状态的实例
pub const UNSUPPORTED_OPERATION_INSTANCE_STATE_SHUTDOWN: &str = "UnsupportedOperation.InstanceStateShutdown";
/// `UnsupportedOperation.InstanceStateTerminating`: 请求不支持正在销毁的实例
pub const UNSUPPORTED_OPERATION_INSTANCE_STATE_TERMINATING: &str =
    "UnsupportedOperation.InstanceStateTerminating";
/// `UnsupportedOperation.InstanceStateTerminated`: 不支持已销毁的实例
pub const UNSUPPORTED_OPERATION_INSTANCE_STATE_TERMINATED: &str =
    "UnsupportedOperation.InstanceStateTerminated";

/// Whether `code` is a throttling answer: `RequestLimitExceeded` or one of its sub-codes.
#[must_use]
pub fn is_throttling(code: &str) -> bool {
    in_family(code, REQUEST_LIMIT_EXCEEDED)
}

/// Whether `code` reports a fault of the service itself: `InternalError` (and its sub-codes),
/// `InternalServerError` or `ServiceUnavailable`.
#[must_use]
pub fn is_server_fault(code: &str) -> bool {
    in_family(code, INTERNAL_ERROR) || code == INTERNAL_SERVER_ERROR || code == SERVICE_UNAVAILABLE
}

/// Whether `code` is `family` or `family.<sub-code>`.
#[must_use]
pub fn in_family(code: &str, family: &str) -> bool {
    code.strip_prefix(family).is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families() {
        assert!(is_throttling(REQUEST_LIMIT_EXCEEDED_UIN_LIMIT_EXCEEDED));
        assert!(!is_throttling("RequestLimitExceededButNotReally"));
        assert!(is_server_fault(INTERNAL_ERROR_TRADE_UNKNOWN_ERROR) && is_server_fault(SERVICE_UNAVAILABLE));
        assert!(!is_server_fault("InternalErrorish"));
        assert!(in_family(UNSUPPORTED_OPERATION_INSTANCE_STATE_PENDING, UNSUPPORTED_OPERATION));
        assert!(is_stock_shortage(RESOURCES_SOLD_OUT_SPECIFIED_INSTANCE_TYPE));
        assert!(is_stock_shortage(INVALID_PARAMETER_VALUE_INSUFFICIENT_OFFERING));
        assert!(!is_stock_shortage(INVALID_PARAMETER_VALUE_INSUFFICIENT_PRICE));
        assert!(!is_stock_shortage(INSTANCES_QUOTA_LIMIT_EXCEEDED));
    }
}
