//! What the outside hears of each decision: a log line per rollout event, a notification for
//! the transitions people should hear about (chosen and built by the pure
//! [`crate::rollout::notice`]), and the rollout's metric series (weight, phase, each check's
//! value, threshold and p-value).

use tracing::{info, warn};

use super::RolloutId;
use super::tick::Env;
use crate::manifest::rollout_policy::RolloutPolicy;
use crate::metrics::Bound;
use crate::notify;
use crate::rollout::RolloutState;
use crate::rollout::notice::notice;
use crate::rollout::state::Event as RolloutEvent;

impl Env<'_> {
    pub(super) fn notify(&self, event: notify::Event) {
        if let Some(n) = self.notifications {
            n.send(event);
        }
    }

    pub(super) fn on_event(
        &self,
        id: &RolloutId,
        before: &RolloutState,
        after: &RolloutState,
        event: &RolloutEvent,
    ) {
        match event {
            RolloutEvent::Held { reason } => {
                warn!(rollout = %id, phase = %after.phase, reason = ?reason, "holding")
            }
            RolloutEvent::CheckFailed {
                failed_checks,
                threshold,
                checks,
            } => {
                warn!(rollout = %id, failed_checks, threshold, checks = ?checks, "check failed")
            }
            RolloutEvent::PhaseChanged { from, to } => {
                info!(rollout = %id, from = %from, to = %to, "rollout phase")
            }
            RolloutEvent::StepAdvanced { step, split } => {
                info!(rollout = %id, step, split = %split, "step advanced")
            }
            RolloutEvent::Interfered {
                expected,
                live,
                editor,
            } => {
                warn!(rollout = %id, %expected, %live, editor = editor.as_deref().unwrap_or("unknown"), "the route was edited mid-step; writing the step's split again and measuring the step afresh")
            }
            RolloutEvent::CheckPassed { .. }
            | RolloutEvent::WebhookFailed { .. }
            | RolloutEvent::WriteNotReadBack { .. }
            | RolloutEvent::RollbackNotRestored { .. }
            | RolloutEvent::RollingBack { .. }
            | RolloutEvent::RolledBack { .. }
            | RolloutEvent::Promoted { .. }
            | RolloutEvent::Reverted { .. }
            | RolloutEvent::RevertFailed { .. }
            | RolloutEvent::Restarted { .. }
            | RolloutEvent::CommandApplied { .. }
            | RolloutEvent::CommandIgnored { .. } => {
                info!(rollout = %id, event = ?event, "rollout")
            }
        }
        if let Some(n) = notice(id, before, after, event) {
            self.notify(n);
        }
    }

    pub(super) fn record_metrics(
        &self,
        id: &RolloutId,
        before: &RolloutState,
        after: &RolloutState,
        policy: &RolloutPolicy,
    ) {
        let name = id.to_string();
        if after.revision != before.revision {
            // A new rollout: the last one's values (maybe of metrics no longer judged) go.
            self.metrics.forget_analysis(&name);
        }
        self.metrics
            .set_rollout_weight(&name, f64::from(after.canary_weight()));
        self.metrics.set_rollout_phase(&name, after.phase.as_str());
        // Records added by this decision (the history is bounded: compare by count of new
        // tail entries).
        let new = after.history.len().saturating_sub(before.history.len());
        let added = if after.history.len() == before.history.len()
            && after.history.last() != before.history.last()
        {
            // The history was full and rotated: at least the last entry is new.
            1
        } else {
            new
        };
        for r in after.history.iter().rev().take(added) {
            self.metrics.record_check(&r.check, r.outcome.judgement());
            if let Some(v) = r.value {
                self.metrics.set_metric_value(&name, &r.check, v);
            }
            // A check without a comparison (a threshold fail, no data) clears the last p-value,
            // so a stale one is not read as current.
            self.metrics.set_baseline_p_value(
                &name,
                &r.check,
                r.baseline.as_ref().and_then(|b| b.verdict.p_value()),
            );
            if let Some(m) = policy.spec.metrics.iter().find(|m| m.name == r.check) {
                self.metrics.set_metric_threshold(
                    &name,
                    &r.check,
                    Bound::Min,
                    m.threshold_range.min,
                );
                self.metrics.set_metric_threshold(
                    &name,
                    &r.check,
                    Bound::Max,
                    m.threshold_range.max,
                );
            }
        }
    }
}
