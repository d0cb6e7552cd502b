//! Sync, the only writer: carries out a [`Plan`] against the cluster.
//!
//! Owns server-side apply (field manager `veer`; `force` only when asked, or to heal drift,
//! which by definition takes back fields veer applied and someone edited), prune by delete
//! (in the plan's reverse order, guarded by the live object's uid), retries of transient
//! failures (409 other than apply conflicts, 429, 5xx, timeouts, connection errors) with
//! capped exponential backoff, and per-object results: one object failing never stops the
//! others. Every object veer applies carries [`MANAGED_BY_LABEL`] and [`SOURCE_ANNOTATION`]
//! ([`decorate`]), added before planning so the plan compares what is really applied.

mod retry;
pub mod state;

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};
use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};

use crate::cluster::{Cluster, ClusterError, Observed};
use crate::diff::{Action, Cause, DesiredObject, ObjectPlan, Plan, PruneSkipReason};
use crate::manifest::ObjectKey;

pub use retry::{ErrorClass, RetryPolicy, classify, conflict_managers, with_retries};

/// veer's field manager.
pub const MANAGER: &str = "veer";
/// Label on every object veer applies.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Annotation naming where in git an object comes from: `<repository URL>#<file>`.
pub const SOURCE_ANNOTATION: &str = "veer.io/source";

/// Add veer's label and source annotation to an object from git.
pub fn decorate(object: &mut DesiredObject, source: &str) {
    let Value::Object(root) = &mut object.value else {
        return;
    };
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    let Value::Object(meta) = meta else {
        return;
    };
    for (field, name, value) in [
        ("labels", MANAGED_BY_LABEL, MANAGER),
        ("annotations", SOURCE_ANNOTATION, source),
    ] {
        let entry = meta
            .entry(field)
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(serde_json::Map::new());
        }
        if let Value::Object(map) = entry {
            map.insert(name.to_string(), Value::String(value.to_string()));
        }
    }
}

/// Whether writes are real.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum WriteMode {
    Apply,
    /// Every write carries `dryRun=All`: the server checks it and stores nothing.
    ServerDryRun,
}

#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub manager: String,
    pub force_conflicts: bool,
    /// `false`: drift is reported, not re-applied.
    pub self_heal: bool,
    pub mode: WriteMode,
    pub retry: RetryPolicy,
    /// How long to wait for the watch cache to see the writes.
    pub observe_within: Duration,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            manager: MANAGER.to_string(),
            force_conflicts: false,
            self_heal: true,
            mode: WriteMode::Apply,
            retry: RetryPolicy::default(),
            observe_within: Duration::from_secs(10),
        }
    }
}

/// Why a write failed, as the API server put it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FailureKind {
    /// 403: veer's service account may not do this.
    Forbidden,
    /// 409 from server-side apply: other managers own fields veer wants to set.
    Conflict,
    /// 422: the server refused the object.
    Invalid,
    /// An admission webhook denied the request.
    Denied,
    /// The server does not serve the kind.
    UnknownKind,
    /// 404: e.g. the namespace does not exist.
    NotFound,
    /// Still failing (409/429/5xx/timeouts/connection) after the retries.
    Unavailable,
    /// Any other refusal (400, 405, 415, …).
    Rejected,
}

impl FailureKind {
    pub fn metric_label(self) -> &'static str {
        match self {
            FailureKind::Forbidden => "forbidden",
            FailureKind::Conflict => "conflict",
            FailureKind::Invalid => "invalid",
            FailureKind::Denied => "denied",
            FailureKind::UnknownKind => "unknown_kind",
            FailureKind::NotFound => "not_found",
            FailureKind::Unavailable => "unavailable",
            FailureKind::Rejected => "rejected",
        }
    }

    /// What to do about it, for people.
    pub fn advice(self) -> &'static str {
        match self {
            FailureKind::Forbidden => "grant veer's service account this verb on this resource",
            FailureKind::Conflict => {
                "another field manager owns these fields: remove them from git, or sync with --force-conflicts to take them"
            }
            FailureKind::Invalid => "fix the object in git",
            FailureKind::Denied => "an admission webhook refused it: see its message",
            FailureKind::UnknownKind => {
                "apply the CustomResourceDefinition first, or fix apiVersion"
            }
            FailureKind::NotFound => "create what it lives in (its namespace) first",
            FailureKind::Unavailable => "the API server kept failing; veer retries next reconcile",
            FailureKind::Rejected => "see the server's message",
        }
    }
}

