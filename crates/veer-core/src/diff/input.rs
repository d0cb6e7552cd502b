//! What a plan is made from: git's objects as veer applies them ([`DesiredObject`]) and a way
//! to find each one's live object ([`LiveLookup`]).
//!
//! Both are there so that a plan holds one object of each side at a time, not every object
//! of both: a desired object shares git's object with the revision (veer's label and source
//! annotation are kept beside it and added when the object is read), and the live side is
//! asked for one object at a time, so a caller can read it from wherever it keeps it (the
//! controller: the watch cache's text) and drop it once compared.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::fields;
use crate::manifest::{Manifest, ObjectKey};

/// One object as git wants it: git's object (its own copy, or shared with the revision's
/// manifest) and the labels and annotations veer adds to it.
#[derive(Debug, Clone)]
pub struct DesiredObject {
    pub key: ObjectKey,
    applied: Applied,
}

/// What a desired object is read from, besides its key: cheap to clone (two pointers), so
/// that a create's plan ([`super::DesiredView::Git`]) points at the same object and
/// additions as the desired object instead of copying them (10,000 creates in a first sync).
#[derive(Debug, Clone)]
pub struct Applied {
    git: Git,
    /// Added to `metadata` in this order when the object is read ([`DesiredObject::value`]).
    /// Sized to what it holds (two entries, where a growing vector keeps room for four).
    added: Arc<[Addition]>,
}

#[derive(Debug, Clone)]
enum Git {
    Value(Arc<Value>),
    /// The revision's manifest: a desired object costs a pointer, not a copy.
    Manifest(Arc<Manifest>),
}

/// Where in `metadata` an addition goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataField {
    Labels,
    Annotations,
}

impl MetadataField {
    fn name(self) -> &'static str {
        match self {
            MetadataField::Labels => "labels",
            MetadataField::Annotations => "annotations",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Addition {
    field: MetadataField,
    name: String,
    value: String,
}

impl DesiredObject {
    /// `value` as git has it, veer's own.
    pub fn new(key: ObjectKey, value: Value) -> Self {
        DesiredObject {
            key,
            applied: Applied {
                git: Git::Value(Arc::new(value)),
                added: Arc::new([]),
            },
        }
    }

    /// The revision's manifest, shared with it.
    pub fn of_manifest(manifest: &Arc<Manifest>) -> Self {
        DesiredObject {
            key: manifest.key.clone(),
            applied: Applied {
                git: Git::Manifest(manifest.clone()),
                added: Arc::new([]),
            },
        }
    }

    /// Set `metadata.<field>.<name>` to `value` when the object is read: the map is made
    /// when missing and replaced when it is not a map; an object whose `metadata` is not a
    /// map (or that is not a map itself) is left as it is.
    pub fn add_metadata(&mut self, field: MetadataField, name: &str, value: &str) {
        let added = &self.applied.added;
        let mut more = Vec::with_capacity(added.len() + 1);
        more.extend(added.iter().cloned());
        more.push(Addition {
            field,
            name: name.to_string(),
            value: value.to_string(),
        });
        self.applied.added = more.into();
    }

    /// git's object as written, without what veer adds.
    pub fn git(&self) -> &Value {
        self.applied.git()
    }

    /// The object as veer applies it: git's, with what veer adds. A copy when veer adds
    /// anything: callers hold it only while they look at it.
    pub fn value(&self) -> Cow<'_, Value> {
        self.applied.value()
    }

    /// What the object is read from, shared (not copied).
    pub(super) fn applied(&self) -> Applied {
        self.applied.clone()
    }
}

impl Applied {
    fn git(&self) -> &Value {
        match &self.git {
            Git::Value(v) => v,
            Git::Manifest(m) => &m.value,
        }
    }

    /// See [`DesiredObject::value`].
    pub fn value(&self) -> Cow<'_, Value> {
        let git = self.git();
        if self.added.is_empty() {
            return Cow::Borrowed(git);
        }
        let mut value = git.clone();
        for a in self.added.iter() {
            add(&mut value, a);
        }
        Cow::Owned(value)
    }
}

