//! Secret references: a spec never holds a password, only where to read it at apply time.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::files::{self, ReadError};

/// Where a secret comes from, as written in the spec.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
enum SecretSource {
    /// Name of an environment variable holding the secret, read when the spec is applied.
    #[serde(rename = "fromEnv")]
    FromEnv(#[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"))] String),
    /// Path of a file holding the secret (one trailing newline is ignored), read when the spec is
    /// applied. A relative path is relative to the spec file's directory.
    #[serde(rename = "fromFile")]
    FromFile(#[schemars(length(min = 1))] String),
}

/// A reference to a secret: `{fromEnv: VAR}` or `{fromFile: path}`.
///
/// The reference, never the value, is what serializes, hashes and prints; [`SecretRef::resolve`]
/// reads the value, and only the apply step should call it.
#[derive(Clone)]
pub struct SecretRef {
    source: SecretSource,
    /// Directory of the spec file, for relative `fromFile` paths. Not part of equality, hashing
    /// or serialization: moving a checkout must not change a template's hash.
    base_dir: Option<PathBuf>,
}

impl SecretRef {
    /// A reference to an environment variable.
    #[must_use]
    pub fn from_env(var: &str) -> SecretRef {
        SecretRef { source: SecretSource::FromEnv(var.to_owned()), base_dir: None }
    }

    /// A reference to a file (relative paths are relative to `base_dir`, if given).
    #[must_use]
    pub fn from_file(path: &str, base_dir: Option<&Path>) -> SecretRef {
        SecretRef {
            source: SecretSource::FromFile(path.to_owned()),
            base_dir: base_dir.map(Path::to_path_buf),
        }
    }

    pub(crate) fn set_base_dir(&mut self, dir: Option<&Path>) {
        self.base_dir = dir.map(Path::to_path_buf);
    }

    /// The environment variable it names, if it names one.
    #[must_use]
    pub fn env_var(&self) -> Option<&str> {
        match &self.source {
            SecretSource::FromEnv(var) => Some(var),
            SecretSource::FromFile(_) => None,
        }
    }

    /// The file it names, if it names one: relative paths joined to the spec file's directory.
    #[must_use]
    pub fn file_path(&self) -> Option<PathBuf> {
        match &self.source {
            SecretSource::FromEnv(_) => None,
            SecretSource::FromFile(path) => Some(match &self.base_dir {
                Some(dir) if Path::new(path).is_relative() => dir.join(path),
                _ => PathBuf::from(path),
            }),
        }
    }

    /// The reference as written, e.g. `fromEnv: SEED_PASSWORD`.
    #[must_use]
    pub fn describe(&self) -> String {
        match &self.source {
            SecretSource::FromEnv(var) => format!("fromEnv: {var}"),
            SecretSource::FromFile(path) => format!("fromFile: {path}"),
        }
    }

    /// Reads the secret's value now. This is the one reader of secrets: the executor and
    /// `plan`'s checks call it, and it applies one rule to both sources.
    ///
    /// - A file must be a regular file (symbolic links followed) of at most
    ///   [`MAX_SECRET_BYTES`]: a FIFO or a device is refused before it is opened, so it can
    ///   neither hang the command nor fill its memory.
    /// - One trailing line break (`\n` or `\r\n`) is dropped, from a file or a variable alike
    ///   (`echo pw > file`, `export PW=$(cat file)` both give `pw`); nothing else is trimmed.
    /// - The value must be UTF-8 (files) or Unicode (variables), and not empty after that.
    ///
    /// # Errors
    /// [`SecretError`] when the variable is unset, not Unicode or empty, or the file is missing,
    /// not a regular file, too large, not UTF-8, unreadable or empty. The error names the
    /// reference, never a value.
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        let value = match &self.source {
            SecretSource::FromEnv(var) => match std::env::var(var) {
                Ok(value) => value,
                Err(std::env::VarError::NotPresent) => {
                    return Err(SecretError::EnvUnset { var: var.clone() });
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(SecretError::EnvNotUnicode { var: var.clone() });
                }
            },
            SecretSource::FromFile(path) => {
                let path = match &self.base_dir {
                    Some(dir) if Path::new(path).is_relative() => dir.join(path),
                    _ => PathBuf::from(path),
                };
                let bytes = files::read_bounded(&path, MAX_SECRET_BYTES).map_err(|error| match error {
                    ReadError::NotAFile(kind) => SecretError::NotAFile { path: path.clone(), kind },
                    ReadError::TooLarge(_) => SecretError::TooLarge { path: path.clone() },
                    ReadError::Io(source) => SecretError::File { path: path.clone(), source },
                })?;
                String::from_utf8(bytes).map_err(|_| SecretError::FileNotUtf8 { path: path.clone() })?
            }
        };
        let value = match value.strip_suffix('\n') {
            Some(rest) => rest.strip_suffix('\r').unwrap_or(rest).to_owned(),
            None => value,
        };
        if value.is_empty() {
            return Err(SecretError::Empty { reference: self.describe() });
        }
        Ok(Secret(value))
    }
}

/// Largest secret file read, in bytes. A CVM password is at most 30 characters; 64 KiB leaves
/// room for any other secret while keeping a mistaken path (a log, `/proc/kcore`) out of memory.
pub const MAX_SECRET_BYTES: u64 = 64 * 1024;

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretRef({})", self.describe())
    }
}

