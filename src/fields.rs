//! Kubernetes managed fields and server-side apply, as pure functions over JSON.
//!
//! Owns: field paths and field sets (`metadata.managedFields[].fieldsV1`), how lists merge
//! ([`ListSemantics`]), and the server-side-apply engine ([`apply`], [`update`]) that the
//! embedded API server runs and the diff uses to tell what `veer` owns. No I/O; time is an
//! argument. The model follows Kubernetes' structured-merge-diff closely enough that what
//! kube-rs and kubectl read back looks like what a real API server writes.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

mod lists;
mod values;

pub use lists::{
    KUBERNETES_LIST_RULES, KeyField, ListRule, ListSemantics, ListType, PathMatch, RuleScope, Text,
};
pub use values::{compare_values, same_value};

// ---------------------------------------------------------------------------------------------
// Paths

/// One step of a field path, as structured-merge-diff names it. Equality follows the order
/// ([`compare_values`]): `k:{"port":25}` and `k:{"port":25.0}` name the same item.
#[derive(Debug, Clone)]
pub enum PathElement {
    /// `f:name`: a field of a map.
    Field(String),
    /// `k:{"name":"app"}`: an item of an associative list, by its key fields (sorted by name).
    Key(Vec<(String, Value)>),
    /// `v:"value"`: an item of a set-like list.
    Value(Value),
    /// `i:3`: an item of a list by position (not written by apply; read for completeness).
    Index(usize),
}

impl PathElement {
    pub fn field(name: impl Into<String>) -> Self {
        PathElement::Field(name.into())
    }

    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The `fieldsV1` key form: `f:spec`, `k:{"name":"app"}`, `v:"x"`, `i:0`.
    pub fn to_fields_v1_key(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                let mut map = Map::new();
                for (name, value) in fields {
                    map.insert(name.clone(), canonical(value));
                }
                format!("k:{}", Value::Object(map))
            }
            PathElement::Value(value) => format!("v:{}", canonical(value)),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parse a `fieldsV1` key. `None` for `.` and anything malformed.
    pub fn from_fields_v1_key(key: &str) -> Option<Self> {
        let (prefix, rest) = key.split_once(':')?;
        match prefix {
            "f" => Some(PathElement::Field(rest.to_string())),
            "k" => match serde_json::from_str::<Value>(rest).ok()? {
                Value::Object(map) => Some(PathElement::Key(sorted_key(
                    map.into_iter().collect::<Vec<_>>(),
                ))),
                _ => None,
            },
            "v" => serde_json::from_str(rest).ok().map(PathElement::Value),
            "i" => rest.parse().ok().map(PathElement::Index),
            _ => None,
        }
    }
}

