//! What one reconcile pass did ([`Pass`], what the controller returns) and how it ended in
//! one word ([`PassOutcome`]): the one pass outcome the metrics, the status board, the page
//! and the CLI read. A leaf below `controller` and
//! `server`, so neither needs the other for it.

use crate::manifest::ObjectKey;
use crate::sync::SyncReport;

/// What one pass did.
#[derive(Debug, Clone, PartialEq)]
pub enum Pass {
    /// No valid revision has been loaded yet (the first one was invalid, or the poll
    /// failed).
    NoRevision,
    /// The new revision was rejected: nothing from it was applied.
    Rejected {
        commit: String,
        errors: usize,
        by: RejectedBy,
    },
    /// The cluster matches git; nothing was written.
    InSync { commit: String },
    /// Only drift, and self-heal is off: reported, nothing written.
    DriftReported {
        commit: String,
        objects: Vec<ObjectKey>,
    },
    /// Writes were made (or sent as a server dry run), or objects veer may not read failed;
    /// `report` says how each went.
    Synced { commit: String, report: SyncReport },
    /// The cluster could not be read or the state not written.
    Failed { message: String },
}

/// Who rejected a revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectedBy {
    /// veer's validation: the revision stays rejected (a new commit is needed).
    Validation,
    /// The API server, in the dry run before the first write (module `controller::gate`); asked again
    /// at every pass.
    Server,
}

/// How one reconcile pass ended (label `outcome` of `veer_sync_results_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PassOutcome {
    /// No valid revision loaded yet.
    NoRevision,
    /// The revision failed validation; nothing applied.
    Rejected,
    /// The cluster matched git; nothing written.
    InSync,
    /// Drift found and only reported (self-heal off).
    DriftReported,
    /// Every write succeeded.
    Synced,
    /// Some writes failed.
    Partial,
    /// The pass could not run (cluster unreadable, state not written).
    Failed,
}

impl PassOutcome {
    pub const ALL: [PassOutcome; 7] = [
        PassOutcome::NoRevision,
        PassOutcome::Rejected,
        PassOutcome::InSync,
        PassOutcome::DriftReported,
        PassOutcome::Synced,
        PassOutcome::Partial,
        PassOutcome::Failed,
    ];

    /// The metric label (`outcome` of `veer_sync_results_total`).
    pub fn as_str(self) -> &'static str {
        match self {
            PassOutcome::NoRevision => "no_revision",
            PassOutcome::Rejected => "rejected",
            PassOutcome::InSync => "in_sync",
            PassOutcome::DriftReported => "drift_reported",
            PassOutcome::Synced => "synced",
            PassOutcome::Partial => "partial",
            PassOutcome::Failed => "failed",
        }
    }

    /// For people (the status page, logs): `in sync`, `partially applied`, …
    pub fn words(self) -> &'static str {
        match self {
            PassOutcome::NoRevision => "no revision",
            PassOutcome::Rejected => "rejected",
            PassOutcome::InSync => "in sync",
            PassOutcome::DriftReported => "drift reported",
            PassOutcome::Synced => "synced",
            PassOutcome::Partial => "partially applied",
            PassOutcome::Failed => "failed",
        }
    }
}

impl Pass {
    /// How this pass ended, in one word.
    pub fn outcome(&self) -> PassOutcome {
        match self {
            Pass::NoRevision => PassOutcome::NoRevision,
            Pass::Rejected { .. } => PassOutcome::Rejected,
            Pass::InSync { .. } => PassOutcome::InSync,
            Pass::DriftReported { .. } => PassOutcome::DriftReported,
            Pass::Synced { report, .. } if report.has_failures() => PassOutcome::Partial,
            Pass::Synced { .. } => PassOutcome::Synced,
            Pass::Failed { .. } => PassOutcome::Failed,
        }
    }
}
