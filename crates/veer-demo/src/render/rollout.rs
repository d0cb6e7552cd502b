//! A rollout as the demo prints it while it moves: the split veer just wrote as a bar, each
//! check against its threshold, phase changes, the failure and the revert commit, each told
//! once; and the policy that moves it, in one line.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::{Paint, bar, short, split_text};
use veer_controller::manifest::rollout_policy::{Revert, RolloutPolicy};
use veer_controller::rollout::state::{CheckOutcome, CheckRecord};
use veer_controller::rollout::{Phase, RolloutState, Standing, TrafficSplit};

/// The new version's subsets, joined: `v2`.
fn canary_names(state: &RolloutState) -> String {
    let canary = state.canary();
    let names: Vec<&str> = canary
        .iter()
        .map(|d| d.subset.as_deref().unwrap_or(&d.host))
        .collect();
    names.join("+")
}

/// The line for a split veer just wrote: where the rollout is, the bar and the split.
pub fn split_line(state: &RolloutState, paint: Paint) -> String {
    let weight = state.canary_weight();
    let label = match state.phase {
        Phase::Progressing => format!("step {}/{}", state.step + 1, state.steps.len()),
        Phase::Promoting | Phase::Succeeded => "promoted".to_string(),
        Phase::RollingBack | Phase::Failed => "rolled back".to_string(),
        Phase::Mirroring => "mirroring".to_string(),
        Phase::Matching => "A/B match".to_string(),
        Phase::FaultTesting => "fault test".to_string(),
        Phase::Queued
        | Phase::WaitingForHealth
        | Phase::PreRollout
        | Phase::Paused
        | Phase::AwaitingPromotion => state.phase.to_string(),
    };
    let bar = bar(weight);
    let bar = match state.phase.standing() {
        Standing::Failing => paint.red(&bar),
        Standing::Promoting | Standing::Succeeded => paint.green(&bar),
        Standing::Moving | Standing::Waiting => paint.cyan(&bar),
    };
    format!(
        "  {label:<11} {bar} {weight:>3}% {:<4} {}",
        canary_names(state),
        paint.dim(&split_text(&state.current_split))
    )
}

/// One check: `✓ success-rate  99.87  (>= 99)`, `✗ …`, or `… held: why`.
pub fn check_line(record: &CheckRecord, paint: Paint) -> String {
    let value = record
        .value
        .map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
    let (mark, verdict) = match record.outcome {
        CheckOutcome::Passed => (paint.green("✓"), String::new()),
        CheckOutcome::Failed => (paint.red("✗"), paint.red(" failed")),
        CheckOutcome::Held => (paint.yellow("…"), paint.yellow(" held")),
    };
    let threshold = if record.threshold.is_empty() {
        String::new()
    } else {
        format!("(want {})", record.threshold)
    };
    let mut line = format!(
        "      {mark} {:<14} {value:>8}  {threshold}{verdict}",
        record.check
    );
    if !record.message.is_empty() {
        line.push_str(&paint.dim(&format!(": {}", record.message)));
    } else if record.outcome == CheckOutcome::Held {
        // Why it could not be measured is in the verdict (no data, too few requests).
        line.push_str(&paint.dim(&format!(": {}", record.verdict)));
    }
    line.trim_end().to_string()
}

/// What has been printed of one rollout.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RolloutSeen {
    /// Checks recorded before this are an earlier attempt's (a restarted rollout keeps its
    /// history): not printed.
    since: Option<DateTime<Utc>>,
    phase: Option<Phase>,
    split: Option<TrafficSplit>,
    checks: BTreeSet<(DateTime<Utc>, String)>,
    failure: bool,
    revert: bool,
}

impl RolloutSeen {
    /// Print only checks recorded from `since` on.
    pub fn since(since: DateTime<Utc>) -> Self {
        RolloutSeen {
            since: Some(since),
            ..RolloutSeen::default()
        }
    }
}

