//! Validation in proportion to what changed: a revision validated against the last one
//! ([`Validated::next`]) gives the report a whole validation gives ([`super::validate_with`]),
//! diagnostic for diagnostic, at the cost of the objects that changed when that can be shown
//! to be the same, and at the cost of a whole validation otherwise.
//!
//! What makes it the same: an object whose kind no check looks at from another object
//! ("plain": a Deployment, a ConfigMap, a Namespace, … but not a Service, which destinations
//! are looked up in, nor a Gateway API Gateway, which VirtualServices name, nor any Istio or
//! veer kind) is only checked by its own metadata checks ([`super::metadata::check_object`])
//! and by the duplicate check (by identity). So when every changed object is plain before and
//! after, keeps its identity and place in the revision, is not defined twice, and the
//! revision has no Sidecar (whose selectors read the workloads' pod labels), the cross-object
//! checks and analyzers would see exactly what they saw last time: their findings stand, and
//! only the changed objects' own findings are replaced. The context (rollout policies from
//! outside the revision, the cluster's Services) must be the same too. Anything else (a
//! VirtualService, DestinationRule or Service edited, objects added or removed) is validated
//! whole. The property tests in `incremental_tests.rs` check the equality on random edits.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{ClusterServices, Index, Report, ValidationContext, metadata, report_of, run_checks};
use crate::diagnostic::{self, Diagnostic};
use crate::manifest::policy::{is_veer_config, rollout_policy};
use crate::manifest::rollout_policy::RolloutPolicy;
use crate::manifest::{Manifest, ManifestSet, ObjectKey, TypedObject};

/// The Kubernetes Gateway API's group: its Gateways are named by VirtualServices.
const GATEWAY_API_GROUP: &str = "gateway.networking.k8s.io";

/// More changed objects than this share of the revision: validate whole (it is cheaper than
/// replacing findings one object at a time).
const MOST_CHANGED: usize = 4;

/// An object's identity as the duplicate check compares them (any API version).
type Identity = (String, String, Option<String>, String);

fn identity(key: &ObjectKey) -> Identity {
    (
        key.group.clone(),
        key.kind.clone(),
        key.namespace.clone(),
        key.name.clone(),
    )
}

/// A validated revision, kept to validate the next one against.
#[derive(Debug, Clone)]
pub struct Validated {
    /// The manifests validated, in revision order (held, so that pointers compare).
    manifests: Vec<Arc<Manifest>>,
    /// What the checks found (reading problems aside), sorted as a report sorts them.
    checks: Vec<Diagnostic>,
    /// The context it was validated in.
    policies: Vec<RolloutPolicy>,
    cluster: Option<Arc<ClusterServices>>,
    /// Whether the revision has a Sidecar (their selectors read every workload).
    sidecars: bool,
    /// Identities defined more than once (the duplicate check's findings name the first).
    duplicated: HashSet<Identity>,
    /// Whether the last validation reused the one before (for logs and tests).
    reused: bool,
}

/// Is `m` of a kind no check reads from another object?
fn plain(m: &Manifest) -> bool {
    let generic = match &m.typed {
        TypedObject::Generic => true,
        TypedObject::VirtualService(_)
        | TypedObject::DestinationRule(_)
        | TypedObject::Gateway(_)
        | TypedObject::ServiceEntry(_)
        | TypedObject::Sidecar(_)
        | TypedObject::RolloutPolicy(_) => false,
    };
    generic
        && !is_veer_config(m)
        && rollout_policy(m).is_none()
        && m.key.group != GATEWAY_API_GROUP
        && !(m.key.group.is_empty() && m.key.kind == "Service")
}

/// The same object, as far as any check can tell: shared by the parse cache, or equal.
fn same(a: &Arc<Manifest>, b: &Arc<Manifest>) -> bool {
    Arc::ptr_eq(a, b) || **a == **b
}

