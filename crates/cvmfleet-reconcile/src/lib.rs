//! Reconciliation for cvmfleet: observe the fleets in the cloud, and carry out a plan.
//!
//! Planning itself is pure and lives in `cvmfleet-plan`; this crate holds the side effects:
//! [`observe`] lists each fleet's instances by its ownership tag (⌈N/100⌉ calls per fleet),
//! [`market`] reads stock and [`prices`] quotes configurations (with a bound on the calls), and
//! [`round`] is the one pipeline that puts them together — observe, stock, plan, price — for
//! `plan`, every round of `apply` and every `watch` cycle. [`execute`] makes one attempt at a
//! plan, returning a [`Report`] of everything it did and did not do. [`converge`] executes,
//! makes a new round and executes again while the new plan only continues the first (rolling
//! replacement steps, failed launches), with the retry policy in [`converge::Rounds`];
//! [`watch`] runs cycles of rounds for `cvmfleet watch`, with per-fleet backoff.

pub mod converge;
pub mod error;
pub mod execute;
pub mod market;
pub mod observe;
pub mod preflight;
pub mod prices;
pub mod round;
pub mod watch;

pub use converge::{Converged, Rounds, Stop, Verdict, converge, error_chain, unplaced_groups};
pub use error::ExecError;
pub use execute::{Event, ExecOptions, Interrupt, MAX_FAILED_POLLS, Progress, Report, Silent, execute};
pub use market::{DEFAULT_UNAVAILABLE_TTL, OfferingKey, Unavailable};
pub use observe::{Observation, observe, observe_each, observe_in, project_of, regions_with_instances};
pub use preflight::{PreflightOutcome, preflight};
pub use prices::{PRICE_TTL, PriceCache, QuoteFuture, Quoter};
pub use round::{EachPlanned, Reads, Round};
pub use watch::{ClientCloud, Cloud, CycleReport, FleetOutcome, FleetReport, WatchOptions, Watcher};
