//! The HTTP edge: Kubernetes REST paths (`/api/v1/namespaces/{ns}/{plural}/{name}/status`,
//! `/apis/{group}/{version}/…`), discovery, OpenAPI, and watch streams, on top of the store.
//!
//! Resource paths are parsed by hand in one fallback handler: Kubernetes' path grammar is
//! ambiguous for a router (`namespaces/x/status` vs `namespaces/x/configmaps`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State as AxState};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use super::catalog::ResourceType;
use super::openapi;
use super::patch;
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::{
    Change, ChangeType, Ownership, Selection, State, Subresource, Write, at_version,
};
use super::table::{self, IncludeObject, Printer, Representation, TableOptions};

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

fn count_discovery(shared: &Shared) {
    shared.counters.total.fetch_add(1, Ordering::Relaxed);
    shared.counters.discovery.fetch_add(1, Ordering::Relaxed);
}

async fn version(AxState(shared): AxState<Arc<Shared>>) -> Response {
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

async fn core_versions(AxState(shared): AxState<Arc<Shared>>, headers: HeaderMap) -> Response {
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

fn group_json(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(json!({}))})
}

async fn group_list(AxState(shared): AxState<Arc<Shared>>) -> Response {
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

async fn openapi_v2(AxState(shared): AxState<Arc<Shared>>, headers: HeaderMap) -> Response {
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

/// A parsed resource path.
struct Target {
    rt: ResourceType,
    version: String,
    namespace: Option<String>,
    name: Option<String>,
    sub: Subresource,
    /// `/scale` (Deployments): the replica count seen as an `autoscaling/v1` Scale.
    scale: bool,
}

enum Parsed {
    /// `/api/v1` or `/apis/{g}/{v}`: the resource list of a group version.
    ResourceList(String, String),
    /// `/apis/{g}`.
    Group(String),
    Resource(Target),
}

fn not_found_path() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

fn parse_path(state: &State, path: &str) -> Result<Parsed, ApiError> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g] => return Ok(Parsed::Group(g.to_string())),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(not_found_path()),
    };
    if rest.is_empty() {
        return Ok(Parsed::ResourceList(group.into(), version.into()));
    }
    let namespace_sub = |s: &str| matches!(s, "status" | "finalize");
    let (namespace, tail) = match rest {
        ["namespaces", ns, third, tail @ ..] if !(tail.is_empty() && namespace_sub(third)) => {
            (Some(ns.to_string()), &rest[2..])
        }
        _ => (None, rest),
    };
    let (plural, name, sub) = match tail {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(name.to_string()), None),
        [plural, name, sub] => (*plural, Some(name.to_string()), Some(*sub)),
        _ => return Err(not_found_path()),
    };
    let rt = state
        .catalog
        .by_plural(group, version, plural)
        .cloned()
        .ok_or_else(not_found_path)?;
    let scale = sub == Some("scale") && has_scale(&rt);
    let sub = match sub {
        None => Subresource::Main,
        Some("status") if rt.status_subresource => Subresource::Status,
        Some("scale") if scale => Subresource::Main,
        Some(_) => return Err(not_found_path()),
    };
    if (rt.namespaced && namespace.is_none() && name.is_some())
        || (!rt.namespaced && namespace.is_some())
    {
        return Err(not_found_path());
    }
    Ok(Parsed::Resource(Target {
        rt,
        version: version.to_string(),
        namespace,
        name,
        sub,
        scale,
    }))
}

