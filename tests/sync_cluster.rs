//! The reconcile loop against the embedded API server, over real HTTP with the real kube
//! client: create, update, prune (never what veer did not create), drift healed or only
//! reported, apply conflicts then force, retries of 409/5xx, per-object failures (a 500 that
//! refuses the request itself tried once, with the fix), server dry run, an idle pass that
//! makes no API call, a rejected revision, state surviving a restart, watches re-established
//! after the server restarts, a kind veer may not list failing only its objects, and a
//! Namespace never pruned while anything lives in it.

#[path = "support/faults.rs"]
mod faults;
mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use veer::cluster::Cluster;
use veer::controller::{Controller, ControllerOptions, Pass};
use veer::devcluster::{DevClusterOptions, RunningCluster};
use veer::diff::PruneSkipReason;
use veer::manifest::{self, ManifestSet, ReadOptions};
use veer::source::{CommitId, LoadedRevision, PollOutcome, Revision};
use veer::sync::state::{self, StateLocation};
use veer::sync::{FailureKind, ObjectResult, RetryPolicy, SyncOptions, SyncReport, WriteMode};

use faults::{Fault, Faults};
use support::devcluster as dev;

const NAMESPACE: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n";

fn config_map(name: &str, data: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: shop\ndata:\n  {data}\n"
    )
}

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: reviews-v1
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels: {app: reviews, version: v1}
  template:
    metadata:
      labels: {app: reviews, version: v1}
    spec:
      containers:
      - name: reviews
        image: example/reviews:1
";

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: reviews
  namespace: shop
spec:
  selector: {app: reviews}
  ports:
  - port: 9080
";

fn traffic(v2_weight: u32) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: shop
spec:
  host: reviews
  subsets:
  - name: v1
    labels: {{version: v1}}
  - name: v2
    labels: {{version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: shop
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {{host: reviews, subset: v1}}
      weight: {}
    - destination: {{host: reviews, subset: v2}}
      weight: {v2_weight}
",
        100 - v2_weight
    )
}

const CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
";

const WIDGET: &str = "apiVersion: example.com/v1
kind: Widget
metadata:
  name: gear
  namespace: shop
spec:
  teeth: 12
";

fn revision(n: u32, files: &[(&str, &str)]) -> Arc<LoadedRevision> {
    let mut set = ManifestSet::default();
    for (name, text) in files {
        set.extend(&manifest::parse_file(
            name,
            text.as_bytes(),
            &ReadOptions::default(),
        ));
    }
    Arc::new(LoadedRevision {
        revision: Revision {
            commit: CommitId(format!("{n:040x}")),
            summary: format!("revision {n}"),
            author: "Ada <ada@example.com>".into(),
            time: Utc::now(),
        },
        set,
        changed_files: Vec::new(),
        parsed_files: 0,
    })
}

fn location() -> StateLocation {
    StateLocation {
        namespace: "veer".into(),
        name: "veer-state".into(),
    }
}

fn options(tweak: impl FnOnce(&mut SyncOptions)) -> ControllerOptions {
    let mut sync = SyncOptions {
        retry: RetryPolicy {
            attempts: 4,
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            timeout: Duration::from_secs(10),
        },
        ..SyncOptions::default()
    };
    tweak(&mut sync);
    ControllerOptions {
        source_url: "git://example/mesh.git".into(),
        prune: true,
        sync,
    }
}

async fn controller_with(client: kube::Client, options: ControllerOptions) -> Controller {
    Controller::start(Cluster::new(client), location(), options)
        .await
        .expect("the controller starts")
}

async fn controller(cluster: &RunningCluster) -> Controller {
    controller_with(dev::client(cluster), options(|_| {})).await
}

async fn pass(c: &mut Controller, loaded: &Arc<LoadedRevision>) -> Pass {
    c.handle(PollOutcome::Updated(loaded.clone()), Utc::now())
        .await
}

async fn idle(c: &mut Controller, loaded: &Arc<LoadedRevision>) -> Pass {
    c.handle(
        PollOutcome::Unchanged {
            commit: loaded.revision.commit.clone(),
        },
        Utc::now(),
    )
    .await
}

