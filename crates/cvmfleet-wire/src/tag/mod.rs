//! The Tag service (API version 2018-08-13, `tag-2018-08-13/api.json`), as far as cvmfleet
//! uses it: binding and unbinding tags of CVM instances, and finding instances by their tags in
//! every region at once.
//!
//! - [`api`]: request and response bodies of TagResources, UnTagResources, ModifyResourceTags,
//!   DescribeResourcesByTags, DescribeResourceTagsByResourceIds and GetResources.
//! - [`model`]: the service's objects; its tags are `TagKey`/`TagValue` pairs ([`model::Tag`]),
//!   not CVM's `Key`/`Value` ([`crate::model::Tag`]), and convert both ways.
//! - [`ResourceName`]: the six-segment resource names the service addresses resources by.
//! - [`rules`]: the service's checks with the error codes it answers.
//! - [`engine`]: the actions' behaviour over any [`engine::TagStore`], shared by the emulator
//!   and the simulation so that both answer every Tag request the same way.
//! - [`codes`]: the service's error codes.
//!
//! Tags are one store: a tag the Tag service binds to an instance is the tag DescribeInstances
//! shows in its `Tags`, and the other way round.
//!
//! ```
//! use cvmfleet_wire::tag::{self, ResourceName};
//!
//! let name = ResourceName::cvm_instance("ap-guangzhou", None, "ins-1vogaxgk");
//! assert_eq!(name.to_string(), "qcs::cvm:ap-guangzhou:uin/:instance/ins-1vogaxgk");
//! assert_eq!(ResourceName::parse(&name.to_string()), Ok(name));
//! assert_eq!(tag::MAX_RESOURCES_PER_CALL, 10);
//! ```

pub mod api;
pub mod codes;
pub mod engine;
pub mod model;
mod resource;
pub mod rules;

pub use resource::ResourceName;

/// The `ServiceType` (third segment of a resource name) of CVM resources.
pub const SERVICE_TYPE_CVM: &str = "cvm";

/// The `ResourcePrefix` of CVM instances: `qcs::cvm:<region>:uin/<uin>:instance/ins-…`.
pub const RESOURCE_PREFIX_INSTANCE: &str = "instance";

/// Most resources in one TagResources or UnTagResources call (`ResourceList`), and in
/// GetResources' `ResourceList`. api.json: "N取值范围：0~9". More answer
/// `LimitExceeded.ResourceNumPerRequest`.
pub const MAX_RESOURCES_PER_CALL: usize = 10;

/// Most tags one call sets or removes: TagResources `Tags` ("N取值范围：0~9"), UnTagResources
/// `TagKeys` ("取值范围：0~9"), ModifyResourceTags `ReplaceTags` and `DeleteTags` each
/// ("标签数量不超过10个"). More answer `LimitExceeded.TagNumPerRequest`.
pub const MAX_TAGS_PER_CALL: usize = 10;

/// Most tag filters of DescribeResourcesByTags and GetResources. api.json: "标签过滤数组，最多
/// 支持6组标签". More answer `InvalidParameterValue.TagFiltersLengthExceeded`.
pub const MAX_TAG_FILTERS: usize = 6;

/// Most values of one GetResources tag filter. api.json: "每组标签中的TagValue最多支持10个".
/// DescribeResourcesByTags states no limit, and the emulator sets none for it.
pub const GET_RESOURCES_MAX_FILTER_VALUES: usize = 10;

/// Default page of DescribeResourcesByTags and DescribeResourceTagsByResourceIds. api.json:
/// "每页大小，默认为 15".
pub const DEFAULT_PAGE_LIMIT: u64 = 15;

/// Largest page of DescribeResourcesByTags and DescribeResourceTagsByResourceIds. api.json
/// states no maximum; 200 is GetResources' documented maximum ("最大200") and the page a Tencent
/// Kubernetes controller uses with DescribeResourcesByTags "based on testing-result". The
/// emulator refuses larger pages with `InvalidParameterValue`, the client never asks for more.
pub const MAX_PAGE_LIMIT: u64 = 200;

/// Most resource IDs of one DescribeResourceTagsByResourceIds call. api.json: "资源ID数组，大小
/// 不超过50". More answer `LimitExceeded.ResourceNumPerRequest`.
pub const MAX_RESOURCE_IDS_PER_DESCRIBE: usize = 50;

/// Default page of GetResources. api.json: "缺省值：50".
pub const GET_RESOURCES_DEFAULT_MAX_RESULTS: u64 = 50;

/// Largest page of GetResources. api.json: "每一页返回的数据最大条数，最大200".
pub const GET_RESOURCES_MAX_RESULTS: u64 = 200;

/// The `Category` of tags set through the API (`Custom`; `System` tags are the cloud's own).
pub const CATEGORY_CUSTOM: &str = "Custom";
