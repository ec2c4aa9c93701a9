//! The CVM cloud as plain state and pure transitions, written once: the emulator serves it over
//! HTTP (`cvmfleet-emulator`), the simulation in process (`cvmfleet-sim`), and a test shows the
//! two faces answer alike (`crates/cvmfleet-sim/tests/it/agreement.rs`).
//!
//! - [`World`]: instances and their lifecycle, ClientToken records ([`TokenMode`]), stock
//!   ([`stock`]) and prices ([`pricing`]), the [`Catalog`] of regions, zones, images, types and
//!   networks, tags (through the Tag engine of `cvmfleet-wire`), IDs and API errors
//!   ([`ApiError`]).
//! - No I/O, no clock, no randomness of its own: every call takes the time as Unix milliseconds
//!   ([`Ctx::now_ms`]) and the fate of each new instance (launch failure, stock vanishing,
//!   spot reclaim) from the caller's seeded source ([`LaunchFate`]). Transitions (boots,
//!   stops, terminations) are applied lazily when a call arrives.
//! - Every change is a [`Mutation`], which the emulator journals; [`World::snapshot`] and
//!   [`World::from_snapshot`] keep the emulator's state format.
//!
//! ```
//! use std::sync::Arc;
//!
//! use cvmfleet_cloud::{Catalog, CatalogIndex, Ctx, Encode, LaunchFate, Params, Settings, World};
//! use cvmfleet_wire::Action;
//!
//! struct Json;
//! impl Encode for Json {
//!     type Body = serde_json::Value;
//!     fn encode<T: serde::Serialize>(&self, data: &T) -> serde_json::Value {
//!         serde_json::to_value(data).unwrap_or_default()
//!     }
//! }
//!
//! let mut world = World::new(Arc::new(CatalogIndex::new(Catalog::builtin())), Settings::default(), 7);
//! let ctx = Ctx {
//!     secret_id: "AKIDexample".into(),
//!     region: "ap-guangzhou".into(),
//!     request_id: "r-1".into(),
//!     now_ms: 1_767_225_600_000,
//! };
//! let run = Params::Json(serde_json::json!({
//!     "Placement": {"Zone": "ap-guangzhou-3"}, "ImageId": "img-pmqg1cw7", "ClientToken": "t-1"
//! }));
//! let mut fate = |_| LaunchFate::default();
//! let (first, _) = world.call(&ctx, Action::RunInstances, &run, &mut fate, &Json)?;
//! // The same token again: the same instance, nothing new.
//! let (again, mutation) = world.call(&ctx, Action::RunInstances, &run, &mut fate, &Json)?;
//! assert_eq!(first, again);
//! assert!(mutation.is_empty());
//! assert_eq!(world.len(), 1);
//! # Ok::<(), cvmfleet_cloud::ApiError>(())
//! ```

mod api_error;
pub mod catalog;
mod ids;
use cvmfleet_wire::names;
mod net;
mod params;
pub mod pricing;
pub mod stock;
mod world;

/// The account uin of a world configured with none: the `uin/<uin>` segment of the resource
/// names its Tag service answers with. Tencent uins are numbers of up to 12 digits; this one is
/// recognisably not a real account.
pub const DEFAULT_ACCOUNT_UIN: &str = "100000000001";

pub use crate::api_error::ApiError;
pub use crate::catalog::{Catalog, CatalogError, CatalogIndex};
pub use crate::ids::salt_of;
pub use crate::net::{BadCidr, Cidr};
pub use crate::params::{Params, decode};
pub use crate::pricing::{BandwidthPriceSpec, DiskPriceSpec, InstancePriceSpec, PriceTable};
pub use crate::stock::{StockSpec, StockView};
pub use crate::world::{
    Ctx, Encode, InstancePage, LaunchDraw, LaunchFate, Launched, Mutation, Reclaim, Settings, Snapshot,
    SpotReclaim, TokenMode, World,
};
