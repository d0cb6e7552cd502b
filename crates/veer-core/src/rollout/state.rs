//! The rollout state: plain, versioned serde data the controller stores in the cluster (never
//! on local disk), so a restarted veer resumes where it was. It carries the split the rollout
//! started from (what a rollback restores), the step, failed checks, the action awaiting its
//! answer, the last operator command applied, and a bounded check history.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::detect::RouteRef;
use super::split::{self, TrafficSplit};
use super::{Action, AnalysisVerdict, Command, Overlay};
use crate::manifest::rollout_policy::{RolloutPolicySpec, WebhookKind};

/// Bump when the stored form changes incompatibly.
pub const STATE_VERSION: u32 = 1;
/// Check records kept; older ones are dropped (the state lives in an object of bounded size).
pub const MAX_HISTORY: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// Waiting for a slot under `maxConcurrentRollouts`.
    Queued,
    /// Health gate: the new version's Deployments must become available.
    WaitingForHealth,
    PreRollout,
    Mirroring,
    Matching,
    FaultTesting,
    Progressing,
    Paused,
    /// Waiting for confirm-promotion webhooks to pass.
    AwaitingPromotion,
    Promoting,
    Succeeded,
    RollingBack,
    Failed,
}

/// How a rollout stands ([`Phase::standing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Traffic is moving step by step (or in a mirror, A/B or fault phase).
    Moving,
    /// Held: queued, waiting for health, paused, or awaiting a promotion gate.
    Waiting,
    /// Every step passed; the new version is taking all traffic.
    Promoting,
    Succeeded,
    /// Rolling back, or rolled back.
    Failing,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Queued => "Queued",
            Phase::WaitingForHealth => "WaitingForHealth",
            Phase::PreRollout => "PreRollout",
            Phase::Mirroring => "Mirroring",
            Phase::Matching => "Matching",
            Phase::FaultTesting => "FaultTesting",
            Phase::Progressing => "Progressing",
            Phase::Paused => "Paused",
            Phase::AwaitingPromotion => "AwaitingPromotion",
            Phase::Promoting => "Promoting",
            Phase::Succeeded => "Succeeded",
            Phase::RollingBack => "RollingBack",
            Phase::Failed => "Failed",
        }
    }

    /// How the rollout stands, for people: the one classification the CLI, the status
    /// page and the demo colour and count by (so they need no list of phases of their own).
    pub fn standing(self) -> Standing {
        match self {
            Phase::Succeeded => Standing::Succeeded,
            Phase::Promoting => Standing::Promoting,
            Phase::Failed | Phase::RollingBack => Standing::Failing,
            Phase::Paused | Phase::AwaitingPromotion | Phase::Queued | Phase::WaitingForHealth => {
                Standing::Waiting
            }
            Phase::PreRollout
            | Phase::Mirroring
            | Phase::Matching
            | Phase::FaultTesting
            | Phase::Progressing => Standing::Moving,
        }
    }

    /// Before any traffic moves: a rollout leaving these phases for another (not for a
    /// rollback) has started, for people.
    pub fn before_traffic(self) -> bool {
        match self {
            Phase::Queued | Phase::WaitingForHealth | Phase::PreRollout => true,
            Phase::Mirroring
            | Phase::Matching
            | Phase::FaultTesting
            | Phase::Progressing
            | Phase::Paused
            | Phase::AwaitingPromotion
            | Phase::Promoting
            | Phase::Succeeded
            | Phase::RollingBack
            | Phase::Failed => false,
        }
    }

    /// The rollout ended in a rollback.
    pub fn is_failed(self) -> bool {
        self == Phase::Failed
    }

    pub fn is_terminal(self) -> bool {
        match self {
            Phase::Succeeded | Phase::Failed => true,
            Phase::Queued
            | Phase::WaitingForHealth
            | Phase::PreRollout
            | Phase::Mirroring
            | Phase::Matching
            | Phase::FaultTesting
            | Phase::Progressing
            | Phase::Paused
            | Phase::AwaitingPromotion
            | Phase::Promoting
            | Phase::RollingBack => false,
        }
    }

    /// Does a rollout in this phase count against `maxConcurrentRollouts`? Paused ones do:
    /// their weights are in flight.
    pub fn occupies_slot(self) -> bool {
        match self {
            Phase::Queued | Phase::Succeeded | Phase::Failed => false,
            Phase::WaitingForHealth
            | Phase::PreRollout
            | Phase::Mirroring
            | Phase::Matching
            | Phase::FaultTesting
            | Phase::Progressing
            | Phase::Paused
            | Phase::AwaitingPromotion
            | Phase::Promoting
            | Phase::RollingBack => true,
        }
    }

    /// Phases in which the progress deadline runs.
    pub fn has_deadline(self) -> bool {
        match self {
            Phase::WaitingForHealth
            | Phase::PreRollout
            | Phase::Mirroring
            | Phase::Matching
            | Phase::FaultTesting
            | Phase::Progressing => true,
            Phase::Queued
            | Phase::Paused
            | Phase::AwaitingPromotion
            | Phase::Promoting
            | Phase::Succeeded
            | Phase::RollingBack
            | Phase::Failed => false,
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a phase is within itself. `Writing`, `Webhooks`, `Analysing` and `Reverting` await
/// the answer to [`RolloutState::pending_action`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "stage", rename_all = "camelCase")]
pub enum Stage {
    /// Nothing issued yet in this phase (or step).
    Start,
    Writing,
    /// Traffic is in place; the next check is due at `until`.
    Settling {
        until: DateTime<Utc>,
    },
    Webhooks,
    Analysing,
    Reverting,
    /// A write did not read back; write again at `until`.
    Backoff {
        until: DateTime<Utc>,
    },
}

/// Why a rollout was rolled back.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "reason", rename_all = "camelCase")]
pub enum FailureReason {
    FailedChecks { failed: u32, threshold: u32 },
    ProgressDeadline { phase: Phase },
    Aborted,
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailureReason::FailedChecks { failed, threshold } => {
                write!(f, "{failed} failed checks (threshold {threshold})")
            }
            FailureReason::ProgressDeadline { phase } => {
                write!(f, "progress deadline missed in {phase}")
            }
            FailureReason::Aborted => f.write_str("aborted by an operator"),
        }
    }
}

