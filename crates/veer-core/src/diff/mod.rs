//! The plan: what must change in the cluster so it matches git, object by object, and why.
//!
//! Owns: comparing desired objects (from git) with live ones (as the API server returns them,
//! `managedFields` included) without noise, telling a git change from drift, deciding what to
//! prune, and the order to apply in. Pure: no kube, no HTTP, no git, no I/O. Rendering for
//! people and machines is in [`render`]; the order in [`order`]; why a prune is skipped
//! (a Namespace is never pruned while anything that stays lives in it) in [`prune`].
//!
//! "No noise" comes from comparing only what git sets: live is projected onto the desired
//! object's field set (with Kubernetes' list semantics), so server-populated fields and
//! server defaults git did not set never show. A field git dropped shows as a removal only
//! when server-side apply would remove it: `veer` owned it and no other manager does.

pub mod order;
mod prune;
pub mod render;

pub use prune::PruneSkipReason;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::fields::{self, FieldPath, FieldSet, ListSemantics, PathElement};
use crate::manifest::{Manifest, ObjectIdentity, ObjectKey};

/// Annotation on a live object that keeps veer from deleting it.
pub const PRUNE_ANNOTATION: &str = "veer.io/prune";

/// One object as git wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredObject {
    pub key: ObjectKey,
    pub value: Value,
}

impl From<&Manifest> for DesiredObject {
    fn from(m: &Manifest) -> Self {
        DesiredObject {
            key: m.key.clone(),
            value: m.value.clone(),
        }
    }
}

/// What the planner knows besides git and the cluster.
#[derive(Debug, Clone)]
pub struct PlanContext {
    /// veer's field manager name (`veer`).
    pub manager: String,
    /// Objects veer applied earlier: the only ones it may prune.
    pub inventory: BTreeSet<ObjectKey>,
    /// [`desired_hash`] of each object as veer last applied it, to tell a git change
    /// (hash differs) from drift (same hash, live differs).
    pub applied_hashes: BTreeMap<ObjectKey, String>,
    /// Fields a running rollout owns, per object (e.g. the route weights it is shifting):
    /// neither drift nor a change while the rollout runs.
    pub ignore: BTreeMap<ObjectKey, Vec<FieldPath>>,
    /// `false`: report what would be pruned, delete nothing.
    pub prune: bool,
    pub semantics: ListSemantics,
    /// Keys veer could not read (it may not list their kind there): nothing is planned for
    /// them (the caller reports them as failed), they are never pruned, and they keep their
    /// namespace.
    pub unreadable: BTreeSet<ObjectKey>,
    /// `false` (`sync.selfHeal: false`): drift is reported, never written back. Decided here,
    /// once: the plan carries it ([`Plan::leave_drift`]) to everyone who reads it.
    pub self_heal: bool,
}

impl PlanContext {
    pub fn new(manager: impl Into<String>) -> Self {
        PlanContext {
            manager: manager.into(),
            inventory: BTreeSet::new(),
            applied_hashes: BTreeMap::new(),
            ignore: BTreeMap::new(),
            prune: true,
            semantics: ListSemantics::kubernetes(),
            unreadable: BTreeSet::new(),
            self_heal: true,
        }
    }
}

/// Why an object differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Cause {
    /// Git changed since veer last applied the object (or veer never applied it).
    GitChange,
    /// Git did not change, the cluster did: someone edited a field veer manages.
    Drift,
    /// A rollout moves the route's weights (a step, a promotion, a rollback, or a hand edit
    /// undone): written by the rollout driver, never by the plan.
    Rollout,
}

/// One field that differs. `from` is live, `to` is git; `None` means absent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// Display form, e.g. `spec.http[0].route[1].weight`.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Value>,
}

/// What to do with one object.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum ObjectAction {
    Create,
    Update {
        cause: Cause,
        changes: Vec<Change>,
    },
    Prune,
    PruneSkipped {
        #[serde(flatten)]
        reason: PruneSkipReason,
    },
    Unchanged,
}

impl ObjectAction {
    pub fn name(&self) -> &'static str {
        match self {
            ObjectAction::Create => "create",
            ObjectAction::Update { .. } => "update",
            ObjectAction::Prune => "prune",
            ObjectAction::PruneSkipped { .. } => "prune-skipped",
            ObjectAction::Unchanged => "unchanged",
        }
    }
}

