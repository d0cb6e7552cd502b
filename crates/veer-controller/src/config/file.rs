//! `veer.yaml` as written: the `File*` serde types, strict (`deny_unknown_fields`), with
//! spans kept on the values whose errors name a line. Secrets are read as [`FileSecret`] so an
//! inline one is refused without being echoed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::notify::Severity;
use crate::source::Auth;

use super::LogFormat;

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct FileConfig {
    #[serde(default)]
    pub(super) source: Option<FileSource>,
    #[serde(default)]
    pub(super) manifests: Option<FileManifests>,
    #[serde(default)]
    pub(super) cache_dir: Option<PathBuf>,
    #[serde(default)]
    pub(super) log: Option<FileLog>,
    #[serde(default)]
    pub(super) cluster: Option<FileCluster>,
    #[serde(default)]
    pub(super) sync: Option<FileSync>,
    #[serde(default)]
    pub(super) notify: Option<FileNotify>,
    #[serde(default)]
    pub(super) server: Option<FileServer>,
    #[serde(default)]
    pub(super) analysis: Option<FileAnalysis>,
    #[serde(default)]
    pub(super) rollouts: Option<FileRollouts>,
    #[serde(default)]
    pub(super) validation: Option<FileValidation>,
}

/// `validation:`: `strict` and per-check `severity` (code → error, warning or off).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct FileValidation {
    #[serde(default)]
    pub(super) strict: Option<bool>,
    #[serde(default)]
    pub(super) severity: BTreeMap<String, serde_saphyr::Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct FileAnalysis {
    #[serde(default)]
    pub(super) prometheus: Option<FilePrometheus>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct FilePrometheus {
    pub(super) url: serde_saphyr::Spanned<String>,
    #[serde(default)]
    pub(super) timeout: Option<serde_saphyr::Spanned<String>>,
    #[serde(default)]
    pub(super) auth: Option<crate::analysis::PrometheusAuth>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct FileRollouts {
    #[serde(default)]
    pub(super) max_concurrent: Option<usize>,
    #[serde(default)]
    pub(super) policies_dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct FileServer {
    #[serde(default)]
    pub(super) listen: Option<serde_saphyr::Spanned<String>>,
    #[serde(default)]
    pub(super) webhook_secret: Option<serde_saphyr::Spanned<FileSecret>>,
    #[serde(default)]
    pub(super) max_connections: Option<serde_saphyr::Spanned<usize>>,
    #[serde(default)]
    pub(super) header_read_timeout: Option<serde_saphyr::Spanned<String>>,
    #[serde(default)]
    pub(super) request_timeout: Option<serde_saphyr::Spanned<String>>,
    #[serde(default)]
    pub(super) not_ready_after_api_outage: Option<serde_saphyr::Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct FileCluster {
    #[serde(default)]
    pub(super) kubeconfig: Option<PathBuf>,
    #[serde(default)]
    pub(super) context: Option<String>,
    #[serde(default)]
    pub(super) state_namespace: Option<String>,
    #[serde(default)]
    pub(super) state_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct FileSync {
    #[serde(default)]
    pub(super) prune: Option<bool>,
    #[serde(default)]
    pub(super) self_heal: Option<bool>,
    #[serde(default)]
    pub(super) force_conflicts: Option<bool>,
    #[serde(default)]
    pub(super) resync_interval: Option<serde_saphyr::Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct FileSource {
    pub(super) url: serde_saphyr::Spanned<String>,
    #[serde(default, rename = "ref")]
    pub(super) reference: Option<serde_saphyr::Spanned<String>>,
    #[serde(default)]
    pub(super) path: Option<serde_saphyr::Spanned<String>>,
    #[serde(default)]
    pub(super) auth: Option<Auth>,
    #[serde(default)]
    pub(super) interval: Option<serde_saphyr::Spanned<String>>,
    #[serde(default)]
    pub(super) schedule: Option<serde_saphyr::Spanned<String>>,
    #[serde(default)]
    pub(super) timeout: Option<serde_saphyr::Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct FileManifests {
    #[serde(default)]
    pub(super) default_namespace: Option<String>,
    #[serde(default)]
    pub(super) max_file_bytes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct FileLog {
    #[serde(default)]
    pub(super) format: Option<LogFormat>,
    #[serde(default)]
    pub(super) level: Option<String>,
}

/// `notify:` as written. Secrets are `{file: ...}` or `{env: ...}`, never inline.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct FileNotify {
    #[serde(default)]
    pub(super) slack: Option<FileSlack>,
    #[serde(default)]
    pub(super) webhooks: Vec<FileWebhook>,
    #[serde(default)]
    pub(super) queue_size: Option<usize>,
    #[serde(default)]
    pub(super) max_attempts: Option<u32>,
    #[serde(default)]
    pub(super) dedup_window: Option<serde_saphyr::Spanned<String>>,
    #[serde(default)]
    pub(super) timeout: Option<serde_saphyr::Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct FileSlack {
    #[serde(default)]
    pub(super) webhook_url: Option<serde_saphyr::Spanned<FileSecret>>,
    #[serde(default)]
    pub(super) bot_token: Option<serde_saphyr::Spanned<FileSecret>>,
    #[serde(default)]
    pub(super) api_url: Option<serde_saphyr::Spanned<String>>,
    #[serde(default)]
    pub(super) channel: Option<String>,
    #[serde(default)]
    pub(super) username: Option<String>,
    #[serde(default)]
    pub(super) events: Option<Vec<serde_saphyr::Spanned<String>>>,
    #[serde(default)]
    pub(super) min_severity: Option<Severity>,
    #[serde(default)]
    pub(super) commit_url_template: Option<serde_saphyr::Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct FileWebhook {
    pub(super) url: serde_saphyr::Spanned<String>,
    #[serde(default)]
    pub(super) secret: Option<serde_saphyr::Spanned<FileSecret>>,
    #[serde(default)]
    pub(super) events: Option<Vec<serde_saphyr::Spanned<String>>>,
    #[serde(default)]
    pub(super) min_severity: Option<Severity>,
}

/// A secret as written: where to read it, or (refused) the value itself. Parsed this way so
/// that an inline secret is reported without the YAML parser echoing it in its error.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum FileSecret {
    Source(crate::source::SecretSource),
    Inline(serde::de::IgnoredAny),
}
