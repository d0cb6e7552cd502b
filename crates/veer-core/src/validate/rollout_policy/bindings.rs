//! Which policy governs each VirtualService: an annotation names a known policy, selectors
//! do not overlap, and a bound VirtualService with several traffic-splitting routes is told
//! that a rollout moves one of them at a time.

use std::collections::{BTreeMap, BTreeSet};

use super::policies;
use crate::diagnostic::Diagnostic;
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
    for (m, _) in &index.virtual_services {
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
            Binding::Annotation(_) | Binding::Selector(_) => {}
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
