//! Restarts: veer's state surviving a restart of veer (prune still works), and watches
//! re-established after the API server restarts.

use std::time::Duration;

use kube::api::{Patch, PatchParams};
use serde_json::json;
use veer::controller::Pass;
use veer::devcluster::DevClusterOptions;
use veer::sync::ObjectResult;

use crate::helpers::{
    NAMESPACE, config_map, config_maps, controller, controller_with, data_of, idle, options, pass,
    result_of, revision, synced,
};
use crate::support::devcluster as dev;

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
