//! The response envelope: what the emulator encodes, the client decodes, both ways, and what a
//! malformed body is told as (with its RequestId when it got that far).

use cvmfleet_wire::api::DescribeInstancesResponse;
use cvmfleet_wire::envelope::{Reply, ServiceError, decode_reply, encode_error, encode_success};

#[test]
fn a_success_round_trips_with_its_request_id() {
    let page = DescribeInstancesResponse { total_count: 3, instance_set: Vec::new() };
    let body = encode_success(&page, "req-1");
    let text = String::from_utf8(body.clone()).unwrap();
    assert!(text.starts_with(r#"{"Response":{"#) && text.contains(r#""RequestId":"req-1""#), "{text}");
    let reply: Reply<DescribeInstancesResponse> = decode_reply(&body).unwrap();
    assert_eq!(reply, Reply::Success { data: page, request_id: "req-1".into() });
}

#[test]
fn an_error_round_trips_as_code_message_and_request_id() {
    let body = encode_error("InvalidParameterValue.Range", "Limit must be at most 100", "req-2");
    let reply: Reply<DescribeInstancesResponse> = decode_reply(&body).unwrap();
    assert_eq!(
        reply,
        Reply::Failure(ServiceError {
            code: "InvalidParameterValue.Range".into(),
            message: "Limit must be at most 100".into(),
            request_id: "req-2".into(),
        })
    );
}

#[test]
fn the_reference_s_error_example_parses() {
    // The shape of the API reference's "返回结果" error example (HTTP 200 with `Error`).
    let body = br#"{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"The provided credentials could not be validated."},"RequestId":"ed93f3cb-f35e-473f-b9f3-0d451b8b79c6"}}"#;
    let Reply::Failure(error) = decode_reply::<DescribeInstancesResponse>(body).unwrap() else { panic!() };
    assert_eq!(error.code, "AuthFailure.SignatureFailure");
    assert_eq!(error.request_id, "ed93f3cb-f35e-473f-b9f3-0d451b8b79c6");
}

#[test]
fn malformed_bodies_say_what_is_wrong_and_keep_a_request_id_they_had() {
    let cases: [(&[u8], &str, Option<&str>); 5] = [
        (b"<html>502</html>", "not JSON", None),
        (br#"{"Other":{}}"#, "no `Response` object", None),
        (br#"{"Response":{"TotalCount":1}}"#, "no `RequestId`", None),
        (
            br#"{"Response":{"Error":{"Message":"x"},"RequestId":"req-3"}}"#,
            "`Error` without a `Code`",
            Some("req-3"),
        ),
        (br#"{"Response":{"TotalCount":"many","RequestId":"req-4"}}"#, "unexpected fields", Some("req-4")),
    ];
    for (body, reason, request_id) in cases {
        let error = decode_reply::<DescribeInstancesResponse>(body).unwrap_err();
        assert!(error.reason.contains(reason), "{}: {error}", String::from_utf8_lossy(body));
        assert_eq!(error.request_id.as_deref(), request_id);
        assert!(error.to_string().starts_with("malformed response body: "));
    }
}
