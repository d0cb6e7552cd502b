//! The scenarios of the conformance matrix. Each takes a [`TestCluster`] and asserts the same
//! things whichever server it is; a scenario keeps to namespaces of its own
//! ([`TestCluster::namespace`]) because the real server is shared by the whole run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use veer::leader::{LeaderConfig, LeaderElection};

use crate::support::backend::TestCluster;
use crate::support::repo::{Repo, copy_tree, namespaces_in, show};

pub(crate) fn namespace_yaml(name: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n")
}

pub(crate) fn config_map_yaml(ns: &str, name: &str, mode: &str, annotations: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\n{annotations}data:\n  mode: {mode}\n"
    )
}

fn istio(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("networking.istio.io", "v1", kind),
        plural,
    )
}

async fn get_istio(cluster: &TestCluster, ns: &str, kind: &str, plural: &str, name: &str) -> Value {
    let api: Api<DynamicObject> = Api::namespaced_with(cluster.client(), ns, &istio(kind, plural));
    let object = api
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("[{}] get {kind} {ns}/{name}: {e}", cluster.backend.name()));
    serde_json::to_value(object).expect("an object is JSON")
}

async fn mode_of(cluster: &TestCluster, ns: &str, name: &str) -> Option<String> {
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), ns);
    api.get_opt(name)
        .await
        .expect("get ConfigMap")
        .and_then(|cm| cm.data)
        .and_then(|d| d.get("mode").cloned())
}

async fn namespace_exists(cluster: &TestCluster, ns: &str) -> bool {
    let api: Api<Namespace> = Api::all(cluster.client());
    api.get_opt(ns).await.expect("get Namespace").is_some()
}

/// Namespaces a scenario uses start absent (a real server may keep them from an earlier run).
async fn fresh(cluster: &TestCluster, namespaces: &[&str]) {
    for ns in namespaces {
        cluster.delete_namespace(ns).await;
    }
}

pub async fn every_example_syncs_into_an_empty_cluster_then_diffs_clean(cluster: &TestCluster) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut examples: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("examples/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    examples.sort();
    assert!(examples.len() >= 8, "examples/ has its folders");
    for example in examples {
        let name = example.file_name().unwrap().to_string_lossy().to_string();
        let state = cluster.namespace(&format!("examples-state-{name}"));
        let namespaces = namespaces_in(&example);
        let ns_refs: Vec<&str> = namespaces.iter().map(String::as_str).collect();
        fresh(cluster, &ns_refs).await;
        fresh(cluster, &[&state]).await;
        let repo = Repo::new(&state);
        copy_tree(&example, &repo.remote.work);
        repo.commit(&format!("example {name}"));
        let synced = repo.expect(cluster, &["sync"], 0).await;
        let diff = repo.veer(cluster, &["diff"]).await;
        assert_eq!(
            diff.status.code(),
            Some(0),
            "[{}] example {name}: `veer diff` right after `veer sync` must be empty\nsync said:\n{synced}\ndiff said:\n{}",
            cluster.backend.name(),
            show(&diff)
        );
        // A second sync finds nothing to do (no field is healed again and again).
        let again = repo.expect(cluster, &["sync"], 0).await;
        assert!(
            !again.contains("updated") || again.contains("0 updated"),
            "[{}] example {name}: a second sync changed something:\n{again}",
            cluster.backend.name()
        );
        for ns in ns_refs.iter().chain([&state.as_str()]) {
            cluster.delete_namespace(ns).await;
        }
    }
}

pub async fn numbers_are_compared_by_value(cluster: &TestCluster) {
    let ns = cluster.namespace("numbers");
    fresh(cluster, &[&ns]).await;
    let repo = Repo::new(&ns);
    repo.write("ns.yaml", &namespace_yaml(&ns));
    repo.write(
        "vs.yaml",
        &format!(
            "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: httpbin
  namespace: {ns}
spec:
  hosts: [httpbin]
  http:
  - fault:
      delay: {{fixedDelay: 2s, percentage: {{value: 10.0}}}}
    mirror: {{host: httpbin, subset: v2}}
    mirrorPercentage: {{value: 25.0}}
    route:
    - destination: {{host: httpbin, subset: v1}}
      weight: 100
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: httpbin
  namespace: {ns}
spec:
  host: httpbin
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
"
        ),
    );
    repo.commit("numbers written with a fraction");
    repo.expect(cluster, &["sync"], 0).await;
    let live = get_istio(cluster, &ns, "VirtualService", "virtualservices", "httpbin").await;
    // Both servers store and serve the canonical number.
    assert_eq!(
        live["spec"]["http"][0]["mirrorPercentage"]["value"],
        json!(25)
    );
    assert_eq!(
        live["spec"]["http"][0]["fault"]["delay"]["percentage"]["value"],
        json!(10)
    );
    repo.expect(cluster, &["diff"], 0).await;
    cluster.delete_namespace(&ns).await;
}

