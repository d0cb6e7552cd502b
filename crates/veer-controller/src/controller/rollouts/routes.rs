//! Which VirtualServices have rollouts and what they shift, pure: the policy a VirtualService
//! is bound to, the route git shifts and the target the state machine hears, where a stored
//! route sits in the live object, and the fields running rollouts own (for the planner).

use std::collections::BTreeMap;

use serde_json::Value;
use tracing::warn;

use super::RolloutId;
use crate::diff::DesiredObject;
use crate::fields::FieldPath;
use crate::manifest::ObjectKey;
use crate::manifest::rollout_policy::{self as rpolicy, Binding, RolloutPolicy};
use crate::rollout::{
    Phase, RolloutState, RouteRef, RouteShift, TargetUpdate, detect, owned_fields, read_split,
};

pub(crate) fn is_virtual_service(key: &ObjectKey) -> bool {
    key.group == "networking.istio.io" && key.kind == "VirtualService"
}

pub(super) fn find_live<'a>(
    live: &'a BTreeMap<ObjectKey, Value>,
    key: &ObjectKey,
) -> Option<&'a Value> {
    live.iter()
        .find(|(k, _)| k.same_object(key))
        .map(|(_, v)| v)
}

pub(super) fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The policy a VirtualService (as in git) is bound to; unknown or ambiguous bindings are
/// logged and leave it unbound (validation reports them).
pub(super) fn bound_policy<'p>(
    desired: &Value,
    policies: &'p [RolloutPolicy],
) -> Option<&'p RolloutPolicy> {
    let annotation = desired
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(rpolicy::POLICY_ANNOTATION))
        .and_then(Value::as_str);
    let labels = string_map(desired.pointer("/metadata/labels"));
    match rpolicy::bind(annotation, &labels, policies) {
        Binding::Annotation(p) | Binding::Selector(p) => Some(p),
        Binding::Unbound => None,
        Binding::UnknownPolicy(name) => {
            warn!(policy = %name, "VirtualService names an unknown rollout policy; its weights apply at once");
            None
        }
        Binding::Ambiguous(names) => {
            warn!(policies = ?names, "several rollout policies select one VirtualService; its weights apply at once");
            None
        }
    }
}

/// Position of `route` in a live VirtualService: [`crate::rollout::detect::pair_live_route`].
pub(super) fn live_route_index(live: &Value, route: &RouteRef) -> Option<usize> {
    crate::rollout::detect::pair_live_route(live, route)
}

/// The routes git shifts (the first is the rollout's own, the others its companions) and
/// what the state machine should hear as the target. The
/// target keeps the state's revision while git's split is the one being rolled out, so an
/// unrelated commit does not restart a rollout; a different split carries `commit`. Pure.
pub(super) fn targets(
    desired: &Value,
    live: Option<&Value>,
    state: Option<&RolloutState>,
    commit: &str,
) -> Result<(Vec<RouteShift>, Option<TargetUpdate>), crate::rollout::RolloutError> {
    let shifts = detect(desired, live)?;
    let Some(live) = live else {
        return Ok((shifts, None));
    };
    let (git_split, live_split) = match (shifts.first(), state) {
        (Some(s), _) => (s.target.clone(), s.start.clone()),
        (None, Some(st)) => {
            let Some(index) = live_route_index(live, &st.route) else {
                return Ok((shifts, None));
            };
            let live_split = read_split(live, index)?;
            let git_split = read_split(desired, st.route.index).unwrap_or(live_split.clone());
            (git_split, live_split)
        }
        (None, None) => return Ok((shifts, None)),
    };
    let revision = match state {
        Some(st) if st.target_split.same_traffic(&git_split) => st.revision.clone(),
        Some(_) | None => commit.to_string(),
    };
    Ok((
        shifts,
        Some(TargetUpdate {
            revision,
            target: git_split,
            live: live_split,
        }),
    ))
}

