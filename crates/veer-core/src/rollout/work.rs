//! The rollout work of one pass, computed once from git, the watch cache and the stored
//! rollout states ([`plan_work`]) and used by both sides of the pass: the planner leaves out
//! the fields running rollouts own ([`RolloutWork::owned`]), the driver starts, drives and
//! forgets rollouts from the rest. Pure.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

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
    /// Shared with the revision's [`Bindings`].
    pub policy: Arc<RolloutPolicy>,
    /// The VirtualService in git (as veer applies it), shared with the revision's
    /// [`Bindings`].
    pub desired: Arc<Value>,
    /// The VirtualService as the watch cache has it, to notice a hand edit of the route.
    pub live: Option<Value>,
    /// The route git shifts, when it shifts one: the rollout's own.
    pub shift: Option<RouteShift>,
    /// Other routes git shifts in the same VirtualService: they move with `shift`'s.
    pub companions: Vec<CompanionRoute>,
    /// What the state machine hears as the target ([`targets`]).
    pub target: Option<Arc<TargetUpdate>>,
}

/// The VirtualServices of one revision bound to a policy ([`bind`]): what the rollout work
/// reads of git and the policies alone, the same for every pass and tick over that revision,
/// so a driver makes it once per revision and plans each tick from it ([`plan_bound`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bindings {
    /// The bound VirtualServices, in git's order.
    pub bound: Vec<Bound>,
    /// VirtualServices whose binding fails (an unknown or ambiguous policy), for the driver
    /// to log.
    pub skipped: Vec<(RolloutId, Skipped)>,
}

/// One VirtualService in git bound to a policy; shared, not copied, by each pass's work.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    pub id: RolloutId,
    pub key: ObjectKey,
    pub policy: Arc<RolloutPolicy>,
    /// As veer applies it (decorated).
    pub desired: Arc<Value>,
}

/// The bindings of `desired` (git's objects; only VirtualServices matter) to the `policies`
/// in force.
pub fn bind(desired: &[DesiredObject], policies: &[RolloutPolicy]) -> Bindings {
    // One shared copy of each policy, however many VirtualServices it binds.
    let shared: Vec<Arc<RolloutPolicy>> = policies.iter().cloned().map(Arc::new).collect();
    let mut bindings = Bindings::default();
    for d in desired.iter().filter(|d| is_virtual_service(&d.key)) {
        let id = RolloutId::of(&d.key);
        // As veer applies it (its label can be what a policy selects).
        let value = d.value();
        let policy = match binding(&value, policies) {
            Binding::Annotation(p) | Binding::Selector(p) => p,
            // Unbinding a VirtualService ends veer's ownership: its weights apply at once.
            Binding::Unbound => continue,
            Binding::UnknownPolicy(name) => {
                bindings.skipped.push((id, Skipped::UnknownPolicy(name)));
                continue;
            }
            Binding::Ambiguous(names) => {
                bindings
                    .skipped
                    .push((id, Skipped::AmbiguousPolicies(names)));
                continue;
            }
        };
        let policy = match policies.iter().position(|p| std::ptr::eq(p, policy)) {
            Some(i) => Arc::clone(&shared[i]),
            None => Arc::new(policy.clone()),
        };
        bindings.bound.push(Bound {
            id,
            key: d.key.clone(),
            policy,
            desired: Arc::new(value.into_owned()),
        });
    }
    bindings
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
    plan_bound(&bind(desired, policies), None, live, states, commit)
}

/// [`plan_work`] from a revision's `bindings`, for the VirtualServices `only` names (all
/// when `None`).
pub fn plan_bound<L: LiveLookup + ?Sized>(
    bindings: &Bindings,
    only: Option<&BTreeSet<RolloutId>>,
    live: &L,
    states: &BTreeMap<RolloutId, &RolloutState>,
    commit: &str,
) -> RolloutWork {
    plan_with(bindings, only, |key| live.live(key), states, commit)
}

/// [`plan_bound`] over live objects read for it: each is moved into its rollout's work, not
/// copied (a tick plans a thousand rollouts from the objects it just read).
pub fn plan_bound_owned(
    bindings: &Bindings,
    only: Option<&BTreeSet<RolloutId>>,
    mut live: BTreeMap<ObjectKey, Value>,
    states: &BTreeMap<RolloutId, &RolloutState>,
    commit: &str,
) -> RolloutWork {
    let take = |key: &ObjectKey| {
        // Keyed as asked, else the same object at another API version (as `LiveLookup`).
        let found = match live.contains_key(key) {
            true => Some(key.clone()),
            false => live.keys().find(|k| k.same_object(key)).cloned(),
        };
        found.and_then(|k| live.remove(&k)).map(Cow::Owned)
    };
    plan_with(bindings, only, take, states, commit)
}

