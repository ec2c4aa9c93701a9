//! Reading and authenticating a request: TC3-HMAC-SHA256 (POST JSON or GET query) and the
//! legacy v1 signatures (HmacSHA1 / HmacSHA256, GET query or POST form body), verified as the
//! service does: over the raw query string as received, the headers named in `SignedHeaders`,
//! and the `Host` header with its port.
//!
//! Every service is served on the one port, so a request names its service itself, by the
//! facts the cloud's own hosts check: a TC3 request by its credential scope (`…/tag/tc3_request`
//! signs for the Tag service, as a request to `tag.tencentcloudapi.com` must), a v1 request,
//! which has no scope, by its `Version`. The version must then be that service's
//! (`NoSuchVersion` otherwise) and the action one of its actions (`InvalidAction` otherwise).

use std::collections::HashMap;

use axum::http::{HeaderMap, Method};
use cvmfleet_wire::sign::{
    self, SecretKey, Tc3Request, V1Method, parse_tc3_authorization, signatures_match, tc3_sign, v1_sign,
    v1_string_to_sign,
};
use cvmfleet_wire::{Action, COMMON_PARAMS, MAX_CLOCK_SKEW_SECS, Service};

use cvmfleet_cloud::{ApiError, Params};

/// The parts of an HTTP request the API reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawRequest<'a> {
    pub(crate) method: &'a Method,
    pub(crate) path: &'a str,
    /// The query string exactly as received, without `?`.
    pub(crate) query: &'a str,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: &'a [u8],
}

/// An authenticated call.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) action: Action,
    /// The region of the call; empty for actions that take none ([`Action::needs_region`]).
    pub(crate) region: String,
    pub(crate) secret_id: String,
    pub(crate) params: Params,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn pairs(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes).into_owned().collect()
}

fn is_v1_form(raw: &RawRequest<'_>) -> bool {
    *raw.method == Method::POST
        && header(raw.headers, "content-type")
            .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"))
}

/// The v1 parameters: the query for GET, the form body for POST.
fn v1_params(raw: &RawRequest<'_>) -> Vec<(String, String)> {
    if is_v1_form(raw) { pairs(raw.body) } else { pairs(raw.query.as_bytes()) }
}

/// The action name a request claims, before authentication (for counters and fault rules);
/// `-` when there is none.
pub(crate) fn action_hint(raw: &RawRequest<'_>) -> String {
    if let Some(action) = header(raw.headers, "x-tc-action") {
        return action.to_owned();
    }
    v1_params(raw).into_iter().find(|(k, _)| k == "Action").map_or_else(|| "-".to_owned(), |(_, v)| v)
}

/// The business parameters a request carries, flattened (`Placement.Zone`), read before
/// authentication for fault rules that match on them; empty when they cannot be read.
pub(crate) fn params_hint(raw: &RawRequest<'_>) -> Vec<(String, String)> {
    let all = if raw.headers.contains_key("authorization") {
        if *raw.method == Method::GET {
            pairs(raw.query.as_bytes())
        } else {
            serde_json::from_slice::<serde_json::Value>(raw.body)
                .map(|v| cvmfleet_wire::flat::flatten(&v))
                .unwrap_or_default()
        }
    } else {
        v1_params(raw)
    };
    all.into_iter().filter(|(k, _)| !COMMON_PARAMS.contains(&k.as_str())).collect()
}

fn signature_failure() -> ApiError {
    ApiError::new(
        "AuthFailure.SignatureFailure",
        "The provided credentials could not be validated. Please check your signature is correct.",
    )
}

fn check_time(timestamp: &str, name: &str, now: i64) -> Result<i64, ApiError> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| {
        ApiError::invalid_parameter(format!(
            "`{name}` must be a Unix timestamp in seconds, not `{timestamp}`."
        ))
    })?;
    if (now - ts).abs() > MAX_CLOCK_SKEW_SECS {
        return Err(ApiError::new(
            "AuthFailure.SignatureExpire",
            format!(
                "The request timestamp {ts} is more than five minutes away from the server time {now}; \
                 check the client's clock."
            ),
        ));
    }
    Ok(ts)
}

fn lookup<'a>(
    credentials: &'a HashMap<String, SecretKey>,
    secret_id: &str,
) -> Result<&'a SecretKey, ApiError> {
    credentials.get(secret_id).ok_or_else(|| {
        ApiError::new(
            "AuthFailure.SecretIdNotFound",
            "The SecretId is not found, please ensure that your SecretId is correct.",
        )
    })
}

