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
//! - A new commit mid-rollout restarts toward the new target from the live split; a rollback
//!   still restores the split from before the first rollout. During a rollback a new commit
//!   waits until the rollback is done; after a failure only a new commit or `retry` starts
//!   again.

use chrono::{DateTime, TimeDelta, Utc};

use super::split::{TrafficSplit, split_at};
use super::state::{
    self, CheckOutcome, CheckRecord, Event, FailureReason, HoldReason, Phase, Resume, RolloutState,
    Stage,
};
use super::{
    Action, AnalysisReport, AnalysisVerdict, Command, Observation, Overlay, WebhookReport,
};
use crate::manifest::rollout_policy::{OnMetricsError, OnNoData, RolloutPolicySpec, WebhookKind};

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

/// How one round of checks came out.
enum Round {
    Pass,
    Fail(Vec<String>),
    Hold(HoldReason),
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

    // -- operator commands and new commits --------------------------------------------------

    fn command(&mut self, obs: &Observation) {
        let Some(c) = obs.command else { return };
        if c.id <= self.s.last_command {
            return;
        }
        self.s.last_command = c.id;
        let phase = self.s.phase;
        let before_promotion = match phase {
            Phase::Queued
            | Phase::WaitingForHealth
            | Phase::PreRollout
            | Phase::Mirroring
            | Phase::Matching
            | Phase::FaultTesting
            | Phase::Progressing
            | Phase::AwaitingPromotion => true,
            Phase::Paused
            | Phase::Promoting
            | Phase::Succeeded
            | Phase::RollingBack
            | Phase::Failed => false,
        };
        let applied = match c.command {
            Command::Pause if before_promotion => {
                self.s.resume = Some(Resume { phase });
                self.events.push(Event::PhaseChanged {
                    from: phase,
                    to: Phase::Paused,
                });
                self.s.phase = Phase::Paused;
                self.s.stage = Stage::Start;
                true
            }
            Command::Resume if phase == Phase::Paused => {
                let to = self
                    .s
                    .resume
                    .take()
                    .map_or(Phase::WaitingForHealth, |r| r.phase);
                self.events.push(Event::PhaseChanged { from: phase, to });
                // Back to the start of the phase (rewriting the current step's traffic, which
                // is idempotent), keeping its passed iterations; the deadline restarts.
                self.s.phase = to;
                self.s.stage = Stage::Start;
                self.s.step_started_at = self.now;
                true
            }
            Command::Promote if before_promotion || phase == Phase::Paused => {
                self.s.resume = None;
                self.enter(Phase::Promoting);
                true
            }
            Command::Abort if before_promotion || phase == Phase::Paused => {
                self.rollback(FailureReason::Aborted);
                true
            }
            Command::Retry if phase == Phase::Failed => {
                let from = self.s.start_split.clone();
                let target = self.s.target_split.clone();
                self.restart_attempt(&from, &target);
                self.enter(Phase::Queued);
                true
            }
            Command::Pause
            | Command::Resume
            | Command::Promote
            | Command::Abort
            | Command::Retry => false,
        };
        self.events.push(if applied {
            Event::CommandApplied { command: c.command }
        } else {
            Event::CommandIgnored {
                command: c.command,
                phase,
            }
        });
    }

    /// Reset the attempt to go from `from` to `target`, keeping the pre-rollout split.
    fn restart_attempt(&mut self, from: &TrafficSplit, target: &TrafficSplit) {
        let from = from.extended(target).extended(&self.s.start_split);
        let target = target.extended(&from);
        self.s.start_split = self.s.start_split.extended(&target);
        self.s.steps = state::plan(&from, &target, self.policy);
        self.s.from_split = from.clone();
        self.s.current_split = from.clone();
        self.s.target_split = target.clone();
        self.s.step = 0;
        self.s.iterations = 0;
        self.s.failed_checks = 0;
        self.s.last_hold = None;
        self.s.failure = None;
        self.s.revert_commit = None;
        self.events.push(Event::Restarted {
            revision: self.s.revision.clone(),
            from,
            target,
        });
    }

