//! The order objects are applied in, and the reverse order they are pruned in.
//!
//! Namespaces and CRDs first (everything else may live in or be an instance of them), then
//! configuration, then workloads and Services, then the Istio objects that describe traffic
//! to them, with VirtualServices last: a route may only point at subsets DestinationRules
//! already define and at workloads that already exist. Pruning undoes this in reverse, so a
//! VirtualService stops routing before what it routed to goes away.

use std::cmp::Ordering;

use crate::manifest::ObjectKey;

/// Apply tiers, by (group, kind). Kinds not listed go with the workloads.
const TIERS: &[(&str, &str, u8)] = &[
    ("", "Namespace", 0),
    ("apiextensions.k8s.io", "CustomResourceDefinition", 1),
    ("", "ServiceAccount", 2),
    ("", "ConfigMap", 2),
    ("", "Secret", 2),
    ("rbac.authorization.k8s.io", "ClusterRole", 2),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding", 2),
    ("rbac.authorization.k8s.io", "Role", 2),
    ("rbac.authorization.k8s.io", "RoleBinding", 2),
    ("networking.istio.io", "DestinationRule", 4),
    ("networking.istio.io", "ServiceEntry", 4),
    ("networking.istio.io", "Gateway", 4),
    ("networking.istio.io", "Sidecar", 4),
    ("networking.istio.io", "VirtualService", 5),
];

/// Tier of kinds not in the table (Deployments, Services, anything else).
const WORKLOAD_TIER: u8 = 3;

/// Where an object goes in apply order: lower first.
pub fn apply_tier(key: &ObjectKey) -> u8 {
    TIERS
        .iter()
        .find(|(g, k, _)| *g == key.group && *k == key.kind)
        .map(|(_, _, tier)| *tier)
        .unwrap_or(WORKLOAD_TIER)
}

/// Namespaces and CRDs: what other objects live in or are instances of, so they exist
/// before anything else is applied (or dry-run).
pub fn is_foundation(key: &ObjectKey) -> bool {
    apply_tier(key) <= FOUNDATION_TIER
}

/// The last tier of [`is_foundation`] (CustomResourceDefinition's in [`TIERS`]).
const FOUNDATION_TIER: u8 = 1;

/// Apply order: by tier, then by key so the order is stable.
pub fn apply_cmp(a: &ObjectKey, b: &ObjectKey) -> Ordering {
    apply_tier(a).cmp(&apply_tier(b)).then_with(|| a.cmp(b))
}

/// Prune order: the reverse of apply order.
pub fn prune_cmp(a: &ObjectKey, b: &ObjectKey) -> Ordering {
    apply_cmp(b, a)
}

/// `keys` sorted for applying.
pub fn apply_order(keys: &[ObjectKey]) -> Vec<ObjectKey> {
    let mut out = keys.to_vec();
    out.sort_by(apply_cmp);
    out
}

/// `keys` sorted for pruning.
pub fn prune_order(keys: &[ObjectKey]) -> Vec<ObjectKey> {
    let mut out = keys.to_vec();
    out.sort_by(prune_cmp);
    out
}