impl PartialEq for SecretRef {
    fn eq(&self, other: &SecretRef) -> bool {
        self.source == other.source
    }
}

impl Eq for SecretRef {}

impl Serialize for SecretRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.source.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(SecretRef { source: SecretSource::deserialize(deserializer)?, base_dir: None })
    }
}

impl JsonSchema for SecretRef {
    fn schema_name() -> Cow<'static, str> {
        "SecretRef".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = SecretSource::json_schema(generator);
        schema.insert(
            "description".into(),
            "A reference to a secret, never the secret itself: `{fromEnv: VAR}` reads an environment variable, `{fromFile: path}` reads a file (relative to the spec file), when the spec is applied.".into(),
        );
        schema
    }
}

/// A secret value read by [`SecretRef::resolve`]. Its `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that sends it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The environment variable is not set.
    #[error("environment variable `{var}` is not set")]
    EnvUnset {
        /// The variable.
        var: String,
    },
    /// The environment variable is not valid Unicode.
    #[error("environment variable `{var}` is not valid unicode")]
    EnvNotUnicode {
        /// The variable.
        var: String,
    },
    /// The path is not a regular file (a FIFO, a device, a directory...).
    #[error("secret file {} is {kind}, not a regular file", path.display())]
    NotAFile {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// The file is larger than [`MAX_SECRET_BYTES`].
    #[error("secret file {} is larger than {MAX_SECRET_BYTES} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file is not UTF-8 text.
    #[error("secret file {} is not UTF-8 text", path.display())]
    FileNotUtf8 {
        /// The file.
        path: PathBuf,
    },
    /// The file could not be read.
    #[error("cannot read secret file {}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The variable or file is empty.
    #[error("secret `{reference}` is empty")]
    Empty {
        /// The reference as written.
        reference: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_secret_is_read_relative_to_the_spec_and_trimmed() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("pw"), "s3cret-Value\n").expect("write");
        let secret = SecretRef::from_file("pw", Some(dir.path())).resolve().expect("resolve");
        assert_eq!(secret.expose(), "s3cret-Value");
        assert_eq!(format!("{secret:?}"), "Secret([redacted])");
    }

    #[test]
    fn missing_env_names_the_variable_only() {
        let err = SecretRef::from_env("CVMFLEET_TEST_SURELY_UNSET_VAR").resolve();
        let message = err.map(|_| String::new()).unwrap_or_else(|e| e.to_string());
        assert_eq!(message, "environment variable `CVMFLEET_TEST_SURELY_UNSET_VAR` is not set");
    }

    #[test]
    fn serializes_as_reference() {
        let r = SecretRef::from_file("a/b", Some(Path::new("/x")));
        assert_eq!(serde_json::to_string(&r).unwrap_or_default(), r#"{"fromFile":"a/b"}"#);
        assert_eq!(r, SecretRef::from_file("a/b", None));
    }
}