/// Why a check gave no verdict: "cannot measure" is not "measured bad".
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "reason", rename_all = "camelCase")]
pub enum HoldReason {
    NoData {
        metric: String,
    },
    TooFewRequests {
        metric: String,
        count: u64,
        min: u64,
    },
    MetricsError {
        metric: String,
        message: String,
    },
    Inconclusive {
        metric: String,
    },
    /// The new version's Deployments are not available; `why` names the Deployment, or the
    /// list veer could not read (empty in states stored before veer said why).
    Unavailable {
        #[serde(default, skip_serializing_if = "String::is_empty")]
        why: String,
    },
    /// A confirm-promotion webhook has not passed yet.
    AwaitingConfirmation {
        webhook: String,
    },
}

/// How a check counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CheckOutcome {
    Passed,
    Failed,
    Held,
}

impl CheckOutcome {
    /// How the check counted, as the three-way class: a held check could not tell.
    pub fn judgement(self) -> crate::analysis::Judgement {
        match self {
            CheckOutcome::Passed => crate::analysis::Judgement::Pass,
            CheckOutcome::Failed => crate::analysis::Judgement::Fail,
            CheckOutcome::Held => crate::analysis::Judgement::Inconclusive,
        }
    }
}

/// One check as recorded: query, value, threshold and verdict, at a phase and step.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckRecord {
    pub at: DateTime<Utc>,
    pub phase: Phase,
    pub step: usize,
    /// Metric name, or `webhook/NAME` for a webhook.
    pub check: String,
    /// Empty where [`CheckRecord::same_query`]: read it with [`RolloutState::query_of`].
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query: String,
    /// The query is the one of this check's record before it, not held twice: a rendered
    /// query is most of a record (a hundred records of one metric: 48 KB stored, 19 KB so).
    /// Set by [`RolloutState::record`]; an older veer reads such a record's query as empty.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub same_query: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The threshold range as text, e.g. `>= 99`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub threshold: String,
    pub verdict: AnalysisVerdict,
    /// What a failing webhook answered, or why a metric could not be measured.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    pub outcome: CheckOutcome,
    /// The comparison with the old version (p-value, verdict, medians), when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<crate::analysis::BaselineComparison>,
}

