//! The server's word before the first write: all or nothing for a revision.
//!
//! veer's own validation cannot know everything the API server will refuse (an immutable
//! field, an admission webhook, a CEL rule, a quota, RBAC). So before a pass writes anything,
//! every object it will write (apply or delete) is sent once with `dryRun=All`. If the server
//! refuses any of them, nothing is written and the revision is rejected with the server's
//! message per object, as a validation error is. The cost is one request per object that
//! changes (unchanged objects are never sent).
//!
//! A dry run cannot see what does not exist yet: objects in a Namespace the revision creates,
//! and instances of a CRD it creates. So the [`foundation`] (Namespaces and CRDs the revision
//! creates) is dry-run first, then applied for real, and only then is the rest dry-run. If
//! the rest is refused, those Namespaces and CRDs stay (empty; in the inventory, so veer prunes
//! them once git drops them).
//!
//! A refusal is not final: the server's answer can depend on the cluster (a webhook, a CRD
//! installed later), so the gate runs again at every pass until the revision passes or a newer
//! one replaces it. While it is closed, nothing is written, drift included. An answer that is
//! not a refusal (the server unavailable after retries) fails the pass instead. The splitting
//! and the verdict are pure; [`super::Controller::pass_gate`] is the I/O.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::diagnostic::Diagnostic;
use crate::diff::{ObjectAction, Plan, order};
use crate::manifest::{ObjectKey, yaml::Location};
use crate::source::LoadedRevision;
use crate::sync::{self, Failure, FailureKind, SyncReport};
use crate::validate::Report;

/// What the server said about a revision's writes.
#[derive(Debug, Clone, PartialEq)]
pub enum GateVerdict {
    /// Every write was accepted by the dry run.
    Clear,
    /// Some were refused: the diagnostics name each object, the server's message and the fix.
    Refused(Report),
    /// The server could not answer (after retries): try again at the next pass.
    Unavailable(String),
}

/// The writes of `plan` (drift only while self-heal is on), split into the foundation
/// (Namespaces and CRDs the revision creates: the rest cannot be dry-run before they exist)
/// and the rest. Pure. The parts share the plan's views of each object (`Arc`s, and a
/// create's pointer to its manifest): they copy keys and actions, not objects.
pub fn split(plan: &Plan) -> (Plan, Plan) {
    let (foundation, rest) = plan
        .objects
        .iter()
        .filter(|o| plan.writes(o))
        .cloned()
        .partition(|o| is_foundation(&o.key, &o.action));
    (plan.with_objects(foundation), plan.with_objects(rest))
}

fn is_foundation(key: &ObjectKey, action: &ObjectAction) -> bool {
    let created = match action {
        ObjectAction::Create => true,
        ObjectAction::Update { .. }
        | ObjectAction::Prune
        | ObjectAction::PruneSkipped { .. }
        | ObjectAction::Unchanged => false,
    };
    created && order::is_foundation(key)
}

/// The verdict on a dry run's (or the foundation's real apply's) report. `live` gives the
/// source file of objects git no longer has (their `veer.io/source` annotation). Pure.
pub fn verdict(
    report: &SyncReport,
    loaded: &LoadedRevision,
    live: &BTreeMap<ObjectKey, Value>,
) -> GateVerdict {
    let mut refused = Vec::new();
    let mut unavailable = None;
    for (key, failure) in report.failed() {
        match failure.kind {
            FailureKind::Unavailable => {
                unavailable.get_or_insert_with(|| format!("{key}: {}", failure.message));
            }
            FailureKind::Forbidden
            | FailureKind::Conflict
            | FailureKind::Invalid
            | FailureKind::Denied
            | FailureKind::UnknownKind
            | FailureKind::NotFound
            | FailureKind::Rejected => refused.push(diagnostic(key, failure, loaded, live)),
        }
    }
    match (refused.is_empty(), unavailable) {
        (false, _) => GateVerdict::Refused(Report::new(refused)),
        (true, Some(message)) => GateVerdict::Unavailable(format!(
            "the API server did not answer the dry run of this revision's writes, so none was made: {message}; veer asks again at the next pass"
        )),
        (true, None) => GateVerdict::Clear,
    }
}

/// The stable diagnostic code of a refusal.
pub fn code(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Forbidden => "server-forbidden",
        FailureKind::Conflict => "server-conflict",
        FailureKind::Invalid => "server-invalid",
        FailureKind::Denied => "server-denied",
        FailureKind::UnknownKind => "server-unknown-kind",
        FailureKind::NotFound => "server-not-found",
        FailureKind::Unavailable => "server-unavailable",
        FailureKind::Rejected => "server-rejected",
    }
}

