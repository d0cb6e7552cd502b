//! Writing traffic: the VirtualService rendered for a split (and overlay) goes to the
//! traffic writer (the real one applies it through sync, the only writer, then reads the
//! route back from the API server, [`live_split`], so the state machine hears what the
//! cluster really routes).

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
    Ok(object.and_then(|object| {
        let index = pair_live_route(&object, route)?;
        read_split(&object, index).ok()
    }))
}
