//! What a revision is planned from: the objects veer applies (decorated, veer's own
//! configuration left out), the planner's view of the recorded state, and what a plan comes to
//! when nothing is written. Pure.

use std::collections::HashSet;

use crate::cluster::{LiveState, LiveView};
use crate::diff::{Cause, DesiredObject, ObjectAction, Plan, PlanContext};
use crate::manifest::ObjectIdentity;
use crate::source::LoadedRevision;
use crate::sync::state::SyncState;
use crate::sync::{self, ObjectResult, SyncReport, WriteMode};

/// The objects of a revision as veer applies them: label and source annotation added.
/// veer's own configuration (`veer.io` kinds such as RolloutPolicy) is read, never applied.
pub fn desired_objects(loaded: &LoadedRevision, source_url: &str) -> Vec<DesiredObject> {
    desired_where(loaded, source_url, |_| true)
}

/// The VirtualServices of `loaded` alone, as [`desired_objects`] makes them: what a rollout
/// tick needs, at a cost that does not grow with the rest of the repository.
pub fn desired_virtual_services(loaded: &LoadedRevision, source_url: &str) -> Vec<DesiredObject> {
    desired_where(loaded, source_url, super::rollouts::is_virtual_service)
}

/// The objects of `loaded` whose key `keep` accepts, as [`desired_objects`] makes them.
pub(super) fn desired_where(
    loaded: &LoadedRevision,
    source_url: &str,
    keep: impl Fn(&crate::manifest::ObjectKey) -> bool,
) -> Vec<DesiredObject> {
    let wanted = |m: &&std::sync::Arc<crate::manifest::Manifest>| {
        keep(&m.key) && !crate::manifest::policy::is_veer_config(m)
    };
    // Counted first: a filtered collect grows by doubling, and a full plan holds the vector
    // for the whole pass (room for 16,384 objects at 10,000).
    let mut desired = Vec::with_capacity(loaded.set.manifests.iter().filter(wanted).count());
    desired.extend(loaded.set.manifests.iter().filter(wanted).map(|m| {
        let mut d = DesiredObject::of_manifest(m);
        sync::decorate(&mut d, &format!("{source_url}#{}", m.file));
        d
    }));
    desired
}

/// What the rest of a pass reads of the live objects a plan was made from, read into values:
/// those it may prune (sync deletes each by its uid; the dry-run gate names the file a
/// refused delete came from), and, for a rollout driver that has not read its states yet
/// (it then plans its work again, from these), the VirtualServices. The plan itself read
/// each object from the watch cache's text once and dropped it: keeping every object whole
/// for the pass would hold them all at once.
pub fn live_after_plan(
    view: LiveView,
    desired: &HashSet<ObjectIdentity<'_>>,
    rollouts: Option<&super::rollouts::RolloutDriver>,
) -> LiveState {
    let virtual_services = rollouts.is_some_and(|d| d.tracked().is_none());
    LiveState {
        objects: view.texts.read_where(|key| {
            !desired.contains(&key.identity())
                || (virtual_services && super::rollouts::is_virtual_service(key))
        }),
        unknown: view.unknown,
        forbidden: view.forbidden,
    }
}

/// The planner's view of the recorded state, with the list rules of the server it plans for.
pub fn plan_context(
    state: &SyncState,
    manager: &str,
    prune: bool,
    semantics: crate::fields::ListSemantics,
) -> PlanContext {
    plan_context_where(state, manager, prune, semantics, |_| true)
}

/// [`plan_context`] with the recorded objects `keep` accepts (those a pass plans): the
/// inventory outside them is neither pruned nor looked at.
pub(super) fn plan_context_where(
    state: &SyncState,
    manager: &str,
    prune: bool,
    semantics: crate::fields::ListSemantics,
    keep: impl Fn(ObjectIdentity<'_>) -> bool,
) -> PlanContext {
    let mut ctx = PlanContext::new(manager);
    ctx.prune = prune;
    ctx.semantics = semantics;
    let applied = || {
        (state.objects.iter())
            .filter(|r| keep(record_identity(r)))
            .filter_map(|r| r.hash.as_ref().map(|hash| (r, hash)))
    };
    // Collected, not inserted one by one: a B-tree built from sorted entries has full nodes,
    // where inserting in order leaves each about half full (4.7 MiB for these two at 10,000
    // records).
    ctx.inventory = applied().map(|(r, _)| r.key()).collect();
    ctx.applied_hashes = applied().map(|(r, hash)| (r.key(), hash.clone())).collect();
    ctx
}

/// The identity of a recorded object, without copying it.
pub(super) fn record_identity(r: &crate::sync::state::ObjectRecord) -> ObjectIdentity<'_> {
    ObjectIdentity {
        group: &r.group,
        kind: &r.kind,
        namespace: r.namespace.as_deref(),
        name: &r.name,
    }
}

