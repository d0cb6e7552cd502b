//! What veer tells people about: the [`Event`]s, their [`Severity`], their [`DedupKey`] and a
//! plain-text rendering shared by every notifier. Plain data, pure: the decisions that raise
//! an event (e.g. [`crate::rollout::notice`]) build it here, the controller's notifiers send
//! it.
//!
//! [`Event::title`], [`Event::details`] and [`Event::plain_text`] live in `text`, with
//! [`commit_url`].

mod text;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::short;

pub use text::commit_url;

/// How many list items (validation errors, drifted objects) a message shows; the rest are
/// counted ("and 12 more"), so one bad commit cannot produce a megabyte message.
pub const MAX_LISTED: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which kind of event, for filters (`events:` in veer.yaml) and payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    RevisionApplied,
    RevisionRejected,
    DriftDetected,
    DriftHealed,
    RolloutStarted,
    StepAdvanced,
    RolloutPaused,
    RolloutInterfered,
    AwaitingApproval,
    RolloutPromoted,
    RolledBack,
    RevertPushed,
    SyncFailed,
}

impl EventKind {
    pub const ALL: [EventKind; 13] = [
        EventKind::RevisionApplied,
        EventKind::RevisionRejected,
        EventKind::DriftDetected,
        EventKind::DriftHealed,
        EventKind::RolloutStarted,
        EventKind::StepAdvanced,
        EventKind::RolloutPaused,
        EventKind::RolloutInterfered,
        EventKind::AwaitingApproval,
        EventKind::RolloutPromoted,
        EventKind::RolledBack,
        EventKind::RevertPushed,
        EventKind::SyncFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::RevisionApplied => "revision-applied",
            EventKind::RevisionRejected => "revision-rejected",
            EventKind::DriftDetected => "drift-detected",
            EventKind::DriftHealed => "drift-healed",
            EventKind::RolloutStarted => "rollout-started",
            EventKind::StepAdvanced => "step-advanced",
            EventKind::RolloutPaused => "rollout-paused",
            EventKind::RolloutInterfered => "rollout-interfered",
            EventKind::AwaitingApproval => "awaiting-approval",
            EventKind::RolloutPromoted => "rollout-promoted",
            EventKind::RolledBack => "rolled-back",
            EventKind::RevertPushed => "revert-pushed",
            EventKind::SyncFailed => "sync-failed",
        }
    }

    /// Sent unless a notifier lists its own `events`. Step advances are chatty: opt-in.
    pub fn on_by_default(self) -> bool {
        match self {
            EventKind::StepAdvanced => false,
            EventKind::RevisionApplied
            | EventKind::RevisionRejected
            | EventKind::DriftDetected
            | EventKind::DriftHealed
            | EventKind::RolloutStarted
            | EventKind::RolloutPaused
            | EventKind::RolloutInterfered
            | EventKind::AwaitingApproval
            | EventKind::RolloutPromoted
            | EventKind::RolledBack
            | EventKind::RevertPushed
            | EventKind::SyncFailed => true,
        }
    }

    /// Parse a name as written in veer.yaml.
    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The commit an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitInfo {
    /// Full id.
    pub commit: String,
    /// `Name <email>`.
    pub author: String,
    /// First line of the message.
    pub summary: String,
}

impl CommitInfo {
    pub fn short(&self) -> &str {
        short(&self.commit)
    }
}

/// One validation error, where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    pub file: String,
    pub line: u32,
    pub message: String,
}

/// The metric that failed a rollout's analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailingMetric {
    pub name: String,
    /// The PromQL as run.
    pub query: String,
    /// `None`: it could not be measured (and the policy says that fails).
    pub value: Option<f64>,
    /// The allowed range as people read it, e.g. `>= 0.99`.
    pub threshold: String,
    /// The comparison with the old version as people read it (verdict, p-value, medians),
    /// when the policy compares this metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
}

