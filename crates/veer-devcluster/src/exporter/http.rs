//! The exporter's HTTP surface: `/metrics` for Prometheus, `/control` for tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde::Deserialize;

use super::traffic::{Behaviour, check_matched_share};
use super::weights::{ServiceKey, Split};
use super::{Shared, check_split};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/control", get(dump))
        .route(
            "/control/{namespace}/{service}",
            put(put_service).delete(delete_override),
        )
        .route("/control/{namespace}/{service}/{subset}", put(put_subset))
        .with_state(shared)
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    match shared.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics").into_response(),
    }
}

async fn dump(State(shared): State<Arc<Shared>>) -> Response {
    let traffic = shared.traffic().clone();
    Json(traffic).into_response()
}

/// `PUT /control/{namespace}/{service}`: a route override (weights, with an optional mirror
/// and fault) for every request, the request rate, and/or the share of requests that carry
/// the A/B header.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ServiceControl {
    #[serde(default)]
    weights: Option<BTreeMap<String, u32>>,
    #[serde(default)]
    mirror: Option<super::weights::Mirror>,
    #[serde(default)]
    fault: Option<super::weights::Fault>,
    #[serde(default)]
    requests_per_second: Option<f64>,
    #[serde(default)]
    matched_share: Option<f64>,
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, message).into_response()
}

async fn put_service(
    State(shared): State<Arc<Shared>>,
    Path((namespace, service)): Path<(String, String)>,
    Json(control): Json<ServiceControl>,
) -> Response {
    let key = ServiceKey::new(&namespace, &service);
    if let Some(rps) = control.requests_per_second
        && !(rps.is_finite() && rps >= 0.0)
    {
        return bad_request(format!("requestsPerSecond {rps} is not a rate"));
    }
    if let Some(share) = control.matched_share
        && let Err(reason) = check_matched_share(share)
    {
        return bad_request(reason.to_string());
    }
    if control.weights.is_none() && (control.mirror.is_some() || control.fault.is_some()) {
        return bad_request("mirror and fault belong to a route: give its weights too".into());
    }
    let split = control.weights.map(|weights| Split {
        weights,
        mirror: control.mirror,
        fault: control.fault,
    });
    if let Some(split) = &split
        && let Err(reason) = check_split(split)
    {
        return bad_request(reason.to_string());
    }
    let mut traffic = shared.traffic();
    if let Some(rps) = control.requests_per_second {
        traffic.set_rate(&key, rps);
    }
    if let Some(share) = control.matched_share {
        traffic.set_matched_share(&key, share);
    }
    if split.is_some() {
        traffic.set_override(&key, split);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn delete_override(
    State(shared): State<Arc<Shared>>,
    Path((namespace, service)): Path<(String, String)>,
) -> Response {
    shared
        .traffic()
        .set_override(&ServiceKey::new(&namespace, &service), None);
    StatusCode::NO_CONTENT.into_response()
}

async fn put_subset(
    State(shared): State<Arc<Shared>>,
    Path((namespace, service, subset)): Path<(String, String, String)>,
    Json(behaviour): Json<Behaviour>,
) -> Response {
    if let Err(reason) = behaviour.check() {
        return bad_request(reason.to_string());
    }
    shared
        .traffic()
        .set_behaviour(&ServiceKey::new(&namespace, &service), &subset, behaviour);
    StatusCode::NO_CONTENT.into_response()
}
