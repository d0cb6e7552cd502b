//! Writes through the kube client: create, get and list with label selectors, optimistic
//! concurrency, merge/JSON/strategic patches, server-side apply, dry runs, and the state file
//! that keeps objects across restarts.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use veer::devcluster::DevClusterOptions;

use crate::helpers::{api_error, config_map, deployment, virtual_service_api};
use crate::support;

#[tokio::test]
async fn create_get_list_with_label_selectors() {
    let cluster = support::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(support::client(&cluster), "default");
    let pp = PostParams::default();
    cms.create(
        &pp,
        &config_map("web", json!({"app": "web", "tier": "front"})),
    )
    .await
    .unwrap();
    cms.create(&pp, &config_map("api", json!({"app": "api"})))
        .await
        .unwrap();
    cms.create(&pp, &config_map("db", json!({"app": "db"})))
        .await
        .unwrap();

    let got = cms.get("web").await.unwrap();
    let meta = &got.metadata;
    assert_eq!(meta.namespace.as_deref(), Some("default"));
    assert!(meta.uid.as_ref().is_some_and(|u| u.len() == 36));
    assert!(meta.creation_timestamp.is_some());
    assert!(meta.resource_version.is_some());

    for (selector, expected) in [
        ("app=web", vec!["web"]),
        ("app!=web", vec!["api", "db"]),
        ("app in (web,api)", vec!["api", "web"]),
        ("app notin (web,api)", vec!["db"]),
        ("tier", vec!["web"]),
        ("!tier", vec!["api", "db"]),
    ] {
        let list = cms
            .list(&ListParams::default().labels(selector))
            .await
            .unwrap();
        let mut names: Vec<String> = list
            .items
            .iter()
            .map(|c| c.metadata.name.clone().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, expected, "selector {selector}");
    }

    let dup = cms.create(&pp, &config_map("web", json!({}))).await;
    assert_eq!(api_error(dup), (409, "AlreadyExists".into()));
    assert_eq!(api_error(cms.get("nope").await), (404, "NotFound".into()));
    let invalid = cms.create(&pp, &config_map("Not_Valid", json!({}))).await;
    assert_eq!(api_error(invalid), (422, "Invalid".into()));
    let elsewhere: Api<ConfigMap> = Api::namespaced(support::client(&cluster), "missing");
    let no_ns = elsewhere.create(&pp, &config_map("x", json!({}))).await;
    assert_eq!(api_error(no_ns), (404, "NotFound".into()));
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn update_with_a_stale_resource_version_conflicts() {
    let cluster = support::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(support::client(&cluster), "default");
    let created = cms
        .create(&PostParams::default(), &config_map("c", json!({})))
        .await
        .unwrap();
    let mut first = created.clone();
    first.data = Some([("k".to_string(), "1".to_string())].into());
    let updated = cms
        .replace("c", &PostParams::default(), &first)
        .await
        .unwrap();
    assert_ne!(
        updated.metadata.resource_version,
        created.metadata.resource_version
    );
    let mut stale = created.clone();
    stale.data = Some([("k".to_string(), "2".to_string())].into());
    let conflict = cms.replace("c", &PostParams::default(), &stale).await;
    assert_eq!(api_error(conflict), (409, "Conflict".into()));
    assert_eq!(cms.get("c").await.unwrap().data, first.data);
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn merge_json_and_strategic_patches() {
    let cluster = support::start().await;
    let client = support::client(&cluster);
    let deploys: Api<Deployment> = Api::default_namespaced(client.clone());
    let d: Deployment = serde_json::from_value(deployment("web", 1)).unwrap();
    deploys.create(&PostParams::default(), &d).await.unwrap();
    let pp = PatchParams::default();

    let merged = deploys
        .patch(
            "web",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(merged.metadata.labels.unwrap()["a"], "b");

    let ops: json_patch::Patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/spec/replicas", "value": 3}
    ]))
    .unwrap();
    let jsoned = deploys
        .patch("web", &pp, &Patch::Json::<()>(ops))
        .await
        .unwrap();
    assert_eq!(jsoned.spec.as_ref().unwrap().replicas, Some(3));
    assert_eq!(
        jsoned.metadata.generation,
        Some(2),
        "a spec change bumps generation"
    );

    let strategic = deploys
        .patch(
            "web",
            &pp,
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "sidecar", "image": "proxy:1"}
            ]}}}})),
        )
        .await
        .unwrap();
    let containers = strategic.spec.unwrap().template.spec.unwrap().containers;
    let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["app", "sidecar"], "containers merge by name");

    // Istio kinds are custom resources: strategic merge is refused as on a real server.
    let vs = virtual_service_api(client.clone(), "v1");
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "r"}, "spec": {"hosts": ["r"]}
    }))
    .unwrap();
    vs.create(&PostParams::default(), &obj).await.unwrap();
    let refused = vs
        .patch("r", &pp, &Patch::Strategic(json!({"spec": {}})))
        .await;
    assert_eq!(api_error(refused).0, 415);
    let missing = deploys.patch("nope", &pp, &Patch::Merge(json!({}))).await;
    assert_eq!(api_error(missing), (404, "NotFound".into()));
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn server_side_apply_tracks_managers_and_reports_conflicts() {
    let cluster = support::start().await;
    let deploys: Api<Deployment> = Api::default_namespaced(support::client(&cluster));
    let applied = deploys
        .patch(
            "web",
            &PatchParams::apply("veer"),
            &Patch::Apply(deployment("web", 2)),
        )
        .await
        .unwrap();
    let managers: Vec<(String, String)> = applied
        .metadata
        .managed_fields
        .unwrap()
        .iter()
        .map(|m| (m.manager.clone().unwrap(), m.operation.clone().unwrap()))
        .collect();
    assert_eq!(managers, [("veer".to_string(), "Apply".to_string())]);

    // Someone scales by hand: they now own .spec.replicas.
    deploys
        .patch(
            "web",
            &PatchParams {
                field_manager: Some("kubectl-edit".into()),
                ..PatchParams::default()
            },
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    let conflict = deploys
        .patch(
            "web",
            &PatchParams::apply("veer"),
            &Patch::Apply(deployment("web", 2)),
        )
        .await;
    match conflict {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
            assert!(
                status.message.contains("kubectl-edit"),
                "{}",
                status.message
            );
            assert!(
                status.message.contains(".spec.replicas"),
                "{}",
                status.message
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Applying the same value is sharing, not a conflict; force takes ownership.
    deploys
        .patch(
            "web",
            &PatchParams::apply("veer"),
            &Patch::Apply(deployment("web", 5)),
        )
        .await
        .unwrap();
    let forced = deploys
        .patch(
            "web",
            &PatchParams::apply("veer").force(),
            &Patch::Apply(deployment("web", 2)),
        )
        .await
        .unwrap();
    assert_eq!(forced.spec.unwrap().replicas, Some(2));
    // A repeated apply changes nothing: same resourceVersion.
    let again = deploys
        .patch(
            "web",
            &PatchParams::apply("veer"),
            &Patch::Apply(deployment("web", 2)),
        )
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        forced.metadata.resource_version
    );
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn apply_takes_the_name_from_the_url() {
    let cluster = support::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(support::client(&cluster), "default");
    let created = cms
        .patch(
            "unnamed",
            &PatchParams::apply("veer"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"}})),
        )
        .await
        .unwrap();
    assert_eq!(created.metadata.name.as_deref(), Some("unnamed"));
    let other = cms
        .patch(
            "unnamed",
            &PatchParams::apply("veer"),
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"}}),
            ),
        )
        .await;
    assert_eq!(api_error(other), (400, "BadRequest".into()));
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn dry_run_writes_nothing() {
    let cluster = support::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(support::client(&cluster), "default");
    let before = cluster.resource_version();
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let out = cms.create(&dry, &config_map("c", json!({}))).await.unwrap();
    assert_eq!(out.metadata.name.as_deref(), Some("c"));
    assert_eq!(api_error(cms.get("c").await).0, 404);

    cms.create(&PostParams::default(), &config_map("c", json!({})))
        .await
        .unwrap();
    let rv = cluster.resource_version();
    let patched = cms
        .patch(
            "c",
            &PatchParams::default().dry_run(),
            &Patch::Merge(json!({"data": {"k": "dry"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap()["k"], "dry");
    let applied = cms
        .patch(
            "c",
            &PatchParams::apply("veer").force().dry_run(),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "applied"}})),
        )
        .await
        .unwrap();
    assert_eq!(applied.data.unwrap()["k"], "applied");
    let dp = DeleteParams {
        dry_run: true,
        ..DeleteParams::default()
    };
    cms.delete("c", &dp).await.unwrap();
    assert_eq!(cms.get("c").await.unwrap().data.unwrap()["k"], "v");
    assert_eq!(cluster.resource_version(), rv, "no write happened");
    assert!(rv > before);
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn state_file_keeps_objects_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let options = DevClusterOptions {
        state_file: Some(state.clone()),
        ..DevClusterOptions::default()
    };
    let cluster = support::start_with(options.clone()).await;
    let cms: Api<ConfigMap> = Api::namespaced(support::client(&cluster), "default");
    let created = cms
        .create(&PostParams::default(), &config_map("kept", json!({})))
        .await
        .unwrap();
    cluster.shutdown().await.unwrap();
    assert!(state.is_file());

    let cluster = support::start_with(options).await;
    let cms: Api<ConfigMap> = Api::namespaced(support::client(&cluster), "default");
    let again = cms.get("kept").await.unwrap();
    assert_eq!(again.metadata.uid, created.metadata.uid);
    assert_eq!(
        again.metadata.resource_version,
        created.metadata.resource_version
    );
    cms.create(&PostParams::default(), &config_map("new", json!({})))
        .await
        .unwrap();
    // Written through shortly after the write, before any shutdown (a killed demo keeps it).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&state).unwrap().contains("\"new\"") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the state file was not updated"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.shutdown().await.unwrap();
}
