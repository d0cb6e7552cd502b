//! What veer asks Prometheus and how it reads the answers: the [`MetricsProvider`] port,
//! instant queries (`/api/v1/query`) and range queries (`/api/v1/query_range`, the samples of
//! a baseline comparison), their configuration (URL, timeout, optional bearer or basic auth),
//! and the parsing of the HTTP API's answers into a typed [`QueryOutcome`] or
//! [`RangeOutcome`]. Pure: the HTTP client is the app's (`veer::analysis::Prometheus`), and
//! nothing here decides pass or fail.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::Deserialize;

use super::verdict::{QueryOutcome, RangeOutcome};
use crate::secret::SecretSource;

/// Anything that answers PromQL queries. The rollout controller holds a
/// `dyn MetricsProvider`, so tests can stand in a scripted one.
pub trait MetricsProvider: Send + Sync {
    /// An instant query: one number.
    fn query<'a>(&'a self, promql: &'a str) -> BoxFuture<'a, QueryOutcome>;
    /// A range query: the query's value at every `step` from `start` to `end`.
    fn query_range<'a>(
        &'a self,
        promql: &'a str,
        range: &'a SampleRange,
    ) -> BoxFuture<'a, RangeOutcome>;
    /// Whether [`MetricsProvider::query_series`] answers. A provider that does not is asked
    /// one rollout's query at a time, never a grouped one.
    fn answers_series(&self) -> bool {
        false
    }
    /// An instant query answering several series, each with its labels (a grouped query,
    /// `analysis::batch`).
    fn query_series<'a>(&'a self, promql: &'a str) -> BoxFuture<'a, SeriesOutcome> {
        let _ = promql;
        Box::pin(async {
            SeriesOutcome::QueryError("this metrics provider answers single numbers only".into())
        })
    }
}

/// What an instant query of several series returned.
#[derive(Debug, Clone, PartialEq)]
pub enum SeriesOutcome {
    /// Every series (maybe none), in the order Prometheus sent them.
    Samples(Vec<LabelledSample>),
    /// Prometheus rejected the query.
    QueryError(String),
    /// Prometheus could not be asked.
    Unreachable(String),
}

/// One series of a [`SeriesOutcome`]: its labels, and its value read as one rollout's own
/// query would read it (NaN is no data).
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledSample {
    pub labels: std::collections::BTreeMap<String, String>,
    pub value: QueryOutcome,
}

/// Where a range query samples: `start`, `start + step`, … up to `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleRange {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub step: Duration,
}

/// Samples one comparison takes at most (the most recent): bounds the query and the test,
/// whose ranking is quadratic in statrs.
pub const MAX_SAMPLES: u32 = 1000;

impl SampleRange {
    /// From `since` (the first moment a sample means something: its whole query range lies
    /// inside the current phase) or `lookback` before `now`, whichever is later, to `now`, one
    /// sample per `step`, at most [`MAX_SAMPLES`]. When `since` is still ahead of `now` the
    /// range is empty ([`SampleRange::is_empty`]): there is no sample to take yet. Pure.
    pub fn window(
        since: DateTime<Utc>,
        now: DateTime<Utc>,
        step: Duration,
        lookback: Option<Duration>,
    ) -> Self {
        // `now - d`, or the beginning of time for a duration too long to subtract.
        let before_now = |d: Duration| {
            chrono::TimeDelta::from_std(d)
                .ok()
                .and_then(|d| now.checked_sub_signed(d))
                .unwrap_or(DateTime::<Utc>::MIN_UTC)
        };
        let mut start = since;
        if let Some(back) = lookback {
            start = start.max(before_now(back));
        }
        if let Some(most) = step.checked_mul(MAX_SAMPLES - 1) {
            start = start.max(before_now(most));
        }
        SampleRange {
            start,
            end: now,
            step,
        }
    }

    /// No sample fits (Prometheus would refuse a start after the end).
    pub fn is_empty(&self) -> bool {
        self.start > self.end
    }
}

/// How to authenticate to Prometheus (or the proxy in front of it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum PrometheusAuth {
    #[default]
    #[serde(skip)]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(SecretSource),
    Basic {
        username: String,
        password: SecretSource,
    },
}

/// Where Prometheus is and how to ask it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusConfig {
    /// Base URL, e.g. `http://prometheus.istio-system:9090` (a path prefix is kept).
    pub url: String,
    /// Bound on each query, connection included; also sent to Prometheus as its query timeout.
    pub timeout: Duration,
    pub auth: PrometheusAuth,
}

