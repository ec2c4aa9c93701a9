//! API credentials: a SecretId, its SecretKey and, for temporary (STS) credentials, a session
//! token. Read from the variables Tencent's own tools use, or from a tccli profile.

use std::fmt;
use std::path::{Path, PathBuf};

use cvmfleet_wire::sign::{SecretKey, SessionToken};
use serde_json::Value;

use crate::error::ConfigError;

/// Environment variable holding the SecretId (tccli, the SDKs, terraform).
pub const ENV_SECRET_ID: &str = "TENCENTCLOUD_SECRET_ID";
/// Environment variable holding the SecretKey.
pub const ENV_SECRET_KEY: &str = "TENCENTCLOUD_SECRET_KEY";
/// Environment variable holding the session token of temporary credentials (sent as
/// `X-TC-Token`).
pub const ENV_SESSION_TOKEN: &str = "TENCENTCLOUD_SESSION_TOKEN";

/// Credentials that sign requests. `Debug` shows the SecretId only.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The SecretId (`AKID…`); public, it appears in every `Authorization` header.
    pub secret_id: String,
    /// The SecretKey; never leaves this process, never printed.
    pub secret_key: SecretKey,
    /// Session token of temporary credentials, sent as `X-TC-Token`; a secret too, never
    /// printed.
    pub token: Option<SessionToken>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("secret_id", &self.secret_id)
            .field("secret_key", &self.secret_key)
            .field("token", &self.token)
            .finish()
    }
}

impl Credentials {
    /// Long-term credentials.
    pub fn new(secret_id: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Credentials { secret_id: secret_id.into(), secret_key: SecretKey::new(secret_key), token: None }
    }

