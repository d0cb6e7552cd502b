//! Writing traffic: the VirtualService rendered for a split (and overlay) is applied through
//! sync, the only writer, then the route is read back from the API server so the state
//! machine hears what the cluster really routes.

use std::collections::BTreeMap;

use kube::api::{Api, DynamicObject};
use tracing::warn;

use super::routes::live_route_index;
use super::{RolloutDriver, Work};
use crate::cluster::Cluster;
use crate::diff::{self, ObjectPlan, Plan};
use crate::manifest::ObjectKey;
use crate::rollout::{RolloutState, RouteRef, TrafficSplit, read_split};
use crate::sync::{self, ObjectResult, SyncOptions};

impl RolloutDriver {
    /// Apply the rendered VirtualService through sync, then read the route back from the
    /// API server (not the cache). `None` when it cannot be read back at all.
    pub(super) async fn write_split(
        &self,
        cluster: &Cluster,
        sync_options: &SyncOptions,
        w: &Work<'_>,
        state: &RolloutState,
        split: &TrafficSplit,
        overlay: Option<&crate::rollout::Overlay>,
    ) -> Option<TrafficSplit> {
        match crate::rollout::render::render(
            w.desired,
            state.route.index,
            split,
            &state.target_split,
            overlay,
        ) {
            Ok(rendered) => {
                let plan = Plan {
                    objects: vec![ObjectPlan {
                        key: w.key.clone(),
                        action: diff::ObjectAction::Update {
                            cause: diff::Cause::GitChange,
                            changes: Vec::new(),
                        },
                        desired: Some(rendered),
                        live: None,
                    }],
                    ..Plan::default()
                };
                // While the rollout runs veer owns these weights: a hand edit does not block it.
                let options = SyncOptions {
                    force_conflicts: true,
                    ..sync_options.clone()
                };
                let report = sync::execute(cluster, &plan, &BTreeMap::new(), &options).await;
                for o in &report.objects {
                    if let ObjectResult::Failed(f) = &o.result {
                        warn!(rollout = %w.id, error = %f.message, "traffic write failed");
                    }
                }
            }
            Err(e) => warn!(rollout = %w.id, error = %e, "cannot render the VirtualService"),
        }
        match live_split(cluster, &w.key, &state.route).await {
            Ok(split) => split,
            Err(e) => {
                warn!(rollout = %w.id, error = %e, "cannot read the VirtualService back");
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
        let index = live_route_index(&object, route)?;
        read_split(&object, index).ok()
    }))
}
