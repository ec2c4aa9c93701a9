//! Per-(action, region, SecretId) request rate limits at Tencent's published defaults.
//!
//! Each key has a token bucket holding at most one second's worth of requests
//! ([`Action::published_rate_limit`]) and refilling continuously, so a client that keeps to the
//! published rate is never refused, and a burst above it is.

use std::collections::HashMap;
use std::time::Instant;

use cvmfleet_wire::Action;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The buckets of every (action, region, SecretId) seen.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    buckets: HashMap<(Action, String, String), Bucket>,
}

impl RateLimiter {
    /// Takes one token for the key at `now`; `false` when the bucket is empty.
    pub(crate) fn admit(&mut self, action: Action, region: &str, secret_id: &str, now: Instant) -> bool {
        let rate = f64::from(action.published_rate_limit());
        let bucket = self
            .buckets
            .entry((action, region.to_owned(), secret_id.to_owned()))
            .or_insert(Bucket { tokens: rate, last: now });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn bursts_above_the_published_rate_are_refused() {
        let mut limiter = RateLimiter::default();
        let t0 = Instant::now();
        let admitted =
            (0..15).filter(|_| limiter.admit(Action::RunInstances, "ap-guangzhou", "AKID1", t0)).count();
        assert_eq!(admitted, 10);
        // Another SecretId, region or action has its own bucket.
        assert!(limiter.admit(Action::RunInstances, "ap-guangzhou", "AKID2", t0));
        assert!(limiter.admit(Action::RunInstances, "ap-hongkong", "AKID1", t0));
        assert!(limiter.admit(Action::DescribeInstances, "ap-guangzhou", "AKID1", t0));
        // A tenth of a second refills one RunInstances token.
        let t1 = t0 + Duration::from_millis(100);
        assert!(limiter.admit(Action::RunInstances, "ap-guangzhou", "AKID1", t1));
        assert!(!limiter.admit(Action::RunInstances, "ap-guangzhou", "AKID1", t1));
    }

    #[test]
    fn a_client_at_the_published_rate_is_never_refused() {
        let mut limiter = RateLimiter::default();
        let t0 = Instant::now();
        for i in 0..200u32 {
            let now = t0 + Duration::from_millis(u64::from(i) * 25);
            assert!(limiter.admit(Action::DescribeInstances, "r", "s", now), "request {i}");
        }
    }
}