/// One object's failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub kind: FailureKind,
    /// HTTP status, when the server answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    pub message: String,
    /// For conflicts: the field managers that own the contested fields.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub managers: Vec<String>,
    pub attempts: u32,
}

/// What happened to one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "camelCase")]
pub enum ObjectResult {
    Created,
    Updated {
        cause: Cause,
    },
    Unchanged,
    Pruned,
    PruneSkipped {
        reason: PruneSkipReason,
    },
    /// Drift left alone because self-heal is off.
    DriftReported,
    Failed(Failure),
}

impl ObjectResult {
    pub fn name(&self) -> &'static str {
        match self {
            ObjectResult::Created => "created",
            ObjectResult::Updated { .. } => "updated",
            ObjectResult::Unchanged => "unchanged",
            ObjectResult::Pruned => "pruned",
            ObjectResult::PruneSkipped { .. } => "prune-skipped",
            ObjectResult::DriftReported => "drift-reported",
            ObjectResult::Failed(_) => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectOutcome {
    pub key: ObjectKey,
    #[serde(flatten)]
    pub result: ObjectResult,
}

/// Counts for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncSummary {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub pruned: usize,
    pub prune_skipped: usize,
    pub drift_reported: usize,
    pub failed: usize,
}

/// Every object's outcome, in the order the plan gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    pub mode: WriteMode,
    pub objects: Vec<ObjectOutcome>,
    /// Objects the watch cache had not seen written when sync stopped waiting.
    #[serde(skip)]
    pub unobserved: Vec<ObjectKey>,
}

impl SyncReport {
    pub fn summary(&self) -> SyncSummary {
        let mut s = SyncSummary::default();
        for o in &self.objects {
            match &o.result {
                ObjectResult::Created => s.created += 1,
                ObjectResult::Updated { .. } => s.updated += 1,
                ObjectResult::Unchanged => s.unchanged += 1,
                ObjectResult::Pruned => s.pruned += 1,
                ObjectResult::PruneSkipped { .. } => s.prune_skipped += 1,
                ObjectResult::DriftReported => s.drift_reported += 1,
                ObjectResult::Failed(_) => s.failed += 1,
            }
        }
        s
    }

    pub fn failed(&self) -> impl Iterator<Item = (&ObjectKey, &Failure)> {
        self.objects.iter().filter_map(|o| match &o.result {
            ObjectResult::Failed(f) => Some((&o.key, f)),
            ObjectResult::Created
            | ObjectResult::Updated { .. }
            | ObjectResult::Unchanged
            | ObjectResult::Pruned
            | ObjectResult::PruneSkipped { .. }
            | ObjectResult::DriftReported => None,
        })
    }

    pub fn has_failures(&self) -> bool {
        self.failed().next().is_some()
    }

    /// Human form: one line per object that was not unchanged, then the summary.
    pub fn human(&self) -> String {
        let mut out = String::new();
        let dry = match self.mode {
            WriteMode::Apply => "",
            WriteMode::ServerDryRun => " (server dry run)",
        };
        for o in &self.objects {
            let line = match &o.result {
                ObjectResult::Unchanged => continue,
                ObjectResult::Created => format!("{}: created{dry}", o.key),
                ObjectResult::Updated { cause } => match cause {
                    Cause::GitChange => format!("{}: updated{dry}", o.key),
                    Cause::Drift => format!("{}: updated (drift healed){dry}", o.key),
                },
                ObjectResult::Pruned => format!("{}: pruned{dry}", o.key),
                ObjectResult::PruneSkipped { reason } => {
                    format!("{}: prune skipped ({reason})", o.key)
                }
                ObjectResult::DriftReported => {
                    format!("{}: drift reported, not healed (selfHeal is off)", o.key)
                }
                ObjectResult::Failed(f) => {
                    let code = f.code.map(|c| format!(" {c}")).unwrap_or_default();
                    format!(
                        "{}: FAILED ({}{code}): {}\n  fix: {}",
                        o.key,
                        f.kind.metric_label(),
                        f.message,
                        f.kind.advice()
                    )
                }
            };
            out.push_str(&line);
            out.push('\n');
        }
        out.push_str(&summary_line(&self.summary()));
        out.push('\n');
        out
    }
}

