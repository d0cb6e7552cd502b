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

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crate::analysis::Judgement;
use crate::pass::PassOutcome;

use std::fmt::Write as _;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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
    /// [`Judgement::as_str`]: the label is the core's word, not a type of its own.
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

    /// `rollout` names the rollout's route, e.g. `shop/reviews`; `weight` is the canary's percent.
    pub fn set_rollout_weight(&self, rollout: &str, weight: f64) {
        self.rollout_weight
            .get_or_create(&RolloutLabels {
                rollout: rollout.to_string(),
            })
            .set(weight);
    }

    /// `phase` is the rollout phase's name (`Phase::as_str()`); the previous phase's series is
    /// removed.
    pub fn set_rollout_phase(&self, rollout: &str, phase: &'static str) {
        let previous = match self.current_phase.lock() {
            Ok(mut current) => current.insert(rollout.to_string(), phase),
            Err(poisoned) => poisoned.into_inner().insert(rollout.to_string(), phase),
        };
        if let Some(previous) = previous.filter(|p| *p != phase) {
            self.rollout_phase.remove(&PhaseLabels {
                rollout: rollout.to_string(),
                phase: previous,
            });
        }
        self.rollout_phase
            .get_or_create(&PhaseLabels {
                rollout: rollout.to_string(),
                phase,
            })
            .set(1);
    }

    /// Drop every per-rollout series of a rollout that is over (or removed from git), so
    /// series do not pile up over the controller's lifetime.
    pub fn forget_rollout(&self, rollout: &str) {
        let rollout = rollout.to_string();
        let previous = match self.current_phase.lock() {
            Ok(mut current) => current.remove(&rollout),
            Err(poisoned) => poisoned.into_inner().remove(&rollout),
        };
        if let Some(phase) = previous {
            self.rollout_phase.remove(&PhaseLabels {
                rollout: rollout.clone(),
                phase,
            });
        }
        self.rollout_weight.remove(&RolloutLabels {
            rollout: rollout.clone(),
        });
        self.forget_analysis(&rollout);
    }

    /// Drop a rollout's value, threshold and p-value series, e.g. when a new rollout of it
    /// starts (its policy may judge other metrics now).
    pub fn forget_analysis(&self, rollout: &str) {
        let names = match self.analysed.lock() {
            Ok(mut analysed) => analysed.remove(rollout),
            Err(poisoned) => poisoned.into_inner().remove(rollout),
        };
        for metric in names.unwrap_or_default() {
            self.forget_metric(rollout, &metric);
        }
    }

    fn note_analysed(&self, rollout: &str, metric: &str) {
        let mut analysed = match self.analysed.lock() {
            Ok(analysed) => analysed,
            Err(poisoned) => poisoned.into_inner(),
        };
        analysed
            .entry(rollout.to_string())
            .or_default()
            .insert(metric.to_string());
    }

    /// One analysis check of `metric` (the policy's metric name).
    pub fn record_check(&self, metric: &str, verdict: Judgement) {
        self.analysis_checks
            .get_or_create(&CheckLabels {
                metric: metric.to_string(),
                verdict: verdict.as_str(),
            })
            .inc();
    }

    pub fn set_metric_value(&self, rollout: &str, metric: &str, value: f64) {
        self.note_analysed(rollout, metric);
        self.metric_value
            .get_or_create(&MetricLabels {
                rollout: rollout.to_string(),
                metric: metric.to_string(),
            })
            .set(value);
    }

    /// The last baseline comparison's p-value; `None` (inconclusive) removes it, so a stale
    /// p-value is not read as current.
    pub fn set_baseline_p_value(&self, rollout: &str, metric: &str, p_value: Option<f64>) {
        let labels = MetricLabels {
            rollout: rollout.to_string(),
            metric: metric.to_string(),
        };
        match p_value {
            Some(p) => {
                self.note_analysed(rollout, metric);
                self.baseline_p_value.get_or_create(&labels).set(p);
            }
            None => {
                self.baseline_p_value.remove(&labels);
            }
        }
    }

    /// Set a threshold bound; `None` removes it (the range is open on that side).
    pub fn set_metric_threshold(
        &self,
        rollout: &str,
        metric: &str,
        bound: Bound,
        value: Option<f64>,
    ) {
        let labels = ThresholdLabels {
            rollout: rollout.to_string(),
            metric: metric.to_string(),
            bound,
        };
        match value {
            Some(v) => {
                self.note_analysed(rollout, metric);
                self.metric_threshold.get_or_create(&labels).set(v);
            }
            None => {
                self.metric_threshold.remove(&labels);
            }
        }
    }

    /// Remove a rollout's value, threshold and p-value series for one metric.
    fn forget_metric(&self, rollout: &str, metric: &str) {
        let labels = MetricLabels {
            rollout: rollout.to_string(),
            metric: metric.to_string(),
        };
        self.metric_value.remove(&labels);
        self.baseline_p_value.remove(&labels);
        for bound in [Bound::Min, Bound::Max] {
            self.metric_threshold.remove(&ThresholdLabels {
                rollout: rollout.to_string(),
                metric: metric.to_string(),
                bound,
            });
        }
    }

    /// Start a notifier's counters at zero (called when notifications start).
    pub fn register_notifier(&self, notifier: &str) {
        let labels = NotifierLabels {
            notifier: notifier.to_string(),
        };
        let _ = self.notifications_sent.get_or_create(&labels);
        let _ = self.notifications_failed.get_or_create(&labels);
        let _ = self.notifications_dropped.get_or_create(&labels);
    }

    pub fn record_notification_sent(&self, notifier: &str) {
        self.notifications_sent
            .get_or_create(&NotifierLabels {
                notifier: notifier.to_string(),
            })
            .inc();
    }

    pub fn record_notification_failed(&self, notifier: &str) {
        self.notifications_failed
            .get_or_create(&NotifierLabels {
                notifier: notifier.to_string(),
            })
            .inc();
    }

    pub fn record_notification_dropped(&self, notifier: &str) {
        self.notifications_dropped
            .get_or_create(&NotifierLabels {
                notifier: notifier.to_string(),
            })
            .inc();
    }

    pub fn record_notification_duplicate(&self) {
        self.notifications_duplicate.inc();
    }

    /// Counter values for tests and `veer status`: (sent, failed, dropped) for a notifier.
    pub fn notification_counts(&self, notifier: &str) -> (u64, u64, u64) {
        let labels = NotifierLabels {
            notifier: notifier.to_string(),
        };
        (
            self.notifications_sent.get_or_create(&labels).get(),
            self.notifications_failed.get_or_create(&labels).get(),
            self.notifications_dropped.get_or_create(&labels).get(),
        )
    }

    /// How many notifications were suppressed as duplicates.
    pub fn notification_duplicates(&self) -> u64 {
        self.notifications_duplicate.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample lines of one family, without HELP/TYPE.
    fn samples<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
        text.lines()
            .filter(|l| !l.starts_with('#') && l.starts_with(prefix))
            .collect()
    }

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

    #[test]
    fn a_phase_change_replaces_the_series_and_forget_removes_them() {
        let m = Metrics::new();
        m.set_rollout_phase("shop/reviews", "Progressing");
        m.set_rollout_phase("shop/reviews", "Paused");
        m.set_rollout_phase("shop/ratings", "Progressing");
        m.set_rollout_weight("shop/reviews", 10.0);
        let text = m.encode();
        let mut phases = samples(&text, "veer_rollout_phase");
        phases.sort_unstable();
        assert_eq!(
            phases,
            vec![
                "veer_rollout_phase{rollout=\"shop/ratings\",phase=\"Progressing\"} 1",
                "veer_rollout_phase{rollout=\"shop/reviews\",phase=\"Paused\"} 1",
            ],
            "{text}"
        );
        m.set_metric_threshold("shop/reviews", "latency", Bound::Max, Some(500.0));
        m.set_metric_value("shop/reviews", "latency", 120.0);
        m.set_baseline_p_value("shop/reviews", "success-rate", Some(0.2));
        m.set_metric_value("shop/ratings", "latency", 80.0);
        m.forget_rollout("shop/reviews");
        let text = m.encode();
        assert!(!text.contains("shop/reviews"), "{text}");
        assert!(text.contains("shop/ratings"), "{text}");
    }
}
