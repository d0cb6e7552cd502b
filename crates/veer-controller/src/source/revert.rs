//! `revert: git`: after a rollback, push a revert commit of the offending change to the tracked
//! branch, so git tells the truth again. libgit2 computes the reverted tree (its revert is a
//! three-way merge against the branch tip); the commit is built in the bare cache repository
//! and pushed, never forced, with the credentials the source fetches with.
//!
//! A push refused because someone pushed meanwhile is retried once on the new tip; a revert
//! that conflicts with later commits is refused with the files involved, for a human to do.

use chrono::{DateTime, Utc};
use git2::{Oid, Signature, Time};

use super::git::PushOutcome;
use super::spec::GitRef;
use super::{CommitId, GitSource, SourceError};

/// Our own ref in the cache repository holding the revert commit while it is pushed.
const REVERT_REF_PREFIX: &str = "refs/veer/revert";

/// Who the revert commit is by (author and committer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevertAuthor {
    pub name: String,
    pub email: String,
}

impl Default for RevertAuthor {
    fn default() -> Self {
        RevertAuthor {
            name: "veer".to_string(),
            email: "veer@localhost".to_string(),
        }
    }
}

impl RevertAuthor {
    /// `Name <email>`, as a policy's `revertAuthor` gives it.
    pub fn parse(text: &str) -> Result<RevertAuthor, RevertError> {
        let invalid = || RevertError::InvalidAuthor {
            author: text.to_string(),
        };
        let (name, rest) = text.trim().split_once('<').ok_or_else(invalid)?;
        let email = rest.strip_suffix('>').ok_or_else(invalid)?.trim();
        let name = name.trim();
        if name.is_empty() || email.is_empty() || email.contains(['<', '>']) {
            return Err(invalid());
        }
        Ok(RevertAuthor {
            name: name.to_string(),
            email: email.to_string(),
        })
    }
}

impl std::fmt::Display for RevertAuthor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} <{}>", self.name, self.email)
    }
}

/// The check that failed, for the commit message. Values are preformatted by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedCheck {
    /// The metric's name in the policy, e.g. `request-success-rate`.
    pub metric: String,
    /// The measured value, e.g. `91.3`.
    pub value: String,
    /// The threshold it broke, e.g. `min 99`.
    pub threshold: String,
}

/// What to revert and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevertRequest {
    /// The offending commit (full id); it must be on the tracked branch.
    pub commit: CommitId,
    /// The rolled-back rollout, e.g. `shop/reviews`.
    pub rollout: String,
    /// Why it was rolled back, e.g. `2 failed checks (threshold 2)`.
    pub reason: String,
    pub failed_check: Option<FailedCheck>,
    pub author: RevertAuthor,
    /// Author and committer time of the revert commit.
    pub now: DateTime<Utc>,
}

/// What [`revert`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reverted {
    /// The revert commit was pushed to the branch.
    Pushed { commit: CommitId },
    /// The branch tip already has the offending change undone (e.g. a revert veer pushed
    /// before a restart, or one made by hand): nothing was pushed.
    AlreadyReverted { tip: CommitId },
}

impl Reverted {
    /// The commit the branch now has: the new revert, or the tip that already undid it.
    pub fn commit(&self) -> &CommitId {
        match self {
            Reverted::Pushed { commit } => commit,
            Reverted::AlreadyReverted { tip } => tip,
        }
    }
}

/// Why no revert was pushed. Messages name the URL and branch (never a secret) and say what
/// to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevertError {
    #[error(
        "the source {url} follows {reference}, not a branch; veer pushes a revert only to a branch it follows: revert the change by hand or set `revert: none`"
    )]
    NotABranch { url: String, reference: String },
    #[error("revert author `{author}` is not usable; write it as `Name <email>`")]
    InvalidAuthor { author: String },
    #[error(
        "commit {commit} is not on branch {branch} of {url} (any more?); check the branch history and revert by hand if needed"
    )]
    NotOnBranch {
        url: String,
        branch: String,
        commit: String,
    },
    #[error(
        "reverting commit {commit} on branch {branch} of {url} conflicts with later commits in {}; revert it by hand", files.join(", ")
    )]
    Conflict {
        url: String,
        branch: String,
        commit: String,
        files: Vec<String>,
    },
    #[error("cannot revert commit {commit}: {message}; revert it by hand")]
    Unrevertable { commit: String, message: String },
    #[error(
        "the push of the revert to branch {branch} of {url} was rejected twice ({reason}); someone keeps pushing: revert it by hand"
    )]
    Rejected {
        url: String,
        branch: String,
        reason: String,
    },
    #[error(
        "the remote {url} refused the push of the revert to branch {branch}: it is a non-bare repository ({reason}); point the source at a bare repository (`git clone --bare`), or revert by hand"
    )]
    NonBareRemote {
        url: String,
        branch: String,
        reason: String,
    },
    #[error(
        "pushing the revert to branch {branch} of {url} failed: {message}; check that the credentials may push to this branch"
    )]
    Push {
        url: String,
        branch: String,
        message: String,
    },
    #[error(
        "cannot write the revert commit in the git cache {dir}: {message}; delete the cache so veer re-clones"
    )]
    Cache { dir: String, message: String },
    /// Fetching, authentication, host key, secrets or timeout, as for any fetch.
    #[error(transparent)]
    Source(#[from] SourceError),
}

