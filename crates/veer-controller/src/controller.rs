//! The reconcile loop, level-triggered and idempotent: poll → validate → plan → apply →
//! record.
//!
//! Owns what happens to a revision: a rejected one applies nothing and is recorded as
//! rejected while the last good revision stays in force (and keeps being reconciled, so drift
//! is still healed); an unchanged revision with nothing to heal makes no write at all (the
//! plan reads the watch cache, and the state is written only when its content changes); a
//! partly failed apply is recorded as such. The decisions are pure functions: what a
//! revision is planned from ([`planning`]: [`desired_objects`], [`plan_context`]), what a pass
//! records ([`record`]: [`next_state`], [`rejected_state`], [`error_state`]) and
//! [`exit_code`]; [`Controller`] is the thin I/O around them. Progressive rollouts are driven by [`rollouts::RolloutDriver`]
//! after each pass; while one runs, the fields it owns are left out of the plan. A pass plans
//! only what changed since the last one, and every object at each resync ([`incremental`]).

pub mod gate;
mod incremental;
pub mod intent;
pub mod memory;
pub mod observers;
mod planning;
mod record;
pub mod rollouts;
pub mod runtime;
mod validation;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::{debug, error, info, warn};

use crate::cluster::{Cluster, ClusterError, LiveState};
use crate::diff::{self, DesiredObject, Plan};
use crate::exit;
use crate::manifest::{ObjectIdentity, ObjectKey};
use crate::source::{LoadedRevision, PollOutcome};
use crate::sync::state::{self, StateError, StateLocation, SyncState};
use crate::sync::{self, ObjectResult, SyncOptions, SyncReport, WriteMode};
use crate::validate::{Report, Severities};

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

pub use incremental::{DEFAULT_RESYNC_INTERVAL, FullReason, Planning};
pub use planning::{
    desired_objects, desired_virtual_services, plan_context, report_without_writes,
};
pub use record::{error_state, next_state, rejected_state};

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
        let loaded = matches!(poll, PollOutcome::Updated(_));
        let pass = controller.handle(poll, Utc::now()).await;
        log_pass(&pass);
        // Start-up and loading a revision run code idle polls do not (module [`memory`]).
        if loaded {
            let kib = memory::release_code_pages();
            debug!(kib, "code pages unmapped after loading a revision");
        }
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
                // A rollout is due: rollout work only, not a pass over the repository.
                () = tokio::time::sleep(delay), if wake.is_some() => {
                    controller.rollout_tick().await;
                    observers.after_tick(controller, Utc::now());
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
    /// The rollout work the plan was made with, for the driver.
    pub rollouts: Option<rollouts::PlannedRollouts>,
}

/// The loop's state and its I/O: the cluster, the recorded state, the last valid revision.
pub struct Controller {
    cluster: Cluster,
    location: StateLocation,
    options: ControllerOptions,
    state: SyncState,
    /// The state's stored form as last written, in pieces (a write re-encodes what changed).
    encoded: state::Encoded,
    /// The revision in force: the newest that passed validation.
    current: Option<Arc<LoadedRevision>>,
    /// The newest revision loaded when validation rejected it, and the errors of its report
    /// (its warnings were logged with them; `None` once a newer revision passed).
    validated: Option<(crate::source::Revision, Report)>,
    /// The revision in force when the server's dry run refused it, and what it refused.
    refused: Option<(crate::source::Revision, Report)>,
    /// Progressive rollouts; `None`: weights apply at once like any field.
    rollouts: Option<rollouts::RolloutDriver>,
    /// `validation:` of veer.yaml: the severity of each check in every revision's report.
    severities: Severities,
    /// The diff of the last pass that wrote (as `veer diff` prints it, without colour), for
    /// the status page, cut as the page shows it.
    last_diff: Option<String>,
    /// What the last pass planned, for the next to plan only what changed since.
    incremental: incremental::Incremental,
}

