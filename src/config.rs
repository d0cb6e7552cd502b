//! Configuration: `veer.yaml` plus command-line flags (with `VEER_*` environment fallbacks),
//! resolved once at start-up by a pure function into one validated, immutable [`Config`].
//!
//! Flags win over the file; the file wins over defaults. A bad value is an error naming the
//! key (and the file line when it came from the file) and what is allowed.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::manifest::{DEFAULT_MAX_FILE_BYTES, ReadOptions};
use crate::validate::duration;

/// Where a secret comes from. The value itself is read when used, never stored in config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum SecretSource {
    /// Read the secret from this file (trailing newline trimmed).
    File(PathBuf),
    /// Read the secret from this environment variable.
    Env(String),
}

/// How to authenticate to the git remote.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum AuthConfig {
    /// HTTPS token (sent as the password, with user `x-access-token` unless one is given).
    Token {
        #[serde(default)]
        username: Option<String>,
        token: SecretSource,
    },
    /// HTTPS basic auth.
    Basic {
        username: String,
        password: SecretSource,
    },
    /// SSH private key; `knownHosts` is required so the server's key is checked.
    Ssh {
        #[serde(default)]
        username: Option<String>,
        private_key: PathBuf,
        #[serde(default)]
        passphrase: Option<SecretSource>,
        known_hosts: PathBuf,
    },
}

/// Which revision of the repository to track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefSpec {
    Branch(String),
    Tag(String),
    Commit(String),
}

impl RefSpec {
    /// `main`, `branch:main`, `tag:v1.2`, `commit:<sha>`, or a bare 40-hex commit id.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (kind, name) = match text.split_once(':') {
            Some((k, n)) => (Some(k), n),
            None => (None, text),
        };
        if name.is_empty() {
            return Err("a ref needs a name, e.g. `main`, `tag:v1.2` or `commit:<sha>`".into());
        }
        let is_sha = name.len() == 40 && name.chars().all(|c| c.is_ascii_hexdigit());
        match kind {
            None if is_sha => Ok(RefSpec::Commit(name.to_ascii_lowercase())),
            None | Some("branch") => Ok(RefSpec::Branch(name.to_string())),
            Some("tag") => Ok(RefSpec::Tag(name.to_string())),
            Some("commit") if is_sha => Ok(RefSpec::Commit(name.to_ascii_lowercase())),
            Some("commit") => Err(format!("`{name}` is not a full 40-character commit id")),
            Some(other) => Err(format!(
                "unknown ref kind `{other}`; use `branch:`, `tag:` or `commit:`"
            )),
        }
    }
}

/// How often to poll: a fixed interval or a cron schedule (seconds field first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollConfig {
    Interval(Duration),
    Cron(String),
}

/// The git source, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceConfig {
    pub url: String,
    pub reference: RefSpec,
    /// Sub-directory of the repository holding the manifests; empty for the root.
    pub path: String,
    pub auth: Option<AuthConfig>,
    pub poll: PollConfig,
    /// Longest a fetch may take before it counts as failed.
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

/// The whole configuration, immutable after start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `None` when no repository is configured (e.g. `veer validate PATH`).
    pub source: Option<SourceConfig>,
    pub read: ReadOptions,
    /// Where veer keeps its clone of the repository (a cache, safe to delete).
    pub cache_dir: PathBuf,
    pub log_format: LogFormat,
    pub log_level: String,
}

