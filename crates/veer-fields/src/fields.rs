//! Kubernetes managed fields and server-side apply, as pure functions over JSON.
//!
//! Owns: field paths and field sets (`metadata.managedFields[].fieldsV1`), how lists merge
//! ([`ListSemantics`]), and the server-side-apply engine ([`apply`], [`update`]) that the
//! embedded API server runs and the diff uses to tell what `veer` owns. No I/O; time is an
//! argument. The model follows Kubernetes' structured-merge-diff closely enough that what
//! kube-rs and kubectl read back looks like what a real API server writes.

mod apply;
mod fieldset;
mod lists;
mod managed;
mod path;
mod values;
mod walk;

pub use apply::{ApplyConflicts, ApplyError, Conflict, apply, apply_with, update, update_with};
pub use fieldset::{FieldSet, FieldsError};
pub use lists::{
    KUBERNETES_LIST_RULES, KeyField, ListRule, ListSemantics, ListType, PathMatch, RuleScope, Text,
};
pub use managed::{ManagedFieldsEntry, Operation, applied_fields, managed_fields};
pub use path::{FieldPath, PathElement, canonical};
pub use values::{compare_values, same_value};
pub use walk::{Comparison, compare, project};