impl RevertError {
    /// A short, stable label for metrics (`veer_revert_errors_total{reason=...}`).
    pub fn metric_label(&self) -> &'static str {
        match self {
            RevertError::NotABranch { .. } => "not-a-branch",
            RevertError::InvalidAuthor { .. } => "invalid-author",
            RevertError::NotOnBranch { .. } => "not-on-branch",
            RevertError::Conflict { .. } => "conflict",
            RevertError::Unrevertable { .. } => "unrevertable",
            RevertError::Rejected { .. } => "rejected",
            RevertError::NonBareRemote { .. } => "non-bare-remote",
            RevertError::Push { .. } => "push",
            RevertError::Cache { .. } => "cache",
            RevertError::Source(e) => e.metric_label(),
        }
    }
}

/// Fetch the tracked branch, commit a revert of `request.commit` on its tip and push it.
/// Blocking (network and disk): call it from `spawn_blocking`. A rejected push (someone
/// pushed meanwhile) is retried once on the new tip.
pub fn revert(source: &GitSource, request: &RevertRequest) -> Result<Reverted, RevertError> {
    let spec = source.spec();
    let url = spec.url.text.clone();
    let branch = match &spec.reference {
        GitRef::Branch(b) => b.clone(),
        GitRef::Tag(_) | GitRef::Commit(_) => {
            return Err(RevertError::NotABranch {
                url,
                reference: spec.reference.to_string(),
            });
        }
    };
    let local_ref = format!("{REVERT_REF_PREFIX}/{branch}");
    let remote_ref = format!("refs/heads/{branch}");
    let mut first_rejection = None;
    loop {
        let tip = source.fetch_ref()?;
        let commit = match revert_on(source, &url, &branch, &tip, request)? {
            Some(commit) => commit,
            None => return Ok(Reverted::AlreadyReverted { tip }),
        };
        let oid = Oid::from_str(&commit.0).map_err(|e| cache_error(source, &e))?;
        source
            .repo()
            .reference(&local_ref, oid, true, "veer revert")
            .map_err(|e| cache_error(source, &e))?;
        let pushed = source.push(&local_ref, &remote_ref).map_err(|e| match e {
            SourceError::Fetch { url, message } => RevertError::Push {
                url,
                branch: branch.clone(),
                message,
            },
            other => RevertError::Source(other),
        })?;
        match (pushed, first_rejection.take()) {
            (PushOutcome::Pushed, _) => {
                tracing::info!(
                    %url, %branch, reverted = %request.commit, revert = %commit,
                    "pushed a revert commit"
                );
                return Ok(Reverted::Pushed { commit });
            }
            (PushOutcome::NonBare(reason), _) => {
                return Err(RevertError::NonBareRemote {
                    url,
                    branch,
                    reason,
                });
            }
            (PushOutcome::Rejected(reason), None) => {
                tracing::warn!(
                    %url, %branch, %reason,
                    "the revert push was rejected; fetching the new tip and trying once more"
                );
                first_rejection = Some(reason);
            }
            (PushOutcome::Rejected(reason), Some(_)) => {
                return Err(RevertError::Rejected {
                    url,
                    branch,
                    reason,
                });
            }
        }
    }
}

fn cache_error(source: &GitSource, e: &git2::Error) -> RevertError {
    RevertError::Cache {
        dir: source.repo().path().display().to_string(),
        message: e.message().to_string(),
    }
}

