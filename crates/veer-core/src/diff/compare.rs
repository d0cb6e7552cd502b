//! Comparing the two projected sides of one object: the form both are shown and compared in
//! ([`display_form`]), whether they differ at all ([`differs`], for the common case of no
//! change, without building that form) and field by field how ([`diff_values`]), and the
//! path helpers that take a running rollout's fields from live ([`lookup`], [`assign`]).
//! Pure.

use serde_json::Value;

use super::Change;
use crate::fields::{self, PathElement};

/// The form both sides are shown and compared in: map keys sorted (as kubectl shows them),
/// except that an object starts with `apiVersion`, `kind`, then `metadata` led by `name` and
/// `namespace`, so it reads like a manifest.
pub(super) fn display_form(value: &Value) -> Value {
    fn lead(value: Value, first: &[&str]) -> Value {
        let Value::Object(mut map) = value else {
            return value;
        };
        let mut out = serde_json::Map::new();
        for k in first {
            if let Some(v) = map.remove(*k) {
                out.insert((*k).to_string(), v);
            }
        }
        out.extend(map);
        Value::Object(out)
    }
    let mut top = lead(
        fields::canonical(value),
        &["apiVersion", "kind", "metadata"],
    );
    if let Some(meta) = top.get_mut("metadata") {
        *meta = lead(std::mem::take(meta), &["name", "namespace"]);
    }
    top
}

/// The value at `path` in `value`; keyed and set elements are found by content.
pub(super) fn lookup<'v>(value: &'v Value, path: &[PathElement]) -> Option<&'v Value> {
    let mut at = value;
    for element in path {
        at = step(at, element)?;
    }
    Some(at)
}

fn step<'v>(value: &'v Value, element: &PathElement) -> Option<&'v Value> {
    match (value, element) {
        (Value::Object(map), PathElement::Field(name)) => map.get(name),
        (Value::Array(items), PathElement::Index(i)) => items.get(*i),
        (Value::Array(items), PathElement::Key(keys)) => items
            .iter()
            .find(|item| keys.iter().all(|(k, v)| key_matches(item, k, v))),
        (Value::Array(items), PathElement::Value(v)) => {
            items.iter().find(|item| fields::same_value(item, v))
        }
        _ => None,
    }
}

fn key_matches(item: &Value, key: &str, value: &Value) -> bool {
    item.get(key).is_some_and(|v| fields::same_value(v, value))
}

/// Set the value at `path`, when every step but the last exists.
pub(super) fn assign(value: &mut Value, path: &[PathElement], new: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = value;
    for element in parents {
        let next = match (at, element) {
            (Value::Object(map), PathElement::Field(name)) => map.get_mut(name),
            (Value::Array(items), PathElement::Index(i)) => items.get_mut(*i),
            (Value::Array(items), PathElement::Key(keys)) => items
                .iter_mut()
                .find(|item| keys.iter().all(|(k, v)| key_matches(item, k, v))),
            (Value::Array(items), PathElement::Value(v)) => {
                items.iter_mut().find(|item| fields::same_value(item, v))
            }
            _ => None,
        };
        let Some(next) = next else {
            return;
        };
        at = next;
    }
    match (at, last) {
        (Value::Object(map), PathElement::Field(name)) => {
            map.insert(name.clone(), new);
        }
        (Value::Array(items), PathElement::Index(i)) => {
            if let Some(slot) = items.get_mut(*i) {
                *slot = new;
            }
        }
        _ => {}
    }
}

/// A field name as it reads in a path: bare when it is an identifier, quoted otherwise
/// (`metadata.annotations["veer.io/prune"]`).
fn push_name(path: &mut String, name: &str) {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(name);
    } else {
        path.push_str(&format!("[{}]", Value::String(name.to_string())));
    }
}

/// Field-by-field differences of two projected objects. Lists compare by position: both
/// sides are projections in the same order, so positions line up.
pub(super) fn diff_values(
    from: Option<&Value>,
    to: Option<&Value>,
    path: &mut String,
    out: &mut Vec<Change>,
) {
    match (from, to) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut names: Vec<&String> = a.keys().collect();
            names.extend(b.keys().filter(|k| !a.contains_key(*k)));
            for name in names {
                let len = path.len();
                push_name(path, name);
                diff_values(a.get(name), b.get(name), path, out);
                path.truncate(len);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            for i in 0..a.len().max(b.len()) {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                diff_values(a.get(i), b.get(i), path, out);
                path.truncate(len);
            }
        }
        (a, b) => {
            // By value: a server serves git's `25.0` back as `25`.
            let same = match (a, b) {
                (Some(a), Some(b)) => fields::same_value(a, b),
                (a, b) => a == b,
            };
            if !same {
                out.push(Change {
                    path: path.clone(),
                    from: a.cloned(),
                    to: b.cloned(),
                });
            }
        }
    }
}

/// Would [`diff_values`] find any difference? The same comparison (maps by their keys,
/// lists by position, leaves by value), stopping at the first difference and building no
/// path: most objects of a plan are unchanged, and their display forms would be thrown away.
pub(super) fn differs(from: Option<&Value>, to: Option<&Value>) -> bool {
    match (from, to) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            a.iter().any(|(name, v)| differs(Some(v), b.get(name)))
                || b.keys().any(|name| !a.contains_key(name))
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            a.len() != b.len() || a.iter().zip(b).any(|(x, y)| differs(Some(x), Some(y)))
        }
        (Some(a), Some(b)) => !fields::same_value(a, b),
        (a, b) => a != b,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn differs_agrees_with_the_field_by_field_diff() {
        let cases = [
            (json!({"a": 1, "b": [1, 2]}), json!({"b": [1, 2], "a": 1.0})),
            (json!({"a": 1}), json!({"a": 1, "b": null})),
            (json!({"a": 1, "b": null}), json!({"a": 1})),
            (json!({"a": [1, 2]}), json!({"a": [1]})),
            (json!({"a": [1]}), json!({"a": [1, 2]})),
            (json!({"a": {"x": "y"}}), json!({"a": ["x"]})),
            (json!({"a": {}}), json!({"a": {}})),
            (json!({"a": [{"k": 1}]}), json!({"a": [{"k": 2}]})),
            (json!("s"), json!("s")),
            (json!(null), json!({})),
        ];
        for (from, to) in cases {
            let mut changes = Vec::new();
            diff_values(Some(&from), Some(&to), &mut String::new(), &mut changes);
            assert_eq!(
                differs(Some(&from), Some(&to)),
                !changes.is_empty(),
                "{from} -> {to}"
            );
        }
    }
}
