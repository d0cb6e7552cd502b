//! How the live server merges lists: rules derived from its CustomResourceDefinitions'
//! `x-kubernetes-list-type` markers, with Kubernetes' built-in table as the fallback.
//!
//! Owns the one LIST of `customresourcedefinitions.apiextensions.k8s.io` a `Cluster` makes
//! (paged), the cached result, and when to list again: after a reconcile met a kind the
//! server did not serve and a later one found every kind (a CRD came in between), or when
//! asked. Without permission to list CRDs veer keeps the built-in table and says once which
//! RBAC rule is missing; the diff then treats Istio's keyed lists (ServiceEntry
//! `spec.ports`) as atomic and may show them as changed.

use std::sync::atomic::{AtomicBool, Ordering};

use kube::api::{Api, DynamicObject, ListParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use serde_json::Value;

use super::ClusterError;
use crate::fields::ListSemantics;

/// The permission veer needs to read list rules from the server.
pub const CRD_LIST_PERMISSION: &str = "list customresourcedefinitions.apiextensions.k8s.io";

/// CRDs per page: Istio's run to hundreds of kilobytes each.
const PAGE: u32 = 50;

/// List every CRD (paged) and derive the list rules they declare, the built-in table as the
/// fallback. A CRD whose rules cannot be read is skipped with a warning.
pub async fn fetch_list_semantics(client: &kube::Client) -> Result<ListSemantics, ClusterError> {
    let gvk = GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "customresourcedefinitions");
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let mut crds: Vec<Value> = Vec::new();
    let mut params = ListParams::default().limit(PAGE);
    loop {
        let page = api
            .list(&params)
            .await
            .map_err(|e| ClusterError::api(CRD_LIST_PERMISSION, &e))?;
        for crd in page.items {
            match serde_json::to_value(&crd) {
                Ok(value) => crds.push(value),
                Err(e) => tracing::warn!(
                    crd = crd.metadata.name.as_deref().unwrap_or(""),
                    error = %e,
                    "cannot read a CustomResourceDefinition; its lists are treated as atomic"
                ),
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    let (semantics, problems) = crate::schema::list_semantics_from_crds(&crds);
    for problem in problems {
        tracing::warn!(error = %problem, "its lists are treated as atomic");
    }
    tracing::debug!(
        crds = crds.len(),
        rules = semantics.rule_count(),
        "list rules read from the server"
    );
    Ok(semantics)
}

/// The cached rules of one cluster.
#[derive(Default)]
pub(super) struct Schemas {
    cached: tokio::sync::Mutex<Option<ListSemantics>>,
    /// A reconcile met a kind the server did not serve: once all are served, list again.
    unknown_seen: AtomicBool,
    /// The missing-permission warning was logged.
    warned: AtomicBool,
}

impl Schemas {
    /// The rules in force: cached, or listed now. Never fails: without the CRDs it is the
    /// built-in table (cached when listing is forbidden, listed again next time otherwise).
    pub(super) async fn get(&self, client: &kube::Client) -> ListSemantics {
        let mut cached = self.cached.lock().await;
        if let Some(semantics) = cached.as_ref() {
            return semantics.clone();
        }
        match fetch_list_semantics(client).await {
            Ok(semantics) => {
                *cached = Some(semantics.clone());
                semantics
            }
            Err(e) => {
                let forbidden = matches!(
                    &e,
                    ClusterError::Api {
                        code: Some(403),
                        ..
                    }
                );
                if !self.warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        error = %e,
                        "cannot read list rules from the server's CustomResourceDefinitions; \
                         using Kubernetes' built-in table, so keyed lists of custom resources \
                         (Istio ServiceEntry spec.ports) may show as changed in every diff. \
                         Grant veer's service account `{CRD_LIST_PERMISSION}` (ClusterRole \
                         rule: apiGroups [apiextensions.k8s.io], resources \
                         [customresourcedefinitions], verbs [list])"
                    );
                } else {
                    tracing::debug!(error = %e, "cannot list CustomResourceDefinitions");
                }
                let fallback = ListSemantics::kubernetes();
                if forbidden {
                    // Permissions rarely change under a running controller; do not ask on
                    // every reconcile.
                    *cached = Some(fallback.clone());
                }
                fallback
            }
        }
    }

    /// Forget the cached rules: the next [`Schemas::get`] lists again.
    pub(super) async fn refresh(&self) {
        *self.cached.lock().await = None;
    }

    /// After reading live state: whether some kind was not served. When kinds were missing
    /// before and are all served now, a CRD was applied meanwhile: list again.
    pub(super) async fn observed_kinds(&self, some_unknown: bool) {
        if some_unknown {
            self.unknown_seen.store(true, Ordering::Relaxed);
        } else if self.unknown_seen.swap(false, Ordering::Relaxed) {
            self.refresh().await;
        }
    }
}
