//! Managed fields and the server-side-apply engine (`veer::fields`): fieldsV1 form, list
//! semantics, apply/update ownership, conflicts, and properties of apply.

use proptest::prelude::*;
use serde_json::{Value, json};
use veer::fields::{
    self, ApplyError, FieldSet, ListSemantics, Operation, PathElement, applied_fields, apply,
    managed_fields, update,
};
use veer_testkit::at;

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "reviews", "namespace": "shop", "labels": {"app": "reviews"}},
        "spec": {
            "replicas": 2,
            "template": {"spec": {"containers": [
                {"name": "app", "image": "reviews:1", "ports": [{"containerPort": 8080}],
                 "env": [{"name": "A", "value": "1"}]}
            ]}}
        }
    })
}

#[test]
fn field_set_of_deployment_matches_api_server_fields_v1() {
    let set = FieldSet::of(&deployment(), &ListSemantics::kubernetes());
    let expected = json!({
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {
            "f:replicas": {},
            "f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"app\"}": {
                    ".": {},
                    "f:env": {"k:{\"name\":\"A\"}": {".": {}, "f:name": {}, "f:value": {}}},
                    "f:image": {},
                    "f:name": {},
                    "f:ports": {"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {
                        ".": {}, "f:containerPort": {}
                    }}
                }
            }}}
        }
    });
    let written = set.to_fields_v1();
    assert_eq!(written, expected);
    // Key order as the server writes it: "." first, then sorted.
    assert_eq!(
        serde_json::to_string(&written["f:spec"]["f:template"]["f:spec"]["f:containers"])
            .expect("json"),
        "{\"k:{\\\"name\\\":\\\"app\\\"}\":{\".\":{},\"f:env\":{\"k:{\\\"name\\\":\\\"A\\\"}\":{\".\":{},\"f:name\":{},\"f:value\":{}}},\"f:image\":{},\"f:name\":{},\"f:ports\":{\"k:{\\\"containerPort\\\":8080,\\\"protocol\\\":\\\"TCP\\\"}\":{\".\":{},\"f:containerPort\":{}}}}}"
    );
    assert_eq!(FieldSet::from_fields_v1(&written).expect("parses"), set);
}

#[test]
fn istio_lists_are_atomic_and_finalizers_a_set() {
    let vs = json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "r", "namespace": "shop", "finalizers": ["a", "b"]},
        "spec": {"hosts": ["r"], "http": [{"route": [{"destination": {"host": "r"}, "weight": 100}]}]}
    });
    let set = FieldSet::of(&vs, &ListSemantics::kubernetes());
    assert_eq!(
        set.to_fields_v1(),
        json!({
            "f:metadata": {"f:finalizers": {"v:\"a\"": {}, "v:\"b\"": {}}},
            "f:spec": {"f:hosts": {}, "f:http": {}}
        })
    );
}

#[test]
fn service_ports_are_keyed_by_port_and_protocol_but_not_in_a_crd() {
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80, "protocol": "UDP"}]}});
    let set = FieldSet::of(&svc, &ListSemantics::kubernetes());
    assert!(set.contains(&[
        PathElement::field("spec"),
        PathElement::field("ports"),
        PathElement::Key(vec![
            ("port".into(), json!(80)),
            ("protocol".into(), json!("UDP"))
        ]),
    ]));
    let mut crd = svc.clone();
    crd["apiVersion"] = json!("example.com/v1");
    let set = FieldSet::of(&crd, &ListSemantics::kubernetes());
    assert!(set.contains(&[PathElement::field("spec"), PathElement::field("ports")]));
}

#[test]
fn apply_creates_with_an_apply_entry() {
    let out = apply(None, &deployment(), "veer", false, at(1, 0)).expect("applies");
    let entries = managed_fields(&out);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].manager, "veer");
    assert_eq!(entries[0].operation, Operation::Apply);
    assert_eq!(entries[0].api_version, "apps/v1");
    assert_eq!(entries[0].time.as_deref(), Some("2026-11-01T10:00:00Z"));
    let json = &out["metadata"]["managedFields"][0];
    assert_eq!(json["fieldsType"], "FieldsV1");
    assert_eq!(
        json["fieldsV1"],
        FieldSet::of(&deployment(), &ListSemantics::kubernetes()).to_fields_v1()
    );
    assert_eq!(out["spec"], deployment()["spec"]);
}