/// Something that happened, for status, logs, metrics and alerts.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum Event {
    PhaseChanged {
        from: Phase,
        to: Phase,
    },
    StepAdvanced {
        step: usize,
        split: TrafficSplit,
    },
    CheckPassed {
        phase: Phase,
        step: usize,
    },
    CheckFailed {
        failed_checks: u32,
        threshold: u32,
        checks: Vec<String>,
    },
    Held {
        reason: HoldReason,
    },
    WebhookFailed {
        kind: WebhookKind,
        name: String,
        message: String,
    },
    /// A forward write did not read back as written.
    WriteNotReadBack {
        expected: TrafficSplit,
        read: TrafficSplit,
    },
    /// A rollback did not restore the split: the live route is not where it should be.
    RollbackNotRestored {
        expected: TrafficSplit,
        read: TrafficSplit,
    },
    RollingBack {
        reason: FailureReason,
    },
    RolledBack {
        split: TrafficSplit,
    },
    Promoted {
        split: TrafficSplit,
    },
    Reverted {
        commit: String,
    },
    RevertFailed {
        message: String,
    },
    Restarted {
        revision: String,
        from: TrafficSplit,
        target: TrafficSplit,
    },
    CommandApplied {
        command: Command,
    },
    CommandIgnored {
        command: Command,
        phase: Phase,
    },
    /// The route serves `live` where the current step set `expected` (someone edited it by
    /// hand, `editor` if known): veer writes its split again and measures the step afresh.
    Interfered {
        expected: TrafficSplit,
        live: TrafficSplit,
        editor: Option<String>,
    },
}

/// Where a paused rollout goes on `resume`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub struct Resume {
    pub phase: Phase,
}

/// Everything veer remembers about one rollout (one route of one VirtualService).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutState {
    pub version: u32,
    /// The git revision whose weights are being rolled out.
    pub revision: String,
    pub route: RouteRef,
    /// Other routes of the VirtualService the same commit shifts: they move with `route`
    /// (`rollout::companions`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub companions: Vec<super::CompanionRoute>,
    pub phase: Phase,
    pub stage: Stage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<Resume>,
    /// Id of the last issued action; answers must carry it.
    pub seq: u64,
    /// The last issued action that expects an answer; a restarted controller performs it
    /// again when the stage still awaits it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_action: Option<Action>,
    /// Id of the last operator command applied (or ignored).
    pub last_command: u64,
    /// The split before the rollout began: what a rollback restores.
    pub start_split: TrafficSplit,
    /// Where this attempt started (live, at the start or at a restart for a new commit).
    pub from_split: TrafficSplit,
    pub target_split: TrafficSplit,
    /// The split last written and read back.
    pub current_split: TrafficSplit,
    /// The overlay (mirror, A/B match, fault) written with it: with the route, it says which
    /// fields the rollout owns now (`rollout::owned_fields`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_overlay: Option<Overlay>,
    /// The new version's weight at each step before promotion.
    pub steps: Vec<u32>,
    /// Index into `steps` while progressing.
    pub step: usize,
    /// Passing checks in the current phase (mirror, match and fault phases need several).
    pub iterations: u32,
    pub failed_checks: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_hold: Option<HoldReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert_commit: Option<String>,
    pub created_at: DateTime<Utc>,
    pub phase_started_at: DateTime<Utc>,
    /// When the current step (or health gate) began, or its last passing check: the progress
    /// deadline counts from here.
    pub step_started_at: DateTime<Utc>,
    /// When the split now in force was written and read back (at each step, and again after
    /// a hand edit was undone): a step is judged on samples taken after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_since: Option<DateTime<Utc>>,
    /// When the last check was due, while the next one may keep its cadence (one interval
    /// later, `cadence::next_due`); cleared when the cadence starts over (a new phase, a hand
    /// edit undone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cadence: Option<DateTime<Utc>>,
    #[serde(default)]
    pub history: History,
}