/// The sort key of a report ([`diagnostic::sort`]).
fn order(d: &Diagnostic) -> (&str, u32, u32, &str, &str) {
    (&d.file, d.line, d.column, d.code, &d.message)
}

impl Validated {
    /// Validate `set` whole.
    pub fn new(set: &ManifestSet, ctx: &ValidationContext<'_>) -> (Validated, Report) {
        let index = Index::new(&set.manifests);
        let mut checks = run_checks(&index, ctx);
        // Stable: findings that sort alike keep the order the checks made them in, as in a
        // report made in one go.
        diagnostic::sort(&mut checks);
        let mut seen: HashMap<Identity, usize> = HashMap::new();
        for m in &set.manifests {
            *seen.entry(identity(&m.key)).or_default() += 1;
        }
        let validated = Validated {
            manifests: set.manifests.clone(),
            policies: ctx.policies.to_vec(),
            cluster: ctx.cluster.cloned().map(Arc::new),
            sidecars: !index.sidecars.is_empty(),
            duplicated: seen
                .into_iter()
                .filter(|(_, n)| *n > 1)
                .map(|(id, _)| id)
                .collect(),
            reused: false,
            checks,
        };
        let report = report_of(set, validated.checks.iter().cloned());
        (validated, report)
    }

    /// Validate `set`, the revision after this one: the same report as [`Validated::new`],
    /// reusing this validation where the module header says it may.
    pub fn next(self, set: &ManifestSet, ctx: &ValidationContext<'_>) -> (Validated, Report) {
        match self.changed_plain(set, ctx) {
            Some(changed) => self.replace(set, &changed),
            None => Validated::new(set, ctx),
        }
    }

    /// Whether this validation reused the one before it.
    pub fn reused(&self) -> bool {
        self.reused
    }

    /// The places of the objects that changed, when every one of them is one whose findings
    /// can be replaced alone; `None`: validate whole.
    fn changed_plain(&self, set: &ManifestSet, ctx: &ValidationContext<'_>) -> Option<Vec<usize>> {
        let manifests = &set.manifests;
        if self.sidecars
            || manifests.len() != self.manifests.len()
            || ctx.policies != self.policies.as_slice()
            || ctx.cluster != self.cluster.as_deref()
        {
            return None;
        }
        let mut changed = Vec::new();
        for (i, (old, new)) in self.manifests.iter().zip(manifests).enumerate() {
            if same(old, new) {
                continue;
            }
            let replaceable = plain(old)
                && plain(new)
                && identity(&old.key) == identity(&new.key)
                && !self.duplicated.contains(&identity(&new.key));
            if !replaceable || (changed.len() + 1) * MOST_CHANGED > manifests.len() {
                return None;
            }
            changed.push(i);
        }
        Some(changed)
    }

    /// This validation with the findings of the objects at `changed` replaced by those of
    /// `set`'s objects there.
    fn replace(self, set: &ManifestSet, changed: &[usize]) -> (Validated, Report) {
        let mut checks = self.checks;
        for &i in changed {
            let mut old = Vec::new();
            metadata::check_object(&self.manifests[i], &mut old);
            for d in &old {
                let from = checks.partition_point(|c| order(c) < order(d));
                if let Some(at) = (checks[from..].iter())
                    .take_while(|c| order(c) == order(d))
                    .position(|c| c == d)
                {
                    checks.remove(from + at);
                }
            }
            let mut new = Vec::new();
            metadata::check_object(&set.manifests[i], &mut new);
            for d in new {
                let at = checks.partition_point(|c| order(c) <= order(&d));
                checks.insert(at, d);
            }
        }
        let validated = Validated {
            manifests: set.manifests.clone(),
            checks,
            policies: self.policies,
            cluster: self.cluster,
            sidecars: self.sidecars,
            duplicated: self.duplicated,
            reused: true,
        };
        let report = report_of(set, validated.checks.iter().cloned());
        (validated, report)
    }
}

#[cfg(test)]
#[path = "incremental_tests.rs"]
mod tests;
