//! Judging a round: webhook results and analysis verdicts turned into a pass, a failed
//! check (rolling back at the threshold) or a hold, and what a passed round moves on to.

use super::Machine;
use crate::manifest::rollout_policy::{OnMetricsError, OnNoData, WebhookKind};
use crate::rollout::state::{
    CheckOutcome, CheckRecord, Event, FailureReason, HoldReason, Phase, Stage,
};
use crate::rollout::{
    Action, AnalysisReport, AnalysisVerdict, Check, MetricsErrorKind, WebhookReport,
};

/// How one round of checks came out.
pub(super) enum Round {
    Pass,
    Fail(Vec<String>),
    Hold(HoldReason),
}

impl Machine<'_> {
    /// Record webhook results; the names of those that failed.
    pub(super) fn webhook_failures(
        &mut self,
        kind: WebhookKind,
        report: &WebhookReport,
    ) -> Vec<String> {
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
                same_query: false,
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
    pub(super) fn failed_check(&mut self, checks: Vec<String>) -> bool {
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

    pub(super) fn hold(&mut self, reason: HoldReason) {
        self.events.push(Event::Held {
            reason: reason.clone(),
        });
        self.s.last_hold = Some(reason);
        self.settle();
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

    pub(super) fn analyse(&mut self) -> Option<Action> {
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

    pub(super) fn evaluate(&mut self, report: &AnalysisReport) -> Round {
        let mut checks: Vec<Check> = report.checks.clone();
        for m in &self.policy.metrics {
            if !checks.iter().any(|c| c.metric == m.name) {
                checks.push(Check {
                    metric: m.name.clone(),
                    query: String::new(),
                    value: None,
                    threshold: m.threshold_range,
                    requests: None,
                    verdict: AnalysisVerdict::MetricsError {
                        kind: MetricsErrorKind::QueryError,
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
                same_query: false,
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
    pub(super) fn passed(&mut self) {
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
}
