//! Per-object failures: what kind of refusal it was, the server's message, and what to do about
//! it. The fix is derived from the message where the message names what is missing (a list
//! entry's key field, a permission), else it is the kind's general advice ([`fix_hint`] is
//! pure and table-tested).

use std::collections::BTreeMap;

use serde::Serialize;

use super::retry::{ErrorClass, classify, conflict_managers, is_unhandleable};
use super::{ObjectOutcome, ObjectResult};
use crate::cluster::{ClusterError, ListRefusal};
use crate::manifest::ObjectKey;

/// Why a write failed, as the API server put it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FailureKind {
    /// 403: veer's service account may not do this (write, or list the kind to read it).
    Forbidden,
    /// 409 from server-side apply: other managers own fields veer wants to set.
    Conflict,
    /// 422, or a 500 refusing the object itself: the server refused the object.
    Invalid,
    /// An admission webhook denied the request.
    Denied,
    /// The server does not serve the kind.
    UnknownKind,
    /// 404: e.g. the namespace does not exist.
    NotFound,
    /// Still failing (408/409/429/5xx/timeouts/connection) after the retries.
    Unavailable,
    /// Any other refusal (400, 405, 415, …).
    Rejected,
}

impl FailureKind {
    pub fn metric_label(self) -> &'static str {
        match self {
            FailureKind::Forbidden => "forbidden",
            FailureKind::Conflict => "conflict",
            FailureKind::Invalid => "invalid",
            FailureKind::Denied => "denied",
            FailureKind::UnknownKind => "unknown_kind",
            FailureKind::NotFound => "not_found",
            FailureKind::Unavailable => "unavailable",
            FailureKind::Rejected => "rejected",
        }
    }

    /// What to do about it, for people, when the message names nothing more precise.
    pub fn advice(self) -> &'static str {
        match self {
            FailureKind::Forbidden => "grant veer's service account this verb on this resource",
            FailureKind::Conflict => {
                "another field manager owns these fields: remove them from git, or sync with --force-conflicts to take them"
            }
            FailureKind::Invalid => "fix the object in git",
            FailureKind::Denied => "an admission webhook refused it: see its message",
            FailureKind::UnknownKind => {
                "apply the CustomResourceDefinition first, or fix apiVersion"
            }
            FailureKind::NotFound => "create what it lives in (its namespace) first",
            FailureKind::Unavailable => "the API server kept failing; veer retries next reconcile",
            FailureKind::Rejected => "see the server's message",
        }
    }
}

/// One object's failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub kind: FailureKind,
    /// HTTP status, when the server answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    pub message: String,
    /// The precise fix the message points at (e.g. `add protocol: TCP to each port of
    /// spec.ports`); `None`: the kind's [`FailureKind::advice`] applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// For conflicts: the field managers that own the contested fields.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub managers: Vec<String>,
    pub attempts: u32,
}

impl Failure {
    /// What to do about it: the precise fix when known, else the kind's advice.
    pub fn advice(&self) -> &str {
        self.fix.as_deref().unwrap_or(self.kind.advice())
    }
}

/// A kube error as a per-object failure.
pub fn failure(error: &kube::Error, attempts: u32) -> Failure {
    let (kind, code, message, managers) = match error {
        kube::Error::Api(status) => {
            let message = status.message.clone();
            let denied = message.contains("admission webhook") && message.contains("denied");
            let kind = match classify(error) {
                ErrorClass::Conflict => FailureKind::Conflict,
                ErrorClass::Transient => FailureKind::Unavailable,
                ErrorClass::Permanent if denied => FailureKind::Denied,
                ErrorClass::Permanent if is_unhandleable(status) => FailureKind::Invalid,
                ErrorClass::Permanent => match status.code {
                    403 => FailureKind::Forbidden,
                    404 => FailureKind::NotFound,
                    422 => FailureKind::Invalid,
                    _ => FailureKind::Rejected,
                },
            };
            (kind, Some(status.code), message, conflict_managers(status))
        }
        other => (
            FailureKind::Unavailable,
            None,
            other.to_string(),
            Vec::new(),
        ),
    };
    Failure {
        kind,
        code,
        fix: fix_hint(&message),
        message,
        managers,
        attempts,
    }
}

