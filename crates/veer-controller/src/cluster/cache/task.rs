//! The watch tasks: one kube-runtime watcher each, applying its events to the stores it
//! fills and the change journal, and telling the API's [`SharedContact`] whether it answers.
//! A watch of one namespace (or of a cluster-scoped kind) fills one store ([`spawn_one`]);
//! a kind's cluster-wide watch fills one store per namespace veer reads and drops the
//! objects of every other namespace as they arrive ([`spawn_kind`], [`Routes`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use kube::api::{Api, ResourceExt, WatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch as signal;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::super::contact::{SharedContact, WeakContact};
use super::super::journal::Journal;
use super::super::projection::LiveObject;
use super::super::store::Writer;
use super::WatchKey;

/// How often the prober asks a failing API server whether it answers again.
const PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// How long one probe may take before it counts as no answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The message of a refusal that no retry changes (403), from a watcher error.
fn refusal(error: &watcher::Error) -> Option<String> {
    let status = match error {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => s,
        watcher::Error::WatchError(s) => s,
        watcher::Error::InitialListFailed(_)
        | watcher::Error::WatchStartFailed(_)
        | watcher::Error::WatchFailed(_)
        | watcher::Error::NoResourceVersion => return None,
    };
    (status.code == 403).then(|| status.message.clone())
}

/// Did the API server answer? Any status is an answer (a 403 or a 404 is the server
/// speaking) except a 5xx: a server that cannot serve is as good as gone.
fn answered(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code < 500)
}

/// [`answered`], for a watcher's error.
fn watch_answered(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => answered(e),
        watcher::Error::WatchError(status) => status.code < 500,
        watcher::Error::NoResourceVersion => true,
    }
}

/// After a failure: ask for the server's version every [`PROBE_INTERVAL`] until it answers
/// (or the record is gone), so a recovered API is seen even when no watched object changes.
async fn probe_until_answered(client: kube::Client, contact: WeakContact) {
    loop {
        tokio::time::sleep(PROBE_INTERVAL).await;
        let Some(contact) = contact.upgrade() else {
            return;
        };
        let ok = match tokio::time::timeout(PROBE_TIMEOUT, client.apiserver_version()).await {
            Ok(Ok(_)) => true,
            Ok(Err(e)) => answered(&e),
            Err(_) => false,
        };
        if ok {
            contact.succeeded(Utc::now());
            contact.stop_probing();
            // A failure reported as this probe finished found the slot still taken: go on.
            if contact.get().failing_since().is_none() || !contact.start_probing() {
                info!("the Kubernetes API answers again");
                return;
            }
            continue;
        }
        contact.failed(Utc::now());
    }
}

/// The server's message when it refuses to let veer watch `api` (403). The watch asked for
/// selects nothing and is dropped once its answer's status arrives; any other failure is
/// left to the watcher, which retries and reports it.
async fn watch_refused(api: &Api<LiveObject>) -> Option<String> {
    let params = WatchParams::default()
        .labels("veer.io/watch-permission-check")
        .timeout(1);
    match tokio::time::timeout(PROBE_TIMEOUT, api.watch(&params, "0")).await {
        Ok(Err(kube::Error::Api(status))) if status.code == 403 => Some(status.message),
        Ok(Ok(_)) | Ok(Err(_)) | Err(_) => None,
    }
}

/// Record a watch's error in `contact`; start the prober when it is a failure.
fn report_error(contact: &SharedContact, client: &kube::Client, error: &watcher::Error) {
    if watch_answered(error) {
        contact.succeeded(Utc::now());
        return;
    }
    contact.failed(Utc::now());
    if contact.start_probing() {
        tokio::spawn(probe_until_answered(client.clone(), contact.downgrade()));
    }
}

/// What a watch task shares with the cache.
pub(super) struct Shared {
    pub contact: SharedContact,
    pub journal: Arc<Journal>,
}

