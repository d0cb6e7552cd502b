//! The synthetic Istio exporter over real HTTP: `/control` and `/metrics`, and traffic that
//! follows VirtualService weights watched through the real kube client.
//!
//! The watch test serves the two calls kube's watcher makes (a list, then a watch stream) from
//! a minimal API server on loopback, so the weights can change under the exporter mid-test.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use veer::exporter::{Exporter, ExporterConfig, ServiceKey, Split, WatchConfig};

fn key() -> ServiceKey {
    ServiceKey::new("shop", "reviews")
}

fn client() -> reqwest::Client {
    veer::http_client::install_crypto_provider();
    reqwest::Client::new()
}

async fn metrics_text(client: &reqwest::Client, exporter: &Exporter) -> String {
    let r = client
        .get(format!("http://{}/metrics", exporter.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// The value of the first sample line starting with `prefix` (labels included).
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn control_endpoint_drives_the_metrics() {
    let exporter = Exporter::start(ExporterConfig::local(100.0)).await.unwrap();
    let client = client();
    let base = format!("http://{}/control/shop/reviews", exporter.addr());

    // Invalid input is refused with the reason.
    let r = client
        .put(&base)
        .json(&json!({"weights": {"v1": 60, "v2": 60}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("sum to 120"));
    let r = client
        .put(format!("{base}/v2"))
        .json(&json!({"errorRate": 2.0, "latencyMs": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let r = client
        .put(&base)
        .json(&json!({"weights": {"v1": 50, "v2": 50}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = client
        .put(format!("{base}/v2"))
        .json(&json!({"errorRate": 0.5, "latencyMs": 300}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        exporter.split(&key()),
        Some(Split::weights([("v1", 50), ("v2", 50)]))
    );

    let v2_500 = r#"istio_requests_total{reporter="destination",source_workload="veer-synthetic-client",source_workload_namespace="shop",destination_workload="reviews-v2",destination_workload_namespace="shop",destination_service="reviews.shop.svc.cluster.local",destination_service_name="reviews",destination_service_namespace="shop",destination_version="v2",request_protocol="http",response_code="500""#;
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = metrics_text(&client, &exporter).await;
        if sample(&text, v2_500).is_some_and(|v| v >= 10.0) {
            break text;
        }
        assert!(Instant::now() < deadline, "no v2 errors counted:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(text.contains("# TYPE istio_requests counter"), "{text}");
    assert!(text.contains("# TYPE istio_request_duration_milliseconds histogram"));
    // 300 ms requests land in the (250, 500] bucket and above, never below.
    let bucket = |le: &str, version: &str, code: &str| {
        text.lines()
            .find(|l| {
                l.starts_with(&format!(
                    "istio_request_duration_milliseconds_bucket{{le=\"{le}\","
                )) && l.contains(&format!("destination_version=\"{version}\""))
                    && l.contains(&format!("response_code=\"{code}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    assert_eq!(bucket("250.0", "v2", "500"), Some(0.0), "{text}");
    assert!(
        bucket("500.0", "v2", "500").is_some_and(|n| n >= 10.0),
        "{text}"
    );
    // v1 keeps the default 20 ms.
    assert!(
        bucket("25.0", "v1", "200").is_some_and(|n| n > 0.0),
        "{text}"
    );
    assert_eq!(bucket("10.0", "v1", "200"), Some(0.0), "{text}");

    // Deleting the override stops traffic: with no VirtualService watched there is no split.
    let r = client.delete(&base).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(exporter.split(&key()), None);
    let state: Value = client
        .get(format!("http://{}/control", exporter.addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        state["services"]["shop/reviews"]["subsets"]["v2"]["behaviour"]["errorRate"],
        json!(0.5)
    );
}

/// Just enough of an API server for kube's watcher on one namespace's VirtualServices.
#[derive(Clone)]
struct FakeApi {
    objects: Arc<Mutex<Vec<Value>>>,
    events: broadcast::Sender<Value>,
}

fn virtual_service(weights: &[(&str, u32)], resource_version: &str) -> Value {
    let route: Vec<Value> = weights
        .iter()
        .map(|(subset, w)| json!({"destination": {"host": "reviews", "subset": subset}, "weight": w}))
        .collect();
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "shop", "resourceVersion": resource_version, "uid": "u1"},
        "spec": {"hosts": ["reviews"], "http": [{"route": route}]}
    })
}

async fn list_or_watch(
    State(api): State<FakeApi>,
    Query(params): Query<Vec<(String, String)>>,
) -> axum::response::Response {
    let watching = params.iter().any(|(k, v)| k == "watch" && v == "true");
    if !watching {
        let items = api.objects.lock().unwrap().clone();
        let list = json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualServiceList",
            "metadata": {"resourceVersion": "1"}, "items": items});
        return axum::Json(list).into_response();
    }
    let stream = BroadcastStream::new(api.events.subscribe()).filter_map(|e| async move {
        e.ok()
            .map(|v| Ok::<_, Infallible>(Bytes::from(format!("{v}\n"))))
    });
    axum::response::Response::new(Body::from_stream(stream))
}

#[tokio::test]
async fn traffic_follows_the_watched_virtual_service() {
    let (events, _) = broadcast::channel(16);
    let api = FakeApi {
        objects: Arc::new(Mutex::new(vec![virtual_service(&[("v1", 100)], "1")])),
        events: events.clone(),
    };
    let app = Router::new()
        .route(
            "/apis/networking.istio.io/v1/namespaces/shop/virtualservices",
            get(list_or_watch),
        )
        .with_state(api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    veer::http_client::install_crypto_provider();
    let config = kube::Config::new(format!("http://{api_addr}").parse().unwrap());
    let kube_client = kube::Client::try_from(config).unwrap();
    let mut exporter_config = ExporterConfig::local(100.0);
    exporter_config.watch = Some(WatchConfig {
        client: kube_client,
        namespace: Some("shop".into()),
        api_version: "v1".into(),
    });
    let exporter = Exporter::start(exporter_config).await.unwrap();

    let wait_for = |want: Split| {
        let exporter = &exporter;
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let got = exporter.split(&key());
                if got.as_ref() == Some(&want) {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "split {got:?}, expected {want:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    wait_for(Split::weights([("v1", 100)])).await;

    // veer moves 10 % to v2: the exporter follows within a tick of the watch event.
    let moved = virtual_service(&[("v1", 90), ("v2", 10)], "2");
    let deadline = Instant::now() + Duration::from_secs(10);
    while events.receiver_count() == 0 {
        assert!(
            Instant::now() < deadline,
            "the exporter never started watching"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    events
        .send(json!({"type": "MODIFIED", "object": moved}))
        .unwrap();
    wait_for(Split::weights([("v1", 90), ("v2", 10)])).await;

    // And the metrics show v2 receiving requests.
    let client = client();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = metrics_text(&client, &exporter).await;
        if text.contains(r#"destination_version="v2""#) {
            break;
        }
        assert!(Instant::now() < deadline, "no v2 traffic:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A test override wins over the live object.
    exporter
        .set_split(&key(), Some(Split::weights([("v2", 100)])))
        .unwrap();
    assert_eq!(exporter.split(&key()), Some(Split::weights([("v2", 100)])));
}

/// The lines of `text` for `metric` carrying every one of `labels`.
fn series<'t>(text: &'t str, metric: &str, labels: &[&str]) -> Vec<&'t str> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")) && labels.iter().all(|x| l.contains(x)))
        .collect()
}

#[tokio::test]
async fn faults_and_the_matched_share_through_control() {
    let exporter = Exporter::start(ExporterConfig::local(100.0)).await.unwrap();
    let client = client();
    let base = format!("http://{}/control/shop/reviews", exporter.addr());
    for (body, reason) in [
        (json!({"matchedShare": 1.5}), "not between 0 and 1"),
        (
            json!({"fault": {"abort": {"httpStatus": 503, "percent": 10}}}),
            "give its weights too",
        ),
        (
            json!({"weights": {"v2": 100}, "fault": {"delay": {"delayMs": 100, "percent": 150}}}),
            "fault delay percent 150",
        ),
    ] {
        let r = client.put(&base).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 400, "{body}");
        assert!(r.text().await.unwrap().contains(reason), "{body}");
    }
    let r = client
        .put(&base)
        .json(&json!({
            "weights": {"v2": 100},
            "matchedShare": 0.5,
            "fault": {"delay": {"delayMs": 1000, "percent": 50},
                      "abort": {"httpStatus": 503, "percent": 20}}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = metrics_text(&client, &exporter).await;
        let aborted = series(
            &text,
            "istio_requests_total",
            &[r#"reporter="source""#, r#"response_flags="FI""#],
        )
        .first()
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok());
        let delayed = series(
            &text,
            "istio_requests_total",
            &[r#"reporter="source""#, r#"response_flags="DI""#],
        )
        .first()
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok());
        if aborted.is_some_and(|n| n >= 10.0) && delayed.is_some_and(|n| n >= 10.0) {
            break text;
        }
        assert!(Instant::now() < deadline, "no faults reported:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Aborted requests are the caller's own 503s, at no workload.
    let aborts = series(&text, "istio_requests_total", &[r#"response_flags="FI""#]);
    assert_eq!(aborts.len(), 1, "{text}");
    assert!(
        aborts[0].contains(r#"destination_workload="unknown""#)
            && aborts[0].contains(r#"destination_version="unknown""#)
            && aborts[0].contains(r#"response_code="503""#),
        "{}",
        aborts[0]
    );
    // Delayed requests took 1020 ms for the caller; the destination never saw the delay.
    let bucket = |reporter: &str, le: &str| {
        series(
            &text,
            "istio_request_duration_milliseconds_bucket",
            &[
                &format!("le=\"{le}\""),
                &format!("reporter=\"{reporter}\""),
                r#"response_flags="DI""#,
            ],
        )
        .first()
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
    };
    assert_eq!(bucket("source", "1000.0"), Some(0.0), "{text}");
    assert!(
        bucket("source", "2500.0").is_some_and(|n| n >= 10.0),
        "{text}"
    );
    assert!(
        series(
            &text,
            "istio_request_duration_milliseconds_bucket",
            &[r#"reporter="destination""#, r#"le="25.0""#]
        )
        .iter()
        .all(|l| !l.ends_with(" 0")),
        "the destination reports 20 ms for every request:\n{text}"
    );
    let state: Value = client
        .get(format!("http://{}/control", exporter.addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        state["services"]["shop/reviews"]["matchedShare"],
        json!(0.5)
    );
}

#[tokio::test]
async fn a_matched_share_out_of_range_is_refused_at_start() {
    let mut config = ExporterConfig::local(10.0);
    config.matched_share = -0.1;
    let Err(e) = Exporter::start(config).await else {
        panic!("a negative matched share started");
    };
    assert!(e.to_string().contains("not between 0 and 1"), "{e}");
}
