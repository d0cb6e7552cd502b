//! The crash matrix: `veer sync` of a few hundred objects killed with SIGKILL at many points
//! (seeded random delays across the time a whole sync takes), then a commit that removes them
//! all, synced to the end. Nothing veer created may be left behind, nothing of anyone else's
//! may be deleted, and `veer diff` must be clean. On the embedded and on the real API server.
//!
//! `VEER_CRASH_SEED` replays a run (its seed is printed); `VEER_CRASH_KILLS` sets how many
//! kills per server (default 10).

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams};
use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};
use serde_json::json;

use support::backend::{Backend, TestCluster};
use support::repo::{Repo, show};

/// How many ConfigMaps each sync creates.
const OBJECTS: usize = 200;
const DEFAULT_SEED: u64 = 0x7665_6572;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded() {
    crash_matrix(&TestCluster::start(Backend::Embedded).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real() {
    crash_matrix(&TestCluster::start(Backend::Real).await).await;
}

fn objects_yaml(ns: &str) -> String {
    (0..OBJECTS)
        .map(|i| {
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i:03}\n  namespace: {ns}\ndata:\n  n: \"{i}\"\n"
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// Every ConfigMap in `ns`: name → (resourceVersion, carries veer's label).
async fn config_maps(cluster: &TestCluster, ns: &str) -> BTreeMap<String, (String, bool)> {
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), ns);
    api.list(&ListParams::default())
        .await
        .expect("list ConfigMaps")
        .items
        .into_iter()
        .filter(|cm| cm.metadata.name.as_deref() != Some("kube-root-ca.crt"))
        .map(|cm| {
            let managed = cm
                .metadata
                .labels
                .unwrap_or_default()
                .get("app.kubernetes.io/managed-by")
                .is_some_and(|v| v == "veer");
            (
                cm.metadata.name.unwrap_or_default(),
                (cm.metadata.resource_version.unwrap_or_default(), managed),
            )
        })
        .collect()
}

/// Someone else's ConfigMap, written with their own field manager.
async fn theirs(cluster: &TestCluster, ns: &str, name: &str) {
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), ns);
    api.patch(
        name,
        &PatchParams::apply("other-tool"),
        &Patch::Apply(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns},
            "data": {"owner": "other-tool"}
        })),
    )
    .await
    .expect("the other tool's apply");
}

async fn crash_matrix(cluster: &TestCluster) {
    let seed = std::env::var("VEER_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let kills: usize = std::env::var("VEER_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let server = cluster.backend.name();

    let ns = cluster.namespace("crash");
    cluster.delete_namespace(&ns).await;
    let state = cluster.namespace("crash-state");
    cluster.delete_namespace(&state).await;
    let repo = Repo::new(&state);
    repo.write(
        "ns.yaml",
        &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"),
    );
    repo.write("objects.yaml", &objects_yaml(&ns));
    repo.commit("objects");

    // A diff (fetch, read, plan: everything before the first write) and one whole sync, timed:
    // half the kills land anywhere in the sync, half in its writes.
    let started = Instant::now();
    repo.expect(cluster, &["diff"], 2).await;
    let planning = started.elapsed();
    let started = Instant::now();
    repo.expect(cluster, &["sync"], 0).await;
    let whole = started.elapsed();
    let writes_from = planning.min(whole).as_micros() as u64;
    theirs(cluster, &ns, "their-settings").await;
    eprintln!(
        "[{server}] crash matrix: seed {seed}; for {OBJECTS} objects a diff takes {planning:?}, a whole sync {whole:?}"
    );

    repo.remove("objects.yaml");
    repo.commit("remove");
    repo.expect(cluster, &["sync"], 0).await;
    for round in 0..kills {
        repo.write("objects.yaml", &objects_yaml(&ns));
        repo.commit(&format!("objects, round {round}"));
        let from = if round % 2 == 0 { 0 } else { writes_from };
        let delay = Duration::from_micros(rng.random_range(from..=whole.as_micros() as u64));
        let mut child = repo
            .command(cluster, &["sync"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("veer starts");
        let finished = tokio::time::timeout(delay, child.wait()).await.is_ok();
        if !finished {
            child.start_kill().expect("SIGKILL");
            child.wait().await.expect("veer is reaped");
        }
        let after_kill = config_maps(cluster, &ns).await;
        let created = after_kill.values().filter(|(_, m)| *m).count();
        eprintln!(
            "[{server}] round {round}: killed after {delay:?} (finished first: {finished}), {created} of {OBJECTS} created"
        );
        // Someone else takes a name veer meant to create but had not yet: it is theirs.
        let taken = (0..OBJECTS)
            .map(|i| format!("cm-{i:03}"))
            .find(|name| !after_kill.contains_key(name));
        if let Some(name) = &taken {
            theirs(cluster, &ns, name).await;
        }
        let others: BTreeMap<String, String> = config_maps(cluster, &ns)
            .await
            .into_iter()
            .filter(|(_, (_, managed))| !managed)
            .map(|(name, (rv, _))| (name, rv))
            .collect();

        // Restarted with a commit that removes them all.
        repo.remove("objects.yaml");
        repo.commit(&format!("remove after the kill, round {round}"));
        let out = repo.veer(cluster, &["sync"]).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "[{server}] round {round} (seed {seed}, kill at {delay:?}): the sync after the kill failed:\n{}",
            show(&out)
        );
        let left = config_maps(cluster, &ns).await;
        let orphans: Vec<&String> = left
            .iter()
            .filter(|(_, (_, m))| *m)
            .map(|(n, _)| n)
            .collect();
        assert!(
            orphans.is_empty(),
            "[{server}] round {round} (seed {seed}, kill at {delay:?}): orphaned: {orphans:?}"
        );
        let kept: BTreeMap<String, String> =
            left.into_iter().map(|(name, (rv, _))| (name, rv)).collect();
        assert_eq!(
            kept, others,
            "[{server}] round {round} (seed {seed}): someone else's objects were changed or deleted"
        );
        repo.expect(cluster, &["diff"], 0).await;
        if let Some(name) = taken {
            let api: Api<ConfigMap> = Api::namespaced(cluster.client(), &ns);
            api.delete(&name, &Default::default())
                .await
                .expect("the test removes the taken name");
        }
    }
    cluster.delete_namespace(&ns).await;
    cluster.delete_namespace(&state).await;
}
