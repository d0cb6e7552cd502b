//! Judging a measurement: what a query returned, the threshold range and the request count
//! become one verdict ([`judge`]), then the comparison with the old version may overrule a
//! pass ([`combine`]). Pure. "Cannot measure" (no data, too few requests, metrics error, an
//! inconclusive comparison) is kept apart from "measured bad" (fail), so the policy can hold
//! instead of rolling back.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::baseline::{BaselineComparison, BaselineVerdict, p_text};
use crate::figures::for_people;

/// What one instant query returned.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "outcome", content = "detail")]
pub enum QueryOutcome {
    /// Exactly one series with a number.
    Value(f64),
    /// An empty result, or NaN (e.g. a rate over no requests).
    NoData,
    /// More than one series: the query must aggregate to one; veer never picks one.
    SeveralSeries(usize),
    /// Prometheus rejected the query (bad PromQL, HTTP 400/422).
    QueryError(String),
    /// Prometheus could not be asked: connection, timeout, 5xx, refused credentials.
    Unreachable(String),
}

impl QueryOutcome {
    pub fn value(&self) -> Option<f64> {
        match self {
            QueryOutcome::Value(v) => Some(*v),
            QueryOutcome::NoData
            | QueryOutcome::SeveralSeries(_)
            | QueryOutcome::QueryError(_)
            | QueryOutcome::Unreachable(_) => None,
        }
    }
}

/// What one range query (`/api/v1/query_range`) returned: the same cases as [`QueryOutcome`],
/// with a series of values instead of one.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "outcome", content = "detail")]
pub enum RangeOutcome {
    /// Exactly one series: its values in time order (NaN where the query gave NaN).
    Series(Vec<f64>),
    /// No series at all.
    NoData,
    SeveralSeries(usize),
    QueryError(String),
    Unreachable(String),
}

pub use crate::manifest::rollout_policy::ThresholdRange;

/// Why a metric could not be measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MetricsErrorKind {
    SeveralSeries,
    QueryError,
    Unreachable,
}

impl fmt::Display for MetricsErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.metric_label())
    }
}

impl MetricsErrorKind {
    pub fn metric_label(self) -> &'static str {
        match self {
            MetricsErrorKind::SeveralSeries => "several-series",
            MetricsErrorKind::QueryError => "query-error",
            MetricsErrorKind::Unreachable => "unreachable",
        }
    }
}

/// The verdict of one check. Only `Fail` and `WorseThanBaseline` mean the new version measured
/// bad. Stored in the rollout state, so it is (de)serializable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "verdict"
)]
pub enum AnalysisVerdict {
    Pass,
    Fail {
        value: f64,
        #[serde(skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
    },
    NoData,
    TooFewRequests {
        count: f64,
        min: u64,
    },
    MetricsError {
        kind: MetricsErrorKind,
        reason: String,
    },
    /// Within its threshold range, but significantly worse than the old version (baseline):
    /// the one-sided Mann-Whitney p-value is below `alpha`. Measured bad.
    WorseThanBaseline {
        p_value: f64,
        alpha: f64,
    },
    /// The baseline comparison could not tell (too few samples, no old version); `judge`
    /// never returns it, [`combine`] does.
    Inconclusive,
}

impl AnalysisVerdict {
    /// A short, stable label for metrics and alerts.
    pub fn metric_label(&self) -> &'static str {
        match self {
            AnalysisVerdict::Pass => "pass",
            AnalysisVerdict::Fail { .. } => "fail",
            AnalysisVerdict::NoData => "no-data",
            AnalysisVerdict::TooFewRequests { .. } => "too-few-requests",
            AnalysisVerdict::MetricsError { .. } => "metrics-error",
            AnalysisVerdict::WorseThanBaseline { .. } => "worse-than-baseline",
            AnalysisVerdict::Inconclusive => "inconclusive",
        }
    }
}

impl fmt::Display for AnalysisVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnalysisVerdict::Pass => f.write_str("pass"),
            AnalysisVerdict::Fail { value, min, max } => write!(
                f,
                "fail: {} is outside {}",
                for_people(*value),
                ThresholdRange {
                    min: *min,
                    max: *max
                }
            ),
            AnalysisVerdict::NoData => f.write_str("no data"),
            AnalysisVerdict::TooFewRequests { count, min } => {
                write!(
                    f,
                    "too few requests: {} of the {min} needed",
                    for_people(*count)
                )
            }
            AnalysisVerdict::MetricsError { kind, reason } => {
                write!(f, "cannot measure ({}): {reason}", kind.metric_label())
            }
            AnalysisVerdict::WorseThanBaseline { p_value, alpha } => write!(
                f,
                "fail: worse than the baseline (p={} < {alpha})",
                p_text(*p_value)
            ),
            AnalysisVerdict::Inconclusive => f.write_str("baseline comparison inconclusive"),
        }
    }
}

