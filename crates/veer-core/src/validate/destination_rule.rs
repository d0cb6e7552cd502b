//! DestinationRule checks: a valid host, unique subset names, subsets that select something,
//! connection pools with usable limits and outlier detection with sane percentages and
//! durations, wherever a traffic policy appears (top level, per port, per subset).

/// The checks of this module, for the catalog (`validate::catalog`).
pub const CHECKS: &[super::catalog::Check] = &[];

use std::collections::HashMap;

use super::Index;
use super::virtual_service::duration_at_least_1ms;
use crate::diagnostic::Diagnostic;
use crate::hosts;
use crate::manifest::Manifest;
use crate::manifest::istio::DestinationRule;
use crate::manifest::istio::destination_rule::{
    ConnectionPoolSettings, OutlierDetection, TrafficPolicy,
};
use crate::manifest::istio::display_path;

pub fn check(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    for (m, dr) in &index.destination_rules {
        let dr = &dr.spec;
        let first = out.len();
        check_host(m, dr, out);
        check_subset_names(m, dr, out);
        check_subset_labels(m, dr, out);
        check_connection_pools(m, dr, out);
        check_outlier_detection(m, dr, out);
        // A rule converted from a legacy DestinationPolicy is not in the user's files under
        // that name; say what they wrote.
        if let Some(original) = &m.converted_from {
            for d in &mut out[first..] {
                d.object = Some(format!("{} (converted from {original})", m.key));
            }
        }
    }
}

/// The pieces of every traffic policy of a rule, each with the pointer of its policy.
struct PolicyParts<'a> {
    pointer: String,
    connection_pool: Option<&'a ConnectionPoolSettings>,
    outlier_detection: Option<&'a OutlierDetection>,
}

fn policies(dr: &DestinationRule) -> Vec<PolicyParts<'_>> {
    fn add<'a>(out: &mut Vec<PolicyParts<'a>>, pointer: String, policy: &'a TrafficPolicy) {
        for (k, port) in policy.port_level_settings.iter().enumerate() {
            out.push(PolicyParts {
                pointer: format!("{pointer}/portLevelSettings/{k}"),
                connection_pool: port.connection_pool.as_ref(),
                outlier_detection: port.outlier_detection.as_ref(),
            });
        }
        out.push(PolicyParts {
            pointer,
            connection_pool: policy.connection_pool.as_ref(),
            outlier_detection: policy.outlier_detection.as_ref(),
        });
    }
    let mut out = Vec::new();
    if let Some(p) = &dr.traffic_policy {
        add(&mut out, "/spec/trafficPolicy".to_string(), p);
    }
    for (j, subset) in dr.subsets.iter().enumerate() {
        if let Some(p) = &subset.traffic_policy {
            add(&mut out, format!("/spec/subsets/{j}/trafficPolicy"), p);
        }
    }
    out
}

/// `spec.host` is present and a valid name or wildcard.
pub fn check_host(m: &Manifest, dr: &DestinationRule, out: &mut Vec<Diagnostic>) {
    if dr.host.is_empty() {
        out.push(
            m.error("dr-host", "/spec", "spec.host is missing: the rule applies to no service")
                .fix("set `spec.host` to the service, e.g. `reviews` or `reviews.shop.svc.cluster.local`"),
        );
    } else if let Err(why) = hosts::check_host(&dr.host) {
        out.push(
            m.error("dr-host", "/spec/host", format!("spec.host: {why}"))
                .fix(
                    "write a service name (`reviews`), a DNS name or a wildcard (`*.example.com`)",
                ),
        );
    }
}

/// Subset names are unique within the rule.
pub fn check_subset_names(m: &Manifest, dr: &DestinationRule, out: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (j, subset) in dr.subsets.iter().enumerate() {
        let pointer = format!("/spec/subsets/{j}/name");
        match seen.get(subset.name.as_str()) {
            Some(first) => {
                let first_at = m.locate(&format!("/spec/subsets/{first}/name"));
                out.push(
                    m.error(
                        "dr-duplicate-subset",
                        &pointer,
                        format!(
                            "{}: subset `{}` is already defined at line {} (spec.subsets[{first}])",
                            display_path(&pointer),
                            subset.name,
                            first_at.line
                        ),
                    )
                    .fix("give each subset its own name, or merge the two"),
                );
            }
            None => {
                seen.insert(&subset.name, j);
            }
        }
    }
}

