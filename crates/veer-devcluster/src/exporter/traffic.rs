//! The traffic model (pure): a request rate per service, split between plain and matched
//! requests (a per-service share carries the A/B header or cookie), each kind taking its
//! route (see [`super::weights`]) and spread across that route's subsets by weight. Each
//! subset answers with its own error rate and latency. Advancing the model by a time step
//! yields whole request counts, carrying the fractions so long runs match the rates exactly.
//!
//! Every request is reported the way Istio's two sidecars report it:
//! - `reporter="destination"` (the server's sidecar): the requests that reach the subset,
//!   with the subset's own status and latency. Mirrored copies show up only here (Istio has
//!   no source report for them).
//! - `reporter="source"` (the caller's sidecar, where a VirtualService's `fault` acts): the
//!   same requests with an injected delay added to their duration (`response_flags="DI"`),
//!   plus the requests a fault aborted, answered with the abort's status
//!   (`response_flags="FI"`) and never forwarded, so their destination workload and version
//!   are `unknown` and the destination's sidecar does not see them at all.
//!
//! Within a route's share of a subset, aborts are drawn first, then delays among the requests
//! that were forwarded, then the subset's errors; each with its own carried fraction.
//!
//! This file holds what tests set and read (rates, shares, behaviours, routes) and what a step
//! yields; `plan` splits a step's requests into flows along the routes, `step` turns flows
//! into whole requests and the batches each sidecar reports.

mod plan;
mod step;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ControlError;
use super::weights::{Routes, ServiceKey, Split};
use plan::{Leg, Path};
use step::Carry;

/// Share of a service's synthetic requests that carry the A/B header or cookie, unless set.
/// It only matters while a route matching on headers is ahead of the catch-all.
pub const DEFAULT_MATCHED_SHARE: f64 = 0.1;

/// How a subset answers; set by tests through the control endpoint or the Rust API.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Behaviour {
    /// Share of requests answered 500, from 0 to 1.
    pub error_rate: f64,
    /// Duration of every request, in milliseconds.
    pub latency_ms: f64,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            error_rate: 0.0,
            latency_ms: 20.0,
        }
    }
}

impl Behaviour {
    pub fn check(&self) -> Result<(), ControlError> {
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err(ControlError::ErrorRate(self.error_rate));
        }
        if !(self.latency_ms.is_finite() && self.latency_ms >= 0.0) {
            return Err(ControlError::Latency(self.latency_ms));
        }
        Ok(())
    }
}

/// A share of matched requests must be a fraction.
pub fn check_matched_share(share: f64) -> Result<(), ControlError> {
    if (0.0..=1.0).contains(&share) {
        Ok(())
    } else {
        Err(ControlError::MatchedShare(share))
    }
}

/// Which sidecar reports a request (Istio's `reporter` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reporter {
    Source,
    Destination,
}

impl Reporter {
    pub fn as_str(self) -> &'static str {
        match self {
            Reporter::Source => "source",
            Reporter::Destination => "destination",
        }
    }
}

/// Envoy's response flags as Istio reports them.
pub const NO_FLAGS: &str = "-";
pub const FAULT_ABORTED: &str = "FI";
pub const FAULT_DELAYED: &str = "DI";

/// Requests one sidecar reported alike during one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub key: ServiceKey,
    pub reporter: Reporter,
    /// The subset that answered; `None` for requests a fault aborted before any destination
    /// was picked (Istio reports `unknown`).
    pub subset: Option<String>,
    pub code: u16,
    pub flags: &'static str,
    pub count: u64,
    pub duration_ms: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct SubsetState {
    behaviour: Behaviour,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceState {
    #[serde(skip_serializing_if = "Option::is_none")]
    requests_per_second: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    matched_share: Option<f64>,
    /// Set by a test; wins over the live VirtualService.
    #[serde(skip_serializing_if = "Option::is_none")]
    override_split: Option<Split>,
    subsets: BTreeMap<String, SubsetState>,
    #[serde(skip)]
    carries: BTreeMap<(Path, Leg, String), Carry>,
}

/// Everything the exporter generates traffic from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Traffic {
    default_rps: f64,
    default_matched_share: f64,
    services: BTreeMap<String, ServiceState>,
    /// Routes read from live VirtualServices, replaced wholesale on every refresh.
    live: BTreeMap<String, Routes>,
    #[serde(skip)]
    keys: BTreeMap<String, ServiceKey>,
}

fn id(key: &ServiceKey) -> String {
    format!("{}/{}", key.namespace, key.service)
}