    fn new_target(&mut self, obs: &Observation) {
        let Some(t) = &obs.target else { return };
        if t.revision == self.s.revision {
            return;
        }
        let nothing_to_shift = t.target.same_traffic(&t.live);
        match self.s.phase {
            // Finish restoring first; the next decision after `Failed` takes the new commit.
            Phase::RollingBack => {}
            Phase::Succeeded | Phase::Failed if nothing_to_shift => {
                // Git now says what live is (e.g. veer's own revert commit): adopt it.
                self.s.revision = t.revision.clone();
                self.s.target_split = t.target.extended(&t.live);
            }
            Phase::Succeeded | Phase::Failed => {
                let mut fresh = RolloutState::new(
                    t.revision.clone(),
                    self.s.route.clone(),
                    &t.live,
                    &t.target,
                    self.policy,
                    self.now,
                );
                // Ids keep increasing across rollouts of the route, so no old answer or
                // command can be mistaken for a new one.
                fresh.seq = self.s.seq;
                fresh.last_command = self.s.last_command;
                fresh.history = std::mem::take(&mut self.s.history);
                self.events.push(Event::Restarted {
                    revision: fresh.revision.clone(),
                    from: fresh.from_split.clone(),
                    target: fresh.target_split.clone(),
                });
                self.events.push(Event::PhaseChanged {
                    from: self.s.phase,
                    to: Phase::Queued,
                });
                self.s = fresh;
            }
            Phase::Queued
            | Phase::WaitingForHealth
            | Phase::PreRollout
            | Phase::Mirroring
            | Phase::Matching
            | Phase::FaultTesting
            | Phase::Progressing
            | Phase::Paused
            | Phase::AwaitingPromotion
            | Phase::Promoting => {
                self.s.revision = t.revision.clone();
                self.restart_attempt(&t.live, &t.target);
                let next = if nothing_to_shift {
                    Phase::Promoting
                } else {
                    Phase::WaitingForHealth
                };
                match self.s.phase {
                    Phase::Queued => {}
                    Phase::Paused => self.s.resume = Some(Resume { phase: next }),
                    Phase::WaitingForHealth
                    | Phase::PreRollout
                    | Phase::Mirroring
                    | Phase::Matching
                    | Phase::FaultTesting
                    | Phase::Progressing
                    | Phase::AwaitingPromotion
                    | Phase::Promoting
                    | Phase::Succeeded
                    | Phase::RollingBack
                    | Phase::Failed => self.enter(next),
                }
            }
        }
    }

    // -- phases -----------------------------------------------------------------------------

