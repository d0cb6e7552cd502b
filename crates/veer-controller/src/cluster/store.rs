//! One watch's store: its objects by namespace and name, each as the projection's text
//! ([`super::projection::LiveObject`]) and its resourceVersion, filled from the watcher's
//! events by the watch's task ([`Writer`]) and read by plans ([`Store`]).
//!
//! What kube-runtime's reflector store does, without its per-object costs: the reflector keys
//! each object on an `ObjectRef` that carries a copy of the resource's five names, and keeps
//! a whole `ObjectMeta` beside it (about 0.8 KB an object, as much as the projection's text).
//!
//! Like the reflector, a re-list (after a 410 or an error) fills a new map and swaps it in
//! when it is complete, so readers never see a half-listed watch; the store is ready once the
//! first list is in.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use kube::runtime::watcher;
use tokio::sync::watch as signal;

use super::projection::LiveObject;

/// What the store keeps of one object.
#[derive(Debug, Clone)]
pub(super) struct Stored {
    pub resource_version: Option<Box<str>>,
    pub object: Arc<str>,
}

/// `namespace/name`, or `name` for a cluster-scoped object (a name has no `/`).
type Objects = HashMap<Box<str>, Stored>;

fn key(namespace: Option<&str>, name: &str) -> Box<str> {
    match namespace {
        Some(ns) => format!("{ns}/{name}").into(),
        None => name.into(),
    }
}

/// The reading side; cheap to clone.
#[derive(Clone)]
pub(super) struct Store {
    objects: Arc<RwLock<Objects>>,
    ready: signal::Receiver<bool>,
}

/// The watch task's side.
pub(super) struct Writer {
    objects: Arc<RwLock<Objects>>,
    /// The list in progress (between `Init` and `InitDone`).
    listing: Option<Objects>,
    ready: signal::Sender<bool>,
}

/// A store and its writer.
pub(super) fn channel() -> (Writer, Store) {
    let objects = Arc::new(RwLock::new(Objects::new()));
    let (ready, ready_rx) = signal::channel(false);
    (
        Writer {
            objects: objects.clone(),
            listing: None,
            ready,
        },
        Store {
            objects,
            ready: ready_rx,
        },
    )
}

fn stored(object: &LiveObject) -> Option<(Box<str>, Stored)> {
    let meta = &object.metadata;
    Some((
        key(meta.namespace.as_deref(), meta.name.as_deref()?),
        Stored {
            resource_version: object.metadata.resource_version.as_deref().map(Into::into),
            object: object.text(),
        },
    ))
}

impl Writer {
    /// Apply one watcher event.
    pub(super) fn apply(&mut self, event: &watcher::Event<LiveObject>) {
        self.apply_compared(event, false);
    }

    /// Apply one watcher event; at the end of a list, when `compare`, the names of the
    /// objects it found new, gone or at another resourceVersion than the store held: what a
    /// re-list changed, object by object (a resourceVersion changes with every write).
    pub(super) fn apply_compared(
        &mut self,
        event: &watcher::Event<LiveObject>,
        compare: bool,
    ) -> Vec<String> {
        if let watcher::Event::InitDone = event {
            let listed = self.listing.take().unwrap_or_default();
            // The old map is dropped outside the lock.
            let old = std::mem::replace(&mut *write(&self.objects), listed);
            let changed = if compare {
                changed_between(&old, &read(&self.objects))
            } else {
                Vec::new()
            };
            drop(old);
            self.ready.send_replace(true);
            return changed;
        }
        match event {
            watcher::Event::Apply(object) => {
                if let Some((name, entry)) = stored(object) {
                    write(&self.objects).insert(name, entry);
                }
            }
            watcher::Event::Delete(object) => {
                let meta = &object.metadata;
                if let Some(name) = meta.name.as_deref() {
                    write(&self.objects).remove(&key(meta.namespace.as_deref(), name));
                }
            }
            watcher::Event::Init => self.listing = Some(Objects::new()),
            watcher::Event::InitApply(object) => {
                if let Some((name, entry)) = stored(object) {
                    self.listing
                        .get_or_insert_with(Objects::new)
                        .insert(name, entry);
                }
            }
            watcher::Event::InitDone => {}
        }
        Vec::new()
    }
}

/// The names (less the namespace) of the objects in one map and not the other, or in both
/// at different resourceVersions.
fn changed_between(old: &Objects, new: &Objects) -> Vec<String> {
    let differs = |a: &Stored, b: Option<&Stored>| {
        b.is_none_or(|b| a.resource_version.is_none() || a.resource_version != b.resource_version)
    };
    let name = |key: &str| key.rsplit('/').next().unwrap_or(key).to_string();
    (new.iter().filter(|(k, v)| differs(v, old.get(*k))))
        .chain(old.iter().filter(|(k, _)| !new.contains_key(*k)))
        .map(|(k, _)| name(k))
        .collect()
}

impl Store {
    /// Wait until the first list is in; `false` when the watch ended before it was.
    pub(super) async fn ready(&self) -> bool {
        let mut ready = self.ready.clone();
        ready.wait_for(|r| *r).await.is_ok()
    }

