//! A large sync state, stored in shards (format 2): written whole, then a small change stores
//! one shard and the header and deletes the shard it replaced; a shard left behind by an
//! interrupted write is deleted by the next start's first write; a state an older veer
//! stored whole (format 1, gzip) is read and then stored in shards, its old key dropped by
//! server-side apply; a missing shard is named when the state is read.

use std::collections::BTreeSet;

use base64::Engine as _;
use flate2::Compression;
use flate2::write::GzEncoder;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use std::io::Write as _;
use veer::manifest::ObjectKey;
use veer::sync::state::{
    self, Encoded, ObjectRecord, RevisionRecord, StateChange, StateError, StateLocation, SyncState,
};

use crate::support::backend::TestCluster;

const SHARD_LABEL: &str = "veer.io/state-shard=true";

/// A state of `n` applied VirtualServices: large enough to be sharded.
fn large_state(n: usize) -> SyncState {
    let objects: Vec<ObjectRecord> = (0..n)
        .map(|i| {
            let key = ObjectKey {
                group: "networking.istio.io".into(),
                version: "v1".into(),
                kind: "VirtualService".into(),
                namespace: Some(format!("shop-{}", i % 20)),
                name: format!("route-{i:05}"),
            };
            ObjectRecord::new(&key, Some(format!("{:016x}", i * 7919)), "created")
        })
        .collect();
    let mut s = SyncState {
        revision: Some(RevisionRecord {
            commit: "0123456789abcdef0123456789abcdef01234567".into(),
            summary: "many routes".into(),
            author: "a <a@example.com>".into(),
        }),
        objects,
        ..SyncState::default()
    };
    s.sort_records();
    s
}

/// The shard ConfigMaps' names in the namespace.
async fn shard_names(api: &Api<ConfigMap>) -> BTreeSet<String> {
    let list = api
        .list(&ListParams::default().labels(SHARD_LABEL))
        .await
        .expect("list the shards");
    list.items
        .into_iter()
        .filter_map(|cm| cm.metadata.name)
        .collect()
}

/// The shard names the header names.
async fn named(api: &Api<ConfigMap>) -> BTreeSet<String> {
    let header = api.get("veer-state").await.expect("the state ConfigMap");
    let data = header.data.unwrap_or_default();
    assert_eq!(data.get("format").map(String::as_str), Some("2"));
    let ids = data.get("shards").expect("shards").clone();
    ids.split(',')
        .map(|id| format!("veer-state-{id}"))
        .collect()
}

/// A shard ConfigMap as an interrupted write leaves it: labelled, named by no header.
async fn left_behind(api: &Api<ConfigMap>, name: &str) {
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"veer.io/state-shard": "true"}},
            "binaryData": {"records.json.gz": ""},
        }))
        .expect("ConfigMap"),
    )
    .await
    .expect("create an orphan shard");
}

