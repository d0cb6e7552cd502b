//! Analysis against a real Prometheus scraping the synthetic Istio exporter: the built-in
//! queries, the typed outcomes and the verdicts, end to end through PromQL.
//!
//! Each test runs its own exporter and Prometheus (1 s scrapes, 10 s windows) and polls with a
//! bounded deadline until the verdict it expects, so it fails with the last checks it saw.

#[path = "support/prometheus.rs"]
mod prometheus_support;

use std::time::{Duration, Instant};

use prometheus_support::PrometheusServer;
use veer::analysis::{
    AnalysisVerdict, BaselineVerdict, BuiltinMetric, BuiltinQuery, Check, Comparison, Direction,
    Metric, MetricQuery, MetricsErrorKind, MetricsProvider, Prometheus, PrometheusConfig,
    QueryOutcome, QueryTemplate, RangeOutcome, SampleRange, ThresholdRange, Vars, analyse,
};
use veer::exporter::{Behaviour, Exporter, ExporterConfig, ServiceKey, Split};

const NS: &str = "shop";
const WINDOW: Duration = Duration::from_secs(10);
const DEADLINE: Duration = Duration::from_secs(40);

struct Stack {
    exporter: Exporter,
    prometheus: PrometheusServer,
    provider: Prometheus,
}

async fn stack(rps: f64) -> Stack {
    let exporter = Exporter::start(ExporterConfig::local(rps))
        .await
        .expect("start the exporter");
    let prometheus = PrometheusServer::start(&[exporter.target()]);
    let mut config = PrometheusConfig::new(&prometheus.url());
    config.timeout = Duration::from_secs(3);
    let provider = Prometheus::new(config).expect("Prometheus client");
    Stack {
        exporter,
        prometheus,
        provider,
    }
}

fn key(service: &str) -> ServiceKey {
    ServiceKey::new(NS, service)
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
            name: "request-duration".into(),
            query: MetricQuery::Builtin(BuiltinMetric::RequestDuration),
            threshold: ThresholdRange::new(None, Some(500.0)).unwrap(),
            baseline: None,
        },
    ]
}

fn vars(service: &str, subset: &str) -> Vars {
    Vars::new(NS, service, subset, WINDOW)
}

