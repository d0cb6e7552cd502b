//! The live objects a plan looks at, as the watch cache held them when they were read: each
//! object's text, shared with the cache (a pointer, not a copy), made into a `Value` only
//! when a plan asks for it, and dropped once compared ([`LiveTexts`], a [`LiveLookup`]).
//! A `Value` costs about eight times its text, so a plan that read every object whole first
//! would hold all of them at once; this one holds one. [`Cluster::live`] reads them all into
//! values, for callers that keep them.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use kube::discovery::ApiResource;
use serde_json::Value;

use super::cache::{self, WatchKey, namespace_of};
use super::store::Store;
use super::{Cluster, ClusterError, ListRefusal, LiveState, WATCH_READY_TIMEOUT, projection};
use crate::diff::LiveLookup;
use crate::manifest::ObjectKey;

/// The live objects among some keys, as texts ([`Cluster::live_view`]).
#[derive(Debug, Clone, Default)]
pub struct LiveView {
    pub texts: LiveTexts,
    /// Keys whose kind the cluster does not serve (yet): nothing is known about them.
    pub unknown: BTreeSet<ObjectKey>,
    /// Keys whose kind veer may not list (403) where they live (see [`LiveState`]).
    pub forbidden: BTreeMap<ObjectKey, ListRefusal>,
}

impl LiveView {
    /// Every object read into a value.
    pub fn into_state(self) -> LiveState {
        LiveState {
            objects: self.texts.read_where(|_| true),
            unknown: self.unknown,
            forbidden: self.forbidden,
        }
    }
}

/// Live objects by the key they were read under, as their projection's text (module
/// `projection`): read into a `Value` (with `apiVersion` and `kind`) each time one is asked
/// for.
#[derive(Debug, Clone, Default)]
pub struct LiveTexts {
    /// Sorted by key.
    objects: Vec<(ObjectKey, Text)>,
    /// Positions in `objects`, sorted by identity (the key less its version): an object
    /// asked for at another version is found without a scan.
    by_identity: Vec<u32>,
}

#[derive(Debug, Clone)]
struct Text {
    text: Arc<str>,
    /// Shared by the objects of one watch.
    resource: Arc<ApiResource>,
}

impl LiveTexts {
    fn new(mut objects: Vec<(ObjectKey, Text)>) -> Self {
        objects.sort_by(|a, b| a.0.cmp(&b.0));
        objects.dedup_by(|a, b| a.0 == b.0);
        let mut by_identity: Vec<u32> = (0..objects.len())
            .filter_map(|i| u32::try_from(i).ok())
            .collect();
        by_identity.sort_by(|&a, &b| {
            let (a, b) = (&objects[a as usize].0, &objects[b as usize].0);
            a.identity().cmp(&b.identity()).then_with(|| a.cmp(b))
        });
        LiveTexts {
            objects,
            by_identity,
        }
    }

    fn find(&self, key: &ObjectKey) -> Option<&Text> {
        if let Ok(i) = self.objects.binary_search_by(|(k, _)| k.cmp(key)) {
            return Some(&self.objects[i].1);
        }
        let id = key.identity();
        let at = self
            .by_identity
            .partition_point(|&i| self.objects[i as usize].0.identity() < id);
        let &i = self.by_identity.get(at)?;
        let (k, text) = &self.objects[i as usize];
        (k.identity() == id).then_some(text)
    }

    /// `key`'s object read into a value (at any API version of it).
    pub fn get(&self, key: &ObjectKey) -> Option<Value> {
        self.find(key).and_then(Text::read)
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The objects whose key `keep` accepts, read into values, by the key they were read
    /// under: for callers that keep them beyond one comparison.
    pub fn read_where(&self, keep: impl Fn(&ObjectKey) -> bool) -> BTreeMap<ObjectKey, Value> {
        (self.objects.iter())
            .filter(|(k, _)| keep(k))
            .filter_map(|(k, t)| Some((k.clone(), t.read()?)))
            .collect()
    }
}

impl Text {
    fn read(&self) -> Option<Value> {
        projection::read(&self.text, &self.resource)
    }
}

impl LiveLookup for LiveTexts {
    fn live(&self, key: &ObjectKey) -> Option<Cow<'_, Value>> {
        self.get(key).map(Cow::Owned)
    }
}