#[test]
fn reapplying_the_same_config_changes_nothing_not_even_time() {
    let once = apply(None, &deployment(), "veer", false, at(1, 0)).expect("applies");
    let twice = apply(Some(&once), &deployment(), "veer", false, at(1, 5)).expect("applies");
    assert_eq!(once, twice);
}

#[test]
fn a_changed_value_owned_by_another_manager_conflicts_like_the_server_says() {
    let live = apply(None, &deployment(), "veer", false, at(1, 0)).expect("applies");
    // Someone scales by hand with an update (kubectl scale/edit).
    let mut edited = live.clone();
    edited["spec"]["replicas"] = json!(5);
    let edited = update(Some(&live), &edited, "kubectl-edit", at(1, 1));
    let kubectl = managed_fields(&edited)
        .into_iter()
        .find(|e| e.manager == "kubectl-edit")
        .expect("kubectl-edit owns what it changed");
    assert_eq!(kubectl.operation, Operation::Update);
    assert_eq!(
        kubectl.fields.to_fields_v1(),
        json!({"f:spec": {"f:replicas": {}}})
    );
    // The edit moved ownership: veer no longer owns replicas.
    assert!(
        !applied_fields(&edited, "veer")
            .contains(&[PathElement::field("spec"), PathElement::field("replicas")])
    );

    let mut config = deployment();
    config["spec"]["replicas"] = json!(3);
    let err = apply(Some(&edited), &config, "veer", false, at(1, 2)).expect_err("conflicts");
    assert_eq!(err.metric_label(), "apply_conflict");
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1: .spec.replicas"
    );

    // Same value as the other manager: no conflict, both own it.
    let mut same = deployment();
    same["spec"]["replicas"] = json!(5);
    let shared = apply(Some(&edited), &same, "veer", false, at(1, 2)).expect("no conflict");
    let replicas = [PathElement::field("spec"), PathElement::field("replicas")];
    assert!(applied_fields(&shared, "veer").contains(&replicas));

    // Force moves ownership.
    let forced = apply(Some(&edited), &config, "veer", true, at(1, 3)).expect("forced");
    assert_eq!(forced["spec"]["replicas"], 3);
    assert!(
        managed_fields(&forced)
            .iter()
            .all(|e| e.manager != "kubectl-edit"),
        "kubectl-edit owned only replicas, so its entry is gone: {:?}",
        managed_fields(&forced)
    );
}

#[test]
fn several_conflicts_are_listed_one_per_line() {
    let live = apply(None, &deployment(), "other", false, at(1, 0)).expect("applies");
    let mut config = deployment();
    config["spec"]["replicas"] = json!(9);
    config["spec"]["template"]["spec"]["containers"][0]["image"] = json!("reviews:2");
    let err = apply(Some(&live), &config, "veer", false, at(1, 1)).expect_err("conflicts");
    let ApplyError::Conflicts(c) = &err else {
        panic!("not a conflict: {err}");
    };
    assert_eq!(c.count(), 2);
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"other\" using apps/v1:\n- .spec.replicas\n- .spec.template.spec.containers[name=\"app\"].image"
    );
}

#[test]
fn dropping_a_field_removes_it_unless_another_manager_owns_it() {
    let live = apply(None, &deployment(), "veer", false, at(1, 0)).expect("applies");
    let mut config = deployment();
    config["metadata"]
        .as_object_mut()
        .expect("map")
        .remove("labels");
    config["spec"]["template"]["spec"]["containers"][0]
        .as_object_mut()
        .expect("map")
        .remove("env");
    let out = apply(Some(&live), &config, "veer", false, at(1, 1)).expect("applies");
    assert_eq!(out["metadata"].get("labels"), None, "emptied map goes too");
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0].get("env"),
        None
    );

    // Another applier co-owns the label: it stays.
    let co = apply(
        Some(&live),
        &json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "reviews", "namespace": "shop", "labels": {"app": "reviews"}}}),
        "team",
        false,
        at(1, 1),
    )
    .expect("same value, no conflict");
    let out = apply(Some(&co), &config, "veer", false, at(1, 2)).expect("applies");
    assert_eq!(out["metadata"]["labels"]["app"], "reviews");
}