fn synced(pass: &Pass) -> &SyncReport {
    match pass {
        Pass::Synced { report, .. } => report,
        other => panic!("expected a sync, got {other:?}"),
    }
}

fn result_of<'r>(report: &'r SyncReport, kind: &str, name: &str) -> &'r ObjectResult {
    &report
        .objects
        .iter()
        .find(|o| o.key.kind == kind && o.key.name == name)
        .unwrap_or_else(|| panic!("{kind} {name} not in {report:#?}"))
        .result
}

fn config_maps(cluster: &RunningCluster) -> Api<ConfigMap> {
    Api::namespaced(dev::client(cluster), "shop")
}

async fn data_of(cluster: &RunningCluster, name: &str) -> Option<serde_json::Value> {
    config_maps(cluster)
        .get_opt(name)
        .await
        .expect("get")
        .map(|cm| serde_json::to_value(cm.data).expect("json"))
}

#[tokio::test]
async fn create_update_prune_idempotent_and_idle_without_api_calls() {
    let cluster = dev::start().await;
    let mut c = controller(&cluster).await;
    // Someone else's object in the same namespace: veer never prunes it.
    let foreign = revision(0, &[("ns.yaml", NAMESPACE)]);
    assert!(matches!(pass(&mut c, &foreign).await, Pass::Synced { .. }));
    config_maps(&cluster)
        .create(
            &Default::default(),
            &serde_json::from_value(json!({"metadata": {"name": "theirs"}, "data": {"a": "1"}}))
                .expect("a ConfigMap"),
        )
        .await
        .expect("created by someone else");

    let first = revision(
        1,
        &[
            ("ns.yaml", NAMESPACE),
            ("cm.yaml", &config_map("settings", "mode: fast")),
            ("old.yaml", &config_map("old", "x: \"1\"")),
            ("deploy.yaml", DEPLOYMENT),
            ("svc.yaml", SERVICE),
            ("traffic.yaml", &traffic(10)),
            ("crd.yaml", CRD),
            ("widget.yaml", WIDGET),
        ],
    );
    let p = pass(&mut c, &first).await;
    let report = synced(&p);
    assert!(!report.has_failures(), "{}", report.human());
    assert_eq!(report.summary().created, 8, "{}", report.human());
    // Applied in order: namespace and CRD first, VirtualService last; the Widget found its
    // kind through a fresh discovery.
    let order: Vec<&str> = report.objects.iter().map(|o| o.key.kind.as_str()).collect();
    assert_eq!(order.first(), Some(&"Namespace"));
    assert_eq!(order.last(), Some(&"VirtualService"));
    let live = config_maps(&cluster)
        .get("settings")
        .await
        .expect("created");
    let labels = live.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("veer")
    );
    let annotations = live.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations.get("veer.io/source").map(String::as_str),
        Some("git://example/mesh.git#cm.yaml")
    );

    // The same revision again: nothing to do, and no API call at all (plan from the watch
    // cache, state unchanged).
    assert!(matches!(idle(&mut c, &first).await, Pass::InSync { .. }));
    let before = cluster.request_counts();
    for _ in 0..3 {
        assert!(matches!(idle(&mut c, &first).await, Pass::InSync { .. }));
    }
    assert_eq!(
        cluster.request_counts(),
        before,
        "an idle pass made API calls"
    );

    // Update one object, drop two: updated and pruned, the foreign object kept.
    let second = revision(
        2,
        &[
            ("ns.yaml", NAMESPACE),
            ("cm.yaml", &config_map("settings", "mode: slow")),
            ("deploy.yaml", DEPLOYMENT),
            ("svc.yaml", SERVICE),
            ("traffic.yaml", &traffic(50)),
            ("crd.yaml", CRD),
        ],
    );
    let p = pass(&mut c, &second).await;
    let report = synced(&p);
    assert_eq!(
        (report.summary().updated, report.summary().pruned),
        (2, 2),
        "{}",
        report.human()
    );
    assert_eq!(
        data_of(&cluster, "settings").await,
        Some(json!({"mode": "slow"}))
    );
    assert_eq!(data_of(&cluster, "old").await, None);
    assert!(data_of(&cluster, "theirs").await.is_some());
    let widgets = kube::Api::<kube::api::DynamicObject>::namespaced_with(
        dev::client(&cluster),
        "shop",
        &kube::discovery::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
            "example.com",
            "v1",
            "Widget",
        )),
    );
    assert!(widgets.get_opt("gear").await.expect("get").is_none());
    // Idempotent: the next pass plans nothing.
    assert!(matches!(idle(&mut c, &second).await, Pass::InSync { .. }));

    let recorded = state::read(&dev::client(&cluster), &location())
        .await
        .expect("read")
        .expect("recorded");
    assert_eq!(
        recorded.revision.as_ref().map(|r| r.commit.clone()),
        Some(format!("{:040x}", 2))
    );
    assert_eq!(recorded.inventory().len(), 7);
}

