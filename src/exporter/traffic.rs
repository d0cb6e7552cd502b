//! The traffic model (pure): a request rate per service, split across subsets by weight, each
//! subset answering with its own error rate and latency. Advancing it by a time step yields
//! whole request counts, carrying the fractions so long runs match the rates exactly.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::weights::{ServiceKey, Split};

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
    pub fn check(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err(format!(
                "errorRate {} is not between 0 and 1",
                self.error_rate
            ));
        }
        if !(self.latency_ms.is_finite() && self.latency_ms >= 0.0) {
            return Err(format!("latencyMs {} is not a duration", self.latency_ms));
        }
        Ok(())
    }
}

/// Requests one subset answered during one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub key: ServiceKey,
    pub subset: String,
    pub ok: u64,
    pub errors: u64,
    pub latency_ms: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct SubsetState {
    behaviour: Behaviour,
    #[serde(skip)]
    request_carry: f64,
    #[serde(skip)]
    error_carry: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceState {
    #[serde(skip_serializing_if = "Option::is_none")]
    requests_per_second: Option<f64>,
    /// Set by a test; wins over the live VirtualService.
    #[serde(skip_serializing_if = "Option::is_none")]
    override_split: Option<Split>,
    subsets: BTreeMap<String, SubsetState>,
}

/// Everything the exporter generates traffic from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Traffic {
    default_rps: f64,
    services: BTreeMap<String, ServiceState>,
    /// Splits read from live VirtualServices, replaced wholesale on every refresh.
    live: BTreeMap<String, Split>,
    #[serde(skip)]
    keys: BTreeMap<String, ServiceKey>,
}

fn id(key: &ServiceKey) -> String {
    format!("{}/{}", key.namespace, key.service)
}