/// The rollout work of `bindings` (those `only` names), each bound VirtualService's live
/// object found by `live`.
fn plan_with<'l>(
    bindings: &Bindings,
    only: Option<&BTreeSet<RolloutId>>,
    mut live: impl FnMut(&ObjectKey) -> Option<Cow<'l, Value>>,
    states: &BTreeMap<RolloutId, &RolloutState>,
    commit: &str,
) -> RolloutWork {
    let wanted = |id: &RolloutId| only.is_none_or(|o| o.contains(id));
    let mut work = RolloutWork {
        // Every bound VirtualService, whatever `only` names: a rollout left out of this
        // work is not one whose VirtualService left git.
        bound: bindings.bound.iter().map(|b| b.id.clone()).collect(),
        skipped: bindings
            .skipped
            .iter()
            .filter(|(id, _)| wanted(id))
            .cloned()
            .collect(),
        ..RolloutWork::default()
    };
    for b in bindings.bound.iter().filter(|b| wanted(&b.id)) {
        let id = b.id.clone();
        let live_object = live(&b.key);
        let live_vs = live_object.as_deref();
        let state = states.get(&id).copied();
        let (shifts, target) = match targets(&b.desired, live_vs, state, commit) {
            Ok(t) => t,
            Err(e) => {
                // Nothing is known to shift; a running rollout still owns its route.
                if let Some(owned) = owned_by_rollout(&[], state) {
                    work.owned.insert(b.key.clone(), owned);
                }
                work.skipped.push((id, Skipped::UnreadableWeights(e)));
                continue;
            }
        };
        if let Some(owned) = owned_by_rollout(&shifts, state) {
            work.owned.insert(b.key.clone(), owned);
        }
        let mut shifts = shifts.into_iter();
        let shift = shifts.next();
        if state.is_none() && shift.is_none() {
            continue;
        }
        work.rollouts.push(VirtualServiceWork {
            id,
            key: b.key.clone(),
            policy: Arc::clone(&b.policy),
            desired: Arc::clone(&b.desired),
            live: live_object.map(Cow::into_owned),
            shift,
            companions: shifts.map(|s| CompanionRoute::from(&s)).collect(),
            target: target.map(Arc::new),
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

    /// A tick plans from the revision's bindings, made once: the same work as planning from
    /// git, for the rollouts it names (the others not planned nor skipped for it, though
    /// still bound).
    #[test]
    fn planning_from_bindings_is_planning_from_git() {
        let running = state("c1", Phase::Progressing, (100, 0), (0, 100));
        let other = crate::manifest::ObjectKey {
            name: "ratings".into(),
            ..key()
        };
        let mut other_vs = vs(0, 100, Some("nope"));
        other_vs["metadata"]["name"] = serde_json::json!("ratings");
        let desired = vec![
            DesiredObject::new(key(), vs(0, 100, Some("p"))),
            DesiredObject::new(other.clone(), other_vs),
        ];
        let live = BTreeMap::from([(key(), vs(100, 0, None))]);
        let states: BTreeMap<RolloutId, &RolloutState> = BTreeMap::from([(id(), &running)]);
        let policies = [policy("p")];
        let bindings = bind(&desired, &policies);
        assert_eq!(bindings.bound.len(), 1);
        assert_eq!(bindings.skipped.len(), 1);
        let from_git = plan_work(&desired, &live, &states, &policies, "c2");
        assert_eq!(plan_bound(&bindings, None, &live, &states, "c2"), from_git);
        let only = BTreeSet::from([id()]);
        let tick = plan_bound(&bindings, Some(&only), &live, &states, "c2");
        assert!(tick.skipped.is_empty(), "{tick:?}");
        assert_eq!(tick.rollouts, from_git.rollouts);
        assert_eq!(tick.owned, from_git.owned);
        assert_eq!(
            plan_bound_owned(&bindings, Some(&only), live.clone(), &states, "c2"),
            tick
        );
        let none = plan_bound(&bindings, Some(&BTreeSet::new()), &live, &states, "c2");
        assert_eq!(
            none,
            RolloutWork {
                bound: from_git.bound.clone(),
                ..RolloutWork::default()
            },
            "what is bound is bound, whichever rollouts a tick plans"
        );
    }
}
