//! Fault injection, deterministic under a seed: added latency, injected `InternalError` and
//! `RequestLimitExceeded`, connection resets, lost responses and launch failures, as rates
//! ([`FaultConfig`]) and as one-shot rules ([`FaultRule`]) such as "lose the next RunInstances
//! response". The same generator decides which launches in a low-stock offering fail because
//! their stock vanished, and when SPOTPAID instances are reclaimed.
//!
//! Every API request draws the same number of random values from one seeded generator, in
//! arrival order, so a run of sequential requests sees the same faults under the same seed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use cvmfleet_wire::Action;
use serde::{Deserialize, Serialize};

use cvmfleet_cloud::ApiError;
use cvmfleet_cloud::{LaunchDraw, LaunchFate};

/// Rates of random faults. Rates are probabilities in `0.0..=1.0` per request (per instance
/// for `launch_failure_rate`, `low_stock_launch_failure_rate` and `spot_reclaim_rate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Latency added before every API request, in milliseconds.
    pub latency_ms: u64,
    /// Extra latency drawn uniformly from `0..=latency_jitter_ms`.
    pub latency_jitter_ms: u64,
    /// Requests answered `InternalError` without being processed.
    pub error_rate: f64,
    /// Requests answered `RequestLimitExceeded` without being processed.
    pub throttle_rate: f64,
    /// Requests whose connection is reset (TCP RST) before they are processed.
    pub reset_rate: f64,
    /// Requests that are processed (the action takes effect) and whose connection is then
    /// closed without an HTTP response.
    pub lose_response_rate: f64,
    /// New instances that go from `PENDING` to `LAUNCH_FAILED` instead of `RUNNING`.
    pub launch_failure_rate: f64,
    /// New instances of an offering that was low on stock (`UnderStock`) when the request came
    /// that go `LAUNCH_FAILED` because the stock vanished after acceptance (their unit of stock
    /// goes with them). 0 by default.
    pub low_stock_launch_failure_rate: f64,
    /// New SPOTPAID instances that the cloud reclaims, at a time drawn uniformly within
    /// `spot_reclaim_within_ms` after they run. 0 by default.
    pub spot_reclaim_rate: f64,
    /// The window of `spot_reclaim_rate`, in milliseconds (one hour by default; 0 reclaims as
    /// soon as the instance runs).
    pub spot_reclaim_within_ms: u64,
    /// Actions the rate-based request faults apply to; empty means every action. Latency
    /// applies to every action.
    pub actions: BTreeSet<String>,
    /// When set, the fault generator restarts from this seed as the config is applied.
    pub seed: Option<u64>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            latency_ms: 0,
            latency_jitter_ms: 0,
            error_rate: 0.0,
            throttle_rate: 0.0,
            reset_rate: 0.0,
            lose_response_rate: 0.0,
            launch_failure_rate: 0.0,
            low_stock_launch_failure_rate: 0.0,
            spot_reclaim_rate: 0.0,
            spot_reclaim_within_ms: 3_600_000,
            actions: BTreeSet::new(),
            seed: None,
        }
    }
}

impl FaultConfig {
    /// Checks rates and action names.
    ///
    /// # Errors
    /// A message naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("throttle_rate", self.throttle_rate),
            ("reset_rate", self.reset_rate),
            ("lose_response_rate", self.lose_response_rate),
            ("launch_failure_rate", self.launch_failure_rate),
            ("low_stock_launch_failure_rate", self.low_stock_launch_failure_rate),
            ("spot_reclaim_rate", self.spot_reclaim_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1, got {rate}"));
            }
        }
        if let Some(bad) = self.actions.iter().find(|a| a.parse::<Action>().is_err()) {
            return Err(format!("unknown action `{bad}` in actions"));
        }
        Ok(())
    }
}

/// What a one-shot rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer `InternalError` without processing.
    InternalError,
    /// Answer `RequestLimitExceeded` without processing.
    RequestLimitExceeded,
    /// Answer with `code` and `message` without processing.
    Error,
    /// Reset the connection before processing.
    Reset,
    /// Process the request, then close the connection without an answer.
    LoseResponse,
    /// Delay the request by `latency_ms`.
    Latency,
    /// Make the next created instances fail to launch (`count` instances; RunInstances only).
    LaunchFailure,
}