/// A running watch task, and the server's message once it refused the watch for good (403).
pub(super) struct Task {
    pub handle: JoinHandle<()>,
    pub refused: signal::Receiver<Option<String>>,
}

/// Run `api`'s watcher, handing each event to `apply` (which journals what it changed);
/// errors go to the contact record, a 403 also to [`Task::refused`].
fn spawn(
    client: &kube::Client,
    api: Api<LiveObject>,
    what: String,
    shared: &Shared,
    mut apply: impl FnMut(&watcher::Event<LiveObject>) + Send + 'static,
) -> Task {
    let probe_api = api.clone();
    // veer's own state ConfigMaps are never compared with git: not watched.
    let config = watcher::Config::default().labels(crate::cluster::NOT_OWN_STATE);
    let stream = watcher(api, config).default_backoff();
    info!(watch = %what, "starting watch");
    let (refuse, refused) = signal::channel(None);
    let contact = shared.contact.clone();
    let client = client.clone();
    let handle = tokio::spawn(async move {
        // A list allowed with the watch refused would make the store ready before the
        // watch's 403 arrives: whether a pass saw the refusal would be a race. Asking for
        // the watch first settles it before anything is listed.
        if let Some(reason) = watch_refused(&probe_api).await {
            warn!(watch = %what, %reason, "watch refused (403): veer may not watch this kind here");
            let _ = refuse.send(Some(reason));
        }
        let mut stream = std::pin::pin!(stream);
        let mut failing = false;
        while let Some(event) = stream.next().await {
            match event {
                Ok(event) => {
                    apply(&event);
                    contact.succeeded(Utc::now());
                    if failing {
                        info!(watch = %what, "watch re-established");
                        failing = false;
                    } else if matches!(event, watcher::Event::InitDone) {
                        debug!(watch = %what, "watch listed");
                    }
                }
                Err(error) => {
                    failing = true;
                    report_error(&contact, &client, &error);
                    if let Some(reason) = refusal(&error) {
                        warn!(watch = %what, %error, "watch refused (403): veer may not list or watch this kind here");
                        // Whoever waits drops this watch; nobody waiting is fine too.
                        let _ = refuse.send(Some(reason));
                    } else {
                        warn!(watch = %what, %error, "watch failed; retrying with backoff");
                    }
                }
            }
        }
    });
    Task { handle, refused }
}

/// The watch of one namespace of a kind (or of a cluster-scoped kind), filling `writer`.
pub(super) fn spawn_one(
    client: &kube::Client,
    api: Api<LiveObject>,
    key: &WatchKey,
    shared: &Shared,
    mut writer: Writer,
) -> Task {
    let journal = shared.journal.clone();
    let watched = Arc::new(key.clone());
    // The first list is read by whoever started the watch; a later one (after an error or
    // a 410) may have changed anything the watch holds.
    let mut listed = false;
    spawn(client, api, key.to_string(), shared, move |event| {
        writer.apply(event);
        // The store has applied the event already: a reader that sees it in the journal
        // finds it in the store.
        match event {
            watcher::Event::Apply(o) | watcher::Event::Delete(o) => {
                journal.object(&watched, &o.name_any());
            }
            watcher::Event::InitDone => {
                if listed {
                    journal.watch(&watched);
                }
                listed = true;
            }
            watcher::Event::Init | watcher::Event::InitApply(_) => {}
        }
    })
}

/// One namespace a kind's cluster-wide watch keeps.
pub(super) struct Route {
    writer: Writer,
    watch: Arc<WatchKey>,
    /// Its store holds a list (of an earlier task of the watch, or this one).
    listed: bool,
}

/// The namespaces a kind's cluster-wide watch keeps, by name; shared by the cache (which
/// adds them) and the watch's task. Each new namespace starts a new task (a new list), and
/// only the newest task may write: an aborted one still running cannot overwrite its list.
#[derive(Default)]
pub(super) struct Routes {
    namespaces: HashMap<Box<str>, Route>,
    generation: u64,
}

