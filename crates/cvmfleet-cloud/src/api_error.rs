//! The errors the emulated service answers with: a Tencent error code and a message, sent as
//! `{"Response":{"Error":{"Code","Message"},"RequestId"}}` with HTTP 200.

use std::fmt;

use cvmfleet_wire::codes;

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
    pub fn missing(parameter: &str) -> Self {
        ApiError::new(
            codes::MISSING_PARAMETER,
            format!("The request is missing a required parameter `{parameter}`."),
        )
    }

    /// `InvalidParameter`: a parameter of the wrong type or format.
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        ApiError::new(codes::INVALID_PARAMETER, message)
    }

    /// `InvalidParameterValue`: a well-formed parameter with an unsupported value.
    pub fn invalid_value(message: impl Into<String>) -> Self {
        ApiError::new(codes::INVALID_PARAMETER_VALUE, message)
    }

    /// `InvalidParameterValue.Range`: a number out of its range.
    pub fn out_of_range(parameter: &str, value: impl fmt::Display, range: &str) -> Self {
        ApiError::new(
            codes::INVALID_PARAMETER_VALUE_RANGE,
            format!("The value `{value}` of parameter `{parameter}` is out of range; allowed: {range}."),
        )
    }

    /// `InvalidParameterCombination`: two parameters that do not go together.
    pub fn combination(message: impl Into<String>) -> Self {
        ApiError::new(codes::INVALID_PARAMETER_COMBINATION, message)
    }

    /// `InternalError`.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(codes::INTERNAL_ERROR, message)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}
