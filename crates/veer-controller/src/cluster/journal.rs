//! The change journal: which objects the watches saw change, in the order they saw it, so a
//! pass can ask "what changed since position N" instead of re-reading every object.
//!
//! Every watch event the cache applies is recorded with a global sequence number: an object
//! added, modified or deleted is recorded by its watch and name; a watch that listed again
//! (a restart after an error or a 410) or was dropped is recorded whole ("everything of that
//! watch changed"). A watch's first list is not recorded: whoever started it was waiting for
//! it and read what it listed. The journal holds at most [`CAPACITY`] entries; asking from a
//! position older than the oldest entry kept answers [`Changes::overflowed`], and the caller
//! plans everything.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use super::discovery::Resolved;
use super::{Cluster, WatchKey};
use crate::manifest::ObjectKey;

/// Entries kept. A burst larger than this is cheaper to plan whole than to sort out, and
/// bounds the journal's memory (an entry is a shared watch key and a name).
pub(super) const CAPACITY: usize = 16_384;

#[derive(Debug, Clone)]
enum Entry {
    /// One object of the watch was added, modified or deleted.
    Object(Arc<WatchKey>, String),
    /// Everything the watch holds may have changed.
    Watch(Arc<WatchKey>),
}

#[derive(Debug, Default)]
struct Inner {
    /// `(sequence, entry)`, oldest first.
    entries: VecDeque<(u64, Entry)>,
    /// The sequence number of the next entry: the journal's position.
    next: u64,
    /// Entries before this sequence number may have been dropped.
    dropped_before: u64,
}

/// The journal shared by the cache and its watch tasks.
#[derive(Debug, Default)]
pub(super) struct Journal {
    inner: Mutex<Inner>,
    capacity: Option<usize>,
    /// Told of every entry, for whoever waits for the watches to see a write
    /// (`Cache::await_observed`).
    recorded: tokio::sync::Notify,
}

impl Journal {
    #[cfg(test)]
    fn with_capacity(capacity: usize) -> Self {
        Journal {
            capacity: Some(capacity),
            ..Journal::default()
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every update leaves the journal whole; a poisoned lock still holds a usable one.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, entry: Entry) {
        let capacity = self.capacity.unwrap_or(CAPACITY);
        let mut inner = self.inner();
        let seq = inner.next;
        inner.next += 1;
        inner.entries.push_back((seq, entry));
        while inner.entries.len() > capacity {
            if let Some((dropped, _)) = inner.entries.pop_front() {
                inner.dropped_before = dropped + 1;
            }
        }
        drop(inner);
        self.recorded.notify_waiters();
    }

    /// A future that completes at the next entry recorded after it was enabled.
    pub(super) fn next_entry(&self) -> tokio::sync::futures::Notified<'_> {
        self.recorded.notified()
    }

    /// An object of `watch` was added, modified or deleted.
    pub(super) fn object(&self, watch: &Arc<WatchKey>, name: &str) {
        self.push(Entry::Object(watch.clone(), name.to_string()));
    }

    /// Everything `watch` holds may have changed (it listed again, or it was dropped).
    pub(super) fn watch(&self, watch: &Arc<WatchKey>) {
        self.push(Entry::Watch(watch.clone()));
    }

    /// Forget the entries before `position`: whoever reads the journal asks from there on
    /// (asking from before it answers [`Changes::overflowed`]). A burst (the initial sync
    /// writes every object) leaves no entries, nor their room, behind.
    pub(super) fn forget_before(&self, position: u64) {
        let mut inner = self.inner();
        let keep = inner.entries.partition_point(|(seq, _)| *seq < position);
        if keep == 0 {
            return;
        }
        let last = inner.entries.drain(..keep).next_back().map(|(seq, _)| seq);
        if let Some(last) = last {
            inner.dropped_before = inner.dropped_before.max(last + 1);
        }
        if inner.entries.capacity() > 4 * inner.entries.len() + 64 {
            inner.entries.shrink_to_fit();
        }
    }

    pub(super) fn position(&self) -> u64 {
        self.inner().next
    }

