//! Field sets: [`FieldSet`], the tree of paths a manager owns, with its set algebra, its
//! `fieldsV1` JSON form ([`FieldsError`] when malformed), and [`FieldSet::of`], the fields an
//! object sets (the ownership view leaves out identity, server-set metadata and `status`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::walk::Walker;
use super::{FieldPath, ListSemantics, PathElement};

/// A set of field paths, stored as a tree like structured-merge-diff's `fieldpath.Set`:
/// `members` are paths that end here, `children` continue further (never empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    pub(super) members: BTreeSet<PathElement>,
    pub(super) children: BTreeMap<PathElement, FieldSet>,
}

/// What was wrong with a `fieldsV1` document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldsError {
    #[error(
        "fieldsV1 at `{at}` is not a JSON object; re-apply the object to reset its managed fields"
    )]
    NotAnObject { at: String },
    #[error(
        "fieldsV1 key `{key}` at `{at}` is not f:, k:, v: or i:; re-apply the object to reset its managed fields"
    )]
    BadKey { at: String, key: String },
}

impl FieldsError {
    pub fn metric_label(&self) -> &'static str {
        match self {
            FieldsError::NotAnObject { .. } => "fields_not_object",
            FieldsError::BadKey { .. } => "fields_bad_key",
        }
    }
}

impl FieldSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    pub fn contains(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.contains(rest)),
        }
    }

    /// The set below `path` (paths relative to it), if any path continues past it.
    pub fn child(&self, path: &[PathElement]) -> Option<&FieldSet> {
        match path {
            [] => Some(self),
            [first, rest @ ..] => self.children.get(first)?.child(rest),
        }
    }

    /// Is `path` in the set, or does any path of the set continue past it?
    pub fn covers(&self, path: &[PathElement]) -> bool {
        self.contains(path) || self.child(path).is_some_and(|c| !c.is_empty())
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out
    }

    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        out.members = self.members.intersection(&other.members).cloned().collect();
        for (pe, child) in &self.children {
            if let Some(theirs) = other.children.get(pe) {
                let both = child.intersection(theirs);
                if !both.is_empty() {
                    out.children.insert(pe.clone(), both);
                }
            }
        }
        out
    }

    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        out.members = self.members.difference(&other.members).cloned().collect();
        for (pe, child) in &self.children {
            let rest = match other.children.get(pe) {
                Some(theirs) => child.difference(theirs),
                None => child.clone(),
            };
            if !rest.is_empty() {
                out.children.insert(pe.clone(), rest);
            }
        }
        out
    }

    /// Every member path, in order.
    pub fn paths(&self) -> Vec<FieldPath> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<FieldPath>) {
        let mut keys: BTreeSet<&PathElement> = self.members.iter().collect();
        keys.extend(self.children.keys());
        for pe in keys {
            prefix.push(pe.clone());
            if self.members.contains(pe) {
                out.push(FieldPath(prefix.clone()));
            }
            if let Some(child) = self.children.get(pe) {
                child.collect_paths(prefix, out);
            }
            prefix.pop();
        }
    }

    /// The `fieldsV1` JSON form, as the API server writes it in `managedFields`.
    pub fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        let mut keys: BTreeSet<&PathElement> = self.members.iter().collect();
        keys.extend(self.children.keys());
        for pe in keys {
            let node = match self.children.get(pe) {
                Some(child) => {
                    let mut inner = Map::new();
                    if self.members.contains(pe) {
                        inner.insert(".".to_string(), Value::Object(Map::new()));
                    }
                    if let Value::Object(rest) = child.to_fields_v1() {
                        inner.extend(rest);
                    }
                    Value::Object(inner)
                }
                None => Value::Object(Map::new()),
            };
            map.insert(pe.to_fields_v1_key(), node);
        }
        Value::Object(map)
    }

    pub fn from_fields_v1(value: &Value) -> Result<FieldSet, FieldsError> {
        Self::parse_v1(value, "")
    }

    fn parse_v1(value: &Value, at: &str) -> Result<FieldSet, FieldsError> {
        let Value::Object(map) = value else {
            return Err(FieldsError::NotAnObject { at: at.to_string() });
        };
        let mut out = FieldSet::new();
        for (key, node) in map {
            if key == "." {
                continue;
            }
            let pe = PathElement::from_fields_v1_key(key).ok_or_else(|| FieldsError::BadKey {
                at: at.to_string(),
                key: key.clone(),
            })?;
            let Value::Object(inner) = node else {
                return Err(FieldsError::NotAnObject {
                    at: format!("{at}/{key}"),
                });
            };
            if inner.is_empty() || inner.contains_key(".") {
                out.members.insert(pe.clone());
            }
            let child = Self::parse_v1(node, &format!("{at}/{key}"))?;
            if !child.is_empty() {
                out.children.insert(pe, child);
            }
        }
        Ok(out)
    }

    /// The fields `object` sets: leaves, atomic lists and empty maps as members; maps as
    /// their keys; associative-list items as `k:` members with their fields below; set items
    /// as `v:` members. Identity and server-populated fields (apiVersion, kind, metadata.name,
    /// metadata.namespace, uid, resourceVersion, …) and `status` are left out, as the API
    /// server leaves them out of `managedFields`.
    pub fn of(object: &Value, semantics: &ListSemantics) -> FieldSet {
        let view = ownership_view(object);
        let walker = Walker::for_object(object, semantics);
        let mut out = FieldSet::new();
        if let Value::Object(map) = &view {
            walker.map_fields(map, &mut Vec::new(), &mut String::new(), &mut out);
        }
        out
    }
}

/// Top-level fields never owned by a manager.
const IGNORED_ROOT_FIELDS: &[&str] = &["apiVersion", "kind", "status"];
/// `metadata` fields never owned by a manager (the server sets or fixes them).
pub(super) const IGNORED_METADATA_FIELDS: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "managedFields",
];

/// The object without the fields ownership never covers.
pub(super) fn ownership_view(object: &Value) -> Value {
    let mut view = object.clone();
    if let Value::Object(map) = &mut view {
        for f in IGNORED_ROOT_FIELDS {
            map.remove(*f);
        }
        if let Some(Value::Object(meta)) = map.get_mut("metadata") {
            for f in IGNORED_METADATA_FIELDS {
                meta.remove(*f);
            }
            if meta.is_empty() {
                map.remove("metadata");
            }
        }
    }
    view
}