/// The common parameters every action needs, checked in the service's order. `scope` is the
/// service a TC3 signature was made for; without one (v1) the version names the service.
fn common(
    action: Option<&str>,
    version: Option<&str>,
    region: Option<&str>,
    v3: bool,
    scope: Option<Service>,
) -> Result<(Action, String), ApiError> {
    let name = |v3_name: &'static str, v1_name: &'static str| if v3 { v3_name } else { v1_name };
    let version = version.ok_or_else(|| ApiError::missing(name("X-TC-Version", "Version")))?;
    let action =
        action.filter(|a| !a.is_empty()).ok_or_else(|| ApiError::missing(name("X-TC-Action", "Action")))?;
    let no_such_version = |service: Option<Service>| {
        let speaks = match service {
            Some(s) => format!("{} speaks {}", s.name(), s.version()),
            None => Service::ALL.map(|s| format!("{} speaks {}", s.name(), s.version())).join(", "),
        };
        ApiError::new(
            "NoSuchVersion",
            format!("The requested version `{version}` of action `{action}` does not exist; {speaks}."),
        )
    };
    let service = match scope {
        Some(service) if service.version() == version => service,
        Some(service) => return Err(no_such_version(Some(service))),
        None => Service::from_version(version).ok_or_else(|| no_such_version(None))?,
    };
    let action: Action =
        action.parse().ok().filter(|a: &Action| a.service() == service).ok_or_else(|| {
            ApiError::new(
                "InvalidAction",
                format!(
                    "The action `{action}` does not exist in {} {version} or is not supported.",
                    service.name()
                ),
            )
        })?;
    if !action.needs_region() {
        // "本接口不需要传递此参数": a region given anyway is ignored.
        return Ok((action, String::new()));
    }
    let region =
        region.filter(|r| !r.is_empty()).ok_or_else(|| ApiError::missing(name("X-TC-Region", "Region")))?;
    Ok((action, region.to_owned()))
}

/// Authenticates a request and reads its action, region and parameters.
pub(crate) fn authenticate(
    raw: &RawRequest<'_>,
    credentials: &HashMap<String, SecretKey>,
    now: i64,
) -> Result<Call, ApiError> {
    if *raw.method != Method::GET && *raw.method != Method::POST {
        return Err(ApiError::new(
            "UnsupportedProtocol",
            format!("The HTTP method {} is not supported; use GET or POST.", raw.method),
        ));
    }
    match raw.headers.get("authorization") {
        Some(value) => {
            let value = value.to_str().map_err(|_| invalid_authorization("is not ASCII"))?;
            tc3(raw, value, credentials, now)
        }
        None => v1(raw, credentials, now),
    }
}

fn invalid_authorization(why: &str) -> ApiError {
    ApiError::new("AuthFailure.InvalidAuthorization", format!("The Authorization header {why}."))
}