/// A refusal as a validation error: at the object's `metadata.name` in its file, or for an
/// object git dropped (a refused delete), at the file its source annotation names.
fn diagnostic(
    key: &ObjectKey,
    failure: &Failure,
    loaded: &LoadedRevision,
    live: &BTreeMap<ObjectKey, Value>,
) -> Diagnostic {
    let id = key.identity();
    let (file, at, what) = match loaded.set.manifests.iter().find(|m| m.key.identity() == id) {
        Some(m) => (m.file.clone(), m.locate("/metadata/name"), "apply"),
        None => {
            let file = live
                .iter()
                .find(|(k, _)| k.identity() == id)
                .and_then(|(_, v)| v.pointer("/metadata/annotations"))
                .and_then(|a| a.get(sync::SOURCE_ANNOTATION))
                .and_then(Value::as_str)
                .and_then(|s| s.rsplit_once('#'))
                .map(|(_, file)| file.to_string())
                .unwrap_or_default();
            (file, Location::new(1, 1), "delete")
        }
    };
    let status = failure.code.map(|c| format!(" ({c})")).unwrap_or_default();
    let mut d = Diagnostic::error(
        code(failure.kind),
        file,
        at,
        format!(
            "the API server refused to {what} it in a dry run{status}: {}",
            failure.message
        ),
    );
    d.object = Some(key.to_string());
    d.fix = Some(failure.advice().to_string());
    d
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::controller::tests::{key, loaded, report};
    use crate::diff::{Cause, ObjectPlan};
    use crate::manifest::{ReadOptions, parse_file};
    use crate::sync::ObjectResult;

    fn object(key: ObjectKey, action: ObjectAction) -> ObjectPlan {
        ObjectPlan {
            key,
            action,
            desired: None,
            live: None,
        }
    }

    fn cluster_scoped(group: &str, kind: &str, name: &str) -> ObjectKey {
        ObjectKey {
            group: group.into(),
            version: "v1".into(),
            kind: kind.into(),
            namespace: None,
            name: name.into(),
        }
    }

    fn update(cause: Cause) -> ObjectAction {
        ObjectAction::Update {
            cause,
            changes: Vec::new(),
        }
    }

    fn refusal(kind: FailureKind, code: u16, message: &str) -> ObjectResult {
        ObjectResult::Failed(Failure {
            kind,
            code: Some(code),
            message: message.into(),
            fix: None,
            managers: Vec::new(),
            attempts: 1,
        })
    }

    #[test]
    fn the_foundation_is_what_the_revision_creates_for_others_to_live_in() {
        let namespace = cluster_scoped("", "Namespace", "shop");
        let crd = cluster_scoped("apiextensions.k8s.io", "CustomResourceDefinition", "x.io");
        let plan = Plan {
            objects: vec![
                object(namespace.clone(), ObjectAction::Create),
                object(crd.clone(), ObjectAction::Create),
                object(
                    cluster_scoped("", "Namespace", "kept"),
                    update(Cause::GitChange),
                ),
                object(key("new"), ObjectAction::Create),
                object(key("edited"), update(Cause::GitChange)),
                object(key("drifted"), update(Cause::Drift)),
                object(key("same"), ObjectAction::Unchanged),
                object(key("gone"), ObjectAction::Prune),
            ],
            leave_drift: false,
        };
        let names =
            |p: &Plan| -> Vec<String> { p.objects.iter().map(|o| o.key.name.clone()).collect() };
        let (foundation, rest) = split(&plan);
        assert_eq!(names(&foundation), ["shop", "x.io"]);
        assert_eq!(names(&rest), ["kept", "new", "edited", "drifted", "gone"]);
        // Drift left alone is no write, so it is not asked about.
        let (_, rest) = split(&Plan {
            leave_drift: true,
            ..plan.clone()
        });
        assert_eq!(names(&rest), ["kept", "new", "edited", "gone"]);
    }

    #[test]
    fn a_refusal_rejects_the_revision_at_the_object_in_git() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: new\n  namespace: shop\ndata:\n  v: \"1\"\n";
        let mut revision = loaded("b");
        revision.set.extend(&parse_file(
            "mesh/cm.yaml",
            text.as_bytes(),
            &ReadOptions::default(),
        ));
        let live = BTreeMap::from([(
            key("gone"),
            json!({"metadata": {"annotations": {sync::SOURCE_ANNOTATION: "https://git.example/mesh.git#mesh/old.yaml"}}}),
        )]);
        let checked = report(vec![
            (
                "edited",
                ObjectResult::Updated {
                    cause: Cause::GitChange,
                },
            ),
            (
                "new",
                refusal(
                    FailureKind::Invalid,
                    422,
                    "spec.selector: Invalid value: field is immutable",
                ),
            ),
            (
                "gone",
                refusal(
                    FailureKind::Denied,
                    400,
                    "admission webhook \"guard\" denied the request",
                ),
            ),
        ]);
        let GateVerdict::Refused(found) = verdict(&checked, &revision, &live) else {
            panic!("refused expected");
        };
        assert_eq!(found.errors, 2);
        let shown: Vec<String> = found.diagnostics.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "error[server-invalid] mesh/cm.yaml:4:3: ConfigMap shop/new: the API server refused to apply it in a dry run (422): spec.selector: Invalid value: field is immutable\n  fix: fix the object in git",
                "error[server-denied] mesh/old.yaml:1:1: ConfigMap shop/gone: the API server refused to delete it in a dry run (400): admission webhook \"guard\" denied the request\n  fix: an admission webhook refused it: see its message",
            ]
        );
    }

    #[test]
    fn no_answer_is_not_a_refusal_and_everything_accepted_is_clear() {
        let revision = loaded("b");
        let live = BTreeMap::new();
        let unanswered = report(vec![
            ("a", ObjectResult::Created),
            ("b", refusal(FailureKind::Unavailable, 503, "etcd is down")),
        ]);
        match verdict(&unanswered, &revision, &live) {
            GateVerdict::Unavailable(m) => {
                assert!(m.contains("ConfigMap shop/b: etcd is down"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        let accepted = report(vec![
            ("a", ObjectResult::Created),
            ("b", ObjectResult::Pruned),
        ]);
        assert_eq!(verdict(&accepted, &revision, &live), GateVerdict::Clear);
    }
}