impl Routes {
    pub(super) fn add(&mut self, key: &WatchKey, namespace: &str, writer: Writer) {
        self.namespaces.insert(
            namespace.into(),
            Route {
                writer,
                watch: Arc::new(key.clone()),
                listed: false,
            },
        );
    }

    /// The watches (one per namespace) whose store holds a list.
    pub(super) fn listed(&self) -> Vec<Arc<WatchKey>> {
        (self.namespaces.values())
            .filter(|r| r.listed)
            .map(|r| r.watch.clone())
            .collect()
    }

    fn apply(
        &mut self,
        event: &watcher::Event<LiveObject>,
        journal: &Journal,
        first_list: &mut bool,
    ) {
        match event {
            watcher::Event::Apply(o) | watcher::Event::Delete(o) => {
                let Some(route) =
                    (o.metadata.namespace.as_deref()).and_then(|ns| self.namespaces.get_mut(ns))
                else {
                    return;
                };
                route.writer.apply(event);
                journal.object(&route.watch, &o.name_any());
            }
            watcher::Event::InitApply(o) => {
                if let Some(route) =
                    (o.metadata.namespace.as_deref()).and_then(|ns| self.namespaces.get_mut(ns))
                {
                    route.writer.apply(event);
                }
            }
            watcher::Event::Init => {
                for route in self.namespaces.values_mut() {
                    route.writer.apply(event);
                }
            }
            watcher::Event::InitDone => {
                for route in self.namespaces.values_mut() {
                    // A namespace's first list is read by whoever added it. This task's
                    // first list follows a new namespace (nothing was missed but while no
                    // task ran): what it changed is told object by object. A later list
                    // (after an error or a 410) may have changed anything.
                    let compare = route.listed && *first_list;
                    let changed = route.writer.apply_compared(event, compare);
                    if route.listed && !*first_list {
                        journal.watch(&route.watch);
                    }
                    for name in changed {
                        journal.object(&route.watch, &name);
                    }
                    route.listed = true;
                }
                *first_list = false;
            }
        }
    }
}

/// Lock `routes`; a poisoned lock still holds whole routes (each event is applied whole).
pub(super) fn lock(routes: &Mutex<Routes>) -> std::sync::MutexGuard<'_, Routes> {
    routes.lock().unwrap_or_else(|p| p.into_inner())
}

/// A (new) cluster-wide watch of a kind, filling the stores of `routes`' namespaces. The
/// task started before it, if any, must be aborted: it writes no more.
pub(super) fn spawn_kind(
    client: &kube::Client,
    api: Api<LiveObject>,
    kind: &WatchKey,
    shared: &Shared,
    routes: &Arc<Mutex<Routes>>,
) -> Task {
    let generation = {
        let mut r = lock(routes);
        r.generation += 1;
        r.generation
    };
    let routes = routes.clone();
    let journal = shared.journal.clone();
    let mut first_list = true;
    let what = format!("{kind} in every namespace veer reads");
    spawn(client, api, what, shared, move |event| {
        let mut routes = lock(&routes);
        if routes.generation == generation {
            routes.apply(event, &journal, &mut first_list);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> Box<kube::core::Status> {
        Box::new(kube::core::Status {
            code,
            ..Default::default()
        })
    }

    #[test]
    fn any_status_but_5xx_is_an_answer_and_no_status_is_none() {
        assert!(answered(&kube::Error::Api(status(403))));
        assert!(answered(&kube::Error::Api(status(404))));
        assert!(!answered(&kube::Error::Api(status(503))));
        let refused =
            kube::Error::ReadEvents(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(!answered(&refused));
        assert!(!watch_answered(&watcher::Error::WatchStartFailed(refused)));
        assert!(watch_answered(&watcher::Error::WatchError(status(410))));
        assert!(watch_answered(&watcher::Error::InitialListFailed(
            kube::Error::Api(status(403))
        )));
        assert!(watch_answered(&watcher::Error::NoResourceVersion));
    }
}
