//! Table tests for every transition of the rollout state machine, and whole rollouts through
//! a simulated I/O edge (`rollout_common::World`).

mod rollout_common;

use chrono::TimeDelta;
use rollout_common::*;
use veer::rollout::state::{CheckOutcome, Phase, Stage};
use veer::rollout::{
    Action, AnalysisReport, AnalysisVerdict, Command, Event, FailureReason, HoldReason,
    Observation, OperatorCommand, Overlay, RolloutState, TargetUpdate, WebhookKind, WebhookReport,
    WebhookResult, WriteReadBack, decide, queue,
};

fn obs() -> Observation {
    Observation {
        available: Some(true),
        admitted: true,
        ..Observation::default()
    }
}

/// A state of a v1 → v2 rollout at Progressing step `step`, awaiting nothing.
fn progressing(step: usize) -> RolloutState {
    let p = basic_policy();
    let mut s = new_state(&split(&[("v1", 100)]), &split(&[("v2", 100)]), &p);
    s.phase = Phase::Progressing;
    s.step = step;
    s.stage = Stage::Start;
    s
}

/// Answer the state's pending action with `answer(id)`.
fn answered(s: &RolloutState, f: impl FnOnce(u64, &mut Observation)) -> Observation {
    let mut o = obs();
    f(s.seq, &mut o);
    o
}

fn analysing(checks: Vec<veer::rollout::Check>) -> (RolloutState, Observation) {
    let mut s = progressing(0);
    s.seq = 7;
    s.stage = Stage::Analysing;
    let o = answered(&s, |id, o| o.analysis = Some(AnalysisReport { id, checks }));
    (s, o)
}

#[test]
fn queued_waits_for_a_slot_then_gates_on_health() {
    let p = basic_policy();
    let s = new_state(&split(&[("v1", 100)]), &split(&[("v2", 100)]), &p);
    assert_eq!(s.phase, Phase::Queued);
    assert_eq!(s.steps, [10, 20, 50]);

    let mut o = obs();
    o.admitted = false;
    let d = decide(&s, &o, &p, t0());
    assert_eq!(d.next.phase, Phase::Queued);
    assert_eq!(
        d.action,
        Action::Wait {
            until: t0() + TimeDelta::minutes(1)
        }
    );

    let mut o = obs();
    o.available = Some(false);
    let d = decide(&s, &o, &p, t0());
    assert_eq!(d.next.phase, Phase::WaitingForHealth);
    assert!(matches!(d.action, Action::Wait { .. }));

    // Admitted and healthy: straight to the first step's write.
    let d = decide(&s, &obs(), &p, t0());
    assert_eq!(d.next.phase, Phase::Progressing);
    assert_eq!(d.next.stage, Stage::Writing);
    assert_eq!(
        d.action,
        Action::SetSplit {
            id: 1,
            split: split(&[("v1", 90), ("v2", 10)]),
            overlay: None
        }
    );
    assert_eq!(d.next.pending_action(), Some(&d.action));
}

#[test]
fn health_gate_misses_its_deadline_and_rolls_back() {
    let p = basic_policy();
    let mut s = new_state(&split(&[("v1", 100)]), &split(&[("v2", 100)]), &p);
    s.phase = Phase::WaitingForHealth;
    let mut o = obs();
    o.available = Some(false);
    let d = decide(
        &s,
        &o,
        &p,
        t0() + TimeDelta::minutes(9) + TimeDelta::seconds(30),
    );
    // The wait never overshoots the deadline.
    assert_eq!(
        d.action,
        Action::Wait {
            until: t0() + TimeDelta::minutes(10)
        }
    );
    let d = decide(&s, &o, &p, t0() + TimeDelta::minutes(10));
    assert_eq!(d.next.phase, Phase::RollingBack);
    assert_eq!(
        d.next.failure,
        Some(FailureReason::ProgressDeadline {
            phase: Phase::WaitingForHealth
        })
    );
    assert!(
        matches!(&d.action, Action::Rollback { to, .. } if *to == split(&[("v1", 100), ("v2", 0)]))
    );
}

