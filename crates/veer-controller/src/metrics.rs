//! veer's own Prometheus metrics: one [`Metrics`] owning a `prometheus-client` registry with
//! every family veer exports, small typed methods to record each, and [`Metrics::encode`] for
//! `/metrics` (Prometheus text format 0.0.4, [`CONTENT_TYPE`]).
//!
//! Shared as `Arc<Metrics>`; recording is lock-free or a short lock, safe from any task.
//!
//! Label cardinality is bounded on purpose. Every label value is either one of our closed
//! enums (`outcome`, `verdict`, `bound`), a `&'static str` chosen in code (`reason`, `phase`),
//! or a name that comes from configuration and git (`rollout`: one per rollout route in git;
//! `metric`: one per analysis metric in a policy; `notifier`: one per configured notifier).
//! Nothing is labelled by commit, object name, message or URL. A rollout's series are removed
//! with [`Metrics::forget_rollout`] when its VirtualService leaves git, and its analysis
//! series with [`Metrics::forget_analysis`] when a new rollout of it starts.
//!
//! This file defines the families and registers them; the methods that record them live by
//! area: `reconcile` (passes, drift, git fetches), `rollouts` (weight, phase and analysis
//! series, and forgetting them), `notifications` (per-notifier delivery counters).

mod notifications;
mod reconcile;
mod rollouts;

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::pass::PassOutcome;

/// The `Content-Type` to serve [`Metrics::encode`]'s output with.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

impl EncodeLabelValue for PassOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

/// Which side of a threshold range (label `bound`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bound {
    Min,
    Max,
}

impl Bound {
    pub fn as_str(self) -> &'static str {
        match self {
            Bound::Min => "min",
            Bound::Max => "max",
        }
    }
}

