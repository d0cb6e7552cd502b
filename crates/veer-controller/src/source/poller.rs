//! Polling on the async runtime: each poll fetches (and loads, when the commit moved) on a
//! blocking thread under a timeout. A failure is logged and reported, and the last good
//! revision stays in force: the controller never loses its state to a flaky git server.

use std::sync::{Arc, Mutex, TryLockError};
use std::time::Duration;

use super::{CommitId, FetchOutcome, GitSource, LoadedRevision, Schedule, SourceError};
use crate::manifest::{ParseCache, ReadOptions};

/// What one poll produced.
#[derive(Debug, Clone, PartialEq)]
pub enum PollOutcome {
    /// The followed commit is the one already loaded.
    Unchanged { commit: CommitId },
    /// A new commit was loaded.
    Updated(Arc<LoadedRevision>),
    /// The poll failed; `kept` is the revision still in force.
    Failed {
        error: SourceError,
        kept: Option<CommitId>,
    },
}

/// What to do after a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollAction {
    Load(CommitId),
    Keep(CommitId),
}

/// Load when the fetched commit is not the loaded one. Compared with the last *loaded*
/// commit, not the last fetched, so a load that failed is retried at the next poll. Pure.
pub fn decide(fetched: &FetchOutcome, loaded: Option<&CommitId>) -> PollAction {
    let commit = fetched.commit();
    if loaded == Some(commit) {
        PollAction::Keep(commit.clone())
    } else {
        PollAction::Load(commit.clone())
    }
}

/// What the blocking part of a poll returns.
enum Polled {
    Same(CommitId),
    Loaded(Box<LoadedRevision>),
}

struct State {
    source: GitSource,
    cache: ParseCache,
    options: ReadOptions,
}

