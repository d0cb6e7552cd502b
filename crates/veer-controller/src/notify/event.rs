//! What veer tells people about: the [`Event`]s, their [`Severity`], their [`DedupKey`] and a
//! plain-text rendering shared by every notifier. Plain data, pure.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::short;

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
    AwaitingApproval,
    RolloutPromoted,
    RolledBack,
    RevertPushed,
    SyncFailed,
}

impl EventKind {
    pub const ALL: [EventKind; 12] = [
        EventKind::RevisionApplied,
        EventKind::RevisionRejected,
        EventKind::DriftDetected,
        EventKind::DriftHealed,
        EventKind::RolloutStarted,
        EventKind::StepAdvanced,
        EventKind::RolloutPaused,
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

    /// One line for people, e.g. the Slack notification text.
    pub fn title(&self) -> String {
        match self {
            Event::RevisionApplied {
                revision,
                created,
                updated,
                pruned,
            } => format!(
                "Applied {} ({created} created, {updated} updated, {pruned} pruned)",
                revision.short()
            ),
            Event::RevisionRejected { revision, errors } => format!(
                "Rejected {}: {} validation error{}; nothing applied",
                revision.short(),
                errors.len(),
                plural(errors.len())
            ),
            Event::DriftDetected { commit, objects } => format!(
                "Drift: {} object{} differ from {}",
                objects.len(),
                plural(objects.len()),
                short(commit)
            ),
            Event::DriftHealed { commit, objects } => format!(
                "Healed drift: {} object{} restored to {}",
                objects.len(),
                plural(objects.len()),
                short(commit)
            ),
            Event::RolloutStarted {
                rollout,
                commit,
                weight,
            } => format!(
                "Rollout of {rollout} started for {}: {weight}% to the new version",
                short(commit)
            ),
            Event::StepAdvanced {
                rollout,
                step,
                steps,
                weight,
                ..
            } => format!("Rollout of {rollout}: step {step}/{steps}, {weight}% to the new version"),
            Event::RolloutPaused {
                rollout,
                step,
                reason,
                ..
            } => format!("Rollout of {rollout} paused at step {step}: {reason}"),
            Event::AwaitingApproval {
                rollout,
                step,
                weight,
                ..
            } => format!(
                "Rollout of {rollout} waits for approval at step {step} ({weight}% to the new version)"
            ),
            Event::RolloutPromoted { rollout, commit } => {
                format!(
                    "Rollout of {rollout} promoted: {} takes all traffic",
                    short(commit)
                )
            }
            Event::RolledBack {
                rollout,
                commit,
                reason,
                ..
            } => format!(
                "Rollout of {rollout} rolled back from {}: {reason}",
                short(commit)
            ),
            Event::RevertPushed {
                rollout,
                commit,
                revert,
            } => format!(
                "Pushed revert {} of {} after the rollback of {rollout}",
                short(revert),
                short(commit)
            ),
            Event::SyncFailed {
                commit, message, ..
            } => format!("Sync of {} failed: {message}", short(commit)),
        }
    }

    /// Detail lines under the title (plain text): the commit, the errors, the objects, the
    /// failing metric. Lists are capped at [`MAX_LISTED`].
    pub fn details(&self) -> Vec<String> {
        match self {
            Event::RevisionApplied { revision, .. } => vec![commit_line(revision)],
            Event::RevisionRejected { revision, errors } => {
                let mut lines = vec![commit_line(revision)];
                lines.extend(capped(errors, |p| {
                    format!("{}:{}: {}", p.file, p.line, p.message)
                }));
                lines
            }
            Event::DriftDetected { objects, .. }
            | Event::DriftHealed { objects, .. }
            | Event::SyncFailed { objects, .. } => capped(objects, |o| o.clone()),
            Event::RolledBack {
                failing: Some(f), ..
            } => {
                let mut lines = vec![
                    format!("metric: {}", f.name),
                    format!("query: {}", f.query),
                    match f.value {
                        Some(v) => format!("value: {v} (threshold {})", f.threshold),
                        None => {
                            format!("value: could not be measured (threshold {})", f.threshold)
                        }
                    },
                ];
                lines.extend(f.baseline.clone());
                lines
            }
            Event::RolledBack { failing: None, .. }
            | Event::RolloutStarted { .. }
            | Event::StepAdvanced { .. }
            | Event::RolloutPaused { .. }
            | Event::AwaitingApproval { .. }
            | Event::RolloutPromoted { .. }
            | Event::RevertPushed { .. } => vec![],
        }
    }

    /// Title and details as one plain-text block.
    pub fn plain_text(&self) -> String {
        let mut text = self.title();
        for line in self.details() {
            text.push('\n');
            text.push_str(&line);
        }
        text
    }
}

/// Fill a commit URL template: `{commit}` becomes the full id, `{short}` the first 12 digits.
pub fn commit_url(template: &str, commit: &str) -> String {
    template
        .replace("{commit}", commit)
        .replace("{short}", short(commit))
}

fn commit_line(c: &CommitInfo) -> String {
    format!("{} by {}: {}", c.short(), c.author, c.summary)
}

fn capped<T>(items: &[T], show: impl Fn(&T) -> String) -> Vec<String> {
    let mut lines: Vec<String> = items.iter().take(MAX_LISTED).map(show).collect();
    if items.len() > MAX_LISTED {
        lines.push(format!("… and {} more", items.len() - MAX_LISTED));
    }
    lines
}

fn sorted_list(items: &[String]) -> String {
    let mut items: Vec<&str> = items.iter().map(String::as_str).collect();
    items.sort_unstable();
    items.dedup();
    items.join(",")
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn info(commit: &str) -> CommitInfo {
        CommitInfo {
            commit: commit.to_string(),
            author: "Ada <ada@example.com>".to_string(),
            summary: "Shift reviews to v2".to_string(),
        }
    }

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

    #[test]
    fn long_lists_are_capped_in_details() {
        let errors: Vec<Problem> = (1..=25)
            .map(|i| Problem {
                file: "vs.yaml".into(),
                line: i,
                message: "weights must sum to 100".into(),
            })
            .collect();
        let e = Event::RevisionRejected {
            revision: info("0123456789abcdef"),
            errors,
        };
        let details = e.details();
        assert_eq!(details.len(), 1 + MAX_LISTED + 1);
        assert_eq!(details[1], "vs.yaml:1: weights must sum to 100");
        assert_eq!(details.last().unwrap(), "… and 15 more");
        assert_eq!(
            e.title(),
            "Rejected 0123456789ab: 25 validation errors; nothing applied"
        );
        assert_eq!(e.severity(), Severity::Error);
    }

    #[test]
    fn rolled_back_names_the_failing_metric() {
        let e = Event::RolledBack {
            rollout: "shop/reviews".into(),
            commit: "abc".into(),
            reason: "analysis failed".into(),
            failing: Some(FailingMetric {
                name: "success-rate".into(),
                query: "sum(rate(x[1m]))".into(),
                value: Some(0.91),
                threshold: ">= 0.99".into(),
                baseline: None,
            }),
        };
        assert_eq!(
            e.details(),
            vec![
                "metric: success-rate",
                "query: sum(rate(x[1m]))",
                "value: 0.91 (threshold >= 0.99)"
            ]
        );
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["kind"], "rolled-back");
        assert_eq!(json["failing"]["threshold"], ">= 0.99");
        assert!(json["failing"].get("baseline").is_none());
    }

