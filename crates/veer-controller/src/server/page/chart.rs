//! The rollout chart of the status page, pure: the new version's weight over time as an inline
//! SVG step line, each analysis verdict marked where it happened (by shape as well as colour),
//! and its legend. Text in it passes through [`escape`].

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::{clock, escape};
use crate::analysis::Judgement;
use crate::server::board::{RolloutStatus, WeightSample};

/// The chart's size and margins, in SVG user units.
const CHART_W: f64 = 640.0;
const CHART_H: f64 = 220.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 30.0;

fn verdict_colour(v: Judgement) -> &'static str {
    match v {
        Judgement::Pass => "#2f855a",
        Judgement::Fail => "#c53030",
        Judgement::Inconclusive => "#b7791f",
    }
}

/// A marker centred on (x, y): a circle for pass, a square for fail, a diamond for
/// inconclusive, so the verdicts differ by shape as well as colour.
fn marker(v: Judgement, x: f64, y: f64) -> String {
    let c = verdict_colour(v);
    match v {
        Judgement::Pass => {
            format!("<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"4.5\" fill=\"{c}\" stroke=\"#fff\"/>")
        }
        Judgement::Fail => format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"9\" height=\"9\" fill=\"{c}\" stroke=\"#fff\"/>",
            x - 4.5,
            y - 4.5
        ),
        Judgement::Inconclusive => format!(
            "<path d=\"M{x:.1} {:.1} L{:.1} {y:.1} L{x:.1} {:.1} L{:.1} {y:.1} Z\" fill=\"{c}\" stroke=\"#fff\"/>",
            y - 5.5,
            x + 5.5,
            y + 5.5,
            x - 5.5
        ),
    }
}

/// The weight at `t` on the step line of `samples` (before the first: the first).
fn weight_at(samples: &[WeightSample], t: DateTime<Utc>) -> u32 {
    samples
        .iter()
        .take_while(|s| s.at <= t)
        .last()
        .or(samples.first())
        .map(|s| s.weight)
        .unwrap_or(0)
}

/// The weight-over-time chart: the new version's weight as a step line from the first sample
/// to now, with each analysis verdict marked where it happened.
pub(super) fn chart(out: &mut String, r: &RolloutStatus, now: Option<DateTime<Utc>>) {
    let Some(first) = r.samples.first() else {
        out.push_str("<p class=\"muted\">No weight recorded yet.</p>\n");
        return;
    };
    let start = first.at;
    let mut end = now.unwrap_or(start).max(start);
    for t in r
        .samples
        .iter()
        .map(|s| s.at)
        .chain(r.checks.iter().map(|c| c.at))
    {
        end = end.max(t);
    }
    let span = ((end - start).num_milliseconds() as f64).max(1000.0);
    let plot_w = CHART_W - LEFT - RIGHT;
    let plot_h = CHART_H - TOP - BOTTOM;
    let x = |t: DateTime<Utc>| LEFT + plot_w * ((t - start).num_milliseconds() as f64 / span);
    let y = |w: u32| TOP + plot_h * (1.0 - f64::from(w.min(100)) / 100.0);
    let _ = writeln!(
        out,
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{CHART_W}\" height=\"{CHART_H}\" viewBox=\"0 0 {CHART_W} {CHART_H}\" role=\"img\" aria-label=\"weight of the new version over time for {}\">\n<title>New version's weight over time: {}</title>",
        escape(&r.name),
        escape(&r.name)
    );
    for w in [0u32, 25, 50, 75, 100] {
        let _ = writeln!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#d9e2ec\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#616e7c\">{w}%</text>",
            LEFT + plot_w,
            y(w),
            y(w),
            LEFT - 6.0,
            y(w) + 4.0
        );
    }
    let axis_y = TOP + plot_h + 18.0;
    let _ = writeln!(
        out,
        "<text x=\"{LEFT}\" y=\"{axis_y:.1}\" font-size=\"11\" fill=\"#616e7c\">{}</text><text x=\"{:.1}\" y=\"{axis_y:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#616e7c\">{}</text>",
        clock(start),
        LEFT + plot_w,
        clock(end)
    );
    // Step line: hold each weight until the next sample, then jump.
    let mut d = format!("M{:.1} {:.1}", x(start), y(first.weight));
    let mut last = first.weight;
    for s in &r.samples[1..] {
        let _ = write!(
            d,
            " L{:.1} {:.1} L{:.1} {:.1}",
            x(s.at),
            y(last),
            x(s.at),
            y(s.weight)
        );
        last = s.weight;
    }
    let _ = write!(d, " L{:.1} {:.1}", x(end), y(last));
    let _ = writeln!(
        out,
        "<path class=\"weight\" d=\"{d}\" fill=\"none\" stroke=\"#2b6cb0\" stroke-width=\"2.5\" stroke-linejoin=\"round\"/>"
    );
    // Checks of an earlier attempt (a restarted rollout keeps its history) predate the
    // weight line: left out rather than drawn at a negative x outside the chart.
    for c in r.checks.iter().filter(|c| c.at >= start) {
        let _ = writeln!(
            out,
            "<g class=\"verdict {}\"><title>{} · {} · {}</title>{}</g>",
            c.verdict.as_str(),
            clock(c.at),
            c.verdict.as_str(),
            escape(&c.detail),
            marker(c.verdict, x(c.at), y(weight_at(&r.samples, c.at)))
        );
    }
    out.push_str("</svg>\n<div class=\"legend\">");
    for v in [Judgement::Pass, Judgement::Fail, Judgement::Inconclusive] {
        let _ = write!(
            out,
            "<span><svg width=\"14\" height=\"14\" viewBox=\"0 0 14 14\">{}</svg> {}</span>",
            marker(v, 7.0, 7.0),
            v.as_str()
        );
    }
    let _ = writeln!(
        out,
        "<span>new version's weight: <strong>{}%</strong></span></div>",
        r.weight()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::state::Phase;
    use crate::server::board::CheckMark;

    #[test]
    fn checks_before_the_weight_line_are_not_drawn() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        let mark = |s: i64, verdict| CheckMark {
            at: at(s),
            check: format!("check-{s}"),
            verdict,
            detail: String::new(),
        };
        let r = RolloutStatus {
            name: "shop/reviews".into(),
            revision: "c2".into(),
            phase: Phase::Progressing,
            split: vec![("v1".into(), 75), ("v2".into(), 25)],
            target: vec![("v2".into(), 100)],
            samples: vec![
                WeightSample {
                    at: at(100),
                    weight: 10,
                },
                WeightSample {
                    at: at(110),
                    weight: 25,
                },
            ],
            checks: vec![mark(50, Judgement::Fail), mark(105, Judgement::Pass)],
            failure: None,
            interfered: None,
        };
        let mut svg = String::new();
        chart(&mut svg, &r, Some(at(120)));
        assert_eq!(svg.matches("<g class=\"verdict ").count(), 1, "{svg}");
        assert!(svg.contains("verdict pass"), "{svg}");
        assert!(!svg.contains("verdict fail"), "{svg}");
    }
}