fn sorted_key(mut fields: Vec<(String, Value)>) -> Vec<(String, Value)> {
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    fields
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((an, av), (bn, bv)) in a.iter().zip(b.iter()) {
                    let o = an.cmp(bn).then_with(|| compare_values(av, bv));
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => compare_values(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The value with every map's keys sorted, so equal values serialise equally.
pub fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), canonical(&map[k]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// A path from the object's root to one field.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct FieldPath(pub Vec<PathElement>);

impl FieldPath {
    pub fn fields(names: &[&str]) -> Self {
        FieldPath(names.iter().map(|n| PathElement::field(*n)).collect())
    }

    pub fn elements(&self) -> &[PathElement] {
        &self.0
    }
}

/// The form the API server uses in conflict messages: `.spec.containers[name="app"].image`.
impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for element in &self.0 {
            match element {
                PathElement::Field(name) => write!(f, ".{name}")?,
                PathElement::Key(fields) => {
                    f.write_str("[")?;
                    for (i, (name, value)) in fields.iter().enumerate() {
                        if i > 0 {
                            f.write_str(",")?;
                        }
                        write!(f, "{name}={}", canonical(value))?;
                    }
                    f.write_str("]")?;
                }
                PathElement::Value(value) => write!(f, "[={}]", canonical(value))?,
                PathElement::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Field sets

/// A set of field paths, stored as a tree like structured-merge-diff's `fieldpath.Set`:
/// `members` are paths that end here, `children` continue further (never empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, FieldSet>,
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
const IGNORED_METADATA_FIELDS: &[&str] = &[
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
fn ownership_view(object: &Value) -> Value {
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

// ---------------------------------------------------------------------------------------------
// List semantics

/// Group and kind of an object, from its `apiVersion` and `kind`.
fn group_kind(object: &Value) -> (String, String) {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let group = api_version
        .rsplit_once('/')
        .map(|(g, _)| g)
        .unwrap_or("")
        .to_string();
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    (group, kind)
}

/// How one list's items are named: by key or value, or the list is treated whole.
enum ListItems {
    Atomic,
    Named(Vec<PathElement>),
}

/// Walks objects of one kind with the list semantics that apply to it.
struct Walker<'a> {
    group: String,
    kind: String,
    semantics: &'a ListSemantics,
}

fn push_field(schema: &mut String, name: &str) -> usize {
    let len = schema.len();
    if !schema.is_empty() {
        schema.push('.');
    }
    schema.push_str(name);
    len
}

impl<'a> Walker<'a> {
    fn for_object(object: &Value, semantics: &'a ListSemantics) -> Self {
        let (group, kind) = group_kind(object);
        Walker {
            group,
            kind,
            semantics,
        }
    }

    fn list_type(&self, schema: &str) -> &'a ListType {
        self.semantics.list_type(&self.group, &self.kind, schema)
    }

    /// Name each item of a list; a list whose items cannot all be named uniquely (missing
    /// key without default, duplicates, non-map items in a keyed list) is treated as atomic,
    /// so that it still merges and diffs predictably.
    fn items(&self, list_type: &ListType, items: &[Value]) -> ListItems {
        let mut names = Vec::with_capacity(items.len());
        for item in items {
            let pe = match list_type {
                ListType::Atomic => return ListItems::Atomic,
                ListType::Set => {
                    if item.is_object() || item.is_array() {
                        return ListItems::Atomic;
                    }
                    PathElement::Value(item.clone())
                }
                ListType::Map(keys) => {
                    let Value::Object(map) = item else {
                        return ListItems::Atomic;
                    };
                    let mut fields = Vec::with_capacity(keys.len());
                    for k in keys.iter() {
                        match (map.get(k.name.as_ref()), &k.default) {
                            (Some(v), _) if !v.is_null() => {
                                fields.push((k.name.to_string(), v.clone()))
                            }
                            (_, Some(d)) => {
                                fields.push((k.name.to_string(), Value::String(d.to_string())))
                            }
                            _ => return ListItems::Atomic,
                        }
                    }
                    PathElement::Key(sorted_key(fields))
                }
            };
            if names.contains(&pe) {
                return ListItems::Atomic;
            }
            names.push(pe);
        }
        ListItems::Named(names)
    }

    fn map_fields(
        &self,
        map: &Map<String, Value>,
        path: &mut Vec<PathElement>,
        schema: &mut String,
        out: &mut FieldSet,
    ) {
        for (name, value) in map {
            let len = push_field(schema, name);
            path.push(PathElement::Field(name.clone()));
            self.value_fields(value, path, schema, out);
            path.pop();
            schema.truncate(len);
        }
    }

    /// Fields of `value` found at `path` (as [`FieldSet::of`] counts them).
    fn value_fields(
        &self,
        value: &Value,
        path: &mut Vec<PathElement>,
        schema: &mut String,
        out: &mut FieldSet,
    ) {
        match value {
            Value::Object(map) if !map.is_empty() => self.map_fields(map, path, schema, out),
            Value::Array(items) => match self.items(self.list_type(schema), items) {
                ListItems::Atomic => out.insert(path),
                ListItems::Named(names) => {
                    schema.push_str("[]");
                    for (pe, item) in names.into_iter().zip(items) {
                        path.push(pe);
                        out.insert(path);
                        if let Value::Object(m) = item {
                            self.map_fields(m, path, schema, out);
                        }
                        path.pop();
                    }
                    schema.truncate(schema.len() - 2);
                }
            },
            _ => out.insert(path),
        }
    }

    /// Every path at and below `path` (the path itself as a member): what appears or
    /// disappears when a whole subtree is added or removed.
    fn subtree(
        &self,
        value: &Value,
        path: &mut Vec<PathElement>,
        schema: &mut String,
        out: &mut FieldSet,
    ) {
        out.insert(path);
        match value {
            Value::Object(map) => {
                for (name, v) in map {
                    let len = push_field(schema, name);
                    path.push(PathElement::Field(name.clone()));
                    self.subtree(v, path, schema, out);
                    path.pop();
                    schema.truncate(len);
                }
            }
            Value::Array(items) => {
                if let ListItems::Named(names) = self.items(self.list_type(schema), items) {
                    schema.push_str("[]");
                    for (pe, item) in names.into_iter().zip(items) {
                        path.push(pe);
                        self.subtree(item, path, schema, out);
                        path.pop();
                    }
                    schema.truncate(schema.len() - 2);
                }
            }
            _ => {}
        }
    }

    /// `applied` merged into `live`: maps field by field, named list items by name, atomic
    /// lists and scalars replaced.
    fn merge(&self, live: &Value, applied: &Value, schema: &mut String) -> Value {
        match (live, applied) {
            (Value::Object(l), Value::Object(a)) => {
                let mut out = l.clone();
                for (name, av) in a {
                    let len = push_field(schema, name);
                    let merged = match l.get(name) {
                        Some(lv) => self.merge(lv, av, schema),
                        None => av.clone(),
                    };
                    schema.truncate(len);
                    out.insert(name.clone(), merged);
                }
                Value::Object(out)
            }
            (Value::Array(l), Value::Array(a)) => {
                let list_type = self.list_type(schema);
                let (ListItems::Named(ln), ListItems::Named(an)) =
                    (self.items(list_type, l), self.items(list_type, a))
                else {
                    return applied.clone();
                };
                schema.push_str("[]");
                let out = self.merge_items(l, &ln, a, &an, schema);
                schema.truncate(schema.len() - 2);
                Value::Array(out)
            }
            _ => applied.clone(),
        }
    }

    /// Merge named list items the way structured-merge-diff orders them: items both sides
    /// have follow the applied order, live-only items keep their place among them, and
    /// applied-only items come where the applied list has them.
    fn merge_items(
        &self,
        l: &[Value],
        ln: &[PathElement],
        a: &[Value],
        an: &[PathElement],
        schema: &mut String,
    ) -> Vec<Value> {
        let mut shared = an.iter().filter(|pe| ln.contains(pe)).peekable();
        let mut done: Vec<&PathElement> = Vec::new();
        let mut out = Vec::with_capacity(l.len() + a.len());
        let (mut li, mut ri) = (0, 0);
        while li < l.len() || ri < a.len() {
            if li < l.len() && ri < a.len() {
                if ln[li] == an[ri] {
                    out.push(self.merge(&l[li], &a[ri], schema));
                    done.push(&an[ri]);
                    if shared.peek() == Some(&&an[ri]) {
                        shared.next();
                    }
                    li += 1;
                    ri += 1;
                    continue;
                }
                if an.contains(&ln[li]) && shared.peek().is_some_and(|next| **next != ln[li]) {
                    li += 1;
                    continue;
                }
            }
            if li < l.len() {
                if !an.contains(&ln[li]) {
                    out.push(l[li].clone());
                    li += 1;
                    continue;
                }
                if done.contains(&&ln[li]) {
                    li += 1;
                    continue;
                }
            }
            if ri < a.len() {
                let item = match ln.iter().position(|x| *x == an[ri]) {
                    Some(i) => self.merge(&l[i], &a[ri], schema),
                    None => a[ri].clone(),
                };
                out.push(item);
                done.push(&an[ri]);
                if shared.peek() == Some(&&an[ri]) {
                    shared.next();
                }
                ri += 1;
            } else {
                // Only shared live items remain and all are merged already.
                li += 1;
            }
        }
        out
    }

    /// What changed from `old` to `new`, as field sets.
    fn compare(
        &self,
        old: &Value,
        new: &Value,
        path: &mut Vec<PathElement>,
        schema: &mut String,
        out: &mut Comparison,
    ) {
        match (old, new) {
            (Value::Object(o), Value::Object(n)) => {
                for (name, nv) in n {
                    let len = push_field(schema, name);
                    path.push(PathElement::Field(name.clone()));
                    match o.get(name) {
                        Some(ov) => self.compare(ov, nv, path, schema, out),
                        None => self.subtree(nv, path, schema, &mut out.added),
                    }
                    path.pop();
                    schema.truncate(len);
                }
                for (name, ov) in o {
                    if !n.contains_key(name) {
                        let len = push_field(schema, name);
                        path.push(PathElement::Field(name.clone()));
                        self.subtree(ov, path, schema, &mut out.removed);
                        path.pop();
                        schema.truncate(len);
                    }
                }
            }
            (Value::Array(o), Value::Array(n)) => {
                let list_type = self.list_type(schema);
                let (ListItems::Named(on), ListItems::Named(nn)) =
                    (self.items(list_type, o), self.items(list_type, n))
                else {
                    if !same_value(old, new) {
                        out.modified.insert(path);
                    }
                    return;
                };
                schema.push_str("[]");
                for (pe, nv) in nn.iter().zip(n) {
                    path.push(pe.clone());
                    match on.iter().position(|x| x == pe) {
                        Some(i) => self.compare(&o[i], nv, path, schema, out),
                        None => self.subtree(nv, path, schema, &mut out.added),
                    }
                    path.pop();
                }
                for (pe, ov) in on.iter().zip(o) {
                    if !nn.contains(pe) {
                        path.push(pe.clone());
                        self.subtree(ov, path, schema, &mut out.removed);
                        path.pop();
                    }
                }
                schema.truncate(schema.len() - 2);
            }
            _ => {
                if !same_value(old, new) {
                    out.modified.insert(path);
                }
            }
        }
    }

    /// Remove the field at `path` from `value`. Maps emptied by the removal go too, unless
    /// `keep` (what some manager owns) names them.
    fn remove(
        &self,
        value: &mut Value,
        path: &[PathElement],
        prefix: &mut Vec<PathElement>,
        schema: &mut String,
        keep: &FieldSet,
    ) {
        let [first, rest @ ..] = path else {
            return;
        };
        match (value, first) {
            (Value::Object(map), PathElement::Field(name)) => {
                if rest.is_empty() {
                    map.remove(name);
                    return;
                }
                let Some(child) = map.get_mut(name) else {
                    return;
                };
                let len = push_field(schema, name);
                prefix.push(first.clone());
                self.remove(child, rest, prefix, schema, keep);
                let emptied = match child {
                    Value::Object(m) => m.is_empty(),
                    Value::Array(items) => items.is_empty(),
                    _ => false,
                };
                if emptied && !keep.contains(prefix) {
                    map.remove(name);
                }
                prefix.pop();
                schema.truncate(len);
            }
            (Value::Array(items), pe) => {
                let index = match pe {
                    PathElement::Index(i) => Some(*i).filter(|i| *i < items.len()),
                    _ => match self.items(self.list_type(schema), items) {
                        ListItems::Named(names) => names.iter().position(|n| n == pe),
                        ListItems::Atomic => None,
                    },
                };
                let Some(index) = index else {
                    return;
                };
                if rest.is_empty() {
                    items.remove(index);
                    return;
                }
                schema.push_str("[]");
                prefix.push(first.clone());
                self.remove(&mut items[index], rest, prefix, schema, keep);
                prefix.pop();
                schema.truncate(schema.len() - 2);
            }
            _ => {}
        }
    }

    /// `value` restricted to the fields in `set` (and the maps and items leading to them).
    fn project(&self, value: &Value, set: &FieldSet, schema: &mut String) -> Option<Value> {
        match value {
            Value::Object(map) => {
                let mut out = Map::new();
                for (name, v) in map {
                    let pe = PathElement::Field(name.clone());
                    let len = push_field(schema, name);
                    if set.members.contains(&pe) && !set.children.contains_key(&pe) {
                        // Maps are granular: a map named without children is one that was
                        // set empty, and only its existence is in the set, not others' keys.
                        let kept = match v {
                            Value::Object(_) => Value::Object(Map::new()),
                            other => other.clone(),
                        };
                        out.insert(name.clone(), kept);
                    } else if let Some(child) = set.children.get(&pe)
                        && let Some(p) = self.project(v, child, schema)
                    {
                        out.insert(name.clone(), p);
                    }
                    schema.truncate(len);
                }
                if out.is_empty() {
                    None
                } else {
                    Some(Value::Object(out))
                }
            }
            Value::Array(items) => {
                let ListItems::Named(names) = self.items(self.list_type(schema), items) else {
                    return None;
                };
                schema.push_str("[]");
                let mut out = Vec::new();
                for (pe, item) in names.iter().zip(items) {
                    if let Some(child) = set.children.get(pe) {
                        if let Some(p) = self.project(item, child, schema) {
                            out.push(p);
                        }
                    } else if set.members.contains(pe) {
                        out.push(item.clone());
                    }
                }
                schema.truncate(schema.len() - 2);
                if out.is_empty() {
                    None
                } else {
                    Some(Value::Array(out))
                }
            }
            _ => None,
        }
    }
}

/// What changed between two versions of an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// New fields, with everything below them.
    pub added: FieldSet,
    /// Fields present in both whose value changed (scalars and atomic lists).
    pub modified: FieldSet,
    /// Fields gone, with everything that was below them.
    pub removed: FieldSet,
}

/// Compare two versions of an object field by field (ownership view: status, identity and
/// server-set metadata ignored).
pub fn compare(old: &Value, new: &Value, semantics: &ListSemantics) -> Comparison {
    let walker = Walker::for_object(new, semantics);
    let mut out = Comparison::default();
    walker.compare(
        &ownership_view(old),
        &ownership_view(new),
        &mut Vec::new(),
        &mut String::new(),
        &mut out,
    );
    // Like the API server, never count `metadata` itself, only what is inside it.
    let metadata = [PathElement::field("metadata")];
    for set in [&mut out.added, &mut out.modified, &mut out.removed] {
        set.members.remove(&metadata[0]);
    }
    out
}

/// `value` restricted to `set`: only the fields the set names, and the maps and list items
/// leading to them. `apiVersion`, `kind`, `metadata.name` and `metadata.namespace` are kept
/// so the result still reads as the object.
pub fn project(value: &Value, set: &FieldSet, semantics: &ListSemantics) -> Value {
    let walker = Walker::for_object(value, semantics);
    let mut out = walker
        .project(value, set, &mut String::new())
        .unwrap_or_else(|| Value::Object(Map::new()));
    if let Value::Object(map) = &mut out {
        let mut identity = Map::new();
        for f in ["apiVersion", "kind"] {
            if let Some(v) = value.get(f) {
                identity.insert(f.to_string(), v.clone());
            }
        }
        let mut meta = Map::new();
        for f in ["name", "namespace"] {
            if let Some(v) = value.pointer(&format!("/metadata/{f}")) {
                meta.insert(f.to_string(), v.clone());
            }
        }
        if let Some(Value::Object(m)) = map.remove("metadata") {
            meta.extend(m);
        }
        if !meta.is_empty() {
            identity.insert("metadata".to_string(), Value::Object(meta));
        }
        identity.extend(std::mem::take(map));
        *map = identity;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Managed fields entries

/// `Apply` (server-side apply) or `Update` (create, update, patch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One `metadata.managedFields` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedFieldsEntry {
    pub manager: String,
    pub operation: Operation,
    pub api_version: String,
    /// RFC 3339, seconds, as the server writes it.
    pub time: Option<String>,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

impl ManagedFieldsEntry {
    /// Same manager as the API server counts them: appliers by name alone, updaters by name
    /// and API version.
    fn same_manager(&self, manager: &str, operation: Operation, api_version: &str) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.is_none()
            && (operation == Operation::Apply || self.api_version == api_version)
    }

    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("manager".into(), Value::String(self.manager.clone()));
        map.insert(
            "operation".into(),
            Value::String(self.operation.as_str().into()),
        );
        map.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        if let Some(time) = &self.time {
            map.insert("time".into(), Value::String(time.clone()));
        }
        map.insert("fieldsType".into(), Value::String("FieldsV1".into()));
        map.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if let Some(sub) = &self.subresource {
            map.insert("subresource".into(), Value::String(sub.clone()));
        }
        Value::Object(map)
    }

    pub fn from_json(value: &Value) -> Option<Self> {
        let operation = match value.get("operation")?.as_str()? {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            _ => return None,
        };
        if value.get("fieldsType").and_then(Value::as_str) != Some("FieldsV1") {
            return None;
        }
        let text = |f: &str| value.get(f).and_then(Value::as_str).map(str::to_string);
        Some(ManagedFieldsEntry {
            manager: text("manager")?,
            operation,
            api_version: text("apiVersion").unwrap_or_default(),
            time: text("time"),
            subresource: text("subresource"),
            fields: FieldSet::from_fields_v1(value.get("fieldsV1")?).ok()?,
        })
    }
}

/// The object's `managedFields` entries; malformed ones are dropped (the server would reset
/// them).
pub fn managed_fields(object: &Value) -> Vec<ManagedFieldsEntry> {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .filter_map(ManagedFieldsEntry::from_json)
                .collect()
        })
        .unwrap_or_default()
}

/// The fields `manager` owns through server-side apply on `object`.
pub fn applied_fields(object: &Value, manager: &str) -> FieldSet {
    managed_fields(object)
        .into_iter()
        .filter(|e| e.manager == manager && e.operation == Operation::Apply)
        .fold(FieldSet::new(), |acc, e| acc.union(&e.fields))
}

fn set_managed_fields(object: &mut Value, entries: &[ManagedFieldsEntry]) {
    let Value::Object(map) = object else {
        return;
    };
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        if entries.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert(
                "managedFields".into(),
                Value::Array(entries.iter().map(ManagedFieldsEntry::to_json).collect()),
            );
        }
    }
}

