//! The chart's RBAC, as shipped, on a real kube-apiserver (the embedded server does not
//! authorise): render the chart with the real `helm`, apply its ServiceAccount and roles, and
//! run `veer` with that ServiceAccount's token. Every example syncs and then diffs clean with
//! nothing more granted; taking away any one verb makes veer fail, naming that verb.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use support::backend::TestCluster;
#[path = "support/helm.rs"]
mod helm;
use support::repo::{Repo, copy_tree, namespaces_in, show};

const RELEASE_NAMESPACE: &str = "veer-system";

/// Both tests grant and take away the same ServiceAccount's roles: one at a time.
static ROLES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/veer")
}

/// The RBAC objects (and the ServiceAccount) the chart renders with these values.
fn rbac_documents(values: &[Value]) -> Vec<Value> {
    let mut all = vec![json!({"config": {"source": {"url": "https://git.example/mesh.git"}}})];
    all.extend(values.iter().cloned());
    let manifest = helm::template(&chart(), "veer", RELEASE_NAMESPACE, &all)
        .unwrap_or_else(|e| panic!("helm renders the chart: {e}"));
    helm::documents(&manifest)
        .iter()
        .map(|d| helm::yaml(d))
        .filter(|d| {
            matches!(
                d["kind"].as_str(),
                Some(
                    "ServiceAccount"
                        | "ClusterRole"
                        | "ClusterRoleBinding"
                        | "Role"
                        | "RoleBinding"
                )
            )
        })
        .collect()
}

fn resource_of(doc: &Value) -> (ApiResource, bool) {
    let kind = doc["kind"].as_str().expect("kind");
    let (group, plural, namespaced) = match kind {
        "ServiceAccount" => ("", "serviceaccounts", true),
        "ClusterRole" => ("rbac.authorization.k8s.io", "clusterroles", false),
        "ClusterRoleBinding" => ("rbac.authorization.k8s.io", "clusterrolebindings", false),
        "Role" => ("rbac.authorization.k8s.io", "roles", true),
        "RoleBinding" => ("rbac.authorization.k8s.io", "rolebindings", true),
        other => panic!("not an RBAC kind: {other}"),
    };
    (
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", kind), plural),
        namespaced,
    )
}

/// Apply (as the admin) what the chart renders, replacing rules of an earlier apply.
async fn apply_rbac(cluster: &TestCluster, docs: &[Value]) {
    ensure_namespace(cluster, RELEASE_NAMESPACE).await;
    for doc in docs {
        let (ar, namespaced) = resource_of(doc);
        let name = doc["metadata"]["name"].as_str().expect("name");
        let api: Api<DynamicObject> = if namespaced {
            let ns = doc["metadata"]["namespace"]
                .as_str()
                .unwrap_or(RELEASE_NAMESPACE);
            ensure_namespace(cluster, ns).await;
            Api::namespaced_with(cluster.client(), ns, &ar)
        } else {
            Api::all_with(cluster.client(), &ar)
        };
        api.patch(
            name,
            &PatchParams::apply("veer-tests").force(),
            &Patch::Apply(doc),
        )
        .await
        .unwrap_or_else(|e| panic!("applying {} {name}: {e}", doc["kind"]));
    }
}

async fn ensure_namespace(cluster: &TestCluster, name: &str) {
    let api: Api<Namespace> = Api::all(cluster.client());
    if api.get_opt(name).await.expect("get namespace").is_none() {
        api.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": name}})).expect("a Namespace"),
        )
        .await
        .expect("create namespace");
    }
}

/// A kubeconfig that authenticates as the chart's ServiceAccount (a TokenRequest token).
async fn service_account_kubeconfig(cluster: &TestCluster, dir: &Path, sa: &str) -> PathBuf {
    let api: Api<ServiceAccount> = Api::namespaced(cluster.client(), RELEASE_NAMESPACE);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(3600),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    let token = api
        .create_token_request(sa, &PostParams::default(), &request)
        .await
        .expect("a token for the ServiceAccount")
        .status
        .expect("the token request has a status")
        .token;
    let admin = std::fs::read_to_string(cluster.kubeconfig()).expect("the admin kubeconfig");
    let mut config: Value = serde_saphyr::from_str(&admin).expect("the kubeconfig is YAML");
    config["users"] = json!([{"name": "veer-sa", "user": {"token": token}}]);
    let context = config["contexts"][0]["context"].clone();
    let mut context = context;
    context["user"] = json!("veer-sa");
    config["contexts"] = json!([{"name": "veer-sa", "context": context}]);
    config["current-context"] = json!("veer-sa");
    let path = dir.join(format!("{sa}.kubeconfig"));
    std::fs::write(&path, serde_json::to_string(&config).expect("JSON")).expect("write kubeconfig");
    path
}

fn service_account_name(docs: &[Value]) -> String {
    docs.iter()
        .find(|d| d["kind"] == "ServiceAccount")
        .and_then(|d| d["metadata"]["name"].as_str())
        .expect("the chart renders a ServiceAccount")
        .to_string()
}

