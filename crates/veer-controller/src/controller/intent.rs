//! The inventory written before the writes it covers, so a crash cannot orphan anything.
//!
//! veer may prune only what it applied, and it knows what it applied from the inventory in
//! its state ConfigMap. Recording that only after a pass would lose every object created
//! before a `kill -9`: they would exist, carry veer's label, and never be pruned. So before a
//! pass writes an object the inventory does not hold yet, the state is written with that
//! object marked [`PENDING`] (with the hash it is about to be applied with). After a crash the
//! record is there whether or not the write happened: a pending object that exists is pruned
//! like any other once git drops it (still only while veer's field manager owns fields of it),
//! and one that was never created is forgotten by the next pass, which finds it neither in git
//! nor in the cluster. Pure.

use std::collections::HashMap;

use crate::diff::{DesiredObject, ObjectAction, Plan};
use crate::manifest::ObjectIdentity;
use crate::sync::state::{ObjectRecord, StateChange, SyncState};

/// The `result` of an object recorded before its first write.
pub const PENDING: &str = "pending";

/// `prev` with every object that `plan` is about to apply and the inventory does not hold
/// yet recorded as [`PENDING`]; `prev` itself when there is none (so nothing is written).
pub fn with_intent(prev: &SyncState, plan: &Plan, desired: &[DesiredObject]) -> SyncState {
    let mut next = prev.clone();
    if let Some(change) = intent_change(prev, plan, desired) {
        next.apply(change);
    }
    next
}

