//! The cluster's Services and ServiceEntries, in every namespace, as validation's destination
//! checks take them ([`ClusterServices`]): for `veer validate --cluster`, `veer diff`/`sync`,
//! and the controller each time it loads a new revision.
//!
//! Listed (paged, one LIST per kind) when asked, not watched: validation needs them once per
//! new revision, never in an idle pass, and a watch of every Service of a cluster would hold
//! them all in memory for the life of the process. A cluster without Istio's CRDs has no
//! ServiceEntries, which is an answer; a list the server refuses (RBAC) or does not answer is
//! no answer, and the caller validates against the revision alone rather than report hosts
//! missing from a registry it could not read.

use std::fmt;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DynamicObject, ListParams, ObjectList};
use serde_json::Value;

use super::{Cluster, ClusterError};
use crate::manifest::ObjectKey;
use crate::validate::{ClusterServices, KnownService};

/// Objects per page.
const PAGE: u32 = 500;
/// How long the whole listing may take: validation waits for it, so an API server that does
/// not answer must not hold a revision up for the client's own (minutes long) timeouts.
pub const LIST_TIMEOUT: Duration = Duration::from_secs(15);
/// ServiceEntry's API versions, newest first (Istio serves v1 since 1.22).
const SERVICE_ENTRY_VERSIONS: [&str; 3] = ["v1", "v1beta1", "v1alpha3"];
/// The Service annotation that plays `exportTo` for Kubernetes Services.
const EXPORT_TO_ANNOTATION: &str = "networking.istio.io/exportTo";

/// The RBAC rule the listing needs, for messages.
pub const SERVICES_PERMISSION: &str =
    "list on services and serviceentries.networking.istio.io in all namespaces (a ClusterRole)";

/// What was listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListedServices {
    pub known: ClusterServices,
    pub services: usize,
    /// `None`: the cluster serves no ServiceEntry kind (Istio's CRDs are not installed).
    pub service_entries: Option<usize>,
}

impl fmt::Display for ListedServices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        write!(f, "{} Service{}", self.services, plural(self.services))?;
        match self.service_entries {
            Some(n) => write!(
                f,
                " and {n} ServiceEntr{}",
                if n == 1 { "y" } else { "ies" }
            ),
            None => f.write_str(" (the cluster serves no ServiceEntry kind)"),
        }
    }
}

