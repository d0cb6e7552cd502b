//! Watches: resuming from a resourceVersion with label filters, 410 Gone and bookmarks, and the
//! kube-runtime watcher with and without streaming lists.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::core::Status;
use serde_json::json;
use veer::devcluster::DevClusterOptions;

use crate::helpers::config_map;
use crate::support;

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
