//! The ends of a rollout: confirmed promotion with post-rollout webhooks, and a rollback read
//! back then reverted in git.

use chrono::TimeDelta;
use veer::rollout::state::Phase;
use veer::rollout::{
    Action, Event, HoldReason, WebhookKind, WebhookReport, WebhookResult, WriteReadBack, decide,
};

use crate::helpers::*;
use crate::rollout_common::*;

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
