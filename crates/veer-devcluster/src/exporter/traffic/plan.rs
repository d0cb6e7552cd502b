//! Planning a step: each service's requests for the step, split between plain and matched
//! requests, spread across each route's subsets by weight, plus the copies a mirror sends.

use super::Traffic;
use crate::exporter::weights::{Fault, ServiceKey};

/// Which kind of request a flow carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Path {
    Plain,
    Matched,
}

/// A route's requests to a subset, or the copies its mirror sends there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Leg {
    Routed,
    Mirrored,
}

/// One planned flow of a step: `requests` (fractional) of `path` to `subset`.
pub(super) struct Flow {
    pub(super) key: ServiceKey,
    pub(super) path: Path,
    pub(super) leg: Leg,
    pub(super) subset: String,
    pub(super) requests: f64,
    pub(super) fault: Option<Fault>,
}

impl Traffic {
    /// The flows of the next `seconds`, before rounding to whole requests.
    pub(super) fn plan(&self, seconds: f64) -> Vec<Flow> {
        let mut plan = Vec::new();
        for (k, key) in &self.keys {
            let Some(routes) = self.routes(key) else {
                continue;
            };
            let rps = self
                .services
                .get(k)
                .and_then(|s| s.requests_per_second)
                .unwrap_or(self.default_rps);
            let total = rps * seconds;
            // Without a route of their own, matched requests take the plain one.
            let matched_share = if routes.matched.is_some() {
                self.matched_share(key)
            } else {
                0.0
            };
            let paths = [
                (Path::Plain, routes.plain, total * (1.0 - matched_share)),
                (Path::Matched, routes.matched, total * matched_share),
            ];
            for (path, split, requests) in paths {
                let Some(split) = split else { continue };
                let weight_sum: u32 = split.weights.values().sum();
                for (subset, weight) in &split.weights {
                    if *weight > 0 && weight_sum > 0 {
                        // Weights normally sum to 100; dividing by the sum keeps the total
                        // rate right while a malformed split is live.
                        plan.push(Flow {
                            key: key.clone(),
                            path,
                            leg: Leg::Routed,
                            subset: subset.clone(),
                            requests: requests * f64::from(*weight) / f64::from(weight_sum),
                            fault: split.fault.clone(),
                        });
                    }
                }
                if let Some(mirror) = &split.mirror {
                    // An aborted request never reaches the router, so it is not mirrored.
                    let aborted = split
                        .fault
                        .as_ref()
                        .and_then(|f| f.abort.as_ref())
                        .map_or(0.0, |a| a.percent.clamp(0.0, 100.0) / 100.0);
                    plan.push(Flow {
                        key: key.clone(),
                        path,
                        leg: Leg::Mirrored,
                        subset: mirror.subset.clone(),
                        requests: requests * (1.0 - aborted) * mirror.percent.clamp(0.0, 100.0)
                            / 100.0,
                        fault: None,
                    });
                }
            }
        }
        plan
    }
}