#[tokio::test]
async fn drift_is_healed_or_only_reported() {
    let cluster = dev::start().await;
    let loaded = revision(
        1,
        &[
            ("ns.yaml", NAMESPACE),
            ("cm.yaml", &config_map("settings", "mode: fast")),
        ],
    );
    let mut c = controller(&cluster).await;
    assert!(matches!(pass(&mut c, &loaded).await, Pass::Synced { .. }));

    // A hand edit of a field veer manages (kubectl edit is an update by another manager).
    let hand_edit = || async {
        config_maps(&cluster)
            .patch(
                "settings",
                &PatchParams {
                    field_manager: Some("kubectl-edit".into()),
                    ..PatchParams::default()
                },
                &Patch::Merge(json!({"data": {"mode": "by-hand"}})),
            )
            .await
            .expect("hand edit");
    };
    hand_edit().await;
    // The watch brings the edit in; the next pass heals it (a forced apply of that object).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let report = loop {
        match idle(&mut c, &loaded).await {
            Pass::Synced { report, .. } => break report,
            Pass::InSync { .. } if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            other => panic!("drift not seen: {other:?}"),
        }
    };
    assert_eq!(
        result_of(&report, "ConfigMap", "settings"),
        &ObjectResult::Updated {
            cause: veer::diff::Cause::Drift
        }
    );
    assert_eq!(
        data_of(&cluster, "settings").await,
        Some(json!({"mode": "fast"}))
    );

    // selfHeal off: reported, left alone, recorded.
    let mut c = controller_with(dev::client(&cluster), options(|s| s.self_heal = false)).await;
    assert!(matches!(idle(&mut c, &loaded).await, Pass::NoRevision));
    assert!(matches!(pass(&mut c, &loaded).await, Pass::InSync { .. }));
    hand_edit().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match idle(&mut c, &loaded).await {
            Pass::DriftReported { objects, .. } => {
                assert_eq!(objects.len(), 1);
                assert_eq!(objects[0].name, "settings");
                break;
            }
            Pass::InSync { .. } if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            other => panic!("drift not reported: {other:?}"),
        }
    }
    let writes = cluster.request_counts().writes;
    assert!(matches!(
        idle(&mut c, &loaded).await,
        Pass::DriftReported { .. }
    ));
    assert_eq!(
        cluster.request_counts().writes,
        writes,
        "reported drift is not written again"
    );
    assert_eq!(
        data_of(&cluster, "settings").await,
        Some(json!({"mode": "by-hand"}))
    );
    let recorded = state::read(&dev::client(&cluster), &location())
        .await
        .expect("read")
        .expect("recorded");
    assert_eq!(recorded.drift, ["ConfigMap shop/settings"]);
}

