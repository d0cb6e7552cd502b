//! Other managers editing what veer applies: drift healed or only reported, and apply
//! conflicts reported with the managers, then taken with force.

use std::time::Duration;

use kube::api::{Patch, PatchParams};
use serde_json::json;
use veer::controller::Pass;
use veer::sync::ObjectResult;
use veer::sync::state;

use crate::helpers::{
    NAMESPACE, config_map, config_maps, controller, controller_with, data_of, idle, location,
    options, pass, result_of, revision, synced,
};
use crate::support::devcluster as dev;

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
