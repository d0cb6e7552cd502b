//! The object store: every object once (whatever version it was written at), the
//! resourceVersion counter, a bounded history of changes for watch resumption, and the write
//! rules a real API server applies (uid, generation, creationTimestamp, resourceVersion
//! preconditions, status subresource, defaults, CRD registration, namespace deletion).
//!
//! Synchronous and in memory; the HTTP layer (`api`) holds it behind a mutex and never awaits
//! while holding it. Time comes in as an argument.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::catalog::{Catalog, ResourceType};
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;

/// Annotation that keeps a Deployment unavailable (there is no kubelet to make it so).
pub const HOLD_ANNOTATION: &str = "devcluster.veer.io/hold";

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
    /// A server-side apply: `crate::fields::apply` already wrote managedFields.
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

/// DNS-1123 subdomain, as Kubernetes requires of most names.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Everything outside `metadata` and `status`: what bumps `generation`.
fn spec_part(object: &Value) -> Value {
    match object.as_object() {
        Some(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind")
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        None => Value::Null,
    }
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
    pub fn restore(&mut self, snapshot: &Value) -> Result<(), String> {
        let rv = snapshot
            .get("resourceVersion")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or("the state file has no resourceVersion")?;
        let objects = snapshot
            .get("objects")
            .and_then(Value::as_array)
            .ok_or("the state file has no objects list")?;
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
            let rt = self.catalog.by_kind(group, kind).ok_or(format!(
                "the state file holds a {kind} of group {group:?}, which is not served"
            ))?;
            let name = meta_str(object, "name").ok_or("an object in the state file has no name")?;
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

    fn require_namespace(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
    ) -> Result<(), ApiError> {
        if !rt.namespaced {
            return Ok(());
        }
        let ns = namespace.ok_or_else(|| {
            ApiError::bad_request(format!(
                "{} is namespaced: the request needs a namespace",
                rt.kind
            ))
        })?;
        let key = StoreKey {
            group: String::new(),
            kind: "Namespace".into(),
            namespace: String::new(),
            name: ns.to_string(),
        };
        if self.objects.contains_key(&key) {
            Ok(())
        } else {
            Err(ApiError::namespace_not_found(ns))
        }
    }

    /// Check the body names the kind of the URL, fill namespace from the URL.
    fn check_body(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        object: &mut Value,
    ) -> Result<(), ApiError> {
        if !object.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON or YAML object",
            ));
        }
        if let Some(kind) = object.get("kind").and_then(Value::as_str)
            && kind != rt.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind of the body ({kind}) does not match the resource ({})",
                rt.kind
            )));
        }
        if let Some(av) = object.get("apiVersion").and_then(Value::as_str) {
            let (group, version) = split_api_version(av);
            if group != rt.group || !rt.serves(version) {
                return Err(ApiError::bad_request(format!(
                    "the apiVersion of the body ({av}) does not match the resource ({})",
                    rt.api_version(rt.preferred_version())
                )));
            }
        }
        if rt.namespaced {
            let url_ns = namespace.unwrap_or("");
            match meta_str(object, "namespace") {
                Some(ns) if ns != url_ns => {
                    return Err(ApiError::bad_request(format!(
                        "the namespace of the provided object ({ns}) does not match the namespace sent on the request ({url_ns})"
                    )));
                }
                _ => {
                    set_meta(object, "namespace", json!(url_ns));
                }
            }
        } else {
            remove_meta(object, "namespace");
        }
        Ok(())
    }

    pub fn create(
        &mut self,
        rt: &ResourceType,
        namespace: Option<&str>,
        mut object: Value,
        w: &Write,
    ) -> Result<Value, ApiError> {
        self.check_body(rt, namespace, &mut object)?;
        if meta_str(&object, "resourceVersion").is_some_and(|s| !s.is_empty()) {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let name = match (meta_str(&object, "name"), meta_str(&object, "generateName")) {
            (Some(n), _) if !n.is_empty() => n.to_string(),
            (_, Some(prefix)) if !prefix.is_empty() => {
                let suffix: String = uuid::Uuid::new_v4()
                    .simple()
                    .to_string()
                    .chars()
                    .take(5)
                    .collect();
                let name = format!("{prefix}{suffix}");
                set_meta(&mut object, "name", json!(name));
                name
            }
            _ => {
                return Err(ApiError::invalid(
                    rt,
                    "",
                    &[(
                        "metadata.name",
                        "Required value: name or generateName is required".into(),
                    )],
                ));
            }
        };
        self.require_namespace(rt, namespace)?;
        let key = key_of(rt, namespace, &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(rt, &name));
        }
        self.commit(rt, key, None, object, Subresource::Main, w)
    }

    /// Replace an object (PUT), or its status.
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &mut self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        mut object: Value,
        sub: Subresource,
        w: &Write,
    ) -> Result<Value, ApiError> {
        self.check_body(rt, namespace, &mut object)?;
        if let Some(body_name) = meta_str(&object, "name")
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        set_meta(&mut object, "name", json!(name));
        let key = key_of(rt, namespace, name);
        let old = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        self.commit(rt, key, Some(old), object, sub, w)
    }

    /// Write a patched object: `patched` is the current object with the patch applied.
    pub fn write_patched(
        &mut self,
        rt: &ResourceType,
        old: Value,
        mut patched: Value,
        sub: Subresource,
        w: &Write,
    ) -> Result<Value, ApiError> {
        let name = meta_str(&old, "name").unwrap_or("").to_string();
        let namespace = meta_str(&old, "namespace").map(str::to_string);
        self.check_body(rt, namespace.as_deref(), &mut patched)?;
        if meta_str(&patched, "name") != Some(name.as_str()) {
            return Err(ApiError::bad_request("a patch cannot change metadata.name"));
        }
        let key = key_of(rt, namespace.as_deref(), &name);
        self.commit(rt, key, Some(old), patched, sub, w)
    }

    /// The write rules shared by create, update and patch.
    fn commit(
        &mut self,
        rt: &ResourceType,
        key: StoreKey,
        old: Option<Value>,
        mut new: Value,
        sub: Subresource,
        w: &Write,
    ) -> Result<Value, ApiError> {
        let name = key.name.clone();
        let now = w.timestamp();
        if !valid_name(&name) {
            return Err(ApiError::invalid(
                rt,
                &name,
                &[(
                    "metadata.name",
                    format!(
                        "Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
                    ),
                )],
            ));
        }
        new["apiVersion"] = json!(rt.api_version(rt.preferred_version()));
        new["kind"] = json!(rt.kind);
        // Stored as a real server encodes it: `25.0` is served back as `25`.
        super::numbers::canonical_numbers(&mut new);
        if let Some(old) = &old {
            // Optimistic concurrency: a stated resourceVersion must be the current one.
            if let Some(rv) = meta_str(&new, "resourceVersion").filter(|s| !s.is_empty())
                && Some(rv) != meta_str(old, "resourceVersion")
            {
                return Err(ApiError::stale(rt, &name));
            }
            if rt.status_subresource {
                match sub {
                    Subresource::Main => match old.get("status") {
                        Some(s) => new["status"] = s.clone(),
                        None => {
                            if let Some(m) = new.as_object_mut() {
                                m.remove("status");
                            }
                        }
                    },
                    Subresource::Status => {
                        let status = new.get("status").cloned();
                        let rv = meta_str(old, "resourceVersion").map(str::to_string);
                        new = old.clone();
                        match status {
                            Some(s) => new["status"] = s,
                            None => {
                                if let Some(m) = new.as_object_mut() {
                                    m.remove("status");
                                }
                            }
                        }
                        if let Some(rv) = rv {
                            set_meta(&mut new, "resourceVersion", json!(rv));
                        }
                    }
                }
            }
            for field in ["uid", "creationTimestamp", "generation"] {
                match old.get("metadata").and_then(|om| om.get(field)) {
                    Some(v) => set_meta(&mut new, field, v.clone()),
                    None => remove_meta(&mut new, field),
                };
            }
        } else {
            set_meta(&mut new, "uid", json!(uuid::Uuid::new_v4().to_string()));
            set_meta(&mut new, "creationTimestamp", json!(now));
            remove_meta(&mut new, "generation");
            if rt.status_subresource
                && let Some(obj) = new.as_object_mut()
            {
                obj.remove("status");
            }
        }
        if let Some(old) = &old {
            super::immutable::keep_allocated(&rt.group, &rt.kind, old, &mut new);
        }
        apply_defaults(rt, &mut new, self.rv + 1);
        // Immutable fields: refused before anything (a dry run included) is stored.
        if let Some(old) = &old {
            let violations = super::immutable::immutable_violations(&rt.group, &rt.kind, old, &new);
            if !violations.is_empty() {
                return Err(ApiError::invalid(rt, &name, &violations));
            }
        }
        drop_empty_metadata(&mut new);
        match w.ownership {
            // Defaults are in by now: a real server defaults while decoding, so an updater owns
            // the defaulted fields too (an applier does not: they were not in its config).
            Ownership::Update { manager } => {
                new = crate::fields::update_with(
                    old.as_ref(),
                    &new,
                    manager,
                    w.now,
                    self.catalog.semantics(),
                );
            }
            Ownership::Applied => {}
        }
        if rt.tracks_generation {
            let generation = match &old {
                None => 1,
                Some(o) => {
                    let g = o
                        .pointer("/metadata/generation")
                        .and_then(Value::as_i64)
                        .unwrap_or(1);
                    if spec_part(o) != spec_part(&new) {
                        g + 1
                    } else {
                        g
                    }
                }
            };
            set_meta(&mut new, "generation", json!(generation));
        }
        if rt.group == "apps" && rt.kind == "Deployment" {
            fake_deployment_status(&mut new);
        }
        if rt.group == "apiextensions.k8s.io" && rt.kind == "CustomResourceDefinition" {
            let t = super::catalog::resource_type_of_crd(&new)
                .map_err(|why| ApiError::invalid(rt, &name, &[("spec", why)]))?;
            new["status"] = json!({
                "acceptedNames": new.pointer("/spec/names").cloned().unwrap_or(json!({})),
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now}
                ],
                "storedVersions": [t.preferred_version()],
            });
            if let Some(o) = &old
                && let Some(lt) = o.pointer("/status/conditions")
            {
                new["status"]["conditions"] = lt.clone();
            }
        }
        // A write that changes nothing gets no new version and no event, as on a real server.
        if let Some(old) = &old {
            let mut same = new.clone();
            if let Some(rv) = meta_str(old, "resourceVersion") {
                set_meta(&mut same, "resourceVersion", json!(rv));
            }
            if &same == old {
                return Ok(old.clone());
            }
        }
        if w.dry_run {
            // Nothing is stored, so no version is issued: a dry-run update shows the current
            // one, a dry-run create none.
            match old.as_ref().and_then(|o| meta_str(o, "resourceVersion")) {
                Some(rv) => set_meta(&mut new, "resourceVersion", json!(rv)),
                None => remove_meta(&mut new, "resourceVersion"),
            }
            return Ok(new);
        }
        let rv = self.rv + 1;
        set_meta(&mut new, "resourceVersion", json!(rv.to_string()));
        if rt.group == "apiextensions.k8s.io" && rt.kind == "CustomResourceDefinition" {
            self.catalog
                .register_crd(&new)
                .map_err(|why| ApiError::invalid(rt, &name, &[("spec", why)]))?;
        }
        self.rv = rv;
        let change = if old.is_some() {
            ChangeType::Modified
        } else {
            ChangeType::Added
        };
        self.objects.insert(key.clone(), new.clone());
        self.record(change, key, new.clone(), old);
        Ok(new)
    }

    /// Delete an object; a Namespace takes its objects with it, a CRD its kind and objects.
    pub fn delete(
        &mut self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        preconditions: &Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let key = key_of(rt, namespace, name);
        let old = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        if let Some(uid) = preconditions.get("uid").and_then(Value::as_str)
            && Some(uid) != meta_str(&old, "uid")
        {
            return Err(ApiError::conflict(
                rt,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&old, "uid").unwrap_or("")
                ),
            ));
        }
        if let Some(rv) = preconditions.get("resourceVersion").and_then(Value::as_str)
            && Some(rv) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::stale(rt, name));
        }
        if dry_run {
            return Ok(old);
        }
        let mut dependents: Vec<StoreKey> = Vec::new();
        let mut answer = None;
        if rt.group.is_empty() && rt.kind == "Namespace" {
            // As Kubernetes does: the namespace goes Terminating (watchers see it), everything
            // in it is deleted, then it goes; the answer is the Terminating namespace. A real
            // server's namespace controller takes seconds; here it is one step, so a client
            // never meets a half-emptied namespace.
            let mut terminating = old.clone();
            set_meta(
                &mut terminating,
                "deletionTimestamp",
                json!(super::api::now().to_rfc3339_opts(SecondsFormat::Secs, true)),
            );
            terminating["status"] = json!({"phase": "Terminating"});
            self.rv += 1;
            set_meta(
                &mut terminating,
                "resourceVersion",
                json!(self.rv.to_string()),
            );
            self.objects.insert(key.clone(), terminating.clone());
            self.record(
                ChangeType::Modified,
                key.clone(),
                terminating.clone(),
                Some(old.clone()),
            );
            answer = Some(terminating);
            dependents = self
                .objects
                .keys()
                .filter(|k| k.namespace == name)
                .cloned()
                .collect();
        }
        if rt.group == "apiextensions.k8s.io"
            && rt.kind == "CustomResourceDefinition"
            && let Some(gone) = self.catalog.unregister_crd(&old)
        {
            dependents = self
                .objects
                .keys()
                .filter(|k| k.group == gone.group && k.kind == gone.kind)
                .cloned()
                .collect();
        }
        for k in dependents {
            self.remove(k);
        }
        let gone = self.remove(key).unwrap_or(old);
        Ok(answer.unwrap_or(gone))
    }

    fn remove(&mut self, key: StoreKey) -> Option<Value> {
        let mut object = self.objects.remove(&key)?;
        self.rv += 1;
        set_meta(&mut object, "resourceVersion", json!(self.rv.to_string()));
        self.record(ChangeType::Deleted, key, object.clone(), None);
        Some(object)
    }
}

pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// Go's `omitempty`: a real server never returns empty labels, annotations, finalizers or
/// owner references, so neither do we (kubectl's patches often leave `annotations: {}`).
fn drop_empty_metadata(object: &mut Value) {
    if let Some(m) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in ["labels", "annotations", "finalizers", "ownerReferences"] {
            let empty = match m.get(field) {
                Some(Value::Object(o)) => o.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                Some(Value::Null) => true,
                _ => false,
            };
            if empty {
                m.remove(field);
            }
        }
    }
}

/// A few of the defaults a real API server fills in, so that clients (and veer's diff) meet
/// server-populated fields they did not write.
fn apply_defaults(rt: &ResourceType, object: &mut Value, seq: u64) {
    fn default(object: &mut Value, pointer: &str, value: Value) {
        let (parent, field) = match pointer.rsplit_once('/') {
            Some(p) => p,
            None => return,
        };
        if let Some(Value::Object(m)) = object.pointer_mut(parent) {
            m.entry(field.to_string()).or_insert(value);
        }
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Namespace") => {
            if object.get("spec").is_none() {
                object["spec"] = json!({});
            }
            default(object, "/spec/finalizers", json!(["kubernetes"]));
            object["status"] = json!({"phase": "Active"});
        }
        ("", "Secret") => default(object, "/type", json!("Opaque")),
        ("", "Service") => {
            if object.get("spec").is_none() {
                object["spec"] = json!({});
            }
            default(object, "/spec/type", json!("ClusterIP"));
            default(object, "/spec/sessionAffinity", json!("None"));
            let ip = format!("10.96.{}.{}", (seq / 250) % 250, seq % 250 + 1);
            default(object, "/spec/clusterIP", json!(ip));
            let ip = object
                .pointer("/spec/clusterIP")
                .cloned()
                .unwrap_or(json!(ip));
            default(object, "/spec/clusterIPs", json!([ip]));
            if let Some(Value::Array(ports)) = object.pointer_mut("/spec/ports") {
                for p in ports.iter_mut().filter(|p| p.is_object()) {
                    let port = p.get("port").cloned().unwrap_or(Value::Null);
                    default(p, "/protocol", json!("TCP"));
                    default(p, "/targetPort", port);
                }
            }
            if object.get("status").is_none() {
                object["status"] = json!({"loadBalancer": {}});
            }
        }
        ("apps", "Deployment") => {
            if object.get("spec").is_none() {
                object["spec"] = json!({});
            }
            default(object, "/spec/replicas", json!(1));
            default(object, "/spec/revisionHistoryLimit", json!(10));
            default(object, "/spec/progressDeadlineSeconds", json!(600));
            default(
                object,
                "/spec/strategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
            );
        }
        _ => {}
    }
}

