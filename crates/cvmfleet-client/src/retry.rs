//! The retry policy, in one place: which failures are retried for which actions, and how long to
//! wait before the next attempt. Everything here is a pure function of its inputs (the jitter
//! draw included), so the whole policy is unit-tested without a network or a clock.
//!
//! # What may be retried
//!
//! A failure falls in one of three classes ([`classify`]):
//!
//! - **Not processed**: the service certainly did not act on the request. That is a throttling
//!   answer (`RequestLimitExceeded` and its sub-codes `.UinLimitExceeded`, `.IPLimitExceeded`,
//!   `.GlobalRegionUinLimitExceeded`: Tencent's frequency limiter rejects the call before it is
//!   dispatched to CVM, and its documented remedy is "delay and retry"), the Tag service's
//!   `FailedOperation.ResourceTagProcessing` (资源标签正在处理中: another change of the
//!   resource's tags is under way, this one was refused), or a failure to connect at all (no
//!   byte of the request left this machine).
//! - **Ambiguous**: the request may or may not have been acted on. Transport errors after the
//!   connection was made, timeouts, HTTP statuses 5xx/429 from a gateway, and the service's own
//!   `InternalError*` / `InternalServerError` / `ServiceUnavailable` (the service says it failed,
//!   not that it did nothing: `InternalError.TradeUnknownError` on RunInstances is the textbook
//!   case of an outcome nobody knows).
//! - **Permanent**: a verdict on the request itself (validation, auth, quota, state conflicts,
//!   malformed responses). Sending it again gives the same answer.
//!
//! Then [`may_retry`] decides per action:
//!
//! - Not processed → every action is retried, mutations included: repeating a request that was
//!   never processed cannot do anything twice.
//! - Ambiguous → reads are retried (they change nothing), and so are the Tag service's
//!   mutations (`TagResources`, `UnTagResources`, `ModifyResourceTags`): they set named keys to
//!   given values or remove them, so the same request twice leaves what it leaves once
//!   ([`Action::is_idempotent`]). `RunInstances` is retried only when it
//!   carries a `ClientToken`: the client resends the very same body, so the same token, and the
//!   service returns the instances created by the first attempt instead of creating more.
//!   Every other mutation (`TerminateInstances`, `ModifyInstancesAttribute`, `StartInstances`,
//!   `StopInstances`) is **not** retried: Tencent offers no idempotency token for them, and they
//!   are not idempotent in effect. A second `TerminateInstances` on a prepaid instance that the
//!   first call moved to the recycle bin destroys it for good; a repeated `HostName` change
//!   reboots the instance again; repeated Start/Stop answer `UnsupportedOperation.InstanceState*`
//!   errors that would hide the first call's success. The caller re-reads the instances and
//!   decides again (the reconciler's next pass).
//! - Permanent → never retried.
//!
//! Malformed responses are permanent on purpose: a body that is not a Tencent envelope almost
//! always means a wrong endpoint or an incompatible server, which retrying does not fix.
//!
//! # How long to wait
//!
//! Attempt `n` (1-based) failed → wait `min(max_backoff, base_backoff · 2^(n-1))`, of which the
//! upper half is jittered ("equal jitter": at least half the nominal delay, so throttled callers
//! really slow down, and not all at the same instant).

use std::time::Duration;

use cvmfleet_wire::{Action, codes};

use crate::error::Error;
pub use crate::error::{FailureClass, classify};

/// How the client retries failed attempts.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per call, the first included; 1 disables retries.
    pub max_attempts: u32,
    /// Nominal wait after the first failed attempt; doubles with every further failure.
    pub base_backoff: Duration,
    /// Cap on the nominal wait.
    pub max_backoff: Duration,
    /// Seed of the jitter generator; `None` seeds it randomly. Tests fix it for determinism.
    pub jitter_seed: Option<u64>,
}

impl Default for RetryPolicy {
    /// Five attempts, waiting 0.25 s, 0.5 s, 1 s, 2 s (nominal) in between: about 4 s in all,
    /// long enough to ride out a one-second throttling window twice over, short enough that a
    /// reconcile pass never stalls for long on a dead endpoint.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            jitter_seed: None,
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    #[must_use]
    pub fn never() -> Self {
        RetryPolicy { max_attempts: 1, ..RetryPolicy::default() }
    }

    /// The wait after failed attempt `attempt` (1-based), given a jitter draw in `[0, 1)`.
    ///
    /// The nominal delay is `base_backoff · 2^(attempt-1)` capped at `max_backoff`; the result
    /// lies in `[nominal/2, nominal)`.
    #[must_use]
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(31);
        let nominal = self.base_backoff.saturating_mul(1u32 << exponent).min(self.max_backoff);
        let jitter = if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 0.0 };
        let half = nominal / 2;
        half + half.mul_f64(jitter)
    }

    /// What to do after attempt `attempt` (1-based) of `action` failed with `error`.
    #[must_use]
    pub fn decide(
        &self,
        action: Action,
        has_client_token: bool,
        error: &Error,
        attempt: u32,
        jitter: f64,
    ) -> Decision {
        let class = classify(error);
        if !may_retry(action, has_client_token, class) {
            return Decision::GiveUp(GiveUpReason::NotRetryable(class));
        }
        if attempt >= self.max_attempts {
            return Decision::GiveUp(GiveUpReason::AttemptsExhausted);
        }
        Decision::RetryAfter(self.backoff(attempt, jitter))
    }
}