pub async fn a_large_state_is_stored_in_shards(cluster: &TestCluster) {
    let ns = cluster.namespace("shards");
    cluster.delete_namespace(&ns).await;
    let client = cluster.client();
    let at = StateLocation {
        namespace: ns.clone(),
        name: "veer-state".into(),
    };
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);

    // Written whole: the header names every shard, each labelled and veer's.
    let mut s = large_state(6_000);
    let mut cache = Encoded::default();
    state::write(&client, &at, &s, &mut cache, None)
        .await
        .expect("write the state");
    let shards = shard_names(&api).await;
    assert!(shards.len() >= 3, "{shards:?}");
    assert_eq!(named(&api).await, shards);
    for name in &shards {
        let cm = api.get(name).await.expect("a shard");
        let labels = cm.metadata.labels.unwrap_or_default();
        assert_eq!(
            labels
                .get("app.kubernetes.io/managed-by")
                .map(String::as_str),
            Some("veer")
        );
    }
    assert_eq!(
        state::read(&client, &at).await.expect("read"),
        Some(s.clone())
    );

    // One record changed: one shard in, one out, the rest untouched.
    let mut put = s.objects[1234].clone();
    put.result = "updated".into();
    let change = StateChange {
        header: StateChange::header_of(&s),
        put: vec![put],
        remove: Vec::new(),
    };
    let (_, changed) = s.apply(change);
    state::write(&client, &at, &s, &mut cache, Some(&changed))
        .await
        .expect("write the change");
    let after = shard_names(&api).await;
    assert_eq!(after.difference(&shards).count(), 1, "{after:?}");
    assert_eq!(shards.difference(&after).count(), 1, "{after:?}");
    assert_eq!(named(&api).await, after);
    assert_eq!(
        state::read(&client, &at).await.expect("read"),
        Some(s.clone())
    );

    // A shard an interrupted write left behind goes at the next start's first write.
    let orphan = "veer-state-00000000deadbeef";
    left_behind(&api, orphan).await;
    s.updated_at = Some("2026-12-05T00:00:00Z".into());
    state::write(&client, &at, &s, &mut Encoded::default(), None)
        .await
        .expect("write after a restart");
    let now = shard_names(&api).await;
    assert!(!now.contains(orphan), "{now:?}");
    assert_eq!(named(&api).await, now);

    // The same when the start read the state first (the cache then knows every shard the
    // cluster holds, the left-behind one included).
    let orphan = "veer-state-00000000feedbeef";
    left_behind(&api, orphan).await;
    let mut cache = Encoded::default();
    let read = state::read_into(&client, &at, &mut cache)
        .await
        .expect("read");
    assert_eq!(read.as_ref(), Some(&s));
    s.updated_at = Some("2026-12-05T00:00:01Z".into());
    state::write(&client, &at, &s, &mut cache, None)
        .await
        .expect("write after a restart that read the state");
    let now = shard_names(&api).await;
    assert!(!now.contains(orphan), "{now:?}");
    assert_eq!(named(&api).await, now);
    assert_eq!(
        state::read(&client, &at).await.expect("read"),
        Some(s.clone())
    );

    // A missing shard is named, with what to do.
    let gone = now.iter().next().expect("a shard").clone();
    api.delete(&gone, &Default::default())
        .await
        .expect("delete a shard");
    let err = state::read(&client, &at)
        .await
        .expect_err("a shard is missing");
    let id = gone.trim_start_matches("veer-state-");
    assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(id) && text.contains("veer.io/state-shard=true"),
        "{text}"
    );
    cluster.delete_namespace(&ns).await;
}

pub async fn a_state_stored_whole_is_read_then_sharded(cluster: &TestCluster) {
    let ns = cluster.namespace("whole");
    cluster.delete_namespace(&ns).await;
    let client = cluster.client();
    let at = StateLocation {
        namespace: ns.clone(),
        name: "veer-state".into(),
    };
    // Stored as veers before shards stored it: one gzip stream, by veer's field manager.
    let s = large_state(4_000);
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(serde_json::to_string(&s).expect("JSON").as_bytes())
        .expect("gzip");
    let zipped = base64::engine::general_purpose::STANDARD.encode(gz.finish().expect("gzip"));
    let old = veer::sync::store::OwnConfigMap {
        namespace: &ns,
        name: "veer-state",
        labels: serde_json::Map::new(),
        data: json!({"format": "1"}),
        binary_data: json!({"state.json.gz": zipped}),
    };
    veer::sync::store::write(&client, &old)
        .await
        .expect("store a format 1 state");
    assert_eq!(
        state::read(&client, &at).await.expect("read"),
        Some(s.clone())
    );

    state::write(&client, &at, &s, &mut Encoded::default(), None)
        .await
        .expect("write it again");
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let header = api.get("veer-state").await.expect("the state ConfigMap");
    assert!(
        !header
            .binary_data
            .unwrap_or_default()
            .contains_key("state.json.gz"),
        "the whole-state key is dropped"
    );
    assert_eq!(named(&api).await, shard_names(&api).await);
    assert_eq!(state::read(&client, &at).await.expect("read"), Some(s));
    cluster.delete_namespace(&ns).await;
}
