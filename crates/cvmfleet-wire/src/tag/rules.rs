//! The Tag service's rules, once: what a tag, a tag key, a resource list, a tag filter and a
//! page must be, with the code the service answers when they are not; how filters match; and
//! how a tag change applies to a resource's tags. The emulator and the simulation both call
//! these, so they refuse and accept exactly the same requests.
//!
//! Key and value lengths and the reserved prefixes are CVM's ([`crate::vocab`]): a tag is one
//! thing whichever service sets it. Tencent's pages disagree on which characters a tag may
//! hold, so no character rule is applied (refusing what the cloud accepts is the worse error).

use std::collections::BTreeSet;
use std::fmt;

use md5::Digest as _;

use super::codes;
use super::model::{Tag, TagFilter};
use super::resource::ResourceName;
use crate::codes as common;
use crate::vocab::{self, MAX_TAGS, RESERVED_TAG_KEY_PREFIXES, TAG_KEY_MAX_CHARS, TAG_VALUE_MAX_CHARS};

/// A request the service refuses: the code it answers and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Error code, e.g. `InvalidParameterValue.TagKeyEmpty`.
    pub code: &'static str,
    /// What is wrong, naming the offending value.
    pub message: String,
}

impl Problem {
    /// A problem with its code and message.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Problem { code, message: message.into() }
    }

    fn missing(parameter: &str) -> Self {
        Problem::new(
            common::MISSING_PARAMETER,
            format!("The request is missing a required parameter `{parameter}`."),
        )
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Problem {}

/// Checks a tag key: 1 to [`TAG_KEY_MAX_CHARS`] characters, no reserved prefix.
///
/// # Errors
/// `InvalidParameterValue.TagKeyEmpty`, `InvalidParameterValue.TagKeyLengthExceeded` or
/// `InvalidParameter.ReservedTagKey`.
pub fn check_tag_key(key: &str) -> Result<(), Problem> {
    if key.is_empty() {
        return Err(Problem::new(codes::INVALID_PARAMETER_VALUE_TAG_KEY_EMPTY, "A tag key is empty."));
    }
    if key.chars().count() > TAG_KEY_MAX_CHARS {
        return Err(Problem::new(
            codes::INVALID_PARAMETER_VALUE_TAG_KEY_LENGTH_EXCEEDED,
            format!("The tag key `{key}` is longer than {TAG_KEY_MAX_CHARS} characters."),
        ));
    }
    if vocab::is_reserved_tag_key(key) {
        return Err(Problem::new(
            codes::INVALID_PARAMETER_RESERVED_TAG_KEY,
            format!("The tag key `{key}` uses a reserved prefix ({}).", RESERVED_TAG_KEY_PREFIXES.join(", ")),
        ));
    }
    Ok(())
}

/// Checks a tag to set: its key, and a value of 1 to [`TAG_VALUE_MAX_CHARS`] characters.
///
/// # Errors
/// The key's problem, `InvalidParameterValue.TagValueEmpty` or
/// `InvalidParameterValue.TagValueLengthExceeded`.
pub fn check_tag(tag: &Tag) -> Result<(), Problem> {
    check_tag_key(&tag.tag_key)?;
    if tag.tag_value.is_empty() {
        return Err(Problem::new(
            codes::INVALID_PARAMETER_VALUE_TAG_VALUE_EMPTY,
            format!("The value of tag `{}` is empty.", tag.tag_key),
        ));
    }
    if tag.tag_value.chars().count() > TAG_VALUE_MAX_CHARS {
        return Err(Problem::new(
            codes::INVALID_PARAMETER_VALUE_TAG_VALUE_LENGTH_EXCEEDED,
            format!("The value of tag `{}` is longer than {TAG_VALUE_MAX_CHARS} characters.", tag.tag_key),
        ));
    }
    Ok(())
}

fn check_count(parameter: &str, count: usize) -> Result<(), Problem> {
    if count == 0 {
        return Err(Problem::missing(parameter));
    }
    if count > super::MAX_TAGS_PER_CALL {
        return Err(Problem::new(
            codes::LIMIT_EXCEEDED_TAG_NUM_PER_REQUEST,
            format!("`{parameter}` holds {count} tags; at most {} are allowed.", super::MAX_TAGS_PER_CALL),
        ));
    }
    Ok(())
}

fn check_unique<'a>(keys: impl IntoIterator<Item = &'a str>) -> Result<(), Problem> {
    let mut seen = BTreeSet::new();
    match keys.into_iter().find(|k| !seen.insert(*k)) {
        Some(key) => Err(Problem::new(
            codes::INVALID_PARAMETER_VALUE_TAG_KEY_DUPLICATE,
            format!("The tag key `{key}` is given twice."),
        )),
        None => Ok(()),
    }
}

