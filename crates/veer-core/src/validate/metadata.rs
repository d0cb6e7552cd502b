//! Object metadata the API server would refuse, checked offline: `metadata.name` per kind
//! (`manifest::kinds`), `metadata.namespace`, label keys and values, annotation keys and the
//! total size of annotations, also in the label maps of the workloads veer knows (selectors,
//! pod templates). The server rejects every one of these, so every finding is an error.

/// The checks of this module, for the catalog (`validate::catalog`).
pub const CHECKS: &[Check] = &[
    Check::error(
        "invalid-name",
        "any",
        "Kubernetes API server: metadata.name per kind (IsDNS1123Subdomain, IsDNS1123Label, IsDNS1035Label, IsValidPathSegmentName), metadata.namespace IsDNS1123Label",
    ),
    Check::error(
        "invalid-label",
        "any",
        "Kubernetes API server: ValidateLabels (IsQualifiedName keys, IsValidLabelValue values), also in workload selectors and pod templates",
    ),
    Check::error(
        "invalid-annotation",
        "any",
        "Kubernetes API server: ValidateAnnotations (IsQualifiedName keys, 256 KiB in all)",
    ),
];

use serde_json::{Map, Value};

use super::Index;
use super::catalog::Check;
use super::k8s_names::{
    LABEL_MAX, describe, label_value_problem, name_problem, qualified_name_problem, suggest,
};
use crate::diagnostic::Diagnostic;
use crate::manifest::Manifest;
use crate::manifest::istio::display_path;
use crate::manifest::kinds::{self, NameRule};
use crate::manifest::yaml::pointer_join;

/// Largest total size of an object's annotations (keys plus values), in bytes
/// (`ValidateAnnotations`).
pub const TOTAL_ANNOTATION_BYTES: usize = 256 * 1024;

/// A value shown in a message: long ones are cut.
fn shown(s: &str) -> String {
    const SHOWN: usize = 40;
    if s.chars().count() > SHOWN {
        format!("{}…", s.chars().take(SHOWN).collect::<String>())
    } else {
        s.to_string()
    }
}

/// JSON type of a value, for messages.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

const LABEL_KEY_FIX: &str = "a key is `name` or `prefix/name`: the name at most 63 letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit; the prefix a DNS subdomain such as `example.com`";

/// Which maps inside an object the API server validates as labels or annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MapKind {
    Labels,
    Annotations,
}

const WORKLOAD_MAPS: &[(&str, MapKind)] = &[
    ("/spec/selector/matchLabels", MapKind::Labels),
    ("/spec/template/metadata/labels", MapKind::Labels),
    ("/spec/template/metadata/annotations", MapKind::Annotations),
];

/// Label and annotation maps beyond `metadata` for the kinds veer knows well.
fn nested_maps(group: &str, kind: &str) -> &'static [(&'static str, MapKind)] {
    match (group, kind) {
        ("apps", "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet") | ("batch", "Job") => {
            WORKLOAD_MAPS
        }
        ("batch", "CronJob") => &[
            ("/spec/jobTemplate/metadata/labels", MapKind::Labels),
            (
                "/spec/jobTemplate/metadata/annotations",
                MapKind::Annotations,
            ),
            (
                "/spec/jobTemplate/spec/template/metadata/labels",
                MapKind::Labels,
            ),
            (
                "/spec/jobTemplate/spec/template/metadata/annotations",
                MapKind::Annotations,
            ),
        ],
        ("", "Service") => &[("/spec/selector", MapKind::Labels)],
        ("", "ReplicationController") => &[
            ("/spec/selector", MapKind::Labels),
            ("/spec/template/metadata/labels", MapKind::Labels),
            ("/spec/template/metadata/annotations", MapKind::Annotations),
        ],
        ("policy", "PodDisruptionBudget") => &[("/spec/selector/matchLabels", MapKind::Labels)],
        _ => &[],
    }
}

pub fn check(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    for m in index.all {
        check_object(m, out);
    }
}

/// The checks of one object: a function of the object alone (incremental validation reuses
/// them for objects that did not change).
pub fn check_object(m: &Manifest, out: &mut Vec<Diagnostic>) {
    check_name(m, out);
    check_namespace(m, out);
    check_map(m, "/metadata/labels", MapKind::Labels, out);
    check_map(m, "/metadata/annotations", MapKind::Annotations, out);
    for (pointer, kind) in nested_maps(&m.key.group, &m.key.kind) {
        check_map(m, pointer, *kind, out);
    }
}

fn check_name(m: &Manifest, out: &mut Vec<Diagnostic>) {
    let name = &m.key.name;
    let rule = kinds::name_rule(&m.key.group, &m.key.kind);
    let Some(why) = name_problem(name, rule) else {
        return;
    };
    let fix = match (suggest(name, rule), rule) {
        (Some(s), _) if s.len() <= LABEL_MAX => {
            format!("rename it, e.g. `name: {s}`, and update what refers to it")
        }
        (_, NameRule::Subdomain { max }) if name.len() > max => {
            format!("shorten it to at most {max} characters, and update what refers to it")
        }
        _ => format!("rename it to {}", describe(rule)),
    };
    out.push(
        m.error(
            "invalid-name",
            "/metadata/name",
            format!(
                "metadata.name `{}` {why}; a {} name must be {}",
                shown(name),
                m.key.kind,
                describe(rule)
            ),
        )
        .fix(fix),
    );
}