impl Traffic {
    /// `default_rps`: requests per second each service receives unless a test sets another;
    /// [`DEFAULT_MATCHED_SHARE`] of them carry the A/B header.
    pub fn new(default_rps: f64) -> Self {
        Self {
            default_rps: default_rps.max(0.0),
            default_matched_share: DEFAULT_MATCHED_SHARE,
            services: BTreeMap::new(),
            live: BTreeMap::new(),
            keys: BTreeMap::new(),
        }
    }

    /// The share of matched requests of services that set none (clamped to 0..=1).
    pub fn with_matched_share(mut self, share: f64) -> Self {
        self.default_matched_share = share.clamp(0.0, 1.0);
        self
    }

    fn service(&mut self, key: &ServiceKey) -> &mut ServiceState {
        self.keys.insert(id(key), key.clone());
        self.services.entry(id(key)).or_default()
    }

    pub fn set_behaviour(&mut self, key: &ServiceKey, subset: &str, behaviour: Behaviour) {
        self.service(key)
            .subsets
            .entry(subset.to_string())
            .or_default()
            .behaviour = behaviour;
    }

    pub fn behaviour(&self, key: &ServiceKey, subset: &str) -> Behaviour {
        self.services
            .get(&id(key))
            .and_then(|s| s.subsets.get(subset))
            .map(|s| s.behaviour)
            .unwrap_or_default()
    }

    pub fn set_rate(&mut self, key: &ServiceKey, requests_per_second: f64) {
        self.service(key).requests_per_second = Some(requests_per_second.max(0.0));
    }

    /// The share (0..=1) of `key`'s requests that carry the A/B header or cookie.
    pub fn set_matched_share(&mut self, key: &ServiceKey, share: f64) {
        self.service(key).matched_share = Some(share.clamp(0.0, 1.0));
    }

    pub fn matched_share(&self, key: &ServiceKey) -> f64 {
        self.services
            .get(&id(key))
            .and_then(|s| s.matched_share)
            .unwrap_or(self.default_matched_share)
    }

    /// Overrides the live routes with one route for every request (`None` goes back to
    /// following the VirtualService).
    pub fn set_override(&mut self, key: &ServiceKey, split: Option<Split>) {
        self.service(key).override_split = split;
    }

    pub fn set_live(&mut self, live: BTreeMap<ServiceKey, Routes>) {
        self.live.clear();
        for (key, routes) in live {
            self.keys.insert(id(&key), key.clone());
            self.live.insert(id(&key), routes);
        }
    }

    /// The route plain requests follow now: a test's override, else the live VirtualService.
    pub fn split(&self, key: &ServiceKey) -> Option<&Split> {
        let k = id(key);
        self.services
            .get(&k)
            .and_then(|s| s.override_split.as_ref())
            .or_else(|| self.live.get(&k).and_then(|r| r.plain.as_ref()))
    }

    /// The routes requests follow now: a test's override (for all of them), else the live
    /// VirtualService's.
    pub fn routes(&self, key: &ServiceKey) -> Option<Routes> {
        let k = id(key);
        match self
            .services
            .get(&k)
            .and_then(|s| s.override_split.as_ref())
        {
            Some(split) => Some(Routes {
                plain: Some(split.clone()),
                matched: None,
            }),
            None => self.live.get(&k).cloned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn key() -> ServiceKey {
        ServiceKey::new("shop", "reviews")
    }

    #[test]
    fn override_wins_and_can_be_cleared() {
        let mut t = Traffic::new(10.0);
        let mut live = BTreeMap::new();
        live.insert(
            key(),
            Routes {
                plain: Some(Split::weights([("v1", 100)])),
                matched: Some(Split::weights([("v2", 100)])),
            },
        );
        t.set_live(live);
        t.set_override(&key(), Some(Split::weights([("v2", 100)])));
        assert_eq!(t.split(&key()), Some(&Split::weights([("v2", 100)])));
        assert_eq!(t.routes(&key()).and_then(|r| r.matched), None);
        t.set_override(&key(), None);
        assert_eq!(t.split(&key()), Some(&Split::weights([("v1", 100)])));
    }

    #[test]
    fn checks() {
        assert!(
            Behaviour {
                error_rate: 1.5,
                latency_ms: 1.0
            }
            .check()
            .is_err()
        );
        assert!(
            Behaviour {
                error_rate: 0.5,
                latency_ms: f64::NAN
            }
            .check()
            .is_err()
        );
        assert!(Behaviour::default().check().is_ok());
        assert!(check_matched_share(0.25).is_ok());
        assert!(check_matched_share(1.5).is_err());
        assert!(check_matched_share(f64::NAN).is_err());
    }
}