/// A discovery failure as a per-object failure.
pub(super) fn cluster_failure(e: &ClusterError) -> Failure {
    let (kind, code) = match e {
        ClusterError::UnknownKind { .. } => (FailureKind::UnknownKind, None),
        ClusterError::Api { code, .. } => (FailureKind::Unavailable, *code),
        ClusterError::Kubeconfig { .. }
        | ClusterError::Client { .. }
        | ClusterError::Discovery { .. }
        | ClusterError::WatchNotReady { .. } => (FailureKind::Unavailable, None),
    };
    Failure {
        kind,
        code,
        message: e.to_string(),
        fix: None,
        managers: Vec::new(),
        attempts: 1,
    }
}

/// The objects whose kind veer may not list: each failed, nothing known about it (so never
/// created, updated or pruned on a guess). Pure.
pub fn unreadable(forbidden: &BTreeMap<ObjectKey, ListRefusal>) -> Vec<ObjectOutcome> {
    forbidden
        .iter()
        .map(|(key, refusal)| ObjectOutcome {
            key: key.clone(),
            result: ObjectResult::Failed(Failure {
                kind: FailureKind::Forbidden,
                code: Some(403),
                message: refusal.to_string(),
                fix: Some(refusal.fix()),
                managers: Vec::new(),
                attempts: 1,
            }),
        })
        .collect()
}

/// The quoted word after `marker` in `text`.
fn quoted_after<'t>(text: &'t str, marker: &str) -> Option<&'t str> {
    let rest = &text[text.find(marker)? + marker.len()..];
    rest.split('"').next()
}

/// The field path an apply error is about (`.spec.ports: element 0: …` → `spec.ports`): the
/// last word before `cut`.
fn path_before<'t>(text: &'t str, cut: &str) -> Option<&'t str> {
    let before = &text[..text.find(cut)?];
    let path = before.rsplit(char::is_whitespace).next()?;
    let path = path.strip_prefix('.').unwrap_or(path);
    (!path.is_empty()).then_some(path)
}

/// Known defaults of key fields a keyed list entry must carry under server-side apply (the
/// server defaults them only after the apply is typed, which is too late).
const KEY_FIELD_DEFAULTS: &[(&str, &str)] = &[("protocol", "TCP")];

