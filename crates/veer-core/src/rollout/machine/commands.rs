//! Operator commands (pause, resume, promote, abort, retry) and new commits: how each
//! changes the rollout before the phase runs.

use super::Machine;
use crate::rollout::split::TrafficSplit;
use crate::rollout::state::{self, Event, FailureReason, Phase, Resume, RolloutState, Stage};
use crate::rollout::{Command, CompanionRoute, Observation};

impl Machine<'_> {
    pub(super) fn command(&mut self, obs: &Observation) {
        let Some(c) = obs.command else { return };
        if c.id <= self.s.last_command {
            return;
        }
        self.s.last_command = c.id;
        let phase = self.s.phase;
        let before_promotion = match phase {
            Phase::Queued
            | Phase::WaitingForHealth
            | Phase::PreRollout
            | Phase::Mirroring
            | Phase::Matching
            | Phase::FaultTesting
            | Phase::Progressing
            | Phase::AwaitingPromotion => true,
            Phase::Paused
            | Phase::Promoting
            | Phase::Succeeded
            | Phase::RollingBack
            | Phase::Failed => false,
        };
        let applied = match c.command {
            Command::Pause if before_promotion => {
                self.s.resume = Some(Resume { phase });
                self.events.push(Event::PhaseChanged {
                    from: phase,
                    to: Phase::Paused,
                });
                self.s.phase = Phase::Paused;
                self.s.stage = Stage::Start;
                true
            }
            Command::Resume if phase == Phase::Paused => {
                let to = self
                    .s
                    .resume
                    .take()
                    .map_or(Phase::WaitingForHealth, |r| r.phase);
                self.events.push(Event::PhaseChanged { from: phase, to });
                // Back to the start of the phase (rewriting the current step's traffic, which
                // is idempotent), keeping its passed iterations; the deadline restarts.
                self.s.phase = to;
                self.s.stage = Stage::Start;
                self.s.step_started_at = self.now;
                true
            }
            Command::Promote if before_promotion || phase == Phase::Paused => {
                self.s.resume = None;
                self.enter(Phase::Promoting);
                true
            }
            Command::Abort if before_promotion || phase == Phase::Paused => {
                self.rollback(FailureReason::Aborted);
                true
            }
            Command::Retry if phase == Phase::Failed => {
                let from = self.s.start_split.clone();
                let target = self.s.target_split.clone();
                self.restart_attempt(&from, &target);
                self.enter(Phase::Queued);
                true
            }
            Command::Pause
            | Command::Resume
            | Command::Promote
            | Command::Abort
            | Command::Retry => false,
        };
        self.events.push(if applied {
            Event::CommandApplied { command: c.command }
        } else {
            Event::CommandIgnored {
                command: c.command,
                phase,
            }
        });
    }

    /// Reset the attempt to go from `from` to `target`, keeping the pre-rollout split.
    fn restart_attempt(&mut self, from: &TrafficSplit, target: &TrafficSplit) {
        let from = from.extended(target).extended(&self.s.start_split);
        let target = target.extended(&from);
        self.s.start_split = self.s.start_split.extended(&target);
        self.s.steps = state::plan(&from, &target, self.policy);
        self.s.from_split = from.clone();
        self.s.current_split = from.clone();
        self.s.target_split = target.clone();
        self.s.step = 0;
        self.s.iterations = 0;
        self.s.failed_checks = 0;
        self.s.last_hold = None;
        self.s.failure = None;
        self.s.revert_commit = None;
        self.events.push(Event::Restarted {
            revision: self.s.revision.clone(),
            from,
            target,
        });
    }

    pub(super) fn new_target(&mut self, obs: &Observation) {
        let Some(t) = &obs.target else { return };
        if t.revision == self.s.revision {
            return;
        }
        let nothing_to_shift = t.target.same_traffic(&t.live);
        match self.s.phase {
            // Finish restoring first; the next decision after `Failed` takes the new commit.
            Phase::RollingBack => {}
            Phase::Succeeded | Phase::Failed if nothing_to_shift => {
                // Git now says what live is (e.g. veer's own revert commit): adopt it.
                self.s.revision = t.revision.clone();
                self.s.target_split = t.target.extended(&t.live);
            }
            Phase::Succeeded | Phase::Failed => {
                let mut fresh = RolloutState::new(
                    t.revision.clone(),
                    self.s.route.clone(),
                    &t.live,
                    &t.target,
                    self.policy,
                    self.now,
                );
                // Ids keep increasing across rollouts of the route, so no old answer or
                // command can be mistaken for a new one.
                fresh.seq = self.s.seq;
                fresh.last_command = self.s.last_command;
                fresh.history = std::mem::take(&mut self.s.history);
                fresh.companions = t.companions.clone();
                self.events.push(Event::Restarted {
                    revision: fresh.revision.clone(),
                    from: fresh.from_split.clone(),
                    target: fresh.target_split.clone(),
                });
                self.events.push(Event::PhaseChanged {
                    from: self.s.phase,
                    to: Phase::Queued,
                });
                self.s = fresh;
            }
            Phase::Queued
            | Phase::WaitingForHealth
            | Phase::PreRollout
            | Phase::Mirroring
            | Phase::Matching
            | Phase::FaultTesting
            | Phase::Progressing
            | Phase::Paused
            | Phase::AwaitingPromotion
            | Phase::Promoting => {
                self.s.revision = t.revision.clone();
                self.restart_attempt(&t.live, &t.target);
                self.retarget_companions(&t.companions);
                let next = if nothing_to_shift {
                    Phase::Promoting
                } else {
                    Phase::WaitingForHealth
                };
                match self.s.phase {
                    Phase::Queued => {}
                    Phase::Paused => self.s.resume = Some(Resume { phase: next }),
                    Phase::WaitingForHealth
                    | Phase::PreRollout
                    | Phase::Mirroring
                    | Phase::Matching
                    | Phase::FaultTesting
                    | Phase::Progressing
                    | Phase::AwaitingPromotion
                    | Phase::Promoting
                    | Phase::Succeeded
                    | Phase::RollingBack
                    | Phase::Failed => self.enter(next),
                }
            }
        }
    }

    /// A new commit mid-rollout: each companion git still shifts heads for git's split now,
    /// from where it started; a route git newly shifts joins from its live split.
    fn retarget_companions(&mut self, now: &[CompanionRoute]) {
        for c in now {
            match self.s.companions.iter_mut().find(|k| k.route == c.route) {
                Some(known) => known.target = c.target.clone(),
                None => self.s.companions.push(c.clone()),
            }
        }
    }
}
