//! Pieces shared by the typed Istio kinds.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A typed Istio object: the Kubernetes envelope around a typed `spec`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IstioObject<S> {
    pub api_version: String,
    pub kind: String,
    /// Kubernetes metadata is checked by the API server, not here.
    pub metadata: Value,
    #[serde(default)]
    pub spec: S,
    /// Written by Istio, never by users; tolerated so that exported objects read back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}

/// Selects workloads (pods, VMs) by labels: ServiceEntry, Sidecar and DestinationRule use it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkloadSelector {
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
}