/// The lines `state` adds to what `seen` has printed, in the order things happened: phase,
/// checks, the split written, the failure and the revert commit. Updates `seen`.
pub fn rollout_updates(seen: &mut RolloutSeen, state: &RolloutState, paint: Paint) -> Vec<String> {
    let mut out = Vec::new();
    for r in &state.history {
        if seen.since.is_some_and(|t| r.at < t) {
            continue;
        }
        if seen.checks.insert((r.at, r.check.clone())) {
            out.push(check_line(r, paint));
        }
    }
    if seen.phase != Some(state.phase) {
        let shown =
            match state.phase {
                // Their splits say it (Promoting and RollingBack say it first); a queue wait is
                // news only with a concurrency limit, which the demo has not.
                Phase::Queued | Phase::Progressing | Phase::Succeeded | Phase::Failed => None,
                Phase::WaitingForHealth => Some(paint.dim(
                    "  waiting for the new version's Deployments to be available (health gate)",
                )),
                Phase::Promoting => Some(paint.green("  promoting: every step passed")),
                Phase::RollingBack => Some(paint.red(&format!(
                "  rolling back: {}",
                state
                    .failure
                    .as_ref()
                    .map_or_else(|| "failed".to_string(), ToString::to_string)
            ))),
                Phase::PreRollout
                | Phase::Mirroring
                | Phase::Matching
                | Phase::FaultTesting
                | Phase::Paused
                | Phase::AwaitingPromotion => Some(paint.dim(&format!("  phase {}", state.phase))),
            };
        if state.phase == Phase::RollingBack {
            seen.failure = true;
        }
        out.extend(shown);
        seen.phase = Some(state.phase);
    }
    if seen.split.as_ref() != Some(&state.current_split) {
        // The split before the first write is where the rollout starts: not news.
        if seen.split.is_some() || state.current_split != state.start_split {
            out.push(split_line(state, paint));
        }
        seen.split = Some(state.current_split.clone());
    }
    if !seen.failure
        && let Some(f) = &state.failure
    {
        out.push(paint.red(&format!("  why: {f}")));
        seen.failure = true;
    }
    if !seen.revert
        && let Some(c) = &state.revert_commit
    {
        out.push(paint.yellow(&format!(
            "  ↩ veer pushed a revert commit {} to the tracked branch",
            short(c)
        )));
        seen.revert = true;
    }
    out
}