/// A Service as a registry entry: its name, its ports (`port`, not `targetPort`), and its
/// `networking.istio.io/exportTo` annotation (empty or absent: every namespace, as Istio).
fn known_service(service: &Service) -> Option<KnownService> {
    let name = service.metadata.name.as_deref()?;
    let namespace = service.metadata.namespace.as_deref()?;
    let ports = (service.spec.as_ref())
        .and_then(|s| s.ports.as_ref())
        .map(|ports| {
            (ports.iter())
                .filter_map(|p| u32::try_from(p.port).ok())
                .collect()
        })
        .unwrap_or_default();
    let export_to = (service.metadata.annotations.as_ref())
        .and_then(|a| a.get(EXPORT_TO_ANNOTATION))
        .map(|a| {
            a.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Some(KnownService::service(namespace, name, ports, export_to))
}

/// The strings of a JSON array (absent: none).
fn strings(value: &Value) -> Vec<String> {
    (value.as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// A ServiceEntry as a registry entry: its hosts, port numbers and `exportTo`.
fn known_service_entry(entry: &DynamicObject) -> Option<KnownService> {
    let namespace = entry.metadata.namespace.as_deref()?;
    let spec = entry.data.get("spec")?;
    let ports = (spec["ports"].as_array().into_iter().flatten())
        .filter_map(|p| p["number"].as_u64())
        .filter_map(|n| u32::try_from(n).ok())
        .collect();
    Some(KnownService::service_entry(
        namespace,
        strings(&spec["hosts"]),
        ports,
        strings(&spec["exportTo"]),
    ))
}

/// Every page of a cluster-wide list.
async fn list_all<K>(api: &Api<K>, what: &str) -> Result<Vec<K>, ClusterError>
where
    K: Clone + serde::de::DeserializeOwned + fmt::Debug,
{
    let mut items = Vec::new();
    let mut params = ListParams::default().limit(PAGE);
    loop {
        let page: ObjectList<K> = api
            .list(&params)
            .await
            .map_err(|e| ClusterError::api(what, &e))?;
        items.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(items),
        }
    }
}

impl Cluster {
    /// List the Services and ServiceEntries of every namespace, within [`LIST_TIMEOUT`].
    pub async fn list_services(&self) -> Result<ListedServices, ClusterError> {
        match tokio::time::timeout(LIST_TIMEOUT, self.list_services_now()).await {
            Ok(listed) => listed,
            Err(_) => Err(ClusterError::Api {
                what: "listing the cluster's Services and ServiceEntries".into(),
                code: None,
                reason: format!("no answer within {LIST_TIMEOUT:?}"),
            }),
        }
    }

    async fn list_services_now(&self) -> Result<ListedServices, ClusterError> {
        let api: Api<Service> = Api::all(self.client.clone());
        let services = list_all(&api, "listing Services in all namespaces").await?;
        let mut known: Vec<KnownService> = services.iter().filter_map(known_service).collect();
        let listed_services = known.len();
        let mut service_entries = None;
        for version in SERVICE_ENTRY_VERSIONS {
            let key = ObjectKey {
                group: "networking.istio.io".into(),
                version: version.into(),
                kind: "ServiceEntry".into(),
                namespace: None,
                name: String::new(),
            };
            let resolved = match self.resolve(&key).await {
                Ok(r) => r,
                Err(ClusterError::UnknownKind { .. }) => continue,
                Err(e) => return Err(e),
            };
            let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &resolved.resource);
            let what = format!(
                "listing {} ServiceEntries in all namespaces",
                key.api_version()
            );
            let entries = list_all(&api, &what).await?;
            let before = known.len();
            known.extend(entries.iter().filter_map(known_service_entry));
            service_entries = Some(known.len() - before);
            break;
        }
        Ok(ListedServices {
            known: ClusterServices { services: known },
            services: listed_services,
            service_entries,
        })
    }

    /// What validation of a new revision is given: the cluster's Services and ServiceEntries,
    /// or `None` (the revision alone) when they cannot be listed. The first failure is
    /// logged at info with the RBAC rule to grant, later ones at debug: a controller without
    /// the permission works as before, it only checks fewer hosts.
    pub async fn services_for_validation(&self) -> Option<ClusterServices> {
        match self.list_services().await {
            Ok(listed) => {
                tracing::debug!(listed = %listed, "destination hosts are looked up in the cluster too");
                Some(listed.known)
            }
            Err(e) => {
                if !self
                    .services_unlisted
                    .swap(true, std::sync::atomic::Ordering::Relaxed)
                {
                    tracing::info!(
                        error = %e,
                        "cannot list the cluster's Services and ServiceEntries: destination hosts are checked against the revision alone; grant veer's service account {SERVICES_PERMISSION} to check them against the cluster too"
                    );
                } else {
                    tracing::debug!(error = %e, "cannot list the cluster's Services and ServiceEntries");
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_service_is_its_name_ports_and_export_to_annotation() {
        let service: Service = serde_json::from_value(json!({
            "metadata": {"name": "ratings", "namespace": "shop",
                "annotations": {"networking.istio.io/exportTo": " ., web ,"}},
            "spec": {"ports": [{"port": 9080, "targetPort": 8080}, {"port": 9090}]}
        }))
        .unwrap();
        assert_eq!(
            known_service(&service),
            Some(KnownService::service(
                "shop",
                "ratings",
                vec![9080, 9090],
                vec![".".into(), "web".into()]
            ))
        );
        // An empty annotation is no restriction, as in Istio.
        let service: Service = serde_json::from_value(json!({
            "metadata": {"name": "db", "namespace": "data",
                "annotations": {"networking.istio.io/exportTo": ""}},
            "spec": {"type": "ExternalName", "externalName": "db.example.com"}
        }))
        .unwrap();
        assert_eq!(
            known_service(&service),
            Some(KnownService::service("data", "db", vec![], vec![]))
        );
    }

    #[test]
    fn a_service_entry_is_its_hosts_port_numbers_and_export_to() {
        let entry: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
            "metadata": {"name": "ext", "namespace": "egress"},
            "spec": {"hosts": ["api.example.com", "*.wild.com"], "exportTo": ["."],
                "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}]}
        }))
        .unwrap();
        assert_eq!(
            known_service_entry(&entry),
            Some(KnownService::service_entry(
                "egress",
                vec!["api.example.com".into(), "*.wild.com".into()],
                vec![443],
                vec![".".into()]
            ))
        );
    }

    #[test]
    fn what_was_listed_reads_as_a_phrase() {
        let listed = |services, service_entries| ListedServices {
            known: ClusterServices::default(),
            services,
            service_entries,
        };
        assert_eq!(
            listed(1, Some(2)).to_string(),
            "1 Service and 2 ServiceEntries"
        );
        assert_eq!(
            listed(3, Some(1)).to_string(),
            "3 Services and 1 ServiceEntry"
        );
        assert_eq!(
            listed(0, None).to_string(),
            "0 Services (the cluster serves no ServiceEntry kind)"
        );
    }
}
