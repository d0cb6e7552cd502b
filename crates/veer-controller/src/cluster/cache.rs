//! The watch cache: one kube-runtime watcher per watched kind (and namespace, for
//! namespaced kinds), started on demand and kept for the life of the process, each filling a
//! [`store`] with what veer reads of its objects (module `projection`). A watch the server
//! refuses (403 on its list or watch) is reported at once and dropped: waiting for it to list
//! would only wait out the timeout.
//!
//! The watches are also how veer knows whether the API answers ([`SharedContact`]): every
//! event is an answer, every error without one a failure. Watches speak only when something
//! changes, so after a failure a small prober asks the server for its version every few
//! seconds until it answers; while the API answers it sends nothing.
//!
//! Every event a watch applies is also written to the change [`Journal`], so a reconcile
//! can plan only what changed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use kube::api::{Api, ResourceExt};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch as signal;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::contact::{SharedContact, WeakContact};
use super::discovery::{Discovery, Resolved};
use super::journal::Journal;
use super::projection::LiveObject;
use super::store::{self, Store};
use crate::manifest::ObjectKey;

/// How often the prober asks a failing API server whether it answers again.
const PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// How long one probe may take before it counts as no answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What one watch covers: a kind at a version, in one namespace or cluster-wide.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WatchKey {
    pub group: String,
    pub version: String,
    pub kind: String,
    /// `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
}

impl WatchKey {
    pub fn of(key: &ObjectKey, resolved: &Resolved) -> Self {
        WatchKey {
            group: key.group.clone(),
            version: key.version.clone(),
            kind: key.kind.clone(),
            namespace: if resolved.namespaced {
                key.namespace.clone()
            } else {
                None
            },
        }
    }
}

impl std::fmt::Display for WatchKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let api_version = if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        };
        match &self.namespace {
            Some(ns) => write!(f, "{api_version} {} in {ns}", self.kind),
            None => write!(f, "{api_version} {}", self.kind),
        }
    }
}

/// A write the cache should see: the object at this resourceVersion, or `None` for gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub key: ObjectKey,
    pub resource_version: Option<String>,
}

struct Watch {
    store: Store,
    resource: Resolved,
    task: JoinHandle<()>,
    /// The server's message once it refused the watch for good (403).
    refused: signal::Receiver<Option<String>>,
}

/// Why a watch is not there to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum EnsureError {
    /// Not listed within the wait.
    NotReady,
    /// The server refused the list or watch (403); its message.
    Refused { reason: String },
}

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

#[derive(Default)]
pub(super) struct Cache {
    watches: Mutex<BTreeMap<WatchKey, Watch>>,
    /// Whether the API answers, as the watches see it.
    contact: SharedContact,
    /// What the watches saw change.
    journal: Arc<Journal>,
}

impl Drop for Cache {
    fn drop(&mut self) {
        for watch in self.watches().values() {
            watch.task.abort();
        }
    }
}

impl Cache {
    fn watches(&self) -> std::sync::MutexGuard<'_, BTreeMap<WatchKey, Watch>> {
        // Entries are inserted whole; a poisoned lock still holds a consistent map.
        self.watches.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn len(&self) -> usize {
        self.watches().len()
    }

    /// The record the watches keep of whether the API answers.
    pub(super) fn contact(&self) -> SharedContact {
        self.contact.clone()
    }

    /// What the watches saw change.
    pub(super) fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Start the watch when it is not running, then wait until it has listed, or the server
    /// refuses it (403), whichever comes first.
    pub(super) async fn ensure(
        &self,
        client: &kube::Client,
        key: &WatchKey,
        resolved: &Resolved,
        within: Duration,
    ) -> Result<(), EnsureError> {
        let (store, mut refused) = {
            let mut watches = self.watches();
            match watches.get(key) {
                Some(w) => (w.store.clone(), w.refused.clone()),
                None => {
                    let watch = start(client, key, resolved, &self.contact, &self.journal);
                    let handles = (watch.store.clone(), watch.refused.clone());
                    watches.insert(key.clone(), watch);
                    handles
                }
            }
        };
        // A refusal seen after the watch had listed makes its memory stale too: checked first.
        let outcome = tokio::select! {
            biased;
            r = refused.wait_for(Option::is_some) => match r {
                Ok(reason) => Err(EnsureError::Refused {
                    reason: reason.clone().unwrap_or_default(),
                }),
                // The task ended without a refusal: it cannot list any more either.
                Err(_) => Err(EnsureError::NotReady),
            },
            r = tokio::time::timeout(within, store.ready()) => match r {
                Ok(true) => Ok(()),
                Ok(false) | Err(_) => Err(EnsureError::NotReady),
            },
        };
        if outcome.is_err() {
            // Drop the watch so the next reconcile starts afresh; what it held is unknown now.
            if let Some(w) = self.watches().remove(key) {
                w.task.abort();
                self.journal.watch(&Arc::new(key.clone()));
            }
        }
        outcome
    }

