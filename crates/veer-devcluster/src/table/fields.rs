//! Reading an object's fields for a cell (missing or mistyped fields read as empty), and the
//! formats kube-apiserver's printers share: `<none>`, labels, label selectors, containers.

use serde_json::{Map, Value};

pub(super) fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub(super) fn int(object: &Value, pointer: &str) -> i64 {
    object.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

pub(super) fn items<'a>(object: &'a Value, pointer: &str) -> &'a [Value] {
    object
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

pub(super) fn entries(object: &Value, pointer: &str) -> usize {
    object
        .pointer(pointer)
        .and_then(Value::as_object)
        .map_or(0, Map::len)
}

pub(super) fn or_none(s: String) -> String {
    if s.is_empty() { "<none>".into() } else { s }
}

/// `k=v,k2=v2` sorted by key (`labels.FormatLabels`), `<none>` when empty.
pub(super) fn format_labels(labels: Option<&Value>) -> String {
    let mut pairs: Vec<String> = labels
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    pairs.sort();
    or_none(pairs.join(","))
}

/// A `LabelSelector` as a selector string (`app=web,tier in (a,b),!canary`), requirements
/// sorted by key; `<invalid>` for an unknown operator or a malformed expression.
pub(super) fn format_label_selector(selector: Option<&Value>) -> String {
    let Some(selector) = selector else {
        return String::new();
    };
    let mut reqs: Vec<(String, String)> = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))))
                .collect()
        })
        .unwrap_or_default();
    for e in items(selector, "/matchExpressions") {
        let key = text(e, "/key");
        let mut values: Vec<&str> = items(e, "/values")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        values.sort_unstable();
        let req = match (text(e, "/operator"), values.is_empty()) {
            ("In", false) => format!("{key} in ({})", values.join(",")),
            ("NotIn", false) => format!("{key} notin ({})", values.join(",")),
            ("Exists", true) => key.to_string(),
            ("DoesNotExist", true) => format!("!{key}"),
            _ => return "<invalid>".into(),
        };
        reqs.push((key.to_string(), req));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    reqs.into_iter()
        .map(|(_, r)| r)
        .collect::<Vec<_>>()
        .join(",")
}

/// Names and images of a pod template's containers, comma-separated.
pub(super) fn container_cells(object: &Value, pointer: &str) -> (String, String) {
    let containers = items(object, pointer);
    let join = |field: &str| {
        containers
            .iter()
            .map(|c| text(c, field))
            .collect::<Vec<_>>()
            .join(",")
    };
    (join("/name"), join("/image"))
}
