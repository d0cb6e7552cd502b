//! Writing traffic: the VirtualService rendered for a split (and overlay) goes to the
//! traffic writer (the real one applies it through sync, the only writer, and reads the
//! route back from the apply's own answer, the object as the API server stored it, or from
//! the API server, [`live_split`], when the apply did not answer with one; so the state
//! machine hears what the cluster really routes).

use kube::api::{Api, DynamicObject};
use tracing::warn;

use super::Work;
use super::tick::Env;
use crate::cluster::Cluster;
use crate::manifest::ObjectKey;
use crate::rollout::detect::pair_live_route;
use crate::rollout::{RolloutState, RouteRef, TrafficSplit, read_split};

impl Env<'_> {
    /// Render the VirtualService for `split` (and overlay) and hand it to the traffic writer,
    /// which applies it and reads the route back. `None` when it cannot be read back.
    pub(super) async fn write_split(
        &self,
        w: &Work,
        state: &RolloutState,
        split: &TrafficSplit,
        overlay: Option<&crate::rollout::Overlay>,
    ) -> Option<TrafficSplit> {
        match crate::rollout::render::render_step(&w.desired, state, split, overlay) {
            Ok(rendered) => {
                self.ports
                    .traffic
                    .write(&w.id, &w.key, rendered, &state.route)
                    .await
            }
            Err(e) => {
                warn!(rollout = %w.id, error = %e, "cannot render the VirtualService");
                None
            }
        }
    }
}

/// The split the API server (not the cache) has for `route` of the VirtualService `key`:
/// the read-back after a write, and `veer rollout status`'s "live" line. `Ok(None)`: the
/// object or the route is not there, or its weights cannot be read.
pub async fn live_split(
    cluster: &Cluster,
    key: &ObjectKey,
    route: &RouteRef,
) -> Result<Option<TrafficSplit>, crate::cluster::ClusterError> {
    let r = cluster.resolve(key).await?;
    let namespace = key.namespace.as_deref().unwrap_or_default();
    let api =
        Api::<DynamicObject>::namespaced_with(cluster.client().clone(), namespace, &r.resource);
    let object = match api.get_opt(&key.name).await {
        Ok(Some(o)) => serde_json::to_value(o).ok(),
        Ok(None) => None,
        Err(e) => {
            return Err(crate::cluster::ClusterError::Api {
                what: format!("read {key}"),
                code: match &e {
                    kube::Error::Api(s) => Some(s.code),
                    _ => None,
                },
                reason: e.to_string(),
            });
        }
    };
    Ok(object.and_then(|object| split_of(&object, route)))
}

/// The split `route` has in `answer`, the API server's answer to an apply of its
/// VirtualService (the object as stored), and the resourceVersion it was stored at. Only the
/// name, the resourceVersion and the spec are read: the rest (the managed fields, the
/// status) is skipped, not built.
pub(super) fn stored_split(
    answer: &str,
    route: &RouteRef,
) -> (Option<TrafficSplit>, Option<String>) {
    #[derive(serde::Deserialize)]
    struct Stored {
        metadata: Metadata,
        #[serde(default)]
        spec: serde_json::Value,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Metadata {
        #[serde(default)]
        name: String,
        resource_version: Option<String>,
    }
    let Ok(stored) = serde_json::from_str::<Stored>(answer) else {
        return (None, None);
    };
    let object = serde_json::json!({
        "metadata": {"name": stored.metadata.name},
        "spec": stored.spec,
    });
    (split_of(&object, route), stored.metadata.resource_version)
}

/// The split `route` has in the VirtualService `object` (as the API server stored it);
/// `None` when the route is not there or its weights cannot be read.
fn split_of(object: &serde_json::Value, route: &RouteRef) -> Option<TrafficSplit> {
    let index = pair_live_route(object, route)?;
    read_split(object, index).ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::rollout::fixtures::{split, vs};

    /// The read-back taken from an apply's answer: the route's split and the version it was
    /// stored at, whatever else the answer carries; none when the route or the object is not
    /// readable.
    #[test]
    fn the_stored_split_is_read_from_the_apply_answer() {
        let mut answer = vs(75, 25, Some("p"));
        answer["metadata"]["managedFields"] = json!([{"manager": "veer", "operation": "Apply",
            "fieldsV1": {"f:spec": {"f:http": {}}}}]);
        answer["status"] = json!({"validationMessages": []});
        answer["metadata"]["resourceVersion"] = json!("42");
        let text = answer.to_string();
        let route = RouteRef {
            index: 0,
            name: None,
        };
        assert_eq!(
            stored_split(&text, &route),
            (Some(split(75, 25)), Some("42".into()))
        );
        let missing = RouteRef {
            index: 3,
            name: None,
        };
        assert_eq!(stored_split(&text, &missing).0, None);
        assert_eq!(stored_split("not json", &route), (None, None));
    }
}
