//! Which VirtualServices have rollouts and what a commit asks of them, pure: the policy a
//! VirtualService in git is bound to ([`binding`]), the routes git shifts and the target the
//! state machine hears ([`targets`]), and the fields a rollout owns, which the planner leaves
//! alone so the ordinary sync never fights it ([`owned_by_rollout`]).

use std::collections::BTreeMap;

use serde_json::Value;

use super::detect::{RouteShift, detect, owned_fields, pair_live_route, read_split};
use super::{CompanionRoute, Phase, RolloutError, RolloutState, TargetUpdate};
use crate::fields::{FieldPath, PathElement};
use crate::manifest::ObjectKey;
use crate::manifest::rollout_policy::{self as rpolicy, Binding, RolloutPolicy};

/// Is `key` an Istio VirtualService, the only kind rollouts move?
pub fn is_virtual_service(key: &ObjectKey) -> bool {
    key.group == "networking.istio.io" && key.kind == "VirtualService"
}

/// The object of `live` that is `key`, whatever API version either side names.
pub fn find_live<'a>(live: &'a BTreeMap<ObjectKey, Value>, key: &ObjectKey) -> Option<&'a Value> {
    // The same version on both sides is a lookup; only another version needs the scan (a
    // pass over 1,000 VirtualServices would otherwise compare each with each).
    live.get(key).or_else(|| {
        live.iter()
            .find(|(k, _)| k.same_object(key))
            .map(|(_, v)| v)
    })
}

/// A JSON object's string values as a map (labels, annotations); other values are left out.
pub fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// How the VirtualService `desired` (as in git) is bound to one of `policies`: by its
/// annotation, else by exactly one policy's selector. An unknown or ambiguous binding leaves
/// it unbound (its weights apply at once): validation reports it, the driver logs it.
pub fn binding<'p>(desired: &Value, policies: &'p [RolloutPolicy]) -> Binding<'p> {
    let metadata = desired.get("metadata");
    let annotation = metadata
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(rpolicy::POLICY_ANNOTATION))
        .and_then(Value::as_str);
    let labels = string_map(metadata.and_then(|m| m.get("labels")));
    rpolicy::bind(annotation, &labels, policies)
}

/// The routes git shifts (the first is the rollout's own, the others its companions) and
/// what the state machine should hear as the target. The target keeps the state's revision
/// while git's split is the one being rolled out, so an unrelated commit does not restart a
/// rollout; a different split carries `commit`.
pub fn targets(
    desired: &Value,
    live: Option<&Value>,
    state: Option<&RolloutState>,
    commit: &str,
) -> Result<(Vec<RouteShift>, Option<TargetUpdate>), RolloutError> {
    let shifts = detect(desired, live)?;
    let Some(live) = live else {
        return Ok((shifts, None));
    };
    let (git_split, live_split) = match (shifts.first(), state) {
        (Some(s), _) => (s.target.clone(), s.start.clone()),
        (None, Some(st)) => {
            let Some(index) = pair_live_route(live, &st.route) else {
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
    let companions = shifts.iter().skip(1).map(CompanionRoute::from).collect();
    Ok((
        shifts,
        Some(TargetUpdate {
            revision,
            target: git_split,
            live: live_split,
            companions,
        }),
    ))
}

/// The fields the rollout of a VirtualService bound to a policy owns, for the planner's
/// ignore list; `shifts` are the routes git shifts (the first the rollout's own, the others
/// its companions), `state` its stored rollout. `None`: it owns nothing, git's weights apply
/// like any field.
///
/// A route git shifts belongs to its rollout unless that rollout succeeded toward this very
/// split (then live differing is drift, healed as usual); a running rollout owns its route
/// even when live happens to equal git, and its companions too.
pub fn owned_by_rollout(
    shifts: &[RouteShift],
    state: Option<&RolloutState>,
) -> Option<Vec<FieldPath>> {
    let shift = shifts.first();
    let companions = shifts.iter().skip(1).flat_map(RouteShift::owned_fields);
    let mut owned = match (state, shift) {
        (Some(s), shift) if !s.phase.is_terminal() => {
            let shift = shift.cloned().unwrap_or_else(|| RouteShift {
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
                    PathElement::field("spec"),
                    PathElement::field("http"),
                    PathElement::Index(c.route.index),
                    PathElement::field("route"),
                ])
            }));
            owned
        }
        (Some(s), Some(shift))
            if s.phase == Phase::Succeeded && s.target_split.same_traffic(&shift.target) =>
        {
            return None;
        }
        (_, Some(shift)) => owned_fields(shift, None),
        (_, None) => return None,
    };
    for path in companions {
        if !owned.contains(&path) {
            owned.push(path);
        }
    }
    Some(owned)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{policy, split, state, vs};
    use super::*;
    use crate::rollout::{DestinationId, Overlay, TrafficSplit};

    #[test]
    fn bindings() {
        let policies = vec![policy("p"), policy("q")];
        let bound = |v: &Value| match binding(v, &policies) {
            Binding::Annotation(p) | Binding::Selector(p) => Some(p.name().to_string()),
            Binding::Unbound | Binding::UnknownPolicy(_) | Binding::Ambiguous(_) => None,
        };
        assert_eq!(bound(&vs(100, 0, Some("q"))).as_deref(), Some("q"));
        assert_eq!(bound(&vs(100, 0, None)), None);
        assert_eq!(
            binding(&vs(100, 0, Some("nope")), &policies),
            Binding::UnknownPolicy("nope".into())
        );
        let mut selecting = policies.clone();
        for p in &mut selecting {
            p.spec.selector = Some(rpolicy::Selector {
                match_labels: BTreeMap::from([("app".into(), "reviews".into())]),
            });
        }
        let mut labelled = vs(100, 0, None);
        labelled["metadata"]["labels"] = serde_json::json!({"app": "reviews", "n": 1});
        assert_eq!(
            binding(&labelled, &selecting),
            Binding::Ambiguous(vec!["p".into(), "q".into()])
        );
        assert!(matches!(
            binding(&labelled, &selecting[..1]),
            Binding::Selector(p) if p.name() == "p"
        ));
    }

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
    fn owned_fields_table() {
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
                name: "weights change, no rollout yet: owned from the first pass",
                git: vs(0, 100, Some("p")),
                live: vs(100, 0, None),
                state: None,
                owned: weights.clone(),
            },
            Case {
                name: "nothing shifts",
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
            let shifts = detect(&case.git, Some(&case.live)).expect(case.name);
            let got: Vec<String> = owned_by_rollout(&shifts, case.state.as_ref())
                .map(|p| p.iter().map(ToString::to_string).collect())
                .unwrap_or_default();
            assert_eq!(got, case.owned, "{}", case.name);
        }
    }
}
