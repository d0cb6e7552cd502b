//! Progressive rollouts, the pure core: the `RolloutPolicy` kind (read with the manifests: [`crate::manifest::rollout_policy`]), traffic splits
//! and how they move ([`split`]), which routes a commit shifts ([`detect`]), which
//! VirtualServices are bound and what a commit asks of them ([`targets`]), the rollout work
//! of a pass, shared by the planner and the driver ([`work`]), the rollout state as stored in
//! the cluster ([`state`]), the state machine ([`machine::decide`]), the queue behind
//! `maxConcurrentRollouts` ([`queue`]), and what people are told: `veer rollout status`
//! ([`status`]) and notifications ([`notice`]).
//!
//! No kube, no HTTP, no git, no I/O, no clock: the controller (the only writer of live state)
//! gathers an [`Observation`], calls [`decide`], stores the next state, then performs the
//! [`Action`]. Every action that expects an answer carries an `id`; answers carry it back, so
//! a replayed or late answer is recognised and ignored, and a restarted controller re-runs
//! [`RolloutState::pending_action`] instead of guessing.

pub mod cadence;
pub mod companions;
pub mod detect;
pub mod live;
pub mod machine;
pub mod notice;
pub mod queries;
pub mod queue;
pub mod render;
pub mod split;
pub mod state;
pub mod status;
pub mod targets;
pub mod work;

// Shared with the controller's rollout tests (its dev-dependency turns the feature on).
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::manifest::istio::virtual_service::StringMatch;

pub use crate::manifest::rollout_policy::{RolloutPolicy, RolloutPolicySpec, WebhookKind};
pub use companions::CompanionRoute;
pub use detect::{RouteRef, RouteShift, detect, owned_fields, read_split, write_split};
pub use live::{live_route, route_editor};
pub use machine::{Decision, decide};
pub use split::{DestinationId, TrafficSplit, weight_bar};
pub use state::{Event, FailureReason, HoldReason, Phase, RolloutState, Stage, Standing};

/// What can go wrong reading weights out of a VirtualService.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RolloutError {
    #[error(
        "{object}: {side} weights of a route sum to {sum}, not 100; fix the weights so that the route can be shifted"
    )]
    WeightsDoNotSum {
        object: String,
        side: String,
        sum: u64,
    },
    #[error("{object}: {reason}; correct the route so veer can read its weights")]
    MalformedRoute { object: String, reason: String },
    #[error(
        "rollout state of {object} has version {found}, this veer reads version {supported}; run a veer that knows it, or delete the state to start the rollout over"
    )]
    UnsupportedStateVersion {
        object: String,
        found: u32,
        supported: u32,
    },
    #[error(
        "rollout state of {object} cannot be read: {reason}; delete the state to start the rollout over"
    )]
    MalformedState { object: String, reason: String },
}

impl RolloutError {
    pub fn metric_label(&self) -> &'static str {
        match self {
            RolloutError::WeightsDoNotSum { .. } => "weights_do_not_sum",
            RolloutError::MalformedRoute { .. } => "malformed_route",
            RolloutError::UnsupportedStateVersion { .. } => "unsupported_state_version",
            RolloutError::MalformedState { .. } => "malformed_state",
        }
    }
}

/// Traffic shaping beside the split, for the mirror, A/B and fault phases. `to`/`on` are the
/// new version's destinations (those gaining weight).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Overlay {
    /// Mirror `percent`% of the route's requests to the new version (responses discarded).
    Mirror {
        to: Vec<DestinationId>,
        percent: u32,
    },
    /// Requests matching `headers` (or carrying `cookie`) go to the new version.
    Match {
        to: Vec<DestinationId>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, StringMatch>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cookie: Option<String>,
    },
    /// Inject a delay or an abort into `percent`% of the new version's requests.
    Fault {
        on: Vec<DestinationId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delay: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        abort: Option<u32>,
        percent: f64,
    },
}

