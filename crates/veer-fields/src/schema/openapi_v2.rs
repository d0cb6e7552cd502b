//! List rules of the built-in types from the server's OpenAPI v2 document (`/openapi/v2`).
//!
//! Each definition with `x-kubernetes-group-version-kind` is walked through its properties,
//! items, `additionalProperties` and `$ref`s. A list's rule comes from
//! `x-kubernetes-list-type` (+ `x-kubernetes-list-map-keys`), else, as the server's own
//! schema conversion does, from the strategic-merge markers: `x-kubernetes-patch-strategy:
//! merge` with `x-kubernetes-patch-merge-key` is a map keyed by it, without a key a set. The
//! document carries no defaults for key fields; those the built-in table knows (ports'
//! `protocol: TCP`) are kept, or items without them could not be named.

use serde_json::Value;

use crate::fields::{KeyField, ListRule, ListSemantics, ListType, PathMatch, RuleScope};

/// Properties not walked: identity, ObjectMeta (the server's own rules) and status (never
/// applied, never owned).
const SKIPPED_ROOT_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "status"];

/// The list rules of every kind the document defines, scoped to (group, kind).
pub fn openapi_v2_list_rules(doc: &Value) -> Vec<ListRule> {
    let Some(definitions) = doc.get("definitions").and_then(Value::as_object) else {
        return Vec::new();
    };
    let table = ListSemantics::kubernetes();
    let mut rules: Vec<ListRule> = Vec::new();
    for (name, definition) in definitions {
        let Some(gvks) = definition
            .get("x-kubernetes-group-version-kind")
            .and_then(Value::as_array)
        else {
            continue;
        };
        let Some(props) = definition.get("properties").and_then(Value::as_object) else {
            continue;
        };
        let mut found = Vec::new();
        let mut walker = Walker {
            definitions,
            visiting: vec![name.as_str()],
            out: &mut found,
        };
        for (field, schema) in props {
            if !SKIPPED_ROOT_FIELDS.contains(&field.as_str()) {
                walker.walk(schema, field.clone(), false);
            }
        }
        for gvk in gvks {
            let (Some(group), Some(kind)) = (
                gvk.get("group").and_then(Value::as_str),
                gvk.get("kind").and_then(Value::as_str),
            ) else {
                continue;
            };
            for (path, wildcard, list_type) in &found {
                let list_type = with_table_defaults(list_type, table.list_type(group, kind, path));
                let rule = ListRule {
                    scope: RuleScope::Kind(group.to_string().into(), kind.to_string().into()),
                    path: if *wildcard {
                        PathMatch::Pattern(path.clone().into())
                    } else {
                        PathMatch::Exact(path.clone().into())
                    },
                    list_type,
                };
                // One rule per kind and path, whichever version defined it first.
                if !rules
                    .iter()
                    .any(|r| r.scope == rule.scope && r.path == rule.path)
                {
                    rules.push(rule);
                }
            }
        }
    }
    rules
}

/// Key defaults the document cannot say, from the built-in table's rule for the same list.
fn with_table_defaults(derived: &ListType, table: &ListType) -> ListType {
    match (derived, table) {
        (ListType::Map(keys), ListType::Map(known)) => ListType::Map(
            keys.iter()
                .map(|k| match known.iter().find(|t| t.name == k.name) {
                    Some(t) if k.default.is_none() => KeyField {
                        name: k.name.clone(),
                        default: t.default.clone(),
                    },
                    Some(_) | None => k.clone(),
                })
                .collect::<Vec<_>>()
                .into(),
        ),
        (ListType::Atomic | ListType::Set | ListType::Map(_), _) => derived.clone(),
    }
}

struct Walker<'d, 'o> {
    definitions: &'d serde_json::Map<String, Value>,
    /// Definitions on the way here: a `$ref` back to one of them is a cycle (JSONSchemaProps).
    visiting: Vec<&'d str>,
    out: &'o mut Vec<(String, bool, ListType)>,
}

impl<'d> Walker<'d, '_> {
    fn walk(&mut self, schema: &'d Value, path: String, wildcard: bool) {
        if let Some(target) = schema
            .get("$ref")
            .or_else(|| schema.pointer("/allOf/0/$ref"))
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/definitions/"))
        {
            let Some((name, resolved)) = self.definitions.get_key_value(target) else {
                return;
            };
            if self.visiting.contains(&name.as_str()) {
                return;
            }
            self.visiting.push(name.as_str());
            self.walk(resolved, path, wildcard);
            self.visiting.pop();
            return;
        }
        if let Some(items) = schema.get("items").filter(|i| i.is_object()) {
            if let Some(list_type) = list_type(schema) {
                self.out.push((path.clone(), wildcard, list_type));
            }
            self.walk(items, format!("{path}[]"), wildcard);
        }
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (field, sub) in props {
                self.walk(sub, format!("{path}.{field}"), wildcard);
            }
        }
        if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
            self.walk(values, format!("{path}.*"), true);
        }
    }
}

