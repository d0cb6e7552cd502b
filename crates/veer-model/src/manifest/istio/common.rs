//! Pieces shared by the typed Istio kinds.

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use super::labels::Labels;

/// A typed Istio object: the Kubernetes envelope around a typed `spec`.
///
/// Only `spec` is kept. The envelope's fields are still named, so that an unknown top-level
/// field is reported with the same allowed list and a missing one as missing, but their
/// values are not stored: the [`Manifest`](crate::manifest::Manifest) holding this object has
/// them already (key, `value`), and a revision keeps one typed object per Istio manifest.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IstioObject<S> {
    pub api_version: IgnoredAny,
    pub kind: IgnoredAny,
    /// Kubernetes metadata is checked by the API server, not here.
    pub metadata: IgnoredAny,
    #[serde(default)]
    pub spec: S,
    /// Written by Istio, never by users; tolerated so that exported objects read back.
    #[serde(default)]
    pub status: Option<IgnoredAny>,
}

/// Selects workloads (pods, VMs) by labels: ServiceEntry, Sidecar and DestinationRule use it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkloadSelector {
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
}
