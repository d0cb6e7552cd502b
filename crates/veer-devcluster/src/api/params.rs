//! What a request asks for beyond its path: the field manager of a write, its body (JSON or
//! YAML), boolean flags, `dryRun`, the label and field selectors, and whether a GET wants a
//! Table (and with which printer).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::http::{HeaderMap, header};
use serde_json::Value;

use super::path::Target;
use crate::catalog::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::{Selection, State};
use crate::table::{self, IncludeObject, Printer, Representation, TableOptions};

/// The field manager of a write: `fieldManager`, else (as kube-apiserver does) the client's
/// User-Agent up to its first `/` (`kubectl`, `kube-rs`…).
pub(super) fn field_manager(query: &HashMap<String, String>, headers: &HeaderMap) -> String {
    if let Some(m) = query.get("fieldManager").filter(|m| !m.is_empty()) {
        return m.clone();
    }
    headers
        .get(header::USER_AGENT)
        .and_then(|h| h.to_str().ok())
        .and_then(|ua| ua.split('/').next())
        .filter(|m| !m.is_empty())
        .unwrap_or("unknown")
        .to_string()
}

pub(super) fn decode_body(body: &Bytes, content_type: &str) -> Result<Value, ApiError> {
    if content_type.contains("yaml") {
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::bad_request("the request body is not UTF-8"))?;
        serde_saphyr::from_str::<Value>(text)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid YAML: {e}")))
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
    }
}

pub(super) fn flag(query: &HashMap<String, String>, key: &str) -> bool {
    query
        .get(key)
        .is_some_and(|v| v == "true" || v == "1" || v.is_empty())
}

pub(super) fn dry_run(query: &HashMap<String, String>) -> Result<bool, ApiError> {
    match query.get("dryRun").map(String::as_str) {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "unsupported dryRun value {other:?}: only \"All\" is supported"
        ))),
    }
}

/// The Table a GET asks for (`Accept: application/json;as=Table;…`, as `kubectl get` sends),
/// or `None` for the objects themselves.
pub(super) fn table_request(
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<Option<TableOptions>, ApiError> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    match table::negotiate(accept) {
        Representation::Objects => Ok(None),
        Representation::Table(version) => Ok(Some(TableOptions {
            version,
            include: IncludeObject::parse(query.get("includeObject").map(String::as_str))
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
            headers: true,
        })),
    }
}

/// How `rt` is printed at `version`: by the CRD that registered it, else its built-in printer.
pub(super) fn printer_of(state: &State, rt: &ResourceType, version: &str) -> Printer {
    match state.crd_of(rt) {
        Some(crd) => Printer::from_crd(crd, version),
        None => Printer::for_kind(&rt.group, &rt.kind),
    }
}

pub(super) fn selection(
    target: &Target,
    query: &HashMap<String, String>,
) -> Result<Selection, ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let fields = FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Selection {
        namespace: target.namespace.clone(),
        labels,
        fields,
    })
}
