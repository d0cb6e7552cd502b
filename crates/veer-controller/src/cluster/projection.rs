//! What the watch cache keeps of a live object: [`LiveObject`], the object as the API server
//! sent it less what veer never reads ([`project`]), held as compact JSON text and read back
//! as a `serde_json::Value` when a plan asks for it.
//!
//! Why text: a `Value` costs about eight times its JSON (a map per object, an entry per
//! field), and the cache holds every watched object for the life of the process while a plan
//! needs them only while it runs. Text is also the one representation: nothing else keeps
//! the object (the watcher's decoded event is dropped once it is stored).
//!
//! What veer reads of a live object, and so what the projection keeps (the readers: the
//! diff and prune plans in `veer_core::diff`, the rollout's live route in
//! `veer_core::rollout::live`, the prune's uid precondition and the gate's source
//! annotation in `crate::sync` and `crate::controller::gate`):
//! - everything git can set: `metadata` (but the server's bookkeeping) and every top-level
//!   field but `status`;
//! - `status` whole only when an applier owns part of it (a custom resource without a status
//!   subresource), since the diff never compares a field no applier owns and git cannot own
//!   status otherwise; else only its `Available` condition, as `type` and `status` (what the
//!   rollout's health gate reads of a Deployment, `controller::rollouts::health`), so the
//!   controller's other status updates leave the kept text as it was;
//! - `metadata.uid`, `name`, `namespace`, `resourceVersion`;
//! - `metadata.managedFields`: every `Apply` entry whole (veer's is the set of fields it may
//!   remove); of every other entry its manager, operation, API version, time and subresource,
//!   and of its `fieldsV1` only what the diff can read: the fields on the paths an applier
//!   owns, whole below the fields an applier owns (see [`restrict`]), plus `spec.http`,
//!   whose last editor the rollout names;
//! - `kubectl.kubernetes.io/last-applied-configuration` (kubectl's copy of the whole object)
//!   only when an applier owns it.

use std::borrow::Cow;
use std::sync::Arc;

use kube::api::{ApiResource, ObjectMeta};
use kube::core::{DynamicResourceScope, Resource};
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::fields::FieldSet;

/// kubectl's client-side apply bookkeeping: a copy of the whole object as last applied.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The status condition the health gate reads (a Deployment's).
const AVAILABLE: &str = "Available";
/// `metadata` fields the server sets that nothing in veer reads from a live object.
const DROPPED_METADATA: &[&str] = &["creationTimestamp", "generation", "selfLink"];

/// A watched object as the cache keeps it: the projection ([`project`]) as compact JSON,
/// with the identity the watcher and the store key on.
#[derive(Clone, Debug)]
pub struct LiveObject {
    /// `name`, `namespace` and `resourceVersion` only.
    pub metadata: ObjectMeta,
    /// The projection without `apiVersion` and `kind` (the watch's resource says them).
    body: Arc<str>,
}

