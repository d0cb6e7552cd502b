//! The embedded API server answers as a real current one with Istio's CRDs installed:
//! custom-resource numbers stored canonically (`25.0` served as `25`), and server-side apply
//! merging lists as the schemas say (ServiceEntry `spec.ports` keyed by `name`; an applied
//! CRD's `x-kubernetes-list-type` markers). And veer reads the same rules from the server
//! (`Cluster::list_semantics`), so its plan of what it applied is clean.

#[path = "support/devcluster.rs"]
mod support;

#[path = "support/faults.rs"]
mod faults;

use std::collections::BTreeMap;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Value, json};
use veer::cluster::Cluster;
use veer::diff::{DesiredObject, ObjectAction, PlanContext, desired_hash, plan};
use veer::fields::{KeyField, ListSemantics, ListType};
use veer::manifest::ObjectKey;

fn api(client: kube::Client, group: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(group, "v1", kind);
    let ar = ApiResource::from_gvk_with_plural(&gvk, plural);
    Api::namespaced_with(client, "default", &ar)
}

/// Server-side apply `value` as veer does; the object as the server returns it.
async fn apply(api: &Api<DynamicObject>, value: &Value) -> Value {
    let name = value["metadata"]["name"].as_str().expect("a name");
    let out = api
        .patch(
            name,
            &PatchParams::apply("veer").force(),
            &Patch::Apply(value),
        )
        .await
        .expect("the apply succeeds");
    serde_json::to_value(out).expect("JSON")
}

fn mirroring() -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "httpbin", "namespace": "default"},
        "spec": {"hosts": ["httpbin"], "http": [{
            "route": [{"destination": {"host": "httpbin", "subset": "v1"}, "weight": 100}],
            "mirror": {"host": "httpbin", "subset": "v2"},
            "mirrorPercentage": {"value": 25.0},
            "fault": {"abort": {"percentage": {"value": 2.5}, "httpStatus": 500}}
        }]}
    })
}

fn service_entry() -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
        "metadata": {"name": "payments", "namespace": "default"},
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

/// The `fieldsV1` of `manager`'s apply entry.
fn applied_fields(object: &Value, manager: &str) -> Value {
    object["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == "Apply")
        .map(|e| e["fieldsV1"].clone())
        .expect("an Apply entry")
}

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

/// veer's plan of `desired` (applied by veer at this content) against the live cluster, with
/// the list rules the cluster publishes.
async fn plan_against(cluster: &Cluster, desired: &[Value]) -> Vec<ObjectAction> {
    let keys: Vec<ObjectKey> = desired.iter().map(key_of).collect();
    let live = cluster.live(&keys).await.expect("live state");
    let mut ctx = PlanContext::new("veer");
    ctx.semantics = cluster.list_semantics().await;
    for d in desired {
        ctx.inventory.insert(key_of(d));
        ctx.applied_hashes.insert(key_of(d), desired_hash(d));
    }
    let objects: Vec<DesiredObject> = desired
        .iter()
        .map(|v| DesiredObject::new(key_of(v), v.clone()))
        .collect();
    let live: BTreeMap<ObjectKey, Value> = live.objects;
    plan(&objects, &live, &ctx)
        .objects
        .into_iter()
        .map(|o| o.action)
        .collect()
}

#[tokio::test]
async fn custom_resource_numbers_are_stored_canonically() {
    let dev = support::start().await;
    let client = support::client(&dev);
    let vss = api(
        client.clone(),
        "networking.istio.io",
        "VirtualService",
        "virtualservices",
    );
    let applied = apply(&vss, &mirroring()).await;
    let value = &applied["spec"]["http"][0]["mirrorPercentage"]["value"];
    assert_eq!(value.to_string(), "25", "{applied:#}");
    assert!(value.is_i64());
    // A fraction stays a fraction.
    assert_eq!(
        applied["spec"]["http"][0]["fault"]["abort"]["percentage"]["value"],
        json!(2.5)
    );
    // As read back (what `kubectl get -o json` prints).
    let got = serde_json::to_value(vss.get("httpbin").await.expect("get")).expect("JSON");
    assert_eq!(
        got["spec"]["http"][0]["mirrorPercentage"]["value"].to_string(),
        "25"
    );
    // Applying git's 25.0 again is a no-op: same resourceVersion.
    let again = apply(&vss, &mirroring()).await;
    assert_eq!(
        again["metadata"]["resourceVersion"],
        applied["metadata"]["resourceVersion"]
    );
    // And veer's plan of it is clean.
    let cluster = Cluster::new(client);
    assert_eq!(
        plan_against(&cluster, &[mirroring()]).await,
        [ObjectAction::Unchanged]
    );
}

#[tokio::test]
async fn service_entry_ports_are_owned_per_port_name() {
    let dev = support::start().await;
    let client = support::client(&dev);
    let ses = api(
        client.clone(),
        "networking.istio.io",
        "ServiceEntry",
        "serviceentries",
    );
    let live = apply(&ses, &service_entry()).await;
    let fields = applied_fields(&live, "veer");
    let ports = fields["f:spec"]["f:ports"]
        .as_object()
        .expect("f:ports has children");
    let keys: Vec<&str> = ports.keys().map(String::as_str).collect();
    assert!(keys.contains(&r#"k:{"name":"tls"}"#), "{fields:#}");
    assert!(keys.contains(&r#"k:{"name":"http"}"#), "{fields:#}");
    assert_eq!(
        ports[r#"k:{"name":"tls"}"#]["f:number"],
        json!({}),
        "{fields:#}"
    );

    // Another manager may own a port of its own; veer's apply keeps it.
    let other = json!({
        "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
        "metadata": {"name": "payments", "namespace": "default"},
        "spec": {"ports": [{"number": 8443, "name": "admin", "protocol": "TLS"}]}
    });
    ses.patch(
        "payments",
        &PatchParams::apply("ops"),
        &Patch::Apply(&other),
    )
    .await
    .expect("a second manager applies its port");
    let live = apply(&ses, &service_entry()).await;
    let names: Vec<&str> = live["spec"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names.len(), 3, "{live:#}");
    assert!(names.contains(&"admin"));

    // veer reads the same rules: its plan of what it applied is clean.
    let cluster = Cluster::new(client);
    assert_eq!(
        plan_against(&cluster, &[service_entry()]).await,
        [ObjectAction::Unchanged]
    );
}

/// A small CRD with a list keyed by `name` and a set, written for this test.
fn gadget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Gadget", "plural": "gadgets", "singular": "gadget"},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "slots": {
                            "type": "array",
                            "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["name"],
                            "items": {"type": "object", "properties": {
                                "name": {"type": "string"},
                                "size": {"type": "number"}}}
                        },
                        "tags": {"type": "array", "items": {"type": "string"},
                                 "x-kubernetes-list-type": "set"}
                    }}
                }}}}]
        }
    })
}

