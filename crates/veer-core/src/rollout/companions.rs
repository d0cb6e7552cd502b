//! Routes that move together: when one commit shifts the weights of several HTTP routes of
//! one VirtualService (an A/B match route and the default route, say), the first is the
//! rollout's own route (its split is what the state machine steps, analyses and rolls back)
//! and the others are its companions. A companion goes the same fraction of its way as the
//! rollout's route at every write, so they advance step by step, promote and roll back
//! together. Pure.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::RolloutError;
use super::detect::{RouteRef, RouteShift, read_split, write_split};
use super::split::{TrafficSplit, split_at};

/// A route that moves with the rollout's route.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompanionRoute {
    pub route: RouteRef,
    /// Its split before the rollout began: what a rollback restores.
    pub start: TrafficSplit,
    /// Git's split for it.
    pub target: TrafficSplit,
}

impl From<&RouteShift> for CompanionRoute {
    fn from(shift: &RouteShift) -> Self {
        Self {
            route: shift.route.clone(),
            start: shift.start.clone(),
            target: shift.target.clone(),
        }
    }
}

/// How far along its way (0 to 1) the route is at `now`, going from `start` to `target`,
/// measured on the destinations that gain weight.
fn progress(start: &TrafficSplit, target: &TrafficSplit, now: &TrafficSplit) -> f64 {
    let gaining = start.gaining_toward(target);
    let from = f64::from(start.weight_of(&gaining));
    let to = f64::from(target.weight_of(&gaining));
    if to <= from {
        return 1.0;
    }
    ((f64::from(now.weight_of(&gaining)) - from) / (to - from)).clamp(0.0, 1.0)
}

/// The companion's split while the rollout's route (from `lead_start` toward `lead_target`)
/// carries `lead_now`: the same fraction of the companion's own way, rounded to a whole
/// percent. At the lead's start it is the companion's start, at the lead's target its target.
pub fn companion_split(
    lead_start: &TrafficSplit,
    lead_target: &TrafficSplit,
    lead_now: &TrafficSplit,
    companion: &CompanionRoute,
) -> TrafficSplit {
    let p = progress(lead_start, lead_target, lead_now);
    let gaining = companion.start.gaining_toward(&companion.target);
    let from = companion.start.weight_of(&gaining);
    let to = companion.target.weight_of(&gaining);
    let moved = (p * f64::from(to.saturating_sub(from))).round();
    // 0 ≤ p ≤ 1 and the span is at most 100: the product fits a u32.
    let x = from + moved as u32;
    split_at(&companion.start, &companion.target, x)
}

/// `desired` with each companion's route carrying its split for `lead_now`. A companion at
/// git's own split keeps git's route untouched (no zero weights added), so a promoted rollout
/// leaves live equal to git. Borrowed when no route changes (a rollout without companions:
/// nearly all), so a step copies git's object once, to render it, not twice.
pub fn write_companions<'d>(
    desired: &'d Value,
    lead_start: &TrafficSplit,
    lead_target: &TrafficSplit,
    lead_now: &TrafficSplit,
    companions: &[CompanionRoute],
) -> Result<Cow<'d, Value>, RolloutError> {
    let mut out = Cow::Borrowed(desired);
    for c in companions {
        let split = companion_split(lead_start, lead_target, lead_now, c);
        if read_split(desired, c.route.index).is_ok_and(|git| git.same_traffic(&split)) {
            continue;
        }
        write_split(out.to_mut(), c.route.index, &split)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::DestinationId;
    use serde_json::json;

    fn s(v1: u32, v2: u32) -> TrafficSplit {
        [
            (DestinationId::new("reviews", Some("v1")), v1),
            (DestinationId::new("reviews", Some("v2")), v2),
        ]
        .into_iter()
        .collect()
    }

    fn companion(start: TrafficSplit, target: TrafficSplit) -> CompanionRoute {
        CompanionRoute {
            route: RouteRef {
                index: 0,
                name: Some("ab".into()),
            },
            start,
            target,
        }
    }

    #[test]
    fn a_companion_goes_the_same_fraction_of_its_way() {
        struct Case {
            name: &'static str,
            lead_now: TrafficSplit,
            companion: CompanionRoute,
            expected: TrafficSplit,
        }
        // The lead goes from v1:100 to v2:100.
        let cases = [
            Case {
                name: "same move: the same split",
                lead_now: s(75, 25),
                companion: companion(s(100, 0), s(0, 100)),
                expected: s(75, 25),
            },
            Case {
                name: "at the lead's start: the companion's start (rollback)",
                lead_now: s(100, 0),
                companion: companion(s(80, 20), s(0, 100)),
                expected: s(80, 20),
            },
            Case {
                name: "at the lead's target: the companion's target (promotion)",
                lead_now: s(0, 100),
                companion: companion(s(80, 20), s(0, 100)),
                expected: s(0, 100),
            },
            Case {
                name: "half way of a shorter move",
                lead_now: s(50, 50),
                companion: companion(s(100, 0), s(50, 50)),
                expected: s(75, 25),
            },
            Case {
                name: "a companion moving the other way goes back in step",
                lead_now: s(90, 10),
                companion: companion(s(0, 100), s(100, 0)),
                expected: s(10, 90),
            },
        ];
        for c in cases {
            assert_eq!(
                companion_split(&s(100, 0), &s(0, 100), &c.lead_now, &c.companion),
                c.expected,
                "{}",
                c.name
            );
        }
    }

    #[test]
    fn companions_at_git_keep_gits_route() {
        let git = json!({"metadata": {"name": "reviews"}, "spec": {"http": [
            {"name": "ab", "route": [{"destination": {"host": "reviews", "subset": "v2"}}]},
            {"route": [{"destination": {"host": "reviews", "subset": "v2"}}]},
        ]}});
        let ab = companion(s(100, 0), s(0, 100));
        let at_target = write_companions(
            &git,
            &s(100, 0),
            &s(0, 100),
            &s(0, 100),
            std::slice::from_ref(&ab),
        )
        .unwrap();
        assert!(matches!(at_target, Cow::Borrowed(_)), "git's own object");
        assert_eq!(*at_target, git);
        let at_step = write_companions(&git, &s(100, 0), &s(0, 100), &s(90, 10), &[ab]).unwrap();
        assert_eq!(read_split(&at_step, 0).unwrap(), s(90, 10));
        assert_eq!(at_step["spec"]["http"][1], git["spec"]["http"][1]);
    }
}
