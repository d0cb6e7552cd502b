//! veer's own ConfigMaps. Written by one writer (`sync::store`), which creates a missing
//! namespace and applies again; and the rollout command mailbox: `veer rollout pause|abort|…` writes a command into the
//! rollout's ConfigMap at any time, and the driver clears the one it applied only while the
//! mailbox still holds it (a JSON patch `test`), so a second command written while a pass
//! worked on the first is never erased. Both servers answer a failed `test` with 422.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use veer::controller::rollouts;
use veer::ids::RolloutId;

use crate::support::backend::TestCluster;

fn command(id: u64, command: &str) -> String {
    json!({"id": id, "command": command}).to_string()
}

async fn mailbox(api: &Api<ConfigMap>, name: &str) -> Option<String> {
    let cm = api.get(name).await.expect("get the rollout ConfigMap");
    cm.data.and_then(|d| d.get("command").cloned())
}

pub async fn a_command_written_mid_pass_is_never_lost(cluster: &TestCluster) {
    let state_ns = cluster.namespace("mailbox");
    cluster.delete_namespace(&state_ns).await;
    let namespaces: Api<Namespace> = Api::all(cluster.client());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": state_ns}})).expect("Namespace"),
        )
        .await
        .expect("create the state namespace");
    let id = RolloutId {
        namespace: "shop".into(),
        name: "reviews".into(),
    };
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), &state_ns);
    let first = command(4, "pause");
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "metadata": {"name": id.config_map(), "namespace": state_ns},
            "data": {"command": first},
        }))
        .expect("ConfigMap"),
    )
    .await
    .expect("create the rollout ConfigMap");

    // While a pass applies `pause`, the CLI writes `abort` (a merge patch as `veer-cli`).
    let second = command(5, "abort");
    let cli = PatchParams {
        field_manager: Some("veer-cli".into()),
        ..PatchParams::default()
    };
    api.patch(
        &id.config_map(),
        &cli,
        &Patch::Merge(&json!({"data": {"command": second}})),
    )
    .await
    .expect("the CLI's write");

    let cleared = rollouts::clear_command(&cluster.client(), &state_ns, &id, &first)
        .await
        .expect("clearing the applied command answers");
    assert!(
        !cleared,
        "[{}] the newer command is not cleared",
        cluster.backend.name()
    );
    assert_eq!(
        mailbox(&api, &id.config_map()).await.as_deref(),
        Some(second.as_str()),
        "[{}] the second command waits for the next pass",
        cluster.backend.name()
    );

    // Applied in turn, it is cleared.
    let cleared = rollouts::clear_command(&cluster.client(), &state_ns, &id, &second)
        .await
        .expect("clearing the applied command answers");
    assert!(cleared, "[{}]", cluster.backend.name());
    assert_eq!(mailbox(&api, &id.config_map()).await, None);
    // An empty mailbox: nothing to clear, and no error.
    let cleared = rollouts::clear_command(&cluster.client(), &state_ns, &id, &second)
        .await
        .expect("clearing an empty mailbox answers");
    assert!(!cleared, "[{}]", cluster.backend.name());
    cluster.delete_namespace(&state_ns).await;
}

pub async fn own_config_maps_create_their_namespace(cluster: &TestCluster) {
    use veer::sync::store::{OwnConfigMap, write};
    let ns = cluster.namespace("own-config-maps");
    cluster.delete_namespace(&ns).await;
    let mut labels = serde_json::Map::new();
    labels.insert("veer.io/rollout".into(), json!("true"));
    let cm = |value: &str| OwnConfigMap {
        namespace: &ns,
        name: "veer-rollout-shop.reviews",
        labels: labels.clone(),
        data: json!({"state.json": value}),
        binary_data: json!({}),
    };
    write(&cluster.client(), &cm("{}"))
        .await
        .expect("written into a namespace that did not exist");
    write(&cluster.client(), &cm("{\"step\":1}"))
        .await
        .expect("written again");
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), &ns);
    let stored = api.get("veer-rollout-shop.reviews").await.expect("stored");
    let labels = stored.metadata.labels.unwrap_or_default();
    assert_eq!(
        (
            labels
                .get("app.kubernetes.io/managed-by")
                .map(String::as_str),
            labels.get("veer.io/rollout").map(String::as_str),
        ),
        (Some("veer"), Some("true")),
        "[{}]",
        cluster.backend.name()
    );
    assert_eq!(
        stored
            .data
            .unwrap_or_default()
            .get("state.json")
            .map(String::as_str),
        Some("{\"step\":1}")
    );
    cluster.delete_namespace(&ns).await;
}
