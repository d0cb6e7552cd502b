//! The plan against what a real API server serves: numbers canonicalised (`25.0` served as
//! `25`) and lists merged by the server's schemas (ServiceEntry `spec.ports` keyed by
//! `name`, as current Istio CRDs declare), not by veer's built-in table alone.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use veer::diff::{DesiredObject, ObjectAction, PlanContext, desired_hash, plan};
use veer::fields::{self, FieldSet, ListSemantics, apply_with};
use veer::manifest::ObjectKey;
use veer::schema::{crd_list_rules, istio_list_rules};
use veer_testkit::at;

fn key_of(value: &Value) -> ObjectKey {
    let (group, version) = value["apiVersion"]
        .as_str()
        .and_then(|a| a.rsplit_once('/'))
        .expect("a grouped apiVersion");
    ObjectKey {
        group: group.to_string(),
        version: version.to_string(),
        kind: value["kind"].as_str().expect("kind").to_string(),
        namespace: value["metadata"]["namespace"].as_str().map(str::to_string),
        name: value["metadata"]["name"]
            .as_str()
            .expect("name")
            .to_string(),
    }
}

/// The plan of one object veer applied at its current content, against `live`.
fn plan_one(desired: &Value, live: &Value, semantics: ListSemantics) -> ObjectAction {
    let mut ctx = PlanContext::new("veer");
    ctx.semantics = semantics;
    ctx.inventory.insert(key_of(desired));
    ctx.applied_hashes
        .insert(key_of(desired), desired_hash(desired));
    let live: BTreeMap<ObjectKey, Value> = [(key_of(live), live.clone())].into();
    let d = [DesiredObject::new(key_of(desired), desired.clone())];
    let p = plan(&d, &live, &ctx);
    p.objects[0].action.clone()
}

/// git's mirroring example: `25.0` percent of v1's requests copied to v2.
fn mirroring(percent: Value) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "httpbin", "namespace": "shop"},
        "spec": {"hosts": ["httpbin"], "http": [{
            "route": [{"destination": {"host": "httpbin", "subset": "v1"}, "weight": 100.0}],
            "mirror": {"host": "httpbin", "subset": "v2"},
            "mirrorPercentage": {"value": percent}
        }]}
    })
}

#[test]
fn git_s_float_equals_the_server_s_integer() {
    let desired = mirroring(json!(25.0));
    let applied = apply_with(
        None,
        &desired,
        "veer",
        false,
        at(1, 0),
        &ListSemantics::kubernetes(),
    )
    .expect("applies");
    // What a real server serves back: every integral float as an integer.
    let mut served = applied.clone();
    served["spec"]["http"][0]["mirrorPercentage"]["value"] = json!(25);
    served["spec"]["http"][0]["route"][0]["weight"] = json!(100);
    assert_eq!(
        plan_one(&desired, &served, ListSemantics::kubernetes()),
        ObjectAction::Unchanged
    );
    // A value that really differs is still a change.
    served["spec"]["http"][0]["mirrorPercentage"]["value"] = json!(26);
    match plan_one(&desired, &served, ListSemantics::kubernetes()) {
        ObjectAction::Update { changes, .. } => {
            assert_eq!(changes.len(), 1, "{changes:?}");
            assert_eq!(changes[0].path, "spec.http[0].mirrorPercentage.value");
            assert_eq!(changes[0].from, Some(json!(26)));
            assert_eq!(changes[0].to, Some(json!(25.0)));
        }
        other => panic!("expected an update, got {other:?}"),
    }
    // And 2.5 is not 2.
    let desired = mirroring(json!(2.5));
    let mut served = served;
    served["spec"]["http"][0]["mirrorPercentage"]["value"] = json!(2);
    assert!(matches!(
        plan_one(&desired, &served, ListSemantics::kubernetes()),
        ObjectAction::Update { .. }
    ));
}

#[test]
fn re_applying_git_s_float_over_the_server_s_integer_changes_nothing() {
    let desired = mirroring(json!(25.0));
    let semantics = ListSemantics::kubernetes();
    let first = apply_with(None, &desired, "veer", false, at(1, 0), &semantics).expect("applies");
    let mut served = first.clone();
    served["spec"]["http"][0]["mirrorPercentage"]["value"] = json!(25);
    served["spec"]["http"][0]["route"][0]["weight"] = json!(100);
    let again = apply_with(Some(&served), &desired, "veer", false, at(1, 5), &semantics)
        .expect("applies again");
    // The managed fields' time does not move: nothing changed.
    assert_eq!(
        again["metadata"]["managedFields"],
        served["metadata"]["managedFields"]
    );
    assert!(fields::same_value(&again, &served));
}

