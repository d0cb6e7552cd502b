//! The projection changes nothing veer concludes: plans, prunes and the rollout's editor are
//! the same from the projected object as from the whole one.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::diff::{self, DesiredObject, PlanContext};
use crate::fields::FieldSet;
use crate::manifest::ObjectKey;

fn resource(api_version: &str, kind: &str) -> ApiResource {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: api_version.into(),
        kind: kind.into(),
        plural: format!("{}s", kind.to_lowercase()),
    }
}

/// `object` as the cache hands it out.
fn cached(object: &Value) -> Value {
    let r = resource(
        object["apiVersion"].as_str().unwrap(),
        object["kind"].as_str().unwrap(),
    );
    let stored: LiveObject = serde_json::from_str(&object.to_string()).unwrap();
    read(&stored.text(), &r).unwrap()
}

fn key(object: &Value) -> ObjectKey {
    let api_version = object["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    ObjectKey {
        group: group.into(),
        version: version.into(),
        kind: object["kind"].as_str().unwrap().into(),
        namespace: object["metadata"]["namespace"].as_str().map(str::to_string),
        name: object["metadata"]["name"].as_str().unwrap().into(),
    }
}

fn entry(manager: &str, operation: &str, fields: Value) -> Value {
    json!({"manager": manager, "operation": operation, "apiVersion": "apps/v1",
           "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": fields})
}

/// A Deployment as a real server serves it: veer's apply, a hand edit of the replicas and an
/// env var, kubectl's client-side apply before veer took over, the controller's status.
fn deployment() -> Value {
    let mine = json!({
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
            "k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {},
                "f:env": {"k:{\"name\":\"A\"}": {".": {}, "f:name": {}, "f:value": {}}}}}}}}
    });
    let edit = json!({
        "f:spec": {"f:replicas": {}, "f:paused": {}, "f:template": {"f:spec": {"f:containers": {
            "k:{\"name\":\"app\"}": {"f:env": {"k:{\"name\":\"B\"}": {".": {}, "f:name": {}, "f:value": {}}}},
            "k:{\"name\":\"sidecar\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}
    });
    let client_side = json!({
        "f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}},
                       "f:labels": {".": {}, "f:app": {}}},
        "f:spec": {"f:replicas": {}, "f:strategy": {"f:type": {}}}
    });
    let status = json!({"f:status": {"f:replicas": {}, "f:conditions": {".": {},
        "k:{\"type\":\"Available\"}": {".": {}, "f:status": {}, "f:type": {}}}}});
    let mut subresource = entry("kube-controller-manager", "Update", status);
    subresource["subresource"] = json!("status");
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {
            "name": "web", "namespace": "shop", "uid": "u-1", "resourceVersion": "42",
            "generation": 3, "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"app": "web"},
            "annotations": {LAST_APPLIED: "{\"kind\":\"Deployment\"}", "deployment.kubernetes.io/revision": "2"},
            "managedFields": [
                entry("veer", "Apply", mine),
                entry("kubectl-edit", "Update", edit),
                entry("kubectl-client-side-apply", "Update", client_side),
                subresource,
            ]
        },
        "spec": {"replicas": 3, "paused": false, "strategy": {"type": "RollingUpdate"},
                 "template": {"spec": {"containers": [
                    {"name": "app", "image": "web:2", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                    {"name": "sidecar", "image": "proxy:1"}]}}},
        "status": {"replicas": 3, "conditions": [{"type": "Available", "status": "True"}]}
    })
}

fn desired_deployments() -> Vec<Value> {
    let container = |image: &str, env: Value| json!({"name": "app", "image": image, "env": env});
    let base = |spec: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
               "spec": spec})
    };
    vec![
        // Unchanged.
        base(json!({"replicas": 3, "template": {"spec": {"containers": [
            container("web:2", json!([{"name": "A", "value": "1"}]))]}}})),
        // Git dropped the replicas (kept: others own them) and env A (removed).
        base(json!({"template": {"spec": {"containers": [container("web:2", json!([]))]}}})),
        // Git changed the image and sets the strategy (someone else's).
        base(json!({"replicas": 3, "strategy": {"type": "Recreate"},
            "template": {"spec": {"containers": [container("web:3", json!([{"name": "A", "value": "1"}]))]}}})),
        // Git dropped the label veer owned.
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "shop"},
               "spec": {"replicas": 3}}),
    ]
}

fn plans(desired: &Value, live: &Value) -> diff::Plan {
    let mut ctx = PlanContext::new("veer");
    ctx.inventory.insert(key(live));
    let desired = [DesiredObject::new(key(desired), desired.clone())];
    diff::plan(&desired, &BTreeMap::from([(key(live), live.clone())]), &ctx)
}