pub async fn keyed_lists_are_owned_per_entry(cluster: &TestCluster) {
    let ns = cluster.namespace("keyed");
    fresh(cluster, &[&ns]).await;
    let repo = Repo::new(&ns);
    let entry = |ports: &str| {
        format!(
            "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: payments
  namespace: {ns}
spec:
  hosts: [api.payments.example]
  location: MESH_EXTERNAL
  resolution: DNS
  ports:
{ports}"
        )
    };
    repo.write("ns.yaml", &namespace_yaml(&ns));
    repo.write(
        "se.yaml",
        &entry("  - {number: 80, name: http, protocol: HTTP}\n  - {number: 443, name: tls, protocol: TLS}\n"),
    );
    repo.commit("two ports");
    repo.expect(cluster, &["sync"], 0).await;
    // Istio's CRD declares the list keyed by name: both servers record veer's ownership per
    // entry (v1.20 included).
    let live = get_istio(cluster, &ns, "ServiceEntry", "serviceentries", "payments").await;
    let owned = live["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .find(|e| e["manager"] == "veer")
        .map(|e| e["fieldsV1"]["f:spec"]["f:ports"].clone())
        .expect("veer's managedFields entry");
    for name in ["http", "tls"] {
        assert!(
            owned.get(format!("k:{{\"name\":\"{name}\"}}")).is_some(),
            "[{}] port {name} is owned per entry: {owned}",
            cluster.backend.name()
        );
    }
    repo.expect(cluster, &["diff"], 0).await;
    // Git drops a port: the sync removes it and the diff is clean again.
    repo.write(
        "se.yaml",
        &entry("  - {number: 443, name: tls, protocol: TLS}\n"),
    );
    repo.commit("one port");
    repo.expect(cluster, &["sync"], 0).await;
    let live = get_istio(cluster, &ns, "ServiceEntry", "serviceentries", "payments").await;
    assert_eq!(
        live["spec"]["ports"],
        json!([{"number": 443, "name": "tls", "protocol": "TLS"}])
    );
    repo.expect(cluster, &["diff"], 0).await;
    cluster.delete_namespace(&ns).await;
}

pub async fn drift_is_reported_then_healed(cluster: &TestCluster) {
    let ns = cluster.namespace("drift");
    fresh(cluster, &[&ns]).await;
    let repo = Repo::new(&ns);
    repo.write("ns.yaml", &namespace_yaml(&ns));
    repo.write("cm.yaml", &config_map_yaml(&ns, "settings", "safe", ""));
    repo.commit("settings");
    repo.expect(cluster, &["sync"], 0).await;
    // Someone edits the field by hand (an update, as `kubectl edit` does).
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), &ns);
    api.patch(
        "settings",
        &PatchParams {
            field_manager: Some("kubectl-edit".into()),
            ..PatchParams::default()
        },
        &Patch::Merge(json!({"data": {"mode": "risky"}})),
    )
    .await
    .expect("the hand edit");
    let diff = repo.expect(cluster, &["diff"], 2).await;
    assert!(
        diff.contains("risky"),
        "[{}] the diff shows the edit:\n{diff}",
        cluster.backend.name()
    );
    repo.expect(cluster, &["sync"], 0).await;
    assert_eq!(
        mode_of(cluster, &ns, "settings").await.as_deref(),
        Some("safe")
    );
    repo.expect(cluster, &["diff"], 0).await;
    cluster.delete_namespace(&ns).await;
}

