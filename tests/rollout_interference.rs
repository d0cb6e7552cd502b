//! A hand edit of the rolled-out route mid-step, through the pure state machine: when it is
//! noticed, what is written back, and that nothing measured at the foreign split is judged.

mod rollout_common;

use chrono::TimeDelta;
use rollout_common::*;
use veer::rollout::state::{Phase, Stage};
use veer::rollout::{
    Action, AnalysisReport, Event, LiveRoute, Observation, RolloutState, TrafficSplit,
    WriteReadBack, decide,
};

fn live(pairs: &[(&str, u32)], editor: Option<&str>) -> Option<LiveRoute> {
    Some(LiveRoute {
        split: split(pairs),
        editor: editor.map(str::to_string),
    })
}

/// A v1 → v2 rollout at step `step` (10/20/50) whose split is written, in `stage`.
fn at_step(step: usize, stage: Stage) -> RolloutState {
    let p = basic_policy();
    let mut s = new_state(&split(&[("v1", 100)]), &split(&[("v2", 100)]), &p);
    s.phase = Phase::Progressing;
    s.step = step;
    s.seq = 7;
    s.stage = stage;
    let w = s.steps[step];
    s.current_split = split(&[("v1", 100 - w), ("v2", w)]);
    s
}

fn obs_with(live_route: Option<LiveRoute>) -> Observation {
    Observation {
        available: Some(true),
        admitted: true,
        live: live_route,
        ..Observation::default()
    }
}

fn interfered(events: &[Event]) -> Vec<&Event> {
    events
        .iter()
        .filter(|e| matches!(e, Event::Interfered { .. }))
        .collect()
}

#[test]
fn when_a_live_split_counts_as_interference() {
    let settling = Stage::Settling {
        until: t0() + TimeDelta::minutes(1),
    };
    let edited = live(&[("v1", 50), ("v2", 50)], Some("kubectl-edit"));
    // (case, state, live route, interference expected)
    let cases: Vec<(&str, RolloutState, Option<LiveRoute>, bool)> = vec![
        (
            "settling, edited",
            at_step(1, settling),
            edited.clone(),
            true,
        ),
        (
            "analysing, edited",
            at_step(1, Stage::Analysing),
            edited.clone(),
            true,
        ),
        (
            "webhooks, edited",
            at_step(1, Stage::Webhooks),
            edited.clone(),
            true,
        ),
        (
            "settling, as written",
            at_step(1, settling),
            live(&[("v1", 80), ("v2", 20)], None),
            false,
        ),
        (
            "a zero-weight destination is the same traffic",
            at_step(1, settling),
            live(&[("v1", 80), ("v2", 20), ("v3", 0)], None),
            false,
        ),
        ("not looked", at_step(1, settling), None, false),
        (
            "own write in flight",
            at_step(1, Stage::Writing),
            edited.clone(),
            false,
        ),
        (
            "backing off after a write that did not stick",
            at_step(
                1,
                Stage::Backoff {
                    until: t0() + TimeDelta::minutes(1),
                },
            ),
            edited.clone(),
            false,
        ),
        (
            "waiting for health: the route is git's",
            {
                let mut s = at_step(0, Stage::Start);
                s.phase = Phase::WaitingForHealth;
                s.current_split = split(&[("v1", 100)]);
                s
            },
            edited.clone(),
            false,
        ),
        (
            "promoting writes its own split and reads it back",
            {
                let mut s = at_step(2, Stage::Writing);
                s.phase = Phase::Promoting;
                s
            },
            edited.clone(),
            false,
        ),
    ];
    for (name, state, live_route, want) in cases {
        let d = decide(&state, &obs_with(live_route), &basic_policy(), t0());
        assert_eq!(
            !interfered(&d.events).is_empty(),
            want,
            "{name}: {:?}",
            d.events
        );
    }
}