#[test]
fn plans_from_the_projection_are_plans_from_the_whole_object() {
    let live = deployment();
    let projected = cached(&live);
    for desired in desired_deployments() {
        assert_eq!(
            plans(&desired, &projected),
            plans(&desired, &live),
            "{desired:#}"
        );
    }
}

#[test]
fn prunes_from_the_projection_show_what_they_showed_but_kubectls_copy() {
    let mut live = deployment();
    let mut ctx = PlanContext::new("veer");
    ctx.inventory.insert(key(&live));
    let prune = |live: &Value| diff::plan(&[], &BTreeMap::from([(key(live), live.clone())]), &ctx);
    let projected = prune(&cached(&live));
    live["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .shift_remove(LAST_APPLIED);
    assert_eq!(projected, prune(&live));
    assert_eq!(projected.objects[0].action, diff::ObjectAction::Prune);
}

#[test]
fn the_projection_keeps_what_veer_reads_and_drops_the_rest() {
    let projected = cached(&deployment());
    let meta = &projected["metadata"];
    assert_eq!(projected["apiVersion"], "apps/v1");
    assert_eq!(projected["kind"], "Deployment");
    assert_eq!(meta["uid"], "u-1");
    assert_eq!(meta["resourceVersion"], "42");
    assert_eq!(projected["spec"], deployment()["spec"]);
    assert_eq!(
        projected["status"],
        json!({"conditions": [{"type": "Available", "status": "True"}]}),
        "of the controller's status, only what the health gate reads"
    );
    assert!(meta.get("generation").is_none());
    assert!(meta.get("creationTimestamp").is_none());
    assert!(meta["annotations"].get(LAST_APPLIED).is_none());
    assert_eq!(
        meta["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    let entries = meta["managedFields"].as_array().unwrap();
    assert_eq!(entries.len(), 4, "every manager stays");
    assert_eq!(entries[0], deployment()["metadata"]["managedFields"][0]);
    // The controller's status is nothing veer applies; kubectl's annotation neither.
    assert_eq!(entries[3]["fieldsV1"], json!({}));
    assert_eq!(entries[3]["subresource"], "status");
    assert_eq!(
        entries[2]["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:replicas": {}}})
    );
    // The sidecar and paused are the editor's alone; env B sits under veer's container.
    assert_eq!(
        entries[1]["fieldsV1"],
        json!({"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
            "k:{\"name\":\"app\"}": {"f:env": {"k:{\"name\":\"B\"}": {".": {}, "f:name": {}, "f:value": {}}}}}}}}})
    );
}

/// The controller's status updates that leave a Deployment's availability as it was leave
/// the kept text as it was too (no watch event tells a plan the object changed).
#[test]
fn of_a_status_nobody_applies_only_availability_is_kept() {
    let mut updated = deployment();
    updated["status"] = json!({"replicas": 4, "observedGeneration": 9, "conditions": [
        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
        {"type": "Available", "status": "True", "lastUpdateTime": "2026-12-05T10:00:00Z",
         "reason": "MinimumReplicasAvailable", "message": "has minimum availability"}]});
    assert_eq!(
        LiveObject::new(updated.clone()).text(),
        LiveObject::new(deployment()).text()
    );
    updated["status"]["conditions"][1]["status"] = json!("False");
    assert_eq!(
        cached(&updated)["status"],
        json!({"conditions": [{"type": "Available", "status": "False"}]})
    );
    updated["status"] = json!({"replicas": 1});
    assert!(
        cached(&updated).get("status").is_none(),
        "no availability said"
    );
}

#[test]
fn status_and_kubectls_copy_stay_when_an_applier_owns_them() {
    let mut live = deployment();
    live["metadata"]["managedFields"][0]["fieldsV1"]["f:status"] = json!({"f:phase": {}});
    live["metadata"]["managedFields"][0]["fieldsV1"]["f:metadata"]["f:annotations"] =
        json!({"f:kubectl.kubernetes.io/last-applied-configuration": {}});
    let projected = cached(&live);
    assert_eq!(projected["status"], live["status"]);
    assert_eq!(
        projected["metadata"]["annotations"][LAST_APPLIED],
        live["metadata"]["annotations"][LAST_APPLIED]
    );
}

