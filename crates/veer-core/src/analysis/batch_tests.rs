//! Table tests of the batch: which queries are sent for which rollouts, how a grouped answer
//! is split per rollout, and that a slow query delays only the answers it carries.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;

use super::*;
use crate::analysis::prometheus::LabelledSample;
use crate::analysis::{BuiltinMetric, Metric, MetricQuery, RangeOutcome, SampleRange};

const W: Duration = Duration::from_secs(10);

fn vars(ns: &str, service: &str, version: &str, window: Duration) -> Vars {
    Vars::new(ns, service, version, window)
}

fn builtin(b: BuiltinMetric, v: &Vars) -> Instant {
    Metric {
        name: b.as_str().into(),
        query: MetricQuery::Builtin(b),
        threshold: Default::default(),
        baseline: None,
    }
    .instant(v)
}

fn custom(text: &str, v: &Vars) -> Instant {
    Instant::new(&QueryTemplate::new(text), None, v)
}

fn count(v: &Vars) -> Instant {
    crate::analysis::request_count(v)
}

/// What a plan sends, in words: `single`/`grouped` per query, and per instant where its
/// answer comes from (`s<n>`, `g<n>`, `x` for not rendered).
fn shape(plan: &Plan) -> (Vec<&'static str>, Vec<String>) {
    let queries = plan
        .queries
        .iter()
        .map(|q| match q {
            Query::Single(_) => "single",
            Query::Grouped { .. } => "grouped",
        })
        .collect();
    let sources = plan
        .sources
        .iter()
        .map(|s| match s {
            Source::NotRendered(_) => "x".to_string(),
            Source::Single(n) => format!("s{n}"),
            Source::Grouped { query, .. } => format!("g{query}"),
        })
        .collect();
    (queries, sources)
}

/// Name, the instants, whether to group, the queries sent, each instant's source.
type PlanCase = (
    &'static str,
    Vec<Instant>,
    bool,
    Vec<&'static str>,
    Vec<&'static str>,
);

