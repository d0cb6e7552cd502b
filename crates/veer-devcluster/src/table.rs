//! Server-side printing: the `meta.k8s.io` `Table` that `kubectl get` asks for (`Accept:
//! application/json;as=Table;v=v1;g=meta.k8s.io`). Owns the Accept negotiation, the printers of
//! the built-in kinds (columns and cells as kube-apiserver's `pkg/printers/internalversion`
//! computes them), the printer columns of custom kinds (a CRD's `additionalPrinterColumns`;
//! Istio's kinds carry the ones of Istio's own CRDs) and kubectl's age format. Pure: objects
//! and the clock in, JSON out.
//!
//! As on a real server, every column is sent (kubectl hides `priority > 0` ones unless `-o
//! wide`), ages are strings computed here, and kubectl adds NAMESPACE (`-A`) and label columns
//! itself from each row's object.
//!
//! This file holds the Accept negotiation and the Table around the rows; the printers are in
//! one submodule per concern:
//! - `printer`: which printer a kind has, its column definitions, row cells and conditions;
//! - `columns`: the column definitions of the built-in kinds' printers;
//! - `cells`: the cells of the built-in kinds' rows;
//! - `custom`: the printer columns of custom kinds (a CRD's, Istio's) and their cells;
//! - `fields`: reading an object's fields, and the formats of labels and selectors;
//! - `age`: kubectl's age format.

mod age;
mod cells;
mod columns;
mod custom;
mod fields;
mod printer;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

pub use age::human_duration;
pub use custom::CustomColumn;
pub use printer::{Builtin, Printer};

/// The `meta.k8s.io` version of the Table a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableVersion {
    V1,
    V1beta1,
}

impl TableVersion {
    pub fn api_version(self) -> &'static str {
        match self {
            TableVersion::V1 => "meta.k8s.io/v1",
            TableVersion::V1beta1 => "meta.k8s.io/v1beta1",
        }
    }
}

/// What a GET answers with, from the request's Accept header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    /// The objects themselves (a `…List` for a list).
    Objects,
    Table(TableVersion),
}

/// The first media type of `accept` this server can produce, in the client's order. Anything
/// else it lists (protobuf, `as=PartialObjectMetadata…`) is skipped; when nothing matches, the
/// objects are sent, as before tables existed here.
pub fn negotiate(accept: &str) -> Representation {
    for entry in accept.split(',') {
        let mut parts = entry.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let (mut as_kind, mut version, mut group, mut refused) = (None, None, None, false);
        for param in parts {
            let (k, v) = param.split_once('=').unwrap_or((param, ""));
            match k.trim() {
                "as" => as_kind = Some(v.trim()),
                "v" => version = Some(v.trim()),
                "g" => group = Some(v.trim()),
                "q" => refused = v.trim().parse::<f32>().is_ok_and(|q| q <= 0.0),
                _ => {}
            }
        }
        if refused || !matches!(media.as_str(), "application/json" | "application/*" | "*/*") {
            continue;
        }
        match (as_kind, group, version) {
            (None, _, _) => return Representation::Objects,
            (Some("Table"), Some("meta.k8s.io"), Some("v1")) => {
                return Representation::Table(TableVersion::V1);
            }
            (Some("Table"), Some("meta.k8s.io"), Some("v1beta1")) => {
                return Representation::Table(TableVersion::V1beta1);
            }
            _ => {}
        }
    }
    Representation::Objects
}

/// What each row carries besides its cells (the `includeObject` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    None,
    /// A `PartialObjectMetadata`: what kubectl needs for NAMESPACE and label columns.
    #[default]
    Metadata,
    Object,
}

/// Why a Table request is refused (the message of the 400, kube-apiserver's text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableRequestError {
    /// `includeObject` is none of `Metadata`, `None` and `Object`.
    #[error(
        "Unable to convert to Table as requested: includeObject: Unsupported value: \
         {value:?}: supported values: \"Metadata\", \"None\", \"Object\""
    )]
    IncludeObject { value: String },
}

impl IncludeObject {
    /// The parameter's value (absent or empty: `Metadata`), or why it is refused.
    pub fn parse(value: Option<&str>) -> Result<Self, TableRequestError> {
        match value.unwrap_or("") {
            "" | "Metadata" => Ok(IncludeObject::Metadata),
            "None" => Ok(IncludeObject::None),
            "Object" => Ok(IncludeObject::Object),
            other => Err(TableRequestError::IncludeObject {
                value: other.to_string(),
            }),
        }
    }
}