#[test]
fn the_rollout_still_names_the_last_editor_of_the_routes() {
    let vs = |veer_fields: Value| {
        json!({
            "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "r", "namespace": "shop", "managedFields": [
                entry("veer", "Apply", veer_fields),
                entry("kubectl-edit", "Update", json!({"f:spec": {"f:http": {}}})),
                entry("kubectl-patch", "Update", json!({"f:metadata": {"f:labels": {"f:x": {}}}})),
            ]},
            "spec": {"http": [{"route": [{"destination": {"host": "a"}, "weight": 100}]}]}
        })
    };
    for fields in [
        json!({"f:spec": {"f:http": {}}}),
        json!({"f:spec": {"f:hosts": {}}}),
        json!({}),
    ] {
        let live = vs(fields);
        let editor = crate::rollout::live::route_editor(&live, "veer");
        assert_eq!(editor.as_deref(), Some("kubectl-edit"));
        assert_eq!(
            crate::rollout::live::route_editor(&cached(&live), "veer"),
            editor
        );
    }
}

#[test]
fn the_store_keys_on_name_namespace_and_version() {
    let stored: LiveObject = serde_json::from_str(&deployment().to_string()).unwrap();
    assert_eq!(stored.metadata.name.as_deref(), Some("web"));
    assert_eq!(stored.metadata.namespace.as_deref(), Some("shop"));
    assert_eq!(stored.metadata.resource_version.as_deref(), Some("42"));
    let text: Value = serde_json::from_str(&stored.body).unwrap();
    assert!(text.get("apiVersion").is_none(), "said by the watch");
}

#[test]
fn malformed_managed_fields_are_kept_as_they_are() {
    let mut live = deployment();
    live["metadata"]["managedFields"][1]["fieldsV1"] = json!({"bad": {}});
    let projected = cached(&live);
    assert_eq!(
        projected["metadata"]["managedFields"][1],
        live["metadata"]["managedFields"][1]
    );
    for desired in desired_deployments() {
        assert_eq!(plans(&desired, &projected), plans(&desired, &live));
    }
}

// ---------------------------------------------------------------------------------------
// `restrict` keeps everything the diff reads of another manager's fields.

/// A `fieldsV1` tree over a few names, three levels deep at most.
fn fields_v1() -> impl Strategy<Value = Value> {
    let names = prop::sample::select(vec!["f:a", "f:b", "f:c", "k:{\"n\":1}"]);
    let leaf = Just(json!({}));
    leaf.prop_recursive(3, 24, 4, move |inner| {
        (
            prop::collection::btree_map(names.clone(), inner, 1..4),
            any::<bool>(),
        )
            .prop_map(|(children, owned)| {
                let mut map: Map<String, Value> = children
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect();
                if owned {
                    map.insert(".".into(), json!({}));
                }
                Value::Object(map)
            })
    })
    .prop_map(|v| match v {
        Value::Object(_) => v,
        other => json!({"f:a": other}),
    })
}

fn set(v: &Value) -> FieldSet {
    FieldSet::from_fields_v1(v).unwrap()
}

/// What the diff would remove: the paths veer owns that git dropped and nobody else covers.
fn removed(mine: &FieldSet, desired: &FieldSet, others: &FieldSet) -> Vec<String> {
    let kept = desired.union(others);
    mine.difference(&kept)
        .paths()
        .into_iter()
        .filter(|p| !kept.covers(&p.0))
        .map(|p| format!("{p:?}"))
        .collect()
}

proptest! {
    #[test]
    fn restricting_others_never_changes_what_is_removed(
        mine in fields_v1(),
        also_applied in fields_v1(),
        other in fields_v1(),
        desired in fields_v1(),
        two_appliers in any::<bool>(),
    ) {
        let Value::Object(mine_map) = &mine else { unreachable!() };
        let mut applied = mine_map.clone();
        if two_appliers {
            let Value::Object(more) = &also_applied else { unreachable!() };
            merge(&mut applied, more);
        }
        let Value::Object(other_map) = &other else { unreachable!() };
        let restricted = Value::Object(restrict(other_map, &applied));
        prop_assert_eq!(
            removed(&set(&mine), &set(&desired), &set(&restricted)),
            removed(&set(&mine), &set(&desired), &set(&other)),
            "restricted to {}", restricted
        );
    }
}

#[test]
fn compact_reading_reads_what_serde_json_reads() {
    let text = r#"{"a":[1,-2,3.5,1e300,18446744073709551615,true,null,"s\u00e9",[],{}],"b":{"c":{"d":"e"},"a":0},"a2":{}}"#;
    assert_eq!(
        read_compact(text).unwrap(),
        serde_json::from_str::<Value>(text).unwrap()
    );
    assert!(read_compact("{} trailing").is_err());
}