/// An explicit `metadata.namespace` of a namespaced kind must be a DNS-1123 label. (The API
/// server clears it on cluster-scoped kinds.)
fn check_namespace(m: &Manifest, out: &mut Vec<Diagnostic>) {
    const AT: &str = "/metadata/namespace";
    let problem = match m.value.pointer(AT) {
        None | Some(Value::Null) => None,
        Some(Value::String(ns)) if ns.is_empty() || m.key.namespace.is_none() => None,
        Some(Value::String(ns)) => name_problem(ns, NameRule::Label).map(|why| {
            (
                format!(
                    "metadata.namespace `{}` {why}; a namespace name must be {}",
                    shown(ns),
                    describe(NameRule::Label)
                ),
                suggest(ns, NameRule::Label),
            )
        }),
        Some(other) => Some((
            format!(
                "metadata.namespace is {}; it must be a string",
                type_name(other)
            ),
            None,
        )),
    };
    if let Some((message, suggestion)) = problem {
        let fix = match suggestion {
            Some(s) => format!("write `namespace: {s}`"),
            None => "write the name of a namespace: lowercase letters, digits and `-`".to_string(),
        };
        out.push(m.error("invalid-name", AT, message).fix(fix));
    }
}

fn check_map(m: &Manifest, pointer: &str, kind: MapKind, out: &mut Vec<Diagnostic>) {
    let code = match kind {
        MapKind::Labels => "invalid-label",
        MapKind::Annotations => "invalid-annotation",
    };
    let path = display_path(pointer);
    let map: &Map<String, Value> = match m.value.pointer(pointer) {
        None | Some(Value::Null) => return,
        Some(Value::Object(map)) => map,
        Some(other) => {
            out.push(
                m.error(
                    code,
                    pointer,
                    format!(
                        "{path} is {}; it must be a mapping of keys to string values",
                        type_name(other)
                    ),
                )
                .fix("write it as `key: value` lines under the field"),
            );
            return;
        }
    };
    let mut total = 0usize;
    for (key, value) in map {
        let at = pointer_join(pointer, key);
        if let Some(why) = qualified_name_problem(key, kind == MapKind::Annotations) {
            out.push(
                m.error(code, &at, format!("{path}: key `{}` {why}", shown(key)))
                    .fix(LABEL_KEY_FIX),
            );
        }
        total += key.len();
        match value {
            Value::Null => {}
            Value::String(s) => {
                total += s.len();
                if kind == MapKind::Labels
                    && let Some(why) = label_value_problem(s)
                {
                    out.push(
                        m.error(
                            code,
                            &at,
                            format!("{path}: the value of `{}`, `{}`, {why}", shown(key), shown(s)),
                        )
                        .fix("a label value is empty or at most 63 letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit; put longer text in an annotation"),
                    );
                }
            }
            other @ (Value::Bool(_) | Value::Number(_) | Value::Array(_) | Value::Object(_)) => out
                .push(
                    m.error(
                        code,
                        &at,
                        format!(
                            "{path}: the value of `{}` is {}; values here must be strings",
                            shown(key),
                            type_name(other)
                        ),
                    )
                    .fix(format!("quote it: `{key}: \"{other}\"`")),
                ),
        }
    }
    if kind == MapKind::Annotations && total > TOTAL_ANNOTATION_BYTES {
        out.push(
            m.error(
                code,
                pointer,
                format!(
                    "{path} total {total} bytes, more than the API server's limit of {TOTAL_ANNOTATION_BYTES} bytes (256 KiB)"
                ),
            )
            .fix("move large data out of annotations, e.g. into a ConfigMap"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(yaml: &str) -> Vec<(&'static str, u32, String)> {
        let mut set = crate::manifest::ManifestSet::default();
        set.extend(&crate::manifest::parse_file(
            "x.yaml",
            yaml.as_bytes(),
            &crate::manifest::ReadOptions::default(),
        ));
        super::super::validate(&set)
            .diagnostics
            .into_iter()
            .map(|d| (d.code, d.line, d.message))
            .collect()
    }

    #[test]
    fn annotations_are_limited_in_total_not_each() {
        let half = "x".repeat(TOTAL_ANNOTATION_BYTES / 2);
        let at_limit = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  annotations:\n    a: {}\n    b: {}\n",
            &half[..half.len() - 1],
            &half[..half.len() - 1]
        );
        assert_eq!(codes(&at_limit), vec![]);
        let over = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  annotations:\n    a: {half}\n    b: {half}\n"
        );
        let got = codes(&over);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!((got[0].0, got[0].1), ("invalid-annotation", 5));
        assert!(got[0].2.contains("262146 bytes"), "{}", got[0].2);
    }

    #[test]
    fn namespaces_are_labels_where_the_server_keeps_them() {
        let table: &[(&str, Option<u32>)] = &[
            (
                "kind: ConfigMap\nmetadata:\n  name: c\n  namespace: shop\n",
                None,
            ),
            (
                "kind: ConfigMap\nmetadata:\n  name: c\n  namespace: shop.eu\n",
                Some(5),
            ),
            (
                "kind: ConfigMap\nmetadata:\n  name: c\n  namespace: 12\n",
                Some(5),
            ),
            // Cluster-scoped: the API server clears the namespace.
            (
                "kind: Namespace\nmetadata:\n  name: c\n  namespace: Shop\n",
                None,
            ),
        ];
        for (doc, want) in table {
            let got: Vec<u32> = codes(&format!("apiVersion: v1\n{doc}"))
                .into_iter()
                .filter(|(code, ..)| *code == "invalid-name")
                .map(|(_, line, _)| line)
                .collect();
            assert_eq!(got, want.iter().copied().collect::<Vec<_>>(), "{doc}");
        }
    }
}
