//! The plan: what must change in the cluster so it matches git, object by object, and why.
//!
//! Owns: comparing desired objects (from git) with live ones (as the API server returns them,
//! `managedFields` included) without noise, telling a git change from drift, deciding what to
//! prune, and the order to apply in. Pure: no kube, no HTTP, no git, no I/O. Rendering for
//! people and machines is in [`render`]; the order in [`order`]; why a prune is skipped
//! (a Namespace is never pruned while anything that stays lives in it) in [`prune`]; what a
//! plan is made from in `input` ([`DesiredObject`], shared with the revision; [`LiveLookup`],
//! one live object at a time, so a plan holds one object of each side, not all of them); how
//! two sides compare in `compare`.
//!
//! "No noise" comes from comparing only what git sets: live is projected onto the desired
//! object's field set (with Kubernetes' list semantics), so server-populated fields and
//! server defaults git did not set never show. A field git dropped shows as a removal only
//! when server-side apply would remove it: `veer` owned it and no other manager does.

mod compare;
mod input;
pub mod order;
mod prune;
pub mod render;

pub use input::{Applied, DesiredObject, LiveLookup, MetadataField};
pub use prune::PruneSkipReason;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::fields::{self, FieldPath, FieldSet, ListSemantics};
use crate::manifest::{ObjectIdentity, ObjectKey};
use compare::{assign, diff_values, differs, display_form, lookup};

/// Annotation on a live object that keeps veer from deleting it.
pub const PRUNE_ANNOTATION: &str = "veer.io/prune";

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
    pub desired: Option<DesiredView>,
    /// Live restricted to what is compared: the desired fields and the removed ones (whole
    /// object minus server-populated fields for prunes). `None` for creates and unchanged
    /// objects. Shared: a plan's parts (e.g. the dry-run gate's) point at the same view.
    #[serde(skip)]
    pub live: Option<Arc<Value>>,
}

/// The desired side of an [`ObjectPlan`], as it is applied and shown.
#[derive(Debug, Clone)]
pub enum DesiredView {
    /// Made by the plan (an update), or by whoever wrote the plan (a rollout's write).
    Made(Arc<Value>),
    /// A create: git's object, whole. Made into its view each time it is read (to apply it,
    /// to show it), so that a plan of many creates (a first sync) holds pointers to each
    /// manifest and its additions (shared with the desired object) rather than a copy of
    /// each object, or of its desired object.
    Git {
        object: input::Applied,
        semantics: Arc<ListSemantics>,
    },
}

impl DesiredView {
    /// The object as it is applied and shown: map keys sorted, the object led by
    /// `apiVersion`, `kind` and `metadata`.
    pub fn value(&self) -> Cow<'_, Value> {
        match self {
            DesiredView::Made(v) => Cow::Borrowed(v),
            DesiredView::Git { object, semantics } => {
                let value = object.value();
                let set = FieldSet::of(&value, semantics);
                Cow::Owned(display_form(&fields::project(&value, &set, semantics)))
            }
        }
    }
}

impl From<Value> for DesiredView {
    fn from(value: Value) -> Self {
        DesiredView::Made(Arc::new(value))
    }
}

/// Two views are equal when they show (and apply) the same object.
impl PartialEq for DesiredView {
    fn eq(&self, other: &Self) -> bool {
        self.value() == other.value()
    }
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
    hash_canonical(&fields::canonical(value))
}

/// [`desired_hash`] of a value already in canonical form.
fn hash_canonical(canonical: &Value) -> String {
    crate::ids::sha256_hex(canonical.to_string().as_bytes(), 32)
}