/// Checks the tags a call sets (`parameter` names them in messages): 1 to
/// [`super::MAX_TAGS_PER_CALL`] valid tags with distinct keys.
///
/// # Errors
/// `MissingParameter`, `LimitExceeded.TagNumPerRequest`, a tag's problem, or
/// `InvalidParameterValue.TagKeyDuplicate`.
pub fn check_tags_to_set(parameter: &str, tags: &[Tag]) -> Result<(), Problem> {
    check_count(parameter, tags.len())?;
    tags.iter().try_for_each(check_tag)?;
    check_unique(tags.iter().map(|t| t.tag_key.as_str()))
}

/// Checks the keys a call removes: 1 to [`super::MAX_TAGS_PER_CALL`] valid, distinct keys.
///
/// # Errors
/// `MissingParameter`, `LimitExceeded.TagNumPerRequest`, a key's problem, or
/// `InvalidParameterValue.TagKeyDuplicate`.
pub fn check_keys_to_remove(parameter: &str, keys: &[String]) -> Result<(), Problem> {
    check_count(parameter, keys.len())?;
    keys.iter().try_for_each(|k| check_tag_key(k))?;
    check_unique(keys.iter().map(String::as_str))
}

/// Reads a resource list: 1 to [`super::MAX_RESOURCES_PER_CALL`] six-segment names.
///
/// # Errors
/// `MissingParameter`, `LimitExceeded.ResourceNumPerRequest`, or a name's
/// `InvalidParameterValue.ResourceDescriptionError`.
pub fn check_resource_list(list: &[String]) -> Result<Vec<ResourceName>, Problem> {
    if list.is_empty() {
        return Err(Problem::missing("ResourceList"));
    }
    if list.len() > super::MAX_RESOURCES_PER_CALL {
        return Err(Problem::new(
            codes::LIMIT_EXCEEDED_RESOURCE_NUM_PER_REQUEST,
            format!(
                "`ResourceList` holds {} resources; at most {} are allowed.",
                list.len(),
                super::MAX_RESOURCES_PER_CALL
            ),
        ));
    }
    list.iter().map(|text| ResourceName::parse(text)).collect()
}

/// Checks tag filters: at most [`super::MAX_TAG_FILTERS`], each naming a key, with at most
/// `max_values` values when the action has such a limit.
///
/// # Errors
/// `InvalidParameterValue.TagFiltersLengthExceeded` or `InvalidParameterValue.TagFilters`.
pub fn check_tag_filters(filters: &[TagFilter], max_values: Option<usize>) -> Result<(), Problem> {
    if filters.len() > super::MAX_TAG_FILTERS {
        return Err(Problem::new(
            codes::INVALID_PARAMETER_VALUE_TAG_FILTERS_LENGTH_EXCEEDED,
            format!(
                "{} tag filters were given; at most {} are allowed.",
                filters.len(),
                super::MAX_TAG_FILTERS
            ),
        ));
    }
    for filter in filters {
        if filter.tag_key.is_empty() {
            return Err(Problem::new(
                codes::INVALID_PARAMETER_VALUE_TAG_FILTERS,
                "A tag filter has no `TagKey`.",
            ));
        }
        if let Some(max) = max_values
            && filter.values().len() > max
        {
            return Err(Problem::new(
                codes::INVALID_PARAMETER_VALUE_TAG_FILTERS_LENGTH_EXCEEDED,
                format!(
                    "The tag filter `{}` has {} values; at most {max} are allowed.",
                    filter.tag_key,
                    filter.values().len()
                ),
            ));
        }
    }
    Ok(())
}

/// Whether a resource with `tags` passes every filter: it carries the filter's key, with one of
/// the filter's values when it lists any.
#[must_use]
pub fn filters_match(filters: &[TagFilter], tags: &[crate::model::Tag]) -> bool {
    filters.iter().all(|f| {
        tags.iter().any(|t| t.key == f.tag_key && (f.values().is_empty() || f.values().contains(&t.value)))
    })
}

