//! One rollout's drive: observe (command, availability, the answer of the last action) →
//! [`decide`] → store the next state → act, for up to [`MAX_ROUNDS`] decisions in a pass;
//! and performing an action that expects an answer (a write, an analysis, webhooks, a git
//! revert), the answer coming back as an [`Observation`].
//!
//! A drive is a future of its own ([`drive_one`]), run beside the other rollouts' by
//! `schedule`: it reads and writes only through the pass's [`Env`] and hands back what it
//! leaves ([`Driven`]), so no rollout waits for another's reads, writes or analysis.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, SemaphorePermit};
use tracing::{error, info, warn};

use super::analyse::Versions;
use super::batcher::{Batcher, Pending};
use super::health::Health;
use super::ports::{Gate, Ports};
use super::revert::revert_request;
use super::{RevertPusher, RolloutDriverError, Tracked, Work};
use crate::analysis::MetricsProvider;
use crate::gate::GateContext;
use crate::metrics::Metrics;
use crate::notify::{self, Notifications};
use crate::rollout::notice::describe;
use crate::rollout::state::Phase;
use crate::rollout::{
    Action, AnalysisReport, Decision, LiveRoute, Observation, RevertReport, RolloutState,
    WriteReadBack, decide, live_route,
};
use crate::sync;

/// Decisions one rollout may take in one pass before yielding (a chain such as write →
/// read back → settle takes three); the loop wakes again at the rollout's next action.
const MAX_ROUNDS: usize = 24;

/// What a rollout's drive works with: the pass's ports and the driver's parts, shared by
/// every rollout of the pass.
pub(super) struct Env<'a> {
    pub(super) ports: Ports<'a>,
    pub(super) gate: &'a dyn Gate,
    pub(super) revert: &'a dyn RevertPusher,
    pub(super) notifications: Option<&'a Notifications>,
    pub(super) metrics: &'a Metrics,
    /// Prometheus (counted), if configured.
    pub(super) provider: Option<&'a dyn MetricsProvider>,
    pub(super) analysis: &'a Batcher<'a>,
    /// One permit per rollout working at once (`RolloutOptions::concurrency`).
    pub(super) slots: &'a Semaphore,
    /// As many permits, for the reads before a rollout's first decision (the health gate):
    /// apart from `slots`, so a rollout on its way to the analysis never queues behind the
    /// writes of those judged before it, and the wake's batch closes as soon as it can.
    pub(super) reads: &'a Semaphore,
}

/// A rollout's place among those working at once; given up while it waits for its analysis.
pub(super) struct Slot<'s>(Option<SemaphorePermit<'s>>);

impl<'s> Slot<'s> {
    /// No place yet: taken before the rollout's first read or write ([`Slot::acquire`]).
    pub(super) fn none() -> Self {
        Slot(None)
    }

    pub(super) fn release(&mut self) {
        self.0 = None;
    }

    pub(super) async fn acquire(&mut self, slots: &'s Semaphore) {
        if self.0.is_none() {
            // The semaphore is never closed; were it, the rollout would work unbounded.
            self.0 = slots.acquire().await.ok();
        }
    }
}

/// What one rollout's drive leaves: its state (as last stored) and command, when it wants to
/// act next (`None`: finished), and a hand edit it undid, told as text for the status page.
pub(super) struct Driven {
    pub(super) tracked: Tracked,
    pub(super) wake: Option<DateTime<Utc>>,
    pub(super) interfered: Option<String>,
}

/// How a rollout is driven in a pass.
#[derive(Clone, Copy)]
pub(super) struct Drive {
    /// Whether `maxConcurrentRollouts` lets it start now.
    pub(super) admitted: bool,
    /// Whether to compare the route with the watch cache's (the pass's first drive of it:
    /// the cache the work was planned with knows nothing of later writes).
    pub(super) compare_live: bool,
}

/// One rollout's observe → decide → act rounds. A failed read or store is logged, and the
/// rollout comes back in 5 s.
pub(super) async fn drive_one<'e>(
    env: &'e Env<'e>,
    w: &Work,
    tracked: Tracked,
    how: Drive,
    pending: Pending<'e>,
) -> Driven {
    // Deciding is not working either: a slot is taken only around reads and writes, so the
    // rollouts due together come to their analyses at once, whatever the others write.
    let mut slot = Slot::none();
    let mut out = Driven {
        tracked,
        wake: None,
        interfered: None,
    };
    let mut pending = Some(pending);
    if let Err(e) = rounds(env, w, &mut out, how, &mut pending, &mut slot).await {
        error!(rollout = %w.id, error = %e, "rollout step failed; retrying at the next pass");
        out.wake = Some(env.ports.clock.now() + chrono::TimeDelta::seconds(5));
    }
    out
}

