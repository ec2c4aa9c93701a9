//! Request and response bodies of the Tag actions cvmfleet speaks. As for CVM, requests reject
//! unknown top-level parameters and responses ignore unknown fields. Required list and string
//! parameters default to empty when absent so that the emulator can answer `MissingParameter`
//! itself, as the service does.

use serde::{Deserialize, Serialize};

use super::model::{
    FailedResource, ResourceTag, ResourceTagMapping, Tag, TagFilter, TagKeyObject, TagResource,
};
use crate::action::Action;
use crate::api::{ApiRequest, EmptyResponse};
use crate::model::null_as_default;

macro_rules! bind {
    ($req:ty, $action:ident, $resp:ty) => {
        impl ApiRequest for $req {
            const ACTION: Action = Action::$action;
            type Response = $resp;
        }
    };
}

/// TagResources: bind tags to resources, creating the tags as needed. A key a resource already
/// carries gets the new value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct TagResourcesRequest {
    /// Six-segment resource names, at most [`super::MAX_RESOURCES_PER_CALL`].
    #[serde(default)]
    pub resource_list: Vec<String>,
    /// Tags to bind, at most [`super::MAX_TAGS_PER_CALL`].
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// The result of TagResources and UnTagResources: the resources the change failed for (empty
/// when it succeeded for all).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FailedResourcesResponse {
    /// Resources the change failed for, with why.
    #[serde(default, deserialize_with = "null_as_default")]
    pub failed_resources: Vec<FailedResource>,
}
bind!(TagResourcesRequest, TagResources, FailedResourcesResponse);

/// UnTagResources: unbind tag keys from resources. A key a resource does not carry is no error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct UnTagResourcesRequest {
    /// Six-segment resource names, at most [`super::MAX_RESOURCES_PER_CALL`].
    #[serde(default)]
    pub resource_list: Vec<String>,
    /// Keys to remove, at most [`super::MAX_TAGS_PER_CALL`].
    #[serde(default)]
    pub tag_keys: Vec<String>,
}
bind!(UnTagResourcesRequest, UnTagResources, FailedResourcesResponse);

/// ModifyResourceTags: set and remove tags of one resource at once. At least one of the two
/// lists must be given, neither may be empty, and they may not share a key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ModifyResourceTagsRequest {
    /// Six-segment resource name.
    #[serde(default)]
    pub resource: String,
    /// Tags to add or change, at most [`super::MAX_TAGS_PER_CALL`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replace_tags: Option<Vec<Tag>>,
    /// Keys to remove, at most [`super::MAX_TAGS_PER_CALL`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_tags: Option<Vec<TagKeyObject>>,
}
bind!(ModifyResourceTagsRequest, ModifyResourceTags, EmptyResponse);

/// DescribeResourcesByTags: resources whose tags match every filter, in every region unless
/// `ResourceRegion` narrows it, paged by `Offset`/`Limit` (the offset a multiple of the limit).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeResourcesByTagsRequest {
    /// Tag filters, at least one and at most [`super::MAX_TAG_FILTERS`].
    #[serde(default)]
    pub tag_filters: Vec<TagFilter>,
    /// Only tags created by this account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_uin: Option<u64>,
    /// Offset, a multiple of `Limit`; default 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Page size, default [`super::DEFAULT_PAGE_LIMIT`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Resource prefix, e.g. `instance`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_prefix: Option<String>,
    /// One resource ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// One region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_region: Option<String>,
    /// Service, e.g. `cvm`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_type: Option<String>,
}

/// DescribeResourcesByTags result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeResourcesByTagsResponse {
    /// Matches across all pages.
    #[serde(default, deserialize_with = "null_as_default")]
    pub total_count: u64,
    /// The page's offset.
    #[serde(default, deserialize_with = "null_as_default")]
    pub offset: u64,
    /// The page's size.
    #[serde(default, deserialize_with = "null_as_default")]
    pub limit: u64,
    /// This page.
    #[serde(default, deserialize_with = "null_as_default")]
    pub rows: Vec<ResourceTag>,
}
bind!(DescribeResourcesByTagsRequest, DescribeResourcesByTags, DescribeResourcesByTagsResponse);