/// Something veer did or saw that people should hear about. Closed: every notifier matches
/// every variant. `rollout` is the rollout's route as `namespace/name`; `commit` its revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum Event {
    RevisionApplied {
        revision: CommitInfo,
        created: usize,
        updated: usize,
        pruned: usize,
    },
    /// Nothing of it was applied. `errors` may be long: renderings cap it at [`MAX_LISTED`].
    RevisionRejected {
        revision: CommitInfo,
        errors: Vec<Problem>,
    },
    /// `objects` as `Kind namespace/name`.
    DriftDetected {
        commit: String,
        objects: Vec<String>,
    },
    DriftHealed {
        commit: String,
        objects: Vec<String>,
    },
    RolloutStarted {
        rollout: String,
        commit: String,
        /// Canary weight of the first step, percent.
        weight: u32,
        /// The phase traffic first moved in (`Mirroring`, `Matching` for an A/B phase,
        /// `FaultTesting`, `Progressing`), so people read what the new version gets.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        phase: Option<String>,
    },
    StepAdvanced {
        rollout: String,
        commit: String,
        step: u32,
        steps: u32,
        weight: u32,
    },
    RolloutPaused {
        rollout: String,
        commit: String,
        step: u32,
        reason: String,
    },
    /// The rolled-out route served `live` where step `step` had set `expected`: someone
    /// (`editor`, a field manager) edited it mid-step. veer wrote the step's split again and
    /// measures the step afresh.
    RolloutInterfered {
        rollout: String,
        commit: String,
        step: u32,
        expected: String,
        live: String,
        editor: Option<String>,
    },
    AwaitingApproval {
        rollout: String,
        commit: String,
        step: u32,
        weight: u32,
    },
    RolloutPromoted {
        rollout: String,
        commit: String,
    },
    RolledBack {
        rollout: String,
        commit: String,
        reason: String,
        failing: Option<FailingMetric>,
    },
    RevertPushed {
        rollout: String,
        /// The commit that was reverted.
        commit: String,
        /// The revert commit veer pushed.
        revert: String,
    },
    SyncFailed {
        commit: String,
        message: String,
        /// Objects that failed, as `Kind namespace/name`; may be empty (the whole pass failed).
        objects: Vec<String>,
    },
}

/// What makes two events "the same" for deduplication: the object (a rollout, the revision,
/// a set of drifted objects), the revision, and the transition. Never the message text, so
/// a reworded or re-rendered message is still a duplicate, and two different transitions with
/// the same words are not.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DedupKey {
    pub object: String,
    pub revision: String,
    pub transition: String,
}

impl Event {
    pub fn kind(&self) -> EventKind {
        match self {
            Event::RevisionApplied { .. } => EventKind::RevisionApplied,
            Event::RevisionRejected { .. } => EventKind::RevisionRejected,
            Event::DriftDetected { .. } => EventKind::DriftDetected,
            Event::DriftHealed { .. } => EventKind::DriftHealed,
            Event::RolloutStarted { .. } => EventKind::RolloutStarted,
            Event::StepAdvanced { .. } => EventKind::StepAdvanced,
            Event::RolloutPaused { .. } => EventKind::RolloutPaused,
            Event::RolloutInterfered { .. } => EventKind::RolloutInterfered,
            Event::AwaitingApproval { .. } => EventKind::AwaitingApproval,
            Event::RolloutPromoted { .. } => EventKind::RolloutPromoted,
            Event::RolledBack { .. } => EventKind::RolledBack,
            Event::RevertPushed { .. } => EventKind::RevertPushed,
            Event::SyncFailed { .. } => EventKind::SyncFailed,
        }
    }

    pub fn severity(&self) -> Severity {
        match self {
            Event::RevisionApplied { .. }
            | Event::DriftHealed { .. }
            | Event::RolloutStarted { .. }
            | Event::StepAdvanced { .. }
            | Event::RolloutPromoted { .. } => Severity::Info,
            Event::DriftDetected { .. }
            | Event::RolloutPaused { .. }
            | Event::RolloutInterfered { .. }
            | Event::AwaitingApproval { .. }
            | Event::RevertPushed { .. } => Severity::Warning,
            Event::RevisionRejected { .. }
            | Event::RolledBack { .. }
            | Event::SyncFailed { .. } => Severity::Error,
        }
    }

    /// The revision (full commit id) the event is about.
    pub fn commit(&self) -> &str {
        match self {
            Event::RevisionApplied { revision, .. } | Event::RevisionRejected { revision, .. } => {
                &revision.commit
            }
            Event::DriftDetected { commit, .. }
            | Event::DriftHealed { commit, .. }
            | Event::RolloutStarted { commit, .. }
            | Event::StepAdvanced { commit, .. }
            | Event::RolloutPaused { commit, .. }
            | Event::RolloutInterfered { commit, .. }
            | Event::AwaitingApproval { commit, .. }
            | Event::RolloutPromoted { commit, .. }
            | Event::RolledBack { commit, .. }
            | Event::RevertPushed { commit, .. }
            | Event::SyncFailed { commit, .. } => commit,
        }
    }

