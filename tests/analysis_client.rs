//! The Prometheus client's edges that a real Prometheus does not show easily: credentials sent
//! (and re-read), a server that never answers, a 5xx. Served by small loopback HTTP servers.

use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use veer::analysis::{MetricsProvider, Prometheus, PrometheusAuth, PrometheusConfig, QueryOutcome};
use veer::secret::SecretSource;

const ANSWER: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"42"]}]}}"#;

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// Answers 42 only to `Authorization: <expected>`, else 401.
fn guarded(expected: &'static str) -> Router {
    Router::new().route(
        "/api/v1/query",
        post(move |headers: HeaderMap| async move {
            match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                Some(v) if v == expected => (StatusCode::OK, ANSWER),
                _ => (StatusCode::UNAUTHORIZED, "unauthorized"),
            }
        }),
    )
}

#[tokio::test]
async fn bearer_token_is_read_from_a_file_and_re_read() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let url = serve(guarded("Bearer s3cret")).await;
    let mut config = PrometheusConfig::new(&url);
    config.auth = PrometheusAuth::Bearer(SecretSource::File(token.clone()));
    let provider = Prometheus::new(config).unwrap();
    assert_eq!(provider.query("up").await, QueryOutcome::Value(42.0));
    // A rotated secret is picked up at the next query; the refused one reads as unreachable
    // (cannot measure), and the message never carries the secret.
    std::fs::write(&token, "rotated").unwrap();
    let outcome = provider.query("up").await;
    assert!(
        matches!(&outcome, QueryOutcome::Unreachable(m) if m.contains("401") && !m.contains("rotated")),
        "{outcome:?}"
    );
    std::fs::remove_file(&token).unwrap();
    let outcome = provider.query("up").await;
    assert!(
        matches!(&outcome, QueryOutcome::Unreachable(m) if m.contains("cannot read the Prometheus credentials")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn basic_auth_from_the_environment() {
    // "veer:pw" in base64.
    let url = serve(guarded("Basic dmVlcjpwdw==")).await;
    // SAFETY: this variable name is used by this test only.
    unsafe { std::env::set_var("VEER_TEST_ANALYSIS_BASIC_PW", "pw") };
    let mut config = PrometheusConfig::new(&url);
    config.auth = PrometheusAuth::Basic {
        username: "veer".into(),
        password: SecretSource::Env("VEER_TEST_ANALYSIS_BASIC_PW".into()),
    };
    let provider = Prometheus::new(config).unwrap();
    assert_eq!(provider.query("up").await, QueryOutcome::Value(42.0));
}

#[tokio::test]
async fn a_silent_server_times_out_as_unreachable() {
    let app = Router::new().route(
        "/api/v1/query",
        post(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            ANSWER
        }),
    );
    let url = serve(app).await;
    let mut config = PrometheusConfig::new(&url);
    config.timeout = Duration::from_millis(300);
    let provider = Prometheus::new(config).unwrap();
    let start = Instant::now();
    let outcome = provider.query("up").await;
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert!(
        matches!(&outcome, QueryOutcome::Unreachable(m) if m.contains("timed out")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn server_errors_are_unreachable_not_query_errors() {
    let app = Router::new().route(
        "/api/v1/query",
        post(|| async {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"status":"error","errorType":"unavailable","error":"starting up"}"#,
            )
        }),
    );
    let provider = Prometheus::new(PrometheusConfig::new(&serve(app).await)).unwrap();
    let outcome = provider.query("up").await;
    assert!(
        matches!(&outcome, QueryOutcome::Unreachable(m) if m.contains("503") && m.contains("starting up")),
        "{outcome:?}"
    );
}
