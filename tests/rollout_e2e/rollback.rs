//! Rollouts that go back: failed checks (errors, latency), a missed progress deadline, a
//! Prometheus outage that must not roll back, a revert commit pushed to git, a rollback
//! whose write does not read back.

use std::time::Duration;

use veer::exporter::{Behaviour, ServiceKey};
use veer::rollout::{FailureReason, HoldReason, Phase};

use crate::faults;
use crate::fixtures::*;
use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_spike_is_rolled_back_within_threshold_intervals() {
    let s = Scenario::start(&policy("20s")).await;
    s.set_v2(Behaviour {
        error_rate: 0.5,
        latency_ms: 20.0,
    });
    s.push_split(0, 100, "reviews v2");
    let state = s.wait_rolled_back_by_two_failed_checks().await;
    s.wait_split("split restored exactly", (100, 0)).await;
    assert_eq!(live_split(&s.client).await, Some((100, 0)));
    // The alert names the failing metric, its value and threshold.
    let alert = s
        .wait_notification(&[
            "\"kind\":\"rolled-back\"",
            "\"name\":\"success-rate\"",
            ">= 99",
        ])
        .await;
    assert!(alert.contains("2 failed checks (threshold 2)"), "{alert}");
    // Rolled back at the threshold-th failed analysis, with no analysis in between: counted
    // in intervals, not wall time (a busy machine stretches an interval, not the count).
    let failed = failed_records(&state);
    assert!(
        failed.iter().all(|r| r.check == "success-rate"),
        "{failed:#?}"
    );
    let first = failed.first().expect("a failed check").at;
    let since_first: Vec<_> = state
        .history
        .iter()
        .filter(|r| r.check == "success-rate" && r.at >= first)
        .map(|r| r.outcome)
        .collect();
    assert_eq!(
        since_first,
        [veer::rollout::state::CheckOutcome::Failed; 2],
        "{:#?}",
        state.history
    );
    // And in time: threshold × interval after the first failed check, with slack for a busy
    // machine (the count above is the exact statement).
    let (threshold, interval, slack) = (
        2,
        chrono::TimeDelta::seconds(1),
        chrono::TimeDelta::seconds(5),
    );
    let last = failed.last().expect("a failed check").at;
    assert!(
        last - first <= interval * threshold + slack,
        "rolled back {} after the first failed check",
        last - first
    );
    // Never past the first step.
    assert!(
        v2_path(&s.recorded()).iter().all(|w| *w <= 25),
        "{:?}",
        s.recorded()
    );
    // The failed revision is not retried: a few more intervals change nothing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(live_split(&s.client).await, Some((100, 0)));
    assert_eq!(s.state().await.map(|s| s.phase), Some(Phase::Failed));
    // Until an operator asks: fixed, retried, promoted.
    s.set_v2(Behaviour::default());
    let (code, out) = s.veer_cli(&["rollout", "retry", "shop/reviews"]).await;
    assert_eq!(code, 0, "{out}");
    s.wait_phase("retried and promoted", Phase::Succeeded).await;
    s.wait_split("live equals git", (0, 100)).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_breach_is_rolled_back() {
    let s = Scenario::start(&policy("20s")).await;
    s.set_v2(Behaviour {
        error_rate: 0.0,
        latency_ms: 2000.0,
    });
    s.push_split(0, 100, "reviews v2 (slow)");
    let state = s.wait_phase("rolled back", Phase::Failed).await;
    assert!(
        matches!(state.failure, Some(FailureReason::FailedChecks { .. })),
        "{:?}",
        state.failure
    );
    let failing: Vec<&str> = failed_records(&state)
        .iter()
        .map(|r| r.check.as_str())
        .collect();
    assert!(failing.iter().all(|c| *c == "p99-latency"), "{failing:?}");
    s.wait_split("split restored", (100, 0)).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_traffic_holds_then_misses_the_progress_deadline() {
    let s = Scenario::start(&policy("5s")).await;
    s.exporter.set_rate(&ServiceKey::new(NS, "reviews"), 0.0);
    s.push_split(0, 100, "reviews v2, nobody calls");
    let state = s.wait_phase("rolled back", Phase::Failed).await;
    assert!(
        matches!(
            state.failure,
            Some(FailureReason::ProgressDeadline {
                phase: Phase::Progressing
            })
        ),
        "{:?}",
        state.failure
    );
    assert!(
        state
            .history
            .iter()
            .any(|r| r.outcome == veer::rollout::state::CheckOutcome::Held),
        "it held before the deadline: {:#?}",
        state.history
    );
    assert_eq!(state.failed_checks, 0, "no data is not a failed check");
    s.wait_split("split restored", (100, 0)).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_outage_holds_and_does_not_roll_back() {
    let mut s = Scenario::start(&policy("60s")).await;
    s.push_split(0, 100, "reviews v2");
    s.wait_split("first step", (75, 25)).await;
    s.prometheus.stop();
    // Far more than threshold × interval: an outage is not a bad canary.
    let (state, _) = s
        .wait_until("holding on the metrics error", |st, _| {
            st.is_some_and(|st| matches!(st.last_hold, Some(HoldReason::MetricsError { .. })))
        })
        .await;
    let state = state.expect("a state");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let later = s.state().await.expect("a state");
    assert_eq!(later.failed_checks, 0, "{:#?}", later.history);
    assert!(
        !matches!(later.phase, Phase::RollingBack | Phase::Failed),
        "{:?}",
        later.phase
    );
    assert_eq!(later.step, state.step, "held on the same step");
    let split = live_split(&s.client).await.expect("a split");
    assert!(split.1 > 0 && split.1 < 100, "still mid-rollout: {split:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_pushes_a_revert_commit_to_the_real_remote() {
    let policy = policy_with(
        "20s",
        "  revert: git\n  revertAuthor: veer bot <veer@example.com>\n",
    );
    let s = Scenario::start(&policy).await;
    s.set_v2(Behaviour {
        error_rate: 0.5,
        latency_ms: 20.0,
    });
    let offending = s.push_split(0, 100, "reviews: all traffic to v2");
    let (state, _) = s
        .wait_until("reverted in git", |st, _| {
            st.is_some_and(|st| st.phase == Phase::Failed && st.revert_commit.is_some())
        })
        .await;
    let state = state.expect("a state");
    let tip = s.remote.remote_tip("main");
    assert_ne!(tip, offending);
    assert_eq!(state.revert_commit.as_deref(), Some(tip.as_str()));
    s.remote.git(&["fetch", "-q", "origin"]);
    let message = s
        .remote
        .git(&["log", "-1", "--format=%an <%ae>%n%B", "origin/main"]);
    assert!(
        message.starts_with("veer bot <veer@example.com>\nRevert \"reviews: all traffic to v2\""),
        "{message}"
    );
    let file = s.remote.git(&["show", "origin/main:reviews.yaml"]);
    assert_eq!(file.trim_end(), virtual_service(100, 0).trim_end());
    // veer reads its own revert: git and live agree again, nothing moves.
    s.wait_until("the revert adopted", |st, _| {
        st.is_some_and(|st| st.revision == tip)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(live_split(&s.client).await, Some((100, 0)));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_that_does_not_read_back_alerts_and_is_written_again() {
    let s = Scenario::start(&policy("20s")).await;
    s.set_v2(Behaviour {
        error_rate: 0.5,
        latency_ms: 20.0,
    });
    s.push_split(0, 100, "reviews v2");
    // One failed check in: the next one rolls back. Its first write is refused.
    s.wait_until("a failed check", |st, _| {
        st.is_some_and(|st| st.failed_checks == 1)
    })
    .await;
    s.faults.add(faults::Fault {
        method: "PATCH",
        path: "/virtualservices/reviews".into(),
        code: 422,
        reason: "Invalid",
        message: "refused by the test".into(),
        times: 1,
    });
    let state = s.wait_phase("rolled back", Phase::Failed).await;
    assert_eq!(
        s.faults.injected(),
        1,
        "the rollback's first write was refused"
    );
    s.wait_split("restored on the second write", (100, 0)).await;
    assert!(state.seq >= 2);
    let alert = s
        .wait_notification(&["\"kind\":\"sync-failed\"", "rollback did not restore"])
        .await;
    assert!(alert.contains("reviews/v1:100"), "{alert}");
    s.stop().await;
}
