//! Analysis: asking Prometheus how the new version is doing and judging the answer.
//!
//! - [`template`]: PromQL templates with `{{ namespace }}`-style variables (pure).
//! - [`builtin`]: the built-in Istio success-rate, p99-latency and request-count queries.
//! - [`prometheus`]: the [`MetricsProvider`] trait and its Prometheus HTTP API adapter.
//! - [`verdict`]: outcomes, threshold ranges, [`judge`] and the recorded [`Check`] (pure).
//! - [`baseline`]: Mann-Whitney U comparison with the old version (pure).
//! - [`judgement`]: the three-way class (pass, fail, inconclusive) of those verdicts.
//! - [`batch`]: many rollouts' instant queries as few queries (deduplicated, built-ins
//!   grouped), each rollout's answer picked out again.
//!
//! [`analyse`] ties them together for one analysis interval: each metric's instant query
//! judged against its threshold, then, for a metric compared with the old version, both
//! versions' samples over the comparison window (range queries) and [`verdict::combine`].
//! [`judge_measured`] is its second half, for instant answers measured beforehand (a batch).

pub mod baseline;
pub mod batch;
pub mod builtin;
pub mod judgement;
pub mod prometheus;
pub mod template;
pub mod verdict;

use serde::{Deserialize, Serialize};

pub use crate::manifest::rollout_policy::{BuiltinMetric, Direction};
pub use baseline::{BaselineComparison, BaselineVerdict, compare_to_baseline};
pub use builtin::{Builtin, BuiltinQuery};
pub use judgement::Judgement;
pub use prometheus::{
    LabelledSample, MetricsProvider, PrometheusAuth, PrometheusConfig, SampleRange, SeriesOutcome,
};
pub use template::{QueryTemplate, TemplateError, Vars};
pub use verdict::{
    AnalysisVerdict, Check, MetricsErrorKind, QueryOutcome, RangeOutcome, ThresholdRange, combine,
    judge,
};

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
    Builtin(BuiltinMetric),
    Query(QueryTemplate),
}

impl MetricQuery {
    pub fn template(&self) -> &QueryTemplate {
        match self {
            MetricQuery::Builtin(b) => b.template(),
            MetricQuery::Query(t) => t,
        }
    }

    /// The built-in query it is, if one (only those can be grouped).
    pub fn builtin(&self) -> Option<Builtin> {
        match self {
            MetricQuery::Builtin(b) => Some(Builtin::Metric(*b)),
            MetricQuery::Query(_) => None,
        }
    }
}

impl Metric {
    /// Its instant query over `vars`.
    pub fn instant(&self, vars: &Vars) -> batch::Instant {
        batch::Instant::new(self.query.template(), self.query.builtin(), vars)
    }
}

/// The request count's instant query over `vars` (`minRequests`).
pub fn request_count(vars: &Vars) -> batch::Instant {
    batch::Instant::new(builtin::request_count(), Some(Builtin::RequestCount), vars)
}

/// One metric of a policy, as analysis needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: String,
    pub query: MetricQuery,
    pub threshold: ThresholdRange,
    /// Compare with the old version too (the policy's `baseline`).
    pub baseline: Option<Comparison>,
}

/// How a metric is compared with the old version.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Significance level of the Mann-Whitney U test.
    pub alpha: f64,
    /// How much worse (a fraction of the old median) still passes a significant difference.
    pub allowance: f64,
    /// Where both versions are sampled.
    pub range: SampleRange,
    /// The old version's template variables and the direction that is worse, or why the
    /// comparison cannot run (recorded as inconclusive).
    pub against: Result<(Vars, Direction), String>,
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
        Some(ask(provider, &request_count(vars)).await)
    } else {
        None
    };
    let mut checks = Vec::with_capacity(metrics.len());
    for metric in metrics {
        let instant = metric.instant(vars);
        let outcome = ask(provider, &instant).await;
        checks.push(
            judge_measured(
                provider,
                metric,
                instant.text(),
                outcome,
                count.as_ref(),
                min_requests,
            )
            .await,
        );
    }
    checks
}

