//! How each act ended and the closing summary: the acts with their outcomes and weights, the
//! Slack messages received, veer's revert commit, the tracked branch's log and the time taken.

use std::time::Duration;

use super::{Paint, seconds};

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

    const PLAIN: Paint = Paint { color: false };

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
