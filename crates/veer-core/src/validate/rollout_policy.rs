//! RolloutPolicy checks: durations, step weights, threshold ranges, metric sources, PromQL
//! template variables, webhooks, the mirror / A/B / fault phases (and a fault phase that only
//! destination-reported metrics would judge); and that every VirtualService's
//! `veer.io/rollout-policy` names a policy that exists (in the revision, a policies directory
//! or shipped with veer), that no two policies' selectors claim the same VirtualService, and
//! that a bound VirtualService with several traffic-splitting routes is told only one of them
//! is rolled out at a time.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::Index;
use crate::diagnostic::Diagnostic;
use crate::duration;
use crate::manifest::Manifest;
use crate::manifest::istio::virtual_service::VirtualService;
use crate::manifest::istio::{IstioObject, display_path};
use crate::manifest::policy::rollout_policy;
use crate::manifest::rollout_policy::{
    self as policy, Binding, FaultPhase, MatchPhase, MetricCheck, MirrorPhase, RolloutPolicy,
    RolloutPolicySpec, TEMPLATE_VARIABLES, TemplatePart, Webhook,
};
use crate::manifest::yaml::pointer_join;

/// The revision's policies, in revision order.
pub fn policies<'a>(index: &Index<'a>) -> Vec<(&'a Manifest, &'a RolloutPolicy)> {
    index
        .all
        .iter()
        .filter_map(|m| rollout_policy(m).map(|p| (m.as_ref(), p)))
        .collect()
}

/// Every policy check, with `local` (a policies directory's) and then the shipped policies as
/// the known names besides the revision's.
pub fn check(index: &Index<'_>, local: &[RolloutPolicy], out: &mut Vec<Diagnostic>) {
    for (m, p) in policies(index) {
        check_policy(m, &p.spec, out);
    }
    let known: Vec<RolloutPolicy> = local.iter().chain(policy::shipped()).cloned().collect();
    check_references(index, &known, out);
}