/// Name, the grouped answer, the rollout's labels, its answer.
type PickCase = (
    &'static str,
    SeriesOutcome,
    Vec<(&'static str, String)>,
    Option<QueryOutcome>,
);

#[test]
fn plans_table() {
    use BuiltinMetric::{
        CallerRequestSuccessRate as Caller, RequestDuration as P99, RequestSuccessRate as Rate,
    };
    let a = vars("shop", "reviews", "v2", W);
    let b = vars("shop", "ratings", "v2", W);
    let c = vars("books", "reviews", "v3", W);
    let a_long = vars("shop", "reviews", "v2", W * 6);
    let b_long = vars("shop", "ratings", "v2", W * 6);
    #[rustfmt::skip]
    let cases: Vec<PlanCase> = vec![
        ("one rollout's built-ins over one window: one query, the shared count once",
            vec![count(&a), builtin(Rate, &a), count(&a), builtin(P99, &a)], true,
            vec!["grouped"], vec!["g0", "g0", "g0", "g0"]),
        ("one rollout's built-ins alone: its own queries, the shared count once",
            vec![count(&a), builtin(Rate, &a), count(&a), builtin(P99, &a)], false,
            vec!["single", "single", "single"], vec!["s0", "s1", "s0", "s2"]),
        ("two rollouts share each built-in query, one query for the window",
            vec![count(&a), builtin(Rate, &a), count(&b), builtin(Rate, &b)], true,
            vec!["grouped"], vec!["g0", "g0", "g0", "g0"]),
        ("each window is its own grouped query",
            vec![builtin(Rate, &a), builtin(Rate, &b), builtin(Rate, &a_long), builtin(Rate, &b_long)], true,
            vec!["grouped", "grouped"], vec!["g0", "g0", "g1", "g1"]),
        ("three rollouts, one grouped query",
            vec![builtin(P99, &a), builtin(P99, &b), builtin(P99, &c)], true,
            vec!["grouped"], vec!["g0", "g0", "g0"]),
        ("another window is another query",
            vec![builtin(Rate, &a), builtin(Rate, &a_long), builtin(Rate, &b)], true,
            vec!["grouped", "single"], vec!["g0", "s1", "g0"]),
        ("the same rollout twice is one single query",
            vec![builtin(Rate, &a), builtin(Rate, &a)], true,
            vec!["single"], vec!["s0", "s0"]),
        ("custom PromQL stays per rollout",
            vec![custom("up{ns=\"{{ namespace }}\"}", &a), custom("up{ns=\"{{ namespace }}\"}", &c)], true,
            vec!["single", "single"], vec!["s0", "s1"]),
        ("custom PromQL asked twice is sent once",
            vec![custom("sum(up)", &a), custom("sum(up)", &c)], true,
            vec!["single"], vec!["s0", "s0"]),
        ("a template that does not render is not sent",
            vec![custom("{{ nmespace }}", &a), builtin(Rate, &a)], true,
            vec!["single"], vec!["x", "s0"]),
        ("a provider without series: every rollout alone",
            vec![builtin(Rate, &a), builtin(Rate, &b)], false,
            vec!["single", "single"], vec!["s0", "s1"]),
        ("caller-side and destination-side are parts of one query",
            vec![builtin(Caller, &a), builtin(Caller, &b), builtin(Rate, &a)], true,
            vec!["grouped"], vec!["g0", "g0", "g0"]),
    ];
    for (name, instants, group, queries, sources) in cases {
        let plan = plan(&instants, group);
        let (got_queries, got_sources) = shape(&plan);
        assert_eq!(got_queries, queries, "{name}: {plan:#?}");
        assert_eq!(got_sources, sources, "{name}: {plan:#?}");
        // A single query is always some instant's own query, verbatim.
        for q in &plan.queries {
            if let Query::Single(text) = q {
                assert!(instants.iter().any(|i| i.text() == text), "{name}: {text}");
            }
        }
    }
}

#[test]
fn grouped_queries_group_by_exactly_the_labels_the_rollouts_fill() {
    let a = vars("shop", "reviews", "v2", W);
    let b = vars("shop", "reviews.beta", "v2.1", W);
    let plan = plan(
        &[
            builtin(BuiltinMetric::RequestSuccessRate, &a),
            builtin(BuiltinMetric::RequestSuccessRate, &b),
            count(&a),
            count(&b),
            builtin(BuiltinMetric::RequestDuration, &a),
            builtin(BuiltinMetric::RequestDuration, &b),
            builtin(BuiltinMetric::CallerRequestDuration, &a),
            builtin(BuiltinMetric::CallerRequestDuration, &b),
        ],
        true,
    );
    // One query for the window: its parts tagged and joined.
    let [Query::Grouped { text, parts }] = plan.queries.as_slice() else {
        panic!("one grouped query: {:#?}", plan.queries)
    };
    let tagged: Vec<String> = parts
        .iter()
        .enumerate()
        .map(|(n, p)| format!(r#"label_replace({p}, "veer_part", "{n}", "", "")"#))
        .collect();
    assert_eq!(text, &tagged.join(" or "));
    let mut texts = parts.clone();
    texts.sort();
    let sel = r#"reporter="destination",destination_workload_namespace=~"shop",destination_service_name=~"reviews|reviews\\.beta",destination_version=~"v2|v2\\.1""#;
    let by = "destination_workload_namespace, destination_service_name, destination_version";
    let mut want = [
            format!(
                "100 * (1 - ((sum by ({by}) (rate(istio_requests_total{{{sel},response_code=~\"5..\"}}[10s])) or on({by}) (0 * sum by ({by}) (rate(istio_requests_total{{{sel}}}[10s])))) / sum by ({by}) (rate(istio_requests_total{{{sel}}}[10s]))))"
            ),
            format!("sum by ({by}) (increase(istio_requests_total{{{sel}}}[10s]))"),
            format!(
                "histogram_quantile(0.99, sum by (le, {by}) (rate(istio_request_duration_milliseconds_bucket{{{sel}}}[10s])))"
            ),
            r#"histogram_quantile(0.99, sum by (le, destination_service_namespace, destination_service_name) (rate(istio_request_duration_milliseconds_bucket{reporter="source",destination_service_namespace=~"shop",destination_service_name=~"reviews|reviews\\.beta"}[10s])))"#.to_string(),
        ];
    want.sort();
    assert_eq!(texts, want);
    // Each rollout's series is picked by its own values of those labels.
    let Source::Grouped { labels, own, .. } = &plan.sources[1] else {
        panic!("{:?}", plan.sources[1])
    };
    assert_eq!(
        labels,
        &[
            ("destination_workload_namespace", "shop".to_string()),
            ("destination_service_name", "reviews.beta".to_string()),
            ("destination_version", "v2.1".to_string()),
        ]
    );
    assert!(own.contains(r#"destination_version="v2.1""#), "{own}");
}

fn sample(labels: &[(&str, &str)], value: QueryOutcome) -> LabelledSample {
    LabelledSample {
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        value,
    }
}

#[test]
fn picks_table() {
    let v2 = [
        ("destination_service_name", "reviews"),
        ("destination_version", "v2"),
    ];
    let v3 = [
        ("destination_service_name", "reviews"),
        ("destination_version", "v3"),
    ];
    let wanted = |labels: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
        labels.iter().map(|(k, v)| (*k, v.to_string())).collect()
    };
    let answer = SeriesOutcome::Samples(vec![
        sample(&v2, QueryOutcome::Value(99.5)),
        sample(
            &[
                ("destination_service_name", "ratings"),
                ("destination_version", "v2"),
            ],
            QueryOutcome::NoData,
        ),
    ]);
    let doubled = SeriesOutcome::Samples(vec![
        sample(&v2, QueryOutcome::Value(1.0)),
        sample(&v2, QueryOutcome::Value(2.0)),
    ]);
    #[rustfmt::skip]
    let cases: Vec<PickCase> = vec![
        ("its series", answer.clone(), wanted(&v2), Some(QueryOutcome::Value(99.5))),
        ("no series of its own is no data", answer.clone(), wanted(&v3), Some(QueryOutcome::NoData)),
        ("NaN (no traffic) is no data", answer, wanted(&[("destination_service_name", "ratings"), ("destination_version", "v2")]), Some(QueryOutcome::NoData)),
        ("no series at all is no data", SeriesOutcome::Samples(Vec::new()), wanted(&v2), Some(QueryOutcome::NoData)),
        ("two series of its own", doubled, wanted(&v2), Some(QueryOutcome::SeveralSeries(2))),
        ("unreachable for every rollout", SeriesOutcome::Unreachable("connection refused".into()), wanted(&v2), Some(QueryOutcome::Unreachable("connection refused".into()))),
        ("refused: ask its own query", SeriesOutcome::QueryError("too many samples".into()), wanted(&v2), None),
    ];
    for (name, answer, labels, want) in cases {
        assert_eq!(pick(&answer, &labels), want, "{name}");
    }
}

/// Answers by the first fragment each query contains; a query containing `slow` never
/// answers. Records what was sent.
struct Scripted {
    singles: Vec<(&'static str, QueryOutcome)>,
    series: Vec<(&'static str, SeriesOutcome)>,
    sent: Mutex<Vec<String>>,
}

impl MetricsProvider for Scripted {
    fn query<'a>(&'a self, promql: &'a str) -> BoxFuture<'a, QueryOutcome> {
        self.sent.lock().unwrap().push(format!("single {promql}"));
        if promql.contains("slow") {
            return Box::pin(futures::future::pending());
        }
        let o = self
            .singles
            .iter()
            .find(|(f, _)| promql.contains(f))
            .map_or(QueryOutcome::NoData, |(_, o)| o.clone());
        Box::pin(async move { o })
    }

    fn query_range<'a>(&'a self, _: &'a str, _: &'a SampleRange) -> BoxFuture<'a, RangeOutcome> {
        Box::pin(async { RangeOutcome::NoData })
    }

    fn answers_series(&self) -> bool {
        true
    }

    fn query_series<'a>(&'a self, promql: &'a str) -> BoxFuture<'a, SeriesOutcome> {
        self.sent.lock().unwrap().push(format!("grouped {promql}"));
        let o = self
            .series
            .iter()
            .find(|(f, _)| promql.contains(f))
            .map_or(SeriesOutcome::Samples(Vec::new()), |(_, o)| o.clone());
        Box::pin(async move { o })
    }
}

/// The series labels of `service`'s new version, tagged with `part` when given.
fn destination(service: &'static str, part: Option<usize>) -> Vec<(&'static str, String)> {
    let mut labels = vec![
        ("destination_workload_namespace", "shop".to_string()),
        ("destination_service_name", service.to_string()),
        ("destination_version", "v2".to_string()),
    ];
    if let Some(p) = part {
        labels.push((PART_LABEL, p.to_string()));
    }
    labels
}

fn tagged_sample(labels: &[(&'static str, String)], value: f64) -> LabelledSample {
    let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
    sample(&labels, QueryOutcome::Value(value))
}

/// Two rollouts' p99 and request count over one window: one grouped query of two parts.
fn p99_and_count() -> [Instant; 4] {
    let a = vars("shop", "reviews", "v2", W);
    let b = vars("shop", "ratings", "v2", W);
    [
        builtin(BuiltinMetric::RequestDuration, &a),
        builtin(BuiltinMetric::RequestDuration, &b),
        count(&a),
        count(&b),
    ]
}

/// The index of the part of `plan`'s one grouped query that contains `fragment`.
fn part_with(plan: &Plan, fragment: &str) -> usize {
    let [Query::Grouped { parts, .. }] = plan.queries.as_slice() else {
        panic!("one grouped query: {:#?}", plan.queries)
    };
    parts
        .iter()
        .position(|p| p.contains(fragment))
        .expect("a part with the fragment")
}

#[test]
fn a_combined_answer_is_split_by_part_and_labels() {
    futures::executor::block_on(async {
        let instants = p99_and_count();
        let plan = plan(&instants, true);
        let (p99, count) = (
            part_with(&plan, "histogram_quantile"),
            part_with(&plan, "increase"),
        );
        let provider = Scripted {
            singles: Vec::new(),
            series: vec![(
                "label_replace",
                SeriesOutcome::Samples(vec![
                    tagged_sample(&destination("reviews", Some(p99)), 24.85),
                    tagged_sample(&destination("ratings", Some(p99)), 248.5),
                    tagged_sample(&destination("reviews", Some(count)), 7.0),
                    // A series of no part veer sent is nobody's.
                    tagged_sample(&destination("ratings", Some(9)), 1.0),
                ]),
            )],
            sent: Mutex::new(Vec::new()),
        };
        let got = answer_all(&provider, &plan, 4).await;
        assert_eq!(
            got,
            [
                QueryOutcome::Value(24.85),
                QueryOutcome::Value(248.5),
                QueryOutcome::Value(7.0),
                QueryOutcome::NoData,
            ]
        );
        assert_eq!(provider.sent.lock().unwrap().len(), 1, "one query");
    });
}

#[test]
fn a_refused_combined_query_is_sent_part_by_part_then_each_rollout_alone() {
    futures::executor::block_on(async {
        let instants = p99_and_count();
        let plan = plan(&instants, true);
        let provider = Scripted {
            singles: vec![("increase", QueryOutcome::Value(7.0))],
            series: vec![
                (
                    "label_replace",
                    SeriesOutcome::QueryError("too long".into()),
                ),
                (
                    "histogram_quantile",
                    SeriesOutcome::Samples(vec![
                        tagged_sample(&destination("reviews", None), 24.85),
                        tagged_sample(&destination("ratings", None), 248.5),
                    ]),
                ),
                ("increase", SeriesOutcome::QueryError("refused".into())),
            ],
            sent: Mutex::new(Vec::new()),
        };
        let got = answer_all(&provider, &plan, 4).await;
        assert_eq!(
            got,
            [
                QueryOutcome::Value(24.85),
                QueryOutcome::Value(248.5),
                QueryOutcome::Value(7.0),
                QueryOutcome::Value(7.0),
            ]
        );
        let sent = provider.sent.lock().unwrap().clone();
        // The combined query, its two parts alone, then the refused part's members each on
        // their own.
        let kinds: Vec<&str> = sent.iter().map(|s| &s[..s.find(' ').unwrap()]).collect();
        assert_eq!(
            kinds,
            ["grouped", "grouped", "grouped", "single", "single"],
            "{sent:#?}"
        );
        assert!(sent[0].contains("label_replace"), "{}", sent[0]);
        assert!(!sent[1].contains("label_replace") && !sent[2].contains("label_replace"));
    });
}

#[test]
fn a_slow_query_delays_only_the_answers_it_carries() {
    futures::executor::block_on(async {
        let a = vars("shop", "reviews", "v2", W);
        let provider = Scripted {
            singles: vec![("fast", QueryOutcome::Value(1.0))],
            series: Vec::new(),
            sent: Mutex::new(Vec::new()),
        };
        let instants = [custom("slow", &a), custom("fast", &a)];
        let plan = plan(&instants, true);
        let mut stream = std::pin::pin!(answers(&provider, &plan, 4));
        assert_eq!(stream.next().await, Some((1, QueryOutcome::Value(1.0))));
    });
}
