//! Where synthetic traffic goes: the routes of a service's requests, read from a live
//! VirtualService (pure) or set by a test. Each route has its split across subsets, and may
//! mirror a share of its requests or inject faults into them.
//!
//! Two kinds of synthetic request exist: plain ones (no headers) and "matched" ones, which
//! carry whatever header or cookie an A/B route asks for. Istio evaluates HTTP routes in
//! order, so a plain request takes the first route without `match`, and a matched one the
//! first route that either has no `match` or matches on headers (a cookie is a header). Routes
//! matching on anything else (URI, method, port, ...) get no synthetic request.
//!
//! The live object is read leniently from JSON rather than through the strict manifest types:
//! the exporter must keep following weights even when a cluster adds fields veer does not know.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A service in a namespace: the unit traffic is generated for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ServiceKey {
    pub namespace: String,
    pub service: String,
}

impl ServiceKey {
    pub fn new(namespace: &str, service: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            service: service.to_string(),
        }
    }
}

/// Subset name used when a destination names no subset, as Istio reports a missing label.
pub const UNKNOWN_SUBSET: &str = "unknown";

/// How the requests of one route are spread, and what the route does to them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Split {
    /// Weight per subset (summing to 100 when the route is valid).
    pub weights: BTreeMap<String, u32>,
    /// A subset receiving a copy of this share (percent) of the requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<Mirror>,
    /// Faults the caller's sidecar injects into the route's requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mirror {
    pub subset: String,
    pub percent: f64,
}

/// A route's `fault`: a delay and/or an abort, each into its own share of the requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fault {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<FaultDelay>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<FaultAbort>,
}

/// `percent`% of the requests wait `delay_ms` before they are forwarded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultDelay {
    pub delay_ms: f64,
    pub percent: f64,
}

/// `percent`% of the requests are answered `http_status` by the caller's sidecar itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultAbort {
    pub http_status: u16,
    pub percent: f64,
}

/// The routes a service's synthetic requests take.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Routes {
    /// The route of plain requests; `None`: no route takes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plain: Option<Split>,
    /// The route of matched requests when it is not the plain one (an A/B route ahead of it);
    /// `None`: matched requests go where plain ones go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<Split>,
}

impl Split {
    pub fn weights<const N: usize>(pairs: [(&str, u32); N]) -> Self {
        Self {
            weights: pairs.iter().map(|(s, w)| (s.to_string(), *w)).collect(),
            mirror: None,
            fault: None,
        }
    }
}

/// The service a destination host names: `reviews`, `reviews.shop`,
/// `reviews.shop.svc.cluster.local` all name `reviews` (in `shop` for the first when the
/// VirtualService is in `shop`).
fn service_of(host: &str, vs_namespace: &str) -> ServiceKey {
    let mut parts = host.split('.');
    let service = parts.next().unwrap_or(host);
    let namespace = parts.next().unwrap_or(vs_namespace);
    ServiceKey::new(namespace, service)
}

fn subset_of(destination: &Value) -> String {
    destination
        .get("subset")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(UNKNOWN_SUBSET)
        .to_string()
}

/// How a route's `match` list admits synthetic requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admits {
    /// No `match`: every request.
    All,
    /// At least one match condition on headers: matched requests.
    Matched,
    /// Only conditions synthetic requests never meet (URI, method, ...).
    None,
}

fn admits(route: &Value) -> Admits {
    let Some(matches) = route
        .get("match")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
    else {
        return Admits::All;
    };
    // Each entry is a condition set (entries are ORed): one asking only for headers is met
    // by a matched request.
    let headers_only = |m: &Value| {
        m.as_object().is_some_and(|o| {
            o.contains_key("headers")
                && o.keys()
                    .all(|k| k == "headers" || k == "name" || k == "ignoreUriCase")
        })
    };
    if matches.iter().any(headers_only) {
        Admits::Matched
    } else {
        Admits::None
    }
}

/// A percentage as Istio writes it: `percentage.value`, else the deprecated integer
/// `percent`. Absent, no request is affected (Istio translates a missing value to 0 %).
fn percentage(v: &Value) -> f64 {
    v.get("percentage")
        .and_then(|p| p.get("value"))
        .and_then(Value::as_f64)
        .or_else(|| v.get("percent").and_then(Value::as_f64))
        .unwrap_or(0.0)
        .clamp(0.0, 100.0)
}

fn fault_of(route: &Value) -> Option<Fault> {
    let fault = route.get("fault")?;
    let delay = fault.get("delay").and_then(|d| {
        // `exponentialDelay` is not implemented by Istio; only `fixedDelay` counts.
        let fixed = d.get("fixedDelay").and_then(Value::as_str)?;
        let delay = veer_model::duration::parse(fixed).ok()?;
        Some(FaultDelay {
            delay_ms: delay.as_secs_f64() * 1000.0,
            percent: percentage(d),
        })
    });
    let abort = fault.get("abort").and_then(|a| {
        let status = a.get("httpStatus").and_then(Value::as_u64)?;
        Some(FaultAbort {
            http_status: u16::try_from(status).ok()?,
            percent: percentage(a),
        })
    });
    (delay.is_some() || abort.is_some()).then_some(Fault { delay, abort })
}