fn timestamp(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(SecondsFormat::Secs, true)
}

// ---------------------------------------------------------------------------------------------
// Server-side apply

/// Fields another manager owns that an apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub manager: String,
    pub operation: Operation,
    pub api_version: String,
    pub paths: Vec<FieldPath>,
}

/// An apply refused because it would change fields other managers own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyConflicts {
    pub conflicts: Vec<Conflict>,
}

impl ApplyConflicts {
    pub fn count(&self) -> usize {
        self.conflicts.iter().map(|c| c.paths.len()).sum()
    }
}

/// The API server's wording: `Apply failed with 1 conflict: conflict with "kubectl-edit"
/// using apps/v1: .spec.replicas`, one `- path` line each when there are several.
impl fmt::Display for ApplyConflicts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.count();
        write!(
            f,
            "Apply failed with {n} conflict{}: ",
            if n == 1 { "" } else { "s" }
        )?;
        let mut first = true;
        for c in &self.conflicts {
            if !first {
                f.write_str("\n")?;
            }
            first = false;
            let using = if c.api_version.is_empty() {
                String::new()
            } else {
                format!(" using {}", c.api_version)
            };
            if n == 1 {
                for p in &c.paths {
                    write!(f, "conflict with \"{}\"{using}: {p}", c.manager)?;
                }
            } else {
                write!(f, "conflicts with \"{}\"{using}:", c.manager)?;
                for p in &c.paths {
                    write!(f, "\n- {p}")?;
                }
            }
        }
        Ok(())
    }
}

