//! `spec.baseline`: comparing the new version with the old one (a Mann-Whitney U test over
//! samples of each metric), with each metric's sampling step, allowance and the direction
//! in which it gets worse.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{BuiltinMetric, MetricCheck, ThresholdRange};
use crate::duration;

/// Compare the new version with the old one (the baseline) as well as with each metric's
/// `thresholdRange`: a one-sided Mann-Whitney U test over both versions' samples of the
/// metric (one per `step`), Kayenta-style. A metric inside its range but significantly worse
/// than the old version fails the check; too few samples hold it (inconclusive).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Baseline {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mann_whitney: Option<MannWhitney>,
    /// One sample every `step` (a duration); defaults to each metric's interval, so that
    /// samples cover disjoint windows. A shorter step gives more samples sooner, but they
    /// overlap and the test becomes over-confident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// How far back samples go at most (a duration); never before the current phase began
    /// (the new version's traffic was different then). Default: the whole phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookback: Option<String>,
    /// How much worse than the old version (percent of its median) a metric may be before a
    /// significant difference fails, Kayenta's effect size: with 10, a new version 4 % slower
    /// passes even when the test is sure it is slower. Default 0: any significant worsening
    /// fails. A metric's own `allowance` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowance: Option<f64>,
    /// The metrics compared, each with the direction that is bad. Default: every metric.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<BaselineMetric>,
}

/// Significance level used when `mannWhitney` is left out.
pub const DEFAULT_ALPHA: f64 = 0.05;

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MannWhitney {
    /// Significance level, in (0, 1); 0.05 is usual.
    pub alpha: f64,
}

/// One metric of `spec.metrics` compared with the old version.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BaselineMetric {
    pub name: String,
    /// Which way is bad; see [`Baseline::direction_of`] for the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// This metric's allowance (percent), instead of `spec.baseline.allowance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowance: Option<f64>,
}

/// The direction in which a metric gets worse (Kayenta's `direction`): `increase` fails a new
/// version whose values are higher (latency, errors), `decrease` one whose values are lower
/// (success rate). The one type for it: the policy names it, the analysis tests in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    Increase,
    Decrease,
}

impl Direction {
    /// How far `new` lies beyond `old` in the bad direction: positive when worse, zero or
    /// negative when not.
    pub fn worsening(self, new: f64, old: f64) -> f64 {
        match self {
            Direction::Increase => new - old,
            Direction::Decrease => old - new,
        }
    }
}

/// Why a metric cannot be compared with the old version (see [`Baseline::direction_of`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectionError {
    /// A caller-side builtin measures the whole service, not one version.
    #[error(
        "`{metric}` ({}) measures the whole service as its callers see it, not one version, so there is no old version to compare it with",
        builtin.as_str()
    )]
    CallerSide {
        metric: String,
        builtin: BuiltinMetric,
    },
    /// Neither a listed direction, a builtin nor a one-sided `thresholdRange` tells.
    #[error("cannot tell whether higher or lower values of `{metric}` are worse")]
    Unknown { metric: String },
}

impl Baseline {
    /// Time between two samples of a metric whose query window is `window`: `step`, else the
    /// window (one sample per metric interval). Validation and the rollout both ask here.
    pub fn step_for(&self, window: Duration) -> Duration {
        self.step
            .as_deref()
            .and_then(|t| duration::parse(t).ok())
            .filter(|d| !d.is_zero())
            .unwrap_or(window)
    }

    pub fn alpha(&self) -> f64 {
        self.mann_whitney
            .as_ref()
            .map_or(DEFAULT_ALPHA, |m| m.alpha)
    }

    /// The allowance for metric `name` as a fraction (10 % → 0.1): the metric's own, else
    /// the policy's, else 0.
    pub fn allowance_of(&self, name: &str) -> f64 {
        self.metrics
            .iter()
            .find(|b| b.name == name)
            .and_then(|b| b.allowance)
            .or(self.allowance)
            .unwrap_or(0.0)
            / 100.0
    }