async fn expect_as(repo: &Repo, kubeconfig: &Path, args: &[&str], code: i32) -> String {
    let out = repo.veer_as(kubeconfig, args).await;
    let text = show(&out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "veer {args:?} as the chart's ServiceAccount:\n{text}"
    );
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_mode_rbac_syncs_every_example() {
    let _roles = ROLES.lock().await;
    let cluster = TestCluster::real().await;
    let docs = rbac_documents(&[]);
    apply_rbac(&cluster, &docs).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let kubeconfig =
        service_account_kubeconfig(&cluster, tmp.path(), &service_account_name(&docs)).await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut examples: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("examples/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    examples.sort();
    for example in examples {
        let namespaces = namespaces_in(&example);
        for ns in &namespaces {
            cluster.delete_namespace(ns).await;
        }
        // veer keeps its state in the release namespace, as the chart configures it.
        let repo = Repo::new(RELEASE_NAMESPACE);
        copy_tree(&example, &repo.remote.work);
        repo.commit("example");
        expect_as(&repo, &kubeconfig, &["sync"], 0).await;
        expect_as(&repo, &kubeconfig, &["diff"], 0).await;
        // Pruning is allowed too: the example leaves git and veer removes all of it.
        for entry in std::fs::read_dir(&repo.remote.work).expect("work tree") {
            let path = entry.expect("entry").path();
            if path.file_name().is_some_and(|n| n != ".git") {
                if path.is_dir() {
                    std::fs::remove_dir_all(&path).expect("rm dir");
                } else {
                    std::fs::remove_file(&path).expect("rm file");
                }
            }
        }
        repo.write("README.md", "emptied\n");
        repo.commit("everything leaves git");
        expect_as(&repo, &kubeconfig, &["sync"], 0).await;
        for ns in &namespaces {
            cluster.delete_namespace(ns).await;
        }
        let state: Api<ConfigMap> = Api::namespaced(cluster.client(), RELEASE_NAMESPACE);
        let _ = state.delete("veer-state", &Default::default()).await;
    }
}

/// The namespace and manifests of the verb test: one of each write veer makes.
fn verb_repo(ns: &str, mode: &str) -> Repo {
    let repo = Repo::new(RELEASE_NAMESPACE);
    repo.write(
        "ns.yaml",
        &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"),
    );
    repo.write(
        "cm.yaml",
        &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: {ns}\ndata:\n  mode: {mode}\n"),
    );
    repo
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_verb_of_the_chart_is_needed() {
    let _roles = ROLES.lock().await;
    let cluster = TestCluster::real().await;
    let full = rbac_documents(&[]);
    let verbs: Vec<String> = helm::yaml(
        &std::fs::read_to_string(chart().join("values.yaml")).expect("values.yaml"),
    )["rbac"]["verbs"]
        .as_array()
        .expect("rbac.verbs")
        .iter()
        .map(|v| v.as_str().expect("a verb").to_string())
        .collect();
    let tmp = tempfile::tempdir().expect("tempdir");
    let sa = service_account_name(&full);
    for verb in &verbs {
        let ns = "rbac-verbs";
        cluster.delete_namespace(ns).await;
        let state: Api<ConfigMap> = Api::namespaced(cluster.client(), RELEASE_NAMESPACE);
        let _ = state.delete("veer-state", &Default::default()).await;
        // Everything granted: create, then change, then prune.
        apply_rbac(&cluster, &full).await;
        let kubeconfig = service_account_kubeconfig(&cluster, tmp.path(), &sa).await;
        let without: Vec<&String> = verbs.iter().filter(|v| *v != verb).collect();
        let reduced = rbac_documents(&[json!({"rbac": {"verbs": without}})]);
        let repo = verb_repo(ns, "a");
        repo.commit("a");
        // Each verb is needed by one of: the first sync (list/watch/create/patch), a change
        // (patch), the prune (delete), reading back (get).
        apply_rbac(&cluster, &reduced).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut failures = String::new();
        let first = repo.veer_as(&kubeconfig, &["sync"]).await;
        failures.push_str(&show(&first));
        let mut failed = !first.status.success();
        if !failed {
            repo.write("cm.yaml", &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: {ns}\ndata:\n  mode: b\n"));
            repo.commit("b");
            let change = repo.veer_as(&kubeconfig, &["sync"]).await;
            failures.push_str(&show(&change));
            failed = !change.status.success();
        }
        if !failed {
            repo.remove("cm.yaml");
            repo.commit("settings leave git");
            let prune = repo.veer_as(&kubeconfig, &["sync"]).await;
            failures.push_str(&show(&prune));
            failed = !prune.status.success();
        }
        assert!(
            failed,
            "without `{verb}` on the chart's kinds veer still synced, changed and pruned: the chart grants a verb veer does not need\n{failures}"
        );
        assert!(
            failures.contains(&format!("cannot {verb}"))
                || failures.contains(&format!("grant {verb}"))
                || failures.contains(&format!(" {verb} ")),
            "without `{verb}` veer fails, and its message names the missing verb:\n{failures}"
        );
    }
    apply_rbac(&cluster, &full).await;
    cluster.delete_namespace("rbac-verbs").await;
}
