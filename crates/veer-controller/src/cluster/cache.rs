//! The watch cache: a store per watched kind and namespace (or cluster-scoped kind) with
//! what veer reads of its objects (module `projection`), started on demand and kept for the
//! life of the process. A namespaced kind is watched by one kube-runtime watcher over every
//! namespace, which keeps the objects of the namespaces veer reads and drops the others as
//! they arrive (each watch holds a connection, its buffers and a task: about 50 KB, 10 MiB
//! for 4 kinds in 50 namespaces watched one by one); when the server refuses that (403:
//! RBAC of Roles only), the kind is watched namespace by namespace. A watch the server
//! refuses there too is reported at once and dropped: waiting for it to list would only wait
//! out the timeout.
//!
//! The watches are also how veer knows whether the API answers ([`SharedContact`]): every
//! event is an answer, every error without one a failure. Watches speak only when something
//! changes, so after a failure a small prober asks the server for its version every few
//! seconds until it answers; while the API answers it sends nothing (module `task`).
//!
//! Every event a watch applies is also written to the change [`Journal`], so a reconcile
//! can plan only what changed.

mod task;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::api::Api;
use tracing::info;

use super::contact::SharedContact;
use super::discovery::{Discovery, Resolved};
use super::journal::Journal;
use super::projection::LiveObject;
use super::store::{self, Store};
use crate::manifest::ObjectKey;

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

/// Where a watch's objects come from.
enum Source {
    /// A watcher of its own: a cluster-scoped kind, or one namespace of a kind veer may not
    /// watch cluster-wide.
    Own(task::Task),
    /// Its kind's cluster-wide watch (the key of [`Watches::kinds`]).
    Kind(WatchKey),
}

/// One watched kind and namespace (or cluster-scoped kind): what plans read.
struct Watch {
    store: Store,
    resource: Resolved,
    source: Source,
}

/// A namespaced kind watched cluster-wide, for the namespaces of its [`task::Routes`].
struct KindWatch {
    routes: Arc<Mutex<task::Routes>>,
    task: task::Task,
}

/// What the cache runs.
#[derive(Default)]
struct Watches {
    by_key: BTreeMap<WatchKey, Watch>,
    kinds: BTreeMap<WatchKey, KindWatch>,
    /// Kinds the server refused to list or watch cluster-wide (403): watched namespace by
    /// namespace, as RBAC of Roles allows.
    namespaced_only: BTreeSet<WatchKey>,
}

impl Watches {
    /// The watches running: each namespace's own, and each kind's cluster-wide one.
    fn count(&self) -> usize {
        let own = (self.by_key.values())
            .filter(|w| matches!(w.source, Source::Own(_)))
            .count();
        own + self.kinds.len()
    }

    /// Stop `kind`'s cluster-wide watch and forget its namespaces' watches; their objects
    /// may have changed since (unknown now).
    fn drop_kind(&mut self, kind: &WatchKey, journal: &Journal) {
        let Some(k) = self.kinds.remove(kind) else {
            return;
        };
        k.task.handle.abort();
        for watch in task::lock(&k.routes).listed() {
            journal.watch(&watch);
        }
        self.by_key
            .retain(|_, w| !matches!(&w.source, Source::Kind(of) if of == kind));
    }
}

/// The cluster-wide watch a namespaced kind's watch in one namespace is part of (the key
/// without its namespace); `None` for a cluster-scoped kind.
fn kind_of(key: &WatchKey) -> Option<WatchKey> {
    key.namespace.as_ref()?;
    Some(WatchKey {
        namespace: None,
        ..key.clone()
    })
}

/// Why a watch is not there to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum EnsureError {
    /// Not listed within the wait.
    NotReady,
    /// The server refused the list or watch (403); its message.
    Refused { reason: String },
}

#[derive(Default)]
pub(super) struct Cache {
    watches: Mutex<Watches>,
    /// Whether the API answers, as the watches see it.
    contact: SharedContact,
    /// What the watches saw change.
    journal: Arc<Journal>,
}

impl Drop for Cache {
    fn drop(&mut self) {
        let watches = self.watches();
        for watch in watches.by_key.values() {
            if let Source::Own(task) = &watch.source {
                task.handle.abort();
            }
        }
        for kind in watches.kinds.values() {
            kind.task.handle.abort();
        }
    }
}

impl Cache {
    fn watches(&self) -> std::sync::MutexGuard<'_, Watches> {
        // Entries are inserted whole; a poisoned lock still holds a consistent map.
        self.watches.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Watches running now.
    pub(super) fn len(&self) -> usize {
        self.watches().count()
    }

    /// The record the watches keep of whether the API answers.
    pub(super) fn contact(&self) -> SharedContact {
        self.contact.clone()
    }

    /// What the watches saw change.
    pub(super) fn journal(&self) -> &Journal {
        &self.journal
    }

    fn shared(&self) -> task::Shared {
        task::Shared {
            contact: self.contact.clone(),
            journal: self.journal.clone(),
        }
    }

