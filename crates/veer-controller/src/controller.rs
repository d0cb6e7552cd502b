//! The reconcile loop, level-triggered and idempotent: poll → validate → plan → apply →
//! record.
//!
//! Owns what happens to a revision: a rejected one applies nothing and is recorded as
//! rejected while the last good revision stays in force (and keeps being reconciled, so drift
//! is still healed); an unchanged revision with nothing to heal makes no write at all (the
//! plan reads the watch cache, and the state is written only when its content changes); a
//! partly failed apply is recorded as such. The decisions are pure functions
//! ([`next_state`], [`rejected_state`], [`error_state`], [`exit_code`]); [`Controller`] is
//! the thin I/O around them. Progressive rollouts are driven by [`rollouts::RolloutDriver`]
//! after each pass; while one runs, the fields it owns are left out of the plan.

pub mod gate;
pub mod intent;
pub mod observers;
pub mod rollouts;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use tracing::{error, info, warn};

use crate::cluster::{Cluster, ClusterError, LiveState};
use crate::diff::{self, Action, Cause, DesiredObject, Plan, PlanContext};
use crate::exit;
use crate::manifest::{ObjectIdentity, ObjectKey};
use crate::source::{LoadedRevision, PollOutcome};
use crate::sync::state::{
    self, ErrorRecord, ObjectRecord, RejectedRecord, RevisionOutcome, RevisionRecord, StateError,
    StateLocation, SyncState,
};
use crate::sync::{self, ObjectResult, SyncOptions, SyncReport, WriteMode};
use crate::validate::{self, Report};

/// What can stop a pass.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Rollout(rollouts::RolloutDriverError),
    /// The server-side dry run before the first write got no answer (module `gate`).
    #[error("{0}")]
    DryRun(String),
}

impl ControllerError {
    pub fn metric_label(&self) -> &'static str {
        match self {
            ControllerError::Cluster(e) => e.metric_label(),
            ControllerError::State(e) => e.metric_label(),
            ControllerError::Rollout(e) => e.metric_label(),
            ControllerError::DryRun(_) => "dry_run_unavailable",
        }
    }
}

/// How the controller behaves.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// Repository URL, for the `veer.io/source` annotation (`<url>#<file>`).
    pub source_url: String,
    pub prune: bool,
    pub sync: SyncOptions,
}

pub use crate::pass::{Pass, RejectedBy};

/// The exit code of a one-pass command (`veer sync`, `veer run --once`). Pure.
pub fn exit_code(pass: &Pass) -> i32 {
    match pass {
        Pass::InSync { .. } | Pass::DriftReported { .. } => exit::OK,
        Pass::Synced { report, .. } if report.has_failures() => exit::PARTIAL,
        Pass::Synced { .. } => exit::OK,
        Pass::Rejected { .. } => exit::INVALID,
        Pass::NoRevision | Pass::Failed { .. } => exit::FAILURE,
    }
}

