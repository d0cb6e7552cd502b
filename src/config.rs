//! Configuration: `veer.yaml` plus command-line flags (with `VEER_*` environment fallbacks),
//! resolved once at start-up by a pure function into one validated, immutable [`Config`].
//!
//! Flags win over the file; the file wins over defaults. A bad value is an error naming the
//! key (and the file line when it came from the file) and what is allowed.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::manifest::{DEFAULT_MAX_FILE_BYTES, ReadOptions};
use crate::notify::{
    self, EventKind, Filter, NotifyConfig, Severity, SlackConfig, SlackTarget, WebhookConfig,
};
use crate::source::{Auth, GitRef, Schedule, SourceError, SourceSpec};
use crate::validate::duration;

/// The git source, validated: what to follow, how often, how long a fetch may take.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceConfig {
    pub spec: SourceSpec,
    pub schedule: Schedule,
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
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `None` when no repository is configured (e.g. `veer validate PATH`).
    pub source: Option<SourceConfig>,
    pub read: ReadOptions,
    /// Where veer keeps its clone of the repository (a cache, safe to delete).
    pub cache_dir: PathBuf,
    pub log_format: LogFormat,
    pub log_level: String,
    pub cluster: ClusterConfig,
    pub sync: SyncConfig,
    /// Slack and webhook notifications; none by default.
    pub notify: NotifyConfig,
    /// The HTTP server of `veer run`.
    pub server: ServerConfig,
    /// Where rollout analysis asks its questions.
    pub analysis: AnalysisConfig,
    pub rollouts: RolloutsConfig,
}

/// `analysis:`: the Prometheus rollouts query. `None`: no analysis backend (checks are
/// metrics errors, held or failed as each policy's `onMetricsError` says).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnalysisConfig {
    pub prometheus: Option<crate::analysis::PrometheusConfig>,
}

/// `rollouts:`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RolloutsConfig {
    /// `maxConcurrentRollouts`: rollouts progressing at once; the rest queue. 0: no limit.
    pub max_concurrent: usize,
    /// A directory of extra RolloutPolicy files (besides the repository's and the shipped).
    pub policies_dir: Option<PathBuf>,
}

/// The HTTP server (`/healthz`, `/readyz`, `/metrics`, `/hooks/git`, the status page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub listen: std::net::SocketAddr,
    /// Verifies git push webhooks; `None`: hooks are refused.
    pub webhook_secret: Option<crate::source::SecretSource>,
    /// `maxConnections`: connections served at once (lowered at start when the open-files
    /// limit is too small for it and what the rest of veer needs).
    pub max_connections: usize,
    /// `headerReadTimeout`: a request's line and headers must arrive within this.
    pub header_read_timeout: Duration,
    /// `requestTimeout`: a request, body included, within this (408 after); an answer the
    /// client leaves unread this long is cut off.
    pub request_timeout: Duration,
    /// `notReadyAfterApiOutage`: `/readyz` says not ready once the Kubernetes API has been
    /// unreachable this long.
    pub not_ready_after_api_outage: Duration,
}

pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_NOT_READY_AFTER_API_OUTAGE: Duration = Duration::from_secs(60);

/// Loopback by default: the page and the hooks are exposed on purpose, not by accident.
pub const DEFAULT_LISTEN: std::net::SocketAddr = std::net::SocketAddr::V4(
    std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 8080),
);

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: DEFAULT_LISTEN,
            webhook_secret: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            not_ready_after_api_outage: DEFAULT_NOT_READY_AFTER_API_OUTAGE,
        }
    }
}

/// How veer reaches the cluster and where it keeps its state there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `None`: `KUBECONFIG`, `~/.kube/config`, then the in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context; `None`: the current one.
    pub context: Option<String>,
    /// Namespace of the state ConfigMap.
    pub state_namespace: String,
    /// Name of the state ConfigMap.
    pub state_name: String,
}

/// How sync behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncConfig {
    /// Delete objects veer applied that are gone from git.
    pub prune: bool,
    /// Re-apply drift on the next reconcile; `false` only reports it.
    pub self_heal: bool,
    /// Take ownership of fields other managers own (server-side apply `force`).
    pub force_conflicts: bool,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            prune: true,
            self_heal: true,
            force_conflicts: false,
        }
    }
}

