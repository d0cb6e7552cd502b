//! The fields a real API server fills in that clients did not write (a few defaults of
//! Namespaces, Secrets, Services and Deployments), and the status of a Deployment, which no
//! kubelet makes available here: available at once, unless held by [`HOLD_ANNOTATION`].

use serde_json::{Value, json};

use super::HOLD_ANNOTATION;
use crate::catalog::ResourceType;

/// A few of the defaults a real API server fills in, so that clients (and veer's diff) meet
/// server-populated fields they did not write.
pub(super) fn apply_defaults(rt: &ResourceType, object: &mut Value, seq: u64) {
    fn default(object: &mut Value, pointer: &str, value: Value) {
        let (parent, field) = match pointer.rsplit_once('/') {
            Some(p) => p,
            None => return,
        };
        if let Some(Value::Object(m)) = object.pointer_mut(parent) {
            m.entry(field.to_string()).or_insert(value);
        }
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Namespace") => {
            if object.get("spec").is_none() {
                object["spec"] = json!({});
            }
            default(object, "/spec/finalizers", json!(["kubernetes"]));
            object["status"] = json!({"phase": "Active"});
        }
        ("", "Secret") => default(object, "/type", json!("Opaque")),
        ("", "Service") => {
            if object.get("spec").is_none() {
                object["spec"] = json!({});
            }
            default(object, "/spec/type", json!("ClusterIP"));
            default(object, "/spec/sessionAffinity", json!("None"));
            let ip = format!("10.96.{}.{}", (seq / 250) % 250, seq % 250 + 1);
            default(object, "/spec/clusterIP", json!(ip));
            let ip = object
                .pointer("/spec/clusterIP")
                .cloned()
                .unwrap_or(json!(ip));
            default(object, "/spec/clusterIPs", json!([ip]));
            if let Some(Value::Array(ports)) = object.pointer_mut("/spec/ports") {
                for p in ports.iter_mut().filter(|p| p.is_object()) {
                    let port = p.get("port").cloned().unwrap_or(Value::Null);
                    default(p, "/protocol", json!("TCP"));
                    default(p, "/targetPort", port);
                }
            }
            if object.get("status").is_none() {
                object["status"] = json!({"loadBalancer": {}});
            }
        }
        ("apps", "Deployment") => {
            if object.get("spec").is_none() {
                object["spec"] = json!({});
            }
            default(object, "/spec/replicas", json!(1));
            default(object, "/spec/revisionHistoryLimit", json!(10));
            default(object, "/spec/progressDeadlineSeconds", json!(600));
            default(
                object,
                "/spec/strategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
            );
        }
        _ => {}
    }
}

/// No kubelet: a Deployment is available as soon as it is written, unless held.
pub(super) fn fake_deployment_status(object: &mut Value) {
    let replicas = object
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let generation = object
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let held = object
        .pointer(&format!(
            "/metadata/annotations/{}",
            HOLD_ANNOTATION.replace('/', "~1")
        ))
        .and_then(Value::as_str)
        == Some("unavailable");
    let available = if held { 0 } else { replicas };
    let (status, reason, message) = if held {
        (
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    } else {
        (
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    };
    let old_condition = object.pointer("/status/conditions/0").cloned();
    let since = match &old_condition {
        Some(c) if c.get("status").and_then(Value::as_str) == Some(status) => {
            c.get("lastTransitionTime").cloned()
        }
        _ => None,
    }
    .or_else(|| object.pointer("/metadata/creationTimestamp").cloned())
    .unwrap_or(Value::Null);
    let mut s = json!({
        "observedGeneration": generation,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": available,
        "availableReplicas": available,
        "conditions": [{
            "type": "Available",
            "status": status,
            "reason": reason,
            "message": message,
            "lastUpdateTime": since,
            "lastTransitionTime": since,
        }],
    });
    if held {
        s["unavailableReplicas"] = json!(replicas);
    }
    object["status"] = s;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::{now, rt, w};
    use super::super::{State, Subresource};
    use super::*;

    #[test]
    fn deployments_are_available_unless_held() {
        let mut s = State::new(100, now());
        let r = rt(&s, "apps", "Deployment");
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                       "spec": {"replicas": 3}});
        let d = s.create(&r, Some("default"), d, &w(false)).unwrap();
        assert_eq!(d["status"]["availableReplicas"], 3);
        assert_eq!(d["status"]["conditions"][0]["status"], "True");
        let mut held = d.clone();
        held["metadata"]["annotations"] = json!({HOLD_ANNOTATION: "unavailable"});
        let held = s
            .update(
                &r,
                Some("default"),
                "web",
                held,
                Subresource::Main,
                &w(false),
            )
            .unwrap();
        assert_eq!(held["status"]["availableReplicas"], 0);
        assert_eq!(held["status"]["conditions"][0]["status"], "False");
    }
}
