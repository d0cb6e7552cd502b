//! The rollout driver: the I/O edge around the pure rollout core (`crate::rollout`).
//!
//! Owns, for every VirtualService bound to a rollout policy: finding the route git shifts
//! (`detect`), keeping its rollout state in the cluster (one ConfigMap per rollout, so a
//! restarted veer resumes), gathering each [`Observation`](crate::rollout::Observation)
//! (Deployment availability of the new subsets, Prometheus checks, webhook results, operator
//! commands, the split read back after each write), calling
//! [`decide`](crate::rollout::decide), storing the next state *before* acting, and performing
//! the action. Traffic is written through the sync module (the only writer) as the rendered
//! VirtualService of the current phase; while a rollout runs, `ignore_fields` tells the
//! planner which fields it owns so the ordinary sync never fights it.
//!
//! One rollout per VirtualService: the first route git shifts is the rollout's own; other
//! routes the same commit shifts are its companions and move with it
//! (`rollout::companions`). The read-back and the hand-edit check look at the rollout's own
//! route.
//!
//! This file holds the driver's types (its identity, errors, options and state); the work
//! is in one submodule per concern:
//! - `driver`: setting the driver up, and one pass over every bound VirtualService;
//! - `tick`: one rollout's observe → decide → act loop, and performing its actions;
//! - `routes`: binding, the route git shifts, the target, the fields rollouts own (pure);
//! - `traffic`: writing a split through sync and reading it back;
//! - `health`: whether the new version's Deployments are available;
//! - `analyse`: the Prometheus checks of an analysis and their baseline comparison;
//! - `revert`: pushing a revert commit of a rolled-back revision (`revert: git`);
//! - `events`: the logs, notifications and metric series of each decision;
//! - `store`: the rollout ConfigMaps (load, store, forget, read and list for the CLI);
//! - `commands`: operator commands (pause, resume, promote, abort, retry) in the ConfigMap;
//! - `status`: `veer rollout status` as text.
//!
//! The pure parts (`routes::targets`, `routes::ignore_fields`, `events::to_notification`,
//! `analyse::comparison`, `status::render_status`) are table-tested next to them.

mod analyse;
mod commands;
mod driver;
mod events;
mod health;
mod ports;
mod revert;
mod routes;
mod status;
mod store;
mod tick;
mod traffic;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::analysis::MetricsProvider;
use crate::gate::WebhookGate;
use crate::ids::RolloutId;
use crate::manifest::ObjectKey;
use crate::manifest::rollout_policy::RolloutPolicy;
use crate::metrics::Metrics;
use crate::notify::Notifications;
use crate::rollout::{CompanionRoute, OperatorCommand, RolloutState, RouteShift, TargetUpdate};

pub use commands::send_command;
pub use ports::{ClusterPorts, SystemClock};
pub use revert::{GitRevert, NoRevert, PushRevertError, RevertPusher};
pub(crate) use routes::is_virtual_service;
pub use status::{render_status, render_status_with_live};
pub use store::{clear_command, list_rollouts, read_rollout};
pub use traffic::live_split;

/// What can go wrong keeping rollout state in the cluster.
#[derive(Debug, thiserror::Error)]
pub enum RolloutDriverError {
    #[error("cannot {what}: {message}; {hint}")]
    Api {
        what: String,
        message: String,
        /// What to check, by likelihood: an unanswered request points at the server, a 403
        /// at RBAC.
        hint: String,
    },
    #[error(transparent)]
    State(#[from] crate::rollout::RolloutError),
    #[error("cannot set up rollouts: {message}")]
    Setup { message: String },
}

/// What veer's service account needs for the rollout ConfigMaps.
const CONFIG_MAPS_NEEDED: &str =
    "get, list, create, patch and delete on configmaps in the state namespace";

impl RolloutDriverError {
    /// A failed request to the API server about the rollout ConfigMaps, while doing `what`.
    pub(crate) fn api(what: String, error: &kube::Error) -> Self {
        RolloutDriverError::Api {
            what,
            message: error.to_string(),
            hint: crate::sync::state::hint(error, CONFIG_MAPS_NEEDED),
        }
    }

    pub fn metric_label(&self) -> &'static str {
        match self {
            RolloutDriverError::Api { .. } => "rollout_state_api",
            RolloutDriverError::State(e) => e.metric_label(),
            RolloutDriverError::Setup { .. } => "rollout_setup",
        }
    }
}

/// How the driver behaves.
#[derive(Clone)]
pub struct RolloutOptions {
    /// Namespace of the rollout ConfigMaps (veer's state namespace).
    pub state_namespace: String,
    /// `maxConcurrentRollouts`; 0: no limit.
    pub max_concurrent: usize,
    /// Policies from a local directory, after the repository's and before the shipped ones.
    pub policies: Vec<RolloutPolicy>,
}

/// One rollout as the driver tracks it.
#[derive(Debug, Clone)]
pub(crate) struct Tracked {
    state: RolloutState,
    /// The command last read from its ConfigMap (cleared once applied).
    command: Option<Mailbox>,
}

/// An operator command as read from a rollout's ConfigMap, and the text it was read from:
/// the driver clears the mailbox only while it still holds that text, so a command the CLI
/// wrote meanwhile is never erased.
#[derive(Debug, Clone)]
pub(crate) struct Mailbox {
    command: OperatorCommand,
    text: String,
}

impl Mailbox {
    fn read(text: &str) -> Option<Mailbox> {
        let command = serde_json::from_str(text).ok()?;
        Some(Mailbox {
            command,
            text: text.to_string(),
        })
    }
}

/// What the driver needs to know about one bound VirtualService in this pass.
struct Work<'a> {
    id: RolloutId,
    key: ObjectKey,
    desired: &'a Value,
    policy: RolloutPolicy,
    target: Option<TargetUpdate>,
    shift: Option<RouteShift>,
    /// Other routes git shifts in the same VirtualService: they move with `shift`'s.
    companions: Vec<CompanionRoute>,
    /// The VirtualService as the watch cache has it, to notice a hand edit of the route.
    live: Option<&'a Value>,
}

/// Drives every rollout; held by the controller.
pub struct RolloutDriver {
    options: RolloutOptions,
    provider: Option<Arc<dyn MetricsProvider>>,
    gate: WebhookGate,
    revert: Arc<dyn RevertPusher>,
    notifications: Option<Arc<Notifications>>,
    metrics: Arc<Metrics>,
    rollouts: BTreeMap<RolloutId, Tracked>,
    /// The last hand edit undone per rollout, for the status page.
    interfered: BTreeMap<RolloutId, String>,
    loaded: bool,
    wake: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod driver_tests;
#[cfg(test)]
mod fixtures;

#[cfg(test)]
mod tests {
    use super::fixtures::id;
    use super::*;

    #[test]
    fn rollout_ids() {
        assert_eq!(RolloutId::parse("shop/reviews"), Some(id()));
        assert_eq!(RolloutId::parse("reviews"), None);
        assert_eq!(RolloutId::parse("a/b/c"), None);
        assert_eq!(RolloutId::parse("/b"), None);
        assert_eq!(id().config_map(), "veer-rollout-shop-reviews");
    }
}
