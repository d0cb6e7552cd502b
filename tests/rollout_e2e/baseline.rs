//! Comparing the canary with the old version (`spec.baseline`).

use veer::exporter::Behaviour;
use veer::rollout::Phase;

use crate::fixtures::*;
use crate::harness::*;

// Baseline comparison (the policy's `spec.baseline`): both versions' samples from the real
// Prometheus, one per second since the phase began, compared with a Mann-Whitney U test.

/// The test policy comparing both metrics with the old version, a sample a second.
fn baseline_policy() -> String {
    policy_with(
        "20s",
        "  baseline:\n    mannWhitney: {alpha: 0.05}\n    step: 1s\n",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline_a_slower_canary_inside_its_threshold_is_rolled_back() {
    use veer::analysis::{AnalysisVerdict, BaselineVerdict};
    use veer::rollout::state::CheckOutcome;
    let s = Scenario::start(&baseline_policy()).await;
    // Ten times v1's 20 ms: a p99 of 248.5 ms, well inside `max: 500`.
    s.set_v2(Behaviour {
        error_rate: 0.0,
        latency_ms: 200.0,
    });
    s.push_split(0, 100, "reviews v2, slower");
    let state = s.wait_rolled_back_by_two_failed_checks().await;
    s.wait_split("split restored exactly", (100, 0)).await;
    let failed = failed_records(&state);
    assert_eq!(failed.len(), 2, "{:#?}", state.history);
    for r in failed {
        // Failed by the comparison, not by the threshold.
        assert_eq!(r.check, "p99-latency", "{r:#?}");
        assert!(r.value.is_some_and(|v| v < 500.0), "{r:#?}");
        assert!(
            matches!(r.verdict, AnalysisVerdict::WorseThanBaseline { p_value, alpha } if p_value < alpha),
            "{r:#?}"
        );
        let b = r.baseline.as_ref().expect("the comparison is recorded");
        assert!(matches!(b.verdict, BaselineVerdict::Fail { .. }), "{b:?}");
        assert!(
            b.query.contains("destination_version=\"v1\""),
            "{}",
            b.query
        );
        assert!(b.canary_median > b.baseline_median, "{b:?}");
    }
    assert!(
        state
            .history
            .iter()
            .filter(|r| r.check == "success-rate")
            .all(|r| r.outcome != CheckOutcome::Failed),
        "equal success rates never fail: {:#?}",
        state.history
    );
    // The alert, `veer rollout status` and the metrics carry the p-value next to the value
    // and threshold.
    s.wait_notification(&[
        "\"kind\":\"rolled-back\"",
        "\"name\":\"p99-latency\"",
        "<= 500",
        "baseline fail p=",
    ])
    .await;
    let (code, out) = s.veer_cli(&["rollout", "status", "shop/reviews"]).await;
    assert_eq!(code, 5, "{out}");
    // Without a name too: one rollout failed, so the command fails.
    let (all_code, all_out) = s.veer_cli(&["rollout", "status"]).await;
    assert_eq!(all_code, 5, "{all_out}");
    // `veer status` says the revision is applied, and that its rollout rolled back.
    let (code, status) = s.veer_cli(&["status"]).await;
    assert_eq!(code, 0, "{status}");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("rollout") && l.contains("shop/reviews ROLLED BACK")),
        "{status}"
    );
    assert!(
        out.lines().any(|l| l.contains("p99-latency")
            && l.contains("<= 500")
            && l.contains("FAIL  baseline fail p=")),
        "{out}"
    );
    let text = s.metrics.encode();
    assert!(
        text.lines()
            .any(|l| l.starts_with("veer_analysis_baseline_p_value")
                && l.contains("p99-latency")
                && l.contains("shop/reviews")),
        "{text}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline_a_canary_equal_to_the_baseline_is_promoted() {
    use veer::analysis::{AnalysisVerdict, BaselineVerdict};
    use veer::rollout::state::CheckOutcome;
    let s = Scenario::start(&baseline_policy()).await;
    // v2 answers as v1 does (20 ms, no errors).
    let commit = s.push_split(0, 100, "reviews v2");
    let state = s.wait_phase("promoted", Phase::Succeeded).await;
    assert_eq!(state.revision, commit);
    s.wait_split("live equals git", (0, 100)).await;
    assert_eq!(s.v2_path_to((0, 100)).await, vec![0, 25, 50, 75, 100]);
    assert_eq!(state.failed_checks, 0, "{:#?}", state.history);
    let p99: Vec<_> = state
        .history
        .iter()
        .filter(|r| r.check == "p99-latency")
        .collect();
    // A comparison with fewer than 4 samples of the new version (early in a step: only the
    // step's own samples count) cannot decide at 0.05: it holds as "cannot measure"; with 4
    // or more, equal versions pass.
    for r in p99.iter().filter(|r| r.baseline.is_some()) {
        let b = r.baseline.as_ref().expect("filtered");
        if b.canary_samples < 4 {
            assert_eq!(
                (r.outcome, &r.verdict),
                (CheckOutcome::Held, &AnalysisVerdict::Inconclusive),
                "{r:#?}"
            );
            assert!(
                matches!(&b.verdict, BaselineVerdict::Inconclusive { reason }
                    if reason.contains("wait for more intervals")
                        || reason.contains("wait one metric interval")),
                "{r:#?}"
            );
        } else {
            assert_eq!(r.outcome, CheckOutcome::Passed, "{r:#?}");
        }
    }
    // Then every step passed its comparison: equal constant latencies are ties (p = 1).
    for step in 0..3 {
        assert!(
            p99.iter().any(|r| r.step == step
                && r.outcome == CheckOutcome::Passed
                && r.baseline
                    .as_ref()
                    .is_some_and(|b| b.verdict == BaselineVerdict::Pass { p_value: 1.0 }
                        && b.canary_samples >= 4)),
            "step {step} passed its comparison: {p99:#?}"
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline_a_slower_canary_within_the_allowance_is_promoted() {
    use veer::analysis::BaselineVerdict;
    use veer::rollout::state::CheckOutcome;
    let s = Scenario::start(&policy_with(
        "20s",
        "  baseline:\n    mannWhitney: {alpha: 0.05}\n    step: 1s\n    metrics:\n    - {name: success-rate}\n    - {name: p99-latency, allowance: 150}\n",
    ))
    .await;
    // 30 ms against v1's 20 ms: a p99 of 49.75 ms, twice v1's 24.85 ms and certainly slower,
    // but inside the 150 % the policy allows.
    s.set_v2(Behaviour {
        error_rate: 0.0,
        latency_ms: 30.0,
    });
    s.push_split(0, 100, "reviews v2, a little slower");
    let state = s.wait_phase("promoted", Phase::Succeeded).await;
    s.wait_split("live equals git", (0, 100)).await;
    assert_eq!(state.failed_checks, 0, "{:#?}", state.history);
    let allowed: Vec<_> = state
        .history
        .iter()
        .filter_map(|r| r.baseline.as_ref().map(|b| (r, b)))
        .filter(|(_, b)| matches!(b.verdict, BaselineVerdict::WithinAllowance { .. }))
        .collect();
    assert!(!allowed.is_empty(), "{:#?}", state.history);
    for (r, b) in allowed {
        assert_eq!(
            (r.check.as_str(), r.outcome),
            ("p99-latency", CheckOutcome::Passed)
        );
        assert!(
            matches!(b.verdict, BaselineVerdict::WithinAllowance { p_value, change }
                if p_value < 0.05 && (change - 1.0).abs() < 0.01),
            "{b:?}"
        );
        assert!(b.to_string().contains("within the 150% allowance"), "{b}");
    }
    s.stop().await;
}
