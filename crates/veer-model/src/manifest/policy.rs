//! The hook that types veer's own kinds (`veer.io`), the way `istio` types Istio's: a
//! `RolloutPolicy` in the config repo is just another manifest, with typos and wrong words
//! reported at their line. The kind itself is defined in `manifest::rollout_policy`.

use super::Manifest;
use super::istio::{TypedObject, parse_typed};
use crate::diagnostic::Diagnostic;
use crate::manifest::rollout_policy::{self as policy, RolloutPolicy};

/// Is this veer's own configuration (a `veer.io` kind) rather than a cluster object? Such
/// manifests are validated like any other but never applied, diffed or pruned.
pub fn is_veer_config(manifest: &Manifest) -> bool {
    manifest.key.group == policy::GROUP
}

/// The typed RolloutPolicy of a manifest, if it is one.
pub fn rollout_policy(manifest: &Manifest) -> Option<&RolloutPolicy> {
    match &manifest.typed {
        TypedObject::RolloutPolicy(p) => Some(p),
        TypedObject::VirtualService(_)
        | TypedObject::DestinationRule(_)
        | TypedObject::Gateway(_)
        | TypedObject::ServiceEntry(_)
        | TypedObject::Sidecar(_)
        | TypedObject::Generic => None,
    }
}

/// Type a `veer.io` manifest. Other groups pass through untouched.
pub(crate) fn type_manifest(
    mut manifest: Manifest,
) -> Result<(Manifest, Vec<Diagnostic>), Vec<Diagnostic>> {
    if manifest.key.group != policy::GROUP {
        return Ok((manifest, Vec::new()));
    }
    if manifest.key.kind != policy::KIND {
        return Err(vec![
            manifest
                .error(
                    "unknown-kind",
                    "/kind",
                    format!("veer.io has no kind `{}`", manifest.key.kind),
                )
                .fix("veer.io defines only `RolloutPolicy`"),
        ]);
    }
    if manifest.key.version != policy::VERSION {
        return Err(vec![
            manifest
                .error(
                    "unknown-api-version",
                    "/apiVersion",
                    format!(
                        "{}/{} is not a version of RolloutPolicy",
                        manifest.key.group, manifest.key.version
                    ),
                )
                .fix("use veer.io/v1alpha1"),
        ]);
    }
    let typed = parse_typed::<RolloutPolicy>(&manifest).map_err(|diagnostics| {
        diagnostics
            .into_iter()
            .map(|d| match d.code {
                "invalid-field" => d.fix(
                    "give the field a value RolloutPolicy accepts; policies/README.md lists each field",
                ),
                _ => d,
            })
            .collect::<Vec<_>>()
    })?;
    manifest.typed = TypedObject::RolloutPolicy(Box::new(typed));
    Ok((manifest, Vec::new()))
}
