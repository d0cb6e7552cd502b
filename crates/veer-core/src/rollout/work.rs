//! The rollout work of one pass, computed once from git, the watch cache and the stored
//! rollout states ([`plan_work`]) and used by both sides of the pass: the planner leaves out
//! the fields running rollouts own ([`RolloutWork::owned`]), the driver starts, drives and
//! forgets rollouts from the rest. Pure.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::detect::RouteShift;
use super::targets::{binding, is_virtual_service, owned_by_rollout, targets};
use super::{CompanionRoute, RolloutError, RolloutState, TargetUpdate};
use crate::diff::{DesiredObject, LiveLookup};
use crate::fields::FieldPath;
use crate::ids::RolloutId;
use crate::manifest::ObjectKey;
use crate::manifest::rollout_policy::{Binding, RolloutPolicy};

/// What a pass does about rollouts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RolloutWork {
    /// Every VirtualService in git bound to a policy: the stored rollout of any other leaves
    /// with it (its weights are git's again).
    pub bound: BTreeSet<RolloutId>,
    /// The bound VirtualServices with something to do (a stored rollout, or a route git
    /// shifts), in git's order.
    pub rollouts: Vec<VirtualServiceWork>,
    /// VirtualServices left alone this pass and why, for the driver to log.
    pub skipped: Vec<(RolloutId, Skipped)>,
    /// The fields running rollouts own, per VirtualService ([`owned_by_rollout`]): the
    /// planner's ignore list.
    pub owned: BTreeMap<ObjectKey, Vec<FieldPath>>,
}

/// Why a VirtualService in git gets no rollout work this pass.
#[derive(Debug, Clone, PartialEq)]
pub enum Skipped {
    /// Its annotation names no known policy: its weights apply at once.
    UnknownPolicy(String),
    /// Several policies' selectors match it: its weights apply at once.
    AmbiguousPolicies(Vec<String>),
    /// Its weights cannot be read (it stays bound: a stored rollout is kept).
    UnreadableWeights(RolloutError),
}

/// One bound VirtualService with a rollout to start or drive.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualServiceWork {
    pub id: RolloutId,
    pub key: ObjectKey,
    pub policy: RolloutPolicy,
    /// The VirtualService in git.
    pub desired: Value,
    /// The VirtualService as the watch cache has it, to notice a hand edit of the route.
    pub live: Option<Value>,
    /// The route git shifts, when it shifts one: the rollout's own.
    pub shift: Option<RouteShift>,
    /// Other routes git shifts in the same VirtualService: they move with `shift`'s.
    pub companions: Vec<CompanionRoute>,
    /// What the state machine hears as the target ([`targets`]).
    pub target: Option<TargetUpdate>,
}