/// The fields rollouts own, per VirtualService, for `PlanContext.ignore`: a route git shifts
/// belongs to its rollout unless that rollout succeeded toward this very split (then live
/// differing is drift, healed as usual); a running rollout owns its route even when live
/// happens to equal git. Pure.
pub(super) fn ignore_fields(
    desired: &[DesiredObject],
    live: &BTreeMap<ObjectKey, Value>,
    states: &BTreeMap<RolloutId, &RolloutState>,
    policies: &[RolloutPolicy],
) -> BTreeMap<ObjectKey, Vec<FieldPath>> {
    let mut out = BTreeMap::new();
    for d in desired.iter().filter(|d| is_virtual_service(&d.key)) {
        let id = RolloutId::of(&d.key);
        let state = states.get(&id).copied();
        // Unbinding a VirtualService ends veer's ownership: its weights apply at once.
        if bound_policy(&d.value, policies).is_none() {
            continue;
        }
        let shifts = detect(&d.value, find_live(live, &d.key)).unwrap_or_default();
        let mut shifts = shifts.into_iter();
        let shift = shifts.next();
        let companions: Vec<FieldPath> = shifts.flat_map(|s| s.owned_fields()).collect();
        let owned = match (state, shift) {
            (Some(s), shift) if !s.phase.is_terminal() => {
                let shift = shift.unwrap_or_else(|| RouteShift {
                    route: s.route.clone(),
                    live_index: s.route.index,
                    start: s.current_split.clone(),
                    target: s.target_split.clone(),
                    // Unknown here: own the whole list.
                    same_destinations: false,
                    destinations: 0,
                });
                let mut owned = owned_fields(&shift, s.current_overlay.as_ref());
                // A companion git no longer shifts is still in flight: own its whole list.
                owned.extend(s.companions.iter().map(|c| {
                    FieldPath(vec![
                        crate::fields::PathElement::field("spec"),
                        crate::fields::PathElement::field("http"),
                        crate::fields::PathElement::Index(c.route.index),
                        crate::fields::PathElement::field("route"),
                    ])
                }));
                owned
            }
            (Some(s), Some(shift))
                if s.phase == Phase::Succeeded && s.target_split.same_traffic(&shift.target) =>
            {
                continue;
            }
            (_, Some(shift)) => owned_fields(&shift, None),
            (_, None) => continue,
        };
        let mut owned = owned;
        for path in companions {
            if !owned.contains(&path) {
                owned.push(path);
            }
        }
        out.insert(d.key.clone(), owned);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{id, key, policy, split, state, vs};
    use super::*;
    use crate::rollout::{DestinationId, Overlay, TrafficSplit};

    #[test]
    fn targets_table() {
        let running = state("c1", Phase::Progressing, (100, 0), (0, 100));
        struct Case<'a> {
            name: &'a str,
            git: Value,
            live: Option<Value>,
            state: Option<&'a RolloutState>,
            shift: bool,
            /// (revision, git split, live split)
            target: Option<(&'a str, TrafficSplit, TrafficSplit)>,
        }
        let cases = [
            Case {
                name: "not live yet: created at once",
                git: vs(0, 100, None),
                live: None,
                state: None,
                shift: false,
                target: None,
            },
            Case {
                name: "live equals git, no rollout",
                git: vs(100, 0, None),
                live: Some(vs(100, 0, None)),
                state: None,
                shift: false,
                target: None,
            },
            Case {
                name: "weights change: a rollout of this commit",
                git: vs(0, 100, None),
                live: Some(vs(100, 0, None)),
                state: None,
                shift: true,
                target: Some(("c2", split(0, 100), split(100, 0))),
            },
            Case {
                name: "an unrelated commit keeps the rollout's revision",
                git: vs(0, 100, None),
                live: Some(vs(75, 25, None)),
                state: Some(&running),
                shift: true,
                target: Some(("c1", split(0, 100), split(75, 25))),
            },
            Case {
                name: "a new target is a new revision",
                git: vs(50, 50, None),
                live: Some(vs(75, 25, None)),
                state: Some(&running),
                shift: true,
                target: Some(("c2", split(50, 50), split(75, 25))),
            },
            Case {
                name: "live already at git mid-rollout: the route is read anyway",
                git: vs(0, 100, None),
                live: Some(vs(0, 100, None)),
                state: Some(&running),
                shift: false,
                target: Some(("c1", split(0, 100), split(0, 100))),
            },
        ];
        for case in cases {
            let (shift, target) =
                targets(&case.git, case.live.as_ref(), case.state, "c2").expect(case.name);
            assert_eq!(!shift.is_empty(), case.shift, "{}", case.name);
            let target = target.map(|t| (t.revision, t.target, t.live));
            let want = case
                .target
                .map(|(r, g, l)| (r.to_string(), g.extended(&l), l.extended(&g)));
            match (&target, &want) {
                (Some(got), Some(want)) => {
                    assert_eq!(got.0, want.0, "{}", case.name);
                    assert!(got.1.same_traffic(&want.1), "{}: {got:?}", case.name);
                    assert!(got.2.same_traffic(&want.2), "{}: {got:?}", case.name);
                }
                (None, None) => {}
                (got, want) => panic!("{}: got {got:?}, want {want:?}", case.name),
            }
        }
    }

    #[test]
    fn ignore_fields_table() {
        let policies = vec![policy("p")];
        let weights = vec![
            ".spec.http[0].route[0].weight".to_string(),
            ".spec.http[0].route[1].weight".to_string(),
        ];
        let mut mirroring = state("c1", Phase::Mirroring, (100, 0), (0, 100));
        mirroring.current_overlay = Some(Overlay::Mirror {
            to: vec![DestinationId::new("reviews", Some("v2"))],
            percent: 10,
        });
        struct Case<'a> {
            name: &'a str,
            git: Value,
            live: Value,
            state: Option<RolloutState>,
            owned: Vec<String>,
        }
        let cases = [
            Case {
                name: "unbound: weights apply at once",
                git: vs(0, 100, None),
                live: vs(100, 0, None),
                state: None,
                owned: vec![],
            },
            Case {
                name: "bound, weights change, no rollout yet: owned from the first pass",
                git: vs(0, 100, Some("p")),
                live: vs(100, 0, None),
                state: None,
                owned: weights.clone(),
            },
            Case {
                name: "bound, nothing shifts",
                git: vs(100, 0, Some("p")),
                live: vs(100, 0, None),
                state: None,
                owned: vec![],
            },
            Case {
                name: "succeeded toward git, live edited by hand: drift, healed",
                git: vs(0, 100, Some("p")),
                live: vs(60, 40, None),
                state: Some(state("c1", Phase::Succeeded, (100, 0), (0, 100))),
                owned: vec![],
            },
            Case {
                name: "failed: live stays rolled back",
                git: vs(0, 100, Some("p")),
                live: vs(100, 0, None),
                state: Some(state("c1", Phase::Failed, (100, 0), (0, 100))),
                owned: weights.clone(),
            },
            Case {
                name: "running and live equals git: the whole route list",
                git: vs(0, 100, Some("p")),
                live: vs(0, 100, None),
                state: Some(state("c1", Phase::Promoting, (100, 0), (0, 100))),
                owned: vec![".spec.http[0].route".to_string()],
            },
            Case {
                name: "mirroring: the mirror fields too",
                git: vs(0, 100, Some("p")),
                live: vs(100, 0, None),
                state: Some(mirroring.clone()),
                owned: vec![
                    ".spec.http[0].mirror".to_string(),
                    ".spec.http[0].mirrorPercentage".to_string(),
                ]
                .into_iter()
                .chain(weights.clone())
                .collect(),
            },
        ];
        for case in cases {
            let desired = vec![DesiredObject {
                key: key(),
                value: case.git.clone(),
            }];
            let live = BTreeMap::from([(key(), case.live.clone())]);
            let states: BTreeMap<RolloutId, &RolloutState> =
                case.state.iter().map(|s| (id(), s)).collect();
            let got: Vec<String> = ignore_fields(&desired, &live, &states, &policies)
                .get(&key())
                .map(|p| p.iter().map(ToString::to_string).collect())
                .unwrap_or_default();
            assert_eq!(got, case.owned, "{}", case.name);
        }
    }
}
