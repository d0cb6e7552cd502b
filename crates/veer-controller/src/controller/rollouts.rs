//! The rollout driver: the I/O edge around the pure rollout core (`crate::rollout`).
//!
//! Owns, for every VirtualService bound to a rollout policy: keeping its rollout state in
//! the cluster (one ConfigMap per rollout, so a restarted veer resumes), gathering each
//! [`Observation`](crate::rollout::Observation) (Deployment availability of the new subsets,
//! Prometheus checks, webhook results, operator commands, the split read back after each
//! write), calling [`decide`](crate::rollout::decide), storing the next state *before*
//! acting (but an analysis, and a step ahead on a passing check, whose resumption after a
//! restart is the check done again: `tick::step_ahead`), and performing the action. What a pass does about rollouts (bindings, the routes
//! git shifts, targets, the fields running rollouts own) is computed once, purely, as a
//! [`RolloutWork`](crate::rollout::work::RolloutWork): the planner leaves out the fields it
//! owns so the ordinary sync never fights a rollout, and the driver drives the rest. Traffic
//! is written through the sync module (the only writer) as the rendered VirtualService of
//! the current phase.
//!
//! One rollout per VirtualService: the first route git shifts is the rollout's own; other
//! routes the same commit shifts are its companions and move with it
//! (`rollout::companions`). The read-back and the hand-edit check look at the rollout's own
//! route.
//!
//! Rollouts are driven concurrently, each on its own schedule (`schedule`): a pass drives the
//! rollouts that are due (a full pass after a git poll: all of them), each rollout's observe →
//! decide → act as its own future, at most `RolloutOptions::concurrency` working at once; a
//! rollout waiting for Prometheus, a webhook or a write holds up no other. State still goes
//! through the one [`ports::RolloutStore`] and traffic through the one
//! [`ports::TrafficWriter`] (sync). The analyses of the rollouts driven together are measured
//! together (`batcher`): the built-in queries over one window are sent as one query, grouped
//! by the labels that tell the rollouts apart (`analysis::batch`).
//!
//! This file holds the driver's types (its identity, errors, options and state); the work
//! is in one submodule per concern:
//! - `driver`: setting the driver up, and one pass over the rollout work;
//! - `schedule`: which rollouts a pass drives, driving them concurrently, and when to wake;
//! - `tick`: one rollout's observe → decide → act loop, and performing its actions;
//! - `batcher`: gathering the analyses of a pass's rollouts into few Prometheus queries;
//! - `ports`: what the driver reads from and writes to the world, as small traits;
//! - `traffic`: writing a split through sync and reading it back (from the apply's answer);
//! - `health`: whether the new version's Deployments are available;
//! - `analyse`: the Prometheus checks of an analysis and their baseline comparison;
//! - `revert`: pushing a revert commit of a rolled-back revision (`revert: git`);
//! - `events`: the logs, notifications and metric series of each decision;
//! - `store`: the rollout ConfigMaps (load, store, forget, read and list for the CLI);
//! - `commands`: operator commands (pause, resume, promote, abort, retry) in the ConfigMap.
//!
//! The pure parts left here (`events::to_notification`, `analyse::comparison`,
//! `status::render_status`) are table-tested next to them.

mod analyse;
mod batcher;
mod commands;
mod driver;
mod events;
mod health;
mod ports;
mod revert;
mod schedule;
mod store;
mod tick;
mod traffic;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::analysis::MetricsProvider;
pub(crate) use crate::ids::RolloutId;
use crate::manifest::rollout_policy::RolloutPolicy;
use crate::metrics::Metrics;
use crate::notify::Notifications;
use crate::rollout::{OperatorCommand, RolloutState};

pub use crate::rollout::status::{render_status, render_status_with_live};
pub(crate) use crate::rollout::targets::is_virtual_service;
pub use analyse::QueriesSent;
pub use commands::send_command;
pub use ports::{ClusterPorts, SystemClock};
pub use revert::{GitRevert, NoRevert, PushRevertError, RevertPusher};
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
    /// Rollouts a pass drives at once (reading, deciding, writing); 0:
    /// [`RolloutOptions::DEFAULT_CONCURRENCY`]. One waiting for its analysis does not count.
    pub concurrency: usize,
    /// Policies from a local directory, after the repository's and before the shipped ones.
    pub policies: Vec<RolloutPolicy>,
}

impl RolloutOptions {
    pub const DEFAULT_CONCURRENCY: usize = 32;

    fn concurrency(&self) -> usize {
        match self.concurrency {
            0 => Self::DEFAULT_CONCURRENCY,
            n => n,
        }
    }
}

/// One rollout as the driver tracks it.
#[derive(Debug, Clone)]
pub(crate) struct Tracked {
    /// Shared, not copied, with the drive that takes it (a history of up to a hundred
    /// checks): a drive that changes it puts a new one in its place.
    state: Arc<RolloutState>,
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

/// What the driver does about one bound VirtualService in a pass.
type Work = crate::rollout::work::VirtualServiceWork;

/// The rollout work of one pass ([`RolloutDriver::plan`]), made once for the planner and the
/// driver.
pub struct PlannedRollouts {
    work: crate::rollout::work::RolloutWork,
    /// Whether the stored rollout states were read when it was made: only then may it be
    /// driven as it is.
    states_read: bool,
}

impl PlannedRollouts {
    /// The fields running rollouts own, for `PlanContext::ignore`.
    pub fn ignore(&self) -> BTreeMap<crate::manifest::ObjectKey, Vec<crate::fields::FieldPath>> {
        self.work.owned.clone()
    }
}

/// Drives every rollout; held by the controller.
pub struct RolloutDriver {
    options: RolloutOptions,
    provider: Option<Arc<dyn MetricsProvider>>,
    gate: Arc<dyn ports::Gate>,
    revert: Arc<dyn RevertPusher>,
    notifications: Option<Arc<Notifications>>,
    metrics: Arc<Metrics>,
    rollouts: BTreeMap<RolloutId, Tracked>,
    /// The last hand edit undone per rollout, for the status page.
    interfered: BTreeMap<RolloutId, String>,
    loaded: bool,
    /// When each rollout driven so far wants to act next (`None`: finished; a rollout not
    /// here has not been driven yet, and is due).
    due: BTreeMap<RolloutId, Option<DateTime<Utc>>>,
    /// A tick that could not run comes back then ([`RolloutDriver::retry_at`]).
    retry: Option<DateTime<Utc>>,
    /// Prometheus queries sent, by kind.
    queries: Arc<analyse::QueryCounts>,
    /// Rollouts whose state was read, started, changed or forgotten since the last
    /// [`RolloutDriver::take_changed`]: a tick tells the next pass which VirtualServices to
    /// plan again from this, not by cloning and comparing every state.
    changed: std::collections::BTreeSet<RolloutId>,
    /// The bound VirtualServices of the revision the last tick drove, made once per
    /// revision (`RolloutDriver::bindings`): ticks over one revision bind nothing again.
    bindings: Option<RevisionBindings>,
    /// What the health gate built from the watch cache, kept from one wake to the next.
    built_workloads: Arc<health::BuiltWorkloads>,
}

/// A revision's bindings ([`crate::rollout::work::bind`]) and what they were made from: a
/// commit (its objects and policies; the local policies never change) and the source URL
/// its objects are decorated with.
struct RevisionBindings {
    commit: String,
    source_url: String,
    bindings: Arc<crate::rollout::work::Bindings>,
}

#[cfg(test)]
mod driver_tests;
#[cfg(test)]
use crate::rollout::fixtures;

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
        assert_eq!(id().config_map(), "veer-rollout-shop.reviews");
    }
}
