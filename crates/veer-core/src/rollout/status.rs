//! `veer rollout status` as text, pure and golden-tested: phase, step, a bar of the new
//! version's weight, the split (and its companions' and the live one), why it holds or
//! failed, and the last checks.

use super::state::CheckOutcome;
use super::{HoldReason, Phase, RolloutState, TrafficSplit};
use crate::ids::RolloutId;

/// How many check records `veer rollout status` shows.
const STATUS_CHECKS: usize = 4;

/// `veer rollout status` for one rollout, as text: phase, step, a bar of the new version's
/// weight, the split, why it holds or failed, and the last checks with value vs threshold.
/// Pure (golden-tested).
pub fn render_status(id: &RolloutId, state: &RolloutState, policy: &str) -> String {
    render_status_with_live(id, state, policy, None)
}

/// [`render_status`] with the split the route serves now (`live`, read from the API server):
/// shown beside the step's split when the two differ (a hand edit not yet undone).
pub fn render_status_with_live(
    id: &RolloutId,
    state: &RolloutState,
    policy: &str,
    live: Option<&TrafficSplit>,
) -> String {
    let weight = state.canary_weight();
    let target = state.target_split.weight_of(&state.canary());
    let mut out = String::new();
    let step = match state.phase {
        Phase::Progressing => format!("  step {}/{}", state.step + 1, state.steps.len()),
        Phase::Queued
        | Phase::WaitingForHealth
        | Phase::PreRollout
        | Phase::Mirroring
        | Phase::Matching
        | Phase::FaultTesting
        | Phase::Paused
        | Phase::AwaitingPromotion
        | Phase::Promoting
        | Phase::Succeeded
        | Phase::RollingBack
        | Phase::Failed => String::new(),
    };
    out.push_str(&format!(
        "{id}  {}{step}  policy {policy}  revision {}\n",
        state.phase,
        state.revision.get(..12).unwrap_or(&state.revision)
    ));
    let canary: Vec<String> = state.canary().iter().map(ToString::to_string).collect();
    out.push_str(&format!(
        "  weight   [{}] {weight:>3}%  ({} toward {target}%)\n",
        super::weight_bar(weight, 20, '#', '-'),
        if canary.is_empty() {
            "-".to_string()
        } else {
            canary.join(", ")
        },
    ));
    out.push_str(&format!("  split    {}\n", state.current_split));
    for c in &state.companions {
        let split = super::companions::companion_split(
            &state.start_split,
            &state.target_split,
            &state.current_split,
            c,
        );
        out.push_str(&format!("  with     {}  {split}\n", c.route));
    }
    if let Some(live) = live.filter(|l| !l.same_traffic(&state.current_split)) {
        out.push_str(&format!(
            "  live     {live}  (not the step's split: edited by hand? veer writes the step's split back at its next pass)\n"
        ));
    }
    if state.failed_checks > 0 {
        out.push_str(&format!("  failed checks {}\n", state.failed_checks));
    }
    if let Some(h) = &state.last_hold {
        out.push_str(&format!("  holding  {}\n", describe_hold(h)));
    }
    if let Some(f) = &state.failure {
        out.push_str(&format!("  failure  {f}\n"));
    }
    if let Some(c) = &state.revert_commit {
        out.push_str(&format!("  reverted in git by {c}\n"));
    }
    let checks: Vec<_> = state.history.iter().rev().take(STATUS_CHECKS).collect();
    if !checks.is_empty() {
        out.push_str("  last checks:\n");
        for r in checks.into_iter().rev() {
            let value = r
                .value
                .map_or_else(|| "-".to_string(), crate::figures::for_people);
            let outcome = match r.outcome {
                CheckOutcome::Passed => "pass",
                CheckOutcome::Failed => "FAIL",
                CheckOutcome::Held => "held",
            };
            let mut line = format!(
                "    {}  {:<16} {:>10}  {:<10} {outcome}",
                r.at.format("%H:%M:%S"),
                r.check,
                value,
                r.threshold
            );
            if !r.message.is_empty() {
                line.push_str(&format!("  ({})", r.message));
            }
            if let Some(b) = &r.baseline {
                line.push_str(&format!("  {b}"));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out
}

/// Why a rollout holds, for people.
fn describe_hold(h: &HoldReason) -> String {
    match h {
        HoldReason::NoData { metric } => format!("no data for {metric}"),
        HoldReason::TooFewRequests { metric, count, min } => {
            format!("{metric}: {count} requests, fewer than minRequests {min}")
        }
        HoldReason::MetricsError { metric, message } => {
            format!("cannot measure {metric}: {message}")
        }
        HoldReason::Inconclusive { metric } => {
            format!("{metric}: baseline comparison inconclusive")
        }
        HoldReason::Unavailable { why } if why.is_empty() => {
            "the new version's Deployments are not available".to_string()
        }
        HoldReason::Unavailable { why } => why.clone(),
        HoldReason::AwaitingConfirmation { webhook } => {
            format!("waiting for webhook {webhook} to confirm promotion")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{compared, id, record, split, state};
    use super::*;
    use crate::analysis::BaselineVerdict;
    use crate::rollout::FailureReason;

    #[test]
    fn status_rendering_matches_its_golden_file() {
        let mut progressing = state("0123456789abcdef", Phase::Progressing, (100, 0), (0, 100));
        progressing.step = 1;
        progressing.current_split = split(50, 50);
        progressing.failed_checks = 1;
        progressing.last_hold = Some(HoldReason::TooFewRequests {
            metric: "success-rate".into(),
            count: 3,
            min: 5,
        });
        progressing.record(record(1, "success-rate", Some(98.5), CheckOutcome::Failed));
        progressing.record(record(2, "success-rate", Some(99.9), CheckOutcome::Passed));
        progressing.record(record(3, "success-rate", None, CheckOutcome::Held));
        progressing.companions = vec![crate::rollout::CompanionRoute {
            route: crate::rollout::RouteRef {
                index: 1,
                name: Some("default".into()),
            },
            start: split(100, 0),
            target: split(0, 100),
        }];
        let mut failed = state("fedcba9876543210", Phase::Failed, (100, 0), (0, 100));
        failed.failure = Some(FailureReason::FailedChecks {
            failed: 2,
            threshold: 2,
        });
        failed.failed_checks = 2;
        let reason = "1 new and 9 baseline samples cannot show a difference at level 0.05 (the smallest possible p-value is 0.100); wait for more intervals";
        failed.record(compared(
            4,
            BaselineVerdict::Inconclusive {
                reason: reason.into(),
            },
        ));
        failed.record(compared(5, BaselineVerdict::Fail { p_value: 0.0065 }));
        failed.record(compared(6, BaselineVerdict::Fail { p_value: 0.0012 }));
        let mut passing = state("fedcba9876543210", Phase::Progressing, (100, 0), (0, 100));
        passing.record(compared(7, BaselineVerdict::Pass { p_value: 1.0 }));
        let text = render_status(&id(), &progressing, "default-canary")
            + "\n"
            + &render_status(&id(), &failed, "conservative")
            + "\n"
            + &render_status(&id(), &passing, "conservative")
            + "\n"
            + &render_status_with_live(&id(), &progressing, "default-canary", Some(&split(20, 80)));
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/rollout/status.golden");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        let golden = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_GOLDEN=1", path.display()));
        assert_eq!(text, golden);
    }
}
