//! veer's own state ConfigMaps stay out of the live view: every watch selects
//! `!veer.io/controller-state`, so a repository with ConfigMaps does not bring veer's own
//! writes (each rollout step, state shards of up to a MiB) into the watch cache. A ConfigMap
//! from git beside them is watched as before, and one an older veer wrote without the label
//! leaves the view once this veer writes it again (the server ends its selection with a
//! DELETED event).

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use veer::cluster::Cluster;
use veer::manifest::ObjectKey;
use veer::sync::store::{OwnConfigMap, write};

use crate::support::backend::TestCluster;

fn key(ns: &str, name: &str) -> ObjectKey {
    ObjectKey {
        group: String::new(),
        version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some(ns.into()),
        name: name.into(),
    }
}

/// A ConfigMap applied by veer's field manager as it applies one from git, or as an older
/// veer wrote its state (no `veer.io/controller-state`).
async fn apply_as_veer(cluster: &TestCluster, ns: &str, name: &str, data: Value) {
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), ns);
    let object = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns,
                     "labels": {"app.kubernetes.io/managed-by": "veer"}},
        "data": data,
    });
    api.patch(
        name,
        &PatchParams::apply("veer").force(),
        &Patch::Apply(&object),
    )
    .await
    .expect("a ConfigMap applied");
}

async fn write_own(cluster: &TestCluster, ns: &str, name: &str) {
    let cm = OwnConfigMap {
        namespace: ns,
        name,
        labels: serde_json::Map::new(),
        data: json!({"state.json": "{}"}),
        binary_data: json!({}),
    };
    write(&cluster.client(), &cm)
        .await
        .expect("an own ConfigMap written");
}

/// Which of `names` the live view holds, and the `data.value` of each, once it shows
/// `want` (or after 10 s: the caller's assertion then fails naming what it saw).
async fn seen(
    live: &Cluster,
    ns: &str,
    names: &[&str],
    want: impl Fn(&[(String, Value)]) -> bool,
) -> Vec<(String, Value)> {
    let keys: Vec<ObjectKey> = names.iter().map(|n| key(ns, n)).collect();
    let mut last = Vec::new();
    for _ in 0..100 {
        let objects = live.live(&keys).await.expect("the live view").objects;
        last = names
            .iter()
            .filter_map(|n| {
                let o = objects.get(&key(ns, n))?;
                Some((n.to_string(), o["data"]["value"].clone()))
            })
            .collect();
        if want(&last) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

pub async fn own_state_config_maps_are_not_watched(cluster: &TestCluster) {
    let ns = cluster.namespace("own-state");
    write_own(cluster, &ns, "veer-state").await;
    apply_as_veer(cluster, &ns, "settings", json!({"value": "1"})).await;
    apply_as_veer(
        cluster,
        &ns,
        "veer-rollout-older",
        json!({"state.json": "{}"}),
    )
    .await;
    let live = Cluster::new(cluster.client());
    let names = ["settings", "veer-state", "veer-rollout-older"];
    let listed = seen(&live, &ns, &names, |s| s.len() == 2).await;
    let listed: Vec<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        listed,
        ["settings", "veer-rollout-older"],
        "the ConfigMap from git and the older veer's state are seen; this veer's own is not"
    );

    // The older veer's state written again by this veer: labelled, it leaves the view,
    // while a change to the ConfigMap from git still arrives.
    write_own(cluster, &ns, "veer-rollout-older").await;
    apply_as_veer(cluster, &ns, "settings", json!({"value": "2"})).await;
    let after = seen(&live, &ns, &names, |s| s.len() == 1 && s[0].1 == json!("2")).await;
    assert_eq!(
        after,
        [("settings".to_string(), json!("2"))],
        "only the ConfigMap from git, at its new content"
    );
}
