//! Operator commands (pause, resume, promote, abort, retry): once each, and in every phase.

use chrono::TimeDelta;
use veer::rollout::state::Phase;
use veer::rollout::{
    Action, Command, Event, FailureReason, Observation, OperatorCommand, TargetUpdate, decide,
};

use crate::helpers::*;
use crate::rollout_common::*;

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
    same.target = Some(
        TargetUpdate {
            revision: "rev1".into(),
            target: split(&[("v2", 100)]),
            live: split(&[("v1", 100)]),
            companions: Vec::new(),
        }
        .into(),
    );
    let stays = decide(&failed, &same, &p, t0());
    assert_eq!((stays.action, stays.next), (Action::Done, failed.clone()));
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
