//! Secrets veer reads (git credentials, webhook secrets, Slack and Prometheus tokens): where
//! one is kept ([`SecretSource`]: a file or an environment variable, read each time so a
//! rotated secret is picked up) and the value ([`Secret`]), whose `Debug` never shows it. A
//! leaf: it depends on nothing in veer.

use std::fmt;
use std::path::PathBuf;

/// Why a secret could not be read; never contains the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the secret from {source_name}: {reason}")]
pub struct SecretError {
    /// Where it was looked for (`file /path`, `environment variable NAME`).
    pub source_name: String,
    pub reason: String,
}

/// A secret value. Its `Debug` never shows it, so it cannot leak through logs or errors.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where a secret is kept. Read each time it is needed, so a rotated secret is picked up.
/// In veer.yaml: `{file: /path}` or `{env: NAME}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum SecretSource {
    /// A file holding the secret (trailing newline removed), e.g. a mounted Kubernetes Secret.
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::File(p) => write!(f, "file {}", p.display()),
            SecretSource::Env(v) => write!(f, "environment variable {v}"),
        }
    }
}

impl SecretSource {
    pub fn read(&self) -> Result<Secret, SecretError> {
        let value = match self {
            SecretSource::File(path) => std::fs::read_to_string(path).map_err(|e| SecretError {
                source_name: self.to_string(),
                reason: format!("cannot read it: {e}"),
            })?,
            SecretSource::Env(name) => std::env::var(name).map_err(|e| SecretError {
                source_name: self.to_string(),
                reason: match e {
                    std::env::VarError::NotPresent => "it is not set".to_string(),
                    std::env::VarError::NotUnicode(_) => "it is not valid UTF-8".to_string(),
                },
            })?,
        };
        let value = value.trim_end_matches(['\n', '\r']);
        if value.is_empty() {
            return Err(SecretError {
                source_name: self.to_string(),
                reason: "it is empty".to_string(),
            });
        }
        Ok(Secret::new(value))
    }
}