/// How a policy will move traffic: `policy default-canary: every 3s, steps 10 → 25 → 50 %,
/// then promotion; 2 failed checks roll back; revert: git`.
pub fn policy_line(policy: &RolloutPolicy) -> String {
    let steps: Vec<String> = policy
        .spec
        .step_values()
        .iter()
        .map(ToString::to_string)
        .collect();
    let metrics: Vec<String> = policy.spec.metrics.iter().map(|m| m.name.clone()).collect();
    format!(
        "  policy {}: every {}, steps {} %, then promotion; checks {}; {} failed checks roll back{}",
        policy.name(),
        policy.spec.interval,
        steps.join(" → "),
        metrics.join(", "),
        policy.spec.threshold(),
        match policy.spec.revert {
            Revert::Git => "; revert: git",
            Revert::None => "",
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use veer_controller::analysis::AnalysisVerdict;
    use veer_controller::rollout::split::DestinationId;
    use veer_controller::rollout::state::FailureReason;

    const PLAIN: Paint = Paint { color: false };

    fn split(pairs: &[(&str, u32)]) -> TrafficSplit {
        pairs
            .iter()
            .map(|(s, w)| (DestinationId::new("reviews", Some(s)), *w))
            .collect()
    }

    fn state(json: Value) -> RolloutState {
        serde_json::from_value(json).unwrap()
    }

    fn rollout(phase: &str, current: &[(&str, u32)]) -> RolloutState {
        let weights = |p: &[(&str, u32)]| {
            p.iter()
                .map(|(s, w)| json!({"host": "reviews", "subset": s, "weight": w}))
                .collect::<Vec<_>>()
        };
        state(json!({
            "version": 1, "revision": "0123456789abcdef", "route": {"index": 0, "name": "primary"},
            "phase": phase, "stage": {"stage": "start"}, "seq": 1, "lastCommand": 0,
            "startSplit": weights(&[("v1", 100), ("v2", 0)]),
            "fromSplit": weights(&[("v1", 100), ("v2", 0)]),
            "targetSplit": weights(&[("v1", 0), ("v2", 100)]),
            "currentSplit": weights(current),
            "steps": [10, 25, 50], "step": 1, "iterations": 0, "failedChecks": 0,
            "createdAt": "2026-11-25T10:00:00Z", "phaseStartedAt": "2026-11-25T10:00:00Z",
            "stepStartedAt": "2026-11-25T10:00:00Z",
        }))
    }

    fn record(
        check: &str,
        value: Option<f64>,
        outcome: CheckOutcome,
        message: &str,
    ) -> CheckRecord {
        CheckRecord {
            at: "2026-11-25T10:00:02Z".parse().unwrap(),
            phase: Phase::Progressing,
            step: 0,
            check: check.to_string(),
            query: String::new(),
            same_query: false,
            value,
            threshold: ">= 99".to_string(),
            verdict: AnalysisVerdict::Pass,
            message: message.to_string(),
            outcome,
            baseline: None,
        }
    }

    #[test]
    fn checks_say_value_threshold_and_outcome() {
        let cases = [
            (
                record("success-rate", Some(99.871), CheckOutcome::Passed, ""),
                "      ✓ success-rate      99.87  (want >= 99)",
            ),
            (
                record("success-rate", Some(91.2), CheckOutcome::Failed, ""),
                "      ✗ success-rate      91.20  (want >= 99) failed",
            ),
            (
                record("p99-latency", None, CheckOutcome::Held, "too few requests"),
                "      … p99-latency           -  (want >= 99) held: too few requests",
            ),
            (
                CheckRecord {
                    verdict: AnalysisVerdict::NoData,
                    ..record("success-rate", None, CheckOutcome::Held, "")
                },
                "      … success-rate          -  (want >= 99) held: no data",
            ),
        ];
        for (r, want) in cases {
            assert_eq!(check_line(&r, PLAIN), want);
        }
        let coloured = check_line(&cases_failed(), Paint { color: true });
        assert!(coloured.contains("\x1b[31m✗\x1b[0m"), "{coloured}");
    }

    fn cases_failed() -> CheckRecord {
        record("success-rate", Some(91.2), CheckOutcome::Failed, "")
    }

    #[test]
    fn splits_read_as_subsets() {
        assert_eq!(
            split_text(&split(&[("v1", 75), ("v2", 25)])),
            "v1 75 · v2 25"
        );
        assert_eq!(split_text(&split(&[("v1", 0), ("v3", 100)])), "v3 100");
        let s = rollout("progressing", &[("v1", 75), ("v2", 25)]);
        assert_eq!(
            split_line(&s, PLAIN),
            format!("  step 2/3    {} {:>3}% v2   v1 75 · v2 25", bar(25), 25)
        );
    }

    #[test]
    fn rollout_updates_print_each_change_once() {
        let mut seen = RolloutSeen::default();
        // Queued at the start split: nothing has moved yet.
        let queued = rollout("waitingForHealth", &[("v1", 100), ("v2", 0)]);
        let lines = rollout_updates(&mut seen, &queued, PLAIN);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("health gate"));
        assert!(rollout_updates(&mut seen, &queued, PLAIN).is_empty());

        let mut step = rollout("progressing", &[("v1", 90), ("v2", 10)]);
        step.step = 0;
        let lines = rollout_updates(&mut seen, &step, PLAIN);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("  step 1/3"), "{lines:?}");

        step.history.push(record(
            "success-rate",
            Some(100.0),
            CheckOutcome::Passed,
            "",
        ));
        let lines = rollout_updates(&mut seen, &step, PLAIN);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains("✓ success-rate"));

        let mut failed = rollout("failed", &[("v1", 100), ("v2", 0)]);
        failed.history = step.history.clone();
        failed.failure = Some(FailureReason::FailedChecks {
            failed: 2,
            threshold: 2,
        });
        failed.revert_commit = Some("abcdef0123456789".to_string());
        let lines = rollout_updates(&mut seen, &failed, PLAIN);
        assert_eq!(
            lines,
            vec![
                format!("  rolled back {}   0% v2   v1 100", bar(0)),
                "  why: 2 failed checks (threshold 2)".to_string(),
                "  ↩ veer pushed a revert commit abcdef012345 to the tracked branch".to_string(),
            ]
        );
        assert!(rollout_updates(&mut seen, &failed, PLAIN).is_empty());
    }

    #[test]
    fn checks_of_an_earlier_attempt_are_not_printed() {
        let mut s = rollout("progressing", &[("v1", 90), ("v2", 10)]);
        s.history
            .push(record("success-rate", Some(1.0), CheckOutcome::Failed, ""));
        let mut seen = RolloutSeen::since("2026-11-25T10:00:03Z".parse().unwrap());
        let lines = rollout_updates(&mut seen, &s, PLAIN);
        assert!(
            !lines.iter().any(|l| l.contains("success-rate")),
            "{lines:?}"
        );
        let mut seen = RolloutSeen::since("2026-11-25T10:00:01Z".parse().unwrap());
        let lines = rollout_updates(&mut seen, &s, PLAIN);
        assert!(
            lines.iter().any(|l| l.contains("success-rate")),
            "{lines:?}"
        );
    }

    #[test]
    fn rolling_back_names_the_reason_once() {
        let mut seen = RolloutSeen::default();
        let mut s = rollout("rollingBack", &[("v1", 75), ("v2", 25)]);
        s.failure = Some(FailureReason::Aborted);
        let lines = rollout_updates(&mut seen, &s, PLAIN);
        assert_eq!(lines[0], "  rolling back: aborted by an operator");
        assert!(
            !lines.iter().skip(1).any(|l| l.contains("aborted")),
            "{lines:?}"
        );
    }

    #[test]
    fn policy_line_says_steps_checks_and_revert() {
        let tree: crate::story::Tree = crate::story::DEMO_POLICY
            .iter()
            .chain(crate::story::REVIEWS)
            .map(|f| (f.path.to_string(), f.text.to_string()))
            .collect();
        let policy = crate::story::policy_for(&tree, crate::story::REVIEWS_VS)
            .unwrap()
            .unwrap();
        assert_eq!(
            policy_line(&policy),
            "  policy default-canary: every 3s, steps 10 → 25 → 50 %, then promotion; checks \
             success-rate, p99-latency; 2 failed checks roll back; revert: git"
        );
    }
}
