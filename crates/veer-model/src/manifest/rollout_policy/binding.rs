//! Which policy governs a VirtualService: the `veer.io/rollout-policy` annotation, else
//! exactly one policy's selector.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::RolloutPolicy;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Selector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
}

impl Selector {
    /// Does a VirtualService with these labels match? An empty selector matches nothing (a
    /// policy must not silently govern every VirtualService).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.match_labels.is_empty()
            && self
                .match_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// How a VirtualService is bound to a policy.
#[derive(Debug, Clone, PartialEq)]
pub enum Binding<'a> {
    /// Not bound: weight changes are applied at once.
    Unbound,
    /// By the `veer.io/rollout-policy` annotation (which wins over selectors).
    Annotation(&'a RolloutPolicy),
    /// By exactly one policy's selector.
    Selector(&'a RolloutPolicy),
    /// The annotation names no known policy.
    UnknownPolicy(String),
    /// Several policies' selectors match and no annotation decides.
    Ambiguous(Vec<String>),
}

/// The policy governing a VirtualService with this annotation value and these labels.
pub fn bind<'a>(
    annotation: Option<&str>,
    labels: &BTreeMap<String, String>,
    policies: &'a [RolloutPolicy],
) -> Binding<'a> {
    if let Some(name) = annotation {
        return match policies.iter().find(|p| p.name() == name) {
            Some(p) => Binding::Annotation(p),
            None => Binding::UnknownPolicy(name.to_string()),
        };
    }
    let matching: Vec<&RolloutPolicy> = policies
        .iter()
        .filter(|p| p.spec.selector.as_ref().is_some_and(|s| s.matches(labels)))
        .collect();
    match matching.as_slice() {
        [] => Binding::Unbound,
        [one] => Binding::Selector(one),
        many => Binding::Ambiguous(many.iter().map(|p| p.name().to_string()).collect()),
    }
}
