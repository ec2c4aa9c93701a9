//! Client-side rate limiting: one token bucket per action, on `tokio::time`, so that tests with
//! paused time control it completely.
//!
//! Tencent limits each action per (action, access region, sub-account), measured on arrival at
//! the API server. One client talks to one endpoint with one key, so one bucket per action is
//! the matching dimension, shared by every region the client calls.
//!
//! A bucket admits `burst` calls at once and then one every `1/per_second`. The default burst
//! is 1: with a refill of `per_second`, a burst of `b` lets `b + per_second` calls land in one
//! second, so only `b = 1` keeps a one-second window at the published limit (plus the edge).
//!
//! When the service still answers `RequestLimitExceeded` (other clients share the same
//! sub-account quota), [`RateLimiter::slow_down`] halves the action's rate, down to an eighth of
//! the configured rate, for a cool-down period after the last throttling answer.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use cvmfleet_wire::Action;
use tokio::time::Instant;

/// The rate of one action.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained calls per second; `f64::INFINITY` disables the limit.
    pub per_second: f64,
    /// Calls admitted at once when the bucket is full (at least 1).
    pub burst: u32,
}

impl RateLimit {
    /// `per_second` calls per second, admitted one at a time.
    #[must_use]
    pub fn per_second(per_second: u32) -> Self {
        RateLimit { per_second: f64::from(per_second), burst: 1 }
    }

    /// No limit (for benchmarks and emulators).
    #[must_use]
    pub fn unlimited() -> Self {
        RateLimit { per_second: f64::INFINITY, burst: 1 }
    }

    /// Tencent's published default for the action.
    #[must_use]
    pub fn published(action: Action) -> Self {
        RateLimit::per_second(action.published_rate_limit())
    }

    /// Why the limit is unusable, if it is.
    pub(crate) fn problem(&self) -> Option<&'static str> {
        if self.per_second.is_nan() || self.per_second <= 0.0 {
            Some("the rate must be a positive number of calls per second")
        } else if self.burst == 0 {
            Some("the burst must be at least 1")
        } else {
            None
        }
    }
}

/// Slowest a throttled bucket gets, as a fraction of its configured rate (three halvings).
const MIN_SLOWDOWN: f64 = 1.0 / 8.0;

#[derive(Debug)]
struct Bucket {
    limit: RateLimit,
    /// The rate in force: `limit.per_second`, or less while slowed down.
    rate: f64,
    /// Tokens available; negative when calls are already waiting for future tokens.
    tokens: f64,
    last: Instant,
    slowed_until: Option<Instant>,
}

impl Bucket {
    fn new(limit: RateLimit, now: Instant) -> Self {
        Bucket {
            limit,
            rate: limit.per_second,
            tokens: f64::from(limit.burst),
            last: now,
            slowed_until: None,
        }
    }

    fn refill(&mut self, now: Instant) {
        if self.slowed_until.is_some_and(|until| now >= until) {
            self.slowed_until = None;
            self.rate = self.limit.per_second;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(f64::from(self.limit.burst));
        self.last = now;
    }

    /// Takes a token and returns how long the caller must wait before using it.
    fn reserve(&mut self, now: Instant) -> Duration {
        if self.limit.per_second.is_infinite() {
            return Duration::ZERO;
        }
        self.refill(now);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::try_from_secs_f64(-self.tokens / self.rate).unwrap_or(Duration::MAX)
        }
    }

    fn slow_down(&mut self, now: Instant, cooldown: Duration) {
        if self.limit.per_second.is_infinite() {
            return;
        }
        self.refill(now);
        self.rate = (self.rate / 2.0).max(self.limit.per_second * MIN_SLOWDOWN);
        self.slowed_until = Some(now + cooldown);
    }
}

/// One token bucket per action.
#[derive(Debug)]
pub struct RateLimiter {
    buckets: BTreeMap<Action, Mutex<Bucket>>,
    cooldown: Duration,
}

impl RateLimiter {
    /// Buckets for every action: the given limits, Tencent's published ones for the rest.
    #[must_use]
    pub fn new(limits: &BTreeMap<Action, RateLimit>, cooldown: Duration) -> Self {
        let now = Instant::now();
        let buckets = Action::ALL
            .into_iter()
            .map(|action| {
                let limit = limits.get(&action).copied().unwrap_or_else(|| RateLimit::published(action));
                (action, Mutex::new(Bucket::new(limit, now)))
            })
            .collect();
        RateLimiter { buckets, cooldown }
    }

    /// Waits until `action` may be called.
    pub async fn acquire(&self, action: Action) {
        let wait = self.with_bucket(action, |bucket, now| bucket.reserve(now)).unwrap_or_default();
        if !wait.is_zero() {
            tracing::trace!(%action, wait_ms = wait.as_millis(), "rate limit: waiting");
            tokio::time::sleep(wait).await;
        }
    }