#[tokio::test]
async fn apply_conflicts_are_reported_with_the_managers_then_taken_with_force() {
    let cluster = dev::start().await;
    let mut c = controller(&cluster).await;
    assert!(matches!(
        pass(&mut c, &revision(0, &[("ns.yaml", NAMESPACE)])).await,
        Pass::Synced { .. }
    ));
    // Another tool applied the object first and owns `data.mode`.
    config_maps(&cluster)
        .patch(
            "settings",
            &PatchParams::apply("helm"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "shop"}, "data": {"mode": "helm"}})),
        )
        .await
        .expect("helm applies");
    let loaded = revision(
        1,
        &[
            ("ns.yaml", NAMESPACE),
            ("cm.yaml", &config_map("settings", "mode: git")),
            ("other.yaml", &config_map("other", "a: b")),
        ],
    );
    // The server's dry run finds the conflict before anything is written: the revision is
    // refused whole, naming the manager, and `other` is not created either.
    let p = pass(&mut c, &loaded).await;
    assert!(
        matches!(
            p,
            Pass::Rejected {
                errors: 1,
                by: veer::controller::RejectedBy::Server,
                ..
            }
        ),
        "{p:?}"
    );
    assert_eq!(veer::controller::exit_code(&p), veer::cli::exit::INVALID);
    let (_, refusal) = c.rejected_revision().expect("the refusal is kept");
    let shown = refusal.render_human();
    assert!(
        shown.contains("error[server-conflict] cm.yaml:4:3: ConfigMap shop/settings")
            && shown.contains("helm"),
        "{shown}"
    );
    assert_eq!(data_of(&cluster, "other").await, None);
    let recorded = c.state().clone();
    assert!(recorded.rejected.is_some_and(|r| r.errors == 1));
    assert_eq!(
        data_of(&cluster, "settings").await,
        Some(json!({"mode": "helm"}))
    );

    let mut forced =
        controller_with(dev::client(&cluster), options(|s| s.force_conflicts = true)).await;
    let p = pass(&mut forced, &loaded).await;
    let report = synced(&p);
    assert!(!report.has_failures(), "{}", report.human());
    assert_eq!(
        data_of(&cluster, "settings").await,
        Some(json!({"mode": "git"}))
    );
    assert_eq!(
        forced.state().outcome,
        Some(state::RevisionOutcome::Applied)
    );
}

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

#[tokio::test]
async fn server_dry_run_writes_nothing() {
    let cluster = dev::start().await;
    // The namespace exists: a server dry run cannot create objects in a namespace that it
    // only pretends to create (as on a real cluster).
    let mut real = controller(&cluster).await;
    assert!(matches!(
        pass(&mut real, &revision(0, &[("ns.yaml", NAMESPACE)])).await,
        Pass::Synced { .. }
    ));
    let recorded = state::read(&dev::client(&cluster), &location())
        .await
        .expect("read");
    let mut c = controller_with(
        dev::client(&cluster),
        options(|s| s.mode = WriteMode::ServerDryRun),
    )
    .await;
    let objects = cluster.object_count();
    let p = pass(
        &mut c,
        &revision(
            1,
            &[
                ("ns.yaml", NAMESPACE),
                ("cm.yaml", &config_map("settings", "a: b")),
            ],
        ),
    )
    .await;
    let report = synced(&p);
    assert_eq!(
        result_of(report, "ConfigMap", "settings"),
        &ObjectResult::Created
    );
    assert_eq!(report.mode, WriteMode::ServerDryRun);
    assert!(!report.has_failures(), "{}", report.human());
    assert!(report.human().contains("(server dry run)"));
    assert_eq!(
        cluster.object_count(),
        objects,
        "a dry run stored something"
    );
    assert_eq!(
        state::read(&dev::client(&cluster), &location())
            .await
            .expect("read"),
        recorded,
        "a dry run recorded state"
    );
}