/// A subset selects endpoints by labels; without labels it is the whole service, which is
/// never what a subset is written for.
pub fn check_subset_labels(m: &Manifest, dr: &DestinationRule, out: &mut Vec<Diagnostic>) {
    for (j, subset) in dr.subsets.iter().enumerate() {
        if subset.labels.is_empty() {
            let pointer = format!("/spec/subsets/{j}");
            out.push(
                m.error(
                    "dr-subset-labels",
                    &pointer,
                    format!(
                        "{} (`{}`) has no labels, so it selects every endpoint of {}",
                        display_path(&pointer),
                        subset.name,
                        dr.host
                    ),
                )
                .fix(format!(
                    "add the pod labels that pick this subset, e.g. `labels: {{version: {}}}`",
                    subset.name
                )),
            );
        }
    }
}

/// Connection limits are positive (0 means "Istio's default", which is unlimited), and the
/// pool's durations are valid.
pub fn check_connection_pools(m: &Manifest, dr: &DestinationRule, out: &mut Vec<Diagnostic>) {
    for parts in policies(dr) {
        if let Some(pool) = parts.connection_pool {
            let base = format!("{}/connectionPool", parts.pointer);
            check_connection_pool(m, "dr-connection-pool", &base, pool, out);
        }
    }
}

/// Limits and durations of one connection pool at `base` (a JSON pointer). Shared with the
/// Sidecar's inbound pools, which have the same shape; `code` names the kind's check.
pub fn check_connection_pool(
    m: &Manifest,
    code: &'static str,
    base: &str,
    pool: &ConnectionPoolSettings,
    out: &mut Vec<Diagnostic>,
) {
    let mut limits: Vec<(String, i32)> = Vec::new();
    let mut durations: Vec<(String, &str)> = Vec::new();
    if let Some(tcp) = &pool.tcp {
        let tcp_base = format!("{base}/tcp");
        if let Some(v) = tcp.max_connections {
            limits.push((format!("{tcp_base}/maxConnections"), v));
        }
        for (field, value) in [
            ("connectTimeout", &tcp.connect_timeout),
            ("idleTimeout", &tcp.idle_timeout),
            ("maxConnectionDuration", &tcp.max_connection_duration),
        ] {
            if let Some(v) = value {
                durations.push((format!("{tcp_base}/{field}"), v));
            }
        }
        if let Some(ka) = &tcp.tcp_keepalive {
            for (field, value) in [("time", &ka.time), ("interval", &ka.interval)] {
                if let Some(v) = value {
                    durations.push((format!("{tcp_base}/tcpKeepalive/{field}"), v));
                }
            }
        }
    }
    if let Some(http) = &pool.http {
        let http_base = format!("{base}/http");
        for (field, value) in [
            ("http1MaxPendingRequests", http.http1_max_pending_requests),
            ("http2MaxRequests", http.http2_max_requests),
            ("maxRequestsPerConnection", http.max_requests_per_connection),
            ("maxConcurrentStreams", http.max_concurrent_streams),
        ] {
            if let Some(v) = value {
                limits.push((format!("{http_base}/{field}"), v));
            }
        }
        if let Some(v) = http.max_retries
            && v < 0
        {
            // Zero retries is a real setting, so only a negative count is wrong.
            let pointer = format!("{http_base}/maxRetries");
            out.push(
                m.error(
                    code,
                    &pointer,
                    format!("{} is {v}; it cannot be negative", display_path(&pointer)),
                )
                .fix("set `maxRetries` to 0 or more"),
            );
        }
        if let Some(v) = &http.idle_timeout {
            durations.push((format!("{http_base}/idleTimeout"), v));
        }
        if let Some(ka) = &http.http2_keep_alive {
            for (field, value) in [("interval", &ka.interval), ("timeout", &ka.timeout)] {
                if let Some(v) = value {
                    durations.push((format!("{http_base}/http2KeepAlive/{field}"), v));
                }
            }
        }
    }
    for (pointer, v) in limits {
        if v < 0 {
            out.push(
                m.error(
                    code,
                    &pointer,
                    format!(
                        "{} is {v}; a connection pool limit must be positive",
                        display_path(&pointer)
                    ),
                )
                .fix("set a positive limit, or remove the field to use Istio's default"),
            );
        } else if v == 0 {
            out.push(
                m.warning(
                    code,
                    &pointer,
                    format!(
                        "{} is 0, which Istio reads as unset: the default (effectively unlimited) applies, not a limit of zero",
                        display_path(&pointer)
                    ),
                )
                .fix("set a positive limit, or remove the field to make the default explicit"),
            );
        }
    }
    for (pointer, text) in durations {
        if let Err(why) = duration_at_least_1ms(text) {
            out.push(
                m.error(code, &pointer, format!("{}: {why}", display_path(&pointer)))
                    .fix("write a duration of at least 1ms, like 250ms, 10s or 1h"),
            );
        }
    }
}