/// Compare git with the cluster. `live` finds the live objects veer looked at (at least
/// every desired and inventory key that exists), as the API server returns them; each is
/// asked for once, compared, and dropped.
pub fn plan<L: LiveLookup + ?Sized>(
    desired: &[DesiredObject],
    live: &L,
    context: &PlanContext,
) -> Plan {
    let desired_ids: BTreeSet<ObjectIdentity<'_>> =
        desired.iter().map(|d| d.key.identity()).collect();
    let unreadable: BTreeSet<ObjectIdentity<'_>> =
        context.unreadable.iter().map(ObjectKey::identity).collect();
    // One copy per plan, shared by the views of its creates.
    let semantics = Arc::new(context.semantics.clone());

    // Planned in apply order: the desired objects are sorted by reference, not their plans
    // afterwards (a stable sort's scratch is a copy of what it sorts: 3 MiB of plans at
    // 10,000 objects, 80 KB of references). The plans are sized up front (a filtered collect
    // grows by doubling: room for 16,384 plans at 10,000).
    let mut readable: Vec<&DesiredObject> = desired
        .iter()
        .filter(|d| !unreadable.contains(&d.key.identity()))
        .collect();
    readable.sort_by(|a, b| order::apply_cmp(&a.key, &b.key));
    let mut applies: Vec<ObjectPlan> = Vec::with_capacity(readable.len());
    applies.extend(
        (readable.into_iter())
            .map(|d| plan_object(d, live.live(&d.key).as_deref(), context, &semantics)),
    );

    let mut prunes: Vec<ObjectPlan> = context
        .inventory
        .iter()
        .filter(|k| !desired_ids.contains(&k.identity()))
        .filter_map(|k| {
            let live = live.live(k)?;
            Some(prune::plan_prune(k, &live, context))
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

    // Exactly: a full vector would double for a few prunes.
    applies.reserve_exact(prunes.len());
    applies.extend(prunes);
    Plan {
        objects: applies,
        leave_drift: !context.self_heal,
    }
}

fn plan_object(
    desired: &DesiredObject,
    live: Option<&Value>,
    context: &PlanContext,
    shared_semantics: &Arc<ListSemantics>,
) -> ObjectPlan {
    let semantics = &context.semantics;
    let Some(live) = live else {
        return ObjectPlan {
            key: desired.key.clone(),
            action: ObjectAction::Create,
            desired: Some(DesiredView::Git {
                object: desired.applied(),
                semantics: shared_semantics.clone(),
            }),
            live: None,
        };
    };
    let ignored = context
        .ignore
        .iter()
        .find(|(k, _)| k.same_object(&desired.key))
        .map(|(_, paths)| paths.as_slice())
        .unwrap_or(&[]);
    let git = desired.value();
    let wanted: Cow<'_, Value> = if ignored.is_empty() {
        Cow::Borrowed(&*git)
    } else {
        // What a running rollout owns is whatever live says it is.
        let mut wanted = git.as_ref().clone();
        for path in ignored {
            if let Some(v) = lookup(live, &path.0) {
                assign(&mut wanted, &path.0, v.clone());
            }
        }
        Cow::Owned(wanted)
    };
    let desired_set = FieldSet::of(&wanted, semantics);
    let desired_side = fields::project(&wanted, &desired_set, semantics);

    // What server-side apply would remove: veer applied it, git no longer sets it, and no
    // other manager owns it (or anything below it).
    let mut others = FieldSet::new();
    let mut mine = FieldSet::new();
    for entry in fields::managed_fields(live) {
        let side =
            if entry.manager == context.manager && entry.operation == fields::Operation::Apply {
                &mut mine
            } else {
                &mut others
            };
        // Usually one entry a side: taken as it is, not copied into a union.
        *side = if side.is_empty() {
            entry.fields
        } else {
            side.union(&entry.fields)
        };
    }
    let kept = with(&desired_set, &others);
    let mut removed = FieldSet::new();
    for path in mine.difference(&kept).paths() {
        let rollout_owned = ignored
            .iter()
            .any(|p| p.0.starts_with(&path.0) || path.0.starts_with(&p.0));
        if !kept.covers(&path.0) && !rollout_owned {
            removed.insert(&path.0);
        }
    }
    let mut live_side = fields::project(live, &with(&desired_set, &removed), semantics);
    // The server serves an object at any of its versions; which one we read is not a change.
    if let (Value::Object(view), Some(v)) = (&mut live_side, wanted.get("apiVersion")) {
        view.insert("apiVersion".to_string(), v.clone());
    }
    if !differs(Some(&live_side), Some(&desired_side)) {
        // Nothing renders or applies an unchanged object's views: they are not made.
        return ObjectPlan {
            key: desired.key.clone(),
            action: ObjectAction::Unchanged,
            desired: None,
            live: None,
        };
    }
    let desired_view = display_form(&desired_side);
    let live_view = display_form(&live_side);
    let mut changes = Vec::new();
    diff_values(
        Some(&live_view),
        Some(&desired_view),
        &mut String::new(),
        &mut changes,
    );
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
        let cause = if recorded == Some(desired.hash().as_str()) {
            Cause::Drift
        } else {
            Cause::GitChange
        };
        ObjectAction::Update { changes, cause }
    };
    ObjectPlan {
        key: desired.key.clone(),
        action,
        desired: Some(DesiredView::Made(Arc::new(desired_view))),
        live: Some(Arc::new(live_view)),
    }
}

/// `set` with `more`'s fields: `set` itself when there are none (the usual case: no other
/// manager, nothing removed), without a copy.
fn with<'s>(set: &'s FieldSet, more: &FieldSet) -> Cow<'s, FieldSet> {
    if more.is_empty() {
        Cow::Borrowed(set)
    } else {
        Cow::Owned(set.union(more))
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
