//! Before deleting a Namespace: does anything still live in it? Deleting a Namespace deletes
//! everything inside it, whoever made it and whatever it is annotated with (even
//! `veer.io/prune: "false"`), so veer deletes one only when the server lists nothing else in
//! it. Runs after the pass's other prunes (a Namespace is pruned last), so a namespace that
//! held only what veer just pruned still goes.
//!
//! The decision ([`keeps_namespace`], [`namespace_keeper`]) is pure over what the lists
//! returned; [`census`] is the I/O: kube's discovery of the namespaced kinds that can be
//! listed, then a list per kind in the namespace (kinds veer may not list are skipped).

use std::collections::HashMap;

use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::{Discovery, Scope, verbs};
use serde_json::Value;
use tracing::debug;

use crate::diff::PruneSkipReason;
use crate::manifest::ObjectKey;

/// Objects per list page. More than one: what the system puts in every namespace (e.g.
/// `kube-root-ca.crt`) sorts before many names and would hide the object that matters.
const PAGE: u32 = 100;

/// Kinds that never keep a namespace: records of what happened (Events), and Endpoints,
/// which mirror the Service of the same name (a Service that stays is found itself).
const IGNORED_KINDS: &[(&str, &str)] =
    &[("", "Event"), ("events.k8s.io", "Event"), ("", "Endpoints")];

/// What Kubernetes itself puts in every namespace: (group, kind, name).
const SYSTEM_OBJECTS: &[(&str, &str, &str)] = &[
    ("", "ConfigMap", "kube-root-ca.crt"),
    ("", "ServiceAccount", "default"),
];

/// One object the server listed in the namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct Resident {
    pub key: ObjectKey,
    /// As the server returned it.
    pub object: Value,
    /// It has an owner of a namespaced kind, so in this namespace: the garbage collector takes
    /// it with its owner, and an owner that stays is found itself.
    pub owned_here: bool,
}

pub(super) fn is_namespace(key: &ObjectKey) -> bool {
    key.group.is_empty() && key.kind == "Namespace"
}

/// Does this object keep its namespace from being deleted? Pure.
pub fn keeps_namespace(resident: &Resident) -> bool {
    let key = &resident.key;
    let meta = |field: &str| resident.object.pointer(&format!("/metadata/{field}"));
    if IGNORED_KINDS
        .iter()
        .any(|(g, k)| *g == key.group && *k == key.kind)
    {
        return false;
    }
    if SYSTEM_OBJECTS
        .iter()
        .any(|(g, k, n)| *g == key.group && *k == key.kind && *n == key.name)
    {
        return false;
    }
    // The default service account's token (clusters before 1.24 make one per namespace).
    if key.group.is_empty()
        && key.kind == "Secret"
        && resident.object.get("type").and_then(Value::as_str)
            == Some("kubernetes.io/service-account-token")
        && meta("annotations")
            .and_then(|a| a.get("kubernetes.io/service-account.name"))
            .and_then(Value::as_str)
            == Some("default")
    {
        return false;
    }
    // Already on its way out.
    if meta("deletionTimestamp").is_some_and(|t| !t.is_null()) {
        return false;
    }
    !resident.owned_here
}

/// The reason to keep the namespace, if anything in it stays: the first object that does (in
/// key order) and how many more (`unseen`: objects the server said are on pages not read).
/// `pruned` are the objects this pass pruned: gone, or (in a server dry run) as good as gone.
/// Pure.
pub fn namespace_keeper(
    residents: &[Resident],
    pruned: &[ObjectKey],
    unseen: usize,
) -> Option<PruneSkipReason> {
    let mut keepers: Vec<&ObjectKey> = residents
        .iter()
        .filter(|r| keeps_namespace(r))
        .map(|r| &r.key)
        .filter(|k| !pruned.iter().any(|p| p.same_object(k)))
        .collect();
    keepers.sort();
    keepers.dedup_by(|a, b| a.same_object(b));
    let first = keepers.first()?;
    Some(PruneSkipReason::NamespaceNotEmpty {
        by: (*first).clone(),
        more: keepers.len() - 1 + unseen,
    })
}

/// What the server lists in a namespace.
#[derive(Debug, Default)]
pub(super) struct Census {
    pub residents: Vec<Resident>,
    /// Objects on pages not read (the server's `remainingItemCount`) of kinds that already
    /// showed one that keeps the namespace.
    pub unseen: usize,
}