/// A one-shot fault: applies to the next `count` matching requests after letting `skip` pass.
/// A request matches when it names the rule's action and carries the rule's `params`.
///
/// ```json
/// {"action": "RunInstances", "kind": "lose_response", "count": 1}
/// {"action": "TerminateInstances", "kind": "error", "code": "InternalError", "message": "boom"}
/// {"action": "RunInstances", "kind": "latency", "latency_ms": 1000, "params": {"InstanceCount": "100"}}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// The action it applies to; any action when absent.
    #[serde(default)]
    pub action: Option<String>,
    /// What it does.
    pub kind: FaultKind,
    /// How many requests (instances for `launch_failure`) it affects.
    #[serde(default = "one")]
    pub count: u32,
    /// How many matching requests (instances) pass unaffected first.
    #[serde(default)]
    pub skip: u32,
    /// Error code for `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Error message for `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Delay for `latency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Parameters a request must carry to match, by flattened name (`InstanceCount`,
    /// `Placement.Zone`) and value as text (`100`): of several requests sent at once, this
    /// picks one by what it asks for rather than by which arrives first. Empty: any request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
}

fn one() -> u32 {
    1
}

impl FaultRule {
    /// A rule of `kind` for the next request of `action`.
    #[must_use]
    pub fn new(action: Option<Action>, kind: FaultKind) -> Self {
        FaultRule {
            action: action.map(|a| a.as_str().to_owned()),
            kind,
            count: 1,
            skip: 0,
            code: None,
            message: None,
            latency_ms: None,
            params: BTreeMap::new(),
        }
    }

    /// Lose the response of the next request of `action` (it still takes effect).
    #[must_use]
    pub fn lose_response(action: Action) -> Self {
        FaultRule::new(Some(action), FaultKind::LoseResponse)
    }

    /// Reset the connection of the next request of `action` (it does not take effect).
    #[must_use]
    pub fn reset(action: Action) -> Self {
        FaultRule::new(Some(action), FaultKind::Reset)
    }

    /// Answer the next request of `action` with an error, without processing it.
    #[must_use]
    pub fn error(action: Action, code: impl Into<String>, message: impl Into<String>) -> Self {
        FaultRule {
            code: Some(code.into()),
            message: Some(message.into()),
            ..FaultRule::new(Some(action), FaultKind::Error)
        }
    }

    /// Make the next `count` instances fail to launch.
    #[must_use]
    pub fn launch_failures(count: u32) -> Self {
        FaultRule { count, ..FaultRule::new(Some(Action::RunInstances), FaultKind::LaunchFailure) }
    }

    /// The same rule for `count` requests.
    #[must_use]
    pub fn times(self, count: u32) -> Self {
        FaultRule { count, ..self }
    }

    /// The same rule, letting `skip` matching requests pass first.
    #[must_use]
    pub fn after(self, skip: u32) -> Self {
        FaultRule { skip, ..self }
    }

    /// The same rule, for requests whose flattened parameter `name` is `value` only.
    #[must_use]
    pub fn when(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.insert(name.into(), value.into());
        self
    }

    /// Whether a request of `action` with (flattened) `params` matches the rule.
    fn matches(&self, action: &str, params: &[(String, String)]) -> bool {
        self.action.as_deref().is_none_or(|a| a == action)
            && self.params.iter().all(|(name, value)| params.iter().any(|(n, v)| n == name && v == value))
    }

    /// Checks the action name and the fields the kind needs.
    ///
    /// # Errors
    /// A message naming the problem.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(a) = &self.action {
            a.parse::<Action>().map_err(|e| e.to_string())?;
        }
        if self.count == 0 {
            return Err("count must be at least 1".into());
        }
        match self.kind {
            FaultKind::Error if self.code.as_deref().is_none_or(str::is_empty) => {
                Err("an `error` rule needs a `code`".into())
            }
            FaultKind::Latency if self.latency_ms.is_none() => {
                Err("a `latency` rule needs `latency_ms`".into())
            }
            FaultKind::LaunchFailure if self.action.as_deref().is_some_and(|a| a != "RunInstances") => {
                Err("a `launch_failure` rule applies to RunInstances only".into())
            }
            FaultKind::LaunchFailure if !self.params.is_empty() => {
                Err("a `launch_failure` rule counts instances and cannot match `params`".into())
            }
            _ => Ok(()),
        }
    }
}