    /// A watch's store and the resource it reads its objects as, for reading many objects
    /// of it without asking for the watch each time.
    pub(super) fn watch(&self, watch: &WatchKey) -> Option<(Store, Resolved)> {
        let watches = self.watches();
        let w = watches.get(watch)?;
        Some((w.store.clone(), w.resource.clone()))
    }

    fn store_for(&self, key: &ObjectKey, resolved: &Resolved) -> Option<(Store, Resolved)> {
        let watches = self.watches();
        let watch = watches.get(&WatchKey::of(key, resolved))?;
        Some((watch.store.clone(), watch.resource.clone()))
    }

    /// Has the cache seen this write?
    fn seen(&self, discovery: &Discovery, write: &Observed) -> bool {
        let Some(resolved) = discovery.cached(&write.key) else {
            return true;
        };
        let Some((store, resource)) = self.store_for(&write.key, &resolved) else {
            // Not watched: nothing will plan from it.
            return true;
        };
        let current = store.get(namespace_of(&write.key, &resource), &write.key.name);
        match (&write.resource_version, current) {
            (None, None) => true,
            (None, Some(_)) => false,
            (Some(_), None) => false,
            (Some(wanted), Some(object)) => match object.resource_version.as_deref() {
                Some(have) => at_least(have, wanted),
                None => false,
            },
        }
    }

    pub(super) async fn await_observed(
        &self,
        discovery: &Discovery,
        writes: &[Observed],
        within: Duration,
    ) -> Vec<ObjectKey> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let missing: Vec<ObjectKey> = writes
                .iter()
                .filter(|w| !self.seen(discovery, w))
                .map(|w| w.key.clone())
                .collect();
            if missing.is_empty() || tokio::time::Instant::now() >= deadline {
                return missing;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// resourceVersions are opaque, but every server we know issues increasing integers; when
/// both parse, a newer version also counts as seen (someone wrote after us).
fn at_least(have: &str, wanted: &str) -> bool {
    if have == wanted {
        return true;
    }
    match (have.parse::<u64>(), wanted.parse::<u64>()) {
        (Ok(h), Ok(w)) => h >= w,
        _ => false,
    }
}

/// The namespace `key`'s object lives in as its watch's store knows it: none for a
/// cluster-scoped kind, whatever git wrote.
pub(super) fn namespace_of<'k>(key: &'k ObjectKey, resolved: &Resolved) -> Option<&'k str> {
    match (&key.namespace, resolved.namespaced) {
        (Some(ns), true) => Some(ns),
        (Some(_), false) | (None, _) => None,
    }
}

fn start(
    client: &kube::Client,
    key: &WatchKey,
    resolved: &Resolved,
    contact: &SharedContact,
    journal: &Arc<Journal>,
) -> Watch {
    let (mut writer, store) = store::channel();
    let api: Api<LiveObject> = match &key.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resolved.resource),
        None => Api::all_with(client.clone(), &resolved.resource),
    };
    let what = key.to_string();
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    info!(watch = %what, "starting watch");
    let (refuse, refused) = signal::channel(None);
    let contact = contact.clone();
    let client = client.clone();
    let journal = journal.clone();
    let watched = Arc::new(key.clone());
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        let mut failing = false;
        // The first list is read by whoever started the watch; a later one (after an error
        // or a 410) may have changed anything the watch holds.
        let mut listed = false;
        while let Some(event) = stream.next().await {
            match event {
                Ok(event) => {
                    writer.apply(&event);
                    // The store has applied the event already: a reader that sees it in the
                    // journal finds it in the store.
                    match &event {
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
    Watch {
        store,
        resource: resolved.clone(),
        task,
        refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_versions_compare_as_numbers_when_they_are() {
        let cases = [
            ("5", "5", true),
            ("6", "5", true),
            ("4", "5", false),
            ("10", "9", true),
            ("abc", "abc", true),
            ("abc", "abd", false),
        ];
        for (have, wanted, expected) in cases {
            assert_eq!(at_least(have, wanted), expected, "{have} vs {wanted}");
        }
    }

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
