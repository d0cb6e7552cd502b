//! Git revert (`revert: git`): pushing a revert commit of a rolled-back revision to the
//! tracked branch, and what to revert and why (pure: `revert_request`).

use std::path::PathBuf;

use chrono::Utc;
use futures::future::BoxFuture;

use super::RolloutId;
use crate::manifest::rollout_policy::RolloutPolicy;
use crate::rollout::RolloutState;
use crate::rollout::state::CheckOutcome;
use crate::source::{CommitId, FailedCheck, GitSource, RevertAuthor, RevertRequest, SourceSpec};

/// Pushes a revert commit of a rolled-back revision to the tracked branch (`revert: git`).
/// [`GitRevert`] is the real one; [`NoRevert`] reports that nothing is configured.
pub trait RevertPusher: Send + Sync {
    /// The commit the branch has now (the revert, or a tip that already undid the change), or
    /// why there is none.
    fn revert(&self, request: RevertRequest) -> BoxFuture<'_, Result<String, String>>;
}

/// No git revert available: every request fails with a message saying so.
pub struct NoRevert;

impl RevertPusher for NoRevert {
    fn revert(&self, _request: RevertRequest) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async {
            Err(
                "this veer has no git source to push a revert to; revert the commit by hand"
                    .to_string(),
            )
        })
    }
}

/// Reverts through `source::revert` with the source's own URL and credentials, from a cache
/// repository of its own (the poller's is busy on another thread).
pub struct GitRevert {
    spec: SourceSpec,
    cache_dir: PathBuf,
}

impl GitRevert {
    pub fn new(spec: SourceSpec, cache_dir: PathBuf) -> Self {
        GitRevert { spec, cache_dir }
    }
}

impl RevertPusher for GitRevert {
    fn revert(&self, request: RevertRequest) -> BoxFuture<'_, Result<String, String>> {
        let spec = self.spec.clone();
        let cache_dir = self.cache_dir.clone();
        Box::pin(async move {
            let pushed = tokio::task::spawn_blocking(move || {
                let source = GitSource::open(spec, &cache_dir).map_err(|e| e.to_string())?;
                crate::source::revert(&source, &request).map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| format!("the git task failed: {e}"))??;
            Ok(pushed.commit().0.clone())
        })
    }
}

/// What to revert and why, from the rollout's state and policy. Pure.
pub(super) fn revert_request(
    id: &RolloutId,
    policy: &RolloutPolicy,
    state: &RolloutState,
    revision: &str,
) -> Result<RevertRequest, String> {
    let author = match &policy.spec.revert_author {
        Some(text) => RevertAuthor::parse(text).map_err(|e| e.to_string())?,
        None => RevertAuthor::default(),
    };
    let failed_check = state
        .history
        .iter()
        .rev()
        .find(|r| r.outcome == CheckOutcome::Failed)
        .map(|r| FailedCheck {
            metric: r.check.clone(),
            value: r
                .value
                .map_or_else(|| "no value".to_string(), |v| format!("{v:.2}")),
            // A value inside its range failed by the comparison: say so next to the range.
            threshold: match &r.baseline {
                Some(b) => format!("{}; {b}", r.threshold),
                None => r.threshold.clone(),
            },
        });
    Ok(RevertRequest {
        commit: CommitId(revision.to_string()),
        rollout: id.to_string(),
        reason: state
            .failure
            .as_ref()
            .map_or_else(|| "rolled back".to_string(), ToString::to_string),
        failed_check,
        author,
        now: Utc::now(),
    })
}
