//! Rollouts that get to the end: every step in order, resumed after a restart, retargeted
//! by a new commit, gated on health and on a confirm-promotion webhook, queued by
//! `maxConcurrent`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use veer::rollout::{HoldReason, Phase};

use crate::fixtures::*;
use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_canary_is_promoted_through_every_step() {
    let s = Scenario::start(&policy("20s")).await;
    let commit = s.push_split(0, 100, "reviews v2");
    let state = s.wait_phase("promoted", Phase::Succeeded).await;
    assert_eq!(state.revision, commit);
    s.wait_split("live equals git", (0, 100)).await;
    assert_eq!(
        s.v2_path_to((0, 100)).await,
        vec![0, 25, 50, 75, 100],
        "the weights went through each step in order"
    );
    // Every step was analysed and passed before the next.
    for step in 0..3 {
        assert!(
            state.history.iter().any(|r| r.step == step
                && r.check == "success-rate"
                && r.outcome == veer::rollout::state::CheckOutcome::Passed),
            "step {step} has a passing check: {:#?}",
            state.history
        );
    }
    assert_eq!(state.failed_checks, 0);
    // People were told: started, each step, promoted.
    s.wait_notification(&["\"kind\":\"rollout-started\"", "shop/reviews"])
        .await;
    for weight in [50, 75] {
        s.wait_notification(&[
            "\"kind\":\"step-advanced\"",
            &format!("\"weight\":{weight}"),
        ])
        .await;
    }
    s.wait_notification(&["\"kind\":\"rollout-promoted\"", &commit])
        .await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_veer_resumes_from_the_stored_step() {
    let mut s = Scenario::start(&policy("30s")).await;
    let commit = s.push_split(0, 100, "reviews v2");
    s.wait_split("second step", (50, 50)).await;
    s.kill_veer().await;
    let before = s.state().await.expect("a state");
    assert_eq!(before.revision, commit);
    s.start_veer().await;
    let state = s.wait_phase("promoted", Phase::Succeeded).await;
    assert!(state.seq > before.seq);
    s.wait_split("live equals git", (0, 100)).await;
    // Resumed, never repeated: the weights only went up, each step once.
    assert_eq!(s.v2_path_to((0, 100)).await, vec![0, 25, 50, 75, 100]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_commit_restarts_toward_the_new_target_from_the_live_split() {
    let s = Scenario::start(&policy("30s")).await;
    s.push_split(0, 100, "reviews v2");
    s.wait_split("first step", (75, 25)).await;
    let second = s.push_split(50, 50, "reviews: half and half");
    let state = s
        .wait_until("promoted to the new target", |st, _| {
            st.is_some_and(|st| st.phase == Phase::Succeeded && st.revision == second)
        })
        .await
        .0
        .expect("a state");
    s.wait_split("live equals the new git", (50, 50)).await;
    let path = s.v2_path_to((50, 50)).await;
    let at = path.iter().position(|w| *w == 25).expect("the first step");
    assert!(
        path[at..].iter().all(|w| *w <= 50),
        "never beyond the new target after it: {path:?}"
    );
    // A rollback would still restore the split from before the first rollout.
    let v1 = veer::rollout::DestinationId::new("reviews", Some("v1"));
    assert_eq!(state.start_split.weight(&v1), 100);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_gate_waits_for_the_new_deployment() {
    let s = Scenario::start(&policy("30s")).await;
    let deployments: Api<Deployment> = Api::namespaced(s.client.clone(), NS);
    let hold =
        |value: Value| json!({"metadata": {"annotations": {"devcluster.veer.io/hold": value}}});
    deployments
        .patch(
            "reviews-v2",
            &PatchParams::default(),
            &Patch::Merge(&hold(json!("unavailable"))),
        )
        .await
        .expect("hold reviews-v2");
    s.push_split(0, 100, "reviews v2");
    s.wait_phase("waiting for health", Phase::WaitingForHealth)
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let state = s.state().await.expect("a state");
    assert_eq!(state.phase, Phase::WaitingForHealth);
    assert_eq!(
        live_split(&s.client).await,
        Some((100, 0)),
        "no traffic moved"
    );
    deployments
        .patch(
            "reviews-v2",
            &PatchParams::default(),
            &Patch::Merge(&hold(Value::Null)),
        )
        .await
        .expect("release reviews-v2");
    s.wait_phase("promoted", Phase::Succeeded).await;
    s.wait_split("live equals git", (0, 100)).await;
    s.stop().await;
}

/// The gate asks the watch cache, not the API server: with every LIST of the namespace's
/// Deployments refused, an available canary still goes through every step, and no LIST was
/// even sent (before, each rollout's wake listed its namespace's Deployments and
/// DestinationRules).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_gate_reads_the_watch_cache_while_the_canary_is_available() {
    let s = Scenario::start(&policy("20s")).await;
    s.faults.add(crate::faults::Fault {
        method: "GET",
        path: format!("/namespaces/{NS}/deployments"),
        code: 403,
        reason: "Forbidden",
        message: "listing deployments refused by the test".into(),
        times: usize::MAX,
    });
    s.push_split(0, 100, "reviews v2");
    s.wait_phase("promoted", Phase::Succeeded).await;
    assert_eq!(s.faults.injected(), 0, "no LIST of Deployments was sent");
    s.stop().await;
}

/// A webhook receiver answering `status` to every POST, counting calls.
async fn webhook_server(
    status: Arc<std::sync::atomic::AtomicU16>,
    calls: Arc<std::sync::atomic::AtomicUsize>,
) -> String {
    use axum::http::StatusCode;
    use std::sync::atomic::Ordering;
    let app = axum::Router::new().route(
        "/gate",
        axum::routing::post(move || {
            let status = status.clone();
            let calls = calls.clone();
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                StatusCode::from_u16(status.load(Ordering::SeqCst)).unwrap_or(StatusCode::OK)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the webhook receiver");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/gate")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirm_promotion_webhook_holds_until_it_passes() {
    use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
    let status = Arc::new(AtomicU16::new(403));
    let calls = Arc::new(AtomicUsize::new(0));
    let url = webhook_server(status.clone(), calls.clone()).await;
    let policy = policy_with(
        "30s",
        &format!(
            "  webhooks:\n    - name: approve\n      type: confirm-promotion\n      url: {url}\n      timeout: 2s\n"
        ),
    );
    let s = Scenario::start(&policy).await;
    s.push_split(0, 100, "reviews v2");
    let (state, _) = s
        .wait_until("awaiting approval", |st, _| {
            st.is_some_and(|st| {
                st.phase == Phase::AwaitingPromotion
                    && matches!(st.last_hold, Some(HoldReason::AwaitingConfirmation { .. }))
            })
        })
        .await;
    let held_at = calls.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(calls.load(Ordering::SeqCst) > held_at, "it keeps asking");
    assert_eq!(
        live_split(&s.client).await,
        Some((25, 75)),
        "held at the last step"
    );
    assert_eq!(
        state.expect("a state").failed_checks,
        0,
        "a gate, not a failure"
    );
    status.store(200, Ordering::SeqCst);
    s.wait_phase("promoted", Phase::Succeeded).await;
    s.wait_split("live equals git", (0, 100)).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrent_rollouts_queue_the_rest() {
    // A second service like reviews, in the namespace reviews' base creates.
    let ratings_base = BASE
        .replace(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n---\n",
            "",
        )
        .replace("reviews", "ratings");
    let ratings_deployments =
        (deployment("v1") + "---\n" + &deployment("v2")).replace("reviews", "ratings");
    let ratings_at = |v1, v2| {
        format!(
            "{ratings_base}---\n{}",
            named_virtual_service("ratings", v1, v2)
        )
    };
    let s = Scenario::start_with(
        &policy("30s"),
        &[
            ("ratings.yaml", ratings_at(100, 0)),
            ("ratings-deployments.yaml", ratings_deployments),
        ],
        1,
    )
    .await;
    assert_eq!(live_split_of(&s.client, "ratings").await, Some((100, 0)));
    s.remote.write("ratings.yaml", &ratings_at(0, 100));
    s.push_split(0, 100, "reviews and ratings to v2");
    let start = Instant::now();
    let mut saw_queued = false;
    loop {
        let (a, b) = (s.state_of("reviews").await, s.state_of("ratings").await);
        let phases = (a.as_ref().map(|x| x.phase), b.as_ref().map(|x| x.phase));
        if phases == (Some(Phase::Succeeded), Some(Phase::Succeeded)) {
            break;
        }
        let busy = |p: Option<Phase>| p.is_some_and(|p| p.occupies_slot());
        if busy(phases.0) && busy(phases.1) {
            // The two reads are apart in time: reviews may have finished and ratings started
            // in between. Reviews busy again after ratings' read means both at once.
            let again = s.state_of("reviews").await.map(|x| x.phase);
            assert!(
                !busy(again),
                "two rollouts at once with maxConcurrent 1: {phases:?}, then reviews {again:?}"
            );
        }
        if phases.0 == Some(Phase::Queued) || phases.1 == Some(Phase::Queued) {
            saw_queued = true;
            // The queued one's traffic has not moved.
            let queued = if phases.0 == Some(Phase::Queued) {
                "reviews"
            } else {
                "ratings"
            };
            let split = live_split_of(&s.client, queued).await;
            // The queue may start it between the two reads: judge the split only when the
            // state read after it still says queued (the phase is stored before a write).
            let still_queued = s.state_of(queued).await.map(|x| x.phase) == Some(Phase::Queued);
            if still_queued {
                assert_eq!(split, Some((100, 0)), "{queued}");
            }
        }
        assert!(start.elapsed() < DEADLINE, "not both promoted: {phases:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(saw_queued, "one of the two waited in the queue");
    assert_eq!(live_split_of(&s.client, "ratings").await, Some((0, 100)));
    s.wait_split("reviews live equals git", (0, 100)).await;
    // The metrics say where each rollout ended.
    let text = s.metrics.encode();
    for name in ["shop/reviews", "shop/ratings"] {
        assert!(
            text.lines().any(|l| l.contains("rollout_phase")
                && l.contains(name)
                && l.contains("Succeeded")
                && l.ends_with(" 1")),
            "{name} Succeeded in:\n{text}"
        );
    }
    assert!(
        text.lines().any(|l| l.contains("analysis_checks")
            && l.contains("success-rate")
            && l.contains("pass")),
        "{text}"
    );
    s.stop().await;
}