fn tc3(
    raw: &RawRequest<'_>,
    authorization: &str,
    credentials: &HashMap<String, SecretKey>,
    now: i64,
) -> Result<Call, ApiError> {
    let auth = parse_tc3_authorization(authorization)
        .map_err(|e| invalid_authorization(&format!("is malformed: {}", e.0)))?;
    let key = lookup(credentials, &auth.secret_id)?;
    let timestamp =
        header(raw.headers, "x-tc-timestamp").ok_or_else(|| ApiError::missing("X-TC-Timestamp"))?;
    let timestamp = check_time(timestamp, "X-TC-Timestamp", now)?;
    if !auth.signed_headers.iter().any(|h| h == "host")
        || !auth.signed_headers.iter().any(|h| h == "content-type")
    {
        return Err(invalid_authorization("must sign at least the content-type and host headers"));
    }
    // The scope names the service the request was signed for; no other service can verify it.
    let Some(service) = Service::from_name(&auth.service) else { return Err(signature_failure()) };
    if auth.date != sign::utc_date(timestamp) {
        return Err(signature_failure());
    }
    let mut signed = Vec::with_capacity(auth.signed_headers.len());
    for name in &auth.signed_headers {
        let value = raw.headers.get(name.as_str()).ok_or_else(signature_failure)?;
        signed.push((name.as_str(), String::from_utf8_lossy(value.as_bytes()).into_owned()));
    }
    let headers: Vec<(&str, &str)> = signed.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let unsigned = header(raw.headers, "x-tc-content-sha256") == Some("UNSIGNED-PAYLOAD");
    let payload_hash = sign::sha256_hex(if unsigned { b"UNSIGNED-PAYLOAD" } else { raw.body });
    let request = Tc3Request {
        method: raw.method.as_str(),
        query: raw.query,
        headers: &headers,
        payload_hash: &payload_hash,
        service: service.name(),
        timestamp,
    };
    if !signatures_match(&tc3_sign(&request, key).signature, &auth.signature) {
        return Err(signature_failure());
    }
    let (action, region) = common(
        header(raw.headers, "x-tc-action"),
        header(raw.headers, "x-tc-version"),
        header(raw.headers, "x-tc-region"),
        true,
        Some(service),
    )?;
    let params = if *raw.method == Method::GET {
        Params::Pairs(
            pairs(raw.query.as_bytes())
                .into_iter()
                .filter(|(k, _)| !COMMON_PARAMS.contains(&k.as_str()))
                .collect(),
        )
    } else {
        let text = std::str::from_utf8(raw.body)
            .map_err(|_| ApiError::invalid_parameter("The request body is not UTF-8 JSON."))?;
        if text.trim().is_empty() {
            Params::Json(serde_json::Value::Object(serde_json::Map::new()))
        } else {
            let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
                ApiError::invalid_parameter(format!("The request body is not valid JSON: {e}."))
            })?;
            if !value.is_object() {
                return Err(ApiError::invalid_parameter("The request body must be a JSON object."));
            }
            Params::Json(value)
        }
    };
    Ok(Call { action, region, secret_id: auth.secret_id, params })
}