    /// The object `name` in `namespace` (`None` for a cluster-scoped kind).
    pub(super) fn get(&self, namespace: Option<&str>, name: &str) -> Option<Stored> {
        read(&self.objects).get(&key(namespace, name)).cloned()
    }

    /// The text of the object `name` in `namespace`, shared with the store (not copied).
    pub(super) fn text(&self, namespace: Option<&str>, name: &str) -> Option<Arc<str>> {
        read(&self.objects)
            .get(&key(namespace, name))
            .map(|s| s.object.clone())
    }

    /// Every object's text, when the first list is in (`None` before: a store not listed
    /// yet holds nothing to go by).
    pub(super) fn listed_texts(&self) -> Option<Vec<Arc<str>>> {
        if !*self.ready.borrow() {
            return None;
        }
        Some(
            read(&self.objects)
                .values()
                .map(|s| s.object.clone())
                .collect(),
        )
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        read(&self.objects).len()
    }
}

// The map is replaced or changed by one insert or remove at a time: a poisoned lock still
// holds a consistent map.
fn read(objects: &RwLock<Objects>) -> std::sync::RwLockReadGuard<'_, Objects> {
    objects.read().unwrap_or_else(|p| p.into_inner())
}

fn write(objects: &RwLock<Objects>) -> std::sync::RwLockWriteGuard<'_, Objects> {
    objects.write().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(name: &str, version: &str) -> LiveObject {
        LiveObject::new(json!({"metadata": {"name": name, "resourceVersion": version}}))
    }

    fn version(store: &Store, name: &str) -> Option<String> {
        store
            .get(None, name)
            .and_then(|s| s.resource_version.map(String::from))
    }

    #[tokio::test]
    async fn a_list_is_seen_whole_once_done_and_events_after_it() {
        let (mut writer, store) = channel();
        writer.apply(&watcher::Event::Init);
        writer.apply(&watcher::Event::InitApply(object("a", "1")));
        assert_eq!(store.len(), 0, "not before the list is done");
        assert!(!*store.ready.borrow());
        writer.apply(&watcher::Event::InitDone);
        assert!(store.ready().await);
        assert_eq!(version(&store, "a").as_deref(), Some("1"));

        writer.apply(&watcher::Event::Apply(object("b", "2")));
        writer.apply(&watcher::Event::Apply(object("a", "3")));
        assert_eq!(version(&store, "a").as_deref(), Some("3"));
        writer.apply(&watcher::Event::Delete(object("b", "4")));
        assert!(store.get(None, "b").is_none());

        // A re-list replaces everything, at its end.
        writer.apply(&watcher::Event::Init);
        writer.apply(&watcher::Event::InitApply(object("c", "5")));
        assert!(
            store.get(None, "a").is_some(),
            "the old list stays until the new one is in"
        );
        writer.apply(&watcher::Event::InitDone);
        assert!(store.get(None, "a").is_none());
        assert_eq!(version(&store, "c").as_deref(), Some("5"));
    }

    #[test]
    fn objects_of_one_name_in_two_namespaces_are_two() {
        let (mut writer, store) = channel();
        let named = |ns: &str, v: &str| {
            LiveObject::new(
                json!({"metadata": {"name": "a", "namespace": ns, "resourceVersion": v}}),
            )
        };
        writer.apply(&watcher::Event::Apply(named("x", "1")));
        writer.apply(&watcher::Event::Apply(named("y", "2")));
        let version = |ns| store.get(ns, "a").and_then(|s| s.resource_version);
        assert_eq!(version(Some("x")).as_deref(), Some("1"));
        assert_eq!(version(Some("y")).as_deref(), Some("2"));
        assert!(version(None).is_none());
        writer.apply(&watcher::Event::Delete(named("x", "3")));
        assert!(version(Some("x")).is_none());
        assert_eq!(version(Some("y")).as_deref(), Some("2"));
    }

    #[test]
    fn a_compared_list_names_what_changed_since_the_last() {
        let (mut writer, _store) = channel();
        let named = |name: &str, v: &str| {
            LiveObject::new(
                json!({"metadata": {"name": name, "namespace": "x", "resourceVersion": v}}),
            )
        };
        let list = |writer: &mut Writer, objects: &[(&str, &str)]| {
            writer.apply(&watcher::Event::Init);
            for (name, v) in objects {
                writer.apply(&watcher::Event::InitApply(named(name, v)));
            }
            let mut changed = writer.apply_compared(&watcher::Event::InitDone, true);
            changed.sort();
            changed
        };
        assert_eq!(list(&mut writer, &[("a", "1"), ("b", "2")]), ["a", "b"]);
        assert!(list(&mut writer, &[("a", "1"), ("b", "2")]).is_empty());
        assert_eq!(
            list(&mut writer, &[("a", "1"), ("b", "3"), ("c", "4")]),
            ["b", "c"]
        );
        assert_eq!(list(&mut writer, &[("b", "3")]), ["a", "c"]);
        writer.apply(&watcher::Event::Init);
        assert!(
            writer
                .apply_compared(&watcher::Event::InitDone, false)
                .is_empty(),
            "not compared"
        );
    }

    #[tokio::test]
    async fn a_watch_that_ends_before_listing_is_not_ready() {
        let (writer, store) = channel();
        drop(writer);
        assert!(!store.ready().await);
    }
}
