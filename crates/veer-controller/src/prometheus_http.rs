//! The real [`MetricsProvider`]: Prometheus' HTTP API over reqwest. The rest of analysis
//! (configuration, answer parsing, verdicts) is pure and lives in `veer-core`; this is its
//! only network edge.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use crate::analysis::prometheus::{interpret, interpret_range, interpret_series};
use crate::analysis::{
    AnalysisError, MetricsProvider, PrometheusAuth, PrometheusConfig, QueryOutcome, RangeOutcome,
    SampleRange, SeriesOutcome,
};
use crate::secret::SecretSource;

/// The real [`MetricsProvider`]: Prometheus' HTTP API.
#[derive(Debug, Clone)]
pub struct Prometheus {
    client: reqwest::Client,
    query_url: reqwest::Url,
    range_url: reqwest::Url,
    timeout: Duration,
    auth: PrometheusAuth,
    /// Evaluate instant queries at this time instead of Prometheus' now
    /// ([`Prometheus::evaluated_at`]).
    at: Option<DateTime<Utc>>,
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
        let range_url = base
            .join("api/v1/query_range")
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
            range_url,
            timeout: config.timeout,
            auth: config.auth,
            at: None,
        })
    }

    /// The same client evaluating every instant query at `at` (Prometheus' `time`), so two
    /// queries asked a moment apart see the same samples: for comparing queries, not for
    /// analysis, which always asks about now.
    pub fn evaluated_at(&self, at: DateTime<Utc>) -> Prometheus {
        Prometheus {
            at: Some(at),
            ..self.clone()
        }
    }

    /// POSTs an instant query; the status and body, or why there is none.
    async fn instant(&self, promql: &str) -> Result<(u16, Vec<u8>), PostError> {
        let timeout = crate::analysis::template::promql_duration(self.timeout).unwrap_or_default();
        let time = self.at.map(seconds);
        let mut form = vec![("query", promql), ("timeout", timeout.as_str())];
        if let Some(t) = &time {
            form.push(("time", t.as_str()));
        }
        self.post(&self.query_url, &form).await
    }

    async fn run(&self, promql: &str) -> QueryOutcome {
        match self.instant(promql).await {
            Ok((status, body)) => interpret(status, &body),
            Err(e) => QueryOutcome::Unreachable(e.to_string()),
        }
    }

    async fn run_series(&self, promql: &str) -> SeriesOutcome {
        match self.instant(promql).await {
            Ok((status, body)) => interpret_series(status, &body),
            Err(e) => SeriesOutcome::Unreachable(e.to_string()),
        }
    }

    async fn run_range(&self, promql: &str, range: &SampleRange) -> RangeOutcome {
        let timeout = crate::analysis::template::promql_duration(self.timeout).unwrap_or_default();
        let (start, end) = (seconds(range.start), seconds(range.end));
        let step = format!("{:.3}", range.step.as_secs_f64());
        let form = [
            ("query", promql),
            ("start", start.as_str()),
            ("end", end.as_str()),
            ("step", step.as_str()),
            ("timeout", timeout.as_str()),
        ];
        match self.post(&self.range_url, &form).await {
            Ok((status, body)) => interpret_range(status, &body),
            Err(e) => RangeOutcome::Unreachable(e.to_string()),
        }
    }

    /// POSTs a form with the credentials; the status and body, or why there is none.
    async fn post(
        &self,
        url: &reqwest::Url,
        form: &[(&str, &str)],
    ) -> Result<(u16, Vec<u8>), PostError> {
        let mut request = self.client.post(url.clone()).form(form);
        match credentials(&self.auth) {
            Ok(Credentials::None) => {}
            Ok(Credentials::Bearer(token)) => request = request.bearer_auth(token),
            Ok(Credentials::Basic(user, password)) => {
                request = request.basic_auth(user, Some(password))
            }
            Err(e) => return Err(PostError::Credentials(e)),
        }
        let transport = |e: reqwest::Error| {
            PostError::Transport(crate::http_client::describe_transport_error(&e))
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport)?;
        Ok((status.as_u16(), body.to_vec()))
    }
}

impl MetricsProvider for Prometheus {
    fn query<'a>(&'a self, promql: &'a str) -> BoxFuture<'a, QueryOutcome> {
        Box::pin(self.run(promql))
    }

    fn query_range<'a>(
        &'a self,
        promql: &'a str,
        range: &'a SampleRange,
    ) -> BoxFuture<'a, RangeOutcome> {
        Box::pin(self.run_range(promql, range))
    }

    fn answers_series(&self) -> bool {
        true
    }

    fn query_series<'a>(&'a self, promql: &'a str) -> BoxFuture<'a, SeriesOutcome> {
        Box::pin(self.run_series(promql))
    }
}

/// Unix seconds with milliseconds, as the API accepts.
fn seconds(t: DateTime<Utc>) -> String {
    format!("{:.3}", t.timestamp_millis() as f64 / 1000.0)
}

/// Why a query got no answer from Prometheus (the reason of an `Unreachable` outcome).
#[derive(Debug, thiserror::Error)]
enum PostError {
    /// The credentials' secret cannot be read (rotated away, unset).
    #[error(transparent)]
    Credentials(AnalysisError),
    /// Connecting, sending or reading failed; described without the credentials.
    #[error("{0}")]
    Transport(String),
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
            source_name: e.source_name,
            reason: e.reason,
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            p.range_url.as_str(),
            "http://h:9090/prom/api/v1/query_range"
        );
        let p = Prometheus::new(PrometheusConfig::new("http://h:9090")).unwrap();
        assert_eq!(p.query_url.as_str(), "http://h:9090/api/v1/query");
    }
}