/// What a request suffers before it is processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PreFault {
    /// Reset the connection.
    Reset,
    /// Answer this error.
    Error(ApiError),
}

/// The faults decided for one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Decision {
    pub(crate) latency: Duration,
    pub(crate) pre: Option<PreFault>,
    pub(crate) lose_response: bool,
}

/// The live fault state: config, generator and pending one-shot rules.
#[derive(Debug)]
pub(crate) struct Faults {
    config: FaultConfig,
    rng: fastrand::Rng,
    rules: VecDeque<FaultRule>,
}

impl Faults {
    pub(crate) fn new(config: FaultConfig, seed: u64) -> Self {
        let rng = fastrand::Rng::with_seed(config.seed.unwrap_or(seed));
        Faults { config, rng, rules: VecDeque::new() }
    }

    pub(crate) fn config(&self) -> &FaultConfig {
        &self.config
    }

    pub(crate) fn rules(&self) -> Vec<FaultRule> {
        self.rules.iter().cloned().collect()
    }

    pub(crate) fn set_config(&mut self, config: FaultConfig) {
        if let Some(seed) = config.seed {
            self.rng = fastrand::Rng::with_seed(seed);
        }
        self.config = config;
    }

    pub(crate) fn push(&mut self, rule: FaultRule) {
        self.rules.push_back(rule);
    }

    pub(crate) fn clear(&mut self) {
        self.config = FaultConfig::default();
        self.rules.clear();
    }

    /// Whether a pending rule matches on parameters, so that [`Faults::decide`] needs them.
    pub(crate) fn wants_params(&self) -> bool {
        self.rules.iter().any(|r| !r.params.is_empty())
    }

    /// Decides the faults of one request of `action` (the raw name, which may be unknown) with
    /// its flattened `params` (needed only when [`Faults::wants_params`]).
    pub(crate) fn decide(&mut self, action: &str, params: &[(String, String)]) -> Decision {
        // Always draw the same values so that one config's sequence does not depend on rates.
        let jitter = self.rng.u64(0..=self.config.latency_jitter_ms);
        let reset = self.rng.f64();
        let error = self.rng.f64();
        let throttle = self.rng.f64();
        let lose = self.rng.f64();

        let mut decision = Decision {
            latency: Duration::from_millis(self.config.latency_ms.saturating_add(jitter)),
            ..Decision::default()
        };
        let targeted = self.config.actions.is_empty() || self.config.actions.contains(action);
        if targeted {
            if reset < self.config.reset_rate {
                decision.pre = Some(PreFault::Reset);
            } else if error < self.config.error_rate {
                decision.pre =
                    Some(PreFault::Error(ApiError::internal("An internal error occurred (injected fault).")));
            } else if throttle < self.config.throttle_rate {
                decision.pre = Some(PreFault::Error(throttled()));
            }
            decision.lose_response = lose < self.config.lose_response_rate;
        }

        for rule in &mut self.rules {
            if rule.kind == FaultKind::LaunchFailure || !rule.matches(action, params) {
                continue;
            }
            if rule.skip > 0 {
                rule.skip -= 1;
                continue;
            }
            rule.count -= 1;
            match rule.kind {
                FaultKind::Latency => {
                    decision.latency += Duration::from_millis(rule.latency_ms.unwrap_or_default());
                }
                FaultKind::LoseResponse => decision.lose_response = true,
                FaultKind::Reset => decision.pre = Some(PreFault::Reset),
                FaultKind::InternalError if decision.pre.is_none() => {
                    decision.pre = Some(PreFault::Error(ApiError::internal(
                        "An internal error occurred (injected fault).",
                    )));
                }
                FaultKind::RequestLimitExceeded if decision.pre.is_none() => {
                    decision.pre = Some(PreFault::Error(throttled()));
                }
                FaultKind::Error if decision.pre.is_none() => {
                    decision.pre = Some(PreFault::Error(ApiError::new(
                        rule.code.clone().unwrap_or_else(|| "InternalError".into()),
                        rule.message.clone().unwrap_or_else(|| "Injected fault.".into()),
                    )));
                }
                _ => rule.count += 1,
            }
        }
        self.rules.retain(|r| r.count > 0);
        decision
    }

