//! What a bound VirtualService looks like while its rollout runs: git's object (everything
//! else in the commit applies at once) with the shifted route's weights set to the current
//! split and the phase's overlay (mirror, A/B match route, fault) in place. The controller
//! applies this instead of git's object until the rollout ends, then git's object itself; the
//! fields it changes are exactly those [`super::owned_fields`] names, so the diff stays quiet.
//!
//! Istio limits worth knowing: `mirror` takes one destination (the first of the new version);
//! a `fault` applies to all requests of the route it is on, so the fault phase injects into
//! `percent`% of the route's requests, and only while the new version has its first step's
//! weight; an A/B match is a route inserted ahead of the shifted one.

use serde_json::{Value, json};

use super::detect::{http_routes_mut, read_split, write_split};
use super::split::{DestinationId, TrafficSplit, apportion};
use super::{Overlay, RolloutError};

/// Names of the routes veer inserts for an A/B match phase start with this.
pub const MATCH_ROUTE_PREFIX: &str = "veer-ab-";

/// Name of the route veer inserts for an A/B match phase.
pub fn match_route_name(index: usize) -> String {
    format!("{MATCH_ROUTE_PREFIX}{index}")
}

fn destination(d: &DestinationId) -> Value {
    let mut v = json!({ "host": d.host });
    if let Some(s) = &d.subset {
        v["subset"] = json!(s);
    }
    if let Some(p) = d.port {
        v["port"] = json!({ "number": p });
    }
    v
}

/// What to write for `state`'s rollout at `split` (and overlay): git's VirtualService with the
/// rollout's route at `split` and its companion routes moved in step
/// ([`super::companions`]).
pub fn render_step(
    desired: &Value,
    state: &super::RolloutState,
    split: &TrafficSplit,
    overlay: Option<&Overlay>,
) -> Result<Value, RolloutError> {
    let moved = super::companions::write_companions(
        desired,
        &state.start_split,
        &state.target_split,
        split,
        &state.companions,
    )?;
    render(
        &moved,
        state.route.index,
        split,
        &state.target_split,
        overlay,
    )
}

