//! Sync, the only writer: carries out a [`Plan`] against the cluster.
//!
//! Owns server-side apply (field manager `veer`; `force` only when asked, or to heal drift,
//! which by definition takes back fields veer applied and someone edited), prune by delete
//! (in the plan's reverse order, guarded by the live object's uid; a Namespace only once
//! nothing else lives in it: module `namespace`), retries of transient failures (408, 409
//! other than apply conflicts, 429, 5xx other than refusals of the request itself, timeouts,
//! connection errors) with capped exponential backoff, and per-object results: one object
//! failing never stops the others; a permanent refusal fails its object at once, with the fix
//! where the message names one (module `failure`). Every object veer applies carries
//! [`MANAGED_BY_LABEL`] and [`SOURCE_ANNOTATION`] ([`decorate`]), added before planning so
//! the plan compares what is really applied.

mod failure;
mod namespace;
mod retry;
pub mod state;
pub mod store;

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};
use serde::Serialize;
use serde_json::Value;
use tracing::{debug, info, warn};

use crate::cluster::{Cluster, ClusterError, Observed};
use crate::diff::{
    Cause, DesiredObject, MetadataField, ObjectAction, ObjectPlan, Plan, PruneSkipReason,
};
use crate::manifest::ObjectKey;

use failure::cluster_failure;
pub use failure::{Failure, FailureKind, failure, fix_hint, unreadable};
pub use namespace::{Resident, keeps_namespace, namespace_keeper};
pub use retry::{
    ErrorClass, RetryPolicy, classify, conflict_managers, is_unhandleable, with_retries,
};

/// veer's field manager.
pub const MANAGER: &str = "veer";
/// Label on every object veer applies.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Annotation naming where in git an object comes from: `<repository URL>#<file>`.
pub const SOURCE_ANNOTATION: &str = "veer.io/source";

/// Add veer's label and source annotation to an object from git (when it is read: the
/// object stays shared with the revision).
pub fn decorate(object: &mut DesiredObject, source: &str) {
    object.add_metadata(MetadataField::Labels, MANAGED_BY_LABEL, MANAGER);
    object.add_metadata(MetadataField::Annotations, SOURCE_ANNOTATION, source);
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
    /// `false`: drift is reported, not re-applied. The planner reads it
    /// ([`crate::diff::PlanContext::self_heal`]); sync follows the plan.
    pub self_heal: bool,
    pub mode: WriteMode,
    pub retry: RetryPolicy,
    /// How long to wait for the watch cache to see the writes; zero: not waited for, and none
    /// reported unseen (a rollout's traffic write, `rollouts::ports`).
    pub observe_within: Duration,
    /// Log each object's result at info and warn (`veer run`: its log is the only record of
    /// them). `false` logs them at debug: `veer sync` prints each result itself, and a line
    /// per object twice on a terminal is noise.
    pub log_objects: bool,
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
            log_objects: true,
        }
    }
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
        #[serde(flatten)]
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
                    Cause::Rollout => format!("{}: traffic written (rollout){dry}", o.key),
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
                        f.advice()
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

/// Carry out `plan`: applies in its order, then prunes in its (reverse) order. `live` is the
/// live state the plan was made from (prunes delete only the object planned on, by uid).
pub async fn execute(
    cluster: &Cluster,
    plan: &Plan,
    live: &BTreeMap<ObjectKey, Value>,
    options: &SyncOptions,
) -> SyncReport {
    execute_keeping(cluster, plan, live, options, false).await.0
}

/// [`execute`], also handing back (with `keep`) the API server's answer to each apply, as
/// text: the object as stored, so a caller that must read it back (a rollout's split) need
/// not ask again, and reads only what it needs of it. A server dry run's answer is what would
/// have been stored.
pub async fn execute_keeping(
    cluster: &Cluster,
    plan: &Plan,
    live: &BTreeMap<ObjectKey, Value>,
    options: &SyncOptions,
    keep: bool,
) -> (SyncReport, Vec<(ObjectKey, String)>) {
    let mut kept = Vec::new();
    let mut objects = Vec::with_capacity(plan.objects.len());
    let mut written = Vec::new();
    let mut pruned: Vec<ObjectKey> = Vec::new();
    for object in &plan.objects {
        let result = match &object.action {
            ObjectAction::Unchanged => ObjectResult::Unchanged,
            ObjectAction::PruneSkipped { reason } => ObjectResult::PruneSkipped {
                reason: reason.clone(),
            },
            ObjectAction::Update {
                cause: Cause::Drift,
                ..
            } if plan.leave_drift => ObjectResult::DriftReported,
            ObjectAction::Create | ObjectAction::Update { .. } => {
                match apply(cluster, object, options).await {
                    Ok(answer) => {
                        let rv = resource_version(&answer);
                        if keep {
                            kept.push((object.key.clone(), answer));
                        }
                        written.push(Observed {
                            key: object.key.clone(),
                            resource_version: Some(rv.unwrap_or_default()),
                        });
                        match &object.action {
                            ObjectAction::Update { cause, .. } => {
                                ObjectResult::Updated { cause: *cause }
                            }
                            ObjectAction::Create
                            | ObjectAction::Prune
                            | ObjectAction::PruneSkipped { .. }
                            | ObjectAction::Unchanged => ObjectResult::Created,
                        }
                    }
                    Err(f) => ObjectResult::Failed(f),
                }
            }
            ObjectAction::Prune => match still_inhabited(cluster, &object.key, &pruned).await {
                Err(f) => ObjectResult::Failed(f),
                Ok(Some(reason)) => {
                    if options.log_objects {
                        warn!(object = %object.key, "kept namespace {}: {reason}", object.key.name);
                    } else {
                        debug!(object = %object.key, "kept namespace {}: {reason}", object.key.name);
                    }
                    ObjectResult::PruneSkipped { reason }
                }
                Ok(None) => {
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
                            pruned.push(object.key.clone());
                            ObjectResult::Pruned
                        }
                        Err(f) => ObjectResult::Failed(f),
                    }
                }
            },
        };
        log_result(&object.key, &result, options);
        objects.push(ObjectOutcome {
            key: object.key.clone(),
            result,
        });
    }
    let unobserved = match options.mode {
        WriteMode::Apply if options.observe_within.is_zero() => Vec::new(),
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
    let report = SyncReport {
        mode: options.mode,
        objects,
        unobserved,
    };
    (report, kept)
}