async fn rounds<'e>(
    env: &'e Env<'e>,
    w: &Work,
    out: &mut Driven,
    how: Drive,
    pending: &mut Option<Pending<'e>>,
    slot: &mut Slot<'e>,
) -> Result<(), RolloutDriverError> {
    // Once per drive: the gate is read again at the next one, an interval later at most. A
    // finished rollout with nothing new to do is not looked at.
    let tracked = &out.tracked;
    let idle = tracked.state.phase.is_terminal()
        && tracked.command.is_none()
        && w.target
            .as_ref()
            .is_none_or(|t| t.revision == tracked.state.revision);
    let canary = match &w.target {
        // A new target may start a new rollout in this very decision: gate its canary.
        Some(t) if t.revision != tracked.state.revision => t.live.gaining_toward(&t.target),
        Some(_) | None => tracked.state.canary(),
    };
    let health = if idle {
        Health::Available
    } else {
        let mut read = Slot::none();
        read.acquire(env.reads).await;
        env.ports.probe.health(&w.id.namespace, &canary).await
    };
    if let Health::Unavailable(why) = &health {
        warn!(rollout = %w.id, phase = %tracked.state.phase, reason = %why, "the new version is not available; the rollout waits");
    }
    let mut answer = Observation::default();
    for round in 0..MAX_ROUNDS {
        if answer == Observation::default()
            && let Some(action) = out.tracked.state.pending_action().cloned()
        {
            if !matches!(action, Action::Analyse { .. }) {
                *pending = None;
                slot.acquire(env.slots).await;
            }
            let state = &out.tracked.state;
            answer = perform(env, w, state, &action, pending.take(), slot).await;
        }
        let mut obs = answer;
        answer = Observation::default();
        obs.target = w.target.clone();
        obs.command = out.tracked.command.as_ref().map(|m| m.command);
        obs.admitted = how.admitted;
        match &health {
            Health::Available => obs.available = Some(true),
            Health::Unavailable(why) => {
                obs.available = Some(false);
                obs.unavailable = Some(why.clone());
            }
        }
        // Borrowed, not copied: the state as last decided (the history of up to a hundred
        // checks) is replaced by the next one below.
        let state = &out.tracked.state;
        // The cache's route is compared once a pass, before veer writes in it: later
        // rounds would compare veer's own fresh write with a cache not yet told of it.
        if round == 0 && how.compare_live {
            obs.live = cached_route(w, state);
        }
        let now = env.ports.clock.now();
        let Decision {
            action,
            next,
            events,
        } = decide(state, &obs, &w.policy.spec, now);
        // Anything but an analysis: the batch need not wait for this rollout.
        if !matches!(action, Action::Analyse { .. }) {
            *pending = None;
        }
        for event in &events {
            env.on_event(&w.id, state, &next, event);
            if let crate::rollout::Event::Interfered { .. } = event {
                out.interfered = Some(format!(
                    "{} at {}",
                    describe(event),
                    now.format("%H:%M:%S UTC")
                ));
            }
        }
        env.record_metrics(&w.id, state, &next, &w.policy);
        let consumed = out
            .tracked
            .command
            .as_ref()
            .filter(|m| m.command.id <= next.last_command)
            .map(|m| m.text.clone());
        // Stored before acting, so a restarted veer redoes the action it finds pending. An
        // analysis only reads: it is not stored first (one write less per rollout and step,
        // and the batch need not wait for a thousand writes); after a restart the settled
        // check is simply due again. For the same reason a passing check's step ahead is not
        // stored before its write, only once the split is read back (`step_ahead`).
        let reads_only = matches!(action, Action::Analyse { .. });
        let unstored = reads_only || (obs.analysis.is_some() && step_ahead(state, &next, &action));
        let differs = next != **state;
        if (!unstored && differs) || consumed.is_some() {
            slot.acquire(env.slots).await;
            env.ports
                .store
                .store(&w.id, w.policy.name(), &next, consumed.as_deref())
                .await?;
        }
        // Replaced only when it changed: the schedule tells a changed state by its pointer.
        if differs {
            out.tracked.state = Arc::new(next);
        }
        if consumed.is_some() {
            out.tracked.command = None;
        }
        let next = &out.tracked.state;
        match action {
            Action::Wait { until } => {
                out.wake = Some(until);
                return Ok(());
            }
            Action::Done => {
                if next.phase.is_terminal() {
                    env.metrics
                        .set_rollout_phase(&w.id.to_string(), next.phase.as_str());
                }
                out.wake = None;
                return Ok(());
            }
            Action::Alert { event } => {
                error!(rollout = %w.id, event = ?event, "rollout needs attention");
                env.notify(notify::Event::SyncFailed {
                    commit: next.revision.clone(),
                    message: format!("rollout {}: {}", w.id, describe(&event)),
                    objects: vec![w.key.to_string()],
                });
            }
            Action::SetSplit { .. }
            | Action::RunWebhooks { .. }
            | Action::Analyse { .. }
            | Action::Rollback { .. }
            | Action::RevertInGit { .. } => {}
        }
    }
    // Still busy: come back soon rather than loop forever in one pass.
    out.wake = Some(env.ports.clock.now());
    Ok(())
}