/// A list's rule from its markers; `None` when it is atomic by default.
fn list_type(list: &Value) -> Option<ListType> {
    let text = |field: &str| list.get(field).and_then(Value::as_str);
    match text("x-kubernetes-list-type") {
        Some("atomic") => return Some(ListType::Atomic),
        Some("set") => return Some(ListType::Set),
        Some("map") => {
            let keys: Vec<KeyField> = list
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)?
                .iter()
                .filter_map(Value::as_str)
                .map(|k| KeyField::new(k.to_string()))
                .collect();
            return (!keys.is_empty()).then(|| ListType::Map(keys.into()));
        }
        Some(_) | None => {}
    }
    let merge = text("x-kubernetes-patch-strategy")
        .is_some_and(|s| s.split(',').any(|part| part.trim() == "merge"));
    match (merge, text("x-kubernetes-patch-merge-key")) {
        (true, Some(key)) => Some(ListType::Map(vec![KeyField::new(key.to_string())].into())),
        (true, None) => Some(ListType::Set),
        (false, _) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A few definitions shaped like `/openapi/v2`, written for this test.
    fn doc() -> Value {
        json!({"swagger": "2.0", "definitions": {
            "io.k8s.api.apps.v1.Deployment": {
                "x-kubernetes-group-version-kind": [
                    {"group": "apps", "version": "v1", "kind": "Deployment"}],
                "properties": {
                    "metadata": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
                    "spec": {"$ref": "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"},
                    "status": {"properties": {"conditions": {"type": "array",
                        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
                        "items": {"type": "object"}}}}
                }
            },
            "io.k8s.api.apps.v1.DeploymentSpec": {"properties": {
                "template": {"$ref": "#/definitions/io.k8s.api.core.v1.PodTemplateSpec"}}},
            "io.k8s.api.core.v1.PodTemplateSpec": {"properties": {
                "spec": {"allOf": [{"$ref": "#/definitions/io.k8s.api.core.v1.PodSpec"}]}}},
            "io.k8s.api.core.v1.PodSpec": {"properties": {
                "containers": {"type": "array",
                    "items": {"$ref": "#/definitions/io.k8s.api.core.v1.Container"},
                    "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                    "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge"},
                "tolerations": {"type": "array", "items": {"type": "object"}},
                "nodeSelector": {"type": "object", "additionalProperties": {"type": "string"}}
            }},
            "io.k8s.api.core.v1.Container": {"properties": {
                "ports": {"type": "array", "items": {"type": "object"},
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["containerPort", "protocol"]},
                "env": {"type": "array", "items": {"type": "object"},
                    "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge"},
                "args": {"type": "array", "items": {"type": "string"},
                    "x-kubernetes-list-type": "atomic"}
            }},
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": {"properties": {
                "finalizers": {"type": "array", "items": {"type": "string"},
                    "x-kubernetes-patch-strategy": "merge", "x-kubernetes-list-type": "set"}}},
            "io.example.Node": {
                "x-kubernetes-group-version-kind": [
                    {"group": "example.com", "version": "v1", "kind": "Node"}],
                "properties": {"children": {"type": "array",
                    "items": {"$ref": "#/definitions/io.example.Node"},
                    "x-kubernetes-patch-strategy": "merge,retainKeys"}}
            }
        }})
    }

    #[test]
    fn built_in_kinds_get_rules_through_refs() {
        let semantics = ListSemantics::from_server(openapi_v2_list_rules(&doc()));
        let name = ListType::Map(vec![KeyField::new("name")].into());
        let port = ListType::Map(
            vec![
                KeyField::new("containerPort"),
                KeyField::new("protocol").with_default("TCP"),
            ]
            .into(),
        );
        let pod = "spec.template.spec";
        let cases: Vec<(&str, &str, String, ListType)> = vec![
            (
                "apps",
                "Deployment",
                format!("{pod}.containers"),
                name.clone(),
            ),
            (
                "apps",
                "Deployment",
                format!("{pod}.containers[].ports"),
                port,
            ),
            (
                "apps",
                "Deployment",
                format!("{pod}.containers[].env"),
                name,
            ),
            (
                "apps",
                "Deployment",
                format!("{pod}.containers[].args"),
                ListType::Atomic,
            ),
            (
                "apps",
                "Deployment",
                format!("{pod}.tolerations"),
                ListType::Atomic,
            ),
            (
                "apps",
                "Deployment",
                "status.conditions".into(),
                ListType::Atomic,
            ),
            (
                "apps",
                "Deployment",
                "metadata.finalizers".into(),
                ListType::Set,
            ),
            ("example.com", "Node", "children".into(), ListType::Set),
        ];
        for (group, kind, path, want) in cases {
            assert_eq!(
                semantics.list_type(group, kind, &path),
                &want,
                "{group}/{kind} {path}"
            );
        }
    }

    #[test]
    fn a_self_referencing_definition_ends() {
        let rules = openapi_v2_list_rules(&doc());
        let node: Vec<&ListRule> = rules
            .iter()
            .filter(|r| r.scope == RuleScope::Kind("example.com".into(), "Node".into()))
            .collect();
        assert_eq!(node.len(), 1, "{node:?}");
        assert_eq!(openapi_v2_list_rules(&json!({})), Vec::new());
    }
}
