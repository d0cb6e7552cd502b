//! The health gate's observation: whether every Deployment of the new destinations is
//! available, the Deployments being found through the DestinationRule subsets' pod labels.
//! A namespace is read once for all its rollouts of a pass (`ports::ClusterPorts`): from the
//! watch cache ([`read_cached`], built again only when one of its objects changed), or with
//! two LISTs ([`read_namespace`]) where the cache does not hold it or says "not available";
//! only the fields the gate looks at, indexed as they are read ([`Workloads`]), and each
//! rollout judged from it ([`available`], pure).

use crate::rollout::queries::short_host;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject, ListParams};
use serde::Deserialize;
use serde_json::Value;

use crate::cluster::Cluster;
use crate::manifest::ObjectKey;
use crate::rollout::DestinationId;
use crate::rollout::targets::string_map;

/// The health gate's answer: available, or why not, in words for `veer rollout status` and
/// the log (a list veer could not read is said as such, never taken for "not available").
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Health {
    Available,
    Unavailable(String),
}

/// What the health gate reads of one namespace: its Deployments and DestinationRules, or the
/// gate's answer when they cannot be read.
pub(super) type Namespace = Result<Workloads, Health>;

/// A namespace's Deployments and DestinationRule subsets as the gate needs them: read once
/// for the rollouts of a wake (a thousand of them may share ten namespaces), so each is
/// looked up, not scanned for.
#[derive(Debug, Default)]
pub(super) struct Workloads {
    deployments: Vec<Workload>,
    /// Deployments (indices) by each pod label `(key, value)` of theirs.
    by_label: HashMap<(String, String), Vec<usize>>,
    /// Pod labels by `(short host, subset)`: the first DestinationRule (in the list's order)
    /// of that host that names the subset.
    subsets: HashMap<(String, String), BTreeMap<String, String>>,
}

#[derive(Debug)]
struct Workload {
    name: String,
    available: bool,
}

impl Workloads {
    fn new(deployments: Vec<DeploymentItem>, rules: Vec<RuleItem>) -> Workloads {
        let mut w = Workloads::default();
        for (i, d) in deployments.into_iter().enumerate() {
            let labels = string_map(
                d.spec
                    .as_ref()
                    .and_then(|s| s.template.metadata.as_ref())
                    .and_then(|m| m.labels.as_ref()),
            );
            for pair in labels {
                w.by_label.entry(pair).or_default().push(i);
            }
            let available = d.status.is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Available" && c.status == "True")
            });
            w.deployments.push(Workload {
                name: d.metadata.name,
                available,
            });
        }
        for rule in rules {
            let host = rule.spec.get("host").and_then(Value::as_str).unwrap_or("");
            let host = short_host(host);
            let subsets = rule.spec.get("subsets").and_then(Value::as_array);
            for subset in subsets.map(Vec::as_slice).unwrap_or(&[]) {
                let Some(name) = subset.get("name").and_then(Value::as_str) else {
                    continue;
                };
                w.subsets
                    .entry((host.to_string(), name.to_string()))
                    .or_insert_with(|| string_map(subset.get("labels")));
            }
        }
        w
    }

    /// The Deployments whose pod labels include every one of `selector`'s, in the list's
    /// order.
    fn matching(&self, selector: &BTreeMap<String, String>) -> Vec<&Workload> {
        let mut candidates: Option<Vec<usize>> = None;
        for (k, v) in selector {
            // Borrowed keys cannot look up a tuple of Strings; a selector has a label or two.
            let with = self
                .by_label
                .get(&(k.clone(), v.clone()))
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            candidates = Some(match candidates {
                None => with.to_vec(),
                Some(c) => c.into_iter().filter(|i| with.contains(i)).collect(),
            });
        }
        let all = || (0..self.deployments.len()).collect();
        candidates
            .unwrap_or_else(all)
            .into_iter()
            .filter_map(|i| self.deployments.get(i))
            .collect()
    }

    /// The pod labels of destination `d`.
    fn subset_labels(&self, d: &DestinationId) -> BTreeMap<String, String> {
        let host = short_host(&d.host);
        let Some(subset) = &d.subset else {
            return BTreeMap::from([("app".to_string(), host.to_string())]);
        };
        if let Some(labels) = self.subsets.get(&(host.to_string(), subset.to_string())) {
            return labels.clone();
        }
        // No DestinationRule says: Istio's convention is `version: <subset>`.
        BTreeMap::from([
            ("app".to_string(), host.to_string()),
            ("version".to_string(), subset.to_string()),
        ])
    }
}

