//! `kubectl get` table output: the columns of built-in kinds, Istio kinds and a CRD's
//! additionalPrinterColumns, and other output formats alongside.

use crate::helpers::{MANIFESTS, table_rows};
use crate::support;

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