/// `desired` (git's VirtualService) with route `index` carrying `split` and `overlay`.
pub fn render(
    desired: &Value,
    index: usize,
    split: &TrafficSplit,
    target: &TrafficSplit,
    overlay: Option<&Overlay>,
) -> Result<Value, RolloutError> {
    // Git's own split (a promotion, or a rollout that ends where git is): git's object as it
    // is, so live equals git once the rollout ends. Writing the split into it would add the
    // destinations git dropped at weight 0 and weights git leaves implicit, which the sync
    // would then take out again as soon as it owns the route.
    if overlay.is_none() && read_split(desired, index).is_ok_and(|git| git.same_traffic(split)) {
        return Ok(desired.clone());
    }
    let mut out = desired.clone();
    write_split(&mut out, index, split)?;
    let Some(Value::Object(route)) = http_routes_mut(&mut out).and_then(|h| h.get_mut(index))
    else {
        return Err(RolloutError::MalformedRoute {
            object: "VirtualService".to_string(),
            reason: format!("spec.http[{index}] is missing"),
        });
    };
    match overlay {
        None => {}
        Some(Overlay::Mirror { to, percent }) => {
            if let Some(first) = to.first() {
                route.insert("mirror".into(), destination(first));
                route.insert("mirrorPercentage".into(), json!({ "value": percent }));
            }
        }
        Some(Overlay::Fault {
            delay,
            abort,
            percent,
            ..
        }) => {
            let mut fault = serde_json::Map::new();
            if let Some(d) = delay {
                fault.insert(
                    "delay".into(),
                    json!({ "fixedDelay": d, "percentage": { "value": percent } }),
                );
            }
            if let Some(status) = abort {
                fault.insert(
                    "abort".into(),
                    json!({ "httpStatus": status, "percentage": { "value": percent } }),
                );
            }
            route.insert("fault".into(), Value::Object(fault));
        }
        Some(Overlay::Match {
            to,
            headers,
            cookie,
        }) => {
            // Matching requests go to the new version, in proportion to its final weights.
            let parts: Vec<(DestinationId, u32)> =
                to.iter().map(|d| (d.clone(), target.weight(d))).collect();
            let weights = if parts.iter().all(|(_, w)| *w == 0) {
                apportion(100, &to.iter().map(|d| (d.clone(), 1)).collect::<Vec<_>>())
            } else {
                apportion(100, &parts)
            };
            let mut matches = Vec::new();
            if !headers.is_empty() {
                matches.push(json!({ "headers": headers }));
            }
            if let Some(c) = cookie {
                matches.push(json!({ "headers": { "cookie": {
                    "regex": format!("^(.*?;)?({})(;.*)?$", regex::escape(c.trim()))
                }}}));
            }
            let ab = json!({
                "name": match_route_name(index),
                "match": matches,
                "route": weights.iter().map(|(d, w)| json!({
                    "destination": destination(d), "weight": w
                })).collect::<Vec<_>>(),
            });
            if let Some(http) = http_routes_mut(&mut out) {
                http.insert(index, ab);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> DestinationId {
        DestinationId::new("reviews", Some(s))
    }

    fn git() -> Value {
        json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
               "metadata": {"name": "reviews"},
               "spec": {"hosts": ["reviews"], "http": [{"route": [
                   {"destination": {"host": "reviews", "subset": "v2"}}]}]}})
    }

    /// Promotion writes git's object itself: no v1 at weight 0, no weight git left implicit,
    /// so the sync finds nothing to change once it owns the route again.
    #[test]
    fn git_split_without_overlay_is_gits_object_unchanged() {
        let target: TrafficSplit = [(d("v1"), 0), (d("v2"), 100)].into_iter().collect();
        assert_eq!(render(&git(), 0, &target, &target, None).unwrap(), git());
        // With an overlay, or any other split, the route is rewritten.
        let fault = Overlay::Fault {
            on: vec![d("v2")],
            delay: Some("1s".into()),
            abort: None,
            percent: 5.0,
        };
        assert_ne!(
            render(&git(), 0, &target, &target, Some(&fault)).unwrap(),
            git()
        );
        let rollback: TrafficSplit = [(d("v1"), 100), (d("v2"), 0)].into_iter().collect();
        assert_ne!(render(&git(), 0, &rollback, &target, None).unwrap(), git());
    }

    #[test]
    fn weights_and_each_overlay() {
        let split: TrafficSplit = [(d("v1"), 90), (d("v2"), 10)].into_iter().collect();
        let target: TrafficSplit = [(d("v1"), 0), (d("v2"), 100)].into_iter().collect();
        let plain = render(&git(), 0, &split, &target, None).unwrap();
        assert_eq!(
            plain["spec"]["http"][0]["route"],
            json!([
                {"destination": {"host": "reviews", "subset": "v2"}, "weight": 10},
                {"destination": {"host": "reviews", "subset": "v1"}, "weight": 90}
            ])
        );
        let mirror = Overlay::Mirror {
            to: vec![d("v2")],
            percent: 30,
        };
        let m = render(&git(), 0, &split, &target, Some(&mirror)).unwrap();
        assert_eq!(
            m["spec"]["http"][0]["mirror"],
            json!({"host": "reviews", "subset": "v2"})
        );
        assert_eq!(
            m["spec"]["http"][0]["mirrorPercentage"],
            json!({"value": 30})
        );
        let fault = Overlay::Fault {
            on: vec![d("v2")],
            delay: Some("200ms".into()),
            abort: None,
            percent: 10.0,
        };
        let f = render(&git(), 0, &split, &target, Some(&fault)).unwrap();
        assert_eq!(
            f["spec"]["http"][0]["fault"],
            json!({"delay": {"fixedDelay": "200ms", "percentage": {"value": 10.0}}})
        );
        let ab = Overlay::Match {
            to: vec![d("v2")],
            headers: Default::default(),
            cookie: Some("canary=always".into()),
        };
        let a = render(&git(), 0, &split, &target, Some(&ab)).unwrap();
        assert_eq!(a["spec"]["http"][0]["name"], json!("veer-ab-0"));
        assert_eq!(
            a["spec"]["http"][0]["match"][0]["headers"]["cookie"]["regex"],
            json!("^(.*?;)?(canary=always)(;.*)?$")
        );
        assert_eq!(a["spec"]["http"][0]["route"][0]["weight"], json!(100));
        assert_eq!(a["spec"]["http"][1]["route"][1]["weight"], json!(90));
    }
}
