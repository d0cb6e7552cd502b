//! How the demo prints: weights as progress bars, checks against their thresholds, rollout
//! progress as it changes, Slack messages, and the closing summary. Pure functions of plain
//! data; colour (ANSI) only when asked, so the output reads the same in CI logs.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use veer_controller::manifest::rollout_policy::{Revert, RolloutPolicy};
use veer_controller::rollout::state::{CheckOutcome, CheckRecord};
use veer_controller::rollout::{Phase, RolloutState, Standing, TrafficSplit};
use veer_controller::sync::state::SyncState;

/// Width of a weight bar, in characters.
pub const BAR_WIDTH: usize = 20;

/// ANSI colours, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paint {
    pub color: bool,
}

impl Paint {
    fn wrap(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    pub fn bold(self, text: &str) -> String {
        self.wrap("1", text)
    }
    pub fn dim(self, text: &str) -> String {
        self.wrap("2", text)
    }
    pub fn green(self, text: &str) -> String {
        self.wrap("32", text)
    }
    pub fn red(self, text: &str) -> String {
        self.wrap("31", text)
    }
    pub fn yellow(self, text: &str) -> String {
        self.wrap("33", text)
    }
    pub fn cyan(self, text: &str) -> String {
        self.wrap("36", text)
    }
}

/// `weight` percent as a bar of [`BAR_WIDTH`] cells: `█████░░░…`. Any weight above 0 shows
/// at least one cell, so a 1 % canary is visible.
pub fn bar(weight: u32) -> String {
    veer_controller::rollout::weight_bar(weight, BAR_WIDTH, '█', '░')
}

/// A split as people read it: `v1 90 · v2 10` (subset names, the host when there is none;
/// destinations without weight left out).
pub fn split_text(split: &TrafficSplit) -> String {
    split
        .iter()
        .filter(|(_, w)| *w > 0)
        .map(|(d, w)| format!("{} {w}", d.subset.as_deref().unwrap_or(&d.host)))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The new version's subsets, joined: `v2`.
fn canary_names(state: &RolloutState) -> String {
    let names: Vec<String> = state
        .canary()
        .iter()
        .map(|d| d.subset.clone().unwrap_or_else(|| d.host.clone()))
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

pub use veer_controller::ids::short;

/// What veer's pass changed between two recorded states, one line per object (`created
/// Deployment ns/name`, `updated`, `pruned`, `failed`), then the counts. Told apart by the
/// hash veer recorded for each applied object, so objects left alone are not listed.
pub fn applied_lines(before: Option<&SyncState>, now: &SyncState, paint: Paint) -> Vec<String> {
    let old: BTreeMap<String, Option<&str>> = before
        .map(|b| {
            b.objects
                .iter()
                .map(|o| (o.key().to_string(), o.hash.as_deref()))
                .collect()
        })
        .unwrap_or_default();
    let mut lines = Vec::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut line = |verb: &'static str, key: String, extra: String| {
        *counts.entry(verb).or_insert(0) += 1;
        if verb == "unchanged" {
            return;
        }
        let shown = match verb {
            "failed" => paint.red(verb),
            _ => paint.green(verb),
        };
        // Pad by the plain text: colour codes take no room.
        let pad = " ".repeat(9usize.saturating_sub(verb.len()));
        lines.push(format!("    {shown}{pad}{key}{extra}"));
    };
    let mut present = BTreeSet::new();
    for o in &now.objects {
        let key = o.key().to_string();
        present.insert(key.clone());
        if o.result == "failed" {
            let why = o.message.clone().unwrap_or_default();
            line("failed", key, paint.dim(&format!(": {why}")));
            continue;
        }
        let Some(hash) = o.hash.as_deref() else {
            continue;
        };
        match old.get(&key) {
            None | Some(None) => line("created", key, String::new()),
            Some(Some(h)) if *h != hash => line("updated", key, String::new()),
            Some(Some(_)) => line("unchanged", key, String::new()),
        }
    }
    for (key, hash) in &old {
        if hash.is_some() && !present.contains(key) {
            line("pruned", key.clone(), String::new());
        }
    }
    let counts: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    lines.push(paint.dim(&format!("    ({})", counts.join(", "))));
    lines
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

/// A Slack message as the demo's receiver prints it: the title, then the details indented.
pub fn slack_lines(payload: &Value, paint: Paint) -> Vec<String> {
    let title = payload
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or("(no text)");
    let attachment = payload.pointer("/attachments/0");
    use veer_controller::notify::Severity;
    // The severity back from the colour veer gave the message (none: an info message).
    let colour = attachment
        .and_then(|a| a.get("color"))
        .and_then(Value::as_str);
    let severity = [Severity::Info, Severity::Warning, Severity::Error]
        .into_iter()
        .find(|s| colour == Some(veer_controller::notify::slack::colour(*s)))
        .unwrap_or(Severity::Info);
    let icon = match severity {
        Severity::Error => paint.red("●"),
        Severity::Warning => paint.yellow("●"),
        Severity::Info => paint.green("●"),
    };
    let mut out = vec![format!("  {} {icon} {title}", paint.bold("[slack]"))];
    // The second section holds the details; the first repeats the title.
    let details = attachment
        .and_then(|a| a.get("blocks"))
        .and_then(Value::as_array)
        .and_then(|blocks| {
            blocks
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("section"))
                .nth(1)
        })
        .and_then(|b| b.pointer("/text/text"))
        .and_then(Value::as_str)
        .unwrap_or("");
    for line in details.lines().filter(|l| !l.trim().is_empty()) {
        out.push(paint.dim(&format!("            {}", unescape(line))));
    }
    out
}

/// Undo Slack's mrkdwn escapes for the terminal.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// `━━ Act 2 · Title ━━━━…` padded to a fixed width.
pub fn act_header(number: usize, title: &str, paint: Paint) -> String {
    let text = format!("━━ Act {number} · {title} ");
    let pad = 86usize.saturating_sub(text.chars().count());
    paint.bold(&format!("{text}{}", "━".repeat(pad)))
}

/// A duration as `9.8 s`.
pub fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// How one act ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ActReport {
    pub title: String,
    /// Did it show what it had to?
    pub ok: bool,
    pub outcome: String,
    /// The new version's weights, in order (`10 → 25 → 0`), when a rollout ran.
    pub weights: Vec<u32>,
    pub took: Duration,
}

/// Everything the summary prints besides the acts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Closing {
    pub slack_messages: usize,
    /// `short summary` of veer's revert commit, when it pushed one.
    pub revert: Option<String>,
    /// `git log --oneline` of the tracked branch, newest first.
    pub log: Vec<String>,
    pub status_url: String,
    pub total: Duration,
}