#[tokio::test]
async fn a_revision_with_one_invalid_manifest_applies_nothing() {
    let cluster = dev::start().await;
    let mut c = controller(&cluster).await;
    let good = revision(
        1,
        &[
            ("ns.yaml", NAMESPACE),
            ("cm.yaml", &config_map("a", "k: v")),
        ],
    );
    assert!(matches!(pass(&mut c, &good).await, Pass::Synced { .. }));
    let bad = revision(
        2,
        &[
            ("ns.yaml", NAMESPACE),
            ("cm.yaml", &config_map("a", "k: changed")),
            ("new.yaml", &config_map("b", "k: v")),
            (
                "vs.yaml",
                "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: r\n  namespace: shop\nspec:\n  hosts: [r]\n  http:\n  - route:\n    - destination: {host: r}\n      wieght: 100\n",
            ),
        ],
    );
    let p = pass(&mut c, &bad).await;
    assert!(matches!(p, Pass::Rejected { errors: 1, .. }), "{p:?}");
    assert_eq!(veer::controller::exit_code(&p), veer::cli::exit::INVALID);
    assert_eq!(data_of(&cluster, "a").await, Some(json!({"k": "v"})));
    assert_eq!(data_of(&cluster, "b").await, None);
    let recorded = state::read(&dev::client(&cluster), &location())
        .await
        .expect("read")
        .expect("recorded");
    assert_eq!(
        recorded.revision.map(|r| r.commit),
        Some(format!("{:040x}", 1))
    );
    assert_eq!(
        recorded.rejected.map(|r| r.commit),
        Some(format!("{:040x}", 2))
    );
    // The last good revision stays in force: the next idle pass is in sync with it.
    assert!(matches!(
        c.handle(
            PollOutcome::Unchanged {
                commit: bad.revision.commit.clone()
            },
            Utc::now()
        )
        .await,
        Pass::InSync { .. }
    ));
}

#[tokio::test]
async fn state_survives_a_restart_of_veer_and_prune_still_works() {
    let cluster = dev::start().await;
    {
        let mut c = controller(&cluster).await;
        let first = revision(
            1,
            &[
                ("ns.yaml", NAMESPACE),
                ("a.yaml", &config_map("a", "k: v")),
                ("b.yaml", &config_map("b", "k: v")),
            ],
        );
        assert!(matches!(pass(&mut c, &first).await, Pass::Synced { .. }));
    }
    // A new process: it knows only what the cluster recorded.
    let mut c = controller(&cluster).await;
    assert_eq!(c.state().inventory().len(), 3);
    let second = revision(
        2,
        &[("ns.yaml", NAMESPACE), ("a.yaml", &config_map("a", "k: v"))],
    );
    let p = pass(&mut c, &second).await;
    let report = synced(&p);
    assert_eq!(result_of(report, "ConfigMap", "b"), &ObjectResult::Pruned);
    assert_eq!(
        result_of(report, "ConfigMap", "a"),
        &ObjectResult::Unchanged
    );
    assert_eq!(data_of(&cluster, "b").await, None);
}

#[tokio::test]
async fn watches_are_re_established_after_the_server_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state_file = dir.path().join("state.json");
    let opts = DevClusterOptions {
        state_file: Some(state_file.clone()),
        ..DevClusterOptions::default()
    };
    let cluster = dev::start_with(opts.clone()).await;
    let port = cluster.addr().port();
    let client = dev::client(&cluster);
    let mut c = controller_with(client, options(|_| {})).await;
    let loaded = revision(
        1,
        &[
            ("ns.yaml", NAMESPACE),
            ("cm.yaml", &config_map("settings", "mode: fast")),
        ],
    );
    assert!(matches!(pass(&mut c, &loaded).await, Pass::Synced { .. }));
    let watches = c.cluster().watch_count();
    cluster.shutdown().await.expect("shutdown");

    let cluster = dev::start_with(DevClusterOptions { port, ..opts }).await;
    // A hand edit after the restart reaches veer only through a re-established watch.
    config_maps(&cluster)
        .patch(
            "settings",
            &PatchParams {
                field_manager: Some("kubectl-edit".into()),
                ..PatchParams::default()
            },
            &Patch::Merge(json!({"data": {"mode": "by-hand"}})),
        )
        .await
        .expect("hand edit");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match idle(&mut c, &loaded).await {
            Pass::Synced { report, .. } => {
                assert_eq!(
                    result_of(&report, "ConfigMap", "settings"),
                    &ObjectResult::Updated {
                        cause: veer::diff::Cause::Drift
                    }
                );
                break;
            }
            Pass::InSync { .. } | Pass::Failed { .. } if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            other => panic!("the edit never reached veer: {other:?}"),
        }
    }
    assert_eq!(
        c.cluster().watch_count(),
        watches,
        "the same watches, re-established"
    );
    assert_eq!(
        data_of(&cluster, "settings").await,
        Some(json!({"mode": "fast"}))
    );
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