fn metrics_error(outcome: &QueryOutcome, what: &str) -> Option<AnalysisVerdict> {
    let (kind, reason) = match outcome {
        QueryOutcome::Value(_) | QueryOutcome::NoData => return None,
        QueryOutcome::SeveralSeries(n) => (
            MetricsErrorKind::SeveralSeries,
            format!("the {what} query returned {n} series; aggregate it to one (e.g. sum(...))"),
        ),
        QueryOutcome::QueryError(m) => (
            MetricsErrorKind::QueryError,
            format!("Prometheus rejected the {what} query: {m}"),
        ),
        QueryOutcome::Unreachable(m) => (
            MetricsErrorKind::Unreachable,
            format!("Prometheus could not answer the {what} query: {m}"),
        ),
    };
    Some(AnalysisVerdict::MetricsError { kind, reason })
}

/// Judges one metric. `request_count` is the outcome of the request count query, `None` when
/// it was not asked (no `minRequests`). The request count comes first: below `min_requests`
/// there is no verdict on the metric, whatever its value.
pub fn judge(
    outcome: &QueryOutcome,
    threshold: &ThresholdRange,
    request_count: Option<&QueryOutcome>,
    min_requests: u64,
) -> AnalysisVerdict {
    if min_requests > 0 {
        let count = match request_count {
            None => {
                return AnalysisVerdict::MetricsError {
                    kind: MetricsErrorKind::QueryError,
                    reason: format!(
                        "minRequests is {min_requests} but the request count was not measured"
                    ),
                };
            }
            Some(QueryOutcome::Value(n)) if !n.is_nan() => *n,
            Some(QueryOutcome::Value(_)) | Some(QueryOutcome::NoData) => 0.0,
            Some(other) => {
                if let Some(err) = metrics_error(other, "request count") {
                    return err;
                }
                0.0
            }
        };
        // Counts from increase() are extrapolated and may be fractional.
        if count < min_requests as f64 {
            return AnalysisVerdict::TooFewRequests {
                count,
                min: min_requests,
            };
        }
    }
    match outcome {
        QueryOutcome::Value(v) if v.is_nan() => AnalysisVerdict::NoData,
        QueryOutcome::Value(v) if threshold.contains(*v) => AnalysisVerdict::Pass,
        QueryOutcome::Value(v) => AnalysisVerdict::Fail {
            value: *v,
            min: threshold.min,
            max: threshold.max,
        },
        QueryOutcome::NoData => AnalysisVerdict::NoData,
        QueryOutcome::SeveralSeries(_)
        | QueryOutcome::QueryError(_)
        | QueryOutcome::Unreachable(_) => {
            metrics_error(outcome, "metric").unwrap_or(AnalysisVerdict::NoData)
        }
    }
}

/// The check's verdict once the baseline comparison is in: it can only turn a threshold pass
/// into a fail (significantly worse than the old version) or into "cannot measure"
/// (inconclusive). A threshold fail, or a metric that could not be measured, stays as it is.
pub fn combine(threshold: AnalysisVerdict, comparison: &BaselineComparison) -> AnalysisVerdict {
    match threshold {
        AnalysisVerdict::Pass => match &comparison.verdict {
            BaselineVerdict::Pass { .. } | BaselineVerdict::WithinAllowance { .. } => {
                AnalysisVerdict::Pass
            }
            BaselineVerdict::Fail { p_value } => AnalysisVerdict::WorseThanBaseline {
                p_value: *p_value,
                alpha: comparison.alpha,
            },
            BaselineVerdict::Inconclusive { .. } => AnalysisVerdict::Inconclusive,
        },
        AnalysisVerdict::Fail { .. }
        | AnalysisVerdict::NoData
        | AnalysisVerdict::TooFewRequests { .. }
        | AnalysisVerdict::MetricsError { .. }
        | AnalysisVerdict::WorseThanBaseline { .. }
        | AnalysisVerdict::Inconclusive => threshold,
    }
}

