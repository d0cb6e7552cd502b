//! The rollout state machine: `decide(state, observation, policy, now)` → an [`Action`] and
//! the next state. Pure and deterministic; the same inputs give the same decision.
//!
//! Order of a rollout: `Queued` → `WaitingForHealth` → `PreRollout` → `Mirroring` →
//! `Matching` → `FaultTesting` → `Progressing` (one step per step weight) →
//! `AwaitingPromotion` → `Promoting` → `Succeeded`; phases the policy does not ask for are
//! skipped. From any phase before promotion: `RollingBack` → `Failed` on `failedChecks >=
//! threshold`, a missed progress deadline, or `abort`.
//!
//! Rules worth knowing:
//! - Idempotence: answers are matched to the action by id, commands by their id, new commits
//!   by revision; a replayed observation changes nothing.
//! - "Cannot measure" (no data, too few requests, metrics error, inconclusive baseline, new
//!   version unavailable) holds: no failed check, a `Held` event and `lastHold` in the state;
//!   the progress deadline still runs. The policy may turn no data or metrics errors into
//!   failures (`onNoData`, `onMetricsError`), or no data into a pass.
//! - A metric inside its range but significantly worse than the old version
//!   (`WorseThanBaseline`, the policy's `baseline`) is measured bad: a failed check.
//! - Failed checks count over the whole attempt (not consecutively), as in Flagger.
//! - The progress deadline counts from the start of the health gate, of the current step, or
//!   from the last passing check; it does not run while paused, awaiting promotion, promoting
//!   or rolling back.
//! - A hand edit of the route while a step holds its traffic is undone: the step's split is
//!   written again and its settle and analysis start over (data measured at a foreign split
//!   is not judged), with an `Interfered` event naming the editor.
//! - A new commit mid-rollout restarts toward the new target from the live split; a rollback
//!   still restores the split from before the first rollout. During a rollback a new commit
//!   waits until the rollback is done; after a failure only a new commit or `retry` starts
//!   again.
//!
//! This file holds [`decide`], the machine's shared moves (entering a phase, issuing an
//! action, matching answers to it) and the phase order; `commands` applies operator commands
//! and new commits, `phases` runs each phase, `checks` judges a round of checks.

mod checks;
mod commands;
mod interference;
mod phases;

use chrono::{DateTime, TimeDelta, Utc};

use super::cadence::next_due;
use super::split::TrafficSplit;
use super::state::{Event, FailureReason, Phase, RolloutState, Stage};
use super::{Action, AnalysisReport, Observation, WebhookReport};
use crate::manifest::rollout_policy::{RolloutPolicySpec, WebhookKind};

/// A decision: what to do, the state to store (before doing it), and what happened. `events`
/// feed status, logs and metrics; an [`Action::Alert`] asks for people to be told (its event
/// is among the events too).
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub action: Action,
    pub next: RolloutState,
    pub events: Vec<Event>,
}

/// Transitions one decision may chain (e.g. health gate passed → first write). Far above
/// any real chain; a guard against a bug looping forever.
const MAX_TRANSITIONS: usize = 32;

/// Decide what to do next. See the module header for the rules.
pub fn decide(
    state: &RolloutState,
    observation: &Observation,
    policy: &RolloutPolicySpec,
    now: DateTime<Utc>,
) -> Decision {
    let timings = policy.timings();
    let mut m = Machine {
        s: state.clone(),
        events: Vec::new(),
        policy,
        now,
        interval: TimeDelta::from_std(timings.interval).unwrap_or(TimeDelta::minutes(1)),
        deadline: TimeDelta::from_std(timings.progress_deadline).unwrap_or(TimeDelta::minutes(10)),
    };
    let action = m.run(observation);
    Decision {
        action,
        next: m.s,
        events: m.events,
    }
}

struct Machine<'p> {
    s: RolloutState,
    events: Vec<Event>,
    policy: &'p RolloutPolicySpec,
    now: DateTime<Utc>,
    interval: TimeDelta,
    deadline: TimeDelta,
}

/// Phases in order; each is entered only if the policy asks for it.
const ORDER: &[Phase] = &[
    Phase::WaitingForHealth,
    Phase::PreRollout,
    Phase::Mirroring,
    Phase::Matching,
    Phase::FaultTesting,
    Phase::Progressing,
    Phase::AwaitingPromotion,
    Phase::Promoting,
];

