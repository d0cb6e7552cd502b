//! Where synthetic traffic goes: the split of a service's requests across subsets, read from a
//! live VirtualService (pure) or set by a test.
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

/// How a service's requests are spread.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Split {
    /// Weight per subset (summing to 100 when the route is valid).
    pub weights: BTreeMap<String, u32>,
    /// A subset receiving a copy of this share (percent) of the requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<Mirror>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mirror {
    pub subset: String,
    pub percent: f64,
}

impl Split {
    pub fn weights<const N: usize>(pairs: [(&str, u32); N]) -> Self {
        Self {
            weights: pairs.iter().map(|(s, w)| (s.to_string(), *w)).collect(),
            mirror: None,
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

/// The splits a VirtualService's `spec` sends plain requests to. Synthetic requests carry no
/// headers, so they take the first HTTP route without `match` (Istio evaluates in order);
/// header- or cookie-matched routes (an A/B phase) get none of them.
pub fn splits_from_virtual_service(
    vs_namespace: &str,
    spec: &Value,
) -> BTreeMap<ServiceKey, Split> {
    let mut splits: BTreeMap<ServiceKey, Split> = BTreeMap::new();
    let routes = spec.get("http").and_then(Value::as_array);
    let catch_all = routes.and_then(|routes| {
        routes.iter().find(|r| {
            r.get("match")
                .and_then(Value::as_array)
                .is_none_or(|m| m.is_empty())
        })
    });
    let Some(route) = catch_all else {
        return splits;
    };
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
    splits
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key() -> ServiceKey {
        ServiceKey::new("shop", "reviews")
    }

    #[test]
    fn weighted_route() {
        let spec = json!({"hosts": ["reviews"], "http": [{"route": [
            {"destination": {"host": "reviews", "subset": "v1"}, "weight": 90},
            {"destination": {"host": "reviews.shop.svc.cluster.local", "subset": "v2"}, "weight": 10}
        ]}]});
        let splits = splits_from_virtual_service("shop", &spec);
        assert_eq!(splits.len(), 1);
        assert_eq!(splits[&key()], Split::weights([("v1", 90), ("v2", 10)]));
    }

    #[test]
    fn lone_destination_takes_all() {
        let spec =
            json!({"http": [{"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}]});
        assert_eq!(
            splits_from_virtual_service("shop", &spec)[&key()],
            Split::weights([("v1", 100)])
        );
        let spec = json!({"http": [{"route": [{"destination": {"host": "reviews"}}]}]});
        assert_eq!(
            splits_from_virtual_service("shop", &spec)[&key()],
            Split::weights([(UNKNOWN_SUBSET, 100)])
        );
    }

    #[test]
    fn header_matched_routes_get_no_plain_traffic() {
        let spec = json!({"http": [
            {"match": [{"headers": {"x-canary": {"exact": "1"}}}],
             "route": [{"destination": {"host": "reviews", "subset": "v2"}}]},
            {"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}
        ]});
        assert_eq!(
            splits_from_virtual_service("shop", &spec)[&key()],
            Split::weights([("v1", 100)])
        );
        let only_matched = json!({"http": [{"match": [{"uri": {"prefix": "/"}}],
            "route": [{"destination": {"host": "reviews", "subset": "v1"}}]}]});
        assert!(splits_from_virtual_service("shop", &only_matched).is_empty());
    }

    #[test]
    fn mirror_is_recorded() {
        let spec = json!({"http": [{
            "route": [{"destination": {"host": "reviews", "subset": "v1"}}],
            "mirror": {"host": "reviews", "subset": "v2"},
            "mirrorPercentage": {"value": 25.0}
        }]});
        let split = &splits_from_virtual_service("shop", &spec)[&key()];
        assert_eq!(
            split.mirror,
            Some(Mirror {
                subset: "v2".into(),
                percent: 25.0
            })
        );
    }

    #[test]
    fn other_namespace_host() {
        let spec = json!({"http": [{"route": [{"destination": {"host": "ratings.backend.svc.cluster.local"}}]}]});
        let splits = splits_from_virtual_service("shop", &spec);
        assert!(splits.contains_key(&ServiceKey::new("backend", "ratings")));
    }

    #[test]
    fn no_http_routes() {
        assert!(splits_from_virtual_service("shop", &json!({"tcp": []})).is_empty());
        assert!(splits_from_virtual_service("shop", &json!(null)).is_empty());
    }
}
