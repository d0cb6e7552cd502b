//! Whole rollouts through the simulated I/O edge: overlay phases, healthy and failed runs, a
//! restarted controller, and long phases against the deadline.

use chrono::TimeDelta;
use veer::rollout::state::Phase;
use veer::rollout::{
    Action, AnalysisVerdict, Event, FailureReason, Observation, Overlay, RolloutState,
};

use crate::rollout_common::*;

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
