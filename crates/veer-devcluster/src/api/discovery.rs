//! Discovery and OpenAPI: `/version`, `/api`, `/apis`, `/apis/{group}`, the resources of a
//! group version, and `/openapi/v2` (JSON, or protobuf when asked).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::path::not_found_path;
use super::{Shared, json_response};
use crate::openapi;
use crate::status::ApiError;

fn count_discovery(shared: &Shared) {
    shared.counters.total.fetch_add(1, Ordering::Relaxed);
    shared.counters.discovery.fetch_add(1, Ordering::Relaxed);
}

pub(super) async fn version(AxState(shared): AxState<Arc<Shared>>) -> Response {
    count_discovery(&shared);
    json_response(
        StatusCode::OK,
        &json!({
            "major": "1",
            "minor": "33",
            "gitVersion": "v1.33.0-veer-devcluster",
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "none (veer dev-cluster)",
            "compiler": "rustc",
            "platform": "linux/amd64"
        }),
    )
}

pub(super) async fn core_versions(
    AxState(shared): AxState<Arc<Shared>>,
    headers: HeaderMap,
) -> Response {
    count_discovery(&shared);
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    json_response(
        StatusCode::OK,
        &json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]
        }),
    )
}

pub(super) fn group_json(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(json!({}))})
}

pub(super) async fn group_list(AxState(shared): AxState<Arc<Shared>>) -> Response {
    count_discovery(&shared);
    let groups: Vec<Value> = shared
        .lock()
        .catalog
        .groups()
        .iter()
        .map(|(g, vs)| group_json(g, vs))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
    )
}

pub(super) async fn openapi_v2(
    AxState(shared): AxState<Arc<Shared>>,
    headers: HeaderMap,
) -> Response {
    count_discovery(&shared);
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if accept.contains("protobuf") {
        (
            StatusCode::OK,
            // What kube-apiserver sends: Go's mime parser rejects the '@' of the name asked for.
            [(header::CONTENT_TYPE, "application/octet-stream")],
            openapi::v2_protobuf(&shared.lock().catalog),
        )
            .into_response()
    } else {
        json_response(StatusCode::OK, &openapi::v2_json(&shared.lock().catalog))
    }
}

pub(super) fn resource_list(
    shared: &Shared,
    group: &str,
    version: &str,
) -> Result<Response, ApiError> {
    let state = shared.lock();
    let resources: Vec<Value> = state
        .catalog
        .in_group_version(group, version)
        .flat_map(|t| t.discovery_entries())
        .collect();
    if resources.is_empty() {
        return Err(not_found_path());
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    ))
}