/// The split per service of one HTTP route, with its mirror and fault.
fn route_splits(route: &Value, vs_namespace: &str) -> BTreeMap<ServiceKey, Split> {
    let mut splits: BTreeMap<ServiceKey, Split> = BTreeMap::new();
    let destinations = route
        .get("route")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let single = destinations.len() == 1;
    for d in destinations {
        let Some(destination) = d.get("destination") else {
            continue;
        };
        let Some(host) = destination.get("host").and_then(Value::as_str) else {
            continue;
        };
        // A lone destination without a weight takes everything, as in Istio.
        let weight = d
            .get("weight")
            .and_then(Value::as_u64)
            .map(|w| u32::try_from(w).unwrap_or(u32::MAX))
            .unwrap_or(if single { 100 } else { 0 });
        let entry = splits.entry(service_of(host, vs_namespace)).or_default();
        *entry.weights.entry(subset_of(destination)).or_default() += weight;
    }
    if let Some(mirror) = route.get("mirror")
        && let Some(host) = mirror.get("host").and_then(Value::as_str)
    {
        // `mirrorPercentage.value` (or the deprecated integer `mirrorPercent`); absent is 100.
        let percent = route
            .get("mirrorPercentage")
            .and_then(|p| p.get("value"))
            .and_then(Value::as_f64)
            .or_else(|| route.get("mirrorPercent").and_then(Value::as_f64))
            .unwrap_or(100.0);
        let key = service_of(host, vs_namespace);
        if let Some(split) = splits.get_mut(&key) {
            split.mirror = Some(Mirror {
                subset: subset_of(mirror),
                percent,
            });
        }
    }
    if let Some(fault) = fault_of(route) {
        for split in splits.values_mut() {
            split.fault = Some(fault.clone());
        }
    }
    splits
}