    /// Is `metric` compared, and in which direction is it worse? `None`: not compared (the
    /// policy lists other metrics). The direction is the listed one, else the builtin's
    /// (success rate: decrease, duration: increase), else the side `thresholdRange` bounds
    /// (only `max`: increase, only `min`: decrease); `Err` says why it cannot be told.
    /// Caller-side builtins measure the whole service, so there is no old version to compare
    /// them with: left out unless listed, and an `Err` when listed.
    pub fn direction_of(&self, metric: &MetricCheck) -> Option<Result<Direction, DirectionError>> {
        let listed = if self.metrics.is_empty() {
            None
        } else {
            Some(self.metrics.iter().find(|b| b.name == metric.name)?)
        };
        if let Some(builtin) = metric.builtin.filter(|b| b.is_caller_side()) {
            return listed.map(|_| {
                Err(DirectionError::CallerSide {
                    metric: metric.name.clone(),
                    builtin,
                })
            });
        }
        if let Some(d) = listed.and_then(|b| b.direction) {
            return Some(Ok(d));
        }
        Some(match (metric.builtin, metric.threshold_range) {
            (
                Some(BuiltinMetric::RequestSuccessRate | BuiltinMetric::CallerRequestSuccessRate),
                _,
            ) => Ok(Direction::Decrease),
            (Some(BuiltinMetric::RequestDuration | BuiltinMetric::CallerRequestDuration), _) => {
                Ok(Direction::Increase)
            }
            (
                None,
                ThresholdRange {
                    min: None,
                    max: Some(_),
                },
            ) => Ok(Direction::Increase),
            (
                None,
                ThresholdRange {
                    min: Some(_),
                    max: None,
                },
            ) => Ok(Direction::Decrease),
            (None, ThresholdRange { .. }) => Err(DirectionError::Unknown {
                metric: metric.name.clone(),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::rollout_policy::tests::spec;

    #[test]
    fn metric_windows_and_baseline_steps() {
        let timings = spec(Some(10), Some(50), &[]).timings();
        let metric = |interval: Option<&str>| MetricCheck {
            name: "m".into(),
            builtin: Some(BuiltinMetric::RequestDuration),
            query: None,
            threshold_range: ThresholdRange {
                min: None,
                max: Some(500.0),
            },
            interval: interval.map(String::from),
        };
        let secs = Duration::from_secs;
        // Own interval, else the policy's; a zero or unreadable one is the policy's too.
        assert_eq!(metric(Some("30s")).window(&timings), secs(30));
        assert_eq!(metric(None).window(&timings), secs(60));
        assert_eq!(metric(Some("0s")).window(&timings), secs(60));
        assert_eq!(metric(Some("soon")).window(&timings), secs(60));
        let baseline = |step: Option<&str>| Baseline {
            step: step.map(String::from),
            ..Baseline::default()
        };
        assert_eq!(baseline(Some("10s")).step_for(secs(30)), secs(10));
        assert_eq!(baseline(None).step_for(secs(30)), secs(30));
        assert_eq!(baseline(Some("0s")).step_for(secs(30)), secs(30));
    }

    #[test]
    fn allowances_are_the_metrics_own_else_the_policys_as_fractions() {
        let entry = |name: &str, allowance: Option<f64>| BaselineMetric {
            name: name.into(),
            direction: None,
            allowance,
        };
        let b = Baseline {
            allowance: Some(10.0),
            metrics: vec![entry("p99", Some(25.0)), entry("success", None)],
            ..Baseline::default()
        };
        assert_eq!(b.allowance_of("p99"), 0.25);
        assert_eq!(b.allowance_of("success"), 0.1);
        assert_eq!(b.allowance_of("unlisted"), 0.1);
        assert_eq!(Baseline::default().allowance_of("p99"), 0.0);
    }

    /// Name, baseline, metric, and `None` (not compared), `Some(Ok(direction))` or
    /// `Some(Err(()))` (cannot tell).
    type DirectionCase<'a> = (
        &'static str,
        Baseline,
        &'a MetricCheck,
        Option<Result<Direction, ()>>,
    );

    #[test]
    fn baseline_directions_table() {
        let metric =
            |name: &str, builtin: Option<BuiltinMetric>, min: Option<f64>, max: Option<f64>| {
                MetricCheck {
                    name: name.into(),
                    builtin,
                    query: builtin.is_none().then(|| "q".to_string()),
                    threshold_range: ThresholdRange { min, max },
                    interval: None,
                }
            };
        let listing = |entries: &[(&str, Option<Direction>)]| Baseline {
            metrics: entries
                .iter()
                .map(|(n, d)| BaselineMetric {
                    name: n.to_string(),
                    direction: *d,
                    allowance: None,
                })
                .collect(),
            ..Baseline::default()
        };
        use Direction::{Decrease, Increase};
        let success = metric(
            "success",
            Some(BuiltinMetric::RequestSuccessRate),
            Some(99.0),
            None,
        );
        let p99 = metric(
            "p99",
            Some(BuiltinMetric::RequestDuration),
            None,
            Some(500.0),
        );
        let errors = metric("errors", None, None, Some(1.0));
        let apdex = metric("apdex", None, Some(0.9), None);
        let depth = metric("depth", None, Some(0.0), Some(100.0));
        let all = Baseline::default();
        #[rustfmt::skip]
        let cases: Vec<DirectionCase> = vec![
            ("success rate: lower is worse", all.clone(), &success, Some(Ok(Decrease))),
            ("latency: higher is worse", all.clone(), &p99, Some(Ok(Increase))),
            ("a query bounded above: higher is worse", all.clone(), &errors, Some(Ok(Increase))),
            ("a query bounded below: lower is worse", all.clone(), &apdex, Some(Ok(Decrease))),
            ("bounded both sides: cannot tell", all.clone(), &depth, Some(Err(()))),
            ("listed with a direction", listing(&[("depth", Some(Increase))]), &depth, Some(Ok(Increase))),
            ("a listed direction overrides the builtin's", listing(&[("p99", Some(Decrease))]), &p99, Some(Ok(Decrease))),
            ("listed without a direction: the default", listing(&[("p99", None)]), &p99, Some(Ok(Increase))),
            ("not listed: not compared", listing(&[("p99", None)]), &success, None),
        ];
        for (name, baseline, metric, want) in cases {
            let got = baseline.direction_of(metric).map(|r| r.map_err(|_| ()));
            assert_eq!(got, want, "{name}");
        }
        assert_eq!(all.alpha(), DEFAULT_ALPHA);
        assert_eq!(
            all.direction_of(&depth)
                .and_then(Result::err)
                .map(|e| e.to_string()),
            Some("cannot tell whether higher or lower values of `depth` are worse".to_string())
        );
        let caller = metric(
            "caller-p99",
            Some(BuiltinMetric::CallerRequestDuration),
            None,
            Some(500.0),
        );
        assert_eq!(
            all.direction_of(&caller),
            None,
            "caller-side: left out unless listed"
        );
        assert_eq!(
            listing(&[("caller-p99", None)])
                .direction_of(&caller)
                .and_then(Result::err)
                .map(|e| e.to_string()),
            Some("`caller-p99` (caller-request-duration) measures the whole service as its callers see it, not one version, so there is no old version to compare it with".to_string())
        );
    }

    #[test]
    fn worsening_is_signed_by_direction() {
        assert_eq!(Direction::Increase.worsening(12.0, 10.0), 2.0);
        assert_eq!(Direction::Decrease.worsening(12.0, 10.0), -2.0);
        assert_eq!(Direction::Decrease.worsening(95.0, 99.0), 4.0);
    }
}