/// Told how long each fetch took and, when it failed, its error's `metric_label()`: the
/// `veer_git_fetch_*` metrics. A callback, so the source knows nothing of the metrics.
pub type FetchObserver = Arc<dyn Fn(Duration, Option<&'static str>) + Send + Sync>;

/// One fetch, timed apart from the load that may follow it.
struct FetchTimed {
    took: Duration,
    failed: Option<&'static str>,
}

pub struct Poller {
    state: Arc<Mutex<State>>,
    on_fetch: Option<FetchObserver>,
    url: String,
    schedule: Schedule,
    timeout: Duration,
    last_good: Option<Arc<LoadedRevision>>,
    last_error: Option<SourceError>,
}

impl Poller {
    pub fn new(source: GitSource, schedule: Schedule, timeout: Duration) -> Self {
        Self::with_options(source, schedule, timeout, ReadOptions::default())
    }

    pub fn with_options(
        source: GitSource,
        schedule: Schedule,
        timeout: Duration,
        options: ReadOptions,
    ) -> Self {
        let url = source.spec().url.text.clone();
        Self {
            state: Arc::new(Mutex::new(State {
                source,
                cache: ParseCache::default(),
                options,
            })),
            on_fetch: None,
            url,
            schedule,
            timeout,
            last_good: None,
            last_error: None,
        }
    }

    /// Tell `observer` about every fetch (how long it took, whether it failed).
    pub fn on_fetch(mut self, observer: FetchObserver) -> Self {
        self.on_fetch = Some(observer);
        self
    }

    /// The revision in force: the last one loaded successfully.
    pub fn last_good(&self) -> Option<&Arc<LoadedRevision>> {
        self.last_good.as_ref()
    }

    /// The error of the last poll, if it failed.
    pub fn last_error(&self) -> Option<&SourceError> {
        self.last_error.as_ref()
    }

    /// Wait until the schedule's next poll time.
    pub async fn next_tick(&self) {
        tokio::time::sleep(self.schedule.next_after(chrono::Utc::now())).await;
    }

    /// Fetch, and load when the commit moved. Never panics, never gives up the last good
    /// revision.
    pub async fn poll_once(&mut self) -> PollOutcome {
        let state = Arc::clone(&self.state);
        let loaded = self.last_good.as_ref().map(|r| r.revision.commit.clone());
        let url = self.url.clone();
        let timeout = self.timeout;
        let started = std::time::Instant::now();
        let task =
            tokio::task::spawn_blocking(move || poll_blocking(&state, &url, loaded, timeout));
        let (fetch, result) = match tokio::time::timeout(self.timeout, task).await {
            Err(_) => (
                None,
                Err(SourceError::Timeout {
                    url: self.url.clone(),
                    after: self.timeout,
                }),
            ),
            Ok(Err(join)) => (
                None,
                Err(SourceError::Task {
                    url: self.url.clone(),
                    message: join.to_string(),
                }),
            ),
            Ok(Ok(r)) => r,
        };
        if let Some(observe) = &self.on_fetch {
            // A poll that never came back is counted as a failed fetch of its whole time.
            let fetch = fetch.or_else(|| {
                result.as_ref().err().map(|e| FetchTimed {
                    took: started.elapsed(),
                    failed: Some(e.metric_label()),
                })
            });
            if let Some(f) = fetch {
                observe(f.took, f.failed);
            }
        }
        self.record(result)
    }

    fn record(&mut self, result: Result<Polled, SourceError>) -> PollOutcome {
        match result {
            Ok(Polled::Same(commit)) => {
                self.last_error = None;
                tracing::debug!(url = %self.url, commit = %commit.short(), "source unchanged");
                PollOutcome::Unchanged { commit }
            }
            Ok(Polled::Loaded(revision)) => {
                self.last_error = None;
                let revision = Arc::new(*revision);
                tracing::info!(
                    url = %self.url,
                    commit = %revision.revision.commit.short(),
                    changed = revision.changed_files.len(),
                    parsed = revision.parsed_files,
                    "source loaded a new revision"
                );
                self.last_good = Some(Arc::clone(&revision));
                PollOutcome::Updated(revision)
            }
            Err(error) => {
                let kept = self.last_good.as_ref().map(|r| r.revision.commit.clone());
                tracing::warn!(
                    url = %self.url,
                    reason = error.metric_label(),
                    kept = kept.as_ref().map(|c| c.short().to_string()),
                    "source poll failed, keeping the last good revision: {error}"
                );
                self.last_error = Some(error.clone());
                PollOutcome::Failed { error, kept }
            }
        }
    }
}

fn poll_blocking(
    state: &Mutex<State>,
    url: &str,
    loaded: Option<CommitId>,
    timeout: Duration,
) -> (Option<FetchTimed>, Result<Polled, SourceError>) {
    let mut guard = match state.try_lock() {
        Ok(g) => g,
        // A panic in an earlier poll leaves nothing half-written that matters here.
        Err(TryLockError::Poisoned(p)) => p.into_inner(),
        // An earlier poll that timed out is still running on its thread.
        Err(TryLockError::WouldBlock) => {
            return (
                None,
                Err(SourceError::Busy {
                    url: url.to_string(),
                }),
            );
        }
    };
    let State {
        source,
        cache,
        options,
    } = &mut *guard;
    source.set_timeout(Some(timeout));
    let started = std::time::Instant::now();
    let fetched = source.fetch();
    let timed = FetchTimed {
        took: started.elapsed(),
        failed: fetched.as_ref().err().map(SourceError::metric_label),
    };
    let fetched = match fetched {
        Ok(f) => f,
        Err(e) => return (Some(timed), Err(e)),
    };
    let polled = match decide(&fetched, loaded.as_ref()) {
        PollAction::Keep(commit) => Ok(Polled::Same(commit)),
        PollAction::Load(commit) => source
            .load(&commit, options, cache)
            .map(|r| Polled::Loaded(Box::new(r))),
    };
    (Some(timed), polled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> CommitId {
        CommitId(s.to_string())
    }

    #[test]
    fn decide_loads_only_what_is_not_loaded() {
        let table = [
            (
                FetchOutcome::classify(None, c("a")),
                None,
                PollAction::Load(c("a")),
            ),
            (
                FetchOutcome::classify(Some(&c("a")), c("a")),
                Some(c("a")),
                PollAction::Keep(c("a")),
            ),
            (
                FetchOutcome::classify(Some(&c("a")), c("b")),
                Some(c("a")),
                PollAction::Load(c("b")),
            ),
            // The fetch saw no change, but the load of that commit failed earlier: retry.
            (
                FetchOutcome::classify(Some(&c("b")), c("b")),
                Some(c("a")),
                PollAction::Load(c("b")),
            ),
        ];
        for (fetched, loaded, want) in table {
            assert_eq!(decide(&fetched, loaded.as_ref()), want, "{fetched:?}");
        }
    }
}
