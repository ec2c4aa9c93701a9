//! Reconciler tests: the watch cycle against an in-process fake cloud, under paused time, and
//! the deterministic simulation of exactly-once against `cvmfleet-sim`.

mod emulated;
mod execute;
mod fixtures;
mod sim;
mod spot;
mod watch;
