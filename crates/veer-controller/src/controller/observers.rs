//! Who hears about each reconcile pass besides the log: the status page, Prometheus metrics
//! and notifications. What to tell them is decided by pure functions over the pass
//! ([`pass_events`], `Pass::outcome`); [`Observers::after_pass`] only hands it out.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Controller, Pass};
use crate::diff::Cause;
use crate::metrics::Metrics;
use crate::notify::{CommitInfo, Event, Notifications, Problem};
use crate::server::StatusBoard;
use crate::source::Revision;
use crate::sync::ObjectResult;
use crate::validate::Report;

/// At most this many validation errors go into one notification; the rest are counted.
const MAX_PROBLEMS: usize = 10;

/// The optional listeners of `veer run`. All default to none (tests, one-shot commands).
#[derive(Default, Clone)]
pub struct Observers {
    pub board: Option<StatusBoard>,
    pub metrics: Option<Arc<Metrics>>,
    pub notifications: Option<Arc<Notifications>>,
}

impl Observers {
    /// Report one pass that took `took`, finished at `now`.
    pub fn after_pass(
        &self,
        controller: &Controller,
        pass: &Pass,
        took: Duration,
        now: DateTime<Utc>,
    ) {
        if let Some(board) = &self.board {
            // A pass that planned nothing left every object's record as it was.
            let idle = matches!(pass, Pass::InSync { .. } | Pass::DriftReported { .. })
                && controller
                    .last_planning()
                    .is_some_and(|p| p.objects == 0 && p.full.is_none())
                && board.has_objects();
            match idle {
                true => board.record_outcome(pass, controller.state(), now),
                false => board.record_pass(pass, controller.state(), now),
            }
            if matches!(pass, Pass::Synced { .. }) {
                board.set_last_diff(controller.last_diff().map(str::to_string));
            }
            // Live state comes from watches started by the first pass that read the cluster.
            board.set_watches_up(matches!(
                pass,
                Pass::InSync { .. } | Pass::DriftReported { .. } | Pass::Synced { .. }
            ));
            record_rollouts(board, controller, now);
        }
        if let Some(metrics) = &self.metrics {
            metrics.observe_reconcile(took);
            metrics.record_sync(pass.outcome());
            metrics.set_drift_objects(controller.state().drift.len());
        }
        if let Some(notifications) = &self.notifications {
            let current = controller.current_revision();
            let rejected = controller.rejected_revision();
            for event in pass_events(pass, current, rejected) {
                notifications.send(event);
            }
        }
    }
}

impl Observers {
    /// Report a rollout tick (not a pass: no pass outcome, no reconcile metrics).
    pub fn after_tick(&self, controller: &Controller, now: DateTime<Utc>) {
        if let Some(board) = &self.board {
            record_rollouts(board, controller, now);
        }
    }
}

fn record_rollouts(board: &StatusBoard, controller: &Controller, now: DateTime<Utc>) {
    if let Some(driver) = controller.rollouts() {
        for (id, state) in driver.states() {
            board.record_rollout(&id.to_string(), state, now);
        }
        for (id, text) in driver.interferences() {
            board.record_interference(&id.to_string(), text.clone());
        }
    }
}

fn commit_info(r: &Revision) -> CommitInfo {
    CommitInfo {
        commit: r.commit.0.clone(),
        author: r.author.clone(),
        summary: r.summary.clone(),
    }
}

