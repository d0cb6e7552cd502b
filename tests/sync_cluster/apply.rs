//! Create, update and prune (never what veer did not create), an idle pass that makes no API
//! call, a server dry run that writes nothing, and a revision with one invalid manifest that
//! applies nothing.

use chrono::Utc;
use serde_json::json;
use veer::controller::Pass;
use veer::source::PollOutcome;
use veer::sync::state;
use veer::sync::{ObjectResult, WriteMode};

use crate::helpers::{
    CRD, DEPLOYMENT, NAMESPACE, SERVICE, WIDGET, config_map, config_maps, controller,
    controller_with, data_of, idle, location, options, pass, result_of, revision, synced, traffic,
};
use crate::support::devcluster as dev;

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