pub const DEFAULT_STATE_NAMESPACE: &str = "veer";
pub const DEFAULT_STATE_NAME: &str = "veer-state";

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
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub state_namespace: Option<String>,
    pub prune: Option<bool>,
    pub self_heal: Option<bool>,
    pub force_conflicts: Option<bool>,
    /// `--listen` / `VEER_LISTEN`, unparsed (parsed with the file's value, for one message).
    pub listen: Option<String>,
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
    #[serde(default)]
    cluster: Option<FileCluster>,
    #[serde(default)]
    sync: Option<FileSync>,
    #[serde(default)]
    notify: Option<FileNotify>,
    #[serde(default)]
    server: Option<FileServer>,
    #[serde(default)]
    analysis: Option<FileAnalysis>,
    #[serde(default)]
    rollouts: Option<FileRollouts>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileAnalysis {
    #[serde(default)]
    prometheus: Option<FilePrometheus>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FilePrometheus {
    url: serde_saphyr::Spanned<String>,
    #[serde(default)]
    timeout: Option<serde_saphyr::Spanned<String>>,
    #[serde(default)]
    auth: Option<crate::analysis::PrometheusAuth>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileRollouts {
    #[serde(default)]
    max_concurrent: Option<usize>,
    #[serde(default)]
    policies_dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileServer {
    #[serde(default)]
    listen: Option<serde_saphyr::Spanned<String>>,
    #[serde(default)]
    webhook_secret: Option<serde_saphyr::Spanned<FileSecret>>,
    #[serde(default)]
    max_connections: Option<serde_saphyr::Spanned<usize>>,
    #[serde(default)]
    header_read_timeout: Option<serde_saphyr::Spanned<String>>,
    #[serde(default)]
    request_timeout: Option<serde_saphyr::Spanned<String>>,
    #[serde(default)]
    not_ready_after_api_outage: Option<serde_saphyr::Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileCluster {
    #[serde(default)]
    kubeconfig: Option<PathBuf>,
    #[serde(default)]
    context: Option<String>,
    #[serde(default)]
    state_namespace: Option<String>,
    #[serde(default)]
    state_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileSync {
    #[serde(default)]
    prune: Option<bool>,
    #[serde(default)]
    self_heal: Option<bool>,
    #[serde(default)]
    force_conflicts: Option<bool>,
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
    auth: Option<Auth>,
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
    let notify = match &parsed.notify {
        Some(n) => resolve_notify(file_name, n)?,
        None => NotifyConfig::default(),
    };
    let server = resolve_server(file_name, parsed.server.as_ref(), overrides)?;
    let analysis = resolve_analysis(file_name, parsed.analysis.as_ref())?;
    let rollouts = match parsed.rollouts {
        Some(r) => RolloutsConfig {
            max_concurrent: r.max_concurrent.unwrap_or(0),
            policies_dir: r.policies_dir,
        },
        None => RolloutsConfig::default(),
    };
    let log = parsed.log.unwrap_or_default();
    let cluster = resolve_cluster(file_name, parsed.cluster.unwrap_or_default(), overrides)?;
    let file_sync = parsed.sync.unwrap_or_default();
    let defaults = SyncConfig::default();
    let sync = SyncConfig {
        prune: overrides
            .prune
            .or(file_sync.prune)
            .unwrap_or(defaults.prune),
        self_heal: overrides
            .self_heal
            .or(file_sync.self_heal)
            .unwrap_or(defaults.self_heal),
        force_conflicts: overrides
            .force_conflicts
            .or(file_sync.force_conflicts)
            .unwrap_or(defaults.force_conflicts),
    };
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
        cluster,
        sync,
        notify,
        server,
        analysis,
        rollouts,
    })
}

fn resolve_analysis(
    file_name: &str,
    file: Option<&FileAnalysis>,
) -> Result<AnalysisConfig, ConfigError> {
    let Some(p) = file.and_then(|a| a.prometheus.as_ref()) else {
        return Ok(AnalysisConfig::default());
    };
    let url = from_file(file_name, &p.url);
    let parsed = url::Url::parse(&url.value);
    if !parsed
        .as_ref()
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
    {
        return Err(ConfigError {
            key: "analysis.prometheus.url".into(),
            origin: url.origin,
            message: format!(
                "`{}` is not an http(s) URL; write e.g. http://prometheus.istio-system:9090",
                url.value
            ),
        });
    }
    let mut config = crate::analysis::PrometheusConfig::new(&url.value);
    if let Some(t) = &p.timeout {
        config.timeout =
            parse_positive_duration("analysis.prometheus.timeout", &from_file(file_name, t))?;
    }
    if let Some(auth) = &p.auth {
        config.auth = auth.clone();
    }
    Ok(AnalysisConfig {
        prometheus: Some(config),
    })
}

fn resolve_server(
    file_name: &str,
    file: Option<&FileServer>,
    o: &Overrides,
) -> Result<ServerConfig, ConfigError> {
    let listen = o
        .listen
        .clone()
        .map(|v| from_flag("--listen", v))
        .or_else(|| {
            file.and_then(|f| f.listen.as_ref())
                .map(|l| from_file(file_name, l))
        });
    let listen = match listen {
        Some(l) => l.value.trim().parse().map_err(|_| ConfigError {
            key: "server.listen".into(),
            origin: l.origin,
            message: format!(
                "`{}` is not an address to listen on; write IP:PORT, e.g. 127.0.0.1:8080 or 0.0.0.0:8080",
                l.value
            ),
        })?,
        None => DEFAULT_LISTEN,
    };
    let webhook_secret = match file.and_then(|f| f.webhook_secret.as_ref()) {
        Some(v) => Some(secret_source(file_name, "server.webhookSecret", v)?),
        None => None,
    };
    let max_connections = match file.and_then(|f| f.max_connections.as_ref()) {
        Some(v) if v.value == 0 => {
            return Err(ConfigError {
                key: "server.maxConnections".into(),
                origin: from_file(file_name, v).origin,
                message: "must be at least 1".into(),
            });
        }
        Some(v) => v.value,
        None => DEFAULT_MAX_CONNECTIONS,
    };
    let duration = |key: &str, v: Option<&serde_saphyr::Spanned<String>>, default: Duration| {
        v.map_or(Ok(default), |v| {
            parse_positive_duration(key, &from_file(file_name, v))
        })
    };
    Ok(ServerConfig {
        listen,
        webhook_secret,
        max_connections,
        header_read_timeout: duration(
            "server.headerReadTimeout",
            file.and_then(|f| f.header_read_timeout.as_ref()),
            DEFAULT_HEADER_READ_TIMEOUT,
        )?,
        request_timeout: duration(
            "server.requestTimeout",
            file.and_then(|f| f.request_timeout.as_ref()),
            DEFAULT_REQUEST_TIMEOUT,
        )?,
        not_ready_after_api_outage: duration(
            "server.notReadyAfterApiOutage",
            file.and_then(|f| f.not_ready_after_api_outage.as_ref()),
            DEFAULT_NOT_READY_AFTER_API_OUTAGE,
        )?,
    })
}

/// A Kubernetes object name (RFC 1123 label, as namespaces need).
fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn resolve_cluster(
    file_name: &str,
    file: FileCluster,
    o: &Overrides,
) -> Result<ClusterConfig, ConfigError> {
    let (state_namespace, origin) = match (&o.state_namespace, file.state_namespace) {
        (Some(ns), _) => (ns.clone(), "--state-namespace".to_string()),
        (None, Some(ns)) => (ns, file_name.to_string()),
        (None, None) => (
            DEFAULT_STATE_NAMESPACE.to_string(),
            "built-in default".to_string(),
        ),
    };
    if !is_dns_label(&state_namespace) {
        return Err(ConfigError {
            key: "cluster.stateNamespace".into(),
            origin,
            message: format!(
                "`{state_namespace}` is not a valid namespace name (lowercase letters, digits and `-`, at most 63)"
            ),
        });
    }
    let state_name = file
        .state_name
        .unwrap_or_else(|| DEFAULT_STATE_NAME.to_string());
    if !is_dns_label(&state_name) {
        return Err(ConfigError {
            key: "cluster.stateName".into(),
            origin: file_name.into(),
            message: format!(
                "`{state_name}` is not a valid ConfigMap name (lowercase letters, digits and `-`, at most 63)"
            ),
        });
    }
    Ok(ClusterConfig {
        kubeconfig: o.kubeconfig.clone().or(file.kubeconfig),
        context: o.context.clone().or(file.context),
        state_namespace,
        state_name,
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
    let url_error = |origin: &str, e: SourceError| ConfigError {
        key: "source.url".into(),
        origin: origin.to_string(),
        message: e.to_string(),
    };
    let reference = match pick(
        "--ref",
        &o.reference,
        file.and_then(|f| f.reference.as_ref()),
    ) {
        Some(r) => GitRef::parse(&r.value).map_err(|e| ConfigError {
            key: "source.ref".into(),
            origin: r.origin,
            message: e.to_string(),
        })?,
        None => GitRef::Branch("main".to_string()),
    };
    let mut spec =
        SourceSpec::new(url.value.trim(), reference).map_err(|e| url_error(&url.origin, e))?;
    if let Some(p) = pick("--path", &o.path, file.and_then(|f| f.path.as_ref())) {
        spec = spec.with_sub_path(&p.value).map_err(|e| ConfigError {
            key: "source.path".into(),
            origin: p.origin,
            message: e.to_string(),
        })?;
    }
    if let Some(auth) = file.and_then(|f| f.auth.clone()) {
        spec = spec.with_auth(auth).map_err(|e| ConfigError {
            key: "source.auth".into(),
            origin: format!("{file_name} and {}", url.origin),
            message: e.to_string(),
        })?;
    }
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
    let (key, poll) = match (interval, schedule) {
        (Some(i), Some(s)) => {
            return Err(ConfigError {
                key: "source.interval".into(),
                origin: format!("{} and {}", i.origin, s.origin),
                message: "give either an interval or a cron schedule, not both".into(),
            });
        }
        (Some(i), None) => ("source.interval", Some(i)),
        (None, Some(s)) => ("source.schedule", Some(s)),
        (None, None) => ("source.interval", None),
    };
    let schedule = match poll {
        Some(p) => Schedule::parse(&p.value).map_err(|e| ConfigError {
            key: key.into(),
            origin: p.origin,
            message: e.to_string(),
        })?,
        None => Schedule::Interval(DEFAULT_INTERVAL),
    };
    let timeout = match file.and_then(|f| f.timeout.as_ref()) {
        Some(t) => parse_positive_duration("source.timeout", &from_file(file_name, t))?,
        None => DEFAULT_FETCH_TIMEOUT,
    };
    Ok(Some(SourceConfig {
        spec,
        schedule,
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

/// `notify:` as written. Secrets are `{file: ...}` or `{env: ...}`, never inline.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileNotify {
    #[serde(default)]
    slack: Option<FileSlack>,
    #[serde(default)]
    webhooks: Vec<FileWebhook>,
    #[serde(default)]
    queue_size: Option<usize>,
    #[serde(default)]
    max_attempts: Option<u32>,
    #[serde(default)]
    dedup_window: Option<serde_saphyr::Spanned<String>>,
    #[serde(default)]
    timeout: Option<serde_saphyr::Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileSlack {
    #[serde(default)]
    webhook_url: Option<serde_saphyr::Spanned<FileSecret>>,
    #[serde(default)]
    bot_token: Option<serde_saphyr::Spanned<FileSecret>>,
    #[serde(default)]
    api_url: Option<serde_saphyr::Spanned<String>>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    events: Option<Vec<serde_saphyr::Spanned<String>>>,
    #[serde(default)]
    min_severity: Option<Severity>,
    #[serde(default)]
    commit_url_template: Option<serde_saphyr::Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileWebhook {
    url: serde_saphyr::Spanned<String>,
    #[serde(default)]
    secret: Option<serde_saphyr::Spanned<FileSecret>>,
    #[serde(default)]
    events: Option<Vec<serde_saphyr::Spanned<String>>>,
    #[serde(default)]
    min_severity: Option<Severity>,
}

/// A secret as written: where to read it, or (refused) the value itself. Parsed this way so
/// that an inline secret is reported without the YAML parser echoing it in its error.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum FileSecret {
    Source(crate::source::SecretSource),
    Inline(serde::de::IgnoredAny),
}

fn secret_source(
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

fn resolve_notify(file_name: &str, n: &FileNotify) -> Result<NotifyConfig, ConfigError> {
    let mut config = NotifyConfig::default();
    let error = |key: &str, origin: String, message: String| ConfigError {
        key: key.to_string(),
        origin,
        message,
    };
    if let Some(size) = n.queue_size {
        if size == 0 {
            return Err(error(
                "notify.queueSize",
                file_name.into(),
                "must be at least 1".into(),
            ));
        }
        config.queue_size = size;
    }
    if let Some(attempts) = n.max_attempts {
        if attempts == 0 {
            return Err(error(
                "notify.maxAttempts",
                file_name.into(),
                "must be at least 1 (the first attempt counts)".into(),
            ));
        }
        config.retry.max_attempts = attempts;
    }
    if let Some(w) = &n.dedup_window {
        config.dedup_window =
            parse_positive_duration("notify.dedupWindow", &from_file(file_name, w))?;
    }
    if let Some(t) = &n.timeout {
        config.timeout = parse_positive_duration("notify.timeout", &from_file(file_name, t))?;
    }
    if let Some(s) = &n.slack {
        let target = match (&s.webhook_url, &s.bot_token) {
            (Some(url), None) => {
                let url = secret_source(file_name, "notify.slack.webhookUrl", url)?;
                if s.api_url.is_some() {
                    return Err(error(
                        "notify.slack.apiUrl",
                        file_name.into(),
                        "only applies with `botToken`".into(),
                    ));
                }
                SlackTarget::Webhook { url }
            }
            (None, Some(token)) => {
                let token = secret_source(file_name, "notify.slack.botToken", token)?;
                if s.channel.is_none() {
                    return Err(error(
                        "notify.slack.channel",
                        file_name.into(),
                        "is required with `botToken` (chat.postMessage needs a channel)".into(),
                    ));
                }
                let api_url = match &s.api_url {
                    Some(u) => {
                        let mut url =
                            http_url("notify.slack.apiUrl", &from_file(file_name, u))?.to_string();
                        if !url.ends_with('/') {
                            url.push('/');
                        }
                        url
                    }
                    None => notify::DEFAULT_SLACK_API_URL.to_string(),
                };
                SlackTarget::Bot { token, api_url }
            }
            (Some(_), Some(_)) | (None, None) => {
                return Err(error(
                    "notify.slack",
                    file_name.into(),
                    "give exactly one of `webhookUrl` (incoming webhook) or `botToken` (bot, one thread per rollout), each as {file: PATH} or {env: NAME}".into(),
                ));
            }
        };
        let commit_url_template = match &s.commit_url_template {
            Some(t) if !t.value.contains("{commit}") && !t.value.contains("{short}") => {
                return Err(error(
                    "notify.slack.commitUrlTemplate",
                    from_file(file_name, t).origin,
                    "must contain `{commit}` (or `{short}`), e.g. https://github.com/org/repo/commit/{commit}".into(),
                ));
            }
            Some(t) => Some(t.value.clone()),
            None => None,
        };
        config.slack = Some(SlackConfig {
            target,
            channel: s.channel.clone(),
            username: s.username.clone(),
            filter: resolve_filter(
                file_name,
                "notify.slack.events",
                s.events.as_deref(),
                s.min_severity,
            )?,
            commit_url_template,
        });
    }
    for (i, w) in n.webhooks.iter().enumerate() {
        let key = format!("notify.webhooks[{i}]");
        config.webhooks.push(WebhookConfig {
            url: http_url(&format!("{key}.url"), &from_file(file_name, &w.url))?,
            secret: match &w.secret {
                Some(v) => Some(secret_source(file_name, &format!("{key}.secret"), v)?),
                None => None,
            },
            filter: resolve_filter(
                file_name,
                &format!("{key}.events"),
                w.events.as_deref(),
                w.min_severity,
            )?,
        });
    }
    Ok(config)
}

fn resolve_filter(
    file_name: &str,
    key: &str,
    events: Option<&[serde_saphyr::Spanned<String>]>,
    min_severity: Option<Severity>,
) -> Result<Filter, ConfigError> {
    let mut filter = Filter::default();
    if let Some(events) = events {
        if events.is_empty() {
            return Err(ConfigError {
                key: key.into(),
                origin: file_name.into(),
                message: "is empty; list at least one event, or remove the notifier".into(),
            });
        }
        filter.events.clear();
        for e in events {
            let kind = EventKind::parse(&e.value).ok_or_else(|| ConfigError {
                key: key.into(),
                origin: from_file(file_name, e).origin,
                message: format!(
                    "`{}` is not an event; use one of {}",
                    e.value,
                    EventKind::ALL.map(|k| k.as_str()).join(", ")
                ),
            })?;
            filter.events.insert(kind);
        }
    }
    if let Some(min) = min_severity {
        filter.min_severity = min;
    }
    Ok(filter)
}

fn http_url(key: &str, v: &Origin<String>) -> Result<reqwest::Url, ConfigError> {
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
            "source:\n  url: https://example.com/mesh.git\n  ref: tag:v1.2\n  path: clusters/prod/\n  schedule: \"0 */5 * * * *\"\n  timeout: 20s\n  auth:\n    token:\n      {env: GIT_TOKEN}\nmanifests:\n  defaultNamespace: shop\nlog:\n  format: json\n",
        )
        .unwrap();
        let s = c.source.unwrap();
        assert_eq!(s.spec.reference, GitRef::Tag("v1.2".into()));
        assert_eq!(s.spec.sub_path.as_deref(), Some("clusters/prod"));
        assert!(matches!(s.schedule, Schedule::Cron(_)));
        assert_eq!(s.timeout, Duration::from_secs(20));
        assert!(matches!(s.spec.auth, Auth::Token(_)));
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
        assert_eq!(s.spec.url.text, "/tmp/repo");
        assert_eq!(s.schedule, Schedule::Interval(Duration::from_secs(120)));
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
            ("source:\n  url: x\n  ref: commit:abc\n", "40-digit"),
            (
                "source:\n  url: https://h/r.git\n  auth:\n    ssh: {privateKey: /k, knownHosts: /h}\n",
                "`source.auth`",
            ),
            (
                "source:\n  url: x\n  auth:\n    token: {token: {vault: x}}\n",
                "veer.yaml:4",
            ),
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
    fn cluster_and_sync_table() {
        struct Case {
            file: &'static str,
            overrides: Overrides,
            want_cluster: (Option<&'static str>, Option<&'static str>, &'static str),
            want_sync: (bool, bool, bool),
        }
        let cases = [
            Case {
                file: "",
                overrides: Overrides::default(),
                want_cluster: (None, None, "veer"),
                want_sync: (true, true, false),
            },
            Case {
                file: "cluster:\n  kubeconfig: /k\n  context: prod\n  stateNamespace: gitops\nsync:\n  prune: false\n  selfHeal: false\n  forceConflicts: true\n",
                overrides: Overrides::default(),
                want_cluster: (Some("/k"), Some("prod"), "gitops"),
                want_sync: (false, false, true),
            },
            Case {
                file: "cluster:\n  kubeconfig: /k\n  context: prod\n  stateNamespace: gitops\nsync:\n  prune: false\n  selfHeal: false\n",
                overrides: Overrides {
                    kubeconfig: Some("/flag".into()),
                    context: Some("dev".into()),
                    state_namespace: Some("other".into()),
                    prune: Some(true),
                    self_heal: Some(true),
                    force_conflicts: Some(true),
                    ..Overrides::default()
                },
                want_cluster: (Some("/flag"), Some("dev"), "other"),
                want_sync: (true, true, true),
            },
        ];
        for case in cases {
            let c = resolve(Some(("veer.yaml", case.file)), &case.overrides).unwrap();
            assert_eq!(
                (
                    c.cluster.kubeconfig.as_deref().and_then(|p| p.to_str()),
                    c.cluster.context.as_deref(),
                    c.cluster.state_namespace.as_str(),
                ),
                case.want_cluster,
                "{:?}",
                case.file
            );
            assert_eq!(c.cluster.state_name, "veer-state");
            assert_eq!(
                (c.sync.prune, c.sync.self_heal, c.sync.force_conflicts),
                case.want_sync,
                "{:?}",
                case.file
            );
        }
        let err = resolve(
            None,
            &Overrides {
                state_namespace: Some("Bad_NS".into()),
                ..Overrides::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("--state-namespace: `cluster.stateNamespace`"),
            "{err}"
        );
        let err = file("sync:\n  prune: maybe\n").unwrap_err().to_string();
        assert!(err.contains("veer.yaml:2"), "{err}");
        let err = file("cluster:\n  stateName: \"-x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cluster.stateName"), "{err}");
    }

    #[test]
    fn notify_section_is_read() {
        let c = file(concat!(
            "notify:\n",
            "  queueSize: 32\n",
            "  maxAttempts: 3\n",
            "  dedupWindow: 10m\n",
            "  timeout: 5s\n",
            "  slack:\n",
            "    botToken: {file: /var/run/secrets/slack/token}\n",
            "    channel: \"#mesh\"\n",
            "    username: veer\n",
            "    apiUrl: http://127.0.0.1:9/api\n",
            "    events: [rolled-back, step-advanced]\n",
            "    minSeverity: warning\n",
            "    commitUrlTemplate: https://github.com/org/repo/commit/{commit}\n",
            "  webhooks:\n",
            "    - url: https://hooks.example.com/veer\n",
            "      secret: {env: VEER_HOOK_KEY}\n",
            "    - url: http://alerts.local/in\n",
            "      minSeverity: error\n",
        ))
        .unwrap();
        let n = c.notify;
        assert_eq!(n.queue_size, 32);
        assert_eq!(n.retry.max_attempts, 3);
        assert_eq!(n.dedup_window, Duration::from_secs(600));
        assert_eq!(n.timeout, Duration::from_secs(5));
        let slack = n.slack.unwrap();
        assert_eq!(
            slack.target,
            SlackTarget::Bot {
                token: crate::source::SecretSource::File("/var/run/secrets/slack/token".into()),
                api_url: "http://127.0.0.1:9/api/".into(),
            }
        );
        assert_eq!(slack.channel.as_deref(), Some("#mesh"));
        assert_eq!(slack.username.as_deref(), Some("veer"));
        assert_eq!(
            slack.filter.events.iter().copied().collect::<Vec<_>>(),
            vec![EventKind::StepAdvanced, EventKind::RolledBack]
        );
        assert_eq!(slack.filter.min_severity, Severity::Warning);
        assert_eq!(n.webhooks.len(), 2);
        assert_eq!(n.webhooks[0].url.as_str(), "https://hooks.example.com/veer");
        assert_eq!(
            n.webhooks[0].secret,
            Some(crate::source::SecretSource::Env("VEER_HOOK_KEY".into()))
        );
        assert_eq!(n.webhooks[0].filter, Filter::default());
        assert_eq!(n.webhooks[1].secret, None);
        assert_eq!(n.webhooks[1].filter.min_severity, Severity::Error);
    }

    #[test]
    fn an_inline_secret_is_refused_without_echoing_it() {
        let err = file(
            "notify:\n  slack:\n    webhookUrl: https://hooks.slack.com/services/T1/B1/SeCrEt\n",
        )
        .unwrap_err()
        .to_string();
        assert!(!err.contains("SeCrEt"), "{err}");
        assert!(
            err.starts_with("veer.yaml:3: `notify.slack.webhookUrl`: secrets are not written"),
            "{err}"
        );
        let err =
            file("notify:\n  webhooks:\n    - url: http://x/\n      secret: hunter2hunter2\n")
                .unwrap_err()
                .to_string();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(
            err.contains("veer.yaml:4: `notify.webhooks[0].secret`"),
            "{err}"
        );
    }

    #[test]
    fn analysis_and_rollouts_table() {
        use crate::analysis::PrometheusAuth;
        /// Prometheus URL and timeout (seconds), and maxConcurrent; or the failing key.
        type Want = Result<(Option<(&'static str, u64)>, usize), &'static str>;
        struct Case {
            file: &'static str,
            want: Want,
        }
        let cases = [
            Case {
                file: "",
                want: Ok((None, 0)),
            },
            Case {
                file: "analysis:\n  prometheus:\n    url: http://prom:9090\n",
                want: Ok((Some(("http://prom:9090", 10)), 0)),
            },
            Case {
                file: "analysis:\n  prometheus:\n    url: https://p.example/prom/\n    timeout: 3s\nrollouts:\n  maxConcurrent: 2\n",
                want: Ok((Some(("https://p.example/prom/", 3)), 2)),
            },
            Case {
                file: "analysis:\n  prometheus:\n    url: prom:9090\n",
                want: Err("analysis.prometheus.url"),
            },
            Case {
                file: "analysis:\n  prometheus:\n    url: http://prom\n    timeout: 0s\n",
                want: Err("analysis.prometheus.timeout"),
            },
            Case {
                file: "rollouts:\n  maxConcurent: 2\n",
                want: Err("(file)"),
            },
        ];
        for case in cases {
            let got = file(case.file);
            match (&case.want, got) {
                (Ok((prom, max)), Ok(c)) => {
                    assert_eq!(
                        c.analysis
                            .prometheus
                            .as_ref()
                            .map(|p| (p.url.as_str(), p.timeout.as_secs())),
                        *prom,
                        "{}",
                        case.file
                    );
                    assert_eq!(c.rollouts.max_concurrent, *max, "{}", case.file);
                }
                (Err(key), Err(e)) => assert_eq!(e.key, *key, "{}", case.file),
                (want, got) => panic!("{}: wanted {want:?}, got {got:?}", case.file),
            }
        }
        let c = file(
            "analysis:\n  prometheus:\n    url: http://prom\n    auth:\n      bearer: {env: PROM_TOKEN}\n",
        );
        assert!(matches!(
            c.map(|c| c.analysis.prometheus.map(|p| p.auth)),
            Ok(Some(PrometheusAuth::Bearer(_)))
        ));
    }

    #[test]
    fn notify_defaults() {
        let c = resolve(None, &Overrides::default()).unwrap();
        assert_eq!(c.notify, NotifyConfig::default());
        let c = file("notify:\n  slack:\n    webhookUrl: {env: SLACK_URL}\n").unwrap();
        let slack = c.notify.slack.unwrap();
        assert_eq!(
            slack.target,
            SlackTarget::Webhook {
                url: crate::source::SecretSource::Env("SLACK_URL".into())
            }
        );
        assert_eq!(slack.filter, Filter::default());
        assert!(!slack.filter.events.contains(&EventKind::StepAdvanced));
        assert_eq!(c.notify.queue_size, crate::notify::DEFAULT_QUEUE_SIZE);
    }

    #[test]
    fn notify_errors_name_key_origin_and_allowed_values() {
        let cases = [
            (
                "notify:\n  slack:\n    channel: x\n",
                "exactly one of `webhookUrl`",
            ),
            (
                "notify:\n  slack:\n    webhookUrl: {env: A}\n    botToken: {env: B}\n",
                "exactly one of",
            ),
            (
                "notify:\n  slack:\n    botToken: {env: B}\n",
                "`notify.slack.channel`: is required",
            ),
            (
                "notify:\n  slack:\n    webhookUrl: https://hooks.slack.com/services/x\n",
                "veer.yaml:3",
            ),
            (
                "notify:\n  slack:\n    webhookUrl: {env: A}\n    events: [rolled-back, rollback]\n",
                "veer.yaml:4: `notify.slack.events`: `rollback` is not an event; use one of revision-applied,",
            ),
            (
                "notify:\n  slack:\n    webhookUrl: {env: A}\n    events: []\n",
                "list at least one event",
            ),
            (
                "notify:\n  slack:\n    webhookUrl: {env: A}\n    minSeverity: critical\n",
                "veer.yaml:4",
            ),
            (
                "notify:\n  slack:\n    webhookUrl: {env: A}\n    commitUrlTemplate: https://x/commit\n",
                "veer.yaml:4: `notify.slack.commitUrlTemplate`: must contain `{commit}`",
            ),
            (
                "notify:\n  slack:\n    webhookUrl: {env: A}\n    apiUrl: http://x/\n",
                "only applies with `botToken`",
            ),
            (
                "notify:\n  webhooks:\n    - url: ftp://x/y\n",
                "veer.yaml:3: `notify.webhooks[0].url`: `ftp://x/y` must be an http",
            ),
            (
                "notify:\n  webhooks:\n    - url: not a url\n",
                "is not a URL",
            ),
            (
                "notify:\n  queueSize: 0\n",
                "`notify.queueSize`: must be at least 1",
            ),
            ("notify:\n  maxAttempts: 0\n", "`notify.maxAttempts`"),
            (
                "notify:\n  dedupWindow: 0s\n",
                "veer.yaml:2: `notify.dedupWindow`",
            ),
            ("notify:\n  timeout: soon\n", "`notify.timeout`"),
            ("notify:\n  email: {}\n", "veer.yaml:2"),
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
    fn server_table() {
        struct Case {
            file: &'static str,
            flag: Option<&'static str>,
            want: Result<(&'static str, Option<crate::source::SecretSource>), &'static str>,
        }
        let env = |n: &str| Some(crate::source::SecretSource::Env(n.into()));
        let cases = [
            Case {
                file: "",
                flag: None,
                want: Ok(("127.0.0.1:8080", None)),
            },
            Case {
                file: "server:\n  listen: 0.0.0.0:9090\n  webhookSecret: {env: HOOK_KEY}\n",
                flag: None,
                want: Ok(("0.0.0.0:9090", env("HOOK_KEY"))),
            },
            Case {
                file: "server:\n  webhookSecret: {file: /run/secrets/hook}\n",
                flag: None,
                want: Ok((
                    "127.0.0.1:8080",
                    Some(crate::source::SecretSource::File(
                        "/run/secrets/hook".into(),
                    )),
                )),
            },
            Case {
                file: "server:\n  listen: 0.0.0.0:9090\n",
                flag: Some("[::1]:7000"),
                want: Ok(("[::1]:7000", None)),
            },
            Case {
                file: "server:\n  listen: localhost\n",
                flag: None,
                want: Err("veer.yaml:2: `server.listen`: `localhost` is not an address"),
            },
            Case {
                file: "",
                flag: Some("8080"),
                want: Err("--listen: `server.listen`: `8080` is not an address"),
            },
            Case {
                file: "server:\n  webhookSecret: hunter2hunter2\n",
                flag: None,
                want: Err("veer.yaml:2: `server.webhookSecret`: secrets are not written"),
            },
            Case {
                file: "server:\n  port: 80\n",
                flag: None,
                want: Err("veer.yaml:2"),
            },
        ];
        for case in cases {
            let overrides = Overrides {
                listen: case.flag.map(str::to_string),
                ..Overrides::default()
            };
            let got = resolve(Some(("veer.yaml", case.file)), &overrides);
            match (got, case.want) {
                (Ok(c), Ok((listen, secret))) => {
                    assert_eq!(c.server.listen.to_string(), listen, "{:?}", case.file);
                    assert_eq!(c.server.webhook_secret, secret, "{:?}", case.file);
                }
                (Err(e), Err(want)) => {
                    let e = e.to_string();
                    assert!(
                        e.contains(want),
                        "{:?} gave {e:?}, wanted {want:?}",
                        case.file
                    );
                    assert!(!e.contains("hunter2"), "{e}");
                }
                (got, want) => panic!("{:?}: got {got:?}, want {want:?}", case.file),
            }
        }
    }

    #[test]
    fn server_limits_table() {
        let server = |text: &str| {
            resolve(Some(("veer.yaml", text)), &Overrides::default()).map(|c| c.server)
        };
        let defaults = server("").unwrap();
        assert_eq!(
            (
                defaults.max_connections,
                defaults.header_read_timeout,
                defaults.request_timeout,
                defaults.not_ready_after_api_outage
            ),
            (
                512,
                Duration::from_secs(10),
                Duration::from_secs(30),
                Duration::from_secs(60)
            )
        );
        let set = server(
            "server:\n  maxConnections: 64\n  headerReadTimeout: 2s\n  requestTimeout: 1m\n  notReadyAfterApiOutage: 1m30s\n",
        )
        .unwrap();
        assert_eq!(set.max_connections, 64);
        assert_eq!(set.header_read_timeout, Duration::from_secs(2));
        assert_eq!(set.request_timeout, Duration::from_secs(60));
        assert_eq!(set.not_ready_after_api_outage, Duration::from_secs(90));
        let cases = [
            (
                "server:\n  maxConnections: 0\n",
                "veer.yaml:2: `server.maxConnections`: must be at least 1",
            ),
            ("server:\n  maxConnections: -3\n", "veer.yaml:2"),
            (
                "server:\n  headerReadTimeout: 0s\n",
                "veer.yaml:2: `server.headerReadTimeout`: must be longer than zero",
            ),
            (
                "server:\n  listen: 127.0.0.1:1\n  requestTimeout: 30\n",
                "veer.yaml:3: `server.requestTimeout`: `30` needs a unit",
            ),
            (
                "server:\n  notReadyAfterApiOutage: soon\n",
                "veer.yaml:2: `server.notReadyAfterApiOutage`",
            ),
        ];
        for (text, want) in cases {
            let err = server(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?} gave {err:?}, wanted {want:?}");
        }
    }

    #[test]
    fn ref_table() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(GitRef::parse("main"), Ok(GitRef::Branch("main".into())));
        assert_eq!(
            GitRef::parse("branch:rel/1"),
            Ok(GitRef::Branch("rel/1".into()))
        );
        assert_eq!(GitRef::parse("tag:v1"), Ok(GitRef::Tag("v1".into())));
        assert_eq!(GitRef::parse(sha), Ok(GitRef::Commit(sha.into())));
        assert!(GitRef::parse("pr:1").is_err());
        assert!(GitRef::parse("").is_err());
    }
}