pub async fn conflicts_with_another_manager_then_force(cluster: &TestCluster) {
    let ns = cluster.namespace("conflict");
    fresh(cluster, &[&ns]).await;
    let repo = Repo::new(&ns);
    repo.write("ns.yaml", &namespace_yaml(&ns));
    repo.write("cm.yaml", &config_map_yaml(&ns, "settings", "a", ""));
    repo.commit("a");
    repo.expect(cluster, &["sync"], 0).await;
    // Another tool takes the field with its own server-side apply.
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), &ns);
    api.patch(
        "settings",
        &PatchParams::apply("other-tool").force(),
        &Patch::Apply(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": ns},
            "data": {"mode": "b"}
        })),
    )
    .await
    .expect("the other tool's apply");
    // Git changes the same field: the server's dry run finds the conflict, so the revision
    // is refused whole (exit 1), naming the other manager; nothing is taken.
    repo.write("cm.yaml", &config_map_yaml(&ns, "settings", "c", ""));
    repo.commit("c");
    let out = repo.expect(cluster, &["sync"], 1).await;
    assert!(
        out.contains("error[server-conflict] cm.yaml:") && out.contains("other-tool"),
        "[{}] the conflict names the manager:\n{out}",
        cluster.backend.name()
    );
    assert_eq!(
        mode_of(cluster, &ns, "settings").await.as_deref(),
        Some("b")
    );
    repo.expect(cluster, &["sync", "--force-conflicts"], 0)
        .await;
    assert_eq!(
        mode_of(cluster, &ns, "settings").await.as_deref(),
        Some("c")
    );
    repo.expect(cluster, &["diff"], 0).await;
    cluster.delete_namespace(&ns).await;
}

pub async fn server_dry_run_writes_nothing(cluster: &TestCluster) {
    let ns = cluster.namespace("dryrun");
    fresh(cluster, &[&ns]).await;
    // The namespace exists already: a dry run cannot create objects in one it would create.
    let namespaces: Api<Namespace> = Api::all(cluster.client());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).expect("a Namespace"),
        )
        .await
        .expect("create the namespace");
    let repo = Repo::new(&ns);
    repo.write("cm.yaml", &config_map_yaml(&ns, "settings", "a", ""));
    repo.write(
        "se.yaml",
        &format!(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: api\n  namespace: {ns}\nspec:\n  hosts: [api.example]\n  ports:\n  - {{number: 443, name: tls, protocol: TLS}}\n  resolution: DNS\n"
        ),
    );
    repo.commit("two objects");
    repo.expect(cluster, &["sync", "--dry-run=server"], 2).await;
    assert_eq!(mode_of(cluster, &ns, "settings").await, None);
    let entries: Api<DynamicObject> = Api::namespaced_with(
        cluster.client(),
        &ns,
        &istio("ServiceEntry", "serviceentries"),
    );
    assert!(entries.get_opt("api").await.expect("get").is_none());
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client(), &ns);
    assert!(
        maps.get_opt("veer-state").await.expect("get").is_none(),
        "a dry run records no state"
    );
    cluster.delete_namespace(&ns).await;
}

pub async fn prune_takes_only_what_veer_applied(cluster: &TestCluster) {
    let ns = cluster.namespace("prune");
    fresh(cluster, &[&ns]).await;
    let repo = Repo::new(&ns);
    repo.write("ns.yaml", &namespace_yaml(&ns));
    repo.write("a.yaml", &config_map_yaml(&ns, "a", "x", ""));
    repo.write(
        "keep.yaml",
        &config_map_yaml(
            &ns,
            "keep",
            "x",
            "  annotations:\n    veer.io/prune: \"false\"\n",
        ),
    );
    repo.commit("a and keep");
    repo.expect(cluster, &["sync"], 0).await;
    // Someone else's object in the same namespace.
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), &ns);
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "theirs"}, "data": {"mode": "x"}}))
            .expect("a ConfigMap"),
    )
    .await
    .expect("their ConfigMap");
    repo.remove("a.yaml");
    repo.remove("keep.yaml");
    repo.commit("a and keep leave git");
    repo.expect(cluster, &["sync"], 0).await;
    assert_eq!(
        mode_of(cluster, &ns, "a").await,
        None,
        "veer's own object is pruned"
    );
    assert!(
        mode_of(cluster, &ns, "keep").await.is_some(),
        "veer.io/prune: \"false\" keeps it"
    );
    assert!(
        mode_of(cluster, &ns, "theirs").await.is_some(),
        "never someone else's"
    );
    cluster.delete_namespace(&ns).await;
}

