//! The HTTP edge: Kubernetes REST paths (`/api/v1/namespaces/{ns}/{plural}/{name}/status`,
//! `/apis/{group}/{version}/…`), discovery, OpenAPI, and watch streams, on top of the store.
//!
//! Resource paths are parsed by hand in one fallback handler: Kubernetes' path grammar is
//! ambiguous for a router (`namespaces/x/status` vs `namespaces/x/configmaps`).
//!
//! This file holds what handlers share, the router and the resource handler (each verb on a
//! resource path); the rest is in one submodule per concern:
//! - `discovery`: `/version`, `/api`, `/apis`, a group version's resources, OpenAPI;
//! - `path`: parsing a resource path into its kind, version, namespace, name, subresource;
//! - `params`: what a request asks for in its query and headers (field manager, dry run,
//!   selectors, a Table), and its body;
//! - `patching`: PATCH in its four formats, server-side apply included;
//! - `scale`: the `/scale` subresource of Deployments;
//! - `watches`: watch streams (selectors, bookmarks, initial events, tables).

mod discovery;
mod params;
mod patching;
mod path;
mod scale;
mod watches;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State as AxState};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use super::status::ApiError;
use super::store::{Ownership, State, Write, at_version};
use super::table;
use discovery::{core_versions, group_json, group_list, openapi_v2, resource_list, version};
use params::{decode_body, dry_run, field_manager, flag, printer_of, selection, table_request};
use patching::patch_object;
use path::{Parsed, not_found_path, parse_path};
use scale::serve_scale;
use watches::start_watch;

/// Counts of the requests served, by verb (for benchmarks: an idle poll must make none).
#[derive(Debug, Default)]
pub struct Counters {
    pub total: AtomicU64,
    pub gets: AtomicU64,
    pub lists: AtomicU64,
    pub watches: AtomicU64,
    pub writes: AtomicU64,
    pub discovery: AtomicU64,
}

/// A copy of [`Counters`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    pub total: u64,
    pub gets: u64,
    pub lists: u64,
    pub watches: u64,
    pub writes: u64,
    pub discovery: u64,
}

impl Counters {
    pub fn snapshot(&self) -> RequestCounts {
        RequestCounts {
            total: self.total.load(Ordering::Relaxed),
            gets: self.gets.load(Ordering::Relaxed),
            lists: self.lists.load(Ordering::Relaxed),
            watches: self.watches.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            discovery: self.discovery.load(Ordering::Relaxed),
        }
    }
}

/// What handlers share.
pub struct Shared {
    pub state: Mutex<State>,
    pub counters: Counters,
    /// Woken after every committed write (the state file writer listens).
    pub dirty: Notify,
    /// Flips to true at shutdown so open watches end and the server can stop.
    pub closing: watch::Sender<bool>,
    pub bookmark_interval: Duration,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the map half-written in a way that
        // matters for a dev server; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/api", get(core_versions))
        .route("/apis", get(group_list))
        .route("/openapi/v2", get(openapi_v2))
        .route("/healthz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .fallback(resource)
        .with_state(shared)
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error_response(e: &ApiError) -> Response {
    let code = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, &e.to_status())
}

/// The wall clock, read at the edge; the store takes time as an argument.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now()
}