    /// What becomes of the next created instance: the launch-failure draw and rules, then, for
    /// an instance of a low-stock offering, whether its stock vanishes, and for a SPOTPAID one,
    /// whether and when it is reclaimed.
    pub(crate) fn launch_fate(&mut self, draw: LaunchDraw) -> LaunchFate {
        let fails = self.launch_fails();
        let stock_vanishes = draw.low_stock && self.rng.f64() < self.config.low_stock_launch_failure_rate;
        let reclaim_after_ms = if draw.spot {
            let (reclaimed, when) = (self.rng.f64(), self.rng.f64());
            #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
            let after = (when * self.config.spot_reclaim_within_ms as f64) as i64;
            (reclaimed < self.config.spot_reclaim_rate).then_some(after)
        } else {
            None
        };
        LaunchFate { fails, stock_vanishes, reclaim_after_ms }
    }

    /// Whether the next created instance fails to launch.
    pub(crate) fn launch_fails(&mut self) -> bool {
        let draw = self.rng.f64();
        let mut fails = draw < self.config.launch_failure_rate
            && (self.config.actions.is_empty() || self.config.actions.contains("RunInstances"));
        if let Some(rule) = self.rules.iter_mut().find(|r| r.kind == FaultKind::LaunchFailure) {
            if rule.skip > 0 {
                rule.skip -= 1;
            } else {
                rule.count -= 1;
                fails = true;
            }
        }
        self.rules.retain(|r| r.count > 0);
        fails
    }
}