/// Why an apply did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Other managers own fields this apply changes; re-apply with force to take them.
    #[error("{0}")]
    Conflicts(ApplyConflicts),
    #[error("applied configuration is not a JSON object; send a Kubernetes object")]
    NotAnObject,
}

impl ApplyError {
    pub fn metric_label(&self) -> &'static str {
        match self {
            ApplyError::Conflicts(_) => "apply_conflict",
            ApplyError::NotAnObject => "apply_not_object",
        }
    }
}

/// Server-side apply of `applied` by `manager` onto `live` (`None`: the object is being
/// created), with Kubernetes' built-in list semantics. See [`apply_with`].
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: DateTime<Utc>,
) -> Result<Value, ApplyError> {
    apply_with(
        live,
        applied,
        manager,
        force,
        now,
        &ListSemantics::kubernetes(),
    )
}

/// Server-side apply:
/// - the applied fields are merged into live;
/// - a field whose value would change and that another manager owns is a conflict, unless
///   `force`, which moves it to `manager`;
/// - fields `manager` applied before and no longer applies are removed, unless another
///   manager owns them (or something below them);
/// - `manager`'s `Apply` entry becomes exactly the applied fields. Its time moves to `now`
///   only when something changed, so a repeated apply is a no-op.
///
/// `status` is a subresource: it is never taken from `applied` and never owned.
pub fn apply_with(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: DateTime<Utc>,
    semantics: &ListSemantics,
) -> Result<Value, ApplyError> {
    if !applied.is_object() {
        return Err(ApplyError::NotAnObject);
    }
    let walker = Walker::for_object(applied, semantics);
    let mut base = live.cloned().unwrap_or_else(|| Value::Object(Map::new()));
    let mut entries = managed_fields(&base);
    set_managed_fields(&mut base, &[]);

    let mut config = applied.clone();
    if let Value::Object(map) = &mut config {
        map.remove("status");
        if let Some(Value::Object(meta)) = map.get_mut("metadata") {
            for f in IGNORED_METADATA_FIELDS {
                if !matches!(*f, "name" | "namespace") {
                    meta.remove(*f);
                }
            }
        }
    }
    let api_version = applied
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let applied_set = FieldSet::of(&config, semantics);
    let mut merged = walker.merge(&base, &config, &mut String::new());
    let comparison = compare(&base, &merged, semantics);
    let changed = comparison.added.union(&comparison.modified);

    let mine = entries
        .iter()
        .position(|e| e.same_manager(manager, Operation::Apply, &api_version));
    let mut conflicts = Vec::new();
    for (i, entry) in entries.iter_mut().enumerate() {
        if Some(i) == mine {
            continue;
        }
        let clash = entry.fields.intersection(&changed);
        if clash.is_empty() {
            continue;
        }
        conflicts.push(Conflict {
            manager: entry.manager.clone(),
            operation: entry.operation,
            api_version: entry.api_version.clone(),
            paths: clash.paths(),
        });
        if force {
            entry.fields = entry.fields.difference(&clash);
        }
    }
    if !force && !conflicts.is_empty() {
        return Err(ApplyError::Conflicts(ApplyConflicts { conflicts }));
    }

    let previous = mine.map(|i| entries[i].fields.clone()).unwrap_or_default();
    let mut owned = applied_set.clone();
    for (i, entry) in entries.iter().enumerate() {
        if Some(i) != mine {
            owned = owned.union(&entry.fields);
        }
    }
    for path in previous.difference(&owned).paths() {
        if owned.covers(&path.0) {
            continue;
        }
        walker.remove(
            &mut merged,
            &path.0,
            &mut Vec::new(),
            &mut String::new(),
            &owned,
        );
    }

    let unchanged = same_value(&merged, &base) && previous == applied_set;
    match mine {
        Some(i) => {
            let entry = &mut entries[i];
            if !unchanged {
                entry.time = Some(timestamp(now));
            }
            entry.api_version = api_version;
            entry.fields = applied_set;
        }
        None => entries.push(ManagedFieldsEntry {
            manager: manager.to_string(),
            operation: Operation::Apply,
            api_version,
            time: Some(timestamp(now)),
            subresource: None,
            fields: applied_set,
        }),
    }
    entries.retain(|e| !e.fields.is_empty());
    set_managed_fields(&mut merged, &entries);
    Ok(merged)
}