/// One metric's [`Check`] from its instant answers, measured beforehand (by [`analyse`], or
/// picked out of a batch): `query` is the rollout's own query (recorded, and sampled for the
/// comparison), `outcome` its answer, `count` the request count's. Judged against the
/// threshold, then, when it passes, compared with the old version (range queries).
pub async fn judge_measured(
    provider: &dyn MetricsProvider,
    metric: &Metric,
    query: &str,
    outcome: QueryOutcome,
    count: Option<&QueryOutcome>,
    min_requests: u64,
) -> Check {
    let mut check = Check {
        metric: metric.name.clone(),
        value: outcome.value(),
        threshold: metric.threshold,
        requests: count.map(|c| c.value().unwrap_or(0.0)),
        verdict: judge(&outcome, &metric.threshold, count, min_requests),
        baseline: None,
        query: query.to_string(),
    };
    // Only a pass can change: a fail stays a fail, and without a measurement there is
    // nothing to compare (and no need to load Prometheus with range queries).
    if let (AnalysisVerdict::Pass, Some(comparison)) = (&check.verdict, &metric.baseline) {
        let template = metric.query.template();
        match compare(provider, template, &check.query, comparison).await {
            Ok(c) => {
                check.verdict = combine(check.verdict, &c);
                check.baseline = Some(c);
            }
            Err(cannot_measure) => check.verdict = cannot_measure,
        }
    }
    check
}

/// Samples both versions over the comparison window and compares them. A range query that
/// fails is "cannot measure" (the verdict to record); no data is an empty sample set.
async fn compare(
    provider: &dyn MetricsProvider,
    template: &QueryTemplate,
    canary_query: &str,
    comparison: &Comparison,
) -> Result<BaselineComparison, AnalysisVerdict> {
    let (vars, worse) = match &comparison.against {
        Ok(against) => against,
        Err(reason) => {
            return Ok(BaselineComparison::inconclusive(
                comparison.alpha,
                reason.clone(),
            ));
        }
    };
    if comparison.range.is_empty() {
        return Ok(BaselineComparison::inconclusive(
            comparison.alpha,
            "no sample lies wholly inside the current step yet; wait one metric interval",
        ));
    }
    let baseline_query = template
        .render(vars)
        .map_err(|e| AnalysisVerdict::MetricsError {
            kind: MetricsErrorKind::QueryError,
            reason: format!("cannot render the baseline query: {e}"),
        })?;
    let canary = provider.query_range(canary_query, &comparison.range).await;
    let canary = verdict::range_samples(canary, "new version's range")?;
    let old = provider
        .query_range(&baseline_query, &comparison.range)
        .await;
    let old = verdict::range_samples(old, "baseline range")?;
    Ok(baseline::compare(
        &canary,
        &old,
        *worse,
        comparison.alpha,
        comparison.allowance,
        &baseline_query,
    ))
}