fn throttled() -> ApiError {
    ApiError::new(
        "RequestLimitExceeded",
        "Your current request rate has exceeded the limit (injected fault).",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_deterministic_under_a_seed() {
        let config = FaultConfig { error_rate: 0.3, lose_response_rate: 0.2, ..FaultConfig::default() };
        let run = || {
            let mut f = Faults::new(config.clone(), 7);
            (0..200).map(|_| f.decide("DescribeInstances", &[])).collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        let errors = a.iter().filter(|d| d.pre.is_some()).count();
        assert!((30..90).contains(&errors), "{errors}");
        assert!(a.iter().any(|d| d.lose_response));
    }

    #[test]
    fn targeting_limits_rates_to_actions() {
        let config = FaultConfig {
            error_rate: 1.0,
            actions: ["RunInstances".to_owned()].into(),
            ..FaultConfig::default()
        };
        let mut f = Faults::new(config, 1);
        assert!(f.decide("DescribeInstances", &[]).pre.is_none());
        assert!(f.decide("RunInstances", &[]).pre.is_some());
    }

    #[test]
    fn one_shot_rules_skip_then_fire_then_expire() {
        let mut f = Faults::new(FaultConfig::default(), 1);
        f.push(FaultRule::lose_response(Action::RunInstances).after(1).times(2));
        f.push(FaultRule::error(Action::TerminateInstances, "InternalError", "x"));
        assert!(!f.decide("DescribeInstances", &[]).lose_response);
        assert!(!f.decide("RunInstances", &[]).lose_response);
        assert!(f.decide("RunInstances", &[]).lose_response);
        assert!(f.decide("RunInstances", &[]).lose_response);
        assert!(!f.decide("RunInstances", &[]).lose_response);
        let d = f.decide("TerminateInstances", &[]);
        assert_eq!(d.pre, Some(PreFault::Error(ApiError::new("InternalError", "x"))));
        assert!(f.decide("TerminateInstances", &[]).pre.is_none());
        assert!(f.rules().is_empty());
    }

    #[test]
    fn rules_with_params_pick_requests_by_what_they_ask() {
        let mut f = Faults::new(FaultConfig::default(), 1);
        f.push(FaultRule::lose_response(Action::RunInstances).when("InstanceCount", "100"));
        assert!(f.wants_params());
        let fifty = [("InstanceCount".to_owned(), "50".to_owned())];
        let hundred =
            [("Placement.Zone".to_owned(), "z".to_owned()), ("InstanceCount".to_owned(), "100".to_owned())];
        assert!(!f.decide("RunInstances", &fifty).lose_response);
        assert!(!f.decide("DescribeInstances", &hundred).lose_response);
        assert!(f.decide("RunInstances", &hundred).lose_response);
        assert!(!f.decide("RunInstances", &hundred).lose_response);
        assert!(!f.wants_params());
        assert!(FaultRule::launch_failures(1).when("InstanceCount", "1").validate().is_err());
        let rule: FaultRule = serde_json::from_str(
            r#"{"action":"RunInstances","kind":"lose_response","params":{"InstanceCount":"100"}}"#,
        )
        .unwrap();
        assert_eq!(rule, FaultRule::lose_response(Action::RunInstances).when("InstanceCount", "100"));
    }

    #[test]
    fn launch_failure_rules_count_instances() {
        let mut f = Faults::new(FaultConfig::default(), 1);
        f.push(FaultRule::launch_failures(2).after(1));
        let outcomes: Vec<bool> = (0..4).map(|_| f.launch_fails()).collect();
        assert_eq!(outcomes, [false, true, true, false]);
        // Launch-failure rules never touch request-level decisions.
        f.push(FaultRule::launch_failures(1));
        assert_eq!(f.decide("RunInstances", &[]), Decision::default());
        assert!(f.launch_fails());
    }

    #[test]
    fn stock_and_spot_fates_are_seeded() {
        let config = FaultConfig {
            low_stock_launch_failure_rate: 0.5,
            spot_reclaim_rate: 0.5,
            spot_reclaim_within_ms: 1_000,
            ..FaultConfig::default()
        };
        let draw = LaunchDraw { low_stock: true, spot: true };
        let run = || {
            let mut f = Faults::new(config.clone(), 3);
            (0..100).map(|_| f.launch_fate(draw)).collect::<Vec<_>>()
        };
        let fates = run();
        assert_eq!(fates, run());
        let vanished = fates.iter().filter(|f| f.stock_vanishes).count();
        let reclaimed: Vec<i64> = fates.iter().filter_map(|f| f.reclaim_after_ms).collect();
        assert!((25..75).contains(&vanished), "{vanished}");
        assert!((25..75).contains(&reclaimed.len()), "{}", reclaimed.len());
        assert!(reclaimed.iter().all(|ms| (0..=1_000).contains(ms)));
        let mut calm = Faults::new(FaultConfig::default(), 3);
        assert_eq!(calm.launch_fate(draw), LaunchFate::default());
        let plain = LaunchDraw { low_stock: false, spot: false };
        let mut f = Faults::new(config, 3);
        assert!((0..100).all(|_| f.launch_fate(plain) == LaunchFate::default()));
    }

    #[test]
    fn validation() {
        assert!(FaultConfig { spot_reclaim_rate: -0.1, ..FaultConfig::default() }.validate().is_err());
        assert!(FaultConfig { error_rate: 1.5, ..FaultConfig::default() }.validate().is_err());
        assert!(
            FaultConfig { actions: ["Nope".to_owned()].into(), ..FaultConfig::default() }.validate().is_err()
        );
        assert!(FaultRule::new(None, FaultKind::Error).validate().is_err());
        assert!(FaultRule::new(None, FaultKind::Latency).validate().is_err());
        assert!(FaultRule::lose_response(Action::RunInstances).validate().is_ok());
        let rule: FaultRule =
            serde_json::from_str(r#"{"action":"RunInstances","kind":"lose_response"}"#).unwrap();
        assert_eq!(rule, FaultRule::lose_response(Action::RunInstances));
    }
}