    #[test]
    fn rolled_back_by_the_baseline_says_so() {
        let e = Event::RolledBack {
            rollout: "shop/reviews".into(),
            commit: "abc".into(),
            reason: "2 failed checks (threshold 2)".into(),
            failing: Some(FailingMetric {
                name: "p99-latency".into(),
                query: "histogram_quantile(0.99, x)".into(),
                value: Some(248.5),
                threshold: "<= 500".into(),
                baseline: Some(
                    "baseline fail p=0.0065 < 0.05 (median 248.50 vs 24.85, 6/9 samples)".into(),
                ),
            }),
        };
        assert_eq!(
            e.details().last().map(String::as_str),
            Some("baseline fail p=0.0065 < 0.05 (median 248.50 vs 24.85, 6/9 samples)")
        );
        let json = serde_json::to_value(&e).unwrap();
        assert!(
            json["failing"]["baseline"]
                .as_str()
                .unwrap()
                .contains("p=0.0065")
        );
    }

    #[test]
    fn commit_url_template() {
        assert_eq!(
            commit_url(
                "https://github.com/org/repo/commit/{commit}",
                "0123456789abcdef"
            ),
            "https://github.com/org/repo/commit/0123456789abcdef"
        );
        assert_eq!(
            commit_url("x/{short}", "0123456789abcdef"),
            "x/0123456789ab"
        );
    }
}
