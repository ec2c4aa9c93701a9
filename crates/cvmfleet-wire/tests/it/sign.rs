//! TC3-HMAC-SHA256 against the worked example of the API reference ("签名方法 v3", the
//! DescribeInstances POST of 2019-02-25), as `tencent-api-notes.md` §1.3 quotes it: every
//! intermediate the reference prints, then the header the client sends and the emulator parses.

use cvmfleet_wire::sign::{
    SecretKey, TC3_ALGORITHM, Tc3Request, parse_tc3_authorization, sha256_hex, signatures_match, tc3_sign,
};

/// The example's body, byte for byte (its JSON escapes 未命名).
const BODY: &str =
    r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
/// The example's masked credentials, as published.
const SECRET_ID: &str = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******";
const SECRET_KEY: &str = "Gu5t9xGARNpq86cd98joQYCN3*******";
const TIMESTAMP: i64 = 1_551_113_065;

fn example(headers: &[(&str, &str)], payload_hash: &str) -> cvmfleet_wire::sign::Tc3Signature {
    let request =
        Tc3Request { method: "POST", query: "", headers, payload_hash, service: "cvm", timestamp: TIMESTAMP };
    tc3_sign(&request, &SecretKey::new(SECRET_KEY))
}

#[test]
fn the_published_example_signs_to_the_published_signature() {
    let hash = sha256_hex(BODY.as_bytes());
    assert_eq!(hash, "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064");
    let signature = example(
        &[("Content-Type", "application/json; charset=utf-8"), ("Host", "cvm.tencentcloudapi.com")],
        &hash,
    );
    assert_eq!(
        signature.canonical_request,
        "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\n\
         content-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    );
    assert_eq!(
        signature.string_to_sign,
        "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n\
         5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
    );
    assert_eq!(signature.signature, "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c");
}

#[test]
fn header_order_and_case_do_not_change_the_signature() {
    let hash = sha256_hex(BODY.as_bytes());
    let a = example(
        &[("Content-Type", "application/json; charset=utf-8"), ("Host", "cvm.tencentcloudapi.com")],
        &hash,
    );
    let b = example(
        &[("host", "CVM.tencentcloudapi.com"), ("content-type", "application/json; charset=utf-8")],
        &hash,
    );
    assert_eq!(a, b);
}

#[test]
fn the_authorization_header_parses_back_to_what_was_signed() {
    let hash = sha256_hex(BODY.as_bytes());
    let signature = example(
        &[("Content-Type", "application/json; charset=utf-8"), ("Host", "cvm.tencentcloudapi.com")],
        &hash,
    );
    let header = signature.authorization(SECRET_ID, "cvm");
    assert!(header.starts_with(TC3_ALGORITHM), "{header}");
    let parsed = parse_tc3_authorization(&header).expect("parses");
    assert_eq!(parsed.secret_id, SECRET_ID);
    assert_eq!(parsed.date, "2019-02-25");
    assert_eq!(parsed.service, "cvm");
    assert_eq!(parsed.signed_headers, ["content-type", "host"]);
    assert!(signatures_match(&parsed.signature, &signature.signature));
}

#[test]
fn another_key_or_body_signs_differently_and_the_key_never_prints() {
    let hash = sha256_hex(BODY.as_bytes());
    let headers = [("Content-Type", "application/json; charset=utf-8"), ("Host", "cvm.tencentcloudapi.com")];
    let request = Tc3Request {
        method: "POST",
        query: "",
        headers: &headers,
        payload_hash: &hash,
        service: "cvm",
        timestamp: TIMESTAMP,
    };
    let other_key = tc3_sign(&request, &SecretKey::new("another-key"));
    assert_ne!(other_key.signature, example(&headers, &hash).signature);
    let other_body = example(&headers, &sha256_hex(b"{}"));
    assert_ne!(other_body.signature, example(&headers, &hash).signature);
    let key = SecretKey::new(SECRET_KEY);
    assert!(!format!("{key:?} {key}").contains("Gu5t9x"));
}