/// The outcome of [`RetryPolicy::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Wait this long, then send the same request again.
    RetryAfter(Duration),
    /// Return the error to the caller.
    GiveUp(GiveUpReason),
}

/// Why a failed call is not retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUpReason {
    /// The failure is not retryable for this action (see the module docs).
    NotRetryable(FailureClass),
    /// Every allowed attempt was used.
    AttemptsExhausted,
}

/// Whether a service error code is a throttling answer ([`codes::is_throttling`]).
#[must_use]
pub fn is_throttling_code(code: &str) -> bool {
    codes::is_throttling(code)
}

/// Whether a service error code reports a fault of the service itself
/// ([`codes::is_server_fault`]).
#[must_use]
pub fn is_server_fault_code(code: &str) -> bool {
    codes::is_server_fault(code)
}

/// Whether a failure of the given class may be retried for `action`.
#[must_use]
pub fn may_retry(action: Action, has_client_token: bool, class: FailureClass) -> bool {
    match class {
        FailureClass::NotProcessed => true,
        FailureClass::Ambiguous => {
            action.is_idempotent() || (action == Action::RunInstances && has_client_token)
        }
        FailureClass::Permanent => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: &str) -> Error {
        Error::Api {
            action: Action::DescribeInstances,
            code: code.into(),
            message: "m".into(),
            request_id: "r".into(),
        }
    }

    fn io_error() -> crate::error::BoxError {
        Box::new(std::io::Error::other("boom"))
    }

    #[test]
    fn failures_are_classified() {
        let a = Action::DescribeInstances;
        let cases = [
            (api(codes::REQUEST_LIMIT_EXCEEDED), FailureClass::NotProcessed),
            (api(codes::REQUEST_LIMIT_EXCEEDED_UIN_LIMIT_EXCEEDED), FailureClass::NotProcessed),
            (api(codes::REQUEST_LIMIT_EXCEEDED_IP_LIMIT_EXCEEDED), FailureClass::NotProcessed),
            (api(codes::REQUEST_LIMIT_EXCEEDED_GLOBAL_REGION_UIN_LIMIT_EXCEEDED), FailureClass::NotProcessed),
            (Error::Connect { action: a, source: io_error() }, FailureClass::NotProcessed),
            (api(codes::INTERNAL_ERROR), FailureClass::Ambiguous),
            (
                api(cvmfleet_wire::tag::codes::FAILED_OPERATION_RESOURCE_TAG_PROCESSING),
                FailureClass::NotProcessed,
            ),
            (api(cvmfleet_wire::tag::codes::INVALID_PARAMETER_VALUE_TAG_KEY_EMPTY), FailureClass::Permanent),
            (api(codes::INTERNAL_ERROR_TRADE_UNKNOWN_ERROR), FailureClass::Ambiguous),
            (api(codes::INTERNAL_SERVER_ERROR), FailureClass::Ambiguous),
            (api(codes::SERVICE_UNAVAILABLE), FailureClass::Ambiguous),
            (Error::Transport { action: a, source: io_error() }, FailureClass::Ambiguous),
            (Error::Timeout { action: a, after: Duration::from_secs(1) }, FailureClass::Ambiguous),
            (Error::HttpStatus { action: a, status: 502, body: String::new() }, FailureClass::Ambiguous),
            (Error::HttpStatus { action: a, status: 429, body: String::new() }, FailureClass::Ambiguous),
            (Error::HttpStatus { action: a, status: 404, body: String::new() }, FailureClass::Permanent),
            (api(codes::INVALID_PARAMETER_VALUE_RANGE), FailureClass::Permanent),
            (api(codes::AUTH_FAILURE_SIGNATURE_EXPIRE), FailureClass::Permanent),
            (api("RequestLimitExceededButNotReally"), FailureClass::Permanent),
            (api("InternalErrorish"), FailureClass::Permanent),
            (
                Error::MalformedResponse { action: a, reason: "x".into(), request_id: None },
                FailureClass::Permanent,
            ),
            (Error::InvalidRequest { action: a, reason: "x".into() }, FailureClass::Permanent),
        ];
        for (error, class) in cases {
            assert_eq!(classify(&error), class, "{error}");
            assert_eq!(error.is_retryable(), class != FailureClass::Permanent, "{error}");
        }
    }

    #[test]
    fn retry_matrix_per_action() {
        use FailureClass::*;
        for action in Action::ALL {
            let read = action.is_idempotent();
            assert!(may_retry(action, false, NotProcessed), "{action}");
            assert!(!may_retry(action, true, Permanent), "{action}");
            assert_eq!(may_retry(action, false, Ambiguous), read, "{action}");
            let with_token = read || action == Action::RunInstances;
            assert_eq!(may_retry(action, true, Ambiguous), with_token, "{action}");
        }
        // The cases the policy exists for, spelled out.
        assert!(!may_retry(Action::RunInstances, false, Ambiguous));
        assert!(may_retry(Action::RunInstances, true, Ambiguous));
        assert!(!may_retry(Action::TerminateInstances, true, Ambiguous));
        assert!(may_retry(Action::TerminateInstances, false, NotProcessed));
        assert!(!may_retry(Action::ModifyInstancesAttribute, false, Ambiguous));
        assert!(!may_retry(Action::StartInstances, false, Ambiguous));
        assert!(!may_retry(Action::StopInstances, false, Ambiguous));
        // Issue 12: the Tag mutations are idempotent; a busy resource is retried.
        assert!(may_retry(Action::TagResources, false, Ambiguous));
        assert!(may_retry(Action::ModifyResourceTags, false, Ambiguous));
        assert!(may_retry(Action::DescribeResourcesByTags, false, Ambiguous));
    }

    /// Issue 13: a create refused for stock is a planning signal, not a fault: the client gives
    /// it back at once, with or without a ClientToken, so the planner can choose another
    /// offering instead of hammering a sold-out one.
    #[test]
    fn stock_shortages_are_verdicts_never_retried_issue_13() {
        let policy = RetryPolicy::default();
        for code in codes::STOCK_SHORTAGE_CODES {
            let error = Error::Api {
                action: Action::RunInstances,
                code: code.into(),
                message: "m".into(),
                request_id: "r".into(),
            };
            assert_eq!(classify(&error), FailureClass::Permanent, "{code}");
            assert!(error.is_stock_shortage() && !error.is_retryable(), "{code}");
            for token in [false, true] {
                assert_eq!(
                    policy.decide(Action::RunInstances, token, &error, 1, 0.5),
                    Decision::GiveUp(GiveUpReason::NotRetryable(FailureClass::Permanent)),
                    "{code}"
                );
            }
        }
        assert!(!api(codes::INVALID_PARAMETER_VALUE_INSUFFICIENT_PRICE).is_stock_shortage());
        assert!(!api(codes::REQUEST_LIMIT_EXCEEDED).is_stock_shortage());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            jitter_seed: None,
        };
        let nominal: Vec<_> = (1..=6).map(|n| policy.backoff(n, 0.999_999)).collect();
        let floors: Vec<_> = (1..=6).map(|n| policy.backoff(n, 0.0)).collect();
        assert_eq!(
            floors,
            [50, 100, 200, 400, 500, 500].map(Duration::from_millis),
            "the floor is half the nominal delay"
        );
        for (n, (lo, hi)) in floors.iter().zip(&nominal).enumerate() {
            assert!(lo <= hi && *hi < lo.saturating_mul(2) + Duration::from_millis(1), "attempt {n}");
        }
        // Huge attempt numbers neither overflow nor exceed the cap.
        assert!(policy.backoff(u32::MAX, 0.5) <= Duration::from_millis(1000));
        // Out-of-range jitter is clamped.
        assert_eq!(policy.backoff(1, f64::NAN), Duration::from_millis(50));
        assert_eq!(policy.backoff(1, 7.0), Duration::from_millis(100));
    }

    #[test]
    fn decide_combines_class_and_budget() {
        let policy = RetryPolicy { max_attempts: 3, ..RetryPolicy::default() };
        let throttled = api(codes::REQUEST_LIMIT_EXCEEDED);
        let run = Action::RunInstances;
        assert_eq!(
            policy.decide(run, false, &throttled, 1, 0.0),
            Decision::RetryAfter(Duration::from_millis(125))
        );
        assert_eq!(
            policy.decide(run, false, &throttled, 3, 0.0),
            Decision::GiveUp(GiveUpReason::AttemptsExhausted)
        );
        let internal = api(codes::INTERNAL_ERROR);
        assert_eq!(
            policy.decide(run, false, &internal, 1, 0.0),
            Decision::GiveUp(GiveUpReason::NotRetryable(FailureClass::Ambiguous))
        );
        assert!(matches!(policy.decide(run, true, &internal, 2, 0.5), Decision::RetryAfter(_)));
        assert_eq!(
            RetryPolicy::never().decide(Action::DescribeInstances, false, &throttled, 1, 0.0),
            Decision::GiveUp(GiveUpReason::AttemptsExhausted)
        );
    }

    #[test]
    fn seeded_jitter_is_deterministic() {
        let policy = RetryPolicy::default();
        let draw = |seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            (1..=4).map(|n| policy.backoff(n, rng.f64())).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }
}