/// Kinds with a `/scale` subresource (for `kubectl scale`).
pub(crate) fn has_scale(rt: &ResourceType) -> bool {
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
fn serve_scale(
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
                PatchFormat::Json => {
                    patch::json(&mut view, &patch).map_err(ApiError::bad_request)?
                }
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

/// The wall clock, read at the edge; the store takes time as an argument.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now()
}

/// The field manager of a write: `fieldManager`, else (as kube-apiserver does) the client's
/// User-Agent up to its first `/` (`kubectl`, `kube-rs`…).
fn field_manager(query: &HashMap<String, String>, headers: &HeaderMap) -> String {
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

fn decode_body(body: &Bytes, content_type: &str) -> Result<Value, ApiError> {
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

fn flag(query: &HashMap<String, String>, key: &str) -> bool {
    query
        .get(key)
        .is_some_and(|v| v == "true" || v == "1" || v.is_empty())
}

fn dry_run(query: &HashMap<String, String>) -> Result<bool, ApiError> {
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
fn table_request(
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
                .map_err(ApiError::bad_request)?,
            headers: true,
        })),
    }
}

/// How `rt` is printed at `version`: by the CRD that registered it, else its built-in printer.
fn printer_of(state: &State, rt: &ResourceType, version: &str) -> Printer {
    match state.crd_of(rt) {
        Some(crd) => Printer::from_crd(crd, version),
        None => Printer::for_kind(&rt.group, &rt.kind),
    }
}

fn selection(target: &Target, query: &HashMap<String, String>) -> Result<Selection, ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))
        .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str))
        .map_err(ApiError::bad_request)?;
    Ok(Selection {
        namespace: target.namespace.clone(),
        labels,
        fields,
    })
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
            let deleted = shared.lock().delete(rt, ns, &name, &preconditions, dry)?;
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
                    state.delete(rt, item_ns, name, &Value::Null, dry)?,
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

fn resource_list(shared: &Shared, group: &str, version: &str) -> Result<Response, ApiError> {
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

/// Which patch format the request's Content-Type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PatchFormat {
    Merge,
    Json,
    Strategic,
    Apply,
}

