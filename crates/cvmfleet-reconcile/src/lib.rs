//! Reconciliation for cvmfleet: observe the fleets in the cloud, and carry out a plan.
//!
//! Planning itself is pure and lives in `cvmfleet-plan`; this crate holds the side effects:
//! [`observe`] lists each fleet's instances by its ownership tag (⌈N/100⌉ calls per fleet) and
//! [`execute`] makes one attempt at a plan, returning a [`Report`] of everything it did and did
//! not do. Callers converge by observing, planning and executing again.

pub mod error;
pub mod execute;
pub mod observe;
pub mod preflight;

pub use error::ExecError;
pub use execute::{Event, ExecOptions, Interrupt, Progress, Report, Silent, execute};
pub use observe::observe;
pub use preflight::{PreflightOutcome, preflight};
