//! RolloutPolicy checks: durations, step weights, threshold ranges, metric sources, PromQL
//! template variables, webhooks, the mirror / A/B / fault phases (and a fault phase that only
//! destination-reported metrics would judge); and that every VirtualService's
//! `veer.io/rollout-policy` names a policy that exists (in the revision, a policies directory
//! or shipped with veer), that no two policies' selectors claim the same VirtualService, and
//! that a bound VirtualService with several traffic-splitting routes is told only one of them
//! is rolled out at a time.
//!
//! This file runs the checks, per policy and over the revision, and holds the duration check
//! they share; `bindings` checks which policy governs each VirtualService, `steps` the step
//! weights and deadline, `metrics` the metrics and their PromQL templates, `baseline` the
//! comparison with the old version, `phases` the mirror / A/B / fault phases, `webhooks`
//! the webhooks and the git revert.

/// The checks of this module, for the catalog (`validate::catalog`). RolloutPolicy is veer's
/// own kind: no Istio rule applies, so `mirrors` says what veer's rollout would do with it.
pub const CHECKS: &[Check] = &[
    Check::error(
        "rp-duration",
        KIND,
        "veer: interval and progressDeadline are positive durations",
    ),
    Check::error(
        "rp-threshold",
        KIND,
        "veer: threshold 0 would roll back before the first check",
    ),
    Check::error(
        "rp-selector",
        KIND,
        "veer: a selector without matchLabels selects no VirtualService",
    ),
    Check::error(
        "rp-progress-deadline",
        KIND,
        "veer: a step must get its first check before progressDeadline",
    ),
    Check::error(
        "rp-steps",
        KIND,
        "veer: stepWeight or stepWeights, not both",
    ),
    Check::error("rp-step-weight", KIND, "veer: stepWeight is 1-99"),
    Check::error(
        "rp-max-weight",
        KIND,
        "veer: stepWeight needs maxWeight, 1-100 and at least stepWeight; stepWeights needs none",
    ),
    Check::error(
        "rp-step-weights",
        KIND,
        "veer: stepWeights rise strictly, each 1-99",
    ),
    Check::error("rp-metric-name", KIND, "veer: every metric is named, once"),
    Check::error(
        "rp-metric-source",
        KIND,
        "veer: a metric is a builtin or a PromQL query, not both",
    ),
    Check::error(
        "rp-threshold-range",
        KIND,
        "veer: thresholdRange has min or max, and min <= max",
    ),
    Check::error(
        "rp-template",
        KIND,
        "veer: a PromQL template is not empty and uses known variables",
    ),
    Check::warning(
        "rp-no-metrics",
        KIND,
        "veer: without metrics or webhooks, steps advance on time alone",
    ),
    Check::warning(
        "rp-fault-unmeasured",
        KIND,
        "veer: Istio injects faults in the callers' sidecars, which destination-reported metrics never see",
    ),
    Check::error(
        "rp-iterations",
        KIND,
        "veer: a mirror, match or fault phase needs at least 1 iteration",
    ),
    Check::error("rp-mirror", KIND, "veer: mirror weight is 1-100"),
    Check::error(
        "rp-match",
        KIND,
        "veer: an A/B match has headers or a `name=value` cookie, one matcher each",
    ),
    Check::error(
        "rp-fault",
        KIND,
        "veer: a fault phase injects a delay or an abort (an HTTP status), and a percentage",
    ),
    Check::error(
        "rp-webhook-name",
        KIND,
        "veer: every webhook is named, once",
    ),
    Check::error("rp-webhook-url", KIND, "veer: a webhook URL is http(s)"),
    Check::error(
        "rp-revert-author",
        KIND,
        "veer: the git revert's author is `Name <email>`",
    ),
    Check::error(
        "rp-baseline",
        KIND,
        "veer: the comparison with the old version can decide within lookback and progressDeadline",
    ),
    Check::error(
        "rp-unknown-policy",
        KIND,
        "veer: the `veer.io/rollout-policy` annotation names a known policy",
    ),
    Check::error(
        "rp-ambiguous-selector",
        KIND,
        "veer: at most one policy's selector matches a VirtualService",
    ),
    Check::warning(
        "rp-one-route-per-rollout",
        KIND,
        "veer: one route per VirtualService is rolled out at a time; others with changed weights apply at once",
    ),
];

const KIND: &str = "RolloutPolicy";

mod baseline;
mod bindings;
mod metrics;
mod phases;
mod steps;
mod webhooks;

pub use bindings::check_references;

use baseline::check_baseline;
use metrics::check_metrics;
use phases::{check_fault, check_match, check_mirror};
use steps::{check_deadline, check_steps};
use webhooks::{check_revert, check_webhooks};

use super::Index;
use super::catalog::Check;
use crate::diagnostic::Diagnostic;
use crate::duration;
use crate::manifest::Manifest;
use crate::manifest::istio::display_path;
use crate::manifest::policy::rollout_policy;
use crate::manifest::rollout_policy::{self as policy, RolloutPolicy, RolloutPolicySpec};

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
