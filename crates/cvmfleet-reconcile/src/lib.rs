//! Reconciliation for cvmfleet: observe the fleets in the cloud, and carry out a plan.
//!
//! Planning itself is pure and lives in `cvmfleet-plan`; this crate holds the side effects:
//! [`observe`] lists each fleet's instances by its ownership tag (⌈N/100⌉ calls per fleet) and
//! [`execute`] makes one attempt at a plan, returning a [`Report`] of everything it did and did
//! not do. [`converge`] observes, plans and executes again while the new plan only continues the
//! first (rolling replacement steps, failed launches), with the retry policy in
//! [`converge::Rounds`]; [`watch`] runs cycles of that for `cvmfleet watch`, with per-fleet
//! backoff. [`prices`] asks the cloud what a plan's configurations cost, with a bound on the
//! calls, for the plan's costs and its budget guard.

pub mod converge;
pub mod error;
pub mod execute;
pub mod market;
pub mod observe;
pub mod preflight;
pub mod prices;
pub mod watch;

pub use converge::{Converged, Rounds, Stop, Verdict, converge, error_chain, unplaced_groups};
pub use error::ExecError;
pub use execute::{Event, ExecOptions, Interrupt, MAX_FAILED_POLLS, Progress, Report, Silent, execute};
pub use market::{DEFAULT_UNAVAILABLE_TTL, OfferingKey, Unavailable, read_market};
pub use observe::{observe, observe_each, observe_in, project_of, regions_with_instances};
pub use preflight::{PreflightOutcome, preflight};
pub use prices::{PRICE_TTL, PriceCache, QuoteFuture, Quoter, price_plan};
pub use watch::{ClientCloud, Cloud, CycleReport, FleetOutcome, FleetReport, WatchOptions, Watcher};
