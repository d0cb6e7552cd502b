//! Per-object failures: 409/5xx retried and permanent refusals isolated, a 500 that refuses
//! the request itself tried once with the fix, and a kind veer may not list (RBAC) failing
//! only its objects and never pruned.

use std::time::Duration;

use kube::api::Api;
use serde_json::json;
use veer::sync::{FailureKind, ObjectResult};

use crate::faults::{self, Fault, Faults};
use crate::helpers::{
    NAMESPACE, SERVICE, config_map, controller, controller_with, data_of, idle, options, pass,
    result_of, revision, synced,
};
use crate::support::devcluster as dev;

#[tokio::test]
async fn transient_failures_are_retried_and_permanent_ones_isolated() {
    let cluster = dev::start().await;
    let faults = Faults::default();
    let client = faults::client(&cluster, &faults);
    let mut c = controller_with(client, options(|_| {})).await;
    let fault = |name: &str, code: u16, reason: &'static str, message: &str, times: usize| Fault {
        method: "PATCH",
        path: format!("/configmaps/{name}"),
        code,
        reason,
        message: message.into(),
        times,
    };
    // `retried` fails twice (a stale write, then a 503), then succeeds.
    faults.add(fault(
        "retried",
        409,
        "Conflict",
        "Operation cannot be fulfilled: the object has been modified",
        1,
    ));
    faults.add(fault(
        "retried",
        503,
        "ServiceUnavailable",
        "etcd is busy",
        1,
    ));
    // `down` keeps failing with 500; `forbidden` is refused; `denied` hits a webhook;
    // `invalid` is refused as invalid.
    faults.add(fault("down", 500, "InternalError", "boom", 100));
    faults.add(fault(
        "forbidden",
        403,
        "Forbidden",
        "configmaps \"forbidden\" is forbidden: User \"veer\" cannot patch",
        100,
    ));
    faults.add(fault(
        "denied",
        400,
        "BadRequest",
        "admission webhook \"policy.example.com\" denied the request: no",
        100,
    ));
    faults.add(fault(
        "invalid",
        422,
        "Invalid",
        "ConfigMap \"invalid\" is invalid: data: bad",
        100,
    ));
    let names = ["retried", "down", "forbidden", "denied", "invalid", "fine"];
    let mut files = vec![("ns.yaml".to_string(), NAMESPACE.to_string())];
    files.extend(
        names
            .iter()
            .map(|n| (format!("{n}.yaml"), config_map(n, "k: v"))),
    );
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let p = pass(&mut c, &revision(1, &files)).await;
    let report = synced(&p);
    assert_eq!(
        result_of(report, "ConfigMap", "retried"),
        &ObjectResult::Created
    );
    assert_eq!(
        result_of(report, "ConfigMap", "fine"),
        &ObjectResult::Created
    );
    let failure = |name| match result_of(report, "ConfigMap", name) {
        ObjectResult::Failed(f) => (f.kind, f.code, f.attempts),
        other => panic!("{name}: expected a failure, got {other:?}"),
    };
    assert_eq!(failure("down"), (FailureKind::Unavailable, Some(500), 4));
    assert_eq!(failure("forbidden"), (FailureKind::Forbidden, Some(403), 1));
    assert_eq!(failure("denied"), (FailureKind::Denied, Some(400), 1));
    assert_eq!(failure("invalid"), (FailureKind::Invalid, Some(422), 1));
    assert_eq!(faults.injected(), 2 + 4 + 3);
    assert!(data_of(&cluster, "retried").await.is_some());
    assert!(data_of(&cluster, "down").await.is_none());
    let human = report.human();
    assert!(
        human.contains("ConfigMap shop/forbidden: FAILED (forbidden 403)"),
        "{human}"
    );
    assert!(human.contains("4 failed"), "{human}");
    // Refused creates stay out of the inventory; one that got no answer (`down`) may have
    // happened, so it is kept there (and pruned, if it exists, once git drops it).
    let inventory: Vec<String> = c.state().inventory().into_iter().map(|k| k.name).collect();
    assert_eq!(inventory, ["down", "fine", "retried", "shop"]);
}

/// Kubernetes v1.20's answer to server-side apply of a Service port without `protocol`.
const TYPED_PATCH_500: &str = "failed to create typed patch object: .spec.ports: element 0: associative list with keys has an element that omits key field \"protocol\" (and doesn't have default value)";

