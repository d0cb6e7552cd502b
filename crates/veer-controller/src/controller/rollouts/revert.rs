//! Git revert (`revert: git`): pushing a revert commit of a rolled-back revision to the
//! tracked branch, and what to revert and why (pure: `revert_request`).

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use super::RolloutId;
use crate::manifest::rollout_policy::RolloutPolicy;
use crate::rollout::RolloutState;
use crate::rollout::state::CheckOutcome;
use crate::source::{
    CommitId, FailedCheck, GitSource, RevertAuthor, RevertError, RevertRequest, SourceError,
    SourceSpec,
};

/// Why no revert commit was pushed (recorded in the rollout's revert report and logged); the
/// message says to revert by hand where veer cannot.
#[derive(Debug, thiserror::Error)]
pub enum PushRevertError {
    #[error("this veer has no git source to push a revert to; revert the commit by hand")]
    NoGitSource,
    /// The source's cache repository cannot be opened.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The revert itself: not on a branch, a conflict, a rejected push, …
    #[error(transparent)]
    Revert(#[from] RevertError),
    /// The blocking git task panicked or was cancelled.
    #[error("the git task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Pushes a revert commit of a rolled-back revision to the tracked branch (`revert: git`).
/// [`GitRevert`] is the real one; [`NoRevert`] reports that nothing is configured.
pub trait RevertPusher: Send + Sync {
    /// The commit the branch has now (the revert, or a tip that already undid the change), or
    /// why there is none.
    fn revert(&self, request: RevertRequest) -> BoxFuture<'_, Result<String, PushRevertError>>;
}

/// No git revert available: every request fails with a message saying so.
pub struct NoRevert;

impl RevertPusher for NoRevert {
    fn revert(&self, _request: RevertRequest) -> BoxFuture<'_, Result<String, PushRevertError>> {
        Box::pin(async { Err(PushRevertError::NoGitSource) })
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
    fn revert(&self, request: RevertRequest) -> BoxFuture<'_, Result<String, PushRevertError>> {
        let spec = self.spec.clone();
        let cache_dir = self.cache_dir.clone();
        Box::pin(async move {
            let pushed = tokio::task::spawn_blocking(move || {
                let source = GitSource::open(spec, &cache_dir)?;
                Ok::<_, PushRevertError>(crate::source::revert(&source, &request)?)
            })
            .await??;
            Ok(pushed.commit().0.clone())
        })
    }
}

/// What to revert and why, from the rollout's state and policy, at `now`. Pure.
pub(super) fn revert_request(
    id: &RolloutId,
    policy: &RolloutPolicy,
    state: &RolloutState,
    revision: &str,
    now: DateTime<Utc>,
) -> Result<RevertRequest, RevertError> {
    let author = match &policy.spec.revert_author {
        Some(text) => RevertAuthor::parse(text)?,
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
        now,
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{compared, id, policy, state, t};
    use super::*;
    use crate::analysis::BaselineVerdict;
    use crate::rollout::{FailureReason, Phase};

    #[test]
    fn a_revert_names_the_check_that_failed_with_its_baseline() {
        let mut failed = state("c1", Phase::Failed, (100, 0), (0, 100));
        failed.failure = Some(FailureReason::FailedChecks {
            failed: 2,
            threshold: 2,
        });
        failed.record(compared(3, BaselineVerdict::Fail { p_value: 0.0065 }));
        let revert = revert_request(&id(), &policy("p"), &failed, "c1", t(9)).expect("a request");
        assert_eq!(revert.now, t(9));
        assert_eq!(revert.reason, "2 failed checks (threshold 2)");
        let check = revert.failed_check.expect("the failed check");
        assert_eq!(
            (check.metric.as_str(), check.value.as_str()),
            ("p99-latency", "248.50")
        );
        assert_eq!(
            check.threshold,
            "<= 500; baseline fail p=0.0065 < 0.05 (median 249 vs 24.9, +900%, 6/9 samples)"
        );
    }
}
