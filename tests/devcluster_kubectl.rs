//! Debian's kubectl (1.20, `kubernetes-client`) against the embedded API server: the commands
//! a user of the demo runs. `make deps` installs that kubectl into target/tools/.

// The dev-cluster helpers only: tests/support/mod.rs (git remotes) is another suite's.
#[path = "support/devcluster.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::json;

const MANIFESTS: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels: {app: reviews}
data:
  a: "1"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: reviews
spec:
  replicas: 2
  selector: {matchLabels: {app: reviews}}
  template:
    metadata: {labels: {app: reviews}}
    spec:
      containers:
      - name: app
        image: reviews:1
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 100
"#;

#[tokio::test]
async fn get_server_side_apply_diff_and_delete() {
    let cluster = support::start().await;
    let (_dir, config) = support::kubeconfig(&cluster);

    let namespaces = support::kubectl_ok(&config, &["get", "namespaces"], None).await;
    assert!(namespaces.contains("default"), "{namespaces}");

    let applied = support::kubectl_ok(
        &config,
        &["apply", "--server-side", "-f", "-"],
        Some(MANIFESTS),
    )
    .await;
    assert!(
        applied.contains("configmap/settings serverside-applied"),
        "{applied}"
    );
    assert!(
        applied.contains("deployment.apps/reviews serverside-applied"),
        "{applied}"
    );
    assert!(
        applied.contains("virtualservice.networking.istio.io/reviews serverside-applied"),
        "{applied}"
    );

    let client = support::client(&cluster);
    let deploy = Api::<Deployment>::default_namespaced(client.clone())
        .get("reviews")
        .await
        .unwrap();
    let managers: Vec<String> = deploy
        .metadata
        .managed_fields
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{} {}",
                m.manager.clone().unwrap(),
                m.operation.clone().unwrap()
            )
        })
        .collect();
    assert_eq!(managers, ["kubectl Apply"]);

    let listed =
        support::kubectl_ok(&config, &["get", "virtualservices", "-o", "name"], None).await;
    assert_eq!(listed.trim(), "virtualservice.networking.istio.io/reviews");
    let selected = support::kubectl_ok(
        &config,
        &["get", "cm", "-l", "app=reviews", "-o", "name"],
        None,
    )
    .await;
    assert_eq!(selected.trim(), "configmap/settings");

    // No difference: exit 0, nothing printed. (Objects applied server-side are diffed
    // server-side: a client-side diff would add kubectl's last-applied annotation.)
    let same = support::run_kubectl(
        &config,
        &["diff", "--server-side", "-f", "-"],
        Some(MANIFESTS),
    )
    .await;
    assert_eq!(
        same.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&same.stdout),
        String::from_utf8_lossy(&same.stderr)
    );
    assert!(
        same.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&same.stdout)
    );

    // A difference: exit 1 and the changed lines; nothing is written (server-side dry run).
    let changed = MANIFESTS
        .replace("a: \"1\"", "a: \"2\"")
        .replace("weight: 100", "weight: 90");
    let diff = support::run_kubectl(
        &config,
        &["diff", "--server-side", "-f", "-"],
        Some(&changed),
    )
    .await;
    let out = String::from_utf8_lossy(&diff.stdout);
    assert_eq!(
        diff.status.code(),
        Some(1),
        "{out}\n{}",
        String::from_utf8_lossy(&diff.stderr)
    );
    assert!(
        out.contains("-  a: \"1\"") && out.contains("+  a: \"2\""),
        "{out}"
    );
    assert!(
        out.contains("-      weight: 100") && out.contains("+      weight: 90"),
        "{out}"
    );
    let cm = Api::<ConfigMap>::default_namespaced(client.clone())
        .get("settings")
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["a"], "1", "diff wrote nothing");

    let deleted = support::kubectl_ok(&config, &["delete", "-f", "-"], Some(MANIFESTS)).await;
    assert!(
        deleted.contains("configmap \"settings\" deleted"),
        "{deleted}"
    );
    let gone = Api::<ConfigMap>::default_namespaced(client)
        .get("settings")
        .await;
    assert!(matches!(gone, Err(kube::Error::Api(s)) if s.code == 404));
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn server_side_apply_conflicts_need_force() {
    let cluster = support::start().await;
    let (_dir, config) = support::kubeconfig(&cluster);
    support::kubectl_ok(
        &config,
        &["apply", "--server-side", "-f", "-"],
        Some(MANIFESTS),
    )
    .await;
    support::kubectl_ok(
        &config,
        &[
            "patch",
            "deployment",
            "reviews",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"replicas":5}}"#,
        ],
        None,
    )
    .await;
    let refused = support::run_kubectl(
        &config,
        &["apply", "--server-side", "-f", "-"],
        Some(MANIFESTS),
    )
    .await;
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        err.contains("conflict with \"kubectl-patch\"") && err.contains(".spec.replicas"),
        "{err}"
    );
    support::kubectl_ok(
        &config,
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        Some(MANIFESTS),
    )
    .await;
    let replicas = support::kubectl_ok(
        &config,
        &[
            "get",
            "deployment",
            "reviews",
            "-o",
            "jsonpath={.spec.replicas} {.status.availableReplicas}",
        ],
        None,
    )
    .await;
    assert_eq!(replicas, "2 2");
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn client_side_apply_and_edit() {
    let cluster = support::start().await;
    let (_dir, config) = support::kubeconfig(&cluster);
    let created = support::kubectl_ok(&config, &["apply", "-f", "-"], Some(MANIFESTS)).await;
    assert!(created.contains("configmap/settings created"), "{created}");
    let changed = MANIFESTS
        .replace("a: \"1\"", "a: \"2\"")
        .replace("weight: 100", "weight: 90");
    let configured = support::kubectl_ok(&config, &["apply", "-f", "-"], Some(&changed)).await;
    assert!(
        configured.contains("configmap/settings configured"),
        "{configured}"
    );
    assert!(
        configured.contains("virtualservice.networking.istio.io/reviews configured"),
        "{configured}"
    );
    assert!(
        configured.contains("deployment.apps/reviews unchanged"),
        "{configured}"
    );
    // A client-side diff of what was just applied client-side shows nothing.
    let same = support::run_kubectl(&config, &["diff", "-f", "-"], Some(&changed)).await;
    assert_eq!(
        same.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&same.stdout)
    );
    let weight = support::kubectl_ok(
        &config,
        &[
            "get",
            "vs",
            "reviews",
            "-o",
            "jsonpath={.spec.http[0].route[0].weight}",
        ],
        None,
    )
    .await;
    assert_eq!(weight, "90");

    // `kubectl edit` with a scripted editor: a strategic merge patch by `kubectl-edit`.
    let out = support::run_kubectl_env(
        &config,
        &["edit", "deployment", "reviews"],
        &[("KUBE_EDITOR", "sed -i s/replicas:.2/replicas:\\ 4/")],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fields = support::kubectl_ok(
        &config,
        &[
            "get",
            "deployment",
            "reviews",
            "-o",
            "jsonpath={.spec.replicas} {.metadata.managedFields[*].manager}",
        ],
        None,
    )
    .await;
    assert_eq!(fields, "4 kubectl-client-side-apply kubectl-edit");

    let scaled = support::kubectl_ok(
        &config,
        &["scale", "deployment", "reviews", "--replicas=3"],
        None,
    )
    .await;
    assert!(
        scaled.contains("deployment.apps/reviews scaled"),
        "{scaled}"
    );
    let replicas = support::kubectl_ok(
        &config,
        &[
            "get",
            "deployment",
            "reviews",
            "-o",
            "jsonpath={.spec.replicas} {.status.availableReplicas}",
        ],
        None,
    )
    .await;
    assert_eq!(replicas, "3 3");
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn get_watch_prints_changes() {
    let cluster = support::start().await;
    let (_dir, config) = support::kubeconfig(&cluster);
    let mut child = std::process::Command::new(support::kubectl())
        .env("KUBECONFIG", &config)
        .env("HOME", config.parent().unwrap())
        .args(["get", "configmaps", "-w", "-o", "name"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kubectl starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Wait for the watch to be open before writing, so the event is live, not listed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while cluster.open_watches() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "kubectl never opened a watch"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "watched"}})).unwrap();
    Api::<ConfigMap>::default_namespaced(support::client(&cluster))
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    let line = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("kubectl prints the new object within 10 s")
        .expect("kubectl is still running");
    assert_eq!(line, "configmap/watched");
    child.kill().unwrap();
    child.wait().unwrap();
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_applied_crd_is_usable_from_kubectl() {
    let cluster = support::start().await;
    let (_dir, config) = support::kubeconfig(&cluster);
    let crd = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: rollouts.veer.io}
