//! Destination hosts looked up in the live cluster (istioctl's IST0101), through the real
//! binary, against the embedded API server and a real kube-apiserver (`VEER_TEST_KUBECONFIG`;
//! `scripts/real-apiserver.sh run cargo test --test validate_cluster` starts one):
//! `veer validate --cluster`, and the controller (`veer run --once`), which consults the
//! cluster whenever it loads a new revision. A VirtualService routing to a host neither the
//! revision nor the cluster has gets a warning naming the cluster's registry; one routing to a
//! Service or ServiceEntry that exists only in the cluster gets nothing.

mod support;

use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

use support::backend::TestCluster;
use support::repo::Repo;

/// Routes to the cluster's Service `ratings` and ServiceEntry host `api.example.com`.
fn to_cluster(ns: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: to-cluster
  namespace: {ns}
spec:
  hosts: [ratings]
  http:
  - match:
    - uri: {{prefix: /api}}
    route:
    - destination: {{host: api.example.com}}
  - route:
    - destination: {{host: ratings}}
"
    )
}

/// Routes to a host that exists nowhere.
fn to_nowhere(ns: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: to-nowhere
  namespace: {ns}
spec:
  hosts: [nowhere]
  http:
  - route:
    - destination: {{host: nowhere}}
"
    )
}

/// The cluster's own objects, which the repository does not hold.
async fn cluster_objects(cluster: &TestCluster, ns: &str) {
    let post = PostParams::default();
    let namespaces: Api<Namespace> = Api::all(cluster.client());
    namespaces
        .create(
            &post,
            &serde_json::from_value(json!({"metadata": {"name": ns}})).expect("Namespace"),
        )
        .await
        .expect("create the namespace");
    let services: Api<Service> = Api::namespaced(cluster.client(), ns);
    services
        .create(
            &post,
            &serde_json::from_value(json!({
                "metadata": {"name": "ratings", "namespace": ns},
                "spec": {"ports": [{"name": "http", "port": 9080}], "selector": {"app": "ratings"}},
            }))
            .expect("Service"),
        )
        .await
        .expect("create the Service");
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("networking.istio.io", "v1", "ServiceEntry"),
        "serviceentries",
    );
    let entries: Api<DynamicObject> = Api::namespaced_with(cluster.client(), ns, &resource);
    entries
        .create(
            &post,
            &serde_json::from_value(json!({
                "apiVersion": "networking.istio.io/v1",
                "kind": "ServiceEntry",
                "metadata": {"name": "external-api", "namespace": ns},
                "spec": {
                    "hosts": ["api.example.com"],
                    "location": "MESH_EXTERNAL",
                    "resolution": "DNS",
                    "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}],
                },
            }))
            .expect("ServiceEntry"),
        )
        .await
        .expect("create the ServiceEntry");
}

/// The lines of `text` that report destination hosts or ports.
fn destination_findings(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.contains("[vs-destination"))
        .collect()
}

async fn destination_hosts_are_looked_up_in_the_cluster(cluster: &TestCluster) {
    let backend = cluster.backend.name();
    let ns = cluster.namespace("validate-cluster");
    cluster.delete_namespace(&ns).await;
    cluster_objects(cluster, &ns).await;
    let repo = Repo::new(&ns);
    repo.write("to-cluster.yaml", &to_cluster(&ns));
    repo.write("to-nowhere.yaml", &to_nowhere(&ns));
    repo.commit("routes");
    let dir = repo.remote.work.display().to_string();

    // Offline, the revision holds no Service of the namespace: nothing is said.
    let offline = repo.expect(cluster, &["validate", &dir], 0).await;
    assert!(
        destination_findings(&offline).is_empty() && !offline.contains("cluster:"),
        "[{backend}] offline validation spoke of hosts or a cluster:\n{offline}"
    );

    // With the cluster: the missing host is a warning (exit 0) naming where veer looked;
    // the hosts only the cluster has are found.
    let text = repo
        .expect(cluster, &["validate", &dir, "--cluster"], 0)
        .await;
    assert!(
        text.contains("ServiceEntr") && text.contains("cluster: "),
        "[{backend}] no line saying what was listed:\n{text}"
    );
    let findings = destination_findings(&text);
    assert_eq!(findings.len(), 1, "[{backend}]\n{text}");
    assert!(
        findings[0].starts_with("warning[vs-destination-host IST0101]")
            && findings[0].contains("`nowhere`")
            && findings[0].contains("nor the cluster's"),
        "[{backend}] {}",
        findings[0]
    );

    // `--strict` makes it an error, like any warning.
    let strict = repo
        .expect(cluster, &["validate", &dir, "--cluster", "--strict"], 1)
        .await;
    assert!(
        strict.contains("error[vs-destination-host IST0101]"),
        "[{backend}]\n{strict}"
    );

    // The controller consults the cluster when it loads a revision: with the check made an
    // error in veer.yaml the revision is rejected, naming the cluster's registry.
    let config = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(
        config.path(),
        "validation:\n  severity:\n    vs-destination-host: error\n",
    )
    .expect("write veer.yaml");
    let config = config.path().display().to_string();
    let rejected = repo
        .expect(cluster, &["run", "--once", "--config", &config], 1)
        .await;
    assert!(
        rejected.contains("vs-destination-host") && rejected.contains("nor the cluster's"),
        "[{backend}] the controller did not report the missing host:\n{rejected}"
    );
    // Without the route to nowhere, the revision is applied: the cluster's hosts are found.
    repo.remove("to-nowhere.yaml");
    repo.commit("no route to nowhere");
    let synced = repo
        .expect(cluster, &["run", "--once", "--config", &config], 0)
        .await;
    assert!(
        !synced.contains("vs-destination"),
        "[{backend}] a host of the cluster was reported:\n{synced}"
    );
    cluster.delete_namespace(&ns).await;
}

/// `--cluster` asks for the cluster: when it does not answer, validation fails (exit 3)
/// instead of quietly validating offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_cluster_fails_when_the_cluster_does_not_answer() {
    // A loopback port nothing listens on any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let kubeconfig = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(
        kubeconfig.path(),
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: gone\n  context:\n    cluster: gone\n    user: gone\ncurrent-context: gone\nusers:\n- name: gone\n  user: {{}}\n"
        ),
    )
    .expect("write the kubeconfig");
    let repo = Repo::new("veer");
    repo.write("to-nowhere.yaml", &to_nowhere("shop"));
    let dir = repo.remote.work.display().to_string();
    let out = repo
        .veer_as(kubeconfig.path(), &["validate", &dir, "--cluster"])
        .await;
    let text = support::repo::show(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("cannot consult the cluster"), "{text}");
}

mod destination_hosts_are_looked_up_in_the_cluster {
    use crate::support::backend::{Backend, TestCluster};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded() {
        crate::destination_hosts_are_looked_up_in_the_cluster(
            &TestCluster::start(Backend::Embedded).await,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn real() {
        crate::destination_hosts_are_looked_up_in_the_cluster(
            &TestCluster::start(Backend::Real).await,
        )
        .await;
    }
}
