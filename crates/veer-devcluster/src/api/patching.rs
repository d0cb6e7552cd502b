//! PATCH: the format the Content-Type names (merge, JSON, strategic merge, apply), the patch
//! applied to the object as served at the request's version, and server-side apply with its
//! field ownership and conflicts (an apply may also create).

use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::params::decode_body;
use super::path::Target;
use super::{Shared, now};
use crate::catalog::ResourceType;
use crate::patch;
use crate::status::ApiError;
use crate::store::{Ownership, Subresource, Write, at_version};

/// Which patch format the request's Content-Type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PatchFormat {
    Merge,
    Json,
    Strategic,
    Apply,
}

pub(super) fn patch_format(content_type: &str) -> Result<PatchFormat, ApiError> {
    let base = content_type.split(';').next().unwrap_or("").trim();
    match base {
        "application/merge-patch+json" => Ok(PatchFormat::Merge),
        "application/json-patch+json" => Ok(PatchFormat::Json),
        "application/strategic-merge-patch+json" => Ok(PatchFormat::Strategic),
        "application/apply-patch+yaml" => Ok(PatchFormat::Apply),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

/// Custom kinds (Istio's and CRD-registered ones) are CRDs on a real cluster, which refuse
/// strategic merge patches.
fn is_custom(rt: &ResourceType) -> bool {
    rt.group.contains('.') && !rt.group.ends_with(".k8s.io")
}

#[allow(clippy::too_many_arguments)]
pub(super) fn patch_object(
    shared: &Shared,
    target: &Target,
    name: &str,
    content_type: &str,
    body: &Bytes,
    manager: &str,
    force: bool,
    dry: bool,
) -> Result<(StatusCode, Value), ApiError> {
    let rt = &target.rt;
    let ns = target.namespace.as_deref();
    let format = patch_format(content_type)?;
    let mut patch = decode_body(body, content_type)?;
    if format == PatchFormat::Apply
        && patch.is_object()
        && patch.pointer("/metadata/name").is_none()
    {
        // The URL names the object; an applied configuration may leave the name out.
        if !patch.get("metadata").is_some_and(Value::is_object) {
            patch["metadata"] = json!({});
        }
        patch["metadata"]["name"] = json!(name);
    }
    let now = now();
    let mut state = shared.lock();
    let live = match state.get(rt, ns, name) {
        Ok(live) => Some(live),
        // Only an apply may create.
        Err(_) if format == PatchFormat::Apply => None,
        Err(e) => return Err(e),
    };
    let update = Write {
        now,
        dry_run: dry,
        ownership: Ownership::Update { manager },
    };
    let (old, patched, w) = match (format, live) {
        (PatchFormat::Apply, live) => {
            if !body_names(&patch, name) {
                return Err(ApiError::bad_request(format!(
                    "the name of the applied object does not match the name on the URL ({name})"
                )));
            }
            if manager == "unknown" || manager.is_empty() {
                return Err(ApiError::bad_request(
                    "PATCH, application/apply-patch+yaml requires fieldManager to be set",
                ));
            }
            if target.sub == Subresource::Status {
                // Approximation: a status apply merges the applied status and records no
                // ownership (status is never owned in this server).
                let old = live.ok_or_else(|| ApiError::not_found(rt, name))?;
                let mut patched = at_version(rt, &target.version, old.clone());
                if let Some(status) = patch.get("status") {
                    patch::merge(&mut patched, &json!({"status": status}));
                }
                (Some(old), patched, update)
            } else {
                // Apply against the object as served at the request's version, as a real
                // server converts before applying (else apiVersion itself looks changed).
                let base = live.clone().map(|l| at_version(rt, &target.version, l));
                // With the list rules of this server's schemas (CRD markers included).
                let merged = veer_fields::fields::apply_with(
                    base.as_ref(),
                    &patch,
                    manager,
                    force,
                    now,
                    state.catalog.semantics(),
                )
                .map_err(|e| apply_error(rt, name, e))?;
                let applied = Write {
                    ownership: Ownership::Applied,
                    ..update
                };
                (live, merged, applied)
            }
        }
        (_, None) => return Err(ApiError::not_found(rt, name)),
        (PatchFormat::Strategic, Some(_)) if is_custom(rt) => {
            return Err(ApiError::unsupported_media_type(content_type));
        }
        (PatchFormat::Merge, Some(old)) => {
            let mut patched = at_version(rt, &target.version, old.clone());
            patch::merge(&mut patched, &patch);
            (Some(old), patched, update)
        }
        (PatchFormat::Json, Some(old)) => {
            let mut patched = at_version(rt, &target.version, old.clone());
            patch::json(&mut patched, &patch).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the JSON patch could not be applied: {e}"),
                )
            })?;
            (Some(old), patched, update)
        }
        (PatchFormat::Strategic, Some(old)) => {
            let mut patched = at_version(rt, &target.version, old.clone());
            patch::strategic(&mut patched, &patch)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            (Some(old), patched, update)
        }
    };
    match old {
        Some(old) => {
            let out = state.write_patched(rt, old, patched, target.sub, &w)?;
            Ok((StatusCode::OK, out))
        }
        None => {
            let out = state.create(rt, ns, patched, &w)?;
            Ok((StatusCode::CREATED, out))
        }
    }
}

/// An applied object names the object of the URL (or no name at all).
fn body_names(applied: &Value, name: &str) -> bool {
    applied
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .is_none_or(|n| n == name)
}

/// A refused apply as kube-apiserver reports it: 409 Conflict, one cause per field.
fn apply_error(rt: &ResourceType, name: &str, e: veer_fields::fields::ApplyError) -> ApiError {
    match &e {
        veer_fields::fields::ApplyError::Conflicts(conflicts) => {
            let causes: Vec<Value> = conflicts
                .conflicts
                .iter()
                .flat_map(|c| {
                    c.paths.iter().map(move |p| {
                        json!({
                            "reason": "FieldManagerConflict",
                            "message": format!("conflict with \"{}\" using {}", c.manager, c.api_version),
                            "field": p.to_string(),
                        })
                    })
                })
                .collect();
            ApiError::new(409, "Conflict", e.to_string()).with_details(json!({
                "name": name,
                "group": rt.group,
                "kind": rt.plural,
                "causes": causes,
            }))
        }
        veer_fields::fields::ApplyError::NotAnObject => ApiError::bad_request(e.to_string()),
    }
}
