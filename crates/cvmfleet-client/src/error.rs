//! The client's errors: every one names the action it belongs to and, when the service answered,
//! carries its RequestId.
//!
//! No variant holds the secret key or anything derived from it other than what went on the wire
//! (the signature), so printing an error, in `Display` or `Debug` form, is always safe.

use std::path::PathBuf;
use std::time::Duration;

use cvmfleet_wire::Action;

use cvmfleet_wire::codes;

/// A boxed error from the HTTP stack, kept opaque so that the public API does not pin reqwest.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No connection to the endpoint could be made (DNS, refused, TLS handshake, connect
    /// timeout). Nothing reached the service, so the request was certainly not processed.
    #[error("{action} failed: could not connect to the endpoint")]
    Connect {
        /// The action being called.
        action: Action,
        /// What the HTTP stack reported.
        #[source]
        source: BoxError,
    },
    /// The connection broke while the request or the response was in flight (reset, closed
    /// early, truncated body). The service may or may not have processed the request.
    #[error("{action} failed: the HTTP exchange broke off")]
    Transport {
        /// The action being called.
        action: Action,
        /// What the HTTP stack reported.
        #[source]
        source: BoxError,
    },
    /// No complete response arrived within the configured total timeout. The service may or may
    /// not have processed the request.
    #[error("{action} failed: no complete response within {after:?}")]
    Timeout {
        /// The action being called.
        action: Action,
        /// The timeout that expired.
        after: Duration,
    },
    /// The endpoint answered with an HTTP status other than 200. Tencent Cloud answers every
    /// request it processed with 200 (errors included), so this comes from something in between
    /// (gateway, proxy) or from an emulator fault; the Go SDK reports it as
    /// `ClientError.HttpStatusCodeError`.
    #[error("{action} failed: HTTP status {status}{}", excerpt_suffix(body))]
    HttpStatus {
        /// The action being called.
        action: Action,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body, for diagnosis (at most 200 characters).
        body: String,
    },
    /// The service answered with an error envelope.
    #[error("{action} failed: {code}: {message} (RequestId {request_id})")]
    Api {
        /// The action being called.
        action: Action,
        /// Error code, e.g. `InvalidParameterValue.Range`.
        code: String,
        /// The service's message; its text is not a contract.
        message: String,
        /// The request's ID, for Tencent support.
        request_id: String,
    },
    /// The response body was not an envelope the client understands.
    #[error("{action} failed: malformed response: {reason}{}", request_id_suffix(request_id.as_deref()))]
    MalformedResponse {
        /// The action being called.
        action: Action,
        /// What was wrong with the body.
        reason: String,
        /// The RequestId, when the body got far enough to carry one.
        request_id: Option<String>,
    },
    /// The request could not be built, so nothing was sent (e.g. a region that is not a valid
    /// header value, a GET request over 32 KiB).
    #[error("{action} not sent: {reason}")]
    InvalidRequest {
        /// The action being called.
        action: Action,
        /// What was wrong.
        reason: String,
    },
    /// A paged listing saw the result set change between its pages, so the pages do not add up
    /// to one consistent listing. Listing again usually succeeds.
    #[error("{action} listing changed while it was paged: {reason}")]
    ListingChanged {
        /// The paged action.
        action: Action,
        /// What did not add up.
        reason: String,
    },
    /// The client's gate was closed ([`crate::CvmClient::gated`]), so nothing was sent: the
    /// caller may no longer act (a `watch` replica that lost its lease).
    #[error("{action} not sent: this client may no longer act (its gate is closed)")]
    Withheld {
        /// The action that was not sent.
        action: Action,
    },
    /// The client's configuration or credentials are unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

fn excerpt_suffix(body: &str) -> String {
    if body.is_empty() { String::new() } else { format!(": {body}") }
}

fn request_id_suffix(request_id: Option<&str>) -> String {
    request_id.map(|id| format!(" (RequestId {id})")).unwrap_or_default()
}