#[test]
fn removing_a_container_keeps_server_defaults_out_and_fields_others_own_in() {
    let mut two = deployment();
    two["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .expect("list")
        .push(json!({"name": "sidecar", "image": "proxy:1"}));
    let live = apply(None, &two, "veer", false, at(1, 0)).expect("applies");
    // The server defaults a field nobody applied.
    let mut defaulted = live.clone();
    defaulted["spec"]["template"]["spec"]["containers"][1]["imagePullPolicy"] =
        json!("IfNotPresent");
    let out = apply(Some(&defaulted), &deployment(), "veer", false, at(1, 1)).expect("applies");
    let containers = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("list");
    assert_eq!(containers.len(), 1, "{containers:?}");
    assert_eq!(containers[0]["name"], "app");
}

#[test]
fn status_is_neither_applied_nor_owned() {
    let mut config = deployment();
    config["status"] = json!({"replicas": 7});
    let mut live = apply(None, &deployment(), "veer", false, at(1, 0)).expect("applies");
    live["status"] = json!({"availableReplicas": 2});
    let out = apply(Some(&live), &config, "veer", false, at(1, 1)).expect("applies");
    assert_eq!(out["status"], json!({"availableReplicas": 2}));
    assert!(!applied_fields(&out, "veer").covers(&[PathElement::field("status")]));
}

#[test]
fn update_on_create_owns_everything_it_set_with_dot_for_new_maps() {
    let out = update(None, &deployment(), "kubectl-create", at(1, 0));
    let entry = &out["metadata"]["managedFields"][0];
    assert_eq!(entry["operation"], "Update");
    assert_eq!(entry["manager"], "kubectl-create");
    assert_eq!(
        entry["fieldsV1"]["f:metadata"],
        json!({"f:labels": {".": {}, "f:app": {}}})
    );
    // Updating nothing keeps the time.
    let again = update(Some(&out), &out, "kubectl-create", at(1, 9));
    assert_eq!(again, out);
}

#[test]
fn an_update_takes_the_weight_from_the_applier() {
    let vs = json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "r", "namespace": "shop"},
        "spec": {"hosts": ["r"], "http": [{"route": [{"destination": {"host": "r"}, "weight": 100}]}]}});
    let live = apply(None, &vs, "veer", false, at(1, 0)).expect("applies");
    let mut edited = live.clone();
    edited["spec"]["http"][0]["route"][0]["weight"] = json!(90);
    let edited = update(Some(&live), &edited, "kubectl-edit", at(1, 1));
    let http = [PathElement::field("spec"), PathElement::field("http")];
    assert!(
        !applied_fields(&edited, "veer").contains(&http),
        "the atomic list moved to the editor"
    );
    assert!(
        applied_fields(&edited, "veer")
            .contains(&[PathElement::field("spec"), PathElement::field("hosts")])
    );
}

#[test]
fn not_an_object_is_an_error() {
    let err = apply(None, &json!([1]), "veer", false, at(1, 0)).expect_err("rejects");
    assert_eq!(err.metric_label(), "apply_not_object");
}

#[test]
fn project_keeps_only_the_fields_of_the_set_and_identity() {
    let mut live = apply(None, &deployment(), "veer", false, at(1, 0)).expect("applies");
    live["metadata"]["uid"] = json!("123");
    live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = json!("Always");
    live["status"] = json!({"replicas": 2});
    let set = FieldSet::of(&deployment(), &ListSemantics::kubernetes());
    assert_eq!(
        fields::project(&live, &set, &ListSemantics::kubernetes()),
        deployment()
    );
}

// ---------------------------------------------------------------------------------------------
// Properties

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::from),
        (0i64..5).prop_map(Value::from),
        "[a-c]{1,2}".prop_map(Value::from),
    ]
}

