//! The object store: every object once (whatever version it was written at), the
//! resourceVersion counter, a bounded history of changes for watch resumption, and the write
//! rules a real API server applies (uid, generation, creationTimestamp, resourceVersion
//! preconditions, status subresource, defaults, CRD registration, namespace deletion).
//!
//! Synchronous and in memory; the HTTP layer (`api`) holds it behind a mutex and never awaits
//! while holding it. Time comes in as an argument.
//!
//! This file holds the objects, the version counter, the history and the reads (get, list,
//! watch, snapshot); writes are in one submodule per concern:
//! - `write`: create, update and patch as requests make them, checked against the URL;
//! - `commit`: the write rules every write goes through;
//! - `defaults`: the fields a real server fills in, and the Deployment status no kubelet
//!   writes here;
//! - `delete`: deletes, and what a Namespace or CRD takes with it.

mod commit;
mod defaults;
mod delete;
mod write;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::catalog::{Catalog, CrdError, ResourceType};
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;

/// Annotation that keeps a Deployment unavailable (there is no kubelet to make it so).
pub const HOLD_ANNOTATION: &str = "devcluster.veer.io/hold";

/// Why a state file cannot be loaded; the message says what in the file is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("the state file has no resourceVersion")]
    NoResourceVersion,
    #[error("the state file has no objects list")]
    NoObjects,
    /// A CustomResourceDefinition in the file is not one the catalog can serve.
    #[error(transparent)]
    Crd(#[from] CrdError),
    /// An object of a kind neither built in nor defined by a CRD before it in the file.
    #[error("the state file holds a {kind} of group {group:?}, which is not served")]
    NotServed { kind: String, group: String },
    #[error("an object in the state file has no name")]
    Unnamed,
}

/// Where an object lives: kind (not version: versions share storage), namespace, name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StoreKey {
    pub group: String,
    pub kind: String,
    /// Empty for cluster-scoped kinds.
    pub namespace: String,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    Added,
    Modified,
    Deleted,
}

impl ChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

/// One committed change, as watches see it.
#[derive(Debug, Clone)]
pub struct Change {
    pub rv: u64,
    pub change: ChangeType,
    pub key: StoreKey,
    /// The object after the change (for deletes: as it was, with the delete's version).
    pub object: Value,
    /// The object before the change, so a watch can tell when it stops matching a selector.
    pub previous: Option<Value>,
}

/// Which part of an object a write addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    Main,
    Status,
}

/// Who records ownership of a write's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership<'a> {
    /// A create, update or patch by this field manager (`Update` in managedFields).
    Update { manager: &'a str },
    /// A server-side apply: `veer_fields::fields::apply` already wrote managedFields.
    Applied,
}

/// The circumstances of one write.
#[derive(Debug, Clone, Copy)]
pub struct Write<'a> {
    pub now: DateTime<Utc>,
    pub dry_run: bool,
    pub ownership: Ownership<'a>,
}

impl Write<'_> {
    /// The time as Kubernetes writes timestamps (RFC 3339, seconds, `Z`).
    pub fn timestamp(&self) -> String {
        self.now.to_rfc3339_opts(SecondsFormat::Secs, true)
    }
}

/// What a list or watch selects.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Selection {
    pub fn matches(&self, object: &Value) -> bool {
        let ns_ok = match &self.namespace {
            Some(ns) => {
                object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    == Some(ns)
            }
            None => true,
        };
        ns_ok && self.labels.matches_object(object) && self.fields.matches_object(object)
    }
}

/// A watch's starting point: the changes after the requested version, and the live feed.
pub struct WatchStart {
    pub backlog: Vec<Arc<Change>>,
    pub feed: broadcast::Receiver<Arc<Change>>,
    /// The newest version the watch has seen (for bookmarks).
    pub seen: u64,
}

pub struct State {
    pub catalog: Catalog,
    objects: BTreeMap<StoreKey, Value>,
    rv: u64,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    /// Changes up to this version are gone from history.
    compacted: u64,
    changes: broadcast::Sender<Arc<Change>>,
}

pub fn key_of(rt: &ResourceType, namespace: Option<&str>, name: &str) -> StoreKey {
    StoreKey {
        group: rt.group.clone(),
        kind: rt.kind.clone(),
        namespace: if rt.namespaced {
            namespace.unwrap_or("").to_string()
        } else {
            String::new()
        },
        name: name.to_string(),
    }
}

fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get("metadata")?.get(field)?.as_str()
}

/// Set `metadata.<field>` (creating `metadata`); the object must be a JSON object.
fn set_meta(object: &mut Value, field: &str, value: Value) {
    if let Some(root) = object.as_object_mut() {
        let meta = root.entry("metadata").or_insert_with(|| json!({}));
        if !meta.is_object() {
            *meta = json!({});
        }
        if let Some(m) = meta.as_object_mut() {
            m.insert(field.to_string(), value);
        }
    }
}

