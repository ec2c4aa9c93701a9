//! The wire contract of the Tencent Cloud CVM API (version 2017-03-12) and of the Tag service
//! (version 2018-08-13), shared by cvmfleet's client and its emulator, and depending on nothing
//! else of cvmfleet's.
//!
//! - [`service`]: the services, their names, versions and hosts; [`Action::service`] says which
//!   one an action belongs to.
//! - [`api`]: request and response bodies of each supported CVM [`Action`], bound by
//!   [`ApiRequest`]; [`tag`]: the same for the Tag service, with its resource names and rules.
//! - [`model`]: the data objects (`Instance`, `Placement`, …), with the API's own field names.
//! - [`envelope`]: the `{"Response": …}` envelope, success and error.
//! - [`flat`]: the flattened `Placement.Zone=…` parameter form of GET and v1 requests.
//! - [`sign`]: TC3-HMAC-SHA256 and v1 signatures, pinned by the official test vectors.
//! - [`vocab`]: the API's rules, once: enums of values, numeric limits, instance states.
//! - [`codes`]: error codes as constants.
//! - [`names`]: name patterns, host names, passwords, ID shapes.
//!
//! ```
//! use cvmfleet_wire::{api::RunInstancesRequest, flat, model::Placement};
//!
//! // The seed's example 1, in its flattened form.
//! let request = RunInstancesRequest {
//!     placement: Some(Placement { zone: "ap-guangzhou-2".into(), ..Placement::default() }),
//!     image_id: Some("img-pmqg1cw7".into()),
//!     ..RunInstancesRequest::default()
//! };
//! let pairs = flat::flatten(&request);
//! assert_eq!(flat::encode_query(&pairs), "Placement.Zone=ap-guangzhou-2&ImageId=img-pmqg1cw7");
//! let back: RunInstancesRequest = flat::from_pairs(&pairs)?;
//! assert_eq!(back, request);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod action;
pub mod api;
pub mod codes;
pub mod envelope;
pub mod flat;
pub mod model;
pub mod names;
pub mod redact;
pub mod service;
pub mod sign;
pub mod tag;
pub mod vocab;

pub use action::Action;
pub use api::ApiRequest;
pub use redact::redact_url;
pub use service::Service;

/// The CVM API version cvmfleet speaks ([`Service::Cvm`]'s version).
pub const API_VERSION: &str = "2017-03-12";

/// The CVM service name in TC3 credential scopes and host names ([`Service::Cvm`]'s name).
pub const SERVICE: &str = "cvm";

/// The CVM public endpoint host; `cvm.<region>.tencentcloudapi.com` also exists.
pub const DEFAULT_HOST: &str = "cvm.tencentcloudapi.com";

/// Most items one page or one batch may hold: DescribeInstances `Limit`, `InstanceIds` lists,
/// and the seed's `InstanceCount` range of RunInstances ([`vocab::INSTANCE_COUNT_MAX`]).
pub const MAX_BATCH: usize = 100;

/// Largest allowed clock skew between a request's timestamp and the server, in seconds.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// Longest ClientToken the API accepts, in ASCII characters.
pub const MAX_CLIENT_TOKEN_LEN: usize = 64;

/// The common parameters of the v1 (and GET) form that are not part of an action's body.
pub const COMMON_PARAMS: [&str; 11] = [
    "Action",
    "Version",
    "Region",
    "Timestamp",
    "Nonce",
    "SecretId",
    "Signature",
    "SignatureMethod",
    "Token",
    "Language",
    "RequestClient",
];