/// `2 created, 1 updated, 0 pruned, 5 unchanged, 1 failed`.
pub fn summary_line(s: &SyncSummary) -> String {
    let mut line = format!(
        "{} created, {} updated, {} pruned, {} unchanged",
        s.created, s.updated, s.pruned, s.unchanged
    );
    if s.prune_skipped > 0 {
        line.push_str(&format!(", {} prune skipped", s.prune_skipped));
    }
    if s.drift_reported > 0 {
        line.push_str(&format!(", {} drift reported", s.drift_reported));
    }
    line.push_str(&format!(", {} failed", s.failed));
    line
}

/// Does carrying out `plan` write anything, given self-heal? Pure.
pub fn writes_needed(plan: &Plan, self_heal: bool) -> bool {
    plan.objects.iter().any(|o| match &o.action {
        Action::Create | Action::Prune => true,
        Action::Update { cause, .. } => match cause {
            Cause::GitChange => true,
            Cause::Drift => self_heal,
        },
        Action::PruneSkipped { .. } | Action::Unchanged => false,
    })
}

/// Carry out `plan`: applies in its order, then prunes in its (reverse) order. `live` is the
/// live state the plan was made from (prunes delete only the object planned on, by uid).
pub async fn execute(
    cluster: &Cluster,
    plan: &Plan,
    live: &BTreeMap<ObjectKey, Value>,
    options: &SyncOptions,
) -> SyncReport {
    let mut objects = Vec::with_capacity(plan.objects.len());
    let mut written = Vec::new();
    for object in &plan.objects {
        let result = match &object.action {
            Action::Unchanged => ObjectResult::Unchanged,
            Action::PruneSkipped { reason } => ObjectResult::PruneSkipped { reason: *reason },
            Action::Update {
                cause: Cause::Drift,
                ..
            } if !options.self_heal => ObjectResult::DriftReported,
            Action::Create | Action::Update { .. } => match apply(cluster, object, options).await {
                Ok(rv) => {
                    written.push(Observed {
                        key: object.key.clone(),
                        resource_version: Some(rv),
                    });
                    match &object.action {
                        Action::Update { cause, .. } => ObjectResult::Updated { cause: *cause },
                        Action::Create
                        | Action::Prune
                        | Action::PruneSkipped { .. }
                        | Action::Unchanged => ObjectResult::Created,
                    }
                }
                Err(f) => ObjectResult::Failed(f),
            },
            Action::Prune => {
                let uid = live
                    .iter()
                    .find(|(k, _)| k.same_object(&object.key))
                    .and_then(|(_, v)| v.pointer("/metadata/uid"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                match prune(cluster, &object.key, uid, options).await {
                    Ok(()) => {
                        written.push(Observed {
                            key: object.key.clone(),
                            resource_version: None,
                        });
                        ObjectResult::Pruned
                    }
                    Err(f) => ObjectResult::Failed(f),
                }
            }
        };
        match &result {
            ObjectResult::Failed(f) => {
                warn!(object = %object.key, kind = f.kind.metric_label(), code = ?f.code, attempts = f.attempts, "{}", f.message);
            }
            ObjectResult::Created | ObjectResult::Updated { .. } | ObjectResult::Pruned => {
                info!(object = %object.key, result = result.name(), dry_run = options.mode == WriteMode::ServerDryRun, "synced");
            }
            ObjectResult::DriftReported => {
                warn!(object = %object.key, "drift: changed in the cluster; selfHeal is off, so it stays");
            }
            ObjectResult::Unchanged | ObjectResult::PruneSkipped { .. } => {}
        }
        objects.push(ObjectOutcome {
            key: object.key.clone(),
            result,
        });
    }
    let unobserved = match options.mode {
        WriteMode::Apply => {
            cluster
                .await_observed(&written, options.observe_within)
                .await
        }
        WriteMode::ServerDryRun => Vec::new(),
    };
    if !unobserved.is_empty() {
        warn!(
            count = unobserved.len(),
            "the watch cache has not seen every write yet; the next reconcile may re-plan them"
        );
    }
    SyncReport {
        mode: options.mode,
        objects,
        unobserved,
    }
}

async fn api_for(cluster: &Cluster, key: &ObjectKey) -> Result<Api<DynamicObject>, ClusterError> {
    let r = cluster.resolve(key).await?;
    Ok(match (&key.namespace, r.namespaced) {
        (Some(ns), true) => Api::namespaced_with(cluster.client().clone(), ns, &r.resource),
        (None, true) => Api::default_namespaced_with(cluster.client().clone(), &r.resource),
        (_, false) => Api::all_with(cluster.client().clone(), &r.resource),
    })
}

/// A discovery failure as a per-object failure.
fn cluster_failure(e: &ClusterError) -> Failure {
    let (kind, code) = match e {
        ClusterError::UnknownKind { .. } => (FailureKind::UnknownKind, None),
        ClusterError::Api { code, .. } => (FailureKind::Unavailable, *code),
        ClusterError::Kubeconfig { .. }
        | ClusterError::Client { .. }
        | ClusterError::Discovery { .. }
        | ClusterError::WatchNotReady { .. } => (FailureKind::Unavailable, None),
    };
    Failure {
        kind,
        code,
        message: e.to_string(),
        managers: Vec::new(),
        attempts: 1,
    }
}

/// Server-side apply of the plan's desired object; the new resourceVersion.
async fn apply(
    cluster: &Cluster,
    object: &ObjectPlan,
    options: &SyncOptions,
) -> Result<String, Failure> {
    let Some(desired) = &object.desired else {
        return Err(Failure {
            kind: FailureKind::Rejected,
            code: None,
            message: "the plan has no desired object to apply; report this as a veer bug".into(),
            managers: Vec::new(),
            attempts: 0,
        });
    };
    let key = &object.key;
    // Healing drift takes back fields someone changed by hand: after `kubectl edit` they
    // belong to that manager, so only a forced apply can restore them.
    let heal = matches!(
        object.action,
        Action::Update {
            cause: Cause::Drift,
            ..
        }
    );
    let params = PatchParams {
        field_manager: Some(options.manager.clone()),
        force: options.force_conflicts || heal,
        dry_run: options.mode == WriteMode::ServerDryRun,
        ..PatchParams::default()
    };
    // A kind the server does not serve yet (a CRD applied a moment ago) is worth a retry:
    // discovery is asked again each time.
    let mut unknown_attempts = 0;
    loop {
        let api = match api_for(cluster, key).await {
            Ok(api) => api,
            Err(ClusterError::UnknownKind { .. })
                if unknown_attempts + 1 < options.retry.attempts =>
            {
                unknown_attempts += 1;
                tokio::time::sleep(options.retry.delay(unknown_attempts - 1)).await;
                continue;
            }
            Err(e) => return Err(cluster_failure(&e)),
        };
        let params = &params;
        let (result, attempts) = with_retries(&options.retry, &key.to_string(), || {
            let api = api.clone();
            async move { api.patch(&key.name, params, &Patch::Apply(desired)).await }
        })
        .await;
        return match result {
            Ok(applied) => Ok(applied.metadata.resource_version.unwrap_or_default()),
            Err(e) => {
                if let kube::Error::Api(status) = &e
                    && status.code == 404
                {
                    cluster.forget(key);
                }
                Err(failure(&e, attempts))
            }
        };
    }
}

async fn prune(
    cluster: &Cluster,
    key: &ObjectKey,
    uid: Option<String>,
    options: &SyncOptions,
) -> Result<(), Failure> {
    let api = api_for(cluster, key)
        .await
        .map_err(|e| cluster_failure(&e))?;
    let params = DeleteParams {
        dry_run: options.mode == WriteMode::ServerDryRun,
        preconditions: uid.map(|uid| Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    let (result, attempts) = with_retries(&options.retry, &key.to_string(), || {
        let api = api.clone();
        let params = params.clone();
        async move { api.delete(&key.name, &params).await }
    })
    .await;
    match result {
        Ok(_) => Ok(()),
        // Already gone: what prune wanted.
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(failure(&e, attempts)),
    }
}

/// A kube error as a per-object failure.
pub fn failure(error: &kube::Error, attempts: u32) -> Failure {
    let (kind, code, message, managers) = match error {
        kube::Error::Api(status) => {
            let message = status.message.clone();
            let denied = message.contains("admission webhook") && message.contains("denied");
            let kind = match classify(error) {
                ErrorClass::Conflict => FailureKind::Conflict,
                ErrorClass::Transient => FailureKind::Unavailable,
                ErrorClass::Permanent if denied => FailureKind::Denied,
                ErrorClass::Permanent => match status.code {
                    403 => FailureKind::Forbidden,
                    404 => FailureKind::NotFound,
                    422 => FailureKind::Invalid,
                    _ => FailureKind::Rejected,
                },
            };
            (kind, Some(status.code), message, conflict_managers(status))
        }
        other => (
            FailureKind::Unavailable,
            None,
            other.to_string(),
            Vec::new(),
        ),
    };
    Failure {
        kind,
        code,
        message,
        managers,
        attempts,
    }
}
