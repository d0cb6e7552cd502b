//! Typed Istio traffic kinds (`networking.istio.io` VirtualService, DestinationRule, Gateway,
//! ServiceEntry, Sidecar in v1alpha3, v1beta1 and v1) and the legacy `config.istio.io/v1alpha2`
//! DestinationPolicy, which is converted to a DestinationRule.
//!
//! Unknown fields are errors (`deny_unknown_fields`), so a typo like `wieght` is reported at
//! its line instead of being dropped. Field names follow Istio's CRDs.

pub mod common;
pub mod destination_policy;
pub mod destination_rule;
pub mod gateway;
pub mod service_entry;
pub mod sidecar;
pub mod virtual_service;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Manifest;
use super::yaml::pointer_join;
use crate::diagnostic::Diagnostic;

pub use common::IstioObject;
pub use destination_rule::DestinationRule;
pub use gateway::Gateway;
pub use service_entry::ServiceEntry;
pub use sidecar::Sidecar;
pub use virtual_service::VirtualService;

pub const NETWORKING_GROUP: &str = "networking.istio.io";
pub const NETWORKING_VERSIONS: &[&str] = &["v1alpha3", "v1beta1", "v1"];
pub const LEGACY_CONFIG_GROUP: &str = "config.istio.io";

/// The typed form of a manifest, when veer knows the kind.
#[derive(Debug, Clone, PartialEq)]
pub enum TypedObject {
    VirtualService(Box<IstioObject<VirtualService>>),
    DestinationRule(Box<IstioObject<DestinationRule>>),
    Gateway(Box<IstioObject<Gateway>>),
    ServiceEntry(Box<IstioObject<ServiceEntry>>),
    Sidecar(Box<IstioObject<Sidecar>>),
    /// veer's own `veer.io/v1alpha1` RolloutPolicy (typed by `manifest::policy`).
    RolloutPolicy(Box<crate::manifest::rollout_policy::RolloutPolicy>),
    /// Any other kind: passed through as written.
    Generic,
}

/// Parse the typed form of `manifest` if it is an Istio kind veer knows; convert legacy kinds.
/// Returns the manifest and warnings, or the errors that make it unusable.
pub(crate) fn type_manifest(
    mut manifest: Manifest,
) -> Result<(Manifest, Vec<Diagnostic>), Vec<Diagnostic>> {
    let mut warnings = Vec::new();
    if manifest.key.group == LEGACY_CONFIG_GROUP && manifest.key.kind == "DestinationPolicy" {
        let (converted, warning) = destination_policy::convert(manifest)?;
        manifest = converted;
        warnings.push(warning);
    }
    if manifest.key.group == crate::manifest::rollout_policy::GROUP {
        return super::policy::type_manifest(manifest);
    }
    if manifest.key.group != NETWORKING_GROUP {
        return Ok((manifest, warnings));
    }
    let typed = match manifest.key.kind.as_str() {
        "VirtualService" => TypedObject::VirtualService(Box::new(parse_typed(&manifest)?)),
        "DestinationRule" => TypedObject::DestinationRule(Box::new(parse_typed(&manifest)?)),
        "Gateway" => TypedObject::Gateway(Box::new(parse_typed(&manifest)?)),
        "ServiceEntry" => TypedObject::ServiceEntry(Box::new(parse_typed(&manifest)?)),
        "Sidecar" => TypedObject::Sidecar(Box::new(parse_typed(&manifest)?)),
        _ => TypedObject::Generic,
    };
    if !matches!(typed, TypedObject::Generic)
        && !NETWORKING_VERSIONS.contains(&manifest.key.version.as_str())
    {
        return Err(vec![
            manifest
                .error(
                    "unknown-api-version",
                    "/apiVersion",
                    format!(
                        "{}/{} is not a version of {} that Istio serves",
                        manifest.key.group, manifest.key.version, manifest.key.kind
                    ),
                )
                .fix("use networking.istio.io/v1 (or v1beta1, v1alpha3)"),
        ]);
    }
    manifest.typed = typed;
    Ok((manifest, warnings))
}

/// Deserialize the whole object into its typed form; on failure, point at the offending
/// field's line.
pub(crate) fn parse_typed<T: DeserializeOwned>(manifest: &Manifest) -> Result<T, Vec<Diagnostic>> {
    serde_path_to_error::deserialize::<_, T>(&manifest.value).map_err(|err| {
        let mut pointer = String::new();
        for segment in err.path().iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => {
                    pointer = pointer_join(&pointer, index)
                }
                serde_path_to_error::Segment::Map { key } => pointer = pointer_join(&pointer, key),
                serde_path_to_error::Segment::Enum { .. }
                | serde_path_to_error::Segment::Unknown => {}
            }
        }
        let inner = err.inner().to_string();
        let (code, fix) = match unknown_field(&inner) {
            Some(field) => {
                // serde_path_to_error usually ends the path with the unknown key already.
                let named = pointer_join("", field);
                if !pointer.ends_with(&named) {
                    pointer = pointer_join(&pointer, field);
                }
                (
                    "unknown-field",
                    format!("remove or correct `{field}`; the allowed fields are listed above"),
                )
            }
            None => (
                "invalid-field",
                "give the field a value of the type Istio expects".to_string(),
            ),
        };
        let at = if pointer.is_empty() {
            "(object)".to_string()
        } else {
            display_path(&pointer)
        };
        vec![
            manifest
                .error(code, &pointer, format!("{at}: {inner}"))
                .fix(fix),
        ]
    })
}

/// `unknown field `wieght`, expected one of ...` → `wieght`.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

/// `/spec/http/0/route` → `spec.http[0].route`, the way users read field paths.
pub fn display_path(pointer: &str) -> String {
    let mut out = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.parse::<usize>().is_ok() {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment);
        }
    }
    out
}

/// The value at `pointer` of a typed manifest, for checks that need raw access.
pub fn raw<'a>(manifest: &'a Manifest, pointer: &str) -> Option<&'a Value> {
    manifest.value.pointer(pointer)
}
