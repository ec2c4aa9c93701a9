//! Integration tests of the `cvmfleet` binary: one module per command.

mod apply;
mod capacity;
mod common;
mod cost;
mod deploy;
mod election;
mod emulator;
mod exactly_once;
mod files;
mod help;
mod hostile;
mod hostile_election;
mod import;
mod interrupt;
mod ownership;
mod seed;
mod validate;
mod watch;
