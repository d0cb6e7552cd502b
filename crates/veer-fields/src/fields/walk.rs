//! List semantics applied: the [`Walker`] that goes over objects of one kind naming list items
//! by key or value (or treating a list whole), and on it the merge, comparison ([`compare`],
//! [`Comparison`]), removal and projection ([`project`]) that server-side apply and the diff use.

use serde_json::{Map, Value};

use super::fieldset::ownership_view;
use super::path::sorted_key;
use super::{FieldSet, ListSemantics, ListType, PathElement, same_value};

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
pub(super) struct Walker<'a> {
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
    pub(super) fn for_object(object: &Value, semantics: &'a ListSemantics) -> Self {
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

    pub(super) fn map_fields(
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
    pub(super) fn merge(&self, live: &Value, applied: &Value, schema: &mut String) -> Value {
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
    pub(super) fn remove(
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
