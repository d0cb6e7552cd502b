//! Each step: the write and its read-back, settling, rollout webhooks and analysis, and what
//! passing, failing or unmeasurable checks do.

use chrono::TimeDelta;
use veer::rollout::state::{CheckOutcome, Phase, Stage};
use veer::rollout::{
    Action, AnalysisVerdict, Event, FailureReason, HoldReason, WebhookKind, WebhookReport,
    WebhookResult, WriteReadBack, decide,
};

use crate::helpers::*;
use crate::rollout_common::*;

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