fn timestamp(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn revision_record(loaded: &LoadedRevision) -> RevisionRecord {
    RevisionRecord {
        commit: loaded.revision.commit.0.clone(),
        summary: loaded.revision.summary.clone(),
        author: loaded.revision.author.clone(),
    }
}

/// The objects of a revision as veer applies them: label and source annotation added.
/// veer's own configuration (`veer.io` kinds such as RolloutPolicy) is read, never applied.
pub fn desired_objects(loaded: &LoadedRevision, source_url: &str) -> Vec<DesiredObject> {
    loaded
        .set
        .manifests
        .iter()
        .filter(|m| !crate::manifest::policy::is_veer_config(m))
        .map(|m| {
            let mut d = DesiredObject::from(m.as_ref());
            sync::decorate(&mut d, &format!("{source_url}#{}", m.file));
            d
        })
        .collect()
}

/// The planner's view of the recorded state, with the list rules of the server it plans for.
pub fn plan_context(
    state: &SyncState,
    manager: &str,
    prune: bool,
    semantics: crate::fields::ListSemantics,
) -> PlanContext {
    let mut ctx = PlanContext::new(manager);
    ctx.prune = prune;
    ctx.semantics = semantics;
    for record in &state.objects {
        if let Some(hash) = &record.hash {
            ctx.inventory.insert(record.key());
            ctx.applied_hashes.insert(record.key(), hash.clone());
        }
    }
    ctx
}

/// What a plan comes to when nothing is written: unchanged, prune skipped, drift reported.
/// Pure.
pub fn report_without_writes(plan: &Plan) -> SyncReport {
    SyncReport {
        mode: WriteMode::Apply,
        objects: plan
            .objects
            .iter()
            .map(|o| sync::ObjectOutcome {
                key: o.key.clone(),
                result: match &o.action {
                    Action::Update {
                        cause: Cause::Drift,
                        ..
                    } => ObjectResult::DriftReported,
                    Action::PruneSkipped { reason } => ObjectResult::PruneSkipped {
                        reason: reason.clone(),
                    },
                    Action::Create | Action::Update { .. } | Action::Prune | Action::Unchanged => {
                        ObjectResult::Unchanged
                    }
                },
            })
            .collect(),
        unobserved: Vec::new(),
    }
}

/// The state after reconciling `loaded`: its objects' results and hashes, the inventory
/// (applied objects added, pruned ones removed, failed creates never added), the outcome.
/// `unknown` keys (kind not served) keep their records. Timestamps move only when the
/// content changed. Pure.
pub fn next_state(
    prev: &SyncState,
    loaded: &LoadedRevision,
    desired: &[DesiredObject],
    report: &SyncReport,
    unknown: &BTreeSet<ObjectKey>,
    now: DateTime<Utc>,
) -> SyncState {
    // Lookups by identity (API version aside), hashed: a pass over 10,000 objects must not
    // search lists per object.
    let hashes: HashMap<ObjectIdentity<'_>, String> = desired
        .iter()
        .map(|d| (d.key.identity(), diff::desired_hash(&d.value)))
        .collect();
    let hash_of = |key: &ObjectKey| hashes.get(&key.identity()).cloned();
    let prev_keys: Vec<ObjectKey> = prev.objects.iter().map(ObjectRecord::key).collect();
    let previous_of: HashMap<ObjectIdentity<'_>, &ObjectRecord> = prev_keys
        .iter()
        .zip(&prev.objects)
        .map(|(k, r)| (k.identity(), r))
        .collect();
    let mut records: Vec<ObjectRecord> = Vec::new();
    let mut seen: HashSet<ObjectIdentity<'_>> = HashSet::new();
    for outcome in &report.objects {
        seen.insert(outcome.key.identity());
        let previous = previous_of.get(&outcome.key.identity()).copied();
        let prev_hash = previous.and_then(|r| r.hash.clone());
        let record = match &outcome.result {
            ObjectResult::Created | ObjectResult::Updated { .. } => {
                ObjectRecord::new(&outcome.key, hash_of(&outcome.key), outcome.result.name())
            }
            // Nothing happened: the last result stands (an idle pass changes no record),
            // unless it was a failure that has since been fixed, or an intent (the crash came
            // after the write).
            ObjectResult::Unchanged => match previous {
                Some(p)
                    if p.hash == hash_of(&outcome.key)
                        && p.code.is_none()
                        && p.result != intent::PENDING =>
                {
                    p.clone()
                }
                Some(_) | None => {
                    ObjectRecord::new(&outcome.key, hash_of(&outcome.key), outcome.result.name())
                }
            },
            ObjectResult::DriftReported => {
                ObjectRecord::new(&outcome.key, prev_hash, outcome.result.name())
            }
            ObjectResult::PruneSkipped { .. } => match previous {
                Some(p) => ObjectRecord {
                    result: outcome.result.name().to_string(),
                    ..p.clone()
                },
                None => ObjectRecord::new(&outcome.key, None, outcome.result.name()),
            },
            ObjectResult::Pruned => continue,
            ObjectResult::Failed(f) => {
                // A first write that was refused did not happen: out of the inventory again. One
                // that got no answer may have: it stays, so it is pruned if it exists.
                let refused = previous.is_some_and(|p| p.result == intent::PENDING)
                    && f.kind != sync::FailureKind::Unavailable;
                ObjectRecord {
                    code: f.code,
                    message: Some(f.message.clone()),
                    ..ObjectRecord::new(
                        &outcome.key,
                        if refused { None } else { prev_hash },
                        outcome.result.name(),
                    )
                }
            }
        };
        records.push(record);
    }
    // Records the plan did not cover: gone from git and from the cluster, unless veer could
    // not look (kind not served), in which case nothing is known and the record stays.
    let unknown: HashSet<ObjectIdentity<'_>> = unknown.iter().map(ObjectKey::identity).collect();
    for (key, p) in prev_keys.iter().zip(&prev.objects) {
        let id = key.identity();
        if !seen.contains(&id) && unknown.contains(&id) {
            records.push(p.clone());
        }
    }
    records.sort_by_key(ObjectRecord::key);

    let failed = report.has_failures();
    let drift: Vec<String> = report
        .objects
        .iter()
        .filter(|o| matches!(o.result, ObjectResult::DriftReported))
        .map(|o| o.key.to_string())
        .collect();
    let mut next = SyncState {
        format: state::STATE_FORMAT,
        revision: Some(revision_record(loaded)),
        outcome: Some(if failed {
            RevisionOutcome::PartiallyApplied
        } else {
            RevisionOutcome::Applied
        }),
        applied_at: prev.applied_at.clone(),
        // A rejection stands while the revision in force is the one from before it; a newer
        // valid revision supersedes it.
        rejected: if prev.revision.as_ref().map(|r| &r.commit) == Some(&loaded.revision.commit.0) {
            prev.rejected.clone()
        } else {
            None
        },
        last_error: if failed {
            report.failed().next().map(|(k, f)| ErrorRecord {
                message: format!("{k}: {}", f.message),
                at: timestamp(now),
            })
        } else {
            None
        },
        objects: records,
        drift,
        updated_at: prev.updated_at.clone(),
    };
    let wrote = report.objects.iter().any(|o| {
        matches!(
            o.result,
            ObjectResult::Created | ObjectResult::Updated { .. } | ObjectResult::Pruned
        )
    });
    if wrote || prev.revision != next.revision || next.applied_at.is_none() {
        next.applied_at = Some(timestamp(now));
    }
    // Keep the previous error's time when it is the same error.
    if let (Some(n), Some(p)) = (&mut next.last_error, &prev.last_error)
        && n.message == p.message
    {
        n.at = p.at.clone();
    }
    if !next.same_content(prev) {
        next.updated_at = Some(timestamp(now));
    }
    next
}

/// The state after `loaded` failed validation: recorded as rejected (once per commit);
/// everything else stays. Pure.
pub fn rejected_state(
    prev: &SyncState,
    loaded: &LoadedRevision,
    errors: usize,
    now: DateTime<Utc>,
) -> SyncState {
    let commit = loaded.revision.commit.0.clone();
    if prev.rejected.as_ref().is_some_and(|r| r.commit == commit) {
        return prev.clone();
    }
    SyncState {
        rejected: Some(RejectedRecord {
            commit,
            summary: loaded.revision.summary.clone(),
            errors,
            at: timestamp(now),
        }),
        updated_at: Some(timestamp(now)),
        ..prev.clone()
    }
}

/// The state after a pass failed with `message` (kept once: the same error again changes
/// nothing). Pure.
pub fn error_state(prev: &SyncState, message: &str, now: DateTime<Utc>) -> SyncState {
    if prev
        .last_error
        .as_ref()
        .is_some_and(|e| e.message == message)
    {
        return prev.clone();
    }
    SyncState {
        last_error: Some(ErrorRecord {
            message: message.to_string(),
            at: timestamp(now),
        }),
        updated_at: Some(timestamp(now)),
        ..prev.clone()
    }
}

/// Reconcile until `shutdown` resolves: a pass after each poll of git, and a pass whenever a
/// rollout wants to act before the next poll (a rollout interval of seconds does not wait for
/// a 30 s poll). Each pass is logged.
pub async fn run_loop(
    controller: &mut Controller,
    poller: &mut crate::source::Poller,
    observers: &observers::Observers,
    mut triggers: Option<tokio::sync::mpsc::Receiver<crate::server::Trigger>>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let started = std::time::Instant::now();
        let poll = poller.poll_once().await;
        let pass = controller.handle(poll, Utc::now()).await;
        log_pass(&pass);
        observers.after_pass(controller, &pass, started.elapsed(), Utc::now());
        let tick = poller.next_tick();
        tokio::pin!(tick);
        loop {
            let wake = controller.next_wake();
            // A floor, so a rollout that is due again at once cannot spin the loop.
            let delay = wake
                .and_then(|at| (at - Utc::now()).to_std().ok())
                .unwrap_or_default()
                .max(std::time::Duration::from_millis(50));
            tokio::select! {
                () = &mut tick => break,
                // A verified push webhook: poll now instead of at the next tick.
                Some(trigger) = async {
                    match triggers.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    info!(reference = %trigger.reference, "push webhook: polling now");
                    break;
                }
                () = tokio::time::sleep(delay), if wake.is_some() => {
                    if let Some(commit) = controller.current_commit() {
                        let started = std::time::Instant::now();
                        let pass = controller
                            .handle(PollOutcome::Unchanged { commit }, Utc::now())
                            .await;
                        log_pass(&pass);
                        observers.after_pass(controller, &pass, started.elapsed(), Utc::now());
                    }
                }
                () = &mut shutdown => return,
            }
        }
    }
}