    pub(super) fn since(&self, position: u64) -> Changes {
        let inner = self.inner();
        let mut changes = Changes {
            through: inner.next,
            overflowed: position < inner.dropped_before,
            ..Changes::default()
        };
        if changes.overflowed {
            return changes;
        }
        let start = inner.entries.partition_point(|(seq, _)| *seq < position);
        for (_, entry) in inner.entries.range(start..) {
            match entry {
                Entry::Object(watch, name) => {
                    let watches = changes.objects.entry(name.clone()).or_default();
                    if !watches.contains(watch) {
                        watches.push(watch.clone());
                    }
                }
                Entry::Watch(watch) => {
                    changes.watches.insert(watch.clone());
                }
            }
        }
        changes
    }
}

/// What the watches saw change since a position ([`Cluster::changes_since`]).
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// The journal's position when asked: the next question starts here.
    pub through: u64,
    /// More changed than the journal holds: take everything as changed.
    pub overflowed: bool,
    /// Changed objects by name, with the watches that saw them.
    objects: HashMap<String, Vec<Arc<WatchKey>>>,
    /// Watches whose every object may have changed.
    watches: HashSet<Arc<WatchKey>>,
}

impl Changes {
    /// Nothing changed (and nothing was lost).
    pub fn is_empty(&self) -> bool {
        !self.overflowed && self.objects.is_empty() && self.watches.is_empty()
    }

    /// Did `key` change? `resolve` says which resource serves its kind (discovery's cached
    /// answer); a kind not resolved was never watched, so nothing was seen of it. Cheap for
    /// a key whose name and kind no change mentions (no lookup).
    pub fn touches(
        &self,
        key: &ObjectKey,
        resolve: impl FnOnce(&ObjectKey) -> Option<Resolved>,
    ) -> bool {
        if self.overflowed {
            return true;
        }
        if !self.mentions(&key.kind, &key.name) {
            return false;
        }
        let Some(resolved) = resolve(key) else {
            return false;
        };
        let watch = WatchKey::of(key, &resolved);
        (self.objects.get(&key.name)).is_some_and(|ws| ws.iter().any(|w| **w == watch))
            || self.watches.contains(&watch)
    }

    /// Could an object of this kind and name have changed? A first sieve, without a lookup
    /// or a copy: `false` is certain, `true` needs [`Changes::touches`].
    pub fn mentions(&self, kind: &str, name: &str) -> bool {
        self.overflowed
            || self.objects.contains_key(name)
            || self.watches.iter().any(|w| w.kind == kind)
    }
}

#[cfg(test)]
impl Changes {
    /// Changes naming one object of `watch` (for the controller's tests).
    pub(crate) fn of_object(watch: WatchKey, name: &str) -> Self {
        let journal = Journal::default();
        journal.object(&Arc::new(watch), name);
        journal.since(0)
    }
}

impl Cluster {
    /// The change journal's position now: [`Cluster::changes_since`] it later says what the
    /// watches saw change in between.
    pub fn journal_position(&self) -> u64 {
        self.cache.journal().position()
    }

    /// What the watches saw change since `position` (a [`Cluster::journal_position`] or a
    /// [`Changes::through`]). Reads memory only.
    pub fn changes_since(&self, position: u64) -> Changes {
        self.cache.journal().since(position)
    }

    /// Nothing before `position` will be asked for again (it is where the next
    /// [`Cluster::changes_since`] starts): the journal lets those entries go.
    pub fn forget_changes_before(&self, position: u64) {
        self.cache.journal().forget_before(position);
    }

