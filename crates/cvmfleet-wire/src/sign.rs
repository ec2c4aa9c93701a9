//! Request signing: TC3-HMAC-SHA256 (signature v3) and the legacy v1 HmacSHA1 / HmacSHA256.
//!
//! Everything here is a pure function of its inputs; the clock is the caller's `timestamp`.
//! The client signs with these functions and the emulator verifies with the same ones, so the
//! official test vectors in the unit tests pin both ends.

use std::fmt;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// The signature algorithm name of TC3.
pub const TC3_ALGORITHM: &str = "TC3-HMAC-SHA256";

/// A secret text of credentials: its `Debug` and `Display` never show the value, only
/// [`expose`](SecretKey::expose) gives it, to the one place that sends or signs with it.
macro_rules! secret_text {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            /// Wraps the value.
            #[must_use]
            pub fn new(value: impl Into<String>) -> Self {
                $name(value.into())
            }

            /// The value itself, for signing or sending. Do not log it.
            #[must_use]
            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(****)"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("****")
            }
        }
    };
}

secret_text! {
    /// A secret key. Its `Debug` and `Display` never show the value.
    SecretKey
}

secret_text! {
    /// The session token of temporary (STS) credentials, sent as `X-TC-Token`: as secret as the
    /// key while it lasts. Its `Debug` and `Display` never show the value.
    SessionToken
}

/// Lower-case hex SHA-256.
#[must_use]
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Lower-case hex HMAC-SHA256 (also seals saved plans under a shared key).
#[must_use]
pub fn hmac_sha256_hex(key: &[u8], msg: &[u8]) -> String {
    hex::encode(hmac_sha256(key, msg))
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// The UTC date (`YYYY-MM-DD`) of a Unix timestamp, as TC3's credential scope wants it.
///
/// Out-of-range timestamps give `1970-01-01`; such a request fails the 5-minute skew check anyway.
#[must_use]
pub fn utc_date(timestamp: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::OffsetDateTime::from_unix_timestamp(timestamp)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "1970-01-01".to_owned())
}

/// The parts of a request that TC3 signs.
#[derive(Debug, Clone, Copy)]
pub struct Tc3Request<'a> {
    /// `POST` or `GET`.
    pub method: &'a str,
    /// The raw query string (`""` for POST).
    pub query: &'a str,
    /// The headers to sign, as (name, value); names in any case.
    pub headers: &'a [(&'a str, &'a str)],
    /// SHA-256 hex of the body (or of `UNSIGNED-PAYLOAD`).
    pub payload_hash: &'a str,
    /// Service name: `cvm`.
    pub service: &'a str,
    /// `X-TC-Timestamp`.
    pub timestamp: i64,
}

/// Every intermediate of a TC3 signature, for tests and for diagnosing a mismatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tc3Signature {
    /// The canonical request.
    pub canonical_request: String,
    /// The string to sign.
    pub string_to_sign: String,
    /// `content-type;host` and so on.
    pub signed_headers: String,
    /// The credential scope date.
    pub date: String,
    /// Lower-case hex signature.
    pub signature: String,
}

impl Tc3Signature {
    /// The `Authorization` header value.
    #[must_use]
    pub fn authorization(&self, secret_id: &str, service: &str) -> String {
        format!(
            "{TC3_ALGORITHM} Credential={secret_id}/{}/{service}/tc3_request, SignedHeaders={}, Signature={}",
            self.date, self.signed_headers, self.signature
        )
    }
}

/// Signs a request with TC3-HMAC-SHA256.
#[must_use]
pub fn tc3_sign(request: &Tc3Request<'_>, secret_key: &SecretKey) -> Tc3Signature {
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase()))
        .collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(";");
    let canonical_request = format!(
        "{}\n/\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        request.method, request.query, request.payload_hash
    );
    let date = utc_date(request.timestamp);
    let string_to_sign = format!(
        "{TC3_ALGORITHM}\n{}\n{date}/{}/tc3_request\n{}",
        request.timestamp,
        request.service,
        sha256_hex(canonical_request.as_bytes())
    );
    let secret_date = hmac_sha256(format!("TC3{}", secret_key.expose()).as_bytes(), date.as_bytes());
    let secret_service = hmac_sha256(&secret_date, request.service.as_bytes());
    let secret_signing = hmac_sha256(&secret_service, b"tc3_request");
    let signature = hex::encode(hmac_sha256(&secret_signing, string_to_sign.as_bytes()));
    Tc3Signature { canonical_request, string_to_sign, signed_headers, date, signature }
}