impl Error {
    /// The action the error belongs to; `None` only for configuration errors.
    #[must_use]
    pub fn action(&self) -> Option<Action> {
        match self {
            Error::Connect { action, .. }
            | Error::Transport { action, .. }
            | Error::Timeout { action, .. }
            | Error::HttpStatus { action, .. }
            | Error::Api { action, .. }
            | Error::MalformedResponse { action, .. }
            | Error::InvalidRequest { action, .. }
            | Error::ListingChanged { action, .. }
            | Error::Withheld { action } => Some(*action),
            Error::Config(_) => None,
        }
    }

    /// The service's error code, for [`Error::Api`].
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The RequestId of the failed request, when the service sent one.
    #[must_use]
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Api { request_id, .. } if !request_id.is_empty() => Some(request_id),
            Error::MalformedResponse { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// Whether sending the same request again later might succeed: the failure was transient
    /// (network, timeout, throttling, server fault) rather than a verdict on the request.
    ///
    /// Whether the client itself retried depends on the action as well; see
    /// [`crate::retry`] for that policy.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::ListingChanged { .. }) || !matches!(classify(self), FailureClass::Permanent)
    }

    /// Whether the service said the offering (zone, instance type, charge type) is short of
    /// stock ([`codes::is_stock_shortage`]): a planning signal, to choose another offering or
    /// wait. Such an answer is a verdict ([`FailureClass::Permanent`]); the client never
    /// retries it.
    #[must_use]
    pub fn is_stock_shortage(&self) -> bool {
        self.code().is_some_and(codes::is_stock_shortage)
    }

    /// Whether the service throttled the request (`RequestLimitExceeded` or one of its
    /// sub-codes).
    #[must_use]
    pub fn is_throttled(&self) -> bool {
        self.code().is_some_and(crate::retry::is_throttling_code)
    }
}

/// The client cannot be built from the configuration or credentials given.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The endpoint is not a usable URL.
    #[error("invalid endpoint `{endpoint}`: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A plain-HTTP endpoint that is not on a loopback address: credentials-signed requests
    /// would cross the network in the clear.
    #[error(
        "refusing plain http to non-loopback endpoint `{endpoint}` (use https, a loopback address, \
         or allow insecure http explicitly)"
    )]
    InsecureEndpoint {
        /// The endpoint as given.
        endpoint: String,
    },
    /// A rate limit is not a positive rate with a burst of at least one.
    #[error("invalid rate limit for {action}: {reason}")]
    InvalidRateLimit {
        /// The action whose limit is wrong.
        action: Action,
        /// What is wrong with it.
        reason: String,
    },
    /// The retry policy or timeouts are unusable.
    #[error("invalid client setting: {0}")]
    InvalidSetting(String),
    /// Credentials are incomplete or malformed. The message never contains the secret key.
    #[error("invalid credentials: {0}")]
    InvalidCredentials(String),
    /// A credentials file could not be understood.
    #[error("credentials file {} is unusable: {reason}", path.display())]
    CredentialsFormat {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (never its secret values).
        reason: String,
    },
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client")]
    HttpClient(#[source] BoxError),
}

/// What a failure says about whether the service acted on the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// The service certainly did not process the request.
    NotProcessed,
    /// The service may or may not have processed the request.
    Ambiguous,
    /// A verdict on the request; repeating it gives the same answer.
    Permanent,
}

/// Sorts a failure into its [`FailureClass`].
#[must_use]
pub fn classify(error: &Error) -> FailureClass {
    match error {
        Error::Connect { .. } => FailureClass::NotProcessed,
        Error::Api { code, .. } if codes::is_throttling(code) => FailureClass::NotProcessed,
        // The Tag service refused because another change of the resource's tags is under way.
        Error::Api { code, .. } if cvmfleet_wire::tag::codes::is_busy(code) => FailureClass::NotProcessed,
        Error::Api { code, .. } if codes::is_server_fault(code) => FailureClass::Ambiguous,
        Error::Transport { .. } | Error::Timeout { .. } => FailureClass::Ambiguous,
        Error::HttpStatus { status, .. } if *status >= 500 || *status == 429 => FailureClass::Ambiguous,
        Error::Api { .. }
        | Error::HttpStatus { .. }
        | Error::MalformedResponse { .. }
        | Error::InvalidRequest { .. }
        | Error::ListingChanged { .. }
        | Error::Withheld { .. }
        | Error::Config(_) => FailureClass::Permanent,
    }
}