impl LiveObject {
    /// Project `object` and keep it.
    pub fn new(mut object: Value) -> Self {
        project(&mut object);
        // Field by field: a JSON pointer allocates a string per segment, and every watch
        // event comes through here.
        let text = |field: &str| {
            object
                .get("metadata")
                .and_then(|m| m.get(field))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let metadata = ObjectMeta {
            name: text("name"),
            namespace: text("namespace"),
            resource_version: text("resourceVersion"),
            ..ObjectMeta::default()
        };
        if let Value::Object(map) = &mut object {
            map.shift_remove("apiVersion");
            map.shift_remove("kind");
        }
        LiveObject {
            metadata,
            body: Arc::from(object.to_string()),
        }
    }

    /// The kept text (shared, not copied).
    pub fn text(&self) -> Arc<str> {
        self.body.clone()
    }
}

/// A kept object ([`LiveObject::text`]) as veer reads it, with `apiVersion` and `kind` of the
/// watched resource. `None` only if the text does not read back (it always does: veer wrote
/// it).
pub fn read(text: &str, resource: &ApiResource) -> Option<Value> {
    let Ok(Value::Object(body)) = read_compact(text) else {
        return None;
    };
    let mut map = Map::with_capacity(body.len() + 2);
    map.insert(
        "apiVersion".into(),
        Value::String(resource.api_version.clone()),
    );
    map.insert("kind".into(), Value::String(resource.kind.clone()));
    map.extend(body);
    Some(Value::Object(map))
}

/// JSON text as a `Value` whose maps and arrays hold no spare room: serde_json grows them
/// as it reads (a map read with one entry keeps room for three), and a plan holds every
/// object it reads at once.
fn read_compact(text: &str) -> serde_json::Result<Value> {
    let mut reader = serde_json::Deserializer::from_str(text);
    let value = reader.deserialize_any(Compact)?;
    reader.end()?;
    Ok(value)
}

/// A `Value` visitor that sizes each map and array to what it holds.
struct Compact;

impl<'de> DeserializeSeed<'de> for Compact {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(Compact)
    }
}

impl<'de> Visitor<'de> for Compact {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Compact)? {
            items.push(item);
        }
        items.shrink_to_fit();
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries: Vec<(String, Value)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            entries.push((key, map.next_value_seed(Compact)?));
        }
        let mut out = Map::with_capacity(entries.len());
        out.extend(entries);
        Ok(Value::Object(out))
    }
}

impl<'de> Deserialize<'de> for LiveObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(LiveObject::new)
    }
}

impl Resource for LiveObject {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }

    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }

    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }

    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }

    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// Reduce a live object, in place, to what veer reads of it (see the module's header).
pub fn project(object: &mut Value) {
    let Value::Object(map) = object else {
        return;
    };
    let entries: Vec<Value> = map
        .get_mut("metadata")
        .and_then(|m| m.get_mut("managedFields"))
        .map(Value::take)
        .and_then(|v| match v {
            Value::Array(entries) => Some(entries),
            _ => None,
        })
        .unwrap_or_default();
    let applied = applied_fields(&entries);
    let owned = |path: &[&str]| owns(&applied, path);
    if !owned(&["f:status"]) {
        let status = map.shift_remove("status");
        if let Some(available) = status.as_ref().and_then(available_condition) {
            map.insert(
                "status".into(),
                serde_json::json!({ "conditions": [available] }),
            );
        }
    }
    let Some(Value::Object(meta)) = map.get_mut("metadata") else {
        return;
    };
    for field in DROPPED_METADATA {
        meta.shift_remove(*field);
    }
    let last_applied_owned = owned(&[
        "f:metadata",
        "f:annotations",
        "f:kubectl.kubernetes.io/last-applied-configuration",
    ]);
    if !last_applied_owned && let Some(Value::Object(annotations)) = meta.get_mut("annotations") {
        annotations.shift_remove(LAST_APPLIED);
    }
    if entries.is_empty() {
        meta.shift_remove("managedFields");
        return;
    }
    let reduced = entries
        .into_iter()
        .map(|entry| reduce_entry(entry, &applied))
        .collect();
    meta.insert("managedFields".into(), Value::Array(reduced));
}

/// The `Available` condition of `status`, as `type` and `status` only.
fn available_condition(status: &Value) -> Option<Value> {
    let conditions = status.get("conditions")?.as_array()?;
    let available = conditions
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(AVAILABLE))?;
    let value = available.get("status").cloned().unwrap_or(Value::Null);
    Some(serde_json::json!({ "type": AVAILABLE, "status": value }))
}

/// The union of the `fieldsV1` of every `Apply` entry.
fn applied_fields(entries: &[Value]) -> Map<String, Value> {
    let mut union = Map::new();
    for entry in entries {
        if entry.get("operation").and_then(Value::as_str) != Some("Apply") {
            continue;
        }
        if let Some(Value::Object(fields)) = entry.get("fieldsV1") {
            merge(&mut union, fields);
        }
    }
    union
}

