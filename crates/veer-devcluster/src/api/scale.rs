//! The `/scale` subresource (Deployments, for `kubectl scale`): an `autoscaling/v1` Scale
//! view of `.spec.replicas`, read with GET and written with PUT or PATCH.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::params::{decode_body, dry_run, field_manager};
use super::patching::{PatchFormat, patch_format};
use super::path::Target;
use super::{Shared, json_response, now, wrote};
use crate::catalog::ResourceType;
use crate::patch;
use crate::status::ApiError;
use crate::store::{Ownership, Subresource, Write};

/// Kinds with a `/scale` subresource (for `kubectl scale`).
pub(super) fn has_scale(rt: &ResourceType) -> bool {
    rt.group == "apps" && rt.kind == "Deployment"
}

/// The `autoscaling/v1` Scale view of a Deployment.
fn scale_of(object: &Value) -> Value {
    let meta = &object["metadata"];
    let labels = object
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": object.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {
            "replicas": object.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": labels,
        },
    })
}

/// GET, PUT or PATCH of `/scale`: reads and writes `.spec.replicas` of the object.
pub(super) fn serve_scale(
    shared: &Shared,
    method: &Method,
    target: &Target,
    name: &str,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let rt = &target.rt;
    let ns = target.namespace.as_deref();
    let mut state = shared.lock();
    let old = state.get(rt, ns, name)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("application/json");
    let wanted = match *method {
        Method::GET => return Ok(json_response(StatusCode::OK, &scale_of(&old))),
        Method::PUT => decode_body(body, content_type)?,
        Method::PATCH => {
            let patch = decode_body(body, content_type)?;
            let mut view = scale_of(&old);
            match patch_format(content_type)? {
                PatchFormat::Json => patch::json(&mut view, &patch)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?,
                PatchFormat::Merge | PatchFormat::Strategic | PatchFormat::Apply => {
                    patch::merge(&mut view, &patch)
                }
            }
            view
        }
        _ => {
            return Err(ApiError::method_not_allowed(format!(
                "{method} is not supported on /scale"
            )));
        }
    };
    let replicas = wanted
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .ok_or_else(|| ApiError::bad_request("a Scale needs spec.replicas"))?;
    let mut patched = old.clone();
    patched["spec"]["replicas"] = json!(replicas);
    if let Some(rv) = wanted
        .pointer("/metadata/resourceVersion")
        .filter(|v| v.is_string())
    {
        patched["metadata"]["resourceVersion"] = rv.clone();
    }
    let manager = field_manager(query, headers);
    let dry = dry_run(query)?;
    let w = Write {
        now: now(),
        dry_run: dry,
        ownership: Ownership::Update { manager: &manager },
    };
    let out = state.write_patched(rt, old, patched, Subresource::Main, &w)?;
    drop(state);
    wrote(shared, dry);
    Ok(json_response(StatusCode::OK, &scale_of(&out)))
}