fn foreign_config_map(name: &str, annotations: serde_json::Value) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "annotations": annotations}, "data": {"a": "1"}}),
    )
    .expect("a ConfigMap")
}

async fn namespace_exists(cluster: &RunningCluster, name: &str) -> bool {
    Api::<k8s_openapi::api::core::v1::Namespace>::all(dev::client(cluster))
        .get_opt(name)
        .await
        .expect("get")
        .is_some()
}

#[tokio::test]
async fn pruning_a_namespace_never_takes_what_still_lives_in_it() {
    let cluster = dev::start().await;
    let mut c = controller(&cluster).await;
    let kept = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\n  namespace: shop\n  annotations: {veer.io/prune: \"false\"}\ndata:\n  a: \"1\"\n";
    let first = revision(
        1,
        &[
            ("ns.yaml", NAMESPACE),
            ("settings.yaml", &config_map("settings", "a: b")),
            ("old.yaml", &config_map("old", "a: b")),
            ("kept.yaml", kept),
        ],
    );
    assert!(!synced(&pass(&mut c, &first).await).has_failures());

    // (i) namespace.yaml leaves git, a manifest of the namespace stays: kept by the plan.
    let second = revision(
        2,
        &[
            ("settings.yaml", &config_map("settings", "a: b")),
            ("kept.yaml", kept),
        ],
    );
    let p = pass(&mut c, &second).await;
    let report = synced(&p);
    assert_eq!(result_of(report, "ConfigMap", "old"), &ObjectResult::Pruned);
    match result_of(report, "Namespace", "shop") {
        ObjectResult::PruneSkipped {
            reason: PruneSkipReason::NamespaceInUse { by, .. },
        } => assert_eq!(by.to_string(), "ConfigMap shop/kept"),
        other => panic!(
            "expected the namespace kept, got {other:?}\n{}",
            report.human()
        ),
    }
    assert!(namespace_exists(&cluster, "shop").await);

    // (ii) git's objects leave too, but someone else's object lives there: kept at sync time.
    config_maps(&cluster)
        .create(
            &Default::default(),
            &foreign_config_map("theirs", json!({})),
        )
        .await
        .expect("created by someone else");
    // veer's kept object may be given up; the annotation still keeps it.
    let third = revision(3, &[]);
    let p = pass(&mut c, &third).await;
    let report = synced(&p);
    assert_eq!(
        result_of(report, "ConfigMap", "settings"),
        &ObjectResult::Pruned
    );
    assert_eq!(
        result_of(report, "ConfigMap", "kept"),
        &ObjectResult::PruneSkipped {
            reason: PruneSkipReason::Annotation
        }
    );
    assert!(
        matches!(
            result_of(report, "Namespace", "shop"),
            ObjectResult::PruneSkipped {
                reason: PruneSkipReason::NamespaceInUse { .. }
            }
        ),
        "{}",
        report.human()
    );
    assert!(namespace_exists(&cluster, "shop").await);
    assert!(data_of(&cluster, "theirs").await.is_some());
    assert!(data_of(&cluster, "kept").await.is_some());

    // The annotated object is taken away by hand: only their object keeps it now, which only
    // the server knows about.
    config_maps(&cluster)
        .delete("kept", &Default::default())
        .await
        .expect("deleted by hand");
    let p = pass(&mut c, &revision(4, &[])).await;
    let report = synced(&p);
    match result_of(report, "Namespace", "shop") {
        ObjectResult::PruneSkipped {
            reason: PruneSkipReason::NamespaceNotEmpty { by, more },
        } => assert_eq!((by.to_string(), *more), ("ConfigMap shop/theirs".into(), 0)),
        other => panic!(
            "expected the namespace kept, got {other:?}\n{}",
            report.human()
        ),
    }
    let human = report.human();
    assert!(
        human.contains(
            "Namespace shop: prune skipped (ConfigMap shop/theirs still lives in it; delete them"
        ),
        "{human}"
    );
    assert!(namespace_exists(&cluster, "shop").await);
    assert!(data_of(&cluster, "theirs").await.is_some());
    // Kept, so still veer's to prune once it empties.
    assert!(c.state().inventory().iter().any(|k| k.kind == "Namespace"));

    // Once nothing lives in it, it goes.
    config_maps(&cluster)
        .delete("theirs", &Default::default())
        .await
        .expect("deleted by them");
    let p = pass(&mut c, &revision(5, &[])).await;
    assert_eq!(
        result_of(synced(&p), "Namespace", "shop"),
        &ObjectResult::Pruned
    );
    assert!(!namespace_exists(&cluster, "shop").await);
}

#[tokio::test]
async fn a_namespace_that_held_only_what_veer_pruned_is_removed() {
    let cluster = dev::start().await;
    let mut c = controller(&cluster).await;
    let first = revision(
        1,
        &[
            ("ns.yaml", NAMESPACE),
            ("a.yaml", &config_map("a", "k: v")),
            ("b.yaml", &config_map("b", "k: v")),
            ("svc.yaml", SERVICE),
        ],
    );
    assert!(!synced(&pass(&mut c, &first).await).has_failures());
    let p = pass(&mut c, &revision(2, &[])).await;
    let report = synced(&p);
    assert_eq!(report.summary().pruned, 4, "{}", report.human());
    // The Namespace is the last prune, after what lived in it.
    assert_eq!(
        report
            .objects
            .last()
            .map(|o| (o.key.kind.as_str(), &o.result)),
        Some(("Namespace", &ObjectResult::Pruned))
    );
    assert!(!namespace_exists(&cluster, "shop").await);
    assert!(c.state().inventory().is_empty());
}

#[tokio::test]
async fn the_dev_cluster_deletes_a_namespace_as_kubernetes_does() {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::{DeleteParams, PostParams, WatchEvent, WatchParams};

    let cluster = dev::start().await;
    let client = dev::client(&cluster);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "shop"}})).expect("a Namespace"),
        )
        .await
        .expect("created");
    config_maps(&cluster)
        .create(
            &PostParams::default(),
            &foreign_config_map("c", json!({"veer.io/prune": "false"})),
        )
        .await
        .expect("created");
    let rv = namespaces
        .get("shop")
        .await
        .expect("get")
        .metadata
        .resource_version
        .expect("a resourceVersion");
    let mut events = namespaces
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();

    let answer = namespaces
        .delete("shop", &DeleteParams::default())
        .await
        .expect("deleted");
    let ns = answer.left().expect("the namespace comes back");
    assert_eq!(
        ns.status.and_then(|s| s.phase).as_deref(),
        Some("Terminating")
    );
    assert!(ns.metadata.deletion_timestamp.is_some());
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("an event within 10 s")
            .expect("the watch is open")
            .expect("a well-formed event");
        match event {
            WatchEvent::Modified(n) => seen.push(format!(
                "MODIFIED {}",
                n.status.and_then(|s| s.phase).unwrap_or_default()
            )),
            WatchEvent::Deleted(_) => seen.push("DELETED".to_string()),
            WatchEvent::Added(_) | WatchEvent::Bookmark(_) | WatchEvent::Error(_) => {}
        }
    }
    assert_eq!(seen, ["MODIFIED Terminating", "DELETED"]);
    // Its contents went with it, whatever they were annotated with.
    assert_eq!(data_of(&cluster, "c").await, None);
    assert!(!namespace_exists(&cluster, "shop").await);
}
