//! The errors the emulated service answers with: a Tencent error code and a message, sent as
//! `{"Response":{"Error":{"Code","Message"},"RequestId"}}` with HTTP 200.

use std::fmt;

/// An error answer of the API: a code from the CVM or common error tables and a message.
///
/// The message text is not a contract (Tencent says so too); the code is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The error code, e.g. `InvalidZone.MismatchRegion`.
    pub code: String,
    /// What was wrong, naming the offending parameter or value.
    pub message: String,
}

impl ApiError {
    /// An error with any code.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError { code: code.into(), message: message.into() }
    }

    /// `MissingParameter` naming the parameter.
    pub(crate) fn missing(parameter: &str) -> Self {
        ApiError::new(
            "MissingParameter",
            format!("The request is missing a required parameter `{parameter}`."),
        )
    }

    /// `InvalidParameter`: a parameter of the wrong type or format.
    pub(crate) fn invalid_parameter(message: impl Into<String>) -> Self {
        ApiError::new("InvalidParameter", message)
    }

    /// `InvalidParameterValue`: a well-formed parameter with an unsupported value.
    pub(crate) fn invalid_value(message: impl Into<String>) -> Self {
        ApiError::new("InvalidParameterValue", message)
    }

    /// `InvalidParameterValue.Range`: a number out of its range.
    pub(crate) fn out_of_range(parameter: &str, value: impl fmt::Display, range: &str) -> Self {
        ApiError::new(
            "InvalidParameterValue.Range",
            format!("The value `{value}` of parameter `{parameter}` is out of range; allowed: {range}."),
        )
    }

    /// `InvalidParameterCombination`: two parameters that do not go together.
    pub(crate) fn combination(message: impl Into<String>) -> Self {
        ApiError::new("InvalidParameterCombination", message)
    }

    /// `InternalError`.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        ApiError::new("InternalError", message)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}