#[test]
fn an_edit_is_written_back_named_and_the_step_measured_afresh() {
    let state = at_step(1, Stage::Analysing);
    // The analysis of the step answers in the same observation as the edit: it measured
    // (partly) the foreign split, so it must not be judged.
    let mut o = obs_with(live(&[("v1", 50), ("v2", 50)], Some("kubectl-edit")));
    o.analysis = Some(AnalysisReport {
        id: state.seq,
        checks: vec![fail("success-rate")],
    });
    let d = decide(&state, &o, &basic_policy(), t0());
    assert_eq!(
        interfered(&d.events),
        [&Event::Interfered {
            expected: split(&[("v1", 80), ("v2", 20)]),
            live: split(&[("v1", 50), ("v2", 50)]),
            editor: Some("kubectl-edit".into()),
        }]
    );
    assert_eq!(
        d.next.failed_checks, 0,
        "the foreign measurement is not judged"
    );
    assert!(
        !d.events
            .iter()
            .any(|e| matches!(e, Event::CheckFailed { .. })),
        "{:?}",
        d.events
    );
    // The step's split is written again, under a new id.
    assert_eq!(
        d.action,
        Action::SetSplit {
            id: 8,
            split: split(&[("v1", 80), ("v2", 20)]),
            overlay: None,
        }
    );
    assert_eq!(d.next.step, 1, "the step does not move");

    // Read back: the settle starts over from now, a full interval at least before the next
    // check (due on the interval's grid: the first whole minute after it, `rollout::cadence`).
    let now = t0() + TimeDelta::seconds(5);
    let mut o = obs_with(None);
    o.write = Some(WriteReadBack {
        id: 8,
        read_back: split(&[("v1", 80), ("v2", 20)]),
    });
    let d2 = decide(&d.next, &o, &basic_policy(), now);
    assert_eq!(
        d2.next.stage,
        Stage::Settling {
            until: t0() + TimeDelta::minutes(2)
        }
    );
    assert!(
        !d2.events
            .iter()
            .any(|e| matches!(e, Event::StepAdvanced { .. })),
        "writing the same step again is not a step: {:?}",
        d2.events
    );
}

#[test]
fn a_whole_rollout_judges_every_step_at_its_own_split_despite_edits() {
    let p = basic_policy();
    let mut world = World::new(split(&[("v1", 100)]));
    world.report_live = true;
    world.editor = Some("kubectl-patch".into());
    // Every analysis sees the live split; while step 2 (20 %) settles, the route is edited to
    // 30/70 by hand.
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::<TrafficSplit>::new()));
    let record = seen.clone();
    world.verdicts = Box::new(move |_, live| {
        record.borrow_mut().push(live.clone());
        veer::rollout::AnalysisVerdict::Pass
    });
    let mut state = new_state(&split(&[("v1", 100)]), &split(&[("v2", 100)]), &p);
    let mut edited = false;
    for _ in 0..200 {
        if !edited
            && state.phase == Phase::Progressing
            && state.step == 1
            && matches!(state.stage, Stage::Settling { .. })
        {
            world.live = split(&[("v1", 30), ("v2", 70)]);
            edited = true;
        }
        state = world.tick(&state, &p);
        if matches!(world.log.last(), Some((_, Action::Done))) {
            break;
        }
    }
    assert!(edited, "the test reached step 2");
    assert_eq!(state.phase, Phase::Succeeded);
    let steps = [
        split(&[("v1", 90), ("v2", 10)]),
        split(&[("v1", 80), ("v2", 20)]),
        split(&[("v1", 50), ("v2", 50)]),
    ];
    let seen = seen.borrow();
    assert!(
        seen.iter().all(|s| steps.iter().any(|w| w.same_traffic(s))),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|s| s.same_traffic(&steps[1])),
        "the 20 % step was measured at 20 %: {seen:?}"
    );
    let events: Vec<&Event> = world
        .decisions
        .iter()
        .flat_map(|d| interfered(&d.events))
        .collect();
    assert_eq!(
        events,
        [&Event::Interfered {
            expected: steps[1].clone(),
            live: split(&[("v1", 30), ("v2", 70)]),
            editor: Some("kubectl-patch".into()),
        }]
    );
}