/// The rollout work of `desired` (git's objects; only VirtualServices matter) against `live`
/// (the watch cache), the stored rollout `states`, the `policies` in force and the commit in
/// force. Only the bound VirtualServices' live objects are looked up.
pub fn plan_work<L: LiveLookup + ?Sized>(
    desired: &[DesiredObject],
    live: &L,
    states: &BTreeMap<RolloutId, &RolloutState>,
    policies: &[RolloutPolicy],
    commit: &str,
) -> RolloutWork {
    let mut work = RolloutWork::default();
    for d in desired.iter().filter(|d| is_virtual_service(&d.key)) {
        let id = RolloutId::of(&d.key);
        // As veer applies it (its label can be what a policy selects).
        let value = d.value();
        let policy = match binding(&value, policies) {
            Binding::Annotation(p) | Binding::Selector(p) => p,
            // Unbinding a VirtualService ends veer's ownership: its weights apply at once.
            Binding::Unbound => continue,
            Binding::UnknownPolicy(name) => {
                work.skipped.push((id, Skipped::UnknownPolicy(name)));
                continue;
            }
            Binding::Ambiguous(names) => {
                work.skipped.push((id, Skipped::AmbiguousPolicies(names)));
                continue;
            }
        };
        work.bound.insert(id.clone());
        let live_vs = live.live(&d.key);
        let live_vs = live_vs.as_deref();
        let state = states.get(&id).copied();
        let (shifts, target) = match targets(&value, live_vs, state, commit) {
            Ok(t) => t,
            Err(e) => {
                // Nothing is known to shift; a running rollout still owns its route.
                if let Some(owned) = owned_by_rollout(&[], state) {
                    work.owned.insert(d.key.clone(), owned);
                }
                work.skipped.push((id, Skipped::UnreadableWeights(e)));
                continue;
            }
        };
        if let Some(owned) = owned_by_rollout(&shifts, state) {
            work.owned.insert(d.key.clone(), owned);
        }
        let mut shifts = shifts.into_iter();
        let shift = shifts.next();
        if state.is_none() && shift.is_none() {
            continue;
        }
        work.rollouts.push(VirtualServiceWork {
            id,
            key: d.key.clone(),
            policy: policy.clone(),
            desired: value.into_owned(),
            live: live_vs.cloned(),
            shift,
            companions: shifts.map(|s| CompanionRoute::from(&s)).collect(),
            target,
        });
    }
    work
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{id, key, policy, state, vs};
    use super::*;
    use crate::rollout::Phase;

    fn plan(git: Value, live: Value, state: Option<&RolloutState>) -> RolloutWork {
        let desired = vec![DesiredObject::new(key(), git)];
        let live = BTreeMap::from([(key(), live)]);
        let states: BTreeMap<RolloutId, &RolloutState> =
            state.map(|s| (id(), s)).into_iter().collect();
        plan_work(&desired, &live, &states, &[policy("p")], "c2")
    }

    fn owned(work: &RolloutWork) -> Vec<String> {
        work.owned
            .get(&key())
            .map(|p| p.iter().map(ToString::to_string).collect())
            .unwrap_or_default()
    }

    #[test]
    fn work_table() {
        let running = state("c1", Phase::Progressing, (100, 0), (0, 100));
        let weights = [
            ".spec.http[0].route[0].weight",
            ".spec.http[0].route[1].weight",
        ];

        // Unbound: weights apply at once, nothing to drive, nothing kept.
        let w = plan(vs(0, 100, None), vs(100, 0, None), None);
        assert_eq!(w, RolloutWork::default());

        // An unknown policy: skipped with the reason, not bound (a stored rollout leaves).
        let w = plan(vs(0, 100, Some("nope")), vs(100, 0, None), Some(&running));
        assert!(w.bound.is_empty() && w.rollouts.is_empty() && w.owned.is_empty());
        assert_eq!(w.skipped, [(id(), Skipped::UnknownPolicy("nope".into()))]);

        // Bound, nothing shifts, no rollout: bound only.
        let w = plan(vs(100, 0, Some("p")), vs(100, 0, None), None);
        assert_eq!(w.bound, BTreeSet::from([id()]));
        assert!(w.rollouts.is_empty() && w.owned.is_empty() && w.skipped.is_empty());

        // Bound and shifted: one rollout to start, its weights owned from this pass on.
        let w = plan(vs(0, 100, Some("p")), vs(100, 0, None), None);
        assert_eq!(owned(&w), weights);
        let [r] = w.rollouts.as_slice() else {
            panic!("{w:?}")
        };
        assert_eq!(r.shift.as_ref().map(|s| s.route.index), Some(0));
        assert_eq!(r.target.as_ref().map(|t| t.revision.as_str()), Some("c2"));
        assert_eq!(r.live, Some(vs(100, 0, None)));

        // A running rollout whose weights git no longer shifts is still driven, and owns its
        // route.
        let w = plan(vs(0, 100, Some("p")), vs(0, 100, None), Some(&running));
        assert_eq!(w.rollouts.len(), 1);
        assert!(w.rollouts[0].shift.is_none());
        assert_eq!(owned(&w), [".spec.http[0].route"]);

        // Unreadable weights: skipped with the reason; still bound, its running rollout still
        // owns the route.
        let mut bad = vs(0, 100, Some("p"));
        bad["spec"]["http"][0]["route"][0]["weight"] = serde_json::json!(30);
        let w = plan(bad, vs(100, 0, None), Some(&running));
        assert!(w.rollouts.is_empty());
        assert_eq!(w.bound, BTreeSet::from([id()]));
        assert!(matches!(
            w.skipped.as_slice(),
            [(
                _,
                Skipped::UnreadableWeights(RolloutError::WeightsDoNotSum { .. })
            )]
        ));
        assert_eq!(owned(&w), [".spec.http[0].route"]);
    }
}