/// DescribeResourceTagsByResourceIds: the tags of given resources of one service and region,
/// one row per (resource, tag), paged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DescribeResourceTagsByResourceIdsRequest {
    /// Service, e.g. `cvm`.
    #[serde(default)]
    pub service_type: String,
    /// Resource prefix, e.g. `instance`.
    #[serde(default)]
    pub resource_prefix: String,
    /// Resource IDs, at most [`super::MAX_RESOURCE_IDS_PER_DESCRIBE`].
    #[serde(default)]
    pub resource_ids: Vec<String>,
    /// Region of the resources.
    #[serde(default)]
    pub resource_region: String,
    /// Offset, a multiple of `Limit`; default 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Page size, default [`super::DEFAULT_PAGE_LIMIT`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// `Custom`, `System` or `All` (default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

/// DescribeResourceTagsByResourceIds result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeResourceTagsByResourceIdsResponse {
    /// Rows across all pages.
    #[serde(default, deserialize_with = "null_as_default")]
    pub total_count: u64,
    /// The page's offset.
    #[serde(default, deserialize_with = "null_as_default")]
    pub offset: u64,
    /// The page's size.
    #[serde(default, deserialize_with = "null_as_default")]
    pub limit: u64,
    /// This page: one row per (resource, tag).
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: Vec<TagResource>,
}
bind!(
    DescribeResourceTagsByResourceIdsRequest,
    DescribeResourceTagsByResourceIds,
    DescribeResourceTagsByResourceIdsResponse
);

/// GetResources: resources with their tags, by resource names (then every match at once) or by
/// tag filters, paged by an opaque token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct GetResourcesRequest {
    /// Six-segment resource names, at most [`super::MAX_RESOURCES_PER_CALL`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_list: Option<Vec<String>>,
    /// Tag filters, at most [`super::MAX_TAG_FILTERS`] of at most
    /// [`super::GET_RESOURCES_MAX_FILTER_VALUES`] values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag_filters: Option<Vec<TagFilter>>,
    /// The previous page's token; absent or empty for the first page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pagination_token: Option<String>,
    /// Page size, default [`super::GET_RESOURCES_DEFAULT_MAX_RESULTS`], at most
    /// [`super::GET_RESOURCES_MAX_RESULTS`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_results: Option<u64>,
}