spec:
  group: veer.io
  scope: Namespaced
  names: {kind: Rollout, plural: rollouts, singular: rollout, shortNames: [ro]}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"#;
    support::kubectl_ok(&config, &["apply", "--server-side", "-f", "-"], Some(crd)).await;
    let rollout =
        "apiVersion: veer.io/v1alpha1\nkind: Rollout\nmetadata: {name: r1}\nspec: {step: 1}\n";
    support::kubectl_ok(&config, &["apply", "-f", "-"], Some(rollout)).await;
    let got = support::kubectl_ok(&config, &["get", "ro", "-o", "name"], None).await;
    assert_eq!(got.trim(), "rollout.veer.io/r1");
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_dev_cluster_command_writes_a_kubeconfig_kubectl_uses() {
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        args: veer::cli::DevClusterArgs,
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kubeconfig");
    let state = dir.path().join("state.json");
    let cmd = Cmd::parse_from([
        "dev-cluster",
        "--port",
        "0",
        "--kubeconfig",
        config.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
    ]);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        veer::devcluster::run_until(&cmd.args, async {
            let _ = stopped.await;
        })
        .await
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !config.is_file() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no kubeconfig written"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("server: http://127.0.0.1:"), "{text}");
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kept}\ndata: {a: b}\n";
    support::kubectl_ok(&config, &["apply", "--server-side", "-f", "-"], Some(cm)).await;
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    let saved = std::fs::read_to_string(&state).unwrap();
    assert!(
        saved.contains("\"kept\""),
        "the state file holds the object"
    );
}

