//! The built-in Istio metrics: request success rate and p99 latency of the new subset, and the
//! request count behind `minRequests`, as query templates over the standard Istio metrics
//! reported by the destination's sidecar.

use serde::{Deserialize, Serialize};

use super::template::QueryTemplate;

/// A metric veer knows how to query without a user-written PromQL. Names follow Flagger's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Builtin {
    /// Percentage (0–100) of the subset's requests that did not answer 5xx.
    RequestSuccessRate,
    /// 99th percentile of the subset's request duration, in milliseconds.
    RequestDuration,
}

/// Label matchers selecting the analysed subset's requests, as the destination reports them.
const SELECTOR: &str = concat!(
    r#"reporter="destination","#,
    r#"destination_workload_namespace="{{ namespace }}","#,
    r#"destination_service_name="{{ service }}","#,
    r#"destination_version="{{ version }}""#
);

impl Builtin {
    pub fn name(self) -> &'static str {
        match self {
            Builtin::RequestSuccessRate => "request-success-rate",
            Builtin::RequestDuration => "request-duration",
        }
    }

    pub fn template(self) -> QueryTemplate {
        match self {
            // 5xx share subtracted from 1, with `or on() vector(0)` so a subset answering only
            // 5xx (no non-5xx series at all) measures 0 % instead of "no data". No traffic
            // gives 0/0 = NaN or an empty result, both read as no data.
            Builtin::RequestSuccessRate => QueryTemplate::new(format!(
                "100 * (1 - ((sum(rate(istio_requests_total{{{SELECTOR},response_code=~\"5..\"}}[{{{{ interval }}}}])) or on() vector(0)) / sum(rate(istio_requests_total{{{SELECTOR}}}[{{{{ interval }}}}]))))"
            )),
            Builtin::RequestDuration => QueryTemplate::new(format!(
                "histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{{{SELECTOR}}}[{{{{ interval }}}}])))"
            )),
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
            Builtin::RequestSuccessRate
                .template()
                .render(&vars())
                .unwrap(),
            r#"100 * (1 - ((sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="shop",destination_service_name="reviews",destination_version="v2",response_code=~"5.."}[10s])) or on() vector(0)) / sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="shop",destination_service_name="reviews",destination_version="v2"}[10s]))))"#
        );
    }

    #[test]
    fn latency_query() {
        assert_eq!(
            Builtin::RequestDuration.template().render(&vars()).unwrap(),
            r#"histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="shop",destination_service_name="reviews",destination_version="v2"}[10s])))"#
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
        for b in [Builtin::RequestSuccessRate, Builtin::RequestDuration] {
            let json = serde_json::to_string(&b).unwrap();
            assert_eq!(json, format!("\"{}\"", b.name()));
            assert_eq!(serde_json::from_str::<Builtin>(&json).unwrap(), b);
        }
    }
}
