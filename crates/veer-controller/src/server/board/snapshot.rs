//! What the status page and `/readyz` show, as plain data in display form (strings, weights,
//! verdicts): the [`StatusSnapshot`] and its parts. The page renders these and never reaches
//! into the controller's or a rollout's internals.

use chrono::{DateTime, Utc};

use crate::analysis::Judgement;
use crate::pass::PassOutcome;
use crate::rollout::state::Phase;
use crate::server::readiness::Readiness;
use crate::source::{GitRef, SourceSpec};

/// The repository and ref veer follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedSource {
    pub url: String,
    /// `branch main`, `tag v1.2`, `commit <sha>`.
    pub reference: String,
    pub sub_path: Option<String>,
}

impl From<&SourceSpec> for TrackedSource {
    fn from(spec: &SourceSpec) -> Self {
        TrackedSource {
            url: spec.url.text.clone(),
            reference: match &spec.reference {
                GitRef::Branch(b) => format!("branch {b}"),
                GitRef::Tag(t) => format!("tag {t}"),
                GitRef::Commit(c) => format!("commit {c}"),
            },
            sub_path: spec.sub_path.clone(),
        }
    }
}

/// The revision in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionStatus {
    pub commit: String,
    pub summary: String,
    pub author: String,
}

/// A revision that failed validation (nothing from it applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedStatus {
    pub commit: String,
    pub errors: usize,
}

/// How the last pass ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassStatus {
    pub outcome: PassOutcome,
    pub at: DateTime<Utc>,
    /// Why it failed, when it did.
    pub message: Option<String>,
}

/// Where one object stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ObjectHealth {
    InSync,
    Drifted,
    Failed,
}

impl ObjectHealth {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectHealth::InSync => "in sync",
            ObjectHealth::Drifted => "drifted",
            ObjectHealth::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectStatus {
    /// `Kind namespace/name`.
    pub key: String,
    pub health: ObjectHealth,
    /// Why it failed or drifted; the last result otherwise.
    pub reason: String,
}

/// The new version's weight at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightSample {
    pub at: DateTime<Utc>,
    pub weight: u32,
}

/// One analysis check, to mark on the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckMark {
    pub at: DateTime<Utc>,
    pub check: String,
    pub verdict: Judgement,
    /// Value, threshold and message, for the tooltip and the table.
    pub detail: String,
}

/// One rollout as the page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutStatus {
    /// The rollout's name, e.g. `VirtualService shop/reviews spec.http[0]`.
    pub name: String,
    pub revision: String,
    pub phase: Phase,
    /// Destination and weight, as live now.
    pub split: Vec<(String, u32)>,
    pub target: Vec<(String, u32)>,
    /// The new version's total weight over time.
    pub samples: Vec<WeightSample>,
    pub checks: Vec<CheckMark>,
    /// Why it is rolling back or failed.
    pub failure: Option<String>,
    /// The last hand edit of its route that veer undid: when, by whom, the live split and
    /// the step's.
    pub interfered: Option<String>,
}

impl RolloutStatus {
    /// The new version's current weight (the last sample).
    pub fn weight(&self) -> u32 {
        self.samples.last().map(|s| s.weight).unwrap_or(0)
    }
}

/// Everything the page shows, at `now`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StatusSnapshot {
    /// When the snapshot was taken (the page says "as of").
    pub now: Option<DateTime<Utc>>,
    pub source: Option<TrackedSource>,
    pub revision: Option<RevisionStatus>,
    pub rejected: Option<RejectedStatus>,
    pub last_pass: Option<PassStatus>,
    /// Sorted: failed first, then drifted, then in sync; by key within each.
    pub objects: Vec<ObjectStatus>,
    pub rollouts: Vec<RolloutStatus>,
    /// The last non-empty diff (what the last write changed, or the drift), plain text.
    pub last_diff: Option<String>,
    pub readiness: Readiness,
}

impl StatusSnapshot {
    pub fn count(&self, health: ObjectHealth) -> usize {
        self.objects.iter().filter(|o| o.health == health).count()
    }
}