/// kubectl's table output as rows of cells (kubectl pads columns with at least 3 spaces).
fn table_rows(out: &str) -> Vec<Vec<String>> {
    let gap = regex::Regex::new(r" {3,}").unwrap();
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| gap.split(l.trim_end()).map(str::to_string).collect())
        .collect()
}

/// An age kubectl prints for an object created seconds ago.
fn is_fresh_age(cell: &str) -> bool {
    regex::Regex::new(r"^\d+s$").unwrap().is_match(cell)
}

const MORE_MANIFESTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ratings, namespace: shop}
spec:
  replicas: 3
  selector: {matchLabels: {app: ratings}}
  template:
    metadata: {labels: {app: ratings}}
    spec:
      containers:
      - {name: app, image: "ratings:2"}
      - {name: proxy, image: "envoy:1.30"}
---
apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  selector: {app: reviews}
  ports: [{port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge}
spec:
  hosts: [reviews.example.com, ratings.example.com]
  gateways: [mesh, edge-gateway]
  http:
  - route:
    - destination: {host: reviews}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}]
"#;

#[tokio::test]
async fn get_prints_the_columns_of_a_real_server() {
    let cluster = support::start().await;
    let (_dir, config) = support::kubeconfig(&cluster);
    let all = format!("{MANIFESTS}---{MORE_MANIFESTS}");
    support::kubectl_ok(&config, &["apply", "--server-side", "-f", "-"], Some(&all)).await;

    let deployments =
        table_rows(&support::kubectl_ok(&config, &["get", "deployments"], None).await);
    assert_eq!(
        deployments[0],
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    assert_eq!(deployments.len(), 2, "{deployments:?}");
    assert_eq!(deployments[1][..4], ["reviews", "2/2", "2", "2"]);
    assert!(is_fresh_age(&deployments[1][4]), "{deployments:?}");

    // A held Deployment is not ready: the columns follow the status.
    support::kubectl_ok(
        &config,
        &[
            "annotate",
            "deployment",
            "reviews",
            "devcluster.veer.io/hold=unavailable",
        ],
        None,
    )
    .await;
    let held = table_rows(&support::kubectl_ok(&config, &["get", "deploy", "reviews"], None).await);
    assert_eq!(held[1][..4], ["reviews", "0/2", "2", "0"], "{held:?}");

    let wide = table_rows(
        &support::kubectl_ok(
            &config,
            &["get", "deployments", "-n", "shop", "-o", "wide"],
            None,
        )
        .await,
    );
    assert_eq!(
        wide[0],
        [
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    assert_eq!(wide[1][..4], ["ratings", "3/3", "3", "3"]);
    assert_eq!(
        wide[1][5..],
        ["app,proxy", "ratings:2,envoy:1.30", "app=ratings"]
    );

    // -A: kubectl adds NAMESPACE from each row's object metadata.
    let everywhere =
        table_rows(&support::kubectl_ok(&config, &["get", "deploy", "-A"], None).await);
    assert_eq!(everywhere[0][..3], ["NAMESPACE", "NAME", "READY"]);
    let rows: Vec<(&str, &str)> = everywhere[1..]
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str()))
        .collect();
    assert_eq!(rows, [("default", "reviews"), ("shop", "ratings")]);

    let vs_out = support::kubectl_ok(&config, &["get", "virtualservices"], None).await;
    let vs = table_rows(&vs_out);
    assert_eq!(vs[0], ["NAME", "GATEWAYS", "HOSTS", "AGE"]);
    assert_eq!(
        vs[1][..3],
        [
            "edge",
            r#"["mesh","edge-gateway"]"#,
            r#"["reviews.example.com","ratings.example.com"]"#
        ]
    );
    // No gateways: an empty cell.
    let lines: Vec<&str> = vs_out.lines().collect();
    let (gateways, hosts) = (
        lines[0].find("GATEWAYS").unwrap(),
        lines[0].find("HOSTS").unwrap(),
    );
    assert_eq!(lines[2][..gateways].trim(), "reviews");
    assert_eq!(lines[2][gateways..hosts].trim(), "", "{vs_out}");
    assert!(lines[2][hosts..].starts_with(r#"["reviews"]"#), "{vs_out}");
    let dr = table_rows(&support::kubectl_ok(&config, &["get", "dr"], None).await);
    assert_eq!(dr[0], ["NAME", "HOST", "AGE"]);
    assert_eq!(dr[1][..2], ["reviews", "reviews"]);

    let svc = table_rows(&support::kubectl_ok(&config, &["get", "svc", "-o", "wide"], None).await);
    assert_eq!(
        svc[0],
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
            "SELECTOR"
        ]
    );
    assert_eq!(svc[1][..2], ["reviews", "ClusterIP"]);
    assert!(svc[1][2].starts_with("10."), "{svc:?}");
    assert_eq!(svc[1][3..5], ["<none>", "9080/TCP"]);
    assert_eq!(svc[1][6], "app=reviews");

    // Labels come from the rows' PartialObjectMetadata.
    let cms =
        table_rows(&support::kubectl_ok(&config, &["get", "cm", "--show-labels"], None).await);
    assert_eq!(cms[0], ["NAME", "DATA", "AGE", "LABELS"]);
    assert_eq!(cms[1][..2], ["settings", "1"]);
    assert_eq!(cms[1][3], "app=reviews");

    let ns = table_rows(&support::kubectl_ok(&config, &["get", "namespaces"], None).await);
    assert_eq!(ns[0], ["NAME", "STATUS", "AGE"]);
    assert!(ns.iter().any(|r| r[..2] == ["shop", "Active"]), "{ns:?}");

    // --sort-by asks for whole objects (includeObject=Object) to sort on.
    let sorted = table_rows(
        &support::kubectl_ok(
            &config,
            &[
                "get",
                "deploy",
                "-A",
                "--sort-by=.spec.replicas",
                "--no-headers",
            ],
            None,
        )
        .await,
    );
    let names: Vec<&str> = sorted.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(names, ["reviews", "ratings"]);

    // Other output formats still get the objects themselves.
    let json_out =
        support::kubectl_ok(&config, &["get", "deploy", "reviews", "-o", "json"], None).await;
    let object: serde_json::Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(object["kind"], "Deployment");
    assert_eq!(
        object["spec"]["template"]["spec"]["containers"][0]["image"],
        "reviews:1"
    );
    let listed = support::kubectl_ok(&config, &["get", "vs", "-o", "json"], None).await;
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["items"][0]["kind"], "VirtualService");
    assert_eq!(listed["items"][0]["spec"]["gateways"][1], "edge-gateway");
    let yaml = support::kubectl_ok(&config, &["get", "dr", "reviews", "-o", "yaml"], None).await;
    assert!(
        yaml.contains("kind: DestinationRule") && yaml.contains("host: reviews"),
        "{yaml}"
    );
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_crd_prints_its_additional_printer_columns() {
    let cluster = support::start().await;
    let (_dir, config) = support::kubeconfig(&cluster);
    let crd = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: canaries.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Canary, plural: canaries, singular: canary}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
    additionalPrinterColumns:
    - {name: Weight, type: integer, jsonPath: .spec.weight}
    - {name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}
    - {name: Target, type: string, jsonPath: .spec.target, priority: 1}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
"#;
    support::kubectl_ok(&config, &["apply", "--server-side", "-f", "-"], Some(crd)).await;
    let canary = r#"
apiVersion: example.com/v1
kind: Canary
metadata: {name: reviews}
spec: {weight: 20, target: reviews-v2}
status:
  conditions:
  - {type: Progressing, status: "True"}
  - {type: Ready, status: "False"}
"#;
    support::kubectl_ok(&config, &["apply", "-f", "-"], Some(canary)).await;
    let rows = table_rows(&support::kubectl_ok(&config, &["get", "canaries"], None).await);
    assert_eq!(rows[0], ["NAME", "WEIGHT", "READY", "AGE"]);
    assert_eq!(rows[1][..3], ["reviews", "20", "False"]);
    assert!(is_fresh_age(&rows[1][3]), "{rows:?}");
    let wide = table_rows(
        &support::kubectl_ok(&config, &["get", "canary", "reviews", "-o", "wide"], None).await,
    );
    assert_eq!(wide[0], ["NAME", "WEIGHT", "READY", "TARGET", "AGE"]);
    assert_eq!(wide[1][3], "reviews-v2");

    // CRDs themselves print as the registry default: NAME, CREATED AT.
    let crds = table_rows(&support::kubectl_ok(&config, &["get", "crd"], None).await);
    assert_eq!(crds[0], ["NAME", "CREATED AT"]);
    assert_eq!(crds[1][0], "canaries.example.com");
    assert!(
        regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            .unwrap()
            .is_match(&crds[1][1]),
        "{crds:?}"
    );
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn get_watch_prints_rows_under_one_header() {
    let cluster = support::start().await;
    let (_dir, config) = support::kubeconfig(&cluster);
    let mut child = std::process::Command::new(support::kubectl())
        .env("KUBECONFIG", &config)
        .env("HOME", config.parent().unwrap())
        .args(["get", "configmaps", "-w"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kubectl starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while cluster.open_watches() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "kubectl never opened a watch"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let configmaps = Api::<ConfigMap>::default_namespaced(support::client(&cluster));
    let mut cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "watched"}, "data": {"a": "1"}}))
            .unwrap();
    configmaps
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    let mut next_line = async || {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("kubectl prints within 10 s")
            .expect("kubectl is still running")
    };
    let header = next_line().await;
    assert_eq!(table_rows(&header)[0], ["NAME", "DATA", "AGE"]);
    let added = table_rows(&next_line().await).remove(0);
    assert_eq!(added[..2], ["watched", "1"]);

    cm.data
        .get_or_insert_default()
        .insert("b".into(), "2".into());
    configmaps
        .replace("watched", &PostParams::default(), &cm)
        .await
        .unwrap();
    // The second event reuses the columns: a row, no second header.
    let modified = table_rows(&next_line().await).remove(0);
    assert_eq!(modified[..2], ["watched", "2"]);
    child.kill().unwrap();
    child.wait().unwrap();
    cluster.shutdown().await.unwrap();
}
