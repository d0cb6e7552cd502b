//! DestinationRule checks: a valid host, subset names Istio accepts and unique, subsets that
//! select something, connection pools with usable limits and outlier detection with sane
//! percentages and durations, wherever a traffic policy appears (top level, per port, per
//! subset). Load balancer settings (warmup, consistent hash) are in [`load_balancer`]; the
//! deprecated fields istioctl reports are `validate::analyze`'s.
//!
//! Each check is an error only where Istio refuses the rule (its CRD schema and CEL rules, or
//! its webhook's `ValidateDestinationRule`); what Istio accepts is at most a warning.

mod load_balancer;

use std::collections::HashMap;

use super::Index;
use super::catalog::Check;
use super::k8s_names::name_problem;
use super::virtual_service::duration_at_least_1ms;
use crate::diagnostic::Diagnostic;
use crate::hosts;
use crate::manifest::Manifest;
use crate::manifest::istio::DestinationRule;
use crate::manifest::istio::destination_rule::{
    ConnectionPoolSettings, LoadBalancerSettings, OutlierDetection, TrafficPolicy,
};
use crate::manifest::istio::display_path;
use crate::manifest::kinds::NameRule;

pub use load_balancer::check_load_balancers;

const KIND: &str = "DestinationRule";

/// The checks of this module, for the catalog (`validate::catalog`).
pub const CHECKS: &[Check] = &[
    Check::error(
        "dr-host",
        KIND,
        "CRD: spec.host is required; webhook ValidateDestinationRule: agent.ValidateWildcardDomain(host)",
    ),
    Check::error(
        "dr-duplicate-subset",
        KIND,
        "webhook ValidateDestinationRule: \"duplicate subset names\"",
    ),
    Check::error(
        "dr-subset-name",
        KIND,
        "webhook validateSubsetName: a subset name is a DNS-1123 label (labels.IsDNS1123Label)",
    ),
    Check::warning(
        "dr-subset-labels",
        KIND,
        "none: Istio accepts a subset without labels (egress gateway tasks use one to carry a traffic policy); veer warns that it selects every endpoint",
    ),
    Check::error(
        "dr-connection-pool",
        KIND,
        "webhook validateConnectionPool: limits and maxRetries not negative; CRD CEL duration(self) >= duration('1ms'); a limit of 0 (Istio's `unset`) is a warning",
    ),
    Check::error(
        "dr-outlier-detection",
        KIND,
        "webhook validateOutlierDetection: ValidatePercent(maxEjectionPercent, minHealthPercent), consecutiveLocalOriginFailures needs splitExternalLocalOriginErrors; CRD CEL interval and baseEjectionTime >= 1ms",
    ),
    Check::error(
        "dr-warmup",
        KIND,
        "CRD: loadBalancer.warmup.minimumPercent 0-100, warmup.aggression minimum 0, CEL warmup.duration and warmupDurationSecs >= 1ms; webhook validateWarmup (Istio 1.29+): aggression > 0",
    ),
    Check::error(
        "dr-load-balancer",
        KIND,
        "webhook validateLoadBalancer: only one of consistentHash.minimumRingSize or ringHash/maglev; maglev tableSize set, prime and below 5000011",
    ),
    Check::warning(
        "dr-deprecated-warmup-duration-secs",
        KIND,
        "CRD description of loadBalancer.warmupDurationSecs: `Deprecated: use warmup instead` (istioctl does not report it)",
    ),
];

pub fn check(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    for (m, dr) in &index.destination_rules {
        let dr = &dr.spec;
        let first = out.len();
        check_host(m, dr, out);
        check_subset_names(m, dr, out);
        check_subset_labels(m, dr, out);
        check_connection_pools(m, dr, out);
        check_outlier_detection(m, dr, out);
        check_load_balancers(m, dr, out);
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
    load_balancer: Option<&'a LoadBalancerSettings>,
}

fn policies(dr: &DestinationRule) -> Vec<PolicyParts<'_>> {
    fn add<'a>(out: &mut Vec<PolicyParts<'a>>, pointer: String, policy: &'a TrafficPolicy) {
        for (k, port) in policy.port_level_settings.iter().enumerate() {
            out.push(PolicyParts {
                pointer: format!("{pointer}/portLevelSettings/{k}"),
                connection_pool: port.connection_pool.as_deref(),
                outlier_detection: port.outlier_detection.as_deref(),
                load_balancer: port.load_balancer.as_deref(),
            });
        }
        out.push(PolicyParts {
            pointer,
            connection_pool: policy.connection_pool.as_deref(),
            outlier_detection: policy.outlier_detection.as_deref(),
            load_balancer: policy.load_balancer.as_deref(),
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

/// Subset names are DNS-1123 labels (Istio refuses others) and unique within the rule.
pub fn check_subset_names(m: &Manifest, dr: &DestinationRule, out: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (j, subset) in dr.subsets.iter().enumerate() {
        let pointer = format!("/spec/subsets/{j}/name");
        if let Some(why) = name_problem(&subset.name, NameRule::Label) {
            out.push(
                m.error(
                    "dr-subset-name",
                    &pointer,
                    format!(
                        "{}: `{}` {why}; Istio takes subset names that are DNS-1123 labels (lowercase letters, digits and `-`, at most 63)",
                        display_path(&pointer),
                        subset.name
                    ),
                )
                .fix("rename the subset, e.g. `v1` or `canary`, and the VirtualService routes that name it"),
            );
        }
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

/// A subset selects endpoints by labels; without labels it is the whole service. Istio
/// accepts that (an egress gateway's rule uses a label-less subset to carry a traffic
/// policy), so it is only a warning: a version subset without labels is a mistake.
pub fn check_subset_labels(m: &Manifest, dr: &DestinationRule, out: &mut Vec<Diagnostic>) {
    for (j, subset) in dr.subsets.iter().enumerate() {
        if subset.labels.is_empty() {
            let pointer = format!("/spec/subsets/{j}");
            out.push(
                m.warning(
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
                    "add the pod labels that pick this subset, e.g. `labels: {{version: {}}}`; leave it as is when the subset is meant to cover every endpoint (an egress gateway's, say)",
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
/// and local-origin failures are only counted apart when they are split from the others.
/// (The deprecated `consecutiveErrors` is only a warning, in `validate::analyze`.)
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
        if od.consecutive_local_origin_failures.is_some_and(|n| n > 0)
            && od.split_external_local_origin_errors != Some(true)
        {
            let pointer = format!("{base}/consecutiveLocalOriginFailures");
            out.push(
                m.error(
                    "dr-outlier-detection",
                    &pointer,
                    format!(
                        "{} is set, but splitExternalLocalOriginErrors is not true, so local-origin failures are not counted apart",
                        display_path(&pointer)
                    ),
                )
                .fix("add `splitExternalLocalOriginErrors: true`, or remove consecutiveLocalOriginFailures"),
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
mod tests;
