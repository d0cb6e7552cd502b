//! Recording rollouts and their analysis: the canary's weight, the phase, analysis checks,
//! measured values, thresholds and baseline p-values, and forgetting a rollout's series when
//! it is over or starts again.

use super::{
    Bound, CheckLabels, MetricLabels, Metrics, PhaseLabels, RolloutLabels, ThresholdLabels,
};
use crate::analysis::Judgement;

impl Metrics {
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
        let mut current = match self.current_phase.lock() {
            Ok(current) => current,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Set already (each judged rollout says its phase at every decision): nothing to do.
        if current.get(rollout) == Some(&phase) {
            return;
        }
        let previous = current.insert(rollout.to_string(), phase);
        drop(current);
        if let Some(previous) = previous {
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
        // Known after its first check: no copy of the names at every check after it.
        if analysed.get(rollout).is_some_and(|m| m.contains(metric)) {
            return;
        }
        analysed
            .entry(rollout.to_string())
            .or_default()
            .insert(metric.to_string());
    }

    /// One Prometheus query sent by the analysis; `kind` is one of
    /// [`super::PROMETHEUS_QUERY_KINDS`].
    pub fn record_prometheus_query(&self, kind: &'static str) {
        self.prometheus_queries
            .get_or_create(&super::QueryKindLabels { kind })
            .inc();
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
    fn a_phase_change_replaces_the_series_and_forget_removes_them() {
        let m = Metrics::new();
        m.set_rollout_phase("shop/reviews", "Progressing");
        m.set_rollout_phase("shop/reviews", "Progressing");
        m.set_rollout_phase("shop/reviews", "Paused");
        m.set_rollout_phase("shop/reviews", "Paused");
        m.set_rollout_phase("shop/ratings", "Progressing");
        m.set_rollout_phase("shop/ratings", "Paused");
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
        // Forgotten, then set again at the phase it had: the series comes back.
        m.set_rollout_phase("shop/reviews", "Paused");
        let text = m.encode();
        assert!(
            text.contains("veer_rollout_phase{rollout=\"shop/reviews\",phase=\"Paused\"} 1"),
            "{text}"
        );
    }
}
