//! What the outside hears of each decision: a log line per rollout event, a notification for
//! the transitions people should hear about (pure: [`to_notification`]), and the rollout's
//! metric series (weight, phase, each check's value, threshold and p-value).

use tracing::{info, warn};

use super::{RolloutDriver, RolloutId};
use crate::manifest::rollout_policy::RolloutPolicy;
use crate::metrics::Bound;
use crate::notify;
use crate::rollout::state::{CheckOutcome, Event as RolloutEvent};
use crate::rollout::{Phase, RolloutState};

impl RolloutDriver {
    pub(super) fn notify(&self, event: notify::Event) {
        if let Some(n) = &self.notifications {
            n.send(event);
        }
    }

    pub(super) fn on_event(
        &self,
        id: &RolloutId,
        before: &RolloutState,
        after: &RolloutState,
        event: &RolloutEvent,
    ) {
        match event {
            RolloutEvent::Held { reason } => {
                warn!(rollout = %id, phase = %after.phase, reason = ?reason, "holding")
            }
            RolloutEvent::CheckFailed {
                failed_checks,
                threshold,
                checks,
            } => {
                warn!(rollout = %id, failed_checks, threshold, checks = ?checks, "check failed")
            }
            RolloutEvent::PhaseChanged { from, to } => {
                info!(rollout = %id, from = %from, to = %to, "rollout phase")
            }
            RolloutEvent::StepAdvanced { step, split } => {
                info!(rollout = %id, step, split = %split, "step advanced")
            }
            RolloutEvent::Interfered {
                expected,
                live,
                editor,
            } => {
                warn!(rollout = %id, %expected, %live, editor = editor.as_deref().unwrap_or("unknown"), "the route was edited mid-step; writing the step's split again and measuring the step afresh")
            }
            RolloutEvent::CheckPassed { .. }
            | RolloutEvent::WebhookFailed { .. }
            | RolloutEvent::WriteNotReadBack { .. }
            | RolloutEvent::RollbackNotRestored { .. }
            | RolloutEvent::RollingBack { .. }
            | RolloutEvent::RolledBack { .. }
            | RolloutEvent::Promoted { .. }
            | RolloutEvent::Reverted { .. }
            | RolloutEvent::RevertFailed { .. }
            | RolloutEvent::Restarted { .. }
            | RolloutEvent::CommandApplied { .. }
            | RolloutEvent::CommandIgnored { .. } => {
                info!(rollout = %id, event = ?event, "rollout")
            }
        }
        if let Some(n) = to_notification(id, before, after, event) {
            self.notify(n);
        }
    }

    pub(super) fn record_metrics(
        &self,
        id: &RolloutId,
        before: &RolloutState,
        after: &RolloutState,
        policy: &RolloutPolicy,
    ) {
        let name = id.to_string();
        if after.revision != before.revision {
            // A new rollout: the last one's values (maybe of metrics no longer judged) go.
            self.metrics.forget_analysis(&name);
        }
        self.metrics
            .set_rollout_weight(&name, f64::from(after.canary_weight()));
        self.metrics.set_rollout_phase(&name, after.phase.as_str());
        // Records added by this decision (the history is bounded: compare by count of new
        // tail entries).
        let new = after.history.len().saturating_sub(before.history.len());
        let added = if after.history.len() == before.history.len()
            && after.history.last() != before.history.last()
        {
            // The history was full and rotated: at least the last entry is new.
            1
        } else {
            new
        };
        for r in after.history.iter().rev().take(added) {
            self.metrics.record_check(&r.check, r.outcome.judgement());
            if let Some(v) = r.value {
                self.metrics.set_metric_value(&name, &r.check, v);
            }
            // A check without a comparison (a threshold fail, no data) clears the last p-value,
            // so a stale one is not read as current.
            self.metrics.set_baseline_p_value(
                &name,
                &r.check,
                r.baseline.as_ref().and_then(|b| b.verdict.p_value()),
            );
            if let Some(m) = policy.spec.metrics.iter().find(|m| m.name == r.check) {
                self.metrics.set_metric_threshold(
                    &name,
                    &r.check,
                    Bound::Min,
                    m.threshold_range.min,
                );
                self.metrics.set_metric_threshold(
                    &name,
                    &r.check,
                    Bound::Max,
                    m.threshold_range.max,
                );
            }
        }
    }
}

