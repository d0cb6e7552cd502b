//! What a real server's version does differently, named and asserted (never skipped), and the
//! scenarios that need parts only one server has (a Deployment status written by hand on a
//! server without a controller for it).
//!
//! Differences between the embedded server (which answers as a current Kubernetes does) and
//! kube-apiserver v1.20, the real one `make test` builds:
//! - `service_port_without_protocol`: v1.20 refuses server-side apply of a Service whose ports
//!   omit `protocol` (HTTP 500, "failed to create typed patch object"); current servers accept
//!   it. veer fails that object at once, with the fix, and does not retry it.
//!
//! Checked and found the same (so asserted in the matrix, not here): v1.20 records a CRD list
//! declared `x-kubernetes-list-type: map` per entry (`k:{"name":…}`), as current servers do.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use crate::support::backend::{Backend, TestCluster};
use crate::support::repo::{Repo, show};

/// Does this server answer as v1.20 does?
async fn is_v1_20(cluster: &TestCluster) -> bool {
    cluster.server_version().await.starts_with("v1.20.")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_port_without_protocol_embedded() {
    service_port_without_protocol(&TestCluster::start(Backend::Embedded).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_port_without_protocol_real() {
    service_port_without_protocol(&TestCluster::start(Backend::Real).await).await;
}

async fn service_port_without_protocol(cluster: &TestCluster) {
    let ns = cluster.namespace("protocol");
    cluster.delete_namespace(&ns).await;
    let repo = Repo::new(&ns);
    repo.write(
        "ns.yaml",
        &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"),
    );
    repo.write(
        "svc.yaml",
        &format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: reviews\n  namespace: {ns}\nspec:\n  selector: {{app: reviews}}\n  ports:\n  - {{name: http, port: 9080}}\n"
        ),
    );
    repo.commit("a Service port without protocol");
    let started = Instant::now();
    let out = repo.veer(cluster, &["sync"]).await;
    let took = started.elapsed();
    let text = show(&out);
    if is_v1_20(cluster).await {
        // Refused by the dry run before any write: the revision is rejected (exit 1).
        assert_eq!(out.status.code(), Some(1), "v1.20 refuses it:\n{text}");
        assert!(
            text.contains("add protocol: TCP"),
            "the failure says what to add:\n{text}"
        );
        assert!(
            text.matches("failed with status 500").count() <= 1,
            "tried once, not retried as an outage:\n{text}"
        );
        assert!(
            took < Duration::from_secs(20),
            "a permanent answer is not retried as an outage ({took:?}):\n{text}"
        );
    } else {
        assert_eq!(
            out.status.code(),
            Some(0),
            "current servers accept it:\n{text}"
        );
    }
    cluster.delete_namespace(&ns).await;
}

fn deployment(ns: &str, version: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: reviews-{version}
  namespace: {ns}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: reviews, version: {version}}}
  template:
    metadata:
      labels: {{app: reviews, version: {version}}}
    spec:
      containers:
      - name: reviews
        image: example/reviews:{version}
"
    )
}

fn traffic(ns: &str, v1: u32, v2: u32) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: {ns}
spec:
  host: reviews
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: {ns}
  annotations:
    veer.io/rollout-policy: quick
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {{host: reviews, subset: v1}}
      weight: {v1}
    - destination: {{host: reviews, subset: v2}}
      weight: {v2}
"
    )
}

const POLICY: &str = "apiVersion: veer.io/v1alpha1
kind: RolloutPolicy
metadata:
  name: quick
spec:
  interval: 2s
  threshold: 2
  stepWeights: [50]
  progressDeadline: 30s
";