fn log_pass(pass: &Pass) {
    match pass {
        Pass::Synced { commit, report } => {
            let s = report.summary();
            info!(commit = %&commit[..commit.len().min(12)], created = s.created, updated = s.updated, pruned = s.pruned, failed = s.failed, "reconciled");
        }
        Pass::InSync { .. } | Pass::DriftReported { .. } => {}
        Pass::Rejected { .. } | Pass::NoRevision => {}
        Pass::Failed { message } => warn!(error = %message, "reconcile failed"),
    }
}

/// A plan with what it was made from.
pub struct Planned {
    pub plan: Plan,
    pub desired: Vec<DesiredObject>,
    pub live: LiveState,
}

/// The loop's state and its I/O: the cluster, the recorded state, the last valid revision.
pub struct Controller {
    cluster: Cluster,
    location: StateLocation,
    options: ControllerOptions,
    state: SyncState,
    /// The revision in force: the newest that passed validation.
    current: Option<Arc<LoadedRevision>>,
    /// The newest revision loaded and its validation, so a revision is validated once.
    validated: Option<(Arc<LoadedRevision>, Report)>,
    /// The revision in force when the server's dry run refused it, and what it refused.
    refused: Option<(crate::source::Revision, Report)>,
    /// Progressive rollouts; `None`: weights apply at once like any field.
    rollouts: Option<rollouts::RolloutDriver>,
}

