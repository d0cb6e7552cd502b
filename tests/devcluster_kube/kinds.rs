//! What particular kinds do beyond storage: the status subresource, Istio kinds at every
//! version, Deployment availability, CRDs registering kinds, namespace deletion, and Service
//! defaults with collection deletes.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use serde_json::json;
use veer::devcluster::HOLD_ANNOTATION;

use crate::helpers::{api_error, config_map, deployment, virtual_service_api};
use crate::support;

#[tokio::test]
async fn status_is_a_subresource() {
    let cluster = support::start().await;
    let client = support::client(&cluster);
    let vs = virtual_service_api(client, "v1");
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "r"}, "spec": {"hosts": ["r"]}, "status": {"ignored": true}
    }))
    .unwrap();
    let created = vs.create(&PostParams::default(), &obj).await.unwrap();
    assert!(created.data.get("status").is_none());
    assert_eq!(created.metadata.generation, Some(1));

    let with_status = vs
        .patch_status(
            "r",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"observedGeneration": 1}, "spec": {"hosts": ["ignored"]}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(with_status.data["status"]["observedGeneration"], 1);
    assert_eq!(with_status.data["spec"]["hosts"], json!(["r"]));
    assert_eq!(
        with_status.metadata.generation,
        Some(1),
        "status writes keep generation"
    );

    let spec = vs
        .patch(
            "r",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"hosts": ["s"]}, "status": {"observedGeneration": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(
        spec.data["status"]["observedGeneration"], 1,
        "spec writes ignore status"
    );
    assert_eq!(spec.metadata.generation, Some(2));
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn istio_kinds_are_served_at_every_version() {
    let cluster = support::start().await;
    let client = support::client(&cluster);
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
        "metadata": {"name": "r"}, "spec": {"hosts": ["r"]}
    }))
    .unwrap();
    virtual_service_api(client.clone(), "v1alpha3")
        .create(&PostParams::default(), &obj)
        .await
        .unwrap();
    for version in ["v1", "v1beta1", "v1alpha3"] {
        let got = virtual_service_api(client.clone(), version)
            .get("r")
            .await
            .unwrap();
        assert_eq!(
            got.types.unwrap().api_version,
            format!("networking.istio.io/{version}")
        );
    }
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn deployments_are_available_unless_held() {
    let cluster = support::start().await;
    let deploys: Api<Deployment> = Api::default_namespaced(support::client(&cluster));
    let d: Deployment = serde_json::from_value(deployment("web", 3)).unwrap();
    let created = deploys.create(&PostParams::default(), &d).await.unwrap();
    let status = created.status.unwrap();
    assert_eq!(status.available_replicas, Some(3));
    assert_eq!(status.observed_generation, Some(1));
    let available = &status.conditions.unwrap()[0];
    assert_eq!(
        (available.type_.as_str(), available.status.as_str()),
        ("Available", "True")
    );

    let held = deploys
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {HOLD_ANNOTATION: "unavailable"}}})),
        )
        .await
        .unwrap();
    let status = held.status.unwrap();
    assert_eq!(status.available_replicas, Some(0));
    assert_eq!(status.conditions.unwrap()[0].status, "False");
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_crd_registers_a_kind() {
    let cluster = support::start().await;
    let client = support::client(&cluster);
    let crds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            "customresourcedefinitions",
        ),
    );
    let crd: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "rollouts.veer.io"},
        "spec": {
            "group": "veer.io", "scope": "Namespaced",
            "names": {"kind": "Rollout", "plural": "rollouts", "singular": "rollout"},
            "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                          "schema": {"openAPIV3Schema": {"type": "object"}},
                          "subresources": {"status": {}}}]
        }
    }))
    .unwrap();
    let created = crds
        .patch(
            "rollouts.veer.io",
            &PatchParams::apply("veer"),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap();
    let established = created.data["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "Established" && c["status"] == "True");
    assert!(established);

    let discovery = kube::discovery::Discovery::new(client.clone())
        .run()
        .await
        .unwrap();
    let group = discovery
        .get("veer.io")
        .expect("discovery lists the new group");
    let (ar, caps) = group.recommended_kind("Rollout").expect("the new kind");
    assert_eq!(ar.plural, "rollouts");
    assert!(caps.subresources.iter().any(|(r, _)| r.plural == "status"));

    let rollouts: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let r: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "veer.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "r1"}, "spec": {"step": 1}
    }))
    .unwrap();
    rollouts.create(&PostParams::default(), &r).await.unwrap();
    assert_eq!(
        rollouts
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    crds.delete("rollouts.veer.io", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(
        api_error(rollouts.get("r1").await).0,
        404,
        "the kind is gone"
    );
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_objects() {
    let cluster = support::start().await;
    let client = support::client(&cluster);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    cms.create(&PostParams::default(), &config_map("c", json!({})))
        .await
        .unwrap();
    let deleted = namespaces
        .delete("team", &DeleteParams::default())
        .await
        .unwrap();
    assert!(deleted.is_left(), "the deleted object comes back");
    assert_eq!(api_error(cms.get("c").await).0, 404);
    let all: Api<ConfigMap> = Api::all(client);
    assert!(
        all.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn services_get_defaults_and_collections_delete_by_selector() {
    let cluster = support::start().await;
    let client = support::client(&cluster);
    let services: Api<Service> = Api::default_namespaced(client.clone());
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "reviews"},
        "spec": {"selector": {"app": "reviews"}, "ports": [{"name": "http", "port": 9080}]}
    }))
    .unwrap();
    let created = services.create(&PostParams::default(), &svc).await.unwrap();
    let spec = created.spec.unwrap();
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    assert!(spec.cluster_ip.is_some_and(|ip| ip.starts_with("10.96.")));
    let port = &spec.ports.unwrap()[0];
    assert_eq!(port.protocol.as_deref(), Some("TCP"));
    assert_eq!(
        port.target_port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(9080))
    );

    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    for (name, app) in [("a", "x"), ("b", "x"), ("c", "y")] {
        cms.create(
            &PostParams::default(),
            &config_map(name, json!({"app": app})),
        )
        .await
        .unwrap();
    }
    cms.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("app=x"),
    )
    .await
    .unwrap();
    let left: Vec<String> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| c.metadata.name.unwrap())
        .collect();
    assert_eq!(left, ["c"]);
    cluster.shutdown().await.unwrap();
}