    fn step(&mut self, obs: &Observation) -> Option<Action> {
        if self.s.phase.has_deadline() && self.now >= self.s.step_started_at + self.deadline {
            self.rollback(FailureReason::ProgressDeadline {
                phase: self.s.phase,
            });
            return None;
        }
        match self.s.phase {
            Phase::Queued => {
                if obs.admitted {
                    self.enter(Phase::WaitingForHealth);
                    None
                } else {
                    Some(self.wait(self.later()))
                }
            }
            Phase::WaitingForHealth => {
                if obs.available == Some(true) {
                    let next = self.after(Phase::WaitingForHealth);
                    self.enter(next);
                    None
                } else {
                    let deadline = self.s.step_started_at + self.deadline;
                    Some(self.wait(self.later().min(deadline)))
                }
            }
            Phase::PreRollout => self.pre_rollout(obs),
            Phase::Mirroring | Phase::Matching | Phase::FaultTesting | Phase::Progressing => {
                self.traffic_phase(obs)
            }
            Phase::Paused => Some(self.wait(self.later())),
            Phase::AwaitingPromotion => self.awaiting_promotion(obs),
            Phase::Promoting => self.promoting(obs),
            Phase::RollingBack => self.rolling_back(obs),
            Phase::Succeeded | Phase::Failed => Some(Action::Done),
        }
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

    fn settle(&mut self) {
        self.s.stage = Stage::Settling {
            until: self.later(),
        };
    }

    /// Record webhook results; the names of those that failed.
    fn webhook_failures(&mut self, kind: WebhookKind, report: &WebhookReport) -> Vec<String> {
        let mut failed = Vec::new();
        for r in &report.results {
            let (verdict, outcome) = if r.passed {
                (AnalysisVerdict::Pass, CheckOutcome::Passed)
            } else {
                failed.push(format!("webhook/{}", r.name));
                self.events.push(Event::WebhookFailed {
                    kind,
                    name: r.name.clone(),
                    message: r.message.clone(),
                });
                (
                    AnalysisVerdict::Fail {
                        value: 0.0,
                        min: None,
                        max: None,
                    },
                    CheckOutcome::Failed,
                )
            };
            self.s.record(CheckRecord {
                at: self.now,
                phase: self.s.phase,
                step: self.s.step,
                check: format!("webhook/{}", r.name),
                query: String::new(),
                value: None,
                threshold: String::new(),
                verdict,
                message: r.message.clone(),
                outcome,
                baseline: None,
            });
        }
        failed
    }

    /// Count a failed check; roll back at the threshold. True if rolling back.
    fn failed_check(&mut self, checks: Vec<String>) -> bool {
        self.s.failed_checks += 1;
        self.s.last_hold = None;
        let threshold = self.policy.threshold();
        self.events.push(Event::CheckFailed {
            failed_checks: self.s.failed_checks,
            threshold,
            checks,
        });
        if self.s.failed_checks >= threshold {
            self.rollback(FailureReason::FailedChecks {
                failed: self.s.failed_checks,
                threshold,
            });
            true
        } else {
            self.settle();
            false
        }
    }

    fn hold(&mut self, reason: HoldReason) {
        self.events.push(Event::Held {
            reason: reason.clone(),
        });
        self.s.last_hold = Some(reason);
        self.settle();
    }

    fn pre_rollout(&mut self, obs: &Observation) -> Option<Action> {
        match self.s.stage {
            Stage::Start => self.issue(Stage::Webhooks, |id| Action::RunWebhooks {
                id,
                kind: WebhookKind::PreRollout,
            }),
            Stage::Webhooks => {
                let Some(report) = self.webhook_answer(obs) else {
                    return Some(self.wait(self.later()));
                };
                let failed = self.webhook_failures(WebhookKind::PreRollout, report);
                if failed.is_empty() {
                    let next = self.after(Phase::PreRollout);
                    self.enter(next);
                } else {
                    self.failed_check(failed);
                }
                None
            }
            Stage::Settling { until } => self.when_due(until, Stage::Start),
            Stage::Writing | Stage::Analysing | Stage::Reverting | Stage::Backoff { .. } => {
                self.s.stage = Stage::Start;
                None
            }
        }
    }

    /// The traffic of the current phase (and step).
    fn traffic(&self) -> (TrafficSplit, Option<Overlay>) {
        let s = &self.s;
        let canary = s.canary();
        let at = |x: u32| split_at(&s.from_split, &s.target_split, x);
        match s.phase {
            Phase::Mirroring => (
                s.from_split.clone(),
                self.policy.mirror.as_ref().map(|m| Overlay::Mirror {
                    to: canary.clone(),
                    percent: m.weight,
                }),
            ),
            Phase::Matching => (
                s.from_split.clone(),
                self.policy.matching.as_ref().map(|m| Overlay::Match {
                    to: canary.clone(),
                    headers: m.headers.clone(),
                    cookie: m.cookie.clone(),
                }),
            ),
            // At the first step's weight: some real traffic, the least there will be.
            Phase::FaultTesting => (
                match s.steps.first() {
                    Some(x) => at(*x),
                    None => s.from_split.clone(),
                },
                self.policy.fault.as_ref().map(|f| Overlay::Fault {
                    on: canary.clone(),
                    delay: f.delay.clone(),
                    abort: f.abort,
                    percent: f.percent,
                }),
            ),
            Phase::Progressing => match s.steps.get(s.step) {
                Some(x) => (at(*x), None),
                None => (s.current_split.clone(), None),
            },
            Phase::Queued
            | Phase::WaitingForHealth
            | Phase::PreRollout
            | Phase::Paused
            | Phase::AwaitingPromotion
            | Phase::Promoting
            | Phase::Succeeded
            | Phase::RollingBack
            | Phase::Failed => (s.current_split.clone(), None),
        }
    }

    fn iterations_required(&self) -> u32 {
        let n = match self.s.phase {
            Phase::Mirroring => self.policy.mirror.as_ref().map_or(1, |m| m.iterations),
            Phase::Matching => self.policy.matching.as_ref().map_or(1, |m| m.iterations),
            Phase::FaultTesting => self.policy.fault.as_ref().map_or(1, |f| f.iterations),
            Phase::Queued
            | Phase::WaitingForHealth
            | Phase::PreRollout
            | Phase::Progressing
            | Phase::Paused
            | Phase::AwaitingPromotion
            | Phase::Promoting
            | Phase::Succeeded
            | Phase::RollingBack
            | Phase::Failed => 1,
        };
        n.max(1)
    }

    fn traffic_phase(&mut self, obs: &Observation) -> Option<Action> {
        let (split, overlay) = self.traffic();
        match self.s.stage {
            Stage::Start => {
                self.issue(Stage::Writing, |id| Action::SetSplit { id, split, overlay })
            }
            Stage::Writing => {
                let Some(read) = self.write_answer(obs).cloned() else {
                    return Some(self.wait(self.later()));
                };
                if read.same_traffic(&split) {
                    if self.s.phase == Phase::Progressing && self.s.current_split != split {
                        self.events.push(Event::StepAdvanced {
                            step: self.s.step,
                            split: split.clone(),
                        });
                    }
                    self.s.current_split = split;
                    self.s.current_overlay = overlay;
                    self.settle();
                    None
                } else {
                    let event = Event::WriteNotReadBack {
                        expected: split,
                        read,
                    };
                    self.events.push(event.clone());
                    self.s.stage = Stage::Backoff {
                        until: self.later(),
                    };
                    Some(Action::Alert { event })
                }
            }
            Stage::Backoff { until } => self.when_due(until, Stage::Start),
            Stage::Settling { until } => {
                if self.now < until {
                    return Some(self.wait(until));
                }
                if obs.available == Some(false) {
                    self.hold(HoldReason::Unavailable);
                    return None;
                }
                if self.policy.has_webhooks(WebhookKind::Rollout) {
                    self.issue(Stage::Webhooks, |id| Action::RunWebhooks {
                        id,
                        kind: WebhookKind::Rollout,
                    })
                } else {
                    self.analyse()
                }
            }
            Stage::Webhooks => {
                let Some(report) = self.webhook_answer(obs) else {
                    return Some(self.wait(self.later()));
                };
                let failed = self.webhook_failures(WebhookKind::Rollout, report);
                if failed.is_empty() {
                    self.analyse()
                } else {
                    self.failed_check(failed);
                    None
                }
            }
            Stage::Analysing => {
                let Some(report) = self.analysis_answer(obs) else {
                    return Some(self.wait(self.later()));
                };
                match self.evaluate(report) {
                    Round::Pass => self.passed(),
                    Round::Fail(checks) => {
                        self.failed_check(checks);
                    }
                    Round::Hold(reason) => self.hold(reason),
                }
                None
            }
            Stage::Reverting => {
                self.s.stage = Stage::Start;
                None
            }
        }
    }

    fn analyse(&mut self) -> Option<Action> {
        if self.policy.metrics.is_empty() {
            // Nothing to measure: the health gate and webhooks are the only checks.
            self.passed();
            return None;
        }
        let canary = self.s.canary();
        let baseline = self.s.target_split.gaining_toward(&self.s.from_split);
        let metrics = self.policy.metrics.iter().map(|m| m.name.clone()).collect();
        let step = self.s.step;
        self.issue(Stage::Analysing, |id| Action::Analyse {
            id,
            step,
            metrics,
            canary,
            baseline,
        })
    }

    fn evaluate(&mut self, report: &AnalysisReport) -> Round {
        let mut checks: Vec<super::Check> = report.checks.clone();
        for m in &self.policy.metrics {
            if !checks.iter().any(|c| c.metric == m.name) {
                checks.push(super::Check {
                    metric: m.name.clone(),
                    query: String::new(),
                    value: None,
                    threshold: m.threshold_range,
                    requests: None,
                    verdict: AnalysisVerdict::MetricsError {
                        kind: super::MetricsErrorKind::QueryError,
                        reason: "the analysis returned no result for this metric".to_string(),
                    },
                    baseline: None,
                });
            }
        }
        let mut failed = Vec::new();
        let mut held = None;
        for c in checks {
            let (outcome, hold) = match &c.verdict {
                AnalysisVerdict::Pass => (CheckOutcome::Passed, None),
                AnalysisVerdict::Fail { .. } | AnalysisVerdict::WorseThanBaseline { .. } => {
                    (CheckOutcome::Failed, None)
                }
                AnalysisVerdict::NoData => match self.policy.on_no_data {
                    OnNoData::Hold => (
                        CheckOutcome::Held,
                        Some(HoldReason::NoData {
                            metric: c.metric.clone(),
                        }),
                    ),
                    OnNoData::Fail => (CheckOutcome::Failed, None),
                    OnNoData::Pass => (CheckOutcome::Passed, None),
                },
                AnalysisVerdict::TooFewRequests { count, min } => (
                    CheckOutcome::Held,
                    Some(HoldReason::TooFewRequests {
                        metric: c.metric.clone(),
                        count: count.max(0.0).round() as u64,
                        min: min.to_owned(),
                    }),
                ),
                AnalysisVerdict::MetricsError { kind, reason } => {
                    match self.policy.on_metrics_error {
                        OnMetricsError::Hold => (
                            CheckOutcome::Held,
                            Some(HoldReason::MetricsError {
                                metric: c.metric.clone(),
                                message: format!("{kind}: {reason}"),
                            }),
                        ),
                        OnMetricsError::Fail => (CheckOutcome::Failed, None),
                    }
                }
                AnalysisVerdict::Inconclusive => (
                    CheckOutcome::Held,
                    Some(HoldReason::Inconclusive {
                        metric: c.metric.clone(),
                    }),
                ),
            };
            match outcome {
                CheckOutcome::Failed => failed.push(c.metric.clone()),
                CheckOutcome::Held => {
                    if held.is_none() {
                        held = hold;
                    }
                }
                CheckOutcome::Passed => {}
            }
            self.s.record(CheckRecord {
                at: self.now,
                phase: self.s.phase,
                step: self.s.step,
                check: c.metric,
                query: c.query,
                value: c.value,
                threshold: c.threshold.to_string(),
                message: match &c.verdict {
                    AnalysisVerdict::MetricsError { kind, reason } => format!("{kind}: {reason}"),
                    // A baseline verdict (why it was inconclusive, its p-value) is in
                    // `baseline`, shown with the record.
                    AnalysisVerdict::Pass
                    | AnalysisVerdict::Fail { .. }
                    | AnalysisVerdict::NoData
                    | AnalysisVerdict::TooFewRequests { .. }
                    | AnalysisVerdict::WorseThanBaseline { .. }
                    | AnalysisVerdict::Inconclusive => String::new(),
                },
                verdict: c.verdict,
                outcome,
                baseline: c.baseline,
            });
        }
        if !failed.is_empty() {
            Round::Fail(failed)
        } else if let Some(reason) = held {
            Round::Hold(reason)
        } else {
            Round::Pass
        }
    }

    /// A round passed: count it; move on when the phase (or step) has enough.
    fn passed(&mut self) {
        self.s.iterations += 1;
        self.s.last_hold = None;
        self.events.push(Event::CheckPassed {
            phase: self.s.phase,
            step: self.s.step,
        });
        if self.s.iterations < self.iterations_required() {
            // Progress: the deadline is for getting stuck, not for a phase's length.
            self.s.step_started_at = self.now;
            self.settle();
        } else if self.s.phase == Phase::Progressing && self.s.step + 1 < self.s.steps.len() {
            self.s.step += 1;
            self.s.iterations = 0;
            self.s.stage = Stage::Start;
            self.s.step_started_at = self.now;
        } else {
            let next = self.after(self.s.phase);
            self.enter(next);
        }
    }

    fn awaiting_promotion(&mut self, obs: &Observation) -> Option<Action> {
        if !self.policy.has_webhooks(WebhookKind::ConfirmPromotion) {
            self.enter(Phase::Promoting);
            return None;
        }
        match self.s.stage {
            Stage::Start => self.issue(Stage::Webhooks, |id| Action::RunWebhooks {
                id,
                kind: WebhookKind::ConfirmPromotion,
            }),
            Stage::Webhooks => {
                let Some(report) = self.webhook_answer(obs) else {
                    return Some(self.wait(self.later()));
                };
                let waiting = report.results.iter().find(|r| !r.passed).cloned();
                match waiting {
                    None => self.enter(Phase::Promoting),
                    // A gate, not a verdict: wait and ask again.
                    Some(r) => self.hold(HoldReason::AwaitingConfirmation { webhook: r.name }),
                }
                None
            }
            Stage::Settling { until } => self.when_due(until, Stage::Start),
            Stage::Writing | Stage::Analysing | Stage::Reverting | Stage::Backoff { .. } => {
                self.s.stage = Stage::Start;
                None
            }
        }
    }

    fn promoting(&mut self, obs: &Observation) -> Option<Action> {
        let target = self.s.target_split.clone();
        match self.s.stage {
            Stage::Start => self.issue(Stage::Writing, |id| Action::SetSplit {
                id,
                split: target,
                overlay: None,
            }),
            Stage::Writing => {
                let Some(read) = self.write_answer(obs).cloned() else {
                    return Some(self.wait(self.later()));
                };
                if !read.same_traffic(&target) {
                    let event = Event::WriteNotReadBack {
                        expected: target,
                        read,
                    };
                    self.events.push(event.clone());
                    self.s.stage = Stage::Backoff {
                        until: self.later(),
                    };
                    return Some(Action::Alert { event });
                }
                self.s.current_split = target.clone();
                self.s.current_overlay = None;
                self.events.push(Event::Promoted { split: target });
                if self.policy.has_webhooks(WebhookKind::PostRollout) {
                    self.issue(Stage::Webhooks, |id| Action::RunWebhooks {
                        id,
                        kind: WebhookKind::PostRollout,
                    })
                } else {
                    self.enter(Phase::Succeeded);
                    None
                }
            }
            Stage::Webhooks => {
                let Some(report) = self.webhook_answer(obs) else {
                    return Some(self.wait(self.later()));
                };
                // Reported only: the new version is already live.
                self.webhook_failures(WebhookKind::PostRollout, report);
                self.enter(Phase::Succeeded);
                None
            }
            Stage::Backoff { until } => self.when_due(until, Stage::Start),
            Stage::Settling { .. } | Stage::Analysing | Stage::Reverting => {
                self.s.stage = Stage::Start;
                None
            }
        }
    }

    fn rolling_back(&mut self, obs: &Observation) -> Option<Action> {
        let to = self.s.start_split.clone();
        match self.s.stage {
            Stage::Start => self.issue(Stage::Writing, |id| Action::Rollback { id, to }),
            Stage::Writing => {
                let Some(read) = self.write_answer(obs).cloned() else {
                    return Some(self.wait(self.later()));
                };
                if !read.same_traffic(&to) {
                    // Every write that matters is read back: a rollback that did not restore
                    // the split is an alert, and is tried again.
                    let event = Event::RollbackNotRestored { expected: to, read };
                    self.events.push(event.clone());
                    self.s.stage = Stage::Backoff {
                        until: self.later(),
                    };
                    return Some(Action::Alert { event });
                }
                self.s.current_split = to.clone();
                self.s.current_overlay = None;
                self.events.push(Event::RolledBack { split: to });
                if self.policy.has_webhooks(WebhookKind::Rollback) {
                    self.issue(Stage::Webhooks, |id| Action::RunWebhooks {
                        id,
                        kind: WebhookKind::Rollback,
                    })
                } else {
                    self.after_rollback()
                }
            }
            Stage::Webhooks => {
                let Some(report) = self.webhook_answer(obs) else {
                    return Some(self.wait(self.later()));
                };
                self.webhook_failures(WebhookKind::Rollback, report);
                self.after_rollback()
            }
            Stage::Reverting => {
                let Some(report) = obs.revert.as_ref().filter(|r| r.id == self.s.seq) else {
                    return Some(self.wait(self.later()));
                };
                match &report.outcome {
                    Ok(commit) => {
                        self.s.revert_commit = Some(commit.clone());
                        self.events.push(Event::Reverted {
                            commit: commit.clone(),
                        });
                        self.enter(Phase::Failed);
                        None
                    }
                    Err(message) => {
                        let event = Event::RevertFailed {
                            message: message.clone(),
                        };
                        self.events.push(event.clone());
                        self.enter(Phase::Failed);
                        Some(Action::Alert { event })
                    }
                }
            }
            Stage::Backoff { until } => self.when_due(until, Stage::Start),
            Stage::Settling { .. } | Stage::Analysing => {
                self.s.stage = Stage::Start;
                None
            }
        }
    }

    fn after_rollback(&mut self) -> Option<Action> {
        match self.policy.revert {
            crate::manifest::rollout_policy::Revert::Git => {
                let revision = self.s.revision.clone();
                self.issue(Stage::Reverting, |id| Action::RevertInGit { id, revision })
            }
            crate::manifest::rollout_policy::Revert::None => {
                self.enter(Phase::Failed);
                None
            }
        }
    }
}