impl Controller {
    /// Read the recorded state (one GET; a sharded one also one LIST) and get ready.
    pub async fn start(
        cluster: Cluster,
        location: StateLocation,
        options: ControllerOptions,
    ) -> Result<Self, ControllerError> {
        // The shards the cluster holds are told to the encoder: the first write sends only
        // those that changed.
        let mut encoded = state::Encoded::default();
        let mut state = state::read_into(cluster.client(), &location, &mut encoded)
            .await?
            .unwrap_or_default();
        state.sort_records();
        if let Some(r) = &state.revision {
            info!(commit = %r.commit, objects = state.inventory().len(), "state read from the cluster");
        }
        Ok(Controller {
            cluster,
            location,
            options,
            state,
            encoded,
            current: None,
            validated: None,
            refused: None,
            rollouts: None,
            severities: Severities::default(),
            last_diff: None,
            incremental: incremental::Incremental::default(),
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
            Some(driver) => {
                let namespace = driver.state_namespace().to_string();
                let adapters =
                    rollouts::ClusterPorts::new(&self.cluster, &self.options.sync, &namespace);
                driver
                    .load(&adapters.ports())
                    .await
                    .map_err(ControllerError::Rollout)
            }
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

    /// The newest rejected revision and why: its validation's errors (the warnings are not
    /// kept), or else the server's refusal of the revision in force.
    pub fn rejected_revision(&self) -> Option<(&crate::source::Revision, &Report)> {
        (self.validated.as_ref())
            .filter(|(_, report)| !report.is_ok())
            .or(self.refused.as_ref())
            .map(|(revision, report)| (revision, report))
    }

    /// The diff of the last pass that wrote, if any.
    pub fn last_diff(&self) -> Option<&str> {
        self.last_diff.as_deref()
    }

    pub fn state(&self) -> &SyncState {
        &self.state
    }

    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// A rollout's wake: drive the rollouts against the revision in force, reading only its
    /// VirtualServices from the watch cache. Nothing else is planned and no sync state is
    /// written, so a tick costs what the rollouts cost, not what the repository does; drift
    /// and new commits wait for the next poll.
    pub async fn rollout_tick(&mut self) {
        if let Some(loaded) = self.current.clone() {
            // A tick that drove many rollouts freed as much as a large pass does.
            if self.tick_rollouts(&loaded, false).await >= memory::TRIM_AFTER_ROLLOUTS {
                memory::trim();
            }
        }
    }

    /// Plan every object of `loaded` against the live cluster (from the watch cache once it
    /// is up). A pass plans only what changed (module [`incremental`]).
    pub async fn plan(&self, loaded: &LoadedRevision) -> Result<Planned, ControllerError> {
        self.plan_scope(loaded, &incremental::Scope::everything())
            .await
    }

    /// One pass over what a poll produced; what a pass that loaded a revision or planned
    /// many objects freed goes back to the system (module [`memory`]).
    pub async fn handle(&mut self, poll: PollOutcome, now: DateTime<Utc>) -> Pass {
        let parsed = match &poll {
            PollOutcome::Updated(loaded) => loaded.parsed_files,
            PollOutcome::Unchanged { .. } | PollOutcome::Failed { .. } => 0,
        };
        let pass = self.handle_poll(poll, now).await;
        let planned = self.last_planning().map_or(0, |p| p.objects);
        if parsed.max(planned) >= memory::TRIM_AFTER_OBJECTS {
            memory::trim();
        }
        pass
    }

    async fn handle_poll(&mut self, poll: PollOutcome, now: DateTime<Utc>) -> Pass {
        match poll {
            PollOutcome::Updated(loaded) => {
                self.refused = None;
                let report = self.validate(&loaded, now).await;
                if report.is_ok() {
                    // Only a rejected revision's report is read again (`rejected_revision`):
                    // an accepted one's warnings (2.6 MiB at 10,000 objects) are not kept.
                    self.validated = None;
                    self.current = Some(loaded);
                } else {
                    let commit = loaded.revision.commit.short().to_string();
                    for d in &report.diagnostics {
                        warn!(%commit, "{d}");
                    }
                    error!(%commit, errors = report.errors, "revision rejected: nothing from it is applied; the last good revision stays in force");
                    let next = record::rejected_change(&self.state, &loaded, report.errors, now);
                    let errors = report.errors;
                    // What reads it later (`rejected_revision`: notifications) reads the errors.
                    self.validated = Some((loaded.revision.clone(), report.into_errors()));
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
                            errors,
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
                self.forget_baseline();
                let message = e.to_string();
                let next = record::error_change(&self.state, &message, now);
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
        // Without the states, the running rollouts' fields are unknown: do not plan.
        self.load_rollouts().await?;
        let scope = self.scope(loaded, now);
        if scope.is_nothing() {
            return Ok(self.pass_without_plan(loaded, scope).await);
        }
        let planned = self.plan_scope(loaded, &scope).await?;
        self.note_planning(&scope, &planned);
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
                    self.record(record::rejected_change(&self.state, loaded, errors, now))
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
            if let Ok(text) = diff::render::human(&planned.plan, false) {
                self.last_diff = Some(crate::server::board::shown_diff(text));
            }
            // Whatever this pass creates is in the inventory before it exists.
            let intent = intent::intent_change(&self.state, &planned.plan, &planned.desired);
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
                    // The plan less the foundation (a few Namespaces and CRDs), sized up
                    // front and dropped once executed: a create's plan shares its object.
                    let rest = {
                        let mut objects = Vec::with_capacity(planned.plan.objects.len());
                        objects.extend(
                            (planned.plan.objects.iter())
                                .filter(|o| !done.contains(&o.key.identity()))
                                .cloned(),
                        );
                        planned.plan.with_objects(objects)
                    };
                    let rest_report =
                        sync::execute(&self.cluster, &rest, &planned.live.objects, options).await;
                    drop(rest);
                    planning::merge_in_plan_order(&planned.plan, first, rest_report)
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
            (None, report)
        } else {
            let report = report_without_writes(&planned.plan);
            let drifted: Vec<ObjectKey> = report
                .objects
                .iter()
                .filter(|o| matches!(o.result, ObjectResult::DriftReported))
                .map(|o| o.key.clone())
                .collect();
            let pass = if drifted.is_empty() {
                Pass::InSync {
                    commit: commit.clone(),
                }
            } else {
                // `veer sync` prints each of them itself (see `SyncOptions::log_objects`).
                for key in &drifted {
                    if self.options.sync.log_objects {
                        warn!(object = %key, "drift: changed in the cluster; selfHeal is off, so it stays");
                    } else {
                        debug!(object = %key, "drift: changed in the cluster; selfHeal is off, so it stays");
                    }
                }
                Pass::DriftReported {
                    commit: commit.clone(),
                    objects: drifted,
                }
            };
            (Some(pass), report)
        };
        if !dry {
            let next = record::next_change(
                &self.state,
                loaded,
                &planned.desired,
                &report,
                &planned.live.unknown,
                &|id| scope.carries(id),
                now,
            );
            self.record(next).await?;
            // The rollouts, then what the next pass builds on.
            self.drive_and_settle(loaded, scope, &planned, &report, now)
                .await;
        }
        // A pass that wrote hands its report on as it is (10,000 outcomes on a first sync:
        // not copied for the pass while the state is recorded from it).
        Ok(pass.unwrap_or(Pass::Synced { commit, report }))
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
            let intent = intent::intent_change(&self.state, &foundation, &planned.desired);
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

    /// Write the state when its content changes (`Some`): the change is made in place and
    /// undone when the write fails (what is held is what is stored).
    async fn record(&mut self, change: Option<state::StateChange>) -> Result<(), StateError> {
        let Some(change) = change else {
            return Ok(());
        };
        let (undo, changed) = self.state.apply(change);
        let written = state::write(
            self.cluster.client(),
            &self.location,
            &self.state,
            &mut self.encoded,
            Some(&changed),
        )
        .await;
        if written.is_err() {
            self.state.apply(undo);
        }
        written
    }
}

#[cfg(test)]
pub(crate) mod tests;