impl PrometheusConfig {
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_string(),
            timeout: Duration::from_secs(10),
            auth: PrometheusAuth::None,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiResponse {
    status: String,
    #[serde(default)]
    data: Option<ApiData>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiData {
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct Sample {
    #[serde(default)]
    metric: std::collections::BTreeMap<String, String>,
    value: (f64, String),
}

/// An API answer: its data, or why there is none.
enum Envelope {
    Data(ApiData),
    /// Prometheus rejected the query.
    QueryError(String),
    /// Prometheus could not be asked, or what answered is not Prometheus.
    Unreachable(String),
}

/// Reads the API's envelope, the same for instant and range queries.
fn envelope(status: u16, body: &[u8]) -> Envelope {
    let parsed: Result<ApiResponse, _> = serde_json::from_slice(body);
    let api_error = |p: &ApiResponse| {
        format!(
            "{}: {}",
            p.error_type.as_deref().unwrap_or("error"),
            p.error.as_deref().unwrap_or("no message")
        )
    };
    match (status, parsed) {
        (200, Ok(p)) if p.status == "success" => match p.data {
            Some(data) => Envelope::Data(data),
            None => Envelope::Unreachable("answer without data".to_string()),
        },
        (200, Ok(p)) => Envelope::QueryError(api_error(&p)),
        // bad_data (syntax) is 400, execution errors are 422: the query is at fault.
        (400 | 422, Ok(p)) => Envelope::QueryError(api_error(&p)),
        (400 | 422, Err(_)) => Envelope::QueryError(format!("HTTP {status}")),
        (401 | 403, _) => Envelope::Unreachable(format!(
            "HTTP {status}: the credentials were refused; check the Prometheus auth settings"
        )),
        (_, Ok(p)) if p.status == "error" => {
            Envelope::Unreachable(format!("HTTP {status}, {}", api_error(&p)))
        }
        (200, Err(e)) => Envelope::Unreachable(format!(
            "the answer is not a Prometheus API response ({e}); check the URL"
        )),
        (_, _) => Envelope::Unreachable(format!(
            "HTTP {status}; check that the URL points at Prometheus"
        )),
    }
}

/// Turns an HTTP status and body from `/api/v1/query` into an outcome. Pure.
pub fn interpret(status: u16, body: &[u8]) -> QueryOutcome {
    match envelope(status, body) {
        Envelope::Data(data) => read_data(data),
        Envelope::QueryError(m) => QueryOutcome::QueryError(m),
        Envelope::Unreachable(m) => QueryOutcome::Unreachable(m),
    }
}

/// Turns an HTTP status and body from `/api/v1/query_range` into an outcome. Pure.
pub fn interpret_range(status: u16, body: &[u8]) -> RangeOutcome {
    match envelope(status, body) {
        Envelope::Data(data) => read_matrix(data),
        Envelope::QueryError(m) => RangeOutcome::QueryError(m),
        Envelope::Unreachable(m) => RangeOutcome::Unreachable(m),
    }
}

/// Turns an HTTP status and body from `/api/v1/query` into every series with its labels.
/// Pure.
pub fn interpret_series(status: u16, body: &[u8]) -> SeriesOutcome {
    let data = match envelope(status, body) {
        Envelope::Data(data) => data,
        Envelope::QueryError(m) => return SeriesOutcome::QueryError(m),
        Envelope::Unreachable(m) => return SeriesOutcome::Unreachable(m),
    };
    if data.result_type != "vector" {
        // A grouped query (`sum by`) always answers a vector.
        return SeriesOutcome::QueryError(format!(
            "the query returns a {}, not a vector of series",
            data.result_type
        ));
    }
    match serde_json::from_value::<Vec<Sample>>(data.result) {
        Ok(samples) => SeriesOutcome::Samples(
            samples
                .into_iter()
                .map(|s| LabelledSample {
                    value: number_outcome(&s.value.1),
                    labels: s.metric,
                })
                .collect(),
        ),
        Err(e) => SeriesOutcome::Unreachable(format!("unreadable vector result: {e}")),
    }
}

#[derive(Deserialize)]
struct Series {
    values: Vec<(f64, String)>,
}

fn read_matrix(data: ApiData) -> RangeOutcome {
    if data.result_type != "matrix" {
        // A range query always answers a matrix; anything else is not Prometheus' API.
        return RangeOutcome::Unreachable(format!(
            "a range query answered a {}, not a matrix; check that the URL points at Prometheus",
            data.result_type
        ));
    }
    match serde_json::from_value::<Vec<Series>>(data.result) {
        Ok(series) => match series.as_slice() {
            [] => RangeOutcome::NoData,
            [one] => one
                .values
                .iter()
                .map(|(_, text)| parse_number(text))
                .collect::<Result<Vec<f64>, NotANumber>>()
                .map_or_else(
                    |e| RangeOutcome::QueryError(e.to_string()),
                    RangeOutcome::Series,
                ),
            several => RangeOutcome::SeveralSeries(several.len()),
        },
        Err(e) => RangeOutcome::Unreachable(format!("unreadable matrix result: {e}")),
    }
}

/// A sample value Prometheus sent that is not a number (its API sends numbers as strings).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sample value `{text}` is not a number")]
struct NotANumber {
    text: String,
}

fn parse_number(text: &str) -> Result<f64, NotANumber> {
    // Prometheus writes NaN and ±Inf as words, which Rust's parser accepts too.
    text.parse::<f64>().map_err(|_| NotANumber {
        text: text.to_string(),
    })
}

fn number_outcome(text: &str) -> QueryOutcome {
    match parse_number(text) {
        Ok(v) if v.is_nan() => QueryOutcome::NoData,
        Ok(v) => QueryOutcome::Value(v),
        Err(e) => QueryOutcome::QueryError(e.to_string()),
    }
}

fn read_data(data: ApiData) -> QueryOutcome {
    match data.result_type.as_str() {
        "vector" => match serde_json::from_value::<Vec<Sample>>(data.result) {
            Ok(samples) => match samples.as_slice() {
                [] => QueryOutcome::NoData,
                [one] => number_outcome(&one.value.1),
                several => QueryOutcome::SeveralSeries(several.len()),
            },
            Err(e) => QueryOutcome::Unreachable(format!("unreadable vector result: {e}")),
        },
        "scalar" => match serde_json::from_value::<(f64, String)>(data.result) {
            Ok((_, text)) => number_outcome(&text),
            Err(e) => QueryOutcome::Unreachable(format!("unreadable scalar result: {e}")),
        },
        "matrix" => QueryOutcome::QueryError(
            "the query returns a range vector; wrap the range selector in a function such as rate()"
                .to_string(),
        ),
        other => QueryOutcome::QueryError(format!(
            "the query returns a {other}, not a number"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(result_type: &str, result: &str) -> Vec<u8> {
        format!(
            r#"{{"status":"success","data":{{"resultType":"{result_type}","result":{result}}}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn interprets_answers() {
        let one = ok("vector", r#"[{"metric":{},"value":[1700000000.1,"99.5"]}]"#);
        assert_eq!(interpret(200, &one), QueryOutcome::Value(99.5));
        let nan = ok("vector", r#"[{"metric":{},"value":[1,"NaN"]}]"#);
        assert_eq!(interpret(200, &nan), QueryOutcome::NoData);
        let inf = ok("vector", r#"[{"metric":{},"value":[1,"+Inf"]}]"#);
        assert_eq!(interpret(200, &inf), QueryOutcome::Value(f64::INFINITY));
        assert_eq!(interpret(200, &ok("vector", "[]")), QueryOutcome::NoData);
        let two = ok(
            "vector",
            r#"[{"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"2"]}]"#,
        );
        assert_eq!(interpret(200, &two), QueryOutcome::SeveralSeries(2));
        assert_eq!(
            interpret(200, &ok("scalar", r#"[1,"3"]"#)),
            QueryOutcome::Value(3.0)
        );
        assert!(matches!(
            interpret(200, &ok("matrix", "[]")),
            QueryOutcome::QueryError(m) if m.contains("range vector")
        ));
        assert!(matches!(
            interpret(200, &ok("string", r#"[1,"x"]"#)),
            QueryOutcome::QueryError(_)
        ));
    }

    #[test]
    fn interprets_series_with_their_labels() {
        let two = ok(
            "vector",
            r#"[{"metric":{"destination_version":"v2"},"value":[1,"99.5"]},{"metric":{"destination_version":"v3"},"value":[1,"NaN"]}]"#,
        );
        let SeriesOutcome::Samples(samples) = interpret_series(200, &two) else {
            panic!("samples")
        };
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].labels["destination_version"], "v2");
        assert_eq!(samples[0].value, QueryOutcome::Value(99.5));
        assert_eq!(samples[1].value, QueryOutcome::NoData, "NaN is no data");
        assert_eq!(
            interpret_series(200, &ok("vector", "[]")),
            SeriesOutcome::Samples(Vec::new())
        );
        assert!(matches!(
            interpret_series(200, &ok("scalar", r#"[1,"3"]"#)),
            SeriesOutcome::QueryError(m) if m.contains("scalar")
        ));
        let bad = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert!(matches!(
            interpret_series(400, bad),
            SeriesOutcome::QueryError(m) if m.contains("bad_data")
        ));
        assert!(matches!(
            interpret_series(502, b"<html>"),
            SeriesOutcome::Unreachable(_)
        ));
    }

    #[test]
    fn interprets_errors() {
        let bad = br#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#;
        assert_eq!(
            interpret(400, bad),
            QueryOutcome::QueryError("bad_data: parse error at char 5".into())
        );
        let timeout = br#"{"status":"error","errorType":"timeout","error":"query timed out"}"#;
        assert!(
            matches!(interpret(503, timeout), QueryOutcome::Unreachable(m) if m.contains("timeout"))
        );
        assert!(
            matches!(interpret(502, b"<html>bad gateway</html>"), QueryOutcome::Unreachable(m) if m.contains("502"))
        );
        assert!(
            matches!(interpret(401, b""), QueryOutcome::Unreachable(m) if m.contains("credentials"))
        );
        assert!(matches!(
            interpret(404, b"404 page not found"),
            QueryOutcome::Unreachable(_)
        ));
        assert!(
            matches!(interpret(200, b"<html>"), QueryOutcome::Unreachable(m) if m.contains("check the URL"))
        );
    }

    #[test]
    fn interprets_range_answers() {
        use RangeOutcome as R;
        let matrix = |result: &str| ok("matrix", result);
        let one = matrix(r#"[{"metric":{},"values":[[1,"24.85"],[2,"NaN"],[3,"+Inf"]]}]"#);
        let two = matrix(
            r#"[{"metric":{"a":"1"},"values":[[1,"1"]]},{"metric":{"a":"2"},"values":[[1,"2"]]}]"#,
        );
        let bad = br#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#;
        let timeout = br#"{"status":"error","errorType":"timeout","error":"query timed out"}"#;
        #[rustfmt::skip]
        let cases: Vec<(&str, u16, Vec<u8>, &str, &str)> = vec![
            ("one series", 200, one, "series", ""),
            ("no series is no data", 200, matrix("[]"), "noData", ""),
            ("several series", 200, two, "severalSeries", ""),
            ("an unreadable sample is the query's fault", 200,
                matrix(r#"[{"metric":{},"values":[[1,"x"]]}]"#), "queryError", "not a number"),
            ("a vector is not a range answer", 200,
                ok("vector", "[]"), "unreachable", "not a matrix"),
            ("bad PromQL", 400, bad.to_vec(), "queryError", "bad_data: parse error"),
            ("execution error", 422, b"{}".to_vec(), "queryError", ""),
            ("timeout", 503, timeout.to_vec(), "unreachable", "timeout"),
            ("refused credentials", 403, Vec::new(), "unreachable", "credentials"),
            ("not Prometheus", 200, b"<html>".to_vec(), "unreachable", "check the URL"),
            ("bad gateway", 502, b"<html>bad gateway</html>".to_vec(), "unreachable", "502"),
        ];
        for (name, status, body, want, says) in cases {
            let got = interpret_range(status, &body);
            let json = serde_json::to_value(&got).unwrap();
            assert_eq!(json["outcome"], want, "{name}: {got:?}");
            assert!(json.to_string().contains(says), "{name}: {got:?}");
        }
        match interpret_range(
            200,
            &matrix(r#"[{"metric":{},"values":[[1,"24.85"],[2,"NaN"],[3,"+Inf"]]}]"#),
        ) {
            R::Series(v) => {
                assert_eq!(v.len(), 3);
                assert_eq!(v[0], 24.85);
                assert!(v[1].is_nan());
                assert_eq!(v[2], f64::INFINITY);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sample_windows() {
        use chrono::TimeZone;
        let t = |s: i64| Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap();
        let secs = Duration::from_secs;
        #[rustfmt::skip]
        let cases = [
            ("since the phase began", t(100), t(160), secs(10), None, t(100)),
            ("a shorter lookback wins", t(100), t(160), secs(10), Some(secs(30)), t(130)),
            ("a longer lookback does not reach before the phase", t(100), t(160), secs(10), Some(secs(600)), t(100)),
            ("a phase that began just now", t(160), t(160), secs(10), None, t(160)),
            ("no sample yet: empty", t(170), t(160), secs(10), None, t(170)),
            ("at most MAX_SAMPLES samples", t(0), t(5000), secs(1), None, t(5000 - 999)),
        ];
        for (name, since, now, step, lookback, start) in cases {
            let r = SampleRange::window(since, now, step, lookback);
            assert_eq!((r.start, r.end, r.step), (start, now, step), "{name}");
            assert_eq!(r.is_empty(), since > now, "{name}");
        }
    }
}