impl Cluster {
    /// The live objects among `keys`, from the watch cache, as texts ([`LiveTexts`]).
    /// Watches the kinds and namespaces not watched yet (and waits until they have listed);
    /// after that, no API call. A kind veer may not list there (403) puts its keys in
    /// [`LiveView::forbidden`] at once; the watch is tried again next time (RBAC may have
    /// been granted meanwhile).
    pub async fn live_view(&self, keys: &[ObjectKey]) -> Result<LiveView, ClusterError> {
        let mut view = LiveView::default();
        let mut resolved = Vec::with_capacity(keys.len());
        for key in keys {
            match self.resolve(key).await {
                Ok(r) => resolved.push((key, WatchKey::of(key, &r))),
                Err(ClusterError::UnknownKind { .. }) => {
                    view.unknown.insert(key.clone());
                }
                Err(e) => return Err(e),
            }
        }
        let mut watches: HashMap<&WatchKey, (Store, super::Resolved, Arc<ApiResource>)> =
            HashMap::new();
        let wanted: BTreeSet<&WatchKey> = resolved.iter().map(|(_, w)| w).collect();
        let mut resources = Vec::with_capacity(wanted.len());
        for watch in wanted {
            // Any key of the watch resolves its kind.
            let Some(key) = resolved.iter().find(|(_, w)| w == watch).map(|(k, _)| *k) else {
                continue;
            };
            resources.push((watch, self.resolve(key).await?));
        }
        // All at once: the namespaces of a kind join its cluster-wide watch with one list.
        let starting: Vec<_> = resources.iter().map(|(w, r)| (*w, r)).collect();
        self.cache.want(&self.client, &starting);
        for (watch, resource) in resources {
            match self
                .cache
                .ensure(&self.client, watch, &resource, WATCH_READY_TIMEOUT)
                .await
            {
                Ok(()) => {}
                Err(cache::EnsureError::Refused { reason }) => {
                    let refusal = ListRefusal::of(&resource, watch.namespace.as_deref(), &reason);
                    for (key, w) in &resolved {
                        if w == watch {
                            view.forbidden.insert((*key).clone(), refusal.clone());
                        }
                    }
                    continue;
                }
                Err(cache::EnsureError::NotReady) => {
                    return Err(ClusterError::WatchNotReady {
                        what: watch.to_string(),
                        after: WATCH_READY_TIMEOUT,
                    });
                }
            }
            if let Some((store, r)) = self.cache.watch(watch) {
                let api = Arc::new(r.resource.clone());
                watches.insert(watch, (store, r, api));
            }
        }
        let mut objects = Vec::with_capacity(resolved.len());
        for (key, watch) in &resolved {
            if view.forbidden.contains_key(*key) {
                continue;
            }
            let Some((store, r, api)) = watches.get(watch) else {
                continue;
            };
            if let Some(text) = store.text(namespace_of(key, r), &key.name) {
                let resource = api.clone();
                objects.push(((*key).clone(), Text { text, resource }));
            }
        }
        view.texts = LiveTexts::new(objects);
        self.schemas.observed_kinds(!view.unknown.is_empty()).await;
        Ok(view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(version: &str, name: &str) -> ObjectKey {
        ObjectKey {
            group: "networking.istio.io".into(),
            version: version.into(),
            kind: "VirtualService".into(),
            namespace: Some("shop".into()),
            name: name.into(),
        }
    }

    fn text(body: &str) -> Text {
        Text {
            text: body.into(),
            resource: Arc::new(ApiResource {
                group: "networking.istio.io".into(),
                version: "v1".into(),
                api_version: "networking.istio.io/v1".into(),
                kind: "VirtualService".into(),
                plural: "virtualservices".into(),
            }),
        }
    }

    #[test]
    fn an_object_is_found_at_its_key_or_another_version_and_read_when_asked() {
        let texts = LiveTexts::new(vec![
            (key("v1", "b"), text(r#"{"metadata":{"name":"b"}}"#)),
            (key("v1beta1", "a"), text(r#"{"metadata":{"name":"a"}}"#)),
        ]);
        assert_eq!(texts.len(), 2);
        let a = texts.get(&key("v1", "a")).expect("a at another version");
        assert_eq!(a.pointer("/metadata/name"), Some(&"a".into()));
        assert_eq!(
            a.get("apiVersion"),
            Some(&"networking.istio.io/v1".into()),
            "as the watch reads it"
        );
        assert!(texts.get(&key("v1", "b")).is_some());
        assert!(texts.get(&key("v1", "c")).is_none());
        let read = texts.read_where(|k| k.name == "a");
        assert_eq!(read.keys().collect::<Vec<_>>(), [&key("v1beta1", "a")]);
    }
}