fn remove_meta(object: &mut Value, field: &str) {
    if let Some(m) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove(field);
    }
}

/// Serve a stored object at the version the client asked for.
pub fn at_version(rt: &ResourceType, version: &str, mut object: Value) -> Value {
    object["apiVersion"] = json!(rt.api_version(version));
    object
}

impl State {
    /// An empty store holding the built-in namespaces, created at `now`.
    pub fn new(history_limit: usize, now: DateTime<Utc>) -> Self {
        let (changes, _) = broadcast::channel(history_limit.max(16));
        let mut state = Self {
            catalog: Catalog::builtin(),
            objects: BTreeMap::new(),
            rv: 0,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted: 0,
            changes,
        };
        for ns in ["default", "kube-system", "kube-public"] {
            // Creating a namespace in an empty store cannot fail.
            let _ = state.create_namespace(ns, now);
        }
        state
    }

    /// A namespace as the server itself creates it at start.
    fn create_namespace(&mut self, name: &str, now: DateTime<Utc>) -> Result<Value, ApiError> {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        let rt = self
            .catalog
            .by_kind("", "Namespace")
            .cloned()
            .ok_or_else(|| ApiError::internal("Namespace kind missing"))?;
        self.create(
            &rt,
            None,
            obj,
            &Write {
                now,
                dry_run: false,
                ownership: Ownership::Update {
                    manager: "kube-apiserver",
                },
            },
        )
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    pub fn object_count(&self) -> usize {
        self.objects.len()
    }

    pub fn watcher_count(&self) -> usize {
        self.changes.receiver_count()
    }

    /// Every object, CRDs first (so a reload registers kinds before their objects).
    pub fn snapshot(&self) -> Value {
        let mut objects: Vec<&Value> = self.objects.values().collect();
        objects.sort_by_key(|o| {
            o.get("kind").and_then(Value::as_str) != Some("CustomResourceDefinition")
        });
        json!({"resourceVersion": self.rv.to_string(), "objects": objects})
    }

    /// Load a snapshot written by [`State::snapshot`] into an empty store. History starts
    /// empty, so watches from before the restart get 410 Gone and relist.
    pub fn restore(&mut self, snapshot: &Value) -> Result<(), RestoreError> {
        let rv = snapshot
            .get("resourceVersion")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(RestoreError::NoResourceVersion)?;
        let objects = snapshot
            .get("objects")
            .and_then(Value::as_array)
            .ok_or(RestoreError::NoObjects)?;
        self.objects.clear();
        for object in objects {
            let (group, _) = split_api_version(
                object
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
            );
            let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
            if group == "apiextensions.k8s.io" && kind == "CustomResourceDefinition" {
                self.catalog.register_crd(object)?;
            }
            let rt = self
                .catalog
                .by_kind(group, kind)
                .ok_or_else(|| RestoreError::NotServed {
                    kind: kind.to_string(),
                    group: group.to_string(),
                })?;
            let name = meta_str(object, "name").ok_or(RestoreError::Unnamed)?;
            let key = key_of(rt, meta_str(object, "namespace"), name);
            self.objects.insert(key, object.clone());
        }
        self.rv = rv;
        self.compacted = rv;
        self.history.clear();
        Ok(())
    }

    pub fn get(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.objects
            .get(&key_of(rt, namespace, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt, name))
    }

    /// The stored CustomResourceDefinition that registered `rt`, if a CRD did (built-in kinds
    /// have none unless a CRD replaced them). Matched by its spec rather than its name, which
    /// this server does not hold to `plural.group`.
    pub fn crd_of(&self, rt: &ResourceType) -> Option<&Value> {
        let start = StoreKey {
            group: "apiextensions.k8s.io".into(),
            kind: "CustomResourceDefinition".into(),
            namespace: String::new(),
            name: String::new(),
        };
        self.objects
            .range(start..)
            .take_while(|(k, _)| {
                k.group == "apiextensions.k8s.io" && k.kind == "CustomResourceDefinition"
            })
            .map(|(_, crd)| crd)
            .find(|crd| {
                crd.pointer("/spec/group").and_then(Value::as_str) == Some(rt.group.as_str())
                    && crd.pointer("/spec/names/plural").and_then(Value::as_str)
                        == Some(rt.plural.as_str())
            })
    }

    /// Objects of a kind matching `selection`, in key order, and the list's version.
    pub fn list(&self, rt: &ResourceType, selection: &Selection) -> (Vec<Value>, u64) {
        let start = StoreKey {
            group: rt.group.clone(),
            kind: rt.kind.clone(),
            namespace: String::new(),
            name: String::new(),
        };
        let items = self
            .objects
            .range(start..)
            .take_while(|(k, _)| k.group == rt.group && k.kind == rt.kind)
            .map(|(_, v)| v)
            .filter(|v| selection.matches(v))
            .cloned()
            .collect();
        (items, self.rv)
    }

    /// Start a watch after version `from` (`None`: from now, after synthetic ADDED events for
    /// what exists, as a real server does for resourceVersion "" and "0").
    pub fn watch(
        &self,
        rt: &ResourceType,
        from: Option<u64>,
        selection: &Selection,
    ) -> Result<WatchStart, ApiError> {
        let feed = self.changes.subscribe();
        let backlog = match from {
            Some(rv) if rv < self.compacted => return Err(ApiError::expired(rv, self.compacted)),
            Some(rv) => self.history.iter().filter(|c| c.rv > rv).cloned().collect(),
            None => {
                let (items, _) = self.list(rt, selection);
                items
                    .into_iter()
                    .map(|object| {
                        let name = meta_str(&object, "name").unwrap_or("").to_string();
                        Arc::new(Change {
                            rv: self.rv,
                            change: ChangeType::Added,
                            key: key_of(rt, meta_str(&object, "namespace"), &name),
                            object,
                            previous: None,
                        })
                    })
                    .collect()
            }
        };
        Ok(WatchStart {
            backlog,
            feed,
            seen: self.rv,
        })
    }

    fn record(
        &mut self,
        change: ChangeType,
        key: StoreKey,
        object: Value,
        previous: Option<Value>,
    ) {
        let c = Arc::new(Change {
            rv: self.rv,
            change,
            key,
            object,
            previous,
        });
        self.history.push_back(c.clone());
        while self.history.len() > self.history_limit {
            if let Some(old) = self.history.pop_front() {
                self.compacted = old.rv;
            }
        }
        // Nobody watching is fine.
        let _ = self.changes.send(c);
    }
}

pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

#[cfg(test)]
mod fixtures;

#[cfg(test)]
mod tests {
    use super::fixtures::{cm, now, rt, w};
    use super::*;

