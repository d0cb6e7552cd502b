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

/// The checks of this module, for the catalog (`validate::catalog`).
pub const CHECKS: &[super::catalog::Check] = &[];

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
