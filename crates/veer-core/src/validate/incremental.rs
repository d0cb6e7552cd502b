//! Validation in proportion to what changed: a revision validated against the last one
//! ([`Validated::next`]) gives the report a whole validation gives ([`super::validate_with`]),
//! diagnostic for diagnostic, reusing what can be shown to be the same.
//!
//! The findings are kept in two parts. The own checks (`run_own_checks`: the metadata checks
//! of each object, [`super::metadata::check_object`], and the duplicate check, by identity)
//! are a function of one object each; so when the changed objects keep their identities and
//! places in the revision and none is defined twice, only their own findings are replaced,
//! whatever their kind and whatever the context. The cross-object checks and analyzers
//! (`run_cross_checks`) run again over the whole revision, unless every changed object is
//! "plain" before and after: of a kind no check looks at from another object (a Deployment,
//! a ConfigMap, a Namespace, … but not a Service, which destinations are looked up in, nor a
//! Gateway API Gateway, which VirtualServices name, nor any Istio or veer kind), the revision
//! has no Sidecar (whose selectors read the workloads' pod labels) and the context (rollout
//! policies from outside the revision, the cluster's Services) is the same: then they would
//! see exactly what they saw last time, and their findings stand. When the changed objects
//! are VirtualServices, DestinationRules and Services (and plain ones), the context is the
//! same and there is no Sidecar, they run again over the change's neighbourhood only (module
//! `neighbourhood`: what the change can move and what that reads), before and after: the
//! findings of the part before are taken out, those of the part after put in. Objects added,
//! removed, renamed or moved, or many changed at once: validated whole. The property tests in
//! `incremental_tests.rs` check the equality on random edits. The findings are held between
//! revisions in the compact form of module `finding`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::finding::{Finding, Fixes};
use super::{
    ClusterServices, Index, Report, ValidationContext, metadata, neighbourhood, report_of,
    run_cross_checks, run_own_checks,
};
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

/// How much of the last validation a validation reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// Validated whole.
    Nothing,
    /// The checks of one object (duplicates, metadata) of the objects that did not change;
    /// the checks that read across objects ran again.
    OwnChecks,
    /// Besides the own checks, the cross-object findings outside the change's neighbourhood
    /// (module `neighbourhood`); the cross-object checks ran again over the neighbourhood.
    Neighbourhood,
    /// Everything but the changed objects' own checks.
    All,
}

/// A validated revision, kept to validate the next one against.
#[derive(Debug, Clone)]
pub struct Validated {
    /// The manifests validated, in revision order (held, so that pointers compare).
    manifests: Vec<Arc<Manifest>>,
    /// What the checks of one object found (`run_own_checks`), sorted as a report sorts them.
    own: Vec<Finding>,
    /// What the other checks found (`run_cross_checks`), sorted.
    cross: Vec<Finding>,
    /// The fixes `own` and `cross` share.
    fixes: Fixes,
    /// The context it was validated in.
    policies: Vec<RolloutPolicy>,
    cluster: Option<Arc<ClusterServices>>,
    /// Whether the revision has a Sidecar (their selectors read every workload).
    sidecars: bool,
    /// Identities defined more than once (the duplicate check's findings name the first).
    duplicated: HashSet<Identity>,
    /// What the last validation reused of the one before (for logs and tests).
    reuse: Reuse,
    /// What each object is to a change's neighbourhood (`None`: none held, drawn again when
    /// needed).
    roles: Option<Vec<neighbourhood::Role>>,
}