/// No kubelet: a Deployment is available as soon as it is written, unless held.
fn fake_deployment_status(object: &mut Value) {
    let replicas = object
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let generation = object
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let held = object
        .pointer(&format!(
            "/metadata/annotations/{}",
            HOLD_ANNOTATION.replace('/', "~1")
        ))
        .and_then(Value::as_str)
        == Some("unavailable");
    let available = if held { 0 } else { replicas };
    let (status, reason, message) = if held {
        (
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    } else {
        (
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    };
    let old_condition = object.pointer("/status/conditions/0").cloned();
    let since = match &old_condition {
        Some(c) if c.get("status").and_then(Value::as_str) == Some(status) => {
            c.get("lastTransitionTime").cloned()
        }
        _ => None,
    }
    .or_else(|| object.pointer("/metadata/creationTimestamp").cloned())
    .unwrap_or(Value::Null);
    let mut s = json!({
        "observedGeneration": generation,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": available,
        "availableReplicas": available,
        "conditions": [{
            "type": "Available",
            "status": status,
            "reason": reason,
            "message": message,
            "lastUpdateTime": since,
            "lastTransitionTime": since,
        }],
    });
    if held {
        s["unavailableReplicas"] = json!(replicas);
    }
    object["status"] = s;
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-01-01T00:00:00Z";

    fn now() -> DateTime<Utc> {
        NOW.parse().unwrap()
    }

    fn w(dry_run: bool) -> Write<'static> {
        Write {
            now: now(),
            dry_run,
            ownership: Ownership::Update { manager: "test" },
        }
    }

    fn rt(state: &State, group: &str, kind: &str) -> ResourceType {
        state.catalog.by_kind(group, kind).cloned().unwrap()
    }

    fn cm(name: &str, data: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": data}})
    }

    #[test]
    fn create_sets_server_fields_and_refuses_duplicates() {
        let mut s = State::new(100, now());
        let r = rt(&s, "", "ConfigMap");
        let created = s
            .create(&r, Some("default"), cm("a", "1"), &w(false))
            .unwrap();
        assert_eq!(created["metadata"]["namespace"], "default");
        assert_eq!(created["metadata"]["creationTimestamp"], NOW);
        assert!(created["metadata"]["uid"].as_str().unwrap().len() == 36);
        assert!(
            created["metadata"].get("generation").is_none(),
            "ConfigMaps have no generation"
        );
        let err = s
            .create(&r, Some("default"), cm("a", "1"), &w(false))
            .unwrap_err();
        assert_eq!((err.code, err.reason), (409, "AlreadyExists"));
        let err = s
            .create(&r, Some("nope"), cm("b", "1"), &w(false))
            .unwrap_err();
        assert_eq!((err.code, err.reason), (404, "NotFound"));
        let err = s
            .create(&r, Some("default"), cm("Bad_Name", "1"), &w(false))
            .unwrap_err();
        assert_eq!((err.code, err.reason), (422, "Invalid"));
    }

    #[test]
    fn update_checks_resource_version_and_skips_no_ops() {
        let mut s = State::new(100, now());
        let r = rt(&s, "", "ConfigMap");
        let created = s
            .create(&r, Some("default"), cm("a", "1"), &w(false))
            .unwrap();
        let rv = created["metadata"]["resourceVersion"].clone();
        let mut next = created.clone();
        next["data"]["k"] = json!("2");
        let updated = s
            .update(
                &r,
                Some("default"),
                "a",
                next.clone(),
                Subresource::Main,
                &w(false),
            )
            .unwrap();
        assert_ne!(updated["metadata"]["resourceVersion"], rv);
        let err = s
            .update(&r, Some("default"), "a", next, Subresource::Main, &w(false))
            .unwrap_err();
        assert_eq!((err.code, err.reason), (409, "Conflict"));
        let before = s.resource_version();
        let same = s
            .update(
                &r,
                Some("default"),
                "a",
                updated.clone(),
                Subresource::Main,
                &w(false),
            )
            .unwrap();
        assert_eq!(same, updated);
        assert_eq!(
            s.resource_version(),
            before,
            "a no-op write gets no new version"
        );
    }

    #[test]
    fn generation_follows_spec_and_status_is_a_subresource() {
        let mut s = State::new(100, now());
        let r = rt(&s, "networking.istio.io", "VirtualService");
        let vs = json!({"apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
                        "metadata": {"name": "v"}, "spec": {"hosts": ["a"]}, "status": {"x": 1}});
        let created = s.create(&r, Some("default"), vs, &w(false)).unwrap();
        assert_eq!(
            created["apiVersion"], "networking.istio.io/v1",
            "stored at the preferred version"
        );
        assert_eq!(created["metadata"]["generation"], 1);
        assert!(
            created.get("status").is_none(),
            "status is ignored on create"
        );
        let mut labelled = created.clone();
        labelled["metadata"]["labels"] = json!({"a": "b"});
        let labelled = s
            .update(
                &r,
                Some("default"),
                "v",
                labelled,
                Subresource::Main,
                &w(false),
            )
            .unwrap();
        assert_eq!(
            labelled["metadata"]["generation"], 1,
            "metadata changes keep generation"
        );
        let mut status = labelled.clone();
        status["status"] = json!({"ok": true});
        status["spec"] = json!({"hosts": ["ignored"]});
        let with_status = s
            .update(
                &r,
                Some("default"),
                "v",
                status,
                Subresource::Status,
                &w(false),
            )
            .unwrap();
        assert_eq!(with_status["status"], json!({"ok": true}));
        assert_eq!(with_status["spec"], json!({"hosts": ["a"]}));
        let mut spec = with_status.clone();
        spec["spec"] = json!({"hosts": ["b"]});
        spec["status"] = json!({"ignored": true});
        let changed = s
            .update(&r, Some("default"), "v", spec, Subresource::Main, &w(false))
            .unwrap();
        assert_eq!(changed["metadata"]["generation"], 2);
        assert_eq!(changed["status"], json!({"ok": true}));
    }

    #[test]
    fn dry_run_changes_nothing() {
        let mut s = State::new(100, now());
        let r = rt(&s, "", "ConfigMap");
        let before = s.resource_version();
        let out = s
            .create(&r, Some("default"), cm("a", "1"), &w(true))
            .unwrap();
        assert_eq!(out["metadata"]["name"], "a");
        assert_eq!(s.resource_version(), before);
        assert!(s.get(&r, Some("default"), "a").is_err());
    }

    #[test]
    fn deleting_a_namespace_deletes_its_objects() {
        let mut s = State::new(100, now());
        let ns = rt(&s, "", "Namespace");
        let r = rt(&s, "", "ConfigMap");
        s.create(&ns, None, json!({"metadata": {"name": "team"}}), &w(false))
            .unwrap();
        s.create(&r, Some("team"), cm("a", "1"), &w(false)).unwrap();
        s.create(&r, Some("default"), cm("a", "1"), &w(false))
            .unwrap();
        let mut feed = s.watch(&ns, None, &Selection::default()).unwrap().feed;
        let answer = s.delete(&ns, None, "team", &Value::Null, false).unwrap();
        assert_eq!(answer["status"]["phase"], "Terminating");
        assert!(answer["metadata"]["deletionTimestamp"].is_string());
        assert!(s.get(&r, Some("team"), "a").is_err());
        assert!(s.get(&r, Some("default"), "a").is_ok());
        assert!(s.get(&ns, None, "team").is_err());
        // Watchers see Terminating, the contents go, then the namespace.
        let mut seen = Vec::new();
        while let Ok(c) = feed.try_recv() {
            seen.push(format!(
                "{} {} {}",
                c.change.as_str(),
                c.key.kind,
                c.object["status"]["phase"].as_str().unwrap_or("-")
            ));
        }
        assert_eq!(
            seen,
            [
                "MODIFIED Namespace Terminating",
                "DELETED ConfigMap -",
                "DELETED Namespace Terminating"
            ]
        );
    }

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
    fn deployments_are_available_unless_held() {
        let mut s = State::new(100, now());
        let r = rt(&s, "apps", "Deployment");
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                       "spec": {"replicas": 3}});
        let d = s.create(&r, Some("default"), d, &w(false)).unwrap();
        assert_eq!(d["status"]["availableReplicas"], 3);
        assert_eq!(d["status"]["conditions"][0]["status"], "True");
        let mut held = d.clone();
        held["metadata"]["annotations"] = json!({HOLD_ANNOTATION: "unavailable"});
        let held = s
            .update(
                &r,
                Some("default"),
                "web",
                held,
                Subresource::Main,
                &w(false),
            )
            .unwrap();
        assert_eq!(held["status"]["availableReplicas"], 0);
        assert_eq!(held["status"]["conditions"][0]["status"], "False");
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
}
