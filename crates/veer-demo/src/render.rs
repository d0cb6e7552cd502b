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

/// A duration as `9.8 s`.
pub fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PLAIN: Paint = Paint { color: false };

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
