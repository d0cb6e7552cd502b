//! Typed Istio traffic kinds (`networking.istio.io` VirtualService, DestinationRule, Gateway,
//! ServiceEntry, Sidecar in v1alpha3, v1beta1 and v1) and the legacy `config.istio.io/v1alpha2`
//! DestinationPolicy, which is converted to a DestinationRule.
//!
//! Unknown fields are errors (`deny_unknown_fields`), so a typo like `wieght` is reported at
//! its line instead of being dropped; every one of them is reported ([`decode`]). Field names
//! follow Istio's CRDs.

pub mod common;
pub mod decode;
pub mod destination_policy;
pub mod destination_rule;
pub mod gateway;
pub mod labels;
pub mod service_entry;
pub mod sidecar;
pub mod virtual_service;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Manifest;
use crate::diagnostic::Diagnostic;

pub use common::IstioObject;
pub use destination_rule::DestinationRule;
pub use gateway::Gateway;
pub use labels::Labels;
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
/// Returns the manifest and what was found about it (warnings, and errors that leave it usable:
/// unknown fields), or the errors that make it unusable.
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
    let (typed, diagnostics) = match manifest.key.kind.as_str() {
        "VirtualService" => typed_as(&manifest, TypedObject::VirtualService),
        "DestinationRule" => typed_as(&manifest, TypedObject::DestinationRule),
        "Gateway" => typed_as(&manifest, TypedObject::Gateway),
        "ServiceEntry" => typed_as(&manifest, TypedObject::ServiceEntry),
        "Sidecar" => typed_as(&manifest, TypedObject::Sidecar),
        _ => (Some(TypedObject::Generic), Vec::new()),
    };
    let wrong_version = !matches!(typed, Some(TypedObject::Generic))
        && !NETWORKING_VERSIONS.contains(&manifest.key.version.as_str());
    let Some(typed) = typed.filter(|_| !wrong_version) else {
        let mut errors = diagnostics;
        if wrong_version {
            errors.push(
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
            );
        }
        return Err(errors);
    };
    manifest.typed = typed;
    warnings.extend(diagnostics);
    Ok((manifest, warnings))
}

/// The typed form of an Istio kind, and its field problems (see [`decode::decode_all`]).
fn typed_as<S: DeserializeOwned + Default>(
    manifest: &Manifest,
    wrap: fn(Box<IstioObject<S>>) -> TypedObject,
) -> (Option<TypedObject>, Vec<Diagnostic>) {
    let (typed, diagnostics) = decode::decode_all::<IstioObject<S>>(manifest);
    (typed.map(|t| wrap(Box::new(t))), diagnostics)
}

/// Deserialize the whole object into its typed form; on failure, every field problem found,
/// each at its line.
pub(crate) fn parse_typed<T: DeserializeOwned>(manifest: &Manifest) -> Result<T, Vec<Diagnostic>> {
    match decode::decode_all::<T>(manifest) {
        (Some(typed), diagnostics) if diagnostics.is_empty() => Ok(typed),
        (_, diagnostics) => Err(diagnostics),
    }
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
