//! Writes through kubectl: server-side apply with diff and delete, field-manager conflicts,
//! client-side apply, edit and scale, and a CRD applied then used.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;

use crate::helpers::MANIFESTS;
use crate::support;

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