/// Analyses until `done` holds for the checks, or fails after the deadline with the last ones.
async fn analyse_until(
    provider: &dyn MetricsProvider,
    metrics: &[Metric],
    vars: &Vars,
    min_requests: u64,
    done: impl Fn(&[Check]) -> bool,
) -> Vec<Check> {
    let start = Instant::now();
    loop {
        let checks = analyse(provider, metrics, vars, min_requests).await;
        if done(&checks) {
            eprintln!("settled after {:?}", start.elapsed());
            return checks;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "no expected verdict within {DEADLINE:?}; last checks: {checks:#?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn query_until(
    provider: &dyn MetricsProvider,
    query: &str,
    done: impl Fn(&QueryOutcome) -> bool,
) -> QueryOutcome {
    let start = Instant::now();
    loop {
        let outcome = provider.query(query).await;
        if done(&outcome) {
            return outcome;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "`{query}` did not give the expected outcome within {DEADLINE:?}; last: {outcome:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until Prometheus has data for the service from the exporter at all, so "no data" for
/// a subset afterwards means no data, not "not scraped yet".
async fn wait_for_traffic(provider: &dyn MetricsProvider, service: &str, subset: &str) {
    let q = format!(
        "sum(increase(istio_requests_total{{destination_service_name=\"{service}\",destination_version=\"{subset}\"}}[10s]))"
    );
    query_until(
        provider,
        &q,
        |o| matches!(o, QueryOutcome::Value(v) if *v > 0.0),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_subset_passes_success_rate_and_latency() {
    let s = stack(50.0).await;
    s.exporter
        .set_split(
            &key("reviews"),
            Some(Split::weights([("v1", 50), ("v2", 50)])),
        )
        .unwrap();
    s.exporter
        .set_behaviour(
            &key("reviews"),
            "v2",
            Behaviour {
                error_rate: 0.0,
                latency_ms: 20.0,
            },
        )
        .unwrap();
    let checks = analyse_until(&s.provider, &metrics(), &vars("reviews", "v2"), 20, |c| {
        c.iter().all(|c| c.verdict == AnalysisVerdict::Pass)
    })
    .await;
    assert_eq!(checks[0].value, Some(100.0));
    // All requests take 20 ms: p99 interpolates inside Istio's (10, 25] bucket.
    let p99 = checks[1].value.unwrap();
    assert!((p99 - 24.85).abs() < 0.01, "p99 {p99}");
    assert!(checks[0].requests.unwrap() >= 20.0);
    assert!(
        checks[1]
            .query
            .contains("istio_request_duration_milliseconds_bucket")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_spike_fails_success_rate_with_the_measured_value() {
    let s = stack(100.0).await;
    s.exporter
        .set_split(
            &key("ratings"),
            Some(Split::weights([("v1", 50), ("v2", 50)])),
        )
        .unwrap();
    s.exporter
        .set_behaviour(
            &key("ratings"),
            "v2",
            Behaviour {
                error_rate: 0.3,
                latency_ms: 20.0,
            },
        )
        .unwrap();
    let checks = analyse_until(
        &s.provider,
        &metrics()[..1],
        &vars("ratings", "v2"),
        0,
        |c| matches!(c[0].verdict, AnalysisVerdict::Fail { .. }),
    )
    .await;
    let AnalysisVerdict::Fail { value, min, max } = checks[0].verdict.clone() else {
        unreachable!()
    };
    assert!(
        (value - 70.0).abs() < 3.0,
        "success rate {value}, expected about 70"
    );
    assert_eq!((min, max), (Some(99.0), None));
    // The old subset, answering fine, still passes the same check.
    let v1 = analyse(&s.provider, &metrics()[..1], &vars("ratings", "v1"), 0).await;
    assert_eq!(v1[0].verdict, AnalysisVerdict::Pass, "{v1:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_errors_measure_zero_not_no_data() {
    let s = stack(50.0).await;
    s.exporter
        .set_split(&key("broken"), Some(Split::weights([("v2", 100)])))
        .unwrap();
    s.exporter
        .set_behaviour(
            &key("broken"),
            "v2",
            Behaviour {
                error_rate: 1.0,
                latency_ms: 5.0,
            },
        )
        .unwrap();
    let checks = analyse_until(
        &s.provider,
        &metrics()[..1],
        &vars("broken", "v2"),
        0,
        |c| matches!(c[0].verdict, AnalysisVerdict::Fail { .. }),
    )
    .await;
    assert_eq!(checks[0].value, Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_breach_fails_p99() {
    let s = stack(50.0).await;
    s.exporter
        .set_split(
            &key("details"),
            Some(Split::weights([("v1", 50), ("v2", 50)])),
        )
        .unwrap();
    s.exporter
        .set_behaviour(
            &key("details"),
            "v2",
            Behaviour {
                error_rate: 0.0,
                latency_ms: 800.0,
            },
        )
        .unwrap();
    let checks = analyse_until(&s.provider, &metrics(), &vars("details", "v2"), 0, |c| {
        matches!(c[1].verdict, AnalysisVerdict::Fail { .. })
    })
    .await;
    // 800 ms lies in the (500, 1000] bucket.
    assert_eq!(
        checks[1].verdict,
        AnalysisVerdict::Fail {
            value: 995.0,
            min: None,
            max: Some(500.0)
        }
    );
    assert_eq!(
        checks[0].verdict,
        AnalysisVerdict::Pass,
        "errors are not latency"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_traffic_is_no_data_and_too_few_requests() {
    let s = stack(50.0).await;
    // All traffic to v1: v2 exists in no series at all.
    s.exporter
        .set_split(&key("cart"), Some(Split::weights([("v1", 100)])))
        .unwrap();
    wait_for_traffic(&s.provider, "cart", "v1").await;
    let checks = analyse(&s.provider, &metrics(), &vars("cart", "v2"), 0).await;
    for c in &checks {
        assert_eq!(c.verdict, AnalysisVerdict::NoData, "{c:#?}");
        assert_eq!(c.value, None);
    }
    let checks = analyse(&s.provider, &metrics(), &vars("cart", "v2"), 10).await;
    for c in &checks {
        assert_eq!(
            c.verdict,
            AnalysisVerdict::TooFewRequests {
                count: 0.0,
                min: 10
            },
            "{c:#?}"
        );
    }
    // A trickle to v2 (1 request/s): counted, but below minRequests, so no verdict yet.
    s.exporter.set_rate(&key("cart"), 2.0);
    s.exporter
        .set_split(&key("cart"), Some(Split::weights([("v1", 50), ("v2", 50)])))
        .unwrap();
    wait_for_traffic(&s.provider, "cart", "v2").await;
    let checks = analyse(&s.provider, &metrics(), &vars("cart", "v2"), 1000).await;
    for c in &checks {
        assert!(
            matches!(c.verdict, AnalysisVerdict::TooFewRequests { count, min: 1000 } if count > 0.0 && count < 1000.0),
            "{c:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_stopping_reads_as_no_data() {
    let s = stack(50.0).await;
    s.exporter
        .set_split(&key("search"), Some(Split::weights([("v2", 100)])))
        .unwrap();
    wait_for_traffic(&s.provider, "search", "v2").await;
    s.exporter.set_rate(&key("search"), 0.0);
    // Once the window holds no increase, rate is 0 and 0/0 is NaN: no data, never a fail.
    analyse_until(&s.provider, &metrics(), &vars("search", "v2"), 0, |c| {
        c.iter().all(|c| c.verdict == AnalysisVerdict::NoData)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_stopped_is_a_metrics_error_not_a_fail() {
    let mut s = stack(50.0).await;
    s.exporter
        .set_split(&key("orders"), Some(Split::weights([("v2", 100)])))
        .unwrap();
    analyse_until(&s.provider, &metrics(), &vars("orders", "v2"), 10, |c| {
        c.iter().all(|c| c.verdict == AnalysisVerdict::Pass)
    })
    .await;
    s.prometheus.stop();
    let checks = analyse(&s.provider, &metrics(), &vars("orders", "v2"), 10).await;
    for c in &checks {
        assert!(
            matches!(&c.verdict, AnalysisVerdict::MetricsError { kind: MetricsErrorKind::Unreachable, reason } if reason.contains("connect")),
            "{c:#?}"
        );
        assert_eq!(c.value, None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_query_is_a_query_error() {
    let s = stack(10.0).await;
    let broken = QueryTemplate::new("sum(rate(istio_requests_total[{{ interval }}])");
    let query = broken.render(&vars("reviews", "v2")).unwrap();
    let outcome = s.provider.query(&query).await;
    assert!(
        matches!(&outcome, QueryOutcome::QueryError(m) if m.contains("bad_data")),
        "{outcome:?}"
    );
    let outcome = s.provider.query("istio_requests_total[10s]").await;
    assert!(
        matches!(&outcome, QueryOutcome::QueryError(m) if m.contains("range vector")),
        "{outcome:?}"
    );
    let metric = Metric {
        name: "custom".into(),
        query: MetricQuery::Query(broken),
        threshold: ThresholdRange::default(),
        baseline: None,
    };
    let checks = analyse(&s.provider, &[metric], &vars("reviews", "v2"), 0).await;
    assert!(
        matches!(
            &checks[0].verdict,
            AnalysisVerdict::MetricsError {
                kind: MetricsErrorKind::QueryError,
                ..
            }
        ),
        "{checks:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_series_is_an_error_not_the_last_one() {
    let s = stack(50.0).await;
    s.exporter
        .set_split(
            &key("catalog"),
            Some(Split::weights([("v1", 50), ("v2", 50)])),
        )
        .unwrap();
    wait_for_traffic(&s.provider, "catalog", "v2").await;
    wait_for_traffic(&s.provider, "catalog", "v1").await;
    let per_version = Metric {
        name: "per-version-rate".into(),
        query: MetricQuery::Query(QueryTemplate::new(
            "sum by (destination_version) (rate(istio_requests_total{destination_workload_namespace=\"{{ namespace }}\",destination_service_name=\"{{ service }}\"}[{{ interval }}]))",
        )),
        threshold: ThresholdRange::default(),
        baseline: None,
    };
    let checks = analyse(&s.provider, &[per_version], &vars("catalog", "v2"), 0).await;
    assert!(
        matches!(&checks[0].verdict, AnalysisVerdict::MetricsError { kind: MetricsErrorKind::SeveralSeries, reason } if reason.contains("2 series")),
        "{checks:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_follows_weights() {
    let s = stack(100.0).await;
    s.exporter
        .set_split(&key("web"), Some(Split::weights([("v1", 80), ("v2", 20)])))
        .unwrap();
    wait_for_traffic(&s.provider, "web", "v2").await;
    let share = "sum(rate(istio_requests_total{destination_service_name=\"web\",destination_version=\"v2\"}[10s])) / sum(rate(istio_requests_total{destination_service_name=\"web\"}[10s]))";
    // Poll until the window is full of the 80/20 split; it must settle at 0.2.
    query_until(
        &s.provider,
        share,
        |o| matches!(o, QueryOutcome::Value(v) if (v - 0.2).abs() < 0.02),
    )
    .await;
}

/// The last `seconds` of samples, one per second, ending now.
fn last_seconds(seconds: i64) -> SampleRange {
    let now = chrono::Utc::now();
    SampleRange {
        start: now - chrono::TimeDelta::seconds(seconds),
        end: now,
        step: Duration::from_secs(1),
    }
}

async fn range_until(
    provider: &dyn MetricsProvider,
    query: &str,
    done: impl Fn(&RangeOutcome) -> bool,
) -> RangeOutcome {
    let start = Instant::now();
    loop {
        let outcome = provider.query_range(query, &last_seconds(6)).await;
        if done(&outcome) {
            return outcome;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "`{query}` did not give the expected range within {DEADLINE:?}; last: {outcome:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_queries_sample_every_step_with_typed_outcomes() {
    let mut s = stack(50.0).await;
    s.exporter
        .set_split(
            &key("reviews"),
            Some(Split::weights([("v1", 50), ("v2", 50)])),
        )
        .unwrap();
    let p99 = BuiltinMetric::RequestDuration
        .template()
        .render(&vars("reviews", "v2"))
        .unwrap();
    // Six seconds back at a 1 s step: seven samples, every one of them the constant 20 ms
    // latency's p99 once the window is full.
    let got = range_until(&s.provider, &p99, |o| {
        matches!(o, RangeOutcome::Series(v) if v.len() == 7 && v.iter().all(|x| (x - 24.85).abs() < 0.01))
    })
    .await;
    assert!(matches!(got, RangeOutcome::Series(_)));
    let nothing = "sum(rate(istio_requests_total{destination_service_name=\"nowhere\"}[10s]))";
    assert_eq!(
        s.provider.query_range(nothing, &last_seconds(6)).await,
        RangeOutcome::NoData
    );
    let per_version = "sum by (destination_version) (rate(istio_requests_total{destination_service_name=\"reviews\"}[10s]))";
    range_until(&s.provider, per_version, |o| {
        *o == RangeOutcome::SeveralSeries(2)
    })
    .await;
    let broken = s
        .provider
        .query_range("sum(rate(istio_requests_total[10s])", &last_seconds(6))
        .await;
    assert!(
        matches!(&broken, RangeOutcome::QueryError(m) if m.contains("bad_data")),
        "{broken:?}"
    );
    s.prometheus.stop();
    let down = s.provider.query_range(&p99, &last_seconds(6)).await;
    assert!(
        matches!(&down, RangeOutcome::Unreachable(m) if m.contains("connect")),
        "{down:?}"
    );
}

/// The p99 metric (`<= 500`) of `subset`, compared with `old` over the last 8 s.
fn p99_compared_with(old: &str) -> Metric {
    Metric {
        name: "p99".into(),
        query: MetricQuery::Builtin(BuiltinMetric::RequestDuration),
        threshold: ThresholdRange::new(None, Some(500.0)).unwrap(),
        baseline: Some(Comparison {
            alpha: 0.05,
            allowance: 0.0,
            range: last_seconds(8),
            against: Ok((vars("reviews", old), Direction::Increase)),
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slower_subset_inside_its_threshold_is_worse_than_the_baseline() {
    let s = stack(60.0).await;
    s.exporter
        .set_split(
            &key("reviews"),
            Some(Split::weights([("v1", 34), ("v2", 33), ("v3", 33)])),
        )
        .unwrap();
    // v2 is ten times slower than v1 but well inside `<= 500`; v3 is v1's equal.
    s.exporter
        .set_behaviour(
            &key("reviews"),
            "v2",
            Behaviour {
                error_rate: 0.0,
                latency_ms: 200.0,
            },
        )
        .unwrap();
    let start = Instant::now();
    let (slower, equal) = loop {
        let slower = analyse(
            &s.provider,
            &[p99_compared_with("v1")],
            &vars("reviews", "v2"),
            0,
        )
        .await
        .remove(0);
        let equal = analyse(
            &s.provider,
            &[p99_compared_with("v1")],
            &vars("reviews", "v3"),
            0,
        )
        .await
        .remove(0);
        if matches!(slower.verdict, AnalysisVerdict::WorseThanBaseline { .. })
            && equal.verdict == AnalysisVerdict::Pass
        {
            break (slower, equal);
        }
        assert!(
            start.elapsed() < DEADLINE,
            "no baseline verdicts within {DEADLINE:?}; last: {slower:#?} {equal:#?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    eprintln!("settled after {:?}", start.elapsed());
    // 200 ms interpolates to 248.5 in the (100, 250] bucket: inside the threshold.
    assert!((slower.value.unwrap() - 248.5).abs() < 0.01, "{slower:#?}");
    let b = slower.baseline.expect("a comparison");
    assert!(
        b.query.contains("destination_version=\"v1\""),
        "{}",
        b.query
    );
    assert!(b.canary_samples >= 4 && b.baseline_samples >= 4, "{b:?}");
    assert!(matches!(b.verdict, BaselineVerdict::Fail { p_value } if p_value < 0.05));
    assert!(b.to_string().starts_with("baseline fail p="), "{b}");
    // Equal constant latencies are all ties: no difference, p = 1.
    let b = equal.baseline.expect("a comparison");
    assert_eq!(b.verdict, BaselineVerdict::Pass { p_value: 1.0 });
}