    /// The rollout the event belongs to, for Slack threads.
    pub fn rollout(&self) -> Option<&str> {
        match self {
            Event::RolloutStarted { rollout, .. }
            | Event::StepAdvanced { rollout, .. }
            | Event::RolloutPaused { rollout, .. }
            | Event::RolloutInterfered { rollout, .. }
            | Event::AwaitingApproval { rollout, .. }
            | Event::RolloutPromoted { rollout, .. }
            | Event::RolledBack { rollout, .. }
            | Event::RevertPushed { rollout, .. } => Some(rollout),
            Event::RevisionApplied { .. }
            | Event::RevisionRejected { .. }
            | Event::DriftDetected { .. }
            | Event::DriftHealed { .. }
            | Event::SyncFailed { .. } => None,
        }
    }

    pub fn dedup_key(&self) -> DedupKey {
        let kind = self.kind().as_str();
        let (object, transition) = match self {
            Event::RevisionApplied { .. } | Event::RevisionRejected { .. } => {
                ("revision".to_string(), kind.to_string())
            }
            // The same drift seen again at the next pass is a duplicate; a different set of
            // objects is news.
            Event::DriftDetected { objects, .. }
            | Event::DriftHealed { objects, .. }
            | Event::SyncFailed { objects, .. } => (sorted_list(objects), kind.to_string()),
            Event::StepAdvanced { rollout, step, .. }
            | Event::RolloutPaused { rollout, step, .. }
            | Event::AwaitingApproval { rollout, step, .. } => {
                (rollout.clone(), format!("{kind}:{step}"))
            }
            // Another edit at the same step, to another split, is news.
            Event::RolloutInterfered {
                rollout,
                step,
                live,
                ..
            } => (rollout.clone(), format!("{kind}:{step}:{live}")),
            Event::RolloutStarted { rollout, .. }
            | Event::RolloutPromoted { rollout, .. }
            | Event::RolledBack { rollout, .. }
            | Event::RevertPushed { rollout, .. } => (rollout.clone(), kind.to_string()),
        };
        DedupKey {
            object,
            revision: self.commit().to_string(),
            transition,
        }
    }
}

fn sorted_list(items: &[String]) -> String {
    let mut items: Vec<&str> = items.iter().map(String::as_str).collect();
    items.sort_unstable();
    items.dedup();
    items.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip_and_step_advanced_is_opt_in() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
            assert_eq!(kind.on_by_default(), kind != EventKind::StepAdvanced);
        }
        assert_eq!(EventKind::parse("rollback"), None);
    }

    #[test]
    fn dedup_key_is_object_revision_transition_not_text() {
        let rolled_back = |commit: &str, reason: &str| Event::RolledBack {
            rollout: "shop/reviews".into(),
            commit: commit.into(),
            reason: reason.into(),
            failing: None,
        };
        let a = rolled_back("c1", "success rate 0.91");
        let reworded = rolled_back("c1", "a different message");
        assert_eq!(a.dedup_key(), reworded.dedup_key());
        assert_eq!(
            a.dedup_key(),
            DedupKey {
                object: "shop/reviews".into(),
                revision: "c1".into(),
                transition: "rolled-back".into()
            }
        );
        let other_revision = rolled_back("c2", "success rate 0.91");
        assert_ne!(a.dedup_key(), other_revision.dedup_key());
        // Same words, different step: not a duplicate.
        let step = |step| Event::RolloutPaused {
            rollout: "shop/reviews".into(),
            commit: "c1".into(),
            step,
            reason: "paused by an operator".into(),
        };
        assert_ne!(step(1).dedup_key(), step(2).dedup_key());
        // Drift: the set of objects, in any order.
        let drift = |objects: &[&str]| Event::DriftDetected {
            commit: "c1".into(),
            objects: objects.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(
            drift(&["VirtualService a/x", "Service a/y"]).dedup_key(),
            drift(&["Service a/y", "VirtualService a/x"]).dedup_key()
        );
        assert_ne!(
            drift(&["Service a/y"]).dedup_key(),
            drift(&["Service a/z"]).dedup_key()
        );
    }
}