impl Machine<'_> {
    fn run(&mut self, obs: &Observation) -> Action {
        self.command(obs);
        self.new_target(obs);
        self.interference(obs);
        for _ in 0..MAX_TRANSITIONS {
            if let Some(action) = self.step(obs) {
                return action;
            }
        }
        self.wait(self.now + self.interval)
    }

    fn wait(&self, until: DateTime<Utc>) -> Action {
        Action::Wait { until }
    }

    fn later(&self) -> DateTime<Utc> {
        self.now + self.interval
    }

    fn enter(&mut self, phase: Phase) {
        if phase != self.s.phase {
            self.events.push(Event::PhaseChanged {
                from: self.s.phase,
                to: phase,
            });
        }
        self.s.phase = phase;
        self.s.stage = Stage::Start;
        self.s.phase_started_at = self.now;
        self.s.step_started_at = self.now;
        self.s.iterations = 0;
        self.s.last_hold = None;
        self.s.cadence = None;
    }

    /// Issue an action that expects an answer, and move to the stage that awaits it.
    fn issue(&mut self, stage: Stage, make: impl FnOnce(u64) -> Action) -> Option<Action> {
        self.s.seq += 1;
        let action = make(self.s.seq);
        self.s.last_action = Some(action.clone());
        self.s.stage = stage;
        Some(action)
    }

    fn rollback(&mut self, reason: FailureReason) {
        self.events.push(Event::RollingBack {
            reason: reason.clone(),
        });
        self.s.failure = Some(reason);
        self.s.resume = None;
        self.enter(Phase::RollingBack);
    }

    fn applies(&self, phase: Phase) -> bool {
        match phase {
            Phase::WaitingForHealth | Phase::AwaitingPromotion | Phase::Promoting => true,
            Phase::PreRollout => self.policy.has_webhooks(WebhookKind::PreRollout),
            Phase::Mirroring => self.policy.mirror.is_some() && !self.s.canary().is_empty(),
            Phase::Matching => self.policy.matching.is_some() && !self.s.canary().is_empty(),
            Phase::FaultTesting => self.policy.fault.is_some() && !self.s.canary().is_empty(),
            Phase::Progressing => !self.s.steps.is_empty(),
            Phase::Queued
            | Phase::Paused
            | Phase::Succeeded
            | Phase::RollingBack
            | Phase::Failed => false,
        }
    }

    /// The phase after `phase` in [`ORDER`] that the policy asks for.
    fn after(&self, phase: Phase) -> Phase {
        let at = ORDER.iter().position(|p| *p == phase);
        ORDER
            .iter()
            .skip(at.map_or(0, |i| i + 1))
            .copied()
            .find(|p| self.applies(*p))
            .unwrap_or(Phase::Promoting)
    }

    /// The answer to the pending action, if `obs` carries it.
    fn webhook_answer<'o>(&self, obs: &'o Observation) -> Option<&'o WebhookReport> {
        obs.webhooks.as_ref().filter(|r| r.id == self.s.seq)
    }

    fn analysis_answer<'o>(&self, obs: &'o Observation) -> Option<&'o AnalysisReport> {
        obs.analysis.as_ref().filter(|r| r.id == self.s.seq)
    }

    fn write_answer<'o>(&self, obs: &'o Observation) -> Option<&'o TrafficSplit> {
        obs.write
            .as_ref()
            .filter(|w| w.id == self.s.seq)
            .map(|w| &w.read_back)
    }

    /// Settling or backing off: `None` (go on) once due, else wait.
    fn when_due(&mut self, until: DateTime<Utc>, then: Stage) -> Option<Action> {
        if self.now >= until {
            self.s.stage = then;
            None
        } else {
            Some(self.wait(until))
        }
    }

    /// Settling or awaiting a gate: once `until` is due the next check is issued, and the
    /// one after it keeps this one's cadence (`cadence`).
    fn settled(&mut self, until: DateTime<Utc>) -> Option<Action> {
        let waiting = self.when_due(until, Stage::Start);
        if waiting.is_none() {
            self.s.cadence = Some(until);
        }
        waiting
    }

    /// Traffic in place (or a check judged): the next check is due on the interval's grid
    /// (`cadence::next_due`).
    fn settle(&mut self) {
        self.s.stage = Stage::Settling {
            until: next_due(self.s.cadence, self.now, self.interval),
        };
    }
}