/// A parsed TC3 `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tc3Authorization {
    /// The SecretId.
    pub secret_id: String,
    /// Credential scope date.
    pub date: String,
    /// Credential scope service.
    pub service: String,
    /// Signed header names, lower case, in the order given.
    pub signed_headers: Vec<String>,
    /// The hex signature.
    pub signature: String,
}

/// The `Authorization` header is not a TC3 header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed TC3 authorization header: {0}")]
pub struct MalformedAuthorization(pub &'static str);

/// Parses `TC3-HMAC-SHA256 Credential=…/date/service/tc3_request, SignedHeaders=…, Signature=…`.
///
/// # Errors
/// [`MalformedAuthorization`] naming the first missing or malformed part.
pub fn parse_tc3_authorization(header: &str) -> Result<Tc3Authorization, MalformedAuthorization> {
    let rest = header
        .strip_prefix(TC3_ALGORITHM)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or(MalformedAuthorization("algorithm must be TC3-HMAC-SHA256"))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let credential = credential.ok_or(MalformedAuthorization("missing Credential"))?;
    let mut scope = credential.split('/');
    let (Some(secret_id), Some(date), Some(service), Some("tc3_request"), None) =
        (scope.next(), scope.next(), scope.next(), scope.next(), scope.next())
    else {
        return Err(MalformedAuthorization("Credential must be SecretId/date/service/tc3_request"));
    };
    let signed = signed.ok_or(MalformedAuthorization("missing SignedHeaders"))?;
    let signature = signature.ok_or(MalformedAuthorization("missing Signature"))?;
    if secret_id.is_empty() || signed.is_empty() || signature.is_empty() {
        return Err(MalformedAuthorization("empty Credential, SignedHeaders or Signature"));
    }
    Ok(Tc3Authorization {
        secret_id: secret_id.to_owned(),
        date: date.to_owned(),
        service: service.to_owned(),
        signed_headers: signed.split(';').map(str::to_ascii_lowercase).collect(),
        signature: signature.to_owned(),
    })
}

/// The HMAC of a v1 signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V1Method {
    /// `HmacSHA1`, the default when `SignatureMethod` is absent or anything else.
    HmacSha1,
    /// `HmacSHA256`, only when `SignatureMethod=HmacSHA256`.
    HmacSha256,
}

impl V1Method {
    /// The method a `SignatureMethod` parameter selects.
    #[must_use]
    pub fn from_param(value: Option<&str>) -> Self {
        if value == Some("HmacSHA256") { V1Method::HmacSha256 } else { V1Method::HmacSha1 }
    }
}

/// The v1 string to sign: `METHOD host path ? name=value&…` with the pairs sorted by name
/// (byte order) and values raw, not URL-encoded. `Signature` itself must not be in `params`.
#[must_use]
pub fn v1_string_to_sign(method: &str, host: &str, path: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let joined = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    format!("{method}{host}{path}?{joined}")
}

