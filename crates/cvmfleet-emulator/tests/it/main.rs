//! Integration tests of the CVM emulator: one binary, a module per feature. Each test starts
//! its own emulator on an ephemeral loopback port.

mod agreement;
mod common;
mod conformance;
mod describe;
mod faults;
mod hostile;
mod lifecycle;
mod market;
mod persistence;
mod seed;
mod tags;
mod wire;
