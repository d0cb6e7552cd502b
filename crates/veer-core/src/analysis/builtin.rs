//! The built-in Istio metrics, as query templates over the standard Istio metrics: request
//! success rate and p99 latency of the new subset and the request count behind `minRequests`,
//! as the destination's sidecar reports them; and the same two for the whole service as its
//! callers' sidecars report them (where a VirtualService's injected faults show).

use super::template::QueryTemplate;
use crate::manifest::rollout_policy::BuiltinMetric;

/// Label matchers selecting the analysed subset's requests, as the destination reports them.
const SELECTOR: &str = concat!(
    r#"reporter="destination","#,
    r#"destination_workload_namespace="{{ namespace }}","#,
    r#"destination_service_name="{{ service }}","#,
    r#"destination_version="{{ version }}""#
);

/// Label matchers selecting the service's requests as its callers' sidecars report them. Not
/// by version: a request a fault aborted never reached a workload, so Istio reports its
/// destination version (and workload) as `unknown`.
const CALLER_SELECTOR: &str = concat!(
    r#"reporter="source","#,
    r#"destination_service_namespace="{{ namespace }}","#,
    r#"destination_service_name="{{ service }}""#
);

fn success_rate(selector: &str) -> QueryTemplate {
    // 5xx share subtracted from 1, with `or on() vector(0)` so a subset answering only 5xx
    // (no non-5xx series at all) measures 0 % instead of "no data". No traffic gives
    // 0/0 = NaN or an empty result, both read as no data.
    QueryTemplate::new(format!(
        "100 * (1 - ((sum(rate(istio_requests_total{{{selector},response_code=~\"5..\"}}[{{{{ interval }}}}])) or on() vector(0)) / sum(rate(istio_requests_total{{{selector}}}[{{{{ interval }}}}]))))"
    ))
}

fn p99(selector: &str) -> QueryTemplate {
    QueryTemplate::new(format!(
        "histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{{{selector}}}[{{{{ interval }}}}])))"
    ))
}

/// The query of a built-in metric (the policy's [`BuiltinMetric`], one type for both).
pub trait BuiltinQuery {
    fn template(self) -> QueryTemplate;
}

impl BuiltinQuery for BuiltinMetric {
    fn template(self) -> QueryTemplate {
        match self {
            BuiltinMetric::RequestSuccessRate => success_rate(SELECTOR),
            BuiltinMetric::RequestDuration => p99(SELECTOR),
            BuiltinMetric::CallerRequestSuccessRate => success_rate(CALLER_SELECTOR),
            BuiltinMetric::CallerRequestDuration => p99(CALLER_SELECTOR),
        }
    }
}

/// Requests the subset received over the interval, compared with `minRequests`.
pub fn request_count() -> QueryTemplate {
    QueryTemplate::new(format!(
        "sum(increase(istio_requests_total{{{SELECTOR}}}[{{{{ interval }}}}]))"
    ))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::analysis::template::Vars;

    fn vars() -> Vars {
        Vars::new("shop", "reviews", "v2", Duration::from_secs(10))
    }

    #[test]
    fn success_rate_query() {
        assert_eq!(
            BuiltinMetric::RequestSuccessRate
                .template()
                .render(&vars())
                .unwrap(),
            r#"100 * (1 - ((sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="shop",destination_service_name="reviews",destination_version="v2",response_code=~"5.."}[10s])) or on() vector(0)) / sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="shop",destination_service_name="reviews",destination_version="v2"}[10s]))))"#
        );
    }

    #[test]
    fn latency_query() {
        assert_eq!(
            BuiltinMetric::RequestDuration
                .template()
                .render(&vars())
                .unwrap(),
            r#"histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="shop",destination_service_name="reviews",destination_version="v2"}[10s])))"#
        );
    }

    #[test]
    fn caller_side_queries_take_the_whole_service_as_its_callers_report_it() {
        assert_eq!(
            BuiltinMetric::CallerRequestSuccessRate
                .template()
                .render(&vars())
                .unwrap(),
            r#"100 * (1 - ((sum(rate(istio_requests_total{reporter="source",destination_service_namespace="shop",destination_service_name="reviews",response_code=~"5.."}[10s])) or on() vector(0)) / sum(rate(istio_requests_total{reporter="source",destination_service_namespace="shop",destination_service_name="reviews"}[10s]))))"#
        );
        assert_eq!(
            BuiltinMetric::CallerRequestDuration
                .template()
                .render(&vars())
                .unwrap(),
            r#"histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{reporter="source",destination_service_namespace="shop",destination_service_name="reviews"}[10s])))"#
        );
    }

    #[test]
    fn request_count_query() {
        assert_eq!(
            request_count().render(&vars()).unwrap(),
            r#"sum(increase(istio_requests_total{reporter="destination",destination_workload_namespace="shop",destination_service_name="reviews",destination_version="v2"}[10s]))"#
        );
    }

    #[test]
    fn names_round_trip_through_serde() {
        for b in [
            BuiltinMetric::RequestSuccessRate,
            BuiltinMetric::RequestDuration,
            BuiltinMetric::CallerRequestSuccessRate,
            BuiltinMetric::CallerRequestDuration,
        ] {
            let json = serde_json::to_string(&b).unwrap();
            assert_eq!(json, format!("\"{}\"", b.as_str()));
            assert_eq!(serde_json::from_str::<BuiltinMetric>(&json).unwrap(), b);
        }
    }
}