/// A server with no Deployment controller (the real one here) never reports a Deployment
/// available: write the status a controller would.
pub(crate) async fn mark_available(cluster: &TestCluster, ns: &str, name: &str) {
    if !cluster.is_real() {
        return;
    }
    let api: Api<Deployment> = Api::namespaced(cluster.client(), ns);
    let deadline = Instant::now() + Duration::from_secs(30);
    let generation = loop {
        if let Some(d) = api.get_opt(name).await.expect("get Deployment") {
            break d.metadata.generation.unwrap_or(1);
        }
        assert!(
            Instant::now() < deadline,
            "Deployment {ns}/{name} never created"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {
            "observedGeneration": generation, "replicas": 1, "updatedReplicas": 1,
            "readyReplicas": 1, "availableReplicas": 1,
            "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                            "lastUpdateTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}]
        }})),
    )
    .await
    .expect("status written");
}

async fn weights(cluster: &TestCluster, ns: &str) -> Option<(u64, u64)> {
    let ar = kube::core::ApiResource::from_gvk_with_plural(
        &kube::core::GroupVersionKind::gvk("networking.istio.io", "v1", "VirtualService"),
        "virtualservices",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(cluster.client(), ns, &ar);
    let vs: Value = serde_json::to_value(api.get_opt("reviews").await.ok()??).ok()?;
    let route = &vs["spec"]["http"][0]["route"];
    Some((route[0]["weight"].as_u64()?, route[1]["weight"].as_u64()?))
}

/// A commit moves 100 % to v2: veer writes the 50 % step, reads it back, then promotes.
pub async fn rollout_weights(cluster: &TestCluster) {
    let ns = cluster.namespace("rollout");
    let state = cluster.namespace("rollout-state");
    cluster.delete_namespace(&ns).await;
    cluster.delete_namespace(&state).await;
    let repo = Repo::new(&state);
    repo.write(
        "ns.yaml",
        &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"),
    );
    repo.write("v1.yaml", &deployment(&ns, "v1"));
    repo.write("v2.yaml", &deployment(&ns, "v2"));
    repo.write("policy.yaml", POLICY);
    repo.write("traffic.yaml", &traffic(&ns, 100, 0));
    repo.commit("v1 takes all traffic");
    repo.expect(cluster, &["sync"], 0).await;
    mark_available(cluster, &ns, "reviews-v1").await;
    mark_available(cluster, &ns, "reviews-v2").await;
    repo.write("traffic.yaml", &traffic(&ns, 0, 100));
    repo.commit("v2 takes all traffic");
    let mut run = tokio::process::Command::new(env!("CARGO_BIN_EXE_veer"));
    let cache = tempfile::tempdir().expect("cache dir");
    run.args(["run", "--interval", "1s", "--repo"])
        .arg(&repo.remote.bare)
        .arg("--cache-dir")
        .arg(cache.path())
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .args(["--state-namespace", &state])
        .env_remove("VEER_CONFIG")
        .env_remove("KUBECONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut child = run.spawn().expect("veer run starts");
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(w) = weights(cluster, &ns).await
            && seen.last() != Some(&w)
        {
            seen.push(w);
            if w == (0, 100) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        seen.contains(&(50, 50)) && seen.last() == Some(&(0, 100)),
        "[{}] the step was written and read, then the promotion: {seen:?}",
        cluster.backend.name()
    );
    assert!(
        !seen.contains(&(0, 100))
            || seen.iter().position(|w| *w == (50, 50)) < seen.iter().position(|w| *w == (0, 100)),
        "the step comes before the promotion: {seen:?}"
    );
    // The last weights are written before the phase that records them: wait for the phase.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = repo
            .expect(
                cluster,
                &[
                    "rollout",
                    "status",
                    &format!("{ns}/reviews"),
                    "--output",
                    "json",
                ],
                0,
            )
            .await;
        if status.contains("\"phase\": \"succeeded\"") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "veer rollout status reads the outcome:\n{status}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Only now: veer records the phase in the pass after the one that wrote the weights.
    let _ = child.kill().await;
    cluster.delete_namespace(&ns).await;
    cluster.delete_namespace(&state).await;
}