/// GetResources result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetResourcesResponse {
    /// The next page's token; empty on the last page.
    #[serde(default, deserialize_with = "null_as_default")]
    pub pagination_token: String,
    /// This page.
    #[serde(default, deserialize_with = "null_as_default")]
    pub resource_tag_mapping_list: Vec<ResourceTagMapping>,
}
bind!(GetResourcesRequest, GetResources, GetResourcesResponse);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flat;

    /// The request examples of `tag-2018-08-13/examples.json` read into the typed requests
    /// (unknown names would be refused) and write back the same JSON.
    #[test]
    fn the_api_examples_round_trip() {
        let tag = serde_json::json!({
            "ResourceList": ["qcs::cvm:ap-beijing:uin/10000055****:instance/ins-****"],
            "Tags": [{"TagKey": "11", "TagValue": "11"}, {"TagKey": "22", "TagValue": "22"}]
        });
        let req: TagResourcesRequest = serde_json::from_value(tag.clone()).unwrap();
        assert_eq!(serde_json::to_value(&req).unwrap(), tag);
        let modify = serde_json::json!({
            "DeleteTags": [{"TagKey": "testTagKey2"}, {"TagKey": "testTagKey1"}],
            "Resource": "qcs::cvm:ap-beijing:uin/1234567:instance/ins-123"
        });
        let req: ModifyResourceTagsRequest = serde_json::from_value(modify).unwrap();
        assert_eq!(req.delete_tags.map(|d| d.len()), Some(2));
        let untag = serde_json::json!({"ResourceList": ["qcs::cvm:ap-beijing:uin/1:instance/ins-1"], "TagKeys": ["a"]});
        assert!(serde_json::from_value::<UnTagResourcesRequest>(untag).is_ok());
        let get = serde_json::json!({
            "ResourceList": ["qcs::cvm:ap-beijing:uin/100000558920:instance/ins-123"],
            "TagFilters": [{"TagKey": "11", "TagValue": ["11"]}]
        });
        assert!(serde_json::from_value::<GetResourcesRequest>(get).is_ok());
        assert!(serde_json::from_value::<TagResourcesRequest>(serde_json::json!({"Bogus": 1})).is_err());
    }

    /// The GET examples (flattened parameters) read into the typed requests.
    #[test]
    fn flattened_examples_read() {
        let pairs = |text: &str| -> Vec<(String, String)> {
            text.split('&').filter_map(|p| p.split_once('=')).map(|(k, v)| (k.into(), v.into())).collect()
        };
        let by_tags: DescribeResourcesByTagsRequest = flat::from_pairs(&pairs(
            "ServiceType=cvm&ResourcePrefix=instance&ResourceRegion=ap-beijing&ResourceId=ins-1234&TagFilters.0.TagKey=key1",
        ))
        .unwrap();
        assert_eq!(by_tags.tag_filters, [TagFilter::key("key1")]);
        assert_eq!(by_tags.resource_region.as_deref(), Some("ap-beijing"));
        let by_ids: DescribeResourceTagsByResourceIdsRequest = flat::from_pairs(&pairs(
            "ServiceType=cvm&ResourcePrefix=instance&ResourceRegion=ap-beijing&ResourceIds.0=ins-1234",
        ))
        .unwrap();
        assert_eq!(by_ids.resource_ids, ["ins-1234"]);
        let filter = DescribeResourcesByTagsRequest {
            tag_filters: vec![TagFilter::new("cvmfleet:project", ["web", "db"])],
            limit: Some(200),
            ..Default::default()
        };
        let flattened = flat::flatten(&filter);
        assert_eq!(flat::from_pairs::<DescribeResourcesByTagsRequest>(&flattened).unwrap(), filter);
    }

    /// The response examples decode.
    #[test]
    fn response_examples_decode() {
        let rows = serde_json::json!({
            "TotalCount": 1, "Offset": 0, "Limit": 15,
            "Rows": [{"ResourceRegion": "ap-guangzhou", "ServiceType": "cvm", "ResourcePrefix": "instance",
                      "ResourceId": "ins-1234", "Tags": [{"TagKey": "key1", "TagValue": "value1"}]}]
        });
        let page: DescribeResourcesByTagsResponse = serde_json::from_value(rows).unwrap();
        assert_eq!(page.rows[0].tags, [Tag::new("key1", "value1")]);
        let tags = serde_json::json!({
            "TotalCount": 1, "Offset": 0, "Limit": 15,
            "Tags": [{"ServiceType": "cvm", "TagKey": "testKey", "TagValue": "字符串",
                      "TagKeyMd5": "cc4dd1da7e1a754534215f02fb9ba85d", "TagValueMd5": "cc4dd1da7e1a754534215f02fb9ba85d",
                      "ResourceId": "ins-1234"}]
        });
        let page: DescribeResourceTagsByResourceIdsResponse = serde_json::from_value(tags).unwrap();
        assert_eq!(page.tags[0].resource_id, "ins-1234");
        let get: GetResourcesResponse = serde_json::from_value(
            serde_json::json!({"PaginationToken": "", "ResourceTagMappingList": null}),
        )
        .unwrap();
        assert!(get.resource_tag_mapping_list.is_empty());
        let failed: FailedResourcesResponse =
            serde_json::from_value(serde_json::json!({"FailedResources": []})).unwrap();
        assert!(failed.failed_resources.is_empty());
    }
}