#[tokio::test]
async fn a_request_the_server_cannot_handle_fails_at_once_with_the_fix() {
    let cluster = dev::start().await;
    let faults = Faults::default();
    let mut c = controller_with(faults::client(&cluster, &faults), options(|_| {})).await;
    let patch = |path: &str, message: &str| Fault {
        method: "PATCH",
        path: path.into(),
        code: 500,
        reason: "InternalError",
        message: message.into(),
        times: 100,
    };
    faults.add(patch("/services/reviews", TYPED_PATCH_500));
    faults.add(patch("/configmaps/down", "etcdserver: request timed out"));
    let p = pass(
        &mut c,
        &revision(
            1,
            &[
                ("ns.yaml", NAMESPACE),
                ("svc.yaml", SERVICE),
                ("down.yaml", &config_map("down", "k: v")),
                ("fine.yaml", &config_map("fine", "k: v")),
            ],
        ),
    )
    .await;
    let report = synced(&p);
    match result_of(report, "Service", "reviews") {
        ObjectResult::Failed(f) => {
            assert_eq!((f.kind, f.code), (FailureKind::Invalid, Some(500)));
            assert_eq!(f.attempts, 1, "a permanent answer is tried once");
            assert_eq!(f.message, TYPED_PATCH_500);
            assert_eq!(
                f.fix.as_deref(),
                Some("add protocol: TCP to each port of spec.ports")
            );
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    // A plain 500 is still the server's trouble: retried.
    match result_of(report, "ConfigMap", "down") {
        ObjectResult::Failed(f) => {
            assert_eq!(
                (f.kind, f.code, f.attempts),
                (FailureKind::Unavailable, Some(500), 4)
            );
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(
        result_of(report, "ConfigMap", "fine"),
        &ObjectResult::Created
    );
    assert_eq!(faults.injected(), 1 + 4);
    let human = report.human();
    assert!(
        human.contains(
            "Service shop/reviews: FAILED (invalid 500): failed to create typed patch object"
        ) && human.contains("  fix: add protocol: TCP to each port of spec.ports"),
        "{human}"
    );
    let json = serde_json::to_value(&report.objects).expect("json");
    let svc = json
        .as_array()
        .and_then(|a| a.iter().find(|o| o["key"]["kind"] == "Service"))
        .expect("the Service");
    assert_eq!(svc["fix"], "add protocol: TCP to each port of spec.ports");
    assert_eq!(veer::controller::exit_code(&p), veer::cli::exit::PARTIAL);
}

fn secret(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: shop\nstringData:\n  token: t\n"
    )
}

#[tokio::test]
async fn a_kind_veer_may_not_list_fails_only_its_objects_and_is_never_pruned() {
    let cluster = dev::start().await;
    // Applied while veer could still read Secrets: `old-token` is in the inventory.
    let mut before = controller(&cluster).await;
    let first = revision(
        1,
        &[
            ("ns.yaml", NAMESPACE),
            ("old.yaml", &secret("old-token")),
            ("cm.yaml", &config_map("settings", "mode: fast")),
        ],
    );
    assert!(!synced(&pass(&mut before, &first).await).has_failures());
    drop(before);

    // Then RBAC forbids listing Secrets in shop.
    let faults = Faults::default();
    faults.add(Fault {
        method: "GET",
        path: "/namespaces/shop/secrets".into(),
        code: 403,
        reason: "Forbidden",
        message: "secrets is forbidden: User \"system:serviceaccount:veer:veer\" cannot list resource \"secrets\" in API group \"\" in the namespace \"shop\"".into(),
        times: 10_000,
    });
    // Nor cluster-wide, then (RBAC that refuses one namespace refuses them all).
    faults.add(Fault {
        method: "GET",
        path: "/api/v1/secrets".into(),
        code: 403,
        reason: "Forbidden",
        message: "secrets is forbidden: User \"system:serviceaccount:veer:veer\" cannot list resource \"secrets\" in API group \"\" at the cluster scope".into(),
        times: 10_000,
    });
    let mut c = controller_with(faults::client(&cluster, &faults), options(|_| {})).await;
    let second = revision(
        2,
        &[
            ("ns.yaml", NAMESPACE),
            ("new.yaml", &secret("new-token")),
            ("cm.yaml", &config_map("settings", "mode: slow")),
        ],
    );
    let started = std::time::Instant::now();
    let p = pass(&mut c, &second).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a 403 is final: no wait for the watch ({:?})",
        started.elapsed()
    );
    let report = synced(&p);
    for name in ["new-token", "old-token"] {
        match result_of(report, "Secret", name) {
            ObjectResult::Failed(f) => {
                assert_eq!((f.kind, f.code), (FailureKind::Forbidden, Some(403)));
                assert_eq!(
                    f.message,
                    "veer's service account cannot list secrets in namespace shop: grant list and watch on secrets"
                );
                assert!(
                    f.advice()
                        .contains("list and watch on secrets in namespace shop")
                );
            }
            other => panic!("{name}: expected a failure, got {other:?}"),
        }
    }
    // The rest of the pass went on as usual.
    assert!(matches!(
        result_of(report, "ConfigMap", "settings"),
        ObjectResult::Updated { .. }
    ));
    assert_eq!(
        data_of(&cluster, "settings").await,
        Some(json!({"mode": "slow"}))
    );
    assert_eq!(veer::controller::exit_code(&p), veer::cli::exit::PARTIAL);
    // Neither applied on a guess nor pruned: unknown is not absent.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(dev::client(&cluster), "shop");
    assert!(secrets.get_opt("old-token").await.expect("get").is_some());
    assert!(secrets.get_opt("new-token").await.expect("get").is_none());
    let inventory: Vec<String> = c.state().inventory().into_iter().map(|k| k.name).collect();
    assert!(
        inventory.contains(&"old-token".to_string()),
        "{inventory:?}"
    );
    // The next pass reports them again (and tries the list again: RBAC may have changed).
    let p = idle(&mut c, &second).await;
    assert_eq!(synced(&p).summary().failed, 2);
}