    /// The same credentials with a session token.
    #[must_use]
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(SessionToken::new(token));
        self
    }

    /// Reads `TENCENTCLOUD_SECRET_ID`, `TENCENTCLOUD_SECRET_KEY` and `TENCENTCLOUD_SESSION_TOKEN`.
    ///
    /// `Ok(None)` when neither the id nor the key is set (look elsewhere, e.g. a tccli profile).
    ///
    /// # Errors
    /// [`ConfigError::InvalidCredentials`] when only one of the two is set, or either is empty
    /// or malformed.
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Credentials::from_env`] with an injected variable lookup, for tests and for callers
    /// that keep their environment elsewhere.
    ///
    /// # Errors
    /// As [`Credentials::from_env`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ConfigError> {
        let id = lookup(ENV_SECRET_ID);
        let key = lookup(ENV_SECRET_KEY);
        let token = lookup(ENV_SESSION_TOKEN).filter(|t| !t.is_empty()).map(SessionToken::new);
        let credentials = match (id, key) {
            (None, None) => return Ok(None),
            (Some(id), Some(key)) => Credentials { secret_id: id, secret_key: SecretKey::new(key), token },
            (Some(_), None) => {
                return Err(ConfigError::InvalidCredentials(format!(
                    "{ENV_SECRET_ID} is set but {ENV_SECRET_KEY} is not"
                )));
            }
            (None, Some(_)) => {
                return Err(ConfigError::InvalidCredentials(format!(
                    "{ENV_SECRET_KEY} is set but {ENV_SECRET_ID} is not"
                )));
            }
        };
        credentials.validate()?;
        Ok(Some(credentials))
    }

    /// Where the tccli profile `name` lives: `~/.tccli/<name>.credential`, the JSON file
    /// `tccli configure` writes (`{"secretId": …, "secretKey": …, "token": …}`). The caller
    /// reads it (bounded, regular files only) and hands the text to
    /// [`Credentials::from_tccli_text`].
    ///
    /// # Errors
    /// [`ConfigError::InvalidCredentials`] when the home directory is unknown or the profile
    /// name is not a plain file name.
    pub fn tccli_profile_file(name: &str) -> Result<PathBuf, ConfigError> {
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(ConfigError::InvalidCredentials(format!(
                "tccli profile name `{name}` must be a plain name such as `default`"
            )));
        }
        tccli_profile_path(name).ok_or_else(|| {
            ConfigError::InvalidCredentials("cannot locate the home directory for ~/.tccli".into())
        })
    }

    /// Reads the text of a tccli credential file (read by the caller, which bounds it; `path`
    /// is for messages).
    ///
    /// Only key-based profiles are supported: role, CVM-role, OAuth and SSO profiles (a `type`
    /// other than `default`) need token exchanges this client does not perform.
    ///
    /// # Errors
    /// [`ConfigError::CredentialsFormat`] when the text is not a usable key-based profile.
    pub fn from_tccli_text(text: &str, path: &Path) -> Result<Self, ConfigError> {
        parse_tccli(text).map_err(|reason| ConfigError::CredentialsFormat { path: path.to_owned(), reason })
    }

    /// Checks what the service would reject without saying why: empty values, surrounding
    /// whitespace ("no whitespace around the key", `AuthFailure.SecretIdNotFound`), and
    /// characters that cannot travel in an HTTP header.
    ///
    /// # Errors
    /// [`ConfigError::InvalidCredentials`] naming the field, never its secret value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |what: &str, why: &str| Err(ConfigError::InvalidCredentials(format!("{what} {why}")));
        for (what, value) in
            [("the SecretId", self.secret_id.as_str()), ("the SecretKey", self.secret_key.expose())]
        {
            if value.is_empty() {
                return bad(what, "is empty");
            }
            if value.trim() != value {
                return bad(what, "has leading or trailing whitespace");
            }
        }
        if !self.secret_id.chars().all(|c| c.is_ascii_graphic()) {
            return bad("the SecretId", "contains characters that cannot be sent in a header");
        }
        if let Some(token) = &self.token
            && !token.expose().chars().all(|c| c.is_ascii_graphic())
        {
            return bad("the session token", "contains characters that cannot be sent in a header");
        }
        Ok(())
    }
}

/// Where tccli keeps a profile's credentials, for messages.
#[must_use]
pub fn tccli_profile_path(name: &str) -> Option<PathBuf> {
    std::env::home_dir().map(|home| home.join(".tccli").join(format!("{name}.credential")))
}

/// Reads the credential JSON. Error messages name fields, never their values: a serde error
/// would quote a mistyped value, which could be the key itself.
fn parse_tccli(text: &str) -> Result<Credentials, String> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| format!("not JSON (line {}, column {})", e.line(), e.column()))?;
    let Value::Object(map) = value else {
        return Err("not a JSON object".into());
    };
    let kind = map.get("type").and_then(Value::as_str).unwrap_or("default");
    if !kind.is_empty() && kind != "default" {
        return Err(format!("profiles of type `{kind}` are not supported; use secretId/secretKey"));
    }
    let field = |name: &str| -> Result<Option<String>, String> {
        match map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("`{name}` must be a string")),
        }
    };
    let id = field("secretId")?.ok_or("no `secretId`")?;
    let key = field("secretKey")?.ok_or("no `secretKey`")?;
    let token = field("token")?.map(SessionToken::new);
    let credentials = Credentials { secret_id: id, secret_key: SecretKey::new(key), token };
    credentials.validate().map_err(|e| match e {
        ConfigError::InvalidCredentials(reason) => reason,
        other => other.to_string(),
    })?;
    Ok(credentials)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const KEY: &str = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn env_credentials() {
        assert_eq!(Credentials::from_lookup(env(&[])).unwrap(), None);
        let creds = Credentials::from_lookup(env(&[(ENV_SECRET_ID, "AKIDx"), (ENV_SECRET_KEY, KEY)]))
            .unwrap()
            .unwrap();
        assert_eq!(creds, Credentials::new("AKIDx", KEY));
        let with_token = Credentials::from_lookup(env(&[
            (ENV_SECRET_ID, "AKIDx"),
            (ENV_SECRET_KEY, KEY),
            (ENV_SESSION_TOKEN, "tok"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(with_token.token.as_ref().map(SessionToken::expose), Some("tok"));
        // An empty token variable means no token.
        let empty_token = Credentials::from_lookup(env(&[
            (ENV_SECRET_ID, "AKIDx"),
            (ENV_SECRET_KEY, KEY),
            (ENV_SESSION_TOKEN, ""),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(empty_token.token, None);
    }

    #[test]
    fn incomplete_env_is_an_error_that_hides_the_key() {
        for vars in [
            vec![(ENV_SECRET_KEY, KEY)],
            vec![(ENV_SECRET_ID, "AKIDx")],
            vec![(ENV_SECRET_ID, ""), (ENV_SECRET_KEY, KEY)],
            vec![(ENV_SECRET_ID, "AKIDx"), (ENV_SECRET_KEY, " Gu5t9xGARNpq86cd98joQYCN3EXAMPLE")],
            vec![(ENV_SECRET_ID, "AKID x"), (ENV_SECRET_KEY, KEY)],
            vec![(ENV_SECRET_ID, "AKIDx"), (ENV_SECRET_KEY, KEY), (ENV_SESSION_TOKEN, "a\nb")],
        ] {
            let err = Credentials::from_lookup(env(&vars)).unwrap_err();
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("Gu5t9x"), "{shown}");
        }
    }

    #[test]
    fn debug_hides_key_and_token() {
        let creds = Credentials::new("AKIDx", KEY).with_token("sts-token-value");
        let shown = format!("{creds:?}");
        assert!(shown.contains("AKIDx"));
        assert!(!shown.contains("Gu5t9x") && !shown.contains("sts-token-value"), "{shown}");
    }

    #[test]
    fn tccli_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.credential");
        let read = |text: &str| Credentials::from_tccli_text(text, &path);
        let ok = read(&format!(r#"{{"secretId": "AKIDx", "secretKey": "{KEY}"}}"#));
        assert_eq!(ok.unwrap(), Credentials::new("AKIDx", KEY));
        let sts = read(&format!(
            r#"{{"secretId": "AKIDx", "secretKey": "{KEY}", "token": "t1", "type": "default"}}"#
        ));
        assert_eq!(sts.unwrap().token.as_ref().map(SessionToken::expose), Some("t1"));

        for (_, text, expected) in [
            ("a", "{", "not JSON"),
            ("b", "[]", "not a JSON object"),
            ("c", r#"{"secretId": "AKIDx"}"#, "no `secretKey`"),
            ("d", r#"{"secretId": "AKIDx", "secretKey": 12345678}"#, "`secretKey` must be a string"),
            ("e", r#"{"type": "sso", "secretId": "x", "secretKey": "y"}"#, "type `sso`"),
            ("f", r#"{"secretId": "AKIDx", "secretKey": " spaced "}"#, "whitespace"),
        ] {
            let err = read(text).unwrap_err();
            let shown = err.to_string();
            assert!(shown.contains(expected), "{shown}");
            assert!(!shown.contains("12345678") && !shown.contains("spaced"), "{shown}");
        }
        assert!(Credentials::tccli_profile_file("../etc").is_err());
        assert!(Credentials::tccli_profile_file("").is_err());
    }
}