/// The VirtualService bindings: an annotation must name a policy of the revision or of
/// `known` (e.g. the shipped ones, or a `policies/` directory the controller loads); selectors
/// must not overlap on a VirtualService without an annotation.
pub fn check_references(index: &Index<'_>, known: &[RolloutPolicy], out: &mut Vec<Diagnostic>) {
    let mut all: Vec<RolloutPolicy> = policies(index)
        .into_iter()
        .map(|(_, p)| p.clone())
        .collect();
    for p in known {
        if !all.iter().any(|a| a.name() == p.name()) {
            all.push(p.clone());
        }
    }
    let names: BTreeSet<&str> = all.iter().map(RolloutPolicy::name).collect();
    for (m, vs) in &index.virtual_services {
        let labels: BTreeMap<String, String> = m
            .labels()
            .map(|l| {
                l.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let pointer = pointer_join("/metadata/annotations", policy::POLICY_ANNOTATION);
        match policy::bind(m.annotation(policy::POLICY_ANNOTATION), &labels, &all) {
            Binding::Annotation(p) | Binding::Selector(p) => {
                check_one_route_per_rollout(m, vs, p.name(), out);
            }
            Binding::Unbound => {}
            Binding::UnknownPolicy(name) => out.push(
                m.error(
                    "rp-unknown-policy",
                    &pointer,
                    format!(
                        "annotation {}: no RolloutPolicy named `{name}`",
                        policy::POLICY_ANNOTATION
                    ),
                )
                .fix(format!(
                    "name one of: {}; or add a RolloutPolicy `{name}` to the repository",
                    names.iter().copied().collect::<Vec<_>>().join(", ")
                )),
            ),
            Binding::Ambiguous(matching) => out.push(
                m.error(
                    "rp-ambiguous-selector",
                    "/metadata/labels",
                    format!(
                        "the selectors of several RolloutPolicies match this VirtualService: {}",
                        matching.join(", ")
                    ),
                )
                .fix(format!(
                    "add the annotation `{}: NAME` to choose one, or narrow the selectors",
                    policy::POLICY_ANNOTATION
                )),
            ),
        }
    }
}

/// A rollout moves the weights of one HTTP route per VirtualService (the first whose weights
/// a commit changes); a bound VirtualService with several routes that split traffic is told
/// that a commit changing two of them rolls out only one.
fn check_one_route_per_rollout(
    m: &Manifest,
    vs: &IstioObject<VirtualService>,
    policy_name: &str,
    out: &mut Vec<Diagnostic>,
) {
    let split: Vec<(usize, Option<&str>)> = vs
        .spec
        .http
        .iter()
        .enumerate()
        .filter(|(_, r)| r.route.len() > 1)
        .map(|(i, r)| (i, r.name.as_deref()))
        .collect();
    let Some((first, first_name)) = split.first().copied() else {
        return;
    };
    let describe = |i: usize, name: Option<&str>| match name {
        Some(n) => format!("spec.http[{i}] ({n})"),
        None => format!("spec.http[{i}]"),
    };
    for (i, name) in split.iter().skip(1).copied() {
        out.push(
            m.warning(
                "rp-one-route-per-rollout",
                &format!("/spec/http/{i}/route"),
                format!(
                    "{} splits traffic too, but a rollout (policy {policy_name}) moves one route per VirtualService, the first whose weights change: when a commit changes the weights of an earlier route (such as {}) as well, this route's apply at once, without steps or analysis",
                    describe(i, name),
                    describe(first, first_name),
                ),
            )
            .fix("give this route a VirtualService of its own (each is rolled out on its own), or change one route's weights per commit and let its rollout finish first"),
        );
    }
}

fn check_duration(m: &Manifest, pointer: &str, text: &str, out: &mut Vec<Diagnostic>) {
    match duration::parse(text) {
        Ok(d) if d.is_zero() => out.push(
            m.error(
                "rp-duration",
                pointer,
                format!("{}: must be longer than zero", display_path(pointer)),
            )
            .fix("write a positive duration such as `30s` or `1m`"),
        ),
        Ok(_) => {}
        Err(e) => out.push(
            m.error(
                "rp-duration",
                pointer,
                format!("{}: {e}", display_path(pointer)),
            )
            .fix("write a duration such as `30s`, `1m` or `1h30m`"),
        ),
    }
}

pub fn check_policy(m: &Manifest, spec: &RolloutPolicySpec, out: &mut Vec<Diagnostic>) {
    check_duration(m, "/spec/interval", &spec.interval, out);
    if let Some(d) = &spec.progress_deadline {
        check_duration(m, "/spec/progressDeadline", d, out);
    }
    check_deadline(m, spec, out);
    if spec.threshold == Some(0) {
        out.push(
            m.error(
                "rp-threshold",
                "/spec/threshold",
                "spec.threshold: 0 would roll back before the first check",
            )
            .fix("set the number of failed checks that trigger a rollback, at least 1"),
        );
    }
    check_steps(m, spec, out);
    check_metrics(m, spec, out);
    if let Some(mirror) = &spec.mirror {
        check_mirror(m, mirror, out);
    }
    if let Some(matching) = &spec.matching {
        check_match(m, matching, out);
    }
    if let Some(fault) = &spec.fault {
        check_fault(m, fault, out);
    }
    check_webhooks(m, &spec.webhooks, out);
    check_revert(m, spec, out);
    if let Some(baseline) = &spec.baseline {
        check_baseline(m, spec, baseline, out);
    }
    if spec
        .selector
        .as_ref()
        .is_some_and(|s| s.match_labels.is_empty())
    {
        out.push(
            m.error(
                "rp-selector",
                "/spec/selector",
                "spec.selector has no matchLabels, so it selects no VirtualService",
            )
            .fix("add matchLabels, or remove the selector and bind VirtualServices with the veer.io/rollout-policy annotation"),
        );
    }
}

/// The comparison with the old version: its level, durations and metrics, and that it can
/// decide at all (enough samples within `lookback` and before the progress deadline).
fn check_baseline(
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

/// A step must be able to get its first check before the deadline.
fn check_deadline(m: &Manifest, spec: &RolloutPolicySpec, out: &mut Vec<Diagnostic>) {
    let (Ok(interval), Some(Ok(deadline))) = (
        duration::parse(&spec.interval),
        spec.progress_deadline.as_deref().map(duration::parse),
    ) else {
        return;
    };
    if !deadline.is_zero() && deadline <= interval {
        out.push(
            m.error(
                "rp-progress-deadline",
                "/spec/progressDeadline",
                format!(
                    "spec.progressDeadline ({}) is not longer than spec.interval ({}): every step would miss its deadline before its first check",
                    spec.progress_deadline.as_deref().unwrap_or(""),
                    spec.interval
                ),
            )
            .fix("make progressDeadline several intervals long (e.g. interval × (threshold + 2))"),
        );
    }
}

fn check_steps(m: &Manifest, spec: &RolloutPolicySpec, out: &mut Vec<Diagnostic>) {
    match (spec.step_weight, spec.step_weights.is_empty()) {
        (Some(_), false) => out.push(
            m.error(
                "rp-steps",
                "/spec/stepWeights",
                "spec sets both stepWeight and stepWeights",
            )
            .fix("keep one: stepWeight + maxWeight for equal steps, or stepWeights for a list"),
        ),
        (None, true) => out.push(
            m.error(
                "rp-steps",
                "/spec",
                "spec sets neither stepWeight nor stepWeights",
            )
            .fix("add `stepWeight: 10` with `maxWeight: 50`, or `stepWeights: [5, 10, 25, 50]`"),
        ),
        (Some(step), true) => {
            if !(1..=99).contains(&step) {
                out.push(
                    m.error(
                        "rp-step-weight",
                        "/spec/stepWeight",
                        format!("spec.stepWeight: {step} is not in 1..99"),
                    )
                    .fix("use a step between 1 and 99, e.g. 10"),
                );
            }
            match spec.max_weight {
                None => out.push(
                    m.error(
                        "rp-max-weight",
                        "/spec/stepWeight",
                        "spec.stepWeight needs spec.maxWeight",
                    )
                    .fix("add `maxWeight: 50` (the new version's highest weight before promotion)"),
                ),
                Some(max) if !(1..=100).contains(&max) => out.push(
                    m.error(
                        "rp-max-weight",
                        "/spec/maxWeight",
                        format!("spec.maxWeight: {max} is not in 1..100"),
                    )
                    .fix("use a weight between 1 and 100, e.g. 50"),
                ),
                Some(max) if max < step => out.push(
                    m.error(
                        "rp-max-weight",
                        "/spec/maxWeight",
                        format!("spec.maxWeight ({max}) is below spec.stepWeight ({step})"),
                    )
                    .fix("raise maxWeight to at least stepWeight"),
                ),
                Some(_) => {}
            }
        }
        (None, false) => {
            if spec.max_weight.is_some() {
                out.push(
                    m.error(
                        "rp-max-weight",
                        "/spec/maxWeight",
                        "spec.maxWeight goes with stepWeight; with stepWeights the last value is the highest weight",
                    )
                    .fix("remove maxWeight, or end stepWeights at the weight you want"),
                );
            }
            let mut last = 0;
            for (i, w) in spec.step_weights.iter().enumerate() {
                let at = pointer_join("/spec/stepWeights", i);
                if !(1..=99).contains(w) {
                    out.push(
                        m.error(
                            "rp-step-weights",
                            &at,
                            format!("{}: {w} is not in 1..99", display_path(&at)),
                        )
                        .fix("list weights between 1 and 99; promotion moves to the final weights"),
                    );
                } else if *w <= last {
                    out.push(
                        m.error(
                            "rp-step-weights",
                            &at,
                            format!(
                                "{}: {w} does not increase (the previous step is {last})",
                                display_path(&at)
                            ),
                        )
                        .fix("list the weights in strictly increasing order, e.g. [5, 10, 25, 50]"),
                    );
                }
                last = last.max(*w);
            }
        }
    }
}

fn check_metrics(m: &Manifest, spec: &RolloutPolicySpec, out: &mut Vec<Diagnostic>) {
    // A VirtualService's fault is injected by the callers' sidecars; the built-in metrics are
    // what the new version's own sidecar reports, which never sees it.
    if spec.fault.is_some()
        && !spec.metrics.is_empty()
        && spec.metrics.iter().all(|metric| {
            metric.query.is_none() && !metric.builtin.is_some_and(|b| b.is_caller_side())
        })
    {
        out.push(
            m.warning(
                "rp-fault-unmeasured",
                "/spec/fault",
                "spec.fault: request-success-rate and request-duration are reported by the new version's own sidecar (reporter=\"destination\"), which never sees a delay or abort its callers' sidecars inject: with only them, the fault phase cannot fail because of the fault",
            )
            .fix("add a metric as the callers report it, e.g. `{name: caller-p99, builtin: caller-request-duration, thresholdRange: {max: 500}}` (or caller-request-success-rate for an abort)"),
        );
    }
    if spec.metrics.is_empty() && !spec.has_webhooks(policy::WebhookKind::Rollout) {
        out.push(
            m.warning(
                "rp-no-metrics",
                "/spec",
                "the policy has no metrics and no rollout webhooks: steps advance on time alone",
            )
            .fix("add a metric, e.g. `{name: success-rate, builtin: request-success-rate, thresholdRange: {min: 99}}`"),
        );
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, metric) in spec.metrics.iter().enumerate() {
        let at = pointer_join("/spec/metrics", i);
        if metric.name.is_empty() {
            out.push(
                m.error(
                    "rp-metric-name",
                    &pointer_join(&at, "name"),
                    format!("{}.name is empty", display_path(&at)),
                )
                .fix("name the metric; the name shows in status and alerts"),
            );
        } else if let Some(first) = seen.insert(&metric.name, i) {
            out.push(
                m.error(
                    "rp-metric-name",
                    &pointer_join(&at, "name"),
                    format!(
                        "{}.name: `{}` is also the name of spec.metrics[{first}]",
                        display_path(&at),
                        metric.name
                    ),
                )
                .fix("give each metric its own name"),
            );
        }
        check_metric(m, &at, metric, out);
    }
}

fn check_metric(m: &Manifest, at: &str, metric: &MetricCheck, out: &mut Vec<Diagnostic>) {
    match (&metric.builtin, &metric.query) {
        (Some(_), Some(_)) => out.push(
            m.error(
                "rp-metric-source",
                &pointer_join(at, "query"),
                format!("{} sets both builtin and query", display_path(at)),
            )
            .fix("keep one: a builtin (request-success-rate, request-duration, caller-request-success-rate, caller-request-duration) or a PromQL query"),
        ),
        (None, None) => out.push(
            m.error(
                "rp-metric-source",
                at,
                format!("{} sets neither builtin nor query", display_path(at)),
            )
            .fix("add `builtin: request-success-rate` (or request-duration), or a PromQL `query`"),
        ),
        (Some(_), None) => {}
        (None, Some(query)) => check_template(m, &pointer_join(at, "query"), query, out),
    }
    let range = &metric.threshold_range;
    let at_range = pointer_join(at, "thresholdRange");
    match (range.min, range.max) {
        (None, None) => out.push(
            m.error(
                "rp-threshold-range",
                &at_range,
                format!(
                    "{}.thresholdRange has neither min nor max",
                    display_path(at)
                ),
            )
            .fix("add `min` (e.g. 99 for a success rate) or `max` (e.g. 500 for latency in ms)"),
        ),
        (Some(min), Some(max)) if min > max => out.push(
            m.error(
                "rp-threshold-range",
                &at_range,
                format!(
                    "{}.thresholdRange: min ({min}) is above max ({max}); no value can pass",
                    display_path(at)
                ),
            )
            .fix("swap min and max, or correct one of them"),
        ),
        _ => {}
    }
    if let Some(i) = &metric.interval {
        check_duration(m, &pointer_join(at, "interval"), i, out);
    }
}

fn check_template(m: &Manifest, at: &str, query: &str, out: &mut Vec<Diagnostic>) {
    if query.trim().is_empty() {
        out.push(
            m.error("rp-template", at, format!("{} is empty", display_path(at)))
                .fix("write a PromQL query that yields one number"),
        );
        return;
    }
    match policy::parse_template(query) {
        Err(e) => out.push(
            m.error("rp-template", at, format!("{}: {e}", display_path(at)))
                .fix("write variables as `{{ name }}`"),
        ),
        Ok(parts) => {
            for part in parts {
                if let TemplatePart::Variable(name) = part
                    && !TEMPLATE_VARIABLES.contains(&name)
                {
                    out.push(
                        m.error(
                            "rp-template",
                            at,
                            format!("{}: unknown template variable `{name}`", display_path(at)),
                        )
                        .fix(format!(
                            "use one of: {}",
                            TEMPLATE_VARIABLES
                                .iter()
                                .map(|v| format!("{{{{ {v} }}}}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                    );
                }
            }
        }
    }
}

fn check_iterations(m: &Manifest, at: &str, iterations: u32, out: &mut Vec<Diagnostic>) {
    if iterations == 0 {
        let p = pointer_join(at, "iterations");
        out.push(
            m.error(
                "rp-iterations",
                &p,
                format!("{}: 0 would skip the phase", display_path(&p)),
            )
            .fix("set how many passing checks the phase needs, at least 1, or remove the phase"),
        );
    }
}

fn check_mirror(m: &Manifest, mirror: &MirrorPhase, out: &mut Vec<Diagnostic>) {
    if !(1..=100).contains(&mirror.weight) {
        out.push(
            m.error(
                "rp-mirror",
                "/spec/mirror/weight",
                format!("spec.mirror.weight: {} is not in 1..100", mirror.weight),
            )
            .fix("mirror a percentage of the traffic between 1 and 100"),
        );
    }
    check_iterations(m, "/spec/mirror", mirror.iterations, out);
}

fn check_match(m: &Manifest, matching: &MatchPhase, out: &mut Vec<Diagnostic>) {
    match (&matching.cookie, matching.headers.is_empty()) {
        (None, true) => out.push(
            m.error(
                "rp-match",
                "/spec/match",
                "spec.match has neither headers nor cookie, so no request would reach the new version",
            )
            .fix("add `headers: {x-canary: {exact: always}}` or `cookie: canary=always`"),
        ),
        (Some(cookie), _) => {
            let ok = cookie
                .split_once('=')
                .is_some_and(|(k, v)| !k.trim().is_empty() && !v.is_empty() && !cookie.contains(';'));
            if !ok {
                out.push(
                    m.error(
                        "rp-match",
                        "/spec/match/cookie",
                        format!("spec.match.cookie: `{cookie}` is not `name=value`"),
                    )
                    .fix("write the cookie as `name=value`, e.g. `canary=always`"),
                );
            }
        }
        (None, false) => {}
    }
    for (name, m_) in &matching.headers {
        let set = [&m_.exact, &m_.prefix, &m_.regex]
            .iter()
            .filter(|v| v.is_some())
            .count();
        if set != 1 {
            let p = pointer_join("/spec/match/headers", name);
            out.push(
                m.error(
                    "rp-match",
                    &p,
                    format!(
                        "{}: give exactly one of exact, prefix or regex",
                        display_path(&p)
                    ),
                )
                .fix("e.g. `exact: always`"),
            );
        }
    }
    check_iterations(m, "/spec/match", matching.iterations, out);
}

fn check_fault(m: &Manifest, fault: &FaultPhase, out: &mut Vec<Diagnostic>) {
    match (&fault.delay, fault.abort) {
        (Some(_), Some(_)) | (None, None) => out.push(
            m.error(
                "rp-fault",
                "/spec/fault",
                "spec.fault needs exactly one of delay or abort",
            )
            .fix("inject either `delay: 200ms` or `abort: 503`"),
        ),
        (Some(delay), None) => check_duration(m, "/spec/fault/delay", delay, out),
        (None, Some(status)) => {
            if !(200..=599).contains(&status) {
                out.push(
                    m.error(
                        "rp-fault",
                        "/spec/fault/abort",
                        format!("spec.fault.abort: {status} is not an HTTP status (200..599)"),
                    )
                    .fix("abort with an HTTP status such as 503"),
                );
            }
        }
    }
    if !(fault.percent > 0.0 && fault.percent <= 100.0) {
        out.push(
            m.error(
                "rp-fault",
                "/spec/fault/percent",
                format!("spec.fault.percent: {} is not in (0, 100]", fault.percent),
            )
            .fix("inject the fault into a share of the new version's requests, e.g. 10"),
        );
    }
    check_iterations(m, "/spec/fault", fault.iterations, out);
}

fn check_webhooks(m: &Manifest, webhooks: &[Webhook], out: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, w) in webhooks.iter().enumerate() {
        let at = pointer_join("/spec/webhooks", i);
        if w.name.is_empty() {
            out.push(
                m.error(
                    "rp-webhook-name",
                    &pointer_join(&at, "name"),
                    format!("{}.name is empty", display_path(&at)),
                )
                .fix("name the webhook; the name shows in status and alerts"),
            );
        } else if let Some(first) = seen.insert(&w.name, i) {
            out.push(
                m.error(
                    "rp-webhook-name",
                    &pointer_join(&at, "name"),
                    format!(
                        "{}.name: `{}` is also the name of spec.webhooks[{first}]",
                        display_path(&at),
                        w.name
                    ),
                )
                .fix("give each webhook its own name"),
            );
        }
        let url_at = pointer_join(&at, "url");
        let problem = match url::Url::parse(&w.url) {
            Err(e) => Some(format!("`{}` is not a URL: {e}", w.url)),
            Ok(u) if !matches!(u.scheme(), "http" | "https") => {
                Some(format!("`{}` is not an http(s) URL", w.url))
            }
            Ok(u) if u.host_str().is_none_or(str::is_empty) => {
                Some(format!("`{}` has no host", w.url))
            }
            Ok(_) => None,
        };
        if let Some(problem) = problem {
            out.push(
                m.error(
                    "rp-webhook-url",
                    &url_at,
                    format!("{}: {problem}", display_path(&url_at)),
                )
                .fix("write an absolute http or https URL, e.g. http://hooks.ns.svc.cluster.local/check"),
            );
        }
        if let Some(t) = &w.timeout {
            check_duration(m, &pointer_join(&at, "timeout"), t, out);
        }
    }
}

fn check_revert(m: &Manifest, spec: &RolloutPolicySpec, out: &mut Vec<Diagnostic>) {
    let Some(author) = &spec.revert_author else {
        return;
    };
    match spec.revert {
        policy::Revert::None => out.push(
            m.warning(
                "rp-revert-author",
                "/spec/revertAuthor",
                "spec.revertAuthor is set but spec.revert is not `git`, so it is never used",
            )
            .fix("set `revert: git`, or remove revertAuthor"),
        ),
        policy::Revert::Git => {
            let ok = author.split_once('<').is_some_and(|(name, rest)| {
                !name.trim().is_empty() && rest.ends_with('>') && rest.contains('@')
            });
            if !ok {
                out.push(
                    m.error(
                        "rp-revert-author",
                        "/spec/revertAuthor",
                        format!("spec.revertAuthor: `{author}` is not `Name <email>`"),
                    )
                    .fix("write the author as git does, e.g. `veer <veer@example.com>`"),
                );
            }
        }
    }
}
