//! The plain-text rendering of an [`Event`] shared by every notifier: a one-line title, detail
//! lines (lists capped at [`MAX_LISTED`]), and commit links from a URL template. Pure.

use super::{CommitInfo, Event, MAX_LISTED};
use crate::ids::short;

impl Event {
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
                phase,
            } => {
                let how = match phase.as_deref() {
                    Some("Mirroring") => {
                        "mirroring the route's requests to the new version (answers discarded)"
                            .to_string()
                    }
                    Some("Matching") => "A/B phase: requests matching the policy's headers or cookie go to the new version".to_string(),
                    Some("FaultTesting") => {
                        format!("fault test with {weight}% to the new version")
                    }
                    Some(_) | None => format!("{weight}% to the new version"),
                };
                format!("Rollout of {rollout} started for {}: {how}", short(commit))
            }
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
            Event::RolloutInterfered {
                rollout,
                step,
                expected,
                live,
                editor,
                ..
            } => format!(
                "Rollout of {rollout}: the route was edited at step {step} by {} ({live}); veer set it back to {expected} and measures the step again",
                editor.as_deref().unwrap_or("an unknown field manager")
            ),
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
                        Some(v) => format!(
                            "value: {} (threshold {})",
                            crate::figures::for_people(v),
                            f.threshold
                        ),
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
            | Event::RolloutInterfered { .. }
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

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notice::{FailingMetric, Problem, Severity};

    pub(crate) fn info(commit: &str) -> CommitInfo {
        CommitInfo {
            commit: commit.to_string(),
            author: "Ada <ada@example.com>".to_string(),
            summary: "Shift reviews to v2".to_string(),
        }
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