/// Ejection and health percentages are 0–100, intervals and ejection times valid durations,
/// and error counts not negative.
pub fn check_outlier_detection(m: &Manifest, dr: &DestinationRule, out: &mut Vec<Diagnostic>) {
    for parts in policies(dr) {
        let Some(od) = parts.outlier_detection else {
            continue;
        };
        let base = format!("{}/outlierDetection", parts.pointer);
        for (field, value) in [
            ("maxEjectionPercent", od.max_ejection_percent),
            ("minHealthPercent", od.min_health_percent),
        ] {
            if let Some(v) = value
                && !(0..=100).contains(&v)
            {
                let pointer = format!("{base}/{field}");
                out.push(
                    m.error(
                        "dr-outlier-detection",
                        &pointer,
                        format!(
                            "{} is {v}; a percentage is from 0 to 100",
                            display_path(&pointer)
                        ),
                    )
                    .fix("set a percentage between 0 and 100"),
                );
            }
        }
        if let Some(v) = od.consecutive_errors
            && v < 0
        {
            let pointer = format!("{base}/consecutiveErrors");
            out.push(
                m.error(
                    "dr-outlier-detection",
                    &pointer,
                    format!("{} is {v}; an error count cannot be negative", display_path(&pointer)),
                )
                .fix("set a count of 0 or more (and prefer `consecutive5xxErrors`, which replaces this deprecated field)"),
            );
        }
        for (field, value) in [
            ("interval", &od.interval),
            ("baseEjectionTime", &od.base_ejection_time),
        ] {
            if let Some(text) = value
                && let Err(why) = duration_at_least_1ms(text)
            {
                let pointer = format!("{base}/{field}");
                out.push(
                    m.error(
                        "dr-outlier-detection",
                        &pointer,
                        format!("{}: {why}", display_path(&pointer)),
                    )
                    .fix("write a duration of at least 1ms, like 10s or 30s"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{ReadOptions, parse_file};

    type Check = fn(&Manifest, &DestinationRule, &mut Vec<Diagnostic>);

    const DR: &str = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: reviews\nspec:\n";

    fn run(check: Check, body: &str) -> Vec<Diagnostic> {
        let f = parse_file(
            "t.yaml",
            format!("{DR}{body}").as_bytes(),
            &ReadOptions::default(),
        );
        assert!(
            f.diagnostics.is_empty(),
            "fixture does not read: {:?}",
            f.diagnostics
        );
        let index = Index::new(&f.manifests);
        let mut out = Vec::new();
        for (m, dr) in &index.destination_rules {
            check(m, &dr.spec, &mut out);
        }
        out
    }

    fn table(check: Check, cases: &[(&str, &[(&str, u32)])]) {
        for (body, expected) in cases {
            let got: Vec<_> = run(check, body).iter().map(|d| (d.code, d.line)).collect();
            assert_eq!(&got, expected, "for spec:\n{body}");
        }
    }

    #[test]
    fn host() {
        table(
            check_host,
            &[
                ("  host: reviews\n", &[]),
                ("  host: \"*.example.com\"\n", &[]),
                ("  host: re..views\n", &[("dr-host", 6)]),
                ("  subsets: []\n", &[("dr-host", 5)]),
            ],
        );
    }

    #[test]
    fn subset_names_are_unique() {
        table(
            check_subset_names,
            &[
                (
                    "  host: r\n  subsets:\n  - {name: v1, labels: {v: \"1\"}}\n  - {name: v2, labels: {v: \"2\"}}\n",
                    &[],
                ),
                (
                    "  host: r\n  subsets:\n  - name: v1\n    labels: {v: \"1\"}\n  - name: v1\n    labels: {v: \"2\"}\n",
                    &[("dr-duplicate-subset", 10)],
                ),
            ],
        );
        let d = run(
            check_subset_names,
            "  host: r\n  subsets:\n  - name: v1\n    labels: {v: \"1\"}\n  - name: v1\n    labels: {v: \"2\"}\n",
        );
        assert!(
            d[0].message
                .contains("already defined at line 8 (spec.subsets[0])"),
            "{}",
            d[0]
        );
    }

    #[test]
    fn subsets_need_labels() {
        table(
            check_subset_labels,
            &[
                (
                    "  host: r\n  subsets:\n  - {name: v1, labels: {version: v1}}\n",
                    &[],
                ),
                (
                    "  host: r\n  subsets:\n  - name: v1\n",
                    &[("dr-subset-labels", 8)],
                ),
                (
                    "  host: r\n  subsets:\n  - name: v1\n    labels: {}\n",
                    &[("dr-subset-labels", 8)],
                ),
            ],
        );
    }

    #[test]
    fn connection_pools() {
        table(
            check_connection_pools,
            &[
                (
                    "  host: r\n  trafficPolicy:\n    connectionPool:\n      tcp: {maxConnections: 100, connectTimeout: 30ms}\n      http: {http1MaxPendingRequests: 10, maxRequestsPerConnection: 1, maxRetries: 0}\n",
                    &[],
                ),
                (
                    "  host: r\n  trafficPolicy:\n    connectionPool:\n      tcp:\n        maxConnections: -1\n",
                    &[("dr-connection-pool", 10)],
                ),
                (
                    "  host: r\n  trafficPolicy:\n    connectionPool:\n      http:\n        http2MaxRequests: 0\n        maxRetries: -2\n",
                    &[("dr-connection-pool", 11), ("dr-connection-pool", 10)],
                ),
                // Per-port and per-subset policies are checked too.
                (
                    "  host: r\n  subsets:\n  - name: v1\n    labels: {version: v1}\n    trafficPolicy:\n      portLevelSettings:\n      - port: {number: 80}\n        connectionPool:\n          tcp:\n            connectTimeout: soon\n",
                    &[("dr-connection-pool", 15)],
                ),
            ],
        );
        let d = run(
            check_connection_pools,
            "  host: r\n  trafficPolicy:\n    connectionPool:\n      http:\n        http2MaxRequests: 0\n",
        );
        assert!(
            !d[0].is_error(),
            "zero is Istio's `unset`, so a warning: {}",
            d[0]
        );
    }

    #[test]
    fn outlier_detection() {
        table(
            check_outlier_detection,
            &[
                (
                    "  host: r\n  trafficPolicy:\n    outlierDetection: {consecutive5xxErrors: 7, interval: 5m, baseEjectionTime: 15m, maxEjectionPercent: 100, minHealthPercent: 0}\n",
                    &[],
                ),
                (
                    "  host: r\n  trafficPolicy:\n    outlierDetection:\n      maxEjectionPercent: 101\n      minHealthPercent: -1\n",
                    &[("dr-outlier-detection", 9), ("dr-outlier-detection", 10)],
                ),
                (
                    "  host: r\n  trafficPolicy:\n    outlierDetection:\n      interval: \"10\"\n      baseEjectionTime: 30x\n",
                    &[("dr-outlier-detection", 9), ("dr-outlier-detection", 10)],
                ),
                (
                    "  host: r\n  trafficPolicy:\n    outlierDetection:\n      consecutiveErrors: -3\n",
                    &[("dr-outlier-detection", 9)],
                ),
            ],
        );
    }

    #[test]
    fn findings_on_a_converted_policy_name_the_original() {
        let text = "apiVersion: config.istio.io/v1alpha2\nkind: DestinationPolicy\nmetadata:\n  name: reviews-cb\nspec:\n  destination: {name: reviews}\n  circuitBreaker:\n    simpleCb:\n      httpMaxEjectionPercent: 120\n";
        let f = parse_file("dp.yaml", text.as_bytes(), &ReadOptions::default());
        let index = Index::new(&f.manifests);
        let mut out = Vec::new();
        check(&index, &mut out);
        assert_eq!((out[0].code, out[0].line), ("dr-outlier-detection", 9));
        assert_eq!(
            out[0].object.as_deref(),
            Some(
                "DestinationRule default/reviews-cb (converted from DestinationPolicy default/reviews-cb)"
            )
        );
    }
}
