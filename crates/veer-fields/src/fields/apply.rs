//! Server-side apply and update: [`apply`]/[`apply_with`] merge an applied configuration and
//! move ownership (refusing with [`ApplyConflicts`] when other managers own changed fields),
//! [`update`]/[`update_with`] record ownership for a non-apply write.

use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::fieldset::IGNORED_METADATA_FIELDS;
use super::managed::{set_managed_fields, timestamp};
use super::walk::Walker;
use super::{
    FieldPath, FieldSet, ListSemantics, ManagedFieldsEntry, Operation, compare, managed_fields,
    same_value,
};

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