    /// Start the watches of `wanted` not running yet, without waiting for them. A namespace
    /// of a namespaced kind joins its kind's cluster-wide watch, which lists again (once for
    /// all the namespaces added here): 4 watches for 4 kinds in 50 namespaces instead of 200,
    /// each with its connection and buffers. The cluster-wide watch keeps only these
    /// namespaces' objects. A kind the server refused cluster-wide is watched namespace by
    /// namespace.
    pub(super) fn want(&self, client: &kube::Client, wanted: &[(&WatchKey, &Resolved)]) {
        let shared = self.shared();
        let mut watches = self.watches();
        let mut restart: BTreeMap<WatchKey, (&Resolved, Arc<Mutex<task::Routes>>)> =
            BTreeMap::new();
        for &(key, resolved) in wanted {
            if watches.by_key.contains_key(key) {
                continue;
            }
            let kind = kind_of(key).filter(|k| !watches.namespaced_only.contains(k));
            let (writer, store) = store::channel();
            let (Some(kind), Some(namespace)) = (kind, key.namespace.as_deref()) else {
                let api: Api<LiveObject> = match &key.namespace {
                    Some(ns) => Api::namespaced_with(client.clone(), ns, &resolved.resource),
                    None => Api::all_with(client.clone(), &resolved.resource),
                };
                let task = task::spawn_one(client, api, key, &shared, writer);
                let watch = Watch {
                    store,
                    resource: resolved.clone(),
                    source: Source::Own(task),
                };
                watches.by_key.insert(key.clone(), watch);
                continue;
            };
            let routes = match (watches.kinds.get(&kind), restart.get(&kind)) {
                (Some(k), _) => k.routes.clone(),
                (None, Some((_, routes))) => routes.clone(),
                (None, None) => Arc::default(),
            };
            task::lock(&routes).add(key, namespace, writer);
            let watch = Watch {
                store,
                resource: resolved.clone(),
                source: Source::Kind(kind.clone()),
            };
            watches.by_key.insert(key.clone(), watch);
            restart.insert(kind, (resolved, routes));
        }
        // One new task (one list) per kind, whatever number of namespaces joined it.
        for (kind, (resolved, routes)) in restart {
            let api: Api<LiveObject> = Api::all_with(client.clone(), &resolved.resource);
            let task = task::spawn_kind(client, api, &kind, &shared, &routes);
            if let Some(old) = watches.kinds.insert(kind, KindWatch { routes, task }) {
                old.task.handle.abort();
            }
        }
    }

    /// Start the watch when it is not running, then wait until it has listed, or the server
    /// refuses it (403), whichever comes first. A kind refused cluster-wide is watched in
    /// this namespace alone, and waited for again.
    pub(super) async fn ensure(
        &self,
        client: &kube::Client,
        key: &WatchKey,
        resolved: &Resolved,
        within: Duration,
    ) -> Result<(), EnsureError> {
        loop {
            self.want(client, &[(key, resolved)]);
            let (store, mut refused, kind) = {
                let watches = self.watches();
                let Some(w) = watches.by_key.get(key) else {
                    return Err(EnsureError::NotReady);
                };
                match &w.source {
                    Source::Own(task) => (w.store.clone(), task.refused.clone(), None),
                    Source::Kind(kind) => match watches.kinds.get(kind) {
                        Some(k) => (w.store.clone(), k.task.refused.clone(), Some(kind.clone())),
                        None => return Err(EnsureError::NotReady),
                    },
                }
            };
            // A refusal seen after the watch had listed makes its memory stale too: checked
            // first.
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
            let Err(error) = outcome else {
                return Ok(());
            };
            // Drop the watch so the next reconcile starts afresh; what it held is unknown now.
            let mut watches = self.watches();
            match kind {
                Some(kind) => {
                    watches.drop_kind(&kind, &self.journal);
                    if let EnsureError::Refused { reason } = &error {
                        info!(kind = %kind, %reason, "not allowed to watch cluster-wide: watching namespace by namespace");
                        watches.namespaced_only.insert(kind);
                        continue;
                    }
                }
                None => {
                    if let Some(w) = watches.by_key.remove(key) {
                        if let Source::Own(task) = &w.source {
                            task.handle.abort();
                        }
                        self.journal.watch(&Arc::new(key.clone()));
                    }
                }
            }
            return Err(error);
        }
    }

    /// The texts of every object of `group`'s `kind` (at whatever version it is watched) in
    /// `namespace`, when such a watch has listed; `None` when none has.
    pub(super) fn listed_in(
        &self,
        group: &str,
        kind: &str,
        namespace: &str,
    ) -> Option<Vec<Arc<str>>> {
        // The stores are read after the lock is let go, as `ensure` does.
        let stores: Vec<Store> = (self.watches().by_key.iter())
            .filter(|(k, _)| {
                k.group == group && k.kind == kind && k.namespace.as_deref() == Some(namespace)
            })
            .map(|(_, w)| w.store.clone())
            .collect();
        stores.iter().find_map(Store::listed_texts)
    }

    /// A watch's store and the resource it reads its objects as, for reading many objects
    /// of it without asking for the watch each time.
    pub(super) fn watch(&self, watch: &WatchKey) -> Option<(Store, Resolved)> {
        let watches = self.watches();
        let w = watches.by_key.get(watch)?;
        Some((w.store.clone(), w.resource.clone()))
    }

    fn store_for(&self, key: &ObjectKey, resolved: &Resolved) -> Option<(Store, Resolved)> {
        self.watch(&WatchKey::of(key, resolved))
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
            // Listening before looking, so an event applied in between is not missed.
            let next = self.journal.next_entry();
            tokio::pin!(next);
            next.as_mut().enable();
            let missing: Vec<ObjectKey> = writes
                .iter()
                .filter(|w| !self.seen(discovery, w))
                .map(|w| w.key.clone())
                .collect();
            let now = tokio::time::Instant::now();
            if missing.is_empty() || now >= deadline {
                return missing;
            }
            // Looked at again as soon as a watch records an event (on one thread the watch
            // runs only while this waits), or after 20 ms (what the journal does not record:
            // a watch's first list).
            let wait = Duration::from_millis(20).min(deadline - now);
            let _ = tokio::time::timeout(wait, next).await;
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
}
