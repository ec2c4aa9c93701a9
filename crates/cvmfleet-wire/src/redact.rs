//! The one redaction of URLs and endpoints for anything cvmfleet prints (errors, logs, `/healthz`,
//! metrics labels), for the cloud API's endpoint and etcd's alike (issues 10 and 25).
//!
//! It lives here because every crate that prints a URL can reach this crate without breaking
//! the import direction: the client and the emulator depend on the wire crate already, the CLI
//! does too, and the wire crate depends on nothing of ours.

/// A URL or endpoint as it may be shown: userinfo becomes `***@`, every query value and the
/// fragment `***`. Works on text that is not a URL at all (`root:pw@host:2379`, a truncated
/// `http://u:pw@[bad`), and errs on the side of hiding: everything before the last `@` of the
/// text counts as userinfo, so a password holding `/`, `?` or `#` is hidden too.
#[must_use]
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let mut out = String::from(scheme);
    let rest = match rest.rfind('@') {
        Some(at) => {
            out.push_str("***@");
            &rest[at + 1..]
        }
        None => rest,
    };
    let (rest, fragment) = match rest.split_once('#') {
        Some((rest, _)) => (rest, true),
        None => (rest, false),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    out.push_str(rest);
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) => format!("{key}=***"),
                None if pair.is_empty() => String::new(),
                None => "***".to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    if fragment {
        out.push_str("#***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn userinfo_query_values_and_fragments_are_hidden() {
        assert_eq!(redact_url("http://a:b@h:1/?k=v&x"), "http://***@h:1/?k=***&***");
        assert_eq!(redact_url("https://cvm.tencentcloudapi.com"), "https://cvm.tencentcloudapi.com");
        assert_eq!(redact_url("etcd://root:s3cretPw@127.0.0.1:2379"), "etcd://***@127.0.0.1:2379");
        assert_eq!(
            redact_url("etcds://10.0.0.1:2379,10.0.0.2:2379#frag"),
            "etcds://10.0.0.1:2379,10.0.0.2:2379#***"
        );
        assert_eq!(redact_url("root:pw@h:2379"), "***@h:2379");
    }

    /// Issue 25, item 3: a password holding a URL's delimiters must not escape the userinfo.
    #[test]
    fn issue_25_passwords_with_delimiters_stay_hidden() {
        for url in [
            "etcd://root:s3cret/Pw@127.0.0.1:2379",
            "etcd://root:s3cret#Pw@127.0.0.1:2379",
            "etcd://root:s3cret?Pw@127.0.0.1:2379",
            "etcd://root:s3cret@Pw@127.0.0.1:2379",
            "http://u:s3cret@[bad",
        ] {
            let shown = redact_url(url);
            assert!(!shown.contains("s3cret") && !shown.contains("root"), "{url} -> {shown}");
        }
    }
}
