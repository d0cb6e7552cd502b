//! Recording reconcile passes: how long each took and how it ended, the drift it found, and
//! git fetches (their duration, and failures by reason).

use std::time::Duration;

use super::{Metrics, OutcomeLabels, ReasonLabels};
use crate::pass::PassOutcome;

impl Metrics {
    pub fn observe_reconcile(&self, took: Duration) {
        self.reconcile_duration.observe(took.as_secs_f64());
    }

    pub fn record_sync(&self, outcome: PassOutcome) {
        self.sync_results
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn set_drift_objects(&self, count: usize) {
        self.drift_objects
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// A fetch that succeeded.
    pub fn observe_git_fetch(&self, took: Duration) {
        self.git_fetch_duration.observe(took.as_secs_f64());
    }

    /// A fetch that failed; `reason` is the error's `metric_label()`.
    pub fn record_git_fetch_error(&self, took: Duration, reason: &'static str) {
        self.git_fetch_duration.observe(took.as_secs_f64());
        self.git_fetch_errors
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }
}
