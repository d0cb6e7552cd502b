//! The git source: what veer follows (a repository, a ref, a sub-path), fetching it, and
//! turning one commit into a [`ManifestSet`]. Also reads a plain directory for
//! `veer validate PATH`, with the same rules, and polls on a [`Schedule`].
//!
//! [`revert`] pushes a revert commit of a rolled-back change (`revert: git`).
//!
//! This is the only module that talks git (git2). Reading rules shared by git trees and
//! directories: only `*.yaml`/`*.yml`, `.veerignore` in gitignore syntax, symlinks followed only
//! while they stay inside the repository, files larger than the limit refused.

mod git;
mod poller;
mod revert;
mod schedule;
mod spec;
mod walk;

use std::time::Duration;

use crate::manifest::ManifestSet;

pub use git::GitSource;
pub use poller::{PollAction, PollOutcome, Poller, decide};
pub use revert::{FailedCheck, RevertAuthor, RevertError, RevertRequest, Reverted, revert};
pub use schedule::Schedule;
pub use spec::{
    Auth, GitRef, GitUrl, Secret, SecretSource, SourceSpec, UrlKind, normalize_sub_path,
};
pub use walk::read_local;

pub use crate::ids::CommitId;

/// What a fetch found at the followed ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// Same commit as the previous fetch.
    Unchanged { commit: CommitId },
    /// A different commit (or the first one): `from` is the previous fetch's commit.
    Changed {
        from: Option<CommitId>,
        to: CommitId,
    },
}

impl FetchOutcome {
    /// Compare the commit a fetch resolved with the previous one. Pure.
    pub fn classify(previous: Option<&CommitId>, now: CommitId) -> FetchOutcome {
        match previous {
            Some(p) if *p == now => FetchOutcome::Unchanged { commit: now },
            _ => FetchOutcome::Changed {
                from: previous.cloned(),
                to: now,
            },
        }
    }

    pub fn commit(&self) -> &CommitId {
        match self {
            FetchOutcome::Unchanged { commit } => commit,
            FetchOutcome::Changed { to, .. } => to,
        }
    }
}

/// Who and what a commit is, for logs, events and notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub commit: CommitId,
    /// First line of the message (lossy if not UTF-8).
    pub summary: String,
    /// `Name <email>`.
    pub author: String,
    /// When the commit was made (committer time).
    pub time: chrono::DateTime<chrono::Utc>,
}

/// One commit read into manifests.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedRevision {
    pub revision: Revision,
    pub set: ManifestSet,
    /// Manifest files (repository-relative) added, modified or removed since the previously
    /// loaded commit; every file on the first load. Sorted.
    pub changed_files: Vec<String>,
    /// How many files had to be parsed (the rest came from the cache).
    pub parsed_files: usize,
}

/// Why the source could not produce a revision. Messages name the URL (never a secret) and
/// say what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("repository URL `{url}` is not usable: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("ref `{reference}` is not usable: {reason}")]
    InvalidRef { reference: String, reason: String },
    #[error("sub-path `{path}` is not usable: {reason}")]
    InvalidSubPath { path: String, reason: String },
    #[error("schedule `{input}` is not usable: {reason}")]
    InvalidSchedule { input: String, reason: String },
    #[error(
        "cannot read the secret from {source_name}: {reason}; check the source's `auth` settings"
    )]
    Secret { source_name: String, reason: String },
    #[error(
        "cannot open the git cache at {dir}: {message}; check permissions, or delete the directory so veer re-clones"
    )]
    Cache { dir: String, message: String },
    #[error(
        "authentication to {url} failed: {message}; check the credentials configured in `auth`"
    )]
    Auth { url: String, message: String },
    #[error(
        "the host key of {url} is not trusted: {message}; add the server's key to the configured known_hosts file"
    )]
    HostKey { url: String, message: String },
    #[error(
        "fetching {url} failed: {message}; check that the URL is right and the server reachable"
    )]
    Fetch { url: String, message: String },
    #[error(
        "fetching {url} did not finish within {after:?}; check the network, or raise the timeout"
    )]
    Timeout { url: String, after: Duration },
    #[error("a previous fetch of {url} is still running; it will be retried at the next tick")]
    Busy { url: String },
    #[error("{reference} was not found in {url}; check that it exists and was pushed")]
    RefNotFound { url: String, reference: String },
    #[error(
        "sub-path `{path}` does not exist as a directory at commit {commit} of {url}; check `path` in the source settings"
    )]
    SubPathMissing {
        url: String,
        commit: String,
        path: String,
    },
    #[error("reading {location} failed: {message}")]
    Read { location: String, message: String },
    #[error("the fetch task for {url} failed: {message}")]
    Task { url: String, message: String },
}

impl From<crate::secret::SecretError> for SourceError {
    fn from(e: crate::secret::SecretError) -> Self {
        SourceError::Secret {
            source_name: e.source_name,
            reason: e.reason,
        }
    }
}

impl SourceError {
    /// A short, stable label for metrics (`veer_source_errors_total{reason=...}`).
    pub fn metric_label(&self) -> &'static str {
        match self {
            SourceError::InvalidUrl { .. } => "invalid-url",
            SourceError::InvalidRef { .. } => "invalid-ref",
            SourceError::InvalidSubPath { .. } => "invalid-sub-path",
            SourceError::InvalidSchedule { .. } => "invalid-schedule",
            SourceError::Secret { .. } => "secret",
            SourceError::Cache { .. } => "cache",
            SourceError::Auth { .. } => "auth",
            SourceError::HostKey { .. } => "host-key",
            SourceError::Fetch { .. } => "fetch",
            SourceError::Timeout { .. } => "timeout",
            SourceError::Busy { .. } => "busy",
            SourceError::RefNotFound { .. } => "ref-not-found",
            SourceError::SubPathMissing { .. } => "sub-path-missing",
            SourceError::Read { .. } => "read",
            SourceError::Task { .. } => "task",
        }
    }
}
