//! Planning for cvmfleet: a pure, synchronous, deterministic function from what the specs
//! declare ([`DesiredFleet`]) and what the cloud runs ([`ObservedFleet`]) to a [`Plan`] that
//! decides everything (zones, counts, ClientTokens, which instances go) and leaves the executor
//! no choices. No I/O happens here. The same pass classifies every difference as [`Drift`]
//! under each group's policy (`correct`, `report`, `ignore`), and takes one bounded step of a
//! rolling replacement (see the `group` module's notes and [`token`] for why its ClientTokens
//! stay idempotent). [`cost`] prices a plan from the quotes the reconciler fetched: the monthly
//! cost of every group and fleet before and after, and the `maxMonthlyCostIncrease` guard.
//!
//! ```
//! use std::collections::BTreeMap;
//! use cvmfleet_plan::{DesiredFleet, DesiredGroup, PlanOptions, plan};
//! use cvmfleet_wire::api::RunInstancesRequest;
//!
//! let fleet = DesiredFleet {
//!     project: "default".into(),
//!     name: "web".into(),
//!     region: "ap-guangzhou".into(),
//!     prune: false,
//!     allow_deletion: false,
//!     orphans: Default::default(),
//!     max_monthly_cost_increase: None,
//!     groups: vec![
//!         DesiredGroup::new(
//!             "frontend",
//!             RunInstancesRequest { image_id: Some("img-pmqg1cw7".into()), ..Default::default() },
//!             "0".repeat(16),
//!         )
//!         .in_zone("ap-guangzhou-3", 2),
//!     ],
//! };
//! let plan = plan(&[fleet], &BTreeMap::new(), PlanOptions::default());
//! assert_eq!(plan.summary.create, 2);
//! assert_eq!(plan.fleets[0].groups[0].creates[0].request.instance_count, Some(2));
//! ```

pub mod adopt;
pub mod cost;
mod create;
pub mod desired;
pub mod drift;
pub mod drift_report;
mod group;
pub mod observed;
pub mod placement;
pub mod plan;
pub mod planner;
pub mod render;
pub mod token;

pub use desired::{DEFAULT_PROJECT, DesiredFleet, DesiredGroup, DesiredZone, PasswordSource};
pub use drift::{Drift, DriftKind, Handling};
pub use observed::{ObservedFleet, ObservedInstance, OfferingState, Presence, Stock};
pub use plan::Plan;
pub use planner::{PlanOptions, fingerprint, plan, plan_priced};
