//! `spec.baseline`, the comparison with the old version: its level, durations, allowances
//! and metrics, each metric's direction, and that it can decide at all (enough samples
//! within `lookback` and before the progress deadline).

use std::collections::HashMap;

use super::check_duration;
use crate::diagnostic::Diagnostic;
use crate::duration;
use crate::manifest::Manifest;
use crate::manifest::istio::display_path;
use crate::manifest::rollout_policy::{self as policy, RolloutPolicySpec};
use crate::manifest::yaml::pointer_join;

/// The comparison with the old version: its level, durations and metrics, and that it can
/// decide at all (enough samples within `lookback` and before the progress deadline).
pub(super) fn check_baseline(
    m: &Manifest,
    spec: &RolloutPolicySpec,
    baseline: &policy::Baseline,
    out: &mut Vec<Diagnostic>,
) {
    let alpha = baseline.alpha();
    let alpha_ok = alpha > 0.0 && alpha < 1.0;
    if !alpha_ok {
        out.push(
            m.error(
                "rp-baseline",
                "/spec/baseline/mannWhitney/alpha",
                format!("spec.baseline.mannWhitney.alpha: {alpha} is not in (0, 1)"),
            )
            .fix("use a significance level such as 0.05"),
        );
    }
    for (field, text) in [("step", &baseline.step), ("lookback", &baseline.lookback)] {
        if let Some(t) = text {
            check_duration(m, &format!("/spec/baseline/{field}"), t, out);
        }
    }
    let mut allowances: Vec<(String, f64)> = baseline
        .allowance
        .map(|a| ("/spec/baseline/allowance".to_string(), a))
        .into_iter()
        .collect();
    allowances.extend(baseline.metrics.iter().enumerate().filter_map(|(i, b)| {
        let at = pointer_join(&pointer_join("/spec/baseline/metrics", i), "allowance");
        b.allowance.map(|a| (at, a))
    }));
    for (at, allowance) in allowances {
        if !(allowance.is_finite() && allowance >= 0.0) {
            out.push(
                m.error(
                    "rp-baseline",
                    &at,
                    format!(
                        "{}: {allowance} is not a percentage of 0 or more",
                        display_path(&at)
                    ),
                )
                .fix("give how much worse than the old version still passes, in percent (e.g. 10)"),
            );
        }
    }
    let mut listed: HashMap<&str, usize> = HashMap::new();
    for (i, entry) in baseline.metrics.iter().enumerate() {
        let at = pointer_join(&pointer_join("/spec/baseline/metrics", i), "name");
        let problem = if !spec.metrics.iter().any(|x| x.name == entry.name) {
            Some(format!(
                "{}: `{}` is not a metric of spec.metrics",
                display_path(&at),
                entry.name
            ))
        } else {
            listed.insert(&entry.name, i).map(|first| {
                format!(
                    "{}: `{}` is listed already in spec.baseline.metrics[{first}]",
                    display_path(&at),
                    entry.name
                )
            })
        };
        if let Some(message) = problem {
            out.push(
                m.error("rp-baseline", &at, message)
                    .fix("list each metric of spec.metrics to compare once, by its name"),
            );
        }
    }
    let interval = duration::parse(&spec.interval).ok();
    let parse = |t: &Option<String>| t.as_deref().and_then(|t| duration::parse(t).ok());
    let lookback = parse(&baseline.lookback);
    let samples = crate::analysis::baseline::min_samples(alpha);
    let deadline = spec.timings().progress_deadline;
    // In the largest whole unit, as a policy would write it.
    let text = |d: std::time::Duration| match (d.as_millis(), d.as_secs()) {
        (ms, _) if ms % 1000 != 0 => format!("{ms}ms"),
        (_, s) if s % 3600 == 0 && s > 0 => format!("{}h", s / 3600),
        (_, s) if s % 60 == 0 && s > 0 => format!("{}m", s / 60),
        (_, s) => format!("{s}s"),
    };
    let mut slowest: Option<(std::time::Duration, &str)> = None;
    for (i, metric) in spec.metrics.iter().enumerate() {
        let Some(direction) = baseline.direction_of(metric) else {
            continue;
        };
        let allowance = baseline.allowance_of(&metric.name);
        if direction == Ok(policy::Direction::Decrease) && allowance >= 1.0 {
            let at = baseline
                .metrics
                .iter()
                .position(|b| b.name == metric.name && b.allowance.is_some())
                .map_or_else(
                    || "/spec/baseline/allowance".to_string(),
                    |j| pointer_join(&pointer_join("/spec/baseline/metrics", j), "allowance"),
                );
            out.push(
                m.error(
                    "rp-baseline",
                    &at,
                    format!(
                        "{}: `{}` gets worse by decreasing, and an allowance of {}% lets it fall to 0: the comparison could never fail",
                        display_path(&at),
                        metric.name,
                        allowance * 100.0
                    ),
                )
                .fix("use an allowance below 100 for this metric"),
            );
        }
        if let Err(reason) = direction {
            let at = pointer_join("/spec/metrics", i);
            let diagnostic = match metric.builtin.is_some_and(|b| b.is_caller_side()) {
                true => m
                    .error(
                        "rp-baseline",
                        &baseline
                            .metrics
                            .iter()
                            .position(|b| b.name == metric.name)
                            .map_or_else(
                                || pointer_join(&at, "builtin"),
                                |j| pointer_join(&pointer_join("/spec/baseline/metrics", j), "name"),
                            ),
                        format!("spec.baseline: {reason}"),
                    )
                    .fix(format!(
                        "remove `{}` from spec.baseline.metrics; its thresholdRange still applies",
                        metric.name
                    )),
                false => m
                    .error(
                        "rp-baseline",
                        &pointer_join(&at, "thresholdRange"),
                        format!(
                            "spec.baseline: {reason} (its thresholdRange bounds both sides or neither)"
                        ),
                    )
                    .fix(format!(
                        "add `{{name: {}, direction: increase}}` (higher is worse) or `direction: decrease` to spec.baseline.metrics",
                        metric.name
                    )),
            };
            out.push(diagnostic);
        }
        // As the rollout samples it; nothing to say while spec.interval is itself invalid.
        let metric_step = interval.map(|_| baseline.step_for(metric.window(&spec.timings())));
        if let Some(st) = metric_step.filter(|st| !st.is_zero())
            && slowest.is_none_or(|(longest, _)| st > longest)
        {
            slowest = Some((st, metric.name.as_str()));
        }
    }
    // The metric sampled least often decides how long the comparison takes.
    let Some((step, name)) = slowest.filter(|_| alpha_ok) else {
        return;
    };
    // `samples` samples a step apart, the first one a whole step into the phase.
    let needed = step.saturating_mul(u32::try_from(samples).unwrap_or(u32::MAX));
    if let Some(lookback) = lookback.filter(|l| !l.is_zero())
        && lookback < needed.saturating_sub(step)
    {
        out.push(
            m.error(
                "rp-baseline",
                "/spec/baseline/lookback",
                format!(
                    "spec.baseline.lookback ({}) holds fewer than the {samples} samples, a step of {} apart, that comparing `{name}` needs at alpha {alpha}: it could never decide",
                    text(lookback),
                    text(step),
                ),
            )
            .fix("lengthen lookback, shorten spec.baseline.step, or remove lookback"),
        );
    } else if needed >= deadline {
        out.push(
            m.error(
                "rp-baseline",
                "/spec/baseline",
                format!(
                    "spec.baseline: comparing `{name}` needs {samples} samples a step of {} apart (about {}) before it can pass, which is not within progressDeadline ({}): the first step would always be rolled back",
                    text(step),
                    text(needed),
                    text(deadline)
                ),
            )
            .fix("set a shorter spec.baseline.step, or a longer progressDeadline"),
        );
    }
}
