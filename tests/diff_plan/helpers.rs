//! What every test of the target shares: object keys and desired objects from JSON, an apply
//! by veer followed by what the server adds, the plan context and live map for a set of
//! objects, the `shop` manifests, and the action a plan has for an object.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use veer::diff::{DesiredObject, ObjectAction, Plan, PlanContext, desired_hash};
use veer::fields::apply;
use veer::manifest::ObjectKey;
use veer_testkit::at;

pub(crate) fn key_of(value: &Value) -> ObjectKey {
    let api_version = value["apiVersion"].as_str().expect("apiVersion");
    let (group, version) = match api_version.rsplit_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), api_version.to_string()),
    };
    ObjectKey {
        group,
        version,
        kind: value["kind"].as_str().expect("kind").to_string(),
        namespace: value["metadata"]["namespace"].as_str().map(str::to_string),
        name: value["metadata"]["name"]
            .as_str()
            .expect("name")
            .to_string(),
    }
}

pub(crate) fn desired(values: &[Value]) -> Vec<DesiredObject> {
    values
        .iter()
        .map(|v| DesiredObject::new(key_of(v), v.clone()))
        .collect()
}

/// What a real API server adds on create: identity, timestamps, status, defaults.
pub(crate) fn server_touches(mut v: Value) -> Value {
    v["metadata"]["uid"] = json!("6b1c1f0e-0000-4000-8000-000000000001");
    v["metadata"]["resourceVersion"] = json!("42");
    v["metadata"]["generation"] = json!(1);
    v["metadata"]["creationTimestamp"] = json!("2026-11-01T10:00:00Z");
    if v["kind"] == "Deployment" {
        v["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!("1");
        v["spec"]["progressDeadlineSeconds"] = json!(600);
        if let Some(containers) = v["spec"]["template"]["spec"]["containers"].as_array_mut() {
            for c in containers {
                c["imagePullPolicy"] = json!("IfNotPresent");
                c["terminationMessagePath"] = json!("/dev/termination-log");
            }
        }
        v["status"] = json!({"replicas": 2, "availableReplicas": 2});
    }
    v
}

/// Apply `value` as veer would, then let the server touch it.
pub(crate) fn applied(value: &Value) -> Value {
    let live = apply(None, value, "veer", false, at(1, 0)).expect("applies");
    server_touches(live)
}

/// Context where every given object was applied by veer at its current content.
pub(crate) fn context_for(values: &[Value]) -> PlanContext {
    let mut ctx = PlanContext::new("veer");
    for v in values {
        ctx.inventory.insert(key_of(v));
        ctx.applied_hashes.insert(key_of(v), desired_hash(v));
    }
    ctx
}

pub(crate) fn live_map(values: &[Value]) -> BTreeMap<ObjectKey, Value> {
    values.iter().map(|v| (key_of(v), v.clone())).collect()
}

pub(crate) fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "reviews-v2", "namespace": "shop", "labels": {"app": "reviews", "tier": "backend"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "reviews"}},
            "template": {
                "metadata": {"labels": {"app": "reviews"}},
                "spec": {"containers": [{"name": "app", "image": "reviews:2", "ports": [{"containerPort": 9080}]}]}
            }
        }
    })
}

pub(crate) fn virtual_service(v1: i64, v2: i64) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "shop"},
        "spec": {"hosts": ["reviews"], "http": [{"route": [
            {"destination": {"host": "reviews", "subset": "v1"}, "weight": v1},
            {"destination": {"host": "reviews", "subset": "v2"}, "weight": v2}
        ]}]}
    })
}

pub(crate) fn destination_rule() -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "reviews", "namespace": "shop"},
        "spec": {"host": "reviews", "subsets": [
            {"name": "v1", "labels": {"version": "v1"}},
            {"name": "v2", "labels": {"version": "v2"}}
        ]}
    })
}

pub(crate) fn config_map(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": "shop"}, "data": {"a": "1"}})
}

pub(crate) fn action_of<'p>(plan: &'p Plan, value: &Value) -> &'p ObjectAction {
    &plan.get(&key_of(value)).expect("object in plan").action
}
