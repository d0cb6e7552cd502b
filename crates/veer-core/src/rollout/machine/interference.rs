//! A hand edit mid-step: the live route (from the watch cache) no longer serves the split
//! the current step wrote. veer owns those weights while the rollout runs, so it writes them
//! again; the step's settle and analysis restart, because whatever was measured since the
//! edit was measured at someone else's split.

use super::Machine;
use crate::rollout::Observation;
use crate::rollout::state::{Event, Phase, Stage};

impl Machine<'_> {
    pub(super) fn interference(&mut self, obs: &Observation) {
        let Some(live) = &obs.live else {
            return;
        };
        if !self.holds_written_traffic() || live.split.same_traffic(&self.s.current_split) {
            return;
        }
        self.events.push(Event::Interfered {
            expected: self.s.current_split.clone(),
            live: live.split.clone(),
            editor: live.editor.clone(),
        });
        // Back to the start of the step: the write is issued again (a new id, so an analysis
        // answer already on its way is not judged), then the settle and the checks.
        self.s.stage = Stage::Start;
        self.s.last_hold = None;
        // Its settle is a full interval again: what came before was someone else's split.
        self.s.cadence = None;
    }

    /// Is the current step's split written, read back and in force (so that any other live
    /// split is someone else's)? Not while a write is in flight or backing off, and not
    /// outside the phases that move traffic: before them the route is git's, after them
    /// promotion or rollback write their own split and read it back.
    fn holds_written_traffic(&self) -> bool {
        let in_force = match self.s.stage {
            Stage::Settling { .. } | Stage::Webhooks | Stage::Analysing => true,
            Stage::Start | Stage::Writing | Stage::Reverting | Stage::Backoff { .. } => false,
        };
        let moving = match self.s.phase {
            Phase::Mirroring | Phase::Matching | Phase::FaultTesting | Phase::Progressing => true,
            Phase::Queued
            | Phase::WaitingForHealth
            | Phase::PreRollout
            | Phase::Paused
            | Phase::AwaitingPromotion
            | Phase::Promoting
            | Phase::Succeeded
            | Phase::RollingBack
            | Phase::Failed => false,
        };
        in_force && moving
    }
}