/// A Deployment-like object with keyed lists, atomic lists and nested maps.
fn object() -> impl Strategy<Value = Value> {
    let labels = proptest::collection::btree_map("[a-d]", scalar(), 0..3);
    let container = (
        proptest::collection::btree_map("[a-c]", scalar(), 0..3),
        proptest::collection::vec(0i64..3, 0..3),
    );
    let containers = proptest::collection::btree_map("[x-z]", container, 0..3);
    let atomic = proptest::collection::vec(scalar(), 0..3);
    (labels, containers, atomic, proptest::option::of(scalar())).prop_map(
        |(labels, containers, atomic, replicas)| {
            let mut spec = serde_json::Map::new();
            if let Some(r) = replicas {
                spec.insert("replicas".into(), r);
            }
            if !atomic.is_empty() {
                spec.insert("args".into(), Value::Array(atomic));
            }
            let containers: Vec<Value> = containers
                .into_iter()
                .map(|(name, (fields, ports))| {
                    let mut c: serde_json::Map<String, Value> = fields
                        .into_iter()
                        .map(|(k, v)| (format!("f{k}"), v))
                        .collect();
                    c.insert("name".into(), json!(name));
                    let mut seen = std::collections::BTreeSet::new();
                    let ports: Vec<Value> = ports
                        .into_iter()
                        .filter(|p| seen.insert(*p))
                        .map(|p| json!({"containerPort": p}))
                        .collect();
                    if !ports.is_empty() {
                        c.insert("ports".into(), Value::Array(ports));
                    }
                    Value::Object(c)
                })
                .collect();
            if !containers.is_empty() {
                spec.insert(
                    "template".into(),
                    json!({"spec": {"containers": containers}}),
                );
            }
            let mut metadata = json!({"name": "o", "namespace": "ns"});
            if !labels.is_empty() {
                metadata["labels"] = Value::Object(labels.into_iter().collect());
            }
            let mut obj =
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata});
            if !spec.is_empty() {
                obj["spec"] = Value::Object(spec);
            }
            obj
        },
    )
}

proptest! {
    #[test]
    fn apply_is_idempotent(a in object(), b in object()) {
        let first = apply(None, &a, "veer", false, at(1, 0)).expect("create");
        let once = apply(Some(&first), &b, "veer", false, at(1, 1)).expect("own fields never conflict");
        let twice = apply(Some(&once), &b, "veer", false, at(1, 2)).expect("again");
        prop_assert_eq!(&once, &twice);
        // What was applied is what is live, for the applied fields.
        let set = FieldSet::of(&b, &ListSemantics::kubernetes());
        prop_assert_eq!(
            fields::project(&once, &set, &ListSemantics::kubernetes()),
            fields::project(&b, &set, &ListSemantics::kubernetes())
        );
        prop_assert_eq!(applied_fields(&once, "veer"), set);
    }

    #[test]
    fn a_dropped_field_goes_unless_co_owned(a in object(), label in "[a-d]", v in scalar(), co_owned: bool) {
        let mut with = a.clone();
        with["metadata"]["labels"][label.as_str()] = v.clone();
        let mut live = apply(None, &with, "veer", false, at(1, 0)).expect("create");
        if co_owned {
            let other = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "o", "namespace": "ns", "labels": {label.clone(): v.clone()}}});
            live = apply(Some(&live), &other, "team", false, at(1, 1)).expect("same value");
        }
        let mut without = with.clone();
        let labels = without["metadata"]["labels"].as_object_mut().expect("map");
        labels.remove(&label);
        if labels.is_empty() {
            without["metadata"].as_object_mut().expect("map").remove("labels");
        }
        let out = apply(Some(&live), &without, "veer", false, at(1, 2)).expect("applies");
        let kept = out.pointer(&format!("/metadata/labels/{label}"));
        if co_owned {
            prop_assert_eq!(kept, Some(&v));
        } else {
            prop_assert_eq!(kept, None);
        }
    }

    #[test]
    fn field_set_round_trips_through_fields_v1(a in object()) {
        let set = FieldSet::of(&a, &ListSemantics::kubernetes());
        let v1 = set.to_fields_v1();
        prop_assert_eq!(FieldSet::from_fields_v1(&v1).expect("parses"), set.clone());
        // And through text, as it travels in managedFields.
        let text = serde_json::to_string(&v1).expect("json");
        let back: Value = serde_json::from_str(&text).expect("json");
        prop_assert_eq!(FieldSet::from_fields_v1(&back).expect("parses"), set);
    }
}
