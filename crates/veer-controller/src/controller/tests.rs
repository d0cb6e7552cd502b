//! Fixtures shared by the tests of the controller's modules (`planning`, `record`, `gate`,
//! `intent`), and the tests of the loop's exit codes.

use serde_json::json;

use super::record::revision_record;
use super::*;
use crate::diff::DesiredObject;
use crate::manifest::ManifestSet;
use crate::source::{CommitId, Revision};
use crate::sync::state::{ObjectRecord, RevisionOutcome};
use crate::sync::{Failure, FailureKind, ObjectOutcome};
use veer_testkit::at;
pub(crate) use veer_testkit::config_map as key;

pub(crate) fn loaded(commit: &str) -> LoadedRevision {
    LoadedRevision {
        revision: Revision {
            commit: CommitId(commit.repeat(40 / commit.len())),
            summary: format!("commit {commit}"),
            author: "Ada <ada@example.com>".into(),
            time: at(25, 0),
        },
        set: ManifestSet::default(),
        changed_files: Vec::new(),
        parsed_files: 0,
    }
}

pub(crate) fn desired(names: &[(&str, i64)]) -> Vec<DesiredObject> {
    names
        .iter()
        .map(|(n, v)| DesiredObject::new(key(n), json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n}, "data": {"v": v.to_string()}})))
        .collect()
}

pub(crate) fn report(results: Vec<(&str, ObjectResult)>) -> SyncReport {
    SyncReport {
        mode: WriteMode::Apply,
        objects: results
            .into_iter()
            .map(|(n, result)| ObjectOutcome {
                key: key(n),
                result,
            })
            .collect(),
        unobserved: Vec::new(),
    }
}

pub(crate) fn failed(code: u16) -> ObjectResult {
    ObjectResult::Failed(Failure {
        kind: FailureKind::Invalid,
        code: Some(code),
        message: "no".into(),
        fix: None,
        managers: Vec::new(),
        attempts: 1,
    })
}

pub(crate) fn hash(n: &str, v: i64) -> Option<String> {
    Some(diff::desired_hash(&desired(&[(n, v)])[0].value()))
}

/// A state where `a` (v1) and `old` (v1) were applied.
pub(crate) fn applied_state() -> SyncState {
    SyncState {
        revision: Some(revision_record(&loaded("a"))),
        outcome: Some(RevisionOutcome::Applied),
        applied_at: Some("2026-11-25T09:00:00Z".into()),
        objects: vec![
            ObjectRecord::new(&key("a"), hash("a", 1), "created"),
            ObjectRecord::new(&key("old"), hash("old", 1), "created"),
        ],
        updated_at: Some("2026-11-25T09:00:00Z".into()),
        ..SyncState::default()
    }
}

#[test]
fn exit_codes() {
    let cases = [
        (Pass::InSync { commit: "a".into() }, exit::OK),
        (
            Pass::DriftReported {
                commit: "a".into(),
                objects: vec![key("a")],
            },
            exit::OK,
        ),
        (
            Pass::Synced {
                commit: "a".into(),
                report: report(vec![("a", ObjectResult::Created)]),
            },
            exit::OK,
        ),
        (
            Pass::Synced {
                commit: "a".into(),
                report: report(vec![("a", ObjectResult::Created), ("b", failed(403))]),
            },
            exit::PARTIAL,
        ),
        (
            Pass::Rejected {
                commit: "a".into(),
                errors: 1,
                by: RejectedBy::Server,
            },
            exit::INVALID,
        ),
        (Pass::NoRevision, exit::FAILURE),
        (
            Pass::Failed {
                message: "x".into(),
            },
            exit::FAILURE,
        ),
    ];
    for (pass, code) in cases {
        assert_eq!(exit_code(&pass), code, "{pass:?}");
    }
}
