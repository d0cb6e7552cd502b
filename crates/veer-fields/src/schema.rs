//! List semantics from the schemas an API server publishes.
//!
//! Owns: turning a CustomResourceDefinition's `x-kubernetes-list-type` markers into
//! [`ListRule`]s ([`crd_list_rules`]), the same for the built-in types from an OpenAPI v2
//! document ([`openapi_v2_list_rules`]), and the rules current Istio CRDs declare for the
//! kinds the embedded server serves without a CRD ([`istio_list_rules`]). Pure: JSON in,
//! rules out. A server with Istio's CRDs keys ServiceEntry `spec.ports` by `name` and records
//! ownership per port; with only a built-in table veer would treat the list as atomic and
//! never see its own ports in the live object.

mod openapi_v2;

use serde_json::Value;

use crate::fields::{KeyField, ListRule, ListSemantics, ListType, PathMatch, RuleScope};

pub use openapi_v2::openapi_v2_list_rules;

/// Why a CRD yields no rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("CustomResourceDefinition {crd}: {field} is missing")]
    Missing { crd: String, field: &'static str },
}

/// The list rules a CRD declares, scoped to its (group, kind), from every served version's
/// `schema.openAPIV3Schema`: `x-kubernetes-list-type: map` with `x-kubernetes-list-map-keys`
/// becomes a keyed rule, `set` a set, `atomic` an atomic one. The storage version's rule
/// wins where served versions disagree (objects are stored at it). Paths follow
/// [`crate::fields::ListSemantics::list_type`]: dotted field names, `[]` inside a list's
/// items, `*` for a free-form map's keys. A `map` list without keys is skipped (the server
/// refuses such a CRD).
pub fn crd_list_rules(crd: &Value) -> Result<Vec<ListRule>, SchemaError> {
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)")
        .to_string();
    let text = |pointer: &str, field: &'static str| {
        crd.pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| SchemaError::Missing {
                crd: name.clone(),
                field,
            })
    };
    let group = text("/spec/group", "spec.group")?;
    let kind = text("/spec/names/kind", "spec.names.kind")?;
    let mut versions: Vec<&Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    versions.retain(|v| v.get("served").and_then(Value::as_bool) != Some(false));
    // Storage version first; a stable sort keeps the others in their order.
    versions.sort_by_key(|v| v.get("storage").and_then(Value::as_bool) != Some(true));

    let mut found: Vec<(String, bool, ListType)> = Vec::new();
    for version in versions {
        let Some(root) = version.pointer("/schema/openAPIV3Schema") else {
            continue;
        };
        let Some(props) = root.get("properties").and_then(Value::as_object) else {
            continue;
        };
        for (field, schema) in props {
            // ObjectMeta follows the server's own rules, whatever a CRD's schema says.
            if matches!(field.as_str(), "metadata" | "apiVersion" | "kind") {
                continue;
            }
            walk(schema, field.clone(), false, &mut found);
        }
    }
    let mut rules: Vec<ListRule> = Vec::new();
    for (path, wildcard, list_type) in found {
        let path = if wildcard {
            PathMatch::Pattern(path.into())
        } else {
            PathMatch::Exact(path.into())
        };
        if rules.iter().any(|r| r.path == path) {
            continue;
        }
        rules.push(ListRule {
            scope: RuleScope::Kind(group.clone().into(), kind.clone().into()),
            path,
            list_type,
        });
    }
    Ok(rules)
}

/// Collect the marked lists at and below `schema`, whose path is `path` (`wildcard`: the
/// path has a `*`).
fn walk(schema: &Value, path: String, wildcard: bool, out: &mut Vec<(String, bool, ListType)>) {
    if let Some(items) = schema.get("items").filter(|i| i.is_object()) {
        if let Some(list_type) = list_type(schema, items) {
            out.push((path.clone(), wildcard, list_type));
        }
        walk(items, format!("{path}[]"), wildcard, out);
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (field, sub) in props {
            walk(sub, format!("{path}.{field}"), wildcard, out);
        }
    }
    if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        walk(values, format!("{path}.*"), true, out);
    }
}