    #[test]
    fn watch_history_is_bounded() {
        let mut s = State::new(3, now());
        let r = rt(&s, "", "ConfigMap");
        let first = s.resource_version();
        for i in 0..5 {
            s.create(&r, Some("default"), cm(&format!("c{i}"), "1"), &w(false))
                .unwrap();
        }
        let sel = Selection::default();
        let err = s.watch(&r, Some(first), &sel).err().unwrap();
        assert_eq!((err.code, err.reason), (410, "Expired"));
        let recent = s.resource_version() - 2;
        assert_eq!(
            s.watch(&r, Some(recent), &sel).ok().unwrap().backlog.len(),
            2
        );
    }

    #[test]
    fn snapshot_round_trips_with_crds() {
        let mut s = State::new(100, now());
        let crd = rt(&s, "apiextensions.k8s.io", "CustomResourceDefinition");
        s.create(
            &crd,
            None,
            json!({"metadata": {"name": "widgets.example.com"}, "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets"},
            "versions": [{"name": "v1", "served": true, "storage": true}]}}),
            &w(false),
        )
        .unwrap();
        let widget = s.catalog.by_kind("example.com", "Widget").cloned().unwrap();
        s.create(
            &widget,
            Some("default"),
            json!({"metadata": {"name": "w"}, "spec": {}}),
            &w(false),
        )
        .unwrap();
        let snap = s.snapshot();
        let mut t = State::new(100, now());
        t.restore(&snap).unwrap();
        assert_eq!(t.resource_version(), s.resource_version());
        let w2 = t.catalog.by_kind("example.com", "Widget").cloned().unwrap();
        assert!(t.get(&w2, Some("default"), "w").is_ok());
        assert!(
            t.watch(&w2, Some(1), &Selection::default()).is_err(),
            "history does not survive"
        );
    }

    #[test]
    fn an_unreadable_state_file_says_what_is_wrong() {
        let cases = [
            (json!({}), "the state file has no resourceVersion"),
            (
                json!({"resourceVersion": "3"}),
                "the state file has no objects list",
            ),
            (
                json!({"resourceVersion": "3", "objects": [{"apiVersion": "x.io/v1", "kind": "Y"}]}),
                r#"the state file holds a Y of group "x.io", which is not served"#,
            ),
            (
                json!({"resourceVersion": "3", "objects": [{"apiVersion": "v1", "kind": "ConfigMap"}]}),
                "an object in the state file has no name",
            ),
            (
                json!({"resourceVersion": "3", "objects": [
                    {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition"}
                ]}),
                "spec is required",
            ),
        ];
        for (snapshot, want) in cases {
            let got = State::new(100, now()).restore(&snapshot);
            assert_eq!(got.map_err(|e| e.to_string()), Err(want.to_string()));
        }
    }
}