    /// Did `key` change according to `changes`?
    pub fn touched(&self, changes: &Changes, key: &ObjectKey) -> bool {
        changes.touches(key, |k| self.discovery.cached(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::discovery::ApiResource;

    fn watch(kind: &str, namespace: Option<&str>) -> Arc<WatchKey> {
        Arc::new(WatchKey {
            group: String::new(),
            version: "v1".into(),
            kind: kind.into(),
            namespace: namespace.map(str::to_string),
        })
    }

    fn key(kind: &str, namespace: Option<&str>, name: &str) -> ObjectKey {
        ObjectKey {
            group: String::new(),
            version: "v1".into(),
            kind: kind.into(),
            namespace: namespace.map(str::to_string),
            name: name.into(),
        }
    }

    #[test]
    fn an_entry_wakes_whoever_waits_for_the_next() {
        let journal = Journal::default();
        let w = watch("ConfigMap", Some("shop"));
        let next = journal.next_entry();
        let mut next = std::pin::pin!(next);
        next.as_mut().enable();
        let pending = futures::FutureExt::now_or_never(next.as_mut());
        assert!(pending.is_none(), "nothing recorded yet");
        journal.object(&w, "settings");
        assert!(
            futures::FutureExt::now_or_never(next).is_some(),
            "the entry wakes it"
        );
        // A watch recorded whole wakes too.
        let again = journal.next_entry();
        let mut again = std::pin::pin!(again);
        again.as_mut().enable();
        journal.watch(&w);
        assert!(futures::FutureExt::now_or_never(again).is_some());
    }

    fn resolved(key: &ObjectKey) -> Option<Resolved> {
        let gvk = kube::core::GroupVersionKind::gvk(&key.group, &key.version, &key.kind);
        Some(Resolved {
            resource: ApiResource::from_gvk(&gvk),
            namespaced: key.kind != "Namespace",
        })
    }

    #[test]
    fn changes_since_a_position_name_what_each_watch_saw() {
        let journal = Journal::default();
        let shop = watch("ConfigMap", Some("shop"));
        journal.object(&shop, "early");
        let start = journal.position();
        assert!(journal.since(start).is_empty());
        journal.object(&shop, "settings");
        journal.object(&shop, "settings");
        let changes = journal.since(start);
        assert_eq!(changes.through, start + 2);
        assert!(!changes.is_empty());
        assert!(changes.touches(&key("ConfigMap", Some("shop"), "settings"), resolved));
        // The same name in another namespace (another watch), or another kind: untouched.
        assert!(!changes.touches(&key("ConfigMap", Some("web"), "settings"), resolved));
        assert!(!changes.touches(&key("Secret", Some("shop"), "settings"), resolved));
        // Before the start, not since.
        assert!(!changes.touches(&key("ConfigMap", Some("shop"), "early"), resolved));
        // A kind never resolved was never watched.
        assert!(!changes.touches(&key("ConfigMap", Some("shop"), "settings"), |_| None));
        assert!(journal.since(changes.through).is_empty());
    }

    #[test]
    fn a_watch_that_listed_again_changed_every_object_it_holds() {
        let journal = Journal::default();
        let start = journal.position();
        journal.watch(&watch("ConfigMap", Some("shop")));
        let changes = journal.since(start);
        assert!(changes.touches(&key("ConfigMap", Some("shop"), "any"), resolved));
        assert!(!changes.touches(&key("ConfigMap", Some("web"), "any"), resolved));
        // Cluster-scoped kinds are watched cluster-wide.
        journal.watch(&watch("Namespace", None));
        let changes = journal.since(start);
        assert!(changes.touches(&key("Namespace", None, "shop"), resolved));
    }

    #[test]
    fn forgotten_entries_are_gone_and_asking_from_before_them_is_an_overflow() {
        let journal = Journal::default();
        let shop = watch("ConfigMap", Some("shop"));
        for name in ["a", "b", "c"] {
            journal.object(&shop, name);
        }
        let middle = journal.position() - 1;
        journal.forget_before(middle);
        assert_eq!(journal.inner().entries.len(), 1);
        let changes = journal.since(middle);
        assert!(!changes.overflowed);
        assert!(changes.touches(&key("ConfigMap", Some("shop"), "c"), resolved));
        assert!(!changes.touches(&key("ConfigMap", Some("shop"), "b"), resolved));
        assert!(journal.since(0).overflowed);
        // Forgetting up to where it already starts changes nothing.
        journal.forget_before(middle);
        assert!(!journal.since(middle).overflowed);
        journal.forget_before(journal.position());
        assert!(journal.inner().entries.is_empty());
        assert!(journal.since(journal.position()).is_empty());
    }

    #[test]
    fn asking_from_before_what_the_journal_holds_is_an_overflow() {
        let journal = Journal::with_capacity(3);
        let shop = watch("ConfigMap", Some("shop"));
        let start = journal.position();
        for name in ["a", "b", "c"] {
            journal.object(&shop, name);
        }
        assert!(!journal.since(start).overflowed);
        journal.object(&shop, "d");
        let changes = journal.since(start);
        assert!(changes.overflowed && !changes.is_empty());
        assert!(changes.touches(&key("Secret", None, "x"), |_| None));
        // From a position still held: exact.
        let changes = journal.since(start + 1);
        assert!(!changes.overflowed);
        assert!(changes.touches(&key("ConfigMap", Some("shop"), "d"), resolved));
        assert!(!changes.touches(&key("ConfigMap", Some("shop"), "a"), resolved));
    }
}
