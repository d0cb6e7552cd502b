//! The rollout's health gate reads a Deployment's availability from the watch cache: the
//! cache's projection keeps the `Available` condition of a status no applier owns, reduced to
//! its type and status. Asserted on both servers: a real one lists a Deployment without its
//! `kind`, and only a controller (here the test, on the real one) writes its status.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use veer::cluster::Cluster;
use veer::manifest::ObjectKey;

use crate::support::backend::TestCluster;

fn key(ns: &str) -> ObjectKey {
    ObjectKey {
        group: "apps".into(),
        version: "v1".into(),
        kind: "Deployment".into(),
        namespace: Some(ns.into()),
        name: "reviews-v2".into(),
    }
}

/// The status of `reviews-v2` as the watch cache of `live` keeps it, once it is `want` (or
/// after 10 s: the caller's assertion then fails naming what it saw).
async fn cached_status(live: &Cluster, ns: &str, want: &Value) -> Option<Value> {
    let mut last = None;
    for _ in 0..100 {
        let texts = live.cached_in("apps", "Deployment", ns).unwrap_or_default();
        last = texts
            .iter()
            .filter_map(|t| serde_json::from_str::<Value>(t).ok())
            .find(|d| d["metadata"]["name"] == "reviews-v2")
            .map(|d| d.get("status").cloned().unwrap_or(Value::Null));
        if last.as_ref() == Some(want) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

pub async fn the_cache_keeps_a_deployments_availability(cluster: &TestCluster) {
    let ns = cluster.namespace("gate-cache");
    cluster.delete_namespace(&ns).await;
    cluster.create_namespace(&ns).await;
    let labels = json!({"app": "reviews", "version": "v2"});
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "reviews-v2", "namespace": ns},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "reviews", "image": "example/reviews:v2"}]}}},
    });
    let api: Api<Deployment> = Api::namespaced(cluster.client(), &ns);
    api.patch(
        "reviews-v2",
        &PatchParams::apply("veer").force(),
        &Patch::Apply(&deployment),
    )
    .await
    .expect("the Deployment applied");
    crate::known::mark_available(cluster, &ns, "reviews-v2").await;

    let live = Cluster::new(cluster.client());
    // The live view watches the kind in the namespace (as a plan of a repository with it).
    live.live(&[key(&ns)]).await.expect("the live view");
    let available = json!({"conditions": [{"type": "Available", "status": "True"}]});
    assert_eq!(
        cached_status(&live, &ns, &available).await,
        Some(available),
        "[{}] the Available condition alone, as type and status",
        cluster.backend.name()
    );
    cluster.delete_namespace(&ns).await;
}