/// A Deployment as listed: only the fields the gate reads are built (a list of hundreds of
/// Deployments, with their managed fields, is read each wake).
#[derive(Deserialize)]
struct DeploymentItem {
    #[serde(default)]
    metadata: ItemMeta,
    spec: Option<DeploymentSpec>,
    status: Option<DeploymentStatus>,
}

#[derive(Deserialize, Default)]
struct ItemMeta {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct DeploymentSpec {
    #[serde(default)]
    template: PodTemplate,
}

#[derive(Deserialize, Default)]
struct PodTemplate {
    metadata: Option<PodMeta>,
}

#[derive(Deserialize)]
struct PodMeta {
    labels: Option<Value>,
}

#[derive(Deserialize)]
struct DeploymentStatus {
    #[serde(default)]
    conditions: Vec<Condition>,
}

#[derive(Deserialize)]
struct Condition {
    #[serde(rename = "type")]
    type_: String,
    status: String,
}

/// A DestinationRule as listed: its name and spec (host and subsets) only.
#[derive(Deserialize)]
struct RuleItem {
    #[serde(default)]
    metadata: ItemMeta,
    #[serde(default)]
    spec: Value,
}

#[derive(Deserialize)]
struct List<T> {
    /// Missing or `null`: read as an empty list.
    items: Option<Vec<T>>,
}

/// Why a LIST of the health gate's objects gave nothing (the caller names the kind and the
/// RBAC rule to check).
#[derive(Debug, thiserror::Error)]
enum ListError {
    #[error("cannot build the request: {0}")]
    Request(#[from] kube::core::request::Error),
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("the API server's answer is not a list: {0}")]
    Decode(#[from] serde_json::Error),
}

/// LIST the objects at `url` (an `Api`'s resource URL), each read as a `T` (the rest of it
/// skipped).
async fn list<T: serde::de::DeserializeOwned>(
    client: &kube::Client,
    url: &str,
) -> Result<Vec<T>, ListError> {
    let request = kube::core::Request::new(url).list(&ListParams::default())?;
    let text = client.request_text(request).await?;
    let list: List<T> = serde_json::from_str(&text)?;
    Ok(list.items.unwrap_or_default())
}

/// The Deployments and DestinationRules of `namespace` (two LISTs).
pub(super) async fn read_namespace(cluster: &Cluster, namespace: &str) -> Namespace {
    let client = cluster.client();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let deployments = match list(client, deployments.resource_url()).await {
        Ok(items) => items,
        Err(e) => {
            return Err(Health::Unavailable(format!(
                "cannot list Deployments in {namespace}: {e}; check that veer may list deployments (apps) there"
            )));
        }
    };
    let rules = destination_rules(cluster, namespace).await?;
    Ok(Workloads::new(deployments, rules))
}

/// The Deployments and DestinationRules of `namespace` as the watch cache holds them (its
/// projection keeps a Deployment's `Available` condition), without a request: `None` when
/// either kind is not cached there. In the order a LIST gives (by name), so a subset named by
/// two rules, and the Deployment named when one is not available, are the same.
/// Built again only when one of the namespace's cached objects changed (`built`: what the
/// last wakes built, kept from one wake to the next).
pub(super) fn read_cached(
    cluster: &Cluster,
    namespace: &str,
    built: &BuiltWorkloads,
) -> Option<Arc<Workloads>> {
    let deployments = cluster.cached_in("apps", "Deployment", namespace);
    let rules = cluster.cached_in("networking.istio.io", "DestinationRule", namespace);
    match (deployments, rules) {
        (Some(deployments), Some(rules)) => Some(built.get_or_build(namespace, deployments, rules)),
        // No longer cached there (its watch dropped): nothing of it is kept either.
        (None, _) | (_, None) => {
            built.forget(namespace);
            None
        }
    }
}

/// The health gate's namespaces as built from the watch cache by earlier wakes, with the
/// texts each was built from: the cache replaces an object's text when the object changes,
/// so the same texts (the same allocations, kept alive here) are the same objects.
#[derive(Default)]
pub(crate) struct BuiltWorkloads(std::sync::Mutex<HashMap<String, Built>>);

struct Built {
    deployments: Vec<Arc<str>>,
    rules: Vec<Arc<str>>,
    workloads: Arc<Workloads>,
}

impl BuiltWorkloads {
    /// `namespace`'s workloads from these texts: as built last time when the texts are the
    /// same, else built now (and kept).
    fn get_or_build(
        &self,
        namespace: &str,
        deployments: Vec<Arc<str>>,
        rules: Vec<Arc<str>>,
    ) -> Arc<Workloads> {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = all.get(namespace)
            && same_texts(&b.deployments, &deployments)
            && same_texts(&b.rules, &rules)
        {
            return b.workloads.clone();
        }
        let workloads = Arc::new(Workloads::from_cached(&deployments, &rules));
        all.insert(
            namespace.to_string(),
            Built {
                deployments,
                rules,
                workloads: workloads.clone(),
            },
        );
        workloads
    }

