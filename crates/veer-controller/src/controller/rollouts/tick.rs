//! One rollout's tick: observe (command, availability, the answer of the last action) →
//! [`decide`] → store the next state → act, for up to [`MAX_ROUNDS`] decisions in a pass;
//! and performing an action that expects an answer (a write, an analysis, webhooks, a git
//! revert), the answer coming back as an [`Observation`].

use tracing::{error, info, warn};

use super::analyse::Versions;
use super::health::Health;
use super::ports::Ports;
use super::revert::revert_request;
use super::{RolloutDriver, RolloutDriverError, Work};
use crate::gate::GateContext;
use crate::notify;
use crate::rollout::notice::describe;
use crate::rollout::{
    Action, AnalysisReport, LiveRoute, Observation, RevertReport, RolloutState, WriteReadBack,
    decide, live_route,
};
use crate::sync;

/// Decisions one rollout may take in one pass before yielding (a chain such as write →
/// read back → settle takes three); the loop wakes again at the rollout's next action.
const MAX_ROUNDS: usize = 24;

impl RolloutDriver {
    pub(super) async fn drive_one(
        &mut self,
        ports: &Ports<'_>,
        w: &Work,
    ) -> Result<(), RolloutDriverError> {
        let command = ports.store.read_command(&w.id).await?;
        if let Some(t) = self.rollouts.get_mut(&w.id) {
            t.command = command;
        }
        // Once per pass: the gate is re-read at the next pass, an interval later at most. A
        // finished rollout with nothing new to do is not looked at.
        let Some(tracked) = self.rollouts.get(&w.id) else {
            return Ok(());
        };
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
            ports.probe.health(&w.id.namespace, &canary).await
        };
        if let Health::Unavailable(why) = &health {
            warn!(rollout = %w.id, phase = %tracked.state.phase, reason = %why, "the new version is not available; the rollout waits");
        }
        let mut answer = Observation::default();
        for round in 0..MAX_ROUNDS {
            let Some(tracked) = self.rollouts.get(&w.id) else {
                return Ok(());
            };
            let state = tracked.state.clone();
            if answer == Observation::default()
                && let Some(action) = state.pending_action().cloned()
            {
                answer = self.perform(ports, w, &state, &action).await;
            }
            let mut obs = answer;
            answer = Observation::default();
            obs.target = w.target.clone();
            obs.command = tracked.command.as_ref().map(|m| m.command);
            obs.admitted = self.admitted(&w.id);
            match &health {
                Health::Available => obs.available = Some(true),
                Health::Unavailable(why) => {
                    obs.available = Some(false);
                    obs.unavailable = Some(why.clone());
                }
            }
            // The cache's route is compared once a pass, before veer writes in it: later
            // rounds would compare veer's own fresh write with a cache not yet told of it.
            if round == 0 {
                obs.live = self.live_route(w, &state);
            }
            let now = ports.clock.now();
            let decision = decide(&state, &obs, &w.policy.spec, now);
            for event in &decision.events {
                self.on_event(&w.id, &state, &decision.next, event);
                if let crate::rollout::Event::Interfered { .. } = event {
                    let text = format!("{} at {}", describe(event), now.format("%H:%M:%S UTC"));
                    self.interfered.insert(w.id.clone(), text);
                }
            }
            self.record_metrics(&w.id, &state, &decision.next, &w.policy);
            let consumed = tracked
                .command
                .as_ref()
                .filter(|m| m.command.id <= decision.next.last_command)
                .map(|m| m.text.clone());
            if decision.next != state || consumed.is_some() {
                self.store(ports, &w.id, &w.policy, &decision.next, consumed.as_deref())
                    .await?;
            }
            if let Some(t) = self.rollouts.get_mut(&w.id) {
                t.state = decision.next.clone();
                if consumed.is_some() {
                    t.command = None;
                }
            }
            match decision.action {
                Action::Wait { until } => {
                    self.wake_at(until);
                    return Ok(());
                }
                Action::Done => {
                    if decision.next.phase.is_terminal() {
                        self.metrics
                            .set_rollout_phase(&w.id.to_string(), decision.next.phase.as_str());
                    }
                    return Ok(());
                }
                Action::Alert { event } => {
                    error!(rollout = %w.id, event = ?event, "rollout needs attention");
                    self.notify(notify::Event::SyncFailed {
                        commit: decision.next.revision.clone(),
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
        self.wake_at(ports.clock.now());
        Ok(())
    }

    /// The rolled-out route as the watch cache has it, when someone other than veer wrote it
    /// last. A route veer wrote last is not looked at: the cache may not have seen veer's
    /// newest write yet, and an older split of veer's own is no hand edit.
    fn live_route(&self, w: &Work, state: &RolloutState) -> Option<LiveRoute> {
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
    async fn perform(
        &self,
        ports: &Ports<'_>,
        w: &Work,
        state: &RolloutState,
        action: &Action,
    ) -> Observation {
        let mut obs = Observation::default();
        match action {
            Action::SetSplit { id, split, overlay } => {
                info!(rollout = %w.id, phase = %state.phase, step = state.step, split = %split, "shifting traffic");
                if let Some(read_back) = self
                    .write_split(ports, w, state, split, overlay.as_ref())
                    .await
                {
                    obs.write = Some(WriteReadBack { id: *id, read_back });
                }
            }
            Action::Rollback { id, to } => {
                warn!(rollout = %w.id, to = %to, "rolling back");
                if let Some(read_back) = self.write_split(ports, w, state, to, None).await {
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
                let checks = self
                    .analyse(&w.id, &w.policy, state, versions, names, ports.clock.now())
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
                let report = self
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
                    match revert_request(&w.id, &w.policy, state, revision, ports.clock.now()) {
                        Ok(request) => {
                            info!(rollout = %w.id, %revision, "pushing a revert commit");
                            self.revert.revert(request).await.map_err(|e| e.to_string())
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
}