/// The routes a VirtualService's `spec` gives each service it sends to (see the module
/// header for which route a plain and a matched request take).
pub fn routes_from_virtual_service(
    vs_namespace: &str,
    spec: &Value,
) -> BTreeMap<ServiceKey, Routes> {
    let mut out: BTreeMap<ServiceKey, Routes> = BTreeMap::new();
    let routes = spec
        .get("http")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let plain = routes.iter().position(|r| admits(r) == Admits::All);
    let matched = routes
        .iter()
        .position(|r| matches!(admits(r), Admits::All | Admits::Matched));
    if let Some(i) = plain {
        for (key, split) in route_splits(&routes[i], vs_namespace) {
            out.entry(key).or_default().plain = Some(split);
        }
    }
    if let Some(i) = matched
        && Some(i) != plain
    {
        for (key, split) in route_splits(&routes[i], vs_namespace) {
            out.entry(key).or_default().matched = Some(split);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key() -> ServiceKey {
        ServiceKey::new("shop", "reviews")
    }

    fn plain(split: Split) -> Routes {
        Routes {
            plain: Some(split),
            matched: None,
        }
    }

    fn with_fault(mut split: Split, fault: Fault) -> Split {
        split.fault = Some(fault);
        split
    }

    fn delay(delay_ms: f64, percent: f64) -> Fault {
        Fault {
            delay: Some(FaultDelay { delay_ms, percent }),
            abort: None,
        }
    }

    fn route_to(subset: &str) -> Value {
        json!([{"destination": {"host": "reviews", "subset": subset}}])
    }

    /// The routes of `reviews` for each VirtualService spec: (name, spec, expected).
    #[test]
    fn routes_of_reviews() {
        let ab_ahead = json!({"http": [
            {"name": "veer-ab-0",
             "match": [{"headers": {"x-canary": {"exact": "1"}}},
                       {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}}],
             "route": route_to("v2")},
            {"route": route_to("v1")}
        ]});
        let table: Vec<(&str, Value, Option<Routes>)> = vec![
            (
                "weighted route, hosts short and fully qualified",
                json!({"hosts": ["reviews"], "http": [{"route": [
                    {"destination": {"host": "reviews", "subset": "v1"}, "weight": 90},
                    {"destination": {"host": "reviews.shop.svc.cluster.local", "subset": "v2"}, "weight": 10}
                ]}]}),
                Some(plain(Split::weights([("v1", 90), ("v2", 10)]))),
            ),
            (
                "a lone destination without weight takes all",
                json!({"http": [{"route": route_to("v1")}]}),
                Some(plain(Split::weights([("v1", 100)]))),
            ),
            (
                "no subset: Istio's unknown",
                json!({"http": [{"route": [{"destination": {"host": "reviews"}}]}]}),
                Some(plain(Split::weights([(UNKNOWN_SUBSET, 100)]))),
            ),
            (
                "an A/B route ahead takes the matched requests",
                ab_ahead,
                Some(Routes {
                    plain: Some(Split::weights([("v1", 100)])),
                    matched: Some(Split::weights([("v2", 100)])),
                }),
            ),
            (
                "a header route behind the catch-all is never reached",
                json!({"http": [
                    {"route": route_to("v1")},
                    {"match": [{"headers": {"x-canary": {"exact": "1"}}}], "route": route_to("v2")}
                ]}),
                Some(plain(Split::weights([("v1", 100)]))),
            ),
            (
                "URI-only matches take no synthetic request",
                json!({"http": [
                    {"match": [{"uri": {"prefix": "/"}}], "route": route_to("v1")}
                ]}),
                None,
            ),
            (
                "headers and URI in one condition set: not met by a matched request",
                json!({"http": [
                    {"match": [{"headers": {"x-canary": {"exact": "1"}}, "uri": {"prefix": "/api"}}],
                     "route": route_to("v2")},
                    {"route": route_to("v1")}
                ]}),
                Some(plain(Split::weights([("v1", 100)]))),
            ),
            (
                "mirror with mirrorPercentage",
                json!({"http": [{"route": route_to("v1"),
                    "mirror": {"host": "reviews", "subset": "v2"},
                    "mirrorPercentage": {"value": 25.0}}]}),
                Some(plain(Split {
                    mirror: Some(Mirror {
                        subset: "v2".into(),
                        percent: 25.0,
                    }),
                    ..Split::weights([("v1", 100)])
                })),
            ),
            (
                "mirror without a percentage mirrors everything",
                json!({"http": [{"route": route_to("v1"),
                    "mirror": {"host": "reviews", "subset": "v2"}}]}),
                Some(plain(Split {
                    mirror: Some(Mirror {
                        subset: "v2".into(),
                        percent: 100.0,
                    }),
                    ..Split::weights([("v1", 100)])
                })),
            ),
            (
                "fault delay on a weighted route",
                json!({"http": [{"route": [
                    {"destination": {"host": "reviews", "subset": "v1"}, "weight": 75},
                    {"destination": {"host": "reviews", "subset": "v2"}, "weight": 25}],
                    "fault": {"delay": {"fixedDelay": "1.5s", "percentage": {"value": 10.0}}}}]}),
                Some(plain(with_fault(
                    Split::weights([("v1", 75), ("v2", 25)]),
                    delay(1500.0, 10.0),
                ))),
            ),
            (
                "fault delay with the deprecated integer percent",
                json!({"http": [{"route": route_to("v2"),
                    "fault": {"delay": {"fixedDelay": "200ms", "percent": 30}}}]}),
                Some(plain(with_fault(
                    Split::weights([("v2", 100)]),
                    delay(200.0, 30.0),
                ))),
            ),
            (
                "fault abort, and a delay without a percentage delays nothing",
                json!({"http": [{"route": route_to("v2"),
                    "fault": {"abort": {"httpStatus": 503, "percentage": {"value": 50}},
                              "delay": {"fixedDelay": "1s"}}}]}),
                Some(plain(with_fault(
                    Split::weights([("v2", 100)]),
                    Fault {
                        delay: Some(FaultDelay {
                            delay_ms: 1000.0,
                            percent: 0.0,
                        }),
                        abort: Some(FaultAbort {
                            http_status: 503,
                            percent: 50.0,
                        }),
                    },
                ))),
            ),
            (
                "a gRPC abort or an exponential delay is not modelled",
                json!({"http": [{"route": route_to("v2"),
                    "fault": {"abort": {"grpcStatus": "UNAVAILABLE", "percentage": {"value": 50}},
                              "delay": {"exponentialDelay": "1s", "percentage": {"value": 50}}}}]}),
                Some(plain(Split::weights([("v2", 100)]))),
            ),
            (
                "the A/B route keeps its own fault",
                json!({"http": [
                    {"match": [{"headers": {"x-canary": {"exact": "1"}}}], "route": route_to("v2"),
                     "fault": {"abort": {"httpStatus": 500, "percentage": {"value": 100}}}},
                    {"route": route_to("v1")}
                ]}),
                Some(Routes {
                    plain: Some(Split::weights([("v1", 100)])),
                    matched: Some(with_fault(
                        Split::weights([("v2", 100)]),
                        Fault {
                            delay: None,
                            abort: Some(FaultAbort {
                                http_status: 500,
                                percent: 100.0,
                            }),
                        },
                    )),
                }),
            ),
            ("no HTTP routes", json!({"tcp": []}), None),
            ("no spec", json!(null), None),
        ];
        for (name, spec, want) in table {
            let got = routes_from_virtual_service("shop", &spec);
            assert_eq!(got.get(&key()), want.as_ref(), "{name}");
        }
    }

    #[test]
    fn other_namespace_host() {
        let spec = json!({"http": [{"route": [{"destination": {"host": "ratings.backend.svc.cluster.local"}}]}]});
        let routes = routes_from_virtual_service("shop", &spec);
        assert!(routes.contains_key(&ServiceKey::new("backend", "ratings")));
    }
}
