//! What people hear of a rollout's decisions, pure: an event as one line of text
//! ([`describe`]: the status page, alerts) and the notification for the transitions people
//! should hear about ([`notice`]); the controller logs and sends them.

use super::state::{CheckOutcome, Event as RolloutEvent};
use super::{HoldReason, Phase, RolloutState, Standing};
use crate::ids::RolloutId;
use crate::notice::{self, FailingMetric};

/// A rollout event as one line for people (a hand edit undone, a failed write, …).
pub fn describe(event: &RolloutEvent) -> String {
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

/// The notification for a rollout event, if people should hear about it.
pub fn notice(
    id: &RolloutId,
    before: &RolloutState,
    after: &RolloutState,
    event: &RolloutEvent,
) -> Option<notice::Event> {
    let rollout = id.to_string();
    let commit = after.revision.clone();
    let step = u32::try_from(after.step + 1).unwrap_or(u32::MAX);
    match event {
        RolloutEvent::StepAdvanced { step, split } => Some(notice::Event::StepAdvanced {
            rollout,
            commit,
            step: u32::try_from(step + 1).unwrap_or(u32::MAX),
            steps: u32::try_from(after.steps.len()).unwrap_or(u32::MAX),
            weight: split.weight_of(&after.canary()),
        }),
        RolloutEvent::PhaseChanged {
            to: Phase::Paused, ..
        } => Some(notice::Event::RolloutPaused {
            rollout,
            commit,
            step,
            reason: "paused by an operator".into(),
        }),
        RolloutEvent::Held {
            reason: HoldReason::AwaitingConfirmation { .. },
        } if before.last_hold != after.last_hold || before.phase != after.phase => {
            Some(notice::Event::AwaitingApproval {
                rollout,
                commit,
                step,
                weight: after.canary_weight(),
            })
        }
        RolloutEvent::Promoted { .. } => Some(notice::Event::RolloutPromoted { rollout, commit }),
        RolloutEvent::RolledBack { .. } => {
            let failing = (after.history.iter().enumerate().rev())
                .find(|(_, r)| r.outcome == CheckOutcome::Failed)
                .map(|(i, r)| FailingMetric {
                    name: r.check.clone(),
                    query: after.query_of(i).to_string(),
                    value: r.value,
                    threshold: r.threshold.clone(),
                    baseline: r.baseline.as_ref().map(ToString::to_string),
                });
            Some(notice::Event::RolledBack {
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
        } => Some(notice::Event::RolloutInterfered {
            rollout,
            commit,
            step,
            expected: expected.to_string(),
            live: live.to_string(),
            editor: editor.clone(),
        }),
        RolloutEvent::Reverted { commit: revert } => Some(notice::Event::RevertPushed {
            rollout,
            commit,
            revert: revert.clone(),
        }),
        // Started when traffic first moves (not when queued or gated on health), for a
        // first attempt, a retry and a new commit mid-rollout alike.
        RolloutEvent::PhaseChanged { from, to }
            if from.before_traffic()
                && !to.before_traffic()
                && to.standing() != Standing::Failing =>
        {
            Some(notice::Event::RolloutStarted {
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
    use super::super::fixtures::{compared, id, record, split, state};
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
            let n = notice(
                &id(),
                &before,
                &after,
                &RolloutEvent::PhaseChanged { from, to },
            );
            assert_eq!(
                matches!(n, Some(notice::Event::RolloutStarted { .. })),
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
        let n = notice(&id(), &before, &after, &started).expect("started");
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
        let n = notice(
            &id(),
            &before,
            &after,
            &RolloutEvent::RolledBack {
                split: split(100, 0),
            },
        );
        match n {
            Some(notice::Event::RolledBack {
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
        match notice(
            &id(),
            &before,
            &by_baseline,
            &RolloutEvent::RolledBack {
                split: split(100, 0),
            },
        ) {
            Some(notice::Event::RolledBack {
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
        let n = notice(
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
            Some(notice::Event::StepAdvanced {
                step: 2,
                steps: 3,
                weight: 50,
                ..
            })
        ));
        assert_eq!(
            notice(
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