/// The plan for one object, with the two sides as they are compared (for rendering).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectPlan {
    pub key: ObjectKey,
    #[serde(flatten)]
    pub action: ObjectAction,
    /// The object as git wants it, as applied (rollout-owned fields taken from live). `None`
    /// for prunes and unchanged objects.
    #[serde(skip)]
    pub desired: Option<Value>,
    /// Live restricted to what is compared: the desired fields and the removed ones (whole
    /// object minus server-populated fields for prunes). `None` for creates and unchanged
    /// objects.
    #[serde(skip)]
    pub live: Option<Value>,
}

/// Every object's plan: applies in apply order, then prunes in reverse order.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    pub objects: Vec<ObjectPlan>,
    /// Drift is only reported (self-heal is off): an [`ObjectAction::Update`] caused by drift is
    /// not a write. Not part of the plan's JSON, which shows what differs either way.
    #[serde(skip)]
    pub leave_drift: bool,
}

/// Counts for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub drift: usize,
    pub prune: usize,
    pub prune_skipped: usize,
    pub unchanged: usize,
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for o in &self.objects {
            match &o.action {
                ObjectAction::Create => s.create += 1,
                ObjectAction::Update { cause, .. } => {
                    s.update += 1;
                    match cause {
                        Cause::Drift => s.drift += 1,
                        Cause::GitChange | Cause::Rollout => {}
                    }
                }
                ObjectAction::Prune => s.prune += 1,
                ObjectAction::PruneSkipped { .. } => s.prune_skipped += 1,
                ObjectAction::Unchanged => s.unchanged += 1,
            }
        }
        s
    }

    /// Does carrying out `object`'s action write to the cluster? Drift is a write only
    /// while self-heal is on.
    pub fn writes(&self, object: &ObjectPlan) -> bool {
        match &object.action {
            ObjectAction::Create | ObjectAction::Prune => true,
            ObjectAction::Update { cause, .. } => match cause {
                Cause::GitChange | Cause::Rollout => true,
                Cause::Drift => !self.leave_drift,
            },
            ObjectAction::PruneSkipped { .. } | ObjectAction::Unchanged => false,
        }
    }

    /// Does carrying out the plan write anything?
    pub fn writes_anything(&self) -> bool {
        self.objects.iter().any(|o| self.writes(o))
    }

    /// The same plan restricted to some of its objects (drift handling kept).
    pub fn with_objects(&self, objects: Vec<ObjectPlan>) -> Plan {
        Plan {
            objects,
            leave_drift: self.leave_drift,
        }
    }

    /// Is there anything that differs (create, update or prune), written or not?
    pub fn has_changes(&self) -> bool {
        self.objects.iter().any(|o| match o.action {
            ObjectAction::Create | ObjectAction::Update { .. } | ObjectAction::Prune => true,
            ObjectAction::PruneSkipped { .. } | ObjectAction::Unchanged => false,
        })
    }

    pub fn get(&self, key: &ObjectKey) -> Option<&ObjectPlan> {
        self.objects.iter().find(|o| o.key.same_object(key))
    }
}