pub(super) fn describe(event: &RolloutEvent) -> String {
    match event {
        RolloutEvent::WriteNotReadBack { expected, read } => {
            format!("wrote {expected} but read back {read}")
        }
        RolloutEvent::RollbackNotRestored { expected, read } => {
            format!("rollback did not restore {expected}: read back {read}")
        }
        RolloutEvent::RevertFailed { message } => format!("git revert failed: {message}"),
        RolloutEvent::Interfered {
            expected,
            live,
            editor,
        } => format!(
            "the route serves {live} where the step set {expected} (edited by {}); written again",
            editor.as_deref().unwrap_or("an unknown field manager")
        ),
        RolloutEvent::PhaseChanged { .. }
        | RolloutEvent::StepAdvanced { .. }
        | RolloutEvent::CheckPassed { .. }
        | RolloutEvent::CheckFailed { .. }
        | RolloutEvent::Held { .. }
        | RolloutEvent::WebhookFailed { .. }
        | RolloutEvent::RollingBack { .. }
        | RolloutEvent::RolledBack { .. }
        | RolloutEvent::Promoted { .. }
        | RolloutEvent::Reverted { .. }
        | RolloutEvent::Restarted { .. }
        | RolloutEvent::CommandApplied { .. }
        | RolloutEvent::CommandIgnored { .. } => format!("{event:?}"),
    }
}