    /// Halves `action`'s rate (to at most an eighth of the configured one) for the cool-down
    /// period; called when the service answers `RequestLimitExceeded`.
    pub fn slow_down(&self, action: Action) {
        let cooldown = self.cooldown;
        self.with_bucket(action, |bucket, now| bucket.slow_down(now, cooldown));
    }

    /// The rate currently in force for `action`, in calls per second.
    #[must_use]
    pub fn current_rate(&self, action: Action) -> Option<f64> {
        self.with_bucket(action, |bucket, now| {
            bucket.refill(now);
            bucket.rate
        })
    }

    fn with_bucket<T>(&self, action: Action, f: impl FnOnce(&mut Bucket, Instant) -> T) -> Option<T> {
        let bucket = self.buckets.get(&action)?;
        // A poisoned lock only means another caller panicked mid-update; the bucket's numbers
        // are still usable.
        let mut guard = bucket.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Some(f(&mut guard, Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(action: Action, limit: RateLimit) -> RateLimiter {
        RateLimiter::new(&BTreeMap::from([(action, limit)]), Duration::from_secs(10))
    }

    async fn admit_times(limiter: &RateLimiter, action: Action, n: usize) -> Vec<Duration> {
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..n {
            limiter.acquire(action).await;
            times.push(start.elapsed());
        }
        times
    }

    #[tokio::test(start_paused = true)]
    async fn paces_at_the_configured_rate() {
        let action = Action::TerminateInstances;
        let limiter = limiter(action, RateLimit::per_second(10));
        let times = admit_times(&limiter, action, 11).await;
        assert_eq!(times[0], Duration::ZERO);
        assert_eq!(times[10], Duration::from_secs(1), "{times:?}");
        for pair in times.windows(2) {
            assert_eq!(pair[1] - pair[0], Duration::from_millis(100), "{times:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn burst_is_admitted_at_once_then_paced() {
        let action = Action::DescribeInstances;
        let limiter = limiter(action, RateLimit { per_second: 40.0, burst: 4 });
        let times = admit_times(&limiter, action, 6).await;
        assert_eq!(&times[..4], &[Duration::ZERO; 4]);
        assert_eq!(times[4], Duration::from_millis(25));
        assert_eq!(times[5], Duration::from_millis(50));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_bucket() {
        let action = Action::DescribeInstances;
        let limiter = std::sync::Arc::new(limiter(action, RateLimit::per_second(40)));
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..40 {
            let limiter = limiter.clone();
            tasks.spawn(async move {
                limiter.acquire(action).await;
                start.elapsed()
            });
        }
        let mut times = tasks.join_all().await;
        times.sort();
        assert_eq!(times[0], Duration::ZERO);
        assert_eq!(times[39], Duration::from_millis(975));
        // Other actions are not held up.
        let other = Instant::now();
        limiter.acquire(Action::RunInstances).await;
        assert_eq!(other.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_halves_the_rate_until_the_cooldown_ends() {
        let action = Action::RunInstances;
        let limiter = limiter(action, RateLimit::per_second(10));
        limiter.slow_down(action);
        assert_eq!(limiter.current_rate(action), Some(5.0));
        limiter.slow_down(action);
        limiter.slow_down(action);
        limiter.slow_down(action);
        assert_eq!(limiter.current_rate(action), Some(1.25), "never below an eighth");
        let times = admit_times(&limiter, action, 3).await;
        assert_eq!(times[2], Duration::from_millis(1600), "{times:?}");
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(limiter.current_rate(action), Some(10.0), "restored after the cool-down");
    }

    #[tokio::test(start_paused = true)]
    async fn unlimited_never_waits() {
        let action = Action::DescribeInstances;
        let limiter = limiter(action, RateLimit::unlimited());
        limiter.slow_down(action);
        let times = admit_times(&limiter, action, 1000).await;
        assert_eq!(times[999], Duration::ZERO);
    }

    #[test]
    fn defaults_are_the_published_limits() {
        let limiter = RateLimiter::new(&BTreeMap::new(), Duration::from_secs(1));
        for action in Action::ALL {
            assert_eq!(limiter.current_rate(action), Some(f64::from(action.published_rate_limit())));
        }
        assert!(RateLimit { per_second: 0.0, burst: 1 }.problem().is_some());
        assert!(RateLimit { per_second: f64::NAN, burst: 1 }.problem().is_some());
        assert!(RateLimit { per_second: 1.0, burst: 0 }.problem().is_some());
        assert!(RateLimit::unlimited().problem().is_none());
    }
}