/// Whether `next` only takes `before`'s rollout a step ahead on a passing check: a plain
/// split (no overlay before or after) one step further in the same attempt, still
/// progressing. Such a decision need not be stored before its write: what is stored then is
/// the step before, settled and with its check due (the check that passed is never stored
/// first). Were veer restarted between the write and the store that follows its read-back,
/// it would judge that step again and, passing, write the same split again (the apply is
/// idempotent); failing, roll back to the start split as from any step. The rollout owns the
/// same fields either way (the route's weights), so no pass fights the split meanwhile, and
/// no step is skipped or taken backwards. A rollback, a promotion, an overlay, a new commit
/// or a command are stored before acting, as everything else.
fn step_ahead(before: &RolloutState, next: &RolloutState, action: &Action) -> bool {
    matches!(action, Action::SetSplit { overlay: None, .. })
        && before.phase == Phase::Progressing
        && next.phase == Phase::Progressing
        && next.step > before.step
        && next.revision == before.revision
        && before.current_overlay.is_none()
        && next.current_overlay.is_none()
}

/// The rolled-out route as the watch cache has it, when someone other than veer wrote it
/// last. A route veer wrote last is not looked at: the cache may not have seen veer's
/// newest write yet, and an older split of veer's own is no hand edit.
fn cached_route(w: &Work, state: &RolloutState) -> Option<LiveRoute> {
    let object = w.live.as_ref()?;
    let index = crate::rollout::detect::pair_live_route(object, &state.route)?;
    match live_route(object, index, sync::MANAGER) {
        Ok(route) => route.editor.is_some().then_some(route),
        Err(e) => {
            warn!(rollout = %w.id, error = %e, "cannot read the live route's weights");
            None
        }
    }
}

/// Perform an action that expects an answer; the answer as an observation.
async fn perform<'e>(
    env: &'e Env<'e>,
    w: &Work,
    state: &RolloutState,
    action: &Action,
    pending: Option<Pending<'e>>,
    slot: &mut Slot<'e>,
) -> Observation {
    let mut obs = Observation::default();
    match action {
        Action::SetSplit { id, split, overlay } => {
            info!(rollout = %w.id, phase = %state.phase, step = state.step, split = %split, "shifting traffic");
            if let Some(read_back) = env.write_split(w, state, split, overlay.as_ref()).await {
                obs.write = Some(WriteReadBack { id: *id, read_back });
            }
        }
        Action::Rollback { id, to } => {
            warn!(rollout = %w.id, to = %to, "rolling back");
            if let Some(read_back) = env.write_split(w, state, to, None).await {
                obs.write = Some(WriteReadBack { id: *id, read_back });
            }
        }
        Action::Analyse {
            id,
            canary,
            baseline,
            metrics: names,
            ..
        } => {
            let versions = Versions { canary, baseline };
            let now = env.ports.clock.now();
            let checks = env
                .analyse(&w.id, &w.policy, state, versions, names, now, pending, slot)
                .await;
            obs.analysis = Some(AnalysisReport { id: *id, checks });
        }
        Action::RunWebhooks { id, kind } => {
            let context = GateContext {
                name: &w.id.name,
                namespace: &w.id.namespace,
                phase: state.phase,
                checks: None,
            };
            let report = env
                .gate
                .run(*id, *kind, &w.policy.spec.webhooks, &context)
                .await;
            for r in report.results.iter().filter(|r| !r.passed) {
                warn!(rollout = %w.id, webhook = %r.name, kind = kind.as_str(), reason = %r.message, "webhook did not pass");
            }
            obs.webhooks = Some(report);
        }
        Action::RevertInGit { id, revision } => {
            let outcome =
                match revert_request(&w.id, &w.policy, state, revision, env.ports.clock.now()) {
                    Ok(request) => {
                        info!(rollout = %w.id, %revision, "pushing a revert commit");
                        env.revert.revert(request).await.map_err(|e| e.to_string())
                    }
                    Err(e) => Err(e.to_string()),
                };
            if let Err(message) = &outcome {
                error!(rollout = %w.id, error = %message, "no revert pushed");
            }
            obs.revert = Some(RevertReport { id: *id, outcome });
        }
        Action::Wait { .. } | Action::Alert { .. } | Action::Done => {}
    }
    obs
}
