//! A new commit arriving mid-rollout: where it restarts from, in every phase, and the routes
//! that move with it.

use veer::rollout::state::Phase;
use veer::rollout::{Action, Event, Observation, TargetUpdate, decide};

use crate::helpers::*;
use crate::rollout_common::*;

#[test]
fn a_new_commit_restarts_from_live_toward_the_new_target() {
    let p = basic_policy();
    let mut s = progressing(1);
    s.current_split = split(&[("v1", 80), ("v2", 20)]);
    s.failed_checks = 1;
    let mut o = obs();
    o.target = Some(
        TargetUpdate {
            revision: "rev2".into(),
            target: split(&[("v3", 100)]),
            live: split(&[("v1", 80), ("v2", 20)]),
            companions: Vec::new(),
        }
        .into(),
    );
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
    o.target = Some(
        TargetUpdate {
            revision: "rev3".into(),
            target: split(&[("v1", 80), ("v2", 20)]),
            live: split(&[("v1", 80), ("v2", 20)]),
            companions: Vec::new(),
        }
        .into(),
    );
    let d = decide(&s, &o, &p, t0());
    assert_eq!(d.next.phase, Phase::Promoting);
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
            target: Some(
                TargetUpdate {
                    revision: "rev2".into(),
                    target: split(&[("v3", 100)]),
                    live: live.clone(),
                    companions: Vec::new(),
                }
                .into(),
            ),
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
    o.target = Some(
        TargetUpdate {
            revision: "rev2".into(),
            target: split(&[("v3", 100)]),
            live: split(&[("v1", 80), ("v2", 20)]),
            companions: vec![companion(&[("v3", 100)])],
        }
        .into(),
    );
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