/// List what lives in `namespace`: every namespaced kind the server can list, a page at a
/// time until a page shows an object that keeps it. Kinds veer may not list (403) or that
/// went away (404, 405) are skipped; any other error is returned (nothing is known then).
pub(super) async fn census(client: &kube::Client, namespace: &str) -> Result<Census, kube::Error> {
    let discovery = Discovery::new(client.clone()).run().await?;
    let mut scopes: HashMap<(String, String), bool> = HashMap::new();
    let mut kinds = Vec::new();
    for group in discovery.groups() {
        for (resource, caps) in group.recommended_resources() {
            let namespaced = matches!(caps.scope, Scope::Namespaced);
            scopes.insert((resource.group.clone(), resource.kind.clone()), namespaced);
            let ignored = IGNORED_KINDS
                .iter()
                .any(|(g, k)| *g == resource.group && *k == resource.kind);
            if namespaced && caps.supports_operation(verbs::LIST) && !ignored {
                kinds.push(resource);
            }
        }
    }
    let mut census = Census::default();
    for resource in kinds {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        let mut params = ListParams::default().limit(PAGE);
        loop {
            let page = match api.list(&params).await {
                Ok(page) => page,
                Err(kube::Error::Api(s)) if (403..=405).contains(&s.code) => {
                    debug!(kind = %resource.kind, namespace, code = s.code, "not listed: {}", s.message);
                    break;
                }
                Err(e) => return Err(e),
            };
            let before = census.residents.len();
            for item in page.items {
                let owned_here = item.metadata.owner_references.iter().flatten().any(|o| {
                    // `apps/v1` → `apps`; `v1` → the core group.
                    let group = o.api_version.rsplit_once('/').map_or("", |(g, _)| g);
                    scopes
                        .get(&(group.to_string(), o.kind.clone()))
                        .copied()
                        .unwrap_or(false)
                });
                let key = ObjectKey {
                    group: resource.group.clone(),
                    version: resource.version.clone(),
                    kind: resource.kind.clone(),
                    namespace: Some(namespace.to_string()),
                    name: item.metadata.name.clone().unwrap_or_default(),
                };
                let object = serde_json::to_value(&item).unwrap_or(Value::Null);
                census.residents.push(Resident {
                    key,
                    object,
                    owned_here,
                });
            }
            let found = census.residents[before..].iter().any(keeps_namespace);
            let next = page.metadata.continue_.filter(|c| !c.is_empty());
            match next {
                Some(token) if !found => params = params.continue_token(&token),
                Some(_) => {
                    let remaining = page.metadata.remaining_item_count.unwrap_or(0);
                    census.unseen += usize::try_from(remaining).unwrap_or(0);
                    break;
                }
                None => break,
            }
        }
    }
    Ok(census)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn resident(group: &str, kind: &str, name: &str, object: Value, owned: bool) -> Resident {
        Resident {
            key: ObjectKey {
                group: group.into(),
                version: "v1".into(),
                kind: kind.into(),
                namespace: Some("shop".into()),
                name: name.into(),
            },
            object,
            owned_here: owned,
        }
    }

    #[test]
    fn what_keeps_a_namespace() {
        let plain = json!({"metadata": {"name": "x"}});
        let cases = [
            (
                resident("", "ConfigMap", "settings", plain.clone(), false),
                true,
            ),
            (
                resident(
                    "",
                    "ConfigMap",
                    "kept",
                    json!({"metadata": {"annotations": {"veer.io/prune": "false"}}}),
                    false,
                ),
                true,
            ),
            (
                resident("", "ConfigMap", "kube-root-ca.crt", plain.clone(), false),
                false,
            ),
            (
                resident("", "ServiceAccount", "default", plain.clone(), false),
                false,
            ),
            (
                resident("", "ServiceAccount", "builder", plain.clone(), false),
                true,
            ),
            (
                resident(
                    "",
                    "Secret",
                    "default-token-abcde",
                    json!({"type": "kubernetes.io/service-account-token", "metadata": {"annotations": {"kubernetes.io/service-account.name": "default"}}}),
                    false,
                ),
                false,
            ),
            (
                resident(
                    "",
                    "Secret",
                    "builder-token-abcde",
                    json!({"type": "kubernetes.io/service-account-token", "metadata": {"annotations": {"kubernetes.io/service-account.name": "builder"}}}),
                    false,
                ),
                true,
            ),
            (resident("", "Event", "x.123", plain.clone(), false), false),
            (
                resident("events.k8s.io", "Event", "x.123", plain.clone(), false),
                false,
            ),
            (
                resident("", "Endpoints", "reviews", plain.clone(), false),
                false,
            ),
            (
                resident("apps", "ReplicaSet", "reviews-abc", plain.clone(), true),
                false,
            ),
            (
                resident("apps", "Deployment", "reviews", plain.clone(), false),
                true,
            ),
            (
                resident(
                    "",
                    "PersistentVolumeClaim",
                    "data",
                    json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}),
                    false,
                ),
                false,
            ),
        ];
        for (r, keeps) in cases {
            assert_eq!(keeps_namespace(&r), keeps, "{}", r.key);
        }
    }

    #[test]
    fn the_keeper_is_named_with_a_count_and_pruned_objects_do_not_count() {
        let plain = json!({"metadata": {}});
        let residents = vec![
            resident("", "ConfigMap", "settings", plain.clone(), false),
            resident("", "ConfigMap", "kube-root-ca.crt", plain.clone(), false),
            resident("", "ConfigMap", "old", plain.clone(), false),
            resident("apps", "Deployment", "reviews", plain.clone(), false),
        ];
        let pruned = vec![residents[2].key.clone()];
        assert_eq!(
            namespace_keeper(&residents, &pruned, 0),
            Some(PruneSkipReason::NamespaceNotEmpty {
                by: residents[0].key.clone(),
                more: 1,
            })
        );
        assert_eq!(
            namespace_keeper(&residents, &pruned, 5),
            Some(PruneSkipReason::NamespaceNotEmpty {
                by: residents[0].key.clone(),
                more: 6,
            })
        );
        let only_pruned = vec![residents[1].clone(), residents[2].clone()];
        assert_eq!(namespace_keeper(&only_pruned, &pruned, 0), None);
        assert_eq!(namespace_keeper(&[], &[], 0), None);
    }
}