/// Runs one instant query; a template that does not render is a query error, never sent.
async fn ask(provider: &dyn MetricsProvider, instant: &batch::Instant) -> QueryOutcome {
    match &instant.query {
        Ok(query) => provider.query(query).await,
        Err(n) => QueryOutcome::QueryError(n.reason.clone()),
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
        ranges: Vec<(&'static str, RangeOutcome)>,
        asked: Mutex<Vec<String>>,
    }

    impl Scripted {
        fn new(answers: Vec<(&'static str, QueryOutcome)>) -> Self {
            Scripted {
                answers,
                ranges: Vec::new(),
                asked: Mutex::new(Vec::new()),
            }
        }
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

        fn query_range<'a>(
            &'a self,
            promql: &'a str,
            _range: &'a SampleRange,
        ) -> BoxFuture<'a, RangeOutcome> {
            self.asked.lock().unwrap().push(format!("range {promql}"));
            let outcome = self
                .ranges
                .iter()
                .find(|(fragment, _)| promql.contains(fragment))
                .map(|(_, o)| o.clone())
                .unwrap_or(RangeOutcome::NoData);
            Box::pin(async move { outcome })
        }
    }

    fn metrics() -> Vec<Metric> {
        vec![
            Metric {
                name: "request-success-rate".into(),
                query: MetricQuery::Builtin(BuiltinMetric::RequestSuccessRate),
                threshold: ThresholdRange::new(Some(99.0), None).unwrap(),
                baseline: None,
            },
            Metric {
                name: "p99".into(),
                query: MetricQuery::Builtin(BuiltinMetric::RequestDuration),
                threshold: ThresholdRange::new(None, Some(500.0)).unwrap(),
                baseline: None,
            },
            Metric {
                name: "typo".into(),
                query: MetricQuery::Query(QueryTemplate::new("up{job=\"{{ nmespace }}\"}")),
                threshold: ThresholdRange::default(),
                baseline: None,
            },
        ]
    }

    #[test]
    fn analyse_records_every_check() {
        // No runtime needed: the scripted provider answers at once.
        futures::executor::block_on(async {
            let provider = Scripted::new(vec![
                ("increase(", QueryOutcome::Value(120.0)),
                ("histogram_quantile", QueryOutcome::Value(995.0)),
                ("5..", QueryOutcome::Value(99.9)),
            ]);
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
        });
    }

    #[test]
    fn without_min_requests_the_count_is_not_asked() {
        // No runtime needed: the scripted provider answers at once.
        futures::executor::block_on(async {
            let provider = Scripted::new(vec![]);
            let vars = Vars::new("shop", "reviews", "v2", Duration::from_secs(10));
            let checks = analyse(&provider, &metrics()[..1], &vars, 0).await;
            assert_eq!(checks[0].verdict, AnalysisVerdict::NoData);
            assert_eq!(checks[0].requests, None);
            assert_eq!(provider.asked.lock().unwrap().len(), 1);
        });
    }

    /// Name, the instant p99, the comparison's source, v2's samples, v1's samples, verdict,
    /// whether the check records a comparison, range queries sent.
    type ComparisonCase = (
        &'static str,
        QueryOutcome,
        Result<(Vars, Direction), String>,
        RangeOutcome,
        RangeOutcome,
        &'static str,
        bool,
        usize,
    );

    /// A p99 metric (`<= 500`) compared with v1 over six samples each.
    fn compared_p99(against: Result<(Vars, Direction), String>) -> Metric {
        let t0 = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
        Metric {
            name: "p99".into(),
            query: MetricQuery::Builtin(BuiltinMetric::RequestDuration),
            threshold: ThresholdRange::new(None, Some(500.0)).unwrap(),
            baseline: Some(Comparison {
                alpha: 0.05,
                allowance: 0.0,
                range: SampleRange {
                    start: t0,
                    end: t0 + chrono::TimeDelta::seconds(5),
                    step: Duration::from_secs(1),
                },
                against,
            }),
        }
    }

    #[test]
    fn comparison_with_the_baseline_table() {
        // No runtime needed: the scripted provider answers at once.
        futures::executor::block_on(async {
            use RangeOutcome as R;
            let v1 = Vars::new("shop", "reviews", "v1", Duration::from_secs(4));
            let old = || Ok((v1.clone(), Direction::Increase));
            let slow = R::Series(vec![248.5; 6]);
            let fast = R::Series(vec![24.85; 6]);
            let few = R::Series(vec![248.5]);
            let down = R::Unreachable("connection refused".into());
            #[rustfmt::skip]
            let cases: Vec<ComparisonCase> = vec![
                ("slower than the baseline fails inside the range", QueryOutcome::Value(248.5), old(), slow.clone(), fast.clone(), "worse-than-baseline", true, 2),
                ("equal to the baseline (all ties) passes", QueryOutcome::Value(24.85), old(), fast.clone(), fast.clone(), "pass", true, 2),
                ("faster than the baseline passes", QueryOutcome::Value(24.85), old(), fast.clone(), slow.clone(), "pass", true, 2),
                ("too few samples is inconclusive", QueryOutcome::Value(248.5), old(), few, fast.clone(), "inconclusive", true, 2),
                ("no baseline data is inconclusive", QueryOutcome::Value(248.5), old(), slow.clone(), R::NoData, "inconclusive", true, 2),
                ("no old version is inconclusive without a query", QueryOutcome::Value(248.5), Err("no old version".into()), slow.clone(), fast.clone(), "inconclusive", true, 0),
                ("a threshold fail stays a fail, not compared", QueryOutcome::Value(995.0), old(), fast.clone(), slow.clone(), "fail", false, 0),
                ("no data is not compared", QueryOutcome::NoData, old(), slow.clone(), fast.clone(), "no-data", false, 0),
                ("the new version's range unreachable cannot measure", QueryOutcome::Value(248.5), old(), down.clone(), fast.clone(), "metrics-error", false, 1),
                ("the baseline's range unreachable cannot measure", QueryOutcome::Value(248.5), old(), slow.clone(), down, "metrics-error", false, 2),
                ("several baseline series cannot measure", QueryOutcome::Value(248.5), old(), slow, R::SeveralSeries(2), "metrics-error", false, 2),
            ];
            for (name, instant, against, v2_samples, v1_samples, want, recorded, ranges) in cases {
                let provider = Scripted {
                    answers: vec![("histogram_quantile", instant)],
                    ranges: vec![
                        ("destination_version=\"v2\"", v2_samples),
                        ("destination_version=\"v1\"", v1_samples),
                    ],
                    asked: Mutex::new(Vec::new()),
                };
                let vars = Vars::new("shop", "reviews", "v2", Duration::from_secs(4));
                let checks = analyse(&provider, &[compared_p99(against)], &vars, 0).await;
                let check = &checks[0];
                assert_eq!(check.verdict.metric_label(), want, "{name}: {check:?}");
                assert_eq!(check.baseline.is_some(), recorded, "{name}: {check:?}");
                let asked = provider.asked.lock().unwrap().clone();
                let sent = asked.iter().filter(|q| q.starts_with("range ")).count();
                assert_eq!(sent, ranges, "{name}: {asked:#?}");
            }
        });
    }

    #[test]
    fn a_failed_comparison_records_both_queries_and_the_figures() {
        // No runtime needed: the scripted provider answers at once.
        futures::executor::block_on(async {
            let v1 = Vars::new("shop", "reviews", "v1", Duration::from_secs(4));
            let provider = Scripted {
                answers: vec![("histogram_quantile", QueryOutcome::Value(248.5))],
                ranges: vec![
                    (
                        "\"v2\"",
                        RangeOutcome::Series(vec![f64::NAN, 248.5, 248.5, 248.5, 248.5]),
                    ),
                    ("\"v1\"", RangeOutcome::Series(vec![24.85; 6])),
                ],
                asked: Mutex::new(Vec::new()),
            };
            let vars = Vars::new("shop", "reviews", "v2", Duration::from_secs(4));
            let metric = compared_p99(Ok((v1, Direction::Increase)));
            let check = analyse(&provider, &[metric], &vars, 0).await.remove(0);
            assert_eq!(check.value, Some(248.5));
            let b = check.baseline.expect("a comparison");
            assert!(
                b.query.contains("destination_version=\"v1\""),
                "{}",
                b.query
            );
            assert_eq!((b.canary_samples, b.baseline_samples), (4, 6));
            assert_eq!(
                (b.canary_median, b.baseline_median),
                (Some(248.5), Some(24.85))
            );
            let p = b.verdict.p_value().expect("a p-value");
            assert_eq!(
                check.verdict,
                AnalysisVerdict::WorseThanBaseline {
                    p_value: p,
                    alpha: 0.05
                }
            );
            assert!(p < 0.05, "{p}");
            // The new version's range query is its instant query, sampled.
            let asked = provider.asked.lock().unwrap().clone();
            assert_eq!(asked[1], format!("range {}", check.query));
        });
    }
}
