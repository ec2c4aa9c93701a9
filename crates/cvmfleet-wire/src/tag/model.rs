//! Data objects of the Tag service (`tag-2018-08-13/api.json` "objects"), with the API's own
//! field names.

use serde::{Deserialize, Serialize};

use crate::model::null_as_default;

/// A tag as the Tag service spells it: `TagKey` and `TagValue`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    /// Tag key.
    #[serde(default)]
    pub tag_key: String,
    /// Tag value.
    #[serde(default, deserialize_with = "null_as_default")]
    pub tag_value: String,
    /// `Custom` or `System` (output; ignored on input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

impl Tag {
    /// A tag from its key and value.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Tag { tag_key: key.into(), tag_value: value.into(), category: None }
    }
}

impl From<&crate::model::Tag> for Tag {
    fn from(tag: &crate::model::Tag) -> Self {
        Tag::new(tag.key.clone(), tag.value.clone())
    }
}

impl From<crate::model::Tag> for Tag {
    fn from(tag: crate::model::Tag) -> Self {
        Tag::new(tag.key, tag.value)
    }
}

impl From<&Tag> for crate::model::Tag {
    fn from(tag: &Tag) -> Self {
        crate::model::Tag::new(tag.tag_key.clone(), tag.tag_value.clone())
    }
}

impl From<Tag> for crate::model::Tag {
    fn from(tag: Tag) -> Self {
        crate::model::Tag::new(tag.tag_key, tag.tag_value)
    }
}

/// A tag key to remove (ModifyResourceTags `DeleteTags`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagKeyObject {
    /// Tag key.
    #[serde(default)]
    pub tag_key: String,
}

/// A tag filter: resources carrying `TagKey` with one of the values (any value when none is
/// given). Filters of one request are AND-ed, the values of one filter OR-ed (api.json:
/// "按TagKey取交集 … 多个值的话是或的关系").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagFilter {
    /// Tag key.
    #[serde(default)]
    pub tag_key: String,
    /// Accepted values; absent or empty: any value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_value: Option<Vec<String>>,
}

impl TagFilter {
    /// Resources whose `key` has one of `values`.
    pub fn new<I, S>(key: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        TagFilter { tag_key: key.into(), tag_value: Some(values.into_iter().map(Into::into).collect()) }
    }

    /// Resources that carry `key`, whatever its value.
    pub fn key(key: impl Into<String>) -> Self {
        TagFilter { tag_key: key.into(), tag_value: None }
    }

    /// The accepted values (empty: any value).
    #[must_use]
    pub fn values(&self) -> &[String] {
        self.tag_value.as_deref().unwrap_or_default()
    }
}

/// A resource a tag change failed for, while the others of the call succeeded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FailedResource {
    /// The six-segment resource name, as given.
    #[serde(default, deserialize_with = "null_as_default")]
    pub resource: String,
    /// Error code.
    #[serde(default, deserialize_with = "null_as_default")]
    pub code: String,
    /// Error message.
    #[serde(default, deserialize_with = "null_as_default")]
    pub message: String,
}

/// A resource with its tags (DescribeResourcesByTags `Rows`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceTag {
    /// Region of the resource, e.g. `ap-guangzhou`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub resource_region: String,
    /// Service, e.g. `cvm`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub service_type: String,
    /// Resource prefix, e.g. `instance`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub resource_prefix: String,
    /// Resource ID, e.g. `ins-1vogaxgk`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub resource_id: String,
    /// Every tag of the resource.
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: Vec<Tag>,
}

/// One tag of one resource (DescribeResourceTagsByResourceIds `Tags`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagResource {
    /// Tag key.
    #[serde(default, deserialize_with = "null_as_default")]
    pub tag_key: String,
    /// Tag value.
    #[serde(default, deserialize_with = "null_as_default")]
    pub tag_value: String,
    /// Resource ID.
    #[serde(default, deserialize_with = "null_as_default")]
    pub resource_id: String,
    /// MD5 (lower-case hex) of the key.
    #[serde(default, deserialize_with = "null_as_default")]
    pub tag_key_md5: String,
    /// MD5 (lower-case hex) of the value.
    #[serde(default, deserialize_with = "null_as_default")]
    pub tag_value_md5: String,
    /// Service of the resource, e.g. `cvm`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub service_type: String,
    /// `Custom` or `System`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub category: String,
}

/// A resource by its six-segment name, with its tags (GetResources).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceTagMapping {
    /// Six-segment resource name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub resource: String,
    /// Its tags.
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: Vec<Tag>,
}