/// Record ownership for a non-apply write (create, update, patch) of `new` over `old` by
/// `manager`: it takes every field whose value it set or changed, other managers lose those
/// and every removed field. `new` is returned with `managedFields` maintained (a client may
/// send `managedFields: []` to reset them). `status` never counts.
pub fn update(old: Option<&Value>, new: &Value, manager: &str, now: DateTime<Utc>) -> Value {
    update_with(old, new, manager, now, &ListSemantics::kubernetes())
}

pub fn update_with(
    old: Option<&Value>,
    new: &Value,
    manager: &str,
    now: DateTime<Utc>,
    semantics: &ListSemantics,
) -> Value {
    let empty = Value::Object(Map::new());
    let old = old.unwrap_or(&empty);
    let old_entries = managed_fields(old);
    let sent = new.pointer("/metadata/managedFields");
    let mut entries = match sent {
        Some(Value::Array(a)) if a.is_empty() => Vec::new(),
        Some(_) if sent != old.pointer("/metadata/managedFields") => managed_fields(new),
        _ => old_entries,
    };
    let api_version = new
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let comparison = compare(old, new, semantics);
    let changed = comparison.added.union(&comparison.modified);
    let mine = entries
        .iter()
        .position(|e| e.same_manager(manager, Operation::Update, &api_version));
    for (i, entry) in entries.iter_mut().enumerate() {
        if Some(i) != mine {
            entry.fields = entry
                .fields
                .difference(&changed)
                .difference(&comparison.removed);
        }
    }
    let touched = !changed.is_empty() || !comparison.removed.is_empty();
    match mine {
        Some(i) => {
            let entry = &mut entries[i];
            entry.fields = entry.fields.union(&changed).difference(&comparison.removed);
            if touched {
                entry.time = Some(timestamp(now));
            }
        }
        None => {
            if !changed.is_empty() {
                entries.push(ManagedFieldsEntry {
                    manager: manager.to_string(),
                    operation: Operation::Update,
                    api_version,
                    time: Some(timestamp(now)),
                    subresource: None,
                    fields: changed,
                });
            }
        }
    }
    entries.retain(|e| !e.fields.is_empty());
    let mut out = new.clone();
    set_managed_fields(&mut out, &entries);
    out
}
