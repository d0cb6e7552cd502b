//! Errors and single-value checks: [`ConfigError`] (key, origin, what is allowed), a value
//! with where it came from (file line or flag), and the checks every section shares:
//! positive durations, secret sources, http(s) URLs, DNS labels.

use std::time::Duration;

use crate::duration;

use super::file::FileSecret;

/// A configuration error: the key, where it was set, and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: `{key}`: {message}")]
pub struct ConfigError {
    pub key: String,
    /// `veer.yaml:12`, `--interval` or `built-in default`.
    pub origin: String,
    pub message: String,
}

impl ConfigError {
    pub fn metric_label(&self) -> &'static str {
        "config"
    }
}

/// A value and where it came from, for error messages.
pub(super) struct Origin<T> {
    pub(super) value: T,
    pub(super) origin: String,
}

pub(super) fn from_file<T: Clone>(file_name: &str, v: &serde_saphyr::Spanned<T>) -> Origin<T> {
    Origin {
        value: v.value.clone(),
        origin: format!("{file_name}:{}", v.referenced.line()),
    }
}

pub(super) fn from_flag<T>(flag: &str, v: T) -> Origin<T> {
    Origin {
        value: v,
        origin: flag.to_string(),
    }
}

/// A Kubernetes object name (RFC 1123 label, as namespaces need).
pub(super) fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

pub(super) fn parse_positive_duration(
    key: &str,
    v: &Origin<String>,
) -> Result<Duration, ConfigError> {
    match duration::parse(&v.value) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(ConfigError {
            key: key.into(),
            origin: v.origin.clone(),
            message: "must be longer than zero".into(),
        }),
        Err(e) => Err(ConfigError {
            key: key.into(),
            origin: v.origin.clone(),
            message: format!("{e}; write a duration like 30s, 2m or 1h"),
        }),
    }
}

pub(super) fn secret_source(
    file_name: &str,
    key: &str,
    v: &serde_saphyr::Spanned<FileSecret>,
) -> Result<crate::source::SecretSource, ConfigError> {
    match &v.value {
        FileSecret::Source(s) => Ok(s.clone()),
        FileSecret::Inline(_) => Err(ConfigError {
            key: key.into(),
            origin: format!("{file_name}:{}", v.referenced.line()),
            message: "secrets are not written in veer.yaml; give {file: PATH} or {env: NAME}"
                .into(),
        }),
    }
}

pub(super) fn http_url(key: &str, v: &Origin<String>) -> Result<reqwest::Url, ConfigError> {
    let bad = |message: String| ConfigError {
        key: key.into(),
        origin: v.origin.clone(),
        message,
    };
    let url = reqwest::Url::parse(v.value.trim())
        .map_err(|e| bad(format!("`{}` is not a URL: {e}", v.value)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!(
            "`{}` must be an http:// or https:// URL",
            v.value
        )));
    }
    Ok(url)
}
