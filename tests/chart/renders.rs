//! `helm lint --strict`, and the install renders with the default values and with
//! `ci/full-values.yaml`: their objects, RBAC, pod, config, notes and golden manifests.

use serde_json::json;

use crate::common::{
    URL, chart_dir, check_config, check_no_wildcards, check_objects, check_pod, default_values,
    env_names, find, fixture, full_values, golden, kind_names, one,
};
use crate::helm;

#[test]
fn helm_lint_strict_passes_with_the_default_and_every_option() {
    for values in [vec![default_values()], vec![full_values()]] {
        let report = helm::lint(&chart_dir(), &values)
            .unwrap_or_else(|report| panic!("helm lint --strict fails:\n{report}"));
        assert!(
            report.contains("1 chart(s) linted, 0 chart(s) failed"),
            "{report}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_values_render_a_least_privilege_non_root_install() {
    let k = fixture().await;
    let r = k.render_ok(&[default_values()]).await;
    check_objects(&r);
    assert_eq!(
        kind_names(&r),
        [
            "ServiceAccount veer-system/veer",
            "ConfigMap veer-system/veer",
            "ClusterRole /veer",
            "ClusterRoleBinding /veer",
            "Service veer-system/veer",
            "Deployment veer-system/veer",
        ]
    );
    check_no_wildcards(&r);
    let (container, _) = check_pod(&r);
    let config = check_config(&r, &container);
    assert_eq!(config.cluster.state_namespace, "veer-system");
    assert_eq!(
        config.source.as_ref().map(|s| s.spec.url.to_string()),
        Some(URL.to_string())
    );
    assert!(
        !env_names(&container).contains(&"VEER_LEADER_ELECTION".to_string()),
        "one replica: no leader election"
    );
    assert_eq!(one(&r, "Deployment")["spec"]["replicas"], 1);
    assert!(r.notes.contains("kubectl veer status"), "{}", r.notes);
    assert!(r.notes.contains("Push webhooks are off"), "{}", r.notes);
    golden("default.yaml", &r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_option_renders_namespaced_rbac_monitoring_two_replicas_and_secrets() {
    let k = fixture().await.with_service_monitor_crd().await;
    let r = k.render_ok(&[full_values()]).await;
    check_objects(&r);
    check_no_wildcards(&r);
    let names = kind_names(&r);
    for expected in [
        "Role veer-system/veer-prod",
        "RoleBinding veer-system/veer-prod",
        "Role bookinfo/veer-prod",
        "RoleBinding bookinfo/veer-prod",
        "Role shop/veer-prod",
        "RoleBinding shop/veer-prod",
        "Role veer-system/veer-prod-leader-election",
        "RoleBinding veer-system/veer-prod-leader-election",
        "ServiceMonitor veer-system/veer-prod",
        "ServiceAccount veer-system/veer-controller",
    ] {
        assert!(
            names.contains(&expected.to_string()),
            "{expected} in {names:?}"
        );
    }
    assert!(
        find(&r, "ClusterRole").is_empty() && find(&r, "ClusterRoleBinding").is_empty(),
        "namespaced mode grants nothing cluster-wide: {names:?}"
    );
    // The leader-election Role touches only Leases.
    let lease_role = find(&r, "Role")
        .into_iter()
        .find(|o| o["metadata"]["name"] == "veer-prod-leader-election")
        .expect("the leader election Role");
    assert_eq!(
        lease_role["rules"],
        json!([{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                "verbs": ["get", "create", "update", "patch"]}])
    );
    let (container, text) = check_pod(&r);
    let config = check_config(&r, &container);
    assert_eq!(one(&r, "Deployment")["spec"]["replicas"], 2);
    let env = env_names(&container);
    for name in [
        "VEER_LEADER_ELECTION",
        "VEER_LEADER_ELECTION_NAMESPACE",
        "VEER_LEADER_ELECTION_LEASE",
        "VEER_LEADER_ELECTION_LEASE_DURATION",
        "VEER_LEADER_ELECTION_RENEW_PERIOD",
        "VEER_POD_NAME",
        "RUST_BACKTRACE",
    ] {
        assert!(env.contains(&name.to_string()), "{name} in {env:?}");
    }
    // Secrets: each mounted from its Secret and referenced as a file.
    for (secret, file) in [
        ("veer-git", "/etc/veer/secrets/git/password"),
        ("veer-slack", "/etc/veer/secrets/slack/url"),
        ("veer-webhook", "/etc/veer/secrets/webhook/hmac"),
    ] {
        assert!(text.contains(file), "{file} in veer.yaml:\n{text}");
        assert!(
            one(&r, "Deployment")["spec"]["template"]["spec"]["volumes"]
                .as_array()
                .expect("volumes")
                .iter()
                .any(|v| v["secret"]["secretName"] == secret),
            "Secret {secret} is mounted"
        );
    }
    assert!(!config.sync.prune && config.sync.force_conflicts);
    assert_eq!(config.cluster.state_name, "veer-prod-state");
    let monitor = one(&r, "ServiceMonitor");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "http");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(one(&r, "Service")["spec"]["ports"][0]["targetPort"], "http");
    assert!(
        r.notes.contains("Leader election is on (2 replicas)"),
        "{}",
        r.notes
    );
    assert!(r.notes.contains("bookinfo, shop"), "{}", r.notes);
    golden("full-values.yaml", &r.text);
}