/// Add the fields of `more` to `into` (both `fieldsV1`).
fn merge(into: &mut Map<String, Value>, more: &Map<String, Value>) {
    for (key, node) in more {
        match (into.get_mut(key), node) {
            (Some(Value::Object(mine)), Value::Object(theirs)) => {
                let either = owned(mine) || owned(theirs);
                merge(mine, theirs);
                // `{}` is owned; with children added it must say so with the marker.
                if either && !owned(mine) {
                    mine.insert(".".into(), Value::Object(Map::new()));
                }
            }
            // A malformed node gives way to a well-formed one: the union never owns less
            // than an entry the diff can read.
            (Some(slot), Value::Object(_)) => *slot = node.clone(),
            (Some(_), _) => {}
            (None, _) => {
                into.insert(key.clone(), node.clone());
            }
        }
    }
}

/// Is this `fieldsV1` node a field owned (not only a path to owned fields)?
fn owned(node: &Map<String, Value>) -> bool {
    node.is_empty() || node.contains_key(".")
}

/// Does the `fieldsV1` `fields` own `path` or anything below it?
fn owns(fields: &Map<String, Value>, path: &[&str]) -> bool {
    let mut at = fields;
    for key in path {
        match at.get(*key) {
            Some(Value::Object(next)) => at = next,
            Some(_) | None => return false,
        }
    }
    true
}

/// An entry as the cache keeps it: `Apply` entries whole, the others' fields restricted.
fn reduce_entry(mut entry: Value, applied: &Map<String, Value>) -> Value {
    if entry.get("operation").and_then(Value::as_str) == Some("Apply") {
        return entry;
    }
    // Malformed fields (the diff drops the entry) are kept as they are, to be dropped alike.
    let readable = entry
        .get("fieldsV1")
        .is_some_and(|f| FieldSet::from_fields_v1(f).is_ok());
    let Some(Value::Object(fields)) = entry.get_mut("fieldsV1").filter(|_| readable) else {
        return entry;
    };
    let mut kept = restrict(fields, applied);
    // The rollout names the last other manager of the routes (presence and time only).
    if let Some(http) = fields.get("f:spec").and_then(|s| s.get("f:http")) {
        let spec = kept
            .entry("f:spec")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(spec) = spec {
            spec.insert("f:http".into(), http.clone());
        }
    }
    *fields = kept;
    entry
}

/// The part of another manager's `fieldsV1` (`other`) that a plan can read, given the fields
/// the appliers own (`applied`).
///
/// The diff reads another manager's fields only to keep what an applier (veer) owns and git
/// dropped when someone else owns it too: a field veer owns is kept when another manager owns
/// it or anything below it (`FieldSet::covers`). So what matters is, along the paths of
/// `applied`, whether `other` owns the same field, and below a field `applied` owns,
/// everything `other` owns. Everything else (the status a controller writes, fields veer
/// never applied) cannot change a plan. In `fieldsV1` a node is owned when it is empty or
/// has the `.` marker; a node with only children is a path to owned fields.
fn restrict(other: &Map<String, Value>, applied: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, node) in other {
        if key == "." {
            continue;
        }
        let Some(Value::Object(mine)) = applied.get(key) else {
            continue;
        };
        let Value::Object(theirs) = node else {
            // Malformed below: kept whole, as the diff would read it.
            out.insert(key.clone(), node.clone());
            continue;
        };
        if owned(mine) {
            out.insert(key.clone(), node.clone());
            continue;
        }
        // Owning a field the appliers only have paths through does not matter; writing it
        // as `{}` would make it owned, so a node is kept only for what continues below it.
        let below = restrict(theirs, mine);
        if !below.is_empty() {
            out.insert(key.clone(), Value::Object(below));
        }
    }
    out
}

#[cfg(test)]
#[path = "projection_tests.rs"]
mod tests;