/// The notification for a rollout event, if people should hear about it. Pure.
fn to_notification(
    id: &RolloutId,
    before: &RolloutState,
    after: &RolloutState,
    event: &RolloutEvent,
) -> Option<notify::Event> {
    let rollout = id.to_string();
    let commit = after.revision.clone();
    let step = u32::try_from(after.step + 1).unwrap_or(u32::MAX);
    match event {
        RolloutEvent::StepAdvanced { step, split } => Some(notify::Event::StepAdvanced {
            rollout,
            commit,
            step: u32::try_from(step + 1).unwrap_or(u32::MAX),
            steps: u32::try_from(after.steps.len()).unwrap_or(u32::MAX),
            weight: split.weight_of(&after.canary()),
        }),
        RolloutEvent::PhaseChanged {
            to: Phase::Paused, ..
        } => Some(notify::Event::RolloutPaused {
            rollout,
            commit,
            step,
            reason: "paused by an operator".into(),
        }),
        RolloutEvent::Held {
            reason: crate::rollout::HoldReason::AwaitingConfirmation { .. },
        } if before.last_hold != after.last_hold || before.phase != after.phase => {
            Some(notify::Event::AwaitingApproval {
                rollout,
                commit,
                step,
                weight: after.canary_weight(),
            })
        }
        RolloutEvent::Promoted { .. } => Some(notify::Event::RolloutPromoted { rollout, commit }),
        RolloutEvent::RolledBack { .. } => {
            let failing = after
                .history
                .iter()
                .rev()
                .find(|r| r.outcome == CheckOutcome::Failed)
                .map(|r| notify::event::FailingMetric {
                    name: r.check.clone(),
                    query: r.query.clone(),
                    value: r.value,
                    threshold: r.threshold.clone(),
                    baseline: r.baseline.as_ref().map(ToString::to_string),
                });
            Some(notify::Event::RolledBack {
                rollout,
                commit,
                reason: after
                    .failure
                    .as_ref()
                    .map_or_else(|| "rolled back".to_string(), ToString::to_string),
                failing,
            })
        }
        RolloutEvent::Interfered {
            expected,
            live,
            editor,
        } => Some(notify::Event::RolloutInterfered {
            rollout,
            commit,
            step,
            expected: expected.to_string(),
            live: live.to_string(),
            editor: editor.clone(),
        }),
        RolloutEvent::Reverted { commit: revert } => Some(notify::Event::RevertPushed {
            rollout,
            commit,
            revert: revert.clone(),
        }),
        // Started when traffic first moves (not when queued or gated on health), for a
        // first attempt, a retry and a new commit mid-rollout alike.
        RolloutEvent::PhaseChanged { from, to }
            if from.before_traffic()
                && !to.before_traffic()
                && to.standing() != crate::rollout::Standing::Failing =>
        {
            Some(notify::Event::RolloutStarted {
                rollout,
                commit,
                weight: after.steps.first().copied().unwrap_or(0),
                phase: Some(to.as_str().to_string()),
            })
        }
        RolloutEvent::PhaseChanged { .. }
        | RolloutEvent::CheckPassed { .. }
        | RolloutEvent::CheckFailed { .. }
        | RolloutEvent::Held { .. }
        | RolloutEvent::WebhookFailed { .. }
        | RolloutEvent::WriteNotReadBack { .. }
        | RolloutEvent::RollbackNotRestored { .. }
        | RolloutEvent::RollingBack { .. }
        | RolloutEvent::RevertFailed { .. }
        | RolloutEvent::Restarted { .. }
        | RolloutEvent::CommandApplied { .. }
        | RolloutEvent::CommandIgnored { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{compared, id, policy, record, split, state};
    use super::super::revert::revert_request;
    use super::*;
    use crate::analysis::BaselineVerdict;
    use crate::rollout::FailureReason;

    #[test]
    fn started_is_told_when_traffic_first_moves() {
        let before = state("c1", Phase::WaitingForHealth, (100, 0), (0, 100));
        let cases = [
            (Phase::Queued, Phase::WaitingForHealth, false),
            (Phase::WaitingForHealth, Phase::PreRollout, false),
            (Phase::WaitingForHealth, Phase::Progressing, true),
            (Phase::PreRollout, Phase::Mirroring, true),
            (Phase::WaitingForHealth, Phase::Promoting, true),
            (Phase::WaitingForHealth, Phase::RollingBack, false),
            (Phase::Paused, Phase::Progressing, false),
        ];
        for (from, to, want) in cases {
            let mut after = before.clone();
            after.phase = to;
            let n = to_notification(
                &id(),
                &before,
                &after,
                &RolloutEvent::PhaseChanged { from, to },
            );
            assert_eq!(
                matches!(n, Some(notify::Event::RolloutStarted { .. })),
                want,
                "{from} -> {to}: {n:?}"
            );
        }
        // Slack names the phase traffic moved in: an A/B phase is not "25 % to the new
        // version".
        let mut after = before.clone();
        after.phase = Phase::Matching;
        let started = RolloutEvent::PhaseChanged {
            from: Phase::WaitingForHealth,
            to: Phase::Matching,
        };
        let n = to_notification(&id(), &before, &after, &started).expect("started");
        assert!(n.title().contains("A/B phase"), "{}", n.title());
    }

    #[test]
    fn notifications_name_the_failing_metric_and_the_step() {
        let before = state("c1", Phase::RollingBack, (100, 0), (0, 100));
        let mut after = before.clone();
        after.phase = Phase::Failed;
        after.failure = Some(FailureReason::FailedChecks {
            failed: 2,
            threshold: 2,
        });
        after.record(record(1, "success-rate", Some(50.0), CheckOutcome::Failed));
        after.record(record(2, "p99", Some(20.0), CheckOutcome::Passed));
        let n = to_notification(
            &id(),
            &before,
            &after,
            &RolloutEvent::RolledBack {
                split: split(100, 0),
            },
        );
        match n {
            Some(notify::Event::RolledBack {
                rollout,
                reason,
                failing: Some(f),
                ..
            }) => {
                assert_eq!(rollout, "shop/reviews");
                assert_eq!(reason, "2 failed checks (threshold 2)");
                assert_eq!((f.name.as_str(), f.value), ("success-rate", Some(50.0)));
                assert_eq!(f.baseline, None);
            }
            other => panic!("{other:?}"),
        }
        // Failed by the comparison with the old version: the alert and the revert commit
        // carry its p-value.
        let mut by_baseline = after.clone();
        by_baseline.record(compared(3, BaselineVerdict::Fail { p_value: 0.0065 }));
        match to_notification(
            &id(),
            &before,
            &by_baseline,
            &RolloutEvent::RolledBack {
                split: split(100, 0),
            },
        ) {
            Some(notify::Event::RolledBack {
                failing: Some(f), ..
            }) => {
                assert_eq!((f.name.as_str(), f.value), ("p99-latency", Some(248.5)));
                assert_eq!(f.threshold, "<= 500");
                assert_eq!(
                    f.baseline.as_deref(),
                    Some("baseline fail p=0.0065 < 0.05 (median 249 vs 24.9, +900%, 6/9 samples)")
                );
            }
            other => panic!("{other:?}"),
        }
        let revert = revert_request(&id(), &policy("p"), &by_baseline, "c1").expect("a request");
        let check = revert.failed_check.expect("the failed check");
        assert_eq!(
            (check.metric.as_str(), check.value.as_str()),
            ("p99-latency", "248.50")
        );
        assert_eq!(
            check.threshold,
            "<= 500; baseline fail p=0.0065 < 0.05 (median 249 vs 24.9, +900%, 6/9 samples)"
        );
        let n = to_notification(
            &id(),
            &before,
            &after,
            &RolloutEvent::StepAdvanced {
                step: 1,
                split: split(50, 50),
            },
        );
        assert!(matches!(
            n,
            Some(notify::Event::StepAdvanced {
                step: 2,
                steps: 3,
                weight: 50,
                ..
            })
        ));
        assert_eq!(
            to_notification(
                &id(),
                &before,
                &after,
                &RolloutEvent::CheckPassed {
                    phase: Phase::Progressing,
                    step: 0
                }
            ),
            None
        );
    }
}
