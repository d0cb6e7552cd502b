//! `spec.metrics`: names, sources (a builtin or a PromQL query), template variables,
//! threshold ranges and intervals; and the warnings for a policy with no metrics, or a fault
//! phase only destination-reported metrics would judge.

use std::collections::HashMap;

use super::check_duration;
use crate::diagnostic::Diagnostic;
use crate::manifest::Manifest;
use crate::manifest::istio::display_path;
use crate::manifest::rollout_policy::{
    self as policy, MetricCheck, RolloutPolicySpec, TEMPLATE_VARIABLES, TemplatePart,
};
use crate::manifest::yaml::pointer_join;

pub(super) fn check_metrics(m: &Manifest, spec: &RolloutPolicySpec, out: &mut Vec<Diagnostic>) {
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
