//! The patch formats of the PATCH verb, except server-side apply (which is `veer_fields::fields`):
//! JSON merge patch (RFC 7386) and JSON patch (RFC 6902) through the `json-patch` crate, and an
//! approximation of Kubernetes' strategic merge patch.
//!
//! The approximation: a strategic merge patch is applied as a merge patch, except that the
//! lists Kubernetes merges by key (containers by `name`, ports by `containerPort`/`port`, env by
//! `name`, volumes, volumeMounts by `mountPath`, conditions by `type`, …) are merged item by item
//! by that key, new items appended. The directives kubectl sends are honoured: `$patch:
//! delete|replace` (on list items and maps), `$deleteFromPrimitiveList/<field>`, `$retainKeys`;
//! `$setElementOrder/<field>` is accepted and ignored (live order is kept, new items go last).
//! The real server reads the merge keys from each Go type; this table covers the built-in kinds
//! the dev cluster serves. Custom resources never take strategic merge patches (415, as on a
//! real server).

use serde_json::{Map, Value};

/// Lists merged by key, by field name: the candidate merge keys, first one present wins.
const KEYED_LISTS: &[(&str, &[&str])] = &[
    ("containers", &["name"]),
    ("initContainers", &["name"]),
    ("ephemeralContainers", &["name"]),
    ("env", &["name"]),
    ("ports", &["containerPort", "port"]),
    ("volumes", &["name"]),
    ("volumeMounts", &["mountPath"]),
    ("volumeDevices", &["devicePath"]),
    ("imagePullSecrets", &["name"]),
    ("conditions", &["type"]),
    ("hostAliases", &["ip"]),
    ("topologySpreadConstraints", &["topologyKey"]),
];

/// Why a PATCH body could not be applied (the message of the 400 or 422).
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The body is not a list of RFC 6902 operations.
    #[error("invalid JSON patch: {0}")]
    NotAJsonPatch(#[source] serde_json::Error),
    /// An operation failed (a `test` that does not hold, a path that is not there).
    #[error(transparent)]
    JsonPatchFailed(#[from] json_patch::PatchError),
    #[error("a strategic merge patch must be a JSON object")]
    StrategicNotAnObject,
    /// A `$patch` directive other than `replace`, `delete` and `merge`.
    #[error("unknown $patch directive {directive:?}")]
    UnknownDirective { directive: String },
}

/// Apply an RFC 7386 merge patch.
pub fn merge(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// Apply an RFC 6902 JSON patch document; the error says which operation failed.
pub fn json(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let ops: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(PatchError::NotAJsonPatch)?;
    Ok(json_patch::patch(target, &ops)?)
}

/// Apply a strategic merge patch (the approximation described above).
pub fn strategic(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => strategic_map(t, p),
        _ => Err(PatchError::StrategicNotAnObject),
    }
}

fn strategic_map(
    target: &mut Map<String, Value>,
    patch: &Map<String, Value>,
) -> Result<(), PatchError> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut replaced = patch.clone();
            replaced.remove("$patch");
            *target = replaced;
            return Ok(());
        }
        Some("delete") => {
            target.clear();
            return Ok(());
        }
        Some("merge") | None => {}
        Some(other) => {
            return Err(PatchError::UnknownDirective {
                directive: other.to_string(),
            });
        }
    }
    for (key, value) in patch {
        if key == "$patch" || key == "$retainKeys" || key.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(live)), Some(gone)) =
                (target.get_mut(field), value.as_array())
            {
                live.retain(|v| !gone.contains(v));
            }
            continue;
        }
        if value.is_null() {
            target.remove(key);
            continue;
        }
        match (target.get_mut(key), value) {
            (Some(Value::Object(live)), Value::Object(p)) => strategic_map(live, p)?,
            (Some(Value::Array(live)), Value::Array(p)) => match merge_key(key, p) {
                Some(merge_key) => strategic_list(live, p, merge_key)?,
                None => *live = p.clone(),
            },
            (_, v) => {
                let mut fresh = Value::Object(Map::new());
                match v {
                    // A new map may itself carry directives: apply it onto an empty one.
                    Value::Object(p) => {
                        if let Some(m) = fresh.as_object_mut() {
                            strategic_map(m, p)?;
                        }
                    }
                    other => fresh = strip_directives(other),
                }
                target.insert(key.clone(), fresh);
            }
        }
    }
    if let Some(keep) = patch.get("$retainKeys").and_then(Value::as_array) {
        target.retain(|k, _| keep.iter().any(|r| r.as_str() == Some(k)));
    }
    Ok(())
}