/// A stable hash of an object as written in git: SHA-256 of its canonical JSON (map keys
/// sorted), hex.
pub fn desired_hash(value: &Value) -> String {
    let text = fields::canonical(value).to_string();
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compare git with the cluster. `live` holds the live objects veer looked at (at least
/// every desired and inventory key that exists), as the API server returns them.
pub fn plan(
    desired: &[DesiredObject],
    live: &BTreeMap<ObjectKey, Value>,
    context: &PlanContext,
) -> Plan {
    let live_by_id: HashMap<ObjectIdentity<'_>, &Value> =
        live.iter().map(|(k, v)| (k.identity(), v)).collect();
    let desired_ids: BTreeSet<ObjectIdentity<'_>> =
        desired.iter().map(|d| d.key.identity()).collect();
    let unreadable: BTreeSet<ObjectIdentity<'_>> =
        context.unreadable.iter().map(ObjectKey::identity).collect();

    let mut applies: Vec<ObjectPlan> = desired
        .iter()
        .filter(|d| !unreadable.contains(&d.key.identity()))
        .map(|d| plan_object(d, live_by_id.get(&d.key.identity()).copied(), context))
        .collect();
    applies.sort_by(|a, b| order::apply_cmp(&a.key, &b.key));

    let mut prunes: Vec<ObjectPlan> = context
        .inventory
        .iter()
        .filter(|k| !desired_ids.contains(&k.identity()))
        .filter_map(|k| {
            let live = live_by_id.get(&k.identity())?;
            Some(prune::plan_prune(k, live, context))
        })
        .collect();
    // What stays keeps its namespace: git's objects (readable or not), the inventory objects
    // kept, and those veer could not read.
    let kept: Vec<ObjectKey> = prunes
        .iter()
        .filter(|p| matches!(p.action, ObjectAction::PruneSkipped { .. }))
        .map(|p| p.key.clone())
        .collect();
    let staying = desired
        .iter()
        .map(|d| &d.key)
        .chain(&kept)
        .chain(&context.unreadable);
    prune::keep_used_namespaces(&mut prunes, staying);
    prunes.sort_by(|a, b| order::prune_cmp(&a.key, &b.key));

    applies.extend(prunes);
    Plan {
        objects: applies,
        leave_drift: !context.self_heal,
    }
}

fn plan_object(desired: &DesiredObject, live: Option<&Value>, context: &PlanContext) -> ObjectPlan {
    let semantics = &context.semantics;
    let ignored = context
        .ignore
        .iter()
        .find(|(k, _)| k.same_object(&desired.key))
        .map(|(_, paths)| paths.as_slice())
        .unwrap_or(&[]);
    let mut wanted = desired.value.clone();
    if let Some(live) = live {
        // What a running rollout owns is whatever live says it is.
        for path in ignored {
            if let Some(v) = lookup(live, &path.0) {
                let v = v.clone();
                assign(&mut wanted, &path.0, v);
            }
        }
    }
    let desired_set = FieldSet::of(&wanted, semantics);
    let desired_view = display_form(&fields::project(&wanted, &desired_set, semantics));
    let Some(live) = live else {
        return ObjectPlan {
            key: desired.key.clone(),
            action: ObjectAction::Create,
            desired: Some(desired_view),
            live: None,
        };
    };

    // What server-side apply would remove: veer applied it, git no longer sets it, and no
    // other manager owns it (or anything below it).
    let mut others = FieldSet::new();
    let mut mine = FieldSet::new();
    for entry in fields::managed_fields(live) {
        if entry.manager == context.manager && entry.operation == fields::Operation::Apply {
            mine = mine.union(&entry.fields);
        } else {
            others = others.union(&entry.fields);
        }
    }
    let kept = desired_set.union(&others);
    let mut removed = FieldSet::new();
    for path in mine.difference(&kept).paths() {
        let rollout_owned = ignored
            .iter()
            .any(|p| p.0.starts_with(&path.0) || path.0.starts_with(&p.0));
        if !kept.covers(&path.0) && !rollout_owned {
            removed.insert(&path.0);
        }
    }
    let mut live_view = fields::project(live, &desired_set.union(&removed), semantics);
    // The server serves an object at any of its versions; which one we read is not a change.
    if let (Value::Object(view), Some(v)) = (&mut live_view, wanted.get("apiVersion")) {
        view.insert("apiVersion".to_string(), v.clone());
    }
    let live_view = display_form(&live_view);

    let mut changes = Vec::new();
    diff_values(
        Some(&live_view),
        Some(&desired_view),
        &mut String::new(),
        &mut changes,
    );
    if changes.is_empty() {
        // Nothing renders or applies an unchanged object's views; keeping them would hold
        // two copies of every object for the life of the plan.
        return ObjectPlan {
            key: desired.key.clone(),
            action: ObjectAction::Unchanged,
            desired: None,
            live: None,
        };
    }
    let action = {
        // Exact key first (the usual case); a scan only when git changed the API version.
        let recorded = context
            .applied_hashes
            .get(&desired.key)
            .or_else(|| {
                context
                    .applied_hashes
                    .iter()
                    .find(|(k, _)| k.same_object(&desired.key))
                    .map(|(_, h)| h)
            })
            .map(String::as_str);
        let cause = if recorded == Some(desired_hash(&desired.value).as_str()) {
            Cause::Drift
        } else {
            Cause::GitChange
        };
        ObjectAction::Update { changes, cause }
    };
    ObjectPlan {
        key: desired.key.clone(),
        action,
        desired: Some(desired_view),
        live: Some(live_view),
    }
}

/// The form both sides are shown and compared in: map keys sorted (as kubectl shows them),
/// except that an object starts with `apiVersion`, `kind`, then `metadata` led by `name` and
/// `namespace`, so it reads like a manifest.
fn display_form(value: &Value) -> Value {
    fn lead(value: Value, first: &[&str]) -> Value {
        let Value::Object(mut map) = value else {
            return value;
        };
        let mut out = serde_json::Map::new();
        for k in first {
            if let Some(v) = map.remove(*k) {
                out.insert((*k).to_string(), v);
            }
        }
        out.extend(map);
        Value::Object(out)
    }
    let mut top = lead(
        fields::canonical(value),
        &["apiVersion", "kind", "metadata"],
    );
    if let Some(meta) = top.get_mut("metadata") {
        *meta = lead(std::mem::take(meta), &["name", "namespace"]);
    }
    top
}

/// The value at `path` in `value`; keyed and set elements are found by content.
fn lookup<'v>(value: &'v Value, path: &[PathElement]) -> Option<&'v Value> {
    let mut at = value;
    for element in path {
        at = step(at, element)?;
    }
    Some(at)
}

