//! Legacy `config.istio.io/v1alpha2` DestinationPolicy (Istio 0.x load balancing and circuit
//! breakers), converted to the equivalent `networking.istio.io/v1` DestinationRule so the rest
//! of veer sees one kind.
//!
//! The mapping follows the 0.x reference: `destination {name, namespace, domain}` becomes the
//! rule's host, `destination.labels` a subset carrying the policy, `loadBalancing.name` the
//! simple load balancer, and `circuitBreaker.simpleCb` the connection pool and outlier
//! detection. Every converted field keeps the line of the legacy field it came from, so a bad
//! value found later by DestinationRule validation still points at what the user wrote.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::destination_rule::{
    ConnectionPoolSettings, DestinationRule, HttpSettings, LoadBalancerSettings, OutlierDetection,
    SimpleLb, Subset, TcpSettings, TrafficPolicy,
};
use super::labels::Labels;
use super::{IstioObject, NETWORKING_GROUP, parse_typed};
use crate::diagnostic::Diagnostic;
use crate::hosts;
use crate::manifest::yaml::{Positions, PositionsBuilder, pointer_join};
use crate::manifest::{Manifest, ObjectKey};

/// `spec` of a legacy DestinationPolicy.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DestinationPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<IstioService>,
    /// Restricted a policy to some callers; no DestinationRule field says the same thing, so
    /// it is refused rather than silently widened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<IstioService>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancing: Option<LoadBalancing>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<CircuitBreaker>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IstioService {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoadBalancing {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<LegacyLb>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LegacyLb {
    RoundRobin,
    LeastConn,
    Random,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CircuitBreaker {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simple_cb: Option<SimpleCircuitBreaker>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SimpleCircuitBreaker {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_max_pending_requests: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_max_requests: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sleep_window: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_consecutive_errors: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_detection_interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_max_requests_per_connection: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_max_ejection_percent: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_max_retries: Option<i32>,
}

const CODE: &str = "legacy-destination-policy";

/// Convert a DestinationPolicy manifest into a DestinationRule manifest, with a warning that
/// says so.
pub(crate) fn convert(manifest: Manifest) -> Result<(Manifest, Diagnostic), Vec<Diagnostic>> {
    let legacy: IstioObject<DestinationPolicy> = parse_typed(&manifest)?;
    let spec = legacy.spec;
    if spec.source.is_some() {
        return Err(vec![
            manifest
                .error(
                    CODE,
                    "/spec/source",
                    "spec.source limits a DestinationPolicy to some callers; a DestinationRule applies to every caller, so veer cannot convert it faithfully",
                )
                .fix("remove `source` and replace this DestinationPolicy with a networking.istio.io/v1 DestinationRule (use `workloadSelector` in the callers' namespace to limit it to some callers)"),
        ]);
    }
    let destination = spec.destination.unwrap_or_default();
    let Some(name) = destination.name.as_deref().filter(|n| !n.is_empty()) else {
        return Err(vec![
            manifest
                .error(
                    CODE,
                    "/spec/destination",
                    "spec.destination.name is missing: the policy does not say which service it is for",
                )
                .fix("set `spec.destination.name` to the service's name, e.g. `reviews`"),
        ]);
    };
    let namespace = destination
        .namespace
        .clone()
        .unwrap_or_else(|| manifest.namespace().to_string());
    let host = match &destination.domain {
        Some(domain) => format!("{name}.{namespace}.{domain}"),
        None => hosts::fqdn(name, &namespace),
    };

    let mut policy = TrafficPolicy {
        load_balancer: spec.load_balancing.as_ref().map(|lb| {
            Box::new(LoadBalancerSettings {
                simple: lb.name.map(|name| match name {
                    LegacyLb::RoundRobin => SimpleLb::RoundRobin,
                    // LEAST_CONN survives in v1 only as a deprecated alias of LEAST_REQUEST.
                    LegacyLb::LeastConn => SimpleLb::LeastRequest,
                    LegacyLb::Random => SimpleLb::Random,
                }),
                ..LoadBalancerSettings::default()
            })
        }),
        ..TrafficPolicy::default()
    };
    if let Some(cb) = spec.circuit_breaker.and_then(|c| c.simple_cb) {
        let tcp = cb.max_connections.map(|max| TcpSettings {
            max_connections: Some(max),
            ..TcpSettings::default()
        });
        let http = HttpSettings {
            http1_max_pending_requests: cb.http_max_pending_requests,
            http2_max_requests: cb.http_max_requests,
            max_requests_per_connection: cb.http_max_requests_per_connection,
            max_retries: cb.http_max_retries,
            ..HttpSettings::default()
        };
        let http = (http != HttpSettings::default()).then_some(http);
        if tcp.is_some() || http.is_some() {
            policy.connection_pool = Some(Box::new(ConnectionPoolSettings { tcp, http }));
        }
        let outlier = OutlierDetection {
            consecutive_5xx_errors: cb.http_consecutive_errors,
            interval: cb.http_detection_interval,
            base_ejection_time: cb.sleep_window,
            max_ejection_percent: cb.http_max_ejection_percent,
            ..OutlierDetection::default()
        };
        if outlier != OutlierDetection::default() {
            policy.outlier_detection = Some(Box::new(outlier));
        }
    }

    let subset_name = subset_name(&destination.labels);
    let mut rule = DestinationRule {
        host: host.clone(),
        ..DestinationRule::default()
    };
    let policy_pointer = match &subset_name {
        Some(subset) => {
            rule.subsets.push(Subset {
                name: subset.clone(),
                labels: Labels::from(destination.labels.clone()),
                traffic_policy: Some(Box::new(policy)),
            });
            "/spec/subsets/0/trafficPolicy"
        }
        None => {
            rule.traffic_policy = Some(Box::new(policy));
            "/spec/trafficPolicy"
        }
    };

    // Serializing plain data to a Value cannot fail; the fallback keeps the code panic-free.
    let spec_value = serde_json::to_value(&rule).unwrap_or(Value::Null);
    let key = ObjectKey {
        group: NETWORKING_GROUP.to_string(),
        version: "v1".to_string(),
        kind: "DestinationRule".to_string(),
        namespace: manifest.key.namespace.clone(),
        name: manifest.key.name.clone(),
    };
    let mut value = serde_json::Map::new();
    value.insert("apiVersion".into(), Value::String(key.api_version()));
    value.insert("kind".into(), Value::String(key.kind.clone()));
    value.insert(
        "metadata".into(),
        manifest
            .value
            .get("metadata")
            .cloned()
            .unwrap_or(Value::Null),
    );
    value.insert("spec".into(), spec_value.clone());
    let value = Value::Object(value);

    let positions = map_positions(&manifest, &value, policy_pointer, subset_name.is_some());
    let target = match &subset_name {
        Some(subset) => format!("host {host}, subset `{subset}`"),
        None => format!("host {host}"),
    };
    let warning = manifest
        .warning(
            CODE,
            "/kind",
            format!(
                "DestinationPolicy ({}) is an Istio 0.x kind that Istio no longer serves; veer converted it to {key} ({target}) and validates that",
                manifest.key.api_version()
            ),
        )
        .fix(format!(
            "replace this object with `apiVersion: networking.istio.io/v1`, `kind: DestinationRule`, the same metadata, and `spec: {}`",
            serde_json::to_string(&spec_value).unwrap_or_default()
        ));
    let converted = Manifest {
        key,
        file: manifest.file.clone(),
        line: manifest.line,
        value,
        positions,
        typed: manifest.typed.clone(),
        converted_from: Some(Box::new(manifest.key.clone())),
    };
    Ok((converted, warning))
}

/// A subset name from the destination's labels: their values joined, as a DNS label
/// (`version: v1` → `v1`), so VirtualServices naming the version keep working.
fn subset_name(labels: &BTreeMap<String, String>) -> Option<String> {
    if labels.is_empty() {
        return None;
    }
    let joined = labels
        .values()
        .map(|v| {
            v.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '-'
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-");
    let trimmed = joined.trim_matches('-');
    Some(if trimmed.is_empty() {
        "legacy".to_string()
    } else {
        trimmed.to_string()
    })
}

/// Positions for the converted object: every converted field points at the legacy field it
/// came from (or that field's nearest written ancestor).
fn map_positions(
    original: &Manifest,
    converted: &Value,
    policy: &str,
    has_subset: bool,
) -> Positions {
    let old = &original.positions;
    let mut out = PositionsBuilder::default();
    let mut map = |new: String, legacy: &str| out.insert(new, old.locate(legacy));
    map(String::new(), "");
    map("/apiVersion".into(), "/apiVersion");
    map("/kind".into(), "/kind");
    same_pointers(converted.get("metadata"), "/metadata", &mut map);
    map("/spec".into(), "/spec");
    map("/spec/host".into(), "/spec/destination/name");
    if has_subset {
        let labels = "/spec/destination/labels";
        for p in ["/spec/subsets", "/spec/subsets/0", "/spec/subsets/0/name"] {
            map(p.into(), labels);
        }
        same_pointers(
            converted.pointer("/spec/subsets/0/labels"),
            "/spec/subsets/0/labels",
            &mut |new, _| {
                let legacy = new.replacen("/spec/subsets/0/labels", labels, 1);
                map(new, &legacy)
            },
        );
    }
    let cb = "/spec/circuitBreaker/simpleCb";
    let anchor = if original.positions.get(cb).is_some() {
        cb
    } else {
        "/spec/loadBalancing"
    };
    map(policy.into(), anchor);
    let fields: [(&str, &str); 14] = [
        ("loadBalancer", "/spec/loadBalancing"),
        ("loadBalancer/simple", "/spec/loadBalancing/name"),
        ("connectionPool", cb),
        ("connectionPool/tcp", cb),
        ("connectionPool/tcp/maxConnections", "maxConnections"),
        ("connectionPool/http", cb),
        (
            "connectionPool/http/http1MaxPendingRequests",
            "httpMaxPendingRequests",
        ),
        ("connectionPool/http/http2MaxRequests", "httpMaxRequests"),
        (
            "connectionPool/http/maxRequestsPerConnection",
            "httpMaxRequestsPerConnection",
        ),
        ("connectionPool/http/maxRetries", "httpMaxRetries"),
        ("outlierDetection", cb),
        (
            "outlierDetection/consecutive5xxErrors",
            "httpConsecutiveErrors",
        ),
        ("outlierDetection/interval", "httpDetectionInterval"),
        ("outlierDetection/baseEjectionTime", "sleepWindow"),
    ];
    for (new, legacy) in fields {
        let legacy = if legacy.starts_with('/') {
            legacy.to_string()
        } else {
            pointer_join(cb, legacy)
        };
        map(format!("{policy}/{new}"), &legacy);
    }
    map(
        format!("{policy}/outlierDetection/maxEjectionPercent"),
        &pointer_join(cb, "httpMaxEjectionPercent"),
    );
    out.build()
}

/// Call `map(pointer, pointer)` for `value` and every node under it.
fn same_pointers(value: Option<&Value>, pointer: &str, map: &mut impl FnMut(String, &str)) {
    let Some(value) = value else { return };
    map(pointer.to_string(), pointer);
    match value {
        Value::Object(entries) => {
            for (k, v) in entries {
                same_pointers(Some(v), &pointer_join(pointer, k), map);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                same_pointers(Some(v), &pointer_join(pointer, i), map);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{ReadOptions, TypedObject, parse_file};

    const HEAD: &str = "apiVersion: config.istio.io/v1alpha2\nkind: DestinationPolicy\nmetadata:\n  name: reviews-cb\n  namespace: shop\nspec:\n";

    fn parse(body: &str) -> crate::manifest::ParsedFile {
        parse_file(
            "dp.yaml",
            format!("{HEAD}{body}").as_bytes(),
            &ReadOptions::default(),
        )
    }

    const FULL: &str = "  destination:
    name: reviews
    labels:
      version: v1
  loadBalancing:
    name: LEAST_CONN
  circuitBreaker:
    simpleCb:
      maxConnections: 100
      httpMaxPendingRequests: 10
      httpMaxRequests: 1000
      httpMaxRequestsPerConnection: 5
      httpMaxRetries: 3
      httpConsecutiveErrors: 7
      httpDetectionInterval: 5m
      sleepWindow: 15m
      httpMaxEjectionPercent: 50
";

    #[test]
    fn converts_to_an_equivalent_destination_rule() {
        let f = parse(FULL);
        assert_eq!(f.diagnostics.len(), 1, "{:?}", f.diagnostics);
        let warning = &f.diagnostics[0];
        assert_eq!(
            (warning.code, warning.line, warning.is_error()),
            ("legacy-destination-policy", 2, false)
        );
        assert!(
            warning.message.contains(
                "DestinationRule shop/reviews-cb (host reviews.shop.svc.cluster.local, subset `v1`)"
            ),
            "{warning}"
        );
        let m = &f.manifests[0];
        assert_eq!(m.key.to_string(), "DestinationRule shop/reviews-cb");
        assert_eq!(m.key.api_version(), "networking.istio.io/v1");
        assert_eq!(
            m.converted_from.as_ref().map(|k| k.kind.as_str()),
            Some("DestinationPolicy")
        );
        let TypedObject::DestinationRule(dr) = &m.typed else {
            panic!("converted object is not typed as a DestinationRule")
        };
        assert_eq!(dr.spec.host, "reviews.shop.svc.cluster.local");
        let subset = &dr.spec.subsets[0];
        assert_eq!(
            (subset.name.as_str(), subset.labels["version"].as_str()),
            ("v1", "v1")
        );
        let policy = subset.traffic_policy.as_ref().unwrap();
        assert_eq!(
            policy.load_balancer.as_ref().unwrap().simple,
            Some(SimpleLb::LeastRequest)
        );
        let pool = policy.connection_pool.as_ref().unwrap();
        assert_eq!(pool.tcp.as_ref().unwrap().max_connections, Some(100));
        let http = pool.http.as_ref().unwrap();
        assert_eq!(
            (
                http.http1_max_pending_requests,
                http.http2_max_requests,
                http.max_requests_per_connection,
                http.max_retries
            ),
            (Some(10), Some(1000), Some(5), Some(3))
        );
        let od = policy.outlier_detection.as_ref().unwrap();
        assert_eq!(od.consecutive_5xx_errors, Some(7));
        assert_eq!(od.interval.as_deref(), Some("5m"));
        assert_eq!(od.base_ejection_time.as_deref(), Some("15m"));
        assert_eq!(od.max_ejection_percent, Some(50));
    }

    #[test]
    fn converted_fields_keep_their_legacy_lines() {
        let f = parse(FULL);
        let m = &f.manifests[0];
        let p = "/spec/subsets/0/trafficPolicy";
        let cases = [
            ("/spec/host", 8),
            ("/spec/subsets/0/labels/version", 10),
            (&format!("{p}/loadBalancer/simple") as &str, 12),
            (&format!("{p}/connectionPool/tcp/maxConnections"), 15),
            (
                &format!("{p}/connectionPool/http/http1MaxPendingRequests"),
                16,
            ),
            (&format!("{p}/connectionPool/http/http2MaxRequests"), 17),
            (
                &format!("{p}/connectionPool/http/maxRequestsPerConnection"),
                18,
            ),
            (&format!("{p}/connectionPool/http/maxRetries"), 19),
            (&format!("{p}/outlierDetection/consecutive5xxErrors"), 20),
            (&format!("{p}/outlierDetection/interval"), 21),
            (&format!("{p}/outlierDetection/baseEjectionTime"), 22),
            (&format!("{p}/outlierDetection/maxEjectionPercent"), 23),
            ("/metadata/namespace", 5),
        ];
        for (pointer, line) in cases {
            assert_eq!(m.locate(pointer).line, line, "{pointer}");
        }
    }

    #[test]
    fn without_labels_the_policy_is_the_rule_s() {
        let f = parse(
            "  destination: {name: ratings, namespace: other}\n  loadBalancing: {name: RANDOM}\n",
        );
        let TypedObject::DestinationRule(dr) = &f.manifests[0].typed else {
            panic!("not typed")
        };
        assert_eq!(dr.spec.host, "ratings.other.svc.cluster.local");
        assert!(dr.spec.subsets.is_empty());
        let lb = dr
            .spec
            .traffic_policy
            .as_ref()
            .and_then(|p| p.load_balancer.as_ref());
        assert_eq!(lb.and_then(|l| l.simple), Some(SimpleLb::Random));
        assert_eq!(
            f.manifests[0]
                .locate("/spec/trafficPolicy/loadBalancer/simple")
                .line,
            8
        );
    }

    #[test]
    fn legacy_problems_are_errors_at_their_line() {
        let cases = [
            (
                "  destination: {name: r}\n  circuitBreaker:\n    simpleCb:\n      maxConnexions: 1\n",
                "unknown-field",
                10,
            ),
            (
                "  destination: {name: r}\n  loadBalancing:\n    name: WEIGHTED\n",
                "invalid-field",
                9,
            ),
            (
                "  destination: {name: r}\n  source:\n    name: productpage\n",
                "legacy-destination-policy",
                8,
            ),
            (
                "  loadBalancing: {name: RANDOM}\n",
                "legacy-destination-policy",
                6,
            ),
        ];
        for (body, code, line) in cases {
            let f = parse(body);
            assert!(f.manifests.is_empty(), "{body}");
            let d = &f.diagnostics[0];
            assert_eq!(
                (d.code, d.line, d.is_error()),
                (code, line, true),
                "{body}: {d}"
            );
        }
    }
}
