//! What a pass writes into the recorded state: [`next_state`] after a reconcile,
//! [`rejected_state`] after a failed validation or a refused dry run, [`error_state`] after a
//! failed pass. Timestamps move only when the content changes, so an idle pass writes nothing.
//! Pure.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};

use super::intent;
use super::planning::record_identity;
use crate::diff::DesiredObject;
use crate::manifest::{ObjectIdentity, ObjectKey};
use crate::source::LoadedRevision;
use crate::sync::state::{
    self, ErrorRecord, ObjectRecord, RejectedRecord, RevisionOutcome, RevisionRecord, StateChange,
    SyncState,
};
use crate::sync::{self, ObjectResult, SyncReport};

fn timestamp(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(super) fn revision_record(loaded: &LoadedRevision) -> RevisionRecord {
    RevisionRecord {
        commit: loaded.revision.commit.0.clone(),
        summary: loaded.revision.summary.clone(),
        author: loaded.revision.author.clone(),
    }
}

/// The state after reconciling `loaded`: its objects' results and hashes, the inventory
/// (applied objects added, pruned ones removed, failed creates never added), the outcome.
/// `unknown` keys (kind not served) keep their records. Timestamps move only when the
/// content changed. Pure.
pub fn next_state(
    prev: &SyncState,
    loaded: &LoadedRevision,
    desired: &[DesiredObject],
    report: &SyncReport,
    unknown: &BTreeSet<ObjectKey>,
    now: DateTime<Utc>,
) -> SyncState {
    next_state_carrying(prev, loaded, desired, report, unknown, &|_| false, now)
        .unwrap_or_else(|| prev.clone())
}

/// [`next_change`] applied to a copy of `prev` (for [`next_state`] and tests; a pass
/// applies the change in place). `None`: the content is `prev`'s. Pure.
pub(super) fn next_state_carrying(
    prev: &SyncState,
    loaded: &LoadedRevision,
    desired: &[DesiredObject],
    report: &SyncReport,
    unknown: &BTreeSet<ObjectKey>,
    carried: &dyn Fn(ObjectIdentity<'_>) -> bool,
    now: DateTime<Utc>,
) -> Option<SyncState> {
    let change = next_change(prev, loaded, desired, report, unknown, carried, now)?;
    Some(applied(prev, Some(change)))
}

/// What reconciling `loaded` changes in `prev` ([`next_state`]), after a pass that may have
/// planned only some objects (`controller::incremental`): the records of the objects it did
/// not plan (`carried`) stay as they are, as if the pass had found them unchanged. `desired`
/// and `report` cover the planned objects. `None`: the content is `prev`'s (nothing to
/// write). Looks at every record once, without hashing or copying it. Pure.
pub(super) fn next_change(
    prev: &SyncState,
    loaded: &LoadedRevision,
    desired: &[DesiredObject],
    report: &SyncReport,
    unknown: &BTreeSet<ObjectKey>,
    carried: &dyn Fn(ObjectIdentity<'_>) -> bool,
    now: DateTime<Utc>,
) -> Option<StateChange> {
    let hashes: HashMap<ObjectIdentity<'_>, String> = desired
        .iter()
        .map(|d| (d.key.identity(), d.hash()))
        .collect();
    let hash_of = |key: &ObjectKey| hashes.get(&key.identity()).cloned();
    // The reported objects by identity, sorted: one pass over the records finds each one's
    // previous record, and the records the plan did not cover.
    let mut seen: Vec<(ObjectIdentity<'_>, usize)> = (report.objects.iter().enumerate())
        .map(|(i, o)| (o.key.identity(), i))
        .collect();
    seen.sort_unstable();
    let mut unknown: Vec<ObjectIdentity<'_>> = unknown.iter().map(ObjectKey::identity).collect();
    unknown.sort_unstable();
    let mut previous: Vec<Option<&ObjectRecord>> = vec![None; report.objects.len()];
    // Records the plan did not cover: gone from git and from the cluster, unless veer could
    // not look (kind not served), in which case nothing is known and the record stays; or
    // the pass did not plan them, and their last outcome stands.
    let mut remove: Vec<ObjectKey> = Vec::new();
    for p in &prev.objects {
        let id = record_identity(p);
        let from = seen.partition_point(|(s, _)| *s < id);
        let mut reported = false;
        for (_, i) in seen[from..].iter().take_while(|(s, _)| *s == id) {
            reported = true;
            if let Some(slot) = previous.get_mut(*i) {
                slot.get_or_insert(p);
            }
        }
        if !reported && unknown.binary_search(&id).is_err() && !carried(id) {
            remove.push(p.key());
        }
    }
    // At most one record an outcome (every one on a first sync): sized up front, not grown
    // by doubling (room for 16,384 records at 10,000), and trimmed below.
    let mut records: Vec<ObjectRecord> = Vec::with_capacity(report.objects.len());
    for (outcome, previous) in report.objects.iter().zip(previous) {
        let prev_hash = previous.and_then(|r| r.hash.clone());
        let record = match &outcome.result {
            ObjectResult::Created | ObjectResult::Updated { .. } => {
                ObjectRecord::new(&outcome.key, hash_of(&outcome.key), outcome.result.name())
            }
            // Nothing happened: the last result stands (an idle pass changes no record),
            // unless it was a failure that has since been fixed, or an intent (the crash came
            // after the write).
            ObjectResult::Unchanged => match previous {
                Some(p)
                    if p.hash == hash_of(&outcome.key)
                        && p.code.is_none()
                        && p.result != intent::PENDING =>
                {
                    continue;
                }
                Some(_) | None => {
                    ObjectRecord::new(&outcome.key, hash_of(&outcome.key), outcome.result.name())
                }
            },
            ObjectResult::DriftReported => {
                ObjectRecord::new(&outcome.key, prev_hash, outcome.result.name())
            }
            ObjectResult::PruneSkipped { .. } => match previous {
                Some(p) => ObjectRecord {
                    result: outcome.result.name().to_string(),
                    ..p.clone()
                },
                None => ObjectRecord::new(&outcome.key, None, outcome.result.name()),
            },
            ObjectResult::Pruned => {
                if let Some(p) = previous {
                    remove.push(p.key());
                }
                continue;
            }
            ObjectResult::Failed(f) => {
                // A first write that was refused did not happen: out of the inventory again. One
                // that got no answer may have: it stays, so it is pruned if it exists.
                let refused = previous.is_some_and(|p| p.result == intent::PENDING)
                    && f.kind != sync::FailureKind::Unavailable;
                ObjectRecord {
                    code: f.code,
                    message: Some(f.message.clone()),
                    ..ObjectRecord::new(
                        &outcome.key,
                        if refused { None } else { prev_hash },
                        outcome.result.name(),
                    )
                }
            }
        };
        // A record as it was is no change.
        if previous.is_none_or(|p| *p != record) {
            records.push(record);
        }
    }

    let failed = report.has_failures();
    let drift: Vec<String> = report
        .objects
        .iter()
        .filter(|o| matches!(o.result, ObjectResult::DriftReported))
        .map(|o| o.key.to_string())
        .collect();
    let mut next = SyncState {
        format: state::STATE_FORMAT,
        revision: Some(revision_record(loaded)),
        outcome: Some(if failed {
            RevisionOutcome::PartiallyApplied
        } else {
            RevisionOutcome::Applied
        }),
        applied_at: prev.applied_at.clone(),
        // A rejection stands while the revision in force is the one from before it; a newer
        // valid revision supersedes it.
        rejected: if prev.revision.as_ref().map(|r| &r.commit) == Some(&loaded.revision.commit.0) {
            prev.rejected.clone()
        } else {
            None
        },
        last_error: if failed {
            report.failed().next().map(|(k, f)| ErrorRecord {
                message: format!("{k}: {}", f.message),
                at: timestamp(now),
            })
        } else {
            None
        },
        objects: Vec::new(),
        drift,
        updated_at: prev.updated_at.clone(),
    };
    let wrote = report.objects.iter().any(|o| {
        matches!(
            o.result,
            ObjectResult::Created | ObjectResult::Updated { .. } | ObjectResult::Pruned
        )
    });
    if wrote || prev.revision != next.revision || next.applied_at.is_none() {
        next.applied_at = Some(timestamp(now));
    }
    // Keep the previous error's time when it is the same error.
    if let (Some(n), Some(p)) = (&mut next.last_error, &prev.last_error)
        && n.message == p.message
    {
        n.at = p.at.clone();
    }
    if records.is_empty() && remove.is_empty() && next.same_content(&StateChange::header_of(prev)) {
        return None;
    }
    next.updated_at = Some(timestamp(now));
    Some(StateChange {
        header: next,
        put: records,
        remove,
    })
}

/// The state after `loaded` failed validation: recorded as rejected (once per commit);
/// everything else stays. Pure.
pub fn rejected_state(
    prev: &SyncState,
    loaded: &LoadedRevision,
    errors: usize,
    now: DateTime<Utc>,
) -> SyncState {
    applied(prev, rejected_change(prev, loaded, errors, now))
}

/// What [`rejected_state`] changes; `None`: nothing. Pure.
pub(super) fn rejected_change(
    prev: &SyncState,
    loaded: &LoadedRevision,
    errors: usize,
    now: DateTime<Utc>,
) -> Option<StateChange> {
    let commit = loaded.revision.commit.0.clone();
    if prev.rejected.as_ref().is_some_and(|r| r.commit == commit) {
        return None;
    }
    Some(header_change(SyncState {
        rejected: Some(RejectedRecord {
            commit,
            summary: loaded.revision.summary.clone(),
            errors,
            at: timestamp(now),
        }),
        updated_at: Some(timestamp(now)),
        ..StateChange::header_of(prev)
    }))
}

/// The state after a pass failed with `message` (kept once: the same error again changes
/// nothing). Pure.
pub fn error_state(prev: &SyncState, message: &str, now: DateTime<Utc>) -> SyncState {
    applied(prev, error_change(prev, message, now))
}

/// What [`error_state`] changes; `None`: nothing. Pure.
pub(super) fn error_change(
    prev: &SyncState,
    message: &str,
    now: DateTime<Utc>,
) -> Option<StateChange> {
    if prev
        .last_error
        .as_ref()
        .is_some_and(|e| e.message == message)
    {
        return None;
    }
    Some(header_change(SyncState {
        last_error: Some(ErrorRecord {
            message: message.to_string(),
            at: timestamp(now),
        }),
        updated_at: Some(timestamp(now)),
        ..StateChange::header_of(prev)
    }))
}

fn header_change(header: SyncState) -> StateChange {
    StateChange {
        header,
        put: Vec::new(),
        remove: Vec::new(),
    }
}

/// `prev` with `change` applied, copied. Pure.
fn applied(prev: &SyncState, change: Option<StateChange>) -> SyncState {
    let mut next = prev.clone();
    if let Some(change) = change {
        next.apply(change);
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::plan_context;
    use crate::controller::tests::{applied_state, desired, failed, hash, key, loaded, report};
    use crate::diff::{Cause, PruneSkipReason};
    use veer_testkit::at;

    #[test]
    fn next_state_table() {
        struct Case {
            name: &'static str,
            commit: &'static str,
            desired: Vec<DesiredObject>,
            report: SyncReport,
            unknown: Vec<ObjectKey>,
            inventory: Vec<&'static str>,
            outcome: RevisionOutcome,
            changed: bool,
            applied_at_moves: bool,
        }
        let cases = vec![
            Case {
                name: "same revision, all unchanged: nothing to record",
                commit: "a",
                desired: desired(&[("a", 1), ("old", 1)]),
                report: report(vec![
                    ("a", ObjectResult::Unchanged),
                    ("old", ObjectResult::Unchanged),
                ]),
                unknown: vec![],
                inventory: vec!["a", "old"],
                outcome: RevisionOutcome::Applied,
                changed: false,
                applied_at_moves: false,
            },
            Case {
                name: "new revision: update, create, prune",
                commit: "b",
                desired: desired(&[("a", 2), ("new", 1)]),
                report: report(vec![
                    (
                        "a",
                        ObjectResult::Updated {
                            cause: Cause::GitChange,
                        },
                    ),
                    ("new", ObjectResult::Created),
                    ("old", ObjectResult::Pruned),
                ]),
                unknown: vec![],
                inventory: vec!["a", "new"],
                outcome: RevisionOutcome::Applied,
                changed: true,
                applied_at_moves: true,
            },
            Case {
                name: "failed create stays out of the inventory; failed update keeps its old hash",
                commit: "b",
                desired: desired(&[("a", 2), ("new", 1), ("old", 1)]),
                report: report(vec![
                    ("a", failed(422)),
                    ("new", failed(403)),
                    ("old", ObjectResult::Unchanged),
                ]),
                unknown: vec![],
                inventory: vec!["a", "old"],
                outcome: RevisionOutcome::PartiallyApplied,
                changed: true,
                applied_at_moves: true,
            },
            Case {
                name: "prune skipped keeps the object in the inventory",
                commit: "a",
                desired: desired(&[("a", 1)]),
                report: report(vec![
                    ("a", ObjectResult::Unchanged),
                    (
                        "old",
                        ObjectResult::PruneSkipped {
                            reason: PruneSkipReason::Disabled,
                        },
                    ),
                ]),
                unknown: vec![],
                inventory: vec!["a", "old"],
                outcome: RevisionOutcome::Applied,
                changed: true,
                applied_at_moves: false,
            },
            Case {
                name: "gone from git and cluster: dropped; kind not served: kept",
                commit: "a",
                desired: desired(&[("a", 1)]),
                report: report(vec![("a", ObjectResult::Unchanged)]),
                unknown: vec![key("old")],
                inventory: vec!["a", "old"],
                outcome: RevisionOutcome::Applied,
                changed: false,
                applied_at_moves: false,
            },
            Case {
                name: "gone from git and from the cluster: dropped",
                commit: "a",
                desired: desired(&[("a", 1)]),
                report: report(vec![("a", ObjectResult::Unchanged)]),
                unknown: vec![],
                inventory: vec!["a"],
                outcome: RevisionOutcome::Applied,
                changed: true,
                applied_at_moves: false,
            },
            Case {
                name: "drift reported keeps the hash and is listed",
                commit: "a",
                desired: desired(&[("a", 1), ("old", 1)]),
                report: report(vec![
                    ("a", ObjectResult::DriftReported),
                    ("old", ObjectResult::Unchanged),
                ]),
                unknown: vec![],
                inventory: vec!["a", "old"],
                outcome: RevisionOutcome::Applied,
                changed: true,
                applied_at_moves: false,
            },
        ];
        let prev = applied_state();
        for case in cases {
            let unknown: BTreeSet<ObjectKey> = case.unknown.into_iter().collect();
            let next = next_state(
                &prev,
                &loaded(case.commit),
                &case.desired,
                &case.report,
                &unknown,
                at(25, 30),
            );
            let inventory: Vec<String> = next.inventory().into_iter().map(|k| k.name).collect();
            assert_eq!(inventory, case.inventory, "{}", case.name);
            assert_eq!(next.outcome, Some(case.outcome), "{}", case.name);
            assert_eq!(!next.same_content(&prev), case.changed, "{}", case.name);
            assert_eq!(
                next.applied_at != prev.applied_at,
                case.applied_at_moves,
                "{}",
                case.name
            );
            assert_eq!(
                next.updated_at != prev.updated_at,
                case.changed,
                "{}: updatedAt moves only with the content",
                case.name
            );
        }
    }

    #[test]
    fn hashes_record_what_was_applied() {
        let prev = applied_state();
        let next = next_state(
            &prev,
            &loaded("b"),
            &desired(&[("a", 2), ("old", 2)]),
            &report(vec![
                (
                    "a",
                    ObjectResult::Updated {
                        cause: Cause::GitChange,
                    },
                ),
                ("old", failed(500)),
            ]),
            &BTreeSet::new(),
            at(25, 30),
        );
        assert_eq!(
            next.record(&key("a")).and_then(|r| r.hash.clone()),
            hash("a", 2)
        );
        assert_eq!(
            next.record(&key("old")).and_then(|r| r.hash.clone()),
            hash("old", 1)
        );
        assert_eq!(next.record(&key("old")).and_then(|r| r.code), Some(500));
        assert!(
            next.last_error
                .as_ref()
                .is_some_and(|e| e.message.contains("ConfigMap shop/old"))
        );
        // The plan built from this state sees `a` as applied at v2.
        let ctx = plan_context(&next, "veer", true, Default::default());
        assert_eq!(ctx.applied_hashes.get(&key("a")).cloned(), hash("a", 2));
    }

    #[test]
    fn rejection_is_recorded_once_and_keeps_the_applied_revision() {
        let prev = applied_state();
        let once = rejected_state(&prev, &loaded("c"), 2, at(25, 10));
        assert_eq!(once.revision, prev.revision);
        assert_eq!(once.objects, prev.objects);
        assert_eq!(once.rejected.as_ref().map(|r| r.errors), Some(2));
        assert!(!once.same_content(&prev));
        let twice = rejected_state(&once, &loaded("c"), 2, at(25, 20));
        assert_eq!(twice, once);
        // A valid revision afterwards clears the rejection.
        let next = next_state(
            &once,
            &loaded("d"),
            &desired(&[("a", 1), ("old", 1)]),
            &report(vec![
                ("a", ObjectResult::Unchanged),
                ("old", ObjectResult::Unchanged),
            ]),
            &BTreeSet::new(),
            at(25, 30),
        );
        assert_eq!(next.rejected, None);
    }

    #[test]
    fn the_same_error_is_recorded_once() {
        let prev = applied_state();
        let once = error_state(&prev, "unreachable", at(25, 1));
        assert_eq!(error_state(&once, "unreachable", at(25, 2)), once);
        assert_ne!(error_state(&once, "forbidden", at(25, 2)), once);
    }

    #[test]
    fn a_pass_over_some_objects_keeps_the_others_records() {
        // `a` and `old` applied; the pass planned `a` alone (unchanged, then updated).
        let prev = applied_state();
        let rev = loaded("a");
        let only_a = |id: ObjectIdentity<'_>| id.name != "a";
        let unchanged = report(vec![("a", ObjectResult::Unchanged)]);
        let none = BTreeSet::new();
        let same = next_state_carrying(
            &prev,
            &rev,
            &desired(&[("a", 1)]),
            &unchanged,
            &none,
            &only_a,
            at(25, 10),
        );
        assert_eq!(same, None, "nothing to write, nothing copied");
        let updated = report(vec![(
            "a",
            ObjectResult::Updated {
                cause: Cause::GitChange,
            },
        )]);
        let next = next_state_carrying(
            &prev,
            &rev,
            &desired(&[("a", 2)]),
            &updated,
            &none,
            &only_a,
            at(25, 10),
        )
        .expect("a change");
        assert_eq!(next.inventory(), [key("a"), key("old")]);
        assert_eq!(next.objects[0].hash, hash("a", 2));
        assert_eq!(next.objects[1], prev.objects[1]);
        // Planned and gone from git and the cluster: forgotten, as a full pass would.
        let gone = next_state_carrying(
            &prev,
            &rev,
            &desired(&[("a", 1)]),
            &unchanged,
            &none,
            &|_| false,
            at(25, 10),
        )
        .expect("a change");
        assert_eq!(gone.inventory(), [key("a")]);
    }
}
