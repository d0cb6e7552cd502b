//! Normalisation: what is left of a server's answer (an object or a refusal) to compare and to
//! record in a golden.

use serde_json::{Map, Value, json};
use veer::fields;

/// What is left of a server's answer to compare: no identity or timing the server makes up,
/// no status it fills, no entries of its own controllers (kube-controller-manager writes a
/// Deployment's status and revision annotation at its own pace, which would make goldens racy).
pub(crate) fn normalise(object: &Value) -> Value {
    let mut o = object.clone();
    let kind = o["kind"].as_str().unwrap_or("").to_string();
    if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in "uid resourceVersion creationTimestamp generation selfLink".split(' ') {
            meta.remove(f);
        }
        if let Some(Value::Object(a)) = meta.get_mut("annotations") {
            a.remove("deployment.kubernetes.io/revision");
            if a.is_empty() {
                meta.remove("annotations");
            }
        }
        if let Some(Value::Array(entries)) = meta.get_mut("managedFields") {
            let mut kept: Vec<Value> = entries
                .iter()
                .filter(|e| e["manager"] != "kube-controller-manager")
                .map(|e| {
                    let keep = "manager operation apiVersion fieldsV1 subresource".split(' ');
                    let m: Map<String, Value> = keep
                        .filter_map(|k| e.get(k).map(|v| (k.to_string(), v.clone())))
                        .collect();
                    Value::Object(m)
                })
                .collect();
            kept.sort_by_key(|e| (e["manager"].to_string(), e["operation"].to_string()));
            *entries = kept;
        }
    }
    if matches!(kind.as_str(), "Deployment" | "Service")
        && let Some(m) = o.as_object_mut()
    {
        m.remove("status");
    }
    if kind == "Service"
        && let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut)
    {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
    }
    fields::canonical(&o)
}

/// A refused write as the API server reports it (409 for a conflict): the parts a client
/// reads.
pub(crate) fn error_status(status: &Value) -> Value {
    fields::canonical(&json!({
        "code": status["code"],
        "reason": status["reason"],
        "message": status["message"],
        "details": status["details"],
    }))
}