fn patch_format(content_type: &str) -> Result<PatchFormat, ApiError> {
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
fn patch_object(
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
                let merged = crate::fields::apply_with(
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
            patch::strategic(&mut patched, &patch).map_err(ApiError::bad_request)?;
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
fn apply_error(rt: &ResourceType, name: &str, e: crate::fields::ApplyError) -> ApiError {
    match &e {
        crate::fields::ApplyError::Conflicts(conflicts) => {
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
        crate::fields::ApplyError::NotAnObject => ApiError::bad_request(e.to_string()),
    }
}

/// One watch event line.
fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

/// How a watch writes its objects: as they are, or (`kubectl get -w`) each as a one-row Table.
struct WatchEncoder {
    table: Option<(TableOptions, Printer)>,
}

impl WatchEncoder {
    fn object(&mut self, kind: &str, object: Value) -> Bytes {
        let Some((options, printer)) = &mut self.table else {
            return event_line(kind, &object);
        };
        let rv = object
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let t = table::table(printer, &[object], &rv, options, now());
        // As kube-apiserver does, the column definitions go with the first row only; kubectl
        // reuses them for the rows after.
        options.headers = false;
        event_line(kind, &t)
    }

    /// A bookmark: an object of the kind with only `metadata` (`resourceVersion`, maybe the
    /// initial-events-end annotation). As a Table it is one without rows, which cannot carry
    /// the annotation.
    fn bookmark(&self, object: Value) -> Bytes {
        let Some((options, printer)) = &self.table else {
            return event_line("BOOKMARK", &object);
        };
        let rv = object
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let options = TableOptions {
            headers: false,
            ..*options
        };
        event_line("BOOKMARK", &table::table(printer, &[], rv, &options, now()))
    }
}

fn start_watch(
    shared: &Arc<Shared>,
    target: &Target,
    query: &HashMap<String, String>,
    as_table: Option<TableOptions>,
) -> Result<Response, ApiError> {
    let sel = selection(target, query)?;
    // Streaming lists (`sendInitialEvents=true`): ADDED for what exists, then a bookmark
    // marking the end of the initial events, whatever resourceVersion says.
    let initial_events = flag(query, "sendInitialEvents");
    let from = match query.get("resourceVersion").map(String::as_str) {
        _ if initial_events => None,
        None | Some("") | Some("0") => None,
        Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "resourceVersion {rv:?} is not a version this server issued"
            ))
        })?),
    };
    let bookmarks = flag(query, "allowWatchBookmarks");
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs);
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    let rt = target.rt.clone();
    let version = target.version.clone();
    let (start, mut encoder) = {
        let state = shared.lock();
        let table = as_table.map(|o| (o, printer_of(&state, &rt, &version)));
        (state.watch(&rt, from, &sel), WatchEncoder { table })
    };
    let mut closing = shared.closing.subscribe();
    let interval = shared.bookmark_interval;
    tokio::spawn(async move {
        let start = match start {
            Ok(s) => s,
            Err(e) => {
                // A real server answers 200 and sends the 410 as an ERROR event.
                let _ = tx.send(Ok(event_line("ERROR", &e.to_status()))).await;
                return;
            }
        };
        let mut seen = start.seen;
        let mut feed = start.feed;
        for c in start.backlog {
            if let Some((kind, object)) = render_change(&rt, &version, &sel, &c)
                && tx.send(Ok(encoder.object(kind, object))).await.is_err()
            {
                return;
            }
        }
        if initial_events {
            let end = json!({
                "kind": rt.kind,
                "apiVersion": rt.api_version(&version),
                "metadata": {
                    "resourceVersion": seen.to_string(),
                    "annotations": {"k8s.io/initial-events-end": "true"},
                },
            });
            if tx.send(Ok(encoder.bookmark(end))).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout.unwrap_or(Duration::from_secs(365 * 24 * 3600)));
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        loop {
            tokio::select! {
                received = feed.recv() => match received {
                    Ok(c) => {
                        if c.rv <= seen {
                            continue;
                        }
                        seen = seen.max(c.rv);
                        if let Some((kind, object)) = render_change(&rt, &version, &sel, &c)
                            && tx.send(Ok(encoder.object(kind, object))).await.is_err()
                        {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // This watcher fell behind the history: it must relist.
                        let e = ApiError::expired(seen, seen);
                        let _ = tx.send(Ok(event_line("ERROR", &e.to_status()))).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = ticker.tick(), if bookmarks => {
                    let bookmark = json!({
                        "kind": rt.kind,
                        "apiVersion": rt.api_version(&version),
                        "metadata": {"resourceVersion": seen.to_string()},
                    });
                    if tx.send(Ok(encoder.bookmark(bookmark))).await.is_err() {
                        return;
                    }
                }
                _ = &mut deadline => return,
                // `wait_for`, not `changed`: a watch that starts while the server closes must see it.
                _ = async { closing.wait_for(|c| *c).await.map(|_| ()) } => return,
                _ = tx.closed() => return,
            }
        }
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(ReceiverStream::new(rx)),
    )
        .into_response())
}

/// The event a watch with `sel` sees for change `c`, if any: an object that starts or stops
/// matching a selector is ADDED or DELETED for that watch, as on a real server.
fn render_change(
    rt: &ResourceType,
    version: &str,
    sel: &Selection,
    c: &Change,
) -> Option<(&'static str, Value)> {
    if c.key.group != rt.group || c.key.kind != rt.kind {
        return None;
    }
    let now_matches = sel.matches(&c.object);
    let before = c.previous.as_ref().is_some_and(|p| sel.matches(p));
    let kind = match c.change {
        ChangeType::Added if now_matches => "ADDED",
        ChangeType::Deleted if now_matches => "DELETED",
        ChangeType::Modified => match (before, now_matches) {
            (true, true) => "MODIFIED",
            (false, true) => "ADDED",
            (true, false) => "DELETED",
            (false, false) => return None,
        },
        ChangeType::Added | ChangeType::Deleted => return None,
    };
    Some((kind, at_version(rt, version, c.object.clone())))
}
