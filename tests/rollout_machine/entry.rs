//! Before the first step: the admission queue, the health gate and pre-rollout webhooks.

use chrono::TimeDelta;
use veer::rollout::state::{CheckOutcome, Phase, Stage};
use veer::rollout::{
    Action, Event, FailureReason, HoldReason, WebhookKind, WebhookReport, WebhookResult, decide,
    queue,
};

use crate::helpers::*;
use crate::rollout_common::*;

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
