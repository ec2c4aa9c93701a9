//! Integration tests of the CVM client: against an in-process fake endpoint for signing,
//! faults, retries, paging and secret hygiene, and against the emulator end to end.

mod e2e;
mod fake;
mod faults;
mod paging;
mod secrets;
mod signing;
mod tags;

use std::time::Duration;

use cvmfleet_client::{ClientConfig, Credentials, CvmClient, RateLimit, RetryPolicy};
use cvmfleet_wire::Action;

/// Settings for tests: three attempts with millisecond backoffs, no rate limits, short
/// timeouts, seeded jitter.
pub fn test_config(endpoint: String) -> ClientConfig {
    ClientConfig {
        retry: RetryPolicy {
            max_attempts: 3,
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
            jitter_seed: Some(1),
        },
        rate_limits: Action::ALL.map(|action| (action, RateLimit::unlimited())).into(),
        timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(1),
        ..ClientConfig::with_endpoint(endpoint)
    }
}

/// The credentials the fake accepts.
pub fn credentials() -> Credentials {
    Credentials::new(fake::SECRET_ID, fake::SECRET_KEY)
}

/// A test client for the fake.
pub fn client(fake: &fake::Fake) -> CvmClient {
    client_with(fake, |_| {})
}

/// A test client for the fake, with adjusted settings.
pub fn client_with(fake: &fake::Fake, adjust: impl FnOnce(&mut ClientConfig)) -> CvmClient {
    let mut config = test_config(fake.endpoint());
    adjust(&mut config);
    CvmClient::new(config, credentials()).unwrap()
}

/// Some instance IDs.
pub fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("ins-{i:08}")).collect()
}