/// What the controller must do next. Actions with an `id` expect an answer in a later
/// [`Observation`] carrying the same id; all are safe to perform again after a restart.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum Action {
    /// Write the route's weights (and overlay, or remove any), then read them back.
    SetSplit {
        id: u64,
        split: TrafficSplit,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        overlay: Option<Overlay>,
    },
    /// Call every webhook of `kind` (each with its timeout) and report each result.
    RunWebhooks { id: u64, kind: WebhookKind },
    /// Query every metric of the policy for the new version (`canary`), compared with the old
    /// one (`baseline`) when the policy asks, over the last interval.
    Analyse {
        id: u64,
        step: usize,
        metrics: Vec<String>,
        canary: Vec<DestinationId>,
        baseline: Vec<DestinationId>,
    },
    /// Nothing to do before `until` (or before a new observation arrives).
    Wait { until: DateTime<Utc> },
    /// Restore the pre-rollout split (removing any overlay), then read it back.
    Rollback { id: u64, to: TrafficSplit },
    /// Tell people: something needs attention (e.g. a write that did not read back).
    Alert { event: Event },
    /// Push a revert commit of `revision` to the tracked branch.
    RevertInGit { id: u64, revision: String },
    /// The rollout is over; nothing more to do for this revision.
    Done,
}

impl Action {
    /// The id an answer must carry, for actions that expect one.
    pub fn id(&self) -> Option<u64> {
        match self {
            Action::SetSplit { id, .. }
            | Action::RunWebhooks { id, .. }
            | Action::Analyse { id, .. }
            | Action::Rollback { id, .. }
            | Action::RevertInGit { id, .. } => Some(*id),
            Action::Wait { .. } | Action::Alert { .. } | Action::Done => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Action::SetSplit { .. } => "set-split",
            Action::RunWebhooks { .. } => "run-webhooks",
            Action::Analyse { .. } => "analyse",
            Action::Wait { .. } => "wait",
            Action::Rollback { .. } => "rollback",
            Action::Alert { .. } => "alert",
            Action::RevertInGit { .. } => "revert-in-git",
            Action::Done => "done",
        }
    }
}

// The verdicts and checks are the analysis's own plain data: one definition, stored as is.
pub use crate::analysis::verdict::{AnalysisVerdict, Check, MetricsErrorKind, ThresholdRange};

/// Answer to [`Action::Analyse`].
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct AnalysisReport {
    pub id: u64,
    pub checks: Vec<Check>,
}

/// Answer to [`Action::SetSplit`] or [`Action::Rollback`]: the split read back afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteReadBack {
    pub id: u64,
    pub read_back: TrafficSplit,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct WebhookResult {
    pub name: String,
    pub passed: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// Answer to [`Action::RunWebhooks`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct WebhookReport {
    pub id: u64,
    pub results: Vec<WebhookResult>,
}

/// Answer to [`Action::RevertInGit`]: the revert commit, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct RevertReport {
    pub id: u64,
    pub outcome: Result<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Command {
    Pause,
    Resume,
    /// Skip the remaining steps and promote now.
    Promote,
    Abort,
    /// Try a failed revision again.
    Retry,
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Pause => "pause",
            Command::Resume => "resume",
            Command::Promote => "promote",
            Command::Abort => "abort",
            Command::Retry => "retry",
        }
    }
}

/// An operator command, numbered by whoever stores it so it applies once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub struct OperatorCommand {
    pub id: u64,
    pub command: Command,
}

/// The rollout's target as git has it now. Sent with every observation; a revision other than
/// the state's is a new commit.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetUpdate {
    pub revision: String,
    pub target: TrafficSplit,
    /// The route's live split now: a new commit restarts from here.
    pub live: TrafficSplit,
    /// The other routes git shifts in the same VirtualService (`companions`): a rollout
    /// started afresh by a new commit takes them as they are now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub companions: Vec<CompanionRoute>,
}

/// What the I/O edge saw since the last decision. Answers for other ids are ignored.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    /// Are the new version's Deployments available? `None`: not looked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available: Option<bool>,
    /// Why not, when `available` is `Some(false)`: the Deployment that is not available, or
    /// the list the probe could not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    /// May a queued rollout start (see [`queue::admit`])?
    #[serde(default)]
    pub admitted: bool,
    /// Shared with the rollout's work: every decision of a drive hears the same target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<std::sync::Arc<TargetUpdate>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write: Option<WriteReadBack>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhooks: Option<WebhookReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert: Option<RevertReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<OperatorCommand>,
    /// The route as the cluster serves it now (the watch cache), so a hand edit mid-step is
    /// seen. `None`: not looked (e.g. later decisions of one pass, after veer's own writes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveRoute>,
}

/// The rolled-out route as the cluster serves it, and who last edited it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveRoute {
    pub split: TrafficSplit,
    /// The field manager other than veer that last wrote the route (from managedFields), if
    /// any: who to name when the split is not the one the step set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub editor: Option<String>,
}