/// How a table is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableOptions {
    pub version: TableVersion,
    pub include: IncludeObject,
    /// Send `columnDefinitions` (a watch sends them once; later events reuse them).
    pub headers: bool,
}

/// A Table of `objects` (already at the version asked for). `resource_version` is the list's,
/// or the object's for a single GET.
pub fn table(
    printer: &Printer,
    objects: &[Value],
    resource_version: &str,
    options: &TableOptions,
    now: DateTime<Utc>,
) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| row(printer, o, options, now))
        .collect();
    let columns = if options.headers {
        printer.column_definitions()
    } else {
        Vec::new()
    };
    json!({
        "kind": "Table",
        "apiVersion": options.version.api_version(),
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns,
        "rows": rows,
    })
}

fn row(printer: &Printer, object: &Value, options: &TableOptions, now: DateTime<Utc>) -> Value {
    let mut row = Map::new();
    row.insert("cells".into(), Value::Array(printer.cells(object, now)));
    let conditions = printer.conditions(object);
    if !conditions.is_empty() {
        row.insert("conditions".into(), Value::Array(conditions));
    }
    match options.include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            row.insert(
                "object".into(),
                json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": options.version.api_version(),
                    "metadata": object.get("metadata").cloned().unwrap_or(json!({})),
                }),
            );
        }
        IncludeObject::Object => {
            row.insert("object".into(), object.clone());
        }
    }
    Value::Object(row)
}

#[cfg(test)]
mod fixtures;

#[cfg(test)]
mod tests {
    use super::fixtures::{now, vs};
    use super::*;

    #[test]
    fn accept_picks_the_first_form_served() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        let cases = [
            (kubectl, Representation::Table(TableVersion::V1)),
            (
                "application/json;as=Table;v=v1beta1;g=meta.k8s.io, application/json",
                Representation::Table(TableVersion::V1beta1),
            ),
            ("application/json", Representation::Objects),
            ("application/json, */*", Representation::Objects),
            ("", Representation::Objects),
            // kube-rs' metadata lists: not served as such, so the objects.
            (
                "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json",
                Representation::Objects,
            ),
            (
                "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1;g=meta.k8s.io",
                Representation::Table(TableVersion::V1),
            ),
            (
                "application/json;as=Table;v=v2;g=meta.k8s.io,application/json",
                Representation::Objects,
            ),
            (
                "application/json;as=Table;v=v1;g=meta.k8s.io;q=0,application/json",
                Representation::Objects,
            ),
        ];
        for (accept, want) in cases {
            assert_eq!(negotiate(accept), want, "{accept}");
        }
    }

    #[test]
    fn include_object_values() {
        assert_eq!(IncludeObject::parse(None), Ok(IncludeObject::Metadata));
        assert_eq!(IncludeObject::parse(Some("")), Ok(IncludeObject::Metadata));
        assert_eq!(
            IncludeObject::parse(Some("Object")),
            Ok(IncludeObject::Object)
        );
        assert_eq!(IncludeObject::parse(Some("None")), Ok(IncludeObject::None));
        let err = IncludeObject::parse(Some("All")).unwrap_err().to_string();
        assert_eq!(
            err,
            "Unable to convert to Table as requested: includeObject: Unsupported value: \"All\": \
             supported values: \"Metadata\", \"None\", \"Object\""
        );
    }

    #[test]
    fn tables_carry_partial_metadata_or_the_object() {
        let p = Printer::for_kind("networking.istio.io", "VirtualService");
        let mut opts = TableOptions {
            version: TableVersion::V1,
            include: IncludeObject::Metadata,
            headers: true,
        };
        let t = table(&p, &[vs()], "42", &opts, now());
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["metadata"]["resourceVersion"], "42");
        assert_eq!(t["columnDefinitions"].as_array().unwrap().len(), 4);
        let object = &t["rows"][0]["object"];
        assert_eq!(object["kind"], "PartialObjectMetadata");
        assert_eq!(object["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(object["metadata"]["namespace"], "shop");
        assert!(object.get("spec").is_none());

        opts.version = TableVersion::V1beta1;
        opts.include = IncludeObject::Object;
        opts.headers = false;
        let t = table(&p, &[vs()], "42", &opts, now());
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1beta1");
        assert_eq!(t["columnDefinitions"], json!([]));
        assert_eq!(t["rows"][0]["object"], vs());
        let empty = table(&p, &[], "43", &opts, now());
        assert_eq!(empty["rows"], json!([]));
    }
}
