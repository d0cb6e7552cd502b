//! Analysis: asking Prometheus how the new version is doing and judging the answer.
//!
//! - [`template`]: PromQL templates with `{{ namespace }}`-style variables (pure).
//! - [`builtin`]: the built-in Istio success-rate, p99-latency and request-count queries.
//! - [`prometheus`]: the [`MetricsProvider`] trait and its Prometheus HTTP API adapter.
//! - [`verdict`]: outcomes, threshold ranges, [`judge`] and the recorded [`Check`] (pure).
//! - [`baseline`]: Mann-Whitney U comparison with the old version (pure).
//!
//! [`analyse`] ties them together for one analysis interval.

pub mod baseline;
pub mod builtin;
pub mod prometheus;
pub mod template;
pub mod verdict;

use serde::{Deserialize, Serialize};

pub use baseline::{BaselineVerdict, WorseWhen, compare_to_baseline};
pub use builtin::Builtin;
pub use prometheus::{MetricsProvider, Prometheus, PrometheusAuth, PrometheusConfig};
pub use template::{QueryTemplate, TemplateError, Vars};
pub use verdict::{AnalysisVerdict, Check, MetricsErrorKind, QueryOutcome, ThresholdRange, judge};

/// Errors setting analysis up. Measuring never errors: it yields a [`QueryOutcome`].
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("Prometheus URL `{url}` is not usable: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("the Prometheus query timeout must be above zero")]
    InvalidTimeout,
    #[error(
        "cannot read the Prometheus credentials from {source_name}: {reason}; check the analysis `auth` settings"
    )]
    Secret { source_name: String, reason: String },
    #[error("cannot build the HTTP client for Prometheus: {message}")]
    Client { message: String },
}

impl AnalysisError {
    pub fn metric_label(&self) -> &'static str {
        match self {
            AnalysisError::InvalidUrl { .. } => "invalid-url",
            AnalysisError::InvalidTimeout => "invalid-timeout",
            AnalysisError::Secret { .. } => "secret",
            AnalysisError::Client { .. } => "client",
        }
    }
}

/// Where a metric's query comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MetricQuery {
    Builtin(Builtin),
    Query(QueryTemplate),
}

impl MetricQuery {
    pub fn template(&self) -> QueryTemplate {
        match self {
            MetricQuery::Builtin(b) => b.template(),
            MetricQuery::Query(t) => t.clone(),
        }
    }
}

/// One metric of a policy, as analysis needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: String,
    pub query: MetricQuery,
    pub threshold: ThresholdRange,
}

/// Runs one analysis interval: the request count (when `min_requests > 0`), then every metric,
/// each judged into a [`Check`]. Queries run one after another to keep Prometheus' load flat.
pub async fn analyse(
    provider: &dyn MetricsProvider,
    metrics: &[Metric],
    vars: &Vars,
    min_requests: u64,
) -> Vec<Check> {
    let count = if min_requests > 0 {
        Some(run(provider, &builtin::request_count(), vars).await.1)
    } else {
        None
    };
    let mut checks = Vec::with_capacity(metrics.len());
    for metric in metrics {
        let (query, outcome) = run(provider, &metric.query.template(), vars).await;
        checks.push(Check {
            metric: metric.name.clone(),
            query,
            value: outcome.value(),
            threshold: metric.threshold,
            requests: count.as_ref().map(|c| c.value().unwrap_or(0.0)),
            verdict: judge(&outcome, &metric.threshold, count.as_ref(), min_requests),
        });
    }
    checks
}

/// Renders and runs one query; a template that does not render is a query error.
async fn run(
    provider: &dyn MetricsProvider,
    template: &QueryTemplate,
    vars: &Vars,
) -> (String, QueryOutcome) {
    match template.render(vars) {
        Ok(query) => {
            let outcome = provider.query(&query).await;
            (query, outcome)
        }
        Err(e) => (
            template.as_str().to_string(),
            QueryOutcome::QueryError(e.to_string()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Duration;

    use futures::future::BoxFuture;

    use super::*;

    /// Answers by the first registered fragment the query contains, and records the queries.
    struct Scripted {
        answers: Vec<(&'static str, QueryOutcome)>,
        asked: Mutex<Vec<String>>,
    }

    impl MetricsProvider for Scripted {
        fn query<'a>(&'a self, promql: &'a str) -> BoxFuture<'a, QueryOutcome> {
            self.asked.lock().unwrap().push(promql.to_string());
            let outcome = self
                .answers
                .iter()
                .find(|(fragment, _)| promql.contains(fragment))
                .map(|(_, o)| o.clone())
                .unwrap_or(QueryOutcome::NoData);
            Box::pin(async move { outcome })
        }
    }

    fn metrics() -> Vec<Metric> {
        vec![
            Metric {
                name: "request-success-rate".into(),
                query: MetricQuery::Builtin(Builtin::RequestSuccessRate),
                threshold: ThresholdRange::new(Some(99.0), None).unwrap(),
            },
            Metric {
                name: "p99".into(),
                query: MetricQuery::Builtin(Builtin::RequestDuration),
                threshold: ThresholdRange::new(None, Some(500.0)).unwrap(),
            },
            Metric {
                name: "typo".into(),
                query: MetricQuery::Query(QueryTemplate::new("up{job=\"{{ nmespace }}\"}")),
                threshold: ThresholdRange::default(),
            },
        ]
    }

    #[tokio::test]
    async fn analyse_records_every_check() {
        let provider = Scripted {
            answers: vec![
                ("increase(", QueryOutcome::Value(120.0)),
                ("histogram_quantile", QueryOutcome::Value(995.0)),
                ("5..", QueryOutcome::Value(99.9)),
            ],
            asked: Mutex::new(Vec::new()),
        };
        let vars = Vars::new("shop", "reviews", "v2", Duration::from_secs(10));
        let checks = analyse(&provider, &metrics(), &vars, 100).await;
        let by_name: HashMap<_, _> = checks.iter().map(|c| (c.metric.as_str(), c)).collect();
        assert_eq!(
            by_name["request-success-rate"].verdict,
            AnalysisVerdict::Pass
        );
        assert_eq!(by_name["request-success-rate"].requests, Some(120.0));
        assert_eq!(by_name["p99"].value, Some(995.0));
        assert_eq!(by_name["p99"].verdict.metric_label(), "fail");
        assert!(by_name["p99"].query.contains("destination_version=\"v2\""));
        assert!(matches!(
            &by_name["typo"].verdict,
            AnalysisVerdict::MetricsError { kind: MetricsErrorKind::QueryError, reason } if reason.contains("nmespace")
        ));
        // The request count once, then two rendered metrics; the broken template is not sent.
        assert_eq!(provider.asked.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn without_min_requests_the_count_is_not_asked() {
        let provider = Scripted {
            answers: vec![],
            asked: Mutex::new(Vec::new()),
        };
        let vars = Vars::new("shop", "reviews", "v2", Duration::from_secs(10));
        let checks = analyse(&provider, &metrics()[..1], &vars, 0).await;
        assert_eq!(checks[0].verdict, AnalysisVerdict::NoData);
        assert_eq!(checks[0].requests, None);
        assert_eq!(provider.asked.lock().unwrap().len(), 1);
    }
}