/// The list rules of every CRD a server serves, in front of the built-in table, and the CRDs
/// whose rules could not be read (their lists stay atomic).
///
/// An Istio kind with no CRD among them gets [`istio_list_rules`]: a real server serves no
/// such kind at all, the embedded one serves it built in, merging as current Istio does. A
/// kind with a CRD follows that CRD alone (an older Istio's atomic ports stay atomic).
pub fn list_semantics_from_crds<'a>(
    crds: impl IntoIterator<Item = &'a Value>,
) -> (ListSemantics, Vec<SchemaError>) {
    let mut rules = Vec::new();
    let mut problems = Vec::new();
    let mut defined: Vec<(&str, &str)> = Vec::new();
    for crd in crds {
        if let (Some(group), Some(kind)) = (
            crd.pointer("/spec/group").and_then(Value::as_str),
            crd.pointer("/spec/names/kind").and_then(Value::as_str),
        ) {
            defined.push((group, kind));
        }
        match crd_list_rules(crd) {
            Ok(r) => rules.extend(r),
            Err(e) => problems.push(e),
        }
    }
    let built_in = istio_list_rules()
        .into_iter()
        .filter(|rule| match &rule.scope {
            RuleScope::Kind(group, kind) => !defined.contains(&(group.as_ref(), kind.as_ref())),
            RuleScope::AllKinds | RuleScope::Workloads => true,
        });
    rules.extend(built_in);
    (ListSemantics::from_server(rules), problems)
}

/// What a list schema's markers say; `None` when it has none (or they are unusable).
fn list_type(list: &Value, items: &Value) -> Option<ListType> {
    match list.get("x-kubernetes-list-type").and_then(Value::as_str)? {
        "atomic" => Some(ListType::Atomic),
        "set" => Some(ListType::Set),
        "map" => {
            let keys: Vec<KeyField> = list
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)?
                .iter()
                .filter_map(Value::as_str)
                .map(|name| {
                    // The server fills a key's schema default before it names the item.
                    let default = items
                        .pointer(&format!("/properties/{}/default", pointer_escape(name)))
                        .and_then(Value::as_str);
                    match default {
                        Some(d) => KeyField::new(name.to_string()).with_default(d.to_string()),
                        None => KeyField::new(name.to_string()),
                    }
                })
                .collect();
            (!keys.is_empty()).then(|| ListType::Map(keys.into()))
        }
        _ => None,
    }
}

