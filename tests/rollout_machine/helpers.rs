//! Builders shared by the rollout machine tests: observations, states at a given stage, and
//! answers to a pending action.

use veer::rollout::state::{Phase, Stage};
use veer::rollout::{AnalysisReport, Observation, RolloutState};

use crate::rollout_common::*;

pub fn obs() -> Observation {
    Observation {
        available: Some(true),
        admitted: true,
        ..Observation::default()
    }
}

/// A state of a v1 → v2 rollout at Progressing step `step`, awaiting nothing.
pub fn progressing(step: usize) -> RolloutState {
    let p = basic_policy();
    let mut s = new_state(&split(&[("v1", 100)]), &split(&[("v2", 100)]), &p);
    s.phase = Phase::Progressing;
    s.step = step;
    s.stage = Stage::Start;
    s
}

/// Answer the state's pending action with `answer(id)`.
pub fn answered(s: &RolloutState, f: impl FnOnce(u64, &mut Observation)) -> Observation {
    let mut o = obs();
    f(s.seq, &mut o);
    o
}

pub fn analysing(checks: Vec<veer::rollout::Check>) -> (RolloutState, Observation) {
    let mut s = progressing(0);
    s.seq = 7;
    s.stage = Stage::Analysing;
    let o = answered(&s, |id, o| o.analysis = Some(AnalysisReport { id, checks }));
    (s, o)
}

pub fn d_(subset: &str) -> veer::rollout::DestinationId {
    d(subset)
}
