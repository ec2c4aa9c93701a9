//! Counters the admin endpoint reports: requests per action, error codes per action, injected
//! faults per kind, instances ever created.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Counts of what the emulator has answered since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// API requests per action name (`-` when the request named no action).
    pub requests: BTreeMap<String, u64>,
    /// Error answers per action name and error code.
    pub errors: BTreeMap<String, BTreeMap<String, u64>>,
    /// Injected faults per kind (`latency`, `reset`, `lose_response`, `error`, `launch_failure`,
    /// `stock_vanished`: launches in a low-stock offering that lost their stock).
    pub faults: BTreeMap<String, u64>,
    /// Instances currently in the state, in every region.
    pub instances: u64,
    /// Instances RunInstances created since the emulator started, in every region, whatever
    /// became of them since (`LAUNCH_FAILED` and terminated ones included). A replayed
    /// ClientToken and a DryRun create nothing and add nothing: tests compare this with the
    /// number of creations a scenario allows, which catches duplicates that were cleaned up
    /// before the end.
    #[serde(default)]
    pub instances_created: u64,
}

impl Stats {
    pub(crate) fn request(&mut self, action: &str) {
        *self.requests.entry(action.to_owned()).or_default() += 1;
    }

    pub(crate) fn error(&mut self, action: &str, code: &str) {
        *self.errors.entry(action.to_owned()).or_default().entry(code.to_owned()).or_default() += 1;
    }

    pub(crate) fn created(&mut self, count: usize) {
        self.instances_created += count as u64;
    }

    pub(crate) fn fault(&mut self, kind: &str) {
        *self.faults.entry(kind.to_owned()).or_default() += 1;
    }

    /// Requests of one action.
    #[must_use]
    pub fn requests_of(&self, action: &str) -> u64 {
        self.requests.get(action).copied().unwrap_or_default()
    }

    /// Error answers of one action with one code.
    #[must_use]
    pub fn errors_of(&self, action: &str, code: &str) -> u64 {
        self.errors.get(action).and_then(|m| m.get(code)).copied().unwrap_or_default()
    }
}