impl RolloutState {
    /// A new rollout of `revision` for `route`, from `live` to `target`, queued.
    pub fn new(
        revision: impl Into<String>,
        route: RouteRef,
        live: &TrafficSplit,
        target: &TrafficSplit,
        policy: &RolloutPolicySpec,
        now: DateTime<Utc>,
    ) -> Self {
        let from = live.extended(target);
        let target = target.extended(live);
        RolloutState {
            version: STATE_VERSION,
            revision: revision.into(),
            route,
            companions: Vec::new(),
            phase: Phase::Queued,
            stage: Stage::Start,
            resume: None,
            seq: 0,
            last_action: None,
            last_command: 0,
            start_split: from.clone(),
            steps: plan(&from, &target, policy),
            from_split: from.clone(),
            current_split: from,
            current_overlay: None,
            target_split: target,
            step: 0,
            iterations: 0,
            failed_checks: 0,
            last_hold: None,
            failure: None,
            revert_commit: None,
            created_at: now,
            phase_started_at: now,
            step_started_at: now,
            traffic_since: None,
            cadence: None,
            history: History::default(),
        }
    }

    /// The stored form (JSON), as the controller keeps it in the cluster.
    pub fn encode(&self) -> String {
        // Plain data with string keys: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Read a stored state of `object` (for messages), refusing versions this veer does not
    /// know rather than misreading them.
    pub fn decode(object: &str, stored: &str) -> Result<Self, super::RolloutError> {
        let value: serde_json::Value =
            serde_json::from_str(stored).map_err(|e| super::RolloutError::MalformedState {
                object: object.to_string(),
                reason: e.to_string(),
            })?;
        let found = value
            .get("version")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        if found != u64::from(STATE_VERSION) {
            return Err(super::RolloutError::UnsupportedStateVersion {
                object: object.to_string(),
                found: u32::try_from(found).unwrap_or(u32::MAX),
                supported: STATE_VERSION,
            });
        }
        serde_json::from_value(value).map_err(|e| super::RolloutError::MalformedState {
            object: object.to_string(),
            reason: e.to_string(),
        })
    }

    /// The action whose answer the state awaits, if any: after a restart the controller
    /// performs it again (every action is safe to repeat).
    pub fn pending_action(&self) -> Option<&Action> {
        match self.stage {
            Stage::Writing | Stage::Webhooks | Stage::Analysing | Stage::Reverting => {
                self.last_action.as_ref()
            }
            Stage::Start | Stage::Settling { .. } | Stage::Backoff { .. } => None,
        }
    }

    /// The new version's destinations: those gaining weight in this attempt.
    pub fn canary(&self) -> Vec<split::DestinationId> {
        self.from_split.gaining_toward(&self.target_split)
    }

    /// The new version's weight now, in percent.
    pub fn canary_weight(&self) -> u32 {
        self.current_split.weight_of(&self.canary())
    }

    /// Add `record` to the history (the oldest records go past [`MAX_HISTORY`]). A query the
    /// same check's last record has is not held again ([`CheckRecord::same_query`]).
    pub fn record(&mut self, mut record: CheckRecord) {
        let last = self.history.iter().rposition(|r| r.check == record.check);
        if !record.query.is_empty() && last.is_some_and(|i| self.query_of(i) == record.query) {
            record.query = String::new();
            record.same_query = true;
        }
        self.history.push(record);
        if self.history.len() > MAX_HISTORY {
            let excess = self.history.len() - MAX_HISTORY;
            history::drop_oldest(&mut self.history, excess);
        }
    }

    /// The query of the history's record `index` (held by an earlier record of its check
    /// when [`CheckRecord::same_query`]); empty when there is none.
    pub fn query_of(&self, index: usize) -> &str {
        history::query_of(&self.history, index)
    }
}

mod history;
pub use history::History;

/// The steps for a move from `from` to `target` under `policy`: the policy's step values
/// strictly between the new version's start and end weights; when none lies between and the
/// end is within `maxWeight`, one analysed step at the end itself, so a small move is still
/// checked before it is promoted.
pub fn plan(from: &TrafficSplit, target: &TrafficSplit, policy: &RolloutPolicySpec) -> Vec<u32> {
    let values = policy.step_values();
    let mut steps = split::plan_steps(from, target, &values);
    let gaining = from.gaining_toward(target);
    let start = from.weight_of(&gaining);
    let end = target.weight_of(&gaining);
    if steps.is_empty() && !gaining.is_empty() && end > start && end <= policy.max_weight() {
        steps.push(end);
    }
    steps
}