impl DesiredObject {
    /// [`super::desired_hash`] of [`DesiredObject::value`], from one copy of the object (the
    /// canonical one the hash is made of) instead of two.
    pub fn hash(&self) -> String {
        let added = &self.applied.added;
        if added.is_empty() {
            return super::desired_hash(self.git());
        }
        let mut value = fields::canonical(self.git());
        for a in added.iter() {
            add(&mut value, a);
        }
        // What the additions made or grew is sorted again: the top level (a `metadata` made)
        // and `metadata` (its maps).
        if let Value::Object(root) = &mut value {
            let mut entries: Vec<(String, Value)> = std::mem::take(root).into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            root.extend(entries);
            if let Some(meta) = root.get_mut("metadata") {
                *meta = fields::canonical(meta);
            }
        }
        super::hash_canonical(&value)
    }
}

fn add(object: &mut Value, addition: &Addition) {
    let Value::Object(root) = object else {
        return;
    };
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(meta) = meta else {
        return;
    };
    let entry = meta
        .entry(addition.field.name())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    if let Value::Object(map) = entry {
        map.insert(addition.name.clone(), Value::String(addition.value.clone()));
    }
}

/// Two desired objects are equal when they apply the same object.
impl PartialEq for DesiredObject {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.value() == other.value()
    }
}

/// The live objects a plan looks at, one at a time.
pub trait LiveLookup {
    /// `key`'s object as the API server returns it (`managedFields` included), at any API
    /// version: `None` when it does not exist. Borrowed from the caller, or read for this
    /// call and dropped by the plan once compared.
    fn live(&self, key: &ObjectKey) -> Option<Cow<'_, Value>>;
}

/// A map of live objects keyed as the caller read them: the key itself, else the same
/// object at another API version (a scan: kept for small maps and tests).
impl LiveLookup for BTreeMap<ObjectKey, Value> {
    fn live(&self, key: &ObjectKey) -> Option<Cow<'_, Value>> {
        self.get(key)
            .or_else(|| {
                self.iter()
                    .find(|(k, _)| k.same_object(key))
                    .map(|(_, v)| v)
            })
            .map(Cow::Borrowed)
    }
}

impl<L: LiveLookup + ?Sized> LiveLookup for &L {
    fn live(&self, key: &ObjectKey) -> Option<Cow<'_, Value>> {
        (**self).live(key)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key() -> ObjectKey {
        ObjectKey {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("shop".into()),
            name: "a".into(),
        }
    }

    #[test]
    fn additions_go_into_metadata_when_read_and_leave_git_alone() {
        let mut d = DesiredObject::new(
            key(),
            json!({"metadata": {"name": "a", "labels": "not a map"}}),
        );
        assert!(matches!(d.value(), Cow::Borrowed(_)));
        d.add_metadata(MetadataField::Labels, "l", "1");
        d.add_metadata(MetadataField::Annotations, "a", "2");
        assert_eq!(
            *d.value(),
            json!({"metadata": {"name": "a", "labels": {"l": "1"}, "annotations": {"a": "2"}}})
        );
        assert_eq!(
            d.git(),
            &json!({"metadata": {"name": "a", "labels": "not a map"}})
        );
        let mut odd = DesiredObject::new(key(), json!({"metadata": 3}));
        odd.add_metadata(MetadataField::Labels, "l", "1");
        assert_eq!(*odd.value(), json!({"metadata": 3}));
    }

    #[test]
    fn the_hash_is_that_of_the_object_as_applied() {
        let objects = [
            json!({"kind": "A", "metadata": {"name": "a", "labels": {"z": "1", "a": "2"}}, "b": 1}),
            json!({"kind": "A", "spec": {"y": [{"b": 1, "a": 2}]}}),
            json!({"kind": "A", "metadata": {"labels": 3, "annotations": {"x": "1"}}}),
            json!({"kind": "A", "metadata": "odd"}),
            json!([1, 2]),
        ];
        for git in objects {
            let mut d = DesiredObject::new(key(), git.clone());
            assert_eq!(d.hash(), super::super::desired_hash(&git));
            d.add_metadata(
                MetadataField::Labels,
                "app.kubernetes.io/managed-by",
                "veer",
            );
            d.add_metadata(
                MetadataField::Annotations,
                "veer.io/source",
                "git://x#a.yaml",
            );
            assert_eq!(d.hash(), super::super::desired_hash(&d.value()), "{git}");
        }
    }

    #[test]
    fn a_map_finds_the_same_object_at_another_version() {
        let mut other = key();
        other.version = "v2".into();
        let live = BTreeMap::from([(other, json!({"v": 2}))]);
        assert_eq!(live.live(&key()).as_deref(), Some(&json!({"v": 2})));
        let mut absent = key();
        absent.name = "b".into();
        assert!(live.live(&absent).is_none());
    }
}