/// The tags of a resource after setting `set` (a key it carries gets the new value in place,
/// new keys are appended in order) and removing `remove`.
///
/// # Errors
/// `LimitExceeded.ResourceAttachedTags` when the resource would carry more than [`MAX_TAGS`].
pub fn apply_change(
    current: &[crate::model::Tag],
    set: &[Tag],
    remove: &[String],
) -> Result<Vec<crate::model::Tag>, Problem> {
    let mut tags: Vec<crate::model::Tag> =
        current.iter().filter(|t| !remove.contains(&t.key)).cloned().collect();
    for tag in set {
        match tags.iter_mut().find(|t| t.key == tag.tag_key) {
            Some(existing) => existing.value.clone_from(&tag.tag_value),
            None => tags.push(tag.into()),
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(Problem::new(
            codes::LIMIT_EXCEEDED_RESOURCE_ATTACHED_TAGS,
            format!("The resource would carry {} tags; at most {MAX_TAGS} are allowed.", tags.len()),
        ));
    }
    Ok(tags)
}

/// Reads `Offset` and `Limit` of the offset-paged Tag actions: the limit defaults to
/// [`super::DEFAULT_PAGE_LIMIT`] (also when 0), is at most [`super::MAX_PAGE_LIMIT`], and the
/// offset is a multiple of it ("必须为Limit参数的整数倍").
///
/// # Errors
/// `InvalidParameterValue` for a larger limit, `InvalidParameterValue.OffsetInvalid` for an
/// offset that is not a multiple.
pub fn page(offset: Option<u64>, limit: Option<u64>) -> Result<(u64, u64), Problem> {
    let limit = match limit {
        None | Some(0) => super::DEFAULT_PAGE_LIMIT,
        Some(n) => n,
    };
    if limit > super::MAX_PAGE_LIMIT {
        return Err(Problem::new(
            common::INVALID_PARAMETER_VALUE,
            format!("`Limit` {limit} is above the largest page of {}.", super::MAX_PAGE_LIMIT),
        ));
    }
    let offset = offset.unwrap_or(0);
    if !offset.is_multiple_of(limit) {
        return Err(Problem::new(
            codes::INVALID_PARAMETER_VALUE_OFFSET_INVALID,
            format!("`Offset` {offset} is not a multiple of `Limit` {limit}."),
        ));
    }
    Ok((offset, limit))
}

/// Lower-case hex MD5 of `text`: `TagKeyMd5` and `TagValueMd5` of
/// DescribeResourceTagsByResourceIds.
#[must_use]
pub fn md5_hex(text: &str) -> String {
    hex::encode(md5::Md5::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Tag as CvmTag;

    #[test]
    fn tags_and_keys() {
        assert!(check_tag(&Tag::new("cvmfleet:project", "web")).is_ok());
        let code = |t: Tag| check_tag(&t).unwrap_err().code;
        assert_eq!(code(Tag::new("", "v")), codes::INVALID_PARAMETER_VALUE_TAG_KEY_EMPTY);
        assert_eq!(code(Tag::new("k", "")), codes::INVALID_PARAMETER_VALUE_TAG_VALUE_EMPTY);
        assert_eq!(
            code(Tag::new("k".repeat(128), "v")),
            codes::INVALID_PARAMETER_VALUE_TAG_KEY_LENGTH_EXCEEDED
        );
        assert!(check_tag(&Tag::new("键".repeat(127), "v")).is_ok(), "characters, not bytes");
        assert_eq!(
            code(Tag::new("k", "v".repeat(256))),
            codes::INVALID_PARAMETER_VALUE_TAG_VALUE_LENGTH_EXCEEDED
        );
        assert_eq!(code(Tag::new("QCloud-x", "v")), codes::INVALID_PARAMETER_RESERVED_TAG_KEY);
        let eleven: Vec<Tag> = (0..11).map(|i| Tag::new(format!("k{i}"), "v")).collect();
        assert_eq!(
            check_tags_to_set("Tags", &eleven).unwrap_err().code,
            codes::LIMIT_EXCEEDED_TAG_NUM_PER_REQUEST
        );
        assert!(check_tags_to_set("Tags", &eleven[..10]).is_ok());
        assert_eq!(check_tags_to_set("Tags", &[]).unwrap_err().code, common::MISSING_PARAMETER);
        let twice = [Tag::new("a", "1"), Tag::new("a", "2")];
        assert_eq!(
            check_tags_to_set("Tags", &twice).unwrap_err().code,
            codes::INVALID_PARAMETER_VALUE_TAG_KEY_DUPLICATE
        );
        let keys = ["a".to_owned(), "a".to_owned()];
        assert_eq!(
            check_keys_to_remove("TagKeys", &keys).unwrap_err().code,
            codes::INVALID_PARAMETER_VALUE_TAG_KEY_DUPLICATE
        );
    }

    #[test]
    fn resource_lists() {
        let name = |i: usize| format!("qcs::cvm:ap-guangzhou:uin/:instance/ins-{i:08}");
        let ten: Vec<String> = (0..10).map(name).collect();
        assert_eq!(check_resource_list(&ten).unwrap().len(), 10);
        let eleven: Vec<String> = (0..11).map(name).collect();
        assert_eq!(
            check_resource_list(&eleven).unwrap_err().code,
            codes::LIMIT_EXCEEDED_RESOURCE_NUM_PER_REQUEST
        );
        assert_eq!(check_resource_list(&[]).unwrap_err().code, common::MISSING_PARAMETER);
        let bad = ["ins-00000001".to_owned()];
        assert_eq!(
            check_resource_list(&bad).unwrap_err().code,
            codes::INVALID_PARAMETER_VALUE_RESOURCE_DESCRIPTION_ERROR
        );
    }

    #[test]
    fn filters_and_across_or_within() {
        let tags = [CvmTag::new("env", "prod"), CvmTag::new("team", "core")];
        assert!(filters_match(&[TagFilter::new("env", ["dev", "prod"])], &tags));
        assert!(filters_match(&[TagFilter::key("team")], &tags));
        assert!(filters_match(&[TagFilter::new("env", Vec::<String>::new())], &tags), "no values: any");
        assert!(!filters_match(&[TagFilter::new("env", ["dev"])], &tags));
        assert!(filters_match(&[TagFilter::key("env"), TagFilter::new("team", ["core"])], &tags));
        assert!(!filters_match(&[TagFilter::key("env"), TagFilter::key("owner")], &tags));
        assert!(filters_match(&[], &tags), "no filter: everything");
        let seven: Vec<TagFilter> = (0..7).map(|i| TagFilter::key(format!("k{i}"))).collect();
        assert_eq!(
            check_tag_filters(&seven, None).unwrap_err().code,
            codes::INVALID_PARAMETER_VALUE_TAG_FILTERS_LENGTH_EXCEEDED
        );
        assert!(check_tag_filters(&seven[..6], None).is_ok());
        let many = [TagFilter::new("k", (0..11).map(|i| i.to_string()))];
        assert!(check_tag_filters(&many, None).is_ok());
        assert!(check_tag_filters(&many, Some(10)).is_err());
        assert_eq!(
            check_tag_filters(&[TagFilter::key("")], None).unwrap_err().code,
            codes::INVALID_PARAMETER_VALUE_TAG_FILTERS
        );
    }

    #[test]
    fn changes_keep_order_and_the_tag_quota() {
        let tags = [CvmTag::new("a", "1"), CvmTag::new("b", "2")];
        let after = apply_change(&tags, &[Tag::new("b", "3"), Tag::new("c", "4")], &["a".into()]).unwrap();
        assert_eq!(after, [CvmTag::new("b", "3"), CvmTag::new("c", "4")]);
        let full: Vec<CvmTag> = (0..50).map(|i| CvmTag::new(format!("k{i}"), "v")).collect();
        assert!(apply_change(&full, &[Tag::new("k0", "w")], &[]).is_ok());
        assert_eq!(
            apply_change(&full, &[Tag::new("new", "v")], &[]).unwrap_err().code,
            codes::LIMIT_EXCEEDED_RESOURCE_ATTACHED_TAGS
        );
    }

    #[test]
    fn pages_and_md5() {
        assert_eq!(page(None, None), Ok((0, 15)));
        assert_eq!(page(Some(30), Some(0)), Ok((30, 15)));
        assert_eq!(page(Some(400), Some(200)), Ok((400, 200)));
        assert_eq!(page(Some(10), Some(20)).unwrap_err().code, codes::INVALID_PARAMETER_VALUE_OFFSET_INVALID);
        assert_eq!(page(None, Some(201)).unwrap_err().code, common::INVALID_PARAMETER_VALUE);
        // RFC 1321 test vectors.
        assert_eq!(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
    }
}
