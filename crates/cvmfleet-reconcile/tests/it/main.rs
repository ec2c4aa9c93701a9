//! Reconciler tests: the watch cycle against an in-process fake cloud, under paused time.

mod emulated;
mod watch;