/// The resourceVersion in an apply's answer; the rest of the object is skipped, not built
/// (a pass applies thousands).
fn resource_version(answer: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        metadata: Metadata,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Metadata {
        resource_version: Option<String>,
    }
    serde_json::from_str::<Answer>(answer)
        .ok()
        .and_then(|a| a.metadata.resource_version)
}

/// One object's result in the log: at info or warn when [`SyncOptions::log_objects`], else
/// at debug (the command prints it). Writes of a server dry run are always at debug: the
/// dry-run gate sends every write of a pass twice, and once is enough at info.
fn log_result(key: &ObjectKey, result: &ObjectResult, options: &SyncOptions) {
    let shown = options.log_objects;
    match result {
        ObjectResult::Failed(f) if shown => {
            warn!(object = %key, kind = f.kind.metric_label(), code = ?f.code, attempts = f.attempts, "{}", f.message);
        }
        ObjectResult::Failed(f) => {
            debug!(object = %key, kind = f.kind.metric_label(), code = ?f.code, attempts = f.attempts, "{}", f.message);
        }
        ObjectResult::Created | ObjectResult::Updated { .. } | ObjectResult::Pruned => {
            match options.mode {
                WriteMode::Apply if shown => info!(object = %key, result = result.name(), "synced"),
                WriteMode::Apply => debug!(object = %key, result = result.name(), "synced"),
                WriteMode::ServerDryRun => {
                    debug!(object = %key, result = result.name(), "accepted by a server dry run");
                }
            }
        }
        ObjectResult::DriftReported if shown => {
            warn!(object = %key, "drift: changed in the cluster; selfHeal is off, so it stays");
        }
        ObjectResult::DriftReported => {
            debug!(object = %key, "drift: changed in the cluster; selfHeal is off, so it stays");
        }
        // A namespace kept is logged where it is found (a plan's skip is no news).
        ObjectResult::Unchanged | ObjectResult::PruneSkipped { .. } => {}
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

/// Server-side apply of the plan's desired object; the API server's answer (the object as
/// stored), as text.
async fn apply(
    cluster: &Cluster,
    object: &ObjectPlan,
    options: &SyncOptions,
) -> Result<String, Failure> {
    let Some(desired) = object.desired.as_ref().map(|d| d.value()) else {
        return Err(Failure {
            kind: FailureKind::Rejected,
            code: None,
            message: "the plan has no desired object to apply; report this as a veer bug".into(),
            fix: None,
            managers: Vec::new(),
            attempts: 0,
        });
    };
    let key = &object.key;
    // Healing drift takes back fields someone changed by hand: after `kubectl edit` they
    // belong to that manager, so only a forced apply can restore them.
    let heal = matches!(
        object.action,
        ObjectAction::Update {
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
            let desired: &Value = &desired;
            let request = kube::core::Request::new(api.resource_url())
                .patch(&key.name, params, &Patch::Apply(desired))
                .map_err(kube::Error::BuildRequest);
            let client = cluster.client();
            async move { client.request_text(request?).await }
        })
        .await;
        return match result {
            Ok(answer) => Ok(answer),
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

/// For a Namespace about to be pruned: why it must stay, when anything but what this pass
/// pruned still lives in it (`None` for other kinds, and for an empty namespace). When the
/// server cannot say, the namespace stays too: the failure says why.
async fn still_inhabited(
    cluster: &Cluster,
    key: &ObjectKey,
    pruned: &[ObjectKey],
) -> Result<Option<PruneSkipReason>, Failure> {
    if !namespace::is_namespace(key) {
        return Ok(None);
    }
    match namespace::census(cluster.client(), &key.name).await {
        Ok(census) => Ok(namespace::namespace_keeper(
            &census.residents,
            pruned,
            census.unseen,
        )),
        Err(e) => {
            let mut f = failure(&e, 1);
            f.message = format!(
                "cannot tell what still lives in namespace {}, so it is kept: {}",
                key.name, f.message
            );
            Err(f)
        }
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