/// The precise fix a server message points at, when it names one. Pure.
pub fn fix_hint(message: &str) -> Option<String> {
    // Server-side apply of a keyed list entry without one of its keys (v1.20 and older do
    // not default the key first): `.spec.ports: element 0: … omits key field "protocol"`.
    if let Some(field) = quoted_after(message, "omits key field \"") {
        let path = path_before(message, ": element");
        let what = match KEY_FIELD_DEFAULTS.iter().find(|(f, _)| *f == field) {
            Some((_, value)) => format!("{field}: {value}"),
            None => field.to_string(),
        };
        let each = match path {
            Some(p) if p.ends_with("ports") => format!(" to each port of {p}"),
            Some(p) => format!(" to each entry of {p}"),
            None => String::new(),
        };
        return Some(format!("add {what}{each}"));
    }
    // Two entries of a keyed list with the same key.
    if let Some(at) = message.find("duplicate entries for key ") {
        let key = message[at + "duplicate entries for key ".len()..]
            .split_whitespace()
            .next()
            .unwrap_or("");
        let from = path_before(message, ": duplicate entries")
            .map(|p| format!(" from {p}"))
            .unwrap_or_default();
        return Some(format!(
            "remove the duplicate entries for key {key}{from}: each key may appear once"
        ));
    }
    // RBAC: `User "x" cannot patch resource "configmaps" in API group "" in the namespace "shop"`.
    if let Some(verb) =
        quoted_after(message, "\" cannot ").and_then(|rest| rest.split_whitespace().next())
        && let Some(resource) = quoted_after(message, "resource \"")
    {
        let group = quoted_after(message, "in API group \"").unwrap_or("");
        let resource = if group.is_empty() {
            resource.to_string()
        } else {
            format!("{resource}.{group}")
        };
        let verbs = if verb == "list" || verb == "watch" {
            "list and watch".to_string()
        } else {
            verb.to_string()
        };
        let scope = match quoted_after(message, "in the namespace \"") {
            Some(ns) => format!("in namespace {ns} (a Role and RoleBinding)"),
            None => "cluster-wide (a ClusterRole and ClusterRoleBinding)".to_string(),
        };
        return Some(format!(
            "grant veer's service account {verbs} on {resource} {scope}"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fix_hints_table() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "failed to create typed patch object: .spec.ports: element 0: associative list with keys has an element that omits key field \"protocol\" (and doesn't have default value)",
                Some("add protocol: TCP to each port of spec.ports"),
            ),
            (
                "failed to create typed patch object (/v1, Kind=Service) reviews: .spec.ports: element 0: associative list with keys has an element that omits key field \"protocol\" (and doesn't have default value)",
                Some("add protocol: TCP to each port of spec.ports"),
            ),
            (
                "failed to create typed patch object: .spec.template.spec.containers[name=\"reviews\"].ports: element 1: associative list with keys has an element that omits key field \"protocol\" (and doesn't have default value)",
                Some(
                    "add protocol: TCP to each port of spec.template.spec.containers[name=\"reviews\"].ports",
                ),
            ),
            (
                "failed to create typed patch object: .spec.widgets: element 0: associative list with keys has an element that omits key field \"zone\" (and doesn't have default value)",
                Some("add zone to each entry of spec.widgets"),
            ),
            (
                "failed to create typed patch object: .spec.ports: duplicate entries for key [port=80,protocol=\"TCP\"]",
                Some(
                    "remove the duplicate entries for key [port=80,protocol=\"TCP\"] from spec.ports: each key may appear once",
                ),
            ),
            (
                "configmaps \"settings\" is forbidden: User \"system:serviceaccount:veer:veer\" cannot patch resource \"configmaps\" in API group \"\" in the namespace \"shop\"",
                Some(
                    "grant veer's service account patch on configmaps in namespace shop (a Role and RoleBinding)",
                ),
            ),
            (
                "virtualservices.networking.istio.io is forbidden: User \"veer\" cannot list resource \"virtualservices\" in API group \"networking.istio.io\" in the namespace \"shop\"",
                Some(
                    "grant veer's service account list and watch on virtualservices.networking.istio.io in namespace shop (a Role and RoleBinding)",
                ),
            ),
            (
                "clusterroles.rbac.authorization.k8s.io \"x\" is forbidden: User \"veer\" cannot delete resource \"clusterroles\" in API group \"rbac.authorization.k8s.io\" at the cluster scope",
                Some(
                    "grant veer's service account delete on clusterroles.rbac.authorization.k8s.io cluster-wide (a ClusterRole and ClusterRoleBinding)",
                ),
            ),
            ("boom", None),
            ("ConfigMap \"x\" is invalid: data: bad", None),
            ("the object cannot be found", None),
        ];
        for (message, hint) in cases {
            assert_eq!(fix_hint(message).as_deref(), *hint, "{message}");
        }
    }

    #[test]
    fn a_failure_says_the_precise_fix_or_the_kinds_advice() {
        let typed = kube::Error::Api(Box::new(kube::core::Status {
            code: 500,
            message: "failed to create typed patch object: .spec.ports: element 0: associative list with keys has an element that omits key field \"protocol\" (and doesn't have default value)".into(),
            ..kube::core::Status::default()
        }));
        let f = failure(&typed, 1);
        assert_eq!((f.kind, f.code), (FailureKind::Invalid, Some(500)));
        assert_eq!(f.advice(), "add protocol: TCP to each port of spec.ports");
        let down = kube::Error::Api(Box::new(kube::core::Status {
            code: 500,
            message: "etcdserver: request timed out".into(),
            ..kube::core::Status::default()
        }));
        let f = failure(&down, 5);
        assert_eq!(f.kind, FailureKind::Unavailable);
        assert_eq!(f.advice(), FailureKind::Unavailable.advice());
    }
}
