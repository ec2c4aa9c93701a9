//! How the client talks to the API: endpoint, request form, limits, retries, timeouts, clock.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cvmfleet_wire::Action;
use reqwest::Url;

use crate::error::ConfigError;
use crate::ratelimit::RateLimit;
use crate::retry::RetryPolicy;

/// The public endpoint. Region-specific hosts (`cvm.<region>.tencentcloudapi.com`) also work.
pub const DEFAULT_ENDPOINT: &str = "https://cvm.tencentcloudapi.com";

/// The Tag service's public endpoint (the Tag API pages: "接口请求域名: tag.tencentcloudapi.com").
pub const DEFAULT_TAG_ENDPOINT: &str = "https://tag.tencentcloudapi.com";

/// How requests are encoded. Both are signed with TC3-HMAC-SHA256.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequestMethod {
    /// `POST /` with a JSON body (`Content-Type: application/json`), the SDKs' default.
    #[default]
    Post,
    /// `GET /?Placement.Zone=…` with flattened parameters; requests are limited to 32 KiB.
    Get,
}

impl RequestMethod {
    /// The HTTP method name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RequestMethod::Post => "POST",
            RequestMethod::Get => "GET",
        }
    }
}

/// Language of the service's error messages (`X-TC-Language`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Language {
    /// `en-US`: cvmfleet's own messages are English, so the service's should be too.
    #[default]
    English,
    /// `zh-CN`, the SDKs' default.
    Chinese,
}

impl Language {
    /// The header value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Language::English => "en-US",
            Language::Chinese => "zh-CN",
        }
    }
}

/// The source of `X-TC-Timestamp`, in Unix seconds. Injected so that signatures are
/// reproducible in tests.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl Clock {
    /// The system clock.
    #[must_use]
    pub fn system() -> Self {
        Clock(Arc::new(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                .unwrap_or(0)
        }))
    }

    /// A clock stuck at `timestamp`.
    #[must_use]
    pub fn fixed(timestamp: i64) -> Self {
        Clock(Arc::new(move || timestamp))
    }

    /// A clock reading an arbitrary function.
    pub fn from_fn(f: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        Clock(Arc::new(f))
    }

    /// The current timestamp.
    #[must_use]
    pub fn now(&self) -> i64 {
        (self.0)()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Clock")
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

/// Client settings. Every field has a production default ([`ClientConfig::default`]); tests and
/// the emulator override a few.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// API endpoint URL: scheme, host and optional port, path `/` or none.
    pub endpoint: String,
    /// The Tag service's endpoint. `None` derives it from [`ClientConfig::endpoint`]: a
    /// `cvm.…tencentcloudapi.com` host becomes the same host with `tag.` in front instead
    /// (`https://cvm.tencentcloudapi.com` → `https://tag.tencentcloudapi.com`), any other
    /// endpoint (an emulator, a proxy) serves the Tag service too and is used as it is.
    pub tag_endpoint: Option<String>,
    /// The account's uin, for the six-segment resource names of the Tag service
    /// (`qcs::cvm:<region>:uin/<uin>:instance/<id>`). `None` leaves it empty, which names the
    /// caller's own account (terraform-provider-tencentcloud names resources so too).
    pub account_uin: Option<String>,
    /// Allow plain `http://` to a host that is not a loopback address. Off: signed requests
    /// and session tokens should not cross a network in the clear.
    pub allow_insecure_http: bool,
    /// POST with a JSON body, or GET with a flattened query.
    pub method: RequestMethod,
    /// Per-action rate limits; actions not listed get Tencent's published limit
    /// ([`Action::published_rate_limit`]).
    pub rate_limits: BTreeMap<Action, RateLimit>,
    /// How long an action stays slowed down after a `RequestLimitExceeded` answer.
    pub throttle_cooldown: Duration,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Timeout for establishing a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Timeout for one whole attempt: connect, send, and read the complete response.
    pub timeout: Duration,
    /// Language of the service's messages.
    pub language: Language,
    /// Source of request timestamps.
    pub clock: Clock,
    /// How many pages of one listing are fetched at the same time (they still respect the
    /// rate limit).
    pub page_concurrency: usize,
    /// Sent as `X-TC-RequestClient` (unsigned, informational).
    pub request_client: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            tag_endpoint: None,
            account_uin: None,
            allow_insecure_http: false,
            method: RequestMethod::Post,
            rate_limits: BTreeMap::new(),
            // Tencent measures limits per second; a few seconds of reduced rate lets the shared
            // quota recover without slowing a whole reconcile pass.
            throttle_cooldown: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            // The reference's advice (rust-ecosystem-notes §1.4): 5 s to connect, 30 s in all.
            // RunInstances answers in well under a second; 30 s leaves room for large pages.
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            language: Language::English,
            clock: Clock::system(),
            page_concurrency: 8,
            request_client: concat!("cvmfleet/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl ClientConfig {
    /// The default configuration aimed at another endpoint (the emulator, a regional host).
    pub fn with_endpoint(endpoint: impl Into<String>) -> Self {
        ClientConfig { endpoint: endpoint.into(), ..ClientConfig::default() }
    }

    /// The rate limit in force for `action`.
    #[must_use]
    pub fn rate_limit(&self, action: Action) -> RateLimit {
        self.rate_limits.get(&action).copied().unwrap_or_else(|| RateLimit::published(action))
    }

    /// Checks every setting and resolves the endpoint.
    pub(crate) fn validate(&self) -> Result<Endpoint, ConfigError> {
        for (action, limit) in &self.rate_limits {
            if let Some(reason) = limit.problem() {
                return Err(ConfigError::InvalidRateLimit { action: *action, reason: reason.into() });
            }
        }
        let setting = |msg: &str| Err(ConfigError::InvalidSetting(msg.to_owned()));
        if self.retry.max_attempts == 0 {
            return setting("retry.max_attempts must be at least 1");
        }
        if self.retry.base_backoff > self.retry.max_backoff {
            return setting("retry.base_backoff must not exceed retry.max_backoff");
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return setting("timeouts must be positive");
        }
        if self.page_concurrency == 0 {
            return setting("page_concurrency must be at least 1");
        }
        if !self.request_client.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
            return setting("request_client must be printable ASCII");
        }
        if let Some(uin) = &self.account_uin
            && (uin.is_empty() || !uin.bytes().all(|b| b.is_ascii_digit()))
        {
            return setting("account_uin must be a number");
        }
        Endpoint::parse(&self.endpoint, self.allow_insecure_http)
    }

    /// The Tag service's endpoint URL: [`ClientConfig::tag_endpoint`], or the one derived from
    /// [`ClientConfig::endpoint`].
    #[must_use]
    pub fn tag_endpoint_url(&self) -> String {
        if let Some(endpoint) = &self.tag_endpoint {
            return endpoint.clone();
        }
        let Ok(mut url) = Url::parse(&self.endpoint) else { return self.endpoint.clone() };
        let derived = url
            .host_str()
            .filter(|h| h.ends_with(".tencentcloudapi.com"))
            .and_then(|h| h.strip_prefix("cvm."))
            .map(|rest| format!("tag.{rest}"));
        match derived {
            Some(host) if url.set_host(Some(&host)).is_ok() => url.into(),
            _ => self.endpoint.clone(),
        }
    }

    /// Checks and resolves the Tag service's endpoint.
    pub(crate) fn validate_tag_endpoint(&self) -> Result<Endpoint, ConfigError> {
        Endpoint::parse(&self.tag_endpoint_url(), self.allow_insecure_http)
    }
}