#[test]
fn the_health_gate_says_why_it_waits() {
    let p = basic_policy();
    let mut s = new_state(&split(&[("v1", 100)]), &split(&[("v2", 100)]), &p);
    s.phase = Phase::WaitingForHealth;
    let mut o = obs();
    o.available = Some(false);
    o.unavailable = Some("cannot list Deployments in shop: forbidden".into());
    let d = decide(&s, &o, &p, t0());
    assert_eq!(d.next.phase, Phase::WaitingForHealth);
    assert_eq!(
        d.next.last_hold,
        Some(HoldReason::Unavailable {
            why: "cannot list Deployments in shop: forbidden".into()
        })
    );
    // Once available, the reason goes with the phase.
    let d = decide(&d.next, &obs(), &p, t0());
    assert_eq!(d.next.phase, Phase::Progressing);
    assert_eq!(d.next.last_hold, None);
    // A state stored before veer said why still reads.
    let old: HoldReason = serde_json::from_str(r#"{"reason":"unavailable"}"#).unwrap();
    assert_eq!(old, HoldReason::Unavailable { why: String::new() });
}

#[test]
fn pre_rollout_webhooks_gate_the_first_step() {
    let p = policy(
        "interval: 1m\nthreshold: 2\nstepWeights: [50]\nwebhooks:\n- {name: smoke, type: pre-rollout, url: 'http://x.test/'}\n",
    );
    let s = new_state(&split(&[("v1", 100)]), &split(&[("v2", 100)]), &p);
    let d = decide(&s, &obs(), &p, t0());
    assert_eq!(d.next.phase, Phase::PreRollout);
    assert_eq!(
        d.action,
        Action::RunWebhooks {
            id: 1,
            kind: WebhookKind::PreRollout
        }
    );

    let report = |passed| WebhookReport {
        id: 1,
        results: vec![WebhookResult {
            name: "smoke".into(),
            passed,
            message: "HTTP 500".into(),
        }],
    };
    let mut o = obs();
    o.webhooks = Some(report(false));
    let failed = decide(&d.next, &o, &p, t0());
    assert_eq!(failed.next.failed_checks, 1);
    assert_eq!(failed.next.phase, Phase::PreRollout);
    assert!(matches!(failed.next.stage, Stage::Settling { .. }));
    assert!(
        failed
            .events
            .iter()
            .any(|e| matches!(e, Event::WebhookFailed { name, .. } if name == "smoke"))
    );
    assert_eq!(
        failed.next.history.last().map(|r| r.outcome),
        Some(CheckOutcome::Failed)
    );

    o.webhooks = Some(report(true));
    let passed = decide(&d.next, &o, &p, t0());
    assert_eq!(passed.next.phase, Phase::Progressing);
    assert!(matches!(passed.action, Action::SetSplit { id: 2, .. }));
}

#[test]
fn a_write_is_read_back_before_the_interval_starts() {
    let p = basic_policy();
    let s = progressing(1);
    let d = decide(&s, &obs(), &p, t0());
    let expected = split(&[("v1", 80), ("v2", 20)]);
    assert_eq!(
        d.action,
        Action::SetSplit {
            id: 1,
            split: expected.clone(),
            overlay: None
        }
    );

    // A read-back for another id is not this write's.
    let stale = answered(&d.next, |id, o| {
        o.write = Some(WriteReadBack {
            id: id - 1,
            read_back: expected.clone(),
        })
    });
    let d2 = decide(&d.next, &stale, &p, t0());
    assert_eq!(d2.next, d.next);
    assert!(matches!(d2.action, Action::Wait { .. }));

    let ok = answered(&d.next, |id, o| {
        o.write = Some(WriteReadBack {
            id,
            read_back: expected.clone(),
        })
    });
    let d3 = decide(&d.next, &ok, &p, t0());
    assert_eq!(d3.next.current_split, expected);
    assert_eq!(
        d3.next.stage,
        Stage::Settling {
            until: t0() + TimeDelta::minutes(1)
        }
    );
    assert_eq!(
        d3.action,
        Action::Wait {
            until: t0() + TimeDelta::minutes(1)
        }
    );
    assert!(
        d3.events
            .iter()
            .any(|e| matches!(e, Event::StepAdvanced { step: 1, .. }))
    );

    // A write that did not stick is an alert, and is written again after a back-off.
    let wrong = answered(&d.next, |id, o| {
        o.write = Some(WriteReadBack {
            id,
            read_back: split(&[("v1", 100)]),
        })
    });
    let d4 = decide(&d.next, &wrong, &p, t0());
    assert!(matches!(
        d4.action,
        Action::Alert {
            event: Event::WriteNotReadBack { .. }
        }
    ));
    assert!(matches!(d4.next.stage, Stage::Backoff { .. }));
    let d5 = decide(&d4.next, &obs(), &p, t0() + TimeDelta::minutes(1));
    assert_eq!(
        d5.action,
        Action::SetSplit {
            id: 2,
            split: expected,
            overlay: None
        }
    );
}

#[test]
fn settled_traffic_is_analysed_after_rollout_webhooks() {
    let p = basic_policy();
    let mut s = progressing(0);
    s.stage = Stage::Settling {
        until: t0() + TimeDelta::minutes(1),
    };
    let early = decide(&s, &obs(), &p, t0());
    assert_eq!(early.next, s);
    let d = decide(&s, &obs(), &p, t0() + TimeDelta::minutes(1));
    assert!(
        matches!(&d.action, Action::Analyse { id: 1, step: 0, metrics, canary, baseline }
        if metrics == &["success-rate"] && canary == &[d_("v2")] && baseline == &[d_("v1")])
    );

    let hooked = policy(
        "interval: 1m\nstepWeights: [10, 20, 50]\nmetrics:\n- {name: success-rate, builtin: request-success-rate, thresholdRange: {min: 99}}\nwebhooks:\n- {name: load, type: rollout, url: 'http://load.test/'}\n",
    );
    let d = decide(&s, &obs(), &hooked, t0() + TimeDelta::minutes(1));
    assert_eq!(
        d.action,
        Action::RunWebhooks {
            id: 1,
            kind: WebhookKind::Rollout
        }
    );
    let o = answered(&d.next, |id, o| {
        o.webhooks = Some(WebhookReport {
            id,
            results: vec![WebhookResult {
                name: "load".into(),
                passed: true,
                message: String::new(),
            }],
        })
    });
    let d2 = decide(&d.next, &o, &hooked, t0() + TimeDelta::minutes(1));
    assert!(matches!(d2.action, Action::Analyse { id: 2, .. }));
    let o = answered(&d.next, |id, o| {
        o.webhooks = Some(WebhookReport {
            id,
            results: vec![WebhookResult {
                name: "load".into(),
                passed: false,
                message: "timeout".into(),
            }],
        })
    });
    let d3 = decide(&d.next, &o, &hooked, t0() + TimeDelta::minutes(1));
    assert_eq!(d3.next.failed_checks, 1);

    // An unavailable new version is not analysed: the check holds.
    let mut o = obs();
    o.available = Some(false);
    let d4 = decide(&s, &o, &p, t0() + TimeDelta::minutes(1));
    assert_eq!(
        d4.next.last_hold,
        Some(HoldReason::Unavailable { why: String::new() })
    );
    assert_eq!(d4.next.failed_checks, 0);
}

fn d_(subset: &str) -> veer::rollout::DestinationId {
    d(subset)
}

#[test]
fn passing_checks_advance_one_step_then_promote() {
    let p = basic_policy();
    let (s, o) = analysing(vec![pass("success-rate")]);
    let d = decide(&s, &o, &p, t0());
    assert_eq!(d.next.step, 1);
    assert_eq!(
        d.action,
        Action::SetSplit {
            id: 8,
            split: split(&[("v1", 80), ("v2", 20)]),
            overlay: None
        }
    );
    assert_eq!(d.next.history.len(), 1);
    assert_eq!(d.next.history[0].query, "query of success-rate");

    let mut last = s.clone();
    last.step = 2;
    let d = decide(&last, &o, &p, t0());
    assert_eq!(d.next.phase, Phase::Promoting);
    assert_eq!(
        d.action,
        Action::SetSplit {
            id: 8,
            split: split(&[("v1", 0), ("v2", 100)]),
            overlay: None
        }
    );
    let done = answered(&d.next, |id, o| {
        o.write = Some(WriteReadBack {
            id,
            read_back: split(&[("v2", 100)]),
        })
    });
    let d2 = decide(&d.next, &done, &p, t0());
    assert_eq!(d2.next.phase, Phase::Succeeded);
    assert_eq!(d2.action, Action::Done);
    assert!(
        d2.events
            .iter()
            .any(|e| matches!(e, Event::Promoted { .. }))
    );
    // Succeeded is final: the same answer again promotes nothing.
    let d3 = decide(&d2.next, &done, &p, t0());
    assert_eq!((d3.action, d3.next), (Action::Done, d2.next));
}

#[test]
fn failed_checks_roll_back_at_the_threshold() {
    let p = basic_policy();
    let (s, o) = analysing(vec![fail("success-rate")]);
    let d = decide(&s, &o, &p, t0());
    assert_eq!(d.next.failed_checks, 1);
    assert_eq!(d.next.phase, Phase::Progressing);
    assert!(d.events.iter().any(|e| matches!(
        e,
        Event::CheckFailed {
            failed_checks: 1,
            threshold: 2,
            ..
        }
    )));

    let mut again = s.clone();
    again.failed_checks = 1;
    let d = decide(&again, &o, &p, t0());
    assert_eq!(d.next.phase, Phase::RollingBack);
    assert_eq!(
        d.next.failure,
        Some(FailureReason::FailedChecks {
            failed: 2,
            threshold: 2
        })
    );
    assert_eq!(
        d.action,
        Action::Rollback {
            id: 8,
            to: split(&[("v1", 100), ("v2", 0)])
        }
    );
}

#[test]
fn cannot_measure_holds_or_fails_as_the_policy_says() {
    let error = AnalysisVerdict::MetricsError {
        kind: veer::rollout::MetricsErrorKind::Unreachable,
        reason: "connection refused".into(),
    };
    let cases: Vec<(&str, AnalysisVerdict, u32, Option<&str>)> = vec![
        // (policy extra, verdict, failed checks after, hold reason)
        ("", AnalysisVerdict::NoData, 0, Some("noData")),
        ("onNoData: fail\n", AnalysisVerdict::NoData, 1, None),
        ("onNoData: pass\n", AnalysisVerdict::NoData, 0, None),
        ("", error.clone(), 0, Some("metricsError")),
        ("onMetricsError: fail\n", error, 1, None),
        (
            "onNoData: fail\n",
            AnalysisVerdict::TooFewRequests {
                count: 3.0,
                min: 20,
            },
            0,
            Some("tooFewRequests"),
        ),
        ("", AnalysisVerdict::Inconclusive, 0, Some("inconclusive")),
        // Inconclusive is "cannot measure" whatever onNoData says.
        (
            "onNoData: fail\n",
            AnalysisVerdict::Inconclusive,
            0,
            Some("inconclusive"),
        ),
        (
            "onNoData: pass\n",
            AnalysisVerdict::Inconclusive,
            0,
            Some("inconclusive"),
        ),
        // Inside the range but worse than the old version: measured bad.
        (
            "",
            AnalysisVerdict::WorseThanBaseline {
                p_value: 0.001,
                alpha: 0.05,
            },
            1,
            None,
        ),
    ];
    for (extra, v, failed, hold) in cases {
        let p = policy(&format!(
            "interval: 1m\nthreshold: 2\nstepWeights: [10, 20, 50]\n{extra}metrics:\n- {{name: success-rate, builtin: request-success-rate, thresholdRange: {{min: 99}}}}\n"
        ));
        let (s, o) = analysing(vec![verdict("success-rate", v.clone())]);
        let d = decide(&s, &o, &p, t0());
        assert_eq!(d.next.failed_checks, failed, "{extra} {v:?}");
        let reason = d.next.last_hold.as_ref().map(|h| {
            serde_json::to_value(h).unwrap()["reason"]
                .as_str()
                .unwrap()
                .to_string()
        });
        assert_eq!(reason.as_deref(), hold, "{extra} {v:?}");
        if hold.is_some() {
            assert!(d.events.iter().any(|e| matches!(e, Event::Held { .. })));
            assert_eq!(d.next.history[0].outcome, CheckOutcome::Held);
            assert_eq!(d.next.step, 0, "a hold does not advance");
        }
        if failed == 0 && hold.is_none() {
            assert_eq!(d.next.step, 1, "a pass advances: {extra} {v:?}");
        }
    }
    // A metric the analysis did not answer for is a metrics error (held by default).
    let (s, o) = analysing(vec![]);
    let d = decide(&s, &o, &basic_policy(), t0());
    assert!(matches!(
        d.next.last_hold,
        Some(HoldReason::MetricsError { .. })
    ));
}

#[test]
fn holding_past_the_progress_deadline_rolls_back() {
    let p = basic_policy();
    let mut s = progressing(1);
    s.stage = Stage::Settling {
        until: t0() + TimeDelta::minutes(1),
    };
    s.last_hold = Some(HoldReason::NoData {
        metric: "success-rate".into(),
    });
    let d = decide(&s, &obs(), &p, t0() + TimeDelta::minutes(10));
    assert_eq!(d.next.phase, Phase::RollingBack);
    assert!(matches!(d.action, Action::Rollback { .. }));
}

#[test]
fn confirm_promotion_holds_until_it_passes() {
    let p = policy(
        "interval: 1m\nstepWeights: [50]\nwebhooks:\n- {name: approve, type: confirm-promotion, url: 'http://a.test/'}\n- {name: tell, type: post-rollout, url: 'http://t.test/'}\n",
    );
    let mut s = new_state(&split(&[("v1", 100)]), &split(&[("v2", 100)]), &p);
    s.phase = Phase::AwaitingPromotion;
    let d = decide(&s, &obs(), &p, t0());
    assert_eq!(
        d.action,
        Action::RunWebhooks {
            id: 1,
            kind: WebhookKind::ConfirmPromotion
        }
    );
    let no = answered(&d.next, |id, o| {
        o.webhooks = Some(WebhookReport {
            id,
            results: vec![WebhookResult {
                name: "approve".into(),
                passed: false,
                message: String::new(),
            }],
        })
    });
    let held = decide(&d.next, &no, &p, t0());
    assert_eq!(held.next.phase, Phase::AwaitingPromotion);
    assert_eq!(held.next.failed_checks, 0);
    assert_eq!(
        held.next.last_hold,
        Some(HoldReason::AwaitingConfirmation {
            webhook: "approve".into()
        })
    );
    // No deadline while awaiting promotion: an hour later it asks again.
    let again = decide(&held.next, &obs(), &p, t0() + TimeDelta::hours(1));
    assert_eq!(
        again.action,
        Action::RunWebhooks {
            id: 2,
            kind: WebhookKind::ConfirmPromotion
        }
    );
    let yes = answered(&again.next, |id, o| {
        o.webhooks = Some(WebhookReport {
            id,
            results: vec![WebhookResult {
                name: "approve".into(),
                passed: true,
                message: String::new(),
            }],
        })
    });
    let promoting = decide(&again.next, &yes, &p, t0() + TimeDelta::hours(1));
    assert_eq!(promoting.next.phase, Phase::Promoting);
    assert!(matches!(promoting.action, Action::SetSplit { id: 3, .. }));
    let read = answered(&promoting.next, |id, o| {
        o.write = Some(WriteReadBack {
            id,
            read_back: split(&[("v2", 100)]),
        })
    });
    let post = decide(&promoting.next, &read, &p, t0() + TimeDelta::hours(1));
    assert_eq!(
        post.action,
        Action::RunWebhooks {
            id: 4,
            kind: WebhookKind::PostRollout
        }
    );
    let failed_post = answered(&post.next, |id, o| {
        o.webhooks = Some(WebhookReport {
            id,
            results: vec![WebhookResult {
                name: "tell".into(),
                passed: false,
                message: "503".into(),
            }],
        })
    });
    let done = decide(&post.next, &failed_post, &p, t0() + TimeDelta::hours(1));
    // A post-rollout failure is reported, never rolled back.
    assert_eq!(done.next.phase, Phase::Succeeded);
    assert!(
        done.events
            .iter()
            .any(|e| matches!(e, Event::WebhookFailed { .. }))
    );
}

#[test]
fn rollback_is_read_back_then_reverted_in_git() {
    let p = policy(
        "interval: 1m\nstepWeights: [50]\nrevert: git\nwebhooks:\n- {name: page, type: rollback, url: 'http://p.test/'}\n",
    );
    let mut s = new_state(&split(&[("v1", 100)]), &split(&[("v2", 100)]), &p);
    s.phase = Phase::RollingBack;
    let d = decide(&s, &obs(), &p, t0());
    let to = split(&[("v1", 100), ("v2", 0)]);
    assert_eq!(
        d.action,
        Action::Rollback {
            id: 1,
            to: to.clone()
        }
    );

    let wrong = answered(&d.next, |id, o| {
        o.write = Some(WriteReadBack {
            id,
            read_back: split(&[("v1", 50), ("v2", 50)]),
        })
    });
    let alert = decide(&d.next, &wrong, &p, t0());
    assert!(matches!(
        alert.action,
        Action::Alert {
            event: Event::RollbackNotRestored { .. }
        }
    ));
    assert_eq!(alert.next.phase, Phase::RollingBack);
    let retry = decide(&alert.next, &obs(), &p, t0() + TimeDelta::minutes(1));
    assert_eq!(
        retry.action,
        Action::Rollback {
            id: 2,
            to: to.clone()
        }
    );

    let ok = answered(&retry.next, |id, o| {
        o.write = Some(WriteReadBack {
            id,
            read_back: split(&[("v1", 100)]),
        })
    });
    let hooks = decide(&retry.next, &ok, &p, t0());
    assert_eq!(
        hooks.action,
        Action::RunWebhooks {
            id: 3,
            kind: WebhookKind::Rollback
        }
    );
    let answered_hooks = answered(&hooks.next, |id, o| {
        o.webhooks = Some(WebhookReport {
            id,
            results: vec![],
        })
    });
    let revert = decide(&hooks.next, &answered_hooks, &p, t0());
    assert_eq!(
        revert.action,
        Action::RevertInGit {
            id: 4,
            revision: "rev1".into()
        }
    );
    let mut o = obs();
    o.revert = Some(veer::rollout::RevertReport {
        id: 4,
        outcome: Ok("abc123".into()),
    });
    let failed = decide(&revert.next, &o, &p, t0());
    assert_eq!(failed.next.phase, Phase::Failed);
    assert_eq!(failed.next.revert_commit.as_deref(), Some("abc123"));
    assert_eq!(failed.action, Action::Done);

    o.revert = Some(veer::rollout::RevertReport {
        id: 4,
        outcome: Err("push rejected".into()),
    });
    let failed = decide(&revert.next, &o, &p, t0());
    assert_eq!(failed.next.phase, Phase::Failed);
    assert!(matches!(
        failed.action,
        Action::Alert {
            event: Event::RevertFailed { .. }
        }
    ));
}

#[test]
fn operator_commands_apply_once_and_only_where_they_mean_something() {
    let p = basic_policy();
    let s = progressing(1);
    let cmd = |id, command| {
        let mut o = obs();
        o.command = Some(OperatorCommand { id, command });
        o
    };
    let paused = decide(&s, &cmd(1, Command::Pause), &p, t0());
    assert_eq!(paused.next.phase, Phase::Paused);
    assert!(matches!(paused.action, Action::Wait { .. }));
    // Paused: no deadline, no progress, however long.
    let later = decide(
        &paused.next,
        &cmd(1, Command::Pause),
        &p,
        t0() + TimeDelta::hours(5),
    );
    assert_eq!(later.next, paused.next);
    let resumed = decide(
        &paused.next,
        &cmd(2, Command::Resume),
        &p,
        t0() + TimeDelta::hours(5),
    );
    assert_eq!(resumed.next.phase, Phase::Progressing);
    assert_eq!(resumed.next.step, 1);
    assert!(matches!(resumed.action, Action::SetSplit { .. }));
    // The same command again is not applied twice.
    let replay = decide(
        &resumed.next,
        &cmd(2, Command::Resume),
        &p,
        t0() + TimeDelta::hours(5),
    );
    assert_eq!(replay.next, resumed.next);

    let promoted = decide(&s, &cmd(1, Command::Promote), &p, t0());
    assert_eq!(promoted.next.phase, Phase::Promoting);
    assert!(
        matches!(&promoted.action, Action::SetSplit { split: x, .. } if *x == split(&[("v1", 0), ("v2", 100)]))
    );

    let aborted = decide(&s, &cmd(1, Command::Abort), &p, t0());
    assert_eq!(aborted.next.failure, Some(FailureReason::Aborted));
    assert!(matches!(aborted.action, Action::Rollback { .. }));

    let ignored = decide(&s, &cmd(1, Command::Retry), &p, t0());
    assert!(ignored.events.contains(&Event::CommandIgnored {
        command: Command::Retry,
        phase: Phase::Progressing
    }));
    assert_eq!(ignored.next.last_command, 1);

    let mut failed = s.clone();
    failed.phase = Phase::Failed;
    failed.failed_checks = 2;
    failed.current_split = failed.start_split.clone();
    let retried = decide(&failed, &cmd(1, Command::Retry), &p, t0());
    assert_eq!(retried.next.failed_checks, 0);
    assert_eq!(retried.next.step, 0);
    assert!(matches!(retried.action, Action::SetSplit { .. }));
    // Without retry a failed revision stays failed, whatever git says about the same commit.
    let mut same = obs();
    same.target = Some(TargetUpdate {
        revision: "rev1".into(),
        target: split(&[("v2", 100)]),
        live: split(&[("v1", 100)]),
        companions: Vec::new(),
    });
    let stays = decide(&failed, &same, &p, t0());
    assert_eq!((stays.action, stays.next), (Action::Done, failed.clone()));
}

#[test]
fn a_new_commit_restarts_from_live_toward_the_new_target() {
    let p = basic_policy();
    let mut s = progressing(1);
    s.current_split = split(&[("v1", 80), ("v2", 20)]);
    s.failed_checks = 1;
    let mut o = obs();
    o.target = Some(TargetUpdate {
        revision: "rev2".into(),
        target: split(&[("v3", 100)]),
        live: split(&[("v1", 80), ("v2", 20)]),
        companions: Vec::new(),
    });
    let d = decide(&s, &o, &p, t0());
    assert_eq!(d.next.revision, "rev2");
    assert_eq!(
        d.next.from_split,
        split(&[("v1", 80), ("v2", 20), ("v3", 0)])
    );
    assert_eq!(
        d.next.target_split,
        split(&[("v1", 0), ("v2", 0), ("v3", 100)])
    );
    // A rollback still restores the split from before the first rollout.
    assert_eq!(
        d.next.start_split,
        split(&[("v1", 100), ("v2", 0), ("v3", 0)])
    );
    assert_eq!(d.next.failed_checks, 0);
    assert_eq!(d.next.step, 0);
    assert!(
        d.events
            .iter()
            .any(|e| matches!(e, Event::Restarted { .. }))
    );
    // v3 gains; v1 and v2 give in proportion to what they lose.
    assert_eq!(
        d.action,
        Action::SetSplit {
            id: 1,
            split: split(&[("v1", 72), ("v2", 18), ("v3", 10)]),
            overlay: None
        }
    );

    // During a rollback the new commit waits for the rollback to finish.
    let mut rb = s.clone();
    rb.phase = Phase::RollingBack;
    let d = decide(&rb, &o, &p, t0());
    assert_eq!(d.next.revision, "rev1");
    // After a failure, a new commit is a new rollout.
    let mut failed = s.clone();
    failed.phase = Phase::Failed;
    let d = decide(&failed, &o, &p, t0());
    assert_eq!(d.next.revision, "rev2");
    assert_eq!(
        d.next.start_split,
        split(&[("v1", 80), ("v2", 20), ("v3", 0)])
    );
    assert!(d.next.seq >= failed.seq);
    // A commit that puts git where live already is needs no steps.
    o.target = Some(TargetUpdate {
        revision: "rev3".into(),
        target: split(&[("v1", 80), ("v2", 20)]),
        live: split(&[("v1", 80), ("v2", 20)]),
        companions: Vec::new(),
    });
    let d = decide(&s, &o, &p, t0());
    assert_eq!(d.next.phase, Phase::Promoting);
}

#[test]
fn overlay_phases_shape_traffic_for_their_iterations() {
    let p = policy(
        "interval: 1m\nstepWeights: [10, 50]\nmirror: {weight: 30, iterations: 2}\nmatch: {cookie: canary=always, iterations: 1}\nfault: {abort: 503, percent: 5, iterations: 1}\n",
    );
    let s = new_state(&split(&[("v1", 100)]), &split(&[("v2", 100)]), &p);
    let mut w = World::new(split(&[("v1", 100)]));
    let end = w.run(s, &p, 200);
    assert_eq!(end.phase, Phase::Succeeded);
    let writes: Vec<(Phase, Option<Overlay>, u32)> = w
        .log
        .iter()
        .filter_map(|(ph, a)| match a {
            Action::SetSplit {
                split: x, overlay, ..
            } => Some((*ph, overlay.clone(), x.weight(&d("v2")))),
            _ => None,
        })
        .collect();
    let phases: Vec<Phase> = writes.iter().map(|w| w.0).collect();
    assert_eq!(
        phases,
        [
            Phase::Mirroring,
            Phase::Matching,
            Phase::FaultTesting,
            Phase::Progressing,
            Phase::Progressing,
            Phase::Promoting
        ]
    );
    assert_eq!(
        writes[0].1,
        Some(Overlay::Mirror {
            to: vec![d("v2")],
            percent: 30
        })
    );
    assert_eq!(writes[0].2, 0);
    assert!(
        matches!(&writes[1].1, Some(Overlay::Match { cookie: Some(c), .. }) if c == "canary=always")
    );
    assert!(matches!(
        &writes[2].1,
        Some(Overlay::Fault {
            abort: Some(503),
            ..
        })
    ));
    assert_eq!(
        writes[2].2, 10,
        "fault testing runs at the first step's weight"
    );
    assert_eq!([writes[3].2, writes[4].2, writes[5].2], [10, 50, 100]);
    // Mirroring needed two passing checks.
    let mirror_checks = w
        .decisions
        .iter()
        .flat_map(|d| &d.events)
        .filter(|e| {
            matches!(
                e,
                Event::CheckPassed {
                    phase: Phase::Mirroring,
                    ..
                }
            )
        })
        .count();
    assert_eq!(mirror_checks, 2);
    assert_eq!(w.overlay, None);
    assert_eq!(end.current_overlay, None);
    // While mirroring, the state says which overlay is live (the diff ignores its fields).
    let mirroring = w
        .decisions
        .iter()
        .find(|d| d.next.phase == Phase::Mirroring && d.next.current_overlay.is_some())
        .map(|d| d.next.current_overlay.clone());
    assert_eq!(
        mirroring,
        Some(Some(Overlay::Mirror {
            to: vec![d("v2")],
            percent: 30
        }))
    );
}

#[test]
fn a_whole_healthy_rollout_and_a_whole_failed_one() {
    let p = basic_policy();
    let from = split(&[("v1", 100)]);
    let to = split(&[("v1", 50), ("v2", 50)]);
    let mut w = World::new(from.clone());
    let end = w.run(new_state(&from, &to, &p), &p, 100);
    assert_eq!(end.phase, Phase::Succeeded);
    assert!(w.live.same_traffic(&to));
    let canary: Vec<u32> = w.step_writes().iter().map(|x| x.weight(&d("v2"))).collect();
    assert_eq!(
        canary,
        [10, 20],
        "50 is the target itself: promoted, not a step"
    );
    assert_eq!(end.history.len(), 2);

    // Error spike at the second step: two failed checks (threshold 2) roll back.
    let mut w = World::new(from.clone());
    w.verdicts = Box::new(|n, _| {
        if n == 0 {
            AnalysisVerdict::Pass
        } else {
            AnalysisVerdict::Fail {
                value: 90.0,
                min: Some(99.0),
                max: None,
            }
        }
    });
    let start = t0();
    let end = w.run(new_state(&from, &to, &p), &p, 100);
    assert_eq!(end.phase, Phase::Failed);
    assert!(w.live.same_traffic(&from));
    // Within threshold × interval of the breach (plus the step's own settling interval).
    assert!(w.now - start <= TimeDelta::minutes(4), "{}", w.now - start);
    assert!(matches!(
        end.failure,
        Some(FailureReason::FailedChecks {
            failed: 2,
            threshold: 2
        })
    ));
}

#[test]
fn a_restarted_controller_resumes_from_stored_state_without_repeating_a_step() {
    let p = basic_policy();
    let from = split(&[("v1", 100)]);
    let to = split(&[("v2", 100)]);
    let mut w = World::new(from.clone());
    let mut state = new_state(&from, &to, &p);
    for _ in 0..6 {
        state = w.tick(&state, &p);
    }
    // The controller dies after storing `state`; the answer to its pending action is lost.
    let stored = state.encode();
    let mut restored = RolloutState::decode("VirtualService shop/reviews", &stored).unwrap();
    assert_eq!(restored, state);
    assert_eq!(restored.version, veer::rollout::state::STATE_VERSION);
    let future = stored.replacen("\"version\":1", "\"version\":2", 1);
    let err = RolloutState::decode("VirtualService shop/reviews", &future).unwrap_err();
    assert_eq!(err.metric_label(), "unsupported_state_version");
    assert!(RolloutState::decode("x", "{").is_err());
    w.pending = Observation::default();
    // The new controller performs the pending action again (idempotent), then carries on.
    if let Some(pending) = restored.pending_action().cloned() {
        let metrics = vec!["success-rate".to_string()];
        w.perform(restored.phase, &pending, &metrics);
    }
    restored = w.run(restored, &p, 100);
    assert_eq!(restored.phase, Phase::Succeeded);
    let canary: Vec<u32> = w.step_writes().iter().map(|x| x.weight(&d("v2"))).collect();
    let mut distinct = canary.clone();
    distinct.dedup();
    assert_eq!(
        distinct,
        [10, 20, 50],
        "steps only move forward: {canary:?}"
    );
    let promotions = w
        .log
        .iter()
        .filter(|(ph, a)| *ph == Phase::Promoting && matches!(a, Action::SetSplit { .. }))
        .count();
    assert_eq!(promotions, 1);
}

#[test]
fn the_queue_admits_oldest_first_up_to_the_cap() {
    let p = basic_policy();
    let mk = |minutes: i64, phase: Phase| {
        let mut s = new_state(&split(&[("v1", 100)]), &split(&[("v2", 100)]), &p);
        s.created_at = t0() + TimeDelta::minutes(minutes);
        s.phase = phase;
        s
    };
    let running = mk(0, Phase::Progressing);
    let paused = mk(1, Phase::Paused);
    let done = mk(2, Phase::Succeeded);
    let late = mk(5, Phase::Queued);
    let early = mk(3, Phase::Queued);
    let tie = mk(3, Phase::Queued);
    let all = [
        ("a", &running),
        ("b", &paused),
        ("c", &done),
        ("d", &late),
        ("f", &early),
        ("e", &tie),
    ];
    assert_eq!(queue::admit(&all, 3), ["e"]);
    assert_eq!(queue::admit(&all, 4), ["e", "f"]);
    assert!(queue::admit(&all, 2).is_empty());
    assert_eq!(queue::admit(&all, 0), ["e", "f", "d"]);
}

/// Every operator command in every phase: applied (and where it leads) or ignored.
#[test]
fn commands_by_phase() {
    use Command::*;
    use Phase::*;
    let p = policy(
        "interval: 1m\nstepWeights: [10, 50]\nmirror: {weight: 10, iterations: 1}\nmatch: {cookie: a=b, iterations: 1}\nfault: {delay: 1s, percent: 5, iterations: 1}\nwebhooks:\n- {name: gate, type: confirm-promotion, url: 'http://g.test/'}\n- {name: pre, type: pre-rollout, url: 'http://p.test/'}\n",
    );
    let phases = [
        Queued,
        WaitingForHealth,
        PreRollout,
        Mirroring,
        Matching,
        FaultTesting,
        Progressing,
        Paused,
        AwaitingPromotion,
        Promoting,
        Succeeded,
        RollingBack,
        Failed,
    ];
    let before_promotion = |ph: Phase| {
        matches!(
            ph,
            Queued
                | WaitingForHealth
                | PreRollout
                | Mirroring
                | Matching
                | FaultTesting
                | Progressing
                | AwaitingPromotion
        )
    };
    for phase in phases {
        for command in [Pause, Resume, Promote, Abort, Retry] {
            let mut s = new_state(&split(&[("v1", 100)]), &split(&[("v2", 100)]), &p);
            s.phase = phase;
            if phase == Paused {
                s.resume = Some(veer::rollout::state::Resume { phase: Progressing });
            }
            let o = Observation {
                available: Some(false),
                admitted: false,
                command: Some(OperatorCommand { id: 1, command }),
                ..Observation::default()
            };
            let d = decide(&s, &o, &p, t0());
            let expected = match command {
                Pause if before_promotion(phase) => Some(Paused),
                Resume if phase == Paused => Some(Progressing),
                Promote if before_promotion(phase) || phase == Paused => Some(Promoting),
                Abort if before_promotion(phase) || phase == Paused => Some(RollingBack),
                Retry if phase == Failed => Some(Queued),
                Pause | Resume | Promote | Abort | Retry => None,
            };
            let applied = d.events.contains(&Event::CommandApplied { command });
            let ignored = d.events.contains(&Event::CommandIgnored { command, phase });
            match expected {
                Some(to) => {
                    assert!(applied, "{command:?} in {phase:?}: {:?}", d.events);
                    assert_eq!(d.next.phase, to, "{command:?} in {phase:?}");
                }
                None => {
                    assert!(ignored, "{command:?} in {phase:?}: {:?}", d.events);
                    assert_eq!(d.next.phase, phase, "{command:?} in {phase:?}");
                }
            }
            assert_eq!(d.next.last_command, 1);
        }
    }
}

/// A new commit in every phase: where the rollout goes and from which split.
#[test]
fn new_commit_by_phase() {
    use Phase::*;
    let p = basic_policy();
    let live = split(&[("v1", 70), ("v2", 30)]);
    for phase in [
        Queued,
        WaitingForHealth,
        PreRollout,
        Mirroring,
        Matching,
        FaultTesting,
        Progressing,
        Paused,
        AwaitingPromotion,
        Promoting,
        Succeeded,
        RollingBack,
        Failed,
    ] {
        let mut s = new_state(&split(&[("v1", 100)]), &split(&[("v2", 100)]), &p);
        s.phase = phase;
        s.seq = 5;
        let o = Observation {
            available: Some(false),
            admitted: false,
            target: Some(TargetUpdate {
                revision: "rev2".into(),
                target: split(&[("v3", 100)]),
                live: live.clone(),
                companions: Vec::new(),
            }),
            ..Observation::default()
        };
        let d = decide(&s, &o, &p, t0());
        let (revision, to) = match phase {
            RollingBack => ("rev1", RollingBack),
            Queued | Succeeded | Failed => ("rev2", Queued),
            Paused => ("rev2", Paused),
            WaitingForHealth | PreRollout | Mirroring | Matching | FaultTesting | Progressing
            | AwaitingPromotion | Promoting => ("rev2", WaitingForHealth),
        };
        assert_eq!(
            (d.next.revision.as_str(), d.next.phase),
            (revision, to),
            "{phase:?}"
        );
        assert!(d.next.seq >= 5, "ids never go back");
        if revision == "rev2" {
            assert!(d.next.from_split.same_traffic(&live), "{phase:?}");
            assert!(d.next.target_split.same_traffic(&split(&[("v3", 100)])));
        }
        if phase == Paused {
            assert_eq!(d.next.resume.map(|r| r.phase), Some(WaitingForHealth));
        }
    }
}

/// A phase that needs more passing checks than fit in the deadline still completes: each
/// passing check is progress.
#[test]
fn long_phases_are_not_cut_by_the_deadline_while_they_pass() {
    let p = policy(
        "interval: 1m\nprogressDeadline: 3m\nstepWeights: [50]\nmirror: {weight: 50, iterations: 6}\nmetrics:\n- {name: success-rate, builtin: request-success-rate, thresholdRange: {min: 99}}\n",
    );
    let from = split(&[("v1", 100)]);
    let to = split(&[("v2", 100)]);
    let mut w = World::new(from.clone());
    let end = w.run(new_state(&from, &to, &p), &p, 200);
    assert_eq!(end.phase, Phase::Succeeded);
    assert!(w.now - t0() >= TimeDelta::minutes(6));
    // Holding is not progress: the same phase with no data misses the deadline.
    let mut w = World::new(from.clone());
    w.verdicts = Box::new(|_, _| AnalysisVerdict::NoData);
    let end = w.run(new_state(&from, &to, &p), &p, 200);
    assert_eq!(end.phase, Phase::Failed);
    assert_eq!(
        end.failure,
        Some(FailureReason::ProgressDeadline {
            phase: Phase::Mirroring
        })
    );
    assert!(w.live.same_traffic(&from));
}

#[test]
fn a_new_commit_carries_the_routes_that_move_with_the_rollout() {
    use veer::rollout::{CompanionRoute, RouteRef};
    let p = basic_policy();
    let companion = |target: &[(&str, u32)]| CompanionRoute {
        route: RouteRef {
            index: 1,
            name: Some("default".into()),
        },
        start: split(&[("v1", 100)]),
        target: split(target),
    };
    let mut o = obs();
    o.target = Some(TargetUpdate {
        revision: "rev2".into(),
        target: split(&[("v3", 100)]),
        live: split(&[("v1", 80), ("v2", 20)]),
        companions: vec![companion(&[("v3", 100)])],
    });
    // Mid-rollout: the companion heads for git's new split, from where it started.
    let mut s = progressing(1);
    s.current_split = split(&[("v1", 80), ("v2", 20)]);
    s.companions = vec![companion(&[("v2", 100)])];
    let d = decide(&s, &o, &p, t0());
    assert_eq!(d.next.companions, [companion(&[("v3", 100)])]);
    // After a failure the fresh rollout takes git's companions as they are now.
    let mut failed = s.clone();
    failed.phase = Phase::Failed;
    failed.companions = Vec::new();
    let d = decide(&failed, &o, &p, t0());
    assert_eq!(d.next.revision, "rev2");
    assert_eq!(d.next.companions, [companion(&[("v3", 100)])]);
}