impl EncodeLabelValue for Bound {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: PassOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RolloutLabels {
    rollout: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PhaseLabels {
    rollout: String,
    phase: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CheckLabels {
    metric: String,
    /// [`crate::analysis::Judgement::as_str`]: the label is the core's word, not a type of its own.
    verdict: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct MetricLabels {
    rollout: String,
    metric: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ThresholdLabels {
    rollout: String,
    metric: String,
    bound: Bound,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct QueryKindLabels {
    /// `instant` (one rollout's), `grouped` (the built-ins of a window), `range` (a comparison).
    kind: &'static str,
}

/// The kinds of Prometheus queries the rollout driver sends (label `kind`).
pub const PROMETHEUS_QUERY_KINDS: [&str; 3] = ["instant", "grouped", "range"];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct NotifierLabels {
    notifier: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every metric veer exports. Create one at start-up and share it as `Arc<Metrics>`.
pub struct Metrics {
    registry: Registry,
    reconcile_duration: Histogram,
    sync_results: Family<OutcomeLabels, Counter>,
    drift_objects: Gauge,
    git_fetch_duration: Histogram,
    git_fetch_errors: Family<ReasonLabels, Counter>,
    rollout_weight: Family<RolloutLabels, FloatGauge>,
    rollout_phase: Family<PhaseLabels, Gauge>,
    /// The phase each rollout's `veer_rollout_phase` series is at, so a phase change removes
    /// the old series instead of leaving a stale 1 behind.
    current_phase: Mutex<HashMap<String, &'static str>>,
    /// Metric names each rollout has value/threshold/p-value series for: a Family does not
    /// list its keys, and forgetting a rollout must remove them all.
    analysed: Mutex<HashMap<String, BTreeSet<String>>>,
    analysis_checks: Family<CheckLabels, Counter>,
    metric_value: Family<MetricLabels, FloatGauge>,
    metric_threshold: Family<ThresholdLabels, FloatGauge>,
    baseline_p_value: Family<MetricLabels, FloatGauge>,
    prometheus_queries: Family<QueryKindLabels, Counter>,
    notifications_sent: Family<NotifierLabels, Counter>,
    notifications_failed: Family<NotifierLabels, Counter>,
    notifications_dropped: Family<NotifierLabels, Counter>,
    notifications_duplicate: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        // 5 ms .. ~82 s: a reconcile of a small repo is milliseconds, a large one seconds.
        let reconcile_duration = Histogram::new(exponential_buckets(0.005, 2.0, 15));
        // 10 ms .. ~164 s: a fetch is bounded by the configured timeout (60 s by default).
        let git_fetch_duration = Histogram::new(exponential_buckets(0.01, 2.0, 15));
        let m = Metrics {
            reconcile_duration: reconcile_duration.clone(),
            sync_results: Family::default(),
            drift_objects: Gauge::default(),
            git_fetch_duration: git_fetch_duration.clone(),
            git_fetch_errors: Family::default(),
            rollout_weight: Family::default(),
            rollout_phase: Family::default(),
            current_phase: Mutex::new(HashMap::new()),
            analysed: Mutex::new(HashMap::new()),
            analysis_checks: Family::default(),
            metric_value: Family::default(),
            metric_threshold: Family::default(),
            baseline_p_value: Family::default(),
            prometheus_queries: Family::default(),
            notifications_sent: Family::default(),
            notifications_failed: Family::default(),
            notifications_dropped: Family::default(),
            notifications_duplicate: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "veer_reconcile_duration_seconds",
            "Time one reconcile pass took (plan, apply, record)",
            reconcile_duration,
        );
        registry.register(
            "veer_sync_results",
            "Reconcile passes by outcome",
            m.sync_results.clone(),
        );
        registry.register(
            "veer_drift_objects",
            "Objects whose live state differs from git, at the last pass",
            m.drift_objects.clone(),
        );
        registry.register(
            "veer_git_fetch_duration_seconds",
            "Time one git fetch took, failed ones included",
            git_fetch_duration,
        );
        registry.register(
            "veer_git_fetch_errors",
            "Failed git fetches by reason",
            m.git_fetch_errors.clone(),
        );
        registry.register(
            "veer_rollout_weight",
            "Percent of traffic a rollout currently sends to the new version",
            m.rollout_weight.clone(),
        );
        registry.register(
            "veer_rollout_phase",
            "1 for the phase each rollout is in",
            m.rollout_phase.clone(),
        );
        registry.register(
            "veer_analysis_checks",
            "Analysis checks by metric and verdict",
            m.analysis_checks.clone(),
        );
        registry.register(
            "veer_analysis_metric_value",
            "Last value measured for an analysis metric",
            m.metric_value.clone(),
        );
        registry.register(
            "veer_analysis_metric_threshold",
            "Threshold an analysis metric is judged against",
            m.metric_threshold.clone(),
        );
        registry.register(
            "veer_analysis_baseline_p_value",
            "Last p-value of an analysis metric's comparison with the old version (one-sided Mann-Whitney U); below the policy's alpha the new version is worse",
            m.baseline_p_value.clone(),
        );
        registry.register(
            "veer_prometheus_queries",
            "Prometheus queries the rollout analysis sent, by kind (instant: one rollout's; grouped: the built-in metrics of one window, for every rollout asking them, at once; range: a baseline comparison)",
            m.prometheus_queries.clone(),
        );
        registry.register(
            "veer_notifications_sent",
            "Notifications delivered, by notifier",
            m.notifications_sent.clone(),
        );
        registry.register(
            "veer_notifications_failed",
            "Notifications given up on after the retries, by notifier",
            m.notifications_failed.clone(),
        );
        registry.register(
            "veer_notifications_dropped",
            "Notifications dropped because the notifier's queue was full",
            m.notifications_dropped.clone(),
        );
        registry.register(
            "veer_notifications_duplicate",
            "Notifications not sent because the same (object, revision, transition) was sent within the window",
            m.notifications_duplicate.clone(),
        );
        // Closed label sets start at zero, so `rate()` and absence alerts work from the
        // first scrape instead of from the first occurrence.
        for outcome in PassOutcome::ALL {
            let _ = m.sync_results.get_or_create(&OutcomeLabels { outcome });
        }
        for kind in PROMETHEUS_QUERY_KINDS {
            let _ = m
                .prometheus_queries
                .get_or_create(&QueryKindLabels { kind });
        }
        Metrics { registry, ..m }
    }

    /// The registry, e.g. to register more collectors before serving.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// All families in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; an Err would only come from a label encoder bug,
        // and a partial page is better than none for a scrape.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::analysis::Judgement;

    #[test]
    fn every_family_is_exported_with_its_type() {
        let m = Metrics::new();
        // Families with open label sets appear with their first series.
        m.record_git_fetch_error(Duration::from_secs(1), "fetch");
        m.set_rollout_weight("shop/reviews", 0.0);
        m.set_rollout_phase("shop/reviews", "Progressing");
        m.record_check("success-rate", Judgement::Pass);
        m.set_metric_value("shop/reviews", "success-rate", 1.0);
        m.set_metric_threshold("shop/reviews", "success-rate", Bound::Min, Some(0.99));
        m.set_baseline_p_value("shop/reviews", "success-rate", Some(0.3));
        m.register_notifier("slack");
        let text = m.encode();
        for (name, kind) in [
            ("veer_reconcile_duration_seconds", "histogram"),
            ("veer_sync_results_total", "counter"),
            ("veer_drift_objects", "gauge"),
            ("veer_git_fetch_duration_seconds", "histogram"),
            ("veer_git_fetch_errors_total", "counter"),
            ("veer_rollout_weight", "gauge"),
            ("veer_rollout_phase", "gauge"),
            ("veer_analysis_checks_total", "counter"),
            ("veer_analysis_metric_value", "gauge"),
            ("veer_analysis_metric_threshold", "gauge"),
            ("veer_analysis_baseline_p_value", "gauge"),
            ("veer_prometheus_queries_total", "counter"),
            ("veer_notifications_sent_total", "counter"),
            ("veer_notifications_failed_total", "counter"),
            ("veer_notifications_dropped_total", "counter"),
            ("veer_notifications_duplicate_total", "counter"),
        ] {
            let line = format!("# TYPE {name} {kind}");
            assert!(text.contains(&line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn closed_label_sets_start_at_zero() {
        let text = Metrics::new().encode();
        for outcome in PassOutcome::ALL {
            let line = format!(
                "veer_sync_results_total{{outcome=\"{}\"}} 0",
                outcome.as_str()
            );
            assert!(text.contains(&line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn recorded_values_appear_with_their_labels() {
        let m = Metrics::new();
        m.observe_reconcile(Duration::from_millis(30));
        m.record_sync(PassOutcome::Synced);
        m.record_sync(PassOutcome::Synced);
        m.record_sync(PassOutcome::Partial);
        m.set_drift_objects(3);
        m.record_git_fetch_error(Duration::from_secs(1), "timeout");
        m.set_rollout_weight("shop/reviews", 25.0);
        m.record_check("success-rate", Judgement::Inconclusive);
        m.set_metric_value("shop/reviews", "success-rate", 0.97);
        m.set_metric_threshold("shop/reviews", "success-rate", Bound::Min, Some(0.99));
        m.record_notification_sent("slack");
        let text = m.encode();
        for expected in [
            "veer_reconcile_duration_seconds_count 1",
            "veer_reconcile_duration_seconds_bucket{le=\"0.04\"} 1",
            "veer_sync_results_total{outcome=\"synced\"} 2",
            "veer_sync_results_total{outcome=\"partial\"} 1",
            "veer_drift_objects 3",
            "veer_git_fetch_errors_total{reason=\"timeout\"} 1",
            "veer_git_fetch_duration_seconds_count 1",
            "veer_rollout_weight{rollout=\"shop/reviews\"} 25",
            "veer_analysis_checks_total{metric=\"success-rate\",verdict=\"inconclusive\"} 1",
            "veer_analysis_metric_value{rollout=\"shop/reviews\",metric=\"success-rate\"} 0.97",
            "veer_analysis_metric_threshold{rollout=\"shop/reviews\",metric=\"success-rate\",bound=\"min\"} 0.99",
            "veer_notifications_sent_total{notifier=\"slack\"} 1",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }
}
