//! Which policy governs each VirtualService: an annotation names a known policy, selectors
//! do not overlap, and a bound VirtualService with several traffic-splitting routes is told
//! that a rollout moves one of them at a time.

use std::collections::{BTreeMap, BTreeSet};

use super::policies;
use crate::diagnostic::Diagnostic;
use crate::manifest::Manifest;
use crate::manifest::istio::IstioObject;
use crate::manifest::istio::virtual_service::VirtualService;
use crate::manifest::rollout_policy::{self as policy, Binding, RolloutPolicy};
use crate::manifest::yaml::pointer_join;
use crate::validate::Index;

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