impl Traffic {
    /// `default_rps`: requests per second each service receives unless a test sets another.
    pub fn new(default_rps: f64) -> Self {
        Self {
            default_rps: default_rps.max(0.0),
            services: BTreeMap::new(),
            live: BTreeMap::new(),
            keys: BTreeMap::new(),
        }
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

    /// Overrides the live split (`None` goes back to following the VirtualService).
    pub fn set_override(&mut self, key: &ServiceKey, split: Option<Split>) {
        self.service(key).override_split = split;
    }

    pub fn set_live(&mut self, live: BTreeMap<ServiceKey, Split>) {
        self.live.clear();
        for (key, split) in live {
            self.keys.insert(id(&key), key.clone());
            self.live.insert(id(&key), split);
        }
    }

    /// The split traffic follows now: a test's override, else the live VirtualService.
    pub fn split(&self, key: &ServiceKey) -> Option<&Split> {
        let k = id(key);
        self.services
            .get(&k)
            .and_then(|s| s.override_split.as_ref())
            .or_else(|| self.live.get(&k))
    }

    /// Generates the requests of the next `step`.
    pub fn advance(&mut self, step: Duration) -> Vec<Batch> {
        let seconds = step.as_secs_f64();
        let mut plan: Vec<(ServiceKey, String, f64)> = Vec::new();
        for (k, key) in &self.keys {
            let Some(split) = self.split(key) else {
                continue;
            };
            let rps = self
                .services
                .get(k)
                .and_then(|s| s.requests_per_second)
                .unwrap_or(self.default_rps);
            let total = rps * seconds;
            let weight_sum: u32 = split.weights.values().sum();
            for (subset, weight) in &split.weights {
                if *weight > 0 && weight_sum > 0 {
                    // Weights normally sum to 100; dividing by the sum keeps the total rate
                    // right while a malformed split is live.
                    let share = total * f64::from(*weight) / f64::from(weight_sum);
                    plan.push((key.clone(), subset.clone(), share));
                }
            }
            if let Some(mirror) = &split.mirror {
                plan.push((
                    key.clone(),
                    mirror.subset.clone(),
                    total * mirror.percent.clamp(0.0, 100.0) / 100.0,
                ));
            }
        }
        let mut batches = Vec::new();
        for (key, subset, requests) in plan {
            let state = self
                .service(&key)
                .subsets
                .entry(subset.clone())
                .or_default();
            let exact = requests + state.request_carry;
            // The epsilon keeps 0.1 + 0.1 + … from landing a hair under a whole request.
            let whole = (exact + 1e-9).floor();
            state.request_carry = (exact - whole).max(0.0);
            let failing = whole * state.behaviour.error_rate + state.error_carry;
            let errors = (failing + 1e-9).floor().min(whole);
            state.error_carry = (failing - errors).max(0.0);
            if whole >= 1.0 {
                batches.push(Batch {
                    key,
                    subset,
                    ok: (whole - errors) as u64,
                    errors: errors as u64,
                    latency_ms: state.behaviour.latency_ms,
                });
            }
        }
        batches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ServiceKey {
        ServiceKey::new("shop", "reviews")
    }

    fn totals(traffic: &mut Traffic, steps: usize, step: Duration) -> BTreeMap<String, (u64, u64)> {
        let mut sums: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for _ in 0..steps {
            for b in traffic.advance(step) {
                let e = sums.entry(b.subset).or_default();
                e.0 += b.ok;
                e.1 += b.errors;
            }
        }
        sums
    }

    #[test]
    fn no_split_no_traffic() {
        let mut t = Traffic::new(100.0);
        t.set_behaviour(&key(), "v1", Behaviour::default());
        assert!(t.advance(Duration::from_secs(1)).is_empty());
    }

    #[test]
    fn rate_follows_weights_with_fractions_carried() {
        let mut t = Traffic::new(10.0);
        let mut live = BTreeMap::new();
        live.insert(key(), Split::weights([("v1", 90), ("v2", 10)]));
        t.set_live(live);
        // 10 rps for 10 s in 100 ms steps: v2 gets 0.1 request per step.
        let sums = totals(&mut t, 100, Duration::from_millis(100));
        assert_eq!(sums["v1"], (90, 0));
        assert_eq!(sums["v2"], (10, 0));
    }

    #[test]
    fn errors_follow_the_error_rate() {
        let mut t = Traffic::new(100.0);
        t.set_override(&key(), Some(Split::weights([("v2", 100)])));
        t.set_behaviour(
            &key(),
            "v2",
            Behaviour {
                error_rate: 0.25,
                latency_ms: 5.0,
            },
        );
        let sums = totals(&mut t, 10, Duration::from_millis(100));
        assert_eq!(sums["v2"], (75, 25));
    }

    #[test]
    fn override_wins_and_can_be_cleared() {
        let mut t = Traffic::new(10.0);
        let mut live = BTreeMap::new();
        live.insert(key(), Split::weights([("v1", 100)]));
        t.set_live(live);
        t.set_override(&key(), Some(Split::weights([("v2", 100)])));
        assert_eq!(t.split(&key()), Some(&Split::weights([("v2", 100)])));
        t.set_override(&key(), None);
        assert_eq!(t.split(&key()), Some(&Split::weights([("v1", 100)])));
    }

    #[test]
    fn mirror_adds_a_copy() {
        let mut t = Traffic::new(10.0);
        let mut split = Split::weights([("v1", 100)]);
        split.mirror = Some(super::super::weights::Mirror {
            subset: "v2".into(),
            percent: 50.0,
        });
        t.set_override(&key(), Some(split));
        let sums = totals(&mut t, 10, Duration::from_secs(1));
        assert_eq!(sums["v1"], (100, 0));
        assert_eq!(sums["v2"], (50, 0));
    }

    #[test]
    fn rate_per_service() {
        let mut t = Traffic::new(10.0);
        t.set_override(&key(), Some(Split::weights([("v1", 100)])));
        t.set_rate(&key(), 0.0);
        assert!(t.advance(Duration::from_secs(5)).is_empty());
    }

    #[test]
    fn behaviour_checks() {
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
    }
}
