//! The phases, one method each: what a phase does at each stage (write the traffic, run
//! webhooks, settle, analyse), and the phase dispatch with its progress deadline.

use super::Machine;
use super::checks::Round;
use crate::manifest::rollout_policy::WebhookKind;
use crate::rollout::split::{TrafficSplit, split_at};
use crate::rollout::state::{Event, FailureReason, HoldReason, Phase, Stage};
use crate::rollout::{Action, Observation, Overlay};

impl Machine<'_> {
    pub(super) fn step(&mut self, obs: &Observation) -> Option<Action> {
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
                    // Said in the state, so `veer rollout status` tells why it waits.
                    if let Some(why) = &obs.unavailable {
                        self.s.last_hold = Some(HoldReason::Unavailable { why: why.clone() });
                    }
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

    pub(super) fn pre_rollout(&mut self, obs: &Observation) -> Option<Action> {
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
            Stage::Settling { until } => self.settled(until),
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

    pub(super) fn traffic_phase(&mut self, obs: &Observation) -> Option<Action> {
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
                    self.s.traffic_since = Some(self.now);
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
                self.s.cadence = Some(until);
                if obs.available == Some(false) {
                    self.hold(HoldReason::Unavailable {
                        why: obs.unavailable.clone().unwrap_or_default(),
                    });
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

    pub(super) fn awaiting_promotion(&mut self, obs: &Observation) -> Option<Action> {
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
            Stage::Settling { until } => self.settled(until),
            Stage::Writing | Stage::Analysing | Stage::Reverting | Stage::Backoff { .. } => {
                self.s.stage = Stage::Start;
                None
            }
        }
    }

    pub(super) fn promoting(&mut self, obs: &Observation) -> Option<Action> {
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

    pub(super) fn rolling_back(&mut self, obs: &Observation) -> Option<Action> {
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
