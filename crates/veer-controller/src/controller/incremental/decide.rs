//! The pure side of incremental planning: which objects a pass plans ([`decide`]), which
//! outcomes the next pass must look at again ([`unsettled`]), which rollouts moved
//! ([`changed_rollouts`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use super::{Baseline, Facts, FullReason};
use crate::cluster::Changes;
use crate::controller::planning::record_identity;
use crate::controller::rollouts::{RolloutId, is_virtual_service};
use crate::diff::PruneSkipReason;
use crate::manifest::policy::is_veer_config;
use crate::manifest::{Manifest, ObjectIdentity, ObjectKey};
use crate::rollout::RolloutState;
use crate::sync::ObjectResult;

/// The same manifest: shared by the parse cache, or the same object from the same file.
fn same_manifest(a: &Arc<Manifest>, b: &Arc<Manifest>) -> bool {
    Arc::ptr_eq(a, b) || (a.key == b.key && a.file == b.file && a.value == b.value)
}

fn is_crd(key: &ObjectKey) -> bool {
    key.group == "apiextensions.k8s.io" && key.kind == "CustomResourceDefinition"
}

fn is_namespace(key: &ObjectKey) -> bool {
    key.group.is_empty() && key.kind == "Namespace"
}

/// Which objects a pass plans: every one (`Err`, and why), or those that changed since
/// `baseline` (`Ok`, sorted by identity; empty: nothing to plan). `touched` says whether the
/// watches saw an object change (`changes` is what they saw). Pure.
pub(in crate::controller) fn decide(
    baseline: Option<&Baseline>,
    facts: &Facts<'_>,
    changes: &Changes,
    touched: &dyn Fn(&ObjectKey) -> bool,
) -> Result<Vec<ObjectKey>, FullReason> {
    if facts.dry_run {
        return Err(FullReason::DryRun);
    }
    let Some(b) = baseline else {
        return Err(FullReason::First);
    };
    let since = facts.now.signed_duration_since(b.full_at);
    if since.to_std().is_ok_and(|d| d >= facts.resync) {
        return Err(FullReason::Resync);
    }
    if changes.overflowed {
        return Err(FullReason::JournalOverflow);
    }
    let manifests = &facts.loaded.set.manifests;
    // Pointers only: the idle pass's whole cost.
    let same_revision = b.commit == facts.loaded.revision.commit.0
        && b.manifests.len() == manifests.len()
        && b.manifests
            .iter()
            .zip(manifests)
            .all(|(a, m)| Arc::ptr_eq(a, m));
    if same_revision && changes.is_empty() && b.again.is_empty() && b.rollouts_again.is_empty() {
        return Ok(Vec::new());
    }
    let mut picked: Vec<ObjectKey> = Vec::new();
    // The same objects at the same places (the parse cache keeps a revision's order): the
    // changed ones are told apart place by place, without indexing every object.
    let aligned = b.manifests.len() == manifests.len()
        && (b.manifests.iter().zip(manifests))
            .all(|(o, m)| Arc::ptr_eq(o, m) || o.key.identity() == m.key.identity());
    if aligned && !same_revision {
        for (o, m) in b.manifests.iter().zip(manifests) {
            if same_manifest(o, m) {
                continue;
            }
            if is_veer_config(m) {
                return Err(FullReason::Policies);
            }
            picked.push(m.key.clone());
        }
    } else if !same_revision {
        let wanted: HashSet<ObjectIdentity<'_>> =
            manifests.iter().map(|m| m.key.identity()).collect();
        let before: HashMap<ObjectIdentity<'_>, &Arc<Manifest>> =
            b.manifests.iter().map(|m| (m.key.identity(), m)).collect();
        for m in manifests {
            if (before.get(&m.key.identity())).is_some_and(|o| same_manifest(o, m)) {
                continue;
            }
            if is_veer_config(m) {
                return Err(FullReason::Policies);
            }
            picked.push(m.key.clone());
        }
        for o in &b.manifests {
            if wanted.contains(&o.key.identity()) {
                continue;
            }
            if is_veer_config(o) {
                return Err(FullReason::Policies);
            }
            picked.push(o.key.clone());
        }
    }
    let inventory = || facts.state.objects.iter().filter(|r| r.in_inventory());
    if !changes.is_empty() {
        for m in manifests {
            if !is_veer_config(m) && touched(&m.key) {
                picked.push(m.key.clone());
            }
        }
        for r in inventory() {
            if changes.mentions(&r.kind, &r.name) {
                let key = r.key();
                if touched(&key) {
                    picked.push(key);
                }
            }
        }
    }
    picked.extend(b.again.iter().cloned());
    let rollout_vs = |ids: &BTreeSet<RolloutId>| {
        manifests
            .iter()
            .filter(|m| is_virtual_service(&m.key) && ids.contains(&RolloutId::of(&m.key)))
            .map(|m| m.key.clone())
            .collect::<Vec<_>>()
    };
    if !b.rollouts_again.is_empty() {
        picked.extend(rollout_vs(&b.rollouts_again));
    }
    if picked.is_empty() {
        return Ok(picked);
    }
    if let Some(tracked) = facts.tracked.as_ref().filter(|t| !t.is_empty()) {
        picked.extend(rollout_vs(tracked));
    }
    picked.sort_by(|a, b| a.identity().cmp(&b.identity()));
    picked.dedup_by(|a, b| a.identity() == b.identity());
    // Held for the whole pass (`Scope::keys`): what the pushes and duplicates grew it to
    // (room for 32,768 keys for 10,000 after a first sync) goes back.
    picked.shrink_to_fit();
    if picked.iter().any(is_crd) {
        return Err(FullReason::CustomResourceDefinition);
    }
    // Namespaces that may be pruned: one is kept while anything staying lives in it, which
    // only a plan of everything in it can tell. (Git's Namespaces alone are indexed: few.)
    let is_namespace_record =
        |r: &&crate::sync::state::ObjectRecord| r.group.is_empty() && r.kind == "Namespace";
    let mut prunable: HashSet<&str> = HashSet::new();
    if inventory().any(|r| is_namespace_record(&r)) {
        let wanted: HashSet<ObjectIdentity<'_>> = (manifests.iter())
            .filter(|m| is_namespace(&m.key))
            .map(|m| m.key.identity())
            .collect();
        prunable = inventory()
            .filter(is_namespace_record)
            .filter(|r| !wanted.contains(&record_identity(r)))
            .map(|r| r.name.as_str())
            .collect();
    }
    let near_prunable = |k: &ObjectKey| {
        (is_namespace(k) && prunable.contains(k.name.as_str()))
            || k.namespace.as_deref().is_some_and(|n| prunable.contains(n))
    };
    if !prunable.is_empty() && picked.iter().any(near_prunable) {
        return Err(FullReason::NamespacePrune);
    }
    Ok(picked)
}