/// A JSON pointer token for `name` (RFC 6901).
fn pointer_escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// The list rules current Istio CRDs (1.22 and later) declare for the networking kinds:
/// ServiceEntry `spec.ports` is a map keyed by `name` (every served version). For a server
/// that serves Istio's kinds without their CRDs, as the embedded one does.
pub fn istio_list_rules() -> Vec<ListRule> {
    vec![ListRule::for_kind(
        "networking.istio.io",
        "ServiceEntry",
        "spec.ports",
        ListType::Map(vec![KeyField::new("name")].into()),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A small CRD with every kind of marker, written for this test.
    fn widget_crd() -> Value {
        let schema = |ports_key: &str| {
            json!({"openAPIV3Schema": {"type": "object", "properties": {
                "metadata": {"type": "object", "properties": {
                    "finalizers": {"type": "array", "items": {"type": "string"},
                                   "x-kubernetes-list-type": "atomic"}}},
                "spec": {"type": "object", "properties": {
                    "ports": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": [ports_key],
                        "items": {"type": "object", "properties": {
                            "name": {"type": "string"},
                            "number": {"type": "integer"},
                            "protocol": {"type": "string", "default": "TCP"},
                            "hosts": {"type": "array", "items": {"type": "string"},
                                      "x-kubernetes-list-type": "set"}
                        }}
                    },
                    "hosts": {"type": "array", "items": {"type": "string"},
                              "x-kubernetes-list-type": "set"},
                    "exportTo": {"type": "array", "items": {"type": "string"},
                                 "x-kubernetes-list-type": "atomic"},
                    "plain": {"type": "array", "items": {"type": "string"}},
                    "routes": {"type": "object", "additionalProperties": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["number", "protocol"],
                        "items": {"type": "object", "properties": {
                            "number": {"type": "integer"},
                            "protocol": {"type": "string", "default": "TCP"}}}
                    }},
                    "broken": {"type": "array", "x-kubernetes-list-type": "map",
                               "items": {"type": "object"}},
                    "matrix": {"type": "array", "items": {
                        "type": "array", "x-kubernetes-list-type": "set",
                        "items": {"type": "string"}}}
                }}
            }}})
        };
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "names": {"kind": "Widget", "plural": "widgets"},
                "scope": "Namespaced",
                "versions": [
                    {"name": "v1alpha1", "served": true, "storage": false,
                     "schema": schema("number")},
                    {"name": "v1", "served": true, "storage": true, "schema": schema("name")},
                    {"name": "v0", "served": false, "storage": false,
                     "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "properties": {"old": {
                            "type": "array", "x-kubernetes-list-type": "set",
                            "items": {"type": "string"}}}}}}}}
                ]
            }
        })
    }

    #[test]
    fn a_crd_s_markers_become_rules_for_its_kind() {
        let semantics = ListSemantics::from_server(crd_list_rules(&widget_crd()).unwrap());
        let name = ListType::Map(vec![KeyField::new("name")].into());
        let number_protocol = ListType::Map(
            vec![
                KeyField::new("number"),
                KeyField::new("protocol").with_default("TCP"),
            ]
            .into(),
        );
        let cases: &[(&str, &str, ListType)] = &[
            // The storage version's keys win over another served version's.
            ("Widget", "spec.ports", name.clone()),
            ("Widget", "spec.ports[].hosts", ListType::Set),
            ("Widget", "spec.hosts", ListType::Set),
            ("Widget", "spec.exportTo", ListType::Atomic),
            ("Widget", "spec.plain", ListType::Atomic),
            ("Widget", "spec.routes.a", number_protocol.clone()),
            ("Widget", "spec.routes.b.example.com", number_protocol),
            ("Widget", "spec.broken", ListType::Atomic),
            ("Widget", "spec.matrix", ListType::Atomic),
            ("Widget", "spec.matrix[]", ListType::Set),
            // Not served: no rule.
            ("Widget", "spec.old", ListType::Atomic),
            // ObjectMeta keeps the server's rules.
            ("Widget", "metadata.finalizers", ListType::Set),
            // Another kind of the group: untouched.
            ("Gadget", "spec.ports", ListType::Atomic),
        ];
        for (kind, path, want) in cases {
            assert_eq!(
                semantics.list_type("example.com", kind, path),
                want,
                "{kind} {path}"
            );
        }
    }

    #[test]
    fn each_rule_appears_once() {
        let rules = crd_list_rules(&widget_crd()).unwrap();
        for r in &rules {
            assert_eq!(
                rules.iter().filter(|o| o.path == r.path).count(),
                1,
                "{r:?}"
            );
        }
        assert_eq!(rules.len(), 6, "{rules:#?}");
    }

    #[test]
    fn a_crd_without_group_or_kind_is_an_error() {
        let crd = json!({"metadata": {"name": "x"}, "spec": {"names": {"kind": "X"}}});
        assert_eq!(
            crd_list_rules(&crd),
            Err(SchemaError::Missing {
                crd: "x".into(),
                field: "spec.group"
            })
        );
        let crd = json!({"spec": {"group": "g", "names": {}}});
        assert!(matches!(
            crd_list_rules(&crd),
            Err(SchemaError::Missing {
                field: "spec.names.kind",
                ..
            })
        ));
    }

    #[test]
    fn every_crd_s_rules_are_in_force_and_a_broken_one_is_reported() {
        let broken = json!({"metadata": {"name": "broken.example.com"}, "spec": {}});
        let crds = [widget_crd(), broken];
        let (semantics, problems) = list_semantics_from_crds(&crds);
        assert_eq!(
            semantics.list_type("example.com", "Widget", "spec.hosts"),
            &ListType::Set
        );
        assert_eq!(
            semantics.list_type("", "Service", "spec.ports"),
            ListSemantics::kubernetes().list_type("", "Service", "spec.ports")
        );
        assert_eq!(problems.len(), 1);
        assert!(problems[0].to_string().contains("broken.example.com"));
        // No ServiceEntry CRD: the kind is the embedded server's built-in one.
        assert_eq!(
            semantics.list_type("networking.istio.io", "ServiceEntry", "spec.ports"),
            &ListType::Map(vec![KeyField::new("name")].into())
        );
    }

    #[test]
    fn an_istio_crd_without_markers_keeps_its_lists_atomic() {
        let crd = json!({
            "metadata": {"name": "serviceentries.networking.istio.io"},
            "spec": {"group": "networking.istio.io",
                     "names": {"kind": "ServiceEntry", "plural": "serviceentries"},
                     "versions": [{"name": "v1beta1", "served": true, "storage": true,
                         "schema": {"openAPIV3Schema": {"type": "object",
                             "x-kubernetes-preserve-unknown-fields": true}}}]}
        });
        let (semantics, problems) = list_semantics_from_crds([&crd]);
        assert!(problems.is_empty());
        assert_eq!(
            semantics.list_type("networking.istio.io", "ServiceEntry", "spec.ports"),
            &ListType::Atomic
        );
    }

    #[test]
    fn a_crd_without_schemas_has_no_rules() {
        let crd = json!({"spec": {"group": "g", "names": {"kind": "K"},
                                  "versions": [{"name": "v1", "served": true}]}});
        assert_eq!(crd_list_rules(&crd), Ok(Vec::new()));
    }

    #[test]
    fn istio_service_entry_ports_are_keyed_by_name() {
        let s = ListSemantics::from_server(istio_list_rules());
        assert_eq!(
            s.list_type("networking.istio.io", "ServiceEntry", "spec.ports"),
            &ListType::Map(vec![KeyField::new("name")].into())
        );
        assert_eq!(
            s.list_type("networking.istio.io", "VirtualService", "spec.http"),
            &ListType::Atomic
        );
    }
}
