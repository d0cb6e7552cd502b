//! What operators do mid-rollout: `veer rollout` commands (pause, status, abort), and hand
//! edits of the route (`kubectl edit`, `kubectl patch` against the `veer run` binary) that
//! veer undoes and reports.

use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject};
use serde_json::Value;
use veer::controller::rollouts;
use veer::exporter::ServiceKey;
use veer::ids::RolloutId;
use veer::rollout::{Command, FailureReason, Phase};

use crate::fixtures::*;
use crate::harness::*;
use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_pause_resume_and_abort() {
    let s = Scenario::start(&policy("60s")).await;
    let id = RolloutId {
        namespace: NS.into(),
        name: "reviews".into(),
    };
    s.push_split(0, 100, "reviews v2");
    s.wait_split("first step", (75, 25)).await;
    let (code, out) = s.veer_cli(&["rollout", "pause", "shop/reviews"]).await;
    assert_eq!(code, 0, "{out}");
    s.wait_phase("paused", Phase::Paused).await;
    let (code, out) = s.veer_cli(&["rollout", "status", "shop/reviews"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("shop/reviews  Paused  policy e2e")
            && out.contains("[#####---------------]  25%  (reviews/v2 toward 100%)"),
        "{out}"
    );
    let (code, out) = s.veer_cli(&["rollout", "pause", "shop/nothing"]).await;
    assert_eq!(code, 3, "{out}");
    let paused_at = live_split(&s.client).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        live_split(&s.client).await,
        paused_at,
        "nothing moves while paused"
    );
    rollouts::send_command(&s.client, STATE_NS, &id, Command::Abort)
        .await
        .expect("send abort")
        .expect("a rollout");
    let state = s.wait_phase("aborted", Phase::Failed).await;
    assert_eq!(state.failure, Some(FailureReason::Aborted));
    let (code, out) = s
        .veer_cli(&["rollout", "status", "shop/reviews", "--watch"])
        .await;
    assert_eq!(code, 5, "a failed rollout: {out}");
    assert!(out.contains("failure  aborted by an operator"), "{out}");
    s.wait_split("split restored", (100, 0)).await;
    // The command was consumed and cleared.
    let pending = rollouts::read_rollout(&s.client, STATE_NS, &id)
        .await
        .expect("read")
        .and_then(|(_, c, _)| c);
    assert_eq!(pending, None);
    s.stop().await;
}

/// `kubectl edit` of the route's weights to `(v1, v2)`: a PUT by the field manager
/// `kubectl-edit`, as kubectl makes it.
async fn hand_edit(client: &kube::Client, (v1, v2): (u32, u32)) {
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), NS, &vs_resource());
    let mut vs =
        serde_json::to_value(api.get("reviews").await.expect("the VirtualService")).expect("JSON");
    let routes = vs
        .pointer_mut("/spec/http/0/route")
        .and_then(Value::as_array_mut)
        .expect("a route");
    for r in routes.iter_mut() {
        match r.pointer("/destination/subset").and_then(Value::as_str) {
            Some("v1") => r["weight"] = serde_json::json!(v1),
            Some("v2") => r["weight"] = serde_json::json!(v2),
            _ => {}
        }
    }
    let object: DynamicObject = serde_json::from_value(vs).expect("a DynamicObject");
    let params = kube::api::PostParams {
        field_manager: Some("kubectl-edit".into()),
        ..Default::default()
    };
    api.replace("reviews", &params, &object)
        .await
        .expect("the hand edit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_edit_mid_step_is_undone_and_reported() {
    let s = Scenario::start(&policy("60s")).await;
    // Nobody calls yet: the rollout holds at its first step (no data), its split in force.
    s.exporter.set_rate(&ServiceKey::new(NS, "reviews"), 0.0);
    s.push_split(0, 100, "reviews v2");
    s.wait_split("first step", (75, 25)).await;
    s.wait_until("holding at the first step", |st, _| {
        st.is_some_and(|st| st.phase == Phase::Progressing && st.last_hold.is_some())
    })
    .await;
    hand_edit(&s.client, (50, 50)).await;
    // Written back within a pass (the 1 s interval), and told with the editor's name.
    s.wait_split("the step's split written back", (75, 25))
        .await;
    let n = s
        .wait_notification(&[
            "\"kind\":\"rollout-interfered\"",
            "kubectl-edit",
            "reviews/v1:50",
        ])
        .await;
    assert!(n.contains("shop/reviews"), "{n}");
    let state = s.state().await.expect("a state");
    assert_eq!(
        (state.phase, state.step),
        (Phase::Progressing, 0),
        "the step did not move"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_undoes_a_kubectl_edit_mid_step_and_says_who_made_it() {
    let (s, mut veer) = Scenario::start_binary(&policy("60s")).await;
    // Nobody calls yet: the rollout holds at its first step (no data), its split in force.
    s.exporter.set_rate(&ServiceKey::new(NS, "reviews"), 0.0);
    s.push_split(0, 100, "reviews v2");
    s.wait_split("first step", (75, 25)).await;
    let kubeconfig = s._tmp.path().join("kubeconfig");
    let out = support::devcluster::kubectl_ok(
        &kubeconfig,
        &[
            "-n",
            NS,
            "patch",
            "virtualservices.networking.istio.io",
            "reviews",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/http/0/route/0/weight","value":50},{"op":"replace","path":"/spec/http/0/route/1/weight","value":50}]"#,
        ],
        None,
    )
    .await;
    assert!(out.contains("patched"), "{out}");
    // Written back within a pass or two (1 s interval), and the log names the editor.
    s.wait_split("the step's split written back", (75, 25))
        .await;
    let start = Instant::now();
    loop {
        let log = s.binary_log();
        if log.contains("the route was edited mid-step") && log.contains("kubectl-patch") {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "no interference logged with the editor's name:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (code, out) = s.veer_cli(&["rollout", "status", "shop/reviews"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Progressing"), "{out}");
    let _ = veer.kill();
    let _ = veer.wait();
    s.stop().await;
}