/// A result the next pass must look at again: a write (read back once), a failure, drift
/// left in place, a Namespace not pruned because it is not empty (its contents are not
/// watched).
pub(super) fn unsettled(result: &ObjectResult) -> bool {
    match result {
        ObjectResult::Created
        | ObjectResult::Updated { .. }
        | ObjectResult::DriftReported
        | ObjectResult::Failed(_) => true,
        ObjectResult::PruneSkipped { reason } => match reason {
            PruneSkipReason::NamespaceNotEmpty { .. } => true,
            PruneSkipReason::Annotation
            | PruneSkipReason::Disabled
            | PruneSkipReason::NotManagedByVeer
            | PruneSkipReason::NamespaceInUse { .. } => false,
        },
        ObjectResult::Unchanged | ObjectResult::Pruned => false,
    }
}

pub(super) type RolloutStates = BTreeMap<RolloutId, RolloutState>;

/// The rollouts whose state differs between two snapshots (started, moved, forgotten).
pub(super) fn changed_rollouts(
    before: &RolloutStates,
    after: &RolloutStates,
) -> BTreeSet<RolloutId> {
    let ids: BTreeSet<&RolloutId> = before.keys().chain(after.keys()).collect();
    ids.into_iter()
        .filter(|id| before.get(*id) != after.get(*id))
        .cloned()
        .collect()
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