/// The samples of a range query, or, when it failed, the verdict of the check it was for:
/// "cannot measure". No data is an empty sample set (the comparison then says inconclusive).
pub fn range_samples(outcome: RangeOutcome, what: &str) -> Result<Vec<f64>, AnalysisVerdict> {
    let (kind, reason) = match outcome {
        RangeOutcome::Series(values) => return Ok(values),
        RangeOutcome::NoData => return Ok(Vec::new()),
        RangeOutcome::SeveralSeries(n) => (
            MetricsErrorKind::SeveralSeries,
            format!("the {what} query returned {n} series; aggregate it to one (e.g. sum(...))"),
        ),
        RangeOutcome::QueryError(m) => (
            MetricsErrorKind::QueryError,
            format!("Prometheus rejected the {what} query: {m}"),
        ),
        RangeOutcome::Unreachable(m) => (
            MetricsErrorKind::Unreachable,
            format!("Prometheus could not answer the {what} query: {m}"),
        ),
    };
    Err(AnalysisVerdict::MetricsError { kind, reason })
}

/// One check as recorded in status, logs, metrics and alerts (and in the rollout state).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// The metric's name in the policy.
    pub metric: String,
    /// The query as sent to Prometheus.
    pub query: String,
    /// The measured value, when there was one.
    pub value: Option<f64>,
    pub threshold: ThresholdRange,
    /// The request count over the interval, when `minRequests` asked for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<f64>,
    pub verdict: AnalysisVerdict,
    /// The comparison with the old version, when the policy asks for one and the threshold
    /// passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineComparison>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use AnalysisVerdict as V;
    use QueryOutcome as O;

    fn range(min: Option<f64>, max: Option<f64>) -> ThresholdRange {
        ThresholdRange::new(min, max).unwrap()
    }

    /// Name, metric outcome, threshold, request count outcome, minRequests, expected verdict.
    type Case = (
        &'static str,
        O,
        ThresholdRange,
        Option<O>,
        u64,
        &'static str,
    );

    #[test]
    fn judge_table() {
        let at_least_99 = range(Some(99.0), None);
        let at_most_500 = range(None, Some(500.0));
        let between = range(Some(1.0), Some(2.0));
        let unreachable = O::Unreachable("connection refused".into());
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            ("value above min passes", O::Value(99.5), at_least_99, None, 0, "pass"),
            ("value at min passes", O::Value(99.0), at_least_99, None, 0, "pass"),
            ("value below min fails", O::Value(80.0), at_least_99, None, 0, "fail"),
            ("value at max passes", O::Value(500.0), at_most_500, None, 0, "pass"),
            ("value above max fails", O::Value(995.0), at_most_500, None, 0, "fail"),
            ("below a closed range fails", O::Value(0.5), between, None, 0, "fail"),
            ("above a closed range fails", O::Value(2.5), between, None, 0, "fail"),
            ("infinity above max fails", O::Value(f64::INFINITY), at_most_500, None, 0, "fail"),
            ("NaN is no data", O::Value(f64::NAN), at_least_99, None, 0, "no-data"),
            ("empty is no data", O::NoData, at_least_99, None, 0, "no-data"),
            ("several series is an error", O::SeveralSeries(2), at_least_99, None, 0, "metrics-error"),
            ("bad query is an error", O::QueryError("parse error".into()), at_least_99, None, 0, "metrics-error"),
            ("unreachable is an error, not a fail", unreachable.clone(), at_least_99, None, 0, "metrics-error"),
            ("enough requests: judged", O::Value(50.0), at_least_99, Some(O::Value(100.0)), 100, "fail"),
            ("too few requests hides a fail", O::Value(50.0), at_least_99, Some(O::Value(99.9)), 100, "too-few-requests"),
            ("no request data is too few", O::Value(100.0), at_least_99, Some(O::NoData), 1, "too-few-requests"),
            ("NaN request count is too few", O::Value(100.0), at_least_99, Some(O::Value(f64::NAN)), 1, "too-few-requests"),
            ("request count unreachable is an error", O::Value(100.0), at_least_99, Some(unreachable.clone()), 1, "metrics-error"),
            ("request count not asked", O::Value(100.0), at_least_99, None, 10, "metrics-error"),
            ("minRequests 0 ignores the count", O::Value(100.0), at_least_99, Some(O::NoData), 0, "pass"),
            ("enough requests but no metric data", O::NoData, at_least_99, Some(O::Value(10.0)), 5, "no-data"),
            ("enough requests, metric unreachable", unreachable, at_least_99, Some(O::Value(10.0)), 5, "metrics-error"),
        ];
        for (name, outcome, threshold, count, min, want) in cases {
            let got = judge(&outcome, &threshold, count.as_ref(), min);
            assert_eq!(got.metric_label(), want, "{name}: got {got}");
        }
    }

    #[test]
    fn fail_and_too_few_carry_their_numbers() {
        assert_eq!(
            judge(&O::Value(80.0), &range(Some(99.0), None), None, 0),
            V::Fail {
                value: 80.0,
                min: Some(99.0),
                max: None
            }
        );
        assert_eq!(
            judge(
                &O::Value(80.0),
                &range(Some(99.0), None),
                Some(&O::Value(3.0)),
                10
            ),
            V::TooFewRequests {
                count: 3.0,
                min: 10
            }
        );
        assert!(matches!(
            judge(&O::SeveralSeries(3), &range(None, None), None, 0),
            V::MetricsError { kind: MetricsErrorKind::SeveralSeries, reason } if reason.contains("3 series")
        ));
    }

    #[test]
    fn threshold_ranges_are_checked() {
        assert!(ThresholdRange::new(Some(2.0), Some(1.0)).is_err());
        assert!(ThresholdRange::new(Some(f64::NAN), None).is_err());
        assert!(ThresholdRange::new(None, None).unwrap().contains(-1e300));
        assert_eq!(range(Some(1.0), Some(2.0)).to_string(), "[1, 2]");
    }

    #[test]
    fn verdicts_render_for_people_and_machines() {
        let fail = V::Fail {
            value: 80.0,
            min: Some(99.0),
            max: None,
        };
        assert_eq!(fail.to_string(), "fail: 80 is outside >= 99");
        assert_eq!(
            serde_json::to_value(&fail).unwrap(),
            serde_json::json!({"verdict": "fail", "value": 80.0, "min": 99.0})
        );
    }

    #[test]
    fn combine_table() {
        use super::super::baseline::BaselineComparison;
        let compared = |verdict: BaselineVerdict| BaselineComparison {
            verdict,
            ..BaselineComparison::inconclusive(0.05, "")
        };
        let pass = compared(BaselineVerdict::Pass { p_value: 0.4 });
        let worse = compared(BaselineVerdict::Fail { p_value: 0.001 });
        let unsure = compared(BaselineVerdict::Inconclusive {
            reason: "too few samples".into(),
        });
        let fail = V::Fail {
            value: 995.0,
            min: None,
            max: Some(500.0),
        };
        let error = V::MetricsError {
            kind: MetricsErrorKind::Unreachable,
            reason: "down".into(),
        };
        let too_few = V::TooFewRequests { count: 1.0, min: 5 };
        #[rustfmt::skip]
        let cases: Vec<(&str, V, &BaselineComparison, V)> = vec![
            ("pass and no worse than the baseline", V::Pass, &pass, V::Pass),
            ("pass but worse than the baseline", V::Pass, &worse, V::WorseThanBaseline { p_value: 0.001, alpha: 0.05 }),
            ("pass, comparison inconclusive: cannot measure", V::Pass, &unsure, V::Inconclusive),
            ("a threshold fail stays a fail", fail.clone(), &pass, fail.clone()),
            ("a threshold fail is not softened", fail.clone(), &unsure, fail),
            ("no data stays no data", V::NoData, &worse, V::NoData),
            ("too few requests stays so", too_few.clone(), &worse, too_few),
            ("a metrics error stays one", error.clone(), &worse, error),
        ];
        for (name, threshold, comparison, want) in cases {
            assert_eq!(combine(threshold, comparison), want, "{name}");
        }
    }

    #[test]
    fn range_failures_are_cannot_measure() {
        assert_eq!(
            range_samples(RangeOutcome::Series(vec![1.0]), "x"),
            Ok(vec![1.0])
        );
        assert_eq!(range_samples(RangeOutcome::NoData, "x"), Ok(vec![]));
        for (outcome, kind) in [
            (
                RangeOutcome::SeveralSeries(2),
                MetricsErrorKind::SeveralSeries,
            ),
            (
                RangeOutcome::QueryError("bad".into()),
                MetricsErrorKind::QueryError,
            ),
            (
                RangeOutcome::Unreachable("down".into()),
                MetricsErrorKind::Unreachable,
            ),
        ] {
            match range_samples(outcome, "baseline range") {
                Err(V::MetricsError { kind: k, reason }) => {
                    assert_eq!(k, kind);
                    assert!(reason.contains("baseline range"), "{reason}");
                }
                other => panic!("{other:?}"),
            }
        }
        let worse = V::WorseThanBaseline {
            p_value: 0.0065,
            alpha: 0.05,
        };
        assert_eq!(
            worse.to_string(),
            "fail: worse than the baseline (p=0.0065 < 0.05)"
        );
        assert_eq!(
            serde_json::to_value(&worse).unwrap(),
            serde_json::json!({"verdict": "worseThanBaseline", "pValue": 0.0065, "alpha": 0.05})
        );
    }
}