/// Is `m` of a kind no check reads from another object?
pub(super) fn plain(m: &Manifest) -> bool {
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

/// Where `d` is in `sorted` (the first equal one).
fn find(sorted: &[Finding], d: &Finding) -> Option<usize> {
    let from = sorted.partition_point(|c| c.order() < d.order());
    (sorted[from..].iter())
        .take_while(|c| c.order() == d.order())
        .position(|c| c == d)
        .map(|at| from + at)
}

/// `d` put into `sorted` after the findings that sort alike (as a stable sort puts it).
fn insert(sorted: &mut Vec<Finding>, d: Finding) {
    let at = sorted.partition_point(|c| c.order() <= d.order());
    sorted.insert(at, d);
}

/// `roles` (a revision's, or none) made `set`'s, the revision after it, and the changed
/// objects' roles before.
fn roles_after(
    mut roles: Vec<neighbourhood::Role>,
    set: &ManifestSet,
    changed: &[usize],
) -> (Vec<neighbourhood::Role>, Vec<neighbourhood::Role>) {
    let mut before = Vec::new();
    for &i in changed {
        if let (Some(slot), Some(m)) = (roles.get_mut(i), set.manifests.get(i)) {
            before.push(std::mem::replace(slot, neighbourhood::role(m)));
        }
    }
    (roles, before)
}

/// The cross-object checks of the revision `index` holds, sorted.
fn cross_checks(index: &Index<'_>, ctx: &ValidationContext<'_>) -> Vec<Diagnostic> {
    let mut cross = Vec::new();
    run_cross_checks(index, ctx, &mut cross);
    // Stable: findings that sort alike keep the order the checks made them in, as in a
    // report made in one go.
    diagnostic::sort(&mut cross);
    cross
}

impl Validated {
    /// Validate `set` whole.
    pub fn new(set: &ManifestSet, ctx: &ValidationContext<'_>) -> (Validated, Report) {
        let index = Index::new(&set.manifests);
        let mut own = Vec::new();
        run_own_checks(&index, &mut own);
        diagnostic::sort(&mut own);
        let mut fixes = Fixes::default();
        let own = fixes.keep_all(own);
        let cross = fixes.keep_all(cross_checks(&index, ctx));
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
            reuse: Reuse::Nothing,
            // Here rather than at the first change that needs them: the first commit after a
            // start is validated at the cost of what it changed too.
            roles: Some(neighbourhood::roles(&set.manifests)),
            own,
            cross,
            fixes,
        };
        let report = validated.report(set);
        (validated, report)
    }

    /// Validate `set`, the revision after this one: the same report as [`Validated::new`],
    /// reusing this validation where the module header says it may.
    pub fn next(mut self, set: &ManifestSet, ctx: &ValidationContext<'_>) -> (Validated, Report) {
        let Some((changed, parsed_again)) = self.changed_in_place(set) else {
            return Validated::new(set, ctx);
        };
        let context_same =
            ctx.policies == self.policies.as_slice() && ctx.cluster == self.cluster.as_deref();
        let cross_stands = context_same
            && !self.sidecars
            && (changed.iter()).all(|&i| plain(&self.manifests[i]) && plain(&set.manifests[i]));
        self.replace_own(set, &changed);
        // The roles held become the new revision's; those of the changed objects before.
        let roles = match self.roles.take() {
            Some(roles) => roles,
            None if cross_stands => Vec::new(),
            None => neighbourhood::roles(&self.manifests),
        };
        let (roles, before) = roles_after(roles, set, &changed);
        if cross_stands {
            self.reuse = Reuse::All;
        } else if context_same
            && !self.sidecars
            && let Some(places) = neighbourhood::of(&roles, &changed, &before)
            && self.update_cross(set, &places, ctx)
        {
            self.reuse = Reuse::Neighbourhood;
        } else {
            let index = Index::new(&set.manifests);
            self.cross = self.fixes.keep_all(cross_checks(&index, ctx));
            self.sidecars = !index.sidecars.is_empty();
            if !context_same {
                self.policies = ctx.policies.to_vec();
                self.cluster = ctx.cluster.cloned().map(Arc::new);
            }
            self.reuse = Reuse::OwnChecks;
        }
        self.roles = (!roles.is_empty()).then_some(roles);
        // Held as `set` holds them, so that the next revision's pointers compare equal (the
        // others are the same pointers already: not cloned, the revision's objects are not
        // touched).
        for &i in changed.iter().chain(&parsed_again) {
            self.manifests[i] = set.manifests[i].clone();
        }
        // Held until the next revision: without the room an insertion left (a list grows by
        // doubling) and the fixes of the findings gone.
        self.own.shrink_to_fit();
        self.cross.shrink_to_fit();
        self.fixes.forget_unused();
        let report = self.report(set);
        (self, report)
    }

    /// Hold `cluster` rather than the copy of it this validation made, when they are the same
    /// (whoever passed the context keeps it for the next validation anyway).
    pub fn share_cluster(&mut self, cluster: &Arc<ClusterServices>) {
        if let Some(held) = &self.cluster
            && !Arc::ptr_eq(held, cluster)
            && **held == **cluster
        {
            self.cluster = Some(cluster.clone());
        }
    }

    /// Whether this validation reused everything of the one before it but what changed.
    pub fn reused(&self) -> bool {
        self.reuse == Reuse::All
    }

    /// What this validation reused of the one before it.
    pub fn reuse(&self) -> Reuse {
        self.reuse
    }

    /// The report of `set`, validated as this holds it.
    fn report(&self, set: &ManifestSet) -> Report {
        // The own checks run before the others: on a tie, theirs come first (a report sorts
        // stably), as in a validation made in one go.
        report_of(
            set,
            self.own.iter().chain(&self.cross).map(Finding::diagnostic),
        )
    }

    /// The places of the objects of `set` that changed, when each of them keeps its identity
    /// and place and is not defined twice, and they are few, and of those parsed again
    /// unchanged; `None`: validate whole.
    fn changed_in_place(&self, set: &ManifestSet) -> Option<(Vec<usize>, Vec<usize>)> {
        let manifests = &set.manifests;
        if manifests.len() != self.manifests.len() {
            return None;
        }
        let (mut changed, mut parsed_again) = (Vec::new(), Vec::new());
        for (i, (old, new)) in self.manifests.iter().zip(manifests).enumerate() {
            if Arc::ptr_eq(old, new) {
                continue;
            }
            if **old == **new {
                parsed_again.push(i);
                continue;
            }
            let in_place = identity(&old.key) == identity(&new.key)
                && !self.duplicated.contains(&identity(&new.key));
            if !in_place || (changed.len() + 1) * MOST_CHANGED > manifests.len() {
                return None;
            }
            changed.push(i);
        }
        Some((changed, parsed_again))
    }

    /// The cross-object findings made again over the objects at `places` (a neighbourhood
    /// of the change: module `neighbourhood`): those of this revision's objects there taken
    /// out, those of `set`'s put in. `false`: a finding to take out is not there (the
    /// neighbourhood missed something; the caller validates whole).
    fn update_cross(
        &mut self,
        set: &ManifestSet,
        places: &[usize],
        ctx: &ValidationContext<'_>,
    ) -> bool {
        let part = |of: &[Arc<Manifest>]| {
            let objects: Vec<Arc<Manifest>> = places.iter().map(|&i| of[i].clone()).collect();
            cross_checks(&Index::new(&objects), ctx)
        };
        let mut gone = self.fixes.keep_all(part(&self.manifests));
        let mut came = self.fixes.keep_all(part(&set.manifests));
        // The findings of objects that read nothing changed are the same in both parts.
        gone.retain(|d| match find(&came, d) {
            Some(at) => {
                came.remove(at);
                false
            }
            None => true,
        });
        let mut cross = std::mem::take(&mut self.cross);
        for d in &gone {
            match find(&cross, d) {
                Some(at) => {
                    cross.remove(at);
                }
                None => return false,
            }
        }
        for d in came {
            insert(&mut cross, d);
        }
        self.cross = cross;
        true
    }

    /// The own checks' findings of the objects at `changed` replaced by those of `set`'s
    /// objects there.
    fn replace_own(&mut self, set: &ManifestSet, changed: &[usize]) {
        let checks = &mut self.own;
        for &i in changed {
            let mut old = Vec::new();
            metadata::check_object(&self.manifests[i], &mut old);
            for d in &self.fixes.keep_all(old) {
                if let Some(at) = find(checks, d) {
                    checks.remove(at);
                }
            }
            let mut new = Vec::new();
            metadata::check_object(&set.manifests[i], &mut new);
            for d in self.fixes.keep_all(new) {
                insert(checks, d);
            }
        }
    }
}

#[cfg(test)]
#[path = "incremental_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "kept_tests.rs"]
mod kept_tests;
