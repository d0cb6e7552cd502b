//! Which printer a kind has (a built-in one of kube-apiserver, or printer columns), and what it
//! prints: the column definitions, each row's cells and row conditions.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::cells::builtin_cells;
use super::columns::builtin_columns;
use super::custom::{CustomColumn, age_column, crd_column, custom_cell, istio_columns};
use super::fields::text;

/// A kind with a printer in kube-apiserver (or its registry's default table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Namespace,
    Service,
    ConfigMap,
    Secret,
    Event,
    ServiceAccount,
    Pod,
    Deployment,
    Lease,
    RoleBinding,
    ClusterRoleBinding,
    /// The registry default (Role, ClusterRole, CustomResourceDefinition): NAME, CREATED AT.
    CreatedAt,
}

/// How the rows of a kind are printed.
#[derive(Debug, Clone, PartialEq)]
pub enum Printer {
    Builtin(Builtin),
    /// NAME, then these columns (a CRD's `additionalPrinterColumns`).
    Custom(Vec<CustomColumn>),
}

pub(super) const AGE_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the \
     server time when this object was created. It is not guaranteed to be set in happens-before \
     order across separate operations. Clients may not set this value. It is represented in \
     RFC3339 form and is in UTC.";
pub(super) const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. It is required \
     when creating resources, although some resources may allow a client to request the generation \
     of an appropriate name automatically.";

impl Printer {
    /// The printer of a built-in kind (Istio's included). A custom kind registered by a CRD
    /// takes [`Printer::from_crd`] instead.
    pub fn for_kind(group: &str, kind: &str) -> Printer {
        let builtin = match (group, kind) {
            ("", "Namespace") => Builtin::Namespace,
            ("", "Service") => Builtin::Service,
            ("", "ConfigMap") => Builtin::ConfigMap,
            ("", "Secret") => Builtin::Secret,
            ("", "Event") => Builtin::Event,
            ("", "ServiceAccount") => Builtin::ServiceAccount,
            ("", "Pod") => Builtin::Pod,
            ("apps", "Deployment") => Builtin::Deployment,
            ("coordination.k8s.io", "Lease") => Builtin::Lease,
            ("rbac.authorization.k8s.io", "RoleBinding") => Builtin::RoleBinding,
            ("rbac.authorization.k8s.io", "ClusterRoleBinding") => Builtin::ClusterRoleBinding,
            ("rbac.authorization.k8s.io", "Role" | "ClusterRole")
            | ("apiextensions.k8s.io", "CustomResourceDefinition") => Builtin::CreatedAt,
            ("networking.istio.io", kind) => return Printer::Custom(istio_columns(kind)),
            // Any other kind here is a custom one: the CRD default.
            _ => return Printer::Custom(vec![age_column()]),
        };
        Printer::Builtin(builtin)
    }

    /// The printer of a CRD's kind at `version`: its `additionalPrinterColumns`, or AGE when it
    /// declares none (as apiextensions-apiserver defaults them).
    pub fn from_crd(crd: &Value, version: &str) -> Printer {
        let declared = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .and_then(|vs| {
                vs.iter()
                    .find(|v| v.get("name").and_then(Value::as_str) == Some(version))
            })
            .and_then(|v| v.get("additionalPrinterColumns"))
            .and_then(Value::as_array)
            .map(|cols| cols.iter().filter_map(crd_column).collect::<Vec<_>>())
            .unwrap_or_default();
        if declared.is_empty() {
            Printer::Custom(vec![age_column()])
        } else {
            Printer::Custom(declared)
        }
    }

    /// The `columnDefinitions` of this printer's tables.
    pub fn column_definitions(&self) -> Vec<Value> {
        match self {
            Printer::Builtin(b) => builtin_columns(*b)
                .into_iter()
                .map(|(name, type_name, format, priority, description)| {
                    column_json(name, type_name, format, priority, description)
                })
                .collect(),
            Printer::Custom(columns) => {
                std::iter::once(column_json("Name", "string", "name", 0, NAME_DESCRIPTION))
                    .chain(columns.iter().map(|c| {
                        column_json(&c.name, &c.type_name, &c.format, c.priority, &c.description)
                    }))
                    .collect()
            }
        }
    }

    /// The cells of `object`'s row, one per column definition.
    pub fn cells(&self, object: &Value, now: DateTime<Utc>) -> Vec<Value> {
        match self {
            Printer::Builtin(b) => builtin_cells(*b, object, now),
            Printer::Custom(columns) => std::iter::once(json!(text(object, "/metadata/name")))
                .chain(columns.iter().map(|c| custom_cell(c, object, now)))
                .collect(),
        }
    }

    /// Row conditions (`Completed` for finished pods), as kube-apiserver sets them.
    pub(super) fn conditions(&self, object: &Value) -> Vec<Value> {
        let phase = match self {
            Printer::Builtin(Builtin::Pod) => text(object, "/status/phase"),
            Printer::Builtin(_) | Printer::Custom(_) => return Vec::new(),
        };
        let message = match phase {
            "Succeeded" => "The pod has completed successfully.",
            "Failed" => "The pod failed.",
            _ => return Vec::new(),
        };
        vec![json!({"type": "Completed", "status": "True", "reason": phase, "message": message})]
    }
}

fn column_json(
    name: &str,
    type_name: &str,
    format: &str,
    priority: i64,
    description: &str,
) -> Value {
    json!({
        "name": name,
        "type": type_name,
        "format": format,
        "description": description,
        "priority": priority,
    })
}