impl Controller {
    /// Read the recorded state (one GET) and get ready.
    pub async fn start(
        cluster: Cluster,
        location: StateLocation,
        options: ControllerOptions,
    ) -> Result<Self, ControllerError> {
        let state = state::read(cluster.client(), &location)
            .await?
            .unwrap_or_default();
        if let Some(r) = &state.revision {
            info!(commit = %r.commit, objects = state.inventory().len(), "state read from the cluster");
        }
        Ok(Controller {
            cluster,
            location,
            options,
            state,
            current: None,
            validated: None,
            refused: None,
            rollouts: None,
        })
    }

    /// Drive progressive rollouts of VirtualServices bound to a rollout policy.
    pub fn with_rollouts(mut self, driver: rollouts::RolloutDriver) -> Self {
        self.rollouts = Some(driver);
        self
    }

    /// Read the stored rollout states (once), so that [`Controller::plan`] leaves out what
    /// running rollouts own. [`Controller::reconcile`] does it itself.
    pub async fn load_rollouts(&mut self) -> Result<(), ControllerError> {
        match &mut self.rollouts {
            Some(driver) => driver
                .load(&self.cluster)
                .await
                .map_err(ControllerError::Rollout),
            None => Ok(()),
        }
    }

    pub fn rollouts(&self) -> Option<&rollouts::RolloutDriver> {
        self.rollouts.as_ref()
    }

