//! The status page, pure: [`render_status`] turns a [`StatusSnapshot`] into one HTML document
//! with inline CSS and inline SVG, no JavaScript (it works with scripts off and refreshes
//! itself with `<meta http-equiv=refresh>`). Everything printed passes through [`escape`]:
//! object names, commit messages and diff lines come from git, that is from users.
//!
//! The weight chart of each rollout is drawn by `chart`.

mod chart;

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::board::{CheckMark, ObjectHealth, ObjectStatus, RolloutStatus, StatusSnapshot};
use crate::analysis::Judgement;
use crate::pass::PassOutcome;
use crate::rollout::state::{Phase, Standing};
use chart::chart;

/// Seconds between the page's own reloads.
pub const REFRESH_SECONDS: u32 = 10;

/// HTML-escape text for element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn clock(t: DateTime<Utc>) -> String {
    t.format("%H:%M:%S").to_string()
}

const STYLE: &str = "
:root { color-scheme: light; --fg: #1f2933; --muted: #616e7c; --line: #d9e2ec; --bg: #f5f7fa;
  --ok: #2f855a; --warn: #b7791f; --bad: #c53030; --info: #2b6cb0; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: center; gap: 16px; padding: 12px 24px; background: #102a43; color: #f0f4f8; }
header h1 { margin: 0; font-size: 20px; letter-spacing: .5px; }
header .asof { margin-left: auto; color: #bcccdc; font-size: 12px; }
main { max-width: 1220px; margin: 0 auto; padding: 16px 24px 32px; display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 16px; align-items: start; }
#rollouts, #diff { grid-column: 1 / -1; }
@media (max-width: 900px) { main { grid-template-columns: minmax(0, 1fr); } }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 18px; }
h2 { margin: 0 0 10px; font-size: 15px; text-transform: uppercase; letter-spacing: .6px; color: var(--muted); }
h3 { margin: 0 0 6px; font-size: 15px; }
dl { display: grid; grid-template-columns: 90px 1fr; gap: 4px 12px; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
code, pre { font-family: ui-monospace, 'DejaVu Sans Mono', monospace; font-size: 12.5px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; background: var(--info); }
.badge.ok { background: var(--ok); } .badge.warn { background: var(--warn); } .badge.bad { background: var(--bad); } .badge.info { background: var(--info); }
.counts { display: flex; gap: 8px; margin: 0 0 10px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 12px; }
td.reason { color: var(--muted); overflow-wrap: anywhere; }
details summary { cursor: pointer; color: var(--muted); margin: 8px 0 4px; }
.notice { padding: 8px 12px; border-radius: 6px; margin: 8px 0 0; }
.notice.bad { background: #fff5f5; border: 1px solid #feb2b2; }
.notice.warn { background: #fffaf0; border: 1px solid #fbd38d; }
.muted { color: var(--muted); }
.rollout { border-top: 1px solid var(--line); padding-top: 12px; margin-top: 12px; }
.rollout:first-of-type { border-top: 0; margin-top: 0; padding-top: 0; }
.rollout-grid { display: grid; grid-template-columns: minmax(260px, 1fr) 660px; gap: 18px; align-items: start; }
.bar { background: var(--line); border-radius: 4px; height: 10px; width: 160px; display: inline-block; vertical-align: middle; }
.bar span { display: block; height: 10px; border-radius: 4px; background: var(--info); }
svg.chart { background: #fbfcfe; border: 1px solid var(--line); border-radius: 6px; }
.legend { display: flex; gap: 14px; font-size: 12px; color: var(--muted); margin-top: 4px; }
.legend svg { vertical-align: middle; }
pre.diff { margin: 0; padding: 10px; background: #0b1620; color: #d9e2ec; border-radius: 6px; overflow: auto; max-height: 420px; }
pre.diff .add { color: #68d391; } pre.diff .del { color: #fc8181; } pre.diff .hunk { color: #63b3ed; } pre.diff .file { color: #f6e05e; font-weight: 600; }
";

/// The whole page.
pub fn render_status(s: &StatusSnapshot) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>veer status</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
    );
    header(&mut out, s);
    out.push_str("<main>\n");
    source(&mut out, s);
    objects(&mut out, s);
    rollouts(&mut out, s);
    last_diff(&mut out, s);
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

fn header(out: &mut String, s: &StatusSnapshot) {
    out.push_str("<header>\n<h1>veer</h1>\n");
    match s.readiness.check() {
        Ok(()) => out.push_str("<span class=\"badge ok\" id=\"ready\">ready</span>\n"),
        Err(why) => {
            let _ = writeln!(
                out,
                "<span class=\"badge warn\" id=\"ready\">not ready: {}</span>",
                escape(&why.to_string())
            );
        }
    }
    let _ = writeln!(
        out,
        "<span class=\"asof\">{}refreshes every {REFRESH_SECONDS} s</span>\n</header>",
        s.now
            .map(|n| format!("as of {} · ", time(n)))
            .unwrap_or_default()
    );
}

fn source(out: &mut String, s: &StatusSnapshot) {
    out.push_str("<section id=\"source\">\n<h2>Source</h2>\n<dl>\n");
    match &s.source {
        Some(src) => {
            let _ = writeln!(
                out,
                "<dt>Repository</dt><dd><code id=\"repo\">{}</code></dd>\n<dt>Ref</dt><dd>{}</dd>",
                escape(&src.url),
                escape(&src.reference)
            );
            if let Some(p) = &src.sub_path {
                let _ = writeln!(out, "<dt>Path</dt><dd><code>{}</code></dd>", escape(p));
            }
        }
        None => out.push_str("<dt>Repository</dt><dd class=\"muted\">none configured</dd>\n"),
    }
    match &s.revision {
        Some(r) => {
            let _ = writeln!(
                out,
                "<dt>Revision</dt><dd><code id=\"revision\" title=\"{}\">{}</code> {} <span class=\"muted\">— {}</span></dd>",
                escape(&r.commit),
                escape(crate::ids::short(&r.commit)),
                escape(&r.summary),
                escape(&r.author)
            );
        }
        None => out.push_str("<dt>Revision</dt><dd class=\"muted\">none applied yet</dd>\n"),
    }
    if let Some(p) = &s.last_pass {
        let class = match p.outcome {
            PassOutcome::InSync | PassOutcome::Synced => "ok",
            PassOutcome::DriftReported | PassOutcome::Partial | PassOutcome::NoRevision => "warn",
            PassOutcome::Rejected | PassOutcome::Failed => "bad",
        };
        let _ = write!(
            out,
            "<dt>Last pass</dt><dd><span class=\"badge {class}\">{}</span> <span class=\"muted\">at {}</span>",
            escape(p.outcome.words()),
            time(p.at)
        );
        if let Some(m) = &p.message {
            let _ = write!(out, "<div class=\"notice bad\">{}</div>", escape(m));
        }
        // In sync with git is not the whole truth after a rollback: the route serves the
        // old weights while git still asks for the new ones.
        for r in s.rollouts.iter().filter(|r| r.phase.is_failed()) {
            let _ = write!(
                out,
                "<div class=\"notice bad rolled-back\">rollout {} rolled back{}: its route serves the old weights, not git's</div>",
                escape(&r.name),
                r.failure
                    .as_deref()
                    .map(|f| format!(" ({})", escape(f)))
                    .unwrap_or_default()
            );
        }
        out.push_str("</dd>\n");
    }
    out.push_str("</dl>\n");
    if let Some(r) = &s.rejected {
        let _ = writeln!(
            out,
            "<p class=\"notice bad\">Commit <code>{}</code> was rejected with {} validation error{}: nothing from it was applied; the last good revision stays in force.</p>",
            escape(crate::ids::short(&r.commit)),
            r.errors,
            if r.errors == 1 { "" } else { "s" }
        );
    }
    out.push_str("</section>\n");
}

fn health_class(h: ObjectHealth) -> &'static str {
    match h {
        ObjectHealth::InSync => "ok",
        ObjectHealth::Drifted => "warn",
        ObjectHealth::Failed => "bad",
    }
}

fn object_rows(out: &mut String, objects: &[&ObjectStatus]) {
    out.push_str("<table>\n<tr><th>Object</th><th>State</th><th>Detail</th></tr>\n");
    for o in objects {
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td><span class=\"badge {}\">{}</span></td><td class=\"reason\">{}</td></tr>",
            escape(&o.key),
            health_class(o.health),
            o.health.as_str(),
            escape(&o.reason)
        );
    }
    out.push_str("</table>\n");
}

fn objects(out: &mut String, s: &StatusSnapshot) {
    out.push_str("<section id=\"objects\">\n<h2>Objects</h2>\n<p class=\"counts\">");
    for h in [
        ObjectHealth::InSync,
        ObjectHealth::Drifted,
        ObjectHealth::Failed,
    ] {
        let _ = write!(
            out,
            "<span class=\"badge {}\">{} {}</span>",
            health_class(h),
            s.count(h),
            h.as_str()
        );
    }
    out.push_str("</p>\n");
    let troubled: Vec<&ObjectStatus> = s
        .objects
        .iter()
        .filter(|o| o.health != ObjectHealth::InSync)
        .collect();
    let fine: Vec<&ObjectStatus> = s
        .objects
        .iter()
        .filter(|o| o.health == ObjectHealth::InSync)
        .collect();
    if s.objects.is_empty() {
        out.push_str("<p class=\"muted\">No objects recorded yet.</p>\n");
    }
    if !troubled.is_empty() {
        object_rows(out, &troubled);
    }
    if !fine.is_empty() {
        // Open when it is all there is; folded under the problems otherwise.
        let _ = writeln!(
            out,
            "<details{}><summary>{} object{} in sync</summary>",
            if troubled.is_empty() { " open" } else { "" },
            fine.len(),
            if fine.len() == 1 { "" } else { "s" }
        );
        object_rows(out, &fine);
        out.push_str("</details>\n");
    }
    out.push_str("</section>\n");
}

fn phase_class(phase: Phase) -> &'static str {
    match phase.standing() {
        Standing::Succeeded => "ok",
        Standing::Failing => "bad",
        Standing::Waiting => "warn",
        Standing::Moving | Standing::Promoting => "info",
    }
}

fn rollouts(out: &mut String, s: &StatusSnapshot) {
    out.push_str("<section id=\"rollouts\">\n<h2>Rollouts</h2>\n");
    if s.rollouts.is_empty() {
        out.push_str("<p class=\"muted\">No rollout in progress or on record.</p>\n");
    }
    for r in &s.rollouts {
        rollout(out, r, s.now);
    }
    out.push_str("</section>\n");
}

fn rollout(out: &mut String, r: &RolloutStatus, now: Option<DateTime<Utc>>) {
    let _ = writeln!(
        out,
        "<article class=\"rollout\">\n<h3>{}</h3>\n<div class=\"rollout-grid\">\n<div>\n<p>Phase <span class=\"badge {} phase\">{}</span> <span class=\"muted\">revision <code>{}</code></span></p>",
        escape(&r.name),
        phase_class(r.phase),
        r.phase.as_str(),
        escape(crate::ids::short(&r.revision))
    );
    if let Some(f) = &r.failure {
        let _ = writeln!(out, "<p class=\"notice bad\">{}</p>", escape(f));
    }
    if let Some(i) = &r.interfered {
        let _ = writeln!(out, "<p class=\"notice warn interfered\">{}</p>", escape(i));
    }
    out.push_str(
        "<table class=\"split\">\n<tr><th>Destination</th><th>Weight now</th><th>Target</th></tr>\n",
    );
    for (dest, weight) in &r.split {
        let target = r
            .target
            .iter()
            .find(|(d, _)| d == dest)
            .map(|(_, w)| *w)
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td><span class=\"bar\"><span style=\"width:{}%\"></span></span> <strong>{weight}%</strong></td><td>{target}%</td></tr>",
            escape(dest),
            (*weight).min(100)
        );
    }
    out.push_str("</table>\n");
    let recent: Vec<&CheckMark> = r.checks.iter().rev().take(5).collect();
    if !recent.is_empty() {
        out.push_str(
            "<table class=\"checks\">\n<tr><th>Check</th><th>Verdict</th><th>At</th></tr>\n",
        );
        for c in recent {
            let _ = writeln!(
                out,
                "<tr><td class=\"reason\">{}</td><td><span class=\"badge {}\">{}</span></td><td class=\"muted\">{}</td></tr>",
                escape(&c.detail),
                verdict_class(c.verdict),
                c.verdict.as_str(),
                clock(c.at)
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</div>\n<div>\n");
    chart(out, r, now);
    out.push_str("</div>\n</div>\n</article>\n");
}

fn verdict_class(v: Judgement) -> &'static str {
    match v {
        Judgement::Pass => "ok",
        Judgement::Fail => "bad",
        Judgement::Inconclusive => "warn",
    }
}

fn last_diff(out: &mut String, s: &StatusSnapshot) {
    out.push_str("<section id=\"diff\">\n<h2>Last diff</h2>\n");
    match &s.last_diff {
        None => out.push_str("<p class=\"muted\">Nothing changed since veer started.</p>\n"),
        Some(diff) => {
            out.push_str("<pre class=\"diff\">");
            for line in diff.lines() {
                let class = if line.starts_with("---") || line.starts_with("+++") {
                    Some("file")
                } else if line.starts_with('+') {
                    Some("add")
                } else if line.starts_with('-') {
                    Some("del")
                } else if line.starts_with("@@") {
                    Some("hunk")
                } else {
                    None
                };
                match class {
                    Some(c) => {
                        let _ = writeln!(out, "<span class=\"{c}\">{}</span>", escape(line));
                    }
                    None => {
                        let _ = writeln!(out, "{}", escape(line));
                    }
                }
            }
            out.push_str("</pre>\n");
        }
    }
    out.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::board::{
        PassStatus, Readiness, RejectedStatus, RevisionStatus, TrackedSource, WeightSample,
    };

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<img src=x onerror="a('b')">&"#),
            "&lt;img src=x onerror=&quot;a(&#39;b&#39;)&quot;&gt;&amp;"
        );
    }

    #[test]
    fn every_printed_string_is_escaped() {
        let evil = "<x onload=\"y\">";
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let s = StatusSnapshot {
            now: Some(at),
            source: Some(TrackedSource {
                url: evil.into(),
                reference: evil.into(),
                sub_path: Some(evil.into()),
            }),
            revision: Some(RevisionStatus {
                commit: evil.into(),
                summary: evil.into(),
                author: evil.into(),
            }),
            rejected: Some(RejectedStatus {
                commit: evil.into(),
                errors: 1,
            }),
            last_pass: Some(PassStatus {
                outcome: PassOutcome::Failed,
                at,
                message: Some(evil.into()),
            }),
            objects: vec![
                ObjectStatus {
                    key: evil.into(),
                    health: ObjectHealth::Failed,
                    reason: evil.into(),
                },
                ObjectStatus {
                    key: evil.into(),
                    health: ObjectHealth::InSync,
                    reason: evil.into(),
                },
            ],
            rollouts: vec![RolloutStatus {
                name: evil.into(),
                revision: evil.into(),
                phase: Phase::RollingBack,
                split: vec![(evil.into(), 50)],
                target: vec![(evil.into(), 100)],
                samples: vec![WeightSample { at, weight: 50 }],
                checks: vec![CheckMark {
                    at,
                    check: evil.into(),
                    verdict: Judgement::Fail,
                    detail: evil.into(),
                }],
                failure: Some(evil.into()),
                interfered: None,
            }],
            last_diff: Some(format!("+{evil}\n-{evil}\n{evil}\n")),
            readiness: Readiness::default(),
        };
        let html = render_status(&s);
        assert!(!html.contains("<x"), "unescaped text in:\n{html}");
        assert!(html.contains("&lt;x onload=&quot;y&quot;&gt;"));
    }
}
