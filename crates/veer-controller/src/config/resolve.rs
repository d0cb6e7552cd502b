//! The pure resolution of `veer.yaml` and flags into a [`Config`]: [`resolve`] and the
//! source, cluster, server and analysis sections (notifications are in `notifiers`).

use std::path::PathBuf;
use std::time::Duration;

use crate::manifest::{DEFAULT_MAX_FILE_BYTES, ReadOptions};
use crate::notify::NotifyConfig;
use crate::source::{GitRef, Schedule, SourceError, SourceSpec};

use super::check::{from_file, from_flag, is_dns_label, parse_positive_duration, secret_source};
use super::file::{FileAnalysis, FileCluster, FileConfig, FileServer, FileSource};
use super::notifiers::resolve_notify;
use super::{
    AnalysisConfig, ClusterConfig, Config, ConfigError, DEFAULT_CACHE_DIR, DEFAULT_FETCH_TIMEOUT,
    DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_INTERVAL, DEFAULT_LISTEN, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_NOT_READY_AFTER_API_OUTAGE, DEFAULT_REQUEST_TIMEOUT, DEFAULT_STATE_NAME,
    DEFAULT_STATE_NAMESPACE, LogFormat, Overrides, RolloutsConfig, ServerConfig, SourceConfig,
    SyncConfig,
};

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
    if crate::hosts::check_host(&read.default_namespace).is_err()
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
    let analysis = resolve_analysis(file_name, parsed.analysis.as_ref(), overrides)?;
    let rollouts = match parsed.rollouts {
        Some(r) => RolloutsConfig {
            max_concurrent: r.max_concurrent.unwrap_or(0),
            policies_dir: r.policies_dir,
        },
        None => RolloutsConfig::default(),
    };
    let validation =
        super::validation::resolve_validation(file_name, parsed.validation.as_ref(), overrides)?;
    let log = parsed.log.unwrap_or_default();
    let cluster = resolve_cluster(file_name, parsed.cluster.unwrap_or_default(), overrides)?;
    let file_sync = parsed.sync.unwrap_or_default();
    let defaults = SyncConfig::default();
    let resync = (overrides.resync_interval.clone())
        .map(|v| from_flag("--resync-interval", v))
        .or_else(|| (file_sync.resync_interval.as_ref()).map(|v| from_file(file_name, v)));
    let resync_interval = match resync {
        Some(v) => parse_positive_duration("sync.resyncInterval", &v)?,
        None => defaults.resync_interval,
    };
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
        resync_interval,
    };
    let cache_dir = overrides
        .cache_dir
        .clone()
        .or(parsed.cache_dir)
        .unwrap_or_else(|| default_cache_dir(overrides, source.as_ref()));
    Ok(Config {
        source,
        read,
        cache_dir,
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
        validation,
    })
}

/// The cache directory when none is configured: one per repository under the user's cache
/// directory (`~/.cache/veer/git/<name>-<hash of the URL>`), so that two repositories, or two
/// commands following different ones, never share a clone; nothing in the working directory.
fn default_cache_dir(overrides: &Overrides, source: Option<&SourceConfig>) -> PathBuf {
    let root = overrides
        .cache_root
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(DEFAULT_CACHE_DIR));
    // `git/` keeps the clones apart from other caches under the root (the test scripts' API
    // server build lives in ~/.cache/veer too).
    let clones = root.join("git");
    match source {
        Some(s) => clones.join(cache_key(&s.spec.url.text)),
        None => clones,
    }
}

/// `<last path segment>-<12 hex digits of the URL's SHA-256>`: readable in `ls`, and unique
/// per URL. The segment keeps only file-name-safe characters.
fn cache_key(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    let last = trimmed.rsplit(['/', ':', '\\']).next().unwrap_or_default();
    let last = last.strip_suffix(".git").unwrap_or(last);
    let name: String = last
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    let name = if name.trim_matches('.').is_empty() {
        "repo".to_string()
    } else {
        name
    };
    format!("{name}-{}", crate::ids::sha256_hex(url.as_bytes(), 6))
}

fn resolve_analysis(
    file_name: &str,
    file: Option<&FileAnalysis>,
    o: &Overrides,
) -> Result<AnalysisConfig, ConfigError> {
    let prometheus = file.and_then(|a| a.prometheus.as_ref());
    let url = o
        .prometheus_url
        .clone()
        .map(|v| from_flag("--prometheus-url", v))
        .or_else(|| prometheus.map(|p| from_file(file_name, &p.url)));
    let Some(url) = url else {
        return Ok(AnalysisConfig::default());
    };
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
    if let Some(t) = prometheus.and_then(|p| p.timeout.as_ref()) {
        config.timeout =
            parse_positive_duration("analysis.prometheus.timeout", &from_file(file_name, t))?;
    }
    if let Some(auth) = prometheus.and_then(|p| p.auth.as_ref()) {
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
