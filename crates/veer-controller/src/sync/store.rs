//! veer's own ConfigMaps (the sync state and its shards, one per rollout): the one way they
//! are written and deleted.
//! A server-side apply by veer's field manager, forced (veer owns them), labelled
//! `app.kubernetes.io/managed-by: veer` and `veer.io/controller-state: "true"` (which keeps
//! them out of the watches); a 409, 429 or 5xx is tried again as every write of
//! veer's is; a missing namespace is created, then the write is made again. The server's
//! answer is read, not parsed.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Map, Value, json};

use super::{MANAGED_BY_LABEL, MANAGER, RetryPolicy, with_retries};
use crate::cluster::OWN_STATE_LABEL;

/// One of veer's own ConfigMaps, as it is to be.
pub struct OwnConfigMap<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    /// Labels besides `app.kubernetes.io/managed-by` and `veer.io/controller-state`.
    pub labels: Map<String, Value>,
    pub data: Value,
    pub binary_data: Value,
}

/// Write `cm` (see the module header). The error is the API server's last answer.
pub async fn write(client: &kube::Client, cm: &OwnConfigMap<'_>) -> Result<(), kube::Error> {
    let mut labels = cm.labels.clone();
    labels.insert(MANAGED_BY_LABEL.into(), json!(MANAGER));
    labels.insert(OWN_STATE_LABEL.into(), json!("true"));
    let object = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": cm.name, "namespace": cm.namespace, "labels": labels},
        "data": cm.data,
        "binaryData": cm.binary_data,
    });
    let params = PatchParams::apply(MANAGER).force();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), cm.namespace);
    let policy = RetryPolicy::default();
    let what = format!("ConfigMap {}/{}", cm.namespace, cm.name);
    // The answer (the whole ConfigMap, up to a MiB for the sync state) is not parsed: only
    // whether the write was taken matters.
    let apply = || {
        let request = kube::core::Request::new(api.resource_url())
            .patch(cm.name, &params, &Patch::Apply(&object))
            .map_err(kube::Error::BuildRequest);
        async move { client.request_text(request?).await.map(drop) }
    };
    match with_retries(&policy, &what, apply).await.0 {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => {
            let namespaces: Api<Namespace> = Api::all(client.clone());
            let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": cm.namespace}});
            let create_namespace = || {
                let namespaces = namespaces.clone();
                let (params, ns) = (&params, &ns);
                async move {
                    namespaces
                        .patch(cm.namespace, params, &Patch::Apply(ns))
                        .await
                }
            };
            with_retries(&policy, cm.namespace, create_namespace)
                .await
                .0?;
            with_retries(&policy, &what, apply).await.0
        }
        Err(e) => Err(e),
    }
}

/// Delete one of veer's own ConfigMaps (gone already is fine), tried again as a write is.
pub async fn delete(client: &kube::Client, namespace: &str, name: &str) -> Result<(), kube::Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let what = format!("ConfigMap {namespace}/{name}");
    let delete = || {
        let api = api.clone();
        async move { api.delete(name, &Default::default()).await.map(drop) }
    };
    match with_retries(&RetryPolicy::default(), &what, delete).await.0 {
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        other => other,
    }
}