async fn resource(
    AxState(shared): AxState<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    shared.counters.total.fetch_add(1, Ordering::Relaxed);
    match serve(&shared, &method, uri.path(), &headers, &query, &body).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

async fn serve(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let parsed = parse_path(&shared.lock(), path)?;
    let target = match parsed {
        Parsed::ResourceList(group, version) => {
            shared.counters.discovery.fetch_add(1, Ordering::Relaxed);
            return resource_list(shared, &group, &version);
        }
        Parsed::Group(group) => {
            shared.counters.discovery.fetch_add(1, Ordering::Relaxed);
            let groups = shared.lock().catalog.groups();
            let (g, vs) = groups
                .iter()
                .find(|(g, _)| *g == group)
                .ok_or_else(not_found_path)?;
            let mut body = group_json(g, vs);
            body["kind"] = json!("APIGroup");
            body["apiVersion"] = json!("v1");
            return Ok(json_response(StatusCode::OK, &body));
        }
        Parsed::Resource(t) => t,
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let counters = &shared.counters;
    let rt = &target.rt;
    let ns = target.namespace.as_deref();
    let respond =
        |code: StatusCode, obj: Value| json_response(code, &at_version(rt, &target.version, obj));
    if target.scale
        && let Some(name) = &target.name
    {
        shared.counters.writes.fetch_add(1, Ordering::Relaxed);
        return serve_scale(shared, method, &target, name, headers, query, body);
    }
    match (method.clone(), target.name.clone()) {
        (Method::GET, None) if flag(query, "watch") => {
            counters.watches.fetch_add(1, Ordering::Relaxed);
            start_watch(shared, &target, query, table_request(headers, query)?)
        }
        (Method::GET, None) => {
            counters.lists.fetch_add(1, Ordering::Relaxed);
            let sel = selection(&target, query)?;
            let as_table = table_request(headers, query)?;
            let (items, rv, as_table) = {
                let state = shared.lock();
                let (items, rv) = state.list(rt, &sel);
                let as_table = as_table.map(|o| (o, printer_of(&state, rt, &target.version)));
                (items, rv, as_table)
            };
            let items: Vec<Value> = items
                .into_iter()
                .map(|o| at_version(rt, &target.version, o))
                .collect();
            let body = match as_table {
                Some((options, printer)) => {
                    table::table(&printer, &items, &rv.to_string(), &options, now())
                }
                None => json!({
                    "kind": format!("{}List", rt.kind),
                    "apiVersion": rt.api_version(&target.version),
                    "metadata": {"resourceVersion": rv.to_string()},
                    "items": items,
                }),
            };
            Ok(json_response(StatusCode::OK, &body))
        }
        (Method::GET, Some(name)) => {
            counters.gets.fetch_add(1, Ordering::Relaxed);
            let as_table = table_request(headers, query)?;
            let (obj, as_table) = {
                let state = shared.lock();
                let obj = state.get(rt, ns, &name)?;
                let as_table = as_table.map(|o| (o, printer_of(&state, rt, &target.version)));
                (obj, as_table)
            };
            match as_table {
                Some((options, printer)) => {
                    let obj = at_version(rt, &target.version, obj);
                    let rv = obj
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    let t = table::table(&printer, &[obj], &rv, &options, now());
                    Ok(json_response(StatusCode::OK, &t))
                }
                None => Ok(respond(StatusCode::OK, obj)),
            }
        }
        (Method::POST, None) => {
            counters.writes.fetch_add(1, Ordering::Relaxed);
            let obj = decode_body(body, &content_type)?;
            let dry = dry_run(query)?;
            let manager = field_manager(query, headers);
            let w = Write {
                now: now(),
                dry_run: dry,
                ownership: Ownership::Update { manager: &manager },
            };
            let created = shared.lock().create(rt, ns, obj, &w)?;
            wrote(shared, dry);
            Ok(respond(StatusCode::CREATED, created))
        }
        (Method::PUT, Some(name)) => {
            counters.writes.fetch_add(1, Ordering::Relaxed);
            let obj = decode_body(body, &content_type)?;
            let dry = dry_run(query)?;
            let manager = field_manager(query, headers);
            let w = Write {
                now: now(),
                dry_run: dry,
                ownership: Ownership::Update { manager: &manager },
            };
            let updated = shared.lock().update(rt, ns, &name, obj, target.sub, &w)?;
            wrote(shared, dry);
            Ok(respond(StatusCode::OK, updated))
        }
        (Method::PATCH, Some(name)) => {
            counters.writes.fetch_add(1, Ordering::Relaxed);
            let dry = dry_run(query)?;
            let (code, obj) = patch_object(
                shared,
                &target,
                &name,
                &content_type,
                body,
                &field_manager(query, headers),
                flag(query, "force"),
                dry,
            )?;
            wrote(shared, dry);
            Ok(respond(code, obj))
        }
        (Method::DELETE, Some(name)) => {
            counters.writes.fetch_add(1, Ordering::Relaxed);
            let options = if body.is_empty() {
                Value::Null
            } else {
                decode_body(body, &content_type)?
            };
            let dry = dry_run(query)?
                || options
                    .get("dryRun")
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|v| v == "All"));
            let preconditions = options.get("preconditions").cloned().unwrap_or(Value::Null);
            let deleted = shared
                .lock()
                .delete(rt, ns, &name, &preconditions, dry, now())?;
            wrote(shared, dry);
            Ok(respond(StatusCode::OK, deleted))
        }
        (Method::DELETE, None) => {
            counters.writes.fetch_add(1, Ordering::Relaxed);
            let dry = dry_run(query)?;
            let sel = selection(&target, query)?;
            let mut state = shared.lock();
            let (items, _) = state.list(rt, &sel);
            let mut deleted = Vec::new();
            for item in items {
                let name = item
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let item_ns = item.pointer("/metadata/namespace").and_then(Value::as_str);
                deleted.push(at_version(
                    rt,
                    &target.version,
                    state.delete(rt, item_ns, name, &Value::Null, dry, now())?,
                ));
            }
            drop(state);
            wrote(shared, dry);
            Ok(json_response(
                StatusCode::OK,
                &json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(&target.version), "metadata": {}, "items": deleted}),
            ))
        }
        (m, _) => Err(ApiError::method_not_allowed(format!(
            "{m} is not supported on this path"
        ))),
    }
}

fn wrote(shared: &Shared, dry_run: bool) {
    if !dry_run {
        shared.dirty.notify_one();
    }
}