/// What [`with_intent`] changes: the pending records; `None`: nothing. Looks at every
/// record once, without hashing or copying it. Pure.
pub fn intent_change(
    prev: &SyncState,
    plan: &Plan,
    desired: &[DesiredObject],
) -> Option<StateChange> {
    let mut applies: Vec<ObjectIdentity<'_>> = (plan.objects.iter())
        .filter(|object| match &object.action {
            ObjectAction::Create | ObjectAction::Update { .. } => plan.writes(object),
            ObjectAction::Prune | ObjectAction::PruneSkipped { .. } | ObjectAction::Unchanged => {
                false
            }
        })
        .map(|object| object.key.identity())
        .collect();
    if applies.is_empty() {
        return None;
    }
    applies.sort_unstable();
    applies.dedup();
    let mut held = vec![false; applies.len()];
    for r in prev.objects.iter().filter(|r| r.in_inventory()) {
        if let Ok(i) = applies.binary_search(&r.identity())
            && let Some(h) = held.get_mut(i)
        {
            *h = true;
        }
    }
    let desired_by_id: HashMap<ObjectIdentity<'_>, &DesiredObject> =
        desired.iter().map(|d| (d.key.identity(), d)).collect();
    let pending: Vec<ObjectRecord> = (applies.iter().zip(held))
        .filter(|(_, held)| !held)
        .filter_map(|(id, _)| desired_by_id.get(id))
        .map(|d| ObjectRecord::new(&d.key, Some(d.hash()), PENDING))
        .collect();
    if pending.is_empty() {
        return None;
    }
    Some(StateChange {
        header: StateChange::header_of(prev),
        put: pending,
        remove: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::tests::{applied_state, desired, hash, key, loaded, report};
    use crate::controller::{next_state, plan_context};
    use crate::diff::{Cause, ObjectPlan};
    use crate::sync::ObjectResult;
    use veer_testkit::at;

    fn plan(actions: Vec<(&str, ObjectAction)>) -> Plan {
        Plan {
            leave_drift: false,
            objects: actions
                .into_iter()
                .map(|(n, action)| ObjectPlan {
                    key: key(n),
                    action,
                    desired: None,
                    live: None,
                })
                .collect(),
        }
    }

    fn update(cause: Cause) -> ObjectAction {
        ObjectAction::Update {
            cause,
            changes: Vec::new(),
        }
    }

    fn record<'a>(state: &'a SyncState, name: &str) -> Option<&'a ObjectRecord> {
        state.objects.iter().find(|r| r.name == name)
    }

    #[test]
    fn what_a_pass_is_about_to_apply_is_recorded_first() {
        struct Case {
            name: &'static str,
            action: ObjectAction,
            self_heal: bool,
            pending: bool,
        }
        let cases = [
            Case {
                name: "a create is pending before it is sent",
                action: ObjectAction::Create,
                self_heal: true,
                pending: true,
            },
            Case {
                name: "an update of an object veer does not hold yet (adoption) too",
                action: update(Cause::GitChange),
                self_heal: true,
                pending: true,
            },
            Case {
                name: "drift left alone writes nothing",
                action: update(Cause::Drift),
                self_heal: false,
                pending: false,
            },
            Case {
                name: "an unchanged object is not written",
                action: ObjectAction::Unchanged,
                self_heal: true,
                pending: false,
            },
        ];
        let prev = applied_state();
        for case in cases {
            let planned = Plan {
                leave_drift: !case.self_heal,
                ..plan(vec![("new", case.action), ("a", update(Cause::GitChange))])
            };
            let next = with_intent(&prev, &planned, &desired(&[("new", 7), ("a", 2)]));
            let pending = record(&next, "new");
            assert_eq!(pending.is_some(), case.pending, "{}", case.name);
            if let Some(r) = pending {
                assert_eq!((r.result.as_str(), &r.hash), (PENDING, &hash("new", 7)));
            }
            // What the inventory holds already keeps its applied hash until it is applied.
            assert_eq!(record(&next, "a"), record(&prev, "a"), "{}", case.name);
            assert_eq!(next.same_content(&prev), !case.pending, "{}", case.name);
        }
    }

    #[test]
    fn a_failed_create_gets_a_pending_record_again() {
        let mut prev = applied_state();
        prev.objects
            .push(ObjectRecord::new(&key("broken"), None, "failed"));
        let next = with_intent(
            &prev,
            &plan(vec![("broken", ObjectAction::Create)]),
            &desired(&[("broken", 1)]),
        );
        let records: Vec<_> = next.objects.iter().filter(|r| r.name == "broken").collect();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].result, PENDING);
        assert!(next.inventory().contains(&key("broken")));
    }

    #[test]
    fn a_refused_first_write_leaves_the_inventory_and_an_unanswered_one_stays() {
        let intent = with_intent(
            &applied_state(),
            &plan(vec![
                ("refused", ObjectAction::Create),
                ("unanswered", ObjectAction::Create),
            ]),
            &desired(&[("refused", 1), ("unanswered", 1)]),
        );
        let failure = |kind| {
            ObjectResult::Failed(crate::sync::Failure {
                kind,
                code: Some(500),
                message: "no".into(),
                fix: None,
                managers: Vec::new(),
                attempts: 1,
            })
        };
        let next = next_state(
            &intent,
            &loaded("b"),
            &desired(&[("refused", 1), ("unanswered", 1)]),
            &report(vec![
                ("refused", failure(crate::sync::FailureKind::Invalid)),
                ("unanswered", failure(crate::sync::FailureKind::Unavailable)),
            ]),
            &Default::default(),
            at(25, 5),
        );
        assert!(!next.inventory().contains(&key("refused")));
        assert!(next.inventory().contains(&key("unanswered")));
    }

    #[test]
    fn after_a_crash_a_pending_object_is_in_the_inventory_or_forgotten() {
        let intent = with_intent(
            &applied_state(),
            &plan(vec![("new", ObjectAction::Create)]),
            &desired(&[("new", 7)]),
        );
        // The next pass plans with it in the inventory: git dropped it, so if it exists it is
        // planned for prune (the planner still requires veer's field manager on it).
        let ctx = plan_context(&intent, "veer", true, Default::default());
        assert!(ctx.inventory.contains(&key("new")));
        // If it was never created, the plan does not cover it and the record goes.
        let next = next_state(
            &intent,
            &loaded("b"),
            &desired(&[("a", 1)]),
            &report(vec![
                ("a", ObjectResult::Unchanged),
                ("old", ObjectResult::Pruned),
            ]),
            &Default::default(),
            at(25, 5),
        );
        assert!(record(&next, "new").is_none());
        // If it was created, the pass that applies it records it as such.
        let next = next_state(
            &intent,
            &loaded("b"),
            &desired(&[("a", 1), ("new", 7)]),
            &report(vec![
                ("a", ObjectResult::Unchanged),
                ("new", ObjectResult::Unchanged),
            ]),
            &Default::default(),
            at(25, 5),
        );
        let r = record(&next, "new").map(|r| (r.result.as_str(), r.hash.clone()));
        assert_eq!(r, Some(("unchanged", hash("new", 7))));
    }
}
