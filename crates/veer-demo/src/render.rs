//! How the demo prints: weights as progress bars, checks against their thresholds, rollout
//! progress as it changes, Slack messages, and the closing summary. Pure functions of plain
//! data; colour (ANSI) only when asked, so the output reads the same in CI logs.
//!
//! Parts: `rollout` (a rollout as it moves, and the policy moving it) and `summary` (how
//! each act ended, and the closing summary); here, the paint, the bars and splits they share,
//! what a sync pass changed and what veer posted to Slack.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use veer_controller::rollout::TrafficSplit;
use veer_controller::sync::state::SyncState;

mod rollout;
mod summary;

pub use rollout::{RolloutSeen, check_line, policy_line, rollout_updates, split_line};
pub use summary::{ActReport, Closing, summary};

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

/// Width of the label column of the stage's header (`  API server   http://…`).
pub const HEADER_LABEL_WIDTH: usize = 13;

/// One line of the stage's header: the label in bold, padded to [`HEADER_LABEL_WIDTH`] by its
/// plain text (a `{:<13}` on the painted label would count the colour codes as width and
/// leave none), then the value. At least one space separates them.
pub fn header_row(label: &str, value: &str, paint: Paint) -> String {
    let pad = HEADER_LABEL_WIDTH
        .saturating_sub(label.chars().count())
        .max(1);
    format!("  {}{}{value}", paint.bold(label), " ".repeat(pad))
}

/// Why a measured p99 reads above the delay every slow request got, or `None` when it does
/// not: Prometheus only has the histogram's buckets (`buckets`, upper bounds in ms, as the
/// exporter reports them), and `histogram_quantile` interpolates linearly inside the bucket
/// the 99th percentile falls in, so a 7 s delay in the 5-10 s bucket reads as ~9.5 s.
pub fn p99_bucket_note(p99_ms: f64, delay_ms: f64, buckets: &[f64]) -> Option<String> {
    if !(delay_ms > 0.0 && p99_ms > delay_ms) {
        return None;
    }
    // The bucket holding the delay: `le` is inclusive, so the first bound at or above it.
    let upper = buckets.iter().copied().find(|b| *b >= delay_ms)?;
    let lower = buckets
        .iter()
        .copied()
        .filter(|b| *b < delay_ms)
        .fold(0.0, f64::max);
    // Above the bucket's top the interpolation does not explain it.
    if p99_ms > upper {
        return None;
    }
    let unit = |ms: f64| {
        if upper >= 1000.0 {
            (format!("{}", ms / 1000.0), "s")
        } else {
            (format!("{ms}"), "ms")
        }
    };
    let ((low, u), (high, _)) = (unit(lower), unit(upper));
    let (delay, _) = unit(delay_ms);
    let measured = if upper >= 1000.0 {
        format!("{:.1}", p99_ms / 1000.0)
    } else {
        format!("{p99_ms:.0}")
    };
    Some(format!(
        "(Prometheus estimates the p99 inside the {low}–{high} {u} histogram bucket, so a {delay} {u} delay reads as ~{measured} {u})"
    ))
}

/// A duration as `9.8 s`.
pub fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PLAIN: Paint = Paint { color: false };

    /// `text` without its ANSI colour codes: what takes room on a terminal.
    fn visible(text: &str) -> String {
        let mut out = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                // CSI: ESC `[` parameters, up to the final letter.
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn the_header_values_line_up_with_and_without_colour() {
        let labels = [
            "API server",
            "kubeconfig",
            "exporter",
            "prometheus",
            "slack",
            "git",
            "veer run",
            "status page",
            "demo dir",
        ];
        for color in [false, true] {
            let paint = Paint { color };
            for label in labels {
                let line = header_row(label, "VALUE", paint);
                if color {
                    assert!(line.contains('\x1b'), "the label is painted: {line:?}");
                }
                let plain = visible(&line);
                let column = plain.find("VALUE").unwrap();
                assert_eq!(column, 2 + HEADER_LABEL_WIDTH, "color {color}: {plain:?}");
                assert!(plain.starts_with(&format!("  {label} ")), "{plain:?}");
            }
        }
        // A label as wide as the column still keeps a space before its value.
        let long = visible(&header_row(
            "a-very-long-label",
            "VALUE",
            Paint { color: true },
        ));
        assert_eq!(long, "  a-very-long-label VALUE");
    }

    #[test]
    fn a_p99_above_the_delay_is_explained_by_the_exporters_buckets() {
        use veer_devcluster::exporter::DURATION_BUCKETS_MS;
        // 10 % of requests delayed 7 s: the 99th percentile is 9/10 into the 5-10 s bucket.
        assert_eq!(
            p99_bucket_note(9500.0, 7000.0, &DURATION_BUCKETS_MS).as_deref(),
            Some(
                "(Prometheus estimates the p99 inside the 5–10 s histogram bucket, so a 7 s delay reads as ~9.5 s)"
            )
        );
        assert_eq!(
            p99_bucket_note(2200.0, 1500.0, &DURATION_BUCKETS_MS).as_deref(),
            Some(
                "(Prometheus estimates the p99 inside the 1–2.5 s histogram bucket, so a 1.5 s delay reads as ~2.2 s)"
            )
        );
        assert_eq!(
            p99_bucket_note(480.0, 300.0, &DURATION_BUCKETS_MS).as_deref(),
            Some(
                "(Prometheus estimates the p99 inside the 250–500 ms histogram bucket, so a 300 ms delay reads as ~480 ms)"
            )
        );
        // Nothing to explain: at or below the delay, above the bucket, no delay, no bucket.
        assert_eq!(p99_bucket_note(7000.0, 7000.0, &DURATION_BUCKETS_MS), None);
        assert_eq!(p99_bucket_note(6800.0, 7000.0, &DURATION_BUCKETS_MS), None);
        assert_eq!(p99_bucket_note(12000.0, 7000.0, &DURATION_BUCKETS_MS), None);
        assert_eq!(p99_bucket_note(50.0, 0.0, &DURATION_BUCKETS_MS), None);
        assert_eq!(p99_bucket_note(9500.0, 7000.0, &[100.0, 1000.0]), None);
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
}