pub async fn namespace_is_never_pruned_while_objects_remain(cluster: &TestCluster) {
    let ns = cluster.namespace("nsprune");
    let state = cluster.namespace("nsprune-state");
    fresh(cluster, &[&ns, &state]).await;
    let repo = Repo::new(&state);
    repo.write("ns.yaml", &namespace_yaml(&ns));
    repo.write("cm.yaml", &config_map_yaml(&ns, "settings", "x", ""));
    repo.commit("namespace and settings");
    repo.expect(cluster, &["sync"], 0).await;
    // The Namespace leaves git, a manifest inside it stays: the namespace is kept.
    repo.remove("ns.yaml");
    repo.commit("namespace.yaml removed");
    let out = repo.veer(cluster, &["sync"]).await;
    assert!(
        namespace_exists(cluster, &ns).await,
        "[{}] kept:\n{}",
        cluster.backend.name(),
        show(&out)
    );
    assert!(mode_of(cluster, &ns, "settings").await.is_some());
    // Git's object goes too, but someone else's lives there: still kept.
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), &ns);
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "theirs"}, "data": {"mode": "x"}}))
            .expect("a ConfigMap"),
    )
    .await
    .expect("their ConfigMap");
    repo.remove("cm.yaml");
    repo.commit("settings removed");
    let out = repo.veer(cluster, &["sync"]).await;
    assert!(
        namespace_exists(cluster, &ns).await,
        "[{}] kept:\n{}",
        cluster.backend.name(),
        show(&out)
    );
    assert!(
        mode_of(cluster, &ns, "theirs").await.is_some(),
        "their object survives"
    );
    assert_eq!(
        mode_of(cluster, &ns, "settings").await,
        None,
        "veer's own object is pruned"
    );
    cluster.delete_namespace(&ns).await;
    cluster.delete_namespace(&state).await;
}

pub async fn state_config_map_round_trips(cluster: &TestCluster) {
    let ns = cluster.namespace("state");
    let state = cluster.namespace("state-store");
    fresh(cluster, &[&ns, &state]).await;
    let repo = Repo::new(&state);
    repo.write("ns.yaml", &namespace_yaml(&ns));
    repo.write("cm.yaml", &config_map_yaml(&ns, "settings", "x", ""));
    let commit = repo.commit("settings");
    repo.expect(cluster, &["sync"], 0).await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), &state);
    let cm = api.get("veer-state").await.expect("the state ConfigMap");
    let labels = cm.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("veer")
    );
    let data = cm.data.clone().unwrap_or_default();
    assert_eq!(data.get("format").map(String::as_str), Some("1"));
    let doc: Value =
        serde_json::from_str(data.get("state.json").expect("state.json")).expect("JSON");
    assert_eq!(doc["revision"]["commit"], json!(commit));
    let names: Vec<&str> = doc["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .filter(|o| o["hash"].is_string())
        .filter_map(|o| o["name"].as_str())
        .collect();
    assert!(
        names.contains(&"settings") && names.contains(&ns.as_str()),
        "inventory: {names:?}"
    );
    let status = repo
        .expect(cluster, &["status", "--output", "json"], 0)
        .await;
    assert!(
        status.contains(&commit),
        "veer status reads the same state:\n{status}"
    );
    cluster.delete_namespace(&ns).await;
    cluster.delete_namespace(&state).await;
}

pub async fn rollout_weights_written_and_read_back(cluster: &TestCluster) {
    crate::known::rollout_weights(cluster).await;
}

pub async fn leader_lease_is_taken_and_released(cluster: &TestCluster) {
    let ns = cluster.namespace("lease");
    fresh(cluster, &[&ns]).await;
    let namespaces: Api<Namespace> = Api::all(cluster.client());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).expect("a Namespace"),
        )
        .await
        .expect("create the namespace");
    let config = LeaderConfig {
        namespace: ns.clone(),
        name: "veer-leader".into(),
        identity: "veer-a".into(),
        duration: Duration::from_secs(3),
        grace: Duration::from_secs(1),
    };
    let mut election = LeaderElection::start(cluster.client(), &config)
        .await
        .expect("the election starts");
    tokio::time::timeout(Duration::from_secs(15), election.acquired())
        .await
        .expect("acquired in time")
        .expect("acquired");
    let leases: Api<Lease> = Api::namespaced(cluster.client(), &ns);
    let holder = leases
        .get("veer-leader")
        .await
        .expect("the Lease")
        .spec
        .and_then(|s| s.holder_identity);
    assert_eq!(holder.as_deref(), Some("veer-a"));
    election.release().await;
    let holder = leases
        .get("veer-leader")
        .await
        .expect("the Lease")
        .spec
        .and_then(|s| s.holder_identity);
    assert_ne!(holder.as_deref(), Some("veer-a"), "released");
    cluster.delete_namespace(&ns).await;
}