fn gadget() -> Value {
    json!({
        "apiVersion": "example.com/v1", "kind": "Gadget",
        "metadata": {"name": "g", "namespace": "default"},
        "spec": {"slots": [{"name": "a", "size": 1.0}, {"name": "b", "size": 1.5}],
                 "tags": ["x", "y"]}
    })
}

#[tokio::test]
async fn an_applied_crd_s_markers_drive_apply_and_veer_s_rules() {
    let dev = support::start().await;
    let client = support::client(&dev);
    let cluster = Cluster::new(client.clone());
    // Before the CRD: nothing known about Gadget.
    assert_eq!(
        cluster
            .list_semantics()
            .await
            .list_type("example.com", "Gadget", "spec.slots"),
        &ListType::Atomic
    );

    let gvk = GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition");
    let crds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(&gvk, "customresourcedefinitions"),
    );
    crds.patch(
        "gadgets.example.com",
        &PatchParams::apply("veer"),
        &Patch::Apply(gadget_crd()),
    )
    .await
    .expect("the CRD applies");

    let gadgets = api(client.clone(), "example.com", "Gadget", "gadgets");
    let live = apply(&gadgets, &gadget()).await;
    let fields = applied_fields(&live, "veer");
    assert!(
        fields["f:spec"]["f:slots"]
            .get(r#"k:{"name":"a"}"#)
            .is_some(),
        "{fields:#}"
    );
    assert!(
        fields["f:spec"]["f:tags"].get(r#"v:"x""#).is_some(),
        "{fields:#}"
    );
    assert_eq!(live["spec"]["slots"][0]["size"].to_string(), "1");

    // veer's cached rules predate the CRD; asked again, it has them.
    cluster.refresh_list_semantics().await;
    let semantics = cluster.list_semantics().await;
    assert_eq!(
        semantics.list_type("example.com", "Gadget", "spec.slots"),
        &ListType::Map(vec![KeyField::new("name")].into())
    );
    assert_eq!(
        semantics.list_type("example.com", "Gadget", "spec.tags"),
        &ListType::Set
    );
    assert_eq!(
        plan_against(&cluster, &[gadget()]).await,
        [ObjectAction::Unchanged]
    );
}

#[tokio::test]
async fn a_cluster_that_may_not_list_crds_falls_back_to_the_built_in_table() {
    let dev = support::start().await;
    let faults = faults::Faults::default();
    faults.add(faults::Fault {
        method: "GET",
        path: "/apis/apiextensions.k8s.io/v1/customresourcedefinitions".to_string(),
        code: 403,
        reason: "Forbidden",
        message: "customresourcedefinitions.apiextensions.k8s.io is forbidden: User \
                  \"system:serviceaccount:veer:veer\" cannot list resource"
            .to_string(),
        times: 1,
    });
    let cluster = Cluster::new(faults::client(&dev, &faults));
    assert_eq!(cluster.list_semantics().await, ListSemantics::kubernetes());
    assert_eq!(faults.injected(), 1);
    // Forbidden is remembered: no second LIST (which would now succeed).
    assert_eq!(cluster.list_semantics().await, ListSemantics::kubernetes());
    // Until asked to look again.
    cluster.refresh_list_semantics().await;
    assert_ne!(cluster.list_semantics().await, ListSemantics::kubernetes());
}
