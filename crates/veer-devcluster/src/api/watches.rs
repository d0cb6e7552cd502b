//! Watch streams: the changes after a resourceVersion (or synthetic ADDED events for what
//! exists), filtered by selectors, with bookmarks, the end of initial events, timeouts, and
//! as one-row Tables for `kubectl get -w`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::params::{flag, printer_of, selection};
use super::path::Target;
use super::{Shared, now};
use crate::catalog::ResourceType;
use crate::status::ApiError;
use crate::store::{Change, ChangeType, Selection, at_version};
use crate::table::{self, Printer, TableOptions};

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

pub(super) fn start_watch(
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
