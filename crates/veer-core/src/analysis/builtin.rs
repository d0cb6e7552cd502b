//! The built-in Istio metrics, as query templates over the standard Istio metrics: request
//! success rate and p99 latency of the new subset and the request count behind `minRequests`,
//! as the destination's sidecar reports them; and the same two for the whole service as its
//! callers' sidecars report them (where a VirtualService's injected faults show).
//!
//! Each is built from its selector (fixed matchers and the rollout's variables), so the same
//! query exists in two forms: one rollout's (`template`), and many rollouts' at once, grouped
//! by exactly the labels their variables fill (`grouped_template`, used by `analysis::batch`).

use std::sync::OnceLock;

use super::template::{QueryTemplate, Vars};
use crate::manifest::rollout_policy::BuiltinMetric;

/// A label matcher of a built-in selector: a fixed value, or one of the analysed rollout's
/// variables. The variables are what tell rollouts apart, so a grouped query
/// (`analysis::grouped`) groups by exactly those labels and no others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Matcher {
    Fixed(&'static str),
    Var(Var),
}

/// A rollout's variable a built-in selector filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    Namespace,
    Service,
    Version,
}

impl Var {
    fn placeholder(self) -> &'static str {
        match self {
            Var::Namespace => "namespace",
            Var::Service => "service",
            Var::Version => "version",
        }
    }

    /// Its value in `vars`.
    pub fn of(self, vars: &Vars) -> &str {
        match self {
            Var::Namespace => &vars.namespace,
            Var::Service => &vars.service,
            Var::Version => &vars.version,
        }
    }
}

type Selector = &'static [(&'static str, Matcher)];

/// Label matchers selecting the analysed subset's requests, as the destination reports them.
const SELECTOR: Selector = &[
    ("reporter", Matcher::Fixed("destination")),
    (
        "destination_workload_namespace",
        Matcher::Var(Var::Namespace),
    ),
    ("destination_service_name", Matcher::Var(Var::Service)),
    ("destination_version", Matcher::Var(Var::Version)),
];

/// Label matchers selecting the service's requests as its callers' sidecars report them. Not
/// by version: a request a fault aborted never reached a workload, so Istio reports its
/// destination version (and workload) as `unknown`.
const CALLER_SELECTOR: Selector = &[
    ("reporter", Matcher::Fixed("source")),
    (
        "destination_service_namespace",
        Matcher::Var(Var::Namespace),
    ),
    ("destination_service_name", Matcher::Var(Var::Service)),
];

/// A built-in query: one of the built-in metrics, or the request count behind `minRequests`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Builtin {
    Metric(BuiltinMetric),
    RequestCount,
}

/// What a built-in query computes.
#[derive(Debug, Clone, Copy)]
enum Shape {
    SuccessRate,
    P99,
    Count,
}

impl Builtin {
    fn parts(self) -> (Shape, Selector) {
        match self {
            Builtin::Metric(BuiltinMetric::RequestSuccessRate) => (Shape::SuccessRate, SELECTOR),
            Builtin::Metric(BuiltinMetric::RequestDuration) => (Shape::P99, SELECTOR),
            Builtin::Metric(BuiltinMetric::CallerRequestSuccessRate) => {
                (Shape::SuccessRate, CALLER_SELECTOR)
            }
            Builtin::Metric(BuiltinMetric::CallerRequestDuration) => (Shape::P99, CALLER_SELECTOR),
            Builtin::RequestCount => (Shape::Count, SELECTOR),
        }
    }

