//! The health gate's observation: whether every Deployment of the new destinations is
//! available, the Deployments being found through the DestinationRule subsets' pod labels.
//! A namespace is read once ([`read_namespace`]) for all its rollouts of a pass
//! (`ports::ClusterPorts`), and each rollout judged from it ([`available`], pure).

use crate::rollout::queries::short_host;
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject, ListParams};
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
pub(super) type Namespace = Result<(Vec<Deployment>, Vec<Value>), Health>;

/// The Deployments and DestinationRules of `namespace` (two LISTs).
pub(super) async fn read_namespace(cluster: &Cluster, namespace: &str) -> Namespace {
    let deployments: Api<Deployment> = Api::namespaced(cluster.client().clone(), namespace);
    let deployments = match deployments.list(&ListParams::default()).await {
        Ok(list) => list.items,
        Err(e) => {
            return Err(Health::Unavailable(format!(
                "cannot list Deployments in {namespace}: {e}; check that veer may list deployments (apps) there"
            )));
        }
    };
    let rules = destination_rules(cluster, namespace).await?;
    Ok((deployments, rules))
}

/// Is every Deployment of the new destinations available? Subsets are matched through the
/// DestinationRule of their host (subset labels ⊆ pod template labels); a destination without
/// a subset is matched by `app: <host>`. No matching Deployment counts as unavailable. Pure,
/// over what [`read_namespace`] read of `namespace`.
pub(super) fn available(read: &Namespace, namespace: &str, canary: &[DestinationId]) -> Health {
    if canary.is_empty() {
        return Health::Available;
    }
    let (deployments, rules) = match read {
        Ok(read) => read,
        Err(health) => return health.clone(),
    };
    for d in canary {
        let selector = subset_labels(rules, d);
        let matching: Vec<&Deployment> = deployments
            .iter()
            .filter(|dep| {
                // Borrowed, not cloned: a namespace's Deployments are matched for each of its
                // rollouts.
                let labels = dep
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.metadata.as_ref())
                    .and_then(|m| m.labels.as_ref());
                selector
                    .iter()
                    .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
            })
            .collect();
        if matching.is_empty() {
            let labels: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
            return Health::Unavailable(format!(
                "no Deployment in {namespace} has the pod labels {} of {d}",
                labels.join(",")
            ));
        }
        if let Some(dep) = matching.iter().find(|dep| !deployment_available(dep)) {
            return Health::Unavailable(format!(
                "Deployment {namespace}/{} of {d} is not available yet",
                dep.metadata.name.as_deref().unwrap_or("")
            ));
        }
    }
    Health::Available
}

fn deployment_available(dep: &Deployment) -> bool {
    dep.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == "Available" && c.status == "True")
        })
}

/// The DestinationRules of `namespace` (none when the kind is not served), or the gate's
/// answer when they cannot be read.
async fn destination_rules(cluster: &Cluster, namespace: &str) -> Result<Vec<Value>, Health> {
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
    match api.list(&ListParams::default()).await {
        Ok(l) => Ok(l
            .items
            .into_iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .collect()),
        Err(e) => Err(Health::Unavailable(format!(
            "cannot list DestinationRules in {namespace} (to find the new subsets' pods): {e}; check that veer may list destinationrules (networking.istio.io) there"
        ))),
    }
}

/// The pod labels of destination `d`. Pure.
fn subset_labels(rules: &[Value], d: &DestinationId) -> BTreeMap<String, String> {
    let Some(subset) = &d.subset else {
        return BTreeMap::from([("app".to_string(), short_host(&d.host).to_string())]);
    };
    for rule in rules {
        let host = rule
            .pointer("/spec/host")
            .and_then(Value::as_str)
            .unwrap_or("");
        if short_host(host) != short_host(&d.host) {
            continue;
        }
        let subsets = rule
            .pointer("/spec/subsets")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if let Some(s) = subsets
            .iter()
            .find(|s| s.get("name").and_then(Value::as_str) == Some(subset))
        {
            return string_map(s.get("labels"));
        }
    }
    // No DestinationRule says: Istio's convention is `version: <subset>`.
    BTreeMap::from([
        ("app".to_string(), short_host(&d.host).to_string()),
        ("version".to_string(), subset.clone()),
    ])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn subset_labels_come_from_the_destination_rule() {
        let rules = vec![
            json!({"spec": {"host": "ratings", "subsets": [{"name": "v2", "labels": {"version": "wrong"}}]}}),
            json!({"spec": {"host": "reviews.shop.svc.cluster.local", "subsets": [{"name": "v2", "labels": {"version": "v2", "track": "canary"}}]}}),
        ];
        let labels = |d: DestinationId| {
            subset_labels(&rules, &d)
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            labels(DestinationId::new("reviews", Some("v2"))),
            ["track=canary", "version=v2"]
        );
        assert_eq!(
            labels(DestinationId::new("reviews", Some("v3"))),
            ["app=reviews", "version=v3"]
        );
        assert_eq!(
            labels(DestinationId::new("reviews-v2", None)),
            ["app=reviews-v2"]
        );
    }
}