    fn forget(&self, namespace: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(namespace);
    }
}

/// Whether `a` and `b` are the same texts in the same order (the cache lists an unchanged
/// namespace in the same order).
fn same_texts(a: &[Arc<str>], b: &[Arc<str>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| Arc::ptr_eq(x, y))
}

impl Workloads {
    /// From the watch cache's texts of a namespace's Deployments and DestinationRules, in
    /// any order. Pure.
    fn from_cached(deployments: &[Arc<str>], rules: &[Arc<str>]) -> Workloads {
        let mut deployments: Vec<DeploymentItem> = parse_all(deployments);
        deployments.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        let mut rules: Vec<RuleItem> = parse_all(rules);
        rules.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        Workloads::new(deployments, rules)
    }
}

/// Each text read as a `T`; the cache's texts are JSON veer wrote, so none is left out but
/// one that does not have `T`'s shape.
fn parse_all<T: serde::de::DeserializeOwned>(texts: &[Arc<str>]) -> Vec<T> {
    texts
        .iter()
        .filter_map(|t| serde_json::from_str(t).ok())
        .collect()
}

/// Is every Deployment of the new destinations available? Subsets are matched through the
/// DestinationRule of their host (subset labels ⊆ pod template labels); a destination without
/// a subset is matched by `app: <host>`. No matching Deployment counts as unavailable. Pure,
/// over what [`read_namespace`] read of `namespace`.
pub(super) fn available(read: &Namespace, namespace: &str, canary: &[DestinationId]) -> Health {
    if canary.is_empty() {
        return Health::Available;
    }
    match read {
        Ok(workloads) => available_in(workloads, namespace, canary),
        Err(health) => health.clone(),
    }
}

/// [`available`] over workloads that were read.
pub(super) fn available_in(
    workloads: &Workloads,
    namespace: &str,
    canary: &[DestinationId],
) -> Health {
    for d in canary {
        let selector = workloads.subset_labels(d);
        let matching = workloads.matching(&selector);
        if matching.is_empty() {
            let labels: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
            return Health::Unavailable(format!(
                "no Deployment in {namespace} has the pod labels {} of {d}",
                labels.join(",")
            ));
        }
        if let Some(dep) = matching.iter().find(|dep| !dep.available) {
            return Health::Unavailable(format!(
                "Deployment {namespace}/{} of {d} is not available yet",
                dep.name
            ));
        }
    }
    Health::Available
}

/// The DestinationRules of `namespace` (none when the kind is not served), or the gate's
/// answer when they cannot be read.
async fn destination_rules(cluster: &Cluster, namespace: &str) -> Result<Vec<RuleItem>, Health> {
    let key = ObjectKey {
        group: "networking.istio.io".into(),
        version: "v1".into(),
        kind: "DestinationRule".into(),
        namespace: Some(namespace.into()),
        name: String::new(),
    };
    let Ok(r) = cluster.resolve(&key).await else {
        return Ok(Vec::new());
    };
    let api =
        Api::<DynamicObject>::namespaced_with(cluster.client().clone(), namespace, &r.resource);
    list(cluster.client(), api.resource_url()).await.map_err(|e| {
        Health::Unavailable(format!(
            "cannot list DestinationRules in {namespace} (to find the new subsets' pods): {e}; check that veer may list destinationrules (networking.istio.io) there"
        ))
    })
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
