//! Fault injection: random rates ([`FaultConfig`]) and one-shot rules ([`Rule`]), decided from
//! the world's one seeded generator when a call arrives.
//!
//! Every call draws the same six values, whatever the rates, so that changing one rate does not
//! shift the faults every later call sees.

use std::time::Duration;

use cvmfleet_wire::Action;
use cvmfleet_wire::codes;

/// Rates of random faults, as probabilities in `0.0..=1.0` per call (per created instance for
/// `launch_failure_rate`). The default injects nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultConfig {
    /// Each call sleeps a random time in `[0, latency_max]` before it is processed and another
    /// one after, before its answer is returned: this is what lets concurrent callers
    /// interleave in many orders under paused time.
    pub latency_max: Duration,
    /// Calls answered `RequestLimitExceeded` without being processed.
    pub throttle_rate: f64,
    /// Calls answered `InternalError` without being processed.
    pub error_rate: f64,
    /// Calls failing with [`cvmfleet_client::Error::Transport`] without being processed (a
    /// reset connection: ambiguous to the client).
    pub reset_rate: f64,
    /// Calls processed fully (state changed, token recorded) whose answer is then lost: the
    /// client sees [`cvmfleet_client::Error::Transport`].
    pub lose_response_rate: f64,
    /// Created instances that end `LAUNCH_FAILED` instead of `RUNNING`.
    pub launch_failure_rate: f64,
}

impl FaultConfig {
    /// The same configuration with every random fault off; latency is kept, since it only
    /// reorders calls and never stops a run from converging.
    #[must_use]
    pub fn calm(&self) -> FaultConfig {
        FaultConfig { latency_max: self.latency_max, ..FaultConfig::default() }
    }
}

/// What a one-shot [`Rule`] does to the call it fires on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleKind {
    /// Answer `RequestLimitExceeded` without processing.
    Throttle,
    /// Answer this error code without processing (e.g. `InternalError`,
    /// `ResourceInsufficient.SpecifiedInstanceType`).
    Error(String),
    /// Fail with [`cvmfleet_client::Error::Transport`] without processing.
    Reset,
    /// Process the call, then fail with [`cvmfleet_client::Error::Transport`].
    LoseResponse,
    /// Sleep this long more before processing.
    Delay(Duration),
}

/// A one-shot fault: fires once, on a matching call, after `skip` matching calls passed it.
///
/// Rules are kept in the order they were added and each counts its matching calls on its own;
/// at most one rule fires per call (the earliest one that is due), so two rules for the same
/// action fire on two successive calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The action it applies to; `None` for every action.
    pub action: Option<Action>,
    /// What it does.
    pub kind: RuleKind,
    /// How many matching calls pass before it fires.
    pub skip: u32,
}

impl Rule {
    /// A rule firing on the next call of `action`.
    #[must_use]
    pub fn next(action: Action, kind: RuleKind) -> Rule {
        Rule { action: Some(action), kind, skip: 0 }
    }

    /// A rule firing on the next call of any action.
    #[must_use]
    pub fn any(kind: RuleKind) -> Rule {
        Rule { action: None, kind, skip: 0 }
    }

    /// The same rule, letting `skip` matching calls pass first.
    #[must_use]
    pub fn after(self, skip: u32) -> Rule {
        Rule { skip, ..self }
    }
}

/// What happens to one call instead of (or besides) its processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pre {
    /// A broken exchange: [`cvmfleet_client::Error::Transport`].
    Reset,
    /// An answered error with this code.
    Error(String),
}

/// The faults of one call, decided on arrival.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Decision {
    pub(crate) before: Duration,
    pub(crate) after: Duration,
    pub(crate) pre: Option<Pre>,
    pub(crate) lose_response: bool,
}

/// Decides the faults of a call of `action`, consuming the rule that fires.
pub(crate) fn decide(
    config: &FaultConfig,
    rules: &mut Vec<Rule>,
    rng: &mut fastrand::Rng,
    action: Action,
) -> Decision {
    let max = u64::try_from(config.latency_max.as_micros()).unwrap_or(u64::MAX);
    let before = Duration::from_micros(rng.u64(0..=max));
    let after = Duration::from_micros(rng.u64(0..=max));
    let (reset, error, throttle, lose) = (rng.f64(), rng.f64(), rng.f64(), rng.f64());
    let pre = if reset < config.reset_rate {
        Some(Pre::Reset)
    } else if error < config.error_rate {
        Some(Pre::Error(codes::INTERNAL_ERROR.into()))
    } else if throttle < config.throttle_rate {
        Some(Pre::Error(codes::REQUEST_LIMIT_EXCEEDED.into()))
    } else {
        None
    };
    let mut decision = Decision { before, after, pre, lose_response: lose < config.lose_response_rate };

    let mut fired = None;
    for (i, rule) in rules.iter_mut().enumerate() {
        if rule.action.is_some_and(|a| a != action) {
            continue;
        }
        if rule.skip > 0 {
            rule.skip -= 1;
        } else if fired.is_none() {
            fired = Some(i);
        }
    }
    if let Some(i) = fired {
        match rules.remove(i).kind {
            RuleKind::Throttle => decision.pre = Some(Pre::Error(codes::REQUEST_LIMIT_EXCEEDED.into())),
            RuleKind::Error(code) => decision.pre = Some(Pre::Error(code)),
            RuleKind::Reset => decision.pre = Some(Pre::Reset),
            RuleKind::LoseResponse => decision.lose_response = true,
            RuleKind::Delay(delay) => decision.before += delay,
        }
    }
    decision
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_skip_then_fire_once_in_order() {
        let mut rng = fastrand::Rng::with_seed(1);
        let config = FaultConfig::default();
        let mut rules = vec![
            Rule::next(Action::RunInstances, RuleKind::Reset).after(1),
            Rule::next(Action::RunInstances, RuleKind::LoseResponse),
            Rule::any(RuleKind::Throttle).after(5),
        ];
        let mut run = |action| decide(&config, &mut rules, &mut rng, action);
        // Call 1: the reset rule lets it pass; the lose rule is due and fires.
        assert!(run(Action::RunInstances).lose_response);
        assert_eq!(run(Action::DescribeInstances), Decision::default());
        assert_eq!(run(Action::RunInstances).pre, Some(Pre::Reset));
        assert_eq!(run(Action::RunInstances), Decision::default());
        assert_eq!(run(Action::TerminateInstances), Decision::default());
        assert_eq!(run(Action::TerminateInstances).pre, Some(Pre::Error("RequestLimitExceeded".into())));
        assert!(rules.is_empty());
    }

    #[test]
    fn calm_keeps_latency_only() {
        let noisy = FaultConfig {
            latency_max: Duration::from_millis(5),
            error_rate: 0.5,
            launch_failure_rate: 1.0,
            ..FaultConfig::default()
        };
        assert_eq!(
            noisy.calm(),
            FaultConfig { latency_max: Duration::from_millis(5), ..FaultConfig::default() }
        );
    }
}
