//! A client of the Tencent Cloud CVM API (version 2017-03-12) and of the Tag service (version
//! 2018-08-13): signed (TC3-HMAC-SHA256, with each action's service in the credential scope),
//! typed, rate-limited per action, and retried only where retrying is safe.
//!
//! - [`CvmClient::call`] sends any request type of [`cvmfleet_wire::api`] or
//!   [`cvmfleet_wire::tag::api`] to a region (`""` for actions that take none) and returns its
//!   typed response with the RequestId ([`Answer`]). Each action goes to its service's endpoint
//!   ([`ClientConfig::endpoint`], [`ClientConfig::tag_endpoint_url`]).
//! - Helpers walk whole listings and split ID lists into batches of 100
//!   ([`CvmClient::describe_instances_all`], [`CvmClient::terminate_instances`], …), and the
//!   Tag service's work into its per-call limits ([`CvmClient::tag_resources`],
//!   [`CvmClient::find_tagged_instances`], … with their costs in [`tags`]); others read
//!   stock and prices ([`CvmClient::describe_zone_instance_configs`],
//!   [`CvmClient::quote_run_instances`]).
//! - [`retry`] holds the whole retry policy; [`ratelimit`] the per-action token buckets.
//! - [`Credentials`] come from `TENCENTCLOUD_SECRET_ID` / `TENCENTCLOUD_SECRET_KEY` /
//!   `TENCENTCLOUD_SESSION_TOKEN` or a tccli profile; the secret key is never printed.
//!
//! The library emits `tracing` events (one debug span `cvm_call` per call) and never installs
//! a subscriber.
//!
//! ```no_run
//! use cvmfleet_client::{ClientConfig, Credentials, CvmClient};
//! use cvmfleet_wire::api::DescribeZonesRequest;
//! use cvmfleet_wire::model::Filter;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let credentials = Credentials::from_env()?.ok_or("set TENCENTCLOUD_SECRET_ID/KEY")?;
//! let client = CvmClient::new(ClientConfig::default(), credentials)?;
//! let zones = client.call("ap-guangzhou", &DescribeZonesRequest {}).await?;
//! println!("{} zones (RequestId {})", zones.data.zone_set.len(), zones.request_id);
//! let mine = client
//!     .describe_instances_all("ap-guangzhou", vec![Filter::new("tag:fleet", ["web"])])
//!     .await?;
//! println!("{} instances, {:?} calls", mine.len(), client.call_counts());
//! # Ok(())
//! # }
//! ```

mod client;
pub mod config;
pub mod credentials;
pub mod error;
mod offering;
mod paging;
pub mod ratelimit;
pub mod retry;
pub mod tags;

pub use client::{
    Answer, CallStats, CvmClient, Gate, MAX_GET_QUERY_BYTES, MAX_RESPONSE_BYTES, SignedRequest, Transport,
    TransportFuture,
};
pub use config::{
    ClientConfig, Clock, DEFAULT_ENDPOINT, DEFAULT_TAG_ENDPOINT, Language, RequestMethod, redact_endpoint,
};
pub use credentials::Credentials;
pub use error::{ConfigError, Error};
pub use paging::BatchOutcome;
pub use ratelimit::RateLimit;
pub use retry::RetryPolicy;
pub use tags::{ResourceScope, TaggedInstance};
