//! What one reconcile pass did: the one pass outcome that the controller returns and the
//! metrics, the status board, the page and the CLI read. A leaf below `controller` and
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
