//! The embedded API server against the real kube 5 client, over real HTTP on 127.0.0.1.

// The dev-cluster helpers only: tests/support/mod.rs (git remotes) is another suite's.
#[path = "support/devcluster.rs"]
mod support;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::core::Status;
use serde_json::{Value, json};
use veer::devcluster::{DevClusterOptions, HOLD_ANNOTATION};

fn config_map(name: &str, labels: Value) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": {"k": "v"}
    }))
    .unwrap()
}

fn deployment(name: &str, replicas: i32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "app:1"}]}
            }
        }
    })
}

/// The API error of a failed call: (code, reason).
fn api_error<T: std::fmt::Debug>(result: kube::Result<T>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn virtual_service_api(client: kube::Client, version: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("networking.istio.io", version, "VirtualService");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "virtualservices");
    Api::namespaced_with(client, "default", &ar)
}

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

async fn next_event(
    stream: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin),
) -> WatchEvent<ConfigMap> {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("a watch event within 10 s")
        .expect("the watch stream is open")
        .expect("a well-formed watch event")
}

fn event_name(event: &WatchEvent<ConfigMap>) -> String {
    match event {
        WatchEvent::Added(o) => format!("ADDED {}", o.metadata.name.clone().unwrap()),
        WatchEvent::Modified(o) => format!("MODIFIED {}", o.metadata.name.clone().unwrap()),
        WatchEvent::Deleted(o) => format!("DELETED {}", o.metadata.name.clone().unwrap()),
        WatchEvent::Bookmark(b) => format!("BOOKMARK {}", b.metadata.resource_version),
        WatchEvent::Error(e) => format!("ERROR {}", e.code),
    }
}

#[tokio::test]
async fn watch_resumes_from_a_version_and_filters_by_label() {
    let cluster = support::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(support::client(&cluster), "default");
    let pp = PostParams::default();
    let list = cms.list(&ListParams::default()).await.unwrap();
    let start = list.metadata.resource_version.unwrap();
    cms.create(&pp, &config_map("a", json!({"app": "web"})))
        .await
        .unwrap();
    cms.create(&pp, &config_map("b", json!({"app": "db"})))
        .await
        .unwrap();

    // Resume from before the creates: history replays them.
    let wp = WatchParams::default().labels("app=web").disable_bookmarks();
    let mut stream = cms.watch(&wp, &start).await.unwrap().boxed();
    assert_eq!(event_name(&next_event(&mut stream).await), "ADDED a");
    cms.patch(
        "b",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "web"}}})),
    )
    .await
    .unwrap();
    assert_eq!(
        event_name(&next_event(&mut stream).await),
        "ADDED b",
        "b starts matching"
    );
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .unwrap();
    assert_eq!(event_name(&next_event(&mut stream).await), "MODIFIED a");
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(event_name(&next_event(&mut stream).await), "DELETED a");
    drop(stream);

    // The watch ends on the server when the client goes away.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while cluster.open_watches() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the watch was not closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_too_old_version_is_gone_and_bookmarks_arrive() {
    let cluster = support::start_with(DevClusterOptions {
        history_limit: 3,
        bookmark_interval: Duration::from_millis(100),
        ..DevClusterOptions::default()
    })
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(support::client(&cluster), "default");
    let start = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    for i in 0..5 {
        cms.create(
            &PostParams::default(),
            &config_map(&format!("c{i}"), json!({})),
        )
        .await
        .unwrap();
    }
    let mut gone = cms
        .watch(&WatchParams::default(), &start)
        .await
        .unwrap()
        .boxed();
    match next_event(&mut gone).await {
        WatchEvent::Error(e) => {
            let e: &Status = &e;
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
        }
        other => panic!("expected 410 Gone, got {}", event_name(&other)),
    }

    let now = cluster.resource_version().to_string();
    let mut stream = cms
        .watch(&WatchParams::default(), &now)
        .await
        .unwrap()
        .boxed();
    match next_event(&mut stream).await {
        WatchEvent::Bookmark(b) => assert_eq!(b.metadata.resource_version, now),
        other => panic!("expected a bookmark, got {}", event_name(&other)),
    }
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_kube_runtime_watcher_follows_changes() {
    watcher_follows_changes(kube::runtime::watcher::Config::default()).await;
}

#[tokio::test]
async fn the_kube_runtime_watcher_follows_changes_with_streaming_lists() {
    watcher_follows_changes(kube::runtime::watcher::Config::default().streaming_lists()).await;
}

async fn watcher_follows_changes(config: kube::runtime::watcher::Config) {
    let cluster = support::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(support::client(&cluster), "default");
    cms.create(&PostParams::default(), &config_map("before", json!({})))
        .await
        .unwrap();
    let mut events = kube::runtime::watcher(cms.clone(), config).boxed();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut created = false;
    while !seen.contains(&"after".to_string()) {
        let event = tokio::time::timeout_at(deadline, events.try_next())
            .await
            .expect("the watcher sees the new object within 10 s")
            .unwrap()
            .unwrap();
        match event {
            kube::runtime::watcher::Event::InitApply(o)
            | kube::runtime::watcher::Event::Apply(o) => seen.push(o.metadata.name.unwrap()),
            kube::runtime::watcher::Event::InitDone if !created => {
                created = true;
                cms.create(&PostParams::default(), &config_map("after", json!({})))
                    .await
                    .unwrap();
            }
            _ => {}
        }
    }
    assert_eq!(seen, ["before", "after"]);
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

const TABLE_V1: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

/// A GET with an Accept header, as kubectl sends for tables.
fn get_as(path: &str, accept: &str) -> http::Request<Vec<u8>> {
    http::Request::get(path)
        .header("Accept", accept)
        .body(Vec::new())
        .unwrap()
}

fn cell_column(table: &Value, column: usize) -> Vec<Value> {
    table["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cells"][column].clone())
        .collect()
}