fn merge_key(field: &str, items: &[Value]) -> Option<&'static str> {
    let (_, keys) = KEYED_LISTS.iter().find(|(f, _)| *f == field)?;
    keys.iter()
        .copied()
        .find(|k| items.iter().any(|i| i.get(*k).is_some()))
        .or(keys.first().copied())
}

fn strategic_list(live: &mut Vec<Value>, patch: &[Value], key: &str) -> Result<(), PatchError> {
    if patch
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *live = patch
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .map(strip_directives)
            .collect();
        return Ok(());
    }
    for item in patch {
        let id = item.get(key);
        let pos = id.and_then(|id| live.iter().position(|l| l.get(key) == Some(id)));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                live.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => match (live[i].as_object_mut(), item.as_object()) {
                (Some(l), Some(p)) => strategic_map(l, p)?,
                _ => live[i] = strip_directives(item),
            },
            (None, false) => live.push(strip_directives(item)),
        }
    }
    Ok(())
}

/// A copy of a value without `$…` directive keys.
fn strip_directives(value: &Value) -> Value {
    match value {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_is_rfc_7386() {
        let mut v = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge(&mut v, &json!({"a": {"b": null, "d": 3}, "l": [3]}));
        assert_eq!(v, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }

    #[test]
    fn json_patch_reports_the_failing_operation() {
        let mut v = json!({"a": 1});
        json(
            &mut v,
            &json!([{"op": "replace", "path": "/a", "value": 2}]),
        )
        .unwrap();
        assert_eq!(v, json!({"a": 2}));
        let err = json(&mut v, &json!([{"op": "test", "path": "/a", "value": 3}])).unwrap_err();
        assert!(matches!(err, PatchError::JsonPatchFailed(_)), "{err}");
        assert!(!err.to_string().is_empty());
        let err = json(&mut v, &json!({"op": "add"})).unwrap_err().to_string();
        assert!(err.starts_with("invalid JSON patch: "), "{err}");
    }

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let mut live = json!({"spec": {"containers": [
            {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]},
            {"name": "sidecar", "image": "proxy:1"}
        ]}});
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
            "containers": [
                {"name": "app", "image": "app:2", "env": [{"name": "B", "value": "2"}]},
                {"name": "sidecar", "$patch": "delete"},
                {"name": "new", "image": "new:1"}
            ]
        }});
        strategic(&mut live, &patch).unwrap();
        assert_eq!(
            live,
            json!({"spec": {"containers": [
                {"name": "app", "image": "app:2",
                 "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                {"name": "new", "image": "new:1"}
            ]}})
        );
    }

    #[test]
    fn strategic_merge_replaces_unkeyed_lists_and_honours_directives() {
        let mut live = json!({"args": ["a", "b"], "finalizers": ["x", "y"],
                              "m": {"k": 1, "j": 2}, "s": {"type": "A", "a": 1}});
        let patch = json!({"args": ["c"], "$deleteFromPrimitiveList/finalizers": ["x"],
                           "m": {"$patch": "replace", "z": 3},
                           "s": {"$retainKeys": ["type", "b"], "type": "B", "b": 2}});
        strategic(&mut live, &patch).unwrap();
        assert_eq!(
            live,
            json!({"args": ["c"], "finalizers": ["y"], "m": {"z": 3}, "s": {"type": "B", "b": 2}})
        );
        let err = strategic(&mut live, &json!([1])).unwrap_err().to_string();
        assert_eq!(err, "a strategic merge patch must be a JSON object");
        let err = strategic(&mut live, &json!({"m": {"$patch": "drop"}}));
        assert_eq!(
            err.unwrap_err().to_string(),
            r#"unknown $patch directive "drop""#
        );
    }
}