/// The closing summary.
pub fn summary(acts: &[ActReport], closing: &Closing, paint: Paint) -> String {
    let mut out = String::new();
    let header = "━━ Summary ";
    out.push_str(&paint.bold(&format!(
        "{header}{}",
        "━".repeat(86 - header.chars().count())
    )));
    out.push('\n');
    for (i, a) in acts.iter().enumerate() {
        let mark = if a.ok {
            paint.green("✓")
        } else {
            paint.red("✗")
        };
        out.push_str(&format!(
            "  {mark} {} {:<50} {:>7}\n",
            i + 1,
            a.title,
            seconds(a.took)
        ));
        out.push_str(&format!("        {}\n", a.outcome));
        if !a.weights.is_empty() {
            let path: Vec<String> = a.weights.iter().map(|w| format!("{w}%")).collect();
            out.push_str(&paint.dim(&format!("        weights {}\n", path.join(" → "))));
        }
    }
    out.push_str(&format!(
        "  Slack messages received: {}\n",
        closing.slack_messages
    ));
    match &closing.revert {
        Some(r) => out.push_str(&format!("  revert commit pushed by veer: {r}\n")),
        None => out.push_str("  revert commit pushed by veer: none\n"),
    }
    if !closing.log.is_empty() {
        out.push_str("  git log --oneline (the branch veer tracks):\n");
        for l in &closing.log {
            out.push_str(&format!("    {l}\n"));
        }
    }
    out.push_str(&format!(
        "  status page: {}   whole demo: {}\n",
        closing.status_url,
        seconds(closing.total)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
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
            value,
            threshold: ">= 99".to_string(),
            verdict: AnalysisVerdict::Pass,
            message: message.to_string(),
            outcome,
            baseline: None,
        }
    }

    #[test]
    fn bars() {
        let cases = [
            (0, 0),
            (1, 1),
            (5, 1),
            (10, 2),
            (25, 5),
            (50, 10),
            (99, 20),
            (100, 20),
            (150, 20),
        ];
        for (weight, filled) in cases {
            let b = bar(weight);
            assert_eq!(b.chars().count(), BAR_WIDTH, "{weight}");
            assert_eq!(b.chars().filter(|c| *c == '█').count(), filled, "{weight}");
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
    fn slack_messages_print_title_and_details() {
        let event = veer_controller::notify::Event::RevisionApplied {
            revision: veer_controller::notify::CommitInfo {
                commit: "0123456789abcdef0123".into(),
                author: "veer demo <demo@veer.local>".into(),
                summary: "reviews: first deploy".into(),
            },
            created: 3,
            updated: 0,
            pruned: 0,
        };
        let payload = veer_controller::notify::slack::message(&event, &Default::default());
        let lines = slack_lines(&payload, PLAIN);
        assert!(lines[0].starts_with("  [slack] ● "), "{lines:?}");
        assert!(lines[0].contains("0123456"), "{lines:?}");
        assert!(lines.len() > 1, "details are printed: {lines:?}");
        assert_eq!(
            slack_lines(&json!({"text": "a &lt;b&gt;"}), PLAIN),
            vec!["  [slack] ● a &lt;b&gt;".to_string()],
            "the title is plain text, not mrkdwn"
        );
    }

    #[test]
    fn applied_objects_are_told_apart_by_their_hash() {
        let record = |kind: &str, name: &str, hash: Option<&str>, result: &str| {
            json!({"version": "v1", "kind": kind, "namespace": "bookinfo", "name": name,
                   "hash": hash, "result": result})
        };
        let state = |objects: Vec<Value>| -> SyncState {
            serde_json::from_value(json!({"format": 1, "objects": objects})).unwrap()
        };
        let first = state(vec![
            record("Service", "reviews", Some("a"), "created"),
            record("Service", "ratings", Some("b"), "created"),
            record("ConfigMap", "gone", Some("c"), "created"),
        ]);
        assert_eq!(
            applied_lines(None, &first, PLAIN),
            vec![
                "    created  Service bookinfo/reviews",
                "    created  Service bookinfo/ratings",
                "    created  ConfigMap bookinfo/gone",
                "    (3 created)",
            ]
        );
        // The results veer records stay "created" until an object changes: the hash tells.
        let second = state(vec![
            record("Service", "reviews", Some("a"), "created"),
            record("Service", "ratings", Some("b2"), "updated"),
            record("Service", "details", Some("d"), "created"),
            json!({"version": "v1", "kind": "Service", "namespace": "bookinfo",
                   "name": "broken", "result": "failed", "message": "refused"}),
        ]);
        assert_eq!(
            applied_lines(Some(&first), &second, PLAIN),
            vec![
                "    updated  Service bookinfo/ratings",
                "    created  Service bookinfo/details",
                "    failed   Service bookinfo/broken: refused",
                "    pruned   ConfigMap bookinfo/gone",
                "    (1 created, 1 failed, 1 pruned, 1 unchanged, 1 updated)",
            ]
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

    #[test]
    fn summary_lists_acts_messages_revert_and_log() {
        let acts = vec![
            ActReport {
                title: "First deploy".into(),
                ok: true,
                outcome: "applied: 12 objects created".into(),
                weights: vec![],
                took: Duration::from_millis(2100),
            },
            ActReport {
                title: "Canary to v2".into(),
                ok: true,
                outcome: "rolled back".into(),
                weights: vec![10, 25, 0],
                took: Duration::from_millis(9800),
            },
        ];
        let closing = Closing {
            slack_messages: 7,
            revert: Some("abc1234 Revert \"x\"".into()),
            log: vec!["abc1234 Revert \"x\"".into(), "def5678 x".into()],
            status_url: "http://127.0.0.1:1/".into(),
            total: Duration::from_secs(61),
        };
        let text = summary(&acts, &closing, PLAIN);
        for want in [
            "  ✓ 1 First deploy",
            "2.1 s",
            "        weights 10% → 25% → 0%",
            "  Slack messages received: 7",
            "  revert commit pushed by veer: abc1234 Revert \"x\"",
            "    def5678 x",
            "status page: http://127.0.0.1:1/",
            "whole demo: 61.0 s",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        assert!(!text.contains('\x1b'));
    }
}