/// An endpoint as it may be shown in errors and logs: the one redaction of every URL cvmfleet
/// prints, [`cvmfleet_wire::redact_url`] (userinfo, query values and the fragment become `***`).
/// An endpoint is refused when it carries credentials or a query, and the refusal must not
/// repeat them (issue 10).
pub use cvmfleet_wire::redact_url as redact_endpoint;

/// A validated endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// The URL requests go to (path `/`).
    pub url: Url,
    /// The `Host` header value, exactly as signed: host, plus `:port` when not the default.
    pub host: String,
    /// Whether the host is a loopback address (no proxy is used for it).
    pub loopback: bool,
}

impl Endpoint {
    fn parse(endpoint: &str, allow_insecure_http: bool) -> Result<Endpoint, ConfigError> {
        let invalid = |reason: &str| ConfigError::InvalidEndpoint {
            endpoint: redact_endpoint(endpoint),
            reason: reason.to_owned(),
        };
        let url = Url::parse(endpoint).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("credentials do not belong in the URL"));
        }
        if url.path() != "/" {
            return Err(invalid("API 3.0 endpoints have no path"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("the endpoint must not have a query or fragment"));
        }
        let host_name = url.host_str().ok_or_else(|| invalid("no host"))?;
        let bare = host_name.trim_start_matches('[').trim_end_matches(']');
        let loopback = match bare.parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback(),
            Err(_) => bare.eq_ignore_ascii_case("localhost"),
        };
        if url.scheme() == "http" && !loopback && !allow_insecure_http {
            return Err(ConfigError::InsecureEndpoint { endpoint: redact_endpoint(endpoint) });
        }
        let host = match url.port() {
            Some(port) => format!("{host_name}:{port}"),
            None => host_name.to_owned(),
        };
        Ok(Endpoint { url, host, loopback })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str) -> Result<Endpoint, ConfigError> {
        ClientConfig::with_endpoint(url).validate()
    }

    #[test]
    fn endpoints() {
        let e = endpoint(DEFAULT_ENDPOINT).unwrap();
        assert_eq!(e.host, "cvm.tencentcloudapi.com");
        assert!(!e.loopback);
        let e = endpoint("https://cvm.ap-guangzhou.tencentcloudapi.com:443/").unwrap();
        assert_eq!(e.host, "cvm.ap-guangzhou.tencentcloudapi.com", "default port is not part of Host");
        let e = endpoint("http://127.0.0.1:8080").unwrap();
        assert_eq!((e.host.as_str(), e.loopback), ("127.0.0.1:8080", true));
        assert!(endpoint("http://localhost:1").unwrap().loopback);
        assert!(endpoint("http://[::1]:9000/").unwrap().loopback);
        assert_eq!(endpoint("http://[::1]:9000/").unwrap().host, "[::1]:9000");
    }

    #[test]
    fn issue_12_the_tag_endpoint_follows_the_cvm_endpoint() {
        let tag = |endpoint: &str| ClientConfig::with_endpoint(endpoint).tag_endpoint_url();
        assert_eq!(ClientConfig::default().tag_endpoint_url(), "https://tag.tencentcloudapi.com/");
        assert_eq!(tag("https://cvm.intl.tencentcloudapi.com"), "https://tag.intl.tencentcloudapi.com/");
        assert_eq!(
            tag("https://cvm.ap-guangzhou.tencentcloudapi.com"),
            "https://tag.ap-guangzhou.tencentcloudapi.com/"
        );
        // An emulator or a proxy serves both services.
        assert_eq!(tag("http://127.0.0.1:9100"), "http://127.0.0.1:9100");
        assert_eq!(tag("https://cvm.example.com"), "https://cvm.example.com");
        let explicit =
            ClientConfig { tag_endpoint: Some("http://127.0.0.1:1".into()), ..ClientConfig::default() };
        assert_eq!(explicit.tag_endpoint_url(), "http://127.0.0.1:1");
        assert_eq!(explicit.validate_tag_endpoint().unwrap().host, "127.0.0.1:1");
        let insecure =
            ClientConfig { tag_endpoint: Some("http://10.0.0.1".into()), ..ClientConfig::default() };
        assert!(matches!(insecure.validate_tag_endpoint(), Err(ConfigError::InsecureEndpoint { .. })));
        let bad_uin = ClientConfig { account_uin: Some("12a".into()), ..ClientConfig::default() };
        assert!(bad_uin.validate().is_err());
    }

    #[test]
    fn insecure_and_malformed_endpoints_are_refused() {
        let err = endpoint("http://10.0.0.1:8080").unwrap_err();
        assert!(matches!(err, ConfigError::InsecureEndpoint { .. }), "{err}");
        let forced =
            ClientConfig { allow_insecure_http: true, ..ClientConfig::with_endpoint("http://10.0.0.1:8080") };
        assert!(forced.validate().is_ok());
        for bad in [
            "cvm.tencentcloudapi.com",
            "ftp://cvm.tencentcloudapi.com",
            "https://cvm.tencentcloudapi.com/v2/index.php",
            "https://cvm.tencentcloudapi.com/?a=b",
            "https://user:pw@cvm.tencentcloudapi.com",
        ] {
            assert!(matches!(endpoint(bad), Err(ConfigError::InvalidEndpoint { .. })), "{bad}");
        }
    }

    /// Issue 10, item 8: refusing an endpoint with a key in its userinfo or query repeated the
    /// key.
    #[test]
    fn issue_10_refused_endpoints_never_echo_userinfo_or_query_values() {
        for bad in [
            "http://AKIDexample:TOPSECRETKEY@127.0.0.1:9100",
            "http://127.0.0.1:9100/?SecretKey=TOPSECRETKEY",
            "http://127.0.0.1:9100/?a=1&SecretKey=TOPSECRETKEY#TOPSECRETKEY",
            "http://AKIDexample:TOPSECRETKEY@10.0.0.1:9100",
            "AKIDexample:TOPSECRETKEY@[::1",
            "http://u:TOPSECRETKEY@[bad",
        ] {
            let message = endpoint(bad).map(|_| String::new()).unwrap_or_else(|e| e.to_string());
            assert!(!message.is_empty(), "{bad} is refused");
            assert!(!message.contains("TOPSECRETKEY") && !message.contains("AKIDexample"), "{message}");
        }
        assert_eq!(redact_endpoint("http://a:b@h:1/?k=v&x"), "http://***@h:1/?k=***&***");
        assert_eq!(redact_endpoint("https://cvm.tencentcloudapi.com"), "https://cvm.tencentcloudapi.com");
    }

    #[test]
    fn settings_are_checked() {
        let bad_rate = ClientConfig {
            rate_limits: BTreeMap::from([(Action::RunInstances, RateLimit { per_second: -1.0, burst: 1 })]),
            ..ClientConfig::default()
        };
        assert!(matches!(bad_rate.validate(), Err(ConfigError::InvalidRateLimit { .. })));
        let no_attempts = ClientConfig {
            retry: RetryPolicy { max_attempts: 0, ..RetryPolicy::default() },
            ..Default::default()
        };
        assert!(no_attempts.validate().is_err());
        let zero_timeout = ClientConfig { timeout: Duration::ZERO, ..Default::default() };
        assert!(zero_timeout.validate().is_err());
        assert_eq!(ClientConfig::default().rate_limit(Action::DescribeInstances), RateLimit::per_second(40));
        assert_eq!(Clock::fixed(7).now(), 7);
        assert!(Clock::system().now() > 1_700_000_000);
    }
}
