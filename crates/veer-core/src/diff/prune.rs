//! What to prune, and why some objects gone from git are kept: the `veer.io/prune: "false"`
//! annotation, prune turned off, an object veer no longer manages, and a Namespace that
//! objects which stay still live in (deleting a Namespace deletes everything inside it, so it
//! is never pruned while git, or a kept object, still has something in it). Pure.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};
use serde_json::Value;

use super::compare::display_form;
use super::{ObjectAction, ObjectPlan, PRUNE_ANNOTATION, PlanContext};
use crate::fields::{self, FieldSet, ManagedFieldsEntry};
use crate::manifest::ObjectKey;

/// Why an object gone from git is kept. In JSON: `"reason": "<variant>"`, plus the
/// variant's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "camelCase")]
pub enum PruneSkipReason {
    /// The live object says `veer.io/prune: "false"`.
    Annotation,
    /// Pruning is turned off.
    Disabled,
    /// The live object has no `veer` field manager any more (recreated or taken over by
    /// someone else), so deleting it could delete someone else's object.
    NotManagedByVeer,
    /// A Namespace that objects which stay (in git, or kept by veer) live in: `by` is one of
    /// them, `more` how many others.
    NamespaceInUse {
        #[serde(serialize_with = "as_text")]
        by: ObjectKey,
        more: usize,
    },
    /// Found at sync time by asking the server: a Namespace that objects still live in
    /// (anyone's, kept ones included). `by` is one of them, `more` how many others were seen.
    NamespaceNotEmpty {
        #[serde(serialize_with = "as_text")]
        by: ObjectKey,
        more: usize,
    },
}

/// An object named as people read it: `ConfigMap shop/settings`.
fn as_text<S: Serializer>(key: &ObjectKey, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(key)
}

/// `ConfigMap shop/a stays` / `ConfigMap shop/a and 2 more stay`.
fn residents(by: &ObjectKey, more: usize, one: &str, many: &str) -> String {
    match more {
        0 => format!("{by} {one}"),
        n => format!("{by} and {n} more {many}"),
    }
}

impl fmt::Display for PruneSkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PruneSkipReason::Annotation => f.write_str("annotation veer.io/prune: \"false\""),
            PruneSkipReason::Disabled => f.write_str("prune is disabled"),
            PruneSkipReason::NotManagedByVeer => {
                f.write_str("veer no longer manages any of its fields")
            }
            PruneSkipReason::NamespaceInUse { by, more } => write!(
                f,
                "{}; pruning it would delete them",
                residents(by, *more, "stays in it", "stay in it")
            ),
            PruneSkipReason::NamespaceNotEmpty { by, more } => write!(
                f,
                "{}; delete them, or remove veer.io/prune: \"false\" from the ones veer should prune",
                residents(by, *more, "still lives in it", "still live in it")
            ),
        }
    }
}

pub(super) fn is_namespace(key: &ObjectKey) -> bool {
    key.group.is_empty() && key.kind == "Namespace"
}

pub(super) fn plan_prune(key: &ObjectKey, live: &Value, context: &PlanContext) -> ObjectPlan {
    let annotation = live
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(PRUNE_ANNOTATION))
        .and_then(Value::as_str);
    let managed = fields::managed_fields(live)
        .iter()
        .any(|e: &ManagedFieldsEntry| e.manager == context.manager);
    let action = if annotation == Some("false") {
        ObjectAction::PruneSkipped {
            reason: PruneSkipReason::Annotation,
        }
    } else if !context.prune {
        ObjectAction::PruneSkipped {
            reason: PruneSkipReason::Disabled,
        }
    } else if !managed {
        ObjectAction::PruneSkipped {
            reason: PruneSkipReason::NotManagedByVeer,
        }
    } else {
        ObjectAction::Prune
    };
    let set = FieldSet::of(live, &context.semantics);
    ObjectPlan {
        key: key.clone(),
        action,
        desired: None,
        live: Some(Arc::new(display_form(&fields::project(
            live,
            &set,
            &context.semantics,
        )))),
    }
}

/// Keep every Namespace that `staying` objects live in: turn its prune into
/// [`PruneSkipReason::NamespaceInUse`], naming the first of them (in key order).
pub(super) fn keep_used_namespaces<'k>(
    prunes: &mut [ObjectPlan],
    staying: impl IntoIterator<Item = &'k ObjectKey>,
) {
    let mut by_namespace: BTreeMap<&str, Vec<&ObjectKey>> = BTreeMap::new();
    for key in staying {
        if let Some(ns) = key.namespace.as_deref() {
            by_namespace.entry(ns).or_default().push(key);
        }
    }
    for prune in prunes.iter_mut() {
        if !matches!(prune.action, ObjectAction::Prune) || !is_namespace(&prune.key) {
            continue;
        }
        let Some(keys) = by_namespace.get_mut(prune.key.name.as_str()) else {
            continue;
        };
        keys.sort();
        keys.dedup();
        if let Some(first) = keys.first() {
            prune.action = ObjectAction::PruneSkipped {
                reason: PruneSkipReason::NamespaceInUse {
                    by: (*first).clone(),
                    more: keys.len() - 1,
                },
            };
        }
    }
}