fn step<'v>(value: &'v Value, element: &PathElement) -> Option<&'v Value> {
    match (value, element) {
        (Value::Object(map), PathElement::Field(name)) => map.get(name),
        (Value::Array(items), PathElement::Index(i)) => items.get(*i),
        (Value::Array(items), PathElement::Key(keys)) => items
            .iter()
            .find(|item| keys.iter().all(|(k, v)| key_matches(item, k, v))),
        (Value::Array(items), PathElement::Value(v)) => {
            items.iter().find(|item| fields::same_value(item, v))
        }
        _ => None,
    }
}

fn key_matches(item: &Value, key: &str, value: &Value) -> bool {
    item.get(key).is_some_and(|v| fields::same_value(v, value))
}

/// Set the value at `path`, when every step but the last exists.
fn assign(value: &mut Value, path: &[PathElement], new: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = value;
    for element in parents {
        let next = match (at, element) {
            (Value::Object(map), PathElement::Field(name)) => map.get_mut(name),
            (Value::Array(items), PathElement::Index(i)) => items.get_mut(*i),
            (Value::Array(items), PathElement::Key(keys)) => items
                .iter_mut()
                .find(|item| keys.iter().all(|(k, v)| key_matches(item, k, v))),
            (Value::Array(items), PathElement::Value(v)) => {
                items.iter_mut().find(|item| fields::same_value(item, v))
            }
            _ => None,
        };
        let Some(next) = next else {
            return;
        };
        at = next;
    }
    match (at, last) {
        (Value::Object(map), PathElement::Field(name)) => {
            map.insert(name.clone(), new);
        }
        (Value::Array(items), PathElement::Index(i)) => {
            if let Some(slot) = items.get_mut(*i) {
                *slot = new;
            }
        }
        _ => {}
    }
}

/// A field name as it reads in a path: bare when it is an identifier, quoted otherwise
/// (`metadata.annotations["veer.io/prune"]`).
fn push_name(path: &mut String, name: &str) {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(name);
    } else {
        path.push_str(&format!("[{}]", Value::String(name.to_string())));
    }
}

/// Field-by-field differences of two projected objects. Lists compare by position: both
/// sides are projections in the same order, so positions line up.
fn diff_values(from: Option<&Value>, to: Option<&Value>, path: &mut String, out: &mut Vec<Change>) {
    match (from, to) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut names: Vec<&String> = a.keys().collect();
            names.extend(b.keys().filter(|k| !a.contains_key(*k)));
            for name in names {
                let len = path.len();
                push_name(path, name);
                diff_values(a.get(name), b.get(name), path, out);
                path.truncate(len);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            for i in 0..a.len().max(b.len()) {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                diff_values(a.get(i), b.get(i), path, out);
                path.truncate(len);
            }
        }
        (a, b) => {
            // By value: a server serves git's `25.0` back as `25`.
            let same = match (a, b) {
                (Some(a), Some(b)) => fields::same_value(a, b),
                (a, b) => a == b,
            };
            if !same {
                out.push(Change {
                    path: path.clone(),
                    from: a.cloned(),
                    to: b.cloned(),
                });
            }
        }
    }
}

/// What can go wrong turning a plan into text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiffError {
    #[error("{object}: cannot render as YAML: {reason}; report this as a veer bug with the object")]
    Yaml { object: String, reason: String },
    #[error("cannot render the plan as JSON: {reason}; report this as a veer bug")]
    Json { reason: String },
}

impl DiffError {
    pub fn metric_label(&self) -> &'static str {
        match self {
            DiffError::Yaml { .. } => "diff_render_yaml",
            DiffError::Json { .. } => "diff_render_json",
        }
    }
}
