//! The resolved configuration: [`Config`] and its sections (source, cluster, sync, server,
//! analysis, rollouts), their built-in defaults, and the command-line [`Overrides`] that win
//! over the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::manifest::ReadOptions;
use crate::notify::NotifyConfig;
use crate::source::{Schedule, SourceSpec};

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
    /// `validation:` and `--strict`: the severity of each check, applied wherever a revision
    /// is validated.
    pub validation: crate::validate::Severities,
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
    /// `resyncInterval`: plan every object at least this often; between, a pass plans only
    /// what changed in git or in the cluster.
    pub resync_interval: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            prune: true,
            self_heal: true,
            force_conflicts: false,
            resync_interval: DEFAULT_RESYNC_INTERVAL,
        }
    }
}

/// `sync.resyncInterval` when neither veer.yaml nor `--resync-interval` says (a controller
/// built without one uses the same, `controller::DEFAULT_RESYNC_INTERVAL`; not imported from
/// there: the controller depends on the server, which depends on the configuration).
pub const DEFAULT_RESYNC_INTERVAL: Duration = Duration::from_secs(600);

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
    /// `--resync-interval` / `VEER_RESYNC_INTERVAL`, unparsed.
    pub resync_interval: Option<String>,
    /// `--listen` / `VEER_LISTEN`, unparsed (parsed with the file's value, for one message).
    pub listen: Option<String>,
    /// `veer validate --strict` / `VEER_STRICT`: every warning is an error; replaces
    /// `validation.strict`.
    pub strict: Option<bool>,
    /// `--prometheus-url` / `VEER_PROMETHEUS_URL`: replaces `analysis.prometheus.url` (the
    /// file's timeout and auth still apply), or configures Prometheus when the file has none.
    pub prometheus_url: Option<String>,
    /// Where the default cache directory goes when neither `--cache-dir` nor `cacheDir` says:
    /// the user's cache directory, which the binary reads from the environment (see
    /// [`default_cache_root`]). `None`: the system's temporary directory.
    pub cache_root: Option<PathBuf>,
}

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// veer's directory under the user's cache directory, when `cacheDir` is not set.
pub const DEFAULT_CACHE_DIR: &str = "veer";

/// The directory the default cache goes under: `$XDG_CACHE_HOME/veer` (when absolute, as the
/// XDG base directory spec asks), else `$HOME/.cache/veer`, else `<temp>/veer` (a container
/// without a home). Never the working directory: a clone run from must stay clean. Pure: the
/// caller passes the environment's values.
pub fn default_cache_root(
    xdg_cache_home: Option<&Path>,
    home: Option<&Path>,
    temp: &Path,
) -> PathBuf {
    let absolute = |p: Option<&Path>| p.filter(|p| p.is_absolute()).map(Path::to_path_buf);
    absolute(xdg_cache_home)
        .or_else(|| absolute(home).map(|h| h.join(".cache")))
        .unwrap_or_else(|| temp.to_path_buf())
        .join(DEFAULT_CACHE_DIR)
}