#[tokio::test]
async fn tables_are_served_when_asked_for() {
    let cluster = support::start().await;
    let client = support::client(&cluster);
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    cms.create(
        &PostParams::default(),
        &config_map("a", json!({"app": "web"})),
    )
    .await
    .unwrap();
    cms.create(&PostParams::default(), &config_map("b", json!({})))
        .await
        .unwrap();
    let path = "/api/v1/namespaces/default/configmaps";

    // kubectl's Accept: a meta.k8s.io/v1 Table with PartialObjectMetadata rows.
    let accept =
        format!("{TABLE_V1},application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json");
    let table: Value = client.request(get_as(path, &accept)).await.unwrap();
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(
        table["metadata"]["resourceVersion"],
        cluster.resource_version().to_string()
    );
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Name", "Data", "Age"]);
    assert_eq!(cell_column(&table, 0), [json!("a"), json!("b")]);
    assert_eq!(cell_column(&table, 1), [json!(1), json!(1)]);
    let object = &table["rows"][0]["object"];
    assert_eq!(object["kind"], "PartialObjectMetadata");
    assert_eq!(object["metadata"]["labels"]["app"], "web");
    assert!(object.get("data").is_none());

    // v1beta1 when that is the only Table asked for; whole objects or none by includeObject.
    let beta: Value = client
        .request(get_as(
            &format!("{path}?includeObject=Object"),
            "application/json;as=Table;v=v1beta1;g=meta.k8s.io",
        ))
        .await
        .unwrap();
    assert_eq!(beta["apiVersion"], "meta.k8s.io/v1beta1");
    assert_eq!(beta["rows"][1]["object"]["kind"], "ConfigMap");
    assert_eq!(beta["rows"][1]["object"]["data"]["k"], "v");
    let bare: Value = client
        .request(get_as(&format!("{path}?includeObject=None"), TABLE_V1))
        .await
        .unwrap();
    assert!(bare["rows"][0].get("object").is_none());
    let refused = client
        .request::<Value>(get_as(
            &format!("{path}?includeObject=Everything"),
            TABLE_V1,
        ))
        .await;
    assert_eq!(api_error(refused).0, 400);

    // A single object: a one-row Table at the object's version.
    let one: Value = client
        .request(get_as(&format!("{path}/a"), TABLE_V1))
        .await
        .unwrap();
    let a = cms.get("a").await.unwrap();
    assert_eq!(one["rows"].as_array().unwrap().len(), 1);
    assert_eq!(
        one["metadata"]["resourceVersion"],
        a.metadata.resource_version.unwrap()
    );

    // Anyone else still gets the objects.
    let plain: Value = client
        .request(get_as(path, "application/json"))
        .await
        .unwrap();
    assert_eq!(plain["kind"], "ConfigMapList");

    // Istio kinds take their CRD's columns, whatever version is asked for.
    let vs: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
        "metadata": {"name": "reviews"},
        "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews"}}]}]}
    }))
    .unwrap();
    virtual_service_api(client.clone(), "v1alpha3")
        .create(&PostParams::default(), &vs)
        .await
        .unwrap();
    let vs_table: Value = client
        .request(get_as(
            "/apis/networking.istio.io/v1alpha3/namespaces/default/virtualservices?includeObject=Object",
            TABLE_V1,
        ))
        .await
        .unwrap();
    assert_eq!(vs_table["columnDefinitions"][2]["name"], "Hosts");
    let cells = vs_table["rows"][0]["cells"].as_array().unwrap();
    assert_eq!(
        cells[..3],
        [json!("reviews"), Value::Null, json!("[\"reviews\"]")]
    );
    assert!(
        cells[3].as_str().unwrap().ends_with('s'),
        "an age: {cells:?}"
    );
    assert_eq!(
        vs_table["rows"][0]["object"]["apiVersion"],
        "networking.istio.io/v1alpha3"
    );
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_table_watch_sends_the_columns_once() {
    use futures::AsyncBufReadExt;

    let cluster = support::start().await;
    let client = support::client(&cluster);
    let from = cluster.resource_version();
    let lines = client
        .request_stream(get_as(
            &format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={from}"),
            TABLE_V1,
        ))
        .await
        .unwrap();
    let mut lines = lines.lines();
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    cms.create(&PostParams::default(), &config_map("w", json!({})))
        .await
        .unwrap();
    cms.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k2": "v2"}})),
    )
    .await
    .unwrap();
    let mut next = async || -> Value {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next())
            .await
            .expect("an event within 10 s")
            .expect("the watch is open")
            .unwrap();
        serde_json::from_str(&line).unwrap()
    };
    let added = next().await;
    assert_eq!(added["type"], "ADDED");
    assert_eq!(added["object"]["kind"], "Table");
    assert_eq!(
        added["object"]["columnDefinitions"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        added["object"]["rows"][0]["cells"].as_array().unwrap()[..2],
        [json!("w"), json!(1)]
    );
    let modified = next().await;
    assert_eq!(modified["type"], "MODIFIED");
    assert_eq!(modified["object"]["columnDefinitions"], json!([]));
    assert_eq!(
        modified["object"]["rows"][0]["cells"].as_array().unwrap()[..2],
        [json!("w"), json!(2)]
    );
    assert_eq!(
        modified["object"]["rows"][0]["object"]["kind"],
        "PartialObjectMetadata"
    );
    cluster.shutdown().await.unwrap();
}