/// Commit a revert of `request.commit` on `tip` in the cache repository. `None` when `tip`
/// already has the change undone (the reverted tree is the tip's own).
fn revert_on(
    source: &GitSource,
    url: &str,
    branch: &str,
    tip: &CommitId,
    request: &RevertRequest,
) -> Result<Option<CommitId>, RevertError> {
    let repo = source.repo();
    let cache = |e: git2::Error| cache_error(source, &e);
    let not_on_branch = || RevertError::NotOnBranch {
        url: url.to_string(),
        branch: branch.to_string(),
        commit: request.commit.0.clone(),
    };
    let tip_oid = Oid::from_str(&tip.0).map_err(cache)?;
    let offending_oid = Oid::from_str(&request.commit.0).map_err(|_| not_on_branch())?;
    // A commit missing from the cache after fetching the branch is not in its history.
    let offending = repo
        .find_commit(offending_oid)
        .map_err(|_| not_on_branch())?;
    let on_branch = tip_oid == offending_oid
        || repo
            .graph_descendant_of(tip_oid, offending_oid)
            .map_err(cache)?;
    if !on_branch {
        return Err(not_on_branch());
    }
    let tip_commit = repo.find_commit(tip_oid).map_err(cache)?;
    // A merge is reverted against its first parent, the branch it was merged into.
    let mainline = if offending.parent_count() > 1 { 1 } else { 0 };
    let mut index = repo
        .revert_commit(&offending, &tip_commit, mainline, None)
        .map_err(|e| RevertError::Unrevertable {
            commit: request.commit.0.clone(),
            message: e.message().to_string(),
        })?;
    if index.has_conflicts() {
        return Err(RevertError::Conflict {
            url: url.to_string(),
            branch: branch.to_string(),
            commit: request.commit.0.clone(),
            files: conflicting_files(&index).map_err(cache)?,
        });
    }
    let tree_oid = index.write_tree_to(repo).map_err(cache)?;
    if tree_oid == tip_commit.tree_id() {
        return Ok(None);
    }
    let tree = repo.find_tree(tree_oid).map_err(cache)?;
    let time = Time::new(request.now.timestamp(), 0);
    let signature =
        Signature::new(&request.author.name, &request.author.email, &time).map_err(|_| {
            RevertError::InvalidAuthor {
                author: request.author.to_string(),
            }
        })?;
    let summary = summary_of(&offending);
    let message = message(&summary, request);
    let oid = repo
        .commit(
            None,
            &signature,
            &signature,
            &message,
            &tree,
            &[&tip_commit],
        )
        .map_err(cache)?;
    Ok(Some(CommitId(oid.to_string())))
}

fn conflicting_files(index: &git2::Index) -> Result<Vec<String>, git2::Error> {
    let mut files = Vec::new();
    for conflict in index.conflicts()? {
        let conflict = conflict?;
        // Any side names the path; a side is missing when the file was added or deleted.
        if let Some(entry) = conflict
            .our
            .as_ref()
            .or(conflict.their.as_ref())
            .or(conflict.ancestor.as_ref())
        {
            files.push(String::from_utf8_lossy(&entry.path).into_owned());
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn summary_of(commit: &git2::Commit<'_>) -> String {
    match commit.summary() {
        Ok(Some(s)) => s.to_string(),
        Ok(None) => String::new(),
        Err(_) => String::from_utf8_lossy(commit.summary_bytes().unwrap_or_default()).into_owned(),
    }
}

/// The revert commit's message, in git's own `Revert "..."` form plus why veer did it. Pure.
fn message(summary: &str, request: &RevertRequest) -> String {
    let mut text = format!(
        "Revert \"{summary}\"\n\nThis reverts commit {}.\n\nveer rolled back the rollout of {}: {}.\n",
        request.commit, request.rollout, request.reason
    );
    if let Some(check) = &request.failed_check {
        text.push_str(&format!(
            "Failed check: {} was {} (threshold {}).\n",
            check.metric, check.value, check.threshold
        ));
    }
    text.push_str(
        "The cluster runs the previous version again; this commit makes git say so too.\n",
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn author_parses_name_and_email() {
        assert_eq!(
            RevertAuthor::parse(" veer bot <veer@example.com> ").unwrap(),
            RevertAuthor {
                name: "veer bot".into(),
                email: "veer@example.com".into()
            }
        );
        for bad in [
            "veer",
            "<veer@example.com>",
            "veer <>",
            "veer <a@b",
            "veer <<a@b>",
        ] {
            let e = RevertAuthor::parse(bad).unwrap_err();
            assert_eq!(e.metric_label(), "invalid-author", "{bad}");
        }
    }

    #[test]
    fn message_says_what_and_why() {
        let request = RevertRequest {
            commit: CommitId("ab".repeat(20)),
            rollout: "shop/reviews".into(),
            reason: "2 failed checks (threshold 2)".into(),
            failed_check: Some(FailedCheck {
                metric: "request-success-rate".into(),
                value: "91.3".into(),
                threshold: "min 99".into(),
            }),
            author: RevertAuthor::default(),
            now: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        };
        assert_eq!(
            message("reviews: send all traffic to v2", &request),
            format!(
                "Revert \"reviews: send all traffic to v2\"\n\nThis reverts commit {}.\n\n\
                 veer rolled back the rollout of shop/reviews: 2 failed checks (threshold 2).\n\
                 Failed check: request-success-rate was 91.3 (threshold min 99).\n\
                 The cluster runs the previous version again; this commit makes git say so too.\n",
                "ab".repeat(20)
            )
        );
    }
}