/// The base64 v1 signature of a string to sign.
#[must_use]
pub fn v1_sign(method: V1Method, secret_key: &SecretKey, string_to_sign: &str) -> String {
    let key = secret_key.expose().as_bytes();
    let mac = match method {
        V1Method::HmacSha256 => hmac_sha256(key, string_to_sign.as_bytes()),
        V1Method::HmacSha1 => {
            let mut mac =
                <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(string_to_sign.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
    };
    base64::engine::general_purpose::STANDARD.encode(mac)
}

/// Compares two signatures in time independent of where they first differ.
#[must_use]
pub fn signatures_match(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC_BODY: &str =
        r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
    const TS: i64 = 1_551_113_065;

    fn doc_request<'a>(headers: &'a [(&'a str, &'a str)], payload_hash: &'a str) -> Tc3Request<'a> {
        Tc3Request { method: "POST", query: "", headers, payload_hash, service: "cvm", timestamp: TS }
    }

    /// Notes §1.3(a) / §9 V1: the official worked example.
    #[test]
    fn official_tc3_example() {
        let hash = sha256_hex(DOC_BODY.as_bytes());
        assert_eq!(hash, "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064");
        let headers =
            [("Content-Type", "application/json; charset=utf-8"), ("Host", "cvm.tencentcloudapi.com")];
        let sig =
            tc3_sign(&doc_request(&headers, &hash), &SecretKey::new("Gu5t9xGARNpq86cd98joQYCN3*******"));
        assert_eq!(
            sig.canonical_request,
            "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\ncontent-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        assert_eq!(
            sha256_hex(sig.canonical_request.as_bytes()),
            "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(sig.date, "2019-02-25");
        assert_eq!(sig.signature, "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c");
        assert_eq!(
            sig.authorization("AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******", "cvm"),
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
        );
    }

    /// Notes §1.3(b): the English doc's variant.
    #[test]
    fn english_doc_variant() {
        let hash = sha256_hex(DOC_BODY.as_bytes());
        let headers =
            [("Content-Type", "application/json; charset=utf-8"), ("Host", "cvm.tencentcloudapi.com")];
        let sig =
            tc3_sign(&doc_request(&headers, &hash), &SecretKey::new("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"));
        assert_eq!(sig.signature, "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168");
    }

    /// Notes §1.3(c) / §9 V2: the newest doc signs `x-tc-action` too.
    #[test]
    fn newest_doc_with_action_header() {
        let hash = sha256_hex(DOC_BODY.as_bytes());
        let headers = [
            ("Content-Type", "application/json; charset=utf-8"),
            ("Host", "cvm.tencentcloudapi.com"),
            ("X-TC-Action", "DescribeInstances"),
        ];
        let sig = tc3_sign(&doc_request(&headers, &hash), &SecretKey::new("*".repeat(32)));
        assert_eq!(
            sha256_hex(sig.canonical_request.as_bytes()),
            "7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84"
        );
        assert_eq!(sig.signed_headers, "content-type;host;x-tc-action");
        assert_eq!(sig.signature, "10b1a37a7301a02ca19a647ad722d5e43b4b3cff309d421d85b46093f6ab6c4f");
    }

    /// Notes §9 V3 and V4: what the Python SDK sends, on the real host and on a loopback port.
    #[test]
    fn python_sdk_post_vectors() {
        let body =
            r#"{"Filters": [{"Name": "instance-name", "Values": ["\u672a\u547d\u540d"]}], "Limit": 1}"#;
        let hash = sha256_hex(body.as_bytes());
        assert_eq!(hash, "9c4e6fc3917897afd9575f3de22ed6472236c2073379d81d06ed6bd9ef506bb7");
        let key = SecretKey::new("Gu5t9xGARNpq86cd98joQYCN3*******");
        for (host, canonical_hash, signature) in [
            (
                "cvm.tencentcloudapi.com",
                "786a8ae98ea8e2f8485750975e6368af2aacd54b09ac897f03615e815e65020e",
                "553f6a80f295445c94eacdbac1bb83df2bf5e7d7491d3ccd391428dcd35d2fb9",
            ),
            (
                "127.0.0.1:8080",
                "c28dffcb5b569a076d0d1027d93fa5ab3ac447ba978480c89f7c0c3cc89c7913",
                "0d4b42e3a75ce8524c563ec8ae67f3c60886553f467d37c4e80b9eb89f49e0ab",
            ),
        ] {
            let headers = [("Content-Type", "application/json"), ("Host", host)];
            let sig = tc3_sign(&doc_request(&headers, &hash), &key);
            assert_eq!(sha256_hex(sig.canonical_request.as_bytes()), canonical_hash, "{host}");
            assert_eq!(sig.signature, signature, "{host}");
        }
    }

    /// Notes §9 V5: GET signs the raw query and the hash of an empty payload.
    #[test]
    fn python_sdk_get_vector() {
        let query = "Filters.0.Name=instance-name&Filters.0.Values.0=%E6%9C%AA%E5%91%BD%E5%90%8D&Limit=1";
        let empty = sha256_hex(b"");
        assert_eq!(empty, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        let headers =
            [("Content-Type", "application/x-www-form-urlencoded"), ("Host", "cvm.tencentcloudapi.com")];
        let request = Tc3Request { method: "GET", query, ..doc_request(&headers, &empty) };
        let sig = tc3_sign(&request, &SecretKey::new("Gu5t9xGARNpq86cd98joQYCN3*******"));
        assert_eq!(
            sha256_hex(sig.canonical_request.as_bytes()),
            "2fd53676195fe5dfd41cb4d165b7836ba89a4a9a37ee3d60fff91d18bd1053f7"
        );
        assert_eq!(sig.signature, "b45aca44ded2c355722c92fe75f31c6f3d1a7353970a3d6fde8b7476f99ffe23");
    }

    fn params(s: &str) -> Vec<(String, String)> {
        s.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
    }

    /// Notes §1.4 / §9 V6: the v1 official examples (HmacSHA1) and the SHA-256 primitive check.
    #[test]
    fn v1_official_vectors() {
        let p = params(
            "Action=DescribeInstances&InstanceIds.0=ins-09dx96dg&Limit=20&Nonce=11886&Offset=0&Region=ap-guangzhou&SecretId=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE&Timestamp=1465185768&Version=2017-03-12",
        );
        let s = v1_string_to_sign("GET", "cvm.tencentcloudapi.com", "/", &p);
        assert_eq!(
            s,
            "GETcvm.tencentcloudapi.com/?Action=DescribeInstances&InstanceIds.0=ins-09dx96dg&Limit=20&Nonce=11886&Offset=0&Region=ap-guangzhou&SecretId=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE&Timestamp=1465185768&Version=2017-03-12"
        );
        let key = SecretKey::new("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE");
        assert_eq!(v1_sign(V1Method::HmacSha1, &key, &s), "EliP9YW3pW28FpsEdkXt/+WcGeI=");
        assert_eq!(v1_sign(V1Method::HmacSha256, &key, &s), "bR/zQ3QqOmcEYeRv71IzG/NxfisUDgy9cqRMQC+UB5g=");

        let newest = s.replace("AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", &format!("AKID{}", "*".repeat(32)));
        assert_eq!(
            v1_sign(V1Method::HmacSha1, &SecretKey::new("*".repeat(32)), &newest),
            "7RAM2xfNMO9EiVTNmPg06MRnCvQ="
        );
    }

    /// Notes §9 V7: the Python SDK's v1 request, sorted from its unsorted wire order.
    #[test]
    fn v1_python_sdk_vectors() {
        let wire = "Filters.0.Name=instance-name&Filters.0.Values.0=未命名&Limit=1&Action=DescribeInstances&RequestClient=SDK_PYTHON_3.1.195&Nonce=11886&Timestamp=1551113065&Version=2017-03-12&Region=ap-guangzhou&SecretId=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******&SignatureMethod=HmacSHA256&Language=zh-CN";
        let key = SecretKey::new("Gu5t9xGARNpq86cd98joQYCN3*******");
        let p = params(wire);
        let s = v1_string_to_sign("GET", "cvm.tencentcloudapi.com", "/", &p);
        assert_eq!(
            s,
            "GETcvm.tencentcloudapi.com/?Action=DescribeInstances&Filters.0.Name=instance-name&Filters.0.Values.0=未命名&Language=zh-CN&Limit=1&Nonce=11886&Region=ap-guangzhou&RequestClient=SDK_PYTHON_3.1.195&SecretId=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******&SignatureMethod=HmacSHA256&Timestamp=1551113065&Version=2017-03-12"
        );
        assert_eq!(
            v1_sign(V1Method::from_param(Some("HmacSHA256")), &key, &s),
            "nMQS0H47Hg3niI/D9Qbbc8hFhE6ll/HjCH2FkCDqEGQ="
        );
        let sha1 = s.replace("SignatureMethod=HmacSHA256", "SignatureMethod=HmacSHA1");
        assert_eq!(
            v1_sign(V1Method::from_param(Some("HmacSHA1")), &key, &sha1),
            "jHwM0dYaZMdawfnH95srRiBRzXU="
        );
    }

    #[test]
    fn authorization_parses_back() {
        let header = "TC3-HMAC-SHA256 Credential=AKIDx/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=abc";
        let auth = parse_tc3_authorization(header).unwrap();
        assert_eq!(auth.secret_id, "AKIDx");
        assert_eq!(auth.signed_headers, ["content-type", "host"]);
        for bad in [
            "",
            "TC3-HMAC-SHA256",
            "HMAC Credential=a/b/c/tc3_request",
            "TC3-HMAC-SHA256 Credential=a/b/tc3_request, SignedHeaders=host, Signature=x",
        ] {
            assert!(parse_tc3_authorization(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secret_key_never_prints() {
        let key = SecretKey::new("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE");
        assert!(!format!("{key:?} {key}").contains("Gu5t"));
        let token = SessionToken::new("sts-token-value");
        assert_eq!(format!("{token:?} {token}"), "SessionToken(****) ****");
        assert_eq!(token.expose(), "sts-token-value");
        assert!(
            signatures_match("abc", "abc")
                && !signatures_match("abc", "abd")
                && !signatures_match("ab", "abc")
        );
    }

    #[test]
    fn utc_date_uses_utc() {
        assert_eq!(utc_date(1_551_113_065), "2019-02-25");
        assert_eq!(utc_date(i64::MAX), "1970-01-01");
    }
}
