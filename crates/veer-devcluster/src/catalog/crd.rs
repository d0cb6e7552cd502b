//! Reading a CustomResourceDefinition into the kind it serves, and why a definition is
//! refused (the message goes into the 422 of the CRD's write, or the error of a state file).

use serde_json::Value;
use veer_fields::schema::SchemaError;

use super::ResourceType;

/// Why a CustomResourceDefinition cannot be served; the message names the field to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrdError {
    /// A field the kind cannot be served without (`spec.group`, `spec.names.plural`, …).
    #[error("{field} is required")]
    Missing { field: &'static str },
    #[error("spec.scope must be Namespaced or Cluster")]
    Scope,
    /// Every version is `served: false`.
    #[error("spec.versions must serve at least one version")]
    NoServedVersion,
    /// The schema's list markers cannot be read.
    #[error(transparent)]
    ListRules(#[from] SchemaError),
}

/// Read the served kind out of a CRD (`spec.group`, `spec.names`, `spec.scope`,
/// `spec.versions[].served/storage/subresources`).
pub fn resource_type_of_crd(crd: &Value) -> Result<ResourceType, CrdError> {
    let missing = |field| CrdError::Missing { field };
    let spec = crd.get("spec").ok_or_else(|| missing("spec"))?;
    let text = |v: Option<&Value>, field: &'static str| {
        v.and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| missing(field))
    };
    let group = text(spec.get("group"), "spec.group")?;
    let names = spec.get("names").ok_or_else(|| missing("spec.names"))?;
    let kind = text(names.get("kind"), "spec.names.kind")?;
    let plural = text(names.get("plural"), "spec.names.plural")?;
    let singular = names
        .get("singular")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_lowercase());
    let short_names = names
        .get("shortNames")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let namespaced = match spec.get("scope").and_then(Value::as_str) {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        _ => return Err(CrdError::Scope),
    };
    let mut versions = Vec::new();
    let mut status_subresource = false;
    for v in spec
        .get("versions")
        .and_then(Value::as_array)
        .ok_or_else(|| missing("spec.versions"))?
    {
        let name = text(v.get("name"), "spec.versions[].name")?;
        if v.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        if v.pointer("/subresources/status").is_some() {
            status_subresource = true;
        }
        // The storage version is the preferred one.
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            versions.insert(0, name);
        } else {
            versions.push(name);
        }
    }
    if versions.is_empty() {
        return Err(CrdError::NoServedVersion);
    }
    Ok(ResourceType {
        group,
        versions,
        kind,
        plural,
        singular,
        namespaced,
        short_names,
        status_subresource,
        tracks_generation: true,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_unusable_definition_names_the_field_to_fix() {
        let crd = |spec: Value| json!({"metadata": {"name": "x"}, "spec": spec});
        let names = json!({"kind": "Widget", "plural": "widgets"});
        let cases = [
            (json!({"metadata": {}}), "spec is required"),
            (crd(json!({"names": names})), "spec.group is required"),
            (crd(json!({"group": "g"})), "spec.names is required"),
            (
                crd(json!({"group": "g", "names": {"kind": "Widget"}})),
                "spec.names.plural is required",
            ),
            (
                crd(json!({"group": "g", "names": names, "scope": "Global"})),
                "spec.scope must be Namespaced or Cluster",
            ),
            (
                crd(json!({"group": "g", "names": names, "scope": "Cluster"})),
                "spec.versions is required",
            ),
            (
                crd(json!({"group": "g", "names": names, "scope": "Cluster",
                           "versions": [{"name": "v1", "served": false}]})),
                "spec.versions must serve at least one version",
            ),
        ];
        for (crd, want) in cases {
            let got = resource_type_of_crd(&crd).map(|t| t.kind);
            assert_eq!(got.map_err(|e| e.to_string()), Err(want.to_string()));
        }
    }
}
