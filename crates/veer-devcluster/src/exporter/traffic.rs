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

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ControlError;
use super::weights::{Fault, Routes, ServiceKey, Split};

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

/// Which kind of request a flow carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Path {
    Plain,
    Matched,
}

/// A route's requests to a subset, or the copies its mirror sends there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Leg {
    Routed,
    Mirrored,
}

/// The fractions of a request each count of a flow carries to the next step.
#[derive(Debug, Clone, Default, PartialEq)]
struct Carry {
    requests: f64,
    aborts: f64,
    delays: f64,
    errors: f64,
    delayed_errors: f64,
}

/// `exact` plus what was carried, as whole requests; the rest is carried on.
fn whole(carry: &mut f64, exact: f64) -> u64 {
    let total = exact.max(0.0) + *carry;
    // The epsilon keeps 0.1 + 0.1 + … from landing a hair under a whole request.
    let n = (total + 1e-9).floor();
    *carry = (total - n).max(0.0);
    n as u64
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

/// One planned flow of a step: `requests` (fractional) of `path` to `subset`.
struct Flow {
    key: ServiceKey,
    path: Path,
    leg: Leg,
    subset: String,
    requests: f64,
    fault: Option<Fault>,
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

    /// The flows of the next `seconds`, before rounding to whole requests.
    fn plan(&self, seconds: f64) -> Vec<Flow> {
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

    /// Generates the requests of the next `step`.
    pub fn advance(&mut self, step: Duration) -> Vec<Batch> {
        let plan = self.plan(step.as_secs_f64());
        let mut batches = Vec::new();
        for flow in plan {
            let behaviour = self.behaviour(&flow.key, &flow.subset);
            let state = self.service(&flow.key);
            let carry = state
                .carries
                .entry((flow.path, flow.leg, flow.subset.clone()))
                .or_default();
            let requests = whole(&mut carry.requests, flow.requests);
            let (abort, delay) = match &flow.fault {
                Some(f) => (f.abort.as_ref(), f.delay.as_ref()),
                None => (None, None),
            };
            let aborted = abort.map_or(0, |a| {
                whole(
                    &mut carry.aborts,
                    requests as f64 * a.percent.clamp(0.0, 100.0) / 100.0,
                )
                .min(requests)
            });
            let forwarded = requests - aborted;
            let delayed = delay.map_or(0, |d| {
                whole(
                    &mut carry.delays,
                    forwarded as f64 * d.percent.clamp(0.0, 100.0) / 100.0,
                )
                .min(forwarded)
            });
            let prompt = forwarded - delayed;
            let errors = whole(&mut carry.errors, prompt as f64 * behaviour.error_rate).min(prompt);
            let delayed_errors = whole(
                &mut carry.delayed_errors,
                delayed as f64 * behaviour.error_rate,
            )
            .min(delayed);
            let batch = |reporter, subset: Option<&str>, code, flags, count, duration_ms| Batch {
                key: flow.key.clone(),
                reporter,
                subset: subset.map(str::to_string),
                code,
                flags,
                count,
                duration_ms,
            };
            let subset = Some(flow.subset.as_str());
            let latency = behaviour.latency_ms;
            let extra = delay.map_or(0.0, |d| d.delay_ms.max(0.0));
            let mut out = Vec::new();
            if let Some(a) = abort {
                out.push(batch(
                    Reporter::Source,
                    None,
                    a.http_status,
                    FAULT_ABORTED,
                    aborted,
                    0.0,
                ));
            }
            for (count, code) in [(prompt - errors, 200), (errors, 500)] {
                if flow.leg == Leg::Routed {
                    out.push(batch(
                        Reporter::Source,
                        subset,
                        code,
                        NO_FLAGS,
                        count,
                        latency,
                    ));
                }
                out.push(batch(
                    Reporter::Destination,
                    subset,
                    code,
                    NO_FLAGS,
                    count,
                    latency,
                ));
            }
            for (count, code) in [(delayed - delayed_errors, 200), (delayed_errors, 500)] {
                out.push(batch(
                    Reporter::Source,
                    subset,
                    code,
                    FAULT_DELAYED,
                    count,
                    latency + extra,
                ));
                out.push(batch(
                    Reporter::Destination,
                    subset,
                    code,
                    NO_FLAGS,
                    count,
                    latency,
                ));
            }
            batches.extend(out.into_iter().filter(|b| b.count > 0));
        }
        batches
    }
}

#[cfg(test)]
mod tests {
    use super::super::weights::{FaultAbort, FaultDelay, Mirror};
    use super::*;

    fn key() -> ServiceKey {
        ServiceKey::new("shop", "reviews")
    }

    type Tally = BTreeMap<(Reporter, Option<String>, u16, &'static str), (u64, f64)>;

    /// Requests per (reporter, subset, code, flags), with the duration they were reported at.
    fn tally(traffic: &mut Traffic, steps: usize, step: Duration) -> Tally {
        let mut sums = Tally::new();
        for _ in 0..steps {
            for b in traffic.advance(step) {
                let e = sums
                    .entry((b.reporter, b.subset, b.code, b.flags))
                    .or_insert((0, b.duration_ms));
                assert_eq!(e.1, b.duration_ms, "one duration per kind of request");
                e.0 += b.count;
            }
        }
        sums
    }

    /// (ok, errors) the destination reported per subset.
    fn answered(tally: &Tally) -> BTreeMap<String, (u64, u64)> {
        let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for ((reporter, subset, code, _), (count, _)) in tally {
            if *reporter != Reporter::Destination {
                continue;
            }
            let e = out.entry(subset.clone().unwrap_or_default()).or_default();
            if *code >= 500 {
                e.1 += count;
            } else {
                e.0 += count;
            }
        }
        out
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
        live.insert(
            key(),
            Routes {
                plain: Some(Split::weights([("v1", 90), ("v2", 10)])),
                matched: None,
            },
        );
        t.set_live(live);
        // 10 rps for 10 s in 100 ms steps: v2 gets 0.1 request per step.
        let sums = answered(&tally(&mut t, 100, Duration::from_millis(100)));
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
        let sums = answered(&tally(&mut t, 10, Duration::from_millis(100)));
        assert_eq!(sums["v2"], (75, 25));
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
    fn rate_per_service() {
        let mut t = Traffic::new(10.0);
        t.set_override(&key(), Some(Split::weights([("v1", 100)])));
        t.set_rate(&key(), 0.0);
        assert!(t.advance(Duration::from_secs(5)).is_empty());
    }

    fn ab() -> Routes {
        Routes {
            plain: Some(Split::weights([("v1", 100)])),
            matched: Some(Split::weights([("v2", 100)])),
        }
    }

    fn one_route(split: Split) -> Routes {
        Routes {
            plain: Some(split),
            matched: None,
        }
    }

    fn faulty(delay: Option<(f64, f64)>, abort: Option<(u16, f64)>) -> Split {
        Split {
            fault: Some(Fault {
                delay: delay.map(|(delay_ms, percent)| FaultDelay { delay_ms, percent }),
                abort: abort.map(|(http_status, percent)| FaultAbort {
                    http_status,
                    percent,
                }),
            }),
            ..Split::weights([("v2", 100)])
        }
    }

    /// 100 requests per second for 10 s in 100 ms steps through each set of routes: what each
    /// sidecar reports. v1 answers in 20 ms; v2 in 50 ms with `v2_errors` of them 500.
    #[test]
    fn what_each_sidecar_reports() {
        use Reporter::{Destination as D, Source as S};
        let v = |s: &str| Some(s.to_string());
        type Row = (Reporter, Option<String>, u16, &'static str, u64, f64);
        // (name, routes, matched share, v2's error rate, what is reported)
        type Case = (&'static str, Routes, Option<f64>, f64, Vec<Row>);
        let table: Vec<Case> = vec![
            (
                "plain traffic: both sidecars report the same",
                one_route(Split::weights([("v1", 75), ("v2", 25)])),
                None,
                0.0,
                vec![
                    (S, v("v1"), 200, "-", 750, 20.0),
                    (S, v("v2"), 200, "-", 250, 50.0),
                    (D, v("v1"), 200, "-", 750, 20.0),
                    (D, v("v2"), 200, "-", 250, 50.0),
                ],
            ),
            (
                "A/B: the default 10 % of matched requests take the header route",
                ab(),
                None,
                0.0,
                vec![
                    (S, v("v1"), 200, "-", 900, 20.0),
                    (S, v("v2"), 200, "-", 100, 50.0),
                    (D, v("v1"), 200, "-", 900, 20.0),
                    (D, v("v2"), 200, "-", 100, 50.0),
                ],
            ),
            (
                "A/B with a matched share of 30 %",
                ab(),
                Some(0.3),
                0.0,
                vec![
                    (S, v("v1"), 200, "-", 700, 20.0),
                    (S, v("v2"), 200, "-", 300, 50.0),
                    (D, v("v1"), 200, "-", 700, 20.0),
                    (D, v("v2"), 200, "-", 300, 50.0),
                ],
            ),
            (
                "A/B with no matched requests: the new version gets nothing",
                ab(),
                Some(0.0),
                0.0,
                vec![
                    (S, v("v1"), 200, "-", 1000, 20.0),
                    (D, v("v1"), 200, "-", 1000, 20.0),
                ],
            ),
            (
                "mirror: the copies are reported by the destination only",
                one_route(Split {
                    mirror: Some(Mirror {
                        subset: "v2".into(),
                        percent: 40.0,
                    }),
                    ..Split::weights([("v1", 100)])
                }),
                None,
                0.5,
                vec![
                    (S, v("v1"), 200, "-", 1000, 20.0),
                    (D, v("v1"), 200, "-", 1000, 20.0),
                    (D, v("v2"), 200, "-", 200, 50.0),
                    (D, v("v2"), 500, "-", 200, 50.0),
                ],
            ),
            (
                "delay: the caller sees it, the destination does not",
                one_route(faulty(Some((1000.0, 25.0)), None)),
                None,
                0.0,
                vec![
                    (S, v("v2"), 200, "-", 750, 50.0),
                    (S, v("v2"), 200, "DI", 250, 1050.0),
                    (D, v("v2"), 200, "-", 1000, 50.0),
                ],
            ),
            (
                "delay with errors: errors among delayed and prompt requests alike",
                one_route(faulty(Some((300.0, 20.0)), None)),
                None,
                0.1,
                vec![
                    (S, v("v2"), 200, "-", 720, 50.0),
                    (S, v("v2"), 500, "-", 80, 50.0),
                    (S, v("v2"), 200, "DI", 180, 350.0),
                    (S, v("v2"), 500, "DI", 20, 350.0),
                    (D, v("v2"), 200, "-", 900, 50.0),
                    (D, v("v2"), 500, "-", 100, 50.0),
                ],
            ),
            (
                "abort: answered by the caller's sidecar, never forwarded",
                one_route(faulty(None, Some((503, 10.0)))),
                None,
                0.0,
                vec![
                    (S, None, 503, "FI", 100, 0.0),
                    (S, v("v2"), 200, "-", 900, 50.0),
                    (D, v("v2"), 200, "-", 900, 50.0),
                ],
            ),
            (
                "abort and delay: delays among the forwarded requests",
                one_route(faulty(Some((100.0, 50.0)), Some((500, 20.0)))),
                None,
                0.0,
                vec![
                    (S, None, 500, "FI", 200, 0.0),
                    (S, v("v2"), 200, "-", 400, 50.0),
                    (S, v("v2"), 200, "DI", 400, 150.0),
                    (D, v("v2"), 200, "-", 800, 50.0),
                ],
            ),
            (
                "an aborted request is not mirrored",
                one_route(Split {
                    mirror: Some(Mirror {
                        subset: "v1".into(),
                        percent: 100.0,
                    }),
                    ..faulty(None, Some((503, 50.0)))
                }),
                None,
                0.0,
                vec![
                    (S, None, 503, "FI", 500, 0.0),
                    (S, v("v2"), 200, "-", 500, 50.0),
                    (D, v("v1"), 200, "-", 500, 20.0),
                    (D, v("v2"), 200, "-", 500, 50.0),
                ],
            ),
        ];
        for (name, routes, share, v2_errors, want) in table {
            let mut t = Traffic::new(100.0);
            t.set_live([(key(), routes)].into_iter().collect());
            if let Some(share) = share {
                t.set_matched_share(&key(), share);
            }
            t.set_behaviour(
                &key(),
                "v2",
                Behaviour {
                    error_rate: v2_errors,
                    latency_ms: 50.0,
                },
            );
            let got = tally(&mut t, 100, Duration::from_millis(100));
            let want: Tally = want
                .into_iter()
                .map(|(r, s, c, f, n, d)| ((r, s, c, f), (n, d)))
                .collect();
            assert_eq!(got, want, "{name}");
        }
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
