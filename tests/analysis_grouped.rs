//! Grouped analysis queries against a real Prometheus scraping the synthetic Istio exporter:
//! several rollouts judged from one query for all the built-in metrics of a window
//! (`analysis::batch`) get exactly the values, and so the verdicts, their own queries give.
//!
//! Both ways are evaluated at one pinned time (Prometheus' `time`), a few seconds back so
//! every scrape up to it is stored: the two then read the same samples.

#[path = "support/prometheus.rs"]
mod prometheus_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use prometheus_support::PrometheusServer;
use veer::analysis::batch::{self, Query};
use veer::analysis::{
    AnalysisVerdict, BuiltinMetric, Check, Metric, MetricQuery, MetricsProvider, Prometheus,
    PrometheusConfig, QueryOutcome, QueryTemplate, RangeOutcome, SampleRange, SeriesOutcome,
    ThresholdRange, Vars, analyse, judge_measured, request_count,
};
use veer::exporter::{Behaviour, Exporter, ExporterConfig, ServiceKey, Split};

const NS: &str = "shop";
const WINDOW: Duration = Duration::from_secs(10);
const DEADLINE: Duration = Duration::from_secs(60);
const MIN_REQUESTS: u64 = 20;

fn metric(name: &str, builtin: BuiltinMetric, min: Option<f64>, max: Option<f64>) -> Metric {
    Metric {
        name: name.into(),
        query: MetricQuery::Builtin(builtin),
        threshold: ThresholdRange::new(min, max).unwrap(),
        baseline: None,
    }
}

/// Every built-in metric, and one custom template (sent per rollout).
fn metrics() -> Vec<Metric> {
    vec![
        metric(
            "success-rate",
            BuiltinMetric::RequestSuccessRate,
            Some(99.0),
            None,
        ),
        metric("p99", BuiltinMetric::RequestDuration, None, Some(500.0)),
        metric(
            "caller-success-rate",
            BuiltinMetric::CallerRequestSuccessRate,
            Some(99.0),
            None,
        ),
        metric(
            "caller-p99",
            BuiltinMetric::CallerRequestDuration,
            None,
            Some(500.0),
        ),
        Metric {
            name: "custom".into(),
            query: MetricQuery::Query(QueryTemplate::new(
                r#"sum(rate(istio_requests_total{destination_service_name="{{ service }}",destination_version="{{ version }}"}[{{ interval }}]))"#,
            )),
            threshold: ThresholdRange::new(Some(0.0), None).unwrap(),
            baseline: None,
        },
    ]
}

/// A provider that counts what it sends.
struct Counting<'a> {
    inner: &'a Prometheus,
    singles: AtomicUsize,
    grouped: AtomicUsize,
}

impl MetricsProvider for Counting<'_> {
    fn query<'a>(&'a self, promql: &'a str) -> BoxFuture<'a, QueryOutcome> {
        self.singles.fetch_add(1, Ordering::Relaxed);
        self.inner.query(promql)
    }

    fn query_range<'a>(
        &'a self,
        promql: &'a str,
        range: &'a SampleRange,
    ) -> BoxFuture<'a, RangeOutcome> {
        self.inner.query_range(promql, range)
    }

    fn answers_series(&self) -> bool {
        true
    }

    fn query_series<'a>(&'a self, promql: &'a str) -> BoxFuture<'a, SeriesOutcome> {
        self.grouped.fetch_add(1, Ordering::Relaxed);
        self.inner.query_series(promql)
    }
}

/// The rollouts: a service and the new version's subset, how it behaves, and what its own
/// success-rate and p99 checks say.
struct Rollout {
    service: &'static str,
    subset: &'static str,
    split: &'static [(&'static str, u32)],
    behaviour: Behaviour,
}

fn rollouts() -> Vec<Rollout> {
    let ok = Behaviour {
        error_rate: 0.0,
        latency_ms: 20.0,
    };
    vec![
        // Healthy: no 5xx series at all (the success rate's zero branch).
        Rollout {
            service: "reviews",
            subset: "v2",
            split: &[("v1", 50), ("v2", 50)],
            behaviour: ok,
        },
        // 30 % errors: fails the success rate.
        Rollout {
            service: "ratings",
            subset: "v2",
            split: &[("v1", 50), ("v2", 50)],
            behaviour: Behaviour {
                error_rate: 0.3,
                latency_ms: 20.0,
            },
        },
        // 800 ms: fails p99.
        Rollout {
            service: "details",
            subset: "v2",
            split: &[("v1", 50), ("v2", 50)],
            behaviour: Behaviour {
                error_rate: 0.0,
                latency_ms: 800.0,
            },
        },
        // Only errors: 0 %, not no data.
        Rollout {
            service: "broken",
            subset: "v2",
            split: &[("v2", 100)],
            behaviour: Behaviour {
                error_rate: 1.0,
                latency_ms: 5.0,
            },
        },
        // No traffic to the new version: no series, no data (too few requests).
        Rollout {
            service: "cart",
            subset: "v2",
            split: &[("v1", 100)],
            behaviour: ok,
        },
        // A subset name with a dot (a regex metacharacter, escaped in the grouped query).
        Rollout {
            service: "search",
            subset: "v2.1",
            split: &[("v1", 50), ("v2.1", 50)],
            behaviour: ok,
        },
    ]
}

fn vars(r: &Rollout) -> Vars {
    Vars::new(NS, r.service, r.subset, WINDOW)
}

