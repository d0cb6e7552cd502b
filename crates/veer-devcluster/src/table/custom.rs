//! The printer columns of custom kinds: a CRD's `additionalPrinterColumns` (or AGE when it
//! declares none), Istio's as its CRDs declare them, and their cells, found by JSONPath and
//! typed as apiextensions-apiserver types them.

use chrono::{DateTime, Utc};
use jsonpath_rust::parser::model::JpQuery;
use serde_json::{Value, json};

use super::age::{human_duration, parse_time};
use super::printer::AGE_DESCRIPTION;

/// One `additionalPrinterColumns` entry of a CRD.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomColumn {
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub type_name: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub json_path: String,
    /// The parsed path; `None` when it does not parse (the cells are then empty).
    query: Option<JpQuery>,
}

impl CustomColumn {
    pub fn new(
        name: &str,
        type_name: &str,
        json_path: &str,
        description: &str,
        priority: i64,
    ) -> Self {
        Self {
            name: name.to_string(),
            type_name: type_name.to_string(),
            format: String::new(),
            description: description.to_string(),
            priority,
            json_path: json_path.to_string(),
            query: parse_path(json_path),
        }
    }
}

/// Kubernetes printer paths (`.spec.hosts`, `.status.conditions[?(@.type=="Ready")].status`)
/// are JSONPath without the leading `$`. They are evaluated with jsonpath-rust (RFC 9535),
/// which kube-rs already depends on, rather than a dotted-path walker: CRDs commonly use
/// filters like the one above.
fn parse_path(path: &str) -> Option<JpQuery> {
    let path = path.trim();
    let rooted = if path.starts_with('$') {
        path.to_string()
    } else {
        format!("${path}")
    };
    jsonpath_rust::parser::parse_json_path(&rooted).ok()
}

/// The column a CRD gets when it declares none.
pub(super) fn age_column() -> CustomColumn {
    CustomColumn::new(
        "Age",
        "date",
        ".metadata.creationTimestamp",
        AGE_DESCRIPTION,
        0,
    )
}

/// Istio's printer columns, as its CRDs declare them (identical at v1, v1beta1 and v1alpha3;
/// see `additionalPrinterColumns` in Istio's `crd-all.gen.yaml`). Gateway and Sidecar declare
/// none, so they get the default AGE.
pub(super) fn istio_columns(kind: &str) -> Vec<CustomColumn> {
    let hosts = |d: &str| CustomColumn::new("Hosts", "string", ".spec.hosts", d, 0);
    match kind {
        "VirtualService" => vec![
            CustomColumn::new(
                "Gateways",
                "string",
                ".spec.gateways",
                "The names of gateways and sidecars that should apply these routes",
                0,
            ),
            hosts("The destination hosts to which traffic is being sent"),
            age_column(),
        ],
        "DestinationRule" => vec![
            CustomColumn::new(
                "Host",
                "string",
                ".spec.host",
                "The name of a service from the service registry",
                0,
            ),
            age_column(),
        ],
        "ServiceEntry" => vec![
            hosts("The hosts associated with the ServiceEntry"),
            CustomColumn::new(
                "Location",
                "string",
                ".spec.location",
                "Whether the service is external to the mesh or part of the mesh \
                 (MESH_EXTERNAL or MESH_INTERNAL)",
                0,
            ),
            CustomColumn::new(
                "Resolution",
                "string",
                ".spec.resolution",
                "Service resolution mode for the hosts (NONE, STATIC, or DNS)",
                0,
            ),
            age_column(),
        ],
        _ => vec![age_column()],
    }
}

pub(super) fn crd_column(c: &Value) -> Option<CustomColumn> {
    let field = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("");
    let (name, path) = (field("name"), field("jsonPath"));
    if name.is_empty() || path.is_empty() {
        return None;
    }
    let description = match field("description") {
        "" => format!("Custom resource definition column (in JSONPath format): {path}"),
        d => d.to_string(),
    };
    let mut column = CustomColumn::new(
        name,
        field("type"),
        path,
        &description,
        c.get("priority").and_then(Value::as_i64).unwrap_or(0),
    );
    column.format = field("format").to_string();
    Some(column)
}

/// A CRD column's cell (apiextensions-apiserver's table convertor): the first value the path
/// finds, printed as kubectl's JSONPath prints it for `string` columns (lists and maps as
/// JSON), typed for the others; `null` (an empty cell) when nothing matches or the value does
/// not fit the type.
pub(super) fn custom_cell(column: &CustomColumn, object: &Value, now: DateTime<Utc>) -> Value {
    let found = column
        .query
        .as_ref()
        .and_then(|q| jsonpath_rust::query::js_path_process(q, object).ok())
        .and_then(|hits| hits.into_iter().next().map(|h| h.val));
    let Some(value) = found.filter(|v| !v.is_null()) else {
        return Value::Null;
    };
    match column.type_name.as_str() {
        "string" => json!(jsonpath_text(value)),
        "integer" => match value.as_i64() {
            Some(i) => json!(i),
            // Go converts a float to int64 by truncation.
            None => value.as_f64().map_or(Value::Null, |f| json!(f as i64)),
        },
        "number" => value.as_f64().map_or(Value::Null, |f| json!(f)),
        "boolean" => value.as_bool().map_or(Value::Null, |b| json!(b)),
        "date" => match value.as_str() {
            Some(s) => match parse_time(&json!(s)) {
                Some(t) => json!(human_duration(now - t)),
                None => json!("<invalid>"),
            },
            None => Value::Null,
        },
        _ => Value::Null,
    }
}

