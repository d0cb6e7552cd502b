//! The Prometheus adapter: instant queries over the HTTP API (`/api/v1/query`) with reqwest,
//! a timeout and optional bearer or basic auth. Every answer becomes a typed
//! [`QueryOutcome`]; nothing here decides pass or fail.

use std::time::Duration;

use futures::future::BoxFuture;
use serde::Deserialize;

use super::AnalysisError;
use super::verdict::QueryOutcome;
use crate::source::{SecretSource, SourceError};

/// Anything that answers an instant PromQL query. The rollout controller holds a
/// `dyn MetricsProvider`, so tests can stand in a scripted one.
pub trait MetricsProvider: Send + Sync {
    fn query<'a>(&'a self, promql: &'a str) -> BoxFuture<'a, QueryOutcome>;
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

/// The real [`MetricsProvider`]: Prometheus' HTTP API.
#[derive(Debug, Clone)]
pub struct Prometheus {
    client: reqwest::Client,
    query_url: reqwest::Url,
    timeout: Duration,
    auth: PrometheusAuth,
}

impl Prometheus {
    /// Checks the URL and reads the credentials once, so a bad configuration fails at start-up;
    /// credentials are read again for each query, so a rotated secret is picked up.
    pub fn new(config: PrometheusConfig) -> Result<Self, AnalysisError> {
        crate::http_client::install_crypto_provider();
        let bad_url = |reason: String| AnalysisError::InvalidUrl {
            url: config.url.clone(),
            reason,
        };
        let mut base = reqwest::Url::parse(&config.url).map_err(|e| bad_url(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad_url("the scheme must be http or https".to_string()));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let query_url = base
            .join("api/v1/query")
            .map_err(|e| bad_url(e.to_string()))?;
        if config.timeout.is_zero() {
            return Err(AnalysisError::InvalidTimeout);
        }
        credentials(&config.auth)?;
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| AnalysisError::Client {
                message: e.to_string(),
            })?;
        Ok(Self {
            client,
            query_url,
            timeout: config.timeout,
            auth: config.auth,
        })
    }

    async fn run(&self, promql: &str) -> QueryOutcome {
        let timeout = super::template::promql_duration(self.timeout).unwrap_or_default();
        let mut request = self
            .client
            .post(self.query_url.clone())
            .form(&[("query", promql), ("timeout", timeout.as_str())]);
        match credentials(&self.auth) {
            Ok(Credentials::None) => {}
            Ok(Credentials::Bearer(token)) => request = request.bearer_auth(token),
            Ok(Credentials::Basic(user, password)) => {
                request = request.basic_auth(user, Some(password))
            }
            Err(e) => return QueryOutcome::Unreachable(e.to_string()),
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return QueryOutcome::Unreachable(crate::http_client::describe_transport_error(&e));
            }
        };
        let status = response.status();
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return QueryOutcome::Unreachable(crate::http_client::describe_transport_error(&e));
            }
        };
        interpret(status.as_u16(), &body)
    }
}

impl MetricsProvider for Prometheus {
    fn query<'a>(&'a self, promql: &'a str) -> BoxFuture<'a, QueryOutcome> {
        Box::pin(self.run(promql))
    }
}

enum Credentials {
    None,
    Bearer(String),
    Basic(String, String),
}

// Secrets are only ever passed to reqwest; no error or log line carries them.
fn credentials(auth: &PrometheusAuth) -> Result<Credentials, AnalysisError> {
    let read = |source: &SecretSource| {
        source.read().map_err(|e| AnalysisError::Secret {
            source_name: source.to_string(),
            reason: match e {
                SourceError::Secret { reason, .. } => reason,
                other => other.to_string(),
            },
        })
    };
    Ok(match auth {
        PrometheusAuth::None => Credentials::None,
        PrometheusAuth::Bearer(token) => Credentials::Bearer(read(token)?.expose().to_string()),
        PrometheusAuth::Basic { username, password } => {
            Credentials::Basic(username.clone(), read(password)?.expose().to_string())
        }
    })
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
    value: (f64, String),
}

/// Turns an HTTP status and body from `/api/v1/query` into an outcome. Pure.
pub fn interpret(status: u16, body: &[u8]) -> QueryOutcome {
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
            Some(data) => read_data(data),
            None => QueryOutcome::Unreachable("answer without data".to_string()),
        },
        (200, Ok(p)) => QueryOutcome::QueryError(api_error(&p)),
        // bad_data (syntax) is 400, execution errors are 422: the query is at fault.
        (400 | 422, Ok(p)) => QueryOutcome::QueryError(api_error(&p)),
        (400 | 422, Err(_)) => QueryOutcome::QueryError(format!("HTTP {status}")),
        (401 | 403, _) => QueryOutcome::Unreachable(format!(
            "HTTP {status}: the credentials were refused; check the Prometheus auth settings"
        )),
        (_, Ok(p)) if p.status == "error" => {
            QueryOutcome::Unreachable(format!("HTTP {status}, {}", api_error(&p)))
        }
        (200, Err(e)) => QueryOutcome::Unreachable(format!(
            "the answer is not a Prometheus API response ({e}); check the URL"
        )),
        (_, _) => QueryOutcome::Unreachable(format!(
            "HTTP {status}; check that the URL points at Prometheus"
        )),
    }
}

fn parse_number(text: &str) -> Result<f64, String> {
    // Prometheus writes NaN and ±Inf as words, which Rust's parser accepts too.
    text.parse::<f64>()
        .map_err(|_| format!("sample value `{text}` is not a number"))
}

fn number_outcome(text: &str) -> QueryOutcome {
    match parse_number(text) {
        Ok(v) if v.is_nan() => QueryOutcome::NoData,
        Ok(v) => QueryOutcome::Value(v),
        Err(e) => QueryOutcome::QueryError(e),
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
    fn rejects_bad_configuration() {
        assert!(matches!(
            Prometheus::new(PrometheusConfig::new("ftp://x")),
            Err(AnalysisError::InvalidUrl { .. })
        ));
        assert!(matches!(
            Prometheus::new(PrometheusConfig::new("not a url")),
            Err(AnalysisError::InvalidUrl { .. })
        ));
        let mut config = PrometheusConfig::new("http://127.0.0.1:9090");
        config.auth = PrometheusAuth::Bearer(SecretSource::Env(
            "VEER_TEST_PROMETHEUS_TOKEN_THAT_IS_NOT_SET".into(),
        ));
        let err = Prometheus::new(config).unwrap_err();
        assert_eq!(err.metric_label(), "secret");
        assert!(err.to_string().contains("is not set"), "{err}");
    }

    #[test]
    fn keeps_a_path_prefix() {
        let p = Prometheus::new(PrometheusConfig::new("http://h:9090/prom")).unwrap();
        assert_eq!(p.query_url.as_str(), "http://h:9090/prom/api/v1/query");
        let p = Prometheus::new(PrometheusConfig::new("http://h:9090")).unwrap();
        assert_eq!(p.query_url.as_str(), "http://h:9090/api/v1/query");
    }
}