fn service_entry() -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
        "metadata": {"name": "payments", "namespace": "shop"},
        "spec": {
            "hosts": ["api.payments.example"],
            "location": "MESH_EXTERNAL",
            "resolution": "DNS",
            "ports": [
                {"number": 443, "name": "tls", "protocol": "TLS"},
                {"number": 80, "name": "http", "protocol": "HTTP"}
            ]
        }
    })
}

/// A ServiceEntry CRD as current Istio declares its ports, written for this test.
fn service_entry_crd() -> Value {
    let schema = json!({"openAPIV3Schema": {"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
            "hosts": {"type": "array", "items": {"type": "string"}},
            "ports": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "properties": {
                    "name": {"type": "string"},
                    "number": {"type": "integer"},
                    "protocol": {"type": "string"},
                    "targetPort": {"type": "integer"}
                }}
            }
        }}
    }}});
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "serviceentries.networking.istio.io"},
        "spec": {
            "group": "networking.istio.io",
            "names": {"kind": "ServiceEntry", "plural": "serviceentries"},
            "scope": "Namespaced",
            "versions": [
                {"name": "v1", "served": true, "storage": true, "schema": schema},
                {"name": "v1beta1", "served": true, "storage": false, "schema": schema}
            ]
        }
    })
}

/// The live ServiceEntry a current server holds after veer applied it: ownership recorded
/// per port (`f:ports: {k:{"name":"tls"}: ...}`).
fn served_service_entry(server: &ListSemantics) -> Value {
    let live =
        apply_with(None, &service_entry(), "veer", false, at(1, 0), server).expect("applies");
    let mine = fields::applied_fields(&live, "veer");
    let keyed = mine.to_fields_v1();
    assert!(
        keyed["f:spec"]["f:ports"]
            .get(r#"k:{"name":"tls"}"#)
            .is_some(),
        "ownership is per port: {keyed:#}"
    );
    live
}

#[test]
fn keyed_service_entry_ports_diff_clean_with_the_server_s_rules() {
    let derived =
        ListSemantics::from_server(crd_list_rules(&service_entry_crd()).expect("the CRD's rules"));
    let live = served_service_entry(&derived);
    assert_eq!(
        plan_one(&service_entry(), &live, derived.clone()),
        ObjectAction::Unchanged
    );
    // The embedded server's built-in Istio rules say the same as the CRD.
    assert_eq!(
        plan_one(
            &service_entry(),
            &live,
            ListSemantics::from_server(istio_list_rules())
        ),
        ObjectAction::Unchanged
    );
    // A port git drops is a removal veer owns.
    let mut fewer = service_entry();
    fewer["spec"]["ports"]
        .as_array_mut()
        .expect("ports")
        .remove(1);
    match plan_one(&fewer, &live, derived) {
        ObjectAction::Update { changes, .. } => {
            assert!(!changes.is_empty());
            assert!(changes.iter().all(|c| c.path.starts_with("spec.ports")));
        }
        other => panic!("expected an update, got {other:?}"),
    }
}

#[test]
fn keyed_service_entry_ports_show_as_missing_with_the_built_in_table_alone() {
    let derived =
        ListSemantics::from_server(crd_list_rules(&service_entry_crd()).expect("the CRD's rules"));
    let live = served_service_entry(&derived);
    let old = plan_one(&service_entry(), &live, ListSemantics::kubernetes());
    match old {
        ObjectAction::Update { changes, .. } => {
            // The projection of live loses the ports: they read as missing, forever.
            assert_eq!(changes.len(), 1, "{changes:?}");
            assert_eq!(changes[0].path, "spec.ports");
            assert_eq!(changes[0].from, None);
            assert_eq!(
                changes[0].to,
                Some(service_entry()["spec"]["ports"].clone())
            );
        }
        other => panic!("the atomic-only table should see the ports as changed, got {other:?}"),
    }
    // Field sets of the same object under the two tables differ exactly at the ports.
    let atomic = FieldSet::of(&service_entry(), &ListSemantics::kubernetes());
    let keyed = FieldSet::of(&service_entry(), &derived);
    assert_ne!(atomic, keyed);
}