/// Values given on the command line or through `VEER_*` variables; `None` = not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    pub repo: Option<String>,
    pub reference: Option<String>,
    pub path: Option<String>,
    pub interval: Option<String>,
    pub schedule: Option<String>,
    pub cache_dir: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    pub log_level: Option<String>,
    pub default_namespace: Option<String>,
}

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

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileConfig {
    #[serde(default)]
    source: Option<FileSource>,
    #[serde(default)]
    manifests: Option<FileManifests>,
    #[serde(default)]
    cache_dir: Option<PathBuf>,
    #[serde(default)]
    log: Option<FileLog>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileSource {
    url: serde_saphyr::Spanned<String>,
    #[serde(default, rename = "ref")]
    reference: Option<serde_saphyr::Spanned<String>>,
    #[serde(default)]
    path: Option<serde_saphyr::Spanned<String>>,
    #[serde(default)]
    auth: Option<AuthConfig>,
    #[serde(default)]
    interval: Option<serde_saphyr::Spanned<String>>,
    #[serde(default)]
    schedule: Option<serde_saphyr::Spanned<String>>,
    #[serde(default)]
    timeout: Option<serde_saphyr::Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileManifests {
    #[serde(default)]
    default_namespace: Option<String>,
    #[serde(default)]
    max_file_bytes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileLog {
    #[serde(default)]
    format: Option<LogFormat>,
    #[serde(default)]
    level: Option<String>,
}

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_CACHE_DIR: &str = ".veer-cache";

/// A value and where it came from, for error messages.
struct Origin<T> {
    value: T,
    origin: String,
}

fn from_file<T: Clone>(file_name: &str, v: &serde_saphyr::Spanned<T>) -> Origin<T> {
    Origin {
        value: v.value.clone(),
        origin: format!("{file_name}:{}", v.referenced.line()),
    }
}

fn from_flag<T>(flag: &str, v: T) -> Origin<T> {
    Origin {
        value: v,
        origin: flag.to_string(),
    }
}

/// Resolve the configuration from an optional `veer.yaml` (name and text) and overrides.
pub fn resolve(file: Option<(&str, &str)>, overrides: &Overrides) -> Result<Config, ConfigError> {
    let file_name = file.map(|(n, _)| n).unwrap_or("veer.yaml");
    let parsed: FileConfig = match file {
        Some((name, text)) if !text.trim().is_empty() => {
            serde_saphyr::from_str(text).map_err(|e| {
                let line = e.location().map(|l| l.line()).unwrap_or(0);
                let rendered = e.without_snippet().to_string();
                ConfigError {
                    key: "(file)".into(),
                    origin: format!("{name}:{line}"),
                    message: rendered
                        .lines()
                        .next()
                        .unwrap_or("invalid YAML")
                        .to_string()
                        + "; see README's configuration reference for the allowed keys",
                }
            })?
        }
        _ => FileConfig::default(),
    };

    let mut read = ReadOptions {
        default_namespace: "default".to_string(),
        max_file_bytes: DEFAULT_MAX_FILE_BYTES,
    };
    if let Some(m) = &parsed.manifests {
        if let Some(ns) = &m.default_namespace {
            read.default_namespace = ns.clone();
        }
        if let Some(max) = m.max_file_bytes {
            if max == 0 {
                return Err(ConfigError {
                    key: "manifests.maxFileBytes".into(),
                    origin: file_name.into(),
                    message: "must be greater than 0".into(),
                });
            }
            read.max_file_bytes = max;
        }
    }
    if let Some(ns) = &overrides.default_namespace {
        read.default_namespace = ns.clone();
    }
    if crate::validate::hosts::check_host(&read.default_namespace).is_err()
        || read.default_namespace.contains('.')
    {
        return Err(ConfigError {
            key: "manifests.defaultNamespace".into(),
            origin: file_name.into(),
            message: format!(
                "`{}` is not a valid namespace name (lowercase letters, digits and `-`)",
                read.default_namespace
            ),
        });
    }

    let source = resolve_source(file_name, parsed.source.as_ref(), overrides)?;
    let log = parsed.log.unwrap_or_default();
    Ok(Config {
        source,
        read,
        cache_dir: overrides
            .cache_dir
            .clone()
            .or(parsed.cache_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR)),
        log_format: overrides
            .log_format
            .or(log.format)
            .unwrap_or(LogFormat::Human),
        log_level: overrides
            .log_level
            .clone()
            .or(log.level)
            .unwrap_or_else(|| "info".to_string()),
    })
}

fn resolve_source(
    file_name: &str,
    file: Option<&FileSource>,
    o: &Overrides,
) -> Result<Option<SourceConfig>, ConfigError> {
    let pick = |flag: &str, over: &Option<String>, key: Option<&serde_saphyr::Spanned<String>>| {
        over.clone()
            .map(|v| from_flag(flag, v))
            .or_else(|| key.map(|k| from_file(file_name, k)))
    };
    let url = pick("--repo", &o.repo, file.map(|f| &f.url));
    let Some(url) = url else {
        if o.reference.is_some() || o.path.is_some() {
            return Err(ConfigError {
                key: "source.url".into(),
                origin: "--ref/--path".into(),
                message: "a ref or path was given but no repository; add `--repo URL`".into(),
            });
        }
        return Ok(None);
    };
    if url.value.trim().is_empty() {
        return Err(ConfigError {
            key: "source.url".into(),
            origin: url.origin,
            message:
                "is empty; give a path, file://, git://, https://, ssh:// or user@host:repo URL"
                    .into(),
        });
    }
    let reference = match pick(
        "--ref",
        &o.reference,
        file.and_then(|f| f.reference.as_ref()),
    ) {
        Some(r) => RefSpec::parse(&r.value).map_err(|message| ConfigError {
            key: "source.ref".into(),
            origin: r.origin,
            message,
        })?,
        None => RefSpec::Branch("main".to_string()),
    };
    let path = match pick("--path", &o.path, file.and_then(|f| f.path.as_ref())) {
        Some(p) => {
            let clean = p.value.trim_matches('/').to_string();
            if p.value.starts_with('/') || clean.split('/').any(|c| c == "..") {
                return Err(ConfigError {
                    key: "source.path".into(),
                    origin: p.origin,
                    message: format!(
                        "`{}` must be a relative path inside the repository, without `..`",
                        p.value
                    ),
                });
            }
            clean
        }
        None => String::new(),
    };
    let interval = pick(
        "--interval",
        &o.interval,
        file.and_then(|f| f.interval.as_ref()),
    );
    let schedule = pick(
        "--schedule",
        &o.schedule,
        file.and_then(|f| f.schedule.as_ref()),
    );
    let poll = match (interval, schedule) {
        (Some(i), Some(s)) => {
            return Err(ConfigError {
                key: "source.interval".into(),
                origin: format!("{} and {}", i.origin, s.origin),
                message: "give either an interval or a cron schedule, not both".into(),
            });
        }
        (Some(i), None) => PollConfig::Interval(parse_positive_duration("source.interval", &i)?),
        (None, Some(s)) => {
            let fields = s.value.split_whitespace().count();
            if !(6..=7).contains(&fields) {
                return Err(ConfigError {
                    key: "source.schedule".into(),
                    origin: s.origin,
                    message: format!(
                        "`{}` has {fields} fields; veer's cron schedules start with a seconds field (6 or 7 fields), e.g. `0 */5 * * * *` for every five minutes",
                        s.value
                    ),
                });
            }
            PollConfig::Cron(s.value)
        }
        (None, None) => PollConfig::Interval(DEFAULT_INTERVAL),
    };
    let timeout = match file.and_then(|f| f.timeout.as_ref()) {
        Some(t) => parse_positive_duration("source.timeout", &from_file(file_name, t))?,
        None => DEFAULT_FETCH_TIMEOUT,
    };
    Ok(Some(SourceConfig {
        url: url.value.trim().to_string(),
        reference,
        path,
        auth: file.and_then(|f| f.auth.clone()),
        poll,
        timeout,
    }))
}

fn parse_positive_duration(key: &str, v: &Origin<String>) -> Result<Duration, ConfigError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> Result<Config, ConfigError> {
        resolve(Some(("veer.yaml", text)), &Overrides::default())
    }

    #[test]
    fn defaults_without_file_or_flags() {
        let c = resolve(None, &Overrides::default()).unwrap();
        assert_eq!(c.source, None);
        assert_eq!(c.read.default_namespace, "default");
        assert_eq!(c.log_format, LogFormat::Human);
    }

    #[test]
    fn full_file_is_read() {
        let c = file(
            "source:\n  url: https://example.com/mesh.git\n  ref: tag:v1.2\n  path: clusters/prod/\n  schedule: \"0 */5 * * * *\"\n  timeout: 20s\n  auth:\n    token:\n      token: {env: GIT_TOKEN}\nmanifests:\n  defaultNamespace: shop\nlog:\n  format: json\n",
        )
        .unwrap();
        let s = c.source.unwrap();
        assert_eq!(s.reference, RefSpec::Tag("v1.2".into()));
        assert_eq!(s.path, "clusters/prod");
        assert_eq!(s.poll, PollConfig::Cron("0 */5 * * * *".into()));
        assert_eq!(s.timeout, Duration::from_secs(20));
        assert!(matches!(s.auth, Some(AuthConfig::Token { .. })));
        assert_eq!(c.read.default_namespace, "shop");
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn flags_override_file() {
        let o = Overrides {
            repo: Some("/tmp/repo".into()),
            interval: Some("2m".into()),
            ..Overrides::default()
        };
        let c = resolve(
            Some((
                "veer.yaml",
                "source:\n  url: https://x/y.git\n  interval: 10s\n",
            )),
            &o,
        )
        .unwrap();
        let s = c.source.unwrap();
        assert_eq!(s.url, "/tmp/repo");
        assert_eq!(s.poll, PollConfig::Interval(Duration::from_secs(120)));
    }

    #[test]
    fn errors_name_key_origin_and_allowed_values() {
        let cases = [
            (
                "source:\n  url: x\n  interval: 10\n",
                "veer.yaml:3: `source.interval`",
            ),
            (
                "source:\n  url: x\n  schedule: \"*/5 * * * *\"\n",
                "seconds field",
            ),
            (
                "source:\n  url: x\n  interval: 1s\n  schedule: \"0 * * * * *\"\n",
                "not both",
            ),
            ("source:\n  url: x\n  path: ../up\n", "`source.path`"),
            ("source:\n  url: x\n  ref: commit:abc\n", "40-character"),
            ("sauce:\n  url: x\n", "veer.yaml:1"),
            ("log:\n  format: xml\n", "veer.yaml:2"),
            (
                "manifests:\n  defaultNamespace: Not_Valid\n",
                "defaultNamespace",
            ),
        ];
        for (text, expected) in cases {
            let err = file(text).unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "{text:?} gave {err:?}, wanted {expected:?}"
            );
        }
    }

    #[test]
    fn ref_spec_table() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(RefSpec::parse("main"), Ok(RefSpec::Branch("main".into())));
        assert_eq!(
            RefSpec::parse("branch:rel/1"),
            Ok(RefSpec::Branch("rel/1".into()))
        );
        assert_eq!(RefSpec::parse("tag:v1"), Ok(RefSpec::Tag("v1".into())));
        assert_eq!(RefSpec::parse(sha), Ok(RefSpec::Commit(sha.into())));
        assert!(RefSpec::parse("pr:1").is_err());
        assert!(RefSpec::parse("").is_err());
    }
}
