//! Error codes of the Tag service, with the descriptions of its error table
//! (`tencentcloud/tag/v20180813/errorcodes.py` of the official Python SDK 3.1.109); the codes
//! each action may answer are those of the Go SDK's doc comments (`tag/v20180813/client.go`).
//! The common codes (`MissingParameter`, `InvalidParameter`, `RequestLimitExceeded`, …) are in
//! [`crate::codes`].

/// `AuthFailure.UnauthorizedOperation`: 未通过CAM鉴权。
pub const AUTH_FAILURE_UNAUTHORIZED_OPERATION: &str = "AuthFailure.UnauthorizedOperation";
/// `FailedOperation.ResourceTagProcessing`: 资源标签正在处理中。
pub const FAILED_OPERATION_RESOURCE_TAG_PROCESSING: &str = "FailedOperation.ResourceTagProcessing";
/// `InvalidParameter.ReservedTagKey`: 系统预留标签键 qcloud、tencent和project 禁止创建。
pub const INVALID_PARAMETER_RESERVED_TAG_KEY: &str = "InvalidParameter.ReservedTagKey";
/// `InvalidParameter.Tag`: Tag参数错误。
pub const INVALID_PARAMETER_TAG: &str = "InvalidParameter.Tag";
/// `InvalidParameter.UnsupportedService`: 当前业务不支持标签操作。
pub const INVALID_PARAMETER_UNSUPPORTED_SERVICE: &str = "InvalidParameter.UnsupportedService";
/// `InvalidParameter.PaginationTokenInvalid`: PaginationToken参数非法。
pub const INVALID_PARAMETER_PAGINATION_TOKEN_INVALID: &str = "InvalidParameter.PaginationTokenInvalid";
/// `InvalidParameterValue.DeleteTagsParamError`: DeleteTags中不能包含ReplaceTags或AddTags中元素。
pub const INVALID_PARAMETER_VALUE_DELETE_TAGS_PARAM_ERROR: &str =
    "InvalidParameterValue.DeleteTagsParamError";
/// `InvalidParameterValue.OffsetInvalid`: offset error。
pub const INVALID_PARAMETER_VALUE_OFFSET_INVALID: &str = "InvalidParameterValue.OffsetInvalid";
/// `InvalidParameterValue.RegionInvalid`: 地域错误。
pub const INVALID_PARAMETER_VALUE_REGION_INVALID: &str = "InvalidParameterValue.RegionInvalid";
/// `InvalidParameterValue.ResourceDescriptionError`: 资源描述错误。
pub const INVALID_PARAMETER_VALUE_RESOURCE_DESCRIPTION_ERROR: &str =
    "InvalidParameterValue.ResourceDescriptionError";
/// `InvalidParameterValue.ResourceIdInvalid`: 资源Id错误。
pub const INVALID_PARAMETER_VALUE_RESOURCE_ID_INVALID: &str = "InvalidParameterValue.ResourceIdInvalid";
/// `InvalidParameterValue.ResourcePrefixInvalid`: 资源前缀错误。
pub const INVALID_PARAMETER_VALUE_RESOURCE_PREFIX_INVALID: &str =
    "InvalidParameterValue.ResourcePrefixInvalid";
/// `InvalidParameterValue.ServiceTypeInvalid`: 业务类型错误。
pub const INVALID_PARAMETER_VALUE_SERVICE_TYPE_INVALID: &str = "InvalidParameterValue.ServiceTypeInvalid";
/// `InvalidParameterValue.TagFilters`: TagFilters参数错误。
pub const INVALID_PARAMETER_VALUE_TAG_FILTERS: &str = "InvalidParameterValue.TagFilters";
/// `InvalidParameterValue.TagFiltersLengthExceeded`: 过滤标签键对应标签值达到上限数 6。
pub const INVALID_PARAMETER_VALUE_TAG_FILTERS_LENGTH_EXCEEDED: &str =
    "InvalidParameterValue.TagFiltersLengthExceeded";
/// `InvalidParameterValue.TagKeyDuplicate`: TagList中存在重复的TagKey。
pub const INVALID_PARAMETER_VALUE_TAG_KEY_DUPLICATE: &str = "InvalidParameterValue.TagKeyDuplicate";
/// `InvalidParameterValue.TagKeyEmpty`: 标签键不能为空值。
pub const INVALID_PARAMETER_VALUE_TAG_KEY_EMPTY: &str = "InvalidParameterValue.TagKeyEmpty";
/// `InvalidParameterValue.TagKeyLengthExceeded`: 标签键长度超过限制。
pub const INVALID_PARAMETER_VALUE_TAG_KEY_LENGTH_EXCEEDED: &str =
    "InvalidParameterValue.TagKeyLengthExceeded";
/// `InvalidParameterValue.TagValueEmpty`: 标签值不能为空值。
pub const INVALID_PARAMETER_VALUE_TAG_VALUE_EMPTY: &str = "InvalidParameterValue.TagValueEmpty";
/// `InvalidParameterValue.TagValueLengthExceeded`: 标签值长度超过限制。
pub const INVALID_PARAMETER_VALUE_TAG_VALUE_LENGTH_EXCEEDED: &str =
    "InvalidParameterValue.TagValueLengthExceeded";
/// `InvalidParameterValue.UinInvalid`: Uin参数不合法。
pub const INVALID_PARAMETER_VALUE_UIN_INVALID: &str = "InvalidParameterValue.UinInvalid";
/// `LimitExceeded.ResourceAttachedTags`: 资源关联的标签数超过限制。
pub const LIMIT_EXCEEDED_RESOURCE_ATTACHED_TAGS: &str = "LimitExceeded.ResourceAttachedTags";
/// `LimitExceeded.ResourceNumPerRequest`: 单次请求的资源数达到上限。
pub const LIMIT_EXCEEDED_RESOURCE_NUM_PER_REQUEST: &str = "LimitExceeded.ResourceNumPerRequest";
/// `LimitExceeded.TagNumPerRequest`: 单次请求的标签数超过上限。
pub const LIMIT_EXCEEDED_TAG_NUM_PER_REQUEST: &str = "LimitExceeded.TagNumPerRequest";

/// Whether `code` refuses a request because of other work in progress, so that the same
/// request later may succeed and nothing was done: `FailedOperation.ResourceTagProcessing`
/// ("资源标签正在处理中", the resource's tags are being changed by another request).
#[must_use]
pub fn is_busy(code: &str) -> bool {
    code == FAILED_OPERATION_RESOURCE_TAG_PROCESSING
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_is_only_the_processing_code() {
        assert!(is_busy(FAILED_OPERATION_RESOURCE_TAG_PROCESSING));
        assert!(!is_busy(INVALID_PARAMETER_TAG));
        assert!(!is_busy("FailedOperation"));
    }
}
