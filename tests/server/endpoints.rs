//! Readiness and health, `/metrics` in Prometheus text format, and a real Prometheus
//! scraping it.

use std::time::{Duration, Instant};

use chrono::Utc;

use veer::analysis::{MetricsProvider, Prometheus, PrometheusConfig};
use veer::controller::Pass;
use veer::pass::PassOutcome;
use veer::sync::state::SyncState;

use crate::helpers::{COMMIT, get, start};
use crate::prometheus_support::PrometheusServer;

#[tokio::test]
async fn health_and_readiness_flip_when_the_controller_says() {
    let r = start(true).await;
    assert_eq!(get(&r, "/healthz").await.0, 200);
    let (status, _, body) = get(&r, "/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("no revision loaded yet"), "{body}");
    assert!(body.contains("cluster watches not up yet"), "{body}");
    r.board.set_watches_up(true);
    let (status, _, body) = get(&r, "/readyz").await;
    assert_eq!(
        (status, body.trim()),
        (503, "not ready: no revision loaded yet")
    );
    // A pass that reconciled a revision marks it loaded.
    r.board.record_pass(
        &Pass::InSync {
            commit: COMMIT.into(),
        },
        &SyncState::default(),
        Utc::now(),
    );
    assert_eq!(
        get(&r, "/readyz").await,
        (200, "text/plain; charset=utf-8".into(), "ready\n".into())
    );
    r.board.set_watches_up(false);
    assert_eq!(get(&r, "/readyz").await.0, 503);
    r.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn metrics_are_served_in_prometheus_text_format() {
    let r = start(true).await;
    r.metrics.record_sync(PassOutcome::Synced);
    r.metrics.set_rollout_weight("shop/reviews", 40.0);
    let (status, content_type, body) = get(&r, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, veer::metrics::CONTENT_TYPE);
    assert!(
        body.contains("veer_sync_results_total{outcome=\"synced\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("veer_rollout_weight{rollout=\"shop/reviews\"} 40.0"),
        "{body}"
    );
    assert!(
        body.contains("# TYPE veer_sync_results_total counter"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_metrics() {
    let r = start(true).await;
    r.metrics.record_sync(PassOutcome::Synced);
    r.metrics.record_sync(PassOutcome::Synced);
    let target = r.server.local_addr().to_string();
    let prometheus =
        tokio::task::spawn_blocking(move || PrometheusServer::start_job("veer", &[target]))
            .await
            .unwrap();
    let provider = Prometheus::new(PrometheusConfig::new(&prometheus.url())).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut up, mut synced) = (None, None);
    while Instant::now() < deadline {
        up = provider.query("up{job=\"veer\"}").await.value();
        synced = provider
            .query("veer_sync_results_total{job=\"veer\",outcome=\"synced\"}")
            .await
            .value();
        if up == Some(1.0) && synced == Some(2.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(up, Some(1.0), "Prometheus never saw veer up");
    assert_eq!(
        synced,
        Some(2.0),
        "Prometheus never read veer_sync_results_total"
    );
}