/// What people should hear about a pass. `current` is the revision in force, `rejected` the
/// newest revision and its validation when it failed. Repeats (an idle pass after a rejection,
/// the same drift again) are dropped by the notifier's dedup key. Pure.
pub fn pass_events(
    pass: &Pass,
    current: Option<&Revision>,
    rejected: Option<(&Revision, &Report)>,
) -> Vec<Event> {
    let commit = |c: &str| c.to_string();
    match pass {
        Pass::NoRevision | Pass::InSync { .. } => Vec::new(),
        Pass::Rejected { .. } => match rejected {
            Some((revision, report)) => vec![Event::RevisionRejected {
                revision: commit_info(revision),
                errors: report
                    .diagnostics
                    .iter()
                    .filter(|d| d.is_error())
                    .take(MAX_PROBLEMS)
                    .map(|d| Problem {
                        file: d.file.clone(),
                        line: d.line,
                        message: format!("{}: {}", d.code, d.message),
                    })
                    .collect(),
            }],
            None => Vec::new(),
        },
        Pass::DriftReported { commit: c, objects } => vec![Event::DriftDetected {
            commit: commit(c),
            objects: objects.iter().map(ToString::to_string).collect(),
        }],
        Pass::Synced { commit: c, report } => {
            let mut events = Vec::new();
            let (mut created, mut updated, mut pruned) = (0, 0, 0);
            let mut healed = Vec::new();
            let mut failed = Vec::new();
            for o in &report.objects {
                match &o.result {
                    ObjectResult::Created => created += 1,
                    ObjectResult::Updated {
                        cause: Cause::GitChange,
                    } => updated += 1,
                    ObjectResult::Updated {
                        cause: Cause::Drift,
                    } => healed.push(o.key.to_string()),
                    ObjectResult::Pruned => pruned += 1,
                    ObjectResult::Failed(f) => failed.push(format!("{}: {}", o.key, f.message)),
                    // A rollout's own writes are told as rollout events, never in a pass.
                    ObjectResult::Updated {
                        cause: Cause::Rollout,
                    }
                    | ObjectResult::Unchanged
                    | ObjectResult::DriftReported
                    | ObjectResult::PruneSkipped { .. } => {}
                }
            }
            if created + updated + pruned > 0
                && let Some(revision) = current
            {
                events.push(Event::RevisionApplied {
                    revision: commit_info(revision),
                    created,
                    updated,
                    pruned,
                });
            }
            if !healed.is_empty() {
                events.push(Event::DriftHealed {
                    commit: commit(c),
                    objects: healed,
                });
            }
            if !failed.is_empty() {
                events.push(Event::SyncFailed {
                    commit: commit(c),
                    message: format!("{} object(s) could not be applied", failed.len()),
                    objects: failed,
                });
            }
            events
        }
        Pass::Failed { message } => vec![Event::SyncFailed {
            commit: current.map(|r| r.commit.0.clone()).unwrap_or_default(),
            message: message.clone(),
            objects: Vec::new(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Diagnostic;
    use crate::manifest::yaml::Location;
    use crate::pass::PassOutcome;
    use crate::source::CommitId;
    use crate::sync::{Failure, FailureKind, ObjectOutcome, SyncReport, WriteMode};
    use veer_testkit::config_map as key;

    fn revision() -> Revision {
        Revision {
            commit: CommitId("a".repeat(40)),
            summary: "move reviews".into(),
            author: "Ada <ada@example.com>".into(),
            time: chrono::DateTime::UNIX_EPOCH,
        }
    }

    fn synced(results: Vec<(&str, ObjectResult)>) -> Pass {
        Pass::Synced {
            commit: "a".repeat(40),
            report: SyncReport {
                mode: WriteMode::Apply,
                objects: results
                    .into_iter()
                    .map(|(n, result)| ObjectOutcome {
                        key: key(n),
                        result,
                    })
                    .collect(),
                unobserved: Vec::new(),
            },
        }
    }

    fn kinds(events: &[Event]) -> Vec<String> {
        events.iter().map(|e| e.kind().to_string()).collect()
    }

    #[test]
    fn events_per_pass() {
        let r = revision();
        let failure = ObjectResult::Failed(Failure {
            kind: FailureKind::Invalid,
            code: Some(422),
            message: "bad".into(),
            fix: None,
            managers: Vec::new(),
            attempts: 1,
        });
        let table: Vec<(&str, Pass, Vec<&str>)> = vec![
            ("idle", Pass::InSync { commit: "c".into() }, vec![]),
            ("no revision", Pass::NoRevision, vec![]),
            (
                "applied",
                synced(vec![
                    ("a", ObjectResult::Created),
                    ("b", ObjectResult::Unchanged),
                ]),
                vec!["revision-applied"],
            ),
            (
                "drift healed only",
                synced(vec![(
                    "a",
                    ObjectResult::Updated {
                        cause: Cause::Drift,
                    },
                )]),
                vec!["drift-healed"],
            ),
            (
                "partly failed",
                synced(vec![("a", ObjectResult::Pruned), ("b", failure)]),
                vec!["revision-applied", "sync-failed"],
            ),
            (
                "drift reported",
                Pass::DriftReported {
                    commit: "c".into(),
                    objects: vec![key("a")],
                },
                vec!["drift-detected"],
            ),
            (
                "pass failed",
                Pass::Failed {
                    message: "cluster unreachable".into(),
                },
                vec!["sync-failed"],
            ),
        ];
        for (name, pass, want) in table {
            assert_eq!(kinds(&pass_events(&pass, Some(&r), None)), want, "{name}");
        }
    }

    #[test]
    fn a_rejection_names_its_errors_and_caps_them() {
        let r = revision();
        let diagnostics: Vec<Diagnostic> = (1..=15)
            .map(|i| Diagnostic::error("vs-weight-sum", "vs.yaml", Location::new(i, 1), "sum"))
            .collect();
        let report = Report::new(diagnostics);
        let pass = Pass::Rejected {
            commit: r.commit.0.clone(),
            errors: 15,
            by: crate::controller::RejectedBy::Validation,
        };
        let events = pass_events(&pass, None, Some((&r, &report)));
        match &events[..] {
            [Event::RevisionRejected { revision, errors }] => {
                assert_eq!(revision.summary, "move reviews");
                assert_eq!(errors.len(), MAX_PROBLEMS);
                assert_eq!((errors[0].file.as_str(), errors[0].line), ("vs.yaml", 1));
                assert!(errors[0].message.starts_with("vs-weight-sum: "));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn outcome_labels() {
        assert_eq!(Pass::NoRevision.outcome(), PassOutcome::NoRevision);
        assert_eq!(synced(vec![]).outcome(), PassOutcome::Synced);
        assert_eq!(
            Pass::Failed {
                message: String::new()
            }
            .outcome(),
            PassOutcome::Failed
        );
    }
}