    /// When a rollout wants to act next (earlier than the next poll, often).
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        self.rollouts
            .as_ref()
            .and_then(rollouts::RolloutDriver::next_wake)
    }

    /// The commit of the revision in force.
    pub fn current_commit(&self) -> Option<crate::source::CommitId> {
        self.current.as_ref().map(|l| l.revision.commit.clone())
    }

    /// The revision in force.
    pub fn current_revision(&self) -> Option<&crate::source::Revision> {
        self.current.as_ref().map(|l| &l.revision)
    }

    /// The newest rejected revision and why: its validation, or else the server's refusal of
    /// the revision in force.
    pub fn rejected_revision(&self) -> Option<(&crate::source::Revision, &Report)> {
        self.validated
            .as_ref()
            .filter(|(_, report)| !report.is_ok())
            .map(|(loaded, report)| (&loaded.revision, report))
            .or_else(|| self.refused.as_ref().map(|(r, report)| (r, report)))
    }

    pub fn state(&self) -> &SyncState {
        &self.state
    }

    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Plan `loaded` against the live cluster (from the watch cache once it is up).
    pub async fn plan(&self, loaded: &LoadedRevision) -> Result<Planned, ControllerError> {
        let desired = desired_objects(loaded, &self.options.source_url);
        let mut keys: Vec<ObjectKey> = desired.iter().map(|d| d.key.clone()).collect();
        let inventory = self.state.inventory();
        let wanted: HashSet<ObjectIdentity<'_>> =
            desired.iter().map(|d| d.key.identity()).collect();
        let extra: Vec<ObjectKey> = inventory
            .iter()
            .filter(|k| !wanted.contains(&k.identity()))
            .cloned()
            .collect();
        keys.extend(extra);
        let live = self.cluster.live(&keys).await?;
        let semantics = self.cluster.list_semantics().await;
        let mut ctx = plan_context(
            &self.state,
            &self.options.sync.manager,
            self.options.prune,
            semantics,
        );
        if let Some(driver) = &self.rollouts {
            let policies = driver.policies(loaded);
            ctx.ignore = driver.ignore(&desired, &live.objects, &policies);
        }
        ctx.unreadable = live.forbidden.keys().cloned().collect();
        ctx.self_heal = self.options.sync.self_heal;
        let plan = diff::plan(&desired, &live.objects, &ctx);
        Ok(Planned {
            plan,
            desired,
            live,
        })
    }

    /// One pass over what a poll produced.
    pub async fn handle(&mut self, poll: PollOutcome, now: DateTime<Utc>) -> Pass {
        match poll {
            PollOutcome::Updated(loaded) => {
                self.refused = None;
                let local = self
                    .rollouts
                    .as_ref()
                    .map_or(&[][..], |d| d.local_policies());
                let report = validate::validate_with_policies(&loaded.set, local);
                self.validated = Some((loaded.clone(), report.clone()));
                if report.is_ok() {
                    self.current = Some(loaded);
                } else {
                    let commit = loaded.revision.commit.short().to_string();
                    for d in &report.diagnostics {
                        warn!(%commit, "{d}");
                    }
                    error!(%commit, errors = report.errors, "revision rejected: nothing from it is applied; the last good revision stays in force");
                    let next = rejected_state(&self.state, &loaded, report.errors, now);
                    if let Err(e) = self.record(next).await {
                        return Pass::Failed {
                            message: e.to_string(),
                        };
                    }
                    // Keep reconciling the revision in force (drift is still healed), but
                    // report the rejection for this pass.
                    let pass = self.reconcile_current(now).await;
                    return match pass {
                        Pass::Failed { .. } => pass,
                        Pass::NoRevision
                        | Pass::Rejected { .. }
                        | Pass::InSync { .. }
                        | Pass::DriftReported { .. }
                        | Pass::Synced { .. } => Pass::Rejected {
                            commit: loaded.revision.commit.0.clone(),
                            errors: report.errors,
                            by: RejectedBy::Validation,
                        },
                    };
                }
            }
            PollOutcome::Unchanged { .. } => {}
            PollOutcome::Failed { error, kept } => {
                error!(%error, kept = ?kept.map(|c| c.short().to_string()), "poll failed; the last good revision stays in force");
            }
        }
        self.reconcile_current(now).await
    }

    async fn reconcile_current(&mut self, now: DateTime<Utc>) -> Pass {
        let Some(loaded) = self.current.clone() else {
            return Pass::NoRevision;
        };
        match self.reconcile(&loaded, now).await {
            Ok(pass) => pass,
            Err(e) => {
                error!(error = %e, "reconcile failed; retrying at the next tick");
                let message = e.to_string();
                let next = error_state(&self.state, &message, now);
                if let Err(write) = self.record(next).await {
                    warn!(error = %write, "cannot record the error");
                }
                Pass::Failed { message }
            }
        }
    }

    /// Plan, apply when anything needs writing, record when the state changed.
    pub async fn reconcile(
        &mut self,
        loaded: &LoadedRevision,
        now: DateTime<Utc>,
    ) -> Result<Pass, ControllerError> {
        let commit = loaded.revision.commit.0.clone();
        if let Some(driver) = &mut self.rollouts
            && let Err(e) = driver.load(&self.cluster).await
        {
            // Without the states, the running rollouts' fields are unknown: do not plan.
            return Err(ControllerError::Rollout(e));
        }
        let planned = self.plan(loaded).await?;
        let options = self.options.sync.clone();
        let options = &options;
        let dry = options.mode == WriteMode::ServerDryRun;
        // The foundation's outcomes, when the gate had to apply it first.
        let mut applied_first: Option<SyncReport> = None;
        if !dry && planned.plan.writes_anything() {
            let (verdict, foundation) = self.pass_gate(loaded, &planned).await?;
            applied_first = foundation;
            match verdict {
                gate::GateVerdict::Clear => self.refused = None,
                gate::GateVerdict::Refused(report) => {
                    let short = loaded.revision.commit.short().to_string();
                    for d in &report.diagnostics {
                        warn!(commit = %short, "{d}");
                    }
                    error!(commit = %short, errors = report.errors, "revision refused by the API server's dry run: nothing from it is written; veer asks again at the next pass");
                    let errors = report.errors;
                    self.refused = Some((loaded.revision.clone(), report));
                    self.record(rejected_state(&self.state, loaded, errors, now))
                        .await?;
                    return Ok(Pass::Rejected {
                        commit,
                        errors,
                        by: RejectedBy::Server,
                    });
                }
                gate::GateVerdict::Unavailable(message) => {
                    return Err(ControllerError::DryRun(message));
                }
            }
            // Whatever this pass creates is in the inventory before it exists.
            let intent = intent::with_intent(&self.state, &planned.plan, &planned.desired);
            self.record(intent).await?;
        }
        // Objects veer may not read are failures of this pass, even when nothing is written.
        let unreadable = sync::unreadable(&planned.live.forbidden);
        let (pass, report) = if planned.plan.writes_anything() || !unreadable.is_empty() {
            let mut report = match applied_first {
                None => {
                    sync::execute(&self.cluster, &planned.plan, &planned.live.objects, options)
                        .await
                }
                Some(first) => {
                    let done: HashSet<ObjectIdentity<'_>> =
                        first.objects.iter().map(|o| o.key.identity()).collect();
                    let rest = planned.plan.with_objects(
                        (planned.plan.objects.iter())
                            .filter(|o| !done.contains(&o.key.identity()))
                            .cloned()
                            .collect(),
                    );
                    let rest =
                        sync::execute(&self.cluster, &rest, &planned.live.objects, options).await;
                    // In the plan's order, as if it had been one execution.
                    let mut outcomes: HashMap<ObjectIdentity<'_>, sync::ObjectOutcome> =
                        (first.objects.iter().chain(&rest.objects))
                            .map(|o| (o.key.identity(), o.clone()))
                            .collect();
                    SyncReport {
                        mode: rest.mode,
                        objects: (planned.plan.objects.iter())
                            .filter_map(|o| outcomes.remove(&o.key.identity()))
                            .collect(),
                        unobserved: first
                            .unobserved
                            .into_iter()
                            .chain(rest.unobserved)
                            .collect(),
                    }
                }
            };
            report.objects.extend(unreadable);
            let s = report.summary();
            info!(
                commit = %loaded.revision.commit.short(),
                created = s.created, updated = s.updated, pruned = s.pruned,
                failed = s.failed, dry_run = dry,
                "revision synced"
            );
            (
                Pass::Synced {
                    commit,
                    report: report.clone(),
                },
                report,
            )
        } else {
            let report = report_without_writes(&planned.plan);
            let drifted: Vec<ObjectKey> = report
                .objects
                .iter()
                .filter(|o| matches!(o.result, ObjectResult::DriftReported))
                .map(|o| o.key.clone())
                .collect();
            let pass = if drifted.is_empty() {
                Pass::InSync { commit }
            } else {
                for key in &drifted {
                    warn!(object = %key, "drift: changed in the cluster; selfHeal is off, so it stays");
                }
                Pass::DriftReported {
                    commit,
                    objects: drifted,
                }
            };
            (pass, report)
        };
        if !dry {
            let next = next_state(
                &self.state,
                loaded,
                &planned.desired,
                &report,
                &planned.live.unknown,
                now,
            );
            self.record(next).await?;
            if let Some(driver) = &mut self.rollouts {
                driver
                    .drive(
                        &self.cluster,
                        &self.options.sync,
                        loaded,
                        &planned.desired,
                        &planned.live.objects,
                    )
                    .await;
            }
        }
        Ok(pass)
    }

    /// The server's dry run of every write `planned` makes (module [`gate`]); the foundation
    /// (Namespaces and CRDs it creates) is checked, recorded and applied first: its report
    /// comes back with the verdict.
    async fn pass_gate(
        &mut self,
        loaded: &LoadedRevision,
        planned: &Planned,
    ) -> Result<(gate::GateVerdict, Option<SyncReport>), ControllerError> {
        let options = self.options.sync.clone();
        let dry_run = SyncOptions {
            mode: WriteMode::ServerDryRun,
            ..options.clone()
        };
        let live = &planned.live.objects;
        let (foundation, rest) = gate::split(&planned.plan);
        let mut applied = None;
        if !foundation.objects.is_empty() {
            let checked = sync::execute(&self.cluster, &foundation, live, &dry_run).await;
            let verdict = gate::verdict(&checked, loaded, live);
            if verdict != gate::GateVerdict::Clear {
                return Ok((verdict, None));
            }
            let intent = intent::with_intent(&self.state, &foundation, &planned.desired);
            self.record(intent).await?;
            let report = sync::execute(&self.cluster, &foundation, live, &options).await;
            let verdict = gate::verdict(&report, loaded, live);
            if verdict != gate::GateVerdict::Clear {
                return Ok((verdict, None));
            }
            applied = Some(report);
        }
        if rest.objects.is_empty() {
            return Ok((gate::GateVerdict::Clear, applied));
        }
        let checked = sync::execute(&self.cluster, &rest, live, &dry_run).await;
        Ok((gate::verdict(&checked, loaded, live), applied))
    }

    /// Write the state when its content changed.
    async fn record(&mut self, next: SyncState) -> Result<(), StateError> {
        if next.same_content(&self.state) {
            return Ok(());
        }
        state::write(self.cluster.client(), &self.location, &next).await?;
        self.state = next;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! The fixtures are shared with the tests of `gate` and `intent`.

    use serde_json::json;

    use super::*;
    use crate::diff::PruneSkipReason;
    use crate::manifest::ManifestSet;
    use crate::source::{CommitId, Revision};
    use crate::sync::{Failure, FailureKind, ObjectOutcome};
    use veer_testkit::at;
    pub(crate) use veer_testkit::config_map as key;

    pub(crate) fn loaded(commit: &str) -> LoadedRevision {
        LoadedRevision {
            revision: Revision {
                commit: CommitId(commit.repeat(40 / commit.len())),
                summary: format!("commit {commit}"),
                author: "Ada <ada@example.com>".into(),
                time: at(25, 0),
            },
            set: ManifestSet::default(),
            changed_files: Vec::new(),
            parsed_files: 0,
        }
    }

    pub(crate) fn desired(names: &[(&str, i64)]) -> Vec<DesiredObject> {
        names
            .iter()
            .map(|(n, v)| DesiredObject {
                key: key(n),
                value: json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n}, "data": {"v": v.to_string()}}),
            })
            .collect()
    }

    pub(crate) fn report(results: Vec<(&str, ObjectResult)>) -> SyncReport {
        SyncReport {
            mode: WriteMode::Apply,
            objects: results
                .into_iter()
                .map(|(n, result)| ObjectOutcome {
                    key: key(n),
                    result,
                })
                .collect(),
            unobserved: Vec::new(),
        }
    }

    pub(crate) fn failed(code: u16) -> ObjectResult {
        ObjectResult::Failed(Failure {
            kind: FailureKind::Invalid,
            code: Some(code),
            message: "no".into(),
            fix: None,
            managers: Vec::new(),
            attempts: 1,
        })
    }

    pub(crate) fn hash(n: &str, v: i64) -> Option<String> {
        Some(diff::desired_hash(&desired(&[(n, v)])[0].value))
    }

    /// A state where `a` (v1) and `old` (v1) were applied.
    pub(crate) fn applied_state() -> SyncState {
        SyncState {
            revision: Some(revision_record(&loaded("a"))),
            outcome: Some(RevisionOutcome::Applied),
            applied_at: Some("2026-11-25T09:00:00Z".into()),
            objects: vec![
                ObjectRecord::new(&key("a"), hash("a", 1), "created"),
                ObjectRecord::new(&key("old"), hash("old", 1), "created"),
            ],
            updated_at: Some("2026-11-25T09:00:00Z".into()),
            ..SyncState::default()
        }
    }

    #[test]
    fn rollout_policies_are_read_but_never_applied() {
        let mut rev = loaded("a");
        let file = crate::manifest::parse_file(
            "p.yaml",
            b"apiVersion: veer.io/v1alpha1\nkind: RolloutPolicy\nmetadata:\n  name: canary\nspec:\n  interval: 10s\n  stepWeights: [10, 50]\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: shop\n",
            &crate::manifest::ReadOptions::default(),
        );
        assert!(file.diagnostics.is_empty(), "{:?}", file.diagnostics);
        rev.set.extend(&file);
        let kinds: Vec<String> = desired_objects(&rev, "repo")
            .iter()
            .map(|d| d.key.kind.clone())
            .collect();
        assert_eq!(kinds, vec!["ConfigMap".to_string()]);
    }

    #[test]
    fn next_state_table() {
        struct Case {
            name: &'static str,
            commit: &'static str,
            desired: Vec<DesiredObject>,
            report: SyncReport,
            unknown: Vec<ObjectKey>,
            inventory: Vec<&'static str>,
            outcome: RevisionOutcome,
            changed: bool,
            applied_at_moves: bool,
        }
        let cases = vec![
            Case {
                name: "same revision, all unchanged: nothing to record",
                commit: "a",
                desired: desired(&[("a", 1), ("old", 1)]),
                report: report(vec![
                    ("a", ObjectResult::Unchanged),
                    ("old", ObjectResult::Unchanged),
                ]),
                unknown: vec![],
                inventory: vec!["a", "old"],
                outcome: RevisionOutcome::Applied,
                changed: false,
                applied_at_moves: false,
            },
            Case {
                name: "new revision: update, create, prune",
                commit: "b",
                desired: desired(&[("a", 2), ("new", 1)]),
                report: report(vec![
                    (
                        "a",
                        ObjectResult::Updated {
                            cause: Cause::GitChange,
                        },
                    ),
                    ("new", ObjectResult::Created),
                    ("old", ObjectResult::Pruned),
                ]),
                unknown: vec![],
                inventory: vec!["a", "new"],
                outcome: RevisionOutcome::Applied,
                changed: true,
                applied_at_moves: true,
            },
            Case {
                name: "failed create stays out of the inventory; failed update keeps its old hash",
                commit: "b",
                desired: desired(&[("a", 2), ("new", 1), ("old", 1)]),
                report: report(vec![
                    ("a", failed(422)),
                    ("new", failed(403)),
                    ("old", ObjectResult::Unchanged),
                ]),
                unknown: vec![],
                inventory: vec!["a", "old"],
                outcome: RevisionOutcome::PartiallyApplied,
                changed: true,
                applied_at_moves: true,
            },
            Case {
                name: "prune skipped keeps the object in the inventory",
                commit: "a",
                desired: desired(&[("a", 1)]),
                report: report(vec![
                    ("a", ObjectResult::Unchanged),
                    (
                        "old",
                        ObjectResult::PruneSkipped {
                            reason: PruneSkipReason::Disabled,
                        },
                    ),
                ]),
                unknown: vec![],
                inventory: vec!["a", "old"],
                outcome: RevisionOutcome::Applied,
                changed: true,
                applied_at_moves: false,
            },
            Case {
                name: "gone from git and cluster: dropped; kind not served: kept",
                commit: "a",
                desired: desired(&[("a", 1)]),
                report: report(vec![("a", ObjectResult::Unchanged)]),
                unknown: vec![key("old")],
                inventory: vec!["a", "old"],
                outcome: RevisionOutcome::Applied,
                changed: false,
                applied_at_moves: false,
            },
            Case {
                name: "gone from git and from the cluster: dropped",
                commit: "a",
                desired: desired(&[("a", 1)]),
                report: report(vec![("a", ObjectResult::Unchanged)]),
                unknown: vec![],
                inventory: vec!["a"],
                outcome: RevisionOutcome::Applied,
                changed: true,
                applied_at_moves: false,
            },
            Case {
                name: "drift reported keeps the hash and is listed",
                commit: "a",
                desired: desired(&[("a", 1), ("old", 1)]),
                report: report(vec![
                    ("a", ObjectResult::DriftReported),
                    ("old", ObjectResult::Unchanged),
                ]),
                unknown: vec![],
                inventory: vec!["a", "old"],
                outcome: RevisionOutcome::Applied,
                changed: true,
                applied_at_moves: false,
            },
        ];
        let prev = applied_state();
        for case in cases {
            let unknown: BTreeSet<ObjectKey> = case.unknown.into_iter().collect();
            let next = next_state(
                &prev,
                &loaded(case.commit),
                &case.desired,
                &case.report,
                &unknown,
                at(25, 30),
            );
            let inventory: Vec<String> = next.inventory().into_iter().map(|k| k.name).collect();
            assert_eq!(inventory, case.inventory, "{}", case.name);
            assert_eq!(next.outcome, Some(case.outcome), "{}", case.name);
            assert_eq!(!next.same_content(&prev), case.changed, "{}", case.name);
            assert_eq!(
                next.applied_at != prev.applied_at,
                case.applied_at_moves,
                "{}",
                case.name
            );
            assert_eq!(
                next.updated_at != prev.updated_at,
                case.changed,
                "{}: updatedAt moves only with the content",
                case.name
            );
        }
    }

    #[test]
    fn hashes_record_what_was_applied() {
        let prev = applied_state();
        let next = next_state(
            &prev,
            &loaded("b"),
            &desired(&[("a", 2), ("old", 2)]),
            &report(vec![
                (
                    "a",
                    ObjectResult::Updated {
                        cause: Cause::GitChange,
                    },
                ),
                ("old", failed(500)),
            ]),
            &BTreeSet::new(),
            at(25, 30),
        );
        assert_eq!(
            next.record(&key("a")).and_then(|r| r.hash.clone()),
            hash("a", 2)
        );
        assert_eq!(
            next.record(&key("old")).and_then(|r| r.hash.clone()),
            hash("old", 1)
        );
        assert_eq!(next.record(&key("old")).and_then(|r| r.code), Some(500));
        assert!(
            next.last_error
                .as_ref()
                .is_some_and(|e| e.message.contains("ConfigMap shop/old"))
        );
        // The plan built from this state sees `a` as applied at v2.
        let ctx = plan_context(&next, "veer", true, Default::default());
        assert_eq!(ctx.applied_hashes.get(&key("a")).cloned(), hash("a", 2));
    }

    #[test]
    fn rejection_is_recorded_once_and_keeps_the_applied_revision() {
        let prev = applied_state();
        let once = rejected_state(&prev, &loaded("c"), 2, at(25, 10));
        assert_eq!(once.revision, prev.revision);
        assert_eq!(once.objects, prev.objects);
        assert_eq!(once.rejected.as_ref().map(|r| r.errors), Some(2));
        assert!(!once.same_content(&prev));
        let twice = rejected_state(&once, &loaded("c"), 2, at(25, 20));
        assert_eq!(twice, once);
        // A valid revision afterwards clears the rejection.
        let next = next_state(
            &once,
            &loaded("d"),
            &desired(&[("a", 1), ("old", 1)]),
            &report(vec![
                ("a", ObjectResult::Unchanged),
                ("old", ObjectResult::Unchanged),
            ]),
            &BTreeSet::new(),
            at(25, 30),
        );
        assert_eq!(next.rejected, None);
    }

    #[test]
    fn the_same_error_is_recorded_once() {
        let prev = applied_state();
        let once = error_state(&prev, "unreachable", at(25, 1));
        assert_eq!(error_state(&once, "unreachable", at(25, 2)), once);
        assert_ne!(error_state(&once, "forbidden", at(25, 2)), once);
    }

    #[test]
    fn exit_codes() {
        let cases = [
            (Pass::InSync { commit: "a".into() }, exit::OK),
            (
                Pass::DriftReported {
                    commit: "a".into(),
                    objects: vec![key("a")],
                },
                exit::OK,
            ),
            (
                Pass::Synced {
                    commit: "a".into(),
                    report: report(vec![("a", ObjectResult::Created)]),
                },
                exit::OK,
            ),
            (
                Pass::Synced {
                    commit: "a".into(),
                    report: report(vec![("a", ObjectResult::Created), ("b", failed(403))]),
                },
                exit::PARTIAL,
            ),
            (
                Pass::Rejected {
                    commit: "a".into(),
                    errors: 1,
                    by: RejectedBy::Server,
                },
                exit::INVALID,
            ),
            (Pass::NoRevision, exit::FAILURE),
            (
                Pass::Failed {
                    message: "x".into(),
                },
                exit::FAILURE,
            ),
        ];
        for (pass, code) in cases {
            assert_eq!(exit_code(&pass), code, "{pass:?}");
        }
    }

    #[test]
    fn no_writes_report_maps_drift_and_skips() {
        let plan = Plan {
            objects: vec![
                diff::ObjectPlan {
                    key: key("a"),
                    action: Action::Update {
                        cause: Cause::Drift,
                        changes: Vec::new(),
                    },
                    desired: None,
                    live: None,
                },
                diff::ObjectPlan {
                    key: key("b"),
                    action: Action::Unchanged,
                    desired: None,
                    live: None,
                },
            ],
            leave_drift: false,
        };
        assert!(plan.writes_anything());
        let left = Plan {
            leave_drift: true,
            ..plan.clone()
        };
        assert!(!left.writes_anything());
        let r = report_without_writes(&left);
        assert_eq!(r.objects[0].result, ObjectResult::DriftReported);
        assert_eq!(r.objects[1].result, ObjectResult::Unchanged);
    }
}
