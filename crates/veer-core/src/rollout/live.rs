//! The rolled-out route as the cluster serves it: its split, and the field manager other than
//! veer that last wrote it (read from `metadata.managedFields`), for noticing and naming a
//! hand edit mid-step.

use serde_json::Value;

use super::detect::read_split;
use super::{LiveRoute, RolloutError};

/// The live route at `live_index` of the VirtualService `object`; `own_manager` is veer's
/// field manager, never named as the editor.
pub fn live_route(
    object: &Value,
    live_index: usize,
    own_manager: &str,
) -> Result<LiveRoute, RolloutError> {
    Ok(LiveRoute {
        split: read_split(object, live_index)?,
        editor: route_editor(object, own_manager),
    })
}

/// The manager other than `own_manager` whose managedFields entry owns fields of
/// `spec.http`, the latest by its `time` (RFC 3339 in UTC, so the strings order as times).
/// kubectl names itself `kubectl-edit`, `kubectl-patch`, `kubectl-client-side-apply`, ….
pub fn route_editor(object: &Value, own_manager: &str) -> Option<String> {
    let entries = object.get("metadata")?.get("managedFields")?.as_array()?;
    entries
        .iter()
        .filter(|e| e.get("manager").and_then(Value::as_str) != Some(own_manager))
        .filter(|e| {
            e.get("fieldsV1")
                .and_then(|f| f.get("f:spec"))
                .and_then(|f| f.get("f:http"))
                .is_some()
        })
        .max_by_key(|e| e.get("time").and_then(Value::as_str).unwrap_or(""))
        .and_then(|e| e.get("manager").and_then(Value::as_str))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entry(manager: &str, time: &str, fields: Value) -> Value {
        json!({"manager": manager, "operation": "Update", "time": time, "fieldsV1": fields})
    }

    #[test]
    fn the_editor_is_the_latest_other_manager_of_the_routes() {
        let http = json!({"f:spec": {"f:http": {}}});
        let labels = json!({"f:metadata": {"f:labels": {"f:team": {}}}});
        let cases: &[(&str, Vec<Value>, Option<&str>)] = &[
            (
                "nobody else",
                vec![entry("veer", "2026-01-01T00:00:00Z", http.clone())],
                None,
            ),
            (
                "a hand edit of the routes",
                vec![
                    entry("veer", "2026-01-01T00:00:09Z", http.clone()),
                    entry("kubectl-edit", "2026-01-01T00:00:05Z", http.clone()),
                ],
                Some("kubectl-edit"),
            ),
            (
                "the latest of two editors",
                vec![
                    entry("kubectl-patch", "2026-01-01T00:00:07Z", http.clone()),
                    entry("kubectl-edit", "2026-01-01T00:00:05Z", http.clone()),
                ],
                Some("kubectl-patch"),
            ),
            (
                "a manager of other fields only",
                vec![entry("kubectl-label", "2026-01-01T00:00:07Z", labels)],
                None,
            ),
        ];
        for (name, entries, want) in cases {
            let object = json!({"metadata": {"managedFields": entries}});
            assert_eq!(route_editor(&object, "veer").as_deref(), *want, "{name}");
        }
        assert_eq!(route_editor(&json!({}), "veer"), None);
    }

    #[test]
    fn the_live_route_reads_the_split_and_the_editor() {
        let object = json!({
            "metadata": {"managedFields": [entry("kubectl-edit", "2026-01-01T00:00:05Z", json!({"f:spec": {"f:http": {}}}))]},
            "spec": {"http": [{"route": [
                {"destination": {"host": "reviews", "subset": "v1"}, "weight": 50},
                {"destination": {"host": "reviews", "subset": "v2"}, "weight": 50},
            ]}]},
        });
        let live = live_route(&object, 0, "veer").unwrap();
        assert_eq!(live.split.to_string(), "reviews/v1:50, reviews/v2:50");
        assert_eq!(live.editor.as_deref(), Some("kubectl-edit"));
    }
}