/// A value as Kubernetes' JSONPath printer writes it: scalars as text, lists and maps as
/// compact JSON with Go's encoding (sorted keys, `<`, `>` and `&` escaped).
fn jsonpath_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(_) | Value::Object(_) => sorted(value)
            .to_string()
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026"),
        Value::Null => "null".into(),
        Value::Bool(_) | Value::Number(_) => value.to_string(),
    }
}

/// `value` with every map's keys sorted, as Go's encoding/json writes maps.
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Printer;
    use super::super::fixtures::{cells, created, names, now, vs};
    use super::*;

    #[test]
    fn istio_kinds_print_their_crd_columns() {
        let p = Printer::for_kind("networking.istio.io", "VirtualService");
        assert_eq!(names(&p), ["Name", "Gateways", "Hosts", "Age"]);
        assert_eq!(
            cells(&p, &vs()),
            json!([
                "reviews",
                "[\"mesh\"]",
                "[\"reviews\",\"reviews.shop.svc\"]",
                "120m"
            ])
        );
        // No gateways: an empty cell.
        let mut bare = vs();
        bare["spec"].as_object_mut().unwrap().remove("gateways");
        assert_eq!(p.cells(&bare, now())[1], Value::Null);

        let dr = json!({"metadata": {"name": "reviews", "creationTimestamp": created(3)},
                        "spec": {"host": "reviews.shop.svc.cluster.local"}});
        let p = Printer::for_kind("networking.istio.io", "DestinationRule");
        assert_eq!(names(&p), ["Name", "Host", "Age"]);
        assert_eq!(
            cells(&p, &dr),
            json!(["reviews", "reviews.shop.svc.cluster.local", "3s"])
        );
        let se = json!({"metadata": {"name": "ext"}, "spec": {"hosts": ["api.example.com"],
                        "location": "MESH_EXTERNAL", "resolution": "DNS"}});
        let p = Printer::for_kind("networking.istio.io", "ServiceEntry");
        assert_eq!(
            names(&p),
            ["Name", "Hosts", "Location", "Resolution", "Age"]
        );
        assert_eq!(
            cells(&p, &se),
            // No creationTimestamp: the path finds nothing (unlike built-in AGE's <unknown>).
            json!(["ext", "[\"api.example.com\"]", "MESH_EXTERNAL", "DNS", null])
        );
        for kind in ["Gateway", "Sidecar"] {
            assert_eq!(
                names(&Printer::for_kind("networking.istio.io", kind)),
                ["Name", "Age"]
            );
        }
    }

    fn widget_crd() -> Value {
        json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "names": {"kind": "Widget", "plural": "widgets"},
                     "scope": "Namespaced", "versions": [
                {"name": "v1", "served": true, "storage": true, "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio", "priority": 1},
                    {"name": "On", "type": "boolean", "jsonPath": ".spec.on"},
                    {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
                    {"name": "Labels", "type": "string", "jsonPath": ".metadata.labels"},
                    {"name": "Seen", "type": "date", "jsonPath": ".status.seen"},
                    {"name": "Bad", "type": "date", "jsonPath": ".spec.size"}
                ]},
                {"name": "v1beta1", "served": true, "storage": false}
            ]}
        })
    }

    #[test]
    fn crd_columns_are_evaluated_by_json_path_and_typed() {
        let p = Printer::from_crd(&widget_crd(), "v1");
        assert_eq!(
            names(&p),
            [
                "Name", "Size", "Ratio", "On", "Ready", "Labels", "Seen", "Bad"
            ]
        );
        let defs = p.column_definitions();
        assert_eq!(defs[2]["priority"], 1);
        assert_eq!(
            defs[1]["description"],
            "Custom resource definition column (in JSONPath format): .spec.size"
        );
        let w = json!({
            "metadata": {"name": "w1", "labels": {"z": "1", "a": "<2>"}},
            "spec": {"size": 3.7, "ratio": 2, "on": true},
            "status": {"seen": created(90), "conditions": [
                {"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]}
        });
        assert_eq!(
            cells(&p, &w),
            json!([
                "w1",
                3,
                2.0,
                true,
                "True",
                "{\"a\":\"\\u003c2\\u003e\",\"z\":\"1\"}",
                "90s",
                null
            ])
        );
        let bad_date = json!({"metadata": {"name": "w2"}, "spec": {"on": "yes"},
                              "status": {"seen": "yesterday"}});
        let cells = p.cells(&bad_date, now());
        assert_eq!(cells[3], Value::Null, "a string is no boolean");
        assert_eq!(cells[6], json!("<invalid>"));
        // A version without columns gets AGE.
        assert_eq!(
            names(&Printer::from_crd(&widget_crd(), "v1beta1")),
            ["Name", "Age"]
        );
    }
}
