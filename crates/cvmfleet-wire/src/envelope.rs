//! The response envelope: `{"Response": {...fields, "RequestId"}}` on success and
//! `{"Response": {"Error": {"Code", "Message"}, "RequestId"}}` on failure, both with HTTP 200.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The `Content-Type` every response carries. Exactly this: the official Python SDK parses error
/// bodies only for `application/json` without parameters.
pub const RESPONSE_CONTENT_TYPE: &str = "application/json";

/// An error the service answered with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceError {
    /// Error code, e.g. `InvalidParameterValue.Range`.
    pub code: String,
    /// Human-readable message; its text is not a contract.
    pub message: String,
    /// The request's ID, for Tencent support.
    pub request_id: String,
}

/// What a well-formed response body says.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply<T> {
    /// The call succeeded.
    Success {
        /// The response fields.
        data: T,
        /// The request's ID.
        request_id: String,
    },
    /// The service reported an error.
    Failure(ServiceError),
}

/// The body was not a response envelope the client understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed response body: {reason}")]
pub struct MalformedResponse {
    /// What was wrong.
    pub reason: String,
    /// The RequestId, when the body got far enough to carry one.
    pub request_id: Option<String>,
}

/// The outer envelope, with the `Response` object kept as raw text.
#[derive(Deserialize)]
struct Outer<'a> {
    #[serde(rename = "Response", borrow)]
    response: Option<&'a RawValue>,
}

/// The fields every `Response` may carry besides the action's own.
#[derive(Deserialize)]
struct Head {
    #[serde(rename = "Error")]
    error: Option<ErrorBody>,
    #[serde(rename = "RequestId")]
    request_id: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "Code")]
    code: Option<String>,
    #[serde(rename = "Message")]
    message: Option<String>,
}

/// Reads a response body.
///
/// The body is read in place (the `Response` object is kept as raw text and decoded straight
/// into `T`), so a 100-instance page costs one typed decode, not a tree plus a copy.
///
/// # Errors
/// [`MalformedResponse`] when the body is not JSON, has no `Response` object, or its fields do
/// not have the documented types.
pub fn decode_reply<T: DeserializeOwned>(body: &[u8]) -> Result<Reply<T>, MalformedResponse> {
    let malformed = |reason: String, request_id: Option<String>| MalformedResponse { reason, request_id };
    let outer: Outer<'_> =
        serde_json::from_slice(body).map_err(|e| malformed(format!("not JSON ({e})"), None))?;
    let Some(response) = outer.response.filter(|r| r.get().starts_with('{')) else {
        return Err(malformed("no `Response` object".into(), None));
    };
    let head: Head = serde_json::from_str(response.get())
        .map_err(|e| malformed(format!("unexpected `RequestId` or `Error` ({e})"), None))?;
    if let Some(error) = head.error {
        return match error.code {
            Some(code) => Ok(Reply::Failure(ServiceError {
                code,
                message: error.message.unwrap_or_default(),
                request_id: head.request_id.unwrap_or_default(),
            })),
            None => Err(malformed("`Error` without a `Code`".into(), head.request_id)),
        };
    }
    let Some(request_id) = head.request_id else {
        return Err(malformed("no `RequestId`".into(), None));
    };
    match serde_json::from_str::<T>(response.get()) {
        Ok(data) => Ok(Reply::Success { data, request_id }),
        Err(e) => Err(malformed(format!("unexpected fields ({e})"), Some(request_id))),
    }
}

/// Encodes a success body.
#[must_use]
pub fn encode_success<T: Serialize>(data: &T, request_id: &str) -> Vec<u8> {
    let mut fields = match serde_json::to_value(data) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    fields.insert("RequestId".into(), Value::String(request_id.to_owned()));
    let mut outer = Map::new();
    outer.insert("Response".into(), Value::Object(fields));
    serde_json::to_vec(&Value::Object(outer)).unwrap_or_default()
}

/// Encodes an error body.
#[must_use]
pub fn encode_error(code: &str, message: &str, request_id: &str) -> Vec<u8> {
    let body = serde_json::json!({
        "Response": {
            "Error": { "Code": code, "Message": message },
            "RequestId": request_id,
        }
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::RunInstancesResponse;

    #[test]
    fn success_round_trips() {
        let data = RunInstancesResponse { instance_id_set: vec!["ins-1vogaxgk".into()] };
        let body = encode_success(&data, "3c140219-cfe9-470e-b241-907877d6fb03");
        assert_eq!(
            String::from_utf8(body.clone()).unwrap(),
            r#"{"Response":{"InstanceIdSet":["ins-1vogaxgk"],"RequestId":"3c140219-cfe9-470e-b241-907877d6fb03"}}"#
        );
        let reply = decode_reply::<RunInstancesResponse>(&body).unwrap();
        assert_eq!(reply, Reply::Success { data, request_id: "3c140219-cfe9-470e-b241-907877d6fb03".into() });
    }

    #[test]
    fn official_error_sample_decodes() {
        let body = br#"{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"The provided credentials could not be validated. Please check your signature is correct."},"RequestId":"ed93f3cb-f35e-473f-b9f3-0d451b8b79c6"}}"#;
        let Reply::Failure(err) = decode_reply::<RunInstancesResponse>(body).unwrap() else {
            panic!("expected a failure");
        };
        assert_eq!(err.code, "AuthFailure.SignatureFailure");
        assert_eq!(err.request_id, "ed93f3cb-f35e-473f-b9f3-0d451b8b79c6");
        assert_eq!(encode_error(&err.code, &err.message, &err.request_id), body.to_vec());
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        for body in [
            &b"<html>"[..],
            b"{}",
            b"{\"Response\":1}",
            b"{\"Response\":{}}",
            b"{\"Response\":{\"Error\":{}}}",
        ] {
            assert!(decode_reply::<RunInstancesResponse>(body).is_err(), "{body:?}");
        }
        let typed = br#"{"Response":{"InstanceIdSet":"nope","RequestId":"r-1"}}"#;
        let err = decode_reply::<RunInstancesResponse>(typed).unwrap_err();
        assert_eq!(err.request_id.as_deref(), Some("r-1"));
    }
}
