//! Pruning a Namespace: never while anything still lives in it, removed once it held only
//! what veer pruned, and the dev cluster deleting a namespace as Kubernetes does.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use serde_json::json;
use veer::devcluster::RunningCluster;
use veer::diff::PruneSkipReason;
use veer::sync::ObjectResult;

use crate::helpers::{
    NAMESPACE, SERVICE, config_map, config_maps, controller, data_of, pass, result_of, revision,
    synced,
};
use crate::support::devcluster as dev;

fn foreign_config_map(name: &str, annotations: serde_json::Value) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "annotations": annotations}, "data": {"a": "1"}}),
    )
    .expect("a ConfigMap")
}

async fn namespace_exists(cluster: &RunningCluster, name: &str) -> bool {
    Api::<k8s_openapi::api::core::v1::Namespace>::all(dev::client(cluster))
        .get_opt(name)
        .await
        .expect("get")
        .is_some()
}

#[tokio::test]
async fn pruning_a_namespace_never_takes_what_still_lives_in_it() {
    let cluster = dev::start().await;
    let mut c = controller(&cluster).await;
    let kept = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\n  namespace: shop\n  annotations: {veer.io/prune: \"false\"}\ndata:\n  a: \"1\"\n";
    let first = revision(
        1,
        &[
            ("ns.yaml", NAMESPACE),
            ("settings.yaml", &config_map("settings", "a: b")),
            ("old.yaml", &config_map("old", "a: b")),
            ("kept.yaml", kept),
        ],
    );
    assert!(!synced(&pass(&mut c, &first).await).has_failures());

    // (i) namespace.yaml leaves git, a manifest of the namespace stays: kept by the plan.
    let second = revision(
        2,
        &[
            ("settings.yaml", &config_map("settings", "a: b")),
            ("kept.yaml", kept),
        ],
    );
    let p = pass(&mut c, &second).await;
    let report = synced(&p);
    assert_eq!(result_of(report, "ConfigMap", "old"), &ObjectResult::Pruned);
    match result_of(report, "Namespace", "shop") {
        ObjectResult::PruneSkipped {
            reason: PruneSkipReason::NamespaceInUse { by, .. },
        } => assert_eq!(by.to_string(), "ConfigMap shop/kept"),
        other => panic!(
            "expected the namespace kept, got {other:?}\n{}",
            report.human()
        ),
    }
    assert!(namespace_exists(&cluster, "shop").await);

    // (ii) git's objects leave too, but someone else's object lives there: kept at sync time.
    config_maps(&cluster)
        .create(
            &Default::default(),
            &foreign_config_map("theirs", json!({})),
        )
        .await
        .expect("created by someone else");
    // veer's kept object may be given up; the annotation still keeps it.
    let third = revision(3, &[]);
    let p = pass(&mut c, &third).await;
    let report = synced(&p);
    assert_eq!(
        result_of(report, "ConfigMap", "settings"),
        &ObjectResult::Pruned
    );
    assert_eq!(
        result_of(report, "ConfigMap", "kept"),
        &ObjectResult::PruneSkipped {
            reason: PruneSkipReason::Annotation
        }
    );
    assert!(
        matches!(
            result_of(report, "Namespace", "shop"),
            ObjectResult::PruneSkipped {
                reason: PruneSkipReason::NamespaceInUse { .. }
            }
        ),
        "{}",
        report.human()
    );
    assert!(namespace_exists(&cluster, "shop").await);
    assert!(data_of(&cluster, "theirs").await.is_some());
    assert!(data_of(&cluster, "kept").await.is_some());

    // The annotated object is taken away by hand: only their object keeps it now, which only
    // the server knows about.
    config_maps(&cluster)
        .delete("kept", &Default::default())
        .await
        .expect("deleted by hand");
    let p = pass(&mut c, &revision(4, &[])).await;
    let report = synced(&p);
    match result_of(report, "Namespace", "shop") {
        ObjectResult::PruneSkipped {
            reason: PruneSkipReason::NamespaceNotEmpty { by, more },
        } => assert_eq!((by.to_string(), *more), ("ConfigMap shop/theirs".into(), 0)),
        other => panic!(
            "expected the namespace kept, got {other:?}\n{}",
            report.human()
        ),
    }
    let human = report.human();
    assert!(
        human.contains(
            "Namespace shop: prune skipped (ConfigMap shop/theirs still lives in it; delete them"
        ),
        "{human}"
    );
    assert!(namespace_exists(&cluster, "shop").await);
    assert!(data_of(&cluster, "theirs").await.is_some());
    // Kept, so still veer's to prune once it empties.
    assert!(c.state().inventory().iter().any(|k| k.kind == "Namespace"));

    // Once nothing lives in it, it goes.
    config_maps(&cluster)
        .delete("theirs", &Default::default())
        .await
        .expect("deleted by them");
    let p = pass(&mut c, &revision(5, &[])).await;
    assert_eq!(
        result_of(synced(&p), "Namespace", "shop"),
        &ObjectResult::Pruned
    );
    assert!(!namespace_exists(&cluster, "shop").await);
}

#[tokio::test]
async fn a_namespace_that_held_only_what_veer_pruned_is_removed() {
    let cluster = dev::start().await;
    let mut c = controller(&cluster).await;
    let first = revision(
        1,
        &[
            ("ns.yaml", NAMESPACE),
            ("a.yaml", &config_map("a", "k: v")),
            ("b.yaml", &config_map("b", "k: v")),
            ("svc.yaml", SERVICE),
        ],
    );
    assert!(!synced(&pass(&mut c, &first).await).has_failures());
    let p = pass(&mut c, &revision(2, &[])).await;
    let report = synced(&p);
    assert_eq!(report.summary().pruned, 4, "{}", report.human());
    // The Namespace is the last prune, after what lived in it.
    assert_eq!(
        report
            .objects
            .last()
            .map(|o| (o.key.kind.as_str(), &o.result)),
        Some(("Namespace", &ObjectResult::Pruned))
    );
    assert!(!namespace_exists(&cluster, "shop").await);
    assert!(c.state().inventory().is_empty());
}

#[tokio::test]
async fn the_dev_cluster_deletes_a_namespace_as_kubernetes_does() {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::{DeleteParams, PostParams, WatchEvent, WatchParams};

    let cluster = dev::start().await;
    let client = dev::client(&cluster);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "shop"}})).expect("a Namespace"),
        )
        .await
        .expect("created");
    config_maps(&cluster)
        .create(
            &PostParams::default(),
            &foreign_config_map("c", json!({"veer.io/prune": "false"})),
        )
        .await
        .expect("created");
    let rv = namespaces
        .get("shop")
        .await
        .expect("get")
        .metadata
        .resource_version
        .expect("a resourceVersion");
    let mut events = namespaces
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();

    let answer = namespaces
        .delete("shop", &DeleteParams::default())
        .await
        .expect("deleted");
    let ns = answer.left().expect("the namespace comes back");
    assert_eq!(
        ns.status.and_then(|s| s.phase).as_deref(),
        Some("Terminating")
    );
    assert!(ns.metadata.deletion_timestamp.is_some());
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("an event within 10 s")
            .expect("the watch is open")
            .expect("a well-formed event");
        match event {
            WatchEvent::Modified(n) => seen.push(format!(
                "MODIFIED {}",
                n.status.and_then(|s| s.phase).unwrap_or_default()
            )),
            WatchEvent::Deleted(_) => seen.push("DELETED".to_string()),
            WatchEvent::Added(_) | WatchEvent::Bookmark(_) | WatchEvent::Error(_) => {}
        }
    }
    assert_eq!(seen, ["MODIFIED Terminating", "DELETED"]);
    // Its contents went with it, whatever they were annotated with.
    assert_eq!(data_of(&cluster, "c").await, None);
    assert!(!namespace_exists(&cluster, "shop").await);
}