/// Every rollout's checks, each from its own queries.
async fn single(provider: &dyn MetricsProvider, all: &[Rollout]) -> Vec<Vec<Check>> {
    let mut out = Vec::new();
    for r in all {
        out.push(analyse(provider, &metrics(), &vars(r), MIN_REQUESTS).await);
    }
    out
}

/// Every rollout's checks, from one batch: per metric its request count, then its query.
async fn grouped(provider: &dyn MetricsProvider, all: &[Rollout]) -> (Vec<Vec<Check>>, usize) {
    let metrics = metrics();
    let mut instants = Vec::new();
    for r in all {
        for m in &metrics {
            instants.push(request_count(&vars(r)));
            instants.push(m.instant(&vars(r)));
        }
    }
    let plan = batch::plan(&instants, true);
    let groups = plan
        .queries
        .iter()
        .filter(|q| matches!(q, Query::Grouped { .. }))
        .count();
    let outcomes = batch::answer_all(provider, &plan, 4).await;
    let mut answers = instants.iter().zip(outcomes);
    let mut out = Vec::new();
    for _ in all {
        let mut checks = Vec::new();
        for m in &metrics {
            let (_, count) = answers.next().unwrap();
            let (instant, outcome) = answers.next().unwrap();
            checks.push(
                judge_measured(
                    provider,
                    m,
                    instant.text(),
                    outcome,
                    Some(&count),
                    MIN_REQUESTS,
                )
                .await,
            );
        }
        out.push(checks);
    }
    (out, groups)
}

/// A few seconds back: every scrape up to then is stored.
fn pinned_time() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() - chrono::TimeDelta::seconds(3)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouped_queries_give_each_rollout_its_own_values_and_verdicts() {
    let exporter = Exporter::start(ExporterConfig::local(50.0))
        .await
        .expect("start the exporter");
    let prometheus = PrometheusServer::start(&[exporter.target()]);
    let mut config = PrometheusConfig::new(&prometheus.url());
    config.timeout = Duration::from_secs(5);
    let client = Prometheus::new(config).expect("Prometheus client");
    let all = rollouts();
    for r in &all {
        let key = ServiceKey::new(NS, r.service);
        exporter
            .set_split(
                &key,
                Some(Split {
                    weights: r.split.iter().map(|(s, w)| (s.to_string(), *w)).collect(),
                    ..Split::weights([])
                }),
            )
            .unwrap();
        exporter.set_behaviour(&key, r.subset, r.behaviour).unwrap();
    }
    // Until a whole window of each behaviour is stored, as seen from the pinned times below:
    // ratings failing its success rate, details its p99, reviews passing both.
    let start = Instant::now();
    loop {
        let checks = single(&client.evaluated_at(pinned_time()), &all).await;
        let verdict =
            |rollout: usize, metric: usize| checks[rollout][metric].verdict.metric_label();
        if verdict(0, 0) == "pass"
            && verdict(0, 1) == "pass"
            && verdict(1, 0) == "fail"
            && verdict(2, 1) == "fail"
            && verdict(3, 0) == "fail"
            && verdict(5, 0) == "pass"
        {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "no settled verdicts within {DEADLINE:?}: {checks:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Three rounds at different moments, each compared at one pinned time.
    for round in 0..3 {
        let pinned = client.evaluated_at(pinned_time());
        let counting = Counting {
            inner: &pinned,
            singles: AtomicUsize::new(0),
            grouped: AtomicUsize::new(0),
        };
        let own = single(&pinned, &all).await;
        let (shared, groups) = grouped(&counting, &all).await;
        // Four built-ins and the request count over one window: one grouped query, each
        // part's series tagged; the custom template once per rollout.
        assert_eq!(groups, 1, "round {round}");
        assert_eq!(counting.grouped.load(Ordering::Relaxed), 1);
        assert_eq!(counting.singles.load(Ordering::Relaxed), all.len());
        for (r, (own, shared)) in all.iter().zip(own.iter().zip(&shared)) {
            for (a, b) in own.iter().zip(shared) {
                let what = format!("round {round}, {} {}", r.service, a.metric);
                assert_eq!(a.query, b.query, "{what}: the recorded query");
                assert_eq!(a.verdict, b.verdict, "{what}");
                assert_eq!(a.requests, b.requests, "{what}: requests");
                match (a.value, b.value) {
                    (Some(x), Some(y)) => {
                        assert_eq!(x.to_bits(), y.to_bits(), "{what}: {x} vs {y}")
                    }
                    (x, y) => assert_eq!(x, y, "{what}"),
                }
            }
        }
        // The verdicts span what a rollout can be told.
        let verdict = |r: usize, m: usize| shared[r][m].verdict.clone();
        assert_eq!(verdict(0, 0), AnalysisVerdict::Pass);
        assert!(matches!(verdict(1, 0), AnalysisVerdict::Fail { .. }));
        assert!(matches!(verdict(2, 1), AnalysisVerdict::Fail { value, .. } if value == 995.0));
        assert_eq!(shared[3][0].value, Some(0.0), "only errors measure 0 %");
        assert!(
            matches!(verdict(4, 0), AnalysisVerdict::TooFewRequests { count, .. } if count == 0.0),
            "{:?}",
            verdict(4, 0)
        );
        assert_eq!(verdict(5, 0), AnalysisVerdict::Pass, "the dotted subset");
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
}