/// What a plan comes to when nothing is written: unchanged, prune skipped, drift reported.
/// Pure.
pub fn report_without_writes(plan: &Plan) -> SyncReport {
    SyncReport {
        mode: WriteMode::Apply,
        objects: plan
            .objects
            .iter()
            .map(|o| sync::ObjectOutcome {
                key: o.key.clone(),
                result: match &o.action {
                    ObjectAction::Update {
                        cause: Cause::Drift,
                        ..
                    } => ObjectResult::DriftReported,
                    ObjectAction::PruneSkipped { reason } => ObjectResult::PruneSkipped {
                        reason: reason.clone(),
                    },
                    ObjectAction::Create
                    | ObjectAction::Update { .. }
                    | ObjectAction::Prune
                    | ObjectAction::Unchanged => ObjectResult::Unchanged,
                },
            })
            .collect(),
        unobserved: Vec::new(),
    }
}

/// The foundation's outcomes and the rest's, in the plan's order as if it had been one
/// execution: both follow it, so two cursors merge them (moved, not copied).
pub(super) fn merge_in_plan_order(plan: &Plan, first: SyncReport, rest: SyncReport) -> SyncReport {
    let mut first_objects = first.objects.into_iter().peekable();
    let mut rest_objects = rest.objects.into_iter().peekable();
    let mut objects = Vec::with_capacity(plan.objects.len());
    for o in &plan.objects {
        let id = o.key.identity();
        if let Some(f) = first_objects.next_if(|f| f.key.identity() == id) {
            objects.push(f);
        } else if let Some(r) = rest_objects.next_if(|r| r.key.identity() == id) {
            objects.push(r);
        }
    }
    // An outcome out of the plan's order (none today) is kept, at the end: a lost outcome
    // would be a lost record.
    objects.extend(first_objects.chain(rest_objects));
    SyncReport {
        mode: rest.mode,
        objects,
        unobserved: (first.unobserved.into_iter())
            .chain(rest.unobserved)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::tests::{key, loaded};
    use crate::diff;

    #[test]
    fn rollout_policies_are_read_but_never_applied() {
        let mut rev = loaded("a");
        let file = crate::manifest::parse_file(
            "p.yaml",
            b"apiVersion: veer.io/v1alpha1\nkind: RolloutPolicy\nmetadata:\n  name: canary\nspec:\n  interval: 10s\n  stepWeights: [10, 50]\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: shop\n",
            &crate::manifest::ReadOptions::default(),
        );
        assert!(file.diagnostics.is_empty(), "{:?}", file.diagnostics);
        rev.set.extend(&file);
        let kinds: Vec<String> = desired_objects(&rev, "repo")
            .iter()
            .map(|d| d.key.kind.clone())
            .collect();
        assert_eq!(kinds, vec!["ConfigMap".to_string()]);
    }

    #[test]
    fn no_writes_report_maps_drift_and_skips() {
        let plan = Plan {
            objects: vec![
                diff::ObjectPlan {
                    key: key("a"),
                    action: ObjectAction::Update {
                        cause: Cause::Drift,
                        changes: Vec::new(),
                    },
                    desired: None,
                    live: None,
                },
                diff::ObjectPlan {
                    key: key("b"),
                    action: ObjectAction::Unchanged,
                    desired: None,
                    live: None,
                },
            ],
            leave_drift: false,
        };
        assert!(plan.writes_anything());
        let left = Plan {
            leave_drift: true,
            ..plan.clone()
        };
        assert!(!left.writes_anything());
        let r = report_without_writes(&left);
        assert_eq!(r.objects[0].result, ObjectResult::DriftReported);
        assert_eq!(r.objects[1].result, ObjectResult::Unchanged);
    }
}
