//! Counters the admin endpoint reports: requests per action, error codes per action, injected
//! faults per kind, instances ever created, RunInstances requests per offering.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use cvmfleet_wire::vocab::InstanceChargeType;

/// The key of [`Stats::run_instances`].
fn offering_key(zone: &str, instance_type: &str, charge_type: &str) -> String {
    format!("{zone}/{instance_type}/{charge_type}")
}

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
    /// RunInstances requests per offering they name, keyed `zone/instance type/charge type`
    /// (POSTPAID_BY_HOUR when the request names no charge type), counted on arrival like
    /// [`Stats::requests`]: refused, faulted and replayed ones included. Tests of capacity-aware
    /// placement count the attempts on one offering with it ([`Stats::run_instances_on`]).
    #[serde(default)]
    pub run_instances: BTreeMap<String, u64>,
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

    /// Counts a RunInstances request by the offering its flattened `params` name.
    pub(crate) fn run_instances_request(&mut self, params: &[(String, String)]) {
        let param = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        let key = offering_key(
            param("Placement.Zone").unwrap_or_default(),
            param("InstanceType").unwrap_or_default(),
            param("InstanceChargeType").unwrap_or(InstanceChargeType::PostpaidByHour.as_str()),
        );
        *self.run_instances.entry(key).or_default() += 1;
    }

    pub(crate) fn fault(&mut self, kind: &str) {
        *self.faults.entry(kind.to_owned()).or_default() += 1;
    }

    /// Requests of one action.
    #[must_use]
    pub fn requests_of(&self, action: &str) -> u64 {
        self.requests.get(action).copied().unwrap_or_default()
    }

    /// RunInstances requests that named this offering (see [`Stats::run_instances`]).
    #[must_use]
    pub fn run_instances_on(&self, zone: &str, instance_type: &str, charge_type: &str) -> u64 {
        self.run_instances.get(&offering_key(zone, instance_type, charge_type)).copied().unwrap_or_default()
    }

    /// Error answers of one action with one code.
    #[must_use]
    pub fn errors_of(&self, action: &str, code: &str) -> u64 {
        self.errors.get(action).and_then(|m| m.get(code)).copied().unwrap_or_default()
    }
}