    /// A name for ordering and logs: the metric's, or `request-count`.
    pub fn as_str(self) -> &'static str {
        match self {
            Builtin::Metric(m) => m.as_str(),
            Builtin::RequestCount => "request-count",
        }
    }

    /// One rollout's query, with `{{ variable }}` placeholders. Built once per process: a
    /// tick judging a thousand rollouts asks for each of its metrics' a thousand times.
    pub fn template(self) -> &'static QueryTemplate {
        static SUCCESS_RATE: OnceLock<QueryTemplate> = OnceLock::new();
        static DURATION: OnceLock<QueryTemplate> = OnceLock::new();
        static CALLER_SUCCESS_RATE: OnceLock<QueryTemplate> = OnceLock::new();
        static CALLER_DURATION: OnceLock<QueryTemplate> = OnceLock::new();
        static REQUEST_COUNT: OnceLock<QueryTemplate> = OnceLock::new();
        let cell = match self {
            Builtin::Metric(BuiltinMetric::RequestSuccessRate) => &SUCCESS_RATE,
            Builtin::Metric(BuiltinMetric::RequestDuration) => &DURATION,
            Builtin::Metric(BuiltinMetric::CallerRequestSuccessRate) => &CALLER_SUCCESS_RATE,
            Builtin::Metric(BuiltinMetric::CallerRequestDuration) => &CALLER_DURATION,
            Builtin::RequestCount => &REQUEST_COUNT,
        };
        cell.get_or_init(|| self.build_template())
    }

    fn build_template(self) -> QueryTemplate {
        let (shape, selector) = self.parts();
        let text = selector
            .iter()
            .map(|(label, m)| match m {
                Matcher::Fixed(v) => format!("{label}=\"{v}\""),
                Matcher::Var(v) => format!("{label}=\"{{{{ {} }}}}\"", v.placeholder()),
            })
            .collect::<Vec<_>>()
            .join(",");
        QueryTemplate::new(shape.query(&text, None))
    }

    /// The labels that tell rollouts apart, in the selector's order, and which variable each
    /// carries.
    pub fn group_labels(self) -> Vec<(&'static str, Var)> {
        self.parts()
            .1
            .iter()
            .filter_map(|(label, m)| match m {
                Matcher::Var(v) => Some((*label, *v)),
                Matcher::Fixed(_) => None,
            })
            .collect()
    }

    /// The query of every rollout whose variables take the values `values` gives for each
    /// label (a regex alternation of literal values, each escaped), one series per group of
    /// [`Builtin::group_labels`], with `{{ interval }}` the only placeholder left.
    pub fn grouped_template(self, values: impl Fn(Var) -> Vec<String>) -> QueryTemplate {
        let (shape, selector) = self.parts();
        let text = selector
            .iter()
            .map(|(label, m)| match m {
                Matcher::Fixed(v) => format!("{label}=\"{v}\""),
                Matcher::Var(v) => {
                    let alternatives: Vec<String> =
                        values(*v).iter().map(|x| regex_literal(x)).collect();
                    format!("{label}=~\"{}\"", alternatives.join("|"))
                }
            })
            .collect::<Vec<_>>()
            .join(",");
        let by = self
            .group_labels()
            .iter()
            .map(|(label, _)| *label)
            .collect::<Vec<_>>()
            .join(", ");
        QueryTemplate::new(shape.query(&text, Some(&by)))
    }
}

/// A label value as a literal inside a PromQL regex in a double-quoted string. Template values
/// are letters, digits, `.`, `_` and `-` (`template::safe`); of those only `.` means anything
/// to a regex, and its escaping backslash is itself escaped for the string.
fn regex_literal(value: &str) -> String {
    value.replace('.', "\\\\.")
}

impl Shape {
    /// The query over `selector`: one number, or with `by` one per group of those labels.
    /// Each grouped group computes exactly what that group's own query does (the same series,
    /// summed in the same order).
    fn query(self, selector: &str, by: Option<&str>) -> String {
        let sum = |inner: String| match by {
            None => format!("sum({inner})"),
            Some(labels) => format!("sum by ({labels}) ({inner})"),
        };
        let requests = format!("istio_requests_total{{{selector}}}");
        let window = "[{{ interval }}]";
        match self {
            // 5xx share subtracted from 1, with a zero where there is no 5xx series at all so
            // a subset answering only 5xx measures 0 % instead of "no data" (`vector(0)`; per
            // group, zero times the group's total). No traffic gives 0/0 = NaN or an empty
            // result, both read as no data.
            Shape::SuccessRate => {
                let errors = sum(format!(
                    "rate(istio_requests_total{{{selector},response_code=~\"5..\"}}{window})"
                ));
                let all = sum(format!("rate({requests}{window})"));
                let none = match by {
                    None => "on() vector(0)".to_string(),
                    Some(labels) => format!("on({labels}) (0 * {all})"),
                };
                format!("100 * (1 - (({errors} or {none}) / {all}))")
            }
            Shape::P99 => {
                let le = match by {
                    None => "le".to_string(),
                    Some(labels) => format!("le, {labels}"),
                };
                format!(
                    "histogram_quantile(0.99, sum by ({le}) (rate(istio_request_duration_milliseconds_bucket{{{selector}}}{window})))"
                )
            }
            Shape::Count => sum(format!("increase({requests}{window})")),
        }
    }
}

/// The query of a built-in metric (the policy's [`BuiltinMetric`], one type for both).
pub trait BuiltinQuery {
    fn template(self) -> &'static QueryTemplate;
}

impl BuiltinQuery for BuiltinMetric {
    fn template(self) -> &'static QueryTemplate {
        Builtin::Metric(self).template()
    }
}

/// Requests the subset received over the interval, compared with `minRequests`.
pub fn request_count() -> &'static QueryTemplate {
    Builtin::RequestCount.template()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::analysis::template::Vars;

    fn vars() -> Vars {
        Vars::new("shop", "reviews", "v2", Duration::from_secs(10))
    }

    /// Each built-in's cached query is the one built for it.
    #[test]
    fn each_cached_template_is_its_builtins() {
        let all = [
            Builtin::Metric(BuiltinMetric::RequestSuccessRate),
            Builtin::Metric(BuiltinMetric::RequestDuration),
            Builtin::Metric(BuiltinMetric::CallerRequestSuccessRate),
            Builtin::Metric(BuiltinMetric::CallerRequestDuration),
            Builtin::RequestCount,
        ];
        for b in all {
            assert_eq!(*b.template(), b.build_template(), "{}", b.as_str());
        }
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
