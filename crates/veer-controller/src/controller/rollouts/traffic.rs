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
use crate::rollout::{RolloutState, TrafficSplit, read_split};
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
        let api = match cluster.resolve(&w.key).await {
            Ok(r) => Api::<DynamicObject>::namespaced_with(
                cluster.client().clone(),
                &w.id.namespace,
                &r.resource,
            ),
            Err(e) => {
                warn!(rollout = %w.id, error = %e, "cannot read the VirtualService back");
                return None;
            }
        };
        let object = match api.get(&w.key.name).await {
            Ok(o) => serde_json::to_value(o).ok()?,
            Err(e) => {
                warn!(rollout = %w.id, error = %e, "cannot read the VirtualService back");
                return None;
            }
        };
        let index = live_route_index(&object, &state.route)?;
        read_split(&object, index).ok()
    }
}