fn v1(raw: &RawRequest<'_>, credentials: &HashMap<String, SecretKey>, now: i64) -> Result<Call, ApiError> {
    let all = v1_params(raw);
    let get = |name: &str| all.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let Some(signature) = get("Signature") else {
        return Err(ApiError::new(
            "AuthFailure.InvalidAuthorization",
            "The request is not signed: it has neither an Authorization header (TC3-HMAC-SHA256) nor a Signature parameter.",
        ));
    };
    let secret_id = get("SecretId").ok_or_else(|| ApiError::missing("SecretId"))?;
    let key = lookup(credentials, secret_id)?;
    let timestamp = get("Timestamp").ok_or_else(|| ApiError::missing("Timestamp"))?;
    check_time(timestamp, "Timestamp", now)?;
    if get("Nonce").is_none() {
        return Err(ApiError::missing("Nonce"));
    }
    let host = header(raw.headers, "host").ok_or_else(signature_failure)?;
    let unsigned: Vec<(String, String)> = all.iter().filter(|(k, _)| k != "Signature").cloned().collect();
    let string_to_sign = v1_string_to_sign(raw.method.as_str(), host, raw.path, &unsigned);
    let expected = v1_sign(V1Method::from_param(get("SignatureMethod")), key, &string_to_sign);
    if !signatures_match(&expected, signature) {
        return Err(signature_failure());
    }
    let (action, region) = common(get("Action"), get("Version"), get("Region"), false, None)?;
    let params = all.iter().filter(|(k, _)| !COMMON_PARAMS.contains(&k.as_str())).cloned().collect();
    Ok(Call { action, region, secret_id: secret_id.to_owned(), params: Params::Pairs(params) })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const KEY: &str = "Gu5t9xGARNpq86cd98joQYCN3*******";
    const ID: &str = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******";

    fn creds() -> HashMap<String, SecretKey> {
        [(ID.to_owned(), SecretKey::new(KEY))].into()
    }

    fn headers(list: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in list {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    /// Notes §9 V4: the Python SDK's POST to a loopback endpoint verifies.
    #[test]
    fn python_sdk_post_vector_verifies() {
        let body =
            br#"{"Filters": [{"Name": "instance-name", "Values": ["\u672a\u547d\u540d"]}], "Limit": 1}"#;
        let h = headers(&[
            ("content-type", "application/json"),
            ("host", "127.0.0.1:8080"),
            ("x-tc-action", "DescribeInstances"),
            ("x-tc-timestamp", "1551113065"),
            ("x-tc-version", "2017-03-12"),
            ("x-tc-region", "ap-guangzhou"),
            (
                "authorization",
                "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=0d4b42e3a75ce8524c563ec8ae67f3c60886553f467d37c4e80b9eb89f49e0ab",
            ),
        ]);
        let raw = RawRequest { method: &Method::POST, path: "/", query: "", headers: &h, body };
        let call = authenticate(&raw, &creds(), 1_551_113_065 + 100).unwrap();
        assert_eq!(call.action, Action::DescribeInstances);
        assert_eq!(call.region, "ap-guangzhou");
        let expired = authenticate(&raw, &creds(), 1_551_113_065 + 301).unwrap_err();
        assert_eq!(expired.code, "AuthFailure.SignatureExpire");
        let other_host = headers(&[("host", "127.0.0.1:8081")]);
        let mut h2 = h.clone();
        h2.insert("host", other_host["host"].clone());
        let raw2 = RawRequest { headers: &h2, ..raw };
        assert_eq!(
            authenticate(&raw2, &creds(), 1_551_113_065).unwrap_err().code,
            "AuthFailure.SignatureFailure"
        );
    }

    /// Notes §9 V5: GET signs the raw query.
    #[test]
    fn python_sdk_get_vector_verifies() {
        let query = "Filters.0.Name=instance-name&Filters.0.Values.0=%E6%9C%AA%E5%91%BD%E5%90%8D&Limit=1";
        let h = headers(&[
            ("content-type", "application/x-www-form-urlencoded"),
            ("host", "cvm.tencentcloudapi.com"),
            ("x-tc-action", "DescribeInstances"),
            ("x-tc-timestamp", "1551113065"),
            ("x-tc-version", "2017-03-12"),
            ("x-tc-region", "ap-guangzhou"),
            (
                "authorization",
                "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=b45aca44ded2c355722c92fe75f31c6f3d1a7353970a3d6fde8b7476f99ffe23",
            ),
        ]);
        let raw = RawRequest { method: &Method::GET, path: "/", query, headers: &h, body: b"" };
        let call = authenticate(&raw, &creds(), 1_551_113_065).unwrap();
        let Params::Pairs(p) = &call.params else { panic!("pairs expected") };
        assert!(p.contains(&("Filters.0.Values.0".into(), "未命名".into())));
    }

    /// Notes §9 V7: the Python SDK's v1 HmacSHA256 GET verifies, whatever the wire order.
    #[test]
    fn python_sdk_v1_vector_verifies() {
        let query = "Filters.0.Name=instance-name&Filters.0.Values.0=%E6%9C%AA%E5%91%BD%E5%90%8D&Limit=1&Action=DescribeInstances&RequestClient=SDK_PYTHON_3.1.195&Nonce=11886&Timestamp=1551113065&Version=2017-03-12&Region=ap-guangzhou&SecretId=AKIDz8krbsJ5yKBZQpn74WFkmLPx3%2A%2A%2A%2A%2A%2A%2A&SignatureMethod=HmacSHA256&Language=zh-CN&Signature=nMQS0H47Hg3niI%2FD9Qbbc8hFhE6ll%2FHjCH2FkCDqEGQ%3D";
        let h = headers(&[("host", "cvm.tencentcloudapi.com")]);
        let raw = RawRequest { method: &Method::GET, path: "/", query, headers: &h, body: b"" };
        let call = authenticate(&raw, &creds(), 1_551_113_065).unwrap();
        assert_eq!(call.action, Action::DescribeInstances);
        let Params::Pairs(p) = &call.params else { panic!("pairs expected") };
        assert_eq!(p.len(), 3, "{p:?}");
        let tampered = query.replace("Limit=1", "Limit=2");
        let raw = RawRequest { query: &tampered, ..raw };
        assert_eq!(
            authenticate(&raw, &creds(), 1_551_113_065).unwrap_err().code,
            "AuthFailure.SignatureFailure"
        );
    }

    /// A POST TC3 request signed for `service`, with the given version, action and region.
    fn signed(service: &str, version: &str, action: &str, region: Option<&str>, now: i64) -> HeaderMap {
        let body = b"{}";
        let payload = sign::sha256_hex(body);
        let to_sign = [("content-type", "application/json"), ("host", "127.0.0.1:9100")];
        let request = Tc3Request {
            method: "POST",
            query: "",
            headers: &to_sign,
            payload_hash: &payload,
            service,
            timestamp: now,
        };
        let authorization = tc3_sign(&request, &SecretKey::new(KEY)).authorization(ID, service);
        let mut list = vec![
            ("content-type", "application/json".to_owned()),
            ("host", "127.0.0.1:9100".to_owned()),
            ("x-tc-action", action.to_owned()),
            ("x-tc-timestamp", now.to_string()),
            ("x-tc-version", version.to_owned()),
            ("authorization", authorization),
        ];
        if let Some(region) = region {
            list.push(("x-tc-region", region.to_owned()));
        }
        let list: Vec<(&'static str, &str)> = list.iter().map(|(k, v)| (*k, v.as_str())).collect();
        headers(&list)
    }

    /// Issue 12: one port serves CVM and Tag; the credential scope picks the service, the
    /// version must be its version, the action one of its actions, and Tag actions need no
    /// region.
    #[test]
    fn issue_12_the_credential_scope_routes_between_services() {
        let now = 1_700_000_000;
        let call = |h: &HeaderMap| {
            let raw = RawRequest { method: &Method::POST, path: "/", query: "", headers: h, body: b"{}" };
            authenticate(&raw, &creds(), now)
        };
        let tag = call(&signed("tag", "2018-08-13", "TagResources", None, now)).unwrap();
        assert_eq!((tag.action, tag.region.as_str()), (Action::TagResources, ""));
        let ignored = call(&signed("tag", "2018-08-13", "GetResources", Some("ap-guangzhou"), now)).unwrap();
        assert_eq!(ignored.region, "", "a region given to a Tag action is ignored");
        let regions = call(&signed("cvm", "2017-03-12", "DescribeRegions", None, now)).unwrap();
        assert_eq!(regions.action, Action::DescribeRegions);
        let code = |h: HeaderMap| call(&h).unwrap_err().code;
        assert_eq!(code(signed("cvm", "2018-08-13", "TagResources", None, now)), "NoSuchVersion");
        assert_eq!(code(signed("tag", "2017-03-12", "TagResources", None, now)), "NoSuchVersion");
        assert_eq!(code(signed("tag", "2018-08-13", "DescribeInstances", None, now)), "InvalidAction");
        assert_eq!(
            code(signed("cvm", "2017-03-12", "TagResources", Some("ap-guangzhou"), now)),
            "InvalidAction"
        );
        assert_eq!(
            code(signed("cbs", "2017-03-12", "DescribeInstances", Some("ap-guangzhou"), now)),
            "AuthFailure.SignatureFailure"
        );
        assert_eq!(code(signed("cvm", "2017-03-12", "DescribeInstances", None, now)), "MissingParameter");
        // A request signed for one service and relabelled for another fails its signature.
        let mut relabelled = signed("tag", "2018-08-13", "TagResources", None, now);
        let auth = relabelled["authorization"].to_str().unwrap().replace("/tag/", "/cvm/");
        relabelled.insert("authorization", HeaderValue::from_str(&auth).unwrap());
        assert_eq!(code(relabelled), "AuthFailure.SignatureFailure");
    }

    /// v1 requests carry no scope: the version picks the service.
    #[test]
    fn issue_12_v1_requests_are_routed_by_version() {
        let now = 1_551_113_065;
        let pairs = |version: &str, action: &str| {
            let mut unsigned: Vec<(String, String)> = [
                ("Action", action),
                ("Nonce", "1"),
                ("SecretId", ID),
                ("Timestamp", "1551113065"),
                ("Version", version),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
            let to_sign = v1_string_to_sign("GET", "127.0.0.1:9100", "/", &unsigned);
            let signature = v1_sign(V1Method::HmacSha1, &SecretKey::new(KEY), &to_sign);
            unsigned.push(("Signature".to_owned(), signature));
            cvmfleet_wire::flat::encode_query(&unsigned)
        };
        let h = headers(&[("host", "127.0.0.1:9100")]);
        let call = |query: &str| {
            let raw = RawRequest { method: &Method::GET, path: "/", query, headers: &h, body: b"" };
            authenticate(&raw, &creds(), now)
        };
        assert_eq!(call(&pairs("2018-08-13", "UnTagResources")).unwrap().action, Action::UnTagResources);
        assert_eq!(call(&pairs("2017-03-12", "UnTagResources")).unwrap_err().code, "InvalidAction");
        assert_eq!(call(&pairs("2019-01-01", "UnTagResources")).unwrap_err().code, "NoSuchVersion");
    }
}
